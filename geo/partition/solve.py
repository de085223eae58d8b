"""Solving one container: construction, local search and band repair within a step budget.

:func:`solve` is deterministic: the search is bounded by a count of steps (candidate moves
looked at), so the same problem, seed and budget give the same partition on any machine and
under any load; an optional ``time_limit_s`` may stop it earlier and says so.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from geo.partition._metrics import band_excess, count_range, relabel
from geo.partition.construction import component_plans, current_start, grow_start
from geo.partition.repair import repair_band
from geo.partition.search import Budget, Search
from geo.partition.state import Partition, PartitionProblem

__all__ = ["default_steps", "objective", "solve"]


def objective(partition: Partition) -> float:
    """The search objective of ``partition`` (lower is better; see :mod:`geo.partition.search`)."""
    s = Search(partition.problem, np.random.default_rng(0))
    s.load(partition.assignment)
    return s.objective()


def default_steps(n_cells: int) -> int:
    """The default search budget of one start, in steps (see :class:`geo.partition.search.Budget`)."""
    return 20_000 + 60 * int(n_cells)


def solve(
    problem: PartitionProblem,
    *,
    rng: np.random.Generator,
    n_starts: int = 3,
    use_current: bool = True,
    max_steps: int | None = None,
    time_limit_s: float | None = None,
) -> Partition:
    """Partition one container's cells.

    Parameters
    ----------
    problem
        Cells and parameters.
    rng
        Source of randomness (seeds, move order).
    n_starts
        Independent region-growing starts (plus one from the current regions when
        ``use_current`` and the cells carry current labels); the best objective wins.
    max_steps
        Search budget per start, in steps (candidate moves looked at); default
        :func:`default_steps`. The same problem, seed and budget give the same partition.
    time_limit_s
        Optional wall-clock cap for the whole search (``None``: none). When it is what
        stops the search, ``partition.search["stopped_by"]`` is ``"time"`` and the result
        may differ between runs.

    Returns
    -------
    Partition
        The best partition found; it may break constraints that cannot all hold
        (see :func:`violations`). ``partition.search`` records the steps used, what stopped
        the search, and the region counts tried.
    """
    g = problem.graph
    if g.n == 0:
        return Partition(problem, np.zeros(0, dtype=np.int64),
                         search={"steps": 0, "stopped_by": "converged", "k_tried": []})
    plans = component_plans(problem)
    k_total = sum(len(p["pinned"]) + p["k_rest"] for p in plans)
    problem = replace(problem, k_hint=max(k_total, 1))
    S = Search(problem, rng)
    if g.n > 2000:  # large containers: one start, the search itself dominates
        n_starts = 1
    starts = (["current"] if use_current else []) + ["grow"] * max(n_starts, 1)
    per_start = default_steps(g.n) if max_steps is None else int(max_steps)
    budget = Budget(per_start * (len(starts) + 3), time_limit_s)
    best = _run_starts(S, plans, starts, budget, per_start, rng)
    k_tried = [sum(len(p["pinned"]) + p["k_rest"] for p in plans)]
    if best[1] > 0 and problem.k is None and _worth_restart(S, best[0]):
        # components still out of band: their next-best region count (else fresh seeds)
        alt = _alternative_plans(S, plans, best[0])
        if alt is not None:
            k_tried.append(sum(len(p["pinned"]) + p["k_rest"] for p in alt))
        n_alt = 1 if g.n > 2000 else 3  # large containers: the first start dominates the time
        cand = _run_starts(S, alt or plans, ["grow"] * n_alt, budget, per_start, rng)
        if cand[1:] < best[1:]:
            best = cand
    stopped = "time" if budget.stopped_by_time else ("steps" if budget.stopped_by_steps else "converged")
    return Partition(problem, relabel(best[0]),
                     search={"steps": budget.steps, "max_steps_per_start": per_start,
                             "stopped_by": stopped, "k_tried": k_tried})


#: A fresh start with another region count is tried while more than this share of the regions
#: is out of the band: below it (a handful of regions in a large container) a restart costs a
#: whole search and reshuffles everything to move a few regions, which the repairs do locally.
RESTART_SHARE = 0.01


def _worth_restart(S: Search, lab: NDArray[np.int64]) -> bool:
    """Whether the regions out of the band (those without an oversized unit) exceed
    :data:`RESTART_SHARE` of the regions."""
    S.load(lab)
    bad = sum(1 for r in range(len(S.members)) if S.band(S.W[r]) > 0 and not S.pinned_region(r))
    return bad > RESTART_SHARE * len(S.members)


def _run_starts(
    S: Search, plans: list[dict[str, Any]], starts: list[str], budget: Budget,
    per_start: int, rng: np.random.Generator,
) -> tuple[NDArray[np.int64], float, float]:
    """Search from each start; the best ``(labels, band cost, objective)``."""
    best: tuple[NDArray[np.int64], float, float] | None = None
    for kind in starts:
        if best is not None and budget.out():
            break
        lab = current_start(S, plans) if kind == "current" else grow_start(S, plans, rng)
        if lab is None:
            continue
        local = budget.child(per_start)
        S.load(relabel(lab))
        S.descend(local)
        if S.hard_cost() > 0:
            repair_band(S, local)
            S.descend(local)
        budget.absorb(local)
        cand = (S.labels(), S.band_cost(), S.objective())
        if best is None or cand[1:] < best[1:]:
            best = cand
    if best is None:  # every start declined (cannot happen: growing always works)
        raise RuntimeError("no start produced a partition")
    return best


def _alternative_plans(
    S: Search, plans: list[dict[str, Any]], lab: NDArray[np.int64]
) -> list[dict[str, Any]] | None:
    """Plans where each component with a region out of band gets another region count."""
    p = S.p
    W = np.bincount(lab, weights=p.graph.weight)
    pinned_region = np.zeros(W.size, dtype=bool)
    pinned_region[lab[[i for i in range(p.graph.n) if S.pinned[i]]]] = True
    bad = (band_excess(W, p.lo, p.hi) > 0) & ~pinned_region
    changed = False
    out = []
    for plan in plans:
        plan = dict(plan)
        regions = np.unique(lab[plan["cells"]])
        if plan["k_rest"] and bad[regions].any():
            kmin, kmax = count_range(plan["rest_w"], p.lo, p.hi)
            mid = (p.lo + p.hi) / 2
            alts = sorted((k for k in range(kmin, kmax + 1) if k != plan["k_rest"]),
                          key=lambda k: abs(plan["rest_w"] / k - mid))
            if alts:
                plan["k_rest"] = alts[0]
                changed = True
        out.append(plan)
    return out if changed else None

