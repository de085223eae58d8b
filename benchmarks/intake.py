"""Intake throughput: Open311 POSTs and GPS fixes per second through the real HTTP API.

For each engine (a GeoPackage file, and PostGIS when ``GRIDPULSE_TEST_PG`` or ``--pg`` is
given) the small demo district is loaded, ``uvicorn`` serves ``gridpulse.api`` in a child
process, and an asyncio client keeps ``--concurrency`` requests in flight for ``--seconds``
(keep-alive connections on asyncio streams, or httpx with ``--client httpx``; the lean one
leaves more of the shared CPU to the server):

* cases: Open311 ``POST requests.json``, each with its own ``Idempotency-Key``, a random
  whistle-list item at a random point inside a random grid;
* fixes: ``POST /api/v1/fixes`` with ``--batch`` fixes per call from the demo's workers.

It prints JSON: requests and items per second, p50/p95/max latency (ms), errors, and the
check that every accepted item is stored (count in = count stored). The load generator runs
on the same machine as the server (say so when quoting figures).

    python benchmarks/intake.py [--seconds 60] [--concurrency 16] [--batch 500] [--workers 1]
                                [--client raw|httpx] [--tree OTHER_CHECKOUT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(url: str) -> dict:
    """Load the small demo into ``url``; make a district command-centre account and token."""
    from data.demo import load_into
    from layers.accounts import create_account
    from layers.apitokens import issue_api_token
    from layers.store import open_store

    with open_store(url) as s:
        load_into(s, "small", anchor="now")
        create_account(s, "bench", "correct horse battery", role="command_centre",
                       scope_code="320106", actor="bench")
        token = issue_api_token(s, "bench", actor="bench")
        grids = s.read("grids", columns=["code", "kind"])
        grids = grids[grids["kind"] == "comprehensive"]
        workers = s.read("workers", columns=["id"])["id"].astype(str).tolist()
    rng = np.random.default_rng(0)
    points = []
    for g in grids.geometry:
        x0, y0, x1, y1 = g.bounds
        while True:
            x, y = rng.uniform(x0, x1), rng.uniform(y0, y1)
            if g.contains(shapely.Point(x, y)):
                points.append((x, y))
                break
    return {"token": token, "points": points, "workers": workers}


def _proc_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and its live descendants, from ``/proc``."""
    tick = os.sysconf("SC_CLK_TCK")
    total, todo, seen = 0.0, [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                kids = (task / "children").read_text().split()
                todo.extend(int(k) for k in kids)
        except (OSError, ValueError, IndexError):
            continue
    return total


def _machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from ``/proc/stat``."""
    v = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return float(sum(v) - idle), float(sum(v))


def _count(url: str, layer: str) -> int:
    from layers.store import open_store

    with open_store(url) as s:
        return s.count(layer) if s.has_layer(layer) else 0


def _measured(server_pid: int, run) -> dict:
    """``run()``'s result with the CPU it cost: the server process tree, this load
    generator, and how busy the whole machine was (1.0 = every core)."""
    c0, s0, m0 = time.process_time(), _proc_cpu_s(server_pid), _machine_busy()
    res = run()
    c1, s1, m1 = time.process_time(), _proc_cpu_s(server_pid), _machine_busy()
    items = max(res["items_accepted"], 1)
    res["cpu"] = {"server_s": round(s1 - s0, 1), "client_s": round(c1 - c0, 1),
                  "server_ms_per_item": round((s1 - s0) * 1000 / items, 3),
                  "machine_busy": round((m1[0] - m0[0]) / max(m1[1] - m0[1], 1), 2)}
    return res


class _Conn:
    """One keep-alive HTTP/1.1 connection on asyncio streams: a lean load generator.

    httpx spent about 2 ms of CPU per request here, on the same two cores as the server it
    measures (``--client httpx`` keeps it for comparison); this writes prepared bytes and
    reads the status line, the headers and a ``Content-Length`` body.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, headers: dict[str, str], body: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.writer.write((f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\n{head}"
                           f"Content-Type: application/json\r\n"
                           f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
        status = int((await self.reader.readline()).split()[1])
        length, close = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "connection" and "close" in value.lower():
                close = True
        await self.reader.readexactly(length)
        if close:
            self.writer.close()
            self.writer = None
        return status


async def _drive(api: str, seconds: float, concurrency: int, make,
                 client_kind: str = "raw") -> dict:
    lat: list[float] = []
    items = 0
    errors: dict[str, int] = {}
    stop = time.monotonic() + seconds
    host, port = api.removeprefix("http://").split(":")

    async def worker(send, i: int) -> None:
        nonlocal items
        n = 0
        # clients start one by one, as phones and platforms do: a burst of connects would all
        # be accepted by one uvicorn worker process (asyncio accepts a backlog per wake-up)
        await asyncio.sleep(i * 0.02)
        while time.monotonic() < stop:
            path, headers, body, size = make(i, n)
            n += 1
            t0 = time.perf_counter()
            try:
                code = await send(path, headers, body)
            except (OSError, ValueError, IndexError, asyncio.IncompleteReadError,
                    httpx.HTTPError) as e:
                code = type(e).__name__
            lat.append((time.perf_counter() - t0) * 1000)
            if code == 201:
                items += size
            else:
                errors[str(code)] = errors.get(str(code), 0) + 1

    t0 = time.perf_counter()
    if client_kind == "httpx":
        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(base_url=api, timeout=120, limits=limits) as client:
            async def send_httpx(path: str, headers: dict[str, str], body: bytes) -> int:
                return (await client.post(path, headers={
                    **headers, "Content-Type": "application/json"}, content=body)).status_code

            await asyncio.gather(*(worker(send_httpx, i) for i in range(concurrency)))
    else:
        conns = [_Conn(host, int(port)) for _ in range(concurrency)]
        await asyncio.gather(*(worker(c.post, i) for i, c in enumerate(conns)))
        for c in conns:
            if c.writer is not None:
                c.writer.close()
    wall = time.perf_counter() - t0
    a = np.array(lat)
    return {"seconds": round(wall, 1), "requests": int(a.size),
            "requests_per_s": round(a.size / wall, 1), "items_accepted": items,
            "items_per_s": round(items / wall, 1),
            "p50_ms": round(float(np.percentile(a, 50)), 1) if a.size else None,
            "p95_ms": round(float(np.percentile(a, 95)), 1) if a.size else None,
            "max_ms": round(float(a.max()), 1) if a.size else None, "errors": errors}


def run_engine(name: str, url: str, args: argparse.Namespace) -> dict:
    from gridpulse.api import uvicorn_command

    t0 = time.perf_counter()
    ctx = prepare(url)
    prep_s = time.perf_counter() - t0
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDPULSE_")}
    tree = Path(args.tree).resolve() if args.tree else ROOT
    env.update(GRIDPULSE_STORE=url, PYTHONPATH=str(tree))
    cmd = uvicorn_command(port=port, workers=args.workers)
    proc = subprocess.Popen(cmd, cwd=tree, env=env)
    api = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{api}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    head = {"Authorization": f"Bearer {ctx['token']}"}
    rng = np.random.default_rng(1)
    codes = ["0101", "0201", "0401", "0402", "0501", "0701", "1101", "1301"]
    pts = ctx["points"]
    out: dict = {"engine": name, "prepare_s": round(prep_s, 1)}
    try:
        before = _count(url, "incidents")

        def case(i: int, n: int):
            x, y = pts[int(rng.integers(len(pts)))]
            return ("/open311/v2/requests.json",
                    {**head, "Idempotency-Key": uuid.uuid4().hex},
                    json.dumps({"service_code": codes[int(rng.integers(len(codes)))], "lat": y,
                                "long": x, "description": "benchmark"}).encode(), 1)

        res = _measured(proc.pid, lambda: asyncio.run(
            _drive(api, args.seconds, args.concurrency, case, args.client)))
        res["stored"] = _count(url, "incidents") - before
        res["count_in_equals_stored"] = res["stored"] == res["items_accepted"]
        out["cases"] = res

        before = _count(url, "patrol_points")
        workers = ctx["workers"]
        base = time.time()

        def fixes(i: int, n: int):
            t = base + (i * 100_000 + n) * 0.001  # distinct times: every fix is new
            body = {"fixes": [{"worker_id": workers[(k + i) % len(workers)],
                               "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(
                                   t + k * 1e-6)) + f".{(n * args.batch + k) % 1_000_000:06d}",
                               "lat": pts[k % len(pts)][1], "long": pts[k % len(pts)][0],
                               "accuracy_m": 5.0} for k in range(args.batch)]}
            return "/api/v1/fixes", head, json.dumps(body).encode(), args.batch

        res = _measured(proc.pid, lambda: asyncio.run(
            _drive(api, args.seconds, max(2, args.concurrency // 4), fixes, args.client)))
        res["stored"] = _count(url, "patrol_points") - before
        res["count_in_equals_stored"] = res["stored"] == res["items_accepted"]
        res["batch"] = args.batch
        out["fixes"] = res
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    p.add_argument("--client", choices=("raw", "httpx"), default="raw",
                   help="load generator: keep-alive asyncio streams (lean) or httpx")
    p.add_argument("--pg", default=os.environ.get("GRIDPULSE_TEST_PG", ""))
    p.add_argument("--only", choices=("gpkg", "postgis"), default=None)
    p.add_argument("--tree", default="", help="serve another checkout of GridPulse (a "
                   "\"before\"; the store is prepared by this one)")
    args = p.parse_args()
    results = []
    tmp = Path(tempfile.mkdtemp())
    if args.only in (None, "gpkg"):
        results.append(run_engine("gpkg", str(tmp / "bench.gpkg"), args))
    if args.pg and args.only in (None, "postgis"):
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        try:
            results.append(run_engine("postgis", f"{args.pg}?schema={schema}", args))
        finally:
            import psycopg

            with psycopg.connect(args.pg, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    print(json.dumps({"benchmark": "intake", "cpus": os.cpu_count(),
                      "load_avg_1m": round(os.getloadavg()[0], 1), "concurrency": args.concurrency,
                      "uvicorn_workers": args.workers, "client": args.client,
                      "tree": args.tree or str(ROOT),
                      "results": results},
                     ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
