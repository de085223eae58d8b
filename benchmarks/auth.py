"""Sign-in and permission costs: what signing in and checking on every page run take.

    .venv/bin/python benchmarks/auth.py [--repeat 20] [--pg postgresql://...]

Prints JSON:

* ``argon2``: hashing and verifying one password with GridPulse's parameters
  (:data:`layers.accounts.HASHER`: Argon2id, OWASP's m=19 MiB, t=2, p=1) and with argon2-cffi's
  default (t=3, m=64 MiB, p=4, RFC 9106 "low memory"); the peer is a plain salted SHA-256
  (what not to use: about a million times cheaper to guess);
* ``sign_in``: :func:`layers.accounts.sign_in` end to end (read the account, verify, reset the
  counter, write a session) on a GeoPackage and, with ``--pg``, PostGIS;
* ``page_check``: what the dashboard does on every run before drawing a page: resolve the
  session token (one keyed read, a ``last_seen`` write at most once a minute) plus the
  page permission (:func:`layers.permissions.pages`);
* ``scope_filter``: :func:`layers.permissions.filter_frame` over the small demo's incidents
  for a grid worker and a department handler, against the frame's own boolean indexing.

Medians of ``--repeat`` runs, in milliseconds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from layers import accounts  # noqa: E402
from layers.permissions import Account, can, filter_frame, pages  # noqa: E402
from layers.store import open_store  # noqa: E402


def _ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return round(statistics.median(times), 3)


def _engine(url: str, repeat: int) -> dict[str, float]:
    with open_store(url) as store:
        user = f"bench{uuid.uuid4().hex[:6]}"
        accounts.create_account(store, user, "bench-password", role="analyst", actor="bench")
        sign_in = _ms(lambda: accounts.sign_in(store, user, "bench-password"), repeat)
        token = accounts.sign_in(store, user, "bench-password")
        acc = accounts.resolve_session(store, token)

        def page_run() -> None:
            a = accounts.resolve_session(store, token)
            assert a is not None and "incidents" in pages(a)

        check = _ms(page_run, repeat * 5)
        perm = _ms(lambda: [can(acc, f"view.{p}") for p in ("explorer", "incidents", "data")],
                   repeat * 50)
    return {"sign_in_ms": sign_in, "page_check_ms": check, "can_x3_ms": perm}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--pg", default=os.environ.get("GRIDPULSE_TEST_PG"))
    args = ap.parse_args()
    out: dict[str, object] = {"repeat": args.repeat}
    h = accounts.HASHER
    hashed = h.hash("bench-password")
    import argon2

    default = argon2.PasswordHasher()
    default_hash = default.hash("bench-password")
    salt = os.urandom(16)
    out["argon2"] = {
        "params": {"time_cost": h.time_cost, "memory_kib": h.memory_cost,
                   "parallelism": h.parallelism},
        "hash_ms": _ms(lambda: h.hash("bench-password"), args.repeat),
        "verify_ms": _ms(lambda: h.verify(hashed, "bench-password"), args.repeat),
        "argon2_cffi_default_verify_ms": _ms(
            lambda: default.verify(default_hash, "bench-password"), max(args.repeat // 2, 3)),
        "peer_sha256_ms": _ms(lambda: hashlib.sha256(salt + b"bench-password").digest(),
                              args.repeat * 100),
    }
    with tempfile.TemporaryDirectory() as d:
        out["gpkg"] = _engine(str(Path(d) / "bench.gpkg"), args.repeat)
        from data.demo import load_into

        with open_store(str(Path(d) / "demo.gpkg")) as store:
            load_into(store, "small", progress=lambda *a: None)
            inc = store.read("incidents", columns=["service_request_id", "grid_code", "department"])
        grid = str(inc["grid_code"].iloc[0])
        worker = Account("w", role="grid_worker_full", scope_code=grid)
        dept = Account("d", role="department", scope_code=grid[:6], department="water")
        out["scope_filter"] = {
            "rows": len(inc),
            "grid_worker_ms": _ms(lambda: filter_frame(worker, inc, "incidents"), args.repeat * 5),
            "department_ms": _ms(lambda: filter_frame(dept, inc, "incidents"), args.repeat * 5),
            "peer_bool_index_ms": _ms(lambda: inc[inc["grid_code"] == grid], args.repeat * 5),
        }
    if args.pg:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        try:
            out["postgis"] = _engine(f"{args.pg}?schema={schema}", args.repeat)
        finally:
            import psycopg

            with psycopg.connect(args.pg, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
