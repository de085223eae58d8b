"""Tests of layers.validate: each rule triggered by a tiny hand-drawn case, and passed by a clean one.

Geometry is drawn in metres in UTM zone 50N (EPSG:32650) around Nanjing's Gulou district
(origin ``X0, Y0`` ≈ 118.77 E, 32.07 N) and converted to longitude/latitude where needed, so
areas of overlaps and gaps are known exactly.

Community 320106001001, 200 m × 200 m, tiled by four comprehensive 100 m grids::

    y=200 +---------+---------+
          |  ..003  |  ..004  |
    y=100 +---------+---------+
          |  ..001  |  ..002  |
    y=0   +---------+---------+
         x=0      x=100     x=200
"""

from __future__ import annotations

import copy
import re
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box

from geo.crs import convert_geometries, wgs84_to_gcj02
from layers import taxonomy
from layers.errors import LayerValidationError
from layers.i18n import catalogue
from layers.report import Report
from layers.schema import SCHEMAS
from layers.validate import ValidationResult, validate, validate_layers

X0, Y0 = 667000.0, 3549500.0
UTM = "EPSG:32650"
COMMUNITY = "320106001001"
SUBDISTRICT = "320106001"
DISTRICT = "320106"


def mbox(x0: float, y0: float, x1: float, y1: float) -> Polygon:
    """A rectangle in metres from the origin (UTM 50N)."""
    return box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def to_ll(geoms: list) -> list:
    """UTM 50N geometries to EPSG:4326."""
    return list(gpd.GeoSeries(geoms, crs=UTM).to_crs(4326).values)


def ll(x_m: float, y_m: float) -> tuple[float, float]:
    """Longitude/latitude of a point given in metres from the origin."""
    p = to_ll([Point(X0 + x_m, Y0 + y_m)])[0]
    return p.x, p.y


def grid_frame(boxes: list[Polygon], *, kinds: list[str] | None = None, crs: str = UTM,
               codes: list[str] | None = None) -> gpd.GeoDataFrame:
    n = len(boxes)
    df = gpd.GeoDataFrame(
        {
            "code": codes or [f"{COMMUNITY}{i + 1:03d}" for i in range(n)],
            "name": [f"网格{i + 1}" for i in range(n)],
            "kind": kinds or ["comprehensive"] * n,
            "community_code": [COMMUNITY] * n,
            "households": [350] * n,
            "population": [900] * n,
        },
        geometry=boxes, crs=UTM,
    )
    return df if crs == UTM else df.to_crs(crs)


def tiling_grids() -> list[Polygon]:
    return [mbox(0, 0, 100, 100), mbox(100, 0, 200, 100), mbox(0, 100, 100, 200), mbox(100, 100, 200, 200)]


@pytest.fixture(scope="module")
def reference() -> dict[str, gpd.GeoDataFrame]:
    districts = gpd.GeoDataFrame({"code": [DISTRICT], "name": ["鼓楼区"]},
                                 geometry=to_ll([mbox(-500, -500, 1500, 1500)]), crs=4326)
    subdistricts = gpd.GeoDataFrame({"code": [SUBDISTRICT], "name": ["宁海路街道"], "district_code": [DISTRICT]},
                                    geometry=to_ll([mbox(-500, -500, 1500, 1500)]), crs=4326)
    communities = gpd.GeoDataFrame(
        {"code": [COMMUNITY, "320106001002"], "name": ["甲社区", "乙社区"],
         "subdistrict_code": [SUBDISTRICT, SUBDISTRICT]},
        geometry=to_ll([mbox(0, 0, 200, 200), mbox(200, 0, 400, 200)]), crs=4326)
    grids = grid_frame(tiling_grids(), crs="EPSG:4326")
    return {"districts": districts, "subdistricts": subdistricts, "communities": communities, "grids": grids}


def errors(res: ValidationResult | Report) -> list[tuple[str, int | None, str | None]]:
    rep = res.report if isinstance(res, ValidationResult) else res
    return [(i.code, i.row, i.column) for i in rep if i.severity == "error"]


def codes(res: ValidationResult | Report, severity: str | None = None) -> list[str]:
    rep = res.report if isinstance(res, ValidationResult) else res
    return [i.code for i in rep if severity is None or i.severity == severity]


def issue(res: ValidationResult | Report, code: str):
    rep = res.report if isinstance(res, ValidationResult) else res
    found = [i for i in rep if i.code == code]
    assert found, f"no {code} in {[i.code for i in rep]}"
    return found[0]


def incidents_frame(n: int = 3, *, lonlat: list[tuple[float, float]] | None = None) -> pd.DataFrame:
    pts = lonlat or [ll(50 + 10 * i, 50) for i in range(n)]
    return pd.DataFrame({
        "service_request_id": [f"GL{i:06d}" for i in range(n)],
        "requested_datetime": ["2024-03-05 14:30"] * n,
        "category_code": ["01"] * n,
        "item_code": ["0101"] * n,
        "level": [1] * n,
        "source": ["patrol"] * n,
        "stage": ["collected"] * n,
        "grid_code": [f"{COMMUNITY}001"] * n,
        "reporter_phone": ["13812345678"] * n,
        "lon": [p[0] for p in pts],
        "lat": [p[1] for p in pts],
    })


# --------------------------------------------------------------------------- passing cases


def test_clean_grids_pass_with_schema_dtypes_and_epsg4326(reference) -> None:
    data = grid_frame(tiling_grids(), crs="EPSG:4326")
    res = validate(data, "grids", reference=reference)
    assert res.ok, res.render()
    assert codes(res) == []
    out = res.data
    assert isinstance(out, gpd.GeoDataFrame) and out.crs.to_epsg() == 4326
    assert list(out.columns) == [*SCHEMAS["grids"].columns, "geometry"]
    assert out["households"].dtype == "Int64"
    assert out["code"].tolist()[0] == "320106001001001"
    assert pd.api.types.is_string_dtype(out["code"])
    assert out["leader"].isna().all()  # optional column added, empty


def test_clean_incidents_table_with_lonlat_columns(reference) -> None:
    res = validate(incidents_frame(), "incidents", reference=reference)
    assert res.ok, res.render()
    assert codes(res) == ["validation.crs_assumed"]  # a table has no CRS: lon/lat assumed, with a warning
    assert res.data.geometry.geom_type.tolist() == ["Point"] * 3
    assert res.data["requested_datetime"].dtype.kind == "M"
    assert res.data["level"].dtype == "Int64"


# --------------------------------------------------------------------------- columns and values


def test_missing_required_column_is_reported_once_with_its_header() -> None:
    data = grid_frame(tiling_grids()).drop(columns=["households"])
    res = validate(data, "grids", file="grids.gpkg")
    i = issue(res, "validation.missing_column")
    assert (i.severity, i.column, i.file, i.row) == ("error", "households", "grids.gpkg", None)
    assert "户数" in i.fix("zh") and "户数" in i.fix("en")
    assert "households" in i.message("en")
    assert len(res.data) == 4 and res.data["households"].isna().all()


def test_chinese_headers_from_code_are_recognised() -> None:
    data = grid_frame(tiling_grids()).rename(columns={"households": "户数", "code": "网格代码"})
    res = validate(data, "grids")
    assert "validation.missing_column" not in codes(res)
    assert res.data["households"].tolist() == [350] * 4


def test_mistyped_numbers_with_spreadsheet_row_numbers() -> None:
    data = grid_frame(tiling_grids())
    data["households"] = ["350", "三百", 350.5, -1]
    data["population"] = ["1,200", 900, 900, 900]
    res = validate(data, "grids", file="grids.xlsx")
    assert ("validation.not_a_number", 3, "households") in errors(res)
    assert ("validation.not_whole_number", 4, "households") in errors(res)
    assert ("validation.out_of_range", 5, "households") in errors(res)
    assert res.data["population"].tolist()[0] == 1200
    assert res.data["households"].tolist()[0] == 350
    assert res.data["households"].isna().tolist() == [False, True, True, False]


def test_empty_required_cell() -> None:
    data = grid_frame(tiling_grids())
    data["name"] = ["a", None, "", "d"]
    res = validate(data, "grids")
    assert [e for e in errors(res) if e[0] == "validation.empty_value"] == [
        ("validation.empty_value", 3, "name"), ("validation.empty_value", 4, "name")]


def test_bad_dates_and_excel_serial_dates() -> None:
    df = incidents_frame(4)
    df["requested_datetime"] = ["2024-03-05 14:30", "2024年3月6日 8时", "明天", "2024-13-45"]
    res = validate(df, "incidents")
    bad = [e for e in errors(res) if e[0] == "validation.bad_date"]
    assert bad == [("validation.bad_date", 4, "requested_datetime"), ("validation.bad_date", 5, "requested_datetime")]
    assert res.data["requested_datetime"].iloc[1] == pd.Timestamp("2024-03-06 08:00")
    df["requested_datetime"] = [45356.5, 45357.0, 45358.25, 45359.0]
    res = validate(df, "incidents")
    assert "validation.date_from_excel_serial" in codes(res, "fixed")
    assert res.data["requested_datetime"].iloc[0] == pd.Timestamp("2024-03-05 12:00")


def test_timezone_aware_dates_become_beijing_time() -> None:
    df = incidents_frame(1)
    df["requested_datetime"] = ["2024-03-05T06:30:00Z"]
    res = validate(df, "incidents")
    assert res.data["requested_datetime"].iloc[0] == pd.Timestamp("2024-03-05 14:30")


@pytest.mark.parametrize(
    ("value", "expected", "problem"),
    [
        ("320106001001001", "320106001001001", None),
        (320106001001001, "320106001001001", None),
        (320106001001001.0, "320106001001001", "fixed"),  # Excel number, recoverable
        ("3.20106001001001E+14", "320106001001001", "fixed"),  # scientific, all digits kept
        ("320106001001001.0", "320106001001001", "fixed"),
        (" ３２０１０６００１００１００１ ", "320106001001001", None),  # full-width digits, spaces
        ("3.20106E+14", None, "validation.code_lost_digits"),  # Excel cut it to 6 digits
        ("32010600100100", None, "validation.code_wrong_length"),
        ("3201060010010O1", None, "validation.code_not_digits"),
        (20106001001001, None, "validation.code_lost_zeros"),
        ("990106001001001", "990106001001001", "validation.code_unknown_province"),  # kept, but an error
    ],
)
def test_codes_from_excel(value, expected, problem) -> None:
    data = grid_frame(tiling_grids()[:1])
    data["code"] = pd.Series([value], dtype=object)
    res = validate(data, "grids")
    got = res.data["code"].iloc[0]
    assert (None if pd.isna(got) else got) == expected
    if problem is None:
        assert res.ok and "validation.code_from_number" not in codes(res)
    elif problem == "fixed":
        assert res.ok and "validation.code_from_number" in codes(res, "fixed")
    else:
        assert (problem, 2, "code") in errors(res)


def test_allowed_values_normalised_or_rejected_with_a_suggestion() -> None:
    data = grid_frame(tiling_grids())
    data["kind"] = ["综合网格", "Comprehensive", "comprehensiv", "dedicated"]
    res = validate(data, "grids")
    fixed = issue(res, "validation.value_normalized")
    assert fixed.severity == "fixed" and fixed.params["count"] == 2
    assert errors(res) == [("validation.not_allowed", 4, "kind")]
    assert "comprehensive" in issue(res, "validation.not_allowed").fix("en")
    assert res.data["kind"].tolist()[:2] == ["comprehensive", "comprehensive"]
    assert pd.isna(res.data["kind"].iloc[2])


def test_category_codes_lost_their_leading_zero_in_excel() -> None:
    df = incidents_frame(2)
    df["category_code"] = [1, 1]
    df["item_code"] = [101, "0101"]
    res = validate(df, "incidents")
    assert res.ok, res.render()
    assert res.data["category_code"].tolist() == ["01", "01"]
    assert res.data["item_code"].tolist() == ["0101", "0101"]


def test_item_must_belong_to_its_category() -> None:
    df = incidents_frame(2)
    df["item_code"] = ["0101", "0201"]
    res = validate(df, "incidents")
    assert errors(res) == [("validation.item_category_mismatch", 3, "item_code")]


def test_level_bounds() -> None:
    df = incidents_frame(2)
    df["level"] = [3, 4]
    assert errors(validate(df, "incidents")) == [("validation.out_of_range", 3, "level")]


def test_duplicate_ids_name_the_first_row() -> None:
    data = grid_frame(tiling_grids())
    data["code"] = ["320106001001001", "320106001001002", "320106001001001", "320106001001001"]
    res = validate(data, "grids")
    dups = [i for i in res.report if i.code == "validation.duplicate_id"]
    assert [(i.row, i.params["first_row"]) for i in dups] == [(4, 2), (5, 2)]


def test_child_code_should_start_with_parent_code() -> None:
    data = grid_frame(tiling_grids())
    data.loc[1, "code"] = "320106001002002"
    res = validate(data, "grids")
    assert res.ok
    i = issue(res, "validation.code_prefix")
    assert (i.severity, i.row) == ("warning", 3)


def test_unknown_parent_codes_against_the_store(reference) -> None:
    data = grid_frame(tiling_grids())
    data.loc[3, "community_code"] = "320106001099"
    data.loc[3, "code"] = "320106001099004"
    res = validate(data, "grids", reference=reference)
    assert ("validation.unknown_parent", 5, "community_code") in errors(res)
    inc = incidents_frame(2)
    inc.loc[1, "grid_code"] = "320106001001099"
    res = validate(inc, "incidents", reference=reference)
    assert errors(res) == [("validation.unknown_parent", 3, "grid_code")]
    assert "grids" in issue(res, "validation.unknown_parent").message("en")


def test_unknown_columns_are_noted_and_dropped() -> None:
    data = grid_frame(tiling_grids())
    data["备注"] = "x"
    res = validate(data, "grids")
    assert res.ok and "备注" not in res.data.columns
    assert "备注" in issue(res, "validation.unknown_columns").message("zh")


def test_personal_data_is_masked_in_messages() -> None:
    workers = pd.DataFrame({
        "id": ["W1", "W2"], "name": ["张三丰", "李四"], "phone": ["13812345678", "12345abcde9"],
        "id_number": ["11010519491231002X", "110105194912310021"], "role": ["网格长", "full_time"],
        "grid_code": [f"{COMMUNITY}001"] * 2, "post": ["A", "B"],
    })
    res = validate(workers, "workers")
    assert res.ok
    text = res.report.render("zh") + res.report.render("en")
    assert "12345abcde9" not in text and "1*********9" in text
    assert "110105194912310021" not in text
    assert codes(res, "warning") == ["validation.bad_phone", "validation.bad_id_number"]
    assert res.data["role"].tolist() == ["grid_leader", "full_time"]
    assert isinstance(res.data, pd.DataFrame) and not isinstance(res.data, gpd.GeoDataFrame)


def test_row_listing_is_capped_with_a_summary() -> None:
    df = incidents_frame(80)
    df["level"] = 9
    res = validate(df, "incidents")
    assert len([i for i in res.report if i.code == "validation.out_of_range"]) == 50
    more = issue(res, "validation.more_rows")
    assert more.params["count"] == 30 and more.params["last_row"] == 81


# --------------------------------------------------------------------------- geometry


def test_invalid_geometry_repaired_and_reported_as_fixed() -> None:
    bowtie = Polygon([(X0, Y0), (X0 + 100, Y0 + 100), (X0 + 100, Y0), (X0, Y0 + 100)])
    data = grid_frame([bowtie, mbox(100, 0, 200, 100)])
    res = validate(data, "grids")
    i = issue(res, "validation.geometry_repaired")
    assert (i.severity, i.row) == ("fixed", 2) and "Self-intersection" in i.params["reason"]
    assert res.ok and res.data.geometry.is_valid.all()
    assert res.data.geometry.iloc[0].geom_type == "MultiPolygon"


def test_unrepairable_geometry_is_an_error() -> None:
    flat = Polygon([(118.77, 32.07), (118.771, 32.07), (118.772, 32.07), (118.77, 32.07)])  # a line
    data = grid_frame([mbox(0, 0, 1, 1), mbox(100, 0, 200, 100)], crs="EPSG:4326")
    data.loc[0, "geometry"] = flat
    res = validate(data, "grids")
    assert errors(res) == [("validation.geometry_invalid", 2, "geometry")]


def test_wrong_and_empty_geometries() -> None:
    geoms = [LineString([(X0, Y0), (X0 + 9, Y0 + 9)]), Polygon(),
             MultiPolygon([mbox(0, 0, 10, 10), mbox(20, 0, 30, 10)]), None]
    res = validate(grid_frame([mbox(0, 0, 1, 1)] * 4).set_geometry(gpd.GeoSeries(geoms, crs=UTM)), "grids")
    assert errors(res) == [
        ("validation.empty_geometry", 3, "geometry"), ("validation.empty_geometry", 5, "geometry"),
        ("validation.wrong_geometry_type", 2, "geometry"),
    ]
    assert "LineString" in issue(res, "validation.wrong_geometry_type").message("en")
    assert len(res.data) == 4


def test_buildings_accept_points_and_polygons() -> None:
    b = gpd.GeoDataFrame({"id": ["B1", "B2", "B3"], "households": [40, 60, 0], "population": [100, 150, 0],
                          "grid_code": [f"{COMMUNITY}001"] * 3},
                         geometry=[Point(X0 + 10, Y0 + 10), mbox(20, 20, 40, 40), LineString([(X0, Y0), (X0 + 1, Y0)])],
                         crs=UTM)
    res = validate(b, "buildings")
    assert errors(res) == [("validation.wrong_geometry_type", 4, "geometry")]


def test_no_crs_assumed_lonlat_in_china_else_error() -> None:
    g = grid_frame(tiling_grids(), crs="EPSG:4326").set_crs(None, allow_override=True)
    res = validate(g, "grids")
    assert res.ok and issue(res, "validation.crs_assumed").severity == "warning"
    m = grid_frame(tiling_grids()).set_crs(None, allow_override=True)
    res = validate(m, "grids")
    assert errors(res) == [("validation.crs_missing", None, None)]
    assert "EPSG:4547" in issue(res, "validation.crs_missing").fix("en")


def test_projected_crs_is_reprojected(reference) -> None:
    res = validate(grid_frame(tiling_grids()), "grids", reference=reference)
    assert res.ok, res.render()
    assert issue(res, "validation.crs_reprojected").params["crs"] == "EPSG:32650"
    expected = to_ll(tiling_grids())
    assert all(a.equals_exact(b, 1e-9) for a, b in zip(res.data.geometry, expected, strict=True))


def test_swapped_lonlat_are_swapped_back_and_outside_china_is_an_error() -> None:
    pts = [ll(50, 50), ll(60, 50), ll(70, 50)]
    df = incidents_frame(3, lonlat=[pts[0], (pts[1][1], pts[1][0]), (0.0, 0.0)])
    res = validate(df, "incidents")
    assert issue(res, "validation.lonlat_swapped").row == 3
    assert issue(res, "validation.lonlat_swapped_summary").severity == "warning"
    assert errors(res) == [("validation.outside_china", 4, "geometry")]
    assert res.data.geometry.iloc[1].equals_exact(Point(pts[1]), 1e-12)


def test_points_far_outside_the_district(reference) -> None:
    df = incidents_frame(3, lonlat=[ll(50, 50), ll(1500 + 4000, 0), ll(1500 + 7000, 0)])
    df["grid_code"] = None
    res = validate(df, "incidents", reference=reference)
    far = [i for i in res.report if i.code == "validation.far_outside_district"]
    assert [(i.row, i.params["distance_km"]) for i in far] == [(4, "7.0")]


def test_gcj02_input_is_converted_when_named(reference) -> None:
    truth = [ll(50, 50), ll(150, 150)]
    glon, glat = wgs84_to_gcj02([p[0] for p in truth], [p[1] for p in truth])
    df = incidents_frame(2, lonlat=list(zip(glon, glat, strict=True)))
    res = validate(df, "incidents", datum="gcj02", reference=reference)
    assert res.ok and issue(res, "validation.datum_converted").severity == "fixed"
    got = np.array([[p.x, p.y] for p in res.data.geometry])
    assert np.allclose(got, np.array(truth), atol=1e-7)
    assert "validation.datum_suspected" not in codes(res)


def test_bd09_input_is_converted_when_named() -> None:
    truth = [ll(50, 50), ll(60, 70)]
    blon, blat = convert_geometries_xy(truth, "bd09")
    res = validate(incidents_frame(2, lonlat=list(zip(blon, blat, strict=True))), "incidents", datum="bd09")
    assert issue(res, "validation.datum_converted").params["datum"] == "bd09"
    got = np.array([[p.x, p.y] for p in res.data.geometry])
    assert np.allclose(got, np.array(truth), atol=1e-6)


def test_gcj02_outlines_declared_as_wgs84_are_detected(reference) -> None:
    g = grid_frame(tiling_grids(), crs="EPSG:4326")
    g = g.set_geometry(gpd.GeoSeries(convert_geometries(g.geometry.values, src="wgs84", dst="gcj02"), crs=4326))
    res = validate(g, "grids", reference=reference)
    i = issue(res, "validation.datum_suspected")
    assert i.severity == "warning" and i.params["datum"] == "gcj02"
    assert "GCJ-02" in i.fix("en")
    ok = validate(g, "grids", reference=reference, datum="gcj02")
    assert "validation.datum_suspected" not in codes(ok) and ok.ok


def test_bd09_points_declared_as_wgs84_are_detected(reference) -> None:
    pts = [ll(10 + 8 * i, 10 + 8 * i) for i in range(10)]  # all inside grid 001
    blon, blat = convert_geometries_xy(pts, "bd09")
    df = incidents_frame(10, lonlat=list(zip(blon, blat, strict=True)))
    res = validate(df, "incidents", reference=reference)
    assert issue(res, "validation.datum_suspected").params["datum"] == "bd09"


def convert_geometries_xy(pts: list[tuple[float, float]], dst: str) -> tuple[list[float], list[float]]:
    g = convert_geometries(np.array([Point(p) for p in pts], dtype=object), src="wgs84", dst=dst)
    return [p.x for p in g], [p.y for p in g]


# --------------------------------------------------------------------------- nesting and tiling


def test_shifted_grid_makes_a_known_overlap_and_gap(reference) -> None:
    boxes = tiling_grids()
    boxes[3] = mbox(90, 100, 190, 200)  # grid 004 moved 10 m west
    res = validate(grid_frame(boxes), "grids", reference=reference)
    ov = issue(res, "validation.overlap")
    assert (ov.row, ov.params["other_row"], ov.params["unit"], ov.params["other_unit"]) == (
        4, 5, "320106001001003", "320106001001004")
    assert abs(float(ov.params["area_m2"]) - 1000) <= 2
    gap = issue(res, "validation.gap")
    assert gap.params["parent"] == COMMUNITY and gap.params["pieces"] == 1
    assert abs(float(gap.params["area_m2"]) - 1000) <= 2
    lon, lat = ll(195, 150)
    assert abs(float(gap.params["lon"]) - lon) < 1e-4 and abs(float(gap.params["lat"]) - lat) < 1e-4
    assert sorted(codes(res, "error")) == ["validation.gap", "validation.overlap"]
    for lang in ("zh", "en"):
        assert "1000" in ov.message(lang) and "1000" in gap.message(lang)


def test_overlaps_are_found_without_reference_too() -> None:
    boxes = tiling_grids()
    boxes[3] = mbox(90, 100, 190, 200)
    res = validate(grid_frame(boxes), "grids")
    assert codes(res, "error") == ["validation.overlap"]


def test_grid_crossing_its_community_boundary(reference) -> None:
    boxes = tiling_grids()
    boxes[1] = mbox(100, 0, 230, 100)  # 30 m × 100 m into the neighbouring community
    res = validate(grid_frame(boxes), "grids", reference=reference)
    cross = issue(res, "validation.crosses_parent")
    assert cross.row == 3 and abs(float(cross.params["area_m2"]) - 3000) <= 3
    assert codes(res, "error") == ["validation.crosses_parent"]


def test_slivers_below_the_tolerance_are_ignored(reference) -> None:
    boxes = tiling_grids()
    boxes[3] = mbox(100.02, 100, 200, 200)  # a 2 m² gap
    assert validate(grid_frame(boxes), "grids", reference=reference).ok


def test_dedicated_grids_may_overlay_comprehensive_ones(reference) -> None:
    boxes = [*tiling_grids(), mbox(50, 50, 150, 150), mbox(60, 60, 140, 140)]
    kinds = ["comprehensive"] * 4 + ["dedicated"] * 2
    res = validate(grid_frame(boxes, kinds=kinds), "grids", reference=reference)
    assert res.ok, res.render()


def test_point_outside_the_grid_it_names(reference) -> None:
    df = incidents_frame(2, lonlat=[ll(50, 50), ll(150, 150)])
    res = validate(df, "incidents", reference=reference)
    w = issue(res, "validation.outside_parent")
    assert (w.severity, w.row) == ("warning", 3) and 60 < float(w.params["distance_m"]) < 80


# --------------------------------------------------------------------------- whole sets


def demo_set(reference) -> dict[str, pd.DataFrame]:
    return {
        "districts": reference["districts"], "subdistricts": reference["subdistricts"],
        "communities": reference["communities"].iloc[:1],
        "grids": grid_frame(tiling_grids()), "incidents": incidents_frame(3),
    }


def test_validate_layers_on_a_consistent_set(reference) -> None:
    rep = validate_layers(demo_set(reference))
    assert rep.ok, rep.render("en")
    # one community covers only part of its sub-district: a gap above the grid level is a warning
    gap = issue(rep, "validation.gap")
    assert (gap.severity, gap.params["parent_layer"], gap.params["parent"]) == ("warning", "subdistricts", SUBDISTRICT)
    assert [i.code for i in rep if i.severity == "warning"] == ["validation.crs_assumed", "validation.gap"]


def test_validate_layers_finds_cross_layer_problems(reference) -> None:
    layers = demo_set(reference)
    layers["communities"] = reference["communities"]  # the second community has no grids
    boxes = tiling_grids()
    boxes[0] = mbox(0, 0, 90, 100)
    layers["grids"] = grid_frame(boxes)
    inc = incidents_frame(2)
    inc.loc[1, "grid_code"] = "320106001001077"
    inc.attrs.update(file="incidents.csv", row_offset=2)
    layers["incidents"] = inc
    rep = validate_layers(layers)
    assert ("validation.unknown_parent", 3, "grid_code") in errors(rep)
    assert issue(rep, "validation.unknown_parent").file == "incidents.csv"
    gaps = [i for i in rep if i.code == "validation.gap" and i.params["parent_layer"] == "communities"]
    assert [(g.severity, g.params["parent"], g.params["area_m2"]) for g in gaps] == [("error", COMMUNITY, "1000")]
    uncovered = issue(rep, "validation.parent_uncovered")
    assert uncovered.params["parent"] == "320106001002" and uncovered.severity == "warning"
    cross = validate_layers(layers, cross_only=True)
    assert "validation.crs_reprojected" not in codes(cross) and "validation.gap" in codes(cross)


def test_validate_layers_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="unknown layer"):
        validate_layers({"grid": pd.DataFrame()})


# --------------------------------------------------------------------------- contracts


def test_bad_arguments_are_programming_errors() -> None:
    with pytest.raises(ValueError, match="unknown layer"):
        validate(pd.DataFrame(), "grid")
    with pytest.raises(ValueError, match="unknown datum"):
        validate(pd.DataFrame(), "grids", datum="wgs-84")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        validate([1, 2], "grids")  # type: ignore[arg-type]


def test_raise_for_errors_carries_the_report() -> None:
    res = validate(grid_frame(tiling_grids()).drop(columns=["kind"]), "grids")
    with pytest.raises(LayerValidationError) as exc:
        res.raise_for_errors()
    assert exc.value.report is res.report and "kind" in str(exc.value)


def test_both_languages_render_every_issue(reference) -> None:
    boxes = tiling_grids()
    boxes[3] = mbox(90, 100, 190, 200)
    data = grid_frame(boxes)
    data["households"] = ["x", 1, 2, 3]
    data["kind"] = ["综合网格", "comprehensive", "foo", "comprehensive"]
    res = validate(data, "grids", file="网格.xlsx", reference=reference, lang="en")
    for lang in ("zh", "en"):
        text = res.report.render(lang)
        assert "validation." not in text, text  # every key found in the catalogue
        assert not re.search(r"\{\w+\}", text), text  # every placeholder filled
        assert "None" not in text, text
    assert "户数" in res.report.render("zh") and "How to fix" in res.render()
    assert re.search(r"[\u4e00-\u9fff]", res.report.render("zh").replace("网格.xlsx", ""))


def test_every_validation_message_has_a_fix_in_both_languages() -> None:
    keys = [k for k in catalogue() if k.startswith("validation.") and not k.endswith(".fix")]
    assert len(keys) >= 40
    for k in keys:
        fix = catalogue()[f"{k}.fix"]
        assert fix["zh"] and fix["en"]


def test_row_numbers_match_the_spreadsheet(tmp_path) -> None:
    """A real .xlsx written by openpyxl: the error row is the row Excel shows."""
    import openpyxl  # a hard dependency (pyproject)

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["事件编号", "受理时间", "大类代码", "事项代码", "等级", "来源", "阶段", "经度", "纬度"])
    lon, lat = ll(50, 50)
    for i in range(6):
        ws.append([f"E{i}", "2024-03-05 14:30", "01", "0101", 7 if i == 4 else 2, "patrol", "collected", lon, lat])
    path = tmp_path / "incidents.xlsx"
    wb.save(path)
    df = pd.read_excel(path)
    res = validate(df, "incidents", file=path.name)
    bad = issue(res, "validation.out_of_range")
    assert ws.cell(row=bad.row, column=5).value == 7
    assert bad.row == 6


def test_input_is_never_modified(reference) -> None:
    boxes = tiling_grids()
    boxes[0] = Polygon([(X0, Y0), (X0 + 100, Y0 + 100), (X0 + 100, Y0), (X0, Y0 + 100)])
    data = grid_frame(boxes)
    data["households"] = ["350", "x", 2.0, 3]
    data["kind"] = ["综合网格", "comprehensive", "comprehensive", "comprehensive"]
    before = copy.deepcopy(data)
    ref_before = {k: v.copy(deep=True) for k, v in reference.items()}
    validate(data, "grids", reference=reference, datum="gcj02")
    pd.testing.assert_frame_equal(data, before)
    assert data.crs == before.crs
    for k, v in reference.items():
        pd.testing.assert_frame_equal(v, ref_before[k])


def test_empty_layers_and_unusual_indexes() -> None:
    empty = incidents_frame(0)
    res = validate(empty, "incidents")
    assert res.ok and len(res.data) == 0 and res.data["level"].dtype == "Int64"
    df = incidents_frame(3)
    df.index = pd.Index([5, 5, 7])
    df["requested_datetime"] = ["2024-03-05", "45356", "bad"]
    df["level"] = ["1", "x", 2]
    res = validate(df, "incidents", row_offset=1)  # GeoJSON-style: features numbered from 1
    assert res.data.index.equals(df.index)
    assert res.data["requested_datetime"].iloc[1] == pd.Timestamp("2024-03-05")
    assert sorted(errors(res)) == [("validation.bad_date", 3, "requested_datetime"),
                                   ("validation.not_a_number", 2, "level")]


def test_non_spatial_layer_refs_are_checked(reference) -> None:
    workers = pd.DataFrame({"id": ["W1", "W2"], "name": ["张三", "李四"], "role": ["full_time", "part_time"],
                            "grid_code": [f"{COMMUNITY}001", f"{COMMUNITY}009"]})
    res = validate(workers, "workers", reference=reference)
    assert errors(res) == [("validation.unknown_parent", 3, "grid_code")]


def test_index_is_kept() -> None:
    df = incidents_frame(3)
    df.index = pd.Index([10, 20, 30], name="fid")
    res = validate(df, "incidents")
    assert res.data.index.equals(df.index)


# --------------------------------------------------------------------------- properties

_ITEMS = list(taxonomy.ITEM_CODES)


@st.composite
def valid_incidents(draw) -> pd.DataFrame:
    n = draw(st.integers(min_value=0, max_value=40))
    rows = draw(st.lists(st.tuples(
        st.sampled_from(_ITEMS),
        st.integers(1, 3),
        st.sampled_from(SCHEMAS["incidents"].field("source").allowed),
        st.sampled_from(SCHEMAS["incidents"].field("stage").allowed),
        st.floats(118.70, 118.85), st.floats(32.00, 32.12),
        st.datetimes(min_value=pd.Timestamp("2020-01-01").to_pydatetime(),
                     max_value=pd.Timestamp("2030-01-01").to_pydatetime()),
        st.one_of(st.none(), st.integers(0, 999).map(lambda k: f"{COMMUNITY}{k:03d}")),
    ), min_size=n, max_size=n))
    df = pd.DataFrame({
        "service_request_id": [f"X{i}" for i in range(n)],
        "requested_datetime": [r[6] for r in rows],
        "category_code": [r[0][:2] for r in rows],
        "item_code": [r[0] for r in rows],
        "level": [r[1] for r in rows],
        "source": [r[2] for r in rows],
        "stage": [r[3] for r in rows],
        "grid_code": [r[7] for r in rows],
    })
    as_table = draw(st.booleans())
    if as_table:
        df["lon"] = [r[4] for r in rows]
        df["lat"] = [r[5] for r in rows]
        return df
    return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy([r[4] for r in rows], [r[5] for r in rows]), crs=4326)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_incidents())
def test_property_valid_random_data_has_no_errors_and_keeps_every_row(df) -> None:
    before = df.copy(deep=True)
    res = validate(df, "incidents")
    assert res.ok, res.render("en")
    assert len(res.data) == len(df) and res.data.index.equals(df.index)
    assert set(codes(res)) <= {"validation.crs_assumed"}
    pd.testing.assert_frame_equal(df, before)


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=1, max_value=5), st.integers(min_value=1, max_value=5),
       st.floats(min_value=20, max_value=300))
def test_property_any_regular_tiling_is_valid(nx: int, ny: int, size_m: float) -> None:
    boxes = [mbox(i * size_m, j * size_m, (i + 1) * size_m, (j + 1) * size_m) for i in range(nx) for j in range(ny)]
    community = gpd.GeoDataFrame({"code": [COMMUNITY], "name": ["甲"], "subdistrict_code": [SUBDISTRICT]},
                                 geometry=[mbox(0, 0, nx * size_m, ny * size_m)], crs=UTM)
    res = validate(grid_frame(boxes), "grids", reference={"communities": community})
    assert res.ok and codes(res, "error") == []
    assert len(res.data) == nx * ny


# --------------------------------------------------------------------------- performance


def test_300k_incidents_and_1000_grids_validate_in_seconds() -> None:
    rng = np.random.default_rng(7)
    side, n_side = 100.0, 32  # 32 × 32 = 1,024 grids of 100 m
    boxes = [mbox(i * side, j * side, (i + 1) * side, (j + 1) * side) for i in range(n_side) for j in range(n_side)]
    codes_ = [f"{COMMUNITY}{k % 1000:03d}" if k < 1000 else f"320106001002{k - 1000:03d}" for k in range(len(boxes))]
    grids = grid_frame(boxes, codes=codes_)
    grids.loc[1000:, "community_code"] = "320106001002"
    communities = gpd.GeoDataFrame(
        {"code": [COMMUNITY, "320106001002"], "name": ["甲", "乙"], "subdistrict_code": [SUBDISTRICT] * 2},
        geometry=[shapely.union_all(boxes[:1000]), shapely.union_all(boxes[1000:])], crs=UTM)
    t0 = time.perf_counter()
    g = validate(grids, "grids", reference={"communities": communities})
    t_grids = time.perf_counter() - t0
    assert g.ok, g.render("en", )
    n = 300_000
    k = rng.integers(0, len(boxes), n)
    x = (k // n_side) * side + rng.uniform(1, side - 1, n)
    y = (k % n_side) * side + rng.uniform(1, side - 1, n)
    pts = gpd.GeoSeries(gpd.points_from_xy(X0 + x, Y0 + y), crs=UTM).to_crs(4326)
    items = np.array(_ITEMS)[rng.integers(0, len(_ITEMS), n)]
    inc = pd.DataFrame({
        "service_request_id": pd.Series(np.arange(n)).astype(str).radd("GL"),
        "requested_datetime": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**7, n), unit="s"),
        "category_code": pd.Series(items).str.slice(0, 2), "item_code": items,
        "level": rng.integers(1, 4, n), "source": "patrol", "stage": "collected",
        "grid_code": np.array(codes_, dtype=object)[k], "lon": pts.x.to_numpy(), "lat": pts.y.to_numpy(),
    })
    inc.loc[::1000, "level"] = 9  # 300 bad rows: 50 listed + a summary
    districts = gpd.GeoDataFrame({"code": [DISTRICT], "name": ["鼓楼区"]},
                                 geometry=[mbox(-100, -100, 3300, 3300)], crs=UTM)
    t0 = time.perf_counter()
    res = validate(inc, "incidents", reference={"grids": g.data, "districts": districts})
    t_inc = time.perf_counter() - t0
    assert len(res.data) == n
    assert codes(res, "error").count("validation.out_of_range") == 50
    assert issue(res, "validation.more_rows").params["count"] == 250
    assert "validation.outside_parent" not in codes(res)
    print(f"grids {t_grids:.2f}s, incidents {t_inc:.2f}s")
    # ~0.4 s and ~1.5 s on an idle 2-core machine; generous bounds catch a per-row loop
    # (which would take minutes) without failing on a busy CI runner.
    assert t_grids < 10 and t_inc < 30


def test_an_allowed_value_that_spells_nothing_is_kept() -> None:
    """The whistle kind ``none`` is an allowed value, not a blank cell."""
    from layers import _validate_values as vv

    s = pd.Series(["none", "work", ""])
    kept = vv.blank_to_na(s, keep=("none", "work", "tough"))
    assert kept.tolist()[:2] == ["none", "work"] and pd.isna(kept.iloc[2])
    assert pd.isna(vv.blank_to_na(s).iloc[0]), "without keep, 'none' is a blank spelling"
