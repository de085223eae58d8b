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
from collections.abc import Callable, Sequence
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



# ------------------------------------------------------------------------------------------------
# Layouts (issue 14, "a read path that matches the data"): the typical raw reads of the large
# append-only layers under the current layout and its alternatives, on each engine.
# ------------------------------------------------------------------------------------------------

FIX_COLS = ["worker_id", "time", "accuracy_m"]
#: Indexes tried on the copy of the GeoPackage (never on the original).
GPKG_TRIAL_INDEXES = {
    "worker_time": 'CREATE INDEX IF NOT EXISTS "bench_worker_time" ON patrol_points (worker_id, time)',
    "covering_time": 'CREATE INDEX IF NOT EXISTS "bench_cov_time" ON patrol_points '
                     "(time, worker_id, accuracy_m, geom)",
    "covering_worker_time": 'CREATE INDEX IF NOT EXISTS "bench_cov_worker_time" ON patrol_points '
                            "(worker_id, time, accuracy_m, geom)",
}
TRIAL_INDEX_NAME = {"worker_time": "bench_worker_time", "covering_time": "bench_cov_time",
                    "covering_worker_time": "bench_cov_worker_time"}


def scenarios(path: Path) -> dict[str, dict[str, Any]]:
    """The reads people wait for, with their parameters taken from the store itself."""
    from layers.summaries import day_window

    with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True) as conn:
        days = conn.execute("SELECT substr(time, 1, 10) AS d, count(*) FROM patrol_points "
                            "GROUP BY d ORDER BY d").fetchall()
        typical = pd.Timestamp(sorted(days, key=lambda r: r[1])[len(days) // 2][0])
        lo, hi = day_window(typical)
        worker = conn.execute("SELECT worker_id, count(*) FROM patrol_points WHERE time >= ? AND "
                              "time < ? GROUP BY worker_id ORDER BY 2 DESC LIMIT 1",
                              (dt(lo), dt(hi))).fetchone()[0]
        last_inc = pd.Timestamp(conn.execute("SELECT max(requested_datetime) FROM incidents").fetchone()[0])
        case = conn.execute("SELECT service_request_id FROM incident_events GROUP BY 1 "
                            "ORDER BY count(*) DESC LIMIT 1").fetchone()[0]
        grid = conn.execute("SELECT r.minx, r.maxx, r.miny, r.maxy FROM workers w JOIN grids g ON "
                            "g.code = w.grid_code JOIN rtree_grids_geom r ON r.id = g.fid "
                            "WHERE w.id = ?", (worker,)).fetchone()
    out = _scenario_set(days, lo, hi, worker, last_inc, case)
    out["fixes_grid_day"] = {"layer": "patrol_points", "columns": FIX_COLS, "between": {"time": (lo, hi)},
                             "bbox": (grid[0], grid[2], grid[1], grid[3])}
    return out


def _scenario_set(days: list[Any], lo: pd.Timestamp, hi: pd.Timestamp, worker: Any,
                  last_inc: pd.Timestamp, case: Any) -> dict[str, dict[str, Any]]:
    """The reads both engines are measured on, from what :func:`scenarios` / :func:`pg_scenarios`
    found in the store (days with fixes, a typical day's window, its busiest worker, the newest
    case time, the case with most events)."""
    last = pd.Timestamp(days[-1][0])
    week_hi = last_inc.normalize() + pd.Timedelta(days=1)
    return {
        "fixes_worker_day": {"layer": "patrol_points", "columns": FIX_COLS,
                             "where": {"worker_id": worker}, "between": {"time": (lo, hi)}},
        "fixes_day": {"layer": "patrol_points", "columns": FIX_COLS, "between": {"time": (lo, hi)}},
        "fixes_30_days": {"layer": "patrol_points", "columns": FIX_COLS,
                          "between": {"time": (last - pd.Timedelta(days=29),
                                               last + pd.Timedelta(days=1))}},
        "incidents_week": {"layer": "incidents", "columns": None,
                           "between": {"requested_datetime": (week_hi - pd.Timedelta(days=7), week_hi)}},
        "case_events": {"layer": "incident_events", "columns": None,
                        "where": {"service_request_id": case}, "order_by": "time"},
    }


def dt(ts: pd.Timestamp) -> str:
    from layers._gpkg_sql import dt_text

    return dt_text(pd.Timestamp(ts))


def store_read(store: Any, sc_: dict[str, Any]) -> pd.DataFrame:
    kw = {k: v for k, v in sc_.items() if k != "layer"}
    return store.read(sc_["layer"], **kw)


def gpkg_sql(path: Path, sc_: dict[str, Any], hint: str) -> pd.DataFrame:
    """The scenario as one SQLite statement with an access-path ``hint``, read like ``Store.read``."""
    from layers import _store_common as stc
    from layers._gpkg_sql import inline
    from layers.schema import SCHEMAS

    layer = sc_["layer"]
    cols = sc_["columns"] or stc.stored_columns(SCHEMAS[layer])
    cond, params = stc.compile_filters(layer, where=sc_.get("where"), between=sc_.get("between"),
                                       placeholder="?", datetime_param=dt)
    if sc_.get("bbox") is not None and not hint.startswith("rtree"):
        minx, miny, maxx, maxy = sc_["bbox"]
        cond += f" AND ST_MaxX(geom) >= {minx} AND ST_MinX(geom) <= {maxx} " \
                f"AND ST_MaxY(geom) >= {miny} AND ST_MinY(geom) <= {maxy}"
    elif sc_.get("bbox") is not None:
        minx, miny, maxx, maxy = sc_["bbox"]
        cond += (f" AND fid IN (SELECT id FROM rtree_{layer}_geom WHERE maxx >= {minx} AND "
                 f"minx <= {maxx} AND maxy >= {miny} AND miny <= {maxy})")
    time_col = next(iter(sc_.get("between") or {"time": None}))
    access = {"time_index": f"INDEXED BY {layer}_{time_col}", "worker_index": f"INDEXED BY {layer}_worker_id",
              "table_scan": "NOT INDEXED", "rtree": "NOT INDEXED"}.get(hint, "")
    if hint in TRIAL_INDEX_NAME:
        access = f"INDEXED BY {TRIAL_INDEX_NAME[hint]}"
    order = f'"{sc_["order_by"]}", fid' if sc_.get("order_by") else "fid"
    sql = (f"SELECT geom, {', '.join(chr(34) + c + chr(34) for c in cols)} FROM {layer} {access} "
           f"WHERE {cond} ORDER BY {order}")
    df = _gpkg._read_frame(path, sql=inline(sql, params))
    df = df[[*cols, "geometry"]]
    return stc.conform(df.set_crs(4326) if df.crs is None else df, layer)


def gdal_read(store: Any, sc_: dict[str, Any]) -> pd.DataFrame:
    """``Store.read`` with the small-read path off (every read through GDAL, as before)."""
    default = _gpkg.SMALL_READ_ROWS
    _gpkg.SMALL_READ_ROWS = 0
    try:
        return store_read(store, sc_)
    finally:
        _gpkg.SMALL_READ_ROWS = default


def gpkg_rowid_range(path: Path, sc_: dict[str, Any]) -> pd.DataFrame:
    """The plain scan of the rowid range that holds the matches (the time index gives the range)."""
    store = open_store(str(path))
    default = _gpkg.SCAN_FACTOR
    _gpkg.SCAN_FACTOR = math.inf
    try:
        return store_read(store, sc_)
    finally:
        _gpkg.SCAN_FACTOR = default


def build_side_stores(path: Path, workdir: Path) -> dict[str, Any]:
    """A time-ordered copy of the fixes (GeoPackage), GeoParquet and DuckDB side stores."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    built: dict[str, Any] = {}
    sorted_gpkg = workdir / "fixes_time_ordered.gpkg"
    parquet = workdir / "fixes.parquet"
    duck = workdir / "fixes.duckdb"
    if sorted_gpkg.exists() and parquet.exists():
        return {"sorted_gpkg": sorted_gpkg, "parquet": parquet, "duckdb": duck if duck.exists() else None}
    store = open_store(str(path))
    t0 = time.perf_counter()
    fixes = store.read("patrol_points")
    fixes["fid"] = np.arange(1, len(fixes) + 1)  # the stored order (read in fid order)
    built["read_all_s"] = time.perf_counter() - t0
    order = np.argsort(fixes["time"].to_numpy(), kind="stable")
    by_time = fixes.iloc[order]
    t0 = time.perf_counter()
    target = open_store(str(sorted_gpkg))
    target.write({"patrol_points": by_time.drop(columns="fid")}, reset=True)
    built["write_time_ordered_gpkg_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    plain = pd.DataFrame(by_time.drop(columns="geometry"))
    plain["geometry"] = shapely.to_wkb(np.asarray(by_time.geometry.values))
    table = pa.Table.from_pandas(plain, preserve_index=False)
    pq.write_table(table, parquet, row_group_size=65_536, compression="zstd")
    built["write_parquet_s"] = time.perf_counter() - t0
    try:
        import duckdb

        t0 = time.perf_counter()
        with duckdb.connect(str(duck)) as con:
            con.execute(f"CREATE TABLE patrol_points AS SELECT * FROM read_parquet('{parquet}') ORDER BY time")
        built["write_duckdb_s"] = time.perf_counter() - t0
    except ImportError:
        duck = None
    print(json.dumps({k: round(v, 2) for k, v in built.items()}), file=sys.stderr, flush=True)
    return {"sorted_gpkg": sorted_gpkg, "parquet": parquet, "duckdb": duck}


def parquet_read(parquet: Path, sc_: dict[str, Any]) -> pd.DataFrame:
    """The fixes of a scenario from the time-ordered GeoParquet (row groups skipped by their
    time statistics), back in stored (fid) order, with the read dtypes."""
    import geopandas as gpd
    import pyarrow.parquet as pq

    from layers import _store_common as stc

    lo, hi = sc_["between"]["time"]
    filters = [("time", ">=", pd.Timestamp(lo)), ("time", "<", pd.Timestamp(hi))]
    if sc_.get("where"):
        filters.append(("worker_id", "=", sc_["where"]["worker_id"]))
    table = pq.read_table(parquet, columns=[*FIX_COLS, "geometry", "fid"], filters=filters)
    df = table.to_pandas().sort_values("fid", kind="stable").reset_index(drop=True)
    geoms = shapely.from_wkb(df.pop("geometry").to_numpy(dtype=object))
    df = gpd.GeoDataFrame(df[FIX_COLS], geometry=gpd.GeoSeries(geoms, crs=4326), crs=4326)
    return stc.conform(df, "patrol_points")


def duckdb_read(duck: Path, sc_: dict[str, Any]) -> pd.DataFrame:
    import duckdb
    import geopandas as gpd

    from layers import _store_common as stc

    lo, hi = sc_["between"]["time"]
    cond, params = "time >= ? AND time < ?", [pd.Timestamp(lo).to_pydatetime(), pd.Timestamp(hi).to_pydatetime()]
    if sc_.get("where"):
        cond += " AND worker_id = ?"
        params.append(sc_["where"]["worker_id"])
    with duckdb.connect(str(duck), read_only=True) as con:
        table = con.sql(f"SELECT worker_id, time, accuracy_m, geometry FROM patrol_points "
                        f"WHERE {cond} ORDER BY fid", params=params).to_arrow_table()
    df = table.to_pandas()
    geoms = shapely.from_wkb(df.pop("geometry").to_numpy(dtype=object))
    df = gpd.GeoDataFrame(df[FIX_COLS], geometry=gpd.GeoSeries(geoms, crs=4326), crs=4326)
    return stc.conform(df, "patrol_points")


def same(a: pd.DataFrame, b: pd.DataFrame, *, any_order: bool = False) -> bool:
    if any_order:
        keys = [c for c in a.columns if c != "geometry"]
        a = a.sort_values(keys, kind="stable").reset_index(drop=True)
        b = b.sort_values(keys, kind="stable").reset_index(drop=True)
    if len(a) != len(b) or list(a.columns) != list(b.columns):
        return False
    plain = [c for c in a.columns if c != "geometry"]
    ok = a[plain].reset_index(drop=True).equals(b[plain].reset_index(drop=True))
    if "geometry" in a.columns:
        ok = ok and bool(np.all(shapely.equals_exact(np.asarray(a.geometry.values),
                                                     np.asarray(b.geometry.values), 0.0)))
    return ok


def gpkg_layouts(path: Path, workdir: Path, repeat: int,
                 only: Sequence[str] | None = None) -> dict[str, Any]:
    """Every scenario under every access path of the GeoPackage and the columnar side stores."""
    if path.resolve() == Path("/work/perf19/full.gpkg"):
        raise SystemExit("run the layouts on a copy: trial indexes are added to the file")
    with sqlite3.connect(path) as conn:
        t_idx = {}
        for name, ddl in GPKG_TRIAL_INDEXES.items():
            t0 = time.perf_counter()
            conn.execute(ddl)
            t_idx[name] = round(time.perf_counter() - t0, 2)
        conn.commit()
        sizes = dict(conn.execute("SELECT name, sum(pgsize) FROM dbstat WHERE name LIKE 'bench_%' "
                                  "OR name IN ('patrol_points', 'patrol_points_time', "
                                  "'patrol_points_worker_id') GROUP BY name").fetchall()) \
            if conn.execute("SELECT 1 FROM pragma_compile_options WHERE compile_options = "
                            "'ENABLE_DBSTAT_VTAB'").fetchone() else {}
    side = build_side_stores(path, workdir)
    store = open_store(str(path))
    sorted_store = open_store(str(side["sorted_gpkg"]))
    out: dict[str, Any] = {"index_build_s": t_idx, "sizes_mb": {k: round(v / 2**20, 1) for k, v in sizes.items()},
                           "scenarios": {}}
    for label, sc_ in scenarios(path).items():
        if only and label not in only:
            continue
        variants: dict[str, Callable[[], pd.DataFrame]] = {"store_read": lambda sc_=sc_: store_read(store, sc_)}
        if sc_.get("where") or sc_.get("bbox") is not None:  # a drill-down: before the sqlite3 small read
            variants["store_read_via_gdal"] = lambda sc_=sc_: gdal_read(store, sc_)
        if sc_["layer"] == "patrol_points":
            variants["time_index"] = lambda sc_=sc_: gpkg_sql(path, sc_, "time_index")
            if "where" in sc_:
                variants["worker_index"] = lambda sc_=sc_: gpkg_sql(path, sc_, "worker_index")
                variants["worker_time"] = lambda sc_=sc_: gpkg_sql(path, sc_, "worker_time")
                variants["covering_worker_time"] = lambda sc_=sc_: gpkg_sql(path, sc_, "covering_worker_time")
            else:
                variants["rowid_range"] = lambda sc_=sc_: gpkg_rowid_range(path, sc_)
                variants["covering_time"] = lambda sc_=sc_: gpkg_sql(path, sc_, "covering_time")
            if "bbox" in sc_:
                variants = {k: v for k, v in variants.items() if k in ("store_read", "time_index")}
                variants["rtree"] = lambda sc_=sc_: gpkg_sql(path, sc_, "rtree")
            else:
                variants["time_ordered_table"] = lambda sc_=sc_: store_read(sorted_store, sc_)
                variants["geoparquet"] = lambda sc_=sc_: parquet_read(side["parquet"], sc_)
                if side.get("duckdb"):
                    variants["duckdb"] = lambda sc_=sc_: duckdb_read(side["duckdb"], sc_)
        elif sc_["layer"] == "incidents":
            variants["time_index"] = lambda sc_=sc_: gpkg_sql(path, sc_, "time_index")
            variants["rowid_range"] = lambda sc_=sc_: gpkg_rowid_range(path, sc_)
            variants["table_scan"] = lambda sc_=sc_: gpkg_sql(path, sc_, "table_scan")
        row: dict[str, Any] = {}
        ref = None
        for name, fn in variants.items():
            secs, df = best(fn, repeat)
            if ref is None:
                ref = df
            row[name] = {"s": round(secs, 3), "rows": len(df),
                         "same_rows": same(ref, df, any_order=name == "time_ordered_table")}
        out["scenarios"][label] = row
        print(json.dumps({label: row}), file=sys.stderr, flush=True)
    return out


def pg_scenarios(url: str) -> dict[str, dict[str, Any]]:
    import psycopg

    from layers._postgis import split_url
    from layers.summaries import day_window

    conninfo, schema = split_url(url)
    with psycopg.connect(conninfo) as conn:
        conn.execute(f"SET search_path = {schema}, public")
        days = conn.execute("SELECT time::date AS d, count(*) FROM patrol_points GROUP BY d ORDER BY d").fetchall()
        typical = pd.Timestamp(sorted(days, key=lambda r: r[1])[len(days) // 2][0])
        lo, hi = day_window(typical)
        worker = conn.execute("SELECT worker_id FROM patrol_points WHERE time >= %s AND time < %s "
                              "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
                              (lo.to_pydatetime(), hi.to_pydatetime())).fetchone()[0]
        last_inc = pd.Timestamp(conn.execute("SELECT max(requested_datetime) FROM incidents").fetchone()[0])
        case = conn.execute("SELECT service_request_id FROM incident_events GROUP BY 1 "
                            "ORDER BY count(*) DESC LIMIT 1").fetchone()[0]
    return _scenario_set(days, lo, hi, worker, last_inc, case)


#: Physical layouts tried on PostGIS, in order (each step changes the tables of the medium demo).
PG_PHASES: list[tuple[str, list[str]]] = [
    ("btree_time", []),
    ("brin_time", ["CREATE INDEX IF NOT EXISTS bench_pp_time_brin ON patrol_points USING brin (time)",
                   "CREATE INDEX IF NOT EXISTS bench_inc_time_brin ON incidents USING brin (requested_datetime)",
                   "DROP INDEX IF EXISTS patrol_points_time", "DROP INDEX IF EXISTS incidents_requested_datetime",
                   "ANALYZE patrol_points", "ANALYZE incidents"]),
    ("cluster_time_brin", ["CREATE INDEX IF NOT EXISTS patrol_points_time ON patrol_points (time)",
                           "CLUSTER patrol_points USING patrol_points_time",
                           "DROP INDEX patrol_points_time", "ANALYZE patrol_points"]),
    ("cluster_time_btree", ["CREATE INDEX IF NOT EXISTS patrol_points_time ON patrol_points (time)",
                            "CREATE INDEX IF NOT EXISTS incidents_requested_datetime ON incidents (requested_datetime)",
                            "DROP INDEX bench_pp_time_brin", "DROP INDEX bench_inc_time_brin",
                            "ANALYZE patrol_points", "ANALYZE incidents"]),
    ("covering_worker_time", ["CREATE INDEX IF NOT EXISTS bench_pp_worker_time ON patrol_points "
                              "(worker_id, time) INCLUDE (accuracy_m, geom)",
                              "VACUUM ANALYZE patrol_points"]),
]


def pg_layouts(url: str, repeat: int) -> dict[str, Any]:
    """Every scenario through ``Store.read`` (ADBC binary COPY; CSV COPY beside it in the first
    layout) after each step of :data:`PG_PHASES`."""
    import psycopg

    from layers import _postgis
    from layers._postgis import split_url

    conninfo, schema = split_url(url)
    scen = pg_scenarios(url)
    store = open_store(url)
    out: dict[str, Any] = {"ddl_s": {}, "scenarios": {k: {} for k in scen}}
    refs: dict[str, pd.DataFrame] = {}
    for phase, ddl in PG_PHASES:
        t0 = time.perf_counter()
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f"SET search_path = {schema}, public")
            conn.execute("SET maintenance_work_mem = '256MB'")
            for stmt in ddl:
                conn.execute(stmt)
        out["ddl_s"][phase] = round(time.perf_counter() - t0, 2)
        store.close()
        for label, sc_ in scen.items():
            formats = ("binary", "csv") if phase == "btree_time" else ("binary",)
            for fmt in formats:
                _postgis._COPY_FORMAT = fmt
                try:
                    secs, df = best(lambda sc_=sc_: store_read(store, sc_), repeat)
                finally:
                    _postgis._COPY_FORMAT = "binary"
                refs.setdefault(label, df)
                name = phase if fmt == "binary" else f"{phase}_csv_copy"
                out["scenarios"][label][name] = {"s": round(secs, 3), "rows": len(df),
                                                 "same_rows": same(refs[label], df)}
        print(json.dumps({phase: {k: v.get(phase) for k, v in out["scenarios"].items()}}),
              file=sys.stderr, flush=True)
    return out

def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("store", type=Path)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--layers", nargs="*", default=list(TIME_COLUMN))
    ap.add_argument("--layouts", action="store_true",
                    help="the typical raw reads under every layout (adds trial indexes: a COPY of a store)")
    ap.add_argument("--workdir", type=Path, default=None, help="side stores of --layouts (default: beside STORE)")
    ap.add_argument("--scenarios", nargs="*", default=None, help="with --layouts: only these scenarios")
    ap.add_argument("--pg", default=None, help="with --layouts: a PostGIS store to try layouts on (changed!)")
    args = ap.parse_args()
    if args.layouts:
        out = {"store": str(args.store), "load_avg_start": os.getloadavg()}
        if str(args.store) != "-":
            out["gpkg"] = gpkg_layouts(args.store, args.workdir or args.store.parent, args.repeat,
                                       args.scenarios)
        if args.pg:
            out["postgis"] = pg_layouts(args.pg, args.repeat)
        out["load_avg_end"] = os.getloadavg()
        print(json.dumps(out, indent=1, ensure_ascii=False))
        return
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
