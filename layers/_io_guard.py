"""Limits and hostile input: what keeps one file from exhausting the server or crashing a reader.

Private to :mod:`layers.io`. Three jobs:

* **Limits**, checked before anything is allocated (:class:`ReadLimits`): the file size, the
  rows/features, columns and cells of a table, and for zip containers (zipped Shapefiles,
  XLSX workbooks) the member count, each member's and all members' expanded size and the
  compression ratio, all read from the zip's directory before a byte is expanded. Python's
  :mod:`zipfile` never expands a member beyond the size its directory declares (it fails the
  CRC check instead), so the declared sizes are safe upper bounds; members are then copied
  to disk in chunks, never held whole in memory.
* **One boundary** (:func:`corrupt_detail`, used by :func:`layers.io.read_file`): whatever a
  parsing library raises on a malformed file (a GEOS error on an unclosed ring, an XML
  ``ParseError`` inside an XLSX, ``struct.error``, ``RecursionError``...) ends in the readers'
  ``io.corrupt`` message naming the file.
* **Control characters** (:func:`clean_control_chars`): NUL and the other C0 control
  characters except tab, newline and carriage return are removed from text values and
  headers at the door, with a warning naming the column and rows, so none reaches the store
  (GDAL cuts SQL at a NUL and PostgreSQL refuses it).

Defaults (``GRIDPULSE_MAX_UPLOAD_MB`` = 200, ``GRIDPULSE_MAX_ROWS`` = 1,000,000):

=====================================  =============================================
file size                              200 MB (also Streamlit's ``server.maxUploadSize``)
rows or features                       1,000,000
columns / cells of a table             1,000 / 20,000,000
zip members                            1,000
one member, expanded                   2 x the file limit (400 MB)
all members, expanded                  3 x the file limit (600 MB)
compression ratio                      200:1, for members expanding beyond 10 MB
XLSX sheet                             ``<row>``/``<c>`` elements counted in its XML
                                       against the row and cell limits before parsing
Parquet                                rows, columns and expanded size from the footer
=====================================  =============================================

The ratio rule follows Apache POI's ``ZipSecureFile`` (a minimum inflate ratio checked past a
grace size); 200:1 sits well above real data (GridPulse's own Shapefile zips of repetitive
attributes reach 70:1, XLSX sheets 6-13:1) and well below deflate's ceiling of about 1,030:1
that zip bombs use.

Examples
--------
>>> ReadLimits().max_file_bytes // MB, ReadLimits().zip_max_ratio
(200, 200.0)
>>> CONTROL_CHARS.sub("", "东风\\x00社区\\x1b")
'东风社区'
"""

from __future__ import annotations

import re
import shutil
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import NoReturn

import numpy as np
import pandas as pd

from layers._io_context import MB, ReadContext, ReadLimits

__all__ = ["CONTROL_CHARS", "EXAMPLE_ROWS", "MB", "ReadLimits", "rows_text"]

#: Example row numbers quoted in a message.
EXAMPLE_ROWS = 5


def rows_text(positions: Iterable[int], offset: int) -> tuple[int, str]:
    """Count and a short, comma-separated list of user row numbers."""
    pos = list(positions)
    return len(pos), ", ".join(str(p + offset) for p in pos[:EXAMPLE_ROWS])


#: C0 control characters other than tab, newline and carriage return.
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")

#: Exceptions a damaged zip member raises while it is expanded.
ZIP_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, RuntimeError,
    NotImplementedError,
)

_FORMATS: dict[str, str] = {
    ".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GeoPackage",
    ".zip": "Shapefile (zip)", ".shp": "Shapefile", ".parquet": "Parquet",
    ".geoparquet": "GeoParquet", ".csv": "CSV", ".tsv": "TSV", ".txt": "CSV/TXT",
    ".xlsx": "XLSX", ".xlsm": "XLSX", ".gpx": "GPX", ".pbf": "OSM PBF", ".osm": "OSM XML",
}


def size_mb(nbytes: float) -> str:
    """A size in MB for a message: one decimal, none when whole.

    >>> size_mb(200 * MB), size_mb(1.55 * MB)
    ('200', '1.6')
    """
    return f"{nbytes / MB:.1f}".removesuffix(".0")


def format_name(path: Path) -> str:
    """The format a suffix stands for, as messages name it."""
    return _FORMATS.get(path.suffix.lower(), path.suffix.lstrip(".").upper() or path.name)


def visible(text: str) -> str:
    r"""Control characters shown as ``\xNN`` so that a message can quote the text safely.

    >>> visible("a\x00b")
    'a\\x00b'
    """
    return CONTROL_CHARS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def corrupt_detail(exc: BaseException) -> str:
    """The first line of an exception, with its type, short and printable, for ``io.corrupt``."""
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return visible(text)[:200]


# --------------------------------------------------------------------------- size limits


def check_file_size(ctx: ReadContext, nbytes: int) -> None:
    """Refuse a file larger than the limit, before reading any of it."""
    limit = ctx.limits.max_file_bytes
    if nbytes > limit:
        ctx.fail("readers.file_too_large", size_mb=size_mb(nbytes), limit_mb=size_mb(limit))


def too_many_rows(ctx: ReadContext, *, row: int) -> NoReturn:
    """Refuse a table or layer that still has data at ``row`` (as the user counts), past the limit."""
    ctx.fail("readers.too_many_rows", limit=f"{ctx.limits.max_rows:,}", row=row)


def too_many_cells(ctx: ReadContext, *, row: int) -> NoReturn:
    """Refuse a table whose cells reach past the limit at ``row``."""
    ctx.fail("readers.too_many_cells", limit=f"{ctx.limits.max_cells:,}", row=row)


def too_many_columns(ctx: ReadContext, *, row: int, columns: int) -> NoReturn:
    """Refuse a table with a row of ``columns`` cells, past the limit."""
    ctx.fail("readers.too_many_columns", row=row, columns=f"{columns:,}",
             limit=f"{ctx.limits.max_columns:,}")


def check_zip(ctx: ReadContext, zf: zipfile.ZipFile | list[zipfile.ZipInfo]) -> None:
    """Refuse a zip whose directory declares too many members, too much data or a bomb's ratio.

    Nothing is expanded: the sizes come from the zip's central directory (``zf`` may be the
    list of its members).
    """
    lim = ctx.limits
    infos = zf if isinstance(zf, list) else zf.infolist()
    if len(infos) > lim.zip_max_members:
        ctx.fail("readers.zip_too_many_members", count=f"{len(infos):,}",
                 limit=f"{lim.zip_max_members:,}")
    total = 0
    for info in infos:
        name = visible(info.filename)[:120]
        size = info.file_size
        ratio = size / max(info.compress_size, 1)
        if size > lim.zip_ratio_grace_bytes and ratio > lim.zip_max_ratio:
            ctx.fail("readers.zip_ratio", member=name, ratio=f"{ratio:,.0f}",
                     limit=f"{lim.zip_max_ratio:,.0f}")
        if size > lim.zip_max_member_bytes:
            ctx.fail("readers.zip_member_too_large", member=name, size_mb=size_mb(size),
                     limit_mb=size_mb(lim.zip_max_member_bytes))
        total += size
    if total > lim.zip_max_total_bytes:
        ctx.fail("readers.zip_total_too_large", size_mb=size_mb(total),
                 limit_mb=size_mb(lim.zip_max_total_bytes))


def extract_member(ctx: ReadContext, zf: zipfile.ZipFile, info: zipfile.ZipInfo,
                   target: Path) -> None:
    """Copy one member (already passed by :func:`check_zip`) to ``target`` in 1 MB chunks."""
    try:
        with zf.open(info) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, MB)
    except ZIP_ERRORS as e:
        ctx.fail("io.corrupt_zip", detail=corrupt_detail(e))


#: How a ``<row>`` / ``<c>`` element starts (also with a namespace prefix, ``<x:row ...``).
_XML_ROW = (b"<row ", b"<row>", b":row ")
_XML_CELL = (b"<c ", b"<c>", b":c ")


def _count(data: bytes, tokens: tuple[bytes, ...], end: int) -> int:
    return sum(data.count(t, 0, end) for t in tokens)


def scan_sheet(ctx: ReadContext, zf: zipfile.ZipFile, member: str) -> None:
    """Refuse an XLSX sheet whose XML holds more ``<row>`` or ``<c>`` elements than the limits.

    Counted on the compressed stream in 1 MB chunks at zlib speed (about a second for
    200 MB of XML), before openpyxl spends minutes parsing a million rows. Formatted empty
    rows count too, so the message says so.
    """
    lim = ctx.limits
    rows = cells = 0
    tail = b""
    try:
        with zf.open(member) as src:
            while chunk := src.read(MB):
                data = tail + chunk
                cut = max(0, len(data) - 16)  # a token cut by the chunk edge is counted next time
                rows += _count(data, _XML_ROW, cut)
                cells += _count(data, _XML_CELL, cut)
                tail = data[cut:]
                if rows > lim.max_rows + 1 or cells > lim.max_cells:
                    break
        rows += _count(tail, _XML_ROW, len(tail))
        cells += _count(tail, _XML_CELL, len(tail))
    except ZIP_ERRORS as e:
        ctx.fail("io.corrupt", format="XLSX", detail=corrupt_detail(e))
    if rows > lim.max_rows + 1:
        ctx.fail("readers.xlsx_too_many_rows", count=f"{rows:,}+", limit=f"{lim.max_rows:,}")
    if cells > lim.max_cells:
        ctx.fail("readers.xlsx_too_many_cells", count=f"{cells:,}+", limit=f"{lim.max_cells:,}")


# --------------------------------------------------------------------------- control characters


def clean_control_chars(df: pd.DataFrame, ctx: ReadContext, *, row_offset: int) -> pd.DataFrame:
    """Remove C0 control characters (but tab, newline, CR) from text values and headers.

    Each column cleaned gets one warning with the count and example rows; a header cleaned
    gets a warning with the old (``\\x00`` shown) and new name.
    """
    geometry = getattr(df, "_geometry_column_name", None)
    rename: dict[object, str] = {}
    names = {str(c) for c in df.columns}
    for c in df.columns:
        if isinstance(c, str) and CONTROL_CHARS.search(c):
            base = CONTROL_CHARS.sub("", c).strip() or "column"
            new, k = base, 2
            while new in names:
                new, k = f"{base}_{k}", k + 1
            names.add(new)
            rename[c] = new
            ctx.note("warning", "readers.control_chars_header", header=visible(c), renamed=new)
    for c in df.columns:
        if c == geometry:
            continue
        s = df[c]
        if not (pd.api.types.is_string_dtype(s.dtype) or s.dtype == object):
            continue
        try:  # object columns may mix text with other values: those give NA here
            found = s.str.contains(CONTROL_CHARS.pattern, regex=True, na=False)
        except AttributeError:  # no text at all
            continue
        hit = found.to_numpy(dtype=bool, na_value=False)
        if hit.any():
            if s.dtype == object:
                fixed = s.copy()
                fixed[hit] = [CONTROL_CHARS.sub("", v) for v in s[hit]]
                df[c] = fixed
            else:
                df[c] = s.str.replace(CONTROL_CHARS.pattern, "", regex=True)
            count, rows = rows_text(np.flatnonzero(hit), row_offset)
            ctx.note("warning", "readers.control_chars", column=str(rename.get(c, c)),
                     count=count, rows=rows)
    return df.rename(columns=rename) if rename else df
