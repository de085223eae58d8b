"""The mutable search state over one problem: objective, moves, region growing, local descent.

The search keeps its state in plain Python lists (fast in a loop over a few hundred cells);
:func:`geo.partition.solve.solve` wraps the result in an immutable
:class:`~geo.partition.state.Partition`. The repairs of regions still out of the band
(ejection chains, swaps, re-splits) are in :mod:`geo.partition.repair`.

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

import numpy as np
from numpy.typing import NDArray

from geo.partition._metrics import band_excess, best_centre, match_overlap, polsby_popper
from geo.partition._metrics import walk_excess as excess
from geo.partition.state import PartitionProblem

__all__ = ["Budget", "Search"]

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
        rows, cols, labels, overlap = match_overlap(
            np.asarray(self.assign, dtype=np.int64), cur, np.asarray(self.w), k, eps=1e-6)
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
        """Band excess of a region weight, in units of the target."""
        return band_excess(W, self.lo, self.hi) / self.target

    def region_cost(self, r: int) -> float:
        return self.wb * self.band(self.W[r]) + self.lam * (1.0 - polsby_popper(self.A[r], self.P[r]))

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
        pa_old = polsby_popper(self.A[a], self.P[a])
        pb_old = polsby_popper(self.A[b], self.P[b])
        pa_new = polsby_popper(self.A[a] - ar, self.P[a] - pr + 2 * sa)
        pb_new = polsby_popper(self.A[b] + ar, self.P[b] + pr - 2 * sb)
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
    def pinned_region(self, r: int) -> bool:
        return any(self.pinned[i] for i in self.members[r])

    def labels(self) -> NDArray[np.int64]:
        return np.asarray(self.assign, dtype=np.int64)
