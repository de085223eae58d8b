"""The walk network itself: building it from road lines and snapping points onto it.

Split out of :mod:`geo.network` (which re-exports every public name here); see that module
for the model. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from pyproj import CRS
from scipy import sparse
from scipy.sparse import csgraph

from geo._errors import GeoError
from geo.crs import require_projected

#: Road kinds (``layers.schema.ROAD_KINDS``) that nobody walks along.
NON_WALKABLE_KINDS: tuple[str, ...] = ("river", "railway")
#: Edge weights are at least this long, so csgraph never sees a zero-weight edge.
_MIN_EDGE_M = 1e-6
#: Upper bound on the number of floats one batched Dijkstra call may allocate.
_MAX_CELLS = 20_000_000


class NetworkError(GeoError):
    """The road layer cannot make a walking network (empty, wrong geometry, no CRS)."""


def walk_distance_m(minutes: float | ArrayLike, *, speed_kmh: float) -> NDArray[np.float64]:
    """Metres walked in ``minutes`` at ``speed_kmh``.

    Examples
    --------
    >>> walk_distance_m([5, 10, 15], speed_kmh=4.0).tolist()
    [333.3333333333333, 666.6666666666666, 1000.0]
    """
    if speed_kmh <= 0:
        raise ValueError(f"speed_kmh must be positive, got {speed_kmh}")
    return np.asarray(minutes, dtype=float) * speed_kmh * 1000.0 / 60.0


@dataclass(frozen=True, eq=False)
class WalkNetwork:
    """A noded, undirected walking network in a metric CRS.

    Parameters
    ----------
    node_xy
        ``(n_nodes, 2)`` node coordinates in metres.
    edge_uv
        ``(n_edges, 2)`` end-node indices of each straight edge.
    edge_length_m
        ``(n_edges,)`` edge lengths in metres.
    crs
        The metric CRS of the coordinates.
    """

    node_xy: NDArray[np.float64]
    edge_uv: NDArray[np.int64]
    edge_length_m: NDArray[np.float64]
    crs: CRS | None = None

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return int(self.node_xy.shape[0])

    @property
    def n_edges(self) -> int:
        """Number of edges."""
        return int(self.edge_uv.shape[0])

    @cached_property
    def graph(self) -> sparse.csr_matrix:
        """Symmetric CSR matrix of edge lengths (metres)."""
        return _symmetric_csr(self.edge_uv, self.edge_length_m, self.n_nodes)

    @cached_property
    def edge_geometries(self) -> NDArray[np.object_]:
        """The edges as shapely LineStrings (from node ``u`` to node ``v``)."""
        coords = self.node_xy[self.edge_uv]  # (m, 2, 2)
        return shapely.linestrings(coords)

    @cached_property
    def components(self) -> NDArray[np.int64]:
        """Connected-component label of each node."""
        _, labels = csgraph.connected_components(self.graph, directed=False)
        return labels.astype(np.int64)

    @cached_property
    def node_edges(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Incidence in CSR form: the edges of node ``i`` are ``edges[ptr[i]:ptr[i + 1]]``."""
        ends = self.edge_uv.ravel()
        order = np.argsort(ends, kind="stable")
        ptr = np.zeros(self.n_nodes + 1, dtype=np.int64)
        np.cumsum(np.bincount(ends, minlength=self.n_nodes), out=ptr[1:])
        return ptr, (order // 2).astype(np.int64)

    @cached_property
    def edge_component_length_m(self) -> NDArray[np.float64]:
        """Total street length of the connected component each edge belongs to."""
        if self.n_edges == 0:
            return np.zeros(0)
        lab = self.components[self.edge_uv[:, 0]]
        return np.bincount(lab, weights=self.edge_length_m)[lab]

    def _tree_for(self, min_component_m: float) -> tuple[shapely.STRtree, NDArray[np.int64]]:
        """Spatial index over the edges of components at least ``min_component_m`` long."""
        cache = self.__dict__.setdefault("_trees", {})
        if min_component_m not in cache:
            keep = np.flatnonzero(self.edge_component_length_m >= min_component_m)
            if keep.size == 0:
                keep = np.arange(self.n_edges)
            cache[min_component_m] = (shapely.STRtree(self.edge_geometries[keep]), keep)
        return cache[min_component_m]

    def subnetwork(self, bounds: Sequence[float]) -> WalkNetwork:
        """The edges whose two end nodes lie inside ``(minx, miny, maxx, maxy)``.

        Distances up to ``d`` between points inside a box are exact on the
        subnetwork of that box grown by ``d`` on every side.
        """
        minx, miny, maxx, maxy = bounds
        x, y = self.node_xy[:, 0], self.node_xy[:, 1]
        inside = (x >= minx) & (x <= maxx) & (y >= miny) & (y <= maxy)
        keep_e = inside[self.edge_uv[:, 0]] & inside[self.edge_uv[:, 1]]
        uv = self.edge_uv[keep_e]
        used = np.unique(uv)
        remap = np.full(self.n_nodes, -1, dtype=np.int64)
        remap[used] = np.arange(used.size)
        return WalkNetwork(self.node_xy[used], remap[uv], self.edge_length_m[keep_e], self.crs)


@dataclass(frozen=True, eq=False)
class SnappedPoints:
    """Points snapped to their nearest network edge.

    Parameters
    ----------
    edge
        Edge index per point (``-1`` when the network is empty).
    u, v
        End nodes of that edge.
    to_u_m, to_v_m
        Distance along the edge from the snapped position to ``u`` and to ``v``.
    offset_m
        Straight-line distance from the point to the edge (``inf`` if unsnapped).
    """

    edge: NDArray[np.int64]
    u: NDArray[np.int64]
    v: NDArray[np.int64]
    to_u_m: NDArray[np.float64]
    to_v_m: NDArray[np.float64]
    offset_m: NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.edge.shape[0])

    def take(self, idx: ArrayLike) -> SnappedPoints:
        """A subset of the points, in the order of ``idx``."""
        i = np.asarray(idx, dtype=np.int64)
        return SnappedPoints(
            self.edge[i], self.u[i], self.v[i], self.to_u_m[i], self.to_v_m[i], self.offset_m[i]
        )


def _symmetric_csr(uv: NDArray[np.int64], w: NDArray[np.float64], n: int) -> sparse.csr_matrix:
    """Symmetric CSR of undirected edges (the caller guarantees no parallel edges)."""
    w = np.maximum(np.asarray(w, dtype=float), _MIN_EDGE_M)
    rows = np.concatenate([uv[:, 0], uv[:, 1]])
    cols = np.concatenate([uv[:, 1], uv[:, 0]])
    return sparse.csr_matrix((np.concatenate([w, w]), (rows, cols)), shape=(n, n))


def _as_geoseries(obj: gpd.GeoDataFrame | gpd.GeoSeries) -> gpd.GeoSeries:
    if isinstance(obj, gpd.GeoDataFrame):
        return obj.geometry
    if isinstance(obj, gpd.GeoSeries):
        return obj
    raise TypeError(f"expected a GeoDataFrame or GeoSeries, got {type(obj).__name__}")


def build_walk_network(
    roads: gpd.GeoDataFrame | gpd.GeoSeries,
    *,
    exclude_kinds: Sequence[str] = NON_WALKABLE_KINDS,
    grid_size_m: float = 0.01,
) -> WalkNetwork:
    """Build the walking network from road lines in a metric CRS.

    Parameters
    ----------
    roads
        LineStrings (MultiLineStrings are exploded). When it is a GeoDataFrame, rows
        whose ``kind`` is in ``exclude_kinds`` or whose ``walkable`` is false are left out.
    exclude_kinds
        Road kinds that are barriers rather than paths (rivers, railways).
    grid_size_m
        Coordinates are snapped to this grid while noding, so lines that meet within
        it are joined.

    Returns
    -------
    WalkNetwork

    Raises
    ------
    geo.crs.ProjectionRequiredError
        If ``roads`` is not in a metric CRS.
    NetworkError
        If there are no walkable lines.
    """
    require_projected(roads, "build_walk_network")
    geoms = _as_geoseries(roads)
    keep = np.ones(len(geoms), dtype=bool)
    if isinstance(roads, gpd.GeoDataFrame):
        if "kind" in roads.columns:
            keep &= ~roads["kind"].isin(list(exclude_kinds)).to_numpy()
        if "walkable" in roads.columns:
            keep &= roads["walkable"].fillna(True).astype(bool).to_numpy()
    arr = geoms.to_numpy()[keep]
    arr = arr[~(shapely.is_missing(arr) | shapely.is_empty(arr))]
    types = shapely.get_type_id(arr)
    bad = ~np.isin(types, (1, 5))  # LineString, MultiLineString
    if bad.any():
        raise NetworkError(
            f"{int(bad.sum())} road geometries are not lines; keep only LineStrings "
            "(e.g. roads[roads.geom_type.isin(['LineString', 'MultiLineString'])])"
        )
    if arr.size == 0:
        raise NetworkError("no walkable road lines; the network needs at least one road")
    noded = shapely.get_parts(shapely.union_all(arr, grid_size=grid_size_m))
    noded = noded[shapely.get_type_id(noded) == 1]
    coords, line_idx = shapely.get_coordinates(noded, return_index=True)
    same = line_idx[1:] == line_idx[:-1]
    key = np.round(coords / grid_size_m).astype(np.int64)
    uniq, inverse = np.unique(key, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    node_xy = np.zeros((uniq.shape[0], 2))
    np.add.at(node_xy, inverse, coords)
    node_xy /= np.bincount(inverse, minlength=uniq.shape[0])[:, None]
    u = inverse[:-1][same]
    v = inverse[1:][same]
    ok = u != v
    u, v = u[ok], v[ok]
    length = np.hypot(*(node_xy[v] - node_xy[u]).T)
    uv = np.column_stack([np.minimum(u, v), np.maximum(u, v)])
    # drop duplicate edges
    order = np.lexsort((length, uv[:, 1], uv[:, 0]))
    uv, length = uv[order], length[order]
    first = np.ones(uv.shape[0], dtype=bool)
    first[1:] = np.any(uv[1:] != uv[:-1], axis=1)
    # keep u->v orientation consistent with coordinates of node_xy
    return WalkNetwork(node_xy, uv[first], length[first], CRS.from_user_input(roads.crs))


def snap_points(
    network: WalkNetwork,
    points: gpd.GeoDataFrame | gpd.GeoSeries | NDArray[np.float64],
    *,
    max_offset_m: float = np.inf,
    min_component_m: float = 500.0,
) -> SnappedPoints:
    """Snap points to their nearest network edge.

    Parameters
    ----------
    network
        The walking network.
    points
        Points in the network's CRS (polygons use their representative point), or an
        ``(n, 2)`` array of metre coordinates.
    max_offset_m
        Points farther than this from every edge are left unsnapped (``offset_m`` is
        ``inf``), so every distance to or from them is ``inf``.
    min_component_m
        Only edges of connected pieces of network at least this long take points, so a
        home is not stranded on a footpath that joins nothing (the whole network when
        no piece is that long).

    Returns
    -------
    SnappedPoints
        Aligned to the order of ``points``.
    """
    if isinstance(points, np.ndarray):
        geoms = shapely.points(np.asarray(points, dtype=float).reshape(-1, 2))
    else:
        s = _as_geoseries(points)
        if network.crs is not None and s.crs is not None and CRS.from_user_input(s.crs) != network.crs:
            raise NetworkError(
                f"points are in {s.crs.to_string()} but the network is in {network.crs.to_string()}; "
                "use points.to_crs(network.crs)"
            )
        geoms = s.to_numpy()
        poly = np.isin(shapely.get_type_id(geoms), (3, 6))
        if poly.any():
            geoms = geoms.copy()
            geoms[poly] = shapely.point_on_surface(geoms[poly])
    n = geoms.shape[0]
    if network.n_edges == 0 or n == 0:
        z = np.zeros(n)
        neg = np.full(n, -1, dtype=np.int64)
        return SnappedPoints(neg, neg, neg, z, z, np.full(n, np.inf))
    tree, edge_ids = network._tree_for(float(min_component_m))
    (pi, ei), dist = tree.query_nearest(geoms, return_distance=True, all_matches=False)
    ei = edge_ids[ei]
    edge = np.full(n, -1, dtype=np.int64)
    off = np.full(n, np.inf)
    edge[pi] = ei
    off[pi] = dist
    far = off > max_offset_m
    ok = (edge >= 0) & ~far
    along = np.zeros(n)
    along[ok] = shapely.line_locate_point(network.edge_geometries[edge[ok]], geoms[ok])
    e = np.where(edge >= 0, edge, 0)
    length = network.edge_length_m[e] if network.n_edges else np.zeros(n)
    along = np.clip(along, 0.0, length)
    off[~ok] = np.inf
    u = np.where(ok, network.edge_uv[e, 0], -1)
    v = np.where(ok, network.edge_uv[e, 1], -1)
    edge[~ok] = -1
    return SnappedPoints(edge, u, v, along, np.where(ok, length - along, 0.0), off)
