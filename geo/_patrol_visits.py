"""Kernels for patrol coverage (which places were visited, and when); private.

A place (a fine H3 cell's centre, or a building) is *visited* by a fix within
``radius_m`` of it. Pairs are found with a k-d tree over the places (tens of thousands),
queried with all fixes at once (about a million); the query widens ``k`` only for the few
fixes that have more than ``k`` places within reach, so the answer is exact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import h3.api.basic_int as h3i
import numpy as np
import shapely
from numpy.typing import NDArray

if TYPE_CHECKING:  # scipy is imported where a tree is built: `gridpulse patrols` never needs it
    from scipy.spatial import cKDTree

NEVER = np.iinfo(np.int64).min

I64 = NDArray[np.int64]
F64 = NDArray[np.float64]


def grid_cells(geoms_lonlat: NDArray[np.object_], *, res: int) -> tuple[I64, I64]:
    """H3 cells (int64) whose centre lies in each polygon: ``(polygon position, cell)``.

    When the polygons fill most of their bounding box (a district's grids), the box is
    filled once and the cell centres are matched to the polygons with one spatial query;
    otherwise each polygon is filled on its own. A polygon too small to hold a cell centre
    gets the cell of its representative point, so every grid has at least one cell.
    """
    n = geoms_lonlat.shape[0]
    ok = ~(shapely.is_missing(geoms_lonlat) | shapely.is_empty(geoms_lonlat)) if n else np.zeros(0, bool)
    pos: list[NDArray] = []
    cells: list[NDArray] = []
    if ok.any():
        valid = geoms_lonlat[ok]
        box = shapely.box(*shapely.total_bounds(valid))
        if box.area <= 4.0 * float(shapely.area(valid).sum()):
            found = np.asarray(h3i.geo_to_cells(box.__geo_interface__, res), dtype=np.uint64)
            lon, lat = cell_centres(found.view(np.int64))
            tree = shapely.STRtree(valid)
            ci, gi = tree.query(shapely.points(lon, lat), predicate="intersects")
            pos.append(np.flatnonzero(ok)[gi])
            cells.append(found[ci].view(np.int64))
        else:
            for i in np.flatnonzero(ok).tolist():
                found = np.asarray(h3i.geo_to_cells(geoms_lonlat[i].__geo_interface__, res), dtype=np.uint64)
                pos.append(np.full(found.shape[0], i, dtype=np.int64))
                cells.append(found.view(np.int64))
    p = np.concatenate(pos) if pos else np.zeros(0, np.int64)
    c = np.concatenate(cells) if cells else np.zeros(0, np.int64)
    empty = np.flatnonzero(ok & (np.bincount(p, minlength=n) == 0))
    if empty.size:
        rp = shapely.point_on_surface(geoms_lonlat[empty])
        extra = [h3i.latlng_to_cell(b, a, res)
                 for a, b in zip(shapely.get_x(rp).tolist(), shapely.get_y(rp).tolist(), strict=True)]
        p = np.concatenate((p, empty))
        c = np.concatenate((c, np.asarray(extra, dtype=np.uint64).view(np.int64)))
    order = np.lexsort((c, p))
    return p[order].astype(np.int64), c[order]


def cell_centres(cells: I64) -> tuple[F64, F64]:
    """Longitude and latitude (EPSG:4326) of the centres of int64 H3 cells."""
    ll = np.array([h3i.cell_to_latlng(c) for c in cells.view(np.uint64).tolist()], dtype=float)
    if not ll.size:
        return np.zeros(0), np.zeros(0)
    return ll[:, 1], ll[:, 0]


def near_pairs(tree: cKDTree, qx: F64, qy: F64, *, radius_m: float, k: int = 8) -> tuple[I64, I64, F64]:
    """Every ``(query, place, distance)`` with the place within ``radius_m`` of the query point."""
    qi: list[NDArray] = []
    pj: list[NDArray] = []
    dd: list[NDArray] = []
    pending = np.arange(qx.shape[0])
    n = tree.n
    if n == 0 or not pending.size:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    k = min(k, n)
    while pending.size:
        d, j = tree.query(np.column_stack((qx[pending], qy[pending])), k=k,
                          distance_upper_bound=radius_m, workers=-1)
        d = d.reshape(pending.shape[0], k)
        j = j.reshape(pending.shape[0], k)
        ok = np.isfinite(d)
        full = ok[:, -1] if k < n else np.zeros(pending.shape[0], dtype=bool)
        rows, cols = np.nonzero(ok & ~full[:, None])
        qi.append(pending[rows])
        pj.append(j[rows, cols])
        dd.append(d[rows, cols])
        pending = pending[full]
        k = min(k * 4, n)
    return (np.concatenate(qi).astype(np.int64), np.concatenate(pj).astype(np.int64),
            np.concatenate(dd))


def last_visits(n_places: int, place: I64, t_ns: I64, start_ns: int) -> tuple[I64, NDArray[np.bool_]]:
    """Latest visit (ns; :data:`NEVER` if none) and whether any visit is at or after ``start_ns``."""
    last = np.full(n_places, NEVER, dtype=np.int64)
    np.maximum.at(last, place, t_ns)
    return last, last >= start_ns


def places(geoms_m: NDArray[np.object_]) -> tuple[F64, F64, F64, NDArray[np.object_]]:
    """Where to look for visits of each geometry: anchor ``x, y``, reach, exact zone.

    A point is its own anchor (reach 0, no zone). Any other geometry (a footprint) is anchored
    at a point on its surface; ``reach`` is its farthest vertex from the anchor and the exact
    test is made later against the geometry buffered by the visit radius (its ``zone``).
    Missing or empty geometries get NaN anchors and are never visited.
    """
    n = geoms_m.shape[0]
    x, y = np.full(n, np.nan), np.full(n, np.nan)
    reach = np.zeros(n)
    zone = np.full(n, None, dtype=object)
    usable = ~(shapely.is_missing(geoms_m) | shapely.is_empty(geoms_m)) if n else np.zeros(0, bool)
    point = usable & (shapely.get_type_id(geoms_m) == 0)
    other = usable & ~point
    if point.any():
        xy = shapely.get_coordinates(geoms_m[point])
        x[point], y[point] = xy[:, 0], xy[:, 1]
    if other.any():
        anchor = shapely.point_on_surface(geoms_m[other])
        xy = shapely.get_coordinates(anchor)
        x[other], y[other] = xy[:, 0], xy[:, 1]
        reach[other] = shapely.hausdorff_distance(anchor, geoms_m[other])
        zone[other] = geoms_m[other]
    return x, y, reach, zone


def visits(
    px: F64, py: F64, reach: F64, zone: NDArray[np.object_], fx: F64, fy: F64, *, radius_m: float
) -> tuple[I64, I64]:
    """Every ``(fix, place)`` with the fix within ``radius_m`` of the place.

    Places are anchored points with a ``reach`` (0 for points and cell centres) and an
    optional polygon ``zone``: a fix counts for a polygon when it lies within ``radius_m`` of
    it (inside the footprint is distance 0), tested against the buffered polygon.
    """
    usable = np.flatnonzero(np.isfinite(px) & np.isfinite(py))
    if not usable.size or not fx.shape[0]:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    from scipy.spatial import cKDTree

    tree = cKDTree(np.column_stack((px[usable], py[usable])))
    qi, pj, d = near_pairs(tree, fx, fy, radius_m=radius_m + float(reach[usable].max()), k=8)
    pj = usable[pj]
    ok = d <= radius_m + reach[pj]
    qi, pj = qi[ok], pj[ok]
    has_zone = ~shapely.is_missing(zone)
    sel = np.flatnonzero(has_zone[pj])
    if sel.size:
        buffered = np.full(zone.shape[0], None, dtype=object)
        used = np.unique(pj[sel])
        buffered[used] = shapely.buffer(zone[used], radius_m, quad_segs=16)
        shapely.prepare(buffered[used])
        keep = np.ones(qi.shape[0], dtype=bool)
        keep[sel] = shapely.intersects_xy(buffered[pj[sel]], fx[qi[sel]], fy[qi[sel]])
        qi, pj = qi[keep], pj[keep]
    return qi, pj
