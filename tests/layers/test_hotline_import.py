"""12345 hotline exports, written the way people send them, imported into a real GeoPackage store.

Files are written with the csv module (GBK, as Excel saves a CSV in China; UTF-8 with BOM) and
openpyxl (.xlsx), then go through :func:`layers.ingest.import_file` (the pipeline of the CLI and
the Data page) and, once, through the ``gridpulse import`` command in a subprocess.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import openpyxl
import pyogrio
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from layers import taxonomy
from layers.ingest import check_file, import_file
from layers.report import Report
from layers.store import open_store

ROOT = Path(__file__).resolve().parents[2]
ISSUE_HEADER = ["编号", "类别", "描述", "经度", "纬度", "上报时间"]
#: Gulou district, Nanjing: a few hundred metres apart.
NANJING = [(118.7801, 32.0601), (118.7812, 32.0613), (118.7825, 32.0622), (118.7833, 32.0634),
           (118.7846, 32.0645)]
SHANGHAI = (121.4737, 31.2304)


def write_csv(path: Path, header: list[str], rows: list[list[object]], *, encoding: str = "gbk") -> Path:
    with path.open("w", newline="", encoding=encoding) as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def write_xlsx(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "工单"
    ws.append(header)
    for r in rows:
        ws.append(r)
    wb.save(path)
    return path


def issue_rows() -> list[list[object]]:
    (x0, y0), (x1, y1), (x2, y2), (x3, y3), _ = NANJING
    return [
        ["A20250301001", "市容环境", "菜场门口垃圾没人清", x0, y0, "2025-03-01 09:15"],
        ["A20250301002", "占道经营", "路口有人摆摊", x1, y1, "2025-03-01 10:00"],
        ["A20250301003", "违法停车", "小区门口乱停车", x2, y2, "2025/3/2 21:40"],
        ["A20250301004", "市容环境", "垃圾桶满了", x3, y3, "2025-03-03 08:00"],
    ]


@pytest.fixture()
def store(tmp_path: Path):
    with open_store(str(tmp_path / "store.gpkg")) as s:
        yield s


def by_code(report: Report, code: str) -> list:
    return [i for i in report if i.code == code]


def one(report: Report, code: str):
    found = by_code(report, code)
    assert len(found) == 1, f"{code}: {[i.code for i in report]}"
    return found[0]


def rendered(report: Report) -> tuple[str, str]:
    zh, en = report.render("zh"), report.render("en")
    assert "{" not in zh and "{" not in en
    return zh, en


# --------------------------------------------------------------------------- the file from the issue


def test_the_gbk_export_from_the_issue_imports_with_its_assumptions(store, tmp_path) -> None:
    path = write_csv(tmp_path / "12345导出.csv", ISSUE_HEADER, issue_rows())
    report = import_file(store, "incidents", path, actor="热线导入")
    assert report.ok, report.render("en")
    assert report.issues[-1].code == "store.imported"

    got = store.read("incidents").sort_values("service_request_id")
    assert got["service_request_id"].tolist() == [r[0] for r in issue_rows()]
    assert got["category_code"].tolist() == ["01", "01", "05", "01"]
    assert got["item_code"].tolist() == ["0101", "0103", "0501", "0101"]
    assert got["stage"].tolist() == ["collected"] * 4
    assert got["status"].tolist() == ["open"] * 4
    assert got["level"].tolist() == [1] * 4
    assert got["source"].tolist() == ["hotline_12345"] * 4
    assert got["description"].iloc[0] == "菜场门口垃圾没人清"
    assert str(got["requested_datetime"].iloc[2]) == "2025-03-02 21:40:00"
    assert got.geometry.iloc[1].equals_exact(shapely.Point(NANJING[1]), 1e-9)

    # nothing about 编号/类别 being ignored, nothing required that the hotline does not send
    codes = [i.code for i in report]
    assert "validation.unknown_columns" not in codes and "validation.missing_column" not in codes
    # one line per assumed column, with the number of rows
    assumed = {i.column: i for i in by_code(report, "hotline.assumed_column")}
    assert set(assumed) == {"stage", "level", "source"}
    assert all(i.params["count"] == 4 and i.row is None for i in assumed.values())
    matched = one(report, "hotline.names_matched")
    assert (matched.severity, matched.params["count"], matched.params["header"]) == ("info", 3, "类别")
    close = one(report, "hotline.names_close")
    assert close.severity == "warning" and close.params["count"] == 1
    assert "违法停车 → 违章停车（0501）" in close.params["pairs"]
    default = one(report, "hotline.item_default")
    assert default.params["count"] == 2 and "市容环境 → 暴露垃圾（0101）" in default.params["pairs"]

    zh, en = rendered(report)
    assert "已假定：文件没有“等级”列，4 行均按“1”导入" in zh
    assert "已假定：2 行只写了大类" in zh
    assert 'Assumed: the file has no "等级" column; 4 row(s) were imported with "1"' in en
    assert "Assumed: 1 row(s) of \"类别\" do not match a list name exactly" in en
    # stage, level, source, close name, item, due time: once each
    assert zh.count("已假定") == 6 and en.count("Assumed") == 6
    due = one(report, "hotline.due_filled")
    assert due.params["count"] == 4
    # level 1: 72 working hours from Sat 1 Mar 09:15 = Mon 3 .. Thu 13 Mar (67.5 h) + 4.5 h on Fri 14 Mar
    assert str(got["expected_datetime"].iloc[0]) == "2025-03-14 15:00:00"


@pytest.mark.parametrize("variant", ["gbk_ticket_status_address", "xlsx_case_numbers", "utf8_bom_channels",
                                     "english_headers"])
def test_common_header_variants(variant: str, store, tmp_path) -> None:
    (x0, y0), (x1, y1), (x2, y2), *_ = NANJING
    if variant == "gbk_ticket_status_address":
        path = write_csv(tmp_path / "工单.csv", ["工单号", "问题类型", "状态", "地址", "经度", "纬度", "受理时间"], [
            ["T1", "暴露垃圾", "已受理", "中山北路1号", x0, y0, "2025-03-01 09:00"],
            ["T2", "市政设施-井盖缺失", "办理中", "湖南路8号", x1, y1, "2025-03-01 10:00"],
            ["T3", "施工 噪声", "已办结", "狮子桥", x2, y2, "2025-03-01 11:00"],
        ])
        expect = {"service_request_id": ["T1", "T2", "T3"], "item_code": ["0101", "0402", "0701"],
                  "stage": ["collected", "handling", "closed"], "status": ["open", "open", "closed"],
                  "address": ["中山北路1号", "湖南路8号", "狮子桥"], "level": [1, 1, 1],
                  "source": ["hotline_12345"] * 3}
        assumed = {"level", "source"}
    elif variant == "xlsx_case_numbers":
        path = write_xlsx(tmp_path / "案件.xlsx", ["案件编号", "诉求类型", "办理状态", "详细地址", "来电时间", "经度", "纬度"], [
            [202503010001, "电梯故障", "待核实", "北京西路2号", "2025-03-01 09:00", x0, y0],
            [202503010002, "Illegal parking", "已评价", None, "2025-03-01 10:00", x1, y1],
            [202503010003, "物业管理-电梯故障", "不予受理", "宁海路", "2025-03-01 11:00", x2, y2],
        ])
        expect = {"service_request_id": ["202503010001", "202503010002", "202503010003"],
                  "item_code": ["0302", "0501", "0302"], "stage": ["verifying", "evaluated", "closed_no_action"],
                  "status": ["open", "closed", "closed"], "level": [1, 1, 1]}
        assumed = {"level", "source"}
    elif variant == "english_headers":
        path = write_csv(tmp_path / "tickets.csv", ["ticket_id", "category", "status", "channel", "priority",
                                                    "created_at", "longitude", "latitude"], [
            ["E1", "Illegal parking", "In progress", "Hotline", "High", "2025-03-01 09:00", x0, y0],
            ["E2", "Street light out", "Resolved", "WeChat app", "Normal", "2025-03-01 10:00", x1, y1],
            ["E3", "Noise", "New", "Patrol", "Urgent", "2025-03-01 11:00", x2, y2],
        ], encoding="utf-8")
        expect = {"item_code": ["0501", "0403", "0701"], "stage": ["handling", "closed", "collected"],
                  "source": ["hotline_12345", "resident_app", "patrol"], "level": [3, 1, 2]}
        assumed = set()
    else:
        path = write_csv(tmp_path / "export.csv", ["工单编号", "事项", "来源", "紧急程度", "创建时间", "办结时间", "经度", "纬度"], [
            ["U1", "油烟污染", "12345热线", "特急", "2025-03-01 09:00", "2025-03-02 09:00", x0, y0],
            ["U2", "群租房", "网格员上报", "一般", "2025-03-01 10:00", "", x1, y1],
            ["U3", "消防通道堵塞", "", "", "2025-03-01 11:00", "", x2, y2],
        ], encoding="utf-8-sig")
        expect = {"service_request_id": ["U1", "U2", "U3"], "item_code": ["0801", "1101", "1001"],
                  "category_code": ["08", "11", "10"], "source": ["hotline_12345", "patrol", "hotline_12345"],
                  "level": [3, 1, 1], "stage": ["collected"] * 3}
        assumed = {"stage"}
    report = import_file(store, "incidents", path)
    assert report.ok, report.render("en")
    got = store.read("incidents").sort_values("service_request_id")
    for col, values in expect.items():
        assert got[col].tolist() == values, col
    assert {i.column for i in by_code(report, "hotline.assumed_column")} == assumed
    assert "validation.unknown_columns" not in {i.code for i in report}
    rendered(report)
    if variant == "utf8_bom_channels":
        assert str(got["closed_datetime"].iloc[0]) == "2025-03-02 09:00:00"
        blank = {i.column: i for i in by_code(report, "hotline.assumed_blank")}
        assert (blank["source"].params["count"], blank["source"].params["first_row"]) == (1, 4)
        assert (blank["level"].params["count"], blank["level"].params["value"]) == (1, "1")
        mapped = {i.column: i.params for i in by_code(report, "hotline.values_mapped")}
        assert mapped["source"]["pairs"] == "12345热线 → hotline_12345; 网格员上报 → patrol"
        assert (mapped["level"]["count"], mapped["level"]["pairs"]) == (2, "特急 → 3; 一般 → 1")


# --------------------------------------------------------------------------- refusals


def test_an_unknown_category_names_row_column_and_the_closest_name(store, tmp_path) -> None:
    assert import_file(store, "incidents", write_csv(tmp_path / "ok.csv", ISSUE_HEADER, issue_rows())).ok
    before = Path(store.url).read_bytes()
    rows = issue_rows()
    rows[2][1] = "垃圾"
    report = import_file(store, "incidents", write_csv(tmp_path / "bad.csv", ISSUE_HEADER, rows))
    assert not report.ok
    err = one(report, "hotline.name_unknown")
    assert (err.severity, err.row, err.column) == ("error", 4, "category_code")
    assert (err.params["suggestion"], err.params["suggested_code"]) == ("暴露垃圾", "0101")
    assert [(i.code, i.row) for i in report.errors()] == [("hotline.name_unknown", 4)]  # said once
    zh, en = rendered(report)
    assert "“类别”的值“垃圾”不在吹哨清单中；是否为“暴露垃圾”（0101）？" in zh
    assert 'did you mean "暴露垃圾" (0101)?' in en
    assert Path(store.url).read_bytes() == before


def test_an_unknown_status_is_refused_on_its_row(store, tmp_path) -> None:
    rows = [r[:5] + ["已办结" if i else "神秘状态"] + r[5:] for i, r in enumerate(issue_rows())]
    report = import_file(store, "incidents",
                         write_csv(tmp_path / "s.csv", [*ISSUE_HEADER[:5], "办理状态", "上报时间"], rows))
    assert [(i.code, i.row, i.column) for i in report.errors()] == [("hotline.status_unknown", 2, "stage")]
    assert "神秘状态" in report.render("zh") and "cannot be turned into a workflow stage" in report.render("en")
    assert not store.has_layer("incidents")


def test_swapped_coordinates_are_fixed_and_reported_per_row(store, tmp_path) -> None:
    rows = issue_rows()
    rows[1][3], rows[1][4] = rows[1][4], rows[1][3]  # 纬度 in the 经度 column
    report = import_file(store, "incidents", write_csv(tmp_path / "swap.csv", ISSUE_HEADER, rows))
    assert report.ok, report.render("en")
    fixed = one(report, "validation.lonlat_swapped")
    assert (fixed.severity, fixed.row) == ("fixed", 3)
    assert (fixed.params["lon"], fixed.params["lat"]) == (f"{NANJING[1][0]:.6f}", f"{NANJING[1][1]:.6f}")
    codes = {i.code for i in report}
    assert not codes & {"io.lonlat_not_degrees", "validation.crs_assumed"}  # explained by the swap
    zh, en = rendered(report)
    assert f"已按经度 {NANJING[1][0]:.6f}、纬度 {NANJING[1][1]:.6f} 导入" in zh
    p = store.read("incidents").set_index("service_request_id").geometry["A20250301002"]
    assert p.equals_exact(shapely.Point(NANJING[1]), 1e-9)


def test_a_point_in_another_city_is_reported_with_its_row(store, tmp_path) -> None:
    rows = [[f"C{i}", "暴露垃圾", "", x, y, "2025-03-01 09:00"] for i, (x, y) in enumerate([*NANJING, SHANGHAI])]
    # no district in the store: reported against the other points, still imported
    report = import_file(store, "incidents", write_csv(tmp_path / "c.csv", ISSUE_HEADER, rows))
    assert report.ok
    w = one(report, "hotline.other_city")
    assert (w.severity, w.row, w.params["others"]) == ("warning", 7, 5)
    assert 250 < float(w.params["distance_km"]) < 290  # Nanjing - Shanghai
    assert "可能在其他城市" in report.render("zh") and "another city" in report.render("en")
    # with the district in the store: refused, with the row, and the store unchanged
    district = gpd.GeoDataFrame({"code": ["320106"], "name": ["鼓楼区"]},
                                geometry=[shapely.box(118.70, 32.02, 118.82, 32.11)], crs=4326)
    pyogrio.write_dataframe(district, tmp_path / "district.geojson", driver="GeoJSON")
    assert import_file(store, "districts", tmp_path / "district.geojson").ok
    before = Path(store.url).read_bytes()
    report = import_file(store, "incidents", tmp_path / "c.csv")
    assert [(i.code, i.row) for i in report.errors()] == [("validation.far_outside_district", 7)]
    assert Path(store.url).read_bytes() == before


def test_duplicate_ids_are_reported_with_both_rows(store, tmp_path) -> None:
    rows = issue_rows()
    rows[3][0] = rows[1][0]
    report = import_file(store, "incidents", write_csv(tmp_path / "dup.csv", ISSUE_HEADER, rows))
    err = one(report, "validation.duplicate_id")
    assert (err.row, err.params["first_row"], err.params["value"]) == (5, 3, "A20250301002")
    assert "第 3 行已经使用" in report.render("zh") and "row 3 already has it" in report.render("en")
    assert not store.has_layer("incidents")


def test_ids_are_generated_only_when_the_file_has_none(tmp_path) -> None:
    rows = [r[1:] for r in issue_rows()]
    path = write_csv(tmp_path / "noid.csv", ISSUE_HEADER[1:], rows)
    first, again = check_file(path, "incidents"), check_file(path, "incidents")
    assert first.ok, first.report.render("en")
    ids = first.data["service_request_id"].tolist()
    assert len(set(ids)) == 4 and ids == again.data["service_request_id"].tolist()  # stable
    w = one(first.report, "hotline.ids_generated")
    assert (w.severity, w.params["count"], w.params["example"]) == ("warning", 4, ids[0])
    with_ids = check_file(write_csv(tmp_path / "id.csv", ISSUE_HEADER, issue_rows()), "incidents")
    assert not by_code(with_ids.report, "hotline.ids_generated")


def test_a_file_without_any_category_gets_the_catch_all_item(tmp_path) -> None:
    rows = [[r[0], r[2], r[3], r[4], r[5]] for r in issue_rows()]
    res = check_file(write_csv(tmp_path / "nocat.csv", ["编号", "描述", "经度", "纬度", "上报时间"], rows),
                     "incidents")
    assert res.ok, res.report.render("en")
    assert res.data["item_code"].tolist() == ["1402"] * 4
    w = one(res.report, "hotline.category_fallback")
    assert (w.severity, w.params["count"]) == ("warning", 4)
    assert "其他事项 / 其他诉求（1402）" in res.report.render("zh")


def test_canonical_files_pass_unchanged(tmp_path) -> None:
    """A file already in GridPulse's own columns gets no assumption at all."""
    path = write_csv(tmp_path / "canon.csv", ["service_request_id", "requested_datetime", "category_code",
                                              "item_code", "level", "source", "stage", "lon", "lat"],
                     [["G1", "2025-03-01 09:00", "01", "0101", 2, "patrol", "handling", *NANJING[0]]],
                     encoding="utf-8")
    res = check_file(path, "incidents")
    assert res.ok, res.report.render("en")
    assert [i.code for i in res.report if i.code.startswith("hotline.")] == ["hotline.due_filled"]
    assert res.data[["item_code", "level", "source", "stage"]].values.tolist() == [["0101", 2, "patrol", "handling"]]


# --------------------------------------------------------------------------- name matching


NAMES = [(name, c.code) for c in taxonomy.CATEGORIES.values() for name in (c.name_zh, c.name_en)] + \
        [(name, i.code) for i in taxonomy.ITEMS.values() for name in (i.name_zh, i.name_en)]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(NAMES), st.lists(st.sampled_from([" ", "\u3000", "·", "（", "）"]), max_size=3),
       st.booleans())
def test_every_list_name_survives_spacing_punctuation_and_full_width(name_code, noise, full_width) -> None:
    name, code = name_code
    text = "".join(noise) + name + "".join(reversed(noise))
    if full_width:
        text = "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)
    m = taxonomy.match_name(text)
    assert (m.item_code or m.category_code) == code
    assert m.how in ("exact", "normalised")  # never left to the fuzzy step


@pytest.mark.parametrize(("text", "how", "code"), [
    ("违章停车", "exact", "0501"), ("Illegal parking", "exact", "0501"), ("0101", "code", "0101"),
    ("101", "code", "0101"), ("城市管理-市容环境-暴露垃圾", "exact", "0101"), ("违章停车问题", "contains", "0501"),
    ("违法停车", "close", "0501"), ("illegal parkng", "close", "0501"),
])
def test_confident_matches(text: str, how: str, code: str) -> None:
    m = taxonomy.match_name(text)
    assert (m.how, m.item_code or m.category_code) == (how, code)


@pytest.mark.parametrize(("text", "suggestion"), [("垃圾", "0101"), ("电梯坏了", "0302"), ("咨询", "1402")])
def test_unsure_matches_suggest_the_closest(text: str, suggestion: str) -> None:
    m = taxonomy.match_name(text)
    assert (m.confident, m.category_code, m.suggestion) == (False, None, suggestion)


# --------------------------------------------------------------------------- the command


def test_gridpulse_import_on_the_command_line(tmp_path) -> None:
    path = write_csv(tmp_path / "12345导出.csv", ISSUE_HEADER, issue_rows())
    exe = Path(sys.executable).with_name("gridpulse")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "gridpulse"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GRIDPULSE_LANG": "zh"}
    gpkg = tmp_path / "cli.gpkg"
    done = subprocess.run([*cmd, "import", "incidents", str(path), "--store", str(gpkg)],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "已假定：文件没有“阶段”列，4 行均按“问题收集（collected）”导入" in done.stdout
    assert "已导入 4 行" in done.stdout
    with open_store(str(gpkg)) as s:
        assert s.count("incidents") == 4
    rows = issue_rows()
    rows[0][1] = "垃圾"
    bad = write_csv(tmp_path / "bad.csv", ISSUE_HEADER, rows)
    before = gpkg.read_bytes()
    done = subprocess.run([*cmd, "--lang", "en", "import", "incidents", str(bad), "--store", str(gpkg)],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 1
    assert 'Row 2, Column category_code: "类别" value "垃圾" is not in the whistle list' in done.stdout
    assert gpkg.read_bytes() == before


def test_a_resent_export_names_the_rows_already_in_the_store(store, tmp_path) -> None:
    path = write_csv(tmp_path / "day1.csv", ISSUE_HEADER, issue_rows()[:2])
    assert import_file(store, "incidents", path).ok
    before = Path(store.url).read_bytes()
    day2 = write_csv(tmp_path / "day2.csv", ISSUE_HEADER, issue_rows())  # rows 2-3 were sent yesterday
    report = import_file(store, "incidents", day2, mode="append")
    w = one(report, "hotline.ids_in_store")
    assert (w.params["count"], w.params["rows"], w.params["example"]) == (2, "2, 3", "A20250301001")
    assert not report.ok and Path(store.url).read_bytes() == before  # the store refuses; nothing written
    assert "追加导入会被拒绝" in report.render("zh") and "appending them is refused" in report.render("en")


def test_an_export_with_headers_and_no_rows_says_nothing_assumed(tmp_path) -> None:
    res = check_file(write_csv(tmp_path / "empty.csv", ISSUE_HEADER, []), "incidents")
    assert res.ok and len(res.data) == 0
    assert not [i.code for i in res.report if i.code.startswith(("hotline.", "validation."))]


def test_with_grids_but_no_district_the_grids_are_the_area(store, tmp_path) -> None:
    grids = gpd.GeoDataFrame(
        {"网格代码": ["320106001001001"], "名称": ["宁海路第一网格"], "网格类型": ["comprehensive"],
         "所属社区代码": ["320106001001"], "户数": [420], "人口": [1130]},
        geometry=[shapely.box(118.775, 32.055, 118.790, 32.070)], crs=4326)
    pyogrio.write_dataframe(grids, tmp_path / "grids.geojson", driver="GeoJSON")
    assert import_file(store, "grids", tmp_path / "grids.geojson").ok
    rows = [[f"G{i}", "暴露垃圾", "", x, y, "2025-03-01 09:00"] for i, (x, y) in enumerate([*NANJING[:2], SHANGHAI])]
    report = import_file(store, "incidents", write_csv(tmp_path / "g.csv", ISSUE_HEADER, rows))
    far = one(report, "validation.far_outside_district")
    assert (far.severity, far.row) == ("error", 4) and float(far.params["distance_km"]) > 250
    assert not by_code(report, "hotline.other_city")
    assert not store.has_layer("incidents")


def test_a_category_and_an_item_that_disagree_are_refused(tmp_path) -> None:
    rows = [["K1", "市容环境", "暴露垃圾", "2025-03-01 09:00", *NANJING[0]],
            ["K2", "交通秩序", "电梯故障", "2025-03-01 10:00", *NANJING[1]]]
    res = check_file(write_csv(tmp_path / "k.csv", ["编号", "类别", "事项", "上报时间", "经度", "纬度"], rows),
                     "incidents")
    assert [(i.code, i.row, i.column) for i in res.report.errors()] == [
        ("validation.item_category_mismatch", 3, "item_code")]
