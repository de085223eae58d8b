"""Readers of tables: CSV (any of the encodings Excel and WPS write) and XLSX.

Private to :mod:`layers.io`. Both find the header row (skipping title rows above it),
make unique headers, keep blank rows inside the table (so row numbers stay those the
user sees) and hand the table to :func:`layers._io_common.table_to_frame`.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from layers._io_common import (
    WKT_ALIASES,
    ReadContext,
    listing,
    normalise_header,
    rows_text,
    table_to_frame,
    unique_headers,
)
from layers._io_guard import (
    check_zip,
    corrupt_detail,
    scan_sheet,
    too_many_cells,
    too_many_columns,
    too_many_rows,
)
from layers.schema import LAT_ALIASES, LON_ALIASES

#: Rows looked at to find the header row.
PREVIEW_ROWS = 30
#: Longest cell the header search accepts (WKT of a detailed district boundary runs to MBs).
PREVIEW_FIELD_CHARS = 64 * 1024 * 1024
_DELIMITERS = (",", "\t", ";", "|")


def decode(data: bytes, ctx: ReadContext) -> str:
    """Decode the bytes of a text file: the given encoding, else BOM, UTF-8, GBK, GB18030, a guess."""
    if ctx.encoding:
        try:
            codecs.lookup(ctx.encoding)
        except LookupError:
            ctx.fail("io.bad_encoding", encoding=ctx.encoding, detail="unknown encoding")
        try:
            return data.decode(ctx.encoding).lstrip("\ufeff")
        except UnicodeDecodeError as e:
            ctx.fail("io.bad_encoding", encoding=ctx.encoding,
                     detail=f"byte {e.start}: {data[e.start:e.start + 4]!r}")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _decode_as(data, "utf-16", "UTF-16", ctx)
    if data.startswith(codecs.BOM_UTF8):
        return _decode_as(data[3:], "utf-8", "UTF-8 (BOM)", ctx)
    for codec, label in (("utf-8", "UTF-8"), ("gbk", "GBK"), ("gb18030", "GB18030")):
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        ctx.note("info", "io.encoding_detected", encoding=label)
        return text
    from charset_normalizer import from_bytes

    best = from_bytes(data[:200_000]).best()
    if best is None:
        ctx.fail("io.undecodable")
    return _decode_as(data, best.encoding, best.encoding, ctx)


def _decode_as(data: bytes, codec: str, label: str, ctx: ReadContext) -> str:
    try:
        text = data.decode(codec)
    except UnicodeDecodeError:
        ctx.fail("io.undecodable")
    ctx.note("info", "io.encoding_detected", encoding=label)
    return text.lstrip("\ufeff")


def _known_headers(ctx: ReadContext) -> set[str]:
    known = {normalise_header(a) for a in (*LON_ALIASES, *LAT_ALIASES, *WKT_ALIASES)}
    if ctx.schema is not None:
        known |= {normalise_header(a) for a in ctx.schema.alias_map()}
    return known


def _filled(row: list[Any]) -> int:
    return sum(not _blank(v) for v in row)


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip())


def find_header_row(preview: list[list[Any]], ctx: ReadContext) -> int:
    """Index of the header row: the first row as wide as the table, or the one with most known headers."""
    if not preview:
        return 0
    widest = max(_filled(r) for r in preview)
    if widest == 0:
        return 0
    h = next(i for i, r in enumerate(preview) if _filled(r) >= math.ceil(widest / 2))
    known = _known_headers(ctx)
    scores = [sum(normalise_header(v) in known for v in r if not _blank(v)) for r in preview]
    best = int(np.argmax(scores))
    if scores[best] >= 2 and scores[best] > scores[h]:
        h = best
    return h


def frame_from_rows(header: list[Any], body: pd.DataFrame, ctx: ReadContext, *,
                    header_index: int, mixed: frozenset[int] = frozenset()) -> tuple[pd.DataFrame, int]:
    """Name the columns, drop empty unnamed columns and trailing blank rows, type, build geometry.

    ``body`` has integer column labels matching positions in ``header``; ``mixed`` lists the
    positions of columns that mixed numbers and text (read as text).
    """
    row_offset = header_index + 2
    if header_index > 0:
        ctx.note("info", "io.header_row", header_row=header_index + 1)
    width = max(len(header), body.shape[1])
    header = list(header) + [None] * (width - len(header))
    body = body.reindex(columns=range(width))
    keep = [i for i in range(width) if not _blank(header[i]) or body[i].notna().any()]
    body = body[keep]
    body.columns = unique_headers([header[i] for i in keep], ctx)
    for i, name in zip(keep, body.columns, strict=True):
        if i in mixed:
            ctx.note("info", "io.mixed_types", column=name)
    empty = body.isna().all(axis=1).to_numpy() if body.shape[1] else np.ones(len(body), bool)
    n = len(body)
    while n and empty[n - 1]:
        n -= 1
    body = body.iloc[:n].reset_index(drop=True)
    blank = np.flatnonzero(empty[:n])
    if len(blank):
        count, rows = rows_text(blank, row_offset)
        ctx.note("warning", "io.blank_rows", count=count, rows=rows)
    return table_to_frame(body, ctx, row_offset=row_offset), row_offset


# --------------------------------------------------------------------------- CSV


def read_csv(ctx: ReadContext, data: bytes) -> tuple[pd.DataFrame, int]:
    """Read a delimited text file (CSV, TSV, TXT), at most ``ctx.limits`` rows and columns."""
    text = decode(data, ctx)
    del data
    if not text or text.isspace():
        ctx.fail("io.empty_file")
    lines = _head_lines(text, PREVIEW_ROWS)
    delim = max(_DELIMITERS, key=lambda d: sum(line.count(d) for line in lines[:5]))
    # a WKT polygon cell can be longer than the csv module's default 128 KB per field
    csv.field_size_limit(max(csv.field_size_limit(), PREVIEW_FIELD_CHARS))
    try:
        preview = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delim))
    except csv.Error as e:
        ctx.fail("io.bad_table", detail=str(e))
    lim = ctx.limits
    for i, r in enumerate(preview):
        if len(r) > lim.max_columns:
            too_many_columns(ctx, row=i + 1, columns=len(r))
    h = find_header_row(preview, ctx)
    width = max((len(r) for r in preview), default=1) or 1
    row_cap = min(lim.max_rows, lim.max_cells // width)
    try:
        raw = pd.read_csv(io.StringIO(text), sep=delim, header=None, skiprows=h, dtype=str,
                          keep_default_na=False, na_values=[""], skip_blank_lines=False,
                          engine="c", nrows=row_cap + 2)
    except (pd.errors.ParserError, ValueError) as e:
        ctx.fail("io.bad_table", detail=str(e).strip())
    del text
    if raw.empty:
        ctx.fail("io.empty_file")
    header = raw.iloc[0].tolist()
    body = raw.iloc[1:].reset_index(drop=True)
    body.columns = range(body.shape[1])
    body = body.mask(body.apply(lambda c: c.str.strip() == ""))
    if len(body) > row_cap:
        if body.iloc[row_cap:].notna().any(axis=None):
            row = h + 2 + row_cap
            if row_cap == lim.max_rows:
                too_many_rows(ctx, row=row)
            too_many_cells(ctx, row=row)
        body = body.iloc[:row_cap]
    ctx.numbers_from_text = True
    return frame_from_rows(header, body, ctx, header_index=h)


def _head_lines(text: str, n: int) -> list[str]:
    """The first ``n`` lines of ``text``, without splitting the whole of it."""
    end = 0
    for _ in range(n):
        i = text.find("\n", end)
        if i < 0:
            end = len(text)
            break
        end = i + 1
    return text[:end].splitlines()[:n]


# --------------------------------------------------------------------------- XLSX


def read_xlsx(ctx: ReadContext) -> tuple[pd.DataFrame, int]:
    """Read one sheet of an .xlsx workbook (openpyxl, values not formulas), streaming its rows.

    The workbook's zip is checked against ``ctx.limits`` before openpyxl opens it; the sheet's
    declared dimension (``A1:XFD1048576`` in a hostile file) is ignored and rows are read
    one at a time up to the row, column and cell limits.
    """
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        with zipfile.ZipFile(ctx.path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        ctx.fail("io.corrupt", format="XLSX", detail=corrupt_detail(e))
    check_zip(ctx, infos)
    try:
        wb = openpyxl.load_workbook(ctx.path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as e:
        ctx.fail("io.corrupt", format="XLSX", detail=corrupt_detail(e))
    try:
        ws = wb[_choose_sheet(wb.sheetnames, ctx)]
        part = getattr(ws, "_worksheet_path", None)  # openpyxl's name of the sheet's XML part
        if isinstance(part, str):
            with zipfile.ZipFile(ctx.path) as zf:
                scan_sheet(ctx, zf, part)
        rows = _sheet_rows(ws, ctx)
    finally:
        wb.close()
    if not rows:
        ctx.fail("io.empty_file")
    h = find_header_row(rows[:PREVIEW_ROWS], ctx)
    width = max(len(r) for r in rows)
    body_rows = [r + [None] * (width - len(r)) for r in rows[h + 1:]]
    columns: dict[int, pd.Series] = {}
    mixed: set[int] = set()
    for i in range(width):
        columns[i], is_mixed = _cells_to_series([r[i] for r in body_rows])
        if is_mixed:
            mixed.add(i)
    body = pd.DataFrame(columns, index=pd.RangeIndex(len(body_rows)))
    ctx.numbers_from_text = False
    return frame_from_rows(rows[h], body, ctx, header_index=h, mixed=frozenset(mixed))


def _sheet_rows(ws: Any, ctx: ReadContext) -> list[list[Any]]:
    """The rows of a read-only sheet up to its last non-blank one, trailing blank cells cut.

    Blank rows cost nothing until a non-blank row follows them, so a stray formatted cell on
    row 1,048,576 neither allocates a million rows nor trips the row limit.
    """
    lim = ctx.limits
    if hasattr(ws, "reset_dimensions"):
        ws.reset_dimensions()  # trust the cells, not the <dimension> the file declares
    rows: list[list[Any]] = []
    pending_blank = cells = 0
    for n, r in enumerate(ws.iter_rows(values_only=True), start=1):
        width = len(r)
        while width and _blank(r[width - 1]):
            width -= 1
        if width == 0:
            pending_blank += 1
            continue
        if n > lim.max_rows + 1:  # one header row allowed above the limit's rows
            too_many_rows(ctx, row=n)
        if width > lim.max_columns:
            too_many_columns(ctx, row=n, columns=width)
        cells += width
        if cells > lim.max_cells:
            too_many_cells(ctx, row=n)
        rows.extend([] for _ in range(pending_blank))
        pending_blank = 0
        rows.append(list(r[:width]))
    return rows


def _choose_sheet(names: list[str], ctx: ReadContext) -> str:
    sheet = ctx.sheet
    if isinstance(sheet, int):
        if 0 <= sheet < len(names):
            return names[sheet]
        ctx.fail("io.sheet_not_found", sheet=sheet, sheets=listing(names))
    if isinstance(sheet, str):
        for n in names:
            if n == sheet or normalise_header(n) == normalise_header(sheet):
                return n
        ctx.fail("io.sheet_not_found", sheet=sheet, sheets=listing(names))
    if len(names) == 1:
        return names[0]
    chosen = names[0]
    if ctx.schema is not None:
        wanted = {normalise_header(x) for x in (ctx.schema.name, ctx.schema.title_zh,
                                                 ctx.schema.title_en)}
        for n in names:
            if normalise_header(n) in wanted:
                chosen = n
                break
    ctx.note("info", "io.sheet_chosen", sheet=chosen, sheets=listing(names))
    return chosen


def _cells_to_series(values: list[Any]) -> tuple[pd.Series, bool]:
    """One XLSX column of typed cells -> a typed Series, and whether it mixed numbers and text."""
    vals = [None if _blank(v) else v for v in values]
    present = [v for v in vals if v is not None]
    if not present:
        return pd.Series(vals, dtype=object), False
    kinds = {_cell_kind(v) for v in present}
    if kinds == {"int"}:
        s = pd.Series(vals, dtype=object)
        return s.astype("Int64" if len(present) < len(vals) else np.int64), False
    if kinds <= {"int", "float"}:
        return pd.Series([np.nan if v is None else float(v) for v in vals], dtype=np.float64), False
    if kinds == {"datetime"}:
        stamps = [pd.NaT if v is None else pd.Timestamp(v) for v in vals]
        return pd.Series(pd.DatetimeIndex(stamps)), False
    if kinds == {"bool"} and len(present) == len(vals):
        return pd.Series(vals, dtype=bool), False
    if kinds == {"str"}:
        return pd.Series(vals, dtype="str"), False
    texts = pd.Series([None if v is None else _cell_text(v) for v in vals], dtype="str")
    return texts, bool(kinds & {"int", "float"}) and "str" in kinds


def _cell_kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, (dt.datetime, dt.date)):
        return "datetime"
    return "str"


def _cell_text(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, dt.datetime):
        return v.isoformat(sep=" ")
    return str(v)


def read_text_file(ctx: ReadContext, path: Path) -> tuple[pd.DataFrame, int]:
    """Dispatch on the suffix: .xlsx/.xlsm to openpyxl, anything else as delimited text."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return read_xlsx(ctx)
    return read_csv(ctx, path.read_bytes())
