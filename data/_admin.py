"""The administrative ladder of the demo district, built from whole parcels.

Sub-districts and communities are contiguous groups of superblocks (their boundaries follow
arterials and secondaries); comprehensive grids are contiguous groups of whole parcels inside
a community, grown to 300–500 households with a realistic minority outside that band and a
few oddly shaped or over-large ones. Every polygon is a coverage union of the same parcel
polygons, so grids tile communities and communities tile sub-districts exactly.
"""

from __future__ import annotations

import numpy as np
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

_CN = "〇一二三四五六七八九"


def cn_number(k: int) -> str:
    """1..99 in Chinese numerals (``12`` -> ``十二``)."""
    if k < 10:
        return _CN[k]
    tens, ones = divmod(k, 10)
    return ("" if tens == 1 else _CN[tens]) + "十" + ("" if ones == 0 else _CN[ones])


def regions(
    xy: np.ndarray, weight: np.ndarray, pairs: np.ndarray, k: int, rng: np.random.Generator,
    *, iters: int = 25,
) -> np.ndarray:
    """Partition nodes into ``k`` contiguous, compact regions of similar total ``weight``.

    Parameters
    ----------
    xy
        Node coordinates (metres), shape ``(n, 2)``.
    weight
        Node weights (positive).
    pairs
        Adjacent node pairs, shape ``(m, 2)``.
    k
        Number of regions (fewer if there are fewer nodes).
    rng
        Random generator.

    Returns
    -------
    numpy.ndarray
        Region label of each node, ``0..k'-1``, numbered from north-west to south-east.
    """
    n = xy.shape[0]
    if k >= n:
        return _renumber(np.arange(n), xy)
    w = weight / weight.sum()
    cidx = [int(rng.choice(n, p=w))]
    d2 = ((xy - xy[cidx[0]]) ** 2).sum(axis=1)
    for _ in range(1, k):
        p = d2 * w
        cidx.append(int(rng.choice(n, p=p / p.sum())))
        d2 = np.minimum(d2, ((xy - xy[cidx[-1]]) ** 2).sum(axis=1))
    c = xy[cidx].astype(float)
    scale = np.ones(k)
    target = weight.sum() / k
    for _ in range(iters):
        d = ((xy[:, None, :] - c[None, :, :]) ** 2).sum(axis=2) * scale[None, :]
        lab = d.argmin(axis=1)
        load = np.bincount(lab, weight, k)
        for j in range(k):
            m = lab == j
            if m.any():
                c[j] = np.average(xy[m], axis=0, weights=weight[m])
        scale *= np.clip(load / target, 0.5, 2.0) ** 0.35
    lab = make_contiguous(lab, pairs, weight)
    return _renumber(lab, xy)


def make_contiguous(lab: np.ndarray, pairs: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Give every stray piece of a region to the neighbouring region it touches most."""
    lab = lab.copy()
    n = lab.size
    i, j = pairs[:, 0].astype(int), pairs[:, 1].astype(int)
    for _ in range(50):
        same = lab[i] == lab[j]
        g = coo_matrix((np.ones(int(same.sum())), (i[same], j[same])), shape=(n, n))
        _, comp = connected_components(g, directed=False)
        cw = np.bincount(comp, weight + 1e-9)
        # the main piece of each label is its heaviest component
        main = {}
        for c_ in np.argsort(-cw, kind="stable"):
            members = np.flatnonzero(comp == c_)
            if members.size and lab[members[0]] not in main:
                main[lab[members[0]]] = c_
        stray = np.array([main[lab[v]] != comp[v] for v in range(n)])
        if not stray.any():
            break
        changed = False
        for v in np.flatnonzero(stray):
            nb = np.concatenate([j[i == v], i[j == v]])
            nb = nb[lab[nb] != lab[v]]
            if nb.size:
                vals, cnt = np.unique(lab[nb], return_counts=True)
                lab[v] = vals[np.argmax(cnt)]
                changed = True
        if not changed:
            break
    return lab


def _renumber(lab: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Renumber labels ``0..k-1`` by their mean position, north-west first."""
    uniq, inv = np.unique(lab, return_inverse=True)
    cx = np.bincount(inv, xy[:, 0]) / np.bincount(inv)
    cy = np.bincount(inv, xy[:, 1]) / np.bincount(inv)
    order = np.lexsort((cx, -np.round(cy / 500.0)))
    rank = np.empty(uniq.size, dtype=int)
    rank[order] = np.arange(uniq.size)
    return rank[inv]


def grow_grids(
    community: np.ndarray, households: np.ndarray, area_m2: np.ndarray, xy: np.ndarray,
    pairs: np.ndarray, rng: np.random.Generator, *, mean_target: float = 370.0,
) -> np.ndarray:
    """Group parcels into grids inside each community; return each parcel's grid label.

    Grids grow from a seed over adjacent parcels of the same community until they reach a
    household target (mostly 300–480, 7% between 520 and 850) or an area cap. About 4% grow
    as a snake (farthest parcel first) to give the planner oddly shaped grids. Small leftover
    pieces are merged into a neighbouring grid of the same community.
    """
    n = community.size
    nbrs: list[list[int]] = [[] for _ in range(n)]
    for a, b in pairs[:, :2].astype(int):
        if community[a] == community[b]:
            nbrs[a].append(b)
            nbrs[b].append(a)
    grid = np.full(n, -1)
    ang = rng.uniform(0, np.pi)
    proj = xy @ np.array([np.cos(ang), np.sin(ang)])
    next_label = 0
    for c in np.unique(community):
        members = np.flatnonzero(community == c)
        order = members[np.argsort(proj[members], kind="stable")]
        for seed in order:
            if grid[seed] >= 0:
                continue
            big = rng.random() < 0.05
            target = rng.uniform(520, 850) if big else float(np.clip(rng.normal(mean_target, 35), 285, 450))
            cap = 420_000.0 if big else 230_000.0
            snake = rng.random() < 0.04
            label = next_label
            next_label += 1
            grid[seed] = label
            hh, ar = float(households[seed]), float(area_m2[seed])
            sx, sy = xy[seed]
            cx, cy, cw = sx * max(hh, 1), sy * max(hh, 1), max(hh, 1)
            frontier = {v for v in nbrs[seed] if grid[v] < 0}
            while frontier and hh < target and ar < cap:
                cand = np.array(sorted(frontier))
                d = np.hypot(xy[cand, 0] - cx / cw, xy[cand, 1] - cy / cw)
                pick = int(cand[np.argmax(d)] if snake else cand[np.argmin(d)])
                if hh + households[pick] > target * 1.25 and hh >= 0.8 * target:
                    break
                frontier.discard(pick)
                grid[pick] = label
                hh += float(households[pick])
                ar += float(area_m2[pick])
                wgt = max(float(households[pick]), 1.0)
                cx, cy, cw = cx + xy[pick, 0] * wgt, cy + xy[pick, 1] * wgt, cw + wgt
                frontier |= {v for v in nbrs[pick] if grid[v] < 0}
    # merge small leftovers (few households and small area) into a neighbour in the same community
    for _ in range(3):
        ghh = np.bincount(grid, households, next_label)
        gar = np.bincount(grid, area_m2, next_label)
        small = (ghh < 140) & (gar < 60_000)
        if not small.any():
            break
        best: dict[int, tuple[float, int]] = {}
        for a, b, s in pairs:
            a, b = int(a), int(b)
            ga, gb = grid[a], grid[b]
            if ga == gb or community[a] != community[b]:
                continue
            for x, y in ((ga, gb), (gb, ga)):
                if small[x] and not small[y] and (x not in best or s > best[x][0]):
                    best[x] = (float(s), int(y))
        if not best:
            break
        remap = np.arange(next_label)
        for x, (_, y) in sorted(best.items()):
            remap[x] = y
        grid = remap[grid]
    _, grid = np.unique(grid, return_inverse=True)
    return grid


def union_by(polys: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Coverage union of ``polys`` grouped by ``labels`` (``0..k-1``); one geometry per label."""
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(labels.max() + 2))
    out = np.empty(int(labels.max()) + 1, dtype=object)
    for k in range(out.size):
        out[k] = shapely.coverage_union_all(polys[order[bounds[k]:bounds[k + 1]]])
    return out
