"""Constraints as callables over an immutable partition (GerryChain's ``constraints``).

``Constraint = Callable[[Partition], bool]``; :func:`validate` names each one that fails.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from geo.partition.state import Partition, PartitionProblem

__all__ = ["Constraint", "contiguous", "default_constraints", "nested", "validate", "within_band",
           "within_radius"]

Constraint = Callable[[Partition], bool]


def within_band(lo: float | None = None, hi: float | None = None) -> Constraint:
    """Every region's weight in ``[lo, hi]`` (default: the problem's band)."""

    def within_band(p: Partition) -> bool:
        a = p.problem.lo if lo is None else lo
        b = p.problem.hi if hi is None else hi
        return bool(np.all((p.weights >= a) & (p.weights <= b)))

    return within_band


def within_radius(radius_m: float | None = None) -> Constraint:
    """Every home within ``radius_m`` of its region's service point (default: the problem's)."""

    def within_radius(p: Partition) -> bool:
        r = p.problem.radius_m if radius_m is None else radius_m
        d = p.walk_m[~np.isnan(p.walk_m)]
        return bool(np.all(d <= r))

    return within_radius


def contiguous(p: Partition) -> bool:
    """Every region is one connected piece."""
    return bool(p.contiguous_regions.all())


def nested(p: Partition) -> bool:
    """No region spans two containers."""
    c = p.graph.container
    return all(np.unique(c[m]).size <= 1 for m in p.regions)


def default_constraints(problem: PartitionProblem) -> list[Constraint]:
    """Band, radius, contiguity and nesting with the problem's parameters."""
    return [within_band(), within_radius(), contiguous, nested]


def validate(partition: Partition, constraints: Sequence[Constraint]) -> list[str]:
    """Names of the constraints that ``partition`` breaks (empty when all hold)."""
    return [getattr(c, "__name__", repr(c)) for c in constraints if not c(partition)]

