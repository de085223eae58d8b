"""Compound walls as units (private to :mod:`geo.partition.adapter`).

A residential compound (小区) with a wall polygon is one unit whose cell is the wall polygon
itself: never split between grids, whatever paths cross it. Its buildings are the rows whose
``compound_id`` is the compound's id, and the buildings not in a walled compound (no id, or an
id without a wall) whose point lies inside the wall; they all go to the container holding most
of the wall, provided no container left out of the call could hold more (a wall merely touching
the chosen community, or lying mostly in a neighbour, does not pull its homes in).
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from geo.partition._pieces import polygonal

#: A wall's part in a container smaller than this (m²) is no part of it (a shared edge).
MIN_WALL_M2 = 1.0

#: Columns a compounds layer may name its id with, in order of preference.
ID_COLUMNS = ("id", "compound_id", "code")


def check(compounds: Any) -> list[str]:
    """Problems with a compounds layer (empty when it can be used)."""
    if compounds is None:
        return []
    if not isinstance(compounds, gpd.GeoDataFrame):
        return ["compounds must be a GeoDataFrame of polygons"]
    problems = []
    if compounds.crs is None:
        problems.append("compounds has no CRS; set it (usually EPSG:4326) with .set_crs(4326)")
    col = id_column(compounds)
    if col is None:
        problems.append("compounds lack an id column ('id', matching buildings.compound_id)")
    else:
        ids = compounds[col].astype("string")
        if ids.isna().any():
            rows = (np.flatnonzero(ids.isna().to_numpy())[:5] + 1).tolist()
            problems.append(f"compounds.{col} is empty (rows {rows})")
        dup = ids[ids.duplicated(keep=False) & ids.notna()]
        if len(dup):
            problems.append(f"compounds.{col} repeats ids {sorted(set(dup))[:5]}; give each compound one polygon")
    geo = compounds.geometry
    bad = geo.isna() | geo.is_empty | ~geo.geom_type.isin(["Polygon", "MultiPolygon"])
    if bad.any():
        rows = (np.flatnonzero(bad.to_numpy())[:5] + 1).tolist()
        problems.append(f"compounds must be polygons (rows {rows} are not); drop or fix them")
    return problems


def id_column(compounds: gpd.GeoDataFrame) -> str | None:
    return next((c for c in ID_COLUMNS if c in compounds.columns), None)


def attach(
    compounds: gpd.GeoDataFrame, pts: NDArray[np.object_], group: NDArray[np.object_],
    cont: NDArray[np.int64], containers: NDArray[np.object_],
) -> tuple[NDArray[np.object_], NDArray[np.int64], NDArray[np.object_], NDArray[np.object_]]:
    """Join buildings to the walled compounds (in the containers' metric CRS).

    Returns the new ``group`` per row (the compound's id for its buildings and for buildings
    without one inside its wall), the new container per row (a walled compound's buildings all
    go to the container holding most of its wall), and the walls' ids and polygons.
    """
    col = id_column(compounds)
    ids = compounds[col].astype("string").to_numpy(dtype=object)
    walls = np.array([polygonal(g) for g in shapely.make_valid(compounds.geometry.to_numpy())], dtype=object)
    group = group.copy()
    cont = cont.copy()
    # buildings not in a walled compound (no compound, or one without a wall) whose point lies
    # inside a wall join it (the first wall listed holding them): a wall is one unit's outline,
    # so nothing else can have a cell inside it
    walled = set(str(x) for x in ids)
    free = np.flatnonzero([g is None or pd.isna(g) or str(g) not in walled for g in group])
    if free.size:
        pi, wi = shapely.STRtree(walls).query(pts[free], predicate="intersects")
        got = np.full(free.size, -1, dtype=np.int64)
        got[pi[::-1]] = wi[::-1]
        has = got >= 0
        group[free[has]] = ids[got[has]]
    # each wall's container: the one holding most of it, and only when no container left out of
    # the call could hold more (the part outside every given container is smaller); a wall that
    # merely touches a container, or lies mostly outside them, does not pull its buildings in
    wi, ci = shapely.STRtree(containers).query(walls, predicate="intersects")
    home = {}
    if wi.size:
        ov = shapely.area(shapely.intersection(walls[wi], containers[ci]))
        inside = np.bincount(wi, weights=ov, minlength=walls.size)
        outside = np.maximum(shapely.area(walls) - inside, 0.0)
        order = np.lexsort((-ov, wi))
        first = np.r_[True, wi[order][1:] != wi[order][:-1]]
        w_best, c_best, ov_best = wi[order][first], ci[order][first], ov[order][first]
        ok = (ov_best > MIN_WALL_M2) & (ov_best >= outside[w_best])
        home = {str(ids[w]): int(c) for w, c in zip(w_best[ok], c_best[ok], strict=True)}
    for r in np.flatnonzero([g is not None and str(g) in home for g in group]):
        cont[r] = home[str(group[r])]
    return group, cont, ids, walls


def walls_in(poly: shapely.Geometry, ids: NDArray[np.object_], walls: NDArray[np.object_],
             unit_of: dict[str, int]) -> tuple[NDArray[np.object_], NDArray[np.int64]]:
    """The walls touching a container polygon and the unit of each (``-1``: no unit of this
    container, e.g. a compound without homes or one counted in another container)."""
    hit = shapely.STRtree(walls).query(poly, predicate="intersects")
    hit = np.sort(hit)
    return walls[hit], np.array([unit_of.get(str(ids[h]), -1) for h in hit], dtype=np.int64)
