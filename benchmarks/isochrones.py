"""Isochrone benchmark: batched sparse shortest paths vs networkx ``ego_graph``, on the full demo.

For every facility of the full demo district, the street nodes within a 15-minute walk
(1,000 m at 4 km/h): GridPulse runs one batched ``scipy.sparse.csgraph.dijkstra`` with
``indices=`` and ``limit=``; the peer runs ``networkx.ego_graph(G, node, radius=1000,
distance="weight")`` per facility (on a sample of ``--nx-sample`` facilities, then per
source). Both reach the same node sets (checked on the sample). Then the whole job the
15-minute-circle page needs: 5/10/15-minute isochrone polygons for every facility and
the coverage table of residents by facility kind (``geo.accessibility``), wall time; and
the exact union-of-buffers polygons timed on a sample of 20 facilities and projected.

Isochrone polygons before and after (issue 14), in the same run on the same network: the
code as it was (kept below as ``old_isochrone_polygons``) against ``geo.network``'s, each
the best of ``--repeats`` runs, wall and CPU seconds (the machine is shared: CPU time says
more about the code); the reached node sets they draw from (identical by construction) and
whether every reached node lies inside its polygon; the overlap of old and new polygons
(intersection over union of the areas).

Usage::

    .venv/bin/python benchmarks/isochrones.py [--nx-sample 40] [--speed-kmh 4]

Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import networkx as nx
import numpy as np
import shapely
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collections.abc import Sequence  # noqa: E402
from typing import Literal  # noqa: E402

from geo.accessibility import coverage_table, gate_exits, isochrones, nearest_by_kind  # noqa: E402
from geo.crs import local_metric_crs  # noqa: E402
from geo.network import (  # noqa: E402
    _MIN_EDGE_M,
    SnappedPoints,
    WalkNetwork,
    build_walk_network,
    isochrone_polygons,
    node_distances,
    snap_points,
    walk_distance_m,
)


# ---------------------------------------------------------------- the code before issue 14
def _old_reachable_pieces(
    network: WalkNetwork,
    nd: NDArray[np.float64],
    radius_m: float,
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Edge pieces within ``radius_m`` for each row of node distances.

    Only edges touching a reached node are looked at. Returns ``(coords (p, 2, 2),
    row index (p,))``; a piece is a whole edge, or the part reached from one end.
    """
    rows, nodes = np.nonzero(nd <= radius_m)
    inc_ptr, inc_edge = network.node_edges
    cnt = inc_ptr[nodes + 1] - inc_ptr[nodes]
    r = np.repeat(rows, cnt)
    start = np.repeat(inc_ptr[nodes], cnt)
    e = inc_edge[start + np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)]
    key = np.unique(r * network.n_edges + e)
    r, e = key // network.n_edges, key % network.n_edges
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


def old_isochrone_polygons(
    network: WalkNetwork,
    sources: SnappedPoints,
    *,
    limits_m: Sequence[float],
    buffer_m: float = 30.0,
    method: Literal["hull", "buffer"] = "hull",
    hull_ratio: float = 0.3,
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

    Returns
    -------
    numpy.ndarray
        ``(n_sources, n_limits)`` array of (Multi)Polygons; empty polygons where the
        source is unsnapped.
    """
    limits = np.asarray(limits_m, dtype=float)
    k = len(sources)
    out = np.empty((k, limits.size), dtype=object)
    out[:] = shapely.Polygon()
    if k == 0 or limits.size == 0:
        return out
    nd = node_distances(network, sources, limit_m=float(limits.max()))
    ok = np.flatnonzero(sources.edge >= 0)
    for j, lim in enumerate(limits):
        coords, rows = _old_reachable_pieces(network, nd[ok], float(lim))
        # the source's own edge, from the snapped position both ways
        reach = lim - sources.offset_m[ok]
        has = reach > 0
        e = sources.edge[ok][has]
        a = sources.to_u_m[ok][has]
        length = network.edge_length_m[e]
        lo = np.clip(a - reach[has], 0, length) / np.maximum(length, _MIN_EDGE_M)
        hi = np.clip(a + reach[has], 0, length) / np.maximum(length, _MIN_EDGE_M)
        pu = network.node_xy[network.edge_uv[e, 0]]
        pv = network.node_xy[network.edge_uv[e, 1]]
        own = np.stack([pu + lo[:, None] * (pv - pu), pu + hi[:, None] * (pv - pu)], axis=1)
        coords = np.concatenate([coords, own])
        rows = np.concatenate([rows, np.flatnonzero(has)])
        order = np.argsort(rows, kind="stable")
        coords, rows = coords[order], rows[order]
        present, dense = np.unique(rows, return_inverse=True)
        if present.size == 0:
            continue
        if method == "buffer":
            multi = shapely.multilinestrings(shapely.linestrings(coords), indices=dense)
            polys = shapely.buffer(multi, buffer_m, quad_segs=2)
        else:
            pts = coords.reshape(-1, 2)
            prow = np.repeat(dense, 2)
            # one point per isochrone and 30 m cell is plenty for the hull
            cell = np.floor((pts - pts.min(axis=0)) / 30.0).astype(np.int64)
            key = (prow << 42) | (cell[:, 0] << 21) | cell[:, 1]
            _, first = np.unique(key, return_index=True)
            mp = shapely.multipoints(pts[first], indices=prow[first])
            polys = shapely.buffer(shapely.concave_hull(mp, ratio=hull_ratio), buffer_m, quad_segs=2)
        out[ok[present], j] = polys
    return out


def _best(fn, repeats: int) -> tuple[float, float]:
    """Best wall and CPU seconds of ``repeats`` calls."""
    wall, cpu = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return round(min(wall), 3), round(min(cpu), 3)


def before_after(net: WalkNetwork, snapped: SnappedPoints, limits: NDArray[np.float64], repeats: int) -> dict:
    """Old and new isochrone polygons on the same network and sources."""
    old_w, old_c = _best(lambda: old_isochrone_polygons(net, snapped, limits_m=limits), repeats)
    new_w, new_c = _best(lambda: isochrone_polygons(net, snapped, limits_m=limits), repeats)
    old = old_isochrone_polygons(net, snapped, limits_m=limits)
    new = isochrone_polygons(net, snapped, limits_m=limits)
    nd = node_distances(net, snapped, limit_m=float(limits.max()))
    outside = {"old": 0, "new": 0}
    for j, lim in enumerate(limits):
        r, n = np.nonzero(nd <= lim)
        for name, polys in (("old", old), ("new", new)):
            inside = shapely.intersects_xy(polys[r, j], net.node_xy[n, 0], net.node_xy[n, 1])
            outside[name] += int((~inside).sum())
    inter = shapely.area(shapely.intersection(old, new)).sum()
    union = shapely.area(shapely.union(old, new)).sum()
    return {
        "old": {"wall_s": old_w, "cpu_s": old_c}, "new": {"wall_s": new_w, "cpu_s": new_c},
        "speedup_cpu": round(old_c / new_c, 2), "speedup_wall": round(old_w / new_w, 2),
        "reached_node_pairs": int(np.isfinite(nd).sum()),
        "reached_nodes_outside_polygon": outside,
        "area_km2": {"old": round(float(shapely.area(old).sum()) / 1e6, 1),
                     "new": round(float(shapely.area(new).sum()) / 1e6, 1)},
        "iou_old_new": round(float(inter / union), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nx-sample", type=int, default=40)
    ap.add_argument("--speed-kmh", type=float, default=4.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from data.demo import generate

    layers = generate("full", seed=0)
    metric = local_metric_crs(layers["roads"])
    roads = layers["roads"].to_crs(metric)
    fac = layers["facilities"].to_crs(metric)
    homes = layers["buildings"].to_crs(metric)
    homes = homes[homes["population"] > 0]

    t = time.perf_counter()
    net = build_walk_network(roads)
    t_build = time.perf_counter() - t
    limit = float(walk_distance_m(15, speed_kmh=args.speed_kmh))
    snapped = snap_points(net, fac)
    # sources at nodes for a like-for-like comparison with ego_graph
    src_nodes = np.where(snapped.to_u_m <= snapped.to_v_m, snapped.u, snapped.v)
    at_nodes = snap_points(net, net.node_xy[src_nodes])

    t = time.perf_counter()
    nd = node_distances(net, at_nodes, limit_m=limit)
    t_batch = time.perf_counter() - t
    reach_batch = [set(np.flatnonzero(np.isfinite(row)).tolist()) for row in nd]

    g = nx.Graph()
    g.add_weighted_edges_from(
        (int(u), int(v), float(w)) for (u, v), w in zip(net.edge_uv, net.edge_length_m, strict=True))
    sample = np.linspace(0, len(src_nodes) - 1, min(args.nx_sample, len(src_nodes))).round().astype(int)
    t = time.perf_counter()
    reach_nx = [set(nx.ego_graph(g, int(src_nodes[i]), radius=limit, distance="weight").nodes)
                for i in sample]
    t_nx = time.perf_counter() - t
    agree = all(a == reach_batch[i] for a, i in zip(reach_nx, sample, strict=True))

    # the page's job: isochrones (3 times) for every facility and the coverage table
    t = time.perf_counter()
    iso = isochrones(net, fac, minutes=(5, 10, 15), speed_kmh=args.speed_kmh)
    t_iso = time.perf_counter() - t
    t = time.perf_counter()
    near = nearest_by_kind(net, homes, fac, limit_m=limit)
    cov = coverage_table(net, homes, fac, minutes=(5, 10, 15), speed_kmh=args.speed_kmh, nearest=near)
    t_cov = time.perf_counter() - t
    # the same through the compounds' gates (residents walk to a gate, then the streets)
    gates = layers["gates"].to_crs(metric)
    t = time.perf_counter()
    exits = gate_exits(homes, gates)
    near_g = nearest_by_kind(net, homes, fac, limit_m=limit, exits=exits)
    cov_g = coverage_table(net, homes, fac, minutes=(5, 10, 15), speed_kmh=args.speed_kmh, nearest=near_g)
    t_cov_g = time.perf_counter() - t
    few = fac.iloc[:: max(1, len(fac) // 20)]
    t = time.perf_counter()
    isochrones(net, few, minutes=(5, 10, 15), speed_kmh=args.speed_kmh, method="buffer")
    t_iso_buffer = (time.perf_counter() - t) * len(fac) / len(few)

    limits = walk_distance_m([5, 10, 15], speed_kmh=args.speed_kmh)
    iso_before_after = before_after(net, snapped, limits, args.repeats)
    t = time.perf_counter()
    build_walk_network(roads)  # the page keeps one network per store version (see dashboard)
    t_build2 = time.perf_counter() - t

    n = len(src_nodes)
    per_batch_ms = 1000 * t_batch / n
    per_nx_ms = 1000 * t_nx / len(sample)
    out = {
        "nodes": net.n_nodes, "edges": net.n_edges, "facilities": n, "homes": len(homes),
        "build_network_s": round(t_build, 3), "build_network_again_s": round(t_build2, 3),
        "isochrone_polygons_5_10_15": iso_before_after,
        "limit_m": limit,
        "csgraph_batched": {"seconds": round(t_batch, 3), "ms_per_source": round(per_batch_ms, 3)},
        "networkx_ego_graph": {"sample": len(sample), "seconds": round(t_nx, 3),
                               "ms_per_source": round(per_nx_ms, 2),
                               "projected_all_s": round(per_nx_ms * n / 1000, 2)},
        "speedup": round(per_nx_ms / per_batch_ms, 1),
        "same_reachable_nodes": agree,
        "page_job": {
            "isochrones_hull_s": round(t_iso, 3), "isochrones": len(iso),
            "coverage_table_s": round(t_cov, 3), "rows": len(cov),
            "total_s": round(t_iso + t_cov, 3),
            "isochrones_exact_buffer_projected_s": round(t_iso_buffer, 1),
        },
        "coverage_15min": {r.kind: r.share for r in cov.itertuples() if r.minutes == 15},
        "coverage_through_gates": {
            "seconds": round(t_cov_g, 3), **exits.summary(homes["population"].to_numpy(dtype=float)),
            "share_15min": {r.kind: [r.share, r.elderly_share] for r in cov_g.itertuples() if r.minutes == 15},
            "share_15min_without_gates": {r.kind: [r.share, r.elderly_share] for r in cov.itertuples()
                                          if r.minutes == 15},
        },
    }
    print(json.dumps(out, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
