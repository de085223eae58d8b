"""Geometry checks of :mod:`layers.validate`: CRS, types, validity, order, datum, nesting.

Everything works on NumPy arrays of shapely geometries (vectorised); Python loops run
only over repaired rows, over parents (communities), or over the capped issue list.
Areas and distances are measured in the local UTM zone (:func:`geo.crs.local_metric_crs`).

Decisions
---------
* **No CRS**: assumed EPSG:4326 (warning) when at least half of the features lie in the
  China box (lon 73–136, lat 3–54) in either coordinate order; otherwise an error.
* **Swapped longitude/latitude**: the China box in lon/lat order and the same box in
  lat/lon order do not overlap (every longitude in China is above 73, every latitude below
  54), so a feature whose bounds fit the swapped box is never ambiguous: it is swapped
  (``fixed``, one row each) and a layer-level warning asks to check the source. A feature in
  neither box (e.g. 0,0 or a half-swapped polygon) is an error: there is no safe guess.
* **Invalid geometry**: repaired with ``shapely.make_valid(method="structure")`` and kept
  when the repair is non-empty and of the layer's type (polygonal parts only for polygon
  layers) → ``fixed`` with GEOS' reason; otherwise an error.

Private: use :func:`layers.validate.validate`.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from geo.crs import DATUMS, Datum, convert_geometries, local_metric_crs
from layers._validate_core import Ctx
from layers.report import Severity
from layers.schema import LAT_ALIASES, LON_ALIASES, LayerSchema

LON_RANGE: tuple[float, float] = (73.0, 136.0)
LAT_RANGE: tuple[float, float] = (3.0, 54.0)
#: Type ids accepted per schema geometry (shapely.get_type_id).
ACCEPTED: dict[str, frozenset[int]] = {
    "Polygon": frozenset({3, 6}),
    "Point": frozenset({0}),
    "LineString": frozenset({1, 5}),
    "Point|Polygon": frozenset({0, 3, 6}),
}
_TYPE_NAMES = ("Point", "LineString", "LinearRing", "Polygon", "MultiPoint",
               "MultiLineString", "MultiPolygon", "GeometryCollection")
WGS84 = CRS.from_epsg(4326)


def extract_geometry(
    ctx: Ctx, data: pd.DataFrame, schema: LayerSchema
) -> tuple[np.ndarray | None, Any, set[str]]:
    """The geometry array, its CRS and the columns it used (lon/lat columns of a table).

    Returns ``(None, None, used)`` when the layer has no geometry at all.
    """
    n = len(data)
    if isinstance(data, gpd.GeoDataFrame) and data._geometry_column_name in data.columns:
        name = data._geometry_column_name
        return np.asarray(data[name].values, dtype=object).copy(), data.crs, {name}
    if "geometry" in data.columns:
        vals = data["geometry"].to_numpy(dtype=object)
        if all(v is None or isinstance(v, shapely.Geometry) or (isinstance(v, float) and np.isnan(v))
               for v in vals[: min(n, 1000)]):
            geoms = np.array([v if isinstance(v, shapely.Geometry) else None for v in vals], dtype=object)
            return geoms, None, {"geometry"}
    lower = {str(c).strip().lower(): c for c in data.columns}
    lon_col = next((lower[a] for a in LON_ALIASES if a in lower), None)
    lat_col = next((lower[a] for a in LAT_ALIASES if a in lower), None)
    if lon_col is not None and lat_col is not None and schema.geometry in ("Point", "Point|Polygon"):
        xy = []
        for col, canon in ((lon_col, "lon"), (lat_col, "lat")):
            s = data[col]
            num = pd.to_numeric(
                s.map(lambda v: str(v).strip(), na_action="ignore") if not
                pd.api.types.is_numeric_dtype(s) else s, errors="coerce").astype("float64")
            bad = np.flatnonzero((s.notna() & num.isna()).to_numpy())
            raw = s.to_numpy(dtype=object)
            if len(bad):
                ctx.per_row("error", "validation.not_a_number", bad, column=str(col),
                            params=lambda p, raw=raw, canon=canon: {"value": str(raw[p])[:40],
                                                                    "header": canon})
            xy.append(num.to_numpy())
        x, y = xy
        ok = np.isfinite(x) & np.isfinite(y)
        geoms = np.full(n, None, dtype=object)
        geoms[ok] = shapely.points(x[ok], y[ok])
        return geoms, None, {lon_col, lat_col}
    return None, None, set()


def _bounds(geoms: np.ndarray) -> np.ndarray:
    return shapely.bounds(geoms)


def _in_box(b: np.ndarray, xr: tuple[float, float], yr: tuple[float, float]) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return (b[:, 0] >= xr[0]) & (b[:, 2] <= xr[1]) & (b[:, 1] >= yr[0]) & (b[:, 3] <= yr[1])


def fix_crs(ctx: Ctx, geoms: np.ndarray, crs: Any, present: np.ndarray) -> tuple[np.ndarray, bool]:
    """Bring ``geoms`` to EPSG:4326; returns ``(geoms, usable)``."""
    if not present.any():
        return geoms, True
    if crs is None:
        b = _bounds(geoms[present])
        china = _in_box(b, LON_RANGE, LAT_RANGE) | _in_box(b, LAT_RANGE, LON_RANGE)
        if china.mean() >= 0.5:
            ctx.add("warning", "validation.crs_assumed")
            return geoms, True
        x = float(np.nanmedian(b[:, 0]))
        y = float(np.nanmedian(b[:, 1]))
        ctx.add("error", "validation.crs_missing", x=f"{x:.6g}", y=f"{y:.6g}")
        return geoms, False
    src = CRS.from_user_input(crs)
    if src.equals(WGS84, ignore_axis_order=True):
        return geoms, True
    name = src.to_string() if src.to_epsg() is None else f"EPSG:{src.to_epsg()}"
    out = np.asarray(gpd.GeoSeries(geoms, crs=src).to_crs(WGS84).values, dtype=object)
    ctx.add("fixed", "validation.crs_reprojected", crs=name)
    return out, True


def check_types(ctx: Ctx, geoms: np.ndarray, kind: str, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Right geometry type per row; returns ``(geoms, bad)``. Single-part MultiPoints become Points."""
    ids = shapely.get_type_id(geoms)
    accepted = np.isin(ids, list(ACCEPTED[kind])) | ~present
    geoms = geoms.copy()
    if kind in ("Point", "Point|Polygon"):
        single = (ids == 4) & (shapely.get_num_geometries(geoms) == 1)
        if single.any():
            geoms[single] = shapely.get_geometry(geoms[single], 0)
            accepted |= single
            ctx.add("fixed", "validation.multipoint_to_point", count=int(single.sum()))
    if kind in ("Polygon", "Point|Polygon"):
        coll = np.flatnonzero((ids == 7) & ~accepted)
        for p in coll:
            parts = shapely.get_parts(geoms[p])
            if len(parts) and np.isin(shapely.get_type_id(parts), [3, 6]).all():
                geoms[p] = shapely.union_all(parts)
                accepted[p] = True
    bad = ~accepted
    if bad.any():
        ctx.per_row("error", "validation.wrong_geometry_type", np.flatnonzero(bad), column="geometry",
                    params=lambda p: {"found": _TYPE_NAMES[ids[p]] if 0 <= ids[p] < 8 else "?",
                                      "expected": kind.replace("|", " / ")})
    return geoms, bad


def repair(ctx: Ctx, geoms: np.ndarray, kind: str, check: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Repair invalid geometries where safe; returns ``(geoms, still_bad)``."""
    invalid = check & ~shapely.is_valid(geoms)
    coords_ok = np.ones(len(geoms), dtype=bool)
    with np.errstate(invalid="ignore"):
        b = _bounds(geoms)
        coords_ok[check] = np.isfinite(b[check]).all(axis=1)
    still = np.zeros(len(geoms), dtype=bool)
    geoms = geoms.copy()
    fixed_pos, fixed_reason = [], {}
    for p in np.flatnonzero(invalid):
        reason = shapely.is_valid_reason(geoms[p])
        if not coords_ok[p]:
            still[p] = True
            fixed_reason[p] = reason
            continue
        rep = shapely.make_valid(geoms[p], method="structure", keep_collapsed=False)
        if kind in ("Polygon", "Point|Polygon") and shapely.get_type_id(geoms[p]) in (3, 6):
            parts = shapely.get_parts(rep)
            parts = parts[np.isin(shapely.get_type_id(parts), [3, 6])]
            rep = shapely.union_all(parts) if len(parts) else None
        ok = rep is not None and not shapely.is_empty(rep) and shapely.is_valid(rep) and \
            shapely.get_type_id(rep) in ACCEPTED[kind]
        if ok:
            geoms[p] = rep
            fixed_pos.append(p)
            fixed_reason[p] = reason
        else:
            still[p] = True
            fixed_reason[p] = reason
    if fixed_pos:
        ctx.per_row("fixed", "validation.geometry_repaired", np.array(fixed_pos), column="geometry",
                    params=lambda p: {"reason": fixed_reason[p]})
    if still.any():
        ctx.per_row("error", "validation.geometry_invalid", np.flatnonzero(still), column="geometry",
                    params=lambda p: {"reason": fixed_reason.get(p, "")})
    return geoms, still


def fix_order(ctx: Ctx, geoms: np.ndarray, check: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Swap lat/lon features back; returns ``(geoms, outside_china)``."""
    b = _bounds(geoms)
    ok = _in_box(b, LON_RANGE, LAT_RANGE)
    swapped = check & ~ok & _in_box(b, LAT_RANGE, LON_RANGE)
    outside = check & ~ok & ~swapped
    geoms = geoms.copy()
    if swapped.any():
        geoms[swapped] = shapely.transform(geoms[swapped], lambda c: c[:, ::-1])
        pos = np.flatnonzero(swapped)
        ctx.add("warning", "validation.lonlat_swapped_summary", count=len(pos), first_row=ctx.row(pos[0]))
        ctx.per_row("fixed", "validation.lonlat_swapped", pos, column="geometry",
                    params=lambda p: {"x": f"{b[p, 0]:.6f}", "y": f"{b[p, 1]:.6f}",
                                      "lon": f"{b[p, 1]:.6f}", "lat": f"{b[p, 0]:.6f}"})
    if outside.any():
        ctx.per_row("error", "validation.outside_china", np.flatnonzero(outside), column="geometry",
                    params=lambda p: {"x": f"{b[p, 0]:.6f}", "y": f"{b[p, 1]:.6f}"})
    return geoms, outside


def to_wgs84(ctx: Ctx, geoms: np.ndarray, datum: Datum, check: np.ndarray) -> np.ndarray:
    """Convert GCJ-02 / BD-09 input to WGS-84 (``fixed``)."""
    if datum == "wgs84" or not check.any():
        return geoms
    geoms = geoms.copy()
    geoms[check] = convert_geometries(geoms[check], src=datum, dst="wgs84")
    ctx.add("fixed", "validation.datum_converted", datum=datum, count=int(check.sum()))
    return geoms


# --------------------------------------------------------------------------- cross-layer


def _metric(geoms: np.ndarray, crs: CRS) -> np.ndarray:
    return np.asarray(gpd.GeoSeries(geoms, crs=WGS84).to_crs(crs).values, dtype=object)


def _lonlat(geom_m: Any, crs: CRS) -> tuple[str, str]:
    pt = gpd.GeoSeries([shapely.point_on_surface(geom_m)], crs=crs).to_crs(WGS84).iloc[0]
    return f"{pt.x:.6f}", f"{pt.y:.6f}"


def metric_crs_for(geoms: np.ndarray) -> CRS:
    """The local UTM zone of a set of EPSG:4326 geometries."""
    return local_metric_crs(gpd.GeoSeries(geoms, crs=WGS84))


def check_far_outside(ctx: Ctx, geoms: np.ndarray, check: np.ndarray, district_geoms: np.ndarray,
                      *, distance_m: float) -> None:
    """Error for features more than ``distance_m`` outside the reference district(s)."""
    dist = district_geoms[~shapely.is_missing(district_geoms) & ~shapely.is_empty(district_geoms)]
    if not len(dist) or not check.any():
        return
    area = shapely.union_all(dist)
    crs = metric_crs_for(np.array([area], dtype=object))
    area_m = _metric(np.array([area], dtype=object), crs)[0]
    zone = gpd.GeoSeries([shapely.buffer(area_m, distance_m)], crs=crs).to_crs(WGS84).iloc[0]
    shapely.prepare(zone)
    far = np.flatnonzero(check & ~shapely.intersects(zone, geoms))
    if not len(far):
        return
    shown_pos = far[: ctx.cap]
    d_km = shapely.distance(_metric(geoms[shown_pos], crs), area_m) / 1000.0
    km = dict(zip(shown_pos.tolist(), d_km.tolist(), strict=True))
    ctx.per_row("error", "validation.far_outside_district", far, column="geometry",
                params=lambda p: {"distance_km": f"{km.get(p, float('nan')):.1f}",
                                  "limit_km": f"{distance_m / 1000:g}"})


def check_other_city(ctx: Ctx, geoms: np.ndarray, check: np.ndarray, *, distance_km: float) -> None:
    """Warn about points far from the others when there is no district to compare with.

    The centre is the median longitude and latitude of the usable points (robust to a few
    strays); a point more than ``distance_km`` (great-circle) from it is reported on its row.
    Needs at least three points, and says nothing when most points are "far" (a city-wide
    file has no single centre).
    """
    pos = np.flatnonzero(check & (shapely.get_type_id(geoms) == 0))
    if len(pos) < 3:
        return
    x, y = shapely.get_x(geoms[pos]), shapely.get_y(geoms[pos])
    cx, cy = float(np.median(x)), float(np.median(y))
    lam, phi, lam0, phi0 = np.radians(x), np.radians(y), np.radians(cx), np.radians(cy)
    h = np.sin((phi - phi0) / 2) ** 2 + np.cos(phi) * np.cos(phi0) * np.sin((lam - lam0) / 2) ** 2
    d_km = 2 * 6371.0088 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
    far_k = np.flatnonzero(d_km > distance_km)
    if not len(far_k) or 2 * len(far_k) >= len(pos):
        return
    dist = dict(zip(pos[far_k].tolist(), d_km[far_k].tolist(), strict=True))
    ctx.per_row("warning", "hotline.other_city", pos[far_k], column="geometry",
                params=lambda p: {"distance_km": f"{dist[p]:.0f}", "limit_km": f"{distance_km:g}",
                                  "others": len(pos) - 1})


def _fit(geoms: np.ndarray, parents: np.ndarray) -> float:
    """Share of ``geoms`` inside their aligned ``parents`` (area-weighted for polygons)."""
    if not len(geoms):
        return float("nan")
    ids = shapely.get_type_id(geoms)
    poly = np.isin(ids, [3, 6])
    total, inside = 0.0, 0.0
    if poly.any():
        a = shapely.area(geoms[poly])
        inside += float(np.sum(shapely.area(shapely.intersection(geoms[poly], parents[poly])) / np.where(a > 0, a, 1)))
        total += float(poly.sum())
    if (~poly).any():
        inside += float(np.sum(shapely.intersects(parents[~poly], geoms[~poly])))
        total += float((~poly).sum())
    return inside / total if total else float("nan")


def detect_datum(ctx: Ctx, raw: np.ndarray, parents: np.ndarray, pair: np.ndarray, chosen: str,
                 *, sample: int = 2000) -> None:
    """Warn when the layer fits its parents clearly better read as another datum.

    ``raw`` are the EPSG:4326 geometries before datum conversion; ``parents`` the aligned
    parent polygons; ``pair`` marks rows that have both.
    """
    pos = np.flatnonzero(pair)
    if len(pos) < 3:
        return
    if len(pos) > sample:
        pos = pos[np.linspace(0, len(pos) - 1, sample).astype(np.int64)]
    g, par = raw[pos], parents[pos]
    fits = {}
    for src in DATUMS:
        conv = g if src == "wgs84" else convert_geometries(g, src=src, dst="wgs84")  # type: ignore[arg-type]
        fits[src] = _fit(conv, par)
    best = max(fits, key=lambda k: fits[k])
    if best != chosen and fits[best] >= 0.8 and fits[best] - fits[chosen] >= 0.2:
        ctx.add("warning", "validation.datum_suspected", datum=best, chosen=chosen,
                share_now=f"{100 * fits[chosen]:.0f}", share_alt=f"{100 * fits[best]:.0f}")


def _surface_points(geoms: np.ndarray) -> np.ndarray:
    out = geoms.copy()
    poly = shapely.get_type_id(geoms) != 0
    if poly.any():
        out[poly] = shapely.point_on_surface(geoms[poly])
    return out


def check_points_in_parent(ctx: Ctx, geoms: np.ndarray, parents: np.ndarray, pair: np.ndarray,
                           *, column: str, codes: np.ndarray, tolerance_m: float) -> None:
    """Warn when a point (or a building's surface point) lies outside the parent it names.

    The tolerance is applied in degrees of latitude (``tolerance_m / 111,320``), which is
    about ``tolerance_m`` north–south and a little less east–west; the distance shown in the
    message is measured in metres in the local UTM zone.
    """
    pos = np.flatnonzero(pair)
    if not len(pos):
        return
    pts = _surface_points(geoms[pos])
    par = parents[pos]
    shapely.prepare(par)
    outside = ~shapely.covers(par, pts)
    if not outside.any():
        return
    far_k = np.flatnonzero(outside)[~shapely.dwithin(par[outside], pts[outside], tolerance_m / 111_320.0)]
    if not len(far_k):
        return
    far = pos[far_k]
    shown_k = far_k[: ctx.cap]
    crs = metric_crs_for(parents[pos[:1]])
    d = shapely.distance(_metric(pts[shown_k], crs), _metric(par[shown_k], crs))
    dist = dict(zip(pos[shown_k].tolist(), d.tolist(), strict=True))
    ctx.per_row("warning", "validation.outside_parent", far, column=column,
                params=lambda p: {"value": str(codes[p]), "distance_m": f"{dist.get(p, float('nan')):.0f}"})


def check_overlaps(ctx: Ctx, geoms_m: np.ndarray, tile: np.ndarray, codes: np.ndarray, crs: CRS,
                   *, area_tol_m2: float) -> None:
    """Error for each pair of tiling features that overlap by more than ``area_tol_m2``."""
    pos = np.flatnonzero(tile)
    if len(pos) < 2:
        return
    g = geoms_m[pos]
    tree = shapely.STRtree(g)
    i, j = tree.query(g, predicate="intersects")
    keep = i < j
    i, j = i[keep], j[keep]
    if not len(i):
        return
    inter = shapely.intersection(g[i], g[j])
    area = shapely.area(inter)
    big = np.flatnonzero(area > area_tol_m2)
    if not len(big):
        return
    order = big[np.lexsort((pos[j[big]], pos[i[big]]))]
    shown = order[: ctx.cap]
    for k in shown:
        a, b = int(pos[i[k]]), int(pos[j[k]])
        lon, lat = _lonlat(inter[k], crs)
        ctx.add("error", "validation.overlap", row_pos=a, column="geometry", unit=str(codes[a]),
                other_unit=str(codes[b]), other_row=ctx.row(b), area_m2=f"{area[k]:.0f}",
                lon=lon, lat=lat)
    if len(order) > ctx.cap:
        ctx.add("error", "validation.more_rows", column="geometry", count=int(len(order) - ctx.cap),
                rule="validation.overlap", last_row=ctx.row(int(pos[i[order[-1]]])))


def check_nesting(
    ctx: Ctx,
    geoms: np.ndarray,
    present: np.ndarray,
    parent_codes: np.ndarray,
    codes: np.ndarray,
    tile: np.ndarray,
    parent: pd.DataFrame,
    *,
    parent_layer: str,
    column: str,
    area_tol_m2: float,
    report_uncovered: bool,
    gap_severity: Severity = "error",
) -> None:
    """Children inside their parent; tiling children neither overlap nor leave gaps in it.

    ``parent`` is a cleaned GeoDataFrame (EPSG:4326) with a ``code`` column.
    """
    pg = np.asarray(parent.geometry.values, dtype=object)
    pcode = parent["code"].to_numpy(dtype=object)
    okp = ~shapely.is_missing(pg) & ~shapely.is_empty(pg) & pd.notna(pcode)
    if not okp.any():
        return
    crs = metric_crs_for(pg[okp])
    pg_m = np.full(len(pg), None, dtype=object)
    pg_m[okp] = _metric(pg[okp], crs)
    where = {c: k for k, c in enumerate(pcode) if okp[k]}
    idx = np.array([where.get(c, -1) if isinstance(c, str) else -1 for c in parent_codes], dtype=np.int64)
    pair = present & (idx >= 0)
    geoms_m = np.full(len(geoms), None, dtype=object)
    geoms_m[present] = _metric(geoms[present], crs)
    pos = np.flatnonzero(pair)
    if len(pos):
        outside = shapely.area(shapely.difference(geoms_m[pos], pg_m[idx[pos]]))
        cross = pos[outside > area_tol_m2]
        area = dict(zip(pos.tolist(), outside.tolist(), strict=True))
        if len(cross):
            ctx.per_row("error", "validation.crosses_parent", cross, column="geometry",
                        params=lambda p: {"unit": str(codes[p]), "parent": str(parent_codes[p]),
                                          "parent_layer": parent_layer, "area_m2": f"{area[p]:.0f}"})
    check_overlaps(ctx, geoms_m, tile & present, codes, crs, area_tol_m2=area_tol_m2)
    tiled = pair & tile
    groups = pd.Series(np.flatnonzero(tiled)).groupby(idx[tiled]).agg(list) if tiled.any() else pd.Series(dtype=object)
    for k, members in groups.items():
        cover = shapely.union_all(geoms_m[np.asarray(members)])
        gap = shapely.difference(pg_m[int(k)], cover)
        parts = shapely.get_parts(gap)
        parts = parts[np.isin(shapely.get_type_id(parts), [3, 6])] if len(parts) else parts
        areas = shapely.area(parts) if len(parts) else np.array([])
        big = areas > area_tol_m2
        if big.any():
            largest = parts[int(np.argmax(np.where(big, areas, -1)))]
            lon, lat = _lonlat(largest, crs)
            ctx.add(gap_severity, "validation.gap", column="geometry", parent=str(pcode[int(k)]),
                    parent_layer=parent_layer, area_m2=f"{areas[big].sum():.0f}",
                    pieces=int(big.sum()), lon=lon, lat=lat)
    if report_uncovered:
        has = set(np.unique(idx[tiled]).tolist())
        for k in np.flatnonzero(okp):
            if int(k) not in has:
                ctx.add("warning", "validation.parent_uncovered", parent=str(pcode[k]),
                        parent_layer=parent_layer)
