"""The store contract, run against both engines (GeoPackage file and PostGIS schema).

Every test takes the ``store`` fixture, parametrised over the engines; the PostGIS one gets
a fresh schema (``?schema=t_<uuid>``) that is dropped afterwards, so tests never collide.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from layers import _store_common as sc
from layers._gpkg import GeoPackageStore
from layers.errors import StoreError
from layers.store import RowUpdate, Store

# -- tiny hand-made layers -------------------------------------------------------------------------

#   two grids side by side in Gulou, Nanjing (lon 118.770 .. 118.780, lat 32.060 .. 32.065)
#   +---------+---------+
#   |  ...001 |  ...002 |
#   +---------+---------+
GRIDS = gpd.GeoDataFrame(
    {
        "code": ["320106001001001", "320106001001002"],
        "name": ["宁海路第一网格", "宁海路第二网格"],
        "kind": ["comprehensive", "dedicated"],
        "dedicated_type": [None, "school"],
        "community_code": ["320106001001", "320106001001"],
        "leader": ["张三", None],
        "workers": [2, 3],
        "households": [420, 0],
        "population": [1130, 2500],
    },
    geometry=[shapely.box(118.770, 32.060, 118.775, 32.065),
              shapely.box(118.775, 32.060, 118.780, 32.065)],
    crs=4326,
)

# three incidents: two in grid 001, one in grid 002
INC_XY = [(118.771, 32.061), (118.772, 32.062), (118.778, 32.063)]


def incidents(ids: tuple[str, ...] = ("A1", "A2", "A3"), xy=INC_XY) -> gpd.GeoDataFrame:
    n = len(ids)
    return gpd.GeoDataFrame(
        {
            "service_request_id": list(ids),
            "status": ["open"] * n,
            "description": ["井盖缺失 'quoted'", None, "占道经营"][:n],
            "requested_datetime": pd.to_datetime(
                ["2024-05-01 08:00:00", "2024-05-01 23:59:59.500", "2024-05-02 00:00:00"][:n],
                format="ISO8601"),
            "category_code": ["01"] * n,
            "item_code": ["0101"] * n,
            "level": [1, 2, 3][:n],
            "source": ["patrol", "hotline_12345", "patrol"][:n],
            "stage": ["collected", "dispatched", "closed"][:n],
            "grid_code": ["320106001001001", "320106001001001", "320106001001002"][:n],
            "reporter_phone": ["13812345678", None, "13900001111"][:n],
            "reworks": [0, 1, 0][:n],
        },
        geometry=shapely.points(xy[:n]),
        crs=4326,
    )


WORKERS = pd.DataFrame({
    "id": ["W1", "W2"], "name": ["李四", "王五"], "phone": ["13812345678", None],
    "role": ["grid_leader", "full_time"], "grid_code": ["320106001001001", "320106001001002"],
    "post": ["A", "B"],
})


def event(eid: str, sr: str, to: str, frm: str | None = "collected") -> pd.DataFrame:
    return pd.DataFrame({"event_id": [eid], "service_request_id": [sr], "action": ["assign"],
                         "from_stage": [frm], "to_stage": [to], "actor": ["指挥中心"],
                         "time": [pd.Timestamp("2024-05-03 09:00")], "note": ["派遣"]})


# -- engines ---------------------------------------------------------------------------------------




def snapshot(store: Store) -> dict[str, object]:
    """Everything a reader can see: every layer row for row, and the audit log."""
    out: dict[str, object] = {"names": store.layer_names(), "audit": store.audit_log()}
    for name in store.layer_names():
        out[name] = store.read(name)
    return out


def assert_same(a: dict[str, object], b: dict[str, object]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], pd.DataFrame):
            pd.testing.assert_frame_equal(a[k], b[k])
        else:
            assert a[k] == b[k]


# -- round trips -----------------------------------------------------------------------------------


def test_round_trip_keeps_values_dtypes_and_crs(store: Store) -> None:
    store.write({"grids": GRIDS, "incidents": incidents(), "workers": WORKERS}, actor="t")
    assert store.layer_names() == ["grids", "workers", "incidents"]  # schema order, no internals
    g = store.read("grids")
    assert isinstance(g, gpd.GeoDataFrame) and g.crs.to_epsg() == 4326
    assert g["code"].tolist() == GRIDS["code"].tolist()
    assert g["dedicated_type"].isna().tolist() == [True, False]
    assert g["households"].dtype == "int64" and g["workers"].dtype == "Int64"
    assert g.geometry.geom_equals(GRIDS.geometry).all()
    assert "h3_9" not in g.columns  # polygons carry no H3 columns

    inc = store.read("incidents")
    assert inc["requested_datetime"].tolist() == incidents()["requested_datetime"].tolist()
    assert inc["description"].iloc[0] == "井盖缺失 'quoted'" and pd.isna(inc["description"].iloc[1])
    assert inc["level"].dtype == "int64" and inc["requested_datetime"].dtype == "datetime64[us]"
    assert list(inc.columns[-5:]) == ["h3_7", "h3_8", "h3_9", "h3_10", "geometry"]

    w = store.read("workers")
    assert type(w) is pd.DataFrame
    assert w["phone"].tolist()[0] == "13812345678" and pd.isna(w["phone"].iloc[1])


def test_h3_columns_match_the_h3_library(store: Store) -> None:
    store.write({"incidents": incidents()})
    inc = store.read("incidents")
    for res in (7, 8, 9, 10):
        expected = [h3.str_to_int(h3.latlng_to_cell(y, x, res)) for x, y in INC_XY]
        assert inc[f"h3_{res}"].tolist() == expected


def test_timezone_aware_input_is_stored_as_shanghai_local_time(store: Store) -> None:
    inc = incidents()
    inc["requested_datetime"] = pd.to_datetime(["2024-05-01T00:00:00Z"] * 3)
    store.write({"incidents": inc})
    assert store.read("incidents")["requested_datetime"].iloc[0] == pd.Timestamp("2024-05-01 08:00")


def test_empty_and_absent_layers(store: Store) -> None:
    assert store.count("incidents") == 0
    empty = store.read("incidents")
    assert len(empty) == 0 and isinstance(empty, gpd.GeoDataFrame)
    store.write({"incidents": incidents()[:0]})
    assert store.has_layer("incidents") and store.count("incidents") == 0
    assert store.h3_counts("incidents", res=9).empty


# -- filters ---------------------------------------------------------------------------------------


def test_where_between_columns_order_limit(store: Store) -> None:
    store.write({"incidents": incidents()})
    assert store.count("incidents", where={"stage": "closed"}) == 1
    assert store.count("incidents", where={"stage": ["collected", "dispatched"]}) == 2
    assert store.count("incidents", where={"reporter_phone": None}) == 1
    assert store.count("incidents", where={"level": []}) == 0
    # half-open day: 2024-05-01 00:00 <= t < 2024-05-02 00:00 keeps the 23:59:59.5 case
    day = {"requested_datetime": (pd.Timestamp("2024-05-01"), pd.Timestamp("2024-05-02"))}
    assert store.count("incidents", between=day) == 2
    assert store.count("incidents", between={"requested_datetime": ("2024-05-02", None)}) == 1
    df = store.read("incidents", columns=["service_request_id", "level"],
                    order_by="level", descending=True, limit=2)
    assert df["service_request_id"].tolist() == ["A3", "A2"]
    assert list(df.columns) == ["service_request_id", "level", "geometry"]
    q = store.read("incidents", where={"description": "井盖缺失 'quoted'"})
    assert q["service_request_id"].tolist() == ["A1"]


def test_bbox_uses_bounding_boxes(store: Store) -> None:
    store.write({"incidents": incidents(), "grids": GRIDS})
    east = (118.776, 32.0, 118.79, 32.07)
    assert store.read("incidents", bbox=east)["service_request_id"].tolist() == ["A3"]
    assert store.read("grids", bbox=east)["code"].tolist() == ["320106001001002"]
    both = store.read("grids", bbox=(118.774, 32.0, 118.776, 32.07), order_by="code")
    assert both["code"].tolist() == ["320106001001001", "320106001001002"]


def test_unknown_filter_column_is_refused(store: Store) -> None:
    store.write({"incidents": incidents()})
    with pytest.raises(StoreError, match="no column"):
        store.count("incidents", where={"stag": "closed"})
    with pytest.raises(StoreError):
        store.read("incidents", order_by="nope")


def test_h3_counts_is_a_group_by(store: Store) -> None:
    store.write({"incidents": incidents()})
    inc = store.read("incidents")
    got = store.h3_counts("incidents", res=8, by=["grid_code"])
    want = inc.groupby(["h3_8", "grid_code"]).size().reset_index(name="count")
    assert set(map(tuple, got[["cell", "grid_code", "count"]].to_numpy().tolist())) == set(
        map(tuple, want.to_numpy().tolist()))
    assert got["cell"].dtype == "int64" and got["count"].dtype == "int64"
    assert store.h3_counts("incidents", res=10, where={"stage": "closed"})["count"].sum() == 1
    with pytest.raises(StoreError, match="H3"):
        store.h3_counts("grids", res=9)


# -- write rules -----------------------------------------------------------------------------------


def test_append_adds_rows_and_refuses_existing_ids(store: Store) -> None:
    store.write({"incidents": incidents(("A1", "A2"))})
    store.write({"incidents": incidents(("B1",), xy=[(118.779, 32.064)])}, mode="append")
    assert store.read("incidents")["service_request_id"].tolist() == ["A1", "A2", "B1"]
    # the appended point is found through the spatial index
    assert store.read("incidents", bbox=(118.7785, 32.0635, 118.7795, 32.0645))[
        "service_request_id"].tolist() == ["B1"]
    before = snapshot(store)
    with pytest.raises(StoreError):
        store.write({"incidents": incidents(("B2", "A1"))}, mode="append")
    assert_same(before, snapshot(store))


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (lambda: {"nope": WORKERS}, "unknown layer"),
        (lambda: {"workers": WORKERS.assign(extra=1)}, "outside its schema"),
        (lambda: {"workers": WORKERS.drop(columns=["role"])}, "required"),
        (lambda: {"grids": pd.DataFrame(GRIDS.drop(columns="geometry"))}, "needs geometry"),
        (lambda: {"grids": GRIDS.set_crs(None, allow_override=True)}, "CRS"),
        (lambda: {"workers": pd.concat([WORKERS, WORKERS])}, "repeats"),
    ],
)
def test_bad_input_is_refused_before_anything_is_written(store: Store, frame, match) -> None:
    store.write({"grids": GRIDS})
    before = snapshot(store)
    with pytest.raises(StoreError, match=match):
        store.write({"incidents": incidents(), **frame()})
    assert_same(before, snapshot(store))


def test_projected_input_is_stored_in_wgs84(store: Store) -> None:
    store.write({"grids": GRIDS.to_crs(4547)})  # CGCS2000 / 3-degree Gauss-Kruger CM 114E
    g = store.read("grids")
    assert np.allclose(g.total_bounds, GRIDS.total_bounds, atol=1e-7)


def test_every_write_is_audited_newest_first(store: Store) -> None:
    store.write({"grids": GRIDS, "workers": WORKERS}, actor="王工", note="初始导入")
    store.write({"workers": WORKERS}, mode="replace", actor="cli")
    log = store.audit_log()
    assert list(log.columns) == ["time", "actor", "action", "layer", "rows", "note"]
    assert log[["actor", "action", "layer", "rows"]].values.tolist() == [
        ["cli", "replace", "workers", 2], ["王工", "replace", "workers", 2],
        ["王工", "replace", "grids", 2]]
    assert log["note"].tolist()[1:] == ["初始导入", "初始导入"]
    assert log["time"].is_monotonic_decreasing
    assert len(store.audit_log(limit=1)) == 1


# -- atomicity -------------------------------------------------------------------------------------


def test_a_failure_in_the_second_layer_leaves_the_store_unchanged(store: Store) -> None:
    store.write({"grids": GRIDS, "incidents": incidents(("A1", "A2"))})
    before = snapshot(store)
    # the first layer is fine; the second collides with a stored id inside the transaction
    with pytest.raises(StoreError):
        store.write({"workers": WORKERS, "incidents": incidents(("A2",))}, mode="append")
    assert_same(before, snapshot(store))


def test_a_crash_midway_through_the_swap_rolls_everything_back(store: Store, monkeypatch) -> None:
    store.write({"grids": GRIDS, "incidents": incidents()})
    before = snapshot(store)
    file_before = Path(store.url).read_bytes() if isinstance(store, GeoPackageStore) else None
    calls = []
    real = sc.audit_row

    def crash_on_second_layer(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:  # after the first layer has been swapped in
            raise RuntimeError("power cut")
        return real(*args, **kwargs)

    monkeypatch.setattr(sc, "audit_row", crash_on_second_layer)
    with pytest.raises(RuntimeError, match="power cut"):
        store.write({"grids": GRIDS[:1], "incidents": incidents(("Z1",)), "workers": WORKERS})
    monkeypatch.undo()
    assert len(calls) == 2
    assert_same(before, snapshot(store))
    if file_before is not None:
        assert Path(store.url).read_bytes() == file_before  # byte for byte
        assert [p.name for p in Path(store.url).parent.iterdir()] == ["store.gpkg"]


def test_a_failure_while_staging_leaves_the_geopackage_unchanged(tmp_path, monkeypatch) -> None:
    s = GeoPackageStore(tmp_path / "s.gpkg")
    s.write({"grids": GRIDS})
    before = s.path.read_bytes()
    real = GeoPackageStore._stage
    seen = []

    def fail_second(df, staging, name):
        seen.append(name)
        if len(seen) == 2:
            raise OSError("disk full")
        real(df, staging, name)

    monkeypatch.setattr(GeoPackageStore, "_stage", staticmethod(fail_second))
    with pytest.raises(OSError, match="disk full"):
        s.write({"grids": GRIDS[:1], "workers": WORKERS})
    assert s.path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.gpkg"]


# -- append-only events and row updates (workflow transitions) -------------------------------------


def test_events_are_append_only(store: Store) -> None:
    store.write({"incidents": incidents()})
    assert store.append_events(event("e1", "A1", "dispatched"), actor="c") == 1
    with pytest.raises(StoreError, match="append-only"):
        store.write({"incident_events": event("e2", "A1", "handling")})
    with pytest.raises(StoreError):
        store.append_events(event("e1", "A2", "dispatched"))  # id already used
    with pytest.raises(StoreError, match="append-only"):
        store.update_rows("incident_events", ["e1"], {"note": "x"})
    store.write({"incident_events": event("e2", "A2", "handling")}, mode="append")
    assert store.read("incident_events")["event_id"].tolist() == ["e1", "e2"]


def test_a_transition_updates_the_stage_and_logs_the_event_together(store: Store) -> None:
    store.write({"incidents": incidents()})
    n = store.update_rows("incidents", ["A1"], {"stage": "dispatched",
                                                "department": "urban_management",
                                                "updated_datetime": pd.Timestamp("2024-05-03 09:00")},
                          events=event("e1", "A1", "dispatched"), actor="指挥中心", note="派遣")
    assert n == 1
    inc = store.read("incidents", where={"service_request_id": "A1"})
    assert inc["stage"].tolist() == ["dispatched"]
    assert inc["updated_datetime"].tolist() == [pd.Timestamp("2024-05-03 09:00")]
    assert store.read("incident_events")["to_stage"].tolist() == ["dispatched"]
    assert store.audit_log(limit=2)[["action", "layer"]].values.tolist() == [
        ["append", "incident_events"], ["update", "incidents"]]
    # several incidents at once through apply()
    store.apply([RowUpdate("incidents", ["A2", "A3"], {"reworks": 5})], actor="x")
    assert store.read("incidents")["reworks"].tolist() == [0, 5, 5]


@pytest.mark.parametrize(
    ("update", "events", "match"),
    [
        (RowUpdate("incidents", ["A1", "NOPE"], {"stage": "dispatched"}), None, "NOPE"),
        (RowUpdate("incidents", ["A1"], {"stage": "dispatched"}), event("e1", "NOPE", "handling"),
         "do not exist"),
        (RowUpdate("incidents", ["A1"], {"stage": "teleported"}), None, "does not accept"),
        (RowUpdate("incidents", ["A1"], {"service_request_id": "B"}), None, "cannot be updated"),
        (RowUpdate("incidents", ["A1"], {"stage": "dispatched"}),
         event("e1", "A1", "flying"), "does not accept"),
    ],
)
def test_a_bad_transition_changes_nothing(store: Store, update, events, match) -> None:
    store.write({"incidents": incidents()})
    store.append_events(event("e0", "A3", "closed", "verifying"))
    before = snapshot(store)
    with pytest.raises(StoreError, match=match):
        store.apply([update], events=events)
    assert_same(before, snapshot(store))


# -- versions (the re-partition planner) -----------------------------------------------------------


def test_versions_save_list_read_and_roll_back(store: Store) -> None:
    v1 = store.save_version("grids", GRIDS, actor="规划", note="现状")
    moved = GRIDS.copy()
    moved.loc[0, "households"] = 999
    v2 = store.save_version("grids", moved, actor="规划", note="方案A")
    assert (v1, v2) == (1, 2)
    assert store.read("grids")["households"].tolist() == [999, 0]
    vs = store.versions("grids")
    assert vs[["version", "actor", "note", "rows", "current"]].values.tolist() == [
        [1, "规划", "现状", 2, False], [2, "规划", "方案A", 2, True]]
    assert store.read_version("grids", 1)["households"].tolist() == [420, 0]

    v3 = store.rollback("grids", 1, actor="主任", note="撤回方案A")
    assert v3 == 3
    pd.testing.assert_frame_equal(store.read("grids"), store.read_version("grids", 1))
    vs = store.versions("grids")
    assert vs["current"].tolist() == [False, False, True]
    assert vs["source_version"].tolist()[2] == 1 and pd.isna(vs["source_version"].iloc[0])
    assert store.audit_log(limit=1)[["action", "note"]].values.tolist() == [
        ["rollback", "v3: 撤回方案A"]]

    store.write({"grids": moved})  # a plain write: no saved version is live any more
    assert not store.versions("grids")["current"].any()
    with pytest.raises(StoreError, match="no version 7"):
        store.rollback("grids", 7)
    with pytest.raises(StoreError, match="append-only"):
        store.save_version("incident_events", event("e1", "A1", "dispatched"))


# -- GeoPackage specifics: what QGIS / GDAL see ------------------------------------------------------


def test_the_geopackage_is_valid_for_gdal(tmp_path: Path) -> None:
    s = GeoPackageStore(tmp_path / "s.gpkg")
    s.write({"grids": GRIDS, "incidents": incidents(("A1", "A2")), "workers": WORKERS})
    s.write({"incidents": incidents(("B1",), xy=[(118.779, 32.064)])}, mode="append")
    layers = dict(map(tuple, pyogrio.list_layers(s.path)))
    assert layers["grids"] == "Polygon" and layers["incidents"] == "Point"
    assert layers["workers"] is None and "audit_log" in layers
    info = pyogrio.read_info(s.path, layer="incidents")
    assert info["features"] == 3 and info["crs"] == "EPSG:4326"
    # GDAL's own spatial filter goes through the copied R*Tree
    hit = pyogrio.read_dataframe(s.path, layer="incidents", bbox=(118.7785, 32.0635, 118.78, 32.07))
    assert hit["service_request_id"].tolist() == ["B1"]
    with sqlite3.connect(s.path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA application_id").fetchone()[0] == 0x47504B47  # 'GPKG'
        assert conn.execute('SELECT count(*) FROM "rtree_incidents_geom"').fetchone()[0] == 3
        ext = conn.execute("SELECT min_x, max_x FROM gpkg_contents WHERE table_name = 'incidents'"
                           ).fetchone()
        assert ext == pytest.approx((118.771, 118.779))
        # an UPDATE of geometry fires GDAL's R*Tree triggers; our connection has their functions
    s.update_rows("incidents", ["A1"], {"stage": "closed"})
    assert s.count("incidents", where={"stage": "closed"}) == 1


def test_opening_something_else_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "notes.gpkg"
    bad.write_text("not a database at all" * 100)
    with pytest.raises(StoreError, match="not a usable GeoPackage"):
        GeoPackageStore(bad)


# -- invariants --------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(lon=st.floats(-179.9, 179.9), lat=st.floats(-85, 85), res=st.integers(0, 14))
def test_parents_by_bit_arithmetic_equal_h3(lon: float, lat: float, res: int) -> None:
    cell = h3.latlng_to_cell(lat, lon, 15)
    got = sc.cells_to_parents(np.array([h3.str_to_int(cell)], dtype=np.int64), res)
    assert h3.int_to_str(int(got[0])) == h3.cell_to_parent(cell, res)
    assert sc.cells_to_parents(np.zeros(1, dtype=np.int64), res).tolist() == [0]


# -- reset (refilling a demo store) and whole-file GeoPackage writes --------------------------------


def test_reset_replaces_the_whole_store_even_the_event_log(store: Store) -> None:
    store.write({"grids": GRIDS, "incidents": incidents()}, actor="demo")
    store.append_events(event("e1", "A1", "dispatched"))
    with pytest.raises(StoreError, match="append-only"):  # without reset the log cannot go
        store.write({"incidents": incidents(), "incident_events": event("e9", "A1", "handling")})
    with pytest.raises(StoreError, match="reset"):
        store.write({"workers": WORKERS}, mode="append", reset=True)
    store.write({"workers": WORKERS, "incident_events": event("e2", "A2", "handling")},
                actor="demo", note="again", reset=True)
    assert store.layer_names() == ["workers", "incident_events"]
    assert store.read("incident_events")["event_id"].tolist() == ["e2"]
    log = store.audit_log(limit=3)
    assert log[["action", "layer", "rows"]].values.tolist() == [
        ["replace", "incident_events", 1], ["replace", "workers", 2], ["reset", "*", 6]]
    assert (log["note"] == "again").all()


def test_a_crash_during_a_reset_changes_nothing(store: Store, monkeypatch) -> None:
    store.write({"grids": GRIDS, "incidents": incidents()})
    store.append_events(event("e1", "A1", "dispatched"))
    before = snapshot(store)
    real, calls = sc.audit_row, []

    def crash_on_second(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:  # after the reset row, while the new layers go in
            raise RuntimeError("power cut")
        return real(*args, **kwargs)

    monkeypatch.setattr(sc, "audit_row", crash_on_second)
    with pytest.raises(RuntimeError, match="power cut"):
        store.write({"workers": WORKERS}, reset=True)
    monkeypatch.undo()
    assert_same(before, snapshot(store))


def test_replacing_everything_builds_a_new_geopackage_and_keeps_history(tmp_path: Path) -> None:
    s = GeoPackageStore(tmp_path / "s.gpkg")
    s.save_version("grids", GRIDS, actor="规划", note="v1")
    s.write({"workers": WORKERS})  # a layer is added: written in place (same file)
    ino = s.path.stat().st_ino
    s.write({"incidents": incidents()}, mode="append")
    assert s.path.stat().st_ino == ino
    # every layer the file holds is replaced: a new file is renamed over it
    s.write({"grids": GRIDS, "workers": WORKERS, "incidents": incidents(("B1",))}, actor="x")
    assert s.path.stat().st_ino != ino
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.gpkg"]
    assert s.read("incidents")["service_request_id"].tolist() == ["B1"]
    assert s.versions("grids")[["version", "current"]].values.tolist() == [[1, False]]
    assert len(s.read_version("grids", 1)) == 2
    log = s.audit_log()
    assert log["action"].tolist() == ["replace"] * 3 + ["append", "replace", "save_version"]
    s.write({"incidents": incidents(("C1",))}, mode="append")  # the new file takes writes
    layers = dict(map(tuple, pyogrio.list_layers(s.path)))
    assert layers["grids"] == "Polygon" and "audit_log" in layers and "layer_versions" in layers
    assert pyogrio.read_info(s.path, layer="incidents")["features"] == 2
    hit = pyogrio.read_dataframe(s.path, layer="incidents", bbox=(118.7705, 32.0605, 118.7715, 32.0615))
    assert hit["service_request_id"].tolist() == ["B1", "C1"]
    with sqlite3.connect(s.path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        idx = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"incidents_key", "incidents_h3_9", "workers_grid_code"} <= idx
        assert conn.execute("SELECT feature_count FROM gpkg_ogr_contents WHERE table_name = "
                            "'audit_log'").fetchone()[0] == 7


def test_a_foreign_table_keeps_the_geopackage_in_place(tmp_path: Path) -> None:
    s = GeoPackageStore(tmp_path / "s.gpkg")
    s.write({"grids": GRIDS})
    pyogrio.write_dataframe(GRIDS[["code", "geometry"]], s.path, layer="my_notes", driver="GPKG")
    ino = s.path.stat().st_ino
    s.write({"grids": GRIDS[:1]}, reset=True)  # reset drops canonical layers, never foreign ones
    assert s.path.stat().st_ino == ino and s.count("grids") == 1
    assert "my_notes" in dict(map(tuple, pyogrio.list_layers(s.path)))


def test_a_writer_that_waited_on_a_replaced_file_writes_into_the_new_one(tmp_path: Path) -> None:
    s = GeoPackageStore(tmp_path / "s.gpkg")
    s.write({"grids": GRIDS})
    other = GeoPackageStore(tmp_path / "s.gpkg")
    real, replaced = other._connect, []

    def replaced_right_after_opening() -> sqlite3.Connection:
        conn = real()  # opens the current file ...
        if not replaced:  # ... which a whole-file write replaces before the lock is taken
            replaced.append(1)
            s.write({"grids": GRIDS[:1]})
        return conn

    other._connect = replaced_right_after_opening  # type: ignore[method-assign]
    other.record("export_unmasked", "grids", rows=1, actor="t")
    assert replaced and s.audit_log(limit=1)["action"].tolist() == ["export_unmasked"]
    assert s.count("grids") == 1
