"""Shared pieces of the readers: the read context, header mapping, column typing, coordinates.

Private to :mod:`layers.io`. Nothing here validates content: it maps headers to canonical
names, turns text that is unambiguously a number or a timestamp into that type (tables
only), and builds geometries from longitude/latitude or WKT columns.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from layers._io_context import ReadContext, ReadLimits  # noqa: F401 - re-exported
from layers._io_guard import EXAMPLE_ROWS, rows_text  # noqa: F401 - re-exported
from layers.schema import LAT_ALIASES, LON_ALIASES

#: Headers recognised as a WKT geometry column in tables (normalised form).
WKT_ALIASES: tuple[str, ...] = ("geometry", "wkt", "geom", "the_geom", "shape", "几何", "空间信息")

#: Suffix of the sidecar GridPulse writes into a Shapefile zip: long column names and dtypes.
SIDECAR_SUFFIX = ".columns.json"

#: How many example row numbers a warning lists.

_INT_RE = r"[+-]?(?:0|[1-9]\d{0,17})"
_FLOAT_RE = r"[+-]?(?:(?:0|[1-9]\d*)(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_DATETIME_RE = (
    r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}"
    r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?"
    r"(?:Z|[+-]\d{2}:?\d{2})?"
)
_ISO_RE = (
    r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?(?:Z|[+-]\d{2}:?\d{2})?"
)
_BOOLS = {"true": True, "false": False}
_BRACKETS = re.compile(r"[(\[（【][^)\]）】]*[)\]）】]")
_SRID = re.compile(r"^\s*SRID=(\d+);", re.IGNORECASE)


#: Suffixes :func:`layers.io.read_file` reads (``.osm.pbf`` is matched by its last suffix).
SUPPORTED_READ: tuple[str, ...] = (
    ".geojson", ".json", ".gpkg", ".zip", ".shp", ".parquet", ".geoparquet",
    ".csv", ".tsv", ".txt", ".xlsx", ".xlsm", ".gpx", ".pbf", ".osm",
)


def normalise_header(header: object) -> str:
    """Fold a header for matching: NFKC, strip, lower-case, drop bracketed units and spaces.

    >>> normalise_header(" 经度（GCJ-02） ")
    '经度'
    >>> normalise_header("Households (户)")
    'households'
    """
    text = unicodedata.normalize("NFKC", str(header)).replace("\ufeff", "")
    text = _BRACKETS.sub("", text)
    return re.sub(r"\s+", "", text).lower()


def unique_headers(raw: Iterable[object], ctx: ReadContext) -> list[str]:
    """Turn a header row into unique, non-empty column names (blank -> ``column_<n>``)."""
    out: list[str] = []
    seen: set[str] = set()
    for i, h in enumerate(raw, start=1):
        text = "" if h is None or (isinstance(h, float) and np.isnan(h)) else str(h)
        text = text.replace("\ufeff", "").strip()
        if not text:
            text = f"column_{i}"
        name, k = text, 2
        while name in seen:
            name, k = f"{text}_{k}", k + 1
        if name != text:
            ctx.note("warning", "io.duplicate_header", column=text, header=text, renamed=name)
        seen.add(name)
        out.append(name)
    return out


def map_headers(df: pd.DataFrame, ctx: ReadContext, *, truncated: bool = False) -> pd.DataFrame:
    """Rename columns to the layer's canonical names where a header is recognised.

    A column already carrying the canonical name wins; otherwise the first recognised column
    in file order wins and the others keep their names (with a warning). ``truncated`` also
    recognises canonical names cut to 10 characters (Shapefile .dbf field names).
    """
    if ctx.schema is None:
        return df
    aliases = {normalise_header(k): v for k, v in ctx.schema.alias_map().items()}
    if truncated:
        for f in ctx.schema.fields:
            aliases.setdefault(f.name[:10], f.name)
    cols = [c for c in df.columns if c != getattr(df, "_geometry_column_name", None)]
    claims: dict[str, list[str]] = {}
    for c in cols:
        canon = aliases.get(normalise_header(c))
        if canon is None and truncated:
            canon = _truncated_alias(normalise_header(c), aliases)
        if canon is not None:
            claims.setdefault(canon, []).append(c)
    rename: dict[str, str] = {}
    for canon, claimants in claims.items():
        used = canon if canon in claimants else claimants[0]
        if len(claimants) > 1:
            ctx.note("warning", "io.alias_conflict", canonical=canon,
                     columns=listing(claimants), used=used)
        if used != canon:
            rename[used] = canon
    if rename:
        ctx.note("info", "io.header_mapped",
                 mapping=", ".join(f"{a} → {b}" for a, b in rename.items()))
    return df.rename(columns=rename)


def _truncated_alias(header: str, aliases: dict[str, str]) -> str | None:
    """The canonical name of the one alias that ``header`` is a cut-off start of (.dbf names)."""
    if max(len(header.encode("utf-8")), len(header.encode("gbk", "replace"))) < 9:
        return None
    found = {canon for alias, canon in aliases.items() if alias.startswith(header)}
    return found.pop() if len(found) == 1 else None


def listing(items: Iterable[object]) -> str:
    """Names joined for a message (the same in both languages).

    >>> listing(["grids", "网格"])
    'grids, 网格'
    """
    return ", ".join(map(str, items)) or "-"


# --------------------------------------------------------------------------- typing


def tidy_dtypes(df: pd.DataFrame) -> pd.DataFrame:
    """Widen small integer columns to int64 so every format gives the same dtypes."""
    for c in df.columns:
        dt = df[c].dtype
        if isinstance(dt, np.dtype) and dt.kind in "iu" and dt != np.int64 and dt.itemsize < 8:
            df[c] = df[c].astype(np.int64)
    return df


def parse_datetime_text(s: pd.Series) -> pd.Series | None:
    """Parse a text column whose every value is a date or timestamp; ``None`` when not all are."""
    vals = s.dropna()
    if vals.empty or not vals.str.fullmatch(_DATETIME_RE).all():
        return None
    text = s
    if not vals.str.fullmatch(_ISO_RE).all():  # 2024/5/1 8:00 and the like, as Excel writes them
        text = s.str.replace("/", "-", regex=False).str.replace(".", "-", n=2, regex=False)
        text = text.str.replace(r"^(\d{4})-(\d{1,2})-(\d{1,2})", _pad_date, regex=True)
        text = text.str.replace(r"([ T])(\d):", r"\g<1>0\2:", regex=True)
    try:
        out = pd.to_datetime(text, format="ISO8601")
    except (ValueError, TypeError, OverflowError):
        return None
    if out.dtype == object or out[s.notna()].isna().any():
        return None
    return out


def _pad_date(m: re.Match[str]) -> str:
    return f"{m.group(1)}-{int(m.group(2)):02d}-{int(m.group(3)):02d}"


def infer_text_column(s: pd.Series, *, numbers: bool = True) -> pd.Series:
    """Type a column of text cells: ints, floats, booleans, timestamps, else text.

    Numbers with leading zeros (codes such as ``"010101"``) stay text. With ``numbers=False``
    only timestamps are recognised.

    >>> infer_text_column(pd.Series(["010101", "320106"])).tolist()
    ['010101', '320106']
    >>> infer_text_column(pd.Series(["2024/5/1 8:00", None])).iloc[0]
    Timestamp('2024-05-01 08:00:00')
    """
    stripped = s.str.strip()
    vals = stripped.dropna()
    if vals.empty:
        return s
    if numbers and vals.str.fullmatch(_INT_RE).all():
        ints = pd.to_numeric(stripped, errors="coerce")
        if ints.notna().sum() == len(vals):
            return ints.astype("Int64" if s.isna().any() else np.int64)
    if numbers and vals.str.fullmatch(_FLOAT_RE).all():
        return pd.to_numeric(stripped, errors="coerce").astype(np.float64)
    if numbers and vals.str.lower().isin(list(_BOOLS)).all() and not s.isna().any():
        return stripped.str.lower().map(_BOOLS).astype(bool)
    dt = parse_datetime_text(stripped)
    return dt if dt is not None else s


def type_table(df: pd.DataFrame, ctx: ReadContext) -> pd.DataFrame:
    """Type the text columns of a table, leaving the layer's text and code fields as text."""
    keep_text = set()
    if ctx.schema is not None:
        keep_text = {f.name for f in ctx.schema.fields if f.dtype in ("str", "code")}
    for c in df.columns:
        s = df[c]
        if c in keep_text:
            continue
        if pd.api.types.is_string_dtype(s.dtype) or s.dtype == object:
            if _all_text(s):
                df[c] = infer_text_column(s.astype("str"), numbers=ctx.numbers_from_text)
    return df


def _all_text(s: pd.Series) -> bool:
    if pd.api.types.is_string_dtype(s.dtype) and s.dtype != object:
        return True
    return bool(s.dropna().map(lambda v: isinstance(v, str)).all())


# --------------------------------------------------------------------------- coordinates


def find_column(columns: Iterable[str], names: Iterable[str]) -> list[str]:
    """Columns whose normalised header is one of ``names``, in the order of ``names``."""
    norm: dict[str, list[str]] = {}
    for c in columns:
        norm.setdefault(normalise_header(c), []).append(c)
    out: list[str] = []
    for n in names:
        out.extend(norm.get(normalise_header(n), []))
    return out


def table_to_frame(df: pd.DataFrame, ctx: ReadContext, *, row_offset: int) -> pd.DataFrame:
    """Turn a table into a GeoDataFrame when it carries geometry; map headers; type columns.

    Spatial layers (and ``layer=None``) look for a WKT column, then longitude/latitude columns.
    A table of a spatial layer with neither raises :class:`ReaderError`.
    """
    original = list(df.columns)
    df = map_headers(df, ctx)
    spatial = ctx.schema is None or ctx.schema.geometry is not None
    if not spatial:
        return type_table(df, ctx)
    wkt_cols = [c for c in find_column(df.columns, WKT_ALIASES)
                if df[c].dropna().map(lambda v: isinstance(v, str) and v.strip() != "").any()]
    lon_cols = find_column(df.columns, LON_ALIASES)
    lat_cols = find_column(df.columns, LAT_ALIASES)
    if wkt_cols:
        return _from_wkt(df, wkt_cols[0], ctx, row_offset=row_offset)
    if lon_cols and lat_cols:
        return _from_lonlat(df, lon_cols[0], lat_cols[0], ctx, row_offset=row_offset)
    if ctx.schema is None:
        return type_table(df, ctx)
    ctx.fail("io.no_coordinates", columns=listing(original))


def _from_wkt(df: pd.DataFrame, col: str, ctx: ReadContext, *, row_offset: int) -> gpd.GeoDataFrame:
    text = df[col].map(lambda v: v.strip() if isinstance(v, str) and v.strip() else None)
    srids = text.dropna().str.extract(_SRID, expand=False).dropna().unique()
    text = text.str.replace(_SRID, "", regex=True)
    geoms = shapely.from_wkt(text.to_numpy(dtype=object, na_value=None), on_invalid="ignore")
    bad = np.flatnonzero(text.notna().to_numpy() & shapely.is_missing(geoms))
    if len(bad):
        count, rows = rows_text(bad, row_offset)
        ctx.note("warning", "io.bad_wkt", column=col, count=count, rows=rows)
    ctx.note("info", "io.wkt_used", column=col)
    crs = f"EPSG:{srids[0]}" if len(srids) == 1 else None
    if crs is None and _in_degrees(geoms):
        crs = "EPSG:4326"  # like lon/lat columns: degrees, datum left to validation
    elif crs is None:
        ctx.note("info", "io.no_crs")
    rest = type_table(df.drop(columns=[col]), ctx)
    return gpd.GeoDataFrame(rest, geometry=gpd.GeoSeries(geoms, index=df.index), crs=crs)


def _in_degrees(geoms: np.ndarray) -> bool:
    present = geoms[~shapely.is_missing(geoms)]
    if not len(present):
        return False
    x0, y0, x1, y1 = shapely.total_bounds(present)
    return bool(-180 <= x0 and x1 <= 180 and -90 <= y0 and y1 <= 90)


def _from_lonlat(df: pd.DataFrame, lon: str, lat: str, ctx: ReadContext, *,
                 row_offset: int) -> gpd.GeoDataFrame:
    x = _numbers(df[lon])
    y = _numbers(df[lat])
    missing = np.flatnonzero(np.isnan(x) | np.isnan(y))
    if len(missing):
        count, rows = rows_text(missing, row_offset)
        ctx.note("warning", "io.bad_lonlat", count=count, rows=rows)
    ok = ~(np.isnan(x) | np.isnan(y))
    geoms = np.full(len(df), None, dtype=object)
    geoms[ok] = shapely.points(x[ok], y[ok])
    ctx.note("info", "io.lonlat_used", lon=lon, lat=lat)
    degrees = bool(np.all((np.abs(x[ok]) <= 180) & (np.abs(y[ok]) <= 90)))
    if not degrees:
        ctx.note("warning", "io.lonlat_not_degrees", lon=lon, lat=lat)
    rest = type_table(df.drop(columns=[lon, lat]), ctx)
    return gpd.GeoDataFrame(rest, geometry=gpd.GeoSeries(geoms, index=df.index),
                            crs="EPSG:4326" if degrees else None)


def _numbers(s: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        return s.to_numpy(dtype=np.float64, na_value=np.nan)
    if _all_text(s):
        s = s.astype("str").str.strip().str.rstrip("°")
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
