"""Writers: GeoJSON, GeoPackage, zipped Shapefile, GeoParquet, CSV and XLSX.

Private to :mod:`layers.io`. Every writer except GeoPackage (which adds or replaces one
layer inside an existing file) writes to a temporary file beside the target and renames
it, so a failed export never leaves half a file behind.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from layers._io_common import SIDECAR_SUFFIX, listing
from layers.errors import ReportError
from layers.report import Report

#: Excel's limits.
XLSX_MAX_ROWS = 1_048_576
XLSX_MAX_CELL_CHARS = 32_767
#: The .dbf limits: field names of 10 bytes, text of 254 bytes.
DBF_NAME_BYTES = 10
_SHP_FAMILIES = ({"Point"}, {"Point", "MultiPoint"}, {"LineString", "MultiLineString"},
                 {"Polygon", "MultiPolygon"})


class WriterError(ReportError, ValueError):
    """The data could not be written in the format asked for; ``report`` says why and what to do."""


def fail(code: str, path: Path, *, column: str | None = None, row: int | None = None,
         **params: Any) -> NoReturn:
    """Raise :class:`WriterError` with one error about ``path``."""
    report = Report()
    report.add("error", code, file=path.name, column=column, row=row, **params)
    raise WriterError(report)


def refuse_control_chars(df: pd.DataFrame, path: Path) -> None:
    """Refuse text with NUL or other C0 control characters: GDAL would cut it at a NUL."""
    from layers._io_guard import CONTROL_CHARS

    geometry = getattr(df, "_geometry_column_name", None)
    for c in df.columns:
        s = df[c]
        if c == geometry or not (pd.api.types.is_string_dtype(s.dtype) or s.dtype == object):
            continue
        hit = s.map(lambda v: isinstance(v, str) and CONTROL_CHARS.search(v) is not None)
        if hit.any():
            rows = np.flatnonzero(hit.to_numpy(dtype=bool))
            fail("readers.write_control_chars", path, column=str(c), row=int(rows[0]) + 1,
                 count=len(rows))


@contextmanager
def atomic(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` when the block succeeds."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    os.unlink(tmp)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _geometry_name(df: pd.DataFrame) -> str | None:
    if isinstance(df, gpd.GeoDataFrame) and df._geometry_column_name in df.columns:
        return df.geometry.name
    return None


def _ogr_write(df: pd.DataFrame, path: Path, **kw: Any) -> None:
    """pyogrio write; GDAL's data-loss warnings become :class:`WriterError`."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            pyogrio.write_dataframe(df, path, **kw)
        except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError,
                pyogrio.errors.FieldError, pyogrio.errors.GeometryError,
                pyogrio.errors.FeatureError, OSError, RuntimeError, ValueError) as e:
            fail("io.write_failed", path, detail=str(e).strip()[:200])
    for w in caught:
        text = str(w.message)
        if "not successfully written" in text or "truncated" in text:
            fail("io.write_failed", path, detail=text[:200])


# --------------------------------------------------------------------------- GDAL formats


def write_geojson(df: pd.DataFrame, path: Path, *, layer: str | None) -> None:
    """GeoJSON (UTF-8, 17 significant digits)."""
    with atomic(path) as tmp:
        _ogr_write(df, tmp, driver="GeoJSON", layer=layer or path.stem)


def write_gpkg(df: pd.DataFrame, path: Path, *, layer: str | None) -> None:
    """GeoPackage: adds the layer to an existing file, replacing a layer of the same name.

    Zoned timestamps are stored in UTC, as the GeoPackage standard asks.
    """
    zoned = [c for c in df.columns if isinstance(df[c].dtype, pd.DatetimeTZDtype)]
    if zoned:
        df = df.copy()
        for c in zoned:
            df[c] = df[c].dt.tz_convert("UTC")
    _ogr_write(df, path, driver="GPKG", layer=layer or path.stem)


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    """GeoParquet (plain Parquet for tables without geometry)."""
    with atomic(path) as tmp:
        df.to_parquet(tmp, index=False)


def dbf_field_names(columns: list[str], encoding: str) -> list[str]:
    """Unique .dbf field names of at most 10 bytes in ``encoding`` (case-insensitive unique).

    >>> dbf_field_names(["requested_datetime", "requested_by", "名称"], "utf-8")
    ['requested_', 'requeste_1', '名称']
    """
    out: list[str] = []
    used: set[str] = set()
    for col in columns:
        base = _cut_bytes(col, DBF_NAME_BYTES, encoding)
        name, k = base, 1
        while name.lower() in used or not name:
            suffix = f"_{k}"
            name = _cut_bytes(col, DBF_NAME_BYTES - len(suffix), encoding) + suffix
            k += 1
        used.add(name.lower())
        out.append(name)
    return out


def _cut_bytes(text: str, limit: int, encoding: str) -> str:
    out = ""
    for ch in text:
        if len((out + ch).encode(encoding, errors="replace")) > limit:
            break
        out += ch
    return out


def write_shapefile_zip(df: pd.DataFrame, path: Path, *, layer: str | None, encoding: str) -> None:
    """A zipped Shapefile with .cpg, plus a sidecar keeping the long column names and dtypes."""
    geom = _geometry_name(df)
    if geom is not None:
        types = set(df.geometry.geom_type.dropna())
        if types and not any(types <= fam for fam in _SHP_FAMILIES):
            fail("io.write_mixed_geometry", path, types=listing(sorted(types)))
    stem = (layer or path.stem).replace("/", "_").replace("\\", "_") or "layer"
    cpg = "UTF-8" if encoding.lower().replace("_", "-") in ("utf-8", "utf8", "utf-8-sig") else encoding.upper()
    codec = "utf-8" if cpg == "UTF-8" else encoding
    attrs = [c for c in df.columns if c != geom]
    fields = dbf_field_names([str(c) for c in attrs], codec)
    out = df.rename(columns=dict(zip(attrs, fields, strict=True)))
    spec = []
    for col, field in zip(attrs, fields, strict=True):
        s = df[col]
        spec.append({"name": str(col), "field": field, "dtype": str(s.dtype)})
        if isinstance(s.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(s.dtype):
            out[field] = pd.Series([t.isoformat() if pd.notna(t) else None for t in s],
                                   index=df.index, dtype="str")
        elif pd.api.types.is_string_dtype(s.dtype) or s.dtype == object:
            _check_encodable(s, codec, path, column=str(col), row_offset=1)
    with tempfile.TemporaryDirectory(prefix="gridpulse-shp-") as tmp:
        target = Path(tmp) / (stem + (".shp" if geom is not None else ".dbf"))
        kw: dict[str, Any] = {"driver": "ESRI Shapefile", "encoding": cpg}
        if geom is not None and any(t.startswith("Multi") for t in types):
            kw["promote_to_multi"] = True
        _ogr_write(out, target, **kw)
        if not (Path(tmp) / f"{stem}.cpg").exists():
            (Path(tmp) / f"{stem}.cpg").write_text(cpg, encoding="ascii")
        (Path(tmp) / f"{stem}{SIDECAR_SUFFIX}").write_text(
            json.dumps({"gridpulse": 1, "columns": spec}, ensure_ascii=False), encoding="utf-8")
        with atomic(path) as tmp_zip, zipfile.ZipFile(tmp_zip, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(Path(tmp).iterdir()):
                zf.write(f, arcname=f.name)


# --------------------------------------------------------------------------- tables


def geometry_to_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Replace the geometry by ``lon``/``lat`` (points; ``x``/``y`` if projected) or ``wkt``."""
    geom = _geometry_name(df)
    if geom is None:
        return pd.DataFrame(df).reset_index(drop=True)
    gs = df.geometry
    attrs = pd.DataFrame(df.drop(columns=geom)).reset_index(drop=True)
    present = gs[gs.notna() & ~gs.is_empty]
    if len(present) and set(present.geom_type) == {"Point"}:
        projected = gs.crs is not None and not gs.crs.is_geographic
        xname, yname = ("x", "y") if projected else ("lon", "lat")
        arr = gs.to_numpy()
        ok = ~(shapely.is_missing(arr) | shapely.is_empty(arr))
        x = np.full(len(gs), np.nan)
        y = np.full(len(gs), np.nan)
        x[ok] = shapely.get_x(arr[ok])
        y[ok] = shapely.get_y(arr[ok])
        attrs[xname] = x
        attrs[yname] = y
    else:
        wkt = shapely.to_wkt(gs.to_numpy(), rounding_precision=-1)
        attrs["wkt"] = pd.Series(wkt, dtype="str")
    return attrs


def _check_encodable(s: pd.Series, encoding: str, path: Path, *, column: str, row_offset: int) -> None:
    for i, v in enumerate(s.tolist()):
        if isinstance(v, str):
            try:
                v.encode(encoding)
            except UnicodeEncodeError as e:
                fail("io.write_encoding", path, column=column, row=i + row_offset,
                     encoding=encoding, detail=repr(v[e.start:e.end]))


def write_csv(df: pd.DataFrame, path: Path, *, encoding: str) -> None:
    """CSV: lon/lat columns for points, WKT otherwise; any encoding (``gbk`` for old Excel)."""
    table = geometry_to_columns(df)
    text = table.to_csv(index=False)
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:
        _check_encodable(pd.Series([str(c) for c in table.columns]), encoding, path,
                         column="(header)", row_offset=1)
        for c in table.columns:
            if pd.api.types.is_string_dtype(table[c].dtype) or table[c].dtype == object:
                _check_encodable(table[c], encoding, path, column=str(c), row_offset=2)
        raise
    with atomic(path) as tmp:
        tmp.write_bytes(data)


def write_xlsx(df: pd.DataFrame, path: Path, *, layer: str | None) -> None:
    """XLSX (GDAL's writer): one sheet, typed cells; text is never turned into a formula.

    Time zones are dropped to the wall-clock time (Excel has none).
    """
    table = geometry_to_columns(df)
    if len(table) + 1 > XLSX_MAX_ROWS:
        fail("io.write_too_many_rows", path, rows=len(table), limit=XLSX_MAX_ROWS - 1)
    for c in table.columns:
        s = table[c]
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            table[c] = s.dt.tz_localize(None)
        elif pd.api.types.is_string_dtype(s.dtype) or s.dtype == object:
            lengths = s.map(lambda v: len(v) if isinstance(v, str) else 0)
            if len(lengths) and lengths.max() > XLSX_MAX_CELL_CHARS:
                fail("io.write_cell_too_long", path, column=str(c),
                     row=int(np.argmax(lengths.to_numpy())) + 2, limit=XLSX_MAX_CELL_CHARS)
    title = "".join(ch for ch in (layer or path.stem) if ch not in "[]:*?/\\")[:31] or "Sheet1"
    with atomic(path) as tmp:
        _ogr_write(table, tmp, driver="XLSX", layer=title)
