"""Walking networks: noded road graphs, snapping, batched shortest paths, isochrones.

A :class:`WalkNetwork` is built from road LineStrings in a metric CRS. The lines are
noded (split where they cross or touch, coordinates snapped to a ``grid_size_m``
grid), every vertex becomes a node and every straight piece between two vertices
an edge, so an edge is fully described by its two end nodes. The graph is a
symmetric :class:`scipy.sparse.csr_matrix` of edge lengths in metres.

Points (homes, facilities) are snapped to their nearest edge: a
:class:`SnappedPoints` records the edge, the distance along it to each end node and
the straight-line offset from the point to the edge. Shortest paths from snapped
points run as one batched :func:`scipy.sparse.csgraph.dijkstra` call per chunk of
sources, each source being a virtual node joined to its edge's two ends, so the
distance from a source to any point on the network is exact (to the edge, along it,
then off it) and searches stop at ``limit_m``.

Every road crossing becomes a junction (bridges and tunnels are not modelled).

Building the network and snapping points live in :mod:`geo._network_graph`; distances and
isochrones here. Every public name is importable from this module.

Examples
--------
>>> import geopandas as gpd
>>> from shapely import LineString, Point
>>> roads = gpd.GeoSeries([LineString([(0, 0), (200, 0)]), LineString([(100, -100), (100, 100)])],
...                       crs=32650)
>>> net = build_walk_network(roads)
>>> net.n_nodes, net.n_edges
(5, 4)
>>> src = snap_points(net, gpd.GeoSeries([Point(0, 10)], crs=32650))
>>> dst = snap_points(net, gpd.GeoSeries([Point(100, 90), Point(300, 0)], crs=32650))
>>> network_distances(net, src, dst).round(1).tolist()
[[200.0, 310.0]]
>>> network_distances(net, src, dst, limit_m=250).round(1).tolist()
[[200.0, inf]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import shapely
from numpy.typing import NDArray
from scipy import sparse
from scipy.sparse import csgraph

from geo._network_graph import (
    _MAX_CELLS,
    _MIN_EDGE_M,
    NON_WALKABLE_KINDS,
    NetworkError,
    SnappedPoints,
    WalkNetwork,
    _symmetric_csr,
    build_walk_network,
    snap_points,
    walk_distance_m,
)

__all__ = [
    "NON_WALKABLE_KINDS",
    "NetworkError",
    "SnappedPoints",
    "WalkNetwork",
    "build_walk_network",
    "isochrone_polygons",
    "nearest_source_distances",
    "network_distances",
    "node_distances",
    "snap_points",
    "walk_distance_m",
]


def _augmented(network: WalkNetwork, sources: SnappedPoints) -> tuple[sparse.csr_matrix, NDArray]:
    """The network plus one virtual node per snapped source; returns (graph, source node ids)."""
    n, k = network.n_nodes, len(sources)
    ok = sources.edge >= 0
    vid = n + np.arange(k)
    uv = np.concatenate(
        [network.edge_uv,
         np.column_stack([vid[ok], sources.u[ok]]),
         np.column_stack([vid[ok], sources.v[ok]])]
    )
    w = np.concatenate(
        [network.edge_length_m,
         sources.to_u_m[ok] + sources.offset_m[ok],
         sources.to_v_m[ok] + sources.offset_m[ok]]
    )
    return _symmetric_csr(uv, w, n + k), vid


def _chunks(k: int, n_cols: int) -> list[slice]:
    step = max(1, _MAX_CELLS // max(n_cols, 1))
    return [slice(i, min(i + step, k)) for i in range(0, k, step)]


def node_distances(
    network: WalkNetwork, sources: SnappedPoints, *, limit_m: float = np.inf
) -> NDArray[np.float64]:
    """Walking distance from each source to every node, ``(n_sources, n_nodes)``.

    Nodes farther than ``limit_m`` (or unreachable) get ``inf``.
    """
    graph, vid = _augmented(network, sources)
    out = np.full((len(sources), network.n_nodes), np.inf)
    ok = np.flatnonzero(sources.edge >= 0)
    for sl in _chunks(ok.size, graph.shape[0]):
        idx = ok[sl]
        d = csgraph.dijkstra(graph, directed=True, indices=vid[idx], limit=limit_m)
        out[idx] = d[:, : network.n_nodes]
    return out


def _same_edge_pairs(src: SnappedPoints, dst: SnappedPoints) -> tuple[NDArray, NDArray]:
    """All (source, target) index pairs that lie on the same edge."""
    se = src.edge
    te = dst.edge
    order = np.argsort(te, kind="stable")
    te_sorted = te[order]
    lo = np.searchsorted(te_sorted, se, side="left")
    hi = np.searchsorted(te_sorted, se, side="right")
    cnt = np.where(se >= 0, hi - lo, 0)
    if cnt.sum() == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    s_idx = np.repeat(np.arange(se.size), cnt)
    start = np.repeat(lo, cnt)
    offs = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    t_idx = order[start + offs]
    return s_idx, t_idx


def _to_targets(
    nd: NDArray[np.float64], dst: SnappedPoints
) -> NDArray[np.float64]:
    """Distances to snapped targets from node distances ``nd`` (rows = sources)."""
    ok = dst.edge >= 0
    out = np.full((nd.shape[0], len(dst)), np.inf)
    if ok.any():
        u, v = dst.u[ok], dst.v[ok]
        out[:, ok] = (
            np.minimum(nd[:, u] + dst.to_u_m[ok], nd[:, v] + dst.to_v_m[ok]) + dst.offset_m[ok]
        )
    return out


def network_distances(
    network: WalkNetwork,
    sources: SnappedPoints,
    targets: SnappedPoints | None = None,
    *,
    limit_m: float = np.inf,
) -> NDArray[np.float64]:
    """Walking distances (metres) from every source to every target.

    Parameters
    ----------
    network
        The walking network.
    sources, targets
        Snapped points; ``targets`` defaults to ``sources``.
    limit_m
        Searches stop here; longer distances are ``inf``.

    Returns
    -------
    numpy.ndarray
        ``(n_sources, n_targets)``; ``inf`` beyond ``limit_m`` or unreachable.
    """
    targets = sources if targets is None else targets
    out = np.full((len(sources), len(targets)), np.inf)
    graph, vid = _augmented(network, sources)
    ok = np.flatnonzero(sources.edge >= 0)
    for sl in _chunks(ok.size, graph.shape[0]):
        idx = ok[sl]
        nd = csgraph.dijkstra(graph, directed=True, indices=vid[idx], limit=limit_m)
        out[idx] = _to_targets(nd[:, : network.n_nodes], targets)
    s, t = _same_edge_pairs(sources, targets)
    if s.size:
        out[s, t] = np.minimum(out[s, t], _direct(sources, targets, s, t))
    out[out > limit_m] = np.inf
    return out


def _direct(src: SnappedPoints, dst: SnappedPoints, s: NDArray, t: NDArray) -> NDArray:
    """Walk between points on the same edge: off the edge, along it, off again (0 for a
    point and itself)."""
    along = np.abs(src.to_u_m[s] - dst.to_u_m[t])
    same = (along < 1e-9) & (np.abs(src.offset_m[s] - dst.offset_m[t]) < 1e-9)
    return np.where(same, 0.0, along + src.offset_m[s] + dst.offset_m[t])


def nearest_source_distances(
    network: WalkNetwork,
    sources: SnappedPoints,
    targets: SnappedPoints,
    *,
    limit_m: float = np.inf,
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Distance from each target to its nearest source, in one multi-source search.

    Returns
    -------
    distance_m, source
        ``(n_targets,)`` each; ``inf`` and ``-1`` where no source is within ``limit_m``.
    """
    nt = len(targets)
    ok = np.flatnonzero(sources.edge >= 0)
    if ok.size == 0:
        return np.full(nt, np.inf), np.full(nt, -1, dtype=np.int64)
    graph, vid = _augmented(network, sources)
    dist, _, src = csgraph.dijkstra(
        graph, directed=True, indices=vid[ok], limit=limit_m, min_only=True,
        return_predecessors=True,
    )
    nd = dist[: network.n_nodes]
    which = np.where(src[: network.n_nodes] >= 0, src[: network.n_nodes] - network.n_nodes, -1)
    best = np.full(nt, np.inf)
    best_src = np.full(nt, -1, dtype=np.int64)
    tok = targets.edge >= 0
    if tok.any():
        du = nd[targets.u[tok]] + targets.to_u_m[tok]
        dv = nd[targets.v[tok]] + targets.to_v_m[tok]
        use_u = du <= dv
        best[tok] = np.where(use_u, du, dv) + targets.offset_m[tok]
        best_src[tok] = np.where(use_u, which[targets.u[tok]], which[targets.v[tok]])
    s, t = _same_edge_pairs(sources, targets)
    if s.size:
        direct = _direct(sources, targets, s, t)
        better = direct < best[t]
        # several sources on one edge: apply in order of decreasing distance so the least wins
        order = np.argsort(-direct[better], kind="stable")
        tt, ss, dd = t[better][order], s[better][order], direct[better][order]
        best[tt] = dd
        best_src[tt] = ss
    far = best > limit_m
    best[far] = np.inf
    best_src[far] = -1
    best_src[best_src < -1] = -1
    return best, best_src


def _reached_edges(
    network: WalkNetwork, nd: NDArray[np.float64], radius_m: float
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """``(row, edge)`` pairs, each once, of edges with an end node within ``radius_m``."""
    rows, nodes = np.nonzero(nd <= radius_m)
    inc_ptr, inc_edge = network.node_edges
    cnt = inc_ptr[nodes + 1] - inc_ptr[nodes]
    r = np.repeat(rows, cnt)
    start = np.repeat(inc_ptr[nodes], cnt)
    e = inc_edge[start + np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)]
    # an edge reached from both ends is kept once: from its u end
    n = np.repeat(nodes, cnt)
    u = network.edge_uv[e, 0]
    once = (n == u) | (nd[r, u] > radius_m)
    return r[once], e[once]


def _reachable_pieces(
    network: WalkNetwork,
    nd: NDArray[np.float64],
    radius_m: float,
    reached: tuple[NDArray[np.int64], NDArray[np.int64]] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Edge pieces within ``radius_m`` for each row of node distances.

    Only edges touching a reached node are looked at (``reached``: the pairs of
    :func:`_reached_edges` for this or any larger radius). Returns ``(coords (p, 2, 2),
    row index (p,))``; a piece is a whole edge, or the part reached from one end.
    """
    r, e = _reached_edges(network, nd, radius_m) if reached is None else reached
    u, v = network.edge_uv[e, 0], network.edge_uv[e, 1]
    length = network.edge_length_m[e]
    ru = radius_m - nd[r, u]  # slack left on arrival (negative: not reached)
    rv = radius_m - nd[r, v]
    full = (ru >= length) | (rv >= length) | ((ru >= 0) & (rv >= 0) & (ru + rv >= length))
    pu, pv = network.node_xy[u], network.node_xy[v]
    pieces = [np.stack([pu[full], pv[full]], axis=1)]
    rows_out = [r[full]]
    for slack, a, b in ((ru, pu, pv), (rv, pv, pu)):
        part = ~full & (slack > 0)
        f = (slack[part] / length[part])[:, None]
        pieces.append(np.stack([a[part], a[part] + f * (b[part] - a[part])], axis=1))
        rows_out.append(r[part])
    return np.concatenate(pieces), np.concatenate(rows_out)


def _own_edge(network: WalkNetwork, sources: SnappedPoints, lim: float) -> tuple[NDArray, NDArray]:
    """The source's own edge, from the snapped position both ways: ``(coords (q, 2, 2), rows)``."""
    reach = lim - sources.offset_m
    has = reach > 0
    e = sources.edge[has]
    a = sources.to_u_m[has]
    length = network.edge_length_m[e]
    lo = np.clip(a - reach[has], 0, length) / np.maximum(length, _MIN_EDGE_M)
    hi = np.clip(a + reach[has], 0, length) / np.maximum(length, _MIN_EDGE_M)
    pu = network.node_xy[network.edge_uv[e, 0]]
    pv = network.node_xy[network.edge_uv[e, 1]]
    own = np.stack([pu + lo[:, None] * (pv - pu), pu + hi[:, None] * (pv - pu)], axis=1)
    return own, np.flatnonzero(has)


def isochrone_polygons(
    network: WalkNetwork,
    sources: SnappedPoints,
    *,
    limits_m: Sequence[float],
    buffer_m: float = 30.0,
    method: Literal["hull", "buffer"] = "hull",
    hull_ratio: float = 0.3,
    hull_cell_m: float | None = None,
) -> NDArray[np.object_]:
    """Walking isochrones: the area around the reachable network.

    Parameters
    ----------
    network
        The walking network.
    sources
        Snapped sources (facilities).
    limits_m
        Walking distances (metres), e.g. ``walk_distance_m([5, 10, 15], speed_kmh=4)``.
    buffer_m
        How far from a reachable street a home may stand and still count; the
        straight walk from the street to the door.
    method
        ``"hull"`` (default, fast): a concave hull (``hull_ratio``; 0 hugs the streets,
        1 is the convex hull) of the reachable street pieces, grown by ``buffer_m``.
        ``"buffer"``: the union of the reachable pieces buffered by ``buffer_m``
        (exact, but about a hundred times slower: for a few facilities, not a district).
    hull_cell_m
        The hull is drawn through one point per isochrone and cell of this size (metres):
        the nodes reached and the tips of the pieces reached part-way. Default: a twelfth
        of the limit, at least 30 m (about the same number of points for every limit).

    Returns
    -------
    numpy.ndarray
        ``(n_sources, n_limits)`` array of (Multi)Polygons; empty polygons where the
        source is unsnapped.

    Notes
    -----
    One batched shortest-path search serves every limit, and the street pieces next to the
    nodes reached within the longest limit are found once and cut to each limit.
    """
    limits = np.asarray(limits_m, dtype=float)
    k = len(sources)
    out = np.empty((k, limits.size), dtype=object)
    out[:] = shapely.Polygon()
    if k == 0 or limits.size == 0:
        return out
    nd = node_distances(network, sources, limit_m=float(limits.max()))
    ok = np.flatnonzero(sources.edge >= 0)
    nd = nd[ok]
    src = sources.take(ok)
    reached = _reached_edges(network, nd, float(limits.max()))
    frontier = None if method == "buffer" else _Frontier.of(network, nd, reached)
    for j, lim in enumerate(limits):
        lim = float(lim)
        if frontier is None:
            coords, rows = _reachable_pieces(network, nd, lim, reached)
            own, orows = _own_edge(network, src, lim)
            coords, rows = np.concatenate([coords, own]), np.concatenate([rows, orows])
            order = np.argsort(rows, kind="stable")
            coords, rows = coords[order], rows[order]
            present, dense = np.unique(rows, return_inverse=True)
            if present.size == 0:
                continue
            multi = shapely.multilinestrings(shapely.linestrings(coords), indices=dense)
            out[ok[present], j] = shapely.buffer(multi, buffer_m, quad_segs=2)
            continue
        pts, prow = frontier.points(network, src, lim)
        if prow.size == 0:
            continue
        cell_m = hull_cell_m if hull_cell_m is not None else max(30.0, lim / 12.0)
        cell = np.floor((pts - network.node_xy.min(axis=0)) / cell_m).astype(np.int64)
        key = (prow << 42) | (cell[:, 0] << 21) | cell[:, 1]
        order = np.argsort(key)
        key = key[order]
        first = np.ones(key.size, dtype=bool)
        first[1:] = key[1:] != key[:-1]
        xy = pts[order[first]]  # the first point of each cell (a lattice of centres would make
        urow = key[first] >> 42  # a degenerate, slow Delaunay triangulation)
        present, dense = np.unique(urow, return_inverse=True)
        mp = shapely.multipoints(xy, indices=dense)
        polys = shapely.buffer(shapely.concave_hull(mp, ratio=hull_ratio), buffer_m, quad_segs=2)
        # a cell's first point is on the hull or inside; the others are checked
        rest = np.ones(prow.size, dtype=bool)
        rest[order[first]] = False
        out[ok[present], j] = _with_stragglers(polys, present, pts[rest], prow[rest], buffer_m)
    return out


def _with_stragglers(
    polys: NDArray[np.object_], present: NDArray[np.int64], pts: NDArray[np.float64],
    prow: NDArray[np.int64], buffer_m: float,
) -> NDArray[np.object_]:
    """Every reached point inside its isochrone: a point the hull of its cell's representative
    left out is added with its own ``buffer_m`` disc (rare: a few per thousand)."""
    pos = np.searchsorted(present, prow)
    shapely.prepare(polys)
    out_ = ~shapely.intersects_xy(polys[pos], pts[:, 0], pts[:, 1])
    if not out_.any():
        return polys
    polys = polys.copy()
    order = np.argsort(pos[out_], kind="stable")
    groups, which = np.unique(pos[out_][order], return_inverse=True)
    discs = shapely.buffer(shapely.multipoints(pts[out_][order], indices=which), buffer_m, quad_segs=2)
    polys[groups] = shapely.union(polys[groups], discs)
    return polys


@dataclass(frozen=True, eq=False)
class _Frontier:
    """Everything reached within the longest limit, once: the hull points of any shorter limit
    are then a filter on these arrays."""

    node_row: NDArray[np.int64]
    node: NDArray[np.int64]
    node_d: NDArray[np.float64]
    edge_row: NDArray[np.int64]
    edge: NDArray[np.int64]
    du: NDArray[np.float64]
    dv: NDArray[np.float64]

    @classmethod
    def of(cls, network: WalkNetwork, nd: NDArray[np.float64],
           reached: tuple[NDArray[np.int64], NDArray[np.int64]]) -> _Frontier:
        rows, nodes = np.nonzero(np.isfinite(nd))
        r, e = reached
        return cls(rows, nodes, nd[rows, nodes], r, e,
                   nd[r, network.edge_uv[e, 0]], nd[r, network.edge_uv[e, 1]])

    def points(self, network: WalkNetwork, src: SnappedPoints, lim: float
               ) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        """Points the hull of each row goes through: reached nodes, the tips of edges reached
        part-way, and the reached stretch of the source's own edge. Returns ``(xy, row)``."""
        at = self.node_d <= lim
        e, r = self.edge, self.edge_row
        length = network.edge_length_m[e]
        ru = lim - self.du
        rv = lim - self.dv
        meet = (ru >= 0) & (rv >= 0) & (ru + rv >= length)
        tip_u = (ru > 0) & (ru < length) & ~meet
        tip_v = (rv > 0) & (rv < length) & ~meet
        u, v = network.edge_uv[e, 0], network.edge_uv[e, 1]
        fu = ru[tip_u] / length[tip_u]
        fv = rv[tip_v] / length[tip_v]
        pu_t, pv_t = network.node_xy[u[tip_u]], network.node_xy[v[tip_u]]
        pv_s, pu_s = network.node_xy[v[tip_v]], network.node_xy[u[tip_v]]
        own, orows = _own_edge(network, src, lim)
        xy = np.concatenate([network.node_xy[self.node[at]],
                             pu_t + fu[:, None] * (pv_t - pu_t),
                             pv_s + fv[:, None] * (pu_s - pv_s),
                             own.reshape(-1, 2)])
        row = np.concatenate([self.node_row[at], r[tip_u], r[tip_v], np.repeat(orows, 2)])
        return xy, row.astype(np.int64)
