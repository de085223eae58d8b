"""City preset on PostGIS: generate and load several districts (binary COPY), then the pages'
aggregations in SQL.

    GRIDPULSE_TEST_PG=postgresql://... .venv/bin/python benchmarks/city_load.py \
        [--districts 2] [--size medium] [--incidents-per-household 4.0] [--keep]

Loads :func:`data.city.city_spec` into a fresh schema of the PostGIS server with
:func:`data.city.load_city` (district by district: the first replaces, the others append; every
layer by binary COPY), and reports rows, generation and write seconds, and rows written per
second. Then times the aggregations the pages push into SQL on the loaded city: incidents per
H3 cell (res 8 and 9, and by category), one day of GPS fixes counted, and the incidents of one
grid. The full city (``--districts 8 --size full``) is ~10 M incidents and ~10 M fixes a day:
hours on a laptop; the medium figure is what the docs quote. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd  # noqa: E402
import psycopg  # noqa: E402

from data.city import city_spec, load_city  # noqa: E402
from data.demo import DEMO_ANCHOR  # noqa: E402
from layers.store import open_store  # noqa: E402


def timed(fn, repeat: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return round(best, 3), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--districts", type=int, default=2)
    ap.add_argument("--size", default="medium")
    ap.add_argument("--incidents-per-household", type=float, default=4.0)
    ap.add_argument("--keep", action="store_true", help="keep the schema (print its URL)")
    args = ap.parse_args()
    base = os.environ.get("GRIDPULSE_TEST_PG")
    if not base:
        raise SystemExit("set GRIDPULSE_TEST_PG to a PostGIS server URL")
    spec = city_spec(districts=args.districts, size=args.size,
                     incidents_per_household=args.incidents_per_household)
    schema = f"city_{uuid.uuid4().hex[:10]}"
    url = f"{base}?schema={schema}"
    out: dict[str, object] = {"benchmark": "city_load", "districts": args.districts,
                              "size": args.size,
                              "incidents_per_household": args.incidents_per_household,
                              "cpus": os.cpu_count(), "load_avg": round(os.getloadavg()[0], 2)}
    try:
        with open_store(url) as store:
            res = load_city(store, spec, progress=lambda i, n, rows: print(
                f"district {i}/{n}: {sum(rows.values()):,} rows", file=sys.stderr, flush=True))
            out["load"] = res
            day = pd.Timestamp(DEMO_ANCHOR).normalize() - pd.Timedelta(days=1)
            grid = store.read("grids", columns=["code"])["code"].iloc[0]
            q: dict[str, object] = {}
            q["h3_counts_incidents_res8_s"], cells = timed(lambda: store.h3_counts("incidents", res=8))
            q["cells_res8"] = len(cells)
            q["h3_counts_incidents_res9_by_category_s"], _ = timed(
                lambda: store.h3_counts("incidents", res=9, by=["category_code"]))
            q["count_fixes_one_day_s"], n = timed(lambda: store.count(
                "patrol_points", between={"time": (day, day + pd.Timedelta(days=1))}))
            q["fixes_one_day"] = n
            q["read_incidents_one_grid_s"], df = timed(lambda: store.read(
                "incidents", where={"grid_code": grid}))
            q["incidents_one_grid"] = len(df)
            out["queries"] = q
    finally:
        if args.keep:
            out["url"] = url
        else:
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    out["load_avg_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
