"""Fixtures for the reader/writer tests: real files written by real tools into tmp dirs.

Each fixture writes its file at test time with the tool people's files come from:
GDAL (pyogrio) for GeoJSON/GeoPackage/Shapefile, geopandas for GeoParquet, openpyxl for
XLSX, Python's csv module for GBK / UTF-8-BOM CSVs (as Excel and WPS save them), gpxpy
for GPX and pyosmium for an OSM .pbf.
"""

from __future__ import annotations

import csv
import datetime as dt
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely

if TYPE_CHECKING:
    from layers.store import Store

#: Two grids in Nanjing Gulou (invented codes and counts), Chinese headers as people send them.
GRID_ROWS = [
    {"网格代码": "320106001001001", "名称": "宁海路第一网格", "网格类型": "comprehensive",
     "所属社区代码": "320106001001", "户数": 420, "人口": 1130},
    {"网格代码": "320106001001002", "名称": "宁海路第二网格", "网格类型": "comprehensive",
     "所属社区代码": "320106001001", "户数": 385, "人口": 1012},
]
GRID_BOXES = [(118.770, 32.060, 118.775, 32.065), (118.775, 32.060, 118.780, 32.065)]


def grids_frame() -> gpd.GeoDataFrame:
    """The two grids as a GeoDataFrame in EPSG:4326."""
    geoms = [shapely.box(*b) for b in GRID_BOXES]
    return gpd.GeoDataFrame(pd.DataFrame(GRID_ROWS), geometry=geoms, crs="EPSG:4326")


def zip_folder(folder: Path, target: Path, *, skip: tuple[str, ...] = ()) -> Path:
    """Zip every file of ``folder`` (except suffixes in ``skip``) flat into ``target``."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(folder.iterdir()):
            if f.suffix.lower() not in skip:
                zf.write(f, arcname=f.name)
    return target


@pytest.fixture()
def geojson_file(tmp_path: Path) -> Path:
    path = tmp_path / "网格.geojson"
    pyogrio.write_dataframe(grids_frame(), path, driver="GeoJSON")
    return path


@pytest.fixture()
def gpkg_two_layers(tmp_path: Path) -> Path:
    path = tmp_path / "鼓楼区.gpkg"
    pyogrio.write_dataframe(grids_frame(), path, layer="grids", driver="GPKG")
    communities = gpd.GeoDataFrame(
        {"社区代码": ["320106001001"], "名称": ["宁海路社区"], "所属街道代码": ["320106001"]},
        geometry=[shapely.box(118.77, 32.06, 118.78, 32.065)], crs="EPSG:4326")
    pyogrio.write_dataframe(communities, path, layer="communities", driver="GPKG")
    return path


def write_shapefile(df: gpd.GeoDataFrame, path: Path, *, encoding: str) -> None:
    """Write a Shapefile with GDAL, as a GIS desk would (long Chinese field names get cut)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # GDAL's "laundered field name" notes
        pyogrio.write_dataframe(df, path, encoding=encoding)


def _gbk_shapefile(tmp_path: Path, name: str, *, encoding: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    write_shapefile(grids_frame(), folder / f"{name}.shp", encoding=encoding)
    return folder


@pytest.fixture()
def shp_zip_gbk_cpg(tmp_path: Path) -> Path:
    folder = _gbk_shapefile(tmp_path, "grids_gbk", encoding="GBK")
    assert (folder / "grids_gbk.cpg").read_text() == "GBK"
    return zip_folder(folder, tmp_path / "grids_gbk.zip")


@pytest.fixture()
def shp_zip_gbk_no_cpg(tmp_path: Path) -> Path:
    """A GBK .dbf without .cpg, as many Chinese GIS tools leave them."""
    folder = _gbk_shapefile(tmp_path, "grids_nocpg", encoding="GBK")
    assert (folder / "grids_nocpg.dbf").read_bytes()[29] == 0  # no language driver id either
    return zip_folder(folder, tmp_path / "grids_nocpg.zip", skip=(".cpg",))


@pytest.fixture()
def shp_zip_utf8_no_cpg(tmp_path: Path) -> Path:
    folder = _gbk_shapefile(tmp_path, "grids_utf8", encoding="UTF-8")
    return zip_folder(folder, tmp_path / "grids_utf8.zip", skip=(".cpg",))


@pytest.fixture()
def shp_zip_no_shx(tmp_path: Path) -> Path:
    folder = _gbk_shapefile(tmp_path, "grids_noshx", encoding="UTF-8")
    return zip_folder(folder, tmp_path / "grids_noshx.zip", skip=(".shx",))


@pytest.fixture()
def geoparquet_file(tmp_path: Path) -> Path:
    path = tmp_path / "grids.parquet"
    grids_frame().to_parquet(path)
    return path


BUILDING_HEADER = ["楼栋编号", "小区", "层数", "户数", "人口", "网格代码", "经度", "纬度", "建成日期"]
BUILDING_ROWS = [
    ["B001", "宁海花园", 6, 48, 130, "320106001001001", 118.7712, 32.0613, dt.datetime(1998, 5, 1)],
    ["B002", "宁海花园", 18, 144, 389, "320106001001001", 118.7721, 32.0622, dt.datetime(2006, 9, 30)],
    ["B003", "颐和新村", 3, 12, 31, "320106001001002", 118.7765, 32.0631, dt.datetime(1985, 1, 15)],
]


@pytest.fixture()
def xlsx_file(tmp_path: Path) -> Path:
    """An openpyxl workbook as a community office makes it: a title row, then Chinese headers."""
    import openpyxl

    wb = openpyxl.Workbook()
    notes = wb.active
    notes.title = "说明"
    notes.append(["本表为楼栋台账，数据为虚构示例"])
    ws = wb.create_sheet("楼栋")
    ws.append(["宁海路社区楼栋台账（2024年）"])
    ws.append(BUILDING_HEADER)
    for row in BUILDING_ROWS:
        ws.append(row)
    path = tmp_path / "楼栋台账.xlsx"
    wb.save(path)
    return path


CSV_HEADER = ["编号", "设施类型", "名称", "经度", "纬度", "更新时间"]
CSV_ROWS = [
    ["F01", "clinic", "宁海路社区卫生服务站", "118.7712", "32.0613", "2024/5/1 8:00"],
    ["F02", "police_post", "颐和路警务室", "118.7765", "32.0631", "2024/5/2 17:30"],
]


def _write_csv(path: Path, encoding: str, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture()
def csv_gbk(tmp_path: Path) -> Path:
    """A CSV as Excel on Chinese Windows saves it ("CSV (逗号分隔)"): GBK."""
    return _write_csv(tmp_path / "设施_gbk.csv", "gbk", CSV_HEADER, CSV_ROWS)


@pytest.fixture()
def csv_utf8_bom(tmp_path: Path) -> Path:
    """A CSV as Excel saves "CSV UTF-8 (逗号分隔)": UTF-8 with a BOM."""
    return _write_csv(tmp_path / "设施_bom.csv", "utf-8-sig", CSV_HEADER, CSV_ROWS)


@pytest.fixture()
def gpx_file(tmp_path: Path) -> Path:
    """Two workers' GPS tracks, written by gpxpy with UTC timestamps."""
    import gpxpy.gpx

    g = gpxpy.gpx.GPX()
    for worker in ("W001", "W002"):
        track = gpxpy.gpx.GPXTrack(name=worker)
        seg = gpxpy.gpx.GPXTrackSegment()
        for i in range(4):
            seg.points.append(gpxpy.gpx.GPXTrackPoint(
                32.0610 + i * 1e-4, 118.7710 + i * 1e-4, elevation=12.0 + i,
                time=dt.datetime(2024, 5, 1, 0, i, 0, tzinfo=dt.UTC)))
        track.segments.append(seg)
        g.tracks.append(track)
    path = tmp_path / "巡查轨迹.gpx"
    path.write_text(g.to_xml(), encoding="utf-8")
    return path


@pytest.fixture()
def pbf_file(tmp_path: Path) -> Path:
    """A small OSM extract written by pyosmium: roads of several kinds, a river, rails, buildings."""
    import osmium
    from osmium.osm.mutable import Node, Relation, Way

    path = tmp_path / "gulou.osm.pbf"
    nodes = {1: (118.770, 32.060), 2: (118.775, 32.060), 3: (118.780, 32.060),
             4: (118.780, 32.065), 5: (118.775, 32.065), 6: (118.770, 32.065),
             7: (118.771, 32.061), 8: (118.772, 32.061), 9: (118.772, 32.062), 10: (118.771, 32.062),
             11: (118.776, 32.061), 12: (118.778, 32.061), 13: (118.778, 32.063), 14: (118.776, 32.063)}
    w = osmium.SimpleWriter(str(path))
    for nid, loc in nodes.items():
        w.add_node(Node(id=nid, location=loc, tags={}))
    ways = [
        (100, [1, 2, 3], {"highway": "primary", "name": "北京西路"}),
        (101, [3, 4], {"highway": "trunk", "name": "虎踞路快速路"}),
        (102, [4, 5], {"highway": "residential", "name": "宁海路"}),
        (103, [5, 6], {"highway": "footway"}),
        (104, [6, 1], {"highway": "construction"}),
        (105, [1, 5], {"waterway": "river", "name": "秦淮河"}),
        (106, [2, 4], {"railway": "rail"}),
        (107, [2, 5], {"railway": "subway", "tunnel": "yes"}),
        (108, [7, 8, 9, 10, 7], {"building": "apartments", "building:levels": "6"}),
        (109, [11, 12, 13, 14, 11], {"building": "office"}),
    ]
    for wid, refs, tags in ways:
        w.add_way(Way(id=wid, nodes=refs, tags=tags))
    w.add_relation(Relation(id=200, members=[("w", 108, "outer")],
                            tags={"type": "multipolygon", "amenity": "school"}))
    w.close()
    return path


@pytest.fixture(params=["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty store on each engine: a GeoPackage file, and a fresh schema on PostGIS."""
    import uuid

    import psycopg

    from layers.store import open_store

    if request.param == "gpkg":
        with open_store(str(tmp_path / "store.gpkg")) as s:
            yield s
        return
    base = request.getfixturevalue("pg_url")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with open_store(f"{base}?schema={schema}") as s:
        yield s
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
