"""``gridpulse api --workers 2``: two uvicorn processes behind one port, on the real engines.

The same ``Idempotency-Key`` sent at once to both processes (a client retrying while its
first attempt still runs) still makes one case, and a fixes batch sent twice is stored once:
the keys and fix ids are claimed in the store, not in a process.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import argon2
import httpx
import pytest

from tests._intake_world import IN_A, fill
from tests._servers import http_server

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(params=["gpkg", "postgis"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, dict, str]]:
    from layers import accounts
    from layers.store import open_store

    if request.param == "gpkg":
        url = str(tmp_path / "store.gpkg")
        schema = None
    else:
        pg = os.environ.get("GRIDPULSE_TEST_PG")
        if not pg:
            pytest.skip("GRIDPULSE_TEST_PG not set")
        schema = f"t_workers_{uuid.uuid4().hex[:8]}"
        url = f"{pg}?schema={schema}"
    saved = accounts.HASHER
    accounts.HASHER = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    try:
        with open_store(url) as s:
            tokens = fill(s)
    finally:
        accounts.HASHER = saved
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDPULSE_")}
    env.update(PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "gridpulse", "api", "--store", url, "--port", str(port),
           "--workers", "2"]
    try:
        # two processes importing the stack on a busy machine: up to 240 s to answer; the
        # whole process group is stopped after (tests/_servers.py says why)
        with http_server(cmd, port=port, env=env, cwd=ROOT, log=tmp_path / "api.log",
                         timeout_s=240) as api:
            yield api, tokens, url
    finally:
        if schema is not None:
            import psycopg

            with psycopg.connect(url.split("?")[0], autocommit=True) as conn:
                conn.execute("SET lock_timeout = '60s'")  # fail, never hang, if one is left
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_two_workers_share_keys_and_fix_ids_through_the_store(served) -> None:
    from layers.store import open_store

    api, tok, url = served
    head = {"Authorization": f"Bearer {tok['hotline']}", "Accept-Language": "en"}
    body = {"service_code": "0101", "lat": IN_A[1], "long": IN_A[0], "description": "垃圾"}
    with cf.ThreadPoolExecutor(8) as pool:  # fresh connections: both processes take some
        answers = list(pool.map(lambda _: httpx.post(
            f"{api}/open311/v2/requests.json", json=body, timeout=60,
            headers={**head, "Idempotency-Key": "same-key"}), range(8)))
    ok = [r for r in answers if r.status_code == 201]
    assert ok and all(r.status_code in (201, 409) for r in answers)
    assert len({r.json()[0]["service_request_id"] for r in ok}) == 1
    fixes = {"fixes": [{"worker_id": "w1", "time": f"2026-12-03T08:00:0{i}+08:00",
                        "lat": IN_A[1], "long": IN_A[0], "accuracy_m": 5} for i in range(5)]}
    with cf.ThreadPoolExecutor(4) as pool:
        posted = list(pool.map(lambda _: httpx.post(f"{api}/api/v1/fixes", json=fixes,
                                                    headers=head, timeout=60), range(4)))
    assert all(r.status_code == 201 for r in posted), [r.text for r in posted]
    assert sum(r.json()["accepted"] for r in posted) == 5, [r.json() for r in posted]
    with open_store(url) as s:
        assert s.count("incidents") == 1
        assert s.count("patrol_points") == 5


def test_serve_and_the_benchmark_start_the_workers_asked_for() -> None:
    """``gridpulse serve --api-workers N`` and ``gridpulse api --workers N`` reach uvicorn."""
    from gridpulse.api import uvicorn_command
    from gridpulse.cli import build_parser

    one, two = uvicorn_command(port=8502), uvicorn_command(port=8502, workers=2)
    assert "--workers" not in one
    assert two[two.index("--workers") + 1] == "2" and two[:len(one)] == one
    args = build_parser().parse_args(["serve", "--api-workers", "2"])
    assert args.api_workers == 2
    assert build_parser().parse_args(["serve"]).api_workers == 1
