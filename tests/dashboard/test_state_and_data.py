"""The view in the link, the Data page's read → validate → commit → export, the wall's HTML."""

from __future__ import annotations

import doctest
import shutil

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from dashboard import _data as data
from dashboard import _kpis, _wall, maps
from dashboard.state import View
from layers.io import read_file
from layers.store import open_store


def test_view_round_trips_through_query_params() -> None:
    v = View(sub="320106001", com="320106001002", grid="320106001002003",
             layers=("sub", "comp", "inc"), basemap="amap", metric="population", lang="en")
    assert View.from_params(v.to_params()) == v
    assert View().to_params() == {}  # defaults leave the link clean


def test_view_drops_values_that_are_not_allowed() -> None:
    v = View.from_params({"sub": "12ab", "layers": "sub,bogus,ded", "basemap": "google",
                          "metric": "nope", "lang": "fr"})
    assert v == View(layers=("sub", "ded"))


def test_dashboard_doctests() -> None:
    for mod in (maps, _kpis):
        failures, _ = doctest.testmod(mod)
        assert failures == 0, mod.__name__


@pytest.fixture()
def store_copy(demo_store: str, tmp_path) -> str:
    path = tmp_path / "copy.gpkg"
    shutil.copy(demo_store, path)
    return str(path)


def test_upload_of_a_gbk_csv_is_read_validated_and_committed(store_copy, tmp_path) -> None:
    store = open_store(store_copy)
    grids = store.read("grids")
    com = str(grids["community_code"].iloc[0])
    grid = str(grids.loc[grids["community_code"] == com, "code"].iloc[0])
    inside = grids.loc[grids["code"] == grid].geometry.iloc[0].representative_point()
    # a facility table as people send it: Chinese headers, GBK, longitude/latitude columns
    df = pd.DataFrame({"设施编号": ["F-new-1", "F-new-2"], "设施类型": ["clinic", "market"],
                       "名称": ["新建卫生站", "新建菜市场"], "社区代码": [com, com],
                       "经度": [inside.x, inside.x + 1e-4], "纬度": [inside.y, inside.y]})
    path = tmp_path / "设施.csv"
    df.to_csv(path, index=False, encoding="gbk")
    refs = {n: store.read(n) for n in data.references("facilities")}
    checked = data.check_upload(path.read_bytes(), path.name, layer="facilities", datum="wgs84",
                                reference=refs, lang="zh")
    assert checked.ok, checked.report.render("en")
    assert len(checked.data) == 2 and checked.data.crs.to_epsg() == 4326
    table_zh = data.report_table(checked.report, "zh")
    table_en = data.report_table(checked.report, "en")
    assert list(table_zh.columns) == ["级别", "位置", "问题", "修改方法"]
    assert list(table_en.columns) == ["Severity", "Where", "Problem", "How to fix"]
    before = store.count("facilities")
    store.write({"facilities": checked.data}, mode="append", actor="dashboard", note=path.name)
    assert store.count("facilities") == before + 2
    assert store.audit_log(limit=1)["note"].iloc[0] == "设施.csv"


def test_a_broken_upload_is_blocked_with_fixes_in_both_languages(demo_store, tmp_path) -> None:
    store = open_store(demo_store)
    bad = gpd.GeoDataFrame(
        {"code": ["32010600100100X"], "name": ["坏网格"], "kind": ["comprehensive"],
         "community_code": ["999999999999"], "households": [-5], "population": [100]},
        geometry=[shapely.box(118.7, 32.0, 118.71, 32.01)], crs=4326)
    path = tmp_path / "grids.geojson"
    bad.to_file(path, driver="GeoJSON")
    refs = {n: store.read(n) for n in data.references("grids")}
    checked = data.check_upload(path.read_bytes(), path.name, layer="grids", datum="wgs84",
                                reference=refs, lang="en")
    assert not checked.ok
    zh = data.report_table(checked.report, "zh")
    en = data.report_table(checked.report, "en")
    assert len(zh) == len(en) >= 2
    assert (zh["级别"] == "错误").any() and (en["Severity"] == "Error").any()
    assert zh["修改方法"].str.len().gt(0).any()


def test_an_unreadable_upload_reports_instead_of_raising(tmp_path) -> None:
    checked = data.check_upload(b"not a spreadsheet", "old.xls", layer="grids", datum="wgs84",
                                reference={}, lang="zh")
    assert not checked.ok and checked.data is None
    assert "xlsx" in data.report_table(checked.report, "zh").iloc[0, 3]


@pytest.mark.parametrize("suffix", list(data.EXPORT_FORMATS))
def test_every_export_format_reads_back(demo_store, tmp_path, suffix) -> None:
    grids = open_store(demo_store).read("grids")
    blob = data.export_bytes(grids, "grids", suffix)
    path = tmp_path / f"grids{suffix}"
    path.write_bytes(blob)
    back = read_file(path, layer="grids").data
    assert len(back) == len(grids)
    assert set(back["code"].astype(str)) == set(grids["code"])


def test_references_cover_parents_and_district() -> None:
    assert data.references("grids") == ["communities", "districts"]
    assert data.references("workers") == ["grids"]
    assert "districts" not in data.references("incident_events")


def test_wall_html_escapes_and_translates() -> None:
    now = pd.Timestamp("2024-05-20 12:00")
    inc = pd.DataFrame({
        "service_request_id": ["a", "b"], "requested_datetime": pd.to_datetime(["2024-05-20 11:50", "2024-05-10 09:00"]),
        "expected_datetime": pd.to_datetime(["2024-05-21", "2024-05-12"]), "closed_datetime": pd.NaT,
        "stage": ["collected", "handling"], "whistle": ["none", "tough"], "item_code": ["0101", "0102"],
        "grid_code": ["g1", "g2"], "department": [None, "urban_management"]})
    places = {"g1": "<b>东风社区</b>", "g2": "西园社区第二网格"}
    feed = _wall.feed_html(inc, places, now=now, lang="zh")
    assert "10 分钟前" in feed and "&lt;b&gt;东风社区" in feed and "<b>东风" not in feed
    wh = _wall.whistle_html(inc, places, now=now, lang="en")
    assert "10 days ago" in wh and "Overdue" in wh and "Urban management" in wh
    k = _kpis.wall_kpis(inc, None, now=now)
    html = _wall.kpi_html(k, "en")
    assert html.count("data-kpi=") == 7 and ">1<" in html
