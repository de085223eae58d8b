"""Readers and writers: real files written by real tools, broken files, and round trips."""

from __future__ import annotations

import datetime as dt
import json
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from layers.errors import ReaderError
from layers.i18n import t
from layers.io import SUPPORTED_READ, SUPPORTED_WRITE, WriterError, read_file, write_file
from tests.layers.conftest import BUILDING_ROWS, GRID_ROWS, grids_frame, write_shapefile


def codes(result) -> list[str]:
    return [i.code for i in result.report]


def issue(report, code: str):
    found = [i for i in report if i.code == code]
    assert found, f"{code} not in {[i.code for i in report]}"
    return found[0]


def assert_reader_error(path: Path, code: str, **kw) -> ReaderError:
    """The file fails with ``code``; the report names the file and gives a fix in zh and en."""
    with pytest.raises(ReaderError) as exc:
        read_file(path, **kw)
    err = exc.value
    e = issue(err.report, code)
    assert e.severity == "error" and e.file == path.name
    for lang in ("zh", "en"):
        text = err.report.render(lang)
        assert path.name in text
        assert e.fix(lang) and e.fix(lang) in text
        assert t("common.fix", lang) in text
    assert path.name in str(err)  # the exception message (English) names the file too
    return err


# --------------------------------------------------------------------------- feature formats


def test_geojson_headers_are_mapped_and_codes_stay_text(geojson_file: Path) -> None:
    r = read_file(geojson_file, layer="grids")
    assert r.source == "网格.geojson" and r.row_offset == 1
    assert list(r.data.columns) == ["code", "name", "kind", "community_code", "households",
                                    "population", "geometry"]
    assert r.data["code"].tolist() == [row["网格代码"] for row in GRID_ROWS]
    assert r.data["households"].dtype == np.int64
    assert r.data.crs == "EPSG:4326"
    assert isinstance(r.data.index, pd.RangeIndex)
    assert "io.header_mapped" in codes(r)


def test_geojson_without_layer_keeps_headers(geojson_file: Path) -> None:
    r = read_file(geojson_file)
    assert list(r.data.columns)[:2] == ["网格代码", "名称"]


def test_gpkg_picks_the_layer_named_like_the_wanted_one(gpkg_two_layers: Path) -> None:
    r = read_file(gpkg_two_layers, layer="communities")
    assert r.data["code"].tolist() == ["320106001001"]
    assert issue(r.report, "io.layer_chosen").params["layer_name"] == "communities"
    assert len(read_file(gpkg_two_layers, layer="grids").data) == 2


@pytest.mark.parametrize("layer", [None, "buildings"])
def test_gpkg_with_several_layers_and_no_match_lists_them(gpkg_two_layers: Path, layer) -> None:
    err = assert_reader_error(gpkg_two_layers, "io.choose_layer", layer=layer)
    assert "grids" in err.report.render("en") and "communities" in err.report.render("zh")


def test_gpkg_attribute_table_reads_as_dataframe(tmp_path: Path) -> None:
    path = tmp_path / "workers.gpkg"
    pyogrio.write_dataframe(pd.DataFrame({"工号": ["W1"], "姓名": ["张三"]}), path, layer="网格员")
    r = read_file(path, layer="workers")
    assert not isinstance(r.data, gpd.GeoDataFrame)
    assert list(r.data.columns) == ["id", "name"]


def test_shapefile_zip_gbk_with_cpg(shp_zip_gbk_cpg: Path) -> None:
    r = read_file(shp_zip_gbk_cpg, layer="grids")
    assert r.data["name"].tolist() == ["宁海路第一网格", "宁海路第二网格"]
    assert r.data.crs == "EPSG:4326"
    assert "io.dbf_encoding_guessed" not in codes(r)


@pytest.mark.parametrize(("fixture", "encoding"), [("shp_zip_gbk_no_cpg", "GBK"),
                                                    ("shp_zip_utf8_no_cpg", "UTF-8")])
def test_shapefile_zip_without_cpg_detects_the_dbf_encoding(request, fixture, encoding) -> None:
    r = read_file(request.getfixturevalue(fixture), layer="grids")
    assert r.data["name"].tolist() == ["宁海路第一网格", "宁海路第二网格"]
    # Chinese .dbf field names decoded too, and recognised although cut at 10 bytes
    assert list(r.data.columns) == ["code", "name", "kind", "community_code", "households",
                                    "population", "geometry"]
    assert issue(r.report, "io.dbf_encoding_guessed").params["encoding"] == encoding


def test_shapefile_encoding_can_be_forced(shp_zip_gbk_no_cpg: Path) -> None:
    r = read_file(shp_zip_gbk_no_cpg, encoding="latin-1")
    assert "宁海路第一网格" not in r.data.iloc[:, 1].tolist()


def test_bare_shapefile_with_upper_case_parts(tmp_path: Path) -> None:
    folder = tmp_path / "shp"
    folder.mkdir()
    write_shapefile(grids_frame(), folder / "GRIDS.shp", encoding="GBK")
    for f in folder.iterdir():
        f.rename(f.with_suffix(f.suffix.upper()))
    r = read_file(folder / "GRIDS.SHP", layer="grids")
    assert r.data["name"].tolist()[0] == "宁海路第一网格"


def test_zip_with_gbk_member_names_and_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "src"
    folder.mkdir()
    write_shapefile(grids_frame(), folder / "网格.shp", encoding="UTF-8")
    path = tmp_path / "网格数据.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for f in folder.iterdir():
            info = zipfile.ZipInfo("数据/" + f.name)
            info.filename = ("数据/" + f.name).encode("gbk").decode("cp437")  # no UTF-8 flag
            zf.writestr(info, f.read_bytes())
    r = read_file(path, layer="grids")
    assert len(r.data) == 2


def test_zip_holding_one_geojson_is_read(tmp_path: Path, geojson_file: Path) -> None:
    path = tmp_path / "wrapped.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.write(geojson_file, arcname="网格.geojson")
    r = read_file(path, layer="grids")
    assert r.source == "wrapped.zip" and len(r.data) == 2


def test_geoparquet(geoparquet_file: Path) -> None:
    r = read_file(geoparquet_file, layer="grids")
    assert r.data["code"].tolist()[1] == "320106001001002"
    assert r.data.crs == "EPSG:4326" and r.row_offset == 1


def test_plain_parquet_with_lonlat_columns(tmp_path: Path) -> None:
    path = tmp_path / "plain.parquet"
    pd.DataFrame({"经度": [118.77], "纬度": [32.06], "编号": ["F1"]}).to_parquet(path)
    r = read_file(path, layer="facilities")
    assert r.data.geometry.iloc[0].equals(shapely.Point(118.77, 32.06))
    assert r.data["id"].tolist() == ["F1"]


# --------------------------------------------------------------------------- tables


def test_xlsx_with_title_row_chinese_headers_and_sheet_choice(xlsx_file: Path) -> None:
    r = read_file(xlsx_file, layer="buildings")
    df = r.data
    assert r.row_offset == 3  # title on row 1, header on row 2, first building on row 3
    assert issue(r.report, "io.header_row").params["header_row"] == 2
    assert issue(r.report, "io.sheet_chosen").params["sheet"] == "楼栋"
    assert list(df.columns) == ["id", "compound_id", "floors", "households", "population",
                                "grid_code", "建成日期", "geometry"]
    assert df["grid_code"].tolist()[0] == "320106001001001"
    assert df["households"].dtype == np.int64
    assert pd.api.types.is_datetime64_any_dtype(df["建成日期"])
    assert df["建成日期"].iloc[1] == pd.Timestamp("2006-09-30")
    assert df.geometry.iloc[2].equals(shapely.Point(BUILDING_ROWS[2][6], BUILDING_ROWS[2][7]))
    assert df.crs == "EPSG:4326"


def test_xlsx_column_mixing_numbers_and_text_is_read_as_text(tmp_path: Path) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.append(["工号", "手机号"])
    wb.active.append(["W001", 13800138000])
    wb.active.append(["W002", "139-0000-0000"])
    wb.save(tmp_path / "workers.xlsx")
    r = read_file(tmp_path / "workers.xlsx", layer="workers")
    assert r.data["phone"].tolist() == ["13800138000", "139-0000-0000"]
    assert issue(r.report, "io.mixed_types").column == "手机号"


def test_xlsx_sheet_by_number_and_missing_sheet(xlsx_file: Path) -> None:
    r = read_file(xlsx_file, sheet=1)
    assert len(r.data) == 3
    assert_reader_error(xlsx_file, "io.sheet_not_found", sheet="网格")


@pytest.mark.parametrize(("fixture", "encoding"), [("csv_gbk", "GBK"), ("csv_utf8_bom", "UTF-8 (BOM)")])
def test_csv_encodings_and_lonlat(request, fixture: str, encoding: str) -> None:
    r = read_file(request.getfixturevalue(fixture), layer="facilities")
    df = r.data
    assert issue(r.report, "io.encoding_detected").params["encoding"] == encoding
    assert issue(r.report, "io.lonlat_used").params == {"lon": "经度", "lat": "纬度"}
    assert list(df.columns) == ["id", "kind", "name", "更新时间", "geometry"]
    assert df["name"].tolist() == ["宁海路社区卫生服务站", "颐和路警务室"]
    assert df["更新时间"].tolist() == [pd.Timestamp("2024-05-01 08:00"), pd.Timestamp("2024-05-02 17:30")]
    assert df.geometry.iloc[1].equals(shapely.Point(118.7765, 32.0631))
    assert df.crs == "EPSG:4326" and r.row_offset == 2


def test_csv_wrong_encoding_given(csv_gbk: Path) -> None:
    assert_reader_error(csv_gbk, "io.bad_encoding", encoding="utf-8")
    assert_reader_error(csv_gbk, "io.bad_encoding", encoding="no-such-codec")


def test_utf16_tab_separated_text_from_excel(tmp_path: Path) -> None:
    path = tmp_path / "unicode.txt"
    path.write_bytes("经度\t纬度\t名称\n118.77\t32.06\t宁海路\n".encode("utf-16"))
    r = read_file(path)
    assert r.data["名称"].tolist() == ["宁海路"] and r.data.crs == "EPSG:4326"


def test_table_without_coordinates(tmp_path: Path) -> None:
    path = tmp_path / "网格员.csv"
    path.write_text("工号,姓名,岗位,网格代码,手机号\nW001,张三,full_time,320106001001001,13800138000\n",
                    encoding="utf-8")
    err = assert_reader_error(path, "io.no_coordinates", layer="facilities")
    assert "姓名" in err.report.render("en")
    r = read_file(path, layer="workers")  # attribute-only layer: no coordinates needed
    assert not isinstance(r.data, gpd.GeoDataFrame)
    assert r.data.loc[0, "phone"] == "13800138000"  # text field of the layer stays text
    assert r.data.loc[0, "grid_code"] == "320106001001001"
    plain = read_file(path)  # no layer: a plain table, numbers typed
    assert plain.data.loc[0, "手机号"] == 13800138000


def test_csv_wkt_column_with_srid(tmp_path: Path) -> None:
    path = tmp_path / "grids.csv"
    path.write_text('code,wkt\n320106001001001,"SRID=4490;POLYGON ((0 0, 1 0, 1 1, 0 0))"\n'
                    "320106001001002,not a geometry\n", encoding="utf-8")
    r = read_file(path, layer="grids")
    assert r.data.crs == "EPSG:4490"
    assert r.data.geometry.iloc[0].equals(shapely.Polygon([(0, 0), (1, 0), (1, 1)]))
    assert r.data.geometry.iloc[1] is None
    bad = issue(r.report, "io.bad_wkt")
    assert bad.severity == "warning" and bad.params == {"count": 1, "rows": "3"}


def test_bad_lonlat_cells_and_blank_rows_keep_row_numbers(tmp_path: Path) -> None:
    path = tmp_path / "points.csv"
    path.write_text("名称,经度,纬度\n甲,118.77,32.06\n,,\n乙,东经118,32.07\n丙,118.78°,32.08\n,,\n,,\n",
                    encoding="utf-8")
    r = read_file(path)
    assert len(r.data) == 4  # trailing blank rows dropped, the inner one kept
    assert issue(r.report, "io.bad_lonlat").params == {"count": 2, "rows": "3, 4"}
    assert issue(r.report, "io.blank_rows").params == {"count": 1, "rows": "3"}
    assert r.data.geometry.iloc[3].equals(shapely.Point(118.78, 32.08))


def test_projected_xy_columns_get_no_crs(tmp_path: Path) -> None:
    path = tmp_path / "xy.csv"
    path.write_text("x,y\n39500000.5,3550000.25\n", encoding="utf-8")
    r = read_file(path)
    assert r.data.crs is None and "io.lonlat_not_degrees" in codes(r)


def test_header_duplicates_and_alias_conflicts(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("网格代码,编码,名称,名称,经度,纬度\n320106001001001,x,甲,乙,118.7,32.0\n",
                    encoding="utf-8")
    r = read_file(path, layer="grids")
    assert list(r.data.columns) == ["code", "编码", "name", "名称_2", "geometry"]
    assert issue(r.report, "io.alias_conflict").params["used"] == "网格代码"
    assert issue(r.report, "io.duplicate_header").params["renamed"] == "名称_2"


def test_text_typing_in_csv(tmp_path: Path) -> None:
    path = tmp_path / "types.csv"
    path.write_text("a,b,c,d,e,f\n010101,1,1.5,True,2024-05-01,NA\n020202,-2,,False,2024-05-02 13:05:09,x\n",
                    encoding="utf-8")
    df = read_file(path).data
    assert df["a"].tolist() == ["010101", "020202"]
    assert df["b"].dtype == np.int64 and df["c"].dtype == np.float64 and df["d"].dtype == bool
    assert df["e"].iloc[1] == pd.Timestamp("2024-05-02 13:05:09")
    assert df["f"].tolist() == ["NA", "x"]  # "NA" is text, only empty cells are missing


# --------------------------------------------------------------------------- GPX and OSM


def test_gpx_track_points_with_time(gpx_file: Path) -> None:
    r = read_file(gpx_file, layer="patrol_points")
    df = r.data
    assert len(df) == 8 and r.row_offset == 1
    assert df["track"].tolist()[:1] + df["track"].tolist()[-1:] == ["W001", "W002"]
    assert df["time"].iloc[1] == pd.Timestamp("2024-05-01 00:01:00", tz="UTC")
    assert df["elevation_m"].iloc[3] == 15.0
    assert df.geometry.iloc[0].equals(shapely.Point(118.7710, 32.0610))
    assert issue(r.report, "io.gpx_read").params == {"tracks": 2, "points": 8}


def test_gpx_without_tracks_reads_waypoints(tmp_path: Path) -> None:
    import gpxpy.gpx

    g = gpxpy.gpx.GPX()
    g.waypoints.append(gpxpy.gpx.GPXWaypoint(32.06, 118.77, name="宁海路警务室",
                                             time=dt.datetime(2024, 5, 1, tzinfo=dt.UTC)))
    path = tmp_path / "points.gpx"
    path.write_text(g.to_xml(), encoding="utf-8")
    r = read_file(path)
    assert r.data["name"].tolist() == ["宁海路警务室"]
    assert "io.gpx_waypoints" in codes(r)


def test_pbf_roads_with_kinds_and_barriers(pbf_file: Path) -> None:
    r = read_file(pbf_file, layer="roads")
    df = r.data.set_index("id")
    assert df.loc["w100", "kind"] == "arterial" and df.loc["w100", "name"] == "北京西路"
    assert not df.loc["w101", "walkable"]  # expressway
    assert df.loc["w102", "kind"] == "local" and df.loc["w103", "kind"] == "path"
    assert (df.loc["w105", "kind"], df.loc["w106", "kind"]) == ("river", "railway")
    assert "w104" not in df.index and "w107" not in df.index  # construction; subway in tunnel
    assert df.loc["w100"].geometry.equals(
        shapely.LineString([(118.770, 32.060), (118.775, 32.060), (118.780, 32.060)]))
    assert r.data.crs == "EPSG:4326"
    assert set(r.data["kind"]) <= {"arterial", "secondary", "local", "path", "river", "railway"}


def test_pbf_buildings(pbf_file: Path) -> None:
    df = read_file(pbf_file, layer="buildings").data.set_index("id")
    assert df.loc["w108", "floors"] == 6 and df.loc["w108", "kind"] == "midrise"
    assert df.loc["w109", "kind"] == "nonresidential" and pd.isna(df.loc["w109", "floors"])
    assert df.loc["w108"].geometry.geom_type == "Polygon"
    assert df.loc["w108"].geometry.area == pytest.approx(1e-6)


def test_pbf_other_layer(pbf_file: Path) -> None:
    assert_reader_error(pbf_file, "io.pbf_layer", layer="workers")


# --------------------------------------------------------------------------- broken files


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


BROKEN = {
    "empty": ("empty.csv", b"", "io.empty_file", {}),
    "blank text": ("blank.csv", b" \n\n", "io.empty_file", {}),
    "unknown suffix": ("drawing.dwg", b"AC1018", "io.unsupported_suffix", {}),
    "old excel": ("old.xls", b"\xd0\xcf\x11\xe0", "io.legacy_excel", {}),
    "not json": ("bad.geojson", b"{not json", "io.corrupt", {}),
    "not a gpkg": ("bad.gpkg", b"SQLite format 2 garbage" * 10, "io.corrupt", {}),
    "not an xlsx": ("bad.xlsx", b"PK\x03\x04 not really", "io.corrupt", {}),
    "not a zip": ("bad.zip", b"definitely not a zip", "io.corrupt_zip", {}),
    "not a pbf": ("bad.osm.pbf", b"\x00\x00\x00\x0dnonsense" * 4, "io.corrupt", {}),
    "not a gpx": ("bad.gpx", b"<gpx><trk><trkseg><trkpt lat=", "io.corrupt", {}),
    "not parquet": ("bad.parquet", b"PAR1 nope", "io.corrupt", {}),
    "ragged csv": ("ragged.csv", "经度,纬度\n1,2\n1,2,3,4\n".encode(), "io.bad_table", {}),
    "binary csv": ("binary.csv", bytes(range(256)) * 8, "io.undecodable", {}),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_files_raise_reader_error_with_file_and_fix(tmp_path: Path, case: str) -> None:
    name, data, code, kw = BROKEN[case]
    assert_reader_error(_write(tmp_path / name, data), code, **kw)


def test_missing_file_and_missing_shapefile_part(tmp_path: Path, shp_zip_no_shx: Path) -> None:
    assert_reader_error(tmp_path / "nowhere.geojson", "io.file_not_found")
    err = assert_reader_error(shp_zip_no_shx, "io.shapefile_missing_part")
    assert ".shx" in err.report.render("zh")


def test_zip_without_data(tmp_path: Path) -> None:
    path = tmp_path / "docs.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("说明.docx", b"x")
    err = assert_reader_error(path, "io.zip_no_data")
    assert "说明.docx" in err.report.render("en")


def test_unknown_layer_name_is_a_value_error(geojson_file: Path) -> None:
    with pytest.raises(ValueError, match="unknown layer"):
        read_file(geojson_file, layer="grid")


def test_supported_suffixes() -> None:
    assert {".geojson", ".gpkg", ".zip", ".parquet", ".csv", ".xlsx", ".gpx", ".pbf"} <= set(SUPPORTED_READ)
    assert {".geojson", ".gpkg", ".zip", ".csv", ".xlsx"} <= set(SUPPORTED_WRITE)


# --------------------------------------------------------------------------- writers


def test_shapefile_zip_long_names_sidecar_and_cpg(tmp_path: Path) -> None:
    df = gpd.GeoDataFrame(
        {"requested_datetime": pd.to_datetime(["2024-05-01 08:00:01"]),
         "requested_by": ["张三"], "category_code": ["01"]},
        geometry=[shapely.Point(118.77, 32.06)], crs="EPSG:4326")
    path = write_file(df, tmp_path / "incidents.zip", encoding="gbk")
    with zipfile.ZipFile(path) as zf:
        names = sorted(zf.namelist())
        assert zf.read("incidents.cpg") == b"GBK"
        sidecar = json.loads(zf.read("incidents.columns.json"))
    assert names == ["incidents.columns.json", "incidents.cpg", "incidents.dbf", "incidents.prj",
                     "incidents.shp", "incidents.shx"]
    assert [c["field"] for c in sidecar["columns"]] == ["requested_", "requeste_1", "category_c"]
    back = read_file(path).data
    assert list(back.columns) == list(df.columns)
    assert back["requested_datetime"].iloc[0] == pd.Timestamp("2024-05-01 08:00:01")
    # a foreign tool sees 10-character names; with the layer they map back to canonical names
    with zipfile.ZipFile(path) as zf, zipfile.ZipFile(tmp_path / "plain.zip", "w") as out:
        for n in zf.namelist():
            if not n.endswith(".columns.json"):
                out.writestr(n, zf.read(n))
    plain = read_file(tmp_path / "plain.zip", layer="incidents").data
    assert {"requested_datetime", "category_code"} <= set(plain.columns)
    assert plain["requested_datetime"].iloc[0] == pd.Timestamp("2024-05-01 08:00:01")


def test_shapefile_refuses_mixed_geometry(tmp_path: Path) -> None:
    df = gpd.GeoDataFrame({"id": ["a", "b"]}, geometry=[shapely.Point(0, 0), shapely.box(0, 0, 1, 1)])
    with pytest.raises(WriterError) as exc:
        write_file(df, tmp_path / "mixed.zip")
    assert exc.value.report.errors()[0].code == "io.write_mixed_geometry"
    assert not (tmp_path / "mixed.zip").exists()


def test_gbk_csv_refuses_text_gbk_cannot_hold(tmp_path: Path) -> None:
    df = pd.DataFrame({"名称": ["宁海路", "𠀀字社区"]})  # CJK Extension B is outside GBK
    with pytest.raises(WriterError) as exc:
        write_file(df, tmp_path / "out.csv", encoding="gbk")
    e = exc.value.report.errors()[0]
    assert (e.code, e.column, e.row) == ("io.write_encoding", "名称", 3)
    assert write_file(df, tmp_path / "out.csv", encoding="gb18030").exists()
    assert read_file(tmp_path / "out.csv").data["名称"].tolist() == df["名称"].tolist()


def test_csv_writes_bytes_excel_expects(tmp_path: Path) -> None:
    df = gpd.GeoDataFrame({"名称": ["甲"]}, geometry=[shapely.Point(118.5, 32.25)], crs=4326)
    assert (write_file(df, tmp_path / "a.csv", encoding="gbk").read_bytes()
            == "名称,lon,lat\n甲,118.5,32.25\n".encode("gbk"))
    assert write_file(df, tmp_path / "b.csv", encoding="utf-8-sig").read_bytes()[:3] == b"\xef\xbb\xbf"


def test_shapefile_refuses_to_cut_long_text(tmp_path: Path) -> None:
    df = pd.DataFrame({"description": ["楼道堆物" * 100]})  # 1,200 bytes; a .dbf holds 254
    with pytest.raises(WriterError) as exc:
        write_file(df, tmp_path / "long.zip")
    assert exc.value.report.errors()[0].code == "io.write_failed"
    assert not (tmp_path / "long.zip").exists()


def test_xlsx_refuses_cells_excel_cannot_hold(tmp_path: Path) -> None:
    df = gpd.GeoDataFrame({"id": ["a", "b"]}, crs=4326, geometry=[
        shapely.Point(0, 0), shapely.Point(0, 0).buffer(1, quad_segs=2000)])
    with pytest.raises(WriterError) as exc:
        write_file(df, tmp_path / "big.xlsx")
    e = exc.value.report.errors()[0]
    assert (e.code, e.column, e.row) == ("io.write_cell_too_long", "wkt", 3)


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".zip", ".parquet", ".csv"])
def test_time_zones_survive(tmp_path: Path, suffix: str) -> None:
    times = pd.to_datetime(["2024-05-01 00:01:00Z", None]).tz_convert("Asia/Shanghai")
    df = gpd.GeoDataFrame({"time": times}, geometry=[shapely.Point(118.7, 32.0)] * 2, crs=4326)
    back = read_file(write_file(df, tmp_path / f"tz{suffix}")).data["time"]
    assert back.iloc[0] == times[0] and pd.isna(back.iloc[1])
    assert back.dt.tz is not None


def test_xlsx_drops_time_zones_to_wall_clock(tmp_path: Path) -> None:
    times = pd.to_datetime(["2024-05-01 00:01:00Z"]).tz_convert("Asia/Shanghai")
    back = read_file(write_file(pd.DataFrame({"time": times}), tmp_path / "tz.xlsx")).data
    assert back["time"].iloc[0] == pd.Timestamp("2024-05-01 08:01:00")


def test_xlsx_text_that_looks_like_a_formula_stays_text(tmp_path: Path) -> None:
    df = pd.DataFrame({"note": ["=HYPERLINK(\"http://x\")", "普通"], "n": [1, 2]})
    back = read_file(write_file(df, tmp_path / "f.xlsx")).data
    assert back["note"].tolist() == df["note"].tolist()


def test_gpkg_write_keeps_other_layers(tmp_path: Path, gpkg_two_layers: Path) -> None:
    write_file(grids_frame().iloc[:1], gpkg_two_layers, layer="grids")
    assert sorted(pyogrio.list_layers(gpkg_two_layers)[:, 0]) == ["communities", "grids"]
    assert len(read_file(gpkg_two_layers, layer="grids").data) == 1


def test_write_rejects_unknown_suffix_and_bad_encoding(tmp_path: Path) -> None:
    with pytest.raises(WriterError):
        write_file(pd.DataFrame({"a": [1]}), tmp_path / "a.dwg")
    with pytest.raises(ValueError, match="unknown encoding"):
        write_file(pd.DataFrame({"a": [1]}), tmp_path / "a.csv", encoding="klingon")


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".zip", ".parquet", ".csv", ".xlsx"])
def test_attribute_tables_round_trip(tmp_path: Path, suffix: str) -> None:
    df = pd.DataFrame({"工号": ["W001", "W002"], "在岗": [True, False],
                       "time": pd.to_datetime(["2024-05-01 08:00", "2024-05-01 12:00"])})
    back = read_file(write_file(df, tmp_path / f"workers{suffix}")).data
    assert not isinstance(back, gpd.GeoDataFrame)
    assert_frame_equal_loose(back, df)


# --------------------------------------------------------------------------- round trips

#: Float tolerance of each format: GDAL writes GeoJSON with 15 significant digits, a .dbf
#: stores reals with 15 decimals and openpyxl writes 16 significant digits (Excel keeps 15);
#: the others are exact.
RTOL = {".geojson": 1e-14, ".zip": 1e-9, ".xlsx": 1e-15}
CJK = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5)
TEXT = st.builds(lambda a, b: a + b, st.text(CJK, min_size=1, max_size=4),
                 st.text(st.one_of(CJK, st.characters(min_codepoint=0x61, max_codepoint=0x7A)),
                         max_size=6))
DATETIMES = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2035, 12, 31))


@st.composite
def tables(draw: st.DrawFn) -> gpd.GeoDataFrame:
    n = draw(st.integers(1, 6))
    kind = draw(st.sampled_from(["point", "polygon"]))
    lon = draw(st.lists(st.floats(73.5, 135.0), min_size=n, max_size=n))
    lat = draw(st.lists(st.floats(18.0, 53.5), min_size=n, max_size=n))
    if kind == "point":
        geoms = shapely.points(lon, lat)
    else:
        size = draw(st.lists(st.floats(1e-4, 1e-2), min_size=n, max_size=n))
        geoms = shapely.box(lon, lat, np.add(lon, size), np.add(lat, size))
    return gpd.GeoDataFrame(
        {
            "名称": pd.Series(draw(st.lists(st.one_of(st.none(), TEXT), min_size=n, max_size=n)),
                            dtype="str"),
            "households": np.array(draw(st.lists(st.integers(-(2**31), 2**31), min_size=n,
                                                 max_size=n)), dtype=np.int64),
            "area_km2": np.array(draw(st.lists(st.one_of(st.just(np.nan), st.floats(-1e6, 1e6)),
                                               min_size=n, max_size=n)), dtype=np.float64),
            "requested_datetime": pd.to_datetime(
                [t.replace(microsecond=0) if t else None for t in draw(
                    st.lists(st.one_of(st.none(), DATETIMES), min_size=n, max_size=n))]),
        },
        geometry=geoms, crs="EPSG:4326",
    )


def assert_frame_equal_loose(back: pd.DataFrame, df: pd.DataFrame, *, rtol: float = 0.0) -> None:
    """Same columns in the same order and equal values; dtypes may differ in width or time unit."""
    assert list(back.columns) == list(df.columns)
    assert len(back) == len(df)
    for c in df.columns:
        if c == getattr(df, "_geometry_column_name", None):
            continue
        a, b = back[c], df[c]
        if b.isna().all():  # an all-empty column carries no type in GeoJSON, CSV or XLSX
            assert a.isna().all(), c
        elif pd.api.types.is_datetime64_any_dtype(b.dtype):
            assert pd.api.types.is_datetime64_any_dtype(a.dtype), c
            assert a.astype("datetime64[ns]").equals(b.astype("datetime64[ns]")), c
        elif pd.api.types.is_float_dtype(b.dtype):
            np.testing.assert_allclose(a.to_numpy(float), b.to_numpy(float), rtol=rtol, atol=rtol,
                                       equal_nan=True, err_msg=c)
        elif pd.api.types.is_integer_dtype(b.dtype):
            assert pd.api.types.is_integer_dtype(a.dtype), c
            assert a.tolist() == b.tolist(), c
        else:
            assert [None if pd.isna(v) else v for v in a] == [None if pd.isna(v) else v for v in b], c


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".zip", ".parquet", ".csv", ".xlsx"])
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(df=tables())
def test_round_trip(tmp_path: Path, suffix: str, df: gpd.GeoDataFrame) -> None:
    path = write_file(df, tmp_path / f"rt{suffix}")
    back = read_file(path).data
    rtol = RTOL.get(suffix, 0.0)
    assert isinstance(back, gpd.GeoDataFrame)
    assert back.crs == "EPSG:4326"
    assert_frame_equal_loose(back, df, rtol=rtol)
    a = shapely.normalize(back.geometry.to_numpy())
    b = shapely.normalize(df.geometry.to_numpy())
    assert shapely.equals_exact(a, b, tolerance=1e-12 if rtol else 0.0).all()
