"""A replace never silently orphans history: measured first, refused unless told what to do.

Hand-made store: two grids; buildings, workers and cases in both; patrol fixes of both
workers; an event per case. Replacing with fewer rows must say exactly which rows go and who
would point at nothing.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from layers.errors import StoreError
from layers.replace_check import (
    OrphanError,
    default_mode,
    impact_table,
    replace_impact,
    write_checked,
)
from layers.store import Store, open_store

G1, G2 = "320106001001001", "320106001001002"
GRIDS = gpd.GeoDataFrame(
    {"code": [G1, G2], "name": ["宁海路第一网格", "宁海路第二网格"],
     "kind": ["comprehensive", "comprehensive"], "community_code": ["320106001001"] * 2,
     "households": [400, 300], "population": [1000, 800]},
    geometry=[shapely.box(118.770, 32.060, 118.775, 32.065),
              shapely.box(118.775, 32.060, 118.780, 32.065)], crs=4326)
BUILDINGS = gpd.GeoDataFrame(
    {"id": ["B1", "B2", "B3"], "households": [10, 20, 30], "population": [25, 50, 70],
     "grid_code": [G1, G2, G2]},
    geometry=shapely.points([(118.771, 32.061), (118.776, 32.061), (118.777, 32.062)]), crs=4326)
WORKERS = pd.DataFrame({"id": ["W1", "W2"], "name": ["李四", "王五"],
                        "role": ["grid_leader", "full_time"], "grid_code": [G1, G2]})
PATROL = gpd.GeoDataFrame(
    {"fix_id": ["p1", "p2", "p3"], "worker_id": ["W1", "W2", "W2"],
     "time": pd.to_datetime(["2025-03-03 09:00", "2025-03-03 09:00", "2025-03-03 09:05"])},
    geometry=shapely.points([(118.771, 32.061), (118.776, 32.061), (118.777, 32.062)]), crs=4326)


def cases(ids: list[str]) -> gpd.GeoDataFrame:
    n = len(ids)
    return gpd.GeoDataFrame(
        {"service_request_id": ids, "status": ["open"] * n,
         "requested_datetime": [pd.Timestamp("2025-03-03 08:00")] * n,
         "category_code": ["01"] * n, "item_code": ["0101"] * n, "level": [1] * n,
         "source": ["patrol"] * n, "stage": ["collected"] * n, "grid_code": [G1] * n},
        geometry=shapely.points([(118.771, 32.061)] * n), crs=4326)


def events(ids: list[str], per_case: int = 1) -> pd.DataFrame:
    rows = [{"event_id": f"e-{i}-{k}", "service_request_id": i, "action": "collect",
             "from_stage": None, "to_stage": "collected", "actor": "gw",
             "time": pd.Timestamp("2025-03-03 08:00"), "note": ""}
            for i in ids for k in range(per_case)]
    return pd.DataFrame(rows, columns=["event_id", "service_request_id", "action", "from_stage",
                                       "to_stage", "actor", "time", "note"])


@pytest.fixture(params=["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "gpkg":
        s = open_store(str(tmp_path / "store.gpkg"))
    else:
        base = request.getfixturevalue("pg_url")
        schema = f"t_{uuid.uuid4().hex[:12]}"
        s = open_store(f"{base}?schema={schema}")
    ids = ["A1", "A2", "A3", "A4"]
    s.write({"grids": GRIDS, "buildings": BUILDINGS, "workers": WORKERS,
             "patrol_points": PATROL, "incidents": cases(ids),
             "incident_events": events(ids, per_case=2)}, actor="setup")
    yield s
    s.close()
    if request.param == "postgis":
        import psycopg

        with psycopg.connect(request.getfixturevalue("pg_url"), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def counts(store: Store) -> dict[str, int]:
    return {n: store.count(n) for n in store.layer_names()}


def test_record_layers_are_appended_by_default() -> None:
    assert default_mode("incidents") == "append"
    assert default_mode("incident_events") == "append"
    assert default_mode("patrol_points") == "append"
    assert default_mode("grids") == "replace"
    assert default_mode("buildings") == "replace"


def test_a_new_case_file_is_appended_by_default(store: Store) -> None:
    impact = write_checked(store, "incidents", cases(["A5"]))
    assert impact.mode == "append" and impact.removed_rows == 0
    assert store.count("incidents") == 5


def test_replacing_cases_that_events_point_at_is_refused(store: Store) -> None:
    before = counts(store)
    impact = replace_impact(store, "incidents", cases(["A1", "X9"]))
    assert (impact.existing_rows, impact.new_rows, impact.removed_rows, impact.replaced_rows) \
        == (4, 2, 3, 1)
    assert [(o.layer, o.column, o.rows, o.values, o.deletable) for o in impact.orphans] == [
        ("incident_events", "service_request_id", 6, ("A2", "A3", "A4"), False)]
    with pytest.raises(OrphanError) as err:
        write_checked(store, "incidents", cases(["A1", "X9"]), mode="replace")
    assert isinstance(err.value, StoreError) and err.value.key == "cas.orphans"
    assert "incident_events.service_request_id: 6 rows" in str(err.value)
    # the event log cannot lose rows, so "delete" is refused too
    with pytest.raises(OrphanError) as err:
        write_checked(store, "incidents", cases(["A1", "X9"]), mode="replace", on_orphans="delete")
    assert err.value.key == "cas.orphans_append_only"
    assert counts(store) == before


def test_keep_writes_and_says_so_in_the_audit_log(store: Store) -> None:
    write_checked(store, "incidents", cases(["A1"]), mode="replace", on_orphans="keep",
                  actor="me", note="year-end")
    assert store.count("incidents") == 1 and store.count("incident_events") == 8
    note = store.audit_log(limit=1)["note"].iloc[0]
    assert note.startswith("year-end (referencing rows keep: 6;") and "A2" in note


def test_a_superset_replaces_without_asking(store: Store) -> None:
    impact = write_checked(store, "grids", GRIDS, mode="replace")
    assert impact.orphans == () and impact.removed_rows == 0 and impact.replaced_rows == 2


def test_replacing_grids_names_buildings_workers_and_cases(store: Store) -> None:
    impact = replace_impact(store, "grids", GRIDS.iloc[:1])
    assert impact.removed_rows == 1
    got = {(o.layer, o.column): (o.rows, o.values) for o in impact.orphans}
    assert got == {("buildings", "grid_code"): (2, (G2,)), ("workers", "grid_code"): (1, (G2,))}
    table = impact_table(impact, "zh")
    assert list(table["rows"]) == [2, 1, 1, 2, 1]
    assert "楼栋 buildings.grid_code" in table["what"].iloc[3]


def test_delete_removes_the_orphans_and_theirs_in_one_write(store: Store) -> None:
    write_checked(store, "grids", GRIDS.iloc[:1], mode="replace", on_orphans="delete")
    assert list(store.read("grids")["code"]) == [G1]
    assert list(store.read("buildings")["id"]) == ["B1"]
    assert list(store.read("workers")["id"]) == ["W1"]
    # W2's patrol fixes went with W2 (patrol points refer to workers)
    assert list(store.read("patrol_points")["fix_id"]) == ["p1"]


@settings(max_examples=8, deadline=None)
@given(events_per_case=st.lists(st.integers(0, 3), min_size=1, max_size=6),
       keep=st.lists(st.booleans(), min_size=6, max_size=6), extra=st.integers(1, 2))
def test_the_impact_counts_what_a_replace_removes_and_orphans(events_per_case, keep,
                                                               extra) -> None:
    ids = [f"C{i}" for i in range(len(events_per_case))]
    new_ids = [i for i, k in zip(ids, keep, strict=False) if k] + [f"N{j}" for j in range(extra)]
    ev = events([i for i, k in zip(ids, events_per_case, strict=True) for _ in range(k)])
    ev["event_id"] = [f"e{j}" for j in range(len(ev))]
    with tempfile.TemporaryDirectory() as d, open_store(f"{d}/s.gpkg") as s:
        s.write({"incidents": cases(ids), "incident_events": ev}, actor="setup")
        gone = set(ids) - set(new_ids)
        want_orphans = sum(k for i, k in zip(ids, events_per_case, strict=True) if i in gone)
        impact = replace_impact(s, "incidents", cases(new_ids))
        assert impact.removed_rows == len(gone)
        assert impact.replaced_rows == len(set(ids) & set(new_ids))
        assert impact.orphaned_rows == want_orphans
        if want_orphans:
            with pytest.raises(OrphanError):
                write_checked(s, "incidents", cases(new_ids), mode="replace")
            assert s.count("incidents") == len(ids)
        else:
            write_checked(s, "incidents", cases(new_ids), mode="replace")
            assert sorted(s.read("incidents")["service_request_id"]) == sorted(new_ids)
        assert s.count("incident_events") == len(ev)
