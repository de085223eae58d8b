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

from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray

_GRID_M = 0.01  # noding precision (1 cm)
_MIN_PIECE_M2 = 0.01


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

    def union(self, cells: NDArray[np.int64]) -> shapely.Geometry:
        """The exact union of the given cells."""
        sel = np.isin(self.piece_unit, cells)
        return shapely.coverage_union_all(self.pieces[sel])


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
    n_units: int,
) -> Tessellation:
    """Cut ``container`` into one cell per unit plus filler cells.

    Give either ``point_xy`` with ``point_unit`` (Voronoi cells of points, grouped by
    unit) or ``unit_polygons`` (one polygon per unit).
    """
    streets = _clip_lines(container, np.asarray(street_lines, dtype=object))
    barriers = _clip_lines(container, np.asarray(barrier_lines, dtype=object))
    paths = _clip_lines(container, np.asarray(
        path_lines if path_lines is not None else np.zeros(0, dtype=object), dtype=object))
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

    area_piece = shapely.area(pieces)
    perim_piece = shapely.length(pieces)
    pi, pj, length = _shared_segments(pieces)
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
    )


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
