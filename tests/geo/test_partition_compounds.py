"""Compound walls as units (issue 13): a compound's cell is its wall polygon, never split.

Hand-drawn compounds in local metres (EPSG:32650 shifted), checked on the output polygons.
"""

from __future__ import annotations

import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely import LineString, box

from geo.partition import PartitionInputError, repartition
from geo.partition.cells import tessellate

sys.path.insert(0, str(Path(__file__).parent))
from test_partition_real import _shift, footprint, world  # noqa: E402

TOL_M2 = 1e-3


def walls(rows: list[dict]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame([{k: v for k, v in r.items() if k != "geometry"} for r in rows],
                            geometry=_shift([r["geometry"] for r in rows]), crs=32650).to_crs(4326)


def held_by(res, polys: gpd.GeoDataFrame) -> list[dict[str, float]]:
    """Per polygon: the area (m2) each grid holds of it."""
    r = res.regions.to_crs(32650)
    out = []
    for g in polys.to_crs(32650).geometry:
        inter = shapely.area(shapely.intersection(r.geometry.to_numpy(), g))
        out.append({c: float(a) for c, a in zip(r["code"], inter, strict=True) if a > TOL_M2})
    return out


def assert_tiles(res, comm) -> None:
    r = res.regions.to_crs(32650).geometry.to_numpy()
    c = comm.to_crs(32650).geometry.iloc[0]
    assert shapely.area(r).sum() == pytest.approx(c.area, rel=1e-6)  # no overlaps
    assert shapely.union_all(r).symmetric_difference(c).area < 1.0  # no gaps


def l_world():
    """A 400 x 200 community. An L-shaped walled compound HUAYUAN (west) holds three buildings
    of 80 households and one building without a compound id; a footpath runs straight through
    it (x = 100). East of a street at x = 240, four houses of 80. A small walled kindergarten
    without homes (EMPTY) sits in the east block::

        +-----------+---+-----------------+
        | HUAYUAN   :   |   H2      H3    |
        |  ...      :   |      [EMPTY]    |
        |  +--------+   |   H0      H1    |
        |  |            |                 |
        +--+------------+-----------------+
    """
    wall = box(10, 10, 220, 190).difference(box(60, 10, 220, 90))
    rows = [{"id": f"C{k}", "households": 80, "compound_id": "HUAYUAN",
             "geometry": footprint(x, y, 20, 14)} for k, (x, y) in enumerate([(35, 50), (40, 150), (150, 150)])]
    rows.append({"id": "C3", "households": 80, "geometry": footprint(160, 120, 20, 14)})  # no id
    rows += [{"id": f"H{k}", "households": 80, "geometry": footprint(270 + 90 * (k % 2), 50 + 100 * (k // 2))}
             for k in range(4)]
    roads = [{"kind": "local", "geometry": LineString([(240, 0), (240, 200)])},
             {"kind": "path", "geometry": LineString([(100, 0), (100, 200)])}]
    comm, b, rd = world(box(0, 0, 400, 200), rows, roads)
    cw = walls([{"id": "HUAYUAN", "name": "华苑", "geometry": wall},
                {"id": "EMPTY", "name": "幼儿园", "geometry": box(300, 80, 340, 120)}])
    return comm, b, rd, cw


def test_a_walled_compound_is_one_cell_and_one_grid() -> None:
    comm, b, rd, cw = l_world()
    res = repartition(b, comm, roads=rd, band=(250, 400), compounds=cw, rng=np.random.default_rng(0))
    # the four buildings inside the wall (one without an id) are one unit in one grid
    assert res.assignment[b["id"].isin(["C0", "C1", "C2", "C3"]).to_numpy()].nunique() == 1
    assert sorted(res.regions["households"].tolist()) == [320, 320]
    # each wall lies whole in one grid, the path through it notwithstanding
    held = held_by(res, cw)
    assert [len(h) for h in held] == [1, 1]
    wall_grid = next(iter(held[0]))
    assert held[0][wall_grid] == pytest.approx(cw.to_crs(32650).area.iloc[0], rel=1e-6)
    assert wall_grid == res.assignment[b["id"].eq("C0").to_numpy()].iloc[0]
    # the compound's cell is its wall polygon
    plan = res.plans[0]
    unit = next(u for u, rows in enumerate(plan.unit_rows) if set(b.loc[rows, "id"]) >= {"C0", "C3"})
    cell = plan.cell_polygons()[unit]
    wall_m = shapely.affinity.translate(box(10, 10, 220, 190).difference(box(60, 10, 220, 90)),
                                        667_000.0, 3_540_000.0)
    assert cell.symmetric_difference(wall_m).area < 1.0
    assert_tiles(res, comm)
    assert res.regions["parts"].tolist() == [1, 1]


def test_without_walls_the_path_cuts_the_compound_block() -> None:
    """The same world without the wall layer: the compound is still one unit (by id), but its
    cell is Voronoi pieces, not the wall (the contrast the wall layer makes)."""
    comm, b, rd, cw = l_world()
    res = repartition(b, comm, roads=rd, band=(250, 400), rng=np.random.default_rng(0))
    plan = res.plans[0]
    unit = next(u for u, rows in enumerate(plan.unit_rows) if "C0" in set(b.loc[rows, "id"]))
    wall_m = cw.to_crs(32650).geometry.iloc[0]
    assert plan.cell_polygons()[unit].symmetric_difference(wall_m).area > 100.0


def test_bad_compounds_are_listed_at_once() -> None:
    comm, b, rd, cw = l_world()
    bad = cw.rename(columns={"id": "label"})
    bad = gpd.GeoDataFrame(bad, geometry=[bad.geometry.iloc[0], shapely.Point(0, 0)], crs=4326)
    with pytest.raises(PartitionInputError) as e:
        repartition(b, comm, roads=rd, compounds=bad)
    msg = str(e.value)
    assert "id column" in msg and "rows [2]" in msg
    dup = cw.assign(id=["A", "A"])
    with pytest.raises(PartitionInputError, match="repeats ids"):
        repartition(b, comm, roads=rd, compounds=dup)
    with pytest.raises(PartitionInputError, match="compounds need cells='voronoi'"):
        repartition(b, comm, roads=rd, compounds=cw, cells="polygons")


def compound_world(seed: int, n_side: int):
    """Footprints on a jittered lattice with a street through the middle and random paths; a
    few walled compounds (boxes over several buildings, some crossed by paths, one maybe empty)."""
    rng = np.random.default_rng(seed)
    size = 60.0 * n_side
    rows, cws = [], []
    taken = np.zeros((n_side, n_side), dtype=bool)
    for k in range(int(rng.integers(1, 4))):
        i0, j0 = (int(x) for x in rng.integers(0, n_side - 1, 2))
        wi, wj = int(rng.integers(1, 3)), int(rng.integers(1, 3))
        i1, j1 = min(i0 + wi, n_side), min(j0 + wj, n_side)
        if taken[i0:i1, j0:j1].any():
            continue
        taken[i0:i1, j0:j1] = True
        cws.append({"id": f"W{k}", "geometry": box(60 * i0 + 4, 60 * j0 + 4, 60 * i1 - 4, 60 * j1 - 4)})
    for i in range(n_side):
        for j in range(n_side):
            if rng.random() < 0.15:
                continue
            inside = next((c["id"] for c in cws if c["geometry"].contains(shapely.Point(30 + 60 * i, 30 + 60 * j))),
                          None)
            rows.append({"id": f"b{i}_{j}", "households": int(rng.integers(10, 120)),
                         "compound_id": inside if inside and rng.random() < 0.8 else None,
                         "geometry": footprint(30 + 60 * i + rng.uniform(-5, 5), 30 + 60 * j + rng.uniform(-5, 5),
                                               rng.uniform(8, 24), rng.uniform(8, 16))})
    roads = [{"kind": "local", "geometry": LineString([(0, size / 2), (size, size / 2)])}]
    for _ in range(2):
        x = float(rng.uniform(0, size))
        roads.append({"kind": "path", "geometry": LineString([(x, 0), (x + rng.uniform(-40, 40), size)])})
    comm, b, rd = world(box(0, 0, size, size), rows, roads)
    return comm, b, rd, walls(cws)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n_side=st.integers(4, 6))
def test_properties_with_walls(seed: int, n_side: int) -> None:
    comm, b, rd, cw = compound_world(seed, n_side)
    res = repartition(b, comm, roads=rd, band=(200, 400), compounds=cw, rng=np.random.default_rng(seed),
                      n_starts=1)
    assert_tiles(res, comm)  # no gaps, no overlaps
    assert res.regions["households"].sum() == b["households"].sum()  # totals conserved
    assert res.assignment.notna().all()
    # every wall lies whole in exactly one grid; its buildings are counted by that grid
    for h, wid in zip(held_by(res, cw), cw["id"], strict=True):
        assert len(h) == 1, (wid, h)
        mine = b["compound_id"].eq(wid).to_numpy()
        assert set(res.assignment[mine]) <= set(h)
    # a polygon in pieces is named
    pieces = shapely.get_num_geometries(res.regions.geometry.to_numpy())
    np.testing.assert_array_equal(pieces, res.regions["parts"])


def test_walls_the_same_seed_gives_the_same_bytes() -> None:
    from test_partition_real import plan_digest

    comm, b, rd, cw = compound_world(5, 5)
    runs = [repartition(b, comm, roads=rd, band=(200, 400), compounds=cw, rng=np.random.default_rng(5))
            for _ in range(2)]
    assert plan_digest(runs[0]) == plan_digest(runs[1])
    assert runs[0].search["stopped_by_time"] == []


# --- walls at the edge, strays, containers covered by walls (the small demo's failures) ---

NO_LINES = np.zeros(0, dtype=object)


def cells_of(t) -> dict[int, shapely.Geometry]:
    return {int(u): shapely.union_all(t.pieces[t.piece_unit == u]) for u in np.unique(t.piece_unit)}


def assert_covers(t, container) -> None:
    assert shapely.area(t.pieces).sum() == pytest.approx(container.area, rel=1e-9)  # no overlaps
    assert shapely.union_all(t.pieces).symmetric_difference(container).area < 1e-6  # no gaps


def test_a_wall_touching_the_community_in_a_line_pulls_nothing_in() -> None:
    """A 200 x 100 community fully covered by two walls (as the demo's compounds tile their
    community); the neighbour's wall NEXT touches its east edge in a line, with 90 households
    outside. NEXT's homes stay out (they belong to the neighbour), the walls are the cells."""
    rows = [{"id": "A0", "households": 40, "compound_id": "A", "geometry": footprint(40, 50)},
            {"id": "A1", "households": 30, "compound_id": "A", "geometry": footprint(70, 30)},
            {"id": "B0", "households": 50, "compound_id": "B", "geometry": footprint(150, 50)},
            {"id": "N0", "households": 90, "compound_id": "NEXT", "geometry": footprint(250, 50)}]
    comm, b, rd = world(box(0, 0, 200, 100), rows, [{"kind": "path",
                                                     "geometry": LineString([(100, -10), (100, 110)])}])
    cw = walls([{"id": "A", "geometry": box(0, 0, 100, 100)}, {"id": "B", "geometry": box(100, 0, 200, 100)},
                {"id": "NEXT", "geometry": box(200, 0, 300, 100)}])
    res = repartition(b, comm, roads=rd, band=(20, 200), compounds=cw, rng=np.random.default_rng(0),
                      report_outside=False)
    assert res.regions["households"].sum() == 120
    assert res.assignment[b["id"].eq("N0").to_numpy()].isna().all()
    held = held_by(res, cw.iloc[:2])
    assert [len(h) for h in held] == [1, 1]
    assert_tiles(res, comm)


def test_a_wall_with_a_spike_on_the_edge_keeps_its_polygon() -> None:
    """``make_valid`` turns a wall with a spike along the container's edge into a polygon and a
    line; the line is dropped (no mixed-dimension overlay), the polygon is the cell."""
    container = box(0, 0, 200, 100)
    spiky = shapely.Polygon([(0, 0), (100, 0), (100, 100), (0, 100), (0, 50), (-30, 50), (0, 50)])
    t = tessellate(container, street_lines=NO_LINES, barrier_lines=NO_LINES,
                   point_xy=np.array([[50.0, 50.0], [150.0, 50.0]]), point_unit=np.array([0, 1]),
                   areas=np.array([spiky], dtype=object), area_unit=np.array([0]), n_units=2)
    cells = cells_of(t)
    assert cells[0].symmetric_difference(box(0, 0, 100, 100)).area < 1e-6
    assert cells[1].symmetric_difference(box(100, 0, 200, 100)).area < 1e-6
    assert_covers(t, container)


def test_a_building_inside_a_foreign_wall_gets_a_cell_beside_it() -> None:
    """Unit 1's wall is drawn inside unit 0's (listed first, it keeps the overlap), so unit 1's
    point (x = 20) lies outside every piece of ground outside the walls: it moves to the nearest
    one (x = 100, the east block's edge) and shares that block with unit 2 (x = 120) at x = 110;
    wall 0 stays whole. (Left at x = 20, its Voronoi cell would end at x = 70, outside the block:
    no cell at all.)"""
    container = box(0, 0, 200, 100)
    t = tessellate(container, street_lines=NO_LINES, barrier_lines=NO_LINES,
                   point_xy=np.array([[50.0, 50.0], [20.0, 50.0], [120.0, 50.0]]),
                   point_unit=np.array([0, 1, 2]),
                   areas=np.array([box(0, 0, 100, 100), box(10, 40, 30, 60)], dtype=object),
                   area_unit=np.array([0, 1]), n_units=3)
    cells = cells_of(t)
    assert cells[0].symmetric_difference(box(0, 0, 100, 100)).area < 1e-6
    assert cells[1].symmetric_difference(box(100, 0, 110, 100)).area < 1e-6
    assert cells[2].symmetric_difference(box(110, 0, 200, 100)).area < 1e-6
    assert_covers(t, container)


def test_a_container_covered_by_walls_shares_the_wall_holding_a_stray() -> None:
    """No ground outside the walls: wall 0 (unit 0) and an empty compound's wall (no unit) cover
    the container, and unit 1 (no wall) has its building inside the empty compound. The empty
    compound's wall is shared with unit 1 (unit 1 takes it whole), wall 0 stays unit 0's."""
    container = box(0, 0, 200, 100)
    t = tessellate(container, street_lines=NO_LINES, barrier_lines=NO_LINES,
                   point_xy=np.array([[50.0, 50.0], [150.0, 50.0]]), point_unit=np.array([0, 1]),
                   areas=np.array([box(0, 0, 100, 100), box(100, 0, 200, 100)], dtype=object),
                   area_unit=np.array([0, -1]), n_units=2)
    cells = cells_of(t)
    assert cells[0].symmetric_difference(box(0, 0, 100, 100)).area < 1e-6
    assert cells[1].symmetric_difference(box(100, 0, 200, 100)).area < 1e-6
    assert t.n_cells == 2
    assert_covers(t, container)


def test_a_container_covered_by_walls_alone() -> None:
    """Walls cover the container and every unit is a wall: each wall is its cell, the empty
    compound a filler, and they touch."""
    container = box(0, 0, 300, 100)
    t = tessellate(container, street_lines=np.array([LineString([(150, -5), (150, 105)])], dtype=object),
                   barrier_lines=NO_LINES,
                   point_xy=np.array([[50.0, 50.0], [150.0, 50.0]]), point_unit=np.array([0, 1]),
                   areas=np.array([box(0, 0, 100, 100), box(100, 0, 200, 100), box(200, 0, 300, 100)],
                                  dtype=object),
                   area_unit=np.array([0, 1, -1]), n_units=2)
    cells = cells_of(t)
    assert t.n_cells == 3
    assert cells[1].symmetric_difference(box(100, 0, 200, 100)).area < 1e-6  # the street does not cut it
    assert cells[2].symmetric_difference(box(200, 0, 300, 100)).area < 1e-6
    assert {(int(i), int(j)) for i, j in zip(t.adj_i, t.adj_j, strict=True)} == {(0, 1), (1, 2)}
    assert_covers(t, container)


def test_a_building_of_a_compound_without_a_wall_inside_a_wall_joins_it() -> None:
    """C3 names compound GHOST, which has no wall, but stands inside HUAYUAN's wall: nothing but
    HUAYUAN can have a cell there, so C3 joins it (one unit, one grid, wall whole)."""
    comm, b, rd, cw = l_world()
    b.loc[b["id"] == "C3", "compound_id"] = "GHOST"
    res = repartition(b, comm, roads=rd, band=(250, 400), compounds=cw, rng=np.random.default_rng(0))
    plan = res.plans[0]
    unit = [u for u, rows in enumerate(plan.unit_rows) if set(b.loc[rows, "id"]) & {"C0", "C3"}]
    assert len(unit) == 1 and set(b.loc[plan.unit_rows[unit[0]], "id"]) == {"C0", "C1", "C2", "C3"}
    assert [len(h) for h in held_by(res, cw)] == [1, 1]
    assert res.regions["households"].sum() == 640
    assert_tiles(res, comm)
