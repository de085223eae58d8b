"""Cold start: every page cold then warm, signed in, with settle times and server memory; and
``gridpulse serve`` on an empty store until the first map.

Two measurements (JSON on stdout; progress on stderr):

``pages`` (``STORE`` given): starts the dashboard (``gridpulse serve``'s ``streamlit run``,
offline, no basemap) on an existing store, e.g. ``gridpulse demo --preset full --store
STORE``, with :func:`tests.e2e._helpers.streamlit_server`; signs a test admin in (a session
cookie, :func:`tests.e2e._helpers.add_session_cookie`); drives headless ``/usr/bin/chromium``
through every page twice, each visit a fresh browser context (a new session):

* ``cold``: the first visit of each page after the server started (nothing cached);
* ``warm``: a second visit, in a new session (the server's caches are filled).

A page's settle time runs from ``page.goto`` until its last change: the app script no longer
running (Streamlit's ``data-test-script-state``), nothing stale or spinning, the element count
unchanged for ``--quiet-s`` (not counted); see :func:`tests.e2e._helpers.settle`. ``map_s``
is when the page's first map had drawn a shape. The server's resident memory (the streamlit
process and its children: ``VmRSS``, and their peak ``VmHWM``) is read from ``/proc`` after
start-up, after each visit and after each pass. A page that does not settle in 300 s reports
``null``.

``server`` (per visit): the server's own seconds (wall and CPU, per script run or fragment
run) from :func:`dashboard.state.timed` lines (``GP_TIMING_LOG``): ``run`` is a whole script
run, ``wall.kpis``/``wall.map``/``wall.feeds`` the wall's fragments. ``--refresh-s S`` keeps the
wall open S seconds after the warm pass and reports the server seconds of one 30 s refresh;
``--sessions N`` opens N sessions at once and reports the memory with all of them open.
A ``--tree`` without the instrumentation reports ``null`` there.

``--fresh``: runs ``gridpulse serve --preset PRESET`` on a new, empty GeoPackage (what ``make
serve`` does on a fresh machine after installing) and reports the seconds until the server
answers, until the explorer's map shows (signed in as the demo admin), and until the demo's
history is in (the "generating" banner gone).

``--tree DIR`` serves another checkout of GridPulse (e.g. the commit before a change,
extracted with ``git archive``), so before and after are measured in the same run.

Run::

    .venv/bin/python benchmarks/cold_start.py STORE.gpkg [--tree DIR] [--pages wall patrol]
        [--refresh-s 35] [--sessions 20]
    .venv/bin/python benchmarks/cold_start.py --fresh [--preset full]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e._helpers import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    MAP,
    add_session_cookie,
    free_port,
    settle,
    streamlit_server,
    wait_for_map,
)

#: url path of every page in ``dashboard/app.py`` ("" is the default page).
PAGES = ("", "wall", "incidents", "hotspots", "patrol", "data", "planner")
TIMEOUT_S = 300.0


def _tree_pids(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def rss_mb(pid: int) -> dict[str, float]:
    """Resident and peak resident memory of ``pid`` and its children, in MB."""
    now = peak = 0
    for p in _tree_pids(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                now += int(line.split()[1])
            elif line.startswith("VmHWM:"):
                peak += int(line.split()[1])
    return {"rss_mb": round(now / 1024, 1), "peak_rss_mb": round(peak / 1024, 1)}


def _r(x: float) -> float | None:
    return None if math.isnan(x) else round(x, 2)


def visit(browser: Any, server: str, path: str, store: str, *, quiet_s: float) -> dict[str, Any]:
    """One signed-in visit of ``server/path`` in a new browser context."""
    ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    add_session_cookie(ctx, server, store)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        t0 = time.perf_counter()
        page.goto(f"{server}/{path}", timeout=TIMEOUT_S * 1000)
        try:
            secs = time.perf_counter() - t0 + settle(page, quiet_s=quiet_s, timeout_s=TIMEOUT_S)
        except TimeoutError:
            secs = float("nan")
        has_map = page.locator(MAP).count() > 0
        map_s = time.perf_counter() - t0 if has_map and wait_for_map(page, timeout_s=60) else float("nan")
        res = {"settle_s": _r(secs), "map_s": _r(map_s),
               "signed_in": page.locator("input[type='password']").count() == 0,
               "exceptions": page.locator("[data-testid='stException']").count(),
               "js_errors": len(errors)}
    finally:
        ctx.close()
    return res


class Timings:
    """The server's per-run timing lines (:func:`dashboard.state.timed`, ``GP_TIMING_LOG``).

    A tree without that instrumentation writes nothing: its figures are ``None``.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def take(self) -> dict[str, Any] | None:
        """Sections logged since the last call: per name, the runs' seconds and CPU seconds."""
        if not self.path.exists():
            return None
        with open(self.path, encoding="utf-8") as f:
            f.seek(self.offset)
            text = f.read()
            self.offset = f.tell()
        out: dict[str, Any] = {}
        for line in text.splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            d = out.setdefault(rec["name"], {"n": 0, "s": [], "cpu_s": []})
            d["n"] += 1
            d["s"].append(round(rec["s"], 3))
            d["cpu_s"].append(round(rec["cpu_s"], 3))
        return out or None


def wall_refresh(browser: Any, server: str, store: str, timings: Timings, *,
                 wait_s: float) -> dict[str, Any]:
    """Keep the wall open for ``wait_s`` (past its refresh) and report the fragments' server time."""
    ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    add_session_cookie(ctx, server, store)
    page = ctx.new_page()
    try:
        page.goto(f"{server}/wall", timeout=TIMEOUT_S * 1000)
        settle(page, quiet_s=1.0, timeout_s=TIMEOUT_S)
        timings.take()  # the page's first run
        time.sleep(wait_s)
        got = timings.take() or {}
    finally:
        ctx.close()
    frag = {k: v for k, v in got.items() if k.startswith("wall.")}
    per_refresh = None
    if frag:
        n = max(v["n"] for v in frag.values())
        per_refresh = round(sum(sum(v["s"]) for v in frag.values()) / n, 3)
    return {"waited_s": wait_s, "sections": frag or None, "server_s_per_refresh": per_refresh}


def many_sessions(browser: Any, server: str, store: str, n: int) -> dict[str, Any]:
    """Open ``n`` signed-in sessions at once, cycling through the pages, keep them all open,
    and report the server's memory with every one of them open."""
    ctxs, unsettled = [], 0
    try:
        for i in range(n):
            ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
            add_session_cookie(ctx, server, store)
            ctxs.append(ctx)
            page = ctx.new_page()
            try:
                page.goto(f"{server}/{PAGES[i % len(PAGES)]}", timeout=TIMEOUT_S * 1000)
                settle(page, quiet_s=0.5, timeout_s=TIMEOUT_S)
            except Exception:  # noqa: BLE001 - a loaded machine: the session is open all the same
                unsettled += 1
        return {"open": len(ctxs), "unsettled": unsettled, **rss_mb(server.proc.pid)}
    finally:
        for ctx in ctxs:
            ctx.close()


def pages(args: argparse.Namespace) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    tree = args.tree.resolve()
    store = str(args.store.resolve())
    home = Path(tempfile.mkdtemp(prefix="gp-bench-"))
    out: dict[str, Any] = {"benchmark": "cold_start", "store": store, "tree": str(tree),
                           "cpus": os.cpu_count(), "load_avg": round(os.getloadavg()[0], 2),
                           "quiet_s": args.quiet_s, "pages": {}}
    timings = Timings(home / "timing.jsonl")
    try:
        with streamlit_server(store, home, tree=tree, GP_TIMING_LOG=str(timings.path)) as server:
            out["server_health_s"] = round(server.start_s, 2)
            out["memory_after_start"] = rss_mb(server.proc.pid)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                for phase in ("cold", "warm"):
                    for path in args.pages:
                        name = path or "explorer"
                        res = visit(browser, server, path, store, quiet_s=args.quiet_s)
                        res.update(rss_mb(server.proc.pid))
                        res["server"] = timings.take()
                        out["pages"].setdefault(name, {})[phase] = res
                        print(json.dumps({phase: name, **res}), file=sys.stderr, flush=True)
                    out[f"memory_after_{phase}"] = rss_mb(server.proc.pid)
                if args.refresh_s and "wall" in args.pages:
                    out["wall_refresh"] = wall_refresh(browser, server, store, timings,
                                                       wait_s=args.refresh_s)
                    print(json.dumps({"wall_refresh": out["wall_refresh"]}), file=sys.stderr, flush=True)
                if args.sessions:
                    out["sessions"] = many_sessions(browser, server, store, args.sessions)
                    print(json.dumps({"sessions": out["sessions"]}), file=sys.stderr, flush=True)
                browser.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    out["load_avg_end"] = round(os.getloadavg()[0], 2)
    return out


def fresh(args: argparse.Namespace) -> dict[str, Any]:
    """``gridpulse serve`` on an empty store: seconds to health, first map, complete demo."""
    import urllib.request

    from playwright.sync_api import sync_playwright

    from dashboard._auth import COOKIE
    from layers import accounts

    work = Path(tempfile.mkdtemp(prefix="gp-fresh-"))
    store = work / "gridpulse.gpkg"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDPULSE_")}
    env.update(HOME=str(work / "home"), PYTHONPATH=str(ROOT), GRIDPULSE_OFFLINE="1",
               GRIDPULSE_BASEMAP="none", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "gridpulse", "--lang", "en", "serve", "--store", str(store),
           "--port", str(port), "--preset", args.preset, "--no-api"]
    out: dict[str, Any] = {"benchmark": "cold_start_fresh", "preset": args.preset,
                           "cpus": os.cpu_count(), "load_avg": round(os.getloadavg()[0], 2)}
    log_path = work / "serve.log"
    url = f"http://127.0.0.1:{port}"
    t0 = time.perf_counter()
    log = open(log_path, "w")  # noqa: SIM115
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"gridpulse serve exited with {proc.returncode}; see {log_path}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        out["health_s"] = round(time.perf_counter() - t0, 2)
        text = log_path.read_text(encoding="utf-8", errors="replace")
        admin = re.search(r"^\s+admin\s+(\S+)", text, re.M)
        if not admin:
            raise SystemExit(f"no demo admin password in {log_path}")
        from layers.store import open_store

        with open_store(str(store)) as s:
            token = accounts.sign_in(s, "admin", admin.group(1))
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
            ctx.add_cookies([{"name": COOKIE, "value": token, "url": url}])
            page = ctx.new_page()
            page.goto(url, timeout=TIMEOUT_S * 1000)
            out["first_map_s"] = (round(time.perf_counter() - t0, 2)
                                  if wait_for_map(page, timeout_s=TIMEOUT_S) else None)
            out["filling_banner_shown"] = page.locator("[data-testid='gp-demo-filling']").count() > 0
            deadline = time.perf_counter() + 600
            # the server may be part-way through a character when the log is read
            while (time.perf_counter() < deadline
                   and "complete" not in log_path.read_text(encoding="utf-8", errors="replace")):
                time.sleep(0.5)
            out["history_in_s"] = round(time.perf_counter() - t0, 2)
            t1 = time.perf_counter()  # the page reruns by itself: the banner goes
            while (time.perf_counter() - t1 < 60
                   and page.locator("[data-testid='gp-demo-filling']").count() > 0):
                time.sleep(0.2)
            out["banner_gone_s"] = round(time.perf_counter() - t0, 2)
            out["banner_left"] = page.locator("[data-testid='gp-demo-filling']").count() > 0
            browser.close()
        out["serve_rss_mb_at_end"] = rss_mb(proc.pid)
        out["log"] = [ln for ln in log_path.read_text().splitlines() if "password" not in ln.lower()
                      and not re.match(r"^\s+\S+\s+\S{8,}\s", ln)][-8:]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        shutil.rmtree(work, ignore_errors=True)
    out["load_avg_end"] = round(os.getloadavg()[0], 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store", type=Path, nargs="?")
    ap.add_argument("--tree", type=Path, default=ROOT, help="GridPulse checkout to serve from")
    ap.add_argument("--pages", nargs="*", default=list(PAGES))
    ap.add_argument("--quiet-s", type=float, default=1.5)
    ap.add_argument("--fresh", action="store_true", help="gridpulse serve on an empty store")
    ap.add_argument("--preset", default="full", help="demo preset of --fresh")
    ap.add_argument("--refresh-s", type=float, default=0.0,
                    help="after the warm pass, keep the wall open this long (> its 30 s refresh) "
                         "and report the fragments' server seconds per refresh")
    ap.add_argument("--sessions", type=int, default=0,
                    help="after the passes, open this many sessions at once (each page in turn) "
                         "and report the server's memory with all of them open")
    args = ap.parse_args()
    if not args.fresh and args.store is None:
        ap.error("give STORE, or --fresh")
    result = fresh(args) if args.fresh else pages(args)
    print(json.dumps(result, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
