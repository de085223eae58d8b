"""What both store engines share: schema coercion, H3 columns, filters, audit rows, snapshots.

The engines (:mod:`layers._gpkg`, :mod:`layers._postgis`) only move bytes; every rule about
*what* is stored lives here, so both engines store and return the same frames.

Examples
--------
>>> import h3, shapely, geopandas as gpd
>>> g = gpd.GeoDataFrame({"fix_id": ["f1"], "worker_id": ["W1"],
...                       "time": [pd.Timestamp("2024-05-01 08:00")]},
...                      geometry=[shapely.Point(118.78, 32.06)], crs=4326)
>>> out = prepare_layer(g, "patrol_points")
>>> [c for c in out.columns if c.startswith("h3_")]
['h3_7', 'h3_8', 'h3_9', 'h3_10']
>>> h3.cell_to_parent(h3.int_to_str(int(out["h3_10"][0])), 7) == h3.int_to_str(int(out["h3_7"][0]))
True
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from numpy.typing import NDArray

from geo.domain import LOCAL_TZ  # local time zone of stored (naive) datetimes
from geo.hexes import cells_to_parents, lonlat_to_cells  # noqa: F401 - cells_to_parents re-exported
from layers._io_guard import CONTROL_CHARS
from layers.errors import ConcurrentChangeError, StoreError
from layers.errors import error_text as error_text  # re-exported: callers render store errors
from layers.schema import H3_RESOLUTIONS, SCHEMAS, Field, LayerSchema

#: Name of the geometry column inside the store (GDAL's GeoPackage default).
GEOM_COL = "geom"
#: Internal tables (never reported by ``layer_names``).
AUDIT_TABLE = "audit_log"
VERSIONS_TABLE = "layer_versions"
AUDIT_COLUMNS: tuple[str, ...] = ("time", "actor", "action", "layer", "rows", "note")
VERSION_COLUMNS: tuple[str, ...] = (
    "version", "time", "actor", "note", "rows", "current", "source_version",
)
EVENTS = "incident_events"
INCIDENTS = "incidents"

#: pandas dtypes of logical schema types as returned by ``read`` (nullable variants where
#: the field is nullable or not required).
_READ_DTYPES: dict[str, tuple[str, str]] = {
    "str": ("str", "str"),
    "code": ("str", "str"),
    "int": ("int64", "Int64"),
    "float": ("float64", "float64"),
    "bool": ("bool", "boolean"),
    "datetime": ("datetime64[us]", "datetime64[us]"),
}


#: EPSG:4326 parsed once (GeoPandas re-parses an integer code on every frame it builds).
WGS84 = pyproj.CRS.from_epsg(4326)
#: Up to this many rows a text column is checked for control characters as one joined string.
_JOINED_SEARCH_ROWS = 200_000


# -- errors ---------------------------------------------------------------------------------


def store_error(key: str, **params: Any) -> StoreError:
    """A :class:`StoreError` whose text comes from the catalogue (``store.<key>``).

    The exception carries ``key`` and ``params`` so a caller can render it in the
    user's language: ``t(err.key, lang, **err.params)``.
    """
    return StoreError(f"store.{key}", **params)


# -- schemas --------------------------------------------------------------------------------


def schema_of(layer: str) -> LayerSchema:
    """The schema of a canonical layer, or a :class:`StoreError` naming the known ones."""
    try:
        return SCHEMAS[layer]
    except KeyError:
        raise store_error("unknown_layer", layer=layer, known=", ".join(SCHEMAS)) from None


def stored_columns(s: LayerSchema) -> list[str]:
    """Attribute columns as stored: the schema's fields, then the derived ``h3_<res>`` columns."""
    return [*s.columns, *s.h3_columns]


def column_kind(s: LayerSchema, column: str) -> str:
    """Logical type of a stored column (``h3_*`` columns are ``int``)."""
    if column in s.h3_columns:
        return "int"
    return s.field(column).dtype


def _nullable(f: Field) -> bool:
    return f.nullable or not f.required


def now_local() -> pd.Timestamp:
    """The current time, naive, in Asia/Shanghai (microsecond precision)."""
    return pd.Timestamp.now(tz=LOCAL_TZ).tz_localize(None).as_unit("us")


def to_local_naive(values: pd.Series) -> pd.Series:
    """Datetimes as naive local time: aware values are converted to Asia/Shanghai first."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert(LOCAL_TZ).dt.tz_localize(None).astype("datetime64[us]")
    if not pd.api.types.is_datetime64_dtype(values.dtype):
        values = pd.to_datetime(values, format="ISO8601")
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            return to_local_naive(values)
    return values.astype("datetime64[us]")


def coerce_column(values: pd.Series, kind: str, *, nullable: bool = True) -> pd.Series:
    """Cast one column to the pandas dtype of its logical ``kind``.

    Writes use the nullable dtype (``nullable=True``); reads pick the non-nullable dtype
    when the field is non-nullable and there is nothing missing.
    """
    if kind == "datetime":
        return to_local_naive(values)
    strict, loose = _READ_DTYPES[kind]
    if kind in ("str", "code"):
        if values.dtype == "str":
            return values
        return values.astype("str")
    if kind == "float":
        return pd.to_numeric(values).astype("float64")
    if kind == "bool":
        if values.dtype == object or values.dtype == "str":
            values = values.map(_to_bool, na_action="ignore").astype(object)
        out = values.astype("boolean")
    else:  # int
        out = pd.to_numeric(values).astype("Int64") if values.dtype != "Int64" else values
    if not nullable and not out.isna().any():
        return out.astype(strict)
    return out


def _to_bool(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true", "yes", "y", "t", "是")
    return bool(v)


def prepare_layer(data: pd.DataFrame, layer: str) -> pd.DataFrame:
    """Check and cast a frame to the stored shape of ``layer``, computing the H3 columns.

    Returns a new frame with the schema's columns in order (missing optional columns are
    added empty), then ``h3_<res>`` for point layers, then the geometry (EPSG:4326) as
    column ``geometry``. Raises :class:`StoreError` for unknown layers or columns, missing
    required columns, a spatial layer without geometry, or a geometry without CRS.
    """
    s = schema_of(layer)
    if not isinstance(data, pd.DataFrame):
        raise store_error("not_a_frame", layer=layer, type=type(data).__name__)
    is_geo = isinstance(data, gpd.GeoDataFrame) and data._geometry_column_name in data.columns
    geom_name = data.geometry.name if is_geo else None
    extra = [c for c in data.columns
             if c not in s.columns and c not in s.h3_columns and c != geom_name]
    if extra:
        raise store_error("unknown_columns", layer=layer, columns=", ".join(map(str, extra)))
    missing = [f.name for f in s.fields if f.required and f.name not in data.columns]
    if missing:
        raise store_error("missing_columns", layer=layer, columns=", ".join(missing))
    n = len(data)
    plain_index = isinstance(data.index, pd.RangeIndex) and data.index.start == 0 \
        and data.index.step == 1
    cols: dict[str, pd.Series] = {}
    for f in s.fields:
        if f.name in data.columns:
            src = data[f.name]
            if not plain_index:
                src = src.reset_index(drop=True)
        else:
            src = pd.Series([None] * n, dtype=object)
        try:
            cols[f.name] = coerce_column(src, f.dtype)
        except (ValueError, TypeError) as exc:
            raise store_error("bad_column", layer=layer, column=f.name, error=str(exc)) from exc
    refuse_control_chars(cols, layer)
    if s.geometry is None:
        return _positional(cols, n)
    if not is_geo:
        raise store_error("no_geometry", layer=layer)
    crs = data.crs
    if crs is None:
        raise store_error("no_crs", layer=layer)
    geoms = data.geometry
    if crs is not WGS84 and not crs.equals(WGS84) and crs.to_epsg() != 4326:
        geoms = geoms.to_crs(WGS84)
    garr = np.asarray(geoms.values, dtype=object)
    for col, cells in h3_columns(garr, s).items():
        cols[col] = pd.Series(cells, dtype="int64")
    # a CRS object, not the code 4326 (parsing it again costs milliseconds per write), and
    # the geometry as a column of the frame (set_geometry would copy the frame once more)
    cols["geometry"] = gpd.array.from_shapely(garr, crs=WGS84)  # type: ignore[assignment]
    return gpd.GeoDataFrame(_positional(cols, n), geometry="geometry")


def _positional(cols: Mapping[str, Any], n: int) -> pd.DataFrame:
    """A frame of ``n`` rows from columns taken by position (each column's own index is
    ignored: pandas would otherwise union and re-index them one by one); no copies
    (copy-on-write: the columns are not shared)."""
    return pd.DataFrame({k: (v.array if isinstance(v, pd.Series) else v) for k, v in cols.items()},
                        index=pd.RangeIndex(n), copy=False)


def refuse_control_chars(columns: Mapping[str, pd.Series], layer: str) -> None:
    """Refuse text holding NUL or another C0 control character (tab, LF, CR allowed).

    A NUL cuts GDAL's SQL and PostgreSQL refuses it, so such text would break reads of the
    whole layer; :func:`layers.io.read_file` removes these characters from files already,
    so only a caller building frames by hand meets this.

    A column is first searched as one text (its strings joined by LF, which is allowed): one
    regular-expression pass in C instead of a vectorised call per column, which costs
    milliseconds even for one row; the rows are named only when something was found.
    """
    for name, values in columns.items():
        if not (pd.api.types.is_string_dtype(values.dtype) or values.dtype == object):
            continue
        if len(values) <= _JOINED_SEARCH_ROWS and not CONTROL_CHARS.search(
                "\n".join([v for v in values.tolist() if isinstance(v, str)])):
            continue
        if values.dtype == object:
            values = values.map(lambda v: v if isinstance(v, str) else None).astype("str")
        hit = values.str.contains(CONTROL_CHARS.pattern, regex=True, na=False).to_numpy(bool)
        if hit.any():
            rows = np.flatnonzero(hit)
            params = {"layer": layer, "column": name, "count": len(rows),
                      "rows": ", ".join(map(str, rows[:5]))}
            raise StoreError("readers.store_control_chars", **params)


# -- H3 --------------------------------------------------------------------------------------

def h3_columns(geoms: NDArray[np.object_], s: LayerSchema) -> dict[str, NDArray[np.int64]]:
    """``{"h3_<res>": int64 cells}`` of the point (or centroid) of each geometry.

    Missing or empty geometries get cell ``0``. The finest resolution is computed with
    :func:`geo.hexes.lonlat_to_cells`; coarser ones are its parents.
    """
    if not s.h3_columns:
        return {}
    if len(geoms) and not (shapely.get_type_id(geoms) == 0).all():
        geoms = shapely.centroid(geoms)
    lon = shapely.get_x(geoms)
    lat = shapely.get_y(geoms)
    finest = max(H3_RESOLUTIONS)
    base = lonlat_to_cells(lon, lat, res=finest)
    return {f"h3_{r}": (base if r == finest else cells_to_parents(base, r))
            for r in H3_RESOLUTIONS}


# -- reading back ----------------------------------------------------------------------------


def conform(df: pd.DataFrame, layer: str) -> pd.DataFrame:
    """Cast columns read from an engine to the schema's dtypes (in place order kept)."""
    s = SCHEMAS[layer]
    for c in df.columns:
        if c in s.h3_columns:
            df[c] = pd.to_numeric(df[c]).fillna(0).astype("int64")
        elif c in s.columns:
            f = s.field(c)
            df[c] = coerce_column(df[c], f.dtype, nullable=_nullable(f))
    return df


def empty_frame(layer: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """A zero-row frame of ``layer`` with the read dtypes (GeoDataFrame for spatial layers)."""
    s = SCHEMAS[layer]
    cols = list(columns) if columns is not None else stored_columns(s)
    data = {c: pd.Series([], dtype=_READ_DTYPES[column_kind(s, c)][
        1 if c in s.columns and _nullable(s.field(c)) else 0]) for c in cols}
    if s.geometry is None:
        return pd.DataFrame(data)
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries([], crs=4326), crs=4326)


# -- filters -----------------------------------------------------------------------------------


def quote_ident(name: str) -> str:
    """SQL identifier quoting (the same in SQLite and PostgreSQL)."""
    return '"' + name.replace('"', '""') + '"'


def scalar_param(v: Any, kind: str, datetime_param: Callable[[pd.Timestamp], Any]) -> Any:
    """One filter or update value as a Python scalar of its logical ``kind`` (``None`` if missing)."""
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NaT:
        return None
    if kind in ("str", "code"):
        return str(v)
    if kind == "datetime" or isinstance(v, datetime | date | np.datetime64):
        ts = pd.Timestamp(v)
        if ts.tzinfo is not None:
            ts = ts.tz_convert(LOCAL_TZ).tz_localize(None)
        return datetime_param(ts)
    if kind == "bool":
        return bool(v)
    if kind == "int":
        return int(v)
    if kind == "float":
        return float(v)
    return v


def _never_stored(value: Any) -> bool:
    """True for text holding a NUL: no stored value does (:func:`refuse_control_chars`), and
    PostgreSQL refuses such a parameter outright, so it is matched as nothing instead (an
    id typed with ``%00`` into the API is a 404, not a server error)."""
    return isinstance(value, str) and "\x00" in value


def compile_filters(
    layer: str,
    *,
    where: Mapping[str, Any] | None,
    between: Mapping[str, tuple[Any, Any]] | None,
    placeholder: str,
    datetime_param: Callable[[pd.Timestamp], Any],
) -> tuple[str, list[Any]]:
    """``where``/``between`` as one SQL condition with placeholders, and its parameters.

    ``where={"stage": "closed"}`` is equality, a list/tuple/set is ``IN``, ``None`` is
    ``IS NULL``; a tuple of columns as the key takes a list of value tuples and matches rows
    whose columns equal one of them together (``where={("category_code", "h3_9"): [("04",
    cell), ...]}``, text and integer columns; a tuple holding a missing value matches
    nothing); ``between={"requested_datetime": (start, end)}`` is
    half-open ``start <= col < end`` (either end may be ``None``). Returns ``("", [])`` when
    there is nothing to filter.

    Examples
    --------
    >>> sql, params = compile_filters("incidents", where={("category_code", "h3_9"): [
    ...     ("04", 1), ("05", 2)]}, between=None, placeholder="?", datetime_param=str)
    >>> print(sql.replace(KEY_SEPARATOR, "|"))
    (CAST("category_code" AS TEXT) || '|' || CAST("h3_9" AS TEXT)) IN (?, ?)
    >>> [p.replace(KEY_SEPARATOR, "|") for p in params]
    ['04|1', '05|2']
    """
    s = schema_of(layer)
    known = set(stored_columns(s))
    clauses: list[str] = []
    params: list[Any] = []

    def kind_of(col: str) -> str:
        if col not in known:
            raise store_error("bad_filter_column", layer=layer, column=col,
                              known=", ".join(sorted(known)))
        return column_kind(s, col)

    for col, val in (where or {}).items():
        if isinstance(col, tuple):
            clauses.append(_row_values(col, val, kind_of, placeholder, datetime_param, params))
            continue
        kind = kind_of(col)
        q = quote_ident(col)
        if isinstance(val, list | tuple | set | frozenset | np.ndarray | pd.Series | pd.Index):
            vals = [scalar_param(v, kind, datetime_param) for v in val]
            present = [v for v in vals if v is not None and not _never_stored(v)]
            parts = []
            if present:
                parts.append(f"{q} IN ({', '.join([placeholder] * len(present))})")
                params.extend(present)
            if any(v is None for v in vals):
                parts.append(f"{q} IS NULL")
            clauses.append("(" + " OR ".join(parts) + ")" if parts else "1 = 0")
        else:
            v = scalar_param(val, kind, datetime_param)
            if v is None:
                clauses.append(f"{q} IS NULL")
            elif _never_stored(v):
                clauses.append("1 = 0")
            else:
                clauses.append(f"{q} = {placeholder}")
                params.append(v)
    for col, rng in (between or {}).items():
        kind = kind_of(col)
        try:
            lo, hi = rng
        except (TypeError, ValueError):
            raise store_error("bad_between", layer=layer, column=col) from None
        q = quote_ident(col)
        for bound, op in ((lo, ">="), (hi, "<")):
            v = scalar_param(bound, kind, datetime_param)
            if v is not None:
                clauses.append(f"{q} {op} {placeholder}")
                params.append(v)
    return " AND ".join(clauses), params


#: Joins the values of a compound :func:`compile_filters` key into one text (a control
#: character: :func:`refuse_control_chars` keeps it out of every stored text).
KEY_SEPARATOR = "\x1f"


def _row_values(cols: tuple[str, ...], rows: Any, kind_of: Callable[[str], str],
                placeholder: str, datetime_param: Callable[[pd.Timestamp], Any],
                params: list[Any]) -> str:
    """The condition of a compound :func:`compile_filters` key: the columns' text joined by
    :data:`KEY_SEPARATOR` ``IN`` the wanted tuples joined likewise.

    One text per row rather than SQL row values: PostgreSQL hashes a long ``IN`` list of one
    expression (a row-value ``IN (VALUES ...)`` became a nested loop of every row against
    every tuple when the statistics lagged behind a fast-growing table: a batch's search took
    184 ms with 12,000 open cases, against about 11 ms now, ``benchmarks/duplicates.py``) and SQLite builds an index for it. Text and integer
    columns only, whose text is the same on both engines.
    """
    kinds = [kind_of(c) for c in cols]
    bad = [c for c, k in zip(cols, kinds, strict=True) if k not in ("str", "code", "int")]
    if bad:
        raise TypeError(f"a compound filter takes text or integer columns, not {bad}")
    wanted: set[str] = set()
    for row in rows:
        if len(row) != len(cols):
            raise TypeError(f"{len(cols)} values expected for {cols}, got {row!r}")
        vals = [scalar_param(v, k, datetime_param) for v, k in zip(row, kinds, strict=True)]
        if None not in vals:  # NULL equals nothing
            wanted.add(KEY_SEPARATOR.join(str(v) for v in vals))
    if not wanted:
        return "1 = 0"
    params.extend(sorted(wanted))
    sep = "'" + KEY_SEPARATOR + "'"
    expr = f" || {sep} || ".join(f"CAST({quote_ident(c)} AS TEXT)" for c in cols)
    return f"({expr}) IN ({', '.join([placeholder] * len(wanted))})"


def check_columns(layer: str, columns: Iterable[str] | None) -> list[str]:
    """The attribute columns to read (all when ``None``); unknown names raise."""
    s = schema_of(layer)
    stored = stored_columns(s)
    if columns is None:
        return stored
    cols = [c for c in columns if c not in ("geometry", GEOM_COL)]
    bad = [c for c in cols if c not in stored]
    if bad:
        raise store_error("bad_filter_column", layer=layer, column=", ".join(bad),
                          known=", ".join(stored))
    return cols


def check_order(layer: str, order_by: str | None) -> None:
    """``order_by`` must be a stored column."""
    if order_by is not None:
        check_columns(layer, [order_by])


def check_h3_res(layer: str, res: int) -> str:
    """The ``h3_<res>`` column of a point layer, or a :class:`StoreError`."""
    s = schema_of(layer)
    col = f"h3_{res}"
    if col not in s.h3_columns:
        raise store_error("no_h3", layer=layer, res=res,
                          available=", ".join(map(str, H3_RESOLUTIONS)) if s.h3_columns else "-")
    return col


def h3_frame(rows: Sequence[Sequence[Any]], layer: str, by: Sequence[str]) -> pd.DataFrame:
    """Rows of ``(cell, *by, count)`` as a frame with int64 ``cell``/``count`` and schema dtypes."""
    df = pd.DataFrame(list(rows), columns=["cell", *by, "count"])
    df["cell"] = df["cell"].astype("int64")
    df["count"] = df["count"].astype("int64")
    s = SCHEMAS[layer]
    for c in by:
        if c in s.columns:
            df[c] = coerce_column(df[c], s.field(c).dtype)
    return df


# -- indexes --------------------------------------------------------------------------------------

#: Attribute indexes the dashboard's filters need, beyond the key and the H3 columns; a tuple
#: is one index on several columns. A person's drill-down reads one worker's day of fixes
#: (``worker_id = ? AND time`` in a window) and one case's events in time order: an index on
#: ``(worker_id, time)`` reaches exactly those rows whatever order the table is in (on fixes
#: appended in arrival order 5x faster than the index on ``worker_id`` alone, the same on the
#: demo's worker-ordered table), and it serves every ``worker_id`` filter the old index did
#: (``docs/read_path.md``).
EXTRA_INDEXES: dict[str, tuple[str | tuple[str, ...], ...]] = {
    "incidents": ("requested_datetime", "stage", "grid_code"),
    "incident_events": (("service_request_id", "time"),),
    "patrol_points": (("worker_id", "time"), "time"),
    "buildings": ("grid_code",),
    "grids": ("community_code",),
    "workers": ("grid_code",),
}


def index_plan(layer: str) -> list[tuple[str, tuple[str, ...], bool]]:
    """``(index name, columns, unique)`` for a layer: a unique key, each ``h3_<res>``, extras.

    The H3 indexes make ``GROUP BY h3_<res>`` an index scan: on a million GeoPackage rows
    ~0.1-0.3 s with the index against ~5 s with a sort (measured), for ~0.5 s per index and
    million rows on every replace. An index on several columns is named after all of them
    (``patrol_points_worker_id_time``).

    Examples
    --------
    >>> [cols for _, cols, _ in index_plan("incident_events")]
    [('event_id',), ('service_request_id', 'time')]
    """
    s = SCHEMAS[layer]
    plan = [(f"{layer}_key", (s.key,), True)]
    plan += [(f"{layer}_{c}", (c,), False) for c in s.h3_columns]
    for extra in EXTRA_INDEXES.get(layer, ()):
        cols = extra if isinstance(extra, tuple) else (extra,)
        plan.append((f"{layer}_{'_'.join(cols)}", cols, False))
    return plan


# -- audit and versions --------------------------------------------------------------------------

#: Audit action of a ``write(..., reset=True)``: one row, layer ``*``, the rows it removed.
RESET_ACTION = "reset"
RESET_LAYER = "*"


def conflict_error(layer: str, keys: Sequence[Any]) -> ConcurrentChangeError:
    """The refusal of a compare-and-set update whose rows changed meanwhile (``cas.conflict``)."""
    shown = ", ".join(map(str, list(keys)[:10]))
    return ConcurrentChangeError("cas.conflict", layer=layer, keys=shown)

def reset_audit_row(rows_removed: int, *, actor: str, note: str) -> dict[str, Any]:
    """The ``audit_log`` row of a reset: every layer's rows were removed (layer ``*``)."""
    return audit_row(RESET_ACTION, RESET_LAYER, rows_removed, actor=actor, note=note)

def audit_row(action: str, layer: str, rows: int, *, actor: str, note: str,
              time: pd.Timestamp | None = None) -> dict[str, Any]:
    """One ``audit_log`` row: ``time, actor, action, layer, rows, note``."""
    return {"time": time if time is not None else now_local(),
            "actor": CONTROL_CHARS.sub("", str(actor)), "action": action, "layer": layer,
            "rows": int(rows), "note": CONTROL_CHARS.sub("", str(note or ""))}


def audit_frame(rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    """Audit rows from an engine as a typed frame."""
    df = pd.DataFrame(list(rows), columns=list(AUDIT_COLUMNS))
    df["time"] = to_local_naive(df["time"]) if len(df) else df["time"].astype("datetime64[us]")
    for c in ("actor", "action", "layer", "note"):
        df[c] = df[c].astype("str")
    df["rows"] = df["rows"].astype("int64")
    return df


def versions_frame(rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    """Version rows from an engine as a typed frame."""
    df = pd.DataFrame(list(rows), columns=list(VERSION_COLUMNS))
    df["version"] = df["version"].astype("int64")
    df["time"] = to_local_naive(df["time"]) if len(df) else df["time"].astype("datetime64[us]")
    df["actor"] = df["actor"].astype("str")
    df["note"] = df["note"].astype("str")
    df["rows"] = df["rows"].astype("int64")
    df["current"] = df["current"].astype(bool)
    df["source_version"] = pd.to_numeric(df["source_version"]).astype("Int64")
    return df

def snapshot_bytes(df: pd.DataFrame) -> bytes:
    """A prepared frame as Parquet bytes (geometry as a WKB column): the stored form of a version."""
    plain = pd.DataFrame(df.drop(columns="geometry")) if "geometry" in df.columns else df
    if "geometry" in df.columns:
        plain = plain.assign(geometry=shapely.to_wkb(np.asarray(df.geometry.values)))
    buf = io.BytesIO()
    plain.to_parquet(buf, index=False)
    return buf.getvalue()


def snapshot_frame(blob: bytes, layer: str) -> pd.DataFrame:
    """A snapshot back as a frame with the read dtypes."""
    df = pd.read_parquet(io.BytesIO(bytes(blob)))
    if SCHEMAS[layer].geometry is not None:
        geoms = shapely.from_wkb(df.pop("geometry").to_numpy(dtype=object))
        df = gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geoms, crs=4326), crs=4326)
    return conform(df, layer)

def version_note(version: int, note: str) -> str:
    """The audit note of a version: ``v3: <note>``."""
    return f"v{version}: {note}" if note else f"v{version}"
