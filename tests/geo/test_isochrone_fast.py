"""The fast isochrone path (issue 14) against what it must keep: every street node reached
within the limit lies inside its polygon, and no node far beyond the limit does,
on random street lattices with random gaps (EPSG:32650). The benchmark compares the
polygons with the code before (benchmarks/isochrones.py)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely import LineString

from geo.network import build_walk_network, isochrone_polygons, node_distances, snap_points

CRS = 32650


def lattice(n: int, step: float, drop: list[bool]) -> gpd.GeoSeries:
    """An n x n street lattice, ``step`` metres apart, without the segments flagged in ``drop``."""
    segs = []
    for i in range(n):
        for j in range(n - 1):
            segs.append(LineString([(i * step, j * step), (i * step, (j + 1) * step)]))
            segs.append(LineString([(j * step, i * step), ((j + 1) * step, i * step)]))
    keep = [s for s, d in zip(segs, drop + [False] * len(segs), strict=False) if not d]
    return gpd.GeoSeries(keep, crs=CRS)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(4, 7), st.sampled_from([60.0, 90.0, 140.0]),
       st.lists(st.booleans(), min_size=0, max_size=60),
       st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=4),
       st.sampled_from([(150.0, 333.3), (333.3, 666.7, 1000.0)]))
def test_reached_nodes_inside_and_far_nodes_outside(n, step, drop, where, limits) -> None:
    net = build_walk_network(lattice(n, step, [d and k % 3 == 0 for k, d in enumerate(drop)]))
    size = (n - 1) * step
    src = snap_points(net, np.array([(x * size, y * size) for x, y in where]), min_component_m=0)
    polys = isochrone_polygons(net, src, limits_m=limits, buffer_m=30.0)
    nd = node_distances(net, src, limit_m=np.inf)
    for j, lim in enumerate(limits):
        inside = shapely.intersects_xy(polys[:, j][:, None], net.node_xy[None, :, 0], net.node_xy[None, :, 1])
        reached = nd <= lim
        assert inside[reached].all()  # every reached node is drawn
        # a node is drawn only when it is within the hull's reach of the reached streets:
        # at most a lattice step (the hull may close a block) plus the buffer beyond the limit
        far = nd > lim + step * np.sqrt(2) + 30.0 + max(30.0, lim / 12) * np.sqrt(2)
        assert not (inside & far & np.isfinite(nd)).any()
