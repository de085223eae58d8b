"""The read path of the drill-down reads (issue 14): same rows under the new indexes, on both engines.

A person drills into one worker's day of fixes (``where={"worker_id": w}, between={"time":
day}``) and into one case's events (``where={"service_request_id": c}, order_by="time"``).
The layers now carry an index on ``(worker_id, time)`` and on ``(service_request_id, time)``
(:data:`layers._store_common.EXTRA_INDEXES`) in place of the single-column ones. Each engine
holds the same rows twice: in a store laid out as before (the single-column indexes) and in
one laid out now; for random workers and windows both must return exactly the rows of
filtering the whole layer, in the same (``fid``) order, with the same dtypes. The fixes are
written in arrival order (every worker's fixes interleaved in time), the layout of fixes the
intake API appends, where the new index matters; a few are out of order (late uploads).
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from layers import _store_common as sc
from layers.store import Store, open_store

T0 = pd.Timestamp("2024-05-01 00:00:00")
WORKERS = ("W001", "W002", "W003", "W004")
N_FIXES = 400
N_CASES = 12
#: The indexes of the two layers before issue 14's read path (single columns).
OLD_EXTRA = {**sc.EXTRA_INDEXES, "incident_events": ("service_request_id",),
             "patrol_points": ("worker_id", "time")}


def fixes() -> gpd.GeoDataFrame:
    rng = np.random.default_rng(14)
    minutes = np.sort(rng.integers(0, 3 * 24 * 60, N_FIXES))  # three days, in arrival order
    late = rng.choice(N_FIXES, 20, replace=False)
    minutes[late] = rng.integers(0, 3 * 24 * 60, 20)  # late uploads land out of order
    acc = rng.random(N_FIXES) * 30
    acc[::13] = np.nan
    return gpd.GeoDataFrame({
        "fix_id": [f"F{i:04d}" for i in range(N_FIXES)],
        "worker_id": rng.choice(WORKERS, N_FIXES),
        "time": T0 + pd.to_timedelta(minutes, unit="min") + pd.to_timedelta(
            rng.integers(0, 1000, N_FIXES), unit="ms"),
        "accuracy_m": acc,
    }, geometry=shapely.points(118.77 + rng.random(N_FIXES) * 0.01,
                               32.06 + rng.random(N_FIXES) * 0.005), crs=4326)


def events() -> pd.DataFrame:
    rng = np.random.default_rng(41)
    n = 90
    case = rng.integers(0, N_CASES, n)
    return pd.DataFrame({
        "event_id": [f"E{i:04d}" for i in range(n)],
        "service_request_id": [f"C{c:03d}" for c in case],
        "action": "dispatch", "from_stage": "collected", "to_stage": "dispatched", "actor": "t",
        # times repeat within a case, so the order among equal times (fid) is checked too
        "time": T0 + pd.to_timedelta(rng.integers(0, 6, n) * 30, unit="min"),
        "note": [None if i % 4 else "备注" for i in range(n)],
    })


def _fill(store: Store) -> Store:
    store.write({"patrol_points": fixes(), "incident_events": events()}, actor="test")
    return store


@pytest.fixture(scope="module", params=["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)])
def stores(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[Store, Store]]:
    """``(laid out as before, laid out now)`` on one engine, holding the same rows."""
    made: list[Store] = []
    schemas: list[str] = []

    def new() -> Store:
        if request.param == "gpkg":
            s = open_store(str(tmp_path_factory.mktemp("rp") / "store.gpkg"))
        else:
            schema = f"t_{uuid.uuid4().hex[:12]}"
            schemas.append(schema)
            s = open_store(f"{request.getfixturevalue('pg_url')}?schema={schema}")
        made.append(s)
        return s

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sc, "EXTRA_INDEXES", OLD_EXTRA)
        before = _fill(new())
    after = _fill(new())
    yield before, after
    for s in made:
        s.close()
    if schemas:
        import psycopg

        with psycopg.connect(request.getfixturevalue("pg_url"), autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _index_columns(store: Store, layer: str) -> set[tuple[str, ...]]:
    """The attribute indexes of ``layer`` as column tuples, read from the engine's catalogue."""
    if store.url.startswith("postgresql"):
        import psycopg

        from layers._postgis import split_url

        conninfo, schema = split_url(store.url)
        with psycopg.connect(conninfo) as conn:
            rows = conn.execute(
                "SELECT array_agg(a.attname ORDER BY k.ord) FROM pg_index i "
                "JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace "
                "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) "
                "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum "
                "WHERE n.nspname = %s AND t.relname = %s GROUP BY i.indexrelid",
                (schema, layer)).fetchall()
        return {tuple(r[0]) for r in rows}
    with sqlite3.connect(store.url) as conn:
        names = [r[1] for r in conn.execute(f"PRAGMA index_list({sc.quote_ident(layer)})")]
        return {tuple(r[2] for r in conn.execute(f"PRAGMA index_info({sc.quote_ident(n)})"))
                for n in names}


def test_the_layers_carry_the_two_column_indexes(stores) -> None:
    before, after = stores
    now, old = _index_columns(after, "patrol_points"), _index_columns(before, "patrol_points")
    assert ("worker_id", "time") in now and ("worker_id",) not in now and ("time",) in now
    assert ("worker_id",) in old and ("worker_id", "time") not in old
    assert ("service_request_id", "time") in _index_columns(after, "incident_events")
    assert ("service_request_id",) in _index_columns(before, "incident_events")


def test_a_worker_day_on_the_geopackage_is_read_through_the_worker_time_index(stores) -> None:
    _, after = stores
    if after.url.startswith("postgresql"):
        pytest.skip("the PostgreSQL planner scans a table this small; the index is checked above")
    with sqlite3.connect(after.url) as conn:
        plan = " ".join(r[-1] for r in conn.execute(
            "EXPLAIN QUERY PLAN SELECT geom, worker_id, time FROM patrol_points WHERE worker_id = ? "
            "AND time >= ? AND time < ? ORDER BY fid", ("W001", "2024-05-02T00:00:00", "2024-05-03T00:00:00")))
    assert "patrol_points_worker_id_time (worker_id=? AND time>? AND time<?)" in plan


_WHOLE: dict[tuple[str, str], pd.DataFrame] = {}


def _whole(store: Store, layer: str) -> pd.DataFrame:
    """The whole layer as read (once per store: the stores of a module are not written again)."""
    key = (store.url, layer)
    if key not in _WHOLE:
        _WHOLE[key] = store.read(layer)
    return _WHOLE[key].copy()


def _expected(whole: pd.DataFrame, where: dict[str, Any], lo: Any, hi: Any) -> pd.DataFrame:
    keep = pd.Series(True, index=whole.index)
    for col, val in where.items():
        keep &= whole[col] == val
    if lo is not None:
        keep &= whole["time"] >= lo
    if hi is not None:
        keep &= whole["time"] < hi
    return whole[keep].reset_index(drop=True)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(worker=st.sampled_from([*WORKERS, "W999"]),
       start_min=st.one_of(st.none(), st.integers(-120, 3 * 24 * 60 + 60)),
       length_min=st.one_of(st.none(), st.integers(0, 2 * 24 * 60)),
       columns=st.sampled_from([None, ["worker_id", "time", "accuracy_m"], ["time"]]))
def test_a_worker_window_returns_the_same_rows_as_before(stores, worker, start_min, length_min,
                                                         columns) -> None:
    before, after = stores
    lo = None if start_min is None else T0 + pd.Timedelta(minutes=start_min)
    hi = None if length_min is None else (lo or T0) + pd.Timedelta(minutes=length_min)
    kw: dict[str, Any] = {"columns": columns, "where": {"worker_id": worker}, "between": {"time": (lo, hi)}}
    whole = _whole(after, "patrol_points")
    expected = _expected(whole, {"worker_id": worker}, lo, hi)
    expected = expected[[*(columns or sc.stored_columns(sc.SCHEMAS["patrol_points"])), "geometry"]]
    old, new = before.read("patrol_points", **kw), after.read("patrol_points", **kw)
    pd.testing.assert_frame_equal(new.reset_index(drop=True), old.reset_index(drop=True))
    pd.testing.assert_frame_equal(new.reset_index(drop=True), expected)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=st.integers(0, N_CASES), descending=st.booleans())
def test_a_case_history_returns_the_same_rows_as_before(stores, case, descending) -> None:
    before, after = stores
    srid = f"C{case:03d}"  # C012 has no events
    kw: dict[str, Any] = {"where": {"service_request_id": srid}, "order_by": "time",
                          "descending": descending}
    old, new = before.read("incident_events", **kw), after.read("incident_events", **kw)
    whole = _whole(after, "incident_events")
    whole["_fid"] = np.arange(len(whole))  # read order is fid order: the tie-break of equal times
    expected = whole[whole["service_request_id"] == srid].sort_values(
        ["time", "_fid"], ascending=[not descending, True], kind="stable").drop(columns="_fid")
    pd.testing.assert_frame_equal(new, old)
    pd.testing.assert_frame_equal(new.reset_index(drop=True), expected.reset_index(drop=True))
    assert len(new) == int((events()["service_request_id"] == srid).sum())


# -- the GeoPackage's small reads: sqlite3 instead of GDAL, the same frame ---------------------


def incidents_frame() -> gpd.GeoDataFrame:
    rng = np.random.default_rng(5)
    n = 60
    gaps = rng.random((6, n)) < 0.3
    geoms = shapely.points(118.77 + rng.random(n) * 0.01, 32.06 + rng.random(n) * 0.005)
    geoms[7] = None  # a case without a location
    return gpd.GeoDataFrame({
        "service_request_id": [f"S{i:03d}" for i in range(n)],
        "description": np.where(gaps[0], None, [f"描述 {i} 'q'" for i in range(n)]),
        "requested_datetime": T0 + pd.to_timedelta(rng.integers(0, 10 * 24 * 3600, n), unit="s")
        + pd.to_timedelta(np.where(rng.random(n) < 0.5, 0, rng.integers(1, 1000, n)), unit="ms"),
        "closed_datetime": pd.Series(T0 + pd.to_timedelta(rng.integers(0, 99, n), unit="h")).where(~gaps[1]),
        "category_code": "01", "item_code": "0101", "level": rng.integers(1, 4, n),
        "source": "patrol", "stage": rng.choice(["collected", "dispatched", "closed"], n),
        "grid_code": np.where(gaps[2], None, rng.choice(["320106001001001", "320106001001002"], n)),
        "reworks": pd.array(np.where(gaps[3], None, rng.integers(0, 3, n)), dtype="Int64"),
    }, geometry=geoms, crs=4326)


def roads_frame() -> gpd.GeoDataFrame:
    rng = np.random.default_rng(6)
    n = 30
    x, y = 118.77 + rng.random(n) * 0.01, 32.06 + rng.random(n) * 0.005
    lines = [shapely.LineString([(a, b), (a + 0.001, b + 0.0005)]) for a, b in zip(x, y, strict=True)]
    lines[3] = shapely.LineString()  # an empty line: GDAL decodes it, the small read steps aside
    return gpd.GeoDataFrame({
        "id": [f"R{i:03d}" for i in range(n)], "kind": rng.choice(["primary", "footway"], n),
        "name": np.where(rng.random(n) < 0.3, None, [f"路{i}" for i in range(n)]),
        "walkable": pd.array(np.where(rng.random(n) < 0.2, None, rng.random(n) < 0.5), dtype="boolean"),
    }, geometry=lines, crs=4326)


@pytest.fixture(scope="module")
def small_reads(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    store = open_store(str(tmp_path_factory.mktemp("small") / "store.gpkg"))
    store.write({"patrol_points": fixes(), "incident_events": events(),
                 "incidents": incidents_frame(), "roads": roads_frame()}, actor="test")
    yield store
    store.close()


def _both(store: Store, layer: str, kw: dict[str, Any], *, small_rows: int | None = None
          ) -> tuple[pd.DataFrame, pd.DataFrame]:
    from layers import _gpkg

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_gpkg, "SMALL_READ_ROWS", 0)
        gdal = store.read(layer, **kw)
        if small_rows is not None:
            mp.setattr(_gpkg, "SMALL_READ_ROWS", small_rows)
        else:
            mp.undo()
        return gdal, store.read(layer, **kw)


_READS = st.one_of(
    st.tuples(st.just("incidents"), st.fixed_dictionaries({
        "where": st.sampled_from([{"stage": "closed"}, {"grid_code": None}, {"stage": ["collected", "closed"]},
                                  {"grid_code": "320106001001002"}, {"stage": "nope"}]),
        "columns": st.sampled_from([None, ["service_request_id", "reworks", "closed_datetime"], []]),
        "order_by": st.sampled_from([None, "requested_datetime", "reworks", "description"]),
        "limit": st.one_of(st.none(), st.integers(0, 70)),
        "descending": st.booleans()})),
    st.tuples(st.just("roads"), st.fixed_dictionaries({
        "where": st.sampled_from([{"walkable": True}, {"walkable": None}, {"kind": "footway"}]),
        "bbox": st.sampled_from([None, (118.771, 32.06, 118.776, 32.064)])})),
    st.tuples(st.just("patrol_points"), st.fixed_dictionaries({
        "where": st.sampled_from([{"worker_id": w} for w in WORKERS]),
        "bbox": st.sampled_from([None, (118.772, 32.061, 118.777, 32.0635)]),
        "between": st.sampled_from([{"time": (T0 + pd.Timedelta(days=1), T0 + pd.Timedelta(days=2))}, None])})),
    st.tuples(st.just("incident_events"), st.fixed_dictionaries({
        "where": st.sampled_from([{"service_request_id": f"C{c:03d}"} for c in range(N_CASES + 1)]),
        "order_by": st.sampled_from([None, "time", "note"])})),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(read=_READS, small_rows=st.sampled_from([None, 3]))
def test_a_small_read_by_sqlite3_is_the_frame_gdal_reads(small_reads, read, small_rows) -> None:
    layer, kw = read
    gdal, fast = _both(small_reads, layer, kw, small_rows=small_rows)
    assert type(fast) is type(gdal)
    pd.testing.assert_frame_equal(fast, gdal)
    if isinstance(gdal, gpd.GeoDataFrame):
        assert fast.crs == gdal.crs


def test_the_small_read_decodes_geopackage_blobs_and_steps_aside_for_empty_ones(small_reads) -> None:
    from layers._gpkg_sql import gpkg_geometries

    with sqlite3.connect(small_reads.url) as conn:
        blobs = [r[0] for r in conn.execute("SELECT geom FROM roads ORDER BY fid")]
        points = [r[0] for r in conn.execute("SELECT geom FROM incidents ORDER BY fid")]
    assert blobs[3][3] & 0x10  # GDAL flags the empty line
    assert gpkg_geometries(blobs) is None
    plain = gpkg_geometries([*blobs[:3], None])
    assert plain is not None and plain[-1] is None
    assert shapely.equals_exact(plain[:3], np.asarray(roads_frame().geometry.values[:3]), 0).all()
    got = gpkg_geometries(points)
    assert got is not None and got[7] is None
    want = np.asarray(incidents_frame().geometry.values)
    keep = np.arange(len(want)) != 7
    assert shapely.equals_exact(got[keep], want[keep], 0).all()
