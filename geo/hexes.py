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
