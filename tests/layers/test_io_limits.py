"""Reader limits, the malformed-file boundary and control characters (layers/_io_guard.py).

Every limit is checked with a tiny real file and a small :class:`ReadLimits` (or the real
defaults where the file stays tiny: zip bombs, the ``A1:XFD1048576`` sheet); allocations are
measured with :mod:`tracemalloc`, so "refused before expanding" is asserted, not assumed.
"""

from __future__ import annotations

import json
import sqlite3
import struct
import tracemalloc
import zipfile
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from gridpulse.cli import main
from gridpulse.commands import serve
from layers._io_common import ReadContext
from layers._io_guard import CONTROL_CHARS, MB, ReadLimits, clean_control_chars
from layers.config import Settings
from layers.errors import ConfigError, ReaderError, StoreError
from layers.io import WriterError, read_file, write_file
from layers.store import Store, open_store
from tests.layers import _fuzz
from tests.layers.test_store import GRIDS, WORKERS


def refused(path: Path, code: str, **kw) -> ReaderError:
    with pytest.raises(ReaderError) as info:
        read_file(path, **kw)
    assert [i.code for i in info.value.report.errors()] == [code]
    issue = info.value.report.errors()[0]
    assert issue.file == path.name
    assert issue.fix("zh") and issue.fix("en")
    return info.value


def peak_alloc_mb(fn) -> tuple[float, object]:
    """Peak Python allocation while ``fn`` runs, in MB, and what it returned or raised."""
    tracemalloc.start()
    try:
        try:
            out: object = fn()
        except ReaderError as e:
            out = e
        return tracemalloc.get_traced_memory()[1] / MB, out
    finally:
        tracemalloc.stop()


# -- settings, serve, CLI ----------------------------------------------------------------------


def test_limits_come_from_the_settings() -> None:
    s = Settings.from_env({"GRIDPULSE_MAX_UPLOAD_MB": "50", "GRIDPULSE_MAX_ROWS": "1000"})
    lim = ReadLimits.from_settings(s)
    assert (lim.max_file_bytes, lim.max_rows) == (50 * MB, 1000)
    assert (lim.zip_max_member_bytes, lim.zip_max_total_bytes) == (100 * MB, 150 * MB)
    assert ReadLimits.from_settings(Settings()).max_file_bytes == 200 * MB
    with pytest.raises(ConfigError, match="GRIDPULSE_MAX_UPLOAD_MB"):
        Settings.from_env({"GRIDPULSE_MAX_UPLOAD_MB": "0"})


def test_serve_caps_streamlit_uploads_at_the_same_limit(monkeypatch) -> None:
    flags = dict(zip(*[iter(serve.streamlit_command(port=9000)[5:])] * 2, strict=True))
    assert flags["--server.maxUploadSize"] == "200"
    monkeypatch.setenv("GRIDPULSE_MAX_UPLOAD_MB", "30")
    flags = dict(zip(*[iter(serve.streamlit_command(port=9000)[5:])] * 2, strict=True))
    assert flags["--server.maxUploadSize"] == "30"


def sparse_file(path: Path, size: int, head: bytes = b"lon,lat\n1,2\n") -> Path:
    """A file of ``size`` bytes that costs no disk (a hole after ``head``)."""
    with path.open("wb") as fh:
        fh.write(head)
        fh.truncate(size)
    return path


def test_an_oversized_file_is_refused_before_it_is_read(tmp_path, monkeypatch) -> None:
    big = sparse_file(tmp_path / "大表.csv", 3 * MB)
    err = refused(big, "readers.file_too_large", limits=ReadLimits(max_file_bytes=2 * MB))
    assert "3 MB, above the limit of 2 MB" in err.report.render("en")
    assert "拆成几个小于 2 MB 的文件" in err.report.render("zh")
    monkeypatch.setenv("GRIDPULSE_MAX_UPLOAD_MB", "1")
    peak, _ = peak_alloc_mb(lambda: refused(big, "readers.file_too_large"))
    assert peak < 1  # not a byte of the 3 MB was read


def test_cli_validate_and_import_refuse_an_oversized_file(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("GRIDPULSE_STORE", str(tmp_path / "store.gpkg"))
    monkeypatch.setenv("GRIDPULSE_MAX_UPLOAD_MB", "1")
    big = sparse_file(tmp_path / "workers.csv", 2 * MB)
    assert main(["--lang", "en", "validate", "workers", str(big)]) == 1
    assert "2 MB, above the limit of 1 MB" in capsys.readouterr().out
    assert main(["--lang", "zh", "import", "workers", str(big)]) == 1
    out = capsys.readouterr().out
    assert "超过了 1 MB 的上限" in out and "GRIDPULSE_MAX_UPLOAD_MB" in out


# -- tables ------------------------------------------------------------------------------------


def test_csv_row_limit_names_the_row_and_ignores_trailing_blank_lines(tmp_path) -> None:
    lim = ReadLimits(max_rows=3)
    rows = "".join(f"118.7{i},32.0{i},x{i}\n" for i in range(3))
    ok = tmp_path / "ok.csv"
    ok.write_text("lon,lat,name\n" + rows + "\n\n\n", encoding="utf-8")
    assert len(read_file(ok, limits=lim).data) == 3
    over = tmp_path / "over.csv"
    over.write_text("lon,lat,name\n" + rows + "118.9,32.9,y\n", encoding="utf-8")
    err = refused(over, "readers.too_many_rows", limits=lim)
    assert "more than the limit of 3 rows (row 5 still holds data)" in err.report.render("en")
    err = refused(ok, "readers.too_many_cells", limits=ReadLimits(max_cells=6))  # 3 columns
    assert "more than the limit of 6 cells (reached at row 4)" in err.report.render("en")


def test_csv_column_limit(tmp_path) -> None:
    p = tmp_path / "wide.csv"
    p.write_text(",".join(f"c{i}" for i in range(12)) + "\n" + ",".join("1" * 12) + "\n")
    err = refused(p, "readers.too_many_columns", limits=ReadLimits(max_columns=10))
    assert "Row 1 has 12 columns, above the limit of 10" in err.report.render("en")


def xlsx(path: Path, rows: str, *, dimension: str = "A1:C3") -> Path:
    path.write_bytes(_fuzz._zip(_fuzz._xlsx_parts(_fuzz.sheet_xml(rows, dimension=dimension))))
    return path


def test_a_tiny_xlsx_declaring_the_whole_sheet_is_read_without_allocating_it(tmp_path) -> None:
    p = xlsx(tmp_path / "声明.xlsx", _fuzz._XLSX_HEAD, dimension="A1:XFD1048576")
    assert p.stat().st_size < 5000
    peak, res = peak_alloc_mb(lambda: read_file(p, layer="incidents"))
    assert peak < 30, peak
    assert len(res.data) == 1 and res.data.geometry.iloc[0].equals(shapely.Point(118.78, 32.06))


def test_xlsx_stray_formatting_far_below_is_ignored(tmp_path) -> None:
    """A formatted empty cell on the last row neither trips the row limit nor adds rows.

    (The million blank rows before it are never stored; the fuzz test measures this file's
    RSS. Under tracemalloc iterating them would make this test slow.)
    """
    p = xlsx(tmp_path / "styled.xlsx",
             _fuzz._XLSX_HEAD + '<row r="1048576"><c r="A1048576" s="0"/></row>')
    res = read_file(p)
    assert len(res.data) == 1 and not [i for i in res.report if i.severity != "info"]


def test_xlsx_row_column_and_cell_limits(tmp_path) -> None:
    body = "".join(f'<row r="{r}">' + _fuzz._cell(f"A{r}", 118.7) + _fuzz._cell(f"B{r}", 32.0)
                   + "</row>" for r in range(3, 9))
    p = xlsx(tmp_path / "rows.xlsx", _fuzz._XLSX_HEAD + body)  # header + 7 data rows
    assert len(read_file(p, limits=ReadLimits(max_rows=7)).data) == 7
    # counted in the sheet's XML before openpyxl parses it
    err = refused(p, "readers.xlsx_too_many_rows", limits=ReadLimits(max_rows=6))
    assert "The sheet has 8+ rows" in err.report.render("en")
    refused(p, "readers.xlsx_too_many_cells", limits=ReadLimits(max_cells=10))
    # rows far apart: the XML holds 3 rows, the streaming reader finds row 40 past the limit
    gap = xlsx(tmp_path / "gap.xlsx", _fuzz._XLSX_HEAD + '<row r="40">'
               + _fuzz._cell("A40", 1.0) + "</row>")
    err = refused(gap, "readers.too_many_rows", limits=ReadLimits(max_rows=6))
    assert "(row 40 still holds data)" in err.report.render("en")
    far = xlsx(tmp_path / "far.xlsx", _fuzz._XLSX_HEAD.replace(
        "</row>", _fuzz._cell("XFD1", "远") + "</row>", 1))
    err = refused(far, "readers.too_many_columns")
    assert "Row 1 has 16,384 columns, above the limit of 1,000" in err.report.render("en")


def test_malformed_xlsx_xml_ends_in_the_corrupt_file_message(tmp_path) -> None:
    p = tmp_path / "坏.xlsx"
    p.write_bytes(_fuzz._zip(_fuzz._xlsx_parts(_fuzz.sheet_xml(_fuzz._XLSX_HEAD)[:-40])))
    err = refused(p, "io.corrupt")
    assert "Could not read it as XLSX" in err.report.render("en")
    assert "ParseError" in err.report.render("en")
    assert "无法按 XLSX 格式读取" in err.report.render("zh")


# -- zips --------------------------------------------------------------------------------------


@pytest.fixture()
def shp_zip(tmp_path) -> Path:
    return write_file(GRIDS, tmp_path / "grids.zip", encoding="gbk")


def test_a_zip_bomb_is_refused_from_its_directory_without_expanding(tmp_path) -> None:
    p = tmp_path / "bomb.zip"
    p.write_bytes(_fuzz.zip_bomb("bomb.csv", 64))
    assert p.stat().st_size < 100_000
    peak, err = peak_alloc_mb(lambda: read_file(p))
    assert isinstance(err, ReaderError) and peak < 2
    assert [i.code for i in err.report.errors()] == ["readers.zip_ratio"]
    assert "compressed 1,029:1, above the limit of 200:1" in err.report.render("en")


def test_zip_member_count_and_sizes(tmp_path, shp_zip) -> None:
    many = tmp_path / "many.zip"
    many.write_bytes(_fuzz._zip({f"f{i}.txt": b"" for i in range(1001)}))
    refused(many, "readers.zip_too_many_members")
    size = max(i.file_size for i in zipfile.ZipFile(shp_zip).infolist())
    err = refused(shp_zip, "readers.zip_member_too_large",
                  limits=ReadLimits(zip_max_member_bytes=size - 1))
    assert "grids." in err.report.render("en")
    refused(shp_zip, "readers.zip_total_too_large", limits=ReadLimits(zip_max_total_bytes=size))
    assert len(read_file(shp_zip).data) == 2


def test_a_member_larger_than_its_directory_says_fails_its_check(tmp_path) -> None:
    p = tmp_path / "lie.zip"
    p.write_bytes(_fuzz.lying_zip("a.csv", b"lon,lat\n" + b"1,2\n" * 100_000, 100))
    peak, err = peak_alloc_mb(lambda: read_file(p))
    assert isinstance(err, ReaderError) and peak < 5
    assert [i.code for i in err.report.errors()] == ["io.corrupt_zip"]


# -- features ----------------------------------------------------------------------------------


def test_feature_limits_for_geojson_gpkg_and_geoparquet(tmp_path) -> None:
    lim = ReadLimits(max_rows=1)
    for suffix in (".geojson", ".gpkg", ".parquet"):
        p = write_file(GRIDS, tmp_path / f"g{suffix}")
        refused(p, "readers.too_many_rows", limits=lim)
        assert len(read_file(p, limits=ReadLimits(max_rows=2)).data) == 2


def gpkg_with_blob(path: Path, wkb: bytes) -> Path:
    write_file(GRIDS, path, layer="grids")
    con = sqlite3.connect(path)
    for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        con.execute(f'DROP TRIGGER "{name}"')
    con.execute("UPDATE grids SET geom = ? WHERE rowid = 1",
                (b"GP\x00\x01" + struct.pack("<i", 4326) + wkb,))
    con.commit()
    con.close()
    return path


def test_an_unclosed_ring_ends_in_the_corrupt_file_message(tmp_path) -> None:
    p = gpkg_with_blob(tmp_path / "环.gpkg", _fuzz.wkb_polygon(_fuzz.UNCLOSED))
    err = refused(p, "io.corrupt", layer="grids")
    text = err.report.render("en")
    assert "Could not read it as GeoPackage" in text and "GEOSException" in text
    gj = tmp_path / "环.geojson"
    gj.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "x"},
         "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in _fuzz.UNCLOSED[0]]]}}]}))
    refused(gj, "io.corrupt")


def test_a_deeply_nested_sidecar_ends_in_the_corrupt_file_message(tmp_path, shp_zip) -> None:
    members = _fuzz._zip_members(shp_zip.read_bytes())
    side = next(k for k in members if k.endswith(".columns.json"))
    p = tmp_path / "deep.zip"
    p.write_bytes(_fuzz._zip(members | {side: b"[" * 100_000}))
    assert "RecursionError" in refused(p, "io.corrupt").report.render("en")


# -- control characters ------------------------------------------------------------------------


def test_nul_and_control_characters_are_removed_from_csv_with_a_warning(tmp_path) -> None:
    p = tmp_path / "nul.csv"
    p.write_bytes("经度,纬度,描\x00述\n118.7,32.0,垃\x00圾\n118.8,32.1,占道\n118.9,32.2,井\x1b盖\t缺失\n"
                  .encode())
    res = read_file(p)
    assert list(res.data.columns[:1]) == ["描述"]
    assert res.data["描述"].tolist() == ["垃圾", "占道", "井盖\t缺失"]
    warn = [i for i in res.report if i.code == "readers.control_chars"]
    assert len(warn) == 1 and warn[0].column == "描述"
    assert "2 cell(s)" in warn[0].message("en") and "rows 2, 4" in warn[0].message("en")
    head = [i for i in res.report if i.code == "readers.control_chars_header"]
    assert head and "描\\x00述" in head[0].message("zh")


def test_nul_escapes_in_geojson_are_removed_not_cut_at(tmp_path) -> None:
    p = tmp_path / "nul.geojson"
    p.write_text('{"type":"FeatureCollection","features":[{"type":"Feature","properties":'
                 '{"name":"东\\u0000风 社区","code":"a\\\\u0000b"},'
                 '"geometry":{"type":"Point","coordinates":[118.7,32.0]}}]}')
    res = read_file(p)
    assert res.data["name"].tolist() == ["东风 社区"]  # GDAL alone would give "东"
    assert res.data["code"].tolist() == ["a\\u0000b"]  # an escaped backslash is text, kept
    assert [i.code for i in res.report if i.severity == "warning"] == ["readers.control_chars_json"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(alphabet=st.characters(max_codepoint=0x3000),
                                             max_size=12)), min_size=1, max_size=8))
def test_cleaning_removes_exactly_the_control_characters(values) -> None:
    ctx = ReadContext(path=None, source="x.csv", schema=None)
    df = pd.DataFrame({"t": pd.Series(values, dtype="str")})
    out = clean_control_chars(df.copy(), ctx, row_offset=2)
    expected = [None if v is None else CONTROL_CHARS.sub("", v) for v in values]
    assert [None if pd.isna(v) else v for v in out["t"]] == expected
    dirty = [i for i, v in enumerate(values) if v is not None and CONTROL_CHARS.search(v)]
    warnings = [i for i in ctx.report if i.code == "readers.control_chars"]
    assert len(warnings) == (1 if dirty else 0)
    if dirty:
        assert warnings[0].params["count"] == len(dirty)


# -- the store refuses control characters -------------------------------------------------------




def test_the_store_refuses_nul_in_writes_and_updates_and_stays_readable(store: Store) -> None:
    store.write({"grids": GRIDS, "workers": WORKERS}, actor="t")
    bad = WORKERS.assign(name=["李\x00四", "王五"])
    with pytest.raises(StoreError) as info:
        store.write({"workers": bad}, mode="replace", actor="t")
    assert info.value.key == "readers.store_control_chars"
    assert "column name of layer workers" in str(info.value)
    with pytest.raises(StoreError):
        store.update_rows("workers", ["W1"], {"name": "a\x00b"})
    with pytest.raises(StoreError):
        store.update_rows("grids", ["320106001001001"], {"leader": "x\x1by"})
    store.record("export", "workers", actor="王\x00工", note="备\x00注")
    assert store.read("workers")["name"].tolist() == ["李四", "王五"]
    log = store.audit_log()
    assert log["actor"].iloc[0] == "王工" and log["note"].iloc[0] == "备注"


def test_what_the_readers_clean_the_store_accepts(tmp_path) -> None:
    p = tmp_path / "workers.csv"
    p.write_text("人员编号,姓名,岗位,网格代码,AB岗\nW1,李\x00四,grid_leader,320106001001001,A\n",
                 encoding="utf-8")
    res = read_file(p, layer="workers")
    with open_store(str(tmp_path / "s.gpkg")) as s:
        s.write({"grids": GRIDS, "workers": res.data}, actor="t")
        assert s.read("workers")["name"].tolist() == ["李四"]


def test_geometry_types_survive_cleaning() -> None:
    gdf = gpd.GeoDataFrame({"n": ["a\x00"]}, geometry=[shapely.Point(1, 2)], crs=4326)
    ctx = ReadContext(path=None, source="x", schema=None)
    out = clean_control_chars(gdf, ctx, row_offset=1)
    assert isinstance(out, gpd.GeoDataFrame) and out.crs == gdf.crs and out["n"].tolist() == ["a"]


def test_writers_refuse_control_characters_instead_of_cutting_text(tmp_path) -> None:
    df = pd.DataFrame({"a": ["ok", "n\x00m"], "b": [1, 2]})
    for suffix in (".csv", ".xlsx", ".gpkg", ".geojson"):
        with pytest.raises(WriterError) as info:
            write_file(df, tmp_path / f"t{suffix}")
        issue = info.value.report.errors()[0]
        assert (issue.code, issue.column, issue.row) == ("readers.write_control_chars", "a", 2)
        assert not (tmp_path / f"t{suffix}").exists()


def test_a_wkt_cell_longer_than_128_kb_is_read(tmp_path) -> None:
    ring = shapely.Point(118.78, 32.06).buffer(0.01, quad_segs=5000)
    p = tmp_path / "district.csv"
    pd.DataFrame({"name": ["鼓楼"], "wkt": [ring.wkt]}).to_csv(p, index=False)
    assert len(ring.wkt) > 131_072
    res = read_file(p)
    assert res.data.geometry.iloc[0].equals_exact(ring, 1e-9)


def test_a_value_on_the_last_row_of_a_whole_sheet_dimension_is_refused_cheaply(tmp_path) -> None:
    """The 4.6 KB workbook of issue 10: ``A1:XFD1048576`` and a value on row 1,048,576.

    The old reader padded a million rows to 16,384 cells (128 GB); the blank rows now cost
    nothing (the fuzz test measures this file's RSS; tracemalloc would make it slow here).
    """
    p = xlsx(tmp_path / "炸弹.xlsx", _fuzz._XLSX_HEAD + '<row r="1048576">'
             + _fuzz._cell("A1048576", 1.0) + "</row>", dimension="A1:XFD1048576")
    err = refused(p, "readers.too_many_rows", layer="incidents")
    assert "row 1048576 still holds data" in err.report.render("en")


def test_a_nul_in_geopackage_text_does_not_cut_it(tmp_path) -> None:
    p = write_file(GRIDS, tmp_path / "g.gpkg", layer="grids")
    p.write_bytes(_fuzz._gpkg_sql(p.read_bytes(), "UPDATE \"{t}\" SET name = '宁海' || char(0) "
                                  "|| '路' || char(1) || '网格' WHERE rowid = 2"))
    res = read_file(p, layer="grids")
    assert res.data["name"].tolist() == ["宁海路第一网格", "宁海路网格"]  # GDAL alone: "宁海"
    warn = [i for i in res.report if i.code == "readers.control_chars"]
    assert len(warn) == 1 and warn[0].column == "name" and "rows 2" in warn[0].message("en")
