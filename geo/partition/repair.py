"""Repairs of regions still out of the band, over a :class:`~geo.partition.search.Search`.

Three moves, tried in this order for each region out of the band: an ejection chain (pass
weight along a path of neighbouring regions), a swap (exchange a boundary cell with a
neighbour), a re-split (merge with a neighbour and grow the pair again). Each keeps a change
only when it lowers the objective, and counts its steps on the :class:`Budget`.
"""

from __future__ import annotations

from collections import deque

from geo.partition.search import _EPS, Budget, Search

__all__ = ["repair_band"]


def repair_band(S: Search, budget: Budget, max_hops: int = 6) -> None:
    """Ejection chains: pass weight from out-of-band regions along paths of regions."""
    for _ in range(4 * max(len(S.members), 1)):
        if budget.out():
            return
        bad = [r for r in range(len(S.members))
               if S.band(S.W[r]) > 0 and not S.pinned_region(r)]
        if not bad:
            return
        S.rng.shuffle(bad)
        progress = False
        for r in bad:
            if S.band(S.W[r]) > 0 and (
                    _chain(S, r, max_hops, budget) or _swap(S, r, budget)
                    or _bisect(S, r, budget) or _resplit(S, r, budget)):
                progress = True
        if not progress:
            return


def _swap(S: Search, r: int, budget: Budget) -> bool:
    """Exchange a boundary cell of ``r`` with one of a neighbouring region."""
    centre_set = set(S.centre)
    best = None
    for s in S.region_neighbours(r):
        if S.pinned_region(s):
            continue
        out_cells = [i for i in S.members[r]
                     if i not in centre_set and not S.pinned[i]
                     and any(S.assign[j] == s for j in S.nbrs[i])]
        for i in out_cells:
            if budget.out():
                return False
            budget.tick()
            if not S.stays_connected(i):
                continue
            d1 = S.delta(i, r, s)
            S.move(i, s)
            for j in list(S.members[s]):
                if j == i or j in centre_set or S.pinned[j]:
                    continue
                if not any(S.assign[x] == r for x in S.nbrs[j]):
                    continue
                d = d1 + S.delta(j, s, r)
                if d < -_EPS and (best is None or d < best[0]) and S.stays_connected(j):
                    best = (d, i, j, s)
            S.move(i, r)
    if best is None:
        return False
    _, i, j, s = best
    S.move(i, s)
    S.move(j, r)
    S.recentre([r, s])
    return True


def _resplit(S: Search, r: int, budget: Budget, tries: int = 6) -> bool:
    """Merge ``r`` with a neighbour and grow the pair again from new seeds, keeping the
    first split that puts both in the band and lowers the objective."""
    lo2, hi2 = 2 * S.lo, 2 * S.hi
    for s in sorted(S.region_neighbours(r)):
        if S.pinned_region(s) or not lo2 <= S.W[r] + S.W[s] <= hi2:
            continue
        base = S.local_objective([r, s])
        cells = sorted(S.members[r] | S.members[s])
        old = [S.assign[i] for i in cells]
        for _ in range(tries):
            if budget.out():
                return False
            budget.tick(len(cells))
            seeds = S.pick_seeds(cells, 2)
            if len(seeds) < 2:
                break
            lab = S.grow(seeds, cells)
            if len(lab) < len(cells):  # the pair is not connected (a region in pieces)
                break
            for i in cells:
                S.move(i, r if lab[i] == 0 else s)
            S.recentre([r, s])
            if (S.band(S.W[r]) == 0 and S.band(S.W[s]) == 0
                    and S.members[r] and S.members[s]
                    and S.local_objective([r, s]) < base - _EPS):
                return True
            for i, a in zip(cells, old, strict=True):
                S.move(i, a)
            S.recentre([r, s])
    return False


def _chain(S: Search, r0: int, max_hops: int, budget: Budget) -> bool:
    over = S.W[r0] > S.hi
    # breadth-first paths in the region graph
    parent = {r0: -1}
    depth = {r0: 0}
    dq = deque([r0])
    targets = []
    while dq:
        r = dq.popleft()
        if depth[r] >= max_hops:
            continue
        for s in S.region_neighbours(r):
            if s in parent or S.pinned_region(s):
                continue
            parent[s] = r
            depth[s] = depth[r] + 1
            dq.append(s)
            slack = (S.hi - S.W[s]) if over else (S.W[s] - S.lo)
            if slack > 0:
                targets.append(s)
    # regions with room for the whole excess first (nearest first), then the rest
    need = (S.W[r0] - S.hi) if over else (S.lo - S.W[r0])
    room = [s for s in targets if ((S.hi - S.W[s]) if over else (S.W[s] - S.lo)) >= need]
    targets = room + [s for s in targets if s not in set(room)]
    for s in targets[:8]:
        if budget.out():
            return False
        budget.tick(depth[s])
        path = [s]
        while path[-1] != r0:
            path.append(parent[path[-1]])
        path.reverse()  # r0 ... s
        if _try_path(S, path, over):
            return True
    return False


def _try_path(S: Search, path: list[int], over: bool, max_per_hop: int = 4) -> bool:
    """Pass weight along ``path`` (``r0 ... s``): each region out of the band hands boundary cells
    to the next one (up to ``max_per_hop`` when one cell does not cover the need: a region of
    small units next to a tower); kept when the objective falls.

    A region's service point moves only when nothing else can (a tower and one small unit):
    then the change is judged on the exact objective of the regions on the path."""
    total = 0.0
    done: list[tuple[int, int]] = []
    base: float | None = None
    for t in range(len(path) - 1):
        q, nxt = path[t], path[t + 1]
        need = (S.W[q] - S.hi) if over else (S.lo - S.W[q])
        if need <= 0:
            break
        giver, taker = (q, nxt) if over else (nxt, q)
        for _ in range(max_per_hop):
            i = _pick_transfer(S, giver, taker, need)
            if i < 0 and not done:
                i = _pick_transfer(S, giver, taker, need, allow_centre=True)
                if i >= 0:
                    base = S.local_objective(sorted(set(path)))
            if i < 0:
                break
            done.append((i, giver))
            total += S.delta(i, giver, taker)
            S.move(i, taker)
            need = (S.W[q] - S.hi) if over else (S.lo - S.W[q])
            if need <= 0:
                break
        if need > 0 and (not done or done[-1][1] != giver):
            break
    if not done:
        return False
    touched = sorted({r for i, g in done for r in (g, S.assign[i])})
    if base is not None:  # a service point moved: the deltas do not tell, the objective does
        S.recentre(touched)
        if S.local_objective(sorted(set(path))) < base - _EPS:
            return True
    elif total < -_EPS:
        S.recentre(touched)
        return True
    for i, g in reversed(done):
        S.move(i, g)
    if base is not None:
        S.recentre(touched)
    return False


def _pick_transfer(S: Search, giver: int, taker: int, need: float, *, allow_centre: bool = False) -> int:
    """The boundary cell of ``giver`` next to ``taker`` that best covers ``need`` (its service
    point too with ``allow_centre``)."""
    best, best_key = -1, None
    centre = -1 if allow_centre else S.centre[giver]
    room = S.W[giver] - S.lo if S.W[giver] > S.lo else 0.0
    cands = []
    for i in S.members[giver]:
        if i == centre or S.pinned[i]:
            continue
        if any(S.assign[j] == taker for j in S.nbrs[i]):
            cands.append(i)
    for i in cands:
        wi = S.w[i]
        if wi <= 0:
            continue
        short = max(0.0, need - wi)
        spill = max(0.0, wi - max(room, need))
        key = (short + spill, S.delta(i, giver, taker))
        if best_key is None or key < best_key:
            if S.stays_connected(i):
                best, best_key = i, key
    return best


def _bisect(S: Search, r: int, budget: Budget, max_candidates: int = 24) -> bool:
    """Cut ``r`` and a neighbour anew along a breadth-first order: for each cell of the pair as
    root, every prefix of the order is connected; a prefix whose weight and the rest's both lie in
    the band (the rest connected too) is a candidate. The candidate with the lowest objective wins
    (it must lower the pair's objective). Deterministic, and exact where region growing from
    random seeds keeps missing the few balanced cuts a pair of towers leaves."""
    lo, hi = S.lo, S.hi
    for s in sorted(S.region_neighbours(r)):
        if S.pinned_region(s) or not 2 * lo <= S.W[r] + S.W[s] <= 2 * hi:
            continue
        cells = sorted(S.members[r] | S.members[s])
        inset = set(cells)
        total = S.W[r] + S.W[s]
        cands: list[frozenset[int]] = []
        seen: set[frozenset[int]] = set()
        for root in cells:
            if budget.out():
                return False
            budget.tick(len(cells))
            order = _bfs(S, root, inset)
            acc = 0.0
            for m, c in enumerate(order[:-1]):
                acc += S.w[c]
                if lo <= acc <= hi and lo <= total - acc <= hi:
                    part = frozenset(order[: m + 1])
                    if part not in seen and _connected(S, inset - part):
                        seen.add(part)
                        cands.append(part)
            if len(cands) >= max_candidates:
                break
        if not cands:
            continue
        base = S.local_objective([r, s])
        old = {i: S.assign[i] for i in cells}
        best, best_f = None, base - _EPS
        for part in cands:
            for i in cells:
                S.move(i, r if i in part else s)
            S.recentre([r, s])
            f = S.local_objective([r, s])
            if f < best_f:
                best, best_f = part, f
        if best is not None:
            for i in cells:
                S.move(i, r if i in best else s)
            S.recentre([r, s])
            return True
        for i in cells:
            S.move(i, old[i])
        S.recentre([r, s])
    return False


def _bfs(S: Search, root: int, inset: set[int]) -> list[int]:
    """Cells of ``inset`` in breadth-first order from ``root`` (neighbours in index order)."""
    order, seen = [root], {root}
    k = 0
    while k < len(order):
        x = order[k]
        k += 1
        for y in sorted(S.nbrs[x]):
            if y in inset and y not in seen:
                seen.add(y)
                order.append(y)
    return order


def _connected(S: Search, cells: set[int]) -> bool:
    if not cells:
        return False
    start = min(cells)
    seen, todo = {start}, [start]
    while todo:
        x = todo.pop()
        for y in S.nbrs[x]:
            if y in cells and y not in seen:
                seen.add(y)
                todo.append(y)
    return len(seen) == len(cells)
