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
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from geo.domain import LOCAL_TZ  # local time zone of stored (naive) datetimes
from geo.hexes import lonlat_to_cells
from layers._io_guard import CONTROL_CHARS
from layers.errors import ConcurrentChangeError, StoreError
from layers.i18n import t
from layers.schema import H3_RESOLUTIONS, SCHEMAS, Field, LayerSchema
from layers.store import RowUpdate

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


# -- errors ---------------------------------------------------------------------------------


def store_error(key: str, **params: Any) -> StoreError:
    """A :class:`StoreError` whose text comes from the catalogue (``store.<key>``).

    The exception carries ``key`` and ``params`` so a caller can render it in the
    user's language: ``t(err.key, lang, **err.params)``.
    """
    full = f"store.{key}"
    err = StoreError(t(full, "en", **params))
    err.key = full  # type: ignore[attr-defined]
    err.params = params  # type: ignore[attr-defined]
    return err


def error_text(err: BaseException, lang: str | None) -> str:
    """Render a store error in ``lang`` (falls back to ``str(err)``)."""
    key = getattr(err, "key", None)
    if key:
        return t(key, lang, **getattr(err, "params", {}))
    return str(err)


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
    cols: dict[str, pd.Series] = {}
    for f in s.fields:
        if f.name in data.columns:
            src = data[f.name].reset_index(drop=True)
        else:
            src = pd.Series([None] * n, dtype=object)
        try:
            cols[f.name] = coerce_column(src, f.dtype)
        except (ValueError, TypeError) as exc:
            raise store_error("bad_column", layer=layer, column=f.name, error=str(exc)) from exc
    refuse_control_chars(cols, layer)
    if s.geometry is None:
        return pd.DataFrame(cols)
    if not is_geo:
        raise store_error("no_geometry", layer=layer)
    if data.crs is None:
        raise store_error("no_crs", layer=layer)
    geoms = data.geometry
    if not data.crs.equals(4326) and data.crs.to_epsg() != 4326:
        geoms = geoms.to_crs(4326)
    garr = np.asarray(geoms.values, dtype=object)
    for col, cells in h3_columns(garr, s).items():
        cols[col] = pd.Series(cells, dtype="int64")
    return gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries(garr, crs=4326), crs=4326)


def refuse_control_chars(columns: Mapping[str, pd.Series], layer: str) -> None:
    """Refuse text holding NUL or another C0 control character (tab, LF, CR allowed).

    A NUL cuts GDAL's SQL and PostgreSQL refuses it, so such text would break reads of the
    whole layer; :func:`layers.io.read_file` removes these characters from files already,
    so only a caller building frames by hand meets this.
    """
    for name, values in columns.items():
        if not (pd.api.types.is_string_dtype(values.dtype) or values.dtype == object):
            continue
        if values.dtype == object:
            values = values.map(lambda v: v if isinstance(v, str) else None).astype("str")
        hit = values.str.contains(CONTROL_CHARS.pattern, regex=True, na=False).to_numpy(bool)
        if hit.any():
            rows = np.flatnonzero(hit)
            params = {"layer": layer, "column": name, "count": len(rows),
                      "rows": ", ".join(map(str, rows[:5]))}
            err = StoreError(t("readers.store_control_chars", "en", **params))
            err.key = "readers.store_control_chars"  # type: ignore[attr-defined]
            err.params = params  # type: ignore[attr-defined]
            raise err


# -- H3 --------------------------------------------------------------------------------------

_RES_SHIFT = 52
_RES_MASK = np.int64(0xF) << _RES_SHIFT


def cells_to_parents(cells: NDArray[np.int64], res: int) -> NDArray[np.int64]:
    """Parents at ``res`` of int64 H3 cells of a finer resolution, by bit arithmetic.

    An H3 index keeps its resolution in bits 52-55 and one 3-bit digit per resolution
    below that; the parent sets the resolution and fills the finer digits with 7.
    ``0`` (no cell) stays ``0``.
    """
    cells = np.asarray(cells, dtype=np.int64)
    fill = np.int64((1 << (3 * (15 - res))) - 1)
    out = (cells & ~_RES_MASK) | (np.int64(res) << _RES_SHIFT) | fill
    return np.where(cells == 0, np.int64(0), out)


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


def _scalar(v: Any, kind: str, datetime_param: Callable[[pd.Timestamp], Any]) -> Any:
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
    ``IS NULL``; ``between={"requested_datetime": (start, end)}`` is half-open
    ``start <= col < end`` (either end may be ``None``). Returns ``("", [])`` when there
    is nothing to filter.
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
        kind = kind_of(col)
        q = quote_ident(col)
        if isinstance(val, list | tuple | set | frozenset | np.ndarray | pd.Series | pd.Index):
            vals = [_scalar(v, kind, datetime_param) for v in val]
            present = [v for v in vals if v is not None]
            parts = []
            if present:
                parts.append(f"{q} IN ({', '.join([placeholder] * len(present))})")
                params.extend(present)
            if len(present) < len(vals):
                parts.append(f"{q} IS NULL")
            clauses.append("(" + " OR ".join(parts) + ")" if parts else "1 = 0")
        else:
            v = _scalar(val, kind, datetime_param)
            if v is None:
                clauses.append(f"{q} IS NULL")
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
            v = _scalar(bound, kind, datetime_param)
            if v is not None:
                clauses.append(f"{q} {op} {placeholder}")
                params.append(v)
    return " AND ".join(clauses), params


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

#: Attribute indexes the dashboard's filters need, beyond the key and the H3 columns.
EXTRA_INDEXES: dict[str, tuple[str, ...]] = {
    "incidents": ("requested_datetime", "stage", "grid_code"),
    "incident_events": ("service_request_id",),
    "patrol_points": ("worker_id", "time"),
    "buildings": ("grid_code",),
    "grids": ("community_code",),
    "workers": ("grid_code",),
}


def index_plan(layer: str) -> list[tuple[str, tuple[str, ...], bool]]:
    """``(index name, columns, unique)`` for a layer: a unique key, each ``h3_<res>``, extras.

    The H3 indexes make ``GROUP BY h3_<res>`` an index scan: on a million GeoPackage rows
    ~0.1-0.3 s with the index against ~5 s with a sort (measured), for ~0.5 s per index and
    million rows on every replace.
    """
    s = SCHEMAS[layer]
    plan = [(f"{layer}_key", (s.key,), True)]
    plan += [(f"{layer}_{c}", (c,), False) for c in s.h3_columns]
    plan += [(f"{layer}_{c}", (c,), False) for c in EXTRA_INDEXES.get(layer, ())]
    return plan


# -- writes: modes, updates, events -------------------------------------------------------------


#: Audit action of a ``write(..., reset=True)``: one row, layer ``*``, the rows it removed.
RESET_ACTION = "reset"
RESET_LAYER = "*"


def check_write(layers: Mapping[str, pd.DataFrame], mode: str, *,
                reset: bool = False) -> dict[str, pd.DataFrame]:
    """Validate the layer names and mode of a write, and prepare every frame up front.

    ``reset=True`` (drop every other layer in the same transaction) needs ``mode="replace"``.
    """
    if mode not in ("replace", "append") or (reset and mode != "replace"):
        raise store_error("bad_mode", mode=f"{mode} + reset" if reset else mode)
    if not layers:
        raise store_error("nothing_to_write")
    return {name: prepare_layer(df, name) for name, df in layers.items()}


def duplicate_keys(df: pd.DataFrame, layer: str) -> list[str]:
    """Key values that occur more than once in ``df`` (null keys are allowed to repeat)."""
    key = SCHEMAS[layer].key
    k = df[key].dropna()
    return sorted(map(str, k[k.duplicated()].unique()))[:10]


def check_no_duplicates(prepared: Mapping[str, pd.DataFrame]) -> None:
    """Refuse frames whose key column repeats a value."""
    for name, df in prepared.items():
        dups = duplicate_keys(df, name)
        if dups:
            raise store_error("duplicate_key", layer=name, column=SCHEMAS[name].key,
                              values=", ".join(dups))


@dataclass(frozen=True)
class PreparedUpdate:
    """A checked :class:`~layers.store.RowUpdate`: Python scalars, key values cast to the key type."""

    layer: str
    keys: list[Any]
    changes: dict[str, Any]
    expect: dict[str, Any]


def _update_value(layer: str, s: LayerSchema, col: str, val: Any, *, what: str) -> Any:
    if col == s.key or col not in s.columns:
        raise store_error("bad_update_column", layer=layer, column=col)
    f = s.field(col)
    v = _scalar(val, f.dtype, lambda ts: ts.to_pydatetime())
    if what == "changes":
        if v is None and not f.nullable:
            raise store_error("null_value", layer=layer, column=col)
        if v is not None and f.allowed is not None and str(v) not in f.allowed:
            raise store_error("bad_value", layer=layer, column=col, value=v,
                              allowed=", ".join(f.allowed))
        if isinstance(v, str):
            refuse_control_chars({col: pd.Series([v], dtype="str")}, layer)
    return v


def prepare_updates(updates: Sequence[RowUpdate]) -> list[PreparedUpdate]:
    """Check row updates against the schema; values are cast to Python scalars.

    An update with ``expect`` and no ``changes`` is a pure compare-and-set check: it "sets"
    its first expected column to the expected value, so the engine still locks and counts the
    rows that match.
    """
    out = []
    for u in updates:
        s = schema_of(u.layer)
        if s.append_only:
            raise store_error("append_only", layer=u.layer)
        expect = {col: _update_value(u.layer, s, col, val, what="expect")
                  for col, val in (u.expect or {}).items()}
        changes = {col: _update_value(u.layer, s, col, val, what="changes")
                   for col, val in u.changes.items()}
        if not changes and expect:
            col = next(iter(expect))
            changes = {col: expect[col]}
        if not changes:
            raise store_error("empty_update", layer=u.layer)
        keys = [str(k) if s.field(s.key).dtype in ("str", "code") else k for k in u.keys]
        if not keys:
            raise store_error("empty_update", layer=u.layer)
        out.append(PreparedUpdate(u.layer, keys, changes, expect))
    return out


def expect_clause(layer: str, expect: Mapping[str, Any], *, placeholder: str,
                  equal: Callable[[str, str, str], str]) -> tuple[str, list[Any]]:
    """The compare-and-set condition of an update: ``col1 <eq> ? AND col2 <eq> ? ...``.

    ``equal(quoted column, logical kind, placeholder)`` is the engine's null-safe equality
    (SQLite ``IS``, PostgreSQL ``IS NOT DISTINCT FROM``). Returns ``("", [])`` for no
    expectation.
    """
    s = schema_of(layer)
    parts = [equal(quote_ident(col), s.field(col).dtype, placeholder) for col in expect]
    return " AND ".join(parts), list(expect.values())


def conflict_error(layer: str, keys: Sequence[Any]) -> ConcurrentChangeError:
    """The refusal of a compare-and-set update whose rows changed meanwhile (``cas.conflict``)."""
    shown = ", ".join(map(str, list(keys)[:10]))
    return ConcurrentChangeError("cas.conflict", layer=layer, keys=shown)


class SharedApply:
    """:meth:`layers.store.Store.apply` for both engines, on top of their primitives.

    An engine provides, all working on the transaction object ``tx`` its
    ``_apply_transaction(events)`` context manager yields (one write transaction; for the
    GeoPackage the events are staged first and the store locked with ``BEGIN IMMEDIATE``):

    * ``_existing_keys(tx, layer, keys) -> set`` — which keys exist;
    * ``_update_rows(tx, layer, keys, changes, expect) -> int`` — ``UPDATE ... WHERE key IN
      keys AND <expect_clause>``, returning the number of rows it matched (PostgreSQL's row
      lock makes the second of two racing updates wait and then re-check the condition on
      the committed row, so the check and the write are one step);
    * ``_missing_event_refs(tx, events) -> list[str]`` and ``_append_events(tx, events)``;
    * ``_audit(tx, row)``.

    The rules — what is refused, the compare-and-set row count, the audit rows — live only
    here. Any exception leaves the transaction rolled back: nothing changes.
    """

    def apply(self, updates: Sequence[RowUpdate] = (), *, events: pd.DataFrame | None = None,
              actor: str = "system", note: str = "") -> int:
        """See :meth:`layers.store.Store.apply`."""
        plan = prepare_updates(updates)
        ev = prepare_events(events)
        if not plan and ev is None:
            return 0
        from layers import summaries

        total = 0
        eng: Any = self
        with eng._apply_transaction(ev) as tx:
            summaries.before_apply(eng, tx, plan)
            for u in plan:
                found = eng._existing_keys(tx, u.layer, u.keys)
                missing = [str(k) for k in u.keys if k not in found]
                if missing:
                    raise store_error("missing_keys", layer=u.layer, column=SCHEMAS[u.layer].key,
                                      values=", ".join(missing[:10]))
                n = eng._update_rows(tx, u.layer, u.keys, u.changes, u.expect)
                if u.expect and n != len(set(u.keys)):
                    raise conflict_error(u.layer, u.keys)
                total += n
                eng._audit(tx, audit_row("update", u.layer, len(u.keys), actor=actor, note=note))
            if ev is not None:
                refs = eng._missing_event_refs(tx, ev)
                if refs:
                    raise store_error("unknown_ref", layer=EVENTS, column="service_request_id",
                                      values=", ".join(refs[:10]))
                eng._append_events(tx, ev)
                eng._audit(tx, audit_row("append", EVENTS, len(ev), actor=actor, note=note))
        return total


def prepare_events(events: pd.DataFrame | None) -> pd.DataFrame | None:
    """Check and cast ``incident_events`` rows (allowed stages, no repeated ``event_id``)."""
    if events is None or len(events) == 0:
        return None
    ev = prepare_layer(events, EVENTS)
    s = SCHEMAS[EVENTS]
    for f in s.fields:
        if not f.nullable and ev[f.name].isna().any():
            raise store_error("null_value", layer=EVENTS, column=f.name)
        if f.allowed is not None:
            bad = ev[f.name].dropna()
            bad = bad[~bad.isin(f.allowed)]
            if len(bad):
                raise store_error("bad_value", layer=EVENTS, column=f.name, value=bad.iloc[0],
                                  allowed=", ".join(f.allowed))
    dups = duplicate_keys(ev, EVENTS)
    if dups:
        raise store_error("duplicate_key", layer=EVENTS, column=s.key, values=", ".join(dups))
    return ev


def check_append_only(name: str, mode: str, existing_rows: int, *, reset: bool = False) -> None:
    """An append-only layer can only be replaced while it is empty (or by a reset)."""
    if SCHEMAS[name].append_only and mode == "replace" and existing_rows > 0 and not reset:
        raise store_error("append_only", layer=name)


def reset_audit_row(rows_removed: int, *, actor: str, note: str) -> dict[str, Any]:
    """The ``audit_log`` row of a reset: every layer's rows were removed (layer ``*``)."""
    return audit_row(RESET_ACTION, RESET_LAYER, rows_removed, actor=actor, note=note)


# -- audit and versions --------------------------------------------------------------------------


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


def check_versionable(layer: str) -> LayerSchema:
    """Every non-append-only layer can be versioned."""
    s = schema_of(layer)
    if s.append_only:
        raise store_error("append_only", layer=layer)
    return s


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


class SharedVersions:
    """``save_version`` and ``rollback`` for both engines, on top of their ``_save``.

    An engine provides ``_save(layer, prepared, *, actor, note, action, source) -> int``
    (replace the live layer and insert the snapshot in one transaction) and ``read_version``.
    """

    def save_version(self, layer: str, data: pd.DataFrame, *, actor: str = "system",
                     note: str = "") -> int:
        """See :meth:`layers.store.Store.save_version`."""
        check_versionable(layer)
        df = prepare_layer(data, layer)
        check_no_duplicates({layer: df})
        return self._save(layer, df, actor=actor, note=note,  # type: ignore[attr-defined]
                          action="save_version", source=None)

    def rollback(self, layer: str, version: int, *, actor: str = "system", note: str = "") -> int:
        """See :meth:`layers.store.Store.rollback`."""
        check_versionable(layer)
        df = prepare_layer(self.read_version(layer, version), layer)  # type: ignore[attr-defined]
        return self._save(layer, df, actor=actor, note=note,  # type: ignore[attr-defined]
                          action="rollback", source=int(version))


def version_note(version: int, note: str) -> str:
    """The audit note of a version: ``v3: <note>``."""
    return f"v{version}: {note}" if note else f"v{version}"
