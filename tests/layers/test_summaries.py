"""Summary tables kept at write time (:mod:`layers.summaries`), on both engines.

Hand-drawn cases with known answers (incident counts per cell/category/week, open and overdue
per grid, hours in grid of a walk), the invariant that the incrementally kept summary equals a
rebuild from the whole layers after any sequence of appends and case actions (hypothesis), and
that a write or case action that fails leaves the summaries as they were.
"""

from __future__ import annotations

import contextlib
import itertools
import uuid
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geo import patrol
from layers import summaries as sm
from layers.errors import StoreError
from layers.store import RowUpdate, Store, open_store

G1, G2 = "320106001001001", "320106001001002"
#: Two grids side by side (each ~470 m x 555 m), and three workers: two on G1 (A/B), one on G2.
BOXES = {G1: (118.770, 32.050, 118.775, 32.055), G2: (118.775, 32.050, 118.780, 32.055)}
DAY = pd.Timestamp("2026-11-19")


def grids_frame() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"code": list(BOXES), "name": ["一", "二"], "kind": "comprehensive",
                             "community_code": "320106001001", "households": 400, "population": 1000},
                            geometry=[shapely.box(*b) for b in BOXES.values()], crs=4326)


def workers_frame() -> pd.DataFrame:
    return pd.DataFrame({"id": ["w1", "w2", "w3"], "name": ["甲", "乙", "丙"],
                         "role": "full_time", "grid_code": [G1, G1, G2], "post": ["A", "B", "A"]})


def incidents_frame(rows: list[dict]) -> gpd.GeoDataFrame:
    df = pd.DataFrame(rows)
    geoms = gpd.points_from_xy(df.pop("lon"), df.pop("lat"))
    df["item_code"] = df["category_code"] + "01"
    df["level"] = 1
    df["source"] = "hotline"
    df["status"] = np.where(df["stage"].isin(["closed", "evaluated", "closed_no_action"]), "closed", "open")
    return gpd.GeoDataFrame(df, geometry=geoms, crs=4326)


def incident(i: int, *, lon: float, lat: float, cat: str = "01", stage: str = "collected",
             requested: str = "2026-11-18 09:00", due: str | None = "2026-11-19 09:00",
             grid: str = G1) -> dict:
    return {"service_request_id": f"SR{i:05d}", "requested_datetime": pd.Timestamp(requested),
            "expected_datetime": pd.Timestamp(due) if due else pd.NaT, "category_code": cat,
            "stage": stage, "grid_code": grid, "lon": lon, "lat": lat}


def fixes_frame(worker: str, times: pd.DatetimeIndex, lon: np.ndarray, lat: np.ndarray,
                start_id: int) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"fix_id": [f"F{start_id + i:07d}" for i in range(len(times))],
                             "worker_id": worker, "time": times},
                            geometry=gpd.points_from_xy(lon, lat), crs=4326)


def walk(worker: str, start: str, hours: float, *, x0: float, start_id: int,
         every_s: int = 60) -> gpd.GeoDataFrame:
    """Back and forth along a line at 2.4 km/h around ``x0`` (as in :mod:`geo.patrol`'s example)."""
    times = pd.date_range(start, periods=int(hours * 3600 / every_s) + 1, freq=f"{every_s}s")
    lon = x0 + 0.0015 * np.sin(np.arange(len(times)) / 10)
    return fixes_frame(worker, times, lon, np.full(len(times), 32.0525), start_id)


def table(store: Store, name: str) -> pd.DataFrame:
    keys = list(sm._KEYS[name])
    return sm._select(store, name).sort_values(keys).reset_index(drop=True)


def snapshot(store: Store) -> dict[str, pd.DataFrame]:
    return {t: table(store, t) for t in (sm.PATROL_WORKER, sm.PATROL_GRID, sm.INCIDENT_CELLS, sm.GRID_OPEN)}


def assert_same(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> None:
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_dtype=False, obj=name)


def base_layers() -> dict[str, pd.DataFrame]:
    return {"grids": grids_frame(), "workers": workers_frame(),
            "incidents": incidents_frame([incident(0, lon=118.772, lat=32.052)])}


# --------------------------------------------------------------------------- hand-drawn cases


def test_incident_counts_per_cell_category_week_and_open_overdue_per_grid(store: Store) -> None:
    a, b = (118.7712, 32.0512), (118.7788, 32.0538)  # two points far apart: two res-9 cells
    rows = [
        incident(1, lon=a[0], lat=a[1], cat="01", requested="2026-11-16 08:00"),  # Monday
        incident(2, lon=a[0], lat=a[1], cat="01", requested="2026-11-22 23:00"),  # Sunday, same week
        incident(3, lon=a[0], lat=a[1], cat="02", requested="2026-11-23 00:00"),  # next week
        incident(4, lon=b[0], lat=b[1], cat="01", requested="2026-11-17 10:00", grid=G2,
                 due="2026-11-21 12:00"),
        incident(5, lon=b[0], lat=b[1], cat="01", requested="2026-11-17 10:00", grid=G2,
                 stage="closed", due="2026-11-18 12:00"),
        incident(6, lon=b[0], lat=b[1], cat="03", requested="2026-11-17 10:00", grid=G2, due=None),
    ]
    store.write({"grids": grids_frame(), "workers": workers_frame(), "incidents": incidents_frame(rows)})
    cells = table(store, sm.INCIDENT_CELLS)
    import h3

    ca, cb = (h3.str_to_int(h3.latlng_to_cell(p[1], p[0], sm.CELL_RES)) for p in (a, b))
    got = {(int(r.cell), r.category_code, r.week): int(r.n) for r in cells.itertuples()}
    assert got == {(ca, "01", "2026-11-16"): 2, (ca, "02", "2026-11-23"): 1,
                   (cb, "01", "2026-11-16"): 2, (cb, "03", "2026-11-16"): 1}
    # open: SR1-3 on G1 (due 11-19 09:00), SR4 (due 11-21 12:00) and SR6 (no due) on G2; SR5 closed
    at = sm.grid_open(store, now="2026-11-20 00:00").set_index("grid_code")
    assert at.loc[G1].tolist() == [3, 3] and at.loc[G2].tolist() == [2, 0]
    later = sm.grid_open(store, now="2026-11-21 12:00:00.001").set_index("grid_code")
    assert later.loc[G2].tolist() == [2, 1]  # due 12:00 has passed; no due time is never overdue


def test_case_actions_move_the_counts_in_the_same_transaction(store: Store) -> None:
    store.write({**base_layers(), "incidents": incidents_frame([
        incident(1, lon=118.772, lat=32.052), incident(2, lon=118.772, lat=32.052)])})
    now = "2026-11-20 00:00"
    assert sm.grid_open(store, now=now).set_index("grid_code").loc[G1].tolist() == [2, 2]
    store.apply([RowUpdate("incidents", ["SR00001"], {"stage": "closed", "status": "closed"})])
    assert sm.grid_open(store, now=now).set_index("grid_code").loc[G1].tolist() == [1, 1]
    store.apply([RowUpdate("incidents", ["SR00002"], {"expected_datetime": pd.Timestamp("2026-11-25")},
                           expect={"stage": "collected"})])
    assert sm.grid_open(store, now=now).set_index("grid_code").loc[G1].tolist() == [1, 0]
    store.apply([RowUpdate("incidents", ["SR00002"], {"grid_code": G2, "category_code": "05"})])
    counts = sm.grid_open(store, now="2026-11-26").set_index("grid_code")
    assert list(counts.index) == [G2] and counts.loc[G2].tolist() == [1, 1]  # G1's row went to 0: dropped
    assert set(table(store, sm.INCIDENT_CELLS)["category_code"]) == {"01", "05"}
    before = snapshot(store)
    sm.rebuild(store)
    assert_same(before, snapshot(store))


def test_a_failed_case_action_or_write_leaves_the_summaries_unchanged(store: Store) -> None:
    store.write({**base_layers(), "patrol_points": walk("w1", "2026-11-19 08:00", 1.0, x0=118.7725,
                                                        start_id=0)})
    before = snapshot(store)
    events = pd.DataFrame({"event_id": ["E1"], "service_request_id": ["SR-NOPE"], "action": ["close"],
                           "from_stage": ["collected"], "to_stage": ["closed"], "actor": ["a"],
                           "time": [pd.Timestamp("2026-11-20")]})
    with pytest.raises(StoreError):  # the summary delta is made, then the unknown case is refused
        store.apply([RowUpdate("incidents", ["SR00000"], {"stage": "closed"})], events=events)
    with pytest.raises(StoreError):  # compare-and-set lost: nothing changes
        store.apply([RowUpdate("incidents", ["SR00000"], {"stage": "closed"}, expect={"stage": "handling"})])
    with pytest.raises(StoreError):  # an existing case id: the append is refused
        store.write({"incidents": incidents_frame([incident(0, lon=118.772, lat=32.052),
                                                   incident(9, lon=118.772, lat=32.052)])}, mode="append")
    with pytest.raises(StoreError):  # an existing fix id, after new fixes: refused as a whole
        store.write({"patrol_points": walk("w2", "2026-11-19 09:00", 1.0, x0=118.7725, start_id=0)},
                    mode="append")
    assert_same(before, snapshot(store))
    assert store.count("incidents", where={"stage": "closed"}) == 0


def test_hours_in_grid_of_a_hand_drawn_walk_appended_in_pieces(store: Store) -> None:
    """w1 walks in G1 08:00-12:30 (4.5 h: meets the rule), w3 walks 1 h in G1, not its own G2."""
    w1 = walk("w1", "2026-11-19 08:00", 4.5, x0=118.7725, start_id=0)
    w3 = walk("w3", "2026-11-19 14:00", 1.0, x0=118.7725, start_id=10_000)
    store.write({**base_layers(), "patrol_points": w1.iloc[:100]})
    store.write({"patrol_points": w1.iloc[100:]}, mode="append")
    store.write({"patrol_points": w3}, mode="append")
    grids = store.read("grids", columns=["code"])
    workers = store.read("workers", columns=["id", "grid_code", "post"])
    fig = sm.patrol_figures(store, [DAY], grids=grids, workers=workers)
    pw = fig.per_worker.set_index("worker_id")
    assert pw.loc["w1", "hours_in_grid"] == pytest.approx(4.5)
    assert pw.loc["w1", "meets_rule"] and not pw.loc["w3", "meets_rule"]
    assert pw.loc["w3", "hours_in_grid"] == 0.0 and pw.loc["w3", "hours_tracked"] == pytest.approx(1.0)
    assert pw.loc["w2", "n_fixes"] == 0 and pw.loc["w2", "hours_in_grid"] == 0.0
    pg = fig.per_grid.set_index("grid_code")
    assert pg.loc[G1, "covered_h"] == pytest.approx(4.5) and pg.loc[G1, "a_h"] == pytest.approx(4.5)
    assert pg.loc[G1, "b_h"] == 0.0 and pg.loc[G2, "covered_h"] == 0.0 and pg.loc[G1, "workers"] == 2
    # the same numbers as geo.patrol on the raw fixes of the day's window
    raw = store.read("patrol_points", columns=["worker_id", "time", "accuracy_m"])
    ref = patrol.time_in_grid(patrol.clean_fixes(raw, rules=sm.RULES), grids, workers, day=DAY)
    pd.testing.assert_frame_equal(fig.per_worker.drop(columns="day"), ref, check_dtype=False)


def test_a_walk_across_midnight_counts_on_both_days_and_a_grid_change_rebuilds(store: Store) -> None:
    w1 = walk("w1", "2026-11-19 23:00", 2.0, x0=118.7725, start_id=0)
    store.write({**base_layers(), "patrol_points": w1.iloc[:30]})
    store.write({"patrol_points": w1.iloc[30:]}, mode="append")
    grids = store.read("grids", columns=["code"])
    workers = store.read("workers", columns=["id", "grid_code", "post"])
    days = [DAY, DAY + pd.Timedelta(days=1)]
    fig = sm.patrol_figures(store, days, grids=grids, workers=workers)
    w = fig.per_worker[fig.per_worker["worker_id"] == "w1"].set_index("day")["hours_in_grid"]
    assert w.loc[DAY] == pytest.approx(1.0) and w.loc[days[1]] == pytest.approx(1.0)
    # w1 moves to G2: the stored figures were built on other workers; the next read rebuilds
    moved = workers_frame().assign(grid_code=[G2, G1, G2])
    store.write({"workers": moved})
    workers = store.read("workers", columns=["id", "grid_code", "post"])
    fig = sm.patrol_figures(store, days, grids=grids, workers=workers)
    assert fig.per_worker.set_index(["worker_id", "day"]).loc[("w1", DAY), "hours_in_grid"] == 0.0


def test_a_store_without_summaries_is_rebuilt_once_on_read(store: Store) -> None:
    store.write({**base_layers(), "patrol_points": walk("w1", "2026-11-19 08:00", 1.0, x0=118.7725,
                                                        start_id=0)})
    with sm._writing(store) as tx:  # as a store written before summaries existed
        for t in sm.TABLES:
            tx.run(f"DROP TABLE {tx.t(t)}")
            if tx.dialect == "sqlite":
                tx.run("DELETE FROM gpkg_contents WHERE table_name = ?", (t,))
    assert sm.grid_open(store, now="2026-11-20").set_index("grid_code").loc[G1].tolist() == [1, 1]
    assert [str(d.date()) for d in sm.patrol_days(store)] == ["2026-11-19"]


# --------------------------------------------------------------------------- the invariant


@contextlib.contextmanager
def fresh_store(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Store]:
    if engine == "gpkg":
        with open_store(str(tmp_path / f"{uuid.uuid4().hex}.gpkg")) as s:
            yield s
        return
    import psycopg

    base = request.getfixturevalue("pg_url")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        with open_store(f"{base}?schema={schema}") as s:
            yield s
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


_op = st.one_of(
    st.tuples(st.just("incidents"), st.integers(1, 4), st.integers(0, 2**16)),
    st.tuples(st.just("action"), st.integers(0, 50), st.sampled_from(["dispatched", "closed", "handling"]),
              st.integers(-48, 48)),
    st.tuples(st.just("fixes"), st.sampled_from(["w1", "w2", "w3", "w9"]), st.integers(0, 47 * 60),
              st.integers(2, 40), st.integers(0, 2**16)),
)


@pytest.mark.parametrize("engine", ["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)])
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(_op, min_size=1, max_size=5))
def test_incremental_summaries_equal_a_rebuild_after_any_appends_and_actions(
        engine: str, ops: list[tuple], tmp_path: Path, request: pytest.FixtureRequest) -> None:
    ids = itertools.count(1)
    fix_ids = itertools.count(0)
    with fresh_store(engine, tmp_path, request) as store:
        store.write(base_layers())
        case_ids = ["SR00000"]
        for op in ops:
            if op[0] == "incidents":
                rng = np.random.default_rng(op[2])
                rows = [incident(next(ids), lon=float(rng.uniform(118.770, 118.780)),
                                 lat=float(rng.uniform(32.050, 32.055)), cat=str(rng.choice(["01", "02"])),
                                 stage=str(rng.choice(["collected", "closed", "handling"])),
                                 requested=str(pd.Timestamp("2026-11-10") + pd.Timedelta(hours=int(rng.integers(0, 400)))),
                                 due=None if rng.random() < 0.2 else "2026-11-19 12:00",
                                 grid=str(rng.choice([G1, G2]))) for _ in range(op[1])]
                store.write({"incidents": incidents_frame(rows)}, mode="append")
                case_ids += [r["service_request_id"] for r in rows]
            elif op[0] == "action":
                sid = case_ids[op[1] % len(case_ids)]
                due = pd.Timestamp("2026-11-19 12:00") + pd.Timedelta(hours=op[3])
                store.apply([RowUpdate("incidents", [sid], {"stage": op[2], "expected_datetime": due})])
            else:
                _, worker, minute, n, seed = op
                rng = np.random.default_rng(seed)
                start = pd.Timestamp("2026-11-18 23:00") + pd.Timedelta(minutes=minute)
                times = pd.date_range(start, periods=n, freq="45s")
                lon = 118.772 + np.cumsum(rng.normal(0, 0.0002, n))
                lat = 32.052 + np.cumsum(rng.normal(0, 0.0002, n))
                first = next(fix_ids)
                for _ in range(n - 1):
                    next(fix_ids)
                store.write({"patrol_points": fixes_frame(worker, times, lon, lat, first)}, mode="append")
        kept = snapshot(store)
        sm.rebuild(store)
        assert_same(kept, snapshot(store))


# --------------------------------------------------------------------------- lazy patrol re-summary


def marks(store: Store) -> dict[tuple[str, str], int]:
    with sm._reading(store) as tx:
        return sm._marks(tx, None)


def test_an_append_only_marks_and_the_next_read_equals_the_raw_computation(store: Store) -> None:
    w1 = walk("w1", "2026-11-19 23:00", 2.0, x0=118.7725, start_id=0)
    w2 = walk("w2", "2026-11-19 09:00", 1.0, x0=118.7725, start_id=10_000)
    store.write({**base_layers(), "patrol_points": w1.iloc[:30]})
    assert marks(store) == {}  # a replace marks the summary unbuilt instead
    with sm._reading(store) as tx:
        assert tx.basis("patrol") is None
    assert [str(d.date()) for d in sm.patrol_days(store)] == ["2026-11-19", "2026-11-20"]  # built
    store.write({"patrol_points": w1.iloc[30:]}, mode="append")
    store.write({"patrol_points": w2}, mode="append")
    store.write({"patrol_points": w1.iloc[[0]].assign(fix_id="X1", time=pd.Timestamp("2026-11-19 23:59"))},
                mode="append")
    # w1's fixes from 00:00 on 11-20 also fall in 11-19's window (and 23:00 in 11-20's)
    assert marks(store) == {("2026-11-19", "w1"): 2, ("2026-11-20", "w1"): 2, ("2026-11-19", "w2"): 1}
    grids = store.read("grids", columns=["code"])
    workers = store.read("workers", columns=["id", "grid_code", "post"])
    days = [DAY, DAY + pd.Timedelta(days=1)]
    fig = sm.patrol_figures(store, days[:1], grids=grids, workers=workers)
    assert marks(store) == {("2026-11-20", "w1"): 2}  # only the day asked for was settled
    raw_w, raw_g = sm.raw_patrol_day(store, DAY, grids=grids, workers=workers)
    got = fig.per_worker.set_index("worker_id").loc[raw_w["worker_id"]]
    np.testing.assert_allclose(got["hours_in_grid"], raw_w["hours_in_grid"])
    np.testing.assert_array_equal(got["n_fixes"], raw_w["n_fixes"])
    assert got.loc["w2", "hours_in_grid"] == pytest.approx(1.0)
    pg = fig.per_grid.set_index("grid_code").loc[raw_g["grid_code"]]
    np.testing.assert_allclose(pg[["covered_h", "a_h", "b_h"]], raw_g[["covered_h", "a_h", "b_h"]])
    # every stored row equals a rebuild from the whole layer, and nothing is left to settle
    kept = snapshot(store)
    assert marks(store) == {}
    sm.rebuild(store)
    assert_same(kept, snapshot(store))


def test_a_failed_append_leaves_no_dirty_mark(store: Store) -> None:
    store.write({**base_layers(), "patrol_points": walk("w1", "2026-11-19 08:00", 1.0, x0=118.7725,
                                                        start_id=0)})
    with pytest.raises(StoreError):  # new fixes of w2, then an existing fix id: refused as a whole
        store.write({"patrol_points": walk("w2", "2026-11-19 09:00", 1.0, x0=118.7725, start_id=0)},
                    mode="append")
    assert marks(store) == {}
    store.write({"patrol_points": walk("w2", "2026-11-19 09:00", 1.0, x0=118.7725, start_id=5_000)},
                mode="append")
    assert marks(store) == {("2026-11-19", "w2"): 1}


def _append_and_read(url: str, worker: str, start_id: int, rounds: int) -> None:
    """One process: ``rounds`` appends of 20 fixes of ``worker``, each followed by a read."""
    with open_store(url) as s:
        grids = s.read("grids", columns=["code"])
        workers = s.read("workers", columns=["id", "grid_code", "post"])
        for r in range(rounds):
            part = walk(worker, str(pd.Timestamp("2026-11-19 08:00") + pd.Timedelta(minutes=20 * r)),
                        19 / 60, x0=118.7725, start_id=start_id + 100 * r)
            s.write({"patrol_points": part}, mode="append")
            sm.patrol_figures(s, [DAY], grids=grids, workers=workers)


def test_two_processes_appending_and_reading_never_lose_a_mark(store: Store) -> None:
    import multiprocessing as mp

    # the layer exists before (two first appends racing to create it is another matter)
    store.write({**base_layers(), "patrol_points": walk("w3", "2026-11-17 08:00", 0.1, x0=118.7775,
                                                        start_id=900_000)})
    ctx = mp.get_context("fork")  # the children open their own store
    # w1 and w2 share grid G1: each one's re-summary rewrites the grid's row the other changes
    procs = [ctx.Process(target=_append_and_read, args=(store.url, w, i * 50_000, 4))
             for i, w in enumerate(("w1", "w2"))]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    assert store.count("patrol_points") == 2 * 4 * 20 + 7
    # whatever is left marked is settled now; a lost mark would leave a row behind its fixes
    grids = store.read("grids", columns=["code"])
    workers = store.read("workers", columns=["id", "grid_code", "post"])
    fig = sm.patrol_figures(store, [DAY], grids=grids, workers=workers)
    assert marks(store) == {}
    raw_w, raw_g = sm.raw_patrol_day(store, DAY, grids=grids, workers=workers)
    got = fig.per_worker.set_index("worker_id").loc[raw_w["worker_id"]]
    np.testing.assert_array_equal(got["n_fixes"], raw_w["n_fixes"])
    # every one of each worker's 80 fixes is counted: kept or dropped for a reason
    assert fig.cleaning.groupby("worker_id")["fixes"].sum().loc[["w1", "w2"]].tolist() == [80, 80]
    np.testing.assert_allclose(got["hours_tracked"], raw_w["hours_tracked"])
    pg = fig.per_grid.set_index("grid_code").loc[raw_g["grid_code"]]
    np.testing.assert_allclose(pg[["covered_h", "a_h", "b_h"]], raw_g[["covered_h", "a_h", "b_h"]])


def _layers_of(store: Store) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    return store.read("grids", columns=["code"]), store.read("workers", columns=["id", "grid_code", "post"])


def _equals_raw(store: Store, fig: sm.PatrolFigures) -> bool:
    grids, workers = _layers_of(store)
    raw_w, _ = sm.raw_patrol_day(store, DAY, grids=grids, workers=workers)
    got = fig.per_worker.set_index("worker_id").loc[raw_w["worker_id"]]
    return bool(np.array_equal(got["n_fixes"].to_numpy(), raw_w["n_fixes"].to_numpy())
                and np.allclose(got["hours_tracked"].to_numpy(float), raw_w["hours_tracked"].to_numpy(float)))


def test_an_append_between_the_settling_read_and_its_write_is_read_again(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real append (through a second store object) lands right after settle has read the
    marks and fixes: the marks it then finds differ, so it reads again; nothing stale is kept."""
    store.write({**base_layers(), "patrol_points": walk("w1", "2026-11-19 08:00", 0.5, x0=118.7725,
                                                        start_id=0)})
    grids, workers = _layers_of(store)
    sm.patrol_figures(store, [DAY], grids=grids, workers=workers)
    store.write({"patrol_points": walk("w1", "2026-11-19 09:00", 0.5, x0=118.7725, start_id=1_000)},
                mode="append")
    real, calls = sm._settle_rows, []

    def settle_rows_then_append(*args, **kwargs):  # type: ignore[no-untyped-def]
        out = real(*args, **kwargs)
        if not calls:
            with open_store(store.url) as other:
                for i, w in enumerate(("w1", "w2")):
                    other.write({"patrol_points": walk(w, f"2026-11-19 1{i}:00", 0.5, x0=118.7725,
                                                       start_id=2_000 + 100 * i)}, mode="append")
        calls.append(1)
        return out

    monkeypatch.setattr(sm, "_settle_rows", settle_rows_then_append)
    fig = sm.patrol_figures(store, [DAY], grids=grids, workers=workers)
    assert len(calls) == 2 and marks(store) == {}
    assert _equals_raw(store, fig)


@pytest.mark.postgis
def test_a_mark_bumped_while_settling_writes_stays(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL: an append commits between settle's check and its commit (appends take no
    lock): the mark it bumped is not removed, so the next read brings that worker up to date."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        with open_store(f"{pg_url}?schema={schema}") as store:
            store.write({**base_layers(), "patrol_points": walk("w1", "2026-11-19 08:00", 0.5,
                                                                x0=118.7725, start_id=0)})
            grids, workers = _layers_of(store)
            sm.patrol_figures(store, [DAY], grids=grids, workers=workers)
            store.write({"patrol_points": walk("w1", "2026-11-19 09:00", 0.5, x0=118.7725,
                                               start_id=1_000)}, mode="append")
            real, calls = sm._store_rows, []

            def store_rows_then_append(*args, **kwargs):  # type: ignore[no-untyped-def]
                if not calls:
                    with open_store(store.url) as other:
                        other.write({"patrol_points": walk("w1", "2026-11-19 10:00", 0.5, x0=118.7725,
                                                           start_id=2_000)}, mode="append")
                calls.append(1)
                return real(*args, **kwargs)

            monkeypatch.setattr(sm, "_store_rows", store_rows_then_append)
            sm.settle(store, [DAY])
            assert marks(store) == {("2026-11-19", "w1"): 2}  # bumped meanwhile: kept
            monkeypatch.setattr(sm, "_store_rows", real)
            assert _equals_raw(store, sm.patrol_figures(store, [DAY], grids=grids, workers=workers))
            assert marks(store) == {}
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _dirty_keys_by_windows(times: pd.Series, workers: pd.Series, sqlite: bool) -> list:
    """The marks as they were computed before: every candidate day's window tested."""
    t = sm._datetimes(times)
    ids = workers.astype(object).where(workers.notna(), None)
    variants = [t, t.dt.round("ms")] if sqlite else [t]
    keys: set = set()
    for tv in variants:
        for day in sm.days_touched(tv):
            lo, hi = sm.day_window(day)
            inside = ((tv >= lo) & (tv < hi)).to_numpy()
            keys |= {(day.strftime("%Y-%m-%d"), str(w)) for w in ids[inside] if w is not None}
    return sorted(keys)


_NEAR_MIDNIGHT = st.integers(-2 * 3600 * 10**6, 2 * 3600 * 10**6).map(
    lambda us: pd.Timestamp("2026-11-20") + pd.Timedelta(microseconds=us))


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(st.one_of(st.none(), _NEAR_MIDNIGHT,
                                         st.datetimes(pd.Timestamp("2026-01-01").to_pydatetime(),
                                                      pd.Timestamp("2027-01-01").to_pydatetime())),
                               st.sampled_from(["W1", "W2", None])), max_size=30),
       sqlite=st.booleans())
def test_dirty_marks_are_the_days_whose_window_holds_a_fix(rows, sqlite) -> None:
    times = pd.Series(pd.to_datetime([t for t, _ in rows]), dtype="datetime64[us]")
    workers = pd.Series([w for _, w in rows], dtype=object)
    assert sm.dirty_keys(times, workers, sqlite=sqlite) == \
        _dirty_keys_by_windows(times, workers, sqlite)
