"""Validation at the door: every problem of a layer at once, with row, column and fix.

:func:`validate` checks one layer (columns, types, codes, allowed values, ids, CRS,
geometry, coordinate order, datum) and, when ``reference`` layers from the store are
given, its links to them (parent codes, nesting, tiling, distance from the district).
:func:`validate_layers` checks a whole set (e.g. a demo district) the same way.

Issues carry catalogue keys (``layers/messages/validation.toml``), never text, so a
report renders in Chinese or English. Row numbers are what the user sees: the 0-based
position plus ``row_offset`` (2 for a spreadsheet with one header row: the first data row
is row 2). Per rule and column at most 50 rows are listed, then a ``validation.more_rows``
summary with the count. Values of personal fields are masked in messages.

Severities: ``error`` blocks the import; ``warning`` does not; ``fixed`` records a safe
repair already applied to :attr:`ValidationResult.data` (reprojection, datum conversion,
geometry repair, swapped coordinates, numbers turned back into codes); ``info`` is a note.

Examples
--------
>>> import pandas as pd
>>> df = pd.DataFrame({"code": [320106, "3201O6"], "name": ["鼓楼区", "x"]})
>>> res = validate(df, "districts", file="districts.csv")
>>> res.ok
False
>>> [(i.code, i.row, i.column) for i in res.report if i.severity == "error"][:2]
[('validation.code_not_digits', 3, 'code'), ('validation.missing_geometry', None, None)]
>>> res.data["code"].tolist()[:1]
['320106']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.crs import DATUMS
from layers import _validate_geo as vg
from layers import _validate_values as vv
from layers._validate_core import Ctx, header, shown
from layers.errors import LayerValidationError
from layers.report import Report
from layers.schema import HIERARCHY, SCHEMAS, Field, LayerSchema

__all__ = [
    "AREA_TOL_M2", "FAR_OUTSIDE_M", "OTHER_CITY_KM", "POINT_TOL_M", "ValidationResult", "validate", "validate_layers",
]

#: Overlaps, gaps and parts outside a parent smaller than this (m²) are ignored (digitising slivers).
AREA_TOL_M2: float = 10.0
#: Features farther than this (m) outside the reference district are errors.
FAR_OUTSIDE_M: float = 5000.0
#: Without any area layer, a point this far (km) from the median of the others is reported.
OTHER_CITY_KM: float = 50.0
#: A point (building, incident) may lie this far (m) outside the polygon it names before a warning.
POINT_TOL_M: float = 50.0

_PHONE_FIELDS = {"phone", "reporter_phone"}
_ID_FIELDS = {"id_number"}
_POLYGON_LAYERS = {n for n, s in SCHEMAS.items() if s.geometry == "Polygon"}


@dataclass
class ValidationResult:
    """What :func:`validate` returns.

    Attributes
    ----------
    data
        The cleaned layer on the input's index: canonical columns in schema order with
        schema dtypes (codes as strings of digits, ``Int64``, ``float64``, ``boolean``,
        ``datetime64``), geometry in EPSG:4326 (WGS-84) with safe repairs applied. Rows with
        errors are kept (cells that could not be read are missing) so a report can show them;
        when the CRS is unknown (an error) the geometries are left as read.
    report
        Every issue found.
    lang
        Language asked for (``None``: the environment's); used by :meth:`render`.
    """

    data: gpd.GeoDataFrame | pd.DataFrame
    report: Report
    lang: str | None = None

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings and repairs allowed)."""
        return self.report.ok

    def render(self, *, limit: int | None = None) -> str:
        """The report as plain text in :attr:`lang`."""
        return self.report.render(self.lang, limit=limit)

    def raise_for_errors(self) -> None:
        """Raise :class:`~layers.errors.LayerValidationError` if there is any error."""
        if not self.ok:
            raise LayerValidationError(self.report)


@dataclass
class _State:
    ctx: Ctx
    schema: LayerSchema
    frame: pd.DataFrame
    geoms: np.ndarray | None = None
    raw: np.ndarray | None = None
    usable: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    datum: str = "wgs84"


def validate(
    data: pd.DataFrame,
    layer: str,
    *,
    file: str | None = None,
    row_offset: int = 2,
    datum: Literal["wgs84", "gcj02", "bd09"] = "wgs84",
    reference: Mapping[str, pd.DataFrame] | None = None,
    lang: str | None = None,
) -> ValidationResult:
    """Check one layer and return it cleaned, with every problem found.

    Parameters
    ----------
    data
        The layer as read by ``layers.io.read_file`` (canonical headers, the file's CRS or
        none) or built in code: a GeoDataFrame, or a DataFrame with a ``geometry`` column of
        shapely objects or with longitude/latitude columns (``lon``/``lat``, ``经度``/``纬度``...).
        Never modified.
    layer
        Canonical layer name (a key of :data:`layers.schema.SCHEMAS`).
    file
        File name shown in the report.
    row_offset
        Row number of the first data row as the user sees it (2 for a spreadsheet with a
        header row, 1 for features of a GeoJSON).
    datum
        Datum of longitude/latitude input: ``wgs84`` (also CGCS2000/Tianditu), ``gcj02``
        (AMap, Tencent) or ``bd09`` (Baidu); GCJ-02/BD-09 are converted to WGS-84.
    reference
        Layers already in the store, by name (e.g. ``communities`` when validating
        ``grids``, ``districts`` for the distance check); used when present.
    lang
        Language of :meth:`ValidationResult.render` (the report itself stores keys).

    Returns
    -------
    ValidationResult

    Raises
    ------
    ValueError
        For an unknown ``layer`` or ``datum`` (programming errors, not data problems).
    TypeError
        When ``data`` is not a DataFrame.
    """
    state = _validate_one(data, layer, file=file, row_offset=row_offset, datum=datum)
    lookup = {name: _prepare_reference(name, df) for name, df in (reference or {}).items()
              if name in SCHEMAS and name != layer}
    _cross_checks(state, lookup, full_set=False, area_tol_m2=AREA_TOL_M2)
    return ValidationResult(state.frame, state.ctx.report, lang)


def validate_layers(
    layers: Mapping[str, pd.DataFrame],
    *,
    reference: Mapping[str, pd.DataFrame] | None = None,
    cross_only: bool = False,
    area_tol_m2: float = AREA_TOL_M2,
) -> Report:
    """Validate a whole set of layers together (e.g. a demo district).

    Each layer is validated as by :func:`validate`, then checked against the others
    (and ``reference`` for layers not in the set): parent codes exist, comprehensive grids
    tile their community (likewise communities their sub-district, sub-districts their
    district), children stay inside their parent, parents without any child are reported,
    points lie in the grid they name, and nothing is far outside the district.

    Parameters
    ----------
    layers
        Layers by canonical name. ``df.attrs["file"]`` and ``df.attrs["row_offset"]`` are
        used for the report when present.
    reference
        Store layers for links to layers not in ``layers``.
    cross_only
        Report only the cross-layer issues (the per-layer ones are assumed already reported).
    area_tol_m2
        Overlap/gap/outside area ignored as a sliver.
    """
    unknown = sorted(set(layers) - set(SCHEMAS))
    if unknown:
        raise ValueError(f"unknown layer(s) {unknown}; use names from layers.schema.SCHEMAS")
    report = Report()
    states: dict[str, _State] = {}
    for name, df in layers.items():
        st = _validate_one(df, name, file=df.attrs.get("file"),
                           row_offset=int(df.attrs.get("row_offset", 2)), datum="wgs84")
        if not cross_only:
            report.extend(st.ctx.report)
        st.ctx.report = report if cross_only else Report()
        states[name] = st
    lookup = {name: _prepare_reference(name, df) for name, df in (reference or {}).items()
              if name in SCHEMAS and name not in layers}
    lookup.update({name: st.frame for name, st in states.items()})
    for name, st in states.items():
        _cross_checks(st, {k: v for k, v in lookup.items() if k != name}, full_set=True,
                      area_tol_m2=area_tol_m2)
        if not cross_only:
            report.extend(st.ctx.report)
    return report


# --------------------------------------------------------------------------- one layer


def _validate_one(data: pd.DataFrame, layer: str, *, file: str | None, row_offset: int,
                  datum: str) -> _State:
    if layer not in SCHEMAS:
        raise ValueError(f"unknown layer {layer!r}; use one of {', '.join(SCHEMAS)}")
    if datum not in DATUMS:
        raise ValueError(f"unknown datum {datum!r}; use one of {', '.join(DATUMS)}")
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a (Geo)DataFrame, not {type(data).__name__}")
    schema = SCHEMAS[layer]
    ctx = Ctx(Report(), layer, file, int(row_offset))
    data = _canonical_headers(data, schema)
    geoms, crs, used = (vg.extract_geometry(ctx, data, schema) if schema.geometry
                        else (None, None, set()))

    cols: dict[str, pd.Series] = {}
    for f in schema.fields:
        if f.name not in data.columns:
            if f.required:
                ctx.add("error", "validation.missing_column", column=f.name, header=header(f),
                        aliases=" / ".join((f.name, *f.aliases)))
            cols[f.name] = _empty(f, data.index)
            continue
        raw = vv.blank_to_na(data[f.name], keep=f.allowed or ())
        if isinstance(raw, pd.DataFrame):  # two columns renamed to the same name
            raw = raw.iloc[:, 0]
        cols[f.name] = _coerce(ctx, f, raw)
        if not f.nullable:
            empty = np.flatnonzero(raw.isna().to_numpy())
            if len(empty):
                ctx.per_row("error", "validation.empty_value", empty, column=f.name,
                            params={"header": header(f)})
    extra = [str(c) for c in data.columns if c not in cols and c not in used
             and not str(c).startswith("h3_") and str(c) != "geometry"]
    if extra:
        ctx.add("info", "validation.unknown_columns", columns=", ".join(extra[:20]))
    _check_key(ctx, schema, cols[schema.key])
    _check_within_row(ctx, schema, cols)

    state = _State(ctx, schema, pd.DataFrame(cols, index=data.index), datum=datum)
    if schema.geometry:
        _check_geometry(state, geoms, crs, datum)
    return state


def _canonical_headers(data: pd.DataFrame, schema: LayerSchema) -> pd.DataFrame:
    """Rename recognised headers (aliases) to canonical names, on a shallow copy."""
    amap = schema.alias_map()
    present = {str(c) for c in data.columns}
    rename: dict[Any, str] = {}
    for c in data.columns:
        canon = amap.get(str(c).strip().lower())
        if canon and str(c) != canon and canon not in present and canon not in rename.values():
            rename[c] = canon
    return data.rename(columns=rename) if rename else data


def _empty(f: Field, index: pd.Index) -> pd.Series:
    dtype = {"code": "str", "str": "str", "int": "Int64", "float": "float64",
             "bool": "boolean", "datetime": "datetime64[us]"}[f.dtype]
    return pd.Series(index=index, dtype=dtype)


def _coerce(ctx: Ctx, f: Field, s: pd.Series) -> pd.Series:
    if f.dtype == "code":
        return vv.coerce_code(ctx, f, s)
    if f.dtype in ("int", "float"):
        return vv.coerce_number(ctx, f, s)
    if f.dtype == "bool":
        return vv.coerce_bool(ctx, f, s)
    if f.dtype == "datetime":
        return vv.coerce_datetime(ctx, f, s)
    out = vv.coerce_str(ctx, f, s)
    if f.name in _PHONE_FIELDS:
        vv.check_phone(ctx, f, out)
    if f.name in _ID_FIELDS:
        vv.check_id_number(ctx, f, out)
    return out


def _check_key(ctx: Ctx, schema: LayerSchema, key: pd.Series) -> None:
    dup = key.notna() & key.duplicated(keep="first")
    if not dup.any():
        return
    f = schema.field(schema.key)
    vals = key.to_numpy(dtype=object)
    firsts = pd.Series(np.arange(len(key)), index=key.index).groupby(key.to_numpy(), dropna=True).min()
    ctx.per_row("error", "validation.duplicate_id", np.flatnonzero(dup.to_numpy()), column=f.name,
                params=lambda p: {"value": shown(vals[p], f), "first_row": ctx.row(int(firsts[vals[p]])),
                                  "header": header(f)})


def _check_within_row(ctx: Ctx, schema: LayerSchema, cols: dict[str, pd.Series]) -> None:
    for child, col, _parent in HIERARCHY:
        if child != schema.name:
            continue
        code, parent = cols["code"], cols[col]
        width = schema.field(col).digits or 0
        both = code.notna() & parent.notna()
        bad = np.flatnonzero((both & (code.str.slice(0, width) != parent)).to_numpy())
        if len(bad):
            cv, pv = code.to_numpy(dtype=object), parent.to_numpy(dtype=object)
            ctx.per_row("warning", "validation.code_prefix", bad, column="code",
                        params=lambda p, cv=cv, pv=pv, col=col: {
                            "value": cv[p], "parent": pv[p], "parent_column": col})
    if schema.name == "incidents":
        item, cat = cols["item_code"], cols["category_code"]
        bad = np.flatnonzero((item.notna() & cat.notna() & (item.str.slice(0, 2) != cat)).to_numpy())
        if len(bad):
            iv, cv = item.to_numpy(dtype=object), cat.to_numpy(dtype=object)
            ctx.per_row("error", "validation.item_category_mismatch", bad, column="item_code",
                        params=lambda p: {"value": iv[p], "category": cv[p]})


def _check_geometry(state: _State, geoms: np.ndarray | None, crs: Any, datum: str) -> None:
    ctx, schema = state.ctx, state.schema
    n = len(state.frame)
    kind = str(schema.geometry)
    if geoms is None:
        ctx.add("error", "validation.missing_geometry", expected=kind.replace("|", " / "))
        geoms = np.full(n, None, dtype=object)
        usable = np.zeros(n, dtype=bool)
        raw = geoms
    else:
        present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        if (~present).any():
            ctx.per_row("error", "validation.empty_geometry", np.flatnonzero(~present), column="geometry")
        geoms, crs_ok = vg.fix_crs(ctx, geoms, crs, present)
        usable = present.copy() if crs_ok else np.zeros(n, dtype=bool)
        if crs_ok:
            geoms, badtype = vg.check_types(ctx, geoms, kind, present)
            usable &= ~badtype
            geoms, invalid = vg.repair(ctx, geoms, kind, usable)
            usable &= ~invalid
            geoms, outside = vg.fix_order(ctx, geoms, usable)
            usable &= ~outside
        raw = geoms
        geoms = vg.to_wgs84(ctx, geoms, datum, usable)  # type: ignore[arg-type]
    state.geoms, state.raw, state.usable = geoms, raw, usable
    state.frame = gpd.GeoDataFrame(state.frame, geometry=gpd.GeoSeries(geoms, index=state.frame.index),
                                   crs=4326)


# --------------------------------------------------------------------------- cross-layer


def _prepare_reference(name: str, df: pd.DataFrame) -> pd.DataFrame:
    """A store layer in canonical form for lookups (codes as digit strings, EPSG:4326); no report."""
    schema = SCHEMAS[name]
    quiet = Ctx(Report(), name, None, 0, cap=0)
    df = _canonical_headers(df, schema)
    cols: dict[str, pd.Series] = {}
    for f in schema.fields:
        if f.name not in df.columns or (f.dtype not in ("code", "str")):
            continue
        s = vv.blank_to_na(df[f.name], keep=f.allowed or ())
        if f.dtype == "code":
            cols[f.name] = s if _is_clean_code(s, f) else vv.coerce_code(quiet, f, s)
        elif f.name in (schema.key, "kind") or f.ref:
            cols[f.name] = vv.coerce_str(quiet, f, s)
    out = pd.DataFrame(cols, index=df.index)
    if schema.geometry and isinstance(df, gpd.GeoDataFrame) and df._geometry_column_name in df.columns:
        g = df.geometry
        if g.crs is not None and not g.crs.equals(vg.WGS84):
            g = g.to_crs(4326)
        out = gpd.GeoDataFrame(out, geometry=gpd.GeoSeries(np.asarray(g.values, dtype=object),
                                                           index=df.index), crs=4326)
    return out


def _is_clean_code(s: pd.Series, f: Field) -> bool:
    if not pd.api.types.is_string_dtype(s) or pd.api.types.is_object_dtype(s):
        return False
    return bool(s.dropna().str.fullmatch(rf"\d{{{f.digits}}}").all())


def _parent_geoms(codes: pd.Series, parent: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Parent geometry aligned to ``codes`` and a mask of rows that have one."""
    pg = pd.Series(np.asarray(parent.geometry.values, dtype=object), index=parent["code"].to_numpy())
    pg = pg[pd.notna(pg.index) & ~pg.index.duplicated()]
    aligned = pg.reindex(codes.to_numpy()).to_numpy(dtype=object, copy=True)
    aligned[pd.isna(aligned)] = None
    has = ~(shapely.is_missing(aligned) | shapely.is_empty(aligned))
    return aligned, has


def _has_geometry(df: pd.DataFrame | None) -> bool:
    return isinstance(df, gpd.GeoDataFrame) and df._geometry_column_name in df.columns


def _cross_checks(state: _State, lookup: Mapping[str, pd.DataFrame], *, full_set: bool,
                  area_tol_m2: float) -> None:
    ctx, schema, frame = state.ctx, state.schema, state.frame
    # parent codes and foreign keys exist
    for f in schema.fields:
        if not f.ref or f.ref[0] not in lookup or f.ref[1] not in lookup[f.ref[0]].columns:
            continue
        target, col = f.ref
        known = pd.Index(lookup[target][col].dropna().unique())
        s = frame[f.name]
        bad = np.flatnonzero((s.notna() & ~s.isin(known)).to_numpy())
        if len(bad):
            vals = s.to_numpy(dtype=object)
            ctx.per_row("error", "validation.unknown_parent", bad, column=f.name,
                        params=lambda p, f=f, target=target, vals=vals: {
                            "value": shown(vals[p], f), "parent_layer": target, "header": header(f)})
    if not schema.geometry or state.geoms is None or not state.usable.any():
        return
    geoms, usable = state.geoms, state.usable
    # far outside the district
    if schema.name != "districts" and _has_geometry(lookup.get("districts")):
        vg.check_far_outside(ctx, geoms, usable,
                             np.asarray(lookup["districts"].geometry.values, dtype=object),
                             distance_m=FAR_OUTSIDE_M)
    elif schema.geometry == "Point":  # no district: the finer units, else the points themselves
        area = next((n for n in ("subdistricts", "communities", "grids") if _has_geometry(lookup.get(n))), None)
        if area is not None:
            vg.check_far_outside(ctx, geoms, usable, np.asarray(lookup[area].geometry.values, dtype=object),
                                 distance_m=FAR_OUTSIDE_M)
        else:
            vg.check_other_city(ctx, geoms, usable, distance_km=OTHER_CITY_KM)
    # nesting and tiling of the administrative ladder
    codes = frame[schema.key].to_numpy(dtype=object)
    for child, col, parent in HIERARCHY:
        if child != schema.name:
            continue
        tile = (frame["kind"] == "comprehensive").fillna(False).to_numpy(dtype=bool) \
            if child == "grids" else np.ones(len(frame), dtype=bool)
        if _has_geometry(lookup.get(parent)):
            vg.check_nesting(ctx, geoms, usable, frame[col].to_numpy(dtype=object), codes, tile,
                             lookup[parent], parent_layer=parent, column=col,
                             area_tol_m2=area_tol_m2, report_uncovered=full_set,
                             gap_severity="error" if child == "grids" else "warning")
        elif (tile & usable).sum() > 1:
            crs = vg.metric_crs_for(geoms[usable])
            gm = np.full(len(geoms), None, dtype=object)
            gm[usable] = vg._metric(geoms[usable], crs)
            vg.check_overlaps(ctx, gm, tile & usable, codes, crs, area_tol_m2=area_tol_m2)
    # points in the polygon they name; datum suspicion against the parent polygons
    for f in schema.fields:
        if not f.ref or f.ref[0] not in _POLYGON_LAYERS or not _has_geometry(lookup.get(f.ref[0])):
            continue
        parent = lookup[f.ref[0]]
        if "code" not in parent.columns:
            continue
        aligned, has = _parent_geoms(frame[f.name], parent)
        pair = usable & has
        if schema.geometry in ("Point", "Point|Polygon"):
            vg.check_points_in_parent(ctx, geoms, aligned, pair, column=f.name,
                                      codes=frame[f.name].to_numpy(dtype=object),
                                      tolerance_m=POINT_TOL_M)
        if state.raw is not None:
            vg.detect_datum(ctx, state.raw, aligned, pair, state.datum)
        break
