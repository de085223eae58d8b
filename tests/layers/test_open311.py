"""Open311 GeoReport v2 export (validated against its field list), read-back, and hotline import."""

from __future__ import annotations

import json
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geo.crs import convert_lonlat
from layers.i18n import catalogue
from layers.open311 import (
    OPEN311_FIELDS,
    import_hotline,
    read_open311,
    to_open311,
    validate_open311,
    write_open311,
)

# The field list of a GeoReport v2 service request (GET requests.json), as the specification lists it.
SPEC_FIELDS = [
    "service_request_id", "status", "status_notes", "service_name", "service_code", "description",
    "agency_responsible", "service_notice", "requested_datetime", "updated_datetime", "expected_datetime",
    "address", "address_id", "zipcode", "lat", "long", "media_url",
]
W3C = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+08:00$")


def incidents() -> gpd.GeoDataFrame:
    t = pd.Timestamp("2025-03-03 09:00")
    return gpd.GeoDataFrame(
        {
            "service_request_id": ["GP-1", "GP-2", "GP-3"],
            "stage": ["handling", "evaluated", "closed_no_action"],
            "whistle": ["tough", "none", "none"],
            "item_code": ["0101", "0402", "1402"],
            "category_code": ["01", "04", "14"],
            "service_name": [None, "井盖缺失", None],
            "department": ["urban_management", "water", None],
            "description": ["市场门口垃圾堆积", None, "重复反映"],
            "requested_datetime": [t, t, t],
            "updated_datetime": [t + pd.Timedelta(hours=2), None, t],
            "expected_datetime": [t + pd.Timedelta(hours=72), t + pd.Timedelta(hours=24), None],
            "closed_datetime": [None, t + pd.Timedelta(hours=5), t],
            "address": ["中山北路1号", "湖南路", None],
            "reporter_name": ["张三", "李四", "王五"],
            "reporter_phone": ["13800000000", None, None],
        },
        geometry=[shapely.Point(118.78, 32.06), shapely.Point(118.781234567, 32.0712345), None],
        crs=4326,
    )


def test_export_has_exactly_the_specified_fields_and_validates() -> None:
    assert list(OPEN311_FIELDS) == SPEC_FIELDS
    reqs = to_open311(incidents())
    assert validate_open311(reqs).ok
    for r in reqs:
        assert list(r) == SPEC_FIELDS
        assert r["status"] in ("open", "closed")
        assert W3C.match(r["requested_datetime"])
    a, b, c = reqs
    assert (a["status"], b["status"], c["status"]) == ("open", "closed", "closed")
    assert a["status_notes"] == "处理中（攻坚克难哨）" and c["status_notes"] == "不予受理"
    assert a["service_name"] == "暴露垃圾" and b["service_name"] == "井盖缺失"
    assert a["agency_responsible"] == "城管" and c["agency_responsible"] is None
    assert b["updated_datetime"] is None and c["expected_datetime"] is None
    assert (b["lat"], b["long"]) == (32.0712345, 118.7812346)
    assert c["lat"] is None and c["long"] is None
    assert a["expected_datetime"] == "2025-03-06T09:00:00+08:00"
    assert "张三" not in json.dumps(reqs, ensure_ascii=False)  # no personal information


def test_written_file_is_valid_json_and_reads_back(tmp_path: Path) -> None:
    p = write_open311(incidents(), tmp_path / "requests.json", lang="en")
    doc = json.loads(p.read_text(encoding="utf-8"))
    assert validate_open311(doc).ok and doc[0]["agency_responsible"] == "Urban management"
    back, rep = read_open311(p)
    assert rep.ok
    src = incidents()
    assert back["service_request_id"].tolist() == src["service_request_id"].tolist()
    assert back["requested_datetime"].tolist() == src["requested_datetime"].tolist()
    assert back["item_code"].tolist() == ["0101", "0402", "1402"]
    assert back["category_code"].tolist() == ["01", "04", "14"]
    assert back["stage"].tolist() == ["collected", "closed", "closed"]
    assert back.crs.equals("EPSG:4326") and back.geometry.iloc[2] is None
    assert back.geometry.iloc[0].equals_exact(shapely.Point(118.78, 32.06), 1e-9)


def test_a_table_with_lat_long_columns_exports_too() -> None:
    df = pd.DataFrame({"service_request_id": [7], "status": ["closed"], "requested_datetime": ["2025-01-01 08:00"],
                       "lat": [32.0], "long": [118.0]})
    r = to_open311(df)[0]
    assert r["service_request_id"] == "7" and r["status"] == "closed" and r["long"] == 118.0
    assert r["requested_datetime"] == "2025-01-01T08:00:00+08:00"


@pytest.mark.parametrize(
    ("change", "key", "column"),
    [
        (lambda r: r.pop("media_url"), "missing_field", "media_url"),
        (lambda r: r.update(token="x"), "unknown_field", "token"),
        (lambda r: r.update(status="pending"), "bad_status", "status"),
        (lambda r: r.update(requested_datetime="2025-03-03 09:00"), "bad_datetime", "requested_datetime"),
        (lambda r: r.update(requested_datetime=None), "bad_datetime", "requested_datetime"),
        (lambda r: r.update(lat=91.0), "bad_coordinate", "lat"),
        (lambda r: r.update(long="118"), "bad_coordinate", "long"),
        (lambda r: r.update(service_request_id=12), "bad_id", "service_request_id"),
        (lambda r: r.update(description=5), "bad_type", "description"),
    ],
)
def test_validation_names_each_problem(change, key: str, column: str) -> None:
    reqs = to_open311(incidents())
    change(reqs[1])
    rep = validate_open311(reqs)
    assert [(i.code, i.row, i.column) for i in rep.errors()] == [(f"incidents.open311.{key}", 2, column)]
    assert f"incidents.open311.{key}" in catalogue()
    assert "{" not in rep.render("zh") and "{" not in rep.render("en")


def test_validation_of_the_document_shape() -> None:
    assert validate_open311({"service_request_id": "1"}).errors()[0].code == "incidents.open311.not_a_list"
    assert validate_open311([1]).errors()[0].code == "incidents.open311.not_an_object"


# ----------------------------------------------------------------------------- hotline import


def hotline_table() -> pd.DataFrame:
    return pd.DataFrame({
        "工单编号": [20250301001, 20250301002, 20250301003, 20250301004, 20250301005],
        "来电时间": ["2025-03-01 09:15", "2025-03-01 10:00", "2025-03-02 21:40", "2025-03-03 08:00", "坏时间"],
        "诉求内容": ["菜场门口垃圾没人清", "楼下井盖丢了", "夜里烧烤太吵", "请帮忙", "小区电梯又坏了"],
        "问题分类": ["城市管理-市容环境-暴露垃圾", "市政设施-井盖缺失", "噪声扰民", "咨询", "物业管理-电梯故障"],
        "承办单位": ["鼓楼区城管局", "区水务局", "公安分局宁海路派出所", "某某公司", None],
        "办理状态": ["已办结", "办理中", "待受理", "不予受理", "神秘状态"],
        "紧急程度": ["一般", "特急", "紧急", 2, None],
        "受理渠道": ["12345热线", "随手拍", None, "网格员上报", "12345热线"],
        "事发地址": ["中山北路1号", "湖南路8号", "狮子桥", None, "北京西路"],
        "来电人": ["张先生", "李女士", None, None, "王"],
        "经度": [118.7800, 118.7810, 118.7820, 118.7830, 118.7840],
        "纬度": [32.0600, 32.0610, 32.0620, 32.0630, 32.0640],
        "满意度": ["满意", None, None, None, None],
    })


def test_import_a_gbk_csv_export(tmp_path: Path) -> None:
    p = tmp_path / "12345工单导出.csv"
    hotline_table().to_csv(p, index=False, encoding="gbk")
    gdf, rep = import_hotline(p)
    assert rep.ok, rep.render("en")
    assert gdf.crs.equals("EPSG:4326") and len(gdf) == 5
    assert gdf["service_request_id"].tolist()[:2] == ["20250301001", "20250301002"]
    assert gdf["item_code"].tolist() == ["0101", "0402", None, "1402", "0302"]
    assert gdf["category_code"].tolist() == ["01", "04", "07", "14", "03"]  # 噪声扰民: category only
    assert gdf["stage"].tolist() == ["closed", "handling", "collected", "closed_no_action", "collected"]
    assert gdf["status"].tolist() == ["closed", "open", "open", "closed", "open"]
    assert gdf["department"].tolist() == ["urban_management", "water", "public_security", None, None]
    assert gdf["level"].tolist() == [1, 3, 2, 2, 1]
    assert gdf["source"].tolist() == ["hotline_12345", "resident_app", "hotline_12345", "patrol", "hotline_12345"]
    assert gdf["reporter_name"].iloc[0] == "张先生"
    assert gdf["requested_datetime"].iloc[0] == pd.Timestamp("2025-03-01 09:15")
    assert pd.isna(gdf["requested_datetime"].iloc[4])
    # due times from the time-limit table: level 1 = 72 working hours (Sat 1 Mar 09:15 -> Mon 3 ..
    # Thu 13 Mar, 67.5 h, + 4.5 h on Fri 14 Mar); 0402 urgent = 4 calendar hours
    assert gdf["expected_datetime"].iloc[0] == pd.Timestamp("2025-03-14 15:00")
    assert gdf["expected_datetime"].iloc[1] == pd.Timestamp("2025-03-01 14:00")
    codes = {i.code for i in rep}
    for key in ("mapped_columns", "unmapped_columns", "unknown_stage", "unknown_department", "unknown_type",
                "category_only", "bad_time", "due_filled"):
        assert f"incidents.import.{key}" in codes, key
        assert f"incidents.import.{key}" in catalogue()
    assert "满意度" in rep.render("zh")
    assert "{" not in rep.render("zh") and "{" not in rep.render("en")
    assert gdf.geometry.iloc[0].equals_exact(shapely.Point(118.78, 32.06), 1e-9)
    assert validate_open311(to_open311(gdf.dropna(subset=["requested_datetime"]))).ok


def test_import_an_xlsx_without_coordinates_and_with_gcj02(tmp_path: Path) -> None:
    t = hotline_table()
    p = tmp_path / "export.xlsx"
    t.drop(columns=["经度", "纬度"]).to_excel(p, index=False)
    gdf, rep = import_hotline(p)
    assert len(gdf) == 5 and gdf.geometry.isna().all()
    assert "incidents.import.no_coordinates" in {i.code for i in rep}
    q = tmp_path / "gcj.xlsx"
    t.to_excel(q, index=False)
    gdf, rep = import_hotline(q, datum="gcj02")
    lon, lat = convert_lonlat(t["经度"].to_numpy(), t["纬度"].to_numpy(), src="gcj02", dst="wgs84")
    assert np.allclose(gdf.geometry.x, lon, atol=1e-7) and np.allclose(gdf.geometry.y, lat, atol=1e-7)
    assert "incidents.import.datum_converted" in {i.code for i in rep}
    with pytest.raises(ValueError, match="datum"):
        import_hotline(q, datum="wgs72")


def test_missing_ids_and_times_are_errors(tmp_path: Path) -> None:
    p = tmp_path / "bad.csv"
    pd.DataFrame({"诉求内容": ["x"], "经度": [118.78], "纬度": [32.06]}).to_csv(p, index=False)
    _, rep = import_hotline(p)
    assert not rep.ok
    assert {i.column for i in rep.errors()} == {"service_request_id", "requested_datetime"}
    d = tmp_path / "dup.csv"
    pd.DataFrame({"工单编号": ["A", "A"], "来电时间": ["2025-03-01 08:00"] * 2}).to_csv(d, index=False)
    _, rep = import_hotline(d)
    assert "incidents.import.duplicate_ids" in {i.code for i in rep}
