"""Unit cells: an exact coverage of one container (community or sub-district).

The container is cut into *blocks* by its streets and footpaths; blocks are grouped
into *street faces* (streets only) and *barrier faces* (arterials, rivers, railways),
so each shared boundary is known to run inside a block, along a footpath, a street or
a barrier. Each block is then shared
among the units inside it: point units (buildings) by a Voronoi diagram of their
points clipped to the block, polygon units (grids) by their own polygons. Blocks
or leftovers that hold no unit become *filler* units with no households, so the
cells always tile the container. ``shapely.coverage_clean`` makes shared edges
identical, so adjacency comes from matching boundary segments exactly and region
outlines from ``shapely.coverage_union_all``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import shapely
from numpy.typing import NDArray

from geo.partition._pieces import (
    GRID_M,
    MIN_PIECE_M2,
    anchor_pieces,
    components_per_label,
    locate,
    outside,
    point_pieces,
    polygon_pieces,
    polygonal,
    prepare_footprints,
    reassign_strays,
    shared_segments,
    with_footprints,
)

_GAP_M = 0.05

#: OSM tag values of a way that does not bound a block: it runs under, over or inside
#: something (tunnels, building passages, arcades, indoor corridors), or is private.
NOT_A_BOUNDARY: dict[str, tuple[str, ...]] = {
    "tunnel": ("yes", "building_passage", "culvert", "covered", "avalanche_protector"),
    "covered": ("yes", "arcade", "colonnade"),
    "access": ("private", "no", "customers", "delivery"),
    "service": ("driveway", "parking_aisle", "drive-through", "emergency_access"),
    "highway": ("corridor", "elevator"),
}


def tags_bound_blocks(tags: dict[str, str]) -> bool:
    """Whether a way with these OSM tags bounds a block (a street a person takes as a boundary).

    >>> tags_bound_blocks({"highway": "residential"}), tags_bound_blocks({"highway": "footway",
    ...     "tunnel": "building_passage"}), tags_bound_blocks({"highway": "footway", "indoor": "yes"})
    (True, False, False)
    """
    if any(tags.get(k) in v for k, v in NOT_A_BOUNDARY.items()):
        return False
    if tags.get("indoor", "no") != "no":
        return False
    # a footbridge or a path on a level of a building crosses over or runs inside blocks
    return not (tags.get("highway") in ("footway", "path", "steps", "pedestrian", "cycleway")
                and (tags.get("bridge", "no") != "no" or "level" in tags and tags.get("layer", "0") != "0"))


@dataclass(frozen=True, eq=False)
class Tessellation:
    """Cells of one container.

    Attributes
    ----------
    pieces
        Cleaned coverage pieces (Polygons); several pieces may belong to one unit.
    piece_unit
        Unit index of each piece; units ``>= n_units`` are fillers.
    n_units, n_cells
        Real units, and real units plus fillers.
    adj_i, adj_j, shared_m, path_m, street_m, barrier_m
        Touching unit pairs (``i < j``), the length of boundary they share, and how
        much of it runs along any line (footpaths included), a street, a barrier
        (each a part of the one before).
    area_m2, perimeter_m
        Per cell (real units then fillers).
    """

    pieces: NDArray[np.object_]
    piece_unit: NDArray[np.int64]
    n_units: int
    n_cells: int
    adj_i: NDArray[np.int64]
    adj_j: NDArray[np.int64]
    shared_m: NDArray[np.float64]
    path_m: NDArray[np.float64]
    street_m: NDArray[np.float64]
    barrier_m: NDArray[np.float64]
    area_m2: NDArray[np.float64]
    perimeter_m: NDArray[np.float64]
    piece_i: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    piece_j: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def union(self, cells: NDArray[np.int64]) -> shapely.Geometry:
        """The exact union of the given cells."""
        sel = np.isin(self.piece_unit, cells)
        return shapely.coverage_union_all(self.pieces[sel])

    def parts(self, labels: NDArray[np.int64], k: int) -> NDArray[np.int64]:
        """How many separate pieces the polygon of each region ``0..k-1`` has (``labels``:
        region per cell), judged on the pieces' shared edges: pieces meeting only at a corner
        are apart, as they are in the union's MultiPolygon."""
        lab = np.asarray(labels)[self.piece_unit]
        return components_per_label(lab, self.piece_i, self.piece_j, k)

    @cached_property
    def cell_parts(self) -> NDArray[np.int64]:
        """How many separate pieces each cell has (more than 1: a unit in blocks that do not touch)."""
        return components_per_label(self.piece_unit, self.piece_i, self.piece_j, self.n_cells)


def _faces(container: shapely.Geometry, lines: NDArray[np.object_]) -> NDArray[np.object_]:
    """Polygonal faces of ``container`` cut by ``lines`` (already clipped)."""
    if lines.size == 0:
        return np.asarray(shapely.get_parts(container), dtype=object)
    work = np.concatenate([[shapely.boundary(container)], lines])
    noded = shapely.union_all(work, grid_size=GRID_M)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    if faces.size == 0:
        return np.asarray(shapely.get_parts(container), dtype=object)
    inside = shapely.within(shapely.point_on_surface(faces), container)
    # a sliver face (two lines a few centimetres apart) may have its surface point on the
    # container's edge: keep it when most of it lies inside, or the cells leave a gap there
    doubt = np.flatnonzero(~inside)
    if doubt.size:
        a = shapely.area(faces[doubt])
        inside[doubt] = shapely.area(shapely.intersection(faces[doubt], container)) > 0.5 * a
    return faces[inside]


def _clip_lines(container: shapely.Geometry, lines: NDArray[np.object_]) -> NDArray[np.object_]:
    if lines.size == 0:
        return lines
    hit = shapely.intersects(lines, container)
    clipped = shapely.intersection(lines[hit], container)
    clipped = shapely.get_parts(clipped)
    return clipped[np.isin(shapely.get_type_id(clipped), (1, 5))]


def tessellate(
    container: shapely.Geometry,
    *,
    street_lines: NDArray[np.object_],
    barrier_lines: NDArray[np.object_],
    path_lines: NDArray[np.object_] | None = None,
    point_xy: NDArray[np.float64] | None = None,
    point_unit: NDArray[np.int64] | None = None,
    unit_polygons: NDArray[np.object_] | None = None,
    footprints: NDArray[np.object_] | None = None,
    footprint_unit: NDArray[np.int64] | None = None,
    areas: NDArray[np.object_] | None = None,
    area_unit: NDArray[np.int64] | None = None,
    n_units: int,
) -> Tessellation:
    """Cut ``container`` into one cell per unit plus filler cells.

    Give either ``point_xy`` with ``point_unit`` (Voronoi cells of points, grouped by
    unit) or ``unit_polygons`` (one polygon per unit). With ``footprints`` (building
    polygons, ``footprint_unit`` their unit), lines never cut a building (a path through
    a building does not cut its block), each block's Voronoi cells are drawn around the
    footprints' outlines where a point per building is not enough, and every footprint
    lies whole in its unit's cell. A unit's piece of a block that holds none of its
    buildings (a Voronoi cell cut in two by a concave block) goes to the neighbour it
    shares most boundary with, so no cell has a stray piece.

    With ``areas`` (compound walls: polygons, ``area_unit`` the unit of each, ``-1`` for a
    compound without homes), each area is its unit's cell whole (never split, whatever lines
    cross it); the units' points are not used, footprints only where they stick out of the
    wall; the rest of the container is cut as above. An area without a unit becomes one
    filler cell.
    """
    fps = fpu = None
    ar = au = None
    rest_area = container
    if areas is not None and len(areas) and unit_polygons is None:
        ar, au = _prepare_areas(container, np.asarray(areas, dtype=object),
                                np.asarray(area_unit, dtype=np.int64))
        if ar.size:
            rest_area = shapely.difference(container, shapely.union_all(ar), grid_size=GRID_M)
            all_xy, all_unit = np.asarray(point_xy, float), np.asarray(point_unit, np.int64)
            keep_pt = ~np.isin(np.asarray(point_unit, np.int64), au)
            point_xy = np.asarray(point_xy, float)[keep_pt]
            point_unit = np.asarray(point_unit, np.int64)[keep_pt]
        else:
            ar = au = None
    if footprints is not None and len(footprints) and unit_polygons is None:
        fps, fpu = prepare_footprints(rest_area, np.asarray(footprints, dtype=object),
                                       np.asarray(footprint_unit, dtype=np.int64))
    streets = _clip_lines(container, np.asarray(street_lines, dtype=object))
    barriers = _clip_lines(container, np.asarray(barrier_lines, dtype=object))
    paths = _clip_lines(container, np.asarray(
        path_lines if path_lines is not None else np.zeros(0, dtype=object), dtype=object))
    if fps is not None and fps.size:
        # a line through a building does not bound anything there (passages, arcades, data errors)
        streets, barriers, paths = (outside(x, fps) for x in (streets, barriers, paths))
    blocks = _faces(container, np.concatenate([paths, streets, barriers]))
    inner = shapely.point_on_surface(blocks)
    if paths.size:
        block_sface = locate(inner, _faces(container, np.concatenate([streets, barriers])))
    else:
        block_sface = np.arange(blocks.size)
    block_bface = locate(inner, _faces(container, barriers))

    if unit_polygons is not None:
        geoms, units, bids = polygon_pieces(blocks, np.asarray(unit_polygons, dtype=object))
    else:
        assert point_xy is not None and point_unit is not None
        work, work_block = blocks, np.arange(blocks.size)
        if ar is not None:  # the blocks' parts outside the walls
            work, work_block = shapely.get_parts(
                shapely.difference(blocks, shapely.union_all(ar), grid_size=GRID_M), return_index=True)
            ok = (shapely.get_type_id(work) == 3) & (shapely.area(work) > MIN_PIECE_M2)
            work, work_block = work[ok], work_block[ok]
            work, work_block, point_xy, point_unit, ar, au = _place_strays(
                blocks, work, work_block, np.asarray(point_xy, float), np.asarray(point_unit, np.int64),
                all_xy, all_unit, ar, au)
        geoms, units, bids = point_pieces(work, np.asarray(point_xy, float),
                                          np.asarray(point_unit, np.int64))
        if fps is not None and fps.size:
            geoms, units, bids = with_footprints(work, geoms, units, bids, fps, fpu,
                                                 np.asarray(point_xy, float),
                                                 np.asarray(point_unit, np.int64))
        if ar is not None:
            fill_extra = _wall_pieces(blocks, work, work_block, geoms, units, bids, ar, au)
    pieces = np.concatenate(geoms) if geoms else np.zeros(0, dtype=object)
    punit = np.concatenate(units) if units else np.zeros(0, dtype=np.int64)
    pblock = np.concatenate(bids) if bids else np.zeros(0, dtype=np.int64)
    pieces = shapely.get_parts(pieces, return_index=True)
    pieces, pidx = pieces
    punit, pblock = punit[pidx], pblock[pidx]
    keep = (shapely.get_type_id(pieces) == 3) & (shapely.area(pieces) > MIN_PIECE_M2)
    pieces, punit, pblock = pieces[keep], punit[keep], pblock[keep]

    # what no unit covers becomes filler cells, block by block
    fill_cell: NDArray[np.int64] | None = None
    if unit_polygons is None and ar is not None:  # parts outside walls without points, empty compounds
        fill_geoms, fill_block, fill_cell = ([fill_extra[0]], [fill_extra[1]],
                                             np.asarray(fill_extra[2], dtype=np.int64))
    elif unit_polygons is None:  # Voronoi pieces fill their blocks: only empty blocks are left
        empty = np.setdiff1d(np.arange(blocks.size), pblock)
        fill_geoms, fill_block = [blocks[empty]], [empty]
    else:
        covered = shapely.union_all(pieces) if pieces.size else shapely.Polygon()
        rest = shapely.get_parts(shapely.difference(container, covered))
        rest = rest[shapely.area(rest) > 1.0]
        ri, bi = shapely.STRtree(blocks).query(rest, predicate="intersects") if rest.size else (
            np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
        parts, pi = shapely.get_parts(shapely.intersection(rest[ri], blocks[bi]), return_index=True)
        keep = (shapely.get_type_id(parts) == 3) & (shapely.area(parts) > 1.0)
        fill_geoms, fill_block = [parts[keep]], [bi[pi[keep]]]
    n_fill = 0
    if fill_geoms:
        fg = np.concatenate(fill_geoms)
        fid = np.arange(fg.size) if fill_cell is None else fill_cell
        n_fill = int(fid.max()) + 1 if fid.size else 0
        pieces = np.concatenate([pieces, fg])
        punit = np.concatenate([punit, n_units + fid])
        pblock = np.concatenate([pblock, np.concatenate(fill_block)])
    n_cells = n_units + n_fill

    if pieces.size:
        # gaps narrower than 5 cm (a cell snapped to the noding grid where a footprint was cut
        # out of it, beside one that was not) are merged into a neighbour: no slivers
        cleaned = shapely.coverage_clean(pieces, gap_width=_GAP_M)
        ok = ~shapely.is_empty(cleaned)
        parts, pi = shapely.get_parts(cleaned[ok], return_index=True)
        src = np.flatnonzero(ok)[pi]
        poly = shapely.get_type_id(parts) == 3
        pieces, punit, pblock = parts[poly], punit[src[poly]], pblock[src[poly]]

    pi, pj, length = shared_segments(pieces)
    if unit_polygons is None and pieces.size:
        anchors = anchor_pieces(pieces, punit, n_units, point_xy, point_unit, fps, fpu)
        if ar is not None:  # a wall anchors its compound
            anchors |= np.isin(punit, au[au >= 0])
        punit = reassign_strays(punit, pi, pj, length, anchors, n_units)
    area_piece = shapely.area(pieces)
    perim_piece = shapely.length(pieces)
    bf = block_bface[pblock]
    sf = block_sface[pblock]
    ui, uj = punit[pi], punit[pj]
    same_unit = ui == uj
    area = np.bincount(punit, weights=area_piece, minlength=n_cells)
    perim = np.bincount(punit, weights=perim_piece, minlength=n_cells)
    perim -= 2 * np.bincount(ui[same_unit], weights=length[same_unit], minlength=n_cells)
    diff = ~same_unit
    ui, uj, length = ui[diff], uj[diff], length[diff]
    path = pblock[pi[diff]] != pblock[pj[diff]]
    street = sf[pi[diff]] != sf[pj[diff]]
    barrier = bf[pi[diff]] != bf[pj[diff]]
    a, b = np.minimum(ui, uj), np.maximum(ui, uj)
    key = a * n_cells + b
    ukey, inv = np.unique(key, return_inverse=True)
    shared = np.bincount(inv, weights=length, minlength=ukey.size)
    pa = np.bincount(inv, weights=length * path, minlength=ukey.size)
    st = np.bincount(inv, weights=length * street, minlength=ukey.size)
    ba = np.bincount(inv, weights=length * barrier, minlength=ukey.size)
    return Tessellation(
        pieces=pieces,
        piece_unit=punit,
        n_units=n_units,
        n_cells=n_cells,
        adj_i=(ukey // n_cells).astype(np.int64),
        adj_j=(ukey % n_cells).astype(np.int64),
        shared_m=shared,
        path_m=pa,
        street_m=st,
        barrier_m=ba,
        area_m2=area,
        perimeter_m=np.maximum(perim, 0.0),
        piece_i=pi,
        piece_j=pj,
    )


def _prepare_areas(container: shapely.Geometry, areas: NDArray[np.object_], unit: NDArray[np.int64]
                   ) -> tuple[NDArray[np.object_], NDArray[np.int64]]:
    """Walls clipped to the container, made valid and disjoint (an earlier one keeps an overlap),
    snapped to the noding grid; walls left with no area are dropped."""
    # make_valid may leave lines (a spike) and an intersection lines or points (a wall sharing an
    # edge with the container): keep the polygonal parts only, before and after, or the overlays
    # refuse mixed dimensions
    areas = np.array([polygonal(g) for g in shapely.make_valid(areas)], dtype=object)
    areas = shapely.intersection(areas, container, grid_size=GRID_M)
    out = np.array([polygonal(g) for g in areas], dtype=object)
    # only walls overlapping an earlier one are cut (by the union of those earlier ones): walls
    # that tile a community merely share edges, so most are left alone
    a, b = shapely.STRtree(out).query(out, predicate="intersects")
    earlier = b < a
    a, b = a[earlier], b[earlier]
    for k in np.unique(a):
        prev = b[a == k]
        before = shapely.union_all(out[prev], grid_size=GRID_M)
        if shapely.area(shapely.intersection(out[k], before, grid_size=GRID_M)) > 0:
            out[k] = polygonal(shapely.difference(out[k], before, grid_size=GRID_M))
    polys = out
    ok = ~shapely.is_empty(polys) & (shapely.area(polys) > 1.0)
    return polys[ok], unit[ok]


def _place_strays(
    blocks: NDArray[np.object_], work: NDArray[np.object_], work_block: NDArray[np.int64],
    xy: NDArray[np.float64], unit: NDArray[np.int64], all_xy: NDArray[np.float64],
    all_unit: NDArray[np.int64], ar: NDArray[np.object_], au: NDArray[np.int64],
) -> tuple[NDArray, NDArray, NDArray, NDArray, NDArray, NDArray]:
    """Give every point outside the walls' units a place in ``work`` (the blocks' parts outside
    the walls).

    A point may lie inside a wall that is not its unit's (its own wall was drawn inside another
    and lost its area, or the data disagree). It moves to the nearest point of ``work``, so its
    unit gets a cell beside the wall. With no ground outside the walls at all, the walls holding
    such points are shared instead: each becomes ``work`` (cut by the blocks) for its own
    compound's points and the strays, and is no longer a whole cell.
    """
    if xy.size == 0:
        return work, work_block, xy, unit, ar, au
    pts = shapely.points(xy)
    inside = np.zeros(xy.shape[0], dtype=bool)
    if work.size:
        inside[shapely.STRtree(work).query(pts, predicate="intersects")[0]] = True
    stray = np.flatnonzero(~inside)
    if stray.size == 0:
        return work, work_block, xy, unit, ar, au
    if work.size:
        _, near = shapely.STRtree(work).query_nearest(pts[stray], all_matches=False)
        line = shapely.shortest_line(pts[stray], work[near])
        xy = xy.copy()
        xy[stray] = shapely.get_coordinates(line)[1::2]  # the end on the piece
        return work, work_block, xy, unit, ar, au
    hold = np.unique(locate(pts[stray], ar))
    ag, ai, ab = polygon_pieces(blocks, ar[hold])
    work, work_block = ag[0], ab[0]
    back = np.isin(all_unit, au[hold][au[hold] >= 0])
    xy = np.concatenate([xy, all_xy[back]])
    unit = np.concatenate([unit, all_unit[back]])
    rest = np.setdiff1d(np.arange(ar.size), hold)
    return work, work_block, xy, unit, ar[rest], au[rest]


def _wall_pieces(
    blocks: NDArray[np.object_], work: NDArray[np.object_], work_block: NDArray[np.int64],
    geoms: list[NDArray], units: list[NDArray], bids: list[NDArray],
    areas: NDArray[np.object_], area_unit: NDArray[np.int64],
) -> tuple[NDArray[np.object_], NDArray[np.int64], NDArray[np.int64]]:
    """Add the walls (cut by the blocks) to the pieces in place, map the pieces' block parts back
    to blocks, and return the fillers: ``(geometries, blocks, filler cell)``: each part of a block
    outside the walls that no unit reached is a filler of its own, each empty compound one filler."""
    used = np.zeros(work.size, dtype=bool)
    for k, b in enumerate(bids):
        used[b] = True
        bids[k] = work_block[b]
    fg, fb, fc = [work[~used]], [work_block[~used]], [np.arange(int((~used).sum()))]
    nxt = int((~used).sum())
    ag, ai, ab = polygon_pieces(blocks, areas)
    au = area_unit[ai[0]]
    real = au >= 0
    geoms.append(ag[0][real])
    units.append(au[real])
    bids.append(ab[0][real])
    if (~real).any():  # compounds without homes: one filler each
        _, cell = np.unique(ai[0][~real], return_inverse=True)
        fg.append(ag[0][~real])
        fb.append(ab[0][~real])
        fc.append(nxt + cell.ravel())
    return np.concatenate(fg), np.concatenate(fb), np.concatenate(fc)
