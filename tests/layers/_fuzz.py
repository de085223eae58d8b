"""A seeded corpus of malformed and hostile files for every reader, and the child that reads them.

:func:`generate` writes, for one format, valid seed files made by the real writers
(:func:`layers.io.write_file`, pyosmium, sqlite3, pyarrow) and then damaged or hostile variants:
truncations, byte flips, spliced garbage, wrong suffixes, empty files and binary noise, plus
hand-made attacks aimed at that format (unclosed rings in WKB, deeply nested JSON, NUL bytes,
zip bombs, an XLSX sheet declaring ``A1:XFD1048576``, billion-laughs XML...). Everything is
generated under a temporary folder; nothing large is committed.

Run as a script, ``python _fuzz.py MANIFEST OUT`` reads every file listed in ``MANIFEST`` (JSON
lines ``{"path", "layer"}``) with :func:`layers.io.read_file` and writes one JSON line per file
to ``OUT``: the outcome (``ok``, ``reader_error`` or ``traceback``), the message codes, the
seconds taken, and the process's peak RSS so far. A ``start`` line precedes each file so the
parent can tell which file hung.
"""

from __future__ import annotations

import io
import json
import sqlite3
import struct
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Formats of the corpus: name -> (suffix of its seed files, layers to read them as).
FORMATS: dict[str, tuple[str, tuple[str | None, ...]]] = {
    "geojson": (".geojson", (None, "grids")),
    "gpkg": (".gpkg", (None, "grids")),
    "shpzip": (".zip", (None, "grids")),
    "geoparquet": (".parquet", (None, "grids")),
    "csv_utf8": (".csv", (None, "incidents")),
    "csv_gbk": (".csv", (None, "incidents")),
    "xlsx": (".xlsx", (None, "incidents")),
    "gpx": (".gpx", ("patrol_points", None)),
    "pbf": (".pbf", ("roads", "buildings")),
    "osm": (".osm", ("roads", "buildings")),
}
SUFFIXES = [".geojson", ".gpkg", ".zip", ".parquet", ".csv", ".xlsx", ".gpx", ".pbf", ".osm",
            ".json", ".tsv", ".txt", ".shp", ".geoparquet", ".xlsm"]
#: Generic mutations per format, shared among its seed files.
MUTANTS_PER_FORMAT = 36


@dataclass(frozen=True)
class Case:
    """One corpus file: where it is, the layer to read it as, and how it was made."""

    path: Path
    layer: str | None
    kind: str


# --------------------------------------------------------------------------- seed data


def _frames() -> dict[str, object]:
    import geopandas as gpd
    import pandas as pd
    import shapely

    grids = gpd.GeoDataFrame(
        {"grid_id": ["G001", "G002", "G003"], "name": ["东风社区一网格", "东风二网格", "新街口"],
         "households": [420, 388, 512]},
        geometry=[shapely.box(118.77 + i * 0.01, 32.06, 118.78 + i * 0.01, 32.07) for i in range(3)],
        crs="EPSG:4326")
    points = pd.DataFrame({
        "工单编号": ["A1", "A2", "A3", "A4"], "类别": ["市容环境", "街面秩序", "市容环境", "设施"],
        "经度": [118.781, 118.782, 118.783, 118.784], "纬度": [32.061, 32.062, 32.063, 32.064],
        "描述": ["垃圾堆放", "占道经营", "井盖缺失", "路灯不亮"],
        "上报时间": pd.to_datetime(["2024-05-01 08:00", "2024-05-01 09:30", "2024-05-02 10:00",
                                "2024-05-03 11:15"])})
    return {"grids": grids, "points": points}


def _gpx_text() -> str:
    pts = "".join(
        f'<trkpt lat="{32.061 + i * 1e-4:.6f}" lon="{118.771 + i * 1e-4:.6f}"><ele>{12 + i}</ele>'
        f"<time>2024-05-01T00:0{i}:00Z</time></trkpt>" for i in range(5))
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<gpx version="1.1" creator="t" '
            'xmlns="http://www.topografix.com/GPX/1/1"><trk><name>W001 张三</name><trkseg>'
            f"{pts}</trkseg></trk></gpx>\n")


_OSM_NODES = {1: (118.770, 32.060), 2: (118.775, 32.060), 3: (118.780, 32.060),
              4: (118.780, 32.065), 5: (118.775, 32.065), 6: (118.770, 32.065)}
_OSM_WAYS = [(100, [1, 2, 3], {"highway": "primary", "name": "北京西路"}),
             (101, [3, 4], {"highway": "residential", "name": "宁海路"}),
             (102, [1, 5], {"waterway": "river", "name": "秦淮河"}),
             (103, [2, 3, 4, 5, 2], {"building": "apartments", "building:levels": "6"})]


def _osm_xml(ways: list[tuple[int, list[int], dict[str, str]]] = _OSM_WAYS,
             nodes: dict[int, tuple[float, float]] = _OSM_NODES) -> str:
    from xml.sax.saxutils import quoteattr

    out = ['<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6" generator="t">']
    for nid, (lon, lat) in nodes.items():
        out.append(f'<node id="{nid}" version="1" lat="{lat}" lon="{lon}"/>')
    for wid, refs, tags in ways:
        out.append(f'<way id="{wid}" version="1">' + "".join(f'<nd ref="{r}"/>' for r in refs)
                   + "".join(f"<tag k={quoteattr(k)} v={quoteattr(v)}/>" for k, v in tags.items())
                   + "</way>")
    out.append("</osm>\n")
    return "\n".join(out)


def _write_pbf(path: Path, ways=_OSM_WAYS, nodes=_OSM_NODES, *, uncompressed: bool = False) -> Path:
    import osmium
    from osmium.osm.mutable import Node, Way

    target = osmium.io.File(str(path), "pbf,pbf_compression=none") if uncompressed else str(path)
    w = osmium.SimpleWriter(target)
    for nid, loc in nodes.items():
        w.add_node(Node(id=nid, location=loc, tags={}))
    for wid, refs, tags in ways:
        w.add_way(Way(id=wid, nodes=refs, tags=tags))
    w.close()
    return path


# --------------------------------------------------------------------------- raw geometry bytes


def wkb_polygon(rings: list[list[tuple[float, float]]], *, declared_points: int | None = None) -> bytes:
    """Little-endian WKB of a polygon, written byte by byte so it can be invalid (unclosed rings)."""
    out = struct.pack("<BII", 1, 3, len(rings))
    for ring in rings:
        out += struct.pack("<I", declared_points if declared_points is not None else len(ring))
        out += b"".join(struct.pack("<dd", x, y) for x, y in ring)
    return out


UNCLOSED = [[(118.77, 32.06), (118.78, 32.06), (118.78, 32.07), (118.77, 32.07)]]
TWO_POINT_RING = [[(118.77, 32.06), (118.78, 32.06)]]


def _bad_wkbs() -> list[tuple[str, bytes]]:
    return [
        ("unclosed_ring", wkb_polygon(UNCLOSED)),
        ("two_point_ring", wkb_polygon(TWO_POINT_RING)),
        ("huge_point_count", wkb_polygon(UNCLOSED, declared_points=2**31 - 1)),
        ("huge_ring_count", struct.pack("<BII", 1, 3, 2**31 - 1)),
        ("unknown_type", struct.pack("<BI", 1, 99) + b"\x00" * 16),
        ("nan_point", struct.pack("<BIdd", 1, 1, float("nan"), float("inf"))),
        ("short", b"\x01\x03"),
    ]


# --------------------------------------------------------------------------- generic mutations


def _mutate(data: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    """One random damage: truncation, byte flips, spliced garbage, zeroed or repeated block."""
    n = len(data)
    op = rng.integers(6)
    if op == 0 and n > 1:
        k = int(rng.integers(1, n))
        return f"truncate@{k}", data[:k]
    if op == 1:
        buf = bytearray(data)
        for _ in range(int(rng.integers(1, 12))):
            i = int(rng.integers(n))
            buf[i] ^= int(rng.integers(1, 256))
        return "flip", bytes(buf)
    if op == 2:
        i = int(rng.integers(n + 1))
        return "splice", data[:i] + rng.bytes(int(rng.integers(1, 64))) + data[i:]
    if op == 3 and n > 8:
        i = int(rng.integers(n - 4))
        j = min(n, i + int(rng.integers(4, 256)))
        return "zero", data[:i] + b"\x00" * (j - i) + data[j:]
    if op == 4 and n > 8:
        i = int(rng.integers(n - 4))
        j = min(n, i + int(rng.integers(4, 128)))
        return "repeat", data[:j] + data[i:j] * int(rng.integers(2, 20)) + data[j:]
    i = int(rng.integers(n))
    return "cut_middle", data[:i] + data[i + int(rng.integers(1, max(2, n // 4))):]


def _zip(members: dict[str, bytes], *, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _zip_members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def zip_bomb(name: str, expanded_mb: int, others: dict[str, bytes] | None = None) -> bytes:
    """A zip holding a member of ``expanded_mb`` MB of zeros (about 1,000:1), beside ``others``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for other, data in (others or {}).items():
            zf.writestr(other, data)
        with zf.open(name, "w", force_zip64=True) as dst:
            block = b"\x00" * (1 << 20)
            for _ in range(expanded_mb):
                dst.write(block)
    return buf.getvalue()


def lying_zip(name: str, real: bytes, declared: int) -> bytes:
    """A zip whose directory declares ``declared`` bytes for a member that expands to more."""
    data = bytearray(_zip({name: real}))
    size = struct.pack("<I", declared)
    # local header: uncompressed size at offset 22; central directory entry: at offset 24
    data[22:26] = size
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 24:cd + 28] = size
    return bytes(data)


# --------------------------------------------------------------------------- hostile XLSX


def _xlsx_parts(sheet_xml: str, shared: list[str] | None = None) -> dict[str, bytes]:
    ct = ('<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
          'package/2006/content-types"><Default Extension="rels" ContentType="application/'
          'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType='
          '"application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/'
          'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName='
          '"/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument'
          '.spreadsheetml.worksheet+xml"/>'
          + ('<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats'
             '-officedocument.spreadsheetml.sharedStrings+xml"/>' if shared is not None else "")
          + "</Types>")
    rels = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats'
            '.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.'
            'openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target='
            '"xl/workbook.xml"/></Relationships>')
    wb = ('<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/'
          'spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/'
          'relationships"><sheets><sheet name="事件" sheetId="1" r:id="rId1"/></sheets></workbook>')
    wb_rels = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
               'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http:'
               '//schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target='
               '"worksheets/sheet1.xml"/>'
               + ('<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/'
                  '2006/relationships/sharedStrings" Target="sharedStrings.xml"/>'
                  if shared is not None else "")
               + "</Relationships>")
    parts = {"[Content_Types].xml": ct.encode(), "_rels/.rels": rels.encode(),
             "xl/workbook.xml": wb.encode(), "xl/_rels/workbook.xml.rels": wb_rels.encode(),
             "xl/worksheets/sheet1.xml": sheet_xml.encode()}
    if shared is not None:
        sst = "".join(f"<si><t>{s}</t></si>" for s in shared)
        parts["xl/sharedStrings.xml"] = (
            '<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/'
            f'spreadsheetml/2006/main" count="{len(shared)}" uniqueCount="{len(shared)}">{sst}</sst>'
        ).encode()
    return parts


def sheet_xml(rows: str, *, dimension: str = "A1:C3", prolog: str = "") -> str:
    """A worksheet part around ``rows`` (``<row>`` elements), declaring ``dimension``."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>{prolog}<worksheet xmlns="http://schemas.'
            f'openxmlformats.org/spreadsheetml/2006/main"><dimension ref="{dimension}"/>'
            f"<sheetData>{rows}</sheetData></worksheet>")


def _cell(ref: str, value: str | float) -> str:
    if isinstance(value, str):
        return f'<c r="{ref}" t="inlineStr"><is><t>{value}</t></is></c>'
    return f'<c r="{ref}"><v>{value}</v></c>'


_XLSX_HEAD = ('<row r="1">' + _cell("A1", "经度") + _cell("B1", "纬度") + _cell("C1", "描述") + "</row>"
              '<row r="2">' + _cell("A2", 118.78) + _cell("B2", 32.06) + _cell("C2", "垃圾") + "</row>")


def hostile_xlsx() -> list[tuple[str, bytes]]:
    """XLSX workbooks built by hand: the shapes a spreadsheet library must not trust."""
    laughs = ('<!DOCTYPE lolz [<!ENTITY lol "lol">'
              + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
                        for i in range(1, 10)) + "]>")
    big_rows = "".join(f'<row r="{r}">' + _cell(f"A{r}", 118.78) + _cell(f"B{r}", 32.06) + "</row>"
                       for r in range(3, 4000))
    out = [
        ("declared_XFD1048576", _zip(_xlsx_parts(sheet_xml(_XLSX_HEAD, dimension="A1:XFD1048576")))),
        ("declared_XFD1048576_value_on_last_row", _zip(_xlsx_parts(sheet_xml(
            _XLSX_HEAD + '<row r="1048576">' + _cell("A1048576", 1.0) + "</row>",
            dimension="A1:XFD1048576")))),
        ("row_1048576", _zip(_xlsx_parts(sheet_xml(
            _XLSX_HEAD + '<row r="1048576">' + _cell("A1048576", 1.0) + "</row>",
            dimension="A1:C1048576")))),
        ("blank_styled_row_1048576", _zip(_xlsx_parts(sheet_xml(
            _XLSX_HEAD + '<row r="1048576"><c r="A1048576" s="0"/></row>')))),
        ("cell_at_XFD", _zip(_xlsx_parts(sheet_xml(
            _XLSX_HEAD.replace("</row>", _cell("XFD1", "far") + "</row>", 1))))),
        ("many_rows_at_XFD", _zip(_xlsx_parts(sheet_xml("".join(
            f'<row r="{r}">' + _cell(f"XFD{r}", 1.0) + "</row>" for r in range(1, 3000)))))),
        ("bad_xml", _zip(_xlsx_parts(sheet_xml(_XLSX_HEAD)[:-40]))),
        ("unclosed_tag", _zip(_xlsx_parts(sheet_xml(_XLSX_HEAD.replace("</row>", "", 1))))),
        ("billion_laughs", _zip(_xlsx_parts(sheet_xml(
            '<row r="1">' + _cell("A1", "&lol9;") + "</row>", prolog=laughs)))),
        ("bad_shared_index", _zip(_xlsx_parts(sheet_xml(
            '<row r="1"><c r="A1" t="s"><v>99</v></c></row>'), shared=["经度"]))),
        ("shared_string_nul_ref", _zip(_xlsx_parts(sheet_xml(
            '<row r="1"><c r="A1" t="s"><v>-1</v></c></row>'), shared=["a"]))),
        ("control_char_entity", _zip(_xlsx_parts(sheet_xml(
            _XLSX_HEAD + '<row r="3">' + _cell("A3", 118.7) + _cell("B3", 32.0)
            + _cell("C3", "坏&#1;值") + "</row>")))),
        ("bad_number", _zip(_xlsx_parts(sheet_xml(
            '<row r="1"><c r="A1"><v>not-a-number</v></c></row>')))),
        ("bad_cell_ref", _zip(_xlsx_parts(sheet_xml('<row r="1"><c r="ZZZZZ99999999"><v>1</v></c></row>')))),
        ("negative_row", _zip(_xlsx_parts(sheet_xml('<row r="-5"><c r="A1"><v>1</v></c></row>')))),
        ("bad_date_type", _zip(_xlsx_parts(sheet_xml(
            '<row r="1"><c r="A1" t="d"><v>yesterday</v></c></row>')))),
        ("no_workbook", _zip({k: v for k, v in _xlsx_parts(sheet_xml(_XLSX_HEAD)).items()
                              if k != "xl/workbook.xml"})),
        ("no_sheet", _zip({k: v for k, v in _xlsx_parts(sheet_xml(_XLSX_HEAD)).items()
                           if k != "xl/worksheets/sheet1.xml"})),
        ("empty_zip", _zip({})),
        ("sheet_bomb", _zip(_xlsx_parts(sheet_xml(big_rows * 1)) | {
            "xl/worksheets/sheet1.xml": sheet_xml(_XLSX_HEAD + big_rows * 4).encode()})),
        ("zip_bomb_member", zip_bomb("xl/worksheets/sheet1.xml", 24)),
        ("stored_not_deflated", _zip(_xlsx_parts(sheet_xml(_XLSX_HEAD)), method=zipfile.ZIP_STORED)),
    ]
    return out


# --------------------------------------------------------------------------- per-format seeds and attacks


def _seeds(fmt: str, folder: Path) -> list[tuple[str, bytes]]:
    """Valid files of ``fmt``, written by the real writers."""
    from layers.io import write_file

    f = _frames()
    grids, points = f["grids"], f["points"]
    tmp = folder / "_seed"
    tmp.mkdir(exist_ok=True)
    if fmt in ("geojson", "gpkg", "shpzip", "geoparquet"):
        suffix = FORMATS[fmt][0]
        out = [("grids", write_file(grids, tmp / f"grids{suffix}", encoding="gbk" if fmt == "shpzip"
                                     else "utf-8").read_bytes())]
        import geopandas as gpd

        pts = gpd.GeoDataFrame(points.drop(columns=["经度", "纬度"]),
                               geometry=gpd.points_from_xy(points["经度"], points["纬度"]), crs=4326)
        out.append(("points", write_file(pts, tmp / f"points{suffix}").read_bytes()))
        return out
    if fmt in ("csv_utf8", "csv_gbk"):
        enc = "utf-8" if fmt == "csv_utf8" else "gbk"
        wkt = grids.assign(wkt=grids.geometry.to_wkt()).drop(columns="geometry")
        return [("points", write_file(points, tmp / "p.csv", encoding=enc).read_bytes()),
                ("wkt", wkt.to_csv(index=False).encode(enc)),
                ("title_row", ("事件清单,,\n" + points.to_csv(index=False)).encode(enc))]
    if fmt == "xlsx":
        import openpyxl

        wb = openpyxl.Workbook()
        ws = wb.active
        ws.title = "事件"
        ws.append(["鼓楼区事件"])
        ws.append(list(points.columns))
        for row in points.itertuples(index=False):
            ws.append(list(row))
        buf = io.BytesIO()
        wb.save(buf)
        return [("gdal", write_file(points, tmp / "p.xlsx").read_bytes()),
                ("openpyxl", buf.getvalue())]
    if fmt == "gpx":
        wpt = _gpx_text().replace("<trk><name>W001 张三</name><trkseg>", "").replace(
            "</trkseg></trk>", "").replace("trkpt", "wpt")
        return [("track", _gpx_text().encode()), ("waypoints", wpt.encode())]
    if fmt == "pbf":
        return [("extract", _write_pbf(tmp / "a.osm.pbf").read_bytes())]
    if fmt == "osm":
        return [("extract", _osm_xml().encode())]
    raise ValueError(fmt)


def _attacks(fmt: str, seeds: list[tuple[str, bytes]]) -> list[tuple[str, str, bytes]]:
    """``(kind, suffix, bytes)`` hand-made hostile files aimed at ``fmt``."""
    suffix = FORMATS[fmt][0]
    first = seeds[0][1]
    out: list[tuple[str, str, bytes]] = [
        ("empty", suffix, b""), ("one_byte", suffix, b"\x00"), ("nul_block", suffix, b"\x00" * 4096),
        ("noise", suffix, np.random.default_rng(7).bytes(3000)),
        ("magic_then_noise", suffix, first[:16] + np.random.default_rng(8).bytes(2000)),
    ]
    if fmt == "geojson":
        feat = ('{"type":"FeatureCollection","features":[{"type":"Feature","properties":%s,'
                '"geometry":%s}]}')
        good_props = '{"grid_id":"G1","name":"东风"}'
        poly = '{"type":"Polygon","coordinates":%s}'
        depth = 100_000
        out += [
            ("unclosed_ring", suffix, (feat % (good_props, poly % json.dumps(
                [[list(p) for p in UNCLOSED[0]]]))).encode()),
            ("two_point_ring", suffix, (feat % (good_props, poly % json.dumps(
                [[list(p) for p in TWO_POINT_RING[0]]]))).encode()),
            ("deep_coordinates", suffix, (feat % (good_props, poly % ("[" * depth + "]" * depth))).encode()),
            ("deep_properties", suffix, (feat % ('{"a":' + "[" * depth + "]" * depth + "}",
                                                 '{"type":"Point","coordinates":[118.7,32.0]}')).encode()),
            ("deep_bare", suffix, b"[" * 200_000),
            ("nul_escape_value", suffix, (feat % ('{"grid_id":"G\\u0000 1","name":"东\\u0000风\\u001b"}',
                                                  '{"type":"Point","coordinates":[118.7,32.0]}')).encode()),
            ("nul_escape_key", suffix, (feat % ('{"na\\u0000me":"x"}',
                                                '{"type":"Point","coordinates":[118.7,32.0]}')).encode()),
            ("raw_nul", suffix, (feat % (good_props, '{"type":"Point","coordinates":[118.7,32.0]}'))
             .encode().replace(b"\xe4\xb8\x9c", b"\x00\x00\x00")),
            ("coords_strings", suffix, (feat % (good_props, '{"type":"Point","coordinates":["a","b"]}')).encode()),
            ("coords_huge", suffix, (feat % (good_props, '{"type":"Point","coordinates":[1e400,-1e400]}')).encode()),
            ("coords_nan", suffix, (feat % (good_props, '{"type":"Point","coordinates":[NaN,Infinity]}')).encode()),
            ("features_null", suffix, b'{"type":"FeatureCollection","features":null}'),
            ("top_array", suffix, b'[1,2,3]'),
            ("top_number", suffix, b"42"),
            ("utf16", suffix, (feat % (good_props, '{"type":"Point","coordinates":[118.7,32.0]}')).encode("utf-16")),
            ("many_properties", suffix, (feat % (json.dumps({f"p{i}": i for i in range(1000)}),
                                                 '{"type":"Point","coordinates":[118.7,32.0]}')).encode()),
            ("mixed_geometry_types", suffix, json.dumps({"type": "FeatureCollection", "features": [
                {"type": "Feature", "properties": {"name": "x"}, "geometry": g} for g in (
                    {"type": "Point", "coordinates": [118.7, 32.0]},
                    {"type": "LineString", "coordinates": [[1, 2]]},
                    {"type": "GeometryCollection", "geometries": []})]}).encode()),
        ]
    elif fmt == "gpkg":
        for kind, blob in _bad_wkbs():
            out.append((f"blob_{kind}", suffix, _gpkg_with_blob(first, blob)))
        out.append(("blob_garbage_header", suffix, _gpkg_with_blob(first, b"XX" + b"\x07" * 20, raw=True)))
        out.append(("nul_text", suffix, _gpkg_sql(first, "UPDATE \"{t}\" SET name = 'a' || char(0) || 'b'")))
        out.append(("contents_missing_table", suffix, _gpkg_sql(
            first, "UPDATE gpkg_contents SET table_name = 'nope'")))
        out.append(("srs_garbage", suffix, _gpkg_sql(
            first, "UPDATE gpkg_spatial_ref_sys SET definition = 'garbage' WHERE srs_id = 4326")))
        out.append(("geometry_columns_gone", suffix, _gpkg_sql(first, "DELETE FROM gpkg_geometry_columns")))
        out.append(("text_in_int_column", suffix, _gpkg_sql(first, "UPDATE \"{t}\" SET households = 'many'")))
    elif fmt == "shpzip":
        members = _zip_members(first)
        shp = next(k for k in members if k.endswith(".shp"))
        dbf = next(k for k in members if k.endswith(".dbf"))
        rng = np.random.default_rng(11)
        for part in (".shp", ".shx", ".dbf", ".prj", ".cpg", ".columns.json"):
            name = next((k for k in members if k.endswith(part)), None)
            if name is None:
                continue
            for j in range(3):
                kind, data = _mutate(members[name], rng)
                out.append((f"member{part}_{kind}_{j}", suffix, _zip(members | {name: data})))
            out.append((f"missing{part}", suffix, _zip({k: v for k, v in members.items() if k != name})))
        dbf_bytes = bytearray(members[dbf])
        dbf_bytes[8:10] = struct.pack("<H", 65535)  # header length far past the file
        out.append(("dbf_header_len", suffix, _zip(members | {dbf: bytes(dbf_bytes)})))
        dbf_bytes = bytearray(members[dbf])
        dbf_bytes[10:12] = struct.pack("<H", 0)  # record length 0
        out.append(("dbf_record_len_0", suffix, _zip(members | {dbf: bytes(dbf_bytes)})))
        rec = members[dbf]
        out.append(("dbf_nul_text", suffix, _zip(members | {dbf: rec[:-20] + b"\x00\x01" + rec[-18:]})))
        shp_b = bytearray(members[shp])
        shp_b[100 + 8 + 36:100 + 8 + 40] = struct.pack("<i", 2**31 - 1)  # points in first record
        out.append(("shp_huge_point_count", suffix, _zip(members | {shp: bytes(shp_b)})))
        out.append(("sidecar_deep", suffix, _zip(members | {
            next(k for k in members if k.endswith(".shp"))[:-4] + ".columns.json": b"[" * 100_000})))
        out += [
            ("bomb_1000x", suffix, zip_bomb("bomb.csv", 64)),
            ("bomb_in_shapefile", suffix, zip_bomb(dbf, 32, {k: v for k, v in members.items()
                                                             if k != dbf})),
            ("lying_size", suffix, lying_zip("a.csv", b"lon,lat\n" + b"1,2\n" * 200_000, 100)),
            ("many_members", suffix, _zip({f"f{i}.txt": b"" for i in range(1500)})),
            ("nested_zip", suffix, _zip({"inner.zip": first})),
            ("traversal_names", suffix, _zip({f"../../../tmp/evil{k[-4:]}": v for k, v in members.items()})),
            ("two_data_files", suffix, _zip({"a.csv": b"lon,lat\n1,2\n", "b.geojson": b"{}"})),
            ("member_is_garbage_xlsx", suffix, _zip({"a.xlsx": b"PK\x03\x04junk"})),
            ("member_bad_csv", suffix, _zip({"a.csv": b"\xff\xfe\x00\x00garbage\x00" * 50})),
            ("encrypted_flag", suffix, _encrypted_flag(first)),
            ("bad_crc", suffix, _bad_crc(first)),
        ]
    elif fmt == "geoparquet":
        for kind, blob in _bad_wkbs():
            out.append((f"wkb_{kind}", suffix, _parquet_with_wkb(first, blob)))
        for kind, meta in (("geo_not_json", b"{nope"), ("geo_deep", b"[" * 100_000),
                           ("geo_wrong_column", json.dumps({"version": "1.0.0", "primary_column": "nope",
                                                            "columns": {"nope": {"encoding": "WKB"}}}).encode()),
                           ("geo_bad_crs", json.dumps({"version": "1.0.0", "primary_column": "geometry",
                                                       "columns": {"geometry": {"encoding": "WKB",
                                                                                "crs": "garbage"}}}).encode()),
                           ("geo_bad_encoding", json.dumps({"version": "1.0.0", "primary_column": "geometry",
                                                            "columns": {"geometry": {"encoding": "nope"}}}).encode())):
            out.append((kind, suffix, _parquet_with_meta(first, meta)))
        out.append(("plain_nul_lonlat", suffix, _plain_parquet({
            "lon": [118.7, 118.8], "lat": [32.0, 32.1], "name": ["a\x00b", "c\x1bd"]})))
        out.append(("plain_wkt_unclosed", suffix, _plain_parquet({
            "wkt": ["POLYGON((0 0,1 0,1 1,0 1))", "POLYGON((0 0))"]})))
        out.append(("footer_only", suffix, b"PAR1" + b"\x00" * 100 + b"PAR1"))
    elif fmt in ("csv_utf8", "csv_gbk"):
        enc = "utf-8" if fmt == "csv_utf8" else "gbk"
        head = "经度,纬度,描述\n"
        text_cases = {
            "unbalanced_quote": head + '118.7,32.0,"未闭合\n118.8,32.1,x\n',
            "nul_in_value": head + "118.7,32.0,垃\x00圾\n118.8,32.1,占\x1b道\n",
            "nul_in_header": "经度,纬度,描\x00述\n118.7,32.0,x\n",
            "wide_header": ",".join(f"c{i}" for i in range(2000)) + "\n" + ",".join("1" * 2000) + "\n",
            "long_row": head + "118.7,32.0,x," + ",".join("y" * 50) + "\n",
            "huge_field": head + "118.7,32.0," + "字" * 300_000 + "\n",
            "huge_quoted_field": head + '118.7,32.0,"' + "x" * 300_000 + '"\n',
            "wkt_unclosed": "wkt,name\n\"POLYGON((0 0,1 0,1 1,0 1))\",a\n\"POLYGON((0 0,1 1))\",b\n",
            "wkt_deep": "wkt\n\"" + "GEOMETRYCOLLECTION(" * 5000 + "POINT(1 2)" + ")" * 5000 + "\"\n",
            "wkt_garbage": "wkt\nPOINT(a b)\n\"POLYGON((1e400 0,1 0,1 1,1e400 0))\"\n",
            "lonlat_inf_nan": head + "inf,nan,x\n-inf,1e400,y\n",
            "only_delims": ",,,,\n,,,,\n;;;;\n",
            "lone_cr": head.replace("\n", "\r") + "118.7,32.0,x\r",
            "blank_lines": "\n\n\n" + head + "\n\n118.7,32.0,x\n\n\n",
            "mixed_delims": "经度;纬度\t描述|x\n118.7;32.0\tx|y\n",
            "bom_only": "\ufeff",
            "header_only": head,
            "many_title_rows": "标题\n" * 40 + head + "118.7,32.0,x\n",
            "dates_garbage": "经度,纬度,上报时间\n118.7,32.0,2024-13-45 99:99\n118.8,32.1,0000-00-00\n",
        }
        for kind, text in text_cases.items():
            out.append((kind, suffix, text.encode(enc, "replace")))
        out += [
            ("invalid_bytes", suffix, head.encode(enc) + b"\xff\xfe\xfd\x80\x81," * 100 + b"\n"),
            ("gbk_cut_mid_char", suffix, (head + "118.7,32.0,东风\n").encode("gbk")[:-2]),
            ("utf16_no_bom", suffix, (head + "118.7,32.0,x\n").encode("utf-16-le")),
            ("utf16_bom_odd", suffix, b"\xff\xfe" + (head + "118.7,32.0,x\n").encode("utf-16-le")[:-1]),
            ("binary_with_commas", suffix, np.random.default_rng(3).bytes(2000).replace(b"\n", b",")),
        ]
    elif fmt == "xlsx":
        out += [(kind, suffix, data) for kind, data in hostile_xlsx()]
    elif fmt == "gpx":
        laughs = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
                            for i in range(1, 10)) + ']><gpx><wpt lat="1" lon="2"><name>&lol9;</name></wpt></gpx>')
        text = _gpx_text()
        out += [
            ("billion_laughs", suffix, laughs.encode()),
            ("external_entity", suffix, b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                                        b'<gpx><wpt lat="1" lon="2"><name>&e;</name></wpt></gpx>'),
            ("bad_lat", suffix, text.replace('lat="32.061000"', 'lat="abc"').encode()),
            ("huge_lat", suffix, text.replace('lat="32.061000"', 'lat="1e400"').encode()),
            ("nul_name", suffix, text.replace("W001", "W\x00001").encode()),
            ("char_ref_ctrl", suffix, text.replace("W001", "W&#1;01").encode()),
            ("deep_extensions", suffix, text.replace("<ele>12</ele>", "<extensions>" + "<a>" * 20_000
                                                      + "</a>" * 20_000 + "</extensions>").encode()),
            ("bad_time", suffix, text.replace("2024-05-01T00:00:00Z", "yesterday").encode()),
            ("not_gpx_root", suffix, b"<?xml version='1.0'?><kml><Placemark/></kml>"),
            ("unclosed", suffix, text[: len(text) // 2].encode()),
        ]
    elif fmt == "pbf":
        rng = np.random.default_rng(5)
        out += [
            ("blobheader_huge", suffix, struct.pack(">I", 2**31 - 1) + first[4:]),
            ("blobheader_zero", suffix, struct.pack(">I", 0) + first[4:]),
            ("two_copies", suffix, first + first),
            ("header_only", suffix, first[: 4 + struct.unpack(">I", first[:4])[0]]),
            ("random_tail", suffix, first + rng.bytes(500)),
            ("missing_nodes", suffix, _write_pbf_bytes(ways=[(100, [1, 2, 999], {"highway": "primary"})])),
            ("huge_ids", suffix, _write_pbf_bytes(
                nodes={2**50: (118.7, 32.0), 2**50 + 1: (118.8, 32.1)},
                ways=[(2**50, [2**50, 2**50 + 1], {"highway": "primary"})])),
            # pyosmium's writer crashes on a NUL, so write a marker uncompressed and swap it
            ("nul_tag", suffix, _write_pbf_bytes(ways=[(100, [1, 2], {"highway": "primary",
                                                                       "name": "NULXHERE"})],
                                                 uncompressed=True).replace(b"NULXHERE", b"NUL\x00HER")),
            ("open_building", suffix, _write_pbf_bytes(ways=[(100, [1, 2, 3], {"building": "yes"})])),
            ("ctrl_tags", suffix, _write_pbf_bytes(ways=[(100, [1, 2], {"highway": "primary",
                                                                         "name": "北\x01京\x1f路"})])),
        ]
    elif fmt == "osm":
        laughs = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
                            for i in range(1, 10)) + ']><osm version="0.6"><node id="1" lat="1" lon="2">'
                  '<tag k="name" v="&lol9;"/></node></osm>')
        xml = _osm_xml()
        out += [
            ("billion_laughs", suffix, laughs.encode()),
            ("bad_lat", suffix, xml.replace('lat="32.06"', 'lat="abc"', 1).encode()),
            ("lat_out_of_range", suffix, xml.replace('lat="32.06"', 'lat="95.0"', 1).encode()),
            ("missing_nodes", suffix, _osm_xml(ways=[(100, [1, 2, 999], {"highway": "primary"})]).encode()),
            ("huge_ids", suffix, _osm_xml(nodes={2**62: (118.7, 32.0), 1: (118.8, 32.1)},
                                          ways=[(100, [2**62, 1], {"highway": "primary"})]).encode()),
            ("negative_ids", suffix, xml.replace('id="1"', 'id="-1"').replace('ref="1"', 'ref="-1"').encode()),
            ("id_not_number", suffix, xml.replace('id="100"', 'id="abc"').encode()),
            ("nul_char_ref", suffix, xml.replace("北京西路", "北&#0;京").encode()),
            ("ctrl_char_ref", suffix, xml.replace("北京西路", "北&#1;京").encode()),
            ("deep_nesting", suffix, xml.replace("</osm>", "<x>" * 20_000 + "</x>" * 20_000 + "</osm>").encode()),
            ("unclosed_building", suffix, _osm_xml(ways=[(103, [2, 3, 4, 5], {"building": "yes"})]).encode()),
            ("unclosed", suffix, xml[: len(xml) // 2].encode()),
            ("utf16", suffix, xml.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")),
        ]
    return out


def _write_pbf_bytes(*, ways, nodes=_OSM_NODES, uncompressed: bool = False) -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        return _write_pbf(Path(d) / "x.osm.pbf", ways=ways, nodes=nodes,
                          uncompressed=uncompressed).read_bytes()


def _gpkg_sql(data: bytes, sql: str, params: tuple = ()) -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "x.gpkg"
        p.write_bytes(data)
        con = sqlite3.connect(p)
        con.execute("PRAGMA synchronous = OFF")
        con.execute("PRAGMA journal_mode = MEMORY")
        try:
            table = con.execute("SELECT table_name FROM gpkg_contents").fetchone()[0]
            # GDAL installs triggers calling ST_ functions sqlite3 lacks; drop them first
            for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
                con.execute(f'DROP TRIGGER "{name}"')
            con.execute(sql.format(t=table), params)
            con.commit()
        finally:
            con.close()
        return p.read_bytes()


def _gpkg_with_blob(data: bytes, wkb: bytes, *, raw: bool = False) -> bytes:
    blob = wkb if raw else b"GP\x00\x01" + struct.pack("<i", 4326) + wkb
    return _gpkg_sql(data, 'UPDATE "{t}" SET geom = ? WHERE rowid = 1', (blob,))


def _parquet_with_wkb(data: bytes, wkb: bytes) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(data))
    geoms = table.column("geometry").to_pylist()
    geoms[0] = wkb
    i = table.schema.get_field_index("geometry")
    table = table.set_column(i, "geometry", pa.array(geoms, type=pa.binary()))
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def _parquet_with_meta(data: bytes, geo: bytes) -> bytes:
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(data))
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"geo": geo})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def _plain_parquet(columns: dict[str, list]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.table(columns), buf)
    return buf.getvalue()


def _encrypted_flag(data: bytes) -> bytes:
    buf = bytearray(data)
    cd = buf.find(b"PK\x01\x02")
    buf[cd + 8] |= 0x01
    buf[6] |= 0x01
    return bytes(buf)


def _bad_crc(data: bytes) -> bytes:
    buf = bytearray(data)
    cd = buf.find(b"PK\x01\x02")
    buf[cd + 16] ^= 0xFF
    buf[14] ^= 0xFF
    return bytes(buf)


def generate(fmt: str, folder: Path, *, seed: int, mutants: int = MUTANTS_PER_FORMAT) -> list[Case]:
    """Write the corpus of ``fmt`` into ``folder``: seeds, their mutants, attacks, wrong suffixes."""
    rng = np.random.default_rng(seed)
    suffix, layers = FORMATS[fmt]
    seeds = _seeds(fmt, folder)
    mutants_per_seed = -(-mutants // len(seeds))
    made: list[tuple[str, str, bytes]] = [(f"seed_{k}", suffix, d) for k, d in seeds]
    for k, data in seeds:
        for j in range(mutants_per_seed):
            kind, bad = _mutate(data, rng)
            made.append((f"{k}_{kind}_{j}", suffix, bad))
        for wrong in rng.choice([s for s in SUFFIXES if s != suffix], size=3, replace=False):
            made.append((f"{k}_as{wrong}", str(wrong), data))
    made += _attacks(fmt, seeds)
    cases = []
    for i, (kind, suf, data) in enumerate(made):
        name = f"{fmt}_{i:03d}_{_safe(kind)}"
        if suf == ".pbf":
            name += ".osm"
        path = folder / f"{name}{suf}"
        path.write_bytes(data)
        cases.append(Case(path, layers[i % len(layers)], kind))
    return cases


def _safe(kind: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "_-" else "_" for ch in kind)[:48]


# --------------------------------------------------------------------------- the child


def run_child(manifest: Path, out: Path) -> None:
    """Read every file of ``manifest`` and write one JSON line per outcome to ``out``."""
    import resource
    import time
    import traceback

    import pandas as pd

    from layers._io_guard import CONTROL_CHARS
    from layers.errors import ReaderError
    from layers.io import read_file

    def peak_mb() -> float:
        # VmHWM, not ru_maxrss: Linux carries the parent's RSS at fork into ru_maxrss
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    with open(out, "a", encoding="utf-8", buffering=1) as fh:
        fh.write(json.dumps({"event": "ready", "rss_mb": peak_mb()}) + "\n")
        for line in manifest.read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            fh.write(json.dumps({"event": "start", "path": item["path"]}) + "\n")
            t0 = time.perf_counter()
            rec: dict[str, object] = {"event": "done", "path": item["path"]}
            try:
                res = read_file(item["path"], layer=item["layer"])
                rec["outcome"] = "ok"
                rec["rows"] = len(res.data)
                rec["codes"] = sorted({i.code for i in res.report})
                leaks = [str(c) for c in res.data.columns if CONTROL_CHARS.search(str(c))]
                for c in res.data.columns:
                    s = res.data[c]
                    if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
                        if s.map(lambda v: isinstance(v, str) and bool(CONTROL_CHARS.search(v))).any():
                            leaks.append(str(c))
                rec["control_char_columns"] = leaks
            except ReaderError as e:
                rec["outcome"] = "reader_error"
                rec["codes"] = sorted({i.code for i in e.report.errors()})
                rec["message"] = e.report.render("en")[:300]
                rec["message_zh"] = e.report.render("zh")[:300]
            except BaseException as e:  # noqa: BLE001 - the test counts these
                rec["outcome"] = "traceback"
                rec["error"] = f"{type(e).__name__}: {e}"[:300]
                rec["traceback"] = traceback.format_exc()[-2000:]
            rec["seconds"] = round(time.perf_counter() - t0, 3)
            rec["rss_mb"] = round(peak_mb(), 1)
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")


def complete_lines(data: bytes, pos: int) -> tuple[list[str], int]:
    """The complete lines of ``data`` after byte ``pos``, and the position after the last one.

    A writer may be part-way through a line, and through a multi-byte character, when
    ``data`` is read; that tail is left for the next read instead of being decoded.
    """
    end = data.rfind(b"\n", pos) + 1
    if end <= pos:
        return [], pos
    return data[pos:end].decode("utf-8").split("\n")[:-1], end


def run_corpus(cases: list[Case], folder: Path, *, timeout_s: float = 60.0,
               on_line: Callable[[dict], None] | None = None) -> list[dict]:
    """Read ``cases`` in a child process; a file taking over ``timeout_s`` is recorded as a hang.

    The child is restarted after a hang with the remaining files. Returns one record per
    case: the child's ``done`` record, or ``{"outcome": "hang"}`` / ``{"outcome": "crash"}``.
    """
    import os
    import subprocess
    import time

    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDPULSE_")}
    env["PYTHONPATH"] = str(root)
    results: dict[str, dict] = {}
    todo = list(cases)
    attempt = 0
    while todo:
        attempt += 1
        manifest = folder / f"manifest_{attempt}.jsonl"
        manifest.write_text("".join(json.dumps({"path": str(c.path), "layer": c.layer}) + "\n"
                                    for c in todo), encoding="utf-8")
        out = folder / f"results_{attempt}.jsonl"
        out.write_text("")
        err_path = folder / f"stderr_{attempt}.txt"
        # stderr goes to a file, not a pipe nobody drains: a chatty child must not block on it
        with open(err_path, "wb") as err_fh:
            proc = subprocess.Popen([sys.executable, __file__, str(manifest), str(out)], env=env,
                                    cwd=root, stdout=subprocess.DEVNULL, stderr=err_fh)
        last, pos, current = time.monotonic(), 0, None
        startup_s = 60.0
        while True:
            complete, pos = complete_lines(out.read_bytes(), pos)
            for line in complete:
                rec = json.loads(line)
                last = time.monotonic()
                if rec["event"] == "start":
                    current = rec["path"]
                elif rec["event"] == "done":
                    results[rec["path"]] = rec
                    current = None
                    if on_line:
                        on_line(rec)
            if proc.poll() is not None and pos >= out.stat().st_size:
                break
            limit = timeout_s if current is not None else startup_s
            if time.monotonic() - last > limit:
                proc.kill()
                proc.wait()
                if current is not None:
                    results[current] = {"path": current, "outcome": "hang"}
                break
            time.sleep(0.02)
        if proc.returncode not in (0, None, -9) and current is not None:
            err = err_path.read_bytes()[-4000:].decode("utf-8", "replace")[-1000:]
            results[current] = {"path": current, "outcome": "crash", "error": err}
        todo = [c for c in todo if str(c.path) not in results]
        if attempt > len(cases):
            break
    return [results.get(str(c.path), {"path": str(c.path), "outcome": "missing"}) | {
        "kind": c.kind, "layer": c.layer} for c in cases]


if __name__ == "__main__":
    run_child(Path(sys.argv[1]), Path(sys.argv[2]))
