"""Construction: how many regions, and a first partition to search from.

:func:`choose_k` picks the region count of a total from the band; :func:`component_plans`
does so per connected component (units above the band are pinned: a region each);
:func:`grow_start` grows regions from k-means++ seeds along walking distance (with a Lloyd
step), :func:`current_start` starts from the current regions (made contiguous, merged or
split to the count).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np
from numpy.typing import NDArray

from geo.partition._metrics import best_centre, count_range
from geo.partition.graph import UnitGraph
from geo.partition.search import Search
from geo.partition.state import PartitionProblem

__all__ = ["choose_k", "component_plans", "current_start", "grow_start"]


def choose_k(
    weight: float, *, lo: float, hi: float, preferred: int | None = None, margin: float = 0.0
) -> int:
    """How many regions ``weight`` splits into.

    Inside the band when possible: the ``preferred`` count (the current one) if its mean
    lies at least ``margin`` inside the band, else the count whose mean is nearest the
    middle of the band. When no count fits, the count with the least total deviation
    (ties: fewer regions).

    Examples
    --------
    >>> choose_k(1200, lo=300, hi=500), choose_k(1200, lo=300, hi=500, preferred=4)
    (3, 4)
    >>> choose_k(3098, lo=300, hi=500, preferred=10, margin=30)
    8
    >>> choose_k(550, lo=300, hi=500), choose_k(100, lo=300, hi=500)
    (1, 1)
    """
    if weight <= 0:
        return 1
    kmin, kmax = count_range(weight, lo, hi)
    if kmin <= kmax:
        if preferred and kmin <= preferred <= kmax:
            mean = weight / preferred
            m = min(margin, (hi - lo) / 4)
            if lo + m <= mean <= hi - m:
                return int(preferred)
        mid = (lo + hi) / 2
        return int(min(range(kmin, kmax + 1), key=lambda k: (abs(weight / k - mid), k)))
    best, best_dev = 1, math.inf
    for k in range(max(1, kmax), kmin + 1):
        m = weight / k
        dev = k * (max(0.0, lo - m) + max(0.0, m - hi))
        if dev < best_dev - 1e-9:
            best, best_dev = k, dev
    return best


def component_plans(problem: PartitionProblem) -> list[dict[str, Any]]:
    """Per connected component: its cells, pinned cells and region count."""
    g = problem.graph
    comp = g.component
    plans = []
    for c in np.unique(comp):
        cells = np.flatnonzero(comp == c)
        homes = cells[g.homes[cells]]
        pinned = homes[g.weight[homes] > problem.hi]
        rest_w = float(g.weight[cells].sum() - g.weight[pinned].sum())
        free_homes = np.setdiff1d(homes, pinned)
        cur = g.current[homes]
        k0 = np.unique(cur[cur >= 0]).size or None
        if homes.size == 0 or free_homes.size == 0:
            k_rest = 0
        else:
            pref = None if k0 is None else max(k0 - pinned.size, 1)
            margin = float(np.median(g.weight[free_homes]))
            k_rest = min(choose_k(rest_w, lo=problem.lo, hi=problem.hi, preferred=pref,
                                  margin=margin), free_homes.size)
        plans.append({"cells": cells, "pinned": pinned.tolist(), "k_rest": k_rest,
                      "homes": homes.size, "rest_w": rest_w})
    if problem.k is not None:
        # an explicit k: spread it over the components by weight
        live = [p for p in plans if p["homes"]]
        total_pin = sum(len(p["pinned"]) for p in live)
        free = max(problem.k - total_pin, len(live))
        ws = np.array([g.weight[p["cells"]].sum() for p in live], dtype=float)
        share = np.maximum(1, np.round(free * ws / max(ws.sum(), 1e-9))).astype(int)
        for p, s in zip(live, share, strict=True):
            p["k_rest"] = int(min(s, max(1, p["homes"] - len(p["pinned"]))))
    return plans


def grow_start(S: Search, plans: list[dict[str, Any]], rng: np.random.Generator,
               lloyd: int = 1) -> NDArray[np.int64]:
    g = S.p.graph
    lab = np.full(g.n, -1, dtype=np.int64)
    nxt = 0
    orphans = []
    for plan in plans:
        cells = plan["cells"].tolist()
        if plan["homes"] == 0:
            orphans.append(plan["cells"])
            continue
        pinned = plan["pinned"]
        free = [c for c in cells if c not in set(pinned)]
        seeds = list(pinned) + (S.pick_seeds(free, plan["k_rest"]) if plan["k_rest"] else [])
        grown = S.grow(seeds, cells)
        for _ in range(lloyd):
            regions: dict[int, list[int]] = {}
            for c, r in grown.items():
                regions.setdefault(r, []).append(c)
            new = []
            for r, s in enumerate(seeds):
                if S.pinned[s]:
                    new.append(s)
                    continue
                c = best_centre(g, regions.get(r, [s]), S.R)
                new.append(c if c >= 0 and not S.pinned[c] else s)
            if new == seeds:
                break
            seeds = new
            grown = S.grow(seeds, cells)
        for c, r in grown.items():
            lab[c] = nxt + r
        nxt += len(seeds)
    _attach_orphans(g, lab, orphans)
    return lab


def _attach_orphans(g: UnitGraph, lab: NDArray[np.int64], orphans: list[NDArray]) -> None:
    """Components without homes join the region of the nearest labelled cell."""
    if not orphans:
        return
    have = np.flatnonzero(lab >= 0)
    if have.size == 0:
        lab[:] = 0
        return
    for cells in orphans:
        d = np.hypot(*(g.xy[have][:, None, :] - g.xy[cells][None, :, :]).transpose(2, 0, 1))
        i = np.unravel_index(np.argmin(d), d.shape)[0]
        lab[cells] = lab[have[i]]


def current_start(S: Search, plans: list[dict[str, Any]]) -> NDArray[np.int64] | None:
    """A start from the current regions: made contiguous, pinned cells carved out, then
    merged or split to each component's region count."""
    g = S.p.graph
    if (g.current < 0).all():
        return None
    lab = np.full(g.n, -1, dtype=np.int64)
    nxt = 0
    orphans = []
    for plan in plans:
        cells = plan["cells"]
        if plan["homes"] == 0:
            orphans.append(cells)
            continue
        cur = g.current[cells]
        if (cur < 0).all():
            return None
        pinned = set(plan["pinned"])
        sub_lab = np.where(cur >= 0, cur, -1)
        # carve out pinned cells
        for p in pinned:
            sub_lab[np.searchsorted(cells, p)] = -(10 + p)
        regions = _contiguous_pieces(S, cells, sub_lab)
        want = len(pinned) + plan["k_rest"]
        regions = _adjust_count(S, cells, regions, want, pinned)
        for r, mem in enumerate(regions):
            lab[mem] = nxt + r
        nxt += len(regions)
    _attach_orphans(g, lab, orphans)
    return lab if (lab >= 0).all() else None


def _contiguous_pieces(S: Search, cells: NDArray, sub_lab: NDArray) -> list[list[int]]:
    """Keep the heaviest connected piece of each label; fill the rest breadth-first."""
    pos = {int(c): k for k, c in enumerate(cells)}
    lab = {int(c): int(v) for c, v in zip(cells, sub_lab, strict=True)}
    pieces: dict[int, list[int]] = {}
    for c in cells.tolist():
        pieces.setdefault(lab[c], []).append(c)
    final: dict[int, int] = {}
    for v, mem in pieces.items():
        if v == -1:
            continue
        memset = set(mem)
        seen: set[int] = set()
        best: list[int] = []
        best_w = -1.0
        for s in mem:
            if s in seen:
                continue
            comp = [s]
            seen.add(s)
            k = 0
            while k < len(comp):
                x = comp[k]
                k += 1
                for y in S.nbrs[x]:
                    if y in memset and y not in seen:
                        seen.add(y)
                        comp.append(y)
            w = sum(S.w[c] for c in comp) + 1e-6 * len(comp)
            if w > best_w:
                best, best_w = comp, w
        for c in best:
            final[c] = v
    # breadth-first fill of the unlabelled cells (never into a pinned singleton)
    dq = deque(c for c in cells.tolist() if c in final)
    while dq:
        x = dq.popleft()
        for y in S.nbrs[x]:
            if y in pos and y not in final:
                fx = final[x]
                if fx <= -10 and S.homes[y]:
                    continue
                final[y] = fx
                dq.append(y)
    for c in cells.tolist():  # still unlabelled: only reachable through pinned cells
        if c not in final:
            for y in S.nbrs[c]:
                if y in final:
                    final[c] = final[y]
                    break
            else:
                final[c] = -1
    groups: dict[int, list[int]] = {}
    for c, v in final.items():
        groups.setdefault(v, []).append(c)
    return list(groups.values())


def _adjust_count(S: Search, cells: NDArray, regions: list[list[int]], want: int,
                  pinned: set[int]) -> list[list[int]]:
    """Merge the lightest regions into a neighbour, or split the heaviest, until ``want``."""
    regions = [list(m) for m in regions]
    while len(regions) > max(want, 1):
        owner = {c: r for r, m in enumerate(regions) for c in m}
        ws = [sum(S.w[c] for c in m) for m in regions]
        cand = [r for r in range(len(regions)) if not any(c in pinned for c in regions[r])]
        if not cand:
            break
        r = min(cand, key=lambda x: ws[x])
        nb = {owner[y] for c in regions[r] for y in S.nbrs[c] if y in owner and owner[y] != r}
        nb = [s for s in nb if not any(c in pinned for c in regions[s])] or list(nb)
        if not nb:
            break
        s = min(nb, key=lambda x: ws[x])
        regions[s].extend(regions[r])
        regions.pop(r)
    guard = 0
    while len(regions) < want and guard < 10 * want:
        guard += 1
        ws = [sum(S.w[c] for c in m) if not any(c in pinned for c in m) else -1 for m in regions]
        r = int(np.argmax(ws))
        mem = regions[r]
        if ws[r] <= 0 or len(mem) < 2:
            break
        seeds = S.pick_seeds(mem, 2)
        if len(seeds) < 2:
            break
        grown = S.grow(seeds, mem)
        a = [c for c, v in grown.items() if v == 0]
        b = [c for c, v in grown.items() if v == 1]
        if not a or not b:
            break
        regions[r] = a
        regions.append(b)
    return regions


