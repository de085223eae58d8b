"""Readers and writers: the files people send, turned into raw (Geo)DataFrames, and back.

:func:`read_file` reads faithfully and maps headers to the layer's canonical names; it never
validates content (that is :mod:`layers.validate`). What it noticed on the way (the encoding
it detected, the headers it mapped, the longitude/latitude columns it used...) is in
``ReadResult.report``. A file that cannot be read at all raises
:class:`~layers.errors.ReaderError`, whose report names the file and says how to fix it, in
Chinese and English.

Formats read (by suffix, see :data:`SUPPORTED_READ`):

* GeoJSON; GeoPackage (the layer named like ``layer``, else the only one); GeoParquet;
* Shapefile, zipped (``.zip`` with ``.shp/.shx/.dbf/.prj``, honouring ``.cpg``; without one,
  GBK vs UTF-8 is detected from the ``.dbf``) or as a bare ``.shp`` beside its parts;
* CSV/TSV/TXT (UTF-8, UTF-8 with BOM, UTF-16, GBK, GB18030 detected) and XLSX, with
  longitude/latitude columns (``经度``/``纬度``, ``lon``/``lat``...) or a WKT column
  (``geometry``/``wkt``); tables of attribute-only layers (``workers``...) need neither;
* GPX (track points with time, for ``patrol_points``); OSM ``.pbf``/``.osm`` (``roads`` with a
  ``kind`` from ``highway=*``, rivers and railways as barriers; or ``buildings``).

Hostile input: a file over a limit (size, rows, columns, zip members, expanded size,
compression ratio; :class:`ReadLimits`, from ``GRIDPULSE_MAX_UPLOAD_MB`` and
``GRIDPULSE_MAX_ROWS``) is refused before it is read, saying the limit and how to split the
file; anything a parsing library raises on a malformed file ends in ``io.corrupt``; NUL and
other control characters are removed from text with a warning (see :mod:`layers._io_guard`).

Formats written (:data:`SUPPORTED_WRITE`): GeoJSON, GeoPackage, zipped Shapefile (with
``.cpg`` and a ``.columns.json`` sidecar that restores long names and dtypes), GeoParquet,
CSV (``lon``/``lat`` for points, ``wkt`` otherwise) and XLSX.

Examples
--------
>>> import tempfile, pathlib
>>> import geopandas as gpd, shapely
>>> gdf = gpd.GeoDataFrame({"名称": ["东风社区"], "户数": [420]},
...                        geometry=[shapely.Point(118.78, 32.06)], crs="EPSG:4326")
>>> with tempfile.TemporaryDirectory() as d:
...     path = write_file(gdf, pathlib.Path(d) / "点.csv", encoding="gbk")
...     result = read_file(path, layer="buildings")
>>> list(result.data.columns), result.row_offset
(['名称', 'households', 'geometry'], 2)
>>> result.report.render("en").splitlines()[0]
'[Note] File 点.csv: Text encoding detected: GBK.'
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pandas as pd

from layers._io_common import SUPPORTED_READ, ReadContext
from layers._io_guard import (
    ReadLimits,
    check_file_size,
    clean_control_chars,
    corrupt_detail,
    format_name,
)
from layers._io_write import WriterError
from layers.errors import ReaderError
from layers.report import Report
from layers.schema import SCHEMAS

__all__ = [
    "SUPPORTED_READ",
    "SUPPORTED_WRITE",
    "ReadLimits",
    "ReadResult",
    "WriterError",
    "read_file",
    "write_file",
]

#: Suffixes :func:`write_file` writes (``.zip`` is a zipped Shapefile).
SUPPORTED_WRITE: tuple[str, ...] = (
    ".geojson", ".json", ".gpkg", ".zip", ".parquet", ".geoparquet", ".csv", ".xlsx",
)


@dataclass
class ReadResult:
    """What :func:`read_file` found.

    Attributes
    ----------
    data
        A GeoDataFrame (or a DataFrame for tables without geometry) on a 0-based RangeIndex,
        columns renamed to canonical names where recognised, CRS as found in the file
        (``None`` when the file declares none; EPSG:4326 for longitude/latitude columns).
    report
        Warnings and notes found while reading (never validation results).
    source
        The file name as the user knows it.
    row_offset
        Add to a 0-based position to get the row number the user sees: 2 for tables with
        a header on the first row (more when title rows sit above the header), 1 for features.
    """

    data: gpd.GeoDataFrame | pd.DataFrame
    report: Report
    source: str
    row_offset: int


Reader = Callable[[ReadContext], tuple[pd.DataFrame, int]]


def read_file(
    path: str | Path,
    *,
    layer: str | None = None,
    encoding: str | None = None,
    sheet: str | int | None = None,
    limits: ReadLimits | None = None,
) -> ReadResult:
    """Read a file into a raw (Geo)DataFrame with canonical column names.

    Parameters
    ----------
    path
        The file; its suffix picks the reader (see :data:`SUPPORTED_READ`).
    layer
        Canonical layer name (``"grids"``, ``"workers"``...): headers are mapped with that
        layer's aliases, the GeoPackage/zip layer or XLSX sheet named like it is chosen,
        attribute-only layers need no coordinates, and an OSM file is read as ``roads`` or
        ``buildings``. ``None`` maps only coordinate columns.
    encoding
        Text encoding of a CSV or a Shapefile's .dbf; detected when ``None``.
    sheet
        XLSX sheet name or 0-based number; by default the only sheet, or the one named like
        the layer, or the first.
    limits
        What one file may hold (size, rows, columns, zip members...); by default from
        ``GRIDPULSE_MAX_UPLOAD_MB`` and ``GRIDPULSE_MAX_ROWS`` (see
        :class:`layers._io_guard.ReadLimits`). A file over a limit is refused before it is
        read, with the limit and how to split the file.

    Returns
    -------
    ReadResult

    Raises
    ------
    layers.errors.ReaderError
        When the file cannot be read at all (missing, empty, too large, unknown format,
        corrupt or malformed in any way, undecodable, several layers and none named like
        ``layer``, a table of a spatial layer without coordinates). Its ``report`` says the
        file and the fix. Whatever a parsing library raises on a malformed file becomes
        this error (``io.corrupt``).
    ValueError
        When ``layer`` is not a known layer name.
    """
    p = Path(path)
    schema = None
    if layer is not None:
        if layer not in SCHEMAS:
            raise ValueError(f"unknown layer {layer!r}; expected one of {', '.join(SCHEMAS)}")
        schema = SCHEMAS[layer]
    ctx = ReadContext(path=p, source=p.name, schema=schema, encoding=encoding or None,
                      sheet=sheet, limits=limits or ReadLimits.from_settings())
    if encoding:
        try:
            codecs.lookup(encoding)
        except LookupError:
            ctx.fail("io.bad_encoding", encoding=encoding, detail="unknown encoding")
    if not p.is_file():
        if p.is_dir():
            ctx.fail("io.unsupported_suffix", suffix=p.suffix or "/", supported=_listing(SUPPORTED_READ))
        ctx.fail("io.file_not_found")
    check_file_size(ctx, p.stat().st_size)
    if p.stat().st_size == 0:
        ctx.fail("io.empty_file")
    try:
        data, row_offset = _dispatch(ctx, p)
    except ReaderError:
        raise
    except MemoryError:
        ctx.fail("readers.out_of_memory")
    except Exception as e:  # the one boundary: a malformed file, whatever the library raised
        ctx.fail("io.corrupt", format=format_name(p), detail=corrupt_detail(e))
    data = clean_control_chars(data, ctx, row_offset=row_offset)
    return ReadResult(data=data, report=ctx.report, source=ctx.source, row_offset=row_offset)


def _listing(suffixes: tuple[str, ...]) -> str:
    return " ".join(suffixes)


def _dispatch(ctx: ReadContext, p: Path) -> tuple[pd.DataFrame, int]:
    from layers import _io_osm, _io_text, _io_vector

    suffix = p.suffix.lower()
    if suffix == ".xls":
        ctx.fail("io.legacy_excel")
    if suffix not in SUPPORTED_READ:
        ctx.fail("io.unsupported_suffix", suffix=suffix or p.name, supported=_listing(SUPPORTED_READ))
    ctx.path = p
    if suffix in (".geojson", ".json"):
        return _io_vector.read_geojson(ctx), 1
    if suffix == ".gpkg":
        return _io_vector.read_gpkg(ctx), 1
    if suffix in (".parquet", ".geoparquet"):
        return _io_vector.read_parquet(ctx), 1
    if suffix == ".gpx":
        return _io_vector.read_gpx(ctx), 1
    if suffix in (".pbf", ".osm"):
        return _io_osm.read_pbf(ctx), 1
    if suffix == ".zip":
        return _io_vector.read_zip(ctx, lambda member: _dispatch(ctx, member))
    if suffix == ".shp":
        return _io_vector.read_bare_shapefile(ctx), 1
    return _io_text.read_text_file(ctx, p)


def write_file(
    data: pd.DataFrame,
    path: str | Path,
    *,
    layer: str | None = None,
    encoding: str = "utf-8",
) -> Path:
    """Write a (Geo)DataFrame; the suffix picks the format (see :data:`SUPPORTED_WRITE`).

    Parameters
    ----------
    data
        The table. A GeoDataFrame keeps its geometry and CRS; CSV and XLSX get ``lon``/``lat``
        columns for points (``x``/``y`` in a projected CRS) and a ``wkt`` column otherwise.
        The index is not written.
    path
        Target file; replaced if it exists (a GeoPackage keeps its other layers).
    layer
        Layer name inside a GeoPackage or Shapefile zip, or the XLSX sheet name
        (default: the file's stem).
    encoding
        CSV text encoding (``"utf-8"``, ``"utf-8-sig"`` with a BOM, ``"gbk"`` or ``"gb18030"``
        for Excel users) and the Shapefile .dbf encoding (recorded in its ``.cpg``). Other
        formats are always UTF-8 and ignore it.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    WriterError
        When the data cannot be stored in that format (text the encoding cannot hold, mixed
        geometry types in a Shapefile, too many rows for Excel, NUL or other control
        characters in text...), with the fix.
    ValueError
        When ``data`` is not a DataFrame or ``encoding`` is not a known codec.
    """
    from layers import _io_write as w

    p = Path(path)
    if not isinstance(data, pd.DataFrame):
        raise ValueError(f"data must be a pandas or geopandas DataFrame, not {type(data).__name__}")
    try:
        codecs.lookup(encoding)
    except LookupError as e:
        raise ValueError(f"unknown encoding {encoding!r}; use e.g. 'utf-8', 'utf-8-sig' or 'gbk'") from e
    suffix = p.suffix.lower()
    if suffix not in SUPPORTED_WRITE:
        w.fail("io.write_unsupported_suffix", p, suffix=suffix or p.name,
               supported=_listing(SUPPORTED_WRITE))
    p.parent.mkdir(parents=True, exist_ok=True)
    df = data.reset_index(drop=True)
    w.refuse_control_chars(df, p)
    if suffix in (".geojson", ".json"):
        w.write_geojson(df, p, layer=layer)
    elif suffix == ".gpkg":
        w.write_gpkg(df, p, layer=layer)
    elif suffix in (".parquet", ".geoparquet"):
        w.write_parquet(df, p)
    elif suffix == ".zip":
        w.write_shapefile_zip(df, p, layer=layer, encoding=encoding)
    elif suffix == ".csv":
        w.write_csv(df, p, encoding=encoding)
    else:
        w.write_xlsx(df, p, layer=layer)
    return p
