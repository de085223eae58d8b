"""Walking networks on hand-drawn streets with known answers (metres, EPSG:32650).

The plus and the square used below::

        (0,300)                       (0,100)+-------+(100,100)
           |                                 |       |
    (-300,0)--+--(300,0)                     |       |
           |  (0,0)                   (0,0)  +-------+(100,0)
        (0,-300)
"""

from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely import LineString, Point

from geo.crs import ProjectionRequiredError
from geo.network import (
    NetworkError,
    build_walk_network,
    isochrone_polygons,
    nearest_source_distances,
    network_distances,
    node_distances,
    snap_points,
    walk_distance_m,
)

CRS = 32650


def lines(*coords) -> gpd.GeoSeries:
    return gpd.GeoSeries([LineString(c) for c in coords], crs=CRS)


def pts(*xy) -> gpd.GeoSeries:
    return gpd.GeoSeries([Point(p) for p in xy], crs=CRS)


PLUS = lines([(-300, 0), (300, 0)], [(0, -300), (0, 300)])
SQUARE = lines([(0, 0), (100, 0), (100, 100), (0, 100), (0, 0)])


def test_crossing_lines_are_noded_into_a_junction() -> None:
    net = build_walk_network(PLUS)
    assert (net.n_nodes, net.n_edges) == (5, 4)
    assert sorted(net.edge_length_m.tolist()) == [300.0] * 4
    assert np.any(np.all(np.isclose(net.node_xy, [0, 0]), axis=1))


def test_rivers_and_railways_are_not_walked() -> None:
    roads = gpd.GeoDataFrame(
        {"kind": ["local", "river", "railway", "local"], "walkable": [True, True, True, False]},
        geometry=[LineString([(0, 0), (100, 0)]), LineString([(50, -50), (50, 50)]),
                  LineString([(0, 10), (100, 10)]), LineString([(0, 20), (100, 20)])],
        crs=CRS,
    )
    net = build_walk_network(roads)
    assert (net.n_nodes, net.n_edges) == (2, 1)


def test_hand_computed_distances_with_offsets() -> None:
    net = build_walk_network(PLUS)
    # 10 m off the west arm at x=-200; targets on the north arm and 50 m past the east end
    src = snap_points(net, pts((-200, 10)))
    dst = snap_points(net, pts((5, 250), (350, 0), (-150, -20)))
    d = network_distances(net, src, dst)
    assert d.round(6).tolist() == [[10 + 200 + 250 + 5, 10 + 200 + 300 + 50, 10 + 50 + 20]]
    assert network_distances(net, src, dst, limit_m=400).round(6).tolist() == [[np.inf, np.inf, 80.0]]


def test_same_edge_pairs_walk_straight_along_the_edge() -> None:
    net = build_walk_network(lines([(0, 0), (1000, 0)]))
    p = snap_points(net, pts((400, 3), (450, -4)))
    d = network_distances(net, p)
    assert d.round(6).tolist() == [[0.0, 57.0], [57.0, 0.0]]  # 3 + 50 + 4


def test_loop_takes_the_shorter_way_round() -> None:
    net = build_walk_network(SQUARE)
    p = snap_points(net, pts((10, 0), (0, 90), (90, -2)))
    d = network_distances(net, p).round(6)
    assert d[0, 1] == 100.0  # west, through the corner (0, 0)
    assert d[1, 2] == d[2, 1] == 90 + 90 + 2  # through (0, 0), not 10 + 100 + 100 + 10 + 2
    q = snap_points(net, pts((90, 0), (90, 100)))
    assert network_distances(net, q)[0, 1].round(6) == 10 + 100 + 10  # east, round (100, *)


def test_nearest_source_matches_the_minimum_of_all_pairs() -> None:
    net = build_walk_network(PLUS)
    src = snap_points(net, pts((-250, 0), (0, 280), (100, 0)))
    dst = snap_points(net, pts((-260, 0), (0, -100), (120, 5), (0, 150), (300, 0)))
    full = network_distances(net, src, dst)
    d, which = nearest_source_distances(net, src, dst)
    np.testing.assert_allclose(d, full.min(axis=0))
    assert which.tolist() == full.argmin(axis=0).tolist()
    d2, w2 = nearest_source_distances(net, src, dst, limit_m=100)
    assert np.isinf(d2[[1, 3]]).all() and (w2[[1, 3]] == -1).all()


def test_far_points_are_unsnapped_and_unreachable() -> None:
    net = build_walk_network(PLUS)
    p = snap_points(net, pts((5, 100), (1000, 1000)), max_offset_m=100)
    assert p.edge[1] == -1 and np.isinf(p.offset_m[1])
    d = network_distances(net, p)
    assert np.isinf(d[0, 1]) and np.isinf(d[1, 0]) and d[0, 0] == 0.0


def test_homes_are_not_stranded_on_a_footpath_that_joins_nothing() -> None:
    main = [(0, 0), (2000, 0)]
    stub = [(500, 30), (520, 30)]  # an isolated 20 m path, nearer to the home than the street
    net = build_walk_network(lines(main, stub))
    p = snap_points(net, pts((510, 35), (600, 0)))
    assert p.offset_m[0] == pytest.approx(35.0)
    assert network_distances(net, p)[0, 1] == pytest.approx(35 + 90)
    alone = snap_points(net, pts((510, 35)), min_component_m=0)
    assert alone.offset_m[0] == pytest.approx(5.0)


def test_projected_crs_is_required_and_lines_only() -> None:
    with pytest.raises(ProjectionRequiredError, match="project"):
        build_walk_network(PLUS.to_crs(4326))
    with pytest.raises(NetworkError, match="not lines"):
        build_walk_network(gpd.GeoSeries([shapely.box(0, 0, 1, 1)], crs=CRS))
    with pytest.raises(NetworkError, match="no walkable"):
        build_walk_network(gpd.GeoDataFrame({"kind": ["river"]}, geometry=[LineString([(0, 0), (1, 0)])],
                                             crs=CRS))


def test_points_in_another_crs_are_refused() -> None:
    net = build_walk_network(PLUS)
    with pytest.raises(NetworkError, match="to_crs"):
        snap_points(net, pts((0, 0)).to_crs(4326))


@pytest.mark.parametrize("method", ["hull", "buffer"])
def test_isochrones_on_the_plus_by_hand(method: str) -> None:
    net = build_walk_network(PLUS)
    five_min = float(walk_distance_m(5, speed_kmh=4.0))  # 333.3 m
    src = snap_points(net, pts((0, 0), (-200, 0)))
    poly = isochrone_polygons(net, src, limits_m=[150, five_min], buffer_m=10, method=method)
    assert poly.shape == (2, 2)
    centre_150, centre_5 = poly[0]
    for x, y in [(140, 0), (-140, 0), (0, 140), (0, -140)]:
        assert centre_150.contains(Point(x, y))
    for x, y in [(170, 0), (0, -170)]:
        assert not centre_150.contains(Point(x, y))
    assert centre_5.contains(Point(290, 0)) and centre_5.contains(Point(0, 295))
    # from (-200, 0): 200 m to the junction leaves 133 m on the other arms
    west = poly[1, 1]
    assert west.contains(Point(-295, 0)) and west.contains(Point(0, 120)) and west.contains(Point(125, 0))
    assert not west.contains(Point(0, 150)) and not west.contains(Point(150, 0))


def test_isochrone_from_the_middle_of_an_edge_reaches_both_ways() -> None:
    net = build_walk_network(lines([(0, 0), (1000, 0)]))
    iso = isochrone_polygons(net, snap_points(net, pts((500, 0))), limits_m=[300], buffer_m=5,
                             method="buffer")[0, 0]
    assert iso.contains(Point(210, 0)) and iso.contains(Point(790, 0))
    assert not iso.contains(Point(190, 0)) and not iso.contains(Point(810, 0))
    assert iso.area == pytest.approx(600 * 10 + np.pi * 25, rel=0.02)


def test_walk_distance() -> None:
    assert walk_distance_m(15, speed_kmh=4.0) == pytest.approx(1000.0)
    assert walk_distance_m(15, speed_kmh=3.6) == pytest.approx(900.0)
    with pytest.raises(ValueError):
        walk_distance_m(5, speed_kmh=0)


def test_subnetwork_keeps_distances_inside_the_grown_box() -> None:
    # a 10 x 10 street grid, 100 m blocks
    grid = [[(0, y), (1000, y)] for y in range(0, 1001, 100)] + [[(x, 0), (x, 1000)] for x in range(0, 1001, 100)]
    net = build_walk_network(lines(*grid))
    inner = [(420, 430), (560, 480), (480, 600)]
    d_full = network_distances(net, snap_points(net, pts(*inner)), limit_m=400)
    sub = net.subnetwork((420 - 200, 430 - 200, 560 + 200, 600 + 200))
    d_sub = network_distances(sub, snap_points(sub, pts(*inner)), limit_m=400)
    np.testing.assert_allclose(d_full, d_sub)
    assert sub.n_nodes < net.n_nodes


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(3, 6),
    seed=st.integers(0, 10_000),
)
def test_node_distances_agree_with_networkx(n: int, seed: int) -> None:
    """Random jittered street grids: distances between nodes equal networkx's Dijkstra."""
    rng = np.random.default_rng(seed)
    xy = np.stack(np.meshgrid(np.arange(n) * 100.0, np.arange(n) * 100.0), -1).reshape(-1, 2)
    xy += rng.uniform(-20, 20, xy.shape)
    idx = np.arange(n * n).reshape(n, n)
    pairs = [(idx[i, j], idx[i, j + 1]) for i in range(n) for j in range(n - 1)]
    pairs += [(idx[i, j], idx[i + 1, j]) for i in range(n - 1) for j in range(n)]
    keep = rng.random(len(pairs)) < 0.8
    pairs = [p for p, k in zip(pairs, keep, strict=True) if k] or pairs[:1]
    segs = [LineString([xy[a], xy[b]]) for a, b in pairs]
    # segments only touch at their ends, so noding adds nothing
    net = build_walk_network(gpd.GeoSeries(segs, crs=CRS))
    g = nx.Graph()
    for a, b in pairs:
        g.add_edge(a, b, weight=float(np.hypot(*(xy[a] - xy[b]))))
    used = sorted(g.nodes)
    p = snap_points(net, xy[used], min_component_m=0)
    d = network_distances(net, p)
    for k, a in enumerate(used):
        ref = nx.single_source_dijkstra_path_length(g, a)
        for m, b in enumerate(used):
            assert d[k, m] == pytest.approx(ref.get(b, np.inf), abs=0.05)
    nd = node_distances(net, p.take([0]))
    assert np.isfinite(nd).sum() == len(nx.node_connected_component(g, used[0]))
