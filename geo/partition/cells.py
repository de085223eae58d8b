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

_GRID_M = 0.01  # noding precision (1 cm)
_MIN_PIECE_M2 = 0.01

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
        return _components_per_label(lab, self.piece_i, self.piece_j, k)

    @cached_property
    def cell_parts(self) -> NDArray[np.int64]:
        """How many separate pieces each cell has (more than 1: a unit in blocks that do not touch)."""
        return _components_per_label(self.piece_unit, self.piece_i, self.piece_j, self.n_cells)


def _components_per_label(lab: NDArray[np.int64], pi: NDArray[np.int64], pj: NDArray[np.int64],
                          k: int) -> NDArray[np.int64]:
    from scipy import sparse
    from scipy.sparse import csgraph

    n = lab.size
    if n == 0:
        return np.zeros(k, dtype=np.int64)
    same = lab[pi] == lab[pj]
    adj = sparse.coo_matrix((np.ones(int(same.sum())), (pi[same], pj[same])), shape=(n, n))
    _, comp = csgraph.connected_components(adj, directed=False)
    pairs = np.unique(np.column_stack([lab, comp]), axis=0)
    return np.bincount(pairs[:, 0], minlength=k).astype(np.int64)[:k]


def _faces(container: shapely.Geometry, lines: NDArray[np.object_]) -> NDArray[np.object_]:
    """Polygonal faces of ``container`` cut by ``lines`` (already clipped)."""
    if lines.size == 0:
        return np.asarray(shapely.get_parts(container), dtype=object)
    work = np.concatenate([[shapely.boundary(container)], lines])
    noded = shapely.union_all(work, grid_size=_GRID_M)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    if faces.size == 0:
        return np.asarray(shapely.get_parts(container), dtype=object)
    inside = shapely.within(shapely.point_on_surface(faces), container)
    return faces[inside]


def _locate(points: NDArray[np.object_], polys: NDArray[np.object_]) -> NDArray[np.int64]:
    """Index of the polygon holding each point (nearest polygon when on an edge)."""
    out = np.full(points.shape[0], -1, dtype=np.int64)
    if points.size == 0 or polys.size == 0:
        return out
    tree = shapely.STRtree(polys)
    pi, gi = tree.query(points, predicate="intersects")
    out[pi[::-1]] = gi[::-1]  # first match wins
    miss = np.flatnonzero(out < 0)
    if miss.size:
        (mi, mg) = tree.query_nearest(points[miss], all_matches=False)
        out[miss[mi]] = mg
    return out


def _clip_lines(container: shapely.Geometry, lines: NDArray[np.object_]) -> NDArray[np.object_]:
    if lines.size == 0:
        return lines
    hit = shapely.intersects(lines, container)
    clipped = shapely.intersection(lines[hit], container)
    clipped = shapely.get_parts(clipped)
    return clipped[np.isin(shapely.get_type_id(clipped), (1, 5))]


def _jitter_duplicates(xy: NDArray[np.float64]) -> NDArray[np.float64]:
    key = np.round(xy / _GRID_M).astype(np.int64)
    _, inv, cnt = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    inv = inv.ravel()
    if (cnt > 1).any():
        xy = xy.copy()
        order = np.argsort(inv, kind="stable")
        rank = np.empty_like(inv)
        starts = np.cumsum(cnt) - cnt
        rank[order] = np.arange(inv.size) - np.repeat(starts, cnt)
        angle = rank * 2.399963  # golden angle: duplicates fan out 5 cm apart
        xy += 0.05 * rank[:, None] * np.column_stack([np.cos(angle), np.sin(angle)])
    return xy


def _point_pieces(
    blocks: NDArray[np.object_], xy: NDArray[np.float64], point_unit: NDArray[np.int64]
) -> tuple[list[NDArray], list[NDArray], list[NDArray]]:
    """Voronoi pieces of the points inside each block."""
    xy = _jitter_duplicates(xy)
    pts = shapely.points(xy)
    blk = _locate(pts, blocks)
    order = np.argsort(blk, kind="stable")
    b_sorted = blk[order]
    ublk, dense, counts = np.unique(b_sorted, return_inverse=True, return_counts=True)
    geoms: list[NDArray] = []
    units: list[NDArray] = []
    bids: list[NDArray] = []
    single = counts == 1
    # blocks with a single point: the whole block
    first = np.cumsum(counts) - counts
    if single.any():
        geoms.append(blocks[ublk[single]])
        units.append(point_unit[order[first[single]]])
        bids.append(ublk[single])
    multi = np.flatnonzero(~single)
    if multi.size:
        sel = np.isin(dense, multi)
        remap = np.full(ublk.size, -1)
        remap[multi] = np.arange(multi.size)
        mp = shapely.multipoints(xy[order[sel]], indices=remap[dense[sel]])
        bl = blocks[ublk[multi]]
        vor = shapely.voronoi_polygons(mp, extend_to=bl, ordered=True)
        parts, pidx = shapely.get_parts(vor, return_index=True)
        expected = counts[multi]
        got = np.bincount(pidx, minlength=multi.size)
        good = got == expected
        keep = good[pidx]
        cells = shapely.intersection(parts[keep], bl[pidx[keep]])
        geoms.append(cells)
        units.append(point_unit[order[sel]][np.repeat(good, expected)])
        bids.append(ublk[multi][pidx[keep]])
        for b in np.flatnonzero(~good):  # degenerate (collinear/duplicate) blocks: nearest point per face
            members = order[sel][remap[dense[sel]] == b]
            block = bl[b]
            vor1 = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(xy[members]),
                                                               extend_to=block))
            vor1 = shapely.intersection(vor1, block)
            if vor1.size == 0:
                vor1 = np.array([block], dtype=object)
            owner = _locate(shapely.points(xy[members]), vor1)
            cell_unit = np.full(vor1.size, point_unit[members[0]])
            cell_unit[owner[owner >= 0]] = point_unit[members[owner >= 0]]
            geoms.append(vor1)
            units.append(cell_unit)
            bids.append(np.full(vor1.size, ublk[multi][b]))
    return geoms, units, bids


def _polygon_pieces(
    blocks: NDArray[np.object_], polys: NDArray[np.object_]
) -> tuple[list[NDArray], list[NDArray], list[NDArray]]:
    tree = shapely.STRtree(blocks)
    pi, bi = tree.query(polys, predicate="intersects")
    inter = shapely.intersection(polys[pi], blocks[bi])
    area = shapely.area(inter)
    ok = area > _MIN_PIECE_M2
    return [inter[ok]], [pi[ok].astype(np.int64)], [bi[ok].astype(np.int64)]


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
    """
    fps = fpu = None
    if footprints is not None and len(footprints) and unit_polygons is None:
        fps, fpu = _prepare_footprints(container, np.asarray(footprints, dtype=object),
                                       np.asarray(footprint_unit, dtype=np.int64))
    streets = _clip_lines(container, np.asarray(street_lines, dtype=object))
    barriers = _clip_lines(container, np.asarray(barrier_lines, dtype=object))
    paths = _clip_lines(container, np.asarray(
        path_lines if path_lines is not None else np.zeros(0, dtype=object), dtype=object))
    if fps is not None and fps.size:
        # a line through a building does not bound anything there (passages, arcades, data errors)
        streets, barriers, paths = (_outside(x, fps) for x in (streets, barriers, paths))
    blocks = _faces(container, np.concatenate([paths, streets, barriers]))
    inner = shapely.point_on_surface(blocks)
    if paths.size:
        block_sface = _locate(inner, _faces(container, np.concatenate([streets, barriers])))
    else:
        block_sface = np.arange(blocks.size)
    block_bface = _locate(inner, _faces(container, barriers))

    if unit_polygons is not None:
        geoms, units, bids = _polygon_pieces(blocks, np.asarray(unit_polygons, dtype=object))
    else:
        assert point_xy is not None and point_unit is not None
        geoms, units, bids = _point_pieces(blocks, np.asarray(point_xy, float),
                                           np.asarray(point_unit, np.int64))
        if fps is not None and fps.size:
            geoms, units, bids = _with_footprints(blocks, geoms, units, bids, fps, fpu,
                                                  np.asarray(point_xy, float),
                                                  np.asarray(point_unit, np.int64))
    pieces = np.concatenate(geoms) if geoms else np.zeros(0, dtype=object)
    punit = np.concatenate(units) if units else np.zeros(0, dtype=np.int64)
    pblock = np.concatenate(bids) if bids else np.zeros(0, dtype=np.int64)
    pieces = shapely.get_parts(pieces, return_index=True)
    pieces, pidx = pieces
    punit, pblock = punit[pidx], pblock[pidx]
    keep = (shapely.get_type_id(pieces) == 3) & (shapely.area(pieces) > _MIN_PIECE_M2)
    pieces, punit, pblock = pieces[keep], punit[keep], pblock[keep]

    # what no unit covers becomes filler cells, block by block
    if unit_polygons is None:  # Voronoi pieces fill their blocks: only empty blocks are left
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
        n_fill = fg.size
        pieces = np.concatenate([pieces, fg])
        punit = np.concatenate([punit, n_units + np.arange(n_fill)])
        pblock = np.concatenate([pblock, np.concatenate(fill_block)])
    n_cells = n_units + n_fill

    if pieces.size:
        cleaned = shapely.coverage_clean(pieces)
        ok = ~shapely.is_empty(cleaned)
        parts, pi = shapely.get_parts(cleaned[ok], return_index=True)
        src = np.flatnonzero(ok)[pi]
        poly = shapely.get_type_id(parts) == 3
        pieces, punit, pblock = parts[poly], punit[src[poly]], pblock[src[poly]]

    pi, pj, length = _shared_segments(pieces)
    if unit_polygons is None and pieces.size:
        anchors = _anchor_pieces(pieces, punit, n_units, point_xy, point_unit, fps, fpu)
        punit = _reassign_strays(punit, pi, pj, length, anchors, n_units)
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


def _outside(lines: NDArray[np.object_], fps: NDArray[np.object_]) -> NDArray[np.object_]:
    """The parts of ``lines`` outside the footprints ``fps``."""
    if lines.size == 0:
        return lines
    li, fi = shapely.STRtree(fps).query(lines, predicate="intersects")
    if li.size == 0:
        return lines
    starts = np.flatnonzero(np.r_[True, li[1:] != li[:-1]])
    over = np.asarray([shapely.union_all(f) for f in np.split(fps[fi], starts[1:])], dtype=object)
    hit = np.zeros(lines.size, dtype=bool)
    hit[li[starts]] = True
    cut = shapely.get_parts(shapely.difference(lines[li[starts]], over))
    cut = cut[np.isin(shapely.get_type_id(cut), (1, 5)) & (shapely.length(cut) > _GRID_M)]
    return np.concatenate([lines[~hit], cut])


def _prepare_footprints(
    container: shapely.Geometry, fps: NDArray[np.object_], fpu: NDArray[np.int64]
) -> tuple[NDArray[np.object_], NDArray[np.int64]]:
    """Footprints clipped to the container, made valid and disjoint (a footprint inside another
    keeps its area; otherwise the larger of two overlapping keeps the overlap), snapped to the
    noding grid."""
    fps = shapely.make_valid(fps)
    inside = shapely.intersects(fps, container)
    fps, fpu = fps[inside], fpu[inside]
    fps = shapely.intersection(fps, container, grid_size=_GRID_M)
    parts, idx = shapely.get_parts(fps, return_index=True)
    poly = (shapely.get_type_id(parts) == 3) & (shapely.area(parts) > _MIN_PIECE_M2)
    parts, idx = parts[poly], idx[poly]
    # one (Multi)Polygon per footprint again, then remove overlaps in input order
    keep, inv = np.unique(idx, return_inverse=True)
    fps = (np.asarray(shapely.multipolygons(parts, indices=inv.ravel()), dtype=object) if parts.size
           else np.zeros(0, dtype=object))
    fpu = fpu[keep]
    tree = shapely.STRtree(fps)
    a, b = tree.query(fps, predicate="intersects")
    keep = a != b
    a, b = a[keep], b[keep]
    a_in_b = shapely.covers(fps[b], fps[a])
    b_in_a = shapely.covers(fps[a], fps[b])
    # where two overlap: a building drawn inside another keeps its footprint (the outer one gets
    # a hole: a block outline over its buildings); else the larger keeps the overlap (ties: the
    # first), so a big building is never cut in two by a small one drawn across it
    area = shapely.area(fps)
    loses = np.where(a_in_b | b_in_a, a_in_b & ~(b_in_a & (b < a)),
                     (area[b] < area[a]) | ((area[b] == area[a]) & (b > a)))
    fps = fps.copy()
    for j in np.unique(b[loses]):
        keepers = a[loses][b[loses] == j]
        fps[j] = shapely.difference(fps[j], shapely.union_all(fps[keepers]), grid_size=_GRID_M)
    ok = ~shapely.is_empty(fps) & (shapely.area(fps) > _MIN_PIECE_M2)
    return fps[ok], fpu[ok]


def _outline_points(fps: NDArray[np.object_], spacing_m: float = 8.0) -> tuple[NDArray, NDArray]:
    """Points along the footprints' outlines (about ``spacing_m`` apart, at most 10 each) and
    the footprint of each."""
    rings = shapely.get_exterior_ring(shapely.get_parts(fps))
    parts_idx = shapely.get_parts(fps, return_index=True)[1]
    seg = np.maximum(shapely.length(rings) / 10.0, spacing_m)
    dense = shapely.segmentize(rings, seg)
    xy, ri = shapely.get_coordinates(dense, return_index=True)
    # drop each ring's closing vertex (it repeats the first)
    last = np.r_[ri[1:] != ri[:-1], True]
    return xy[~last], parts_idx[ri[~last]]


def _with_footprints(
    blocks: NDArray[np.object_], geoms: list[NDArray], units: list[NDArray], bids: list[NDArray],
    fps: NDArray[np.object_], fpu: NDArray[np.int64], point_xy: NDArray, point_unit: NDArray,
) -> tuple[list[NDArray], list[NDArray], list[NDArray]]:
    """Make every footprint lie whole in its unit's cell.

    Blocks whose Voronoi cells (of one point per building) already hold every footprint keep
    them; the others get Voronoi cells of points along the footprints' outlines. Then the
    footprints are cut out of every cell and added as pieces of their own unit.
    """
    cells = np.concatenate(geoms) if geoms else np.zeros(0, dtype=object)
    cunit = np.concatenate(units) if units else np.zeros(0, dtype=np.int64)
    cblk = np.concatenate(bids) if bids else np.zeros(0, dtype=np.int64)
    fblk = _locate(shapely.point_on_surface(fps), blocks)
    # does each footprint lie in cells of its own unit?
    tree = shapely.STRtree(cells)
    fi, ci = tree.query(fps, predicate="intersects")
    foreign = fpu[fi] != cunit[ci]
    if foreign.any():
        ov = shapely.area(shapely.intersection(fps[fi[foreign]], cells[ci[foreign]]))
        bad_fp = np.unique(fi[foreign][ov > 0.05 * np.maximum(shapely.area(fps[fi[foreign]]), 1.0)])
    else:
        bad_fp = np.zeros(0, dtype=np.int64)
    redo = np.unique(fblk[bad_fp])
    redo = redo[redo >= 0]
    if redo.size:
        oxy, ofp = _outline_points(fps)
        sel = np.isin(fblk[ofp], redo)
        keep = ~np.isin(cblk, redo)
        # buildings drawn as points in a redone block keep their point
        psel = np.isin(_locate(shapely.points(point_xy), blocks), redo)
        g2, u2, b2 = _point_pieces(blocks, np.concatenate([oxy[sel], point_xy[psel]]),
                                   np.concatenate([fpu[ofp[sel]], point_unit[psel]]))
        g2, u2, b2 = (np.concatenate(x) if x else np.zeros(0, dtype=d) for x, d in
                      ((g2, object), (u2, np.int64), (b2, np.int64)))
        ok = np.isin(b2, redo)
        cells = np.concatenate([cells[keep], g2[ok]])
        cunit = np.concatenate([cunit[keep], u2[ok]])
        cblk = np.concatenate([cblk[keep], b2[ok]])
    # cut the footprints out of the cells of their block, add them as pieces of their unit
    ci, fi = shapely.STRtree(fps).query(cells, predicate="intersects")
    cells = cells.copy()
    if ci.size:
        starts = np.flatnonzero(np.r_[True, ci[1:] != ci[:-1]])
        holes = [shapely.union_all(f, grid_size=_GRID_M) for f in np.split(fps[fi], starts[1:])]
        hit = ci[starts]
        cells[hit] = shapely.difference(cells[hit], np.asarray(holes, dtype=object), grid_size=_GRID_M)
    inb = fblk >= 0
    fp_in = shapely.intersection(fps[inb], blocks[fblk[inb]], grid_size=_GRID_M)
    return ([cells, fp_in], [cunit, fpu[inb]], [cblk, fblk[inb]])


def _anchor_pieces(
    pieces: NDArray[np.object_], punit: NDArray[np.int64], n_units: int,
    point_xy: NDArray | None, point_unit: NDArray | None,
    fps: NDArray[np.object_] | None, fpu: NDArray[np.int64] | None,
) -> NDArray[np.bool_]:
    """Pieces that hold one of their unit's buildings (a footprint or a point); fillers too."""
    anchor = punit >= n_units
    tree = shapely.STRtree(pieces)
    if fps is not None and fps.size:
        # every piece of a footprint (each part of a multipolygon building) anchors its unit
        pi, fi = shapely.STRtree(fps).query(shapely.point_on_surface(pieces), predicate="intersects")
        anchor[pi[punit[pi] == fpu[fi]]] = True
    if point_xy is not None and point_unit is not None and len(point_xy):
        # a building drawn as a point anchors the piece holding it (units with footprints are
        # anchored by their footprints only)
        pu = np.asarray(point_unit)
        with_fp = np.zeros(max(n_units, 1), dtype=bool)
        if fpu is not None and fpu.size:
            with_fp[fpu] = True
        qi, pi = tree.query(shapely.points(_jitter_duplicates(np.asarray(point_xy, float))),
                            predicate="intersects")
        ok = (punit[pi] == pu[qi]) & ~with_fp[np.minimum(pu[qi], max(n_units, 1) - 1)]
        anchor[pi[ok]] = True
    # a unit with no anchored piece (its building drawn inside another's) keeps its largest piece
    real = punit < n_units
    have = np.zeros(n_units, dtype=bool)
    have[punit[anchor & real]] = True
    orphan = real & ~have[np.minimum(punit, n_units - 1)] if n_units else real
    if orphan.any():
        idx = np.flatnonzero(orphan)
        order = np.lexsort((-shapely.area(pieces[idx]), punit[idx]))
        first = np.r_[True, punit[idx][order][1:] != punit[idx][order][:-1]]
        anchor[idx[order][first]] = True
    return anchor


def _reassign_strays(
    punit: NDArray[np.int64], pi: NDArray[np.int64], pj: NDArray[np.int64], length: NDArray,
    anchors: NDArray[np.bool_], n_units: int,
) -> NDArray[np.int64]:
    """Pieces not connected (within their unit) to an anchor piece join the anchored neighbour
    they share the most boundary with; repeated until every piece hangs on an anchor."""
    from scipy import sparse
    from scipy.sparse import csgraph

    punit = punit.copy()
    n = punit.size
    for _ in range(n + 1):
        same = punit[pi] == punit[pj]
        adj = sparse.coo_matrix((np.ones(int(same.sum())), (pi[same], pj[same])), shape=(n, n))
        _, comp = csgraph.connected_components(adj, directed=False)
        anchored = np.zeros(comp.max() + 1 if n else 0, dtype=bool)
        anchored[comp[anchors]] = True
        stray = ~anchored[comp]
        if not stray.any():
            break
        # per stray piece: the other-unit neighbour with the longest shared boundary
        a = np.concatenate([pi, pj])
        b = np.concatenate([pj, pi])
        ln = np.concatenate([length, length])
        # only onto a piece that hangs on an anchor, so the strays shrink from their rim inwards
        m = stray[a] & ~stray[b] & (punit[a] != punit[b])
        if not m.any():
            break
        a, b, ln = a[m], b[m], ln[m]
        order = np.lexsort((-ln, a))
        first = np.r_[True, a[order][1:] != a[order][:-1]]
        src, dst = a[order][first], b[order][first]
        punit[src] = punit[dst]
    return punit


def _shared_segments(pieces: NDArray[np.object_]) -> tuple[NDArray, NDArray, NDArray]:
    """Pairs of pieces sharing boundary segments, with the shared length.

    The pieces form a clean coverage, so a shared edge has identical vertices on both
    sides and the segments match exactly.
    """
    if pieces.size < 2:
        z = np.zeros(0, dtype=np.int64)
        return z, z, np.zeros(0)
    rings = shapely.get_rings(pieces, return_index=True)
    ring_geom, ring_owner = rings
    coords, ring_idx = shapely.get_coordinates(ring_geom, return_index=True)
    same = ring_idx[1:] == ring_idx[:-1]
    p0 = coords[:-1][same]
    p1 = coords[1:][same]
    owner = ring_owner[ring_idx[:-1][same]]
    q0 = np.round(p0 / 1e-6).astype(np.int64)
    q1 = np.round(p1 / 1e-6).astype(np.int64)
    swap = (q0[:, 0] > q1[:, 0]) | ((q0[:, 0] == q1[:, 0]) & (q0[:, 1] > q1[:, 1]))
    a = np.where(swap[:, None], q1, q0)
    b = np.where(swap[:, None], q0, q1)
    order = np.lexsort((b[:, 1], b[:, 0], a[:, 1], a[:, 0]))
    a, b, owner = a[order], b[order], owner[order]
    p0s, p1s = p0[order], p1[order]
    eq = np.all(a[1:] == a[:-1], axis=1) & np.all(b[1:] == b[:-1], axis=1)
    k = np.flatnonzero(eq)
    i, j = owner[k], owner[k + 1]
    length = np.hypot(*(p1s[k] - p0s[k]).T)
    ok = i != j
    return i[ok], j[ok], length[ok]
