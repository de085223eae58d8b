"""PostGIS bulk paths: write the full demo district, read a million points, CSV vs binary COPY.

The layers of a demo GeoPackage (``gridpulse demo --preset full``) are read once, then written
into a fresh PostGIS schema by ``Store.write`` (one transaction, every layer) and read back,
once per transfer format of :mod:`layers._postgis` (``_COPY_FORMAT``: ``csv``, the text COPY
the engine had before issue 14, and ``binary``), in the same run, alternating. Reads: the
first million patrol fixes (``limit``), all incidents, and one day of fixes. Each read
figure is the best of ``--repeat`` runs; the frames of both formats are compared.

Run: ``GRIDPULSE_TEST_PG=postgresql://... .venv/bin/python benchmarks/postgis_bulk.py STORE.gpkg``;
prints JSON (``load_avg`` is the 1-minute load average at the start).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from layers import _postgis  # noqa: E402
from layers.store import open_store  # noqa: E402


def timed(fn: Any, repeat: int = 1) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def read_only(base: str, schema: str, formats: list[str], repeat: int, out: dict[str, Any]) -> None:
    """Reads only, from a schema written before: formats alternate within each repeat."""
    url = f"{base}{'&' if '?' in base else '?'}schema={schema}"
    with open_store(url) as pg:
        day = pd.Timestamp(pg.read("patrol_points", columns=["time"], limit=1)["time"].iloc[0]).floor("D")
        reads = {
            "read_1m_fixes": lambda: pg.read("patrol_points", limit=1_000_000),
            "read_all_incidents": lambda: pg.read("incidents"),
            "read_one_day_fixes": lambda: pg.read(
                "patrol_points", columns=["worker_id", "time", "accuracy_m"],
                between={"time": (day, day + pd.Timedelta(days=1))}),
        }
        for name, fn in reads.items():
            frames = {}
            for fmt in formats:
                out["runs"].setdefault(fmt, {})
            best_s = {fmt: float("inf") for fmt in formats}
            for _ in range(repeat):
                for fmt in formats:
                    _postgis._COPY_FORMAT = fmt
                    secs, frames[fmt] = timed(fn)
                    best_s[fmt] = min(best_s[fmt], secs)
            for fmt in formats:
                out["runs"][fmt][f"{name}_s"] = round(best_s[fmt], 2)
                out["runs"][fmt][f"{name}_rows"] = len(frames[fmt])
            if len(frames) == 2:
                a, b = frames.values()
                out.setdefault("same_frames", {})[name] = bool(a.equals(b))
            print(json.dumps({name: best_s}), file=sys.stderr, flush=True)
    print(json.dumps(out, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("store", type=Path)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--formats", nargs="*", default=["csv", "binary"])
    ap.add_argument("--read-schema", default=None,
                    help="skip the writes; read (both formats, alternating) from this existing schema")
    args = ap.parse_args()
    base = os.environ["GRIDPULSE_TEST_PG"]
    out: dict[str, Any] = {"load_avg": os.getloadavg()[0], "runs": {}}
    if args.read_schema:
        read_only(base, args.read_schema, args.formats, args.repeat, out)
        return
    t0 = time.perf_counter()
    with open_store(str(args.store)) as src:
        layers = {name: src.read(name) for name in src.layer_names()}
    out["gpkg_read_all_s"] = round(time.perf_counter() - t0, 1)
    out["rows"] = {k: len(v) for k, v in layers.items()}
    day = pd.Timestamp(layers["patrol_points"]["time"].dt.floor("D").value_counts().idxmax())
    frames: dict[str, dict[str, pd.DataFrame]] = {}
    for fmt in args.formats:
        schema = f"bench_{fmt}_{uuid.uuid4().hex[:8]}"
        url = f"{base}{'&' if '?' in base else '?'}schema={schema}"
        _postgis._COPY_FORMAT = fmt
        run: dict[str, Any] = {}
        try:
            with open_store(url) as pg:
                run["write_full_demo_s"] = round(timed(lambda pg=pg: pg.write(layers))[0], 1)
                reads = {
                    "read_1m_fixes": lambda pg=pg: pg.read("patrol_points", limit=1_000_000),
                    "read_all_incidents": lambda pg=pg: pg.read("incidents"),
                    "read_biggest_day_fixes": lambda pg=pg: pg.read(
                        "patrol_points", columns=["worker_id", "time", "accuracy_m"],
                        between={"time": (day, day + pd.Timedelta(days=1))}),
                }
                frames[fmt] = {}
                for name, fn in reads.items():
                    secs, df = timed(fn, args.repeat)
                    run[f"{name}_s"] = round(secs, 2)
                    run[f"{name}_rows"] = len(df)
                    frames[fmt][name] = df
        finally:
            with psycopg.connect(_postgis.split_url(url)[0], autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        out["runs"][fmt] = run
        print(json.dumps({fmt: run}), file=sys.stderr, flush=True)
    if len(frames) == 2:
        a, b = frames.values()
        out["same_frames"] = {k: bool(a[k].equals(b[k])) for k in a}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
