"""H3 helpers working on arrays: cell ids as int64, as the store keeps them.

H3 ids are unsigned 64-bit, but every valid id is below 2**63, so int64 holds them
losslessly and both SQLite and PostgreSQL (``bigint``) can ``GROUP BY`` them.

Examples
--------
>>> cells = lonlat_to_cells([118.78], [32.06], res=9)
>>> cells.dtype.name, int(cells[0]) > 0
('int64', True)
>>> cells_to_str(cells)[0] == h3.latlng_to_cell(32.06, 118.78, 9)
True
"""

from __future__ import annotations

import geopandas as gpd
import h3
import h3.api.basic_int as h3i
import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray

#: The bit layout of an H3 index (H3 v4), the one place it is written down: the index mode
#: in bits 59-62 (1 for a cell), the resolution in bits 52-55, then one 3-bit digit per
#: resolution 1..15 (7 below the cell's own resolution).
H3_MODE_SHIFT = 59
H3_RES_SHIFT = 52
H3_DIGIT_BITS = 3
_NIBBLE = np.uint64(0xF)


def cell_modes(cells: ArrayLike) -> NDArray[np.int64]:
    """The H3 index mode of int64 ids (1 for a cell; 0 for the ``0`` "no cell" id).

    Examples
    --------
    >>> cell_modes(lonlat_to_cells([118.78], [32.06], res=9)).tolist(), cell_modes([0]).tolist()
    ([1], [0])
    """
    u = np.asarray(cells, dtype=np.int64).view(np.uint64)
    return ((u >> np.uint64(H3_MODE_SHIFT)) & _NIBBLE).astype(np.int64)


def cell_resolutions(cells: ArrayLike) -> NDArray[np.int64]:
    """The resolution of each int64 H3 cell id, read from its bits.

    Examples
    --------
    >>> cell_resolutions(lonlat_to_cells([118.78, 118.79], [32.06, 32.07], res=9)).tolist()
    [9, 9]
    """
    u = np.asarray(cells, dtype=np.int64).view(np.uint64)
    return ((u >> np.uint64(H3_RES_SHIFT)) & _NIBBLE).astype(np.int64)


def cells_to_parents(cells: ArrayLike, res: int) -> NDArray[np.int64]:
    """Parents at ``res`` of int64 H3 cells of a finer resolution, by bit arithmetic.

    The parent sets the resolution bits and fills the finer digits with 7; ``0`` (no cell)
    stays ``0``. Same as ``h3.cell_to_parent`` cell by cell, without a Python loop.

    Examples
    --------
    >>> c = lonlat_to_cells([118.78], [32.06], res=10)
    >>> cells_to_str(cells_to_parents(c, 7)) == [h3.cell_to_parent(cells_to_str(c)[0], 7)]
    True
    """
    c = np.asarray(cells, dtype=np.int64)
    mask = np.int64(0xF) << H3_RES_SHIFT
    fill = np.int64((1 << (H3_DIGIT_BITS * (15 - res))) - 1)
    out = (c & ~mask) | (np.int64(res) << H3_RES_SHIFT) | fill
    return np.where(c == 0, np.int64(0), out)


def lonlat_to_cells(lon: ArrayLike, lat: ArrayLike, *, res: int) -> NDArray[np.int64]:
    """H3 cell ids (int64) of WGS-84 longitude/latitude points at resolution ``res``.

    Non-finite coordinates give ``0`` (no cell).
    """
    if not 0 <= res <= 15:
        raise ValueError(f"H3 resolution must be 0..15, got {res}")
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    ok = np.isfinite(lon) & np.isfinite(lat)
    out = np.zeros(lon.shape[0], dtype=np.uint64)
    f = h3i.latlng_to_cell
    out[ok] = np.fromiter(
        (f(a, b, res) for a, b in zip(lat[ok].tolist(), lon[ok].tolist(), strict=True)),
        dtype=np.uint64,
        count=int(ok.sum()),
    )
    return out.view(np.int64)


def cells_to_str(cells: ArrayLike) -> list[str]:
    """int64 cell ids to the usual hexadecimal strings."""
    return [h3.int_to_str(int(c)) for c in np.asarray(cells, dtype=np.int64).view(np.uint64)]


def cells_to_polygons(cells: ArrayLike) -> NDArray[np.object_]:
    """Shapely polygons (lon/lat, EPSG:4326) of int64 cell ids."""
    polys = []
    for c in np.asarray(cells, dtype=np.int64).view(np.uint64).tolist():
        ring = h3i.cell_to_boundary(c)
        polys.append(shapely.Polygon([(lng, lat) for lat, lng in ring]))
    return np.asarray(polys, dtype=object)


def cells_gdf(cells: ArrayLike, **columns: ArrayLike) -> gpd.GeoDataFrame:
    """A GeoDataFrame (EPSG:4326) of cell polygons with a ``cell`` int64 column and extra columns."""
    cells = np.asarray(cells, dtype=np.int64)
    data = {"cell": cells, **{k: np.asarray(v) for k, v in columns.items()}}
    return gpd.GeoDataFrame(data, geometry=cells_to_polygons(cells), crs=4326)
