"""Partition state: the problem on one graph and an immutable :class:`Partition` of it.

A :class:`PartitionProblem` says what to solve (band, radius, weights of the objective); a
:class:`Partition` assigns every cell to a region ``0..k-1`` and derives, on first use, each
region's weight, area, perimeter, Polsby-Popper, service point, walks and contiguity
(GerryChain's ``Partition`` with its updaters as cached properties). :meth:`Partition.flip`
returns a new state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from scipy.sparse import csgraph

from geo._errors import GeoError
from geo.partition._metrics import best_centre, match_overlap, polsby_popper, weighted_quantile
from geo.partition.graph import UnitGraph
from geo.planner_defaults import DEFAULTS

__all__ = ["Partition", "PartitionInputError", "PartitionProblem"]


class PartitionInputError(GeoError):
    """The layers or options given to the partitioner cannot be used; the message lists every problem."""


@dataclass(frozen=True, eq=False)
class PartitionProblem:
    """What to solve on one :class:`UnitGraph`.

    Parameters
    ----------
    graph
        The cells.
    lo, hi
        Inclusive band for each region's weight (households by default). All defaults come
        from :data:`geo.planner_defaults.DEFAULTS`.
    radius_m
        Every home within this walking distance of its region's service point.
    compactness_weight, disruption_weight, street_weight, walk_soft_weight
        ``lam``, ``mu``, ``nu``, ``rho`` of the objective: Polsby-Popper, households moved
        (per mid-band grid), boundary length off streets (per typical region perimeter),
        mean walk to the service point (per radius).
    band_weight, walk_weight
        Weights of the hard terms (keep them far above the soft ones).
    k
        Number of regions; ``None`` chooses it from the band (and the current count).
    k_hint
        Expected number of regions (scales the street term); set by :func:`solve`.
    """

    graph: UnitGraph
    lo: float = DEFAULTS.grid_band[0]
    hi: float = DEFAULTS.grid_band[1]
    radius_m: float = DEFAULTS.radius_m
    compactness_weight: float = DEFAULTS.compactness_weight
    disruption_weight: float = DEFAULTS.disruption_weight
    street_weight: float = DEFAULTS.street_weight
    walk_soft_weight: float = DEFAULTS.walk_soft_weight
    band_weight: float = DEFAULTS.band_weight
    walk_weight: float = DEFAULTS.walk_weight
    k: int | None = None
    k_hint: int = 1

    def __post_init__(self) -> None:
        problems = []
        if not 0 <= self.lo <= self.hi:
            problems.append(f"band must satisfy 0 <= lo <= hi, got lo={self.lo}, hi={self.hi}")
        if not self.radius_m > 0:
            problems.append(f"radius_m must be positive, got {self.radius_m}")
        if self.k is not None and self.k < 1:
            problems.append(f"k must be at least 1, got {self.k}")
        if problems:
            raise PartitionInputError("; ".join(problems))


@dataclass(frozen=True, eq=False)
class Partition:
    """An immutable assignment of cells to regions ``0..k-1``.

    Derived quantities are computed on first use and cached.
    """

    problem: PartitionProblem
    assignment: NDArray[np.int64]
    search: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        a = np.asarray(self.assignment, dtype=np.int64).copy()
        a.setflags(write=False)
        object.__setattr__(self, "assignment", a)

    @property
    def graph(self) -> UnitGraph:
        return self.problem.graph

    @cached_property
    def k(self) -> int:
        """Number of regions."""
        return int(self.assignment.max()) + 1 if self.assignment.size else 0

    def flip(self, changes: Mapping[int, int]) -> Partition:
        """A new partition with ``{cell: region}`` changed."""
        a = self.assignment.copy()
        for c, r in changes.items():
            a[int(c)] = int(r)
        return Partition(self.problem, a)

    @cached_property
    def regions(self) -> list[NDArray[np.int64]]:
        """Cell indices of each region."""
        order = np.argsort(self.assignment, kind="stable")
        bounds = np.searchsorted(self.assignment[order], np.arange(self.k + 1))
        return [order[bounds[r]:bounds[r + 1]] for r in range(self.k)]

    def _sum(self, values: NDArray) -> NDArray[np.float64]:
        return np.bincount(self.assignment, weights=values, minlength=self.k)

    @cached_property
    def weights(self) -> NDArray[np.float64]:
        """Balanced quantity per region."""
        return self._sum(self.graph.weight)

    @cached_property
    def households(self) -> NDArray[np.float64]:
        return self._sum(self.graph.households)

    @cached_property
    def population(self) -> NDArray[np.float64]:
        return self._sum(self.graph.population)

    @cached_property
    def area_m2(self) -> NDArray[np.float64]:
        return self._sum(self.graph.area_m2)

    @cached_property
    def perimeter_m(self) -> NDArray[np.float64]:
        """Region perimeters: cell perimeters minus twice the boundary shared inside."""
        g = self.graph
        rows = np.repeat(np.arange(g.n), np.diff(g.indptr))
        inside = self.assignment[rows] == self.assignment[g.indices]
        internal = np.bincount(self.assignment[rows[inside]], weights=g.shared_m[inside],
                               minlength=self.k)
        return np.maximum(self._sum(g.perimeter_m) - internal, 0.0)

    @cached_property
    def polsby_popper(self) -> NDArray[np.float64]:
        """``4 pi A / P^2`` per region."""
        return polsby_popper(self.area_m2, self.perimeter_m)

    @cached_property
    def centres(self) -> NDArray[np.int64]:
        """Cell hosting each region's service point (``-1`` if none can)."""
        return np.array([best_centre(self.graph, m.tolist(), self.problem.radius_m)
                         for m in self.regions], dtype=np.int64)

    @cached_property
    def walk_m(self) -> NDArray[np.float64]:
        """Walking distance from each home cell to its region's service point (NaN elsewhere)."""
        out = np.full(self.graph.n, np.nan)
        for r, m in enumerate(self.regions):
            c = self.centres[r]
            homes = m[self.graph.homes[m]]
            if homes.size:
                out[homes] = self.graph.dist.row(c)[homes] if c >= 0 else np.inf
        return out

    def _walk_stat(self, q: float) -> NDArray[np.float64]:
        out = np.zeros(self.k)
        for r, m in enumerate(self.regions):
            d = self.walk_m[m]
            ok = ~np.isnan(d)
            if ok.any():
                out[r] = weighted_quantile(d[ok], self.graph.households[m][ok] + 1e-9, q)
        return out

    @cached_property
    def max_walk_m(self) -> NDArray[np.float64]:
        """Longest home-to-service-point walk per region (``inf`` when unreachable)."""
        return self._walk_stat(1.0)

    @cached_property
    def p95_walk_m(self) -> NDArray[np.float64]:
        """Household-weighted 95th-percentile walk per region."""
        return self._walk_stat(0.95)

    @cached_property
    def contiguous_regions(self) -> NDArray[np.bool_]:
        """Whether each region's cells form one connected piece."""
        g = self.graph
        rows = np.repeat(np.arange(g.n), np.diff(g.indptr))
        keep = self.assignment[rows] == self.assignment[g.indices]
        sub = sparse.csr_matrix((np.ones(int(keep.sum())), (rows[keep], g.indices[keep])),
                                shape=(g.n, g.n))
        _, lab = csgraph.connected_components(sub, directed=False)
        pieces = np.array([np.unique(lab[m]).size for m in self.regions])
        return pieces <= 1

    @cached_property
    def moved_weight(self) -> float:
        """Weight (households) whose region does not continue their current one.

        New regions are matched one-to-one to current ones by largest overlap
        (:func:`~geo.partition._metrics.match_overlap`).
        """
        g = self.graph
        known = g.current >= 0
        if not known.any():
            return 0.0
        r, c, _, overlap = match_overlap(self.assignment, g.current, g.households, self.k)
        return float(g.households[known].sum() - overlap[r, c].sum())

    @cached_property
    def previous(self) -> NDArray[np.int64]:
        """The current region each new region continues (``-1`` if none)."""
        g = self.graph
        out = np.full(self.k, -1, dtype=np.int64)
        if not (g.current >= 0).any():
            return out
        r, c, labels, _ = match_overlap(self.assignment, g.current, g.households, self.k, eps=1e-9)
        out[r] = labels[c]
        return out
