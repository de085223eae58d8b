"""The import pipeline on real files written by real tools (csv module, GDAL via pyogrio)."""

from __future__ import annotations

import csv
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from geo.crs import gcj02_to_wgs84, wgs84_to_gcj02
from layers.ingest import check_file, import_file
from layers.store import open_store

GRID_ROWS = [
    {"网格代码": "320106001001001", "名称": "宁海路第一网格", "网格类型": "comprehensive",
     "所属社区代码": "320106001001", "户数": 420, "人口": 1130},
    {"网格代码": "320106001001002", "名称": "宁海路第二网格", "网格类型": "comprehensive",
     "所属社区代码": "320106001001", "户数": 385, "人口": 1012},
]
BOXES = [(118.770, 32.060, 118.775, 32.065), (118.775, 32.060, 118.780, 32.065)]
WORKER_HEADER = ["人员编号", "姓名", "手机号", "岗位", "网格代码", "AB岗"]


def write_grids(path: Path) -> Path:
    gdf = gpd.GeoDataFrame(pd.DataFrame(GRID_ROWS), geometry=[shapely.box(*b) for b in BOXES],
                           crs=4326)
    pyogrio.write_dataframe(gdf, path, driver="GeoJSON")
    return path


def write_csv(path: Path, header: list[str], rows: list[list[object]], *, encoding="gbk") -> Path:
    with path.open("w", newline="", encoding=encoding) as fh:  # as Excel saves a CSV in China
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture()
def store(tmp_path: Path):
    with open_store(str(tmp_path / "store.gpkg")) as s:
        yield s


def test_a_clean_file_is_validated_and_written(store, tmp_path) -> None:
    report = import_file(store, "grids", write_grids(tmp_path / "网格.geojson"), actor="王工")
    assert report.ok, report.render("en")
    assert report.issues[-1].code == "store.imported"
    assert store.read("grids")["code"].tolist() == ["320106001001001", "320106001001002"]
    log = store.audit_log(limit=1)
    assert log[["actor", "action", "layer", "rows", "note"]].values.tolist() == [
        ["王工", "replace", "grids", 2, "import 网格.geojson"]]


def test_a_file_with_errors_changes_nothing(store, tmp_path) -> None:
    import_file(store, "grids", write_grids(tmp_path / "g.geojson"))
    before = Path(store.url).read_bytes()
    bad = write_csv(tmp_path / "workers.csv", WORKER_HEADER, [
        ["W1", "张三", "13812345678", "grid_leader", "320106001001001", "A"],
        ["W2", "李四", "13900001111", "boss", "3201060010010", "C"],  # role, code, post wrong
    ])
    report = import_file(store, "workers", bad)
    assert not report.ok
    rows = {(i.row, i.column) for i in report.errors()}
    assert (3, "role") in rows and (3, "grid_code") in rows
    assert Path(store.url).read_bytes() == before
    assert not store.has_layer("workers")


def test_references_come_from_the_store(store, tmp_path) -> None:
    import_file(store, "grids", write_grids(tmp_path / "g.geojson"))
    f = write_csv(tmp_path / "w.csv", WORKER_HEADER,
                  [["W1", "张三", "13812345678", "grid_leader", "320106009009009", "A"]])
    report = check_file(f, "workers", store=store)
    assert [i.code for i in report.report.errors()] == ["validation.unknown_parent"]
    assert check_file(f, "workers").ok  # without the store there is nothing to refer to


def test_an_unreadable_file_is_reported_not_raised(store, tmp_path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    report = import_file(store, "workers", empty)
    assert not report.ok and report.errors()[0].code.startswith("io.")
    assert store.layer_names() == []


def test_gcj02_coordinates_are_stored_as_wgs84(store, tmp_path) -> None:
    import_file(store, "grids", write_grids(tmp_path / "g.geojson"))
    lon, lat = wgs84_to_gcj02(np.array([118.772]), np.array([32.062]))
    f = write_csv(tmp_path / "incidents.csv",
                  ["工单号", "受理时间", "大类代码", "事项代码", "等级", "来源", "办理状态", "经度", "纬度"],
                  [["A1", "2024-05-01 08:00", "01", "0101", 1, "patrol", "collected",
                    f"{lon[0]:.7f}", f"{lat[0]:.7f}"]], encoding="utf-8-sig")
    report = import_file(store, "incidents", f, datum="gcj02")
    assert report.ok, report.render("en")
    p = store.read("incidents").geometry.iloc[0]
    assert abs(p.x - 118.772) < 1e-6 and abs(p.y - 32.062) < 1e-6
    back = gcj02_to_wgs84(lon, lat)
    assert abs(float(back[0][0]) - p.x) < 1e-6


def test_a_store_refusal_becomes_a_report_error(store, tmp_path) -> None:
    f = write_csv(tmp_path / "w.csv", WORKER_HEADER,
                  [["W1", "张三", "13812345678", "grid_leader", "320106001001001", "A"]])
    assert import_file(store, "workers", f).ok
    before = store.read("workers")
    report = import_file(store, "workers", f, mode="append")  # W1 again
    assert not report.ok and report.errors()[0].code == "store.constraint"
    pd.testing.assert_frame_equal(store.read("workers"), before)
