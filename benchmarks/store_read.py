"""Read path of the large append-only layers on the GeoPackage store, by access path.

On a demo store (``gridpulse demo --preset full``: 2.65 M patrol fixes, 1.87 M events,
300 k incidents), reads one time window of each large layer through ``Store.read(...,
between=...)`` three ways, in the same run, interleaved:

* ``index``: follow the column's index to the rows, then sort by fid (the read before
  issue 14; forced with ``SCAN_FACTOR = 0``);
* ``scan``: a plain scan of the rowid range that holds the matches (``SCAN_FACTOR = inf``);
* ``auto``: what ``read`` chooses (:data:`layers._gpkg.SCAN_FACTOR`).

Beside them, for the patrol fixes of the biggest day: the raw ``pyogrio.read_arrow`` of the
same SQL (no pandas, no geometries) and a ``sqlite3`` fetch decoded with ``shapely.from_wkb``.
Each figure is the best of ``--repeat`` runs. ``load_avg`` is the 1-minute load at the start.

Run: ``.venv/bin/python benchmarks/store_read.py STORE.gpkg [--repeat N]``; prints JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyogrio
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from layers import _gpkg  # noqa: E402
from layers.store import open_store  # noqa: E402

TIME_COLUMN = {"patrol_points": "time", "incident_events": "time", "incidents": "requested_datetime"}
COLUMNS = {"patrol_points": ["worker_id", "time", "accuracy_m"],
           "incident_events": ["service_request_id", "time", "action", "to_stage"],
           "incidents": None}


def best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def windows(path: Path, layer: str) -> list[tuple[str, pd.Timestamp, pd.Timestamp]]:
    """The biggest and a typical day (each with the CLI's one-hour margins), a week, a month."""
    col = TIME_COLUMN[layer]
    with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True) as conn:
        days = conn.execute(f'SELECT substr("{col}", 1, 10) AS d, count(*) FROM "{layer}" '
                            "GROUP BY d ORDER BY 2 DESC").fetchall()
    big = pd.Timestamp(days[0][0])
    typical = pd.Timestamp(days[len(days) // 2][0])
    hour = pd.Timedelta(hours=1)
    last = max(pd.Timestamp(d) for d, _ in days)
    return [("biggest_day", big - hour, big + pd.Timedelta(days=1) + hour),
            ("typical_day", typical - hour, typical + pd.Timedelta(days=1) + hour),
            ("last_week", last - pd.Timedelta(days=6), last + pd.Timedelta(days=1)),
            ("last_30_days", last - pd.Timedelta(days=29), last + pd.Timedelta(days=1))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("store", type=Path)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--layers", nargs="*", default=list(TIME_COLUMN))
    args = ap.parse_args()
    out: dict[str, Any] = {"store": str(args.store), "load_avg": os.getloadavg()[0], "reads": []}
    store = open_store(str(args.store))
    default = _gpkg.SCAN_FACTOR
    for layer in args.layers:
        col = TIME_COLUMN[layer]
        for label, lo, hi in windows(args.store, layer):
            row: dict[str, Any] = {"layer": layer, "window": label, "from": str(lo), "to": str(hi)}
            frames = {}
            for name, factor in (("index", 0.0), ("scan", math.inf), ("auto", default)):
                _gpkg.SCAN_FACTOR = factor
                try:
                    secs, df = best(lambda layer=layer, col=col, lo=lo, hi=hi: store.read(
                        layer, columns=COLUMNS[layer], between={col: (lo, hi)}), args.repeat)
                finally:
                    _gpkg.SCAN_FACTOR = default
                row[f"{name}_s"] = round(secs, 3)
                frames[name] = df
            row["rows"] = len(frames["auto"])
            row["same_rows"] = bool(frames["index"].equals(frames["scan"])
                                    and frames["index"].equals(frames["auto"]))
            with sqlite3.connect(f"{args.store.as_uri()}?mode=ro", uri=True) as conn:
                n, first, last = conn.execute(
                    f'SELECT count(*), min(fid), max(fid) FROM "{layer}" WHERE "{col}" >= ? AND "{col}" < ?',
                    (lo.isoformat(), hi.isoformat())).fetchone()
            row["rows_per_match_in_range"] = round((last - first + 1) / max(n, 1), 2)
            row["chose"] = "scan" if (last - first + 1) <= default * n else "index"
            out["reads"].append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    # the peers for the biggest day of fixes: raw Arrow and sqlite3 + shapely.from_wkb
    _, lo, hi = windows(args.store, "patrol_points")[0]
    cond = f"time >= '{lo.isoformat()}' AND time < '{hi.isoformat()}'"
    sql = f"SELECT geom, worker_id, time, accuracy_m FROM patrol_points NOT INDEXED WHERE {cond} ORDER BY fid"
    secs, (_, table) = best(lambda: pyogrio.read_arrow(args.store, sql=sql, datetime_as_string=True), args.repeat)
    out["biggest_day_fixes_read_arrow_s"] = round(secs, 3)

    def sqlite_wkb() -> int:
        with sqlite3.connect(f"{args.store.as_uri()}?mode=ro", uri=True) as conn:
            rows = conn.execute(sql).fetchall()
        blobs = [r[0] for r in rows]
        # GeoPackage blob: 8-byte header + envelope (flags bits 1-3) + WKB
        env = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}
        wkb = np.array([b[8 + env[(b[3] >> 1) & 7]:] for b in blobs], dtype=object)
        geoms = shapely.from_wkb(wkb)
        frame = pd.DataFrame({"worker_id": [r[1] for r in rows],
                              "time": pd.to_datetime([r[2] for r in rows], format="ISO8601"),
                              "accuracy_m": [r[3] for r in rows]})
        return len(geoms) + len(frame)

    secs, _ = best(sqlite_wkb, args.repeat)
    out["biggest_day_fixes_sqlite3_from_wkb_s"] = round(secs, 3)
    out["biggest_day_fixes_rows"] = table.num_rows
    print(json.dumps(out, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
