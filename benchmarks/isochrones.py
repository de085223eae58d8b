"""Isochrone benchmark: batched sparse shortest paths vs networkx ``ego_graph``, on the full demo.

For every facility of the full demo district, the street nodes within a 15-minute walk
(1,000 m at 4 km/h): GridPulse runs one batched ``scipy.sparse.csgraph.dijkstra`` with
``indices=`` and ``limit=``; the peer runs ``networkx.ego_graph(G, node, radius=1000,
distance="weight")`` per facility (on a sample of ``--nx-sample`` facilities, then per
source). Both reach the same node sets (checked on the sample). Then the whole job the
15-minute-circle page needs: 5/10/15-minute isochrone polygons for every facility and
the coverage table of residents by facility kind (``geo.accessibility``), wall time; and
the exact union-of-buffers polygons timed on a sample of 20 facilities and projected.

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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from geo.accessibility import coverage_table, isochrones, nearest_by_kind  # noqa: E402
from geo.crs import local_metric_crs  # noqa: E402
from geo.network import build_walk_network, node_distances, snap_points, walk_distance_m  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nx-sample", type=int, default=40)
    ap.add_argument("--speed-kmh", type=float, default=4.0)
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
    few = fac.iloc[:: max(1, len(fac) // 20)]
    t = time.perf_counter()
    isochrones(net, few, minutes=(5, 10, 15), speed_kmh=args.speed_kmh, method="buffer")
    t_iso_buffer = (time.perf_counter() - t) * len(fac) / len(few)

    n = len(src_nodes)
    per_batch_ms = 1000 * t_batch / n
    per_nx_ms = 1000 * t_nx / len(sample)
    out = {
        "nodes": net.n_nodes, "edges": net.n_edges, "facilities": n, "homes": len(homes),
        "build_network_s": round(t_build, 3),
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
    }
    print(json.dumps(out, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
