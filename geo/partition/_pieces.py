"""Pieces of cells (private to :mod:`geo.partition.cells`): Voronoi pieces of points in blocks,
polygon pieces, footprints made whole, stray pieces reassigned, shared boundary segments.
"""

from __future__ import annotations

import numpy as np
import shapely
from numpy.typing import NDArray
from scipy import sparse
from scipy.sparse import csgraph

GRID_M = 0.01  # noding precision (1 cm)
MIN_PIECE_M2 = 0.01


def polygonal(g: shapely.Geometry | None) -> shapely.Geometry:
    """The polygonal parts of ``g`` as one (Multi)Polygon (an empty Polygon if none): what
    ``make_valid`` or an intersection leaves of a wall may hold lines or points (a spike, an edge
    shared with a container), which overlays refuse to mix with polygons."""
    if g is None or shapely.is_empty(g):
        return shapely.Polygon()
    parts = shapely.get_parts(g)
    parts = parts[shapely.get_type_id(parts) == 3]
    if parts.size == 0:
        return shapely.Polygon()
    return parts[0] if parts.size == 1 else shapely.union_all(parts, grid_size=GRID_M)


def components_per_label(lab: NDArray[np.int64], pi: NDArray[np.int64], pj: NDArray[np.int64],
                          k: int) -> NDArray[np.int64]:
    n = lab.size
    if n == 0:
        return np.zeros(k, dtype=np.int64)
    same = lab[pi] == lab[pj]
    adj = sparse.coo_matrix((np.ones(int(same.sum())), (pi[same], pj[same])), shape=(n, n))
    _, comp = csgraph.connected_components(adj, directed=False)
    pairs = np.unique(np.column_stack([lab, comp]), axis=0)
    return np.bincount(pairs[:, 0], minlength=k).astype(np.int64)[:k]


def locate(points: NDArray[np.object_], polys: NDArray[np.object_]) -> NDArray[np.int64]:
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


def jitter_duplicates(xy: NDArray[np.float64]) -> NDArray[np.float64]:
    key = np.round(xy / GRID_M).astype(np.int64)
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


def point_pieces(
    blocks: NDArray[np.object_], xy: NDArray[np.float64], point_unit: NDArray[np.int64]
) -> tuple[list[NDArray], list[NDArray], list[NDArray]]:
    """Voronoi pieces of the points inside each block."""
    xy = jitter_duplicates(xy)
    pts = shapely.points(xy)
    blk = locate(pts, blocks)
    if (blk < 0).any():  # no blocks at all: these points have no piece (callers place them first)
        ok = blk >= 0
        xy, point_unit, blk = xy[ok], point_unit[ok], blk[ok]
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
            owner = locate(shapely.points(xy[members]), vor1)
            cell_unit = np.full(vor1.size, point_unit[members[0]])
            cell_unit[owner[owner >= 0]] = point_unit[members[owner >= 0]]
            geoms.append(vor1)
            units.append(cell_unit)
            bids.append(np.full(vor1.size, ublk[multi][b]))
    return geoms, units, bids


def polygon_pieces(
    blocks: NDArray[np.object_], polys: NDArray[np.object_]
) -> tuple[list[NDArray], list[NDArray], list[NDArray]]:
    tree = shapely.STRtree(blocks)
    pi, bi = tree.query(polys, predicate="intersects")
    # a polygon inside one block is its own piece there and only touches the others (no
    # overlay needed: most units)
    home = np.full(polys.size, -1, dtype=np.int64)
    inside, inside_b = tree.query(polys, predicate="within")
    home[inside[::-1]] = inside_b[::-1]
    whole = home[pi] == bi
    keep = (home[pi] < 0) | whole
    pi, bi, whole = pi[keep], bi[keep], whole[keep]
    inter = polys[pi].copy()
    inter[~whole] = shapely.intersection(polys[pi[~whole]], blocks[bi[~whole]])
    area = shapely.area(inter)
    ok = area > MIN_PIECE_M2
    return [inter[ok]], [pi[ok].astype(np.int64)], [bi[ok].astype(np.int64)]


def outside(lines: NDArray[np.object_], fps: NDArray[np.object_]) -> NDArray[np.object_]:
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
    cut = cut[np.isin(shapely.get_type_id(cut), (1, 5)) & (shapely.length(cut) > GRID_M)]
    return np.concatenate([lines[~hit], cut])


def prepare_footprints(
    container: shapely.Geometry, fps: NDArray[np.object_], fpu: NDArray[np.int64]
) -> tuple[NDArray[np.object_], NDArray[np.int64]]:
    """Footprints clipped to the container, made valid and disjoint (a footprint inside another
    keeps its area; otherwise the larger of two overlapping keeps the overlap), snapped to the
    noding grid."""
    fps = shapely.make_valid(fps)
    inside = shapely.intersects(fps, container)
    fps, fpu = fps[inside], fpu[inside]
    fps = shapely.intersection(fps, container, grid_size=GRID_M)
    parts, idx = shapely.get_parts(fps, return_index=True)
    poly = (shapely.get_type_id(parts) == 3) & (shapely.area(parts) > MIN_PIECE_M2)
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
        fps[j] = shapely.difference(fps[j], shapely.union_all(fps[keepers]), grid_size=GRID_M)
    ok = ~shapely.is_empty(fps) & (shapely.area(fps) > MIN_PIECE_M2)
    return fps[ok], fpu[ok]


def outline_points(fps: NDArray[np.object_], spacing_m: float = 8.0) -> tuple[NDArray, NDArray]:
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


def with_footprints(
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
    fblk = locate(shapely.point_on_surface(fps), blocks)
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
        oxy, ofp = outline_points(fps)
        sel = np.isin(fblk[ofp], redo)
        keep = ~np.isin(cblk, redo)
        # buildings drawn as points in a redone block keep their point
        psel = np.isin(locate(shapely.points(point_xy), blocks), redo)
        g2, u2, b2 = point_pieces(blocks, np.concatenate([oxy[sel], point_xy[psel]]),
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
        holes = [shapely.union_all(f, grid_size=GRID_M) for f in np.split(fps[fi], starts[1:])]
        hit = ci[starts]
        cells[hit] = shapely.difference(cells[hit], np.asarray(holes, dtype=object), grid_size=GRID_M)
    inb = fblk >= 0
    fp_in = shapely.intersection(fps[inb], blocks[fblk[inb]], grid_size=GRID_M)
    return ([cells, fp_in], [cunit, fpu[inb]], [cblk, fblk[inb]])


def anchor_pieces(
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
        qi, pi = tree.query(shapely.points(jitter_duplicates(np.asarray(point_xy, float))),
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


def reassign_strays(
    punit: NDArray[np.int64], pi: NDArray[np.int64], pj: NDArray[np.int64], length: NDArray,
    anchors: NDArray[np.bool_], n_units: int,
) -> NDArray[np.int64]:
    """Pieces not connected (within their unit) to an anchor piece join the anchored neighbour
    they share the most boundary with; repeated until every piece hangs on an anchor."""
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


def shared_segments(pieces: NDArray[np.object_]) -> tuple[NDArray, NDArray, NDArray]:
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
