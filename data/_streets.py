"""Street network and parcels of the demo district (metres, EPSG:32650).

Arterial and secondary roads are a perturbed, slightly rotated lattice (plus one diagonal
avenue) clipped to the frame; the faces between them are superblocks. Each superblock is
split recursively along its long axis by local streets and compound paths until the pieces
have the size of a residential compound. Every line and the frame's boundary are noded
together on a 1 cm grid and polygonised once, so the parcels tile the frame exactly and
neighbours share their vertices: every boundary built from whole parcels follows a street.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import shapely

from data._names import road_names

GRID_SIZE_M = 0.01  # snap-rounding precision of the noded network
_KIND_RANK = {"arterial": 0, "secondary": 1, "local": 2, "path": 3}


@dataclass
class Network:
    """The street network and the parcels it cuts the frame into.

    Attributes
    ----------
    parcels
        Polygons tiling the frame (no gaps, no overlaps, shared vertices).
    superblock
        For each parcel, the index of its superblock (a face of the arterial/secondary lattice).
    superblocks
        The superblock polygons.
    edges, edge_kind, edge_name
        Noded road segments inside the frame, their kind (``arterial``, ``secondary``,
        ``local``, ``path``) and name (``None`` for paths).
    adjacency
        ``(i, j, shared_m)`` rows, ``i < j``: parcels sharing a boundary of ``shared_m`` metres.
    frame
        The frame as the union of the parcels.
    """

    parcels: np.ndarray
    superblock: np.ndarray
    superblocks: np.ndarray
    edges: np.ndarray
    edge_kind: np.ndarray
    edge_name: np.ndarray
    adjacency: np.ndarray
    frame: shapely.Polygon


def _perturbed_line(
    origin: np.ndarray, u: np.ndarray, n: np.ndarray, offset: float, length: float, rng: np.random.Generator
) -> shapely.LineString:
    """A gently wavy line along ``n`` at ``offset`` along ``u`` from ``origin``."""
    s = np.arange(-length / 2, length / 2 + 150.0, 150.0)
    wobble = np.cumsum(rng.normal(0.0, 5.0, s.size))
    wobble -= np.linspace(wobble[0], wobble[-1], s.size) * 0.5
    wobble = np.clip(wobble, -35.0, 35.0)
    pts = origin + np.outer(offset + wobble, u) + np.outer(s, n)
    return shapely.LineString(pts)


def major_roads(
    frame: shapely.Polygon, rng: np.random.Generator, *, spacing_m: float = 380.0
) -> tuple[list[shapely.LineString], list[str], list[str]]:
    """Arterials and secondaries: two families of wavy parallel lines and one diagonal avenue."""
    c = np.array([frame.centroid.x, frame.centroid.y])
    minx, miny, maxx, maxy = frame.bounds
    half = float(np.hypot(maxx - minx, maxy - miny)) / 2 + 300.0
    theta = np.deg2rad(rng.uniform(-12.0, 12.0))
    dirs = [np.array([np.cos(theta), np.sin(theta)]), np.array([-np.sin(theta), np.cos(theta)])]
    lines: list[shapely.LineString] = []
    kinds: list[str] = []
    for fam in range(2):
        u, n = dirs[fam], dirs[1 - fam]
        k0 = int(rng.integers(2))
        offsets = np.arange(-half, half, spacing_m) + rng.uniform(0, spacing_m)
        offsets = offsets + rng.normal(0.0, spacing_m * 0.08, offsets.size)
        for i, off in enumerate(offsets):
            lines.append(_perturbed_line(c, u, n, float(off), 2 * half, rng))
            kinds.append("arterial" if (i + k0) % 2 == 0 else "secondary")
    # one diagonal avenue, like the old city's diagonal main road
    diag = (dirs[0] + dirs[1]) / np.sqrt(2.0)
    perp = np.array([-diag[1], diag[0]])
    lines.append(_perturbed_line(c, perp, diag, float(rng.normal(0, 200.0)), 2 * half, rng))
    kinds.append("arterial")
    n_major = sum(k == "arterial" for k in kinds)
    major_names = iter(road_names(n_major, rng, major=True))
    minor_names = iter(road_names(len(kinds) - n_major, rng, major=False))
    names = [next(major_names) if k == "arterial" else next(minor_names) for k in kinds]
    return lines, kinds, names


def _polygon_parts(geoms: np.ndarray, parent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Polygon parts of ``geoms`` with positive area, and the index of the geometry each came from."""
    parts, idx = shapely.get_parts(geoms, return_index=True)
    keep = (shapely.get_type_id(parts) == 3) & (shapely.area(parts) > 1e-6)
    return parts[keep], parent[idx[keep]]


def subdivide(
    faces: np.ndarray, target_m2: np.ndarray, rng: np.random.Generator, *, max_levels: int = 9
) -> tuple[list[shapely.LineString], list[int], list[int]]:
    """Split faces across their long axis, level by level, until each is below its target area.

    Returns the cut lines, the level of each cut, and the face each cut was made in.
    """
    cuts: list[shapely.LineString] = []
    levels: list[int] = []
    owners: list[int] = []
    cur = np.asarray(faces, dtype=object)
    owner = np.arange(cur.size)
    target = np.asarray(target_m2, dtype=float)
    for level in range(max_levels):
        need = shapely.area(cur) > target[owner]
        if not need.any():
            break
        p = cur[need]
        env = shapely.oriented_envelope(p)
        ok = shapely.get_type_id(env) == 3
        coords = np.zeros((p.size, 3, 2))
        ring = shapely.get_exterior_ring(env[ok])
        coords[ok] = shapely.get_coordinates(ring).reshape(-1, 5, 2)[:, :3, :]
        e1 = coords[:, 1] - coords[:, 0]
        e2 = coords[:, 2] - coords[:, 1]
        l1 = np.hypot(e1[:, 0], e1[:, 1])
        l2 = np.hypot(e2[:, 0], e2[:, 1])
        long_ = np.where((l1 >= l2)[:, None], e1, e2)
        llen = np.maximum(np.maximum(l1, l2), 1e-9)
        u = long_ / llen[:, None]
        n = np.column_stack([-u[:, 1], u[:, 0]])
        cen = shapely.get_coordinates(shapely.centroid(p))
        cpt = cen + u * (rng.normal(0.0, 0.08, p.size) * llen)[:, None]
        big = 5_000.0
        a0, a1 = cpt - big * n, cpt + big * n
        half_a = shapely.polygons(np.stack([a0, a1, a1 + big * u, a0 + big * u, a0], axis=1))
        half_b = shapely.polygons(np.stack([a0, a1, a1 - big * u, a0 - big * u, a0], axis=1))
        line = shapely.linestrings(np.stack([a0, a1], axis=1))
        cut = shapely.intersection(line, p)
        pa, ia = _polygon_parts(shapely.intersection(p, half_a), owner[need])
        pb, ib = _polygon_parts(shapely.intersection(p, half_b), owner[need])
        cparts, cidx = shapely.get_parts(cut, return_index=True)
        keep = (shapely.get_type_id(cparts) == 1) & ok[cidx]
        cuts.extend(cparts[keep].tolist())
        levels.extend([level] * int(keep.sum()))
        owners.extend(owner[need][cidx[keep]].tolist())
        cur = np.concatenate([cur[~need], pa, pb])
        owner = np.concatenate([owner[~need], ia, ib])
    return cuts, levels, owners


def _faces(lines: list[shapely.LineString] | np.ndarray, frame: shapely.Polygon) -> tuple[np.ndarray, shapely.Geometry]:
    """Node ``lines`` with the frame's boundary on the 1 cm grid; return the faces inside the frame."""
    allg = np.concatenate([np.asarray(lines, dtype=object), np.array([frame.boundary], dtype=object)])
    noded = shapely.unary_union(allg, grid_size=GRID_SIZE_M)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    rp = shapely.point_on_surface(faces)
    inside = shapely.contains_xy(frame, *shapely.get_coordinates(rp).T)
    return faces[inside], noded


def adjacency(polys: np.ndarray, *, min_shared_m: float = 0.5) -> np.ndarray:
    """``(i, j, shared_m)`` for polygons of a coverage sharing more than ``min_shared_m`` of boundary.

    Neighbours in a coverage share their edges vertex for vertex, so shared boundary is found
    by matching identical segments (``i < j``); no geometric overlay is needed.
    """
    rings, ring_owner = shapely.get_rings(polys, return_index=True)
    coords, cidx = shapely.get_coordinates(rings, return_index=True)
    same = cidx[1:] == cidx[:-1]
    a, b = coords[:-1][same], coords[1:][same]
    owner = ring_owner[cidx[:-1][same]]
    swap = (a[:, 0] > b[:, 0]) | ((a[:, 0] == b[:, 0]) & (a[:, 1] > b[:, 1]))
    lo = np.where(swap[:, None], b, a)
    hi = np.where(swap[:, None], a, b)
    seg = np.column_stack([lo, hi])
    order = np.lexsort((owner, seg[:, 3], seg[:, 2], seg[:, 1], seg[:, 0]))
    seg, owner = seg[order], owner[order]
    dup = np.all(seg[1:] == seg[:-1], axis=1) & (owner[1:] != owner[:-1])
    i, j = owner[:-1][dup], owner[1:][dup]
    length = np.hypot(seg[:-1][dup, 2] - seg[:-1][dup, 0], seg[:-1][dup, 3] - seg[:-1][dup, 1])
    pi, pj = np.minimum(i, j), np.maximum(i, j)
    key = pi.astype(np.int64) * (polys.size + 1) + pj
    uniq, inv = np.unique(key, return_inverse=True)
    shared = np.bincount(inv, length)
    ui, uj = uniq // (polys.size + 1), uniq % (polys.size + 1)
    k = shared > min_shared_m
    return np.column_stack([ui[k], uj[k], shared[k]])


def _merge_tiny(parcels: np.ndarray, sb: np.ndarray, *, min_m2: float) -> tuple[np.ndarray, np.ndarray]:
    """Merge parcels smaller than ``min_m2`` into the neighbour they share most boundary with."""
    for _ in range(3):
        area = shapely.area(parcels)
        tiny = np.flatnonzero(area < min_m2)
        if tiny.size == 0:
            break
        adj = adjacency(parcels, min_shared_m=0.0)
        i, j, sh = adj[:, 0].astype(int), adj[:, 1].astype(int), adj[:, 2]
        # candidate hosts for each tiny parcel: (tiny, host, shared, same superblock)
        x = np.concatenate([i, j])
        y = np.concatenate([j, i])
        s2 = np.concatenate([sh, sh])
        m = (area[x] < min_m2) & (area[y] >= min_m2)
        x, y, s2 = x[m], y[m], s2[m]
        order = np.lexsort((y, -s2, sb[x] != sb[y], x))
        x, y = x[order], y[order]
        first = np.ones(x.size, bool)
        first[1:] = x[1:] != x[:-1]
        target = np.full(parcels.size, -1)
        target[x[first]] = y[first]
        groups: dict[int, list[int]] = {}
        for t in tiny:
            if target[t] >= 0:
                groups.setdefault(int(target[t]), []).append(int(t))
        if not groups:
            break
        drop = np.zeros(parcels.size, bool)
        parcels = parcels.copy()
        for host, small in sorted(groups.items()):
            parcels[host] = shapely.coverage_union_all(parcels[[host, *small]])
            drop[small] = True
        parcels, sb = parcels[~drop], sb[~drop]
    return parcels, sb


def build_network(
    frame: shapely.Polygon, rng: np.random.Generator, *,
    parcel_m2: Callable[[np.ndarray], np.ndarray] | float = 12_000.0,
) -> Network:
    """Draw the roads and cut the frame into parcels (see the module docstring).

    Parameters
    ----------
    frame
        The district's frame (metres).
    rng
        Random generator.
    parcel_m2
        Median parcel area, or a function of the superblock polygons returning one per superblock.
    """
    lines, kinds, names = major_roads(frame, rng)
    superblocks, _ = _faces(lines, frame)
    med = parcel_m2(superblocks) if callable(parcel_m2) else np.full(superblocks.size, parcel_m2)
    target = med * np.exp(rng.normal(0.0, 0.35, superblocks.size))
    cuts, levels, _owners = subdivide(superblocks, target, rng)
    lv = np.asarray(levels)
    cut_kind = np.where(lv == 0, "local", np.where((lv == 1) & (rng.random(lv.size) < 0.5), "local", "path"))
    n_local = int((cut_kind == "local").sum())
    local_names = iter(road_names(n_local, rng, major=False))
    cut_names = [next(local_names) if k == "local" else None for k in cut_kind]
    all_lines = np.asarray(list(lines) + list(cuts), dtype=object)
    all_kind = np.asarray(list(kinds) + cut_kind.tolist(), dtype=object)
    all_name = np.asarray(list(names) + cut_names, dtype=object)

    parcels, noded = _faces(all_lines, frame)
    # superblock of each parcel: the superblock containing its interior point
    rp = shapely.point_on_surface(parcels)
    pi, si = shapely.STRtree(superblocks).query(rp, predicate="intersects")
    sb = np.full(parcels.size, -1)
    sb[pi[::-1]] = si[::-1]  # first match wins
    sb[sb < 0] = 0
    parcels, sb = _merge_tiny(parcels, sb, min_m2=400.0)
    cxy = shapely.get_coordinates(shapely.centroid(parcels))
    order = np.lexsort((cxy[:, 0], cxy[:, 1]))
    parcels, sb = parcels[order], sb[order]

    # road edges: the noded pieces inside the frame, with the kind of the line they came from
    pieces = shapely.get_parts(noded)
    mid = shapely.line_interpolate_point(pieces, 0.5, normalized=True)
    fb = frame.boundary
    on_frame = shapely.dwithin(mid, fb, 0.02)
    inside = shapely.contains_xy(frame.buffer(0.02), *shapely.get_coordinates(mid).T)
    pieces, mid = pieces[inside & ~on_frame], mid[inside & ~on_frame]
    pj, lj = shapely.STRtree(all_lines).query(mid, predicate="dwithin", distance=0.02)
    rank = np.array([_KIND_RANK[k] for k in all_kind])
    best = np.full(pieces.size, -1)
    best_rank = np.full(pieces.size, 99)
    for p, line_i in zip(pj.tolist(), lj.tolist(), strict=True):
        if rank[line_i] < best_rank[p]:
            best_rank[p], best[p] = rank[line_i], line_i
    ok = best >= 0
    pieces, best = pieces[ok], best[ok]
    adj = adjacency(parcels)
    union = shapely.coverage_union_all(parcels)
    return Network(parcels, sb, superblocks, pieces, all_kind[best], all_name[best], adj, union)
