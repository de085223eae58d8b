"""Region growing and local search for :mod:`geo.partition` (private).

The search keeps a mutable state in plain Python lists (fast in a loop over a few
hundred cells); :mod:`geo.partition` wraps the result in an immutable
:class:`~geo.partition.Partition`.

Objective (lower is better), summed over regions ``r`` and home cells ``i``::

    w_band * band(W_r) + w_walk * excess(d(c_r, i)) + lam * (1 - PP_r)
    + rho * d(c_r, i) / (R * homes per region)
    + mu * moved_weight / target + nu * cut_cost / perimeter_scale

``band`` is the distance of the region's weight from ``[lo, hi]`` in units of the
target ``(lo + hi) / 2``; ``excess`` is ``max(0, d - R) / R`` (capped); ``PP`` is
Polsby-Popper from areas and perimeters kept incrementally (a region's perimeter is
its cells' perimeters minus twice the boundary they share); ``cut_cost`` weights
each boundary between regions by where it runs (inside a block 1, along a street
``street_cost``, along a barrier ``barrier_cost``).
"""

from __future__ import annotations

import heapq
import math
import time
from collections import deque
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

if TYPE_CHECKING:
    from geo.partition import PartitionProblem

EXCESS_CAP = 2.0
_EPS = 1e-9


class Budget:
    """How much search is left: a count of steps (deterministic), and optionally seconds.

    A step is one candidate move looked at (a cell in a descent pass, a cell tried in a
    swap, a region grown again in a re-split, a path tried in an ejection chain). The step
    count alone decides where the search stops, so the same inputs and seed give the same
    result on any machine and under any load. ``time_limit_s`` is a safety cap: when it is
    what stopped the search, :attr:`stopped_by_time` says so (and the result may then
    differ between runs).
    """

    def __init__(self, max_steps: int, time_limit_s: float | None = None) -> None:
        self.max_steps = int(max_steps)
        self.steps = 0
        self.deadline = None if time_limit_s is None else time.perf_counter() + time_limit_s
        self.stopped_by_time = False
        self.stopped_by_steps = False

    def tick(self, n: int = 1) -> None:
        self.steps += n

    def out(self) -> bool:
        """True when the search must stop (and records why)."""
        if self.steps >= self.max_steps:
            self.stopped_by_steps = True
            return True
        if self.deadline is not None and time.perf_counter() > self.deadline:
            self.stopped_by_time = True
            return True
        return False

    def child(self, max_steps: int) -> Budget:
        """A budget of at most ``max_steps`` more steps sharing this one's clock."""
        b = Budget(min(max_steps, max(self.max_steps - self.steps, 0)))
        b.deadline = self.deadline
        return b

    def absorb(self, other: Budget) -> None:
        """Count a child's steps and stop reasons here."""
        self.steps += other.steps
        self.stopped_by_time |= other.stopped_by_time
        self.stopped_by_steps |= other.stopped_by_steps


def excess(d: float, radius: float) -> float:
    """Walking-distance excess over ``radius`` in units of ``radius`` (capped)."""
    if d <= radius:
        return 0.0
    if d == math.inf:
        return EXCESS_CAP
    return min((d - radius) / radius, EXCESS_CAP)


def polsby(area: float, perim: float) -> float:
    """Polsby-Popper compactness ``4 pi A / P^2`` (0 for an empty region)."""
    return 4.0 * math.pi * area / (perim * perim) if perim > 0 else 0.0


def best_centre(graph, members: list[int], radius_m: float) -> int:
    """The member hosting a region's service point: fewest homes beyond ``radius_m``
    (summed excess), then the smallest worst walk; ``-1`` if no member can host."""
    cands = [m for m in members if graph.can_host[m]]
    if not cands:
        return -1
    homes = [m for m in members if graph.homes[m]]
    if not homes:
        return cands[0]
    sub = graph.dist.block(cands, homes)
    R = radius_m
    inf = np.isinf(sub)
    exc = np.where(inf, EXCESS_CAP, np.minimum(np.maximum(sub - R, 0) / R, EXCESS_CAP))
    worst = np.where(inf, 1e12, sub).max(axis=1)
    score = exc.sum(axis=1) * 1e9 + worst
    return cands[int(np.argmin(score))]


class Search:
    """Mutable search state over one problem."""

    def __init__(self, problem: PartitionProblem, rng: np.random.Generator) -> None:
        g = problem.graph
        self.p = problem
        self.rng = rng
        self.n = g.n
        indptr, indices = g.indptr, g.indices
        self.nbrs: list[list[int]] = [indices[indptr[i]:indptr[i + 1]].tolist() for i in range(g.n)]
        self.nshared: list[list[float]] = [
            g.shared_m[indptr[i]:indptr[i + 1]].tolist() for i in range(g.n)
        ]
        self.ncut: list[list[float]] = [
            g.cut_cost_m[indptr[i]:indptr[i + 1]].tolist() for i in range(g.n)
        ]
        self.w: list[float] = g.weight.astype(float).tolist()
        self.area: list[float] = g.area_m2.tolist()
        self.perim: list[float] = g.perimeter_m.tolist()
        self.homes: list[bool] = g.homes.tolist()
        self.host: list[bool] = g.can_host.tolist()
        self.cur: list[int] = g.current.tolist()
        self.xy = g.xy
        self.lo, self.hi = float(problem.lo), float(problem.hi)
        self.target = (self.lo + self.hi) / 2.0 if self.hi > 0 else 1.0
        self.R = float(problem.radius_m)
        self.wb = problem.band_weight
        self.ww = problem.walk_weight
        self.lam = problem.compactness_weight
        self.mu = problem.disruption_weight / self.target
        mean_area = float(np.sum(g.area_m2)) / max(problem.k_hint, 1)
        self.nu = problem.street_weight / max(4.0 * math.sqrt(max(mean_area, 1.0)), 1.0)
        n_homes = max(int(np.count_nonzero(g.homes)), 1)
        self.rho = problem.walk_soft_weight * max(problem.k_hint, 1) / (n_homes * self.R)
        self.pinned: list[bool] = [
            self.homes[i] and self.w[i] > self.hi for i in range(self.n)
        ]
        self._centres: dict[tuple[int, ...], int] = {}
        # state
        self.assign: list[int] = []
        self.members: list[set[int]] = []
        self.W: list[float] = []
        self.A: list[float] = []
        self.P: list[float] = []
        self.centre: list[int] = []
        self.dc: list[NDArray[np.float64]] = []
        self.anc: list[int] = []

    # ------------------------------------------------------------------ state
    def load(self, assign: NDArray[np.int64] | list[int], *, anc: list[int] | None = None) -> None:
        """Load an assignment (labels ``0..k-1``) and derive every aggregate."""
        a = [int(x) for x in assign]
        k = max(a) + 1 if a else 0
        self.assign = a
        self.members = [set() for _ in range(k)]
        self.W = [0.0] * k
        self.A = [0.0] * k
        self.P = [0.0] * k
        for i, r in enumerate(a):
            self.members[r].add(i)
            self.W[r] += self.w[i]
            self.A[r] += self.area[i]
            self.P[r] += self.perim[i]
        for i in range(self.n):
            r = a[i]
            for j, s in zip(self.nbrs[i], self.nshared[i], strict=True):
                if a[j] == r:
                    self.P[r] -= s  # each shared edge seen from both sides
        self.centre = [-1] * k
        self.dc = [np.full(self.n, math.inf)] * k
        for r in range(k):
            self._set_centre(r)
        self.anc = anc if anc is not None else self._match_ancestors()

    def _match_ancestors(self) -> list[int]:
        k = len(self.members)
        cur = np.asarray(self.cur)
        if (cur < 0).all() or k == 0:
            return [-2] * k
        labels = np.unique(cur[cur >= 0])
        col = {int(c): j for j, c in enumerate(labels)}
        overlap = np.zeros((k, labels.size))
        for i, r in enumerate(self.assign):
            c = self.cur[i]
            if c >= 0:
                overlap[r, col[c]] += self.w[i] + 1e-6
        rows, cols = linear_sum_assignment(overlap, maximize=True)
        anc = [-2] * k
        for r, c in zip(rows, cols, strict=True):
            if overlap[r, c] > 0:
                anc[r] = int(labels[c])
        return anc

    def _set_centre(self, r: int) -> None:
        c = self.best_centre(self.members[r])
        self.centre[r] = c
        self.dc[r] = self.p.graph.dist.row(c) if c >= 0 else np.full(self.n, math.inf)

    def best_centre(self, members: set[int] | list[int]) -> int:
        """The member that hosts the service point (see :func:`best_centre`); remembered per
        membership, since moves tried and undone ask for the same sets again."""
        key = tuple(sorted(members))
        c = self._centres.get(key)
        if c is None:
            if len(self._centres) > 200_000:
                self._centres.clear()
            c = self._centres[key] = best_centre(self.p.graph, list(key), self.R)
        return c

    # -------------------------------------------------------------- objective
    def band(self, W: float) -> float:
        if W < self.lo:
            return (self.lo - W) / self.target
        if W > self.hi:
            return (W - self.hi) / self.target
        return 0.0

    def region_cost(self, r: int) -> float:
        return self.wb * self.band(self.W[r]) + self.lam * (1.0 - polsby(self.A[r], self.P[r]))

    def walk_cost(self, i: int, r: int) -> float:
        if not self.homes[i]:
            return 0.0
        d = float(self.dc[r][i])
        return self.ww * excess(d, self.R) + self.rho * min(d, 2.0 * self.R)

    def moved_cost(self, i: int, r: int) -> float:
        c = self.cur[i]
        if c < 0:
            return 0.0
        return self.mu * self.w[i] if c != self.anc[r] else 0.0

    def objective(self) -> float:
        """The full objective of the current state."""
        f = sum(self.region_cost(r) for r in range(len(self.members)))
        cut = 0.0
        for i in range(self.n):
            r = self.assign[i]
            f += self.walk_cost(i, r) + self.moved_cost(i, r)
            for j, c in zip(self.nbrs[i], self.ncut[i], strict=True):
                if j > i and self.assign[j] != r:
                    cut += c
        return f + self.nu * cut

    def local_objective(self, regions: list[int]) -> float:
        """The part of :meth:`objective` that moves inside ``regions`` can change: their
        region terms, their cells' walk and moved terms, and every boundary touching them."""
        group = set()
        f = 0.0
        for r in regions:
            f += self.region_cost(r)
            group |= self.members[r]
        cut = 0.0
        assign = self.assign
        for i in group:
            r = assign[i]
            f += self.walk_cost(i, r) + self.moved_cost(i, r)
            for j, c in zip(self.nbrs[i], self.ncut[i], strict=True):
                if assign[j] != r and (j not in group or j > i):
                    cut += c
        return f + self.nu * cut

    def band_cost(self) -> float:
        """Band excess of the regions without an oversized unit (those cannot do better)."""
        pinned_regions = {self.assign[i] for i in range(self.n) if self.pinned[i]}
        return sum(self.band(W) for r, W in enumerate(self.W) if r not in pinned_regions)

    def hard_cost(self) -> float:
        """Band and walking-distance terms only."""
        f = sum(self.wb * self.band(W) for W in self.W)
        for i in range(self.n):
            if self.homes[i]:
                f += self.ww * excess(float(self.dc[self.assign[i]][i]), self.R)
        return f

    def delta(self, i: int, a: int, b: int) -> float:
        """Objective change of moving cell ``i`` from region ``a`` to ``b``."""
        wi = self.w[i]
        Wa, Wb = self.W[a], self.W[b]
        d = self.wb * (self.band(Wa - wi) - self.band(Wa) + self.band(Wb + wi) - self.band(Wb))
        sa = sb = ca = cb = 0.0
        assign = self.assign
        for j, s, c in zip(self.nbrs[i], self.nshared[i], self.ncut[i], strict=True):
            rj = assign[j]
            if rj == a:
                sa += s
                ca += c
            elif rj == b:
                sb += s
                cb += c
        ar, pr = self.area[i], self.perim[i]
        pa_old = polsby(self.A[a], self.P[a])
        pb_old = polsby(self.A[b], self.P[b])
        pa_new = polsby(self.A[a] - ar, self.P[a] - pr + 2 * sa)
        pb_new = polsby(self.A[b] + ar, self.P[b] + pr - 2 * sb)
        d += self.lam * (pa_old - pa_new + pb_old - pb_new)
        d += self.nu * (ca - cb)
        if self.homes[i]:
            db, da = float(self.dc[b][i]), float(self.dc[a][i])
            R = self.R
            d += self.ww * (excess(db, R) - excess(da, R)) + self.rho * (min(db, 2 * R) - min(da, 2 * R))
        c = self.cur[i]
        if c >= 0:
            d += self.mu * wi * ((c != self.anc[b]) - (c != self.anc[a]))
        return d

    def move(self, i: int, b: int) -> None:
        """Move cell ``i`` to region ``b`` (no checks)."""
        a = self.assign[i]
        if a == b:
            return
        sa = sb = 0.0
        for j, s in zip(self.nbrs[i], self.nshared[i], strict=True):
            rj = self.assign[j]
            if rj == a:
                sa += s
            elif rj == b:
                sb += s
        self.assign[i] = b
        self.members[a].discard(i)
        self.members[b].add(i)
        wi = self.w[i]
        self.W[a] -= wi
        self.W[b] += wi
        self.A[a] -= self.area[i]
        self.A[b] += self.area[i]
        self.P[a] += -self.perim[i] + 2 * sa
        self.P[b] += self.perim[i] - 2 * sb

    def stays_connected(self, i: int) -> bool:
        """Whether region of ``i`` stays contiguous without ``i``."""
        a = self.assign[i]
        mem = self.members[a]
        inside = [j for j in self.nbrs[i] if self.assign[j] == a]
        if len(inside) <= 1:
            return len(mem) > 1
        start = inside[0]
        seen = {start, i}
        todo = [start]
        need = len(mem) - 1
        found = 1
        targets = set(inside)
        targets.discard(start)
        assign, nbrs = self.assign, self.nbrs
        while todo:
            x = todo.pop()
            for y in nbrs[x]:
                if y not in seen and assign[y] == a:
                    seen.add(y)
                    found += 1
                    targets.discard(y)
                    if not targets:
                        return True
                    todo.append(y)
        return found == need

    # ----------------------------------------------------------- construction
    def grow(self, seeds: list[int], cells: list[int]) -> dict[int, int]:
        """Grow one region per seed over ``cells`` (a connected set), smallest first.

        Returns ``{cell: seed position}``.
        """
        inset = set(cells)
        lab: dict[int, int] = {}
        W = []
        front: list[list[tuple[float, int]]] = []
        rows = []
        for r, s in enumerate(seeds):
            lab[s] = r
            W.append(self.w[s])
            rows.append(self.p.graph.dist.row(s))
            front.append([])
        heap = []
        for r, s in enumerate(seeds):
            self._push_front(front[r], rows[r], s, s, lab, inset)
            if not self.pinned[s]:
                heap.append((W[r], r))
        heapq.heapify(heap)
        while heap:
            _, r = heapq.heappop(heap)
            fr = front[r]
            got = -1
            while fr:
                _, j = heapq.heappop(fr)
                if j not in lab:
                    got = j
                    break
            if got < 0:
                continue
            lab[got] = r
            W[r] += self.w[got]
            self._push_front(fr, rows[r], seeds[r], got, lab, inset)
            heapq.heappush(heap, (W[r], r))
        # whatever only pinned regions touch: breadth-first from every labelled cell
        rest = [c for c in cells if c not in lab]
        if rest:
            dq = deque(c for c in cells if c in lab)
            while dq:
                x = dq.popleft()
                for y in self.nbrs[x]:
                    if y in inset and y not in lab:
                        lab[y] = lab[x]
                        dq.append(y)
        return lab

    def _push_front(self, fr, row, seed: int, x: int, lab, inset) -> None:
        sx, sy = self.xy[seed]
        for y in self.nbrs[x]:
            if y in inset and y not in lab:
                d = float(row[y])
                if d == math.inf:
                    dx, dy = self.xy[y] - (sx, sy)
                    d = 1e7 + math.hypot(dx, dy)
                heapq.heappush(fr, (d, y))

    def pick_seeds(self, cells: list[int], k: int) -> list[int]:
        """k-means++ seeds on walking distance, weighted by the balance quantity."""
        cand = [c for c in cells if self.host[c] and not self.pinned[c]]
        if not cand:
            cand = [c for c in cells if not self.pinned[c]] or list(cells)
        if k >= len(cand):
            return cand[:k]
        ca = np.asarray(cand, dtype=np.int64)
        cxy = self.xy[ca]
        wts = np.array([self.w[c] + 1e-3 for c in cand])
        pos = int(self.rng.choice(len(cand), p=wts / wts.sum()))
        chosen = np.zeros(len(cand), dtype=bool)
        chosen[pos] = True
        seeds = [cand[pos]]
        dmin = self._dist_to(ca, cxy, seeds[0])
        while len(seeds) < k:
            p = wts * dmin**2
            p[chosen] = 0.0
            if p.sum() <= 0:
                rest = np.flatnonzero(~chosen)
                pos = int(rest[int(self.rng.integers(rest.size))])
            else:
                pos = int(self.rng.choice(len(cand), p=p / p.sum()))
            chosen[pos] = True
            seeds.append(cand[pos])
            dmin = np.minimum(dmin, self._dist_to(ca, cxy, seeds[-1]))
        return seeds

    def _dist_to(self, ca: NDArray[np.int64], cxy: NDArray, s: int) -> NDArray[np.float64]:
        d = np.asarray(self.p.graph.dist.row(s), dtype=float)[ca]
        inf = np.isinf(d)
        if inf.any():
            euclid = np.hypot(cxy[inf, 0] - self.xy[s, 0], cxy[inf, 1] - self.xy[s, 1])
            d[inf] = 3.0 * self.R + euclid
        return d

    # ---------------------------------------------------------- local search
    def descend(self, budget: Budget, max_passes: int = 60) -> None:
        """Best-improvement moves of boundary cells until no move helps.

        After the first pass only cells in, or next to, regions that changed are revisited.
        """
        touched: set[int] | None = None
        for _ in range(max_passes):
            if budget.out():
                return
            if touched is None:
                cand = list(range(self.n))
            else:
                cs: set[int] = set()
                for r in touched:
                    for i in self.members[r]:
                        cs.add(i)
                        cs.update(self.nbrs[i])
                cand = sorted(cs)
            self.rng.shuffle(cand)
            budget.tick(len(cand))
            moved_regions: set[int] = set()
            centres = set(self.centre)
            assign, nbrs, pinned = self.assign, self.nbrs, self.pinned
            for i in cand:
                if pinned[i] or i in centres:
                    continue
                a = assign[i]
                best, bd = -1, -_EPS
                seen = -1
                for j in nbrs[i]:
                    b = assign[j]
                    if b == a or b == seen:
                        continue
                    seen = b
                    d = self.delta(i, a, b)
                    if d < bd:
                        best, bd = b, d
                if best >= 0 and self.stays_connected(i):
                    self.move(i, best)
                    moved_regions.add(a)
                    moved_regions.add(best)
            changed = self.recentre(sorted(moved_regions)) if moved_regions else False
            if not moved_regions and not changed:
                return
            touched = moved_regions

    def recentre(self, regions: list[int] | None = None) -> bool:
        """Re-choose service points; True when any changed."""
        changed = False
        for r in range(len(self.members)) if regions is None else regions:
            old = self.centre[r]
            c = self.best_centre(self.members[r])
            if c != old:
                self.centre[r] = c
                self.dc[r] = self.p.graph.dist.row(c) if c >= 0 else np.full(self.n, math.inf)
                changed = True
        return changed

    def region_neighbours(self, r: int) -> set[int]:
        out = set()
        for i in self.members[r]:
            for j in self.nbrs[i]:
                s = self.assign[j]
                if s != r:
                    out.add(s)
        return out

    def repair_band(self, budget: Budget, max_hops: int = 6) -> None:
        """Ejection chains: pass weight from out-of-band regions along paths of regions."""
        for _ in range(4 * max(len(self.members), 1)):
            if budget.out():
                return
            bad = [r for r in range(len(self.members))
                   if self.band(self.W[r]) > 0 and not self._pinned_region(r)]
            if not bad:
                return
            self.rng.shuffle(bad)
            progress = False
            for r in bad:
                if self.band(self.W[r]) > 0 and (
                        self._chain(r, max_hops, budget) or self._swap(r, budget)
                        or self._resplit(r, budget)):
                    progress = True
            if not progress:
                return

    def _swap(self, r: int, budget: Budget) -> bool:
        """Exchange a boundary cell of ``r`` with one of a neighbouring region."""
        centre_set = set(self.centre)
        best = None
        for s in self.region_neighbours(r):
            if self._pinned_region(s):
                continue
            out_cells = [i for i in self.members[r]
                         if i not in centre_set and not self.pinned[i]
                         and any(self.assign[j] == s for j in self.nbrs[i])]
            for i in out_cells:
                if budget.out():
                    return False
                budget.tick()
                if not self.stays_connected(i):
                    continue
                d1 = self.delta(i, r, s)
                self.move(i, s)
                for j in list(self.members[s]):
                    if j == i or j in centre_set or self.pinned[j]:
                        continue
                    if not any(self.assign[x] == r for x in self.nbrs[j]):
                        continue
                    d = d1 + self.delta(j, s, r)
                    if d < -_EPS and (best is None or d < best[0]) and self.stays_connected(j):
                        best = (d, i, j, s)
                self.move(i, r)
        if best is None:
            return False
        _, i, j, s = best
        self.move(i, s)
        self.move(j, r)
        self.recentre([r, s])
        return True

    def _resplit(self, r: int, budget: Budget, tries: int = 6) -> bool:
        """Merge ``r`` with a neighbour and grow the pair again from new seeds, keeping the
        first split that puts both in the band and lowers the objective."""
        lo2, hi2 = 2 * self.lo, 2 * self.hi
        for s in sorted(self.region_neighbours(r)):
            if self._pinned_region(s) or not lo2 <= self.W[r] + self.W[s] <= hi2:
                continue
            base = self.local_objective([r, s])
            cells = sorted(self.members[r] | self.members[s])
            old = [self.assign[i] for i in cells]
            for _ in range(tries):
                if budget.out():
                    return False
                budget.tick(len(cells))
                seeds = self.pick_seeds(cells, 2)
                if len(seeds) < 2:
                    break
                lab = self.grow(seeds, cells)
                if len(lab) < len(cells):  # the pair is not connected (a region in pieces)
                    break
                for i in cells:
                    self.move(i, r if lab[i] == 0 else s)
                self.recentre([r, s])
                if (self.band(self.W[r]) == 0 and self.band(self.W[s]) == 0
                        and self.members[r] and self.members[s]
                        and self.local_objective([r, s]) < base - _EPS):
                    return True
                for i, a in zip(cells, old, strict=True):
                    self.move(i, a)
                self.recentre([r, s])
        return False

    def _pinned_region(self, r: int) -> bool:
        return any(self.pinned[i] for i in self.members[r])

    def _chain(self, r0: int, max_hops: int, budget: Budget) -> bool:
        over = self.W[r0] > self.hi
        # breadth-first paths in the region graph
        parent = {r0: -1}
        depth = {r0: 0}
        dq = deque([r0])
        targets = []
        while dq:
            r = dq.popleft()
            if depth[r] >= max_hops:
                continue
            for s in self.region_neighbours(r):
                if s in parent or self._pinned_region(s):
                    continue
                parent[s] = r
                depth[s] = depth[r] + 1
                dq.append(s)
                slack = (self.hi - self.W[s]) if over else (self.W[s] - self.lo)
                if slack > 0:
                    targets.append(s)
        for s in targets[:8]:
            if budget.out():
                return False
            budget.tick(depth[s])
            path = [s]
            while path[-1] != r0:
                path.append(parent[path[-1]])
            path.reverse()  # r0 ... s
            if self._try_path(path, over):
                return True
        return False

    def _try_path(self, path: list[int], over: bool) -> bool:
        total = 0.0
        done: list[tuple[int, int]] = []
        for t in range(len(path) - 1):
            q, nxt = path[t], path[t + 1]
            need = (self.W[q] - self.hi) if over else (self.lo - self.W[q])
            if need <= 0:
                break
            giver, taker = (q, nxt) if over else (nxt, q)
            i = self._pick_transfer(giver, taker, need)
            if i < 0:
                break
            done.append((i, giver))
            total += self.delta(i, giver, taker)
            self.move(i, taker)
        if not done:
            return False
        if total < -_EPS:
            touched = {r for i, g in done for r in (g, self.assign[i])}
            self.recentre(sorted(touched))
            return True
        for i, g in reversed(done):
            self.move(i, g)
        return False

    def _pick_transfer(self, giver: int, taker: int, need: float) -> int:
        """The boundary cell of ``giver`` next to ``taker`` that best covers ``need``."""
        best, best_key = -1, None
        centre = self.centre[giver]
        room = self.W[giver] - self.lo if self.W[giver] > self.lo else 0.0
        cands = []
        for i in self.members[giver]:
            if i == centre or self.pinned[i]:
                continue
            if any(self.assign[j] == taker for j in self.nbrs[i]):
                cands.append(i)
        for i in cands:
            wi = self.w[i]
            if wi <= 0:
                continue
            short = max(0.0, need - wi)
            spill = max(0.0, wi - max(room, need))
            key = (short + spill, self.delta(i, giver, taker))
            if best_key is None or key < best_key:
                if self.stays_connected(i):
                    best, best_key = i, key
        return best

    def labels(self) -> NDArray[np.int64]:
        return np.asarray(self.assign, dtype=np.int64)
