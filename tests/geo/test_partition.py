"""Re-partitioning: hand-drawn lattices with known best partitions, infeasible cases,
property tests, and whole communities drawn in metres near Gulou (EPSG:32650).

Lattices are written as ASCII art: one character per cell, ``.`` = 100 households,
digits = that many hundred households (``9`` = a 900-household tower), ``0`` = none.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Transformer
from shapely import LineString, Point, box

from geo.partition import (
    DistanceTable,
    Partition,
    PartitionInputError,
    PartitionProblem,
    UnitGraph,
    choose_k,
    comparison_table,
    contiguous,
    default_constraints,
    nested,
    solve,
    validate,
    violations,
    within_band,
    within_radius,
)
from layers.planner import repartition  # grid codes and names: the planner's

RNG = np.random.default_rng


def lattice(art: str, *, cell_m: float = 100.0, current: str | None = None) -> UnitGraph:
    rows = [r.strip() for r in art.strip().splitlines()]
    ny, nx = len(rows), len(rows[0])
    # row-major from the bottom row up, so the drawing reads like a map
    chars = [c for r in reversed(rows) for c in r]
    w = np.array([100.0 if c == "." else 100.0 * int(c) for c in chars])
    cur = None
    if current is not None:
        crow = [r.strip() for r in current.strip().splitlines()]
        cur = np.array([ord(c) - ord("A") for r in reversed(crow) for c in r])
    return UnitGraph.lattice(nx, ny, weight=w, cell_m=cell_m, current=cur)


def regions_of(p: Partition) -> list[set[int]]:
    return sorted((set(m.tolist()) for m in p.regions), key=min)


# ------------------------------------------------------------------------------ known answers
def test_two_by_four_splits_into_two_squares() -> None:
    g = lattice("""
        ....
        ....
    """)
    p = solve(PartitionProblem(g, lo=300, hi=500), rng=RNG(0))
    assert regions_of(p) == [{0, 1, 4, 5}, {2, 3, 6, 7}]
    assert validate(p, default_constraints(p.problem)) == []
    np.testing.assert_allclose(p.polsby_popper, math.pi / 4)


def test_four_by_four_splits_into_four_squares() -> None:
    g = lattice("""
        ....
        ....
        ....
        ....
    """)
    p = solve(PartitionProblem(g, lo=300, hi=500, disruption_weight=0), rng=RNG(1))
    assert regions_of(p) == [{0, 1, 4, 5}, {2, 3, 6, 7}, {8, 9, 12, 13}, {10, 11, 14, 15}]


def test_a_strip_splits_where_the_weights_say() -> None:
    # 1 x 6 strip 200 100 100 | 300 100 100: the only cut with both sides in 300-500
    g = lattice("2..3..")
    p = solve(PartitionProblem(g, lo=300, hi=500), rng=RNG(0))
    assert regions_of(p) == [{0, 1, 2}, {3, 4, 5}]
    assert sorted(p.weights.tolist()) == [400.0, 500.0]


def test_minimal_disruption_keeps_valid_current_grids() -> None:
    art = """
        ....
        ....
        ....
        ....
    """
    strips = """
        ABCD
        ABCD
        ABCD
        ABCD
    """
    g = lattice(art, current=strips)
    kept = solve(PartitionProblem(g, lo=300, hi=500, disruption_weight=1.0), rng=RNG(0))
    assert regions_of(kept) == [{0, 4, 8, 12}, {1, 5, 9, 13}, {2, 6, 10, 14}, {3, 7, 11, 15}]
    assert kept.moved_weight == 0
    redrawn = solve(PartitionProblem(g, lo=300, hi=500, disruption_weight=0.0), rng=RNG(0))
    assert regions_of(redrawn) == [{0, 1, 4, 5}, {2, 3, 6, 7}, {8, 9, 12, 13}, {10, 11, 14, 15}]
    assert redrawn.moved_weight == 800  # half of every strip moves


def test_unbalanced_current_grids_are_rebalanced_with_few_moves() -> None:
    g = lattice("""
        ......
        ......
    """, current="""
        AAAABB
        AAAABB
    """)
    p = solve(PartitionProblem(g, lo=300, hi=500), rng=RNG(0))
    assert sorted(p.weights.tolist()) == [400.0, 400.0, 400.0]
    assert p.moved_weight == 400  # one grid's worth: the minimum for 800/400 -> 3 x 400


def test_radius_is_respected_where_feasible() -> None:
    # 10 x 10 of 50 households, 100 m cells, band 300-500, 300 m walk (Manhattan)
    w = np.full(100, 50.0)
    g = UnitGraph.lattice(10, 10, weight=w, cell_m=100.0)
    p = solve(PartitionProblem(g, lo=300, hi=500, radius_m=300), rng=RNG(3))
    assert validate(p, [within_band(), within_radius(), contiguous]) == []
    assert p.max_walk_m.max() <= 300


def test_choose_k() -> None:
    assert choose_k(3200, lo=300, hi=500) == 8
    assert choose_k(3200, lo=300, hi=500, preferred=7) == 7
    assert choose_k(3098, lo=300, hi=500, preferred=10, margin=40) == 8  # 310 each is too tight
    assert choose_k(550, lo=300, hi=500) == 1
    assert choose_k(0, lo=300, hi=500) == 1


# ------------------------------------------------------------------------------ infeasible
def test_a_900_household_tower_is_its_own_grid_and_named() -> None:
    g = lattice("""
        ....
        ..9.
        ....
    """)
    p = solve(PartitionProblem(g, lo=300, hi=500), rng=RNG(0))
    tower = 4 + 2
    tower_region = p.assignment[tower]
    assert p.weights[tower_region] == 900
    others = np.delete(p.weights, tower_region)
    assert ((others >= 300) & (others <= 500)).all()
    v = violations(p, region_codes=[f"G{r}" for r in range(p.k)])
    assert [(x["code"], x["reason"], x["unit"], x["households"]) for x in v] == [
        ("over_band", "single_unit", tower, 900)]
    assert v[0]["max"] == 500 and v[0]["grid"] == f"G{tower_region}"
    assert validate(p, default_constraints(p.problem)) == ["within_band"]


def test_a_total_that_no_count_fits_gets_the_closest_split() -> None:
    g = UnitGraph.lattice(3, 1, weight=np.array([200.0, 200.0, 150.0]))  # 550: 1 x 550 or 2 x 275
    p = solve(PartitionProblem(g, lo=300, hi=500), rng=RNG(0))
    assert p.k == 1 and p.weights.tolist() == [550.0]
    (v,) = violations(p)
    assert (v["code"], v["reason"], v["total"]) == ("over_band", "indivisible_total", 550)


def test_a_home_no_service_point_reaches_is_named() -> None:
    # three cells; the third is 5 km away on foot from everything
    d = np.array([[0, 100, 5000], [100, 0, 5000], [5000, 5000, 0]], dtype=float)
    g = UnitGraph.from_edges(
        weight=[150.0, 150.0, 100.0], edges_i=[0, 1], edges_j=[1, 2], shared_m=[100, 100],
        area_m2=[1e4] * 3, perimeter_m=[400] * 3, xy=[[0, 0], [100, 0], [200, 0]],
        dist=DistanceTable.from_dense(d),
    )
    p = solve(PartitionProblem(g, lo=300, hi=500, radius_m=1000), rng=RNG(0))
    assert p.k == 1 and p.weights.tolist() == [400.0]
    (v,) = violations(p, cell_ids=["a", "b", "far"])
    assert (v["code"], v["reason"], v["units"], v["households"]) == (
        "beyond_radius", "isolated_unit", ["far"], 100)
    assert validate(p, default_constraints(p.problem)) == ["within_radius"]


def test_a_detached_island_too_small_for_a_grid() -> None:
    # cells 0-3 connected (400 households), cell 4 alone (120)
    g = UnitGraph.from_edges(
        weight=[100.0] * 4 + [120.0], edges_i=[0, 1, 2], edges_j=[1, 2, 3], shared_m=[100] * 3,
        area_m2=[1e4] * 5, perimeter_m=[400] * 5, xy=[[0, 0], [100, 0], [200, 0], [300, 0], [900, 0]],
        dist=DistanceTable.euclidean(np.array([[0, 0], [100, 0], [200, 0], [300, 0], [900, 0]], float)),
    )
    p = solve(PartitionProblem(g, lo=300, hi=500), rng=RNG(0))
    assert p.k == 2 and sorted(p.weights.tolist()) == [120.0, 400.0]
    assert contiguous(p)
    (v,) = violations(p)
    assert (v["code"], v["reason"]) == ("under_band", "isolated_part")


def test_empty_container_is_one_region() -> None:
    g = UnitGraph.lattice(2, 2, weight=np.zeros(4))
    p = solve(PartitionProblem(g, lo=300, hi=500), rng=RNG(0))
    assert p.k == 1


# ------------------------------------------------------------------------------ state and API
def test_partition_is_immutable_and_flip_returns_a_new_state() -> None:
    g = lattice("....")
    p = Partition(PartitionProblem(g, lo=150, hi=250), np.array([0, 0, 1, 1]))
    with pytest.raises(ValueError):
        p.assignment[0] = 1
    q = p.flip({1: 1})
    assert p.assignment.tolist() == [0, 0, 1, 1] and q.assignment.tolist() == [0, 1, 1, 1]
    assert validate(p, default_constraints(p.problem)) == []
    assert validate(q, default_constraints(q.problem)) == ["within_band"]
    broken = p.flip({1: 1, 2: 0})
    assert validate(broken, [contiguous, nested]) == ["contiguous"]


def test_problem_validates_its_options() -> None:
    g = lattice("..")
    with pytest.raises(PartitionInputError, match="lo <= hi"):
        PartitionProblem(g, lo=500, hi=300)
    with pytest.raises(PartitionInputError, match="radius_m"):
        PartitionProblem(g, radius_m=0)


@st.composite
def lattices(draw):
    nx = draw(st.integers(2, 7))
    ny = draw(st.integers(1, 6))
    w = draw(st.lists(st.integers(0, 250), min_size=nx * ny, max_size=nx * ny))
    lo = draw(st.integers(100, 400))
    hi = lo + draw(st.integers(50, 400))
    return nx, ny, np.array(w, dtype=float), lo, hi


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=lattices(), seed=st.integers(0, 1000))
def test_properties_on_random_lattices(case, seed) -> None:
    nx, ny, w, lo, hi = case
    g = UnitGraph.lattice(nx, ny, weight=w)
    p = solve(PartitionProblem(g, lo=lo, hi=hi), rng=RNG(seed), n_starts=1, max_steps=20_000)
    a = p.assignment
    assert a.shape == (nx * ny,)  # every unit assigned exactly once
    assert sorted(set(a.tolist())) == list(range(p.k))  # labels 0..k-1, none empty
    assert p.weights.sum() == pytest.approx(w.sum())  # households conserved
    assert contiguous(p) and nested(p)
    # every band violation is explained
    for v in violations(p):
        assert v["reason"] in {"single_unit", "indivisible_total", "isolated_part", "band_conflict",
                               "isolated_unit", "off_network", "detached_area", "blocked_contiguity",
                               "blocked_neighbour_band", "blocked_walk_radius", "blocked_nesting",
                               "improvable"}
        if v["reason"] == "single_unit":  # only when that unit alone is above the band
            assert v["value"] == v["unit_weight"] > hi


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nx=st.integers(2, 8), ny=st.integers(2, 8), seed=st.integers(0, 1000))
def test_band_and_radius_hold_where_feasible(nx: int, ny: int, seed: int) -> None:
    """100 households a cell, band 300-500: any lattice of 6+ cells splits into connected
    pieces of 3-5 cells, and every such piece lies within 200 m (Manhattan) of a member."""
    if nx * ny < 6:
        return
    g = UnitGraph.lattice(nx, ny, weight=np.full(nx * ny, 100.0))
    p = solve(PartitionProblem(g, lo=300, hi=500, radius_m=200), rng=RNG(seed), n_starts=1,
              max_steps=40_000)
    assert validate(p, default_constraints(p.problem)) == []


# ------------------------------------------------------------------------------ on the map
_TO_LONLAT = Transformer.from_crs(32650, 4326, always_xy=True)
X0, Y0 = 667_000.0, 3_549_000.0  # near Gulou


def to4326(geoms) -> list:
    return list(shapely.transform(np.asarray(geoms, dtype=object),
                                  lambda c: np.column_stack(_TO_LONLAT.transform(c[:, 0] + X0,
                                                                                 c[:, 1] + Y0))))


def strip_world(*, tower: bool = False, far_home: bool = False):
    """An 800 x 200 m community cut by streets at x = 200, 400, 600 into four blocks of
    200 households (five buildings of 40), arterials all round::

        +------+------+------+------+
        | 200  | 200  | 200  | 200  |
        +------+------+------+------+
    """
    comm = gpd.GeoDataFrame({"code": ["320106001001"], "name": ["甲社区"],
                             "subdistrict_code": ["320106001"]},
                            geometry=to4326([box(0, 0, 800, 200)]), crs=4326)
    roads = [("arterial", [(0, 0), (800, 0)]), ("arterial", [(800, 0), (800, 200)]),
             ("arterial", [(800, 200), (0, 200)]), ("arterial", [(0, 200), (0, 0)])]
    roads += [("local", [(x, 0), (x, 200)]) for x in (200, 400, 600)]
    roads_gdf = gpd.GeoDataFrame({"id": [f"r{i}" for i in range(len(roads))],
                                  "kind": [k for k, _ in roads]},
                                 geometry=to4326([LineString(c) for _, c in roads]), crs=4326)
    rows = []
    for b in range(4):
        for k in range(5):
            x = b * 200 + 30 + 35 * k
            y = 60 + 80 * (k % 2)
            rows.append({"id": f"B{b}{k}", "households": 40, "population": 100,
                         "compound_id": f"C{b}{k // 3}", "grid_code": f"320106001001{1 + b // 2:03d}",
                         "geometry": Point(x, y)})
    if tower:
        rows.append({"id": "TOWER", "households": 900, "population": 2300, "compound_id": None,
                     "grid_code": None, "geometry": Point(100, 100)})
    if far_home:
        comm = comm.set_geometry(to4326([box(0, 0, 800, 2000)]))
        rows.append({"id": "FAR", "households": 30, "population": 80, "compound_id": None,
                     "grid_code": None, "geometry": Point(700, 1900)})
    b = gpd.GeoDataFrame(rows, crs=32650)
    b = b.set_geometry(to4326(b.geometry)).set_crs(4326, allow_override=True)
    b.index = pd.RangeIndex(100, 100 + len(b))
    return comm, roads_gdf, b


def check_tiling(regions: gpd.GeoDataFrame, comm: gpd.GeoDataFrame) -> None:
    r = regions.to_crs(32650)
    c = comm.to_crs(32650)
    for code, poly in zip(c["code"], c.geometry, strict=True):
        mine = r[r["community_code"] == code].geometry.to_numpy()
        union = shapely.union_all(mine)
        assert union.symmetric_difference(poly).area < 1e-6 * poly.area + 1.0  # no gaps
        assert shapely.area(mine).sum() == pytest.approx(poly.area, rel=1e-6)  # no overlaps
        assert all(poly.buffer(0.5).contains(m) for m in mine)  # nested


def test_the_strip_splits_at_the_middle_street() -> None:
    comm, roads, b = strip_world()
    res = repartition(b, comm, roads=roads, rng=RNG(0))
    reg = res.regions
    assert reg.crs.to_epsg() == 4326
    assert reg["households"].tolist() == [400, 400]
    assert reg["code"].tolist() == ["320106001001001", "320106001001002"]
    metric = reg.to_crs(32650).geometry
    halves = sorted(metric, key=lambda g: g.centroid.x)
    assert halves[0].symmetric_difference(box(X0, Y0, X0 + 400, Y0 + 200)).area < 1.0
    check_tiling(reg, comm)
    assert (reg["street_boundary_share"] == 1.0).all()
    assert reg["violations"].map(len).sum() == 0 and res.violations == []
    # aligned to the input index; compounds never split
    assert res.assignment.index.equals(b.index)
    by_compound = pd.DataFrame({"c": b["compound_id"], "g": res.assignment}).groupby("c")["g"].nunique()
    assert (by_compound == 1).all()
    # nobody moved: the current grids were already these halves
    assert res.summary.loc["proposed", "moved_share"] == 0.0
    assert res.summary.loc["proposed", "within_band_share"] == 1.0
    assert res.summary.loc["current", "grids"] == 2


def test_a_plan_can_be_edited_and_described_again() -> None:
    comm, roads, b = strip_world()
    res = repartition(b, comm, roads=roads, rng=RNG(0))
    (plan,) = res.plans
    p = plan.partition
    g = p.graph
    west = int(np.argmin([g.xy[m, 0].mean() for m in p.regions]))
    east = 1 - west
    # a unit of the west grid that touches the east grid
    unit = next(i for i in p.regions[west] if i < plan.n_units and g.households[i] > 0
                and east in p.assignment[g.indices[g.indptr[i]:g.indptr[i + 1]]])
    q = p.flip({int(unit): east})
    regions, viol = plan.describe(q)
    w = int(g.households[unit])
    assert sorted(regions["households"]) == sorted([400 - w, 400 + w])
    assert regions.crs == plan.crs and len(plan.cell_polygons()) == g.n
    assert all(str(x) in set(map(str, b.index)) for x in plan.cell_ids[: plan.n_units])
    table = comparison_table(res.plans, [q])
    assert table.loc["proposed", "moved_share"] == pytest.approx(w / 800)
    assert table.loc["current", "grids"] == 2


def test_tower_and_far_home_are_reported_not_raised() -> None:
    comm, roads, b = strip_world(tower=True, far_home=True)
    res = repartition(b, comm, roads=roads, rng=RNG(0))
    codes = {(v["code"], v["reason"]) for v in res.violations}
    assert ("over_band", "single_unit") in codes
    far = [v for v in res.violations if v["code"] == "beyond_radius"]
    assert far and far[0]["reason"] == "off_network" and far[0]["units"] == ["121"]
    tower = next(v for v in res.violations if v["reason"] == "single_unit")
    assert tower["households"] >= 900 and tower["unit"] == "120"
    check_tiling(res.regions, comm)
    assert res.regions["households"].sum() == b["households"].sum()


def test_without_roads_the_walk_is_estimated() -> None:
    comm, _, b = strip_world()
    res = repartition(b, comm, rng=RNG(0))
    assert res.regions["households"].sum() == 800
    check_tiling(res.regions, comm)


def test_communities_are_redrawn_from_grids_inside_the_subdistrict() -> None:
    # six 200 x 200 grids of 900 households in a 600 x 400 sub-district of three communities
    boxes = [box(x, y, x + 200, y + 200) for y in (0, 200) for x in (0, 200, 400)]
    grids = gpd.GeoDataFrame({
        "code": [f"32010600100{1 + i // 2}{i % 2 + 1:03d}" for i in range(6)],
        "households": [900] * 6, "population": [2400] * 6,
        "community_code": [f"32010600100{1 + i // 2}" for i in range(6)],
    }, geometry=to4326(boxes), crs=4326)
    sub = gpd.GeoDataFrame({"code": ["320106001"], "name": ["乙街道"]},
                           geometry=to4326([box(0, 0, 600, 400)]), crs=4326)
    res = repartition(grids, sub, level="community", current_col="community_code", group_col=None,
                      band=(1500, 3000), rng=RNG(0))
    reg = res.regions
    assert reg["households"].tolist() == [2700, 2700]  # 5400 / 2 -> two communities of three grids
    assert reg["code"].str.len().eq(12).all() and reg["subdistrict_code"].eq("320106001").all()
    r = reg.to_crs(32650)
    assert shapely.union_all(r.geometry.to_numpy()).area == pytest.approx(600 * 400, rel=1e-6)
    # every grid lies wholly in one new community
    assigned = res.assignment
    assert assigned.notna().all() and assigned.nunique() == 2


def test_bad_inputs_are_listed_at_once() -> None:
    comm, roads, b = strip_world()
    bad = b.drop(columns=["population"]).set_crs(None, allow_override=True)
    with pytest.raises(PartitionInputError) as e:
        repartition(bad, comm.drop(columns=["code"]), roads=roads)
    msg = str(e.value)
    assert "population" in msg and "no CRS" in msg and "'code'" in msg


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(15, 60))
def test_properties_on_random_communities(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    comm, roads, _ = strip_world()
    xy = rng.uniform([5, 5], [795, 195], (n, 2))
    hh = rng.integers(0, 120, n)
    b = gpd.GeoDataFrame({
        "households": hh, "population": hh * 3,
        "compound_id": [f"C{k}" if rng.random() < 0.3 else None for k in rng.integers(0, 6, n)],
    }, geometry=to4326(shapely.points(xy)), crs=4326)
    res = repartition(b, comm, roads=roads, rng=RNG(seed), n_starts=1)
    check_tiling(res.regions, comm)
    assert res.regions["households"].sum() == hh.sum()
    assert res.assignment.notna().all()
    # one piece on the map, or the violation is named (a compound spread over blocks that do
    # not touch cannot be one piece)
    pieces = shapely.get_num_geometries(res.regions.to_crs(32650).geometry.to_numpy())
    np.testing.assert_array_equal(pieces, res.regions["parts"])
    named = {v["grid"] for v in res.violations if v["code"] in ("fragmented", "not_contiguous")}
    assert set(res.regions.loc[~res.regions["contiguous"], "code"]) == named
    assert (res.regions["contiguous"] == (res.regions["parts"] == 1)).all()
    compound = b["compound_id"].dropna()
    assert (pd.DataFrame({"c": compound, "g": res.assignment[compound.index]})
            .groupby("c")["g"].nunique() == 1).all()
    band_ok = res.regions["within_band"]
    named = {v["grid"] for v in res.violations if v["code"] in ("over_band", "under_band")}
    assert set(res.regions.loc[~band_ok, "code"]) == named


def test_a_locked_grid_keeps_its_units_code_and_polygon() -> None:
    # the west grid (blocks 0-1, current code ...001) is frozen; the rest is redrawn around it
    comm, roads, b = strip_world()
    west = to4326([box(0, 0, 400, 200)])[0]
    east = to4326([box(400, 0, 800, 200)])[0]
    current = gpd.GeoDataFrame({"code": ["320106001001001", "320106001001002"],
                                "name": ["老一格", "老二格"], "community_code": ["320106001001"] * 2},
                               geometry=[west, east], crs=4326)
    # shift the east grid's current labels so the engine has something to redraw
    b = b.assign(grid_code=[g if i < 10 else f"320106001001{3 + i % 2:03d}"
                            for i, g in enumerate(b["grid_code"])])
    res = repartition(b, comm, roads=roads, rng=RNG(0), band=(150, 250),
                      locked=["320106001001001"], current_regions=current)
    reg = res.regions
    lk = reg[reg["locked"]]
    assert lk["code"].tolist() == ["320106001001001"]
    assert shapely.to_wkb(lk.geometry.iloc[0]) == shapely.to_wkb(west)  # byte-identical
    assert lk["households"].tolist() == [400] and lk["name"].tolist() == ["老一格"]
    # its units never moved; nobody else joined it
    was_west = b["grid_code"].eq("320106001001001")
    assert res.assignment[was_west].eq("320106001001001").all()
    assert not res.assignment[~was_west].eq("320106001001001").any()
    # the rest: two 200-household grids (one per block), new codes skip the locked one
    rest = reg[~reg["locked"]]
    assert sorted(rest["households"]) == [200, 200]
    assert "320106001001001" not in set(rest["code"])
    assert rest["within_band"].all() and rest["contiguous"].all()
    check_tiling(reg, comm)


def test_locking_an_unknown_grid_is_refused() -> None:
    comm, roads, b = strip_world()
    with pytest.raises(PartitionInputError, match="current_regions"):
        repartition(b, comm, roads=roads, locked=["320106001001001"])
    current = gpd.GeoDataFrame({"code": ["320106001001001"]},
                               geometry=to4326([box(0, 0, 400, 200)]), crs=4326)
    with pytest.raises(PartitionInputError, match="320106001001009"):
        repartition(b, comm, roads=roads, locked=["320106001001009"], current_regions=current)


def test_staff_load_and_ab_posts_follow_the_current_grids() -> None:
    # current: ...001 (west, 400 hh) has 2 full-time workers on posts A and B;
    # ...002 (east, 400 hh) has 1 full-time worker on post A and a part-timer without a post
    from layers.planner import grid_staff

    workers = pd.DataFrame({
        "id": ["w1", "w2", "w3", "w4", "w5"],
        "role": ["full_time", "full_time", "full_time", "part_time", "grid_leader"],
        "grid_code": ["320106001001001", "320106001001001", "320106001001002", "320106001001002", None],
        "post": ["A", "b", "A", None, "A"],
    })
    staff = grid_staff(workers)
    assert staff == {"320106001001001": {"full_time": 2, "ab_posts": 2},
                     "320106001001002": {"full_time": 1, "ab_posts": 1}}
    comm, roads, b = strip_world()
    res = repartition(b, comm, roads=roads, rng=RNG(0), band=(150, 250))
    table = comparison_table(res.plans, staff=staff)
    cur, prop = table.loc["current"], table.loc["proposed"]
    # current: 400/2 = 200 and 400/1 = 400 households per full-time worker; 002 is short
    assert cur["households_per_full_time_median"] == 300 and cur["households_per_full_time_max"] == 400
    assert cur["ab_posts_short"] == 1
    # proposed: four 200-household grids; two continue 001 and 002 (200/2, 200/1), two have nobody
    assert sorted(res.regions["households"]) == [200] * 4
    assert prop["households_per_full_time_median"] == 150 and prop["households_per_full_time_max"] == 200
    assert prop["ab_posts_short"] == 3
    # without staff the columns are absent, the rest unchanged
    plain = comparison_table(res.plans)
    assert "ab_posts_short" not in plain.columns
    assert plain.loc["proposed", "grids"] == table.loc["proposed", "grids"] == 4
