"""Re-partitioning: redraw grids (or communities) with fair loads, short walks and compact shapes.

Two layers, as in spopt's location models:

* the **core** works on one container (a community, or a sub-district when communities
  are redrawn): a :class:`UnitGraph` of cells (units plus filler cells that make the
  tiling exact) and a :class:`PartitionProblem` (band, walking radius, weights) solved
  by :func:`solve` into an immutable :class:`Partition`. Constraints are callables over
  a partition (``Constraint = Callable[[Partition], bool]``, as in GerryChain);
  :func:`validate` names each one that fails; :meth:`Partition.flip` returns a new state.
* the **GeoDataFrame wrapper** :func:`repartition` validates the layers, projects to
  metres, builds each container's cells from the units and the streets
  (:mod:`geo._partition_cells`), its walking distances over the road network
  (:mod:`geo.network`), solves, and returns new polygons that tile each container
  exactly, with per-region metrics and structured violations. Each container's state is
  kept as a :class:`ContainerPlan`, so a page can edit a proposal and describe it again.

The search (:mod:`geo._partition_search`) picks the number of regions from the band
(keeping the current count when it fits), grows regions from k-means++ seeds (and, in
another start, from the current grids), then moves boundary cells; regions still out of
the band get ejection chains along paths of regions, swaps, and re-splits of a pair of
neighbours, minimising::

    100 * (band excess + walking excess) + lam * (1 - Polsby-Popper)
    + rho * mean walk + mu * households moved + nu * boundary not on streets

When the constraints cannot all hold (a single tower above the band, a home no
service point reaches within the radius) the best partition is still returned and
every violation is named with its reason; nothing raises.

Examples
--------
A 4 x 2 lattice of 100-household units, band 300-500, splits into two 2 x 2 squares:

>>> import numpy as np
>>> g = UnitGraph.lattice(4, 2, weight=np.full(8, 100.0), cell_m=100.0)
>>> p = solve(PartitionProblem(g, lo=300, hi=500, radius_m=1000), rng=np.random.default_rng(0))
>>> sorted(np.bincount(p.assignment).tolist()), validate(p, default_constraints(p.problem))
([4, 4], [])
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import ArrayLike, NDArray
from scipy import sparse
from scipy.sparse import csgraph

from geo import _partition_cells as _cells
from geo import _partition_search as _search
from geo._partition_cells import Tessellation, tessellate
from geo.crs import local_metric_crs
from geo.network import WalkNetwork, build_walk_network, network_distances, snap_points

__all__ = [
    "BARRIER_KINDS",
    "Constraint",
    "ContainerPlan",
    "DistanceTable",
    "PATH_KINDS",
    "Partition",
    "PartitionInputError",
    "PartitionProblem",
    "RepartitionResult",
    "STREET_KINDS",
    "UnitGraph",
    "bounds_blocks",
    "choose_k",
    "comparison_table",
    "contiguous",
    "default_steps",
    "default_constraints",
    "nested",
    "repartition",
    "solve",
    "validate",
    "violations",
    "within_band",
    "within_radius",
]

#: Road kinds whose lines cut blocks (boundaries along them are cheap).
STREET_KINDS: tuple[str, ...] = ("arterial", "secondary", "local", "river", "railway")
#: Lines that also cut cells (compound paths), at a higher cost than streets.
PATH_KINDS: tuple[str, ...] = ("path",)
#: Road kinds that are barriers (boundaries along them cost nothing).
BARRIER_KINDS: tuple[str, ...] = ("arterial", "river", "railway")
_DENSE_MAX = 4000


def bounds_blocks(roads: pd.DataFrame) -> NDArray[np.bool_]:
    """Whether each road bounds a block (a street a person would take as a boundary).

    A ``block_edge`` column (as :func:`layers.io.read` gives for OSM extracts) decides where
    present; otherwise OSM tag columns do: tunnels and building passages, covered ways,
    indoor ways (``indoor`` other than ``no``, and corridors), private ways and driveways do
    not bound blocks. Roads without any of these columns all bound blocks.

    >>> import pandas as pd
    >>> bounds_blocks(pd.DataFrame({"tunnel": [None, "building_passage"], "indoor": ["no", None]}))
    array([ True, False])
    """
    n = len(roads)
    if "block_edge" in roads.columns:
        b = roads["block_edge"]
        return ~b.astype("boolean").fillna(True).eq(False).to_numpy(dtype=bool)
    out = np.ones(n, dtype=bool)
    for key, values in _cells.NOT_A_BOUNDARY.items():
        if key in roads.columns:
            out &= ~roads[key].astype("string").isin(values).fillna(False).to_numpy(dtype=bool)
    if "indoor" in roads.columns:
        v = roads["indoor"].astype("string")
        out &= ~(v.notna() & (v != "no")).to_numpy(dtype=bool)
    if "osm_tag" in roads.columns:
        out &= ~roads["osm_tag"].astype("string").isin(["highway=corridor"]).fillna(False).to_numpy(bool)
    return out


class PartitionInputError(ValueError):
    """The layers given to :func:`repartition` cannot be used; the message lists every problem."""


# ---------------------------------------------------------------------------------------------
# distances
# ---------------------------------------------------------------------------------------------
class DistanceTable:
    """Walking distances between cells (metres; ``inf`` beyond the search limit).

    Dense ``float32`` up to a few thousand cells; beyond, a sparse CSR of the finite
    entries stored as ``distance + 1`` (so that a stored zero never means "absent").
    """

    def __init__(self, n: int, *, dense: NDArray | None = None, csr: sparse.csr_matrix | None = None):
        self.n = n
        self._dense = dense
        self._csr = csr

    @classmethod
    def from_dense(cls, d: ArrayLike) -> DistanceTable:
        arr = np.asarray(d, dtype=np.float32)
        return cls(arr.shape[0], dense=arr)

    @classmethod
    def from_sparse(cls, n: int, rows: NDArray, cols: NDArray, values: NDArray) -> DistanceTable:
        """From the finite entries only (everything else is ``inf``)."""
        csr = sparse.csr_matrix((np.asarray(values, dtype=np.float32) + 1.0, (rows, cols)), shape=(n, n))
        csr.sort_indices()
        return cls(n, csr=csr)

    @classmethod
    def euclidean(cls, xy: NDArray[np.float64], *, factor: float = 1.0) -> DistanceTable:
        """Straight-line distances times ``factor`` (a stand-in when there is no network)."""
        d = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1]) * factor
        return cls.from_dense(d)

    def row(self, i: int) -> NDArray:
        """Distances from cell ``i`` to every cell."""
        if self._dense is not None:
            return self._dense[i]
        out = np.full(self.n, np.inf, dtype=np.float32)
        lo, hi = self._csr.indptr[i], self._csr.indptr[i + 1]
        out[self._csr.indices[lo:hi]] = self._csr.data[lo:hi] - 1.0
        return out

    def block(self, rows: Sequence[int], cols: Sequence[int]) -> NDArray:
        """Distances from ``rows`` to ``cols``."""
        if self._dense is not None:
            return self._dense[np.ix_(rows, cols)]
        # straight from the CSR arrays (scipy's fancy indexing costs far more for the few
        # dozen rows a region has)
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        out = np.full((rows.size, cols.size), np.inf, dtype=np.float32)
        indptr, indices, data = self._csr.indptr, self._csr.indices, self._csr.data
        start, stop = indptr[rows], indptr[rows + 1]
        length = stop - start
        if length.sum() == 0:
            return out
        which = np.repeat(np.arange(rows.size), length)
        at = np.arange(int(length.sum())) - np.repeat(np.cumsum(length) - length, length) + np.repeat(start, length)
        colpos = np.full(self.n, -1, dtype=np.int64)
        colpos[cols] = np.arange(cols.size)
        pos = colpos[indices[at]]
        keep = pos >= 0
        out[which[keep], pos[keep]] = data[at[keep]] - 1.0
        return out


# ---------------------------------------------------------------------------------------------
# graph, problem, partition
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class UnitGraph:
    """Cells of one container and how they touch; every array is aligned to the cells.

    Parameters
    ----------
    weight
        The balanced quantity (households or population) per cell.
    households, population
        Per cell (fillers have 0).
    homes
        Cells whose walking distance counts (they hold homes).
    can_host
        Cells that may host a region's service point (real units).
    area_m2, perimeter_m
        Cell areas and perimeters.
    xy
        ``(n, 2)`` a point per cell (metres).
    indptr, indices, shared_m, cut_cost_m
        Symmetric CSR adjacency: neighbours, shared boundary length, and its cost when
        it becomes a region boundary (lower along streets and barriers).
    dist
        Walking distances between cells.
    current
        Current region label per cell (``-1`` unknown).
    container
        Container label per cell (nesting).
    """

    weight: NDArray[np.float64]
    households: NDArray[np.float64]
    population: NDArray[np.float64]
    homes: NDArray[np.bool_]
    can_host: NDArray[np.bool_]
    area_m2: NDArray[np.float64]
    perimeter_m: NDArray[np.float64]
    xy: NDArray[np.float64]
    indptr: NDArray[np.int64]
    indices: NDArray[np.int64]
    shared_m: NDArray[np.float64]
    cut_cost_m: NDArray[np.float64]
    dist: DistanceTable
    current: NDArray[np.int64]
    container: NDArray[np.int64]

    @property
    def n(self) -> int:
        """Number of cells."""
        return int(self.weight.shape[0])

    @classmethod
    def from_edges(
        cls,
        *,
        weight: ArrayLike,
        edges_i: ArrayLike,
        edges_j: ArrayLike,
        shared_m: ArrayLike,
        cut_cost_m: ArrayLike | None = None,
        area_m2: ArrayLike,
        perimeter_m: ArrayLike,
        xy: ArrayLike,
        dist: DistanceTable,
        households: ArrayLike | None = None,
        population: ArrayLike | None = None,
        homes: ArrayLike | None = None,
        can_host: ArrayLike | None = None,
        current: ArrayLike | None = None,
        container: ArrayLike | None = None,
    ) -> UnitGraph:
        """Build a graph from undirected edge lists (each pair once)."""
        w = np.asarray(weight, dtype=float)
        n = w.size
        ei = np.asarray(edges_i, dtype=np.int64)
        ej = np.asarray(edges_j, dtype=np.int64)
        sh = np.asarray(shared_m, dtype=float)
        cc = sh if cut_cost_m is None else np.asarray(cut_cost_m, dtype=float)
        rows = np.concatenate([ei, ej])
        cols = np.concatenate([ej, ei])
        order = np.lexsort((cols, rows))
        rows, cols = rows[order], cols[order]
        shv = np.concatenate([sh, sh])[order]
        ccv = np.concatenate([cc, cc])[order]
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
        hh = w if households is None else np.asarray(households, dtype=float)
        return cls(
            weight=w,
            households=hh,
            population=np.zeros(n) if population is None else np.asarray(population, dtype=float),
            homes=(hh > 0) if homes is None else np.asarray(homes, dtype=bool),
            can_host=np.ones(n, dtype=bool) if can_host is None else np.asarray(can_host, bool),
            area_m2=np.asarray(area_m2, dtype=float),
            perimeter_m=np.asarray(perimeter_m, dtype=float),
            xy=np.asarray(xy, dtype=float).reshape(n, 2),
            indptr=indptr,
            indices=cols,
            shared_m=shv,
            cut_cost_m=ccv,
            dist=dist,
            current=np.full(n, -1, np.int64) if current is None else np.asarray(current, np.int64),
            container=np.zeros(n, np.int64) if container is None else np.asarray(container, np.int64),
        )

    @classmethod
    def lattice(
        cls,
        nx: int,
        ny: int,
        *,
        weight: ArrayLike,
        cell_m: float = 100.0,
        current: ArrayLike | None = None,
    ) -> UnitGraph:
        """An ``nx`` x ``ny`` lattice of square cells (row-major, x fastest), rook adjacency,
        walking distance = Manhattan distance between cell centres (a street grid).

        Examples
        --------
        >>> g = UnitGraph.lattice(3, 3, weight=np.ones(9))
        >>> g.n, int(g.indptr[-1]) // 2
        (9, 12)
        """
        n = nx * ny
        ix, iy = np.meshgrid(np.arange(nx), np.arange(ny))
        ix, iy = ix.ravel(), iy.ravel()
        idx = iy * nx + ix
        right = ix < nx - 1
        up = iy < ny - 1
        ei = np.concatenate([idx[right], idx[up]])
        ej = np.concatenate([idx[right] + 1, idx[up] + nx])
        xy = np.column_stack([(ix + 0.5) * cell_m, (iy + 0.5) * cell_m]).astype(float)
        d = np.abs(xy[:, None, 0] - xy[None, :, 0]) + np.abs(xy[:, None, 1] - xy[None, :, 1])
        return cls.from_edges(
            weight=weight, edges_i=ei, edges_j=ej, shared_m=np.full(ei.size, cell_m),
            area_m2=np.full(n, cell_m * cell_m), perimeter_m=np.full(n, 4 * cell_m), xy=xy,
            dist=DistanceTable.from_dense(d), current=current,
        )

    @cached_property
    def csr(self) -> sparse.csr_matrix:
        """Adjacency as a CSR matrix of shared lengths."""
        return sparse.csr_matrix((self.shared_m, self.indices, self.indptr), shape=(self.n, self.n))

    @cached_property
    def component(self) -> NDArray[np.int64]:
        """Connected-component label of each cell."""
        _, lab = csgraph.connected_components(self.csr, directed=False)
        return lab.astype(np.int64)


@dataclass(frozen=True, eq=False)
class PartitionProblem:
    """What to solve on one :class:`UnitGraph`.

    Parameters
    ----------
    graph
        The cells.
    lo, hi
        Inclusive band for each region's weight (households by default).
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
    lo: float = 300.0
    hi: float = 500.0
    radius_m: float = 1000.0
    compactness_weight: float = 1.0
    disruption_weight: float = 1.0
    street_weight: float = 0.5
    walk_soft_weight: float = 0.5
    band_weight: float = 100.0
    walk_weight: float = 100.0
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
        p = self.perimeter_m
        return np.where(p > 0, 4 * np.pi * self.area_m2 / np.where(p > 0, p, 1) ** 2, 0.0)

    @cached_property
    def centres(self) -> NDArray[np.int64]:
        """Cell hosting each region's service point (``-1`` if none can)."""
        return np.array([_search.best_centre(self.graph, m.tolist(), self.problem.radius_m)
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
                out[r] = _weighted_quantile(d[ok], self.graph.households[m][ok] + 1e-9, q)
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

        New regions are matched one-to-one to current ones by largest overlap.
        """
        g = self.graph
        known = g.current >= 0
        if not known.any():
            return 0.0
        labels, cur = np.unique(g.current[known], return_inverse=True)
        overlap = np.zeros((self.k, labels.size))
        np.add.at(overlap, (self.assignment[known], cur), g.households[known])
        from scipy.optimize import linear_sum_assignment

        r, c = linear_sum_assignment(overlap, maximize=True)
        return float(g.households[known].sum() - overlap[r, c].sum())

    @cached_property
    def previous(self) -> NDArray[np.int64]:
        """The current region each new region continues (``-1`` if none)."""
        g = self.graph
        known = g.current >= 0
        out = np.full(self.k, -1, dtype=np.int64)
        if not known.any():
            return out
        labels, cur = np.unique(g.current[known], return_inverse=True)
        overlap = np.zeros((self.k, labels.size))
        np.add.at(overlap, (self.assignment[known], cur), g.households[known] + 1e-9)
        from scipy.optimize import linear_sum_assignment

        r, c = linear_sum_assignment(overlap, maximize=True)
        out[r] = labels[c]
        return out

    def objective(self) -> float:
        """The search objective of this partition."""
        s = _search.Search(self.problem, np.random.default_rng(0))
        s.load(self.assignment)
        return s.objective()


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


def _weighted_quantile(x: NDArray, w: NDArray, q: float) -> float:
    if q >= 1.0:
        return float(np.max(x))
    order = np.argsort(x)
    x, w = x[order], w[order]
    cw = np.cumsum(w)
    return float(x[min(np.searchsorted(cw, q * cw[-1]), x.size - 1)])


# ---------------------------------------------------------------------------------------------
# solving one container
# ---------------------------------------------------------------------------------------------
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
    kmin = max(1, math.ceil(weight / hi)) if hi > 0 else 1
    kmax = math.floor(weight / lo) if lo > 0 else kmin
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


def _component_plan(problem: PartitionProblem) -> list[dict[str, Any]]:
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


def _construct(S: _search.Search, plans: list[dict[str, Any]], rng: np.random.Generator,
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
                c = _search.best_centre(g, regions.get(r, [s]), S.R)
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


def _from_current(S: _search.Search, plans: list[dict[str, Any]]) -> NDArray[np.int64] | None:
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


def _contiguous_pieces(S: _search.Search, cells: NDArray, sub_lab: NDArray) -> list[list[int]]:
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
    from collections import deque

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


def _adjust_count(S: _search.Search, cells: NDArray, regions: list[list[int]], want: int,
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


def default_steps(n_cells: int) -> int:
    """The default search budget of one start, in steps (see :class:`geo._partition_search.Budget`)."""
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
    plans = _component_plan(problem)
    k_total = sum(len(p["pinned"]) + p["k_rest"] for p in plans)
    problem = replace(problem, k_hint=max(k_total, 1))
    S = _search.Search(problem, rng)
    if g.n > 2000:  # large containers: one start, the search itself dominates
        n_starts = 1
    starts = (["current"] if use_current else []) + ["grow"] * max(n_starts, 1)
    per_start = default_steps(g.n) if max_steps is None else int(max_steps)
    budget = _search.Budget(per_start * (len(starts) + 3), time_limit_s)
    best = _run_starts(S, plans, starts, budget, per_start, rng)
    k_tried = [sum(len(p["pinned"]) + p["k_rest"] for p in plans)]
    if best[1] > 0 and problem.k is None:
        # components still out of band: their next-best region count (else fresh seeds)
        alt = _alternative_plans(S, plans, best[0])
        if alt is not None:
            k_tried.append(sum(len(p["pinned"]) + p["k_rest"] for p in alt))
        n_alt = 1 if g.n > 2000 else 3  # large containers: the first start dominates the time
        cand = _run_starts(S, alt or plans, ["grow"] * n_alt, budget, per_start, rng)
        if cand[1:] < best[1:]:
            best = cand
    stopped = "time" if budget.stopped_by_time else ("steps" if budget.stopped_by_steps else "converged")
    return Partition(problem, _relabel(best[0]),
                     search={"steps": budget.steps, "max_steps_per_start": per_start,
                             "stopped_by": stopped, "k_tried": k_tried})


def _run_starts(
    S: _search.Search, plans: list[dict[str, Any]], starts: list[str], budget: _search.Budget,
    per_start: int, rng: np.random.Generator,
) -> tuple[NDArray[np.int64], float, float]:
    """Search from each start; the best ``(labels, band cost, objective)``."""
    best: tuple[NDArray[np.int64], float, float] | None = None
    for kind in starts:
        if best is not None and budget.out():
            break
        lab = _from_current(S, plans) if kind == "current" else _construct(S, plans, rng)
        if lab is None:
            continue
        local = budget.child(per_start)
        S.load(_relabel(lab))
        S.descend(local)
        if S.hard_cost() > 0:
            S.repair_band(local)
            S.descend(local)
        budget.absorb(local)
        cand = (S.labels(), S.band_cost(), S.objective())
        if best is None or cand[1:] < best[1:]:
            best = cand
    if best is None:  # every start declined (cannot happen: growing always works)
        raise RuntimeError("no start produced a partition")
    return best


def _alternative_plans(
    S: _search.Search, plans: list[dict[str, Any]], lab: NDArray[np.int64]
) -> list[dict[str, Any]] | None:
    """Plans where each component with a region out of band gets another region count."""
    p = S.p
    W = np.bincount(lab, weights=p.graph.weight)
    pinned_region = np.zeros(W.size, dtype=bool)
    pinned_region[lab[[i for i in range(p.graph.n) if S.pinned[i]]]] = True
    bad = ((W < p.lo) | (W > p.hi)) & ~pinned_region
    changed = False
    out = []
    for plan in plans:
        plan = dict(plan)
        regions = np.unique(lab[plan["cells"]])
        if plan["k_rest"] and bad[regions].any():
            kmin = max(1, math.ceil(plan["rest_w"] / p.hi))
            kmax = math.floor(plan["rest_w"] / p.lo) if p.lo > 0 else kmin
            mid = (p.lo + p.hi) / 2
            alts = sorted((k for k in range(kmin, kmax + 1) if k != plan["k_rest"]),
                          key=lambda k: abs(plan["rest_w"] / k - mid))
            if alts:
                plan["k_rest"] = alts[0]
                changed = True
        out.append(plan)
    return out if changed else None


def _relabel(lab: NDArray[np.int64]) -> NDArray[np.int64]:
    _, inv = np.unique(lab, return_inverse=True)
    return inv.astype(np.int64).ravel()


# ---------------------------------------------------------------------------------------------
# violations
# ---------------------------------------------------------------------------------------------
def violations(
    partition: Partition,
    *,
    region_codes: Sequence[str] | None = None,
    cell_ids: Sequence[Any] | None = None,
    unreachable: NDArray[np.bool_] | None = None,
    min_polsby_popper: float = 0.0,
    quantity: str = "households",
    parts: NDArray[np.int64] | None = None,
    cell_parts: NDArray[np.int64] | None = None,
) -> list[dict[str, Any]]:
    """Every broken constraint as a structured record ``{"code", "grid", "severity", "reason", ...}``.

    Codes: ``over_band``, ``under_band``, ``beyond_radius``, ``not_contiguous``,
    ``fragmented`` (one piece on the cell graph, several on the map: give ``parts``, the
    polygon pieces per region, and ``cell_parts``, per cell), ``low_compactness``. Reasons explain why the engine could not do better:
    ``single_unit`` (one unsplittable unit above the band), ``indivisible_total`` (the
    part's total cannot be split into whole grids inside the band), ``isolated_part``
    (a detached part too small for a grid of its own), ``off_network`` (a home with no
    walkable road nearby), ``isolated_unit`` (no other home within the radius),
    ``band_conflict`` (the band, the radius and contiguity pull against each other),
    ``detached_area`` (a part without homes, attached to the nearest grid).
    The page renders them with ``planner.violation.<code>`` and ``planner.reason.<reason>``.
    """
    p = partition
    g = p.graph
    pr = p.problem
    codes = list(region_codes) if region_codes is not None else [str(r) for r in range(p.k)]
    ids = list(cell_ids) if cell_ids is not None else list(range(g.n))
    out: list[dict[str, Any]] = []
    comp = g.component
    comp_w = np.bincount(comp, weights=g.weight)
    pinned = g.homes & (g.weight > pr.hi)
    comp_free = comp_w - np.bincount(comp, weights=np.where(pinned, g.weight, 0.0),
                                     minlength=comp_w.size)
    for r, mem in enumerate(p.regions):
        W = float(p.weights[r])
        grid = codes[r]
        comps = np.unique(comp[mem])
        if W > pr.hi or W < pr.lo:
            code = "over_band" if W > pr.hi else "under_band"
            big_w = float(g.weight[mem][pinned[mem]].sum())
            if pinned[mem].any() and W - big_w <= 0:
                # the oversized unit alone (with land without homes) and nothing else
                reason = "single_unit"
                big = mem[pinned[mem]][0]
                extra = {"unit": ids[big], "unit_weight": int(round(g.weight[big]))}
            else:
                extra = {}
                cw = float(comp_free[comps].sum())
                kmin = max(1, math.ceil(cw / pr.hi)) if pr.hi > 0 else 1
                kmax = math.floor(cw / pr.lo) if pr.lo > 0 else kmin
                if cw < pr.lo and comps.size == 1 and np.unique(comp).size > 1:
                    reason = "isolated_part"
                elif kmin > kmax and not pinned[mem].any():
                    reason = "indivisible_total"
                    extra = {"total": int(round(cw))}
                else:
                    reason, extra = _binding_constraint(p, r, ids)
                    if pinned[mem].any():
                        big = mem[pinned[mem]][0]
                        extra.update(unit=ids[big], unit_weight=int(round(g.weight[big])),
                                     others=int(round(W - big_w)))
                tried = (p.search or {}).get("k_tried") or []
                extra["k_tried"] = ", ".join(str(k) for k in tried) if tried else "—"
            out.append({"code": code, "grid": grid, "severity": "error", "reason": reason,
                        quantity: int(round(W)), "quantity": quantity, "value": int(round(W)),
                        "min": _num(pr.lo), "max": _num(pr.hi), **extra})
        d = p.walk_m[mem]
        far = mem[(d > pr.radius_m) & ~np.isnan(d)]
        if far.size:
            if unreachable is not None and unreachable[far].all():
                reason = "off_network"
            else:
                lonely = _isolated(p, far)
                reason = "isolated_unit" if lonely.all() else "band_conflict"
            dmax = float(np.max(p.walk_m[far]))
            out.append({
                "code": "beyond_radius", "grid": grid, "severity": "error", "reason": reason,
                "units": [ids[i] for i in far[:10]], "n_units": int(far.size),
                "households": int(round(g.households[far].sum())),
                "max_walk_m": None if math.isinf(dmax) else round(dmax, 1),
                "radius_m": _num(pr.radius_m),
            })
        if not p.contiguous_regions[r]:
            home_comps = np.unique(comp[mem[g.homes[mem]]])
            detached_only = home_comps.size <= 1
            out.append({"code": "not_contiguous", "grid": grid,
                        "severity": "warning" if detached_only else "error",
                        "reason": "detached_area" if detached_only else "band_conflict"})
        elif parts is not None and parts[r] > 1:
            # one piece on the cell graph, several on the map: a unit whose buildings lie in
            # blocks that do not touch, or cells that meet only at a corner
            split = mem[cell_parts[mem] > 1] if cell_parts is not None else mem[:0]
            split = split[split < len(ids)]
            rec = {"code": "fragmented", "grid": grid, "severity": "error",
                   "reason": "split_unit" if split.size else "corner_touch",
                   "parts": int(parts[r])}
            if split.size:
                rec["units"] = [ids[i] for i in split[:10]]
                rec["units_text"] = "、".join(str(u) for u in rec["units"])
            out.append(rec)
        if min_polsby_popper > 0 and p.polsby_popper[r] < min_polsby_popper:
            out.append({"code": "low_compactness", "grid": grid, "severity": "warning",
                        "reason": "band_conflict", "polsby_popper": round(float(p.polsby_popper[r]), 3),
                        "min": _num(min_polsby_popper)})
    return out


#: Why a region stays out of the band, in the order the check names them.
_BLOCKERS = ("contiguity", "neighbour_band", "walk_radius", "nesting")


def _binding_constraint(p: Partition, r: int, ids: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    """Which constraint keeps region ``r`` out of the band, found by trying every boundary move
    that would help (a home unit of ``r`` to a neighbour when it is over, a neighbour's home unit
    to ``r`` when under) and naming what each one breaks.

    Returns ``(reason, params)``: ``blocked_<constraint>`` for the constraint that blocks most
    of those moves (``contiguity``: the giver would fall apart; ``neighbour_band``: the other
    grid would leave the band; ``walk_radius``: the home would be beyond the radius of the
    other grid's service point; ``nesting``: no neighbouring grid inside the same community),
    with the units looked at; ``improvable`` when a helpful move breaks nothing (the search
    stopped before it: a manual edit, or a step budget too small).
    """
    g = p.graph
    pr = p.problem
    a = p.assignment
    over = p.weights[r] > pr.hi
    mem = p.regions[r]
    counts = dict.fromkeys(_BLOCKERS, 0)
    looked: list[int] = []
    pinned = g.homes & (g.weight > pr.hi)
    def helpful_moves(skip: set[int]) -> list[tuple[int, int, int]]:
        out: list[tuple[int, int, int]] = []  # (cell, giver, taker)
        for i in mem.tolist() if over else []:
            if g.homes[i] and not pinned[i] and i not in skip:
                for s in {int(a[j]) for j in g.indices[g.indptr[i]:g.indptr[i + 1]]} - {r}:
                    out.append((i, r, s))
        if not over:
            nb = {int(a[j]) for i in mem for j in g.indices[g.indptr[i]:g.indptr[i + 1]]} - {r}
            for s in sorted(nb):
                for i in p.regions[s].tolist():
                    if (g.homes[i] and not pinned[i] and i not in skip
                            and (a[g.indices[g.indptr[i]:g.indptr[i + 1]]] == r).any()):
                        out.append((i, s, r))
        return out

    # a service point stays with its grid, unless only service points are on the boundary
    moves = helpful_moves(set(p.centres.tolist())) or helpful_moves(set())
    if not moves:
        counts["nesting"] += 1
    free: list[int] = []
    for i, giver, taker in sorted(moves):
        looked.append(i)
        rest = p.regions[giver][p.regions[giver] != i]
        if rest.size and not _connected(g, rest):
            counts["contiguity"] += 1
        elif not pr.lo <= p.weights[(taker if over else giver)] + (g.weight[i] if over else -g.weight[i]) <= pr.hi:
            counts["neighbour_band"] += 1
        elif p.centres[taker] >= 0 and g.dist.row(int(p.centres[taker]))[i] > pr.radius_m:
            counts["walk_radius"] += 1
        else:
            free.append(i)
    best = max(_BLOCKERS, key=lambda k: (counts[k], -_BLOCKERS.index(k)))
    units = sorted({ids[i] for i in (free or looked) if i < len(ids)}, key=str)
    if counts[best] == 0 or free:
        if not moves:
            return "band_conflict", {}
        # nothing blocks a helpful move: the search stopped before finding it
        return "improvable", {"tried_moves": len(moves), "steps": (p.search or {}).get("steps", 0),
                              "units_text": "、".join(str(u) for u in units[:5])
                              + ("…" if len(units) > 5 else "")}
    return f"blocked_{best}", {"blocked": counts[best], "tried_moves": len(moves),
                               "units_text": "、".join(str(u) for u in units[:5])
                               + ("…" if len(units) > 5 else "")}


def _connected(g: UnitGraph, cells: NDArray[np.int64]) -> bool:
    inside = set(cells.tolist())
    start = next(iter(inside))
    seen, todo = {start}, [start]
    while todo:
        x = todo.pop()
        for y in g.indices[g.indptr[x]:g.indptr[x + 1]].tolist():
            if y in inside and y not in seen:
                seen.add(y)
                todo.append(y)
    return len(seen) == len(inside)


def _num(x: float) -> int | float:
    """Whole numbers as int (so messages read 300, not 300.0)."""
    return int(x) if float(x).is_integer() else float(x)


def _isolated(p: Partition, cells: NDArray[np.int64]) -> NDArray[np.bool_]:
    """Home cells that no other home lies within the radius of (so no grid in the band can
    include them within the radius) — unless the cell alone reaches the band."""
    g = p.graph
    homes = np.flatnonzero(g.homes)
    out = np.zeros(cells.size, dtype=bool)
    for k, c in enumerate(cells):
        d = g.dist.block([c], homes.tolist())[0]
        near = homes[(d <= p.problem.radius_m) & (homes != c)]
        out[k] = near.size == 0 and g.weight[c] < p.problem.lo
    return out


# ---------------------------------------------------------------------------------------------
# the GeoDataFrame wrapper
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RepartitionResult:
    """What :func:`repartition` returns.

    Attributes
    ----------
    regions
        One row per new region (grid schema columns plus metrics and ``violations``),
        in the input CRS.
    assignment
        New region code per input unit row (aligned to the input index; ``None`` where a
        unit lay outside every container).
    violations
        Structured records (see :func:`violations`), plus ``outside_containers`` records.
    summary
        The comparison table: one row ``current`` and one row ``proposed``.
    service_points
        The unit hosting each region's service point (points, input CRS).
    timings_s
        Seconds spent per stage.
    plans
        Each container's engine state (:class:`ContainerPlan`), for editing the proposal.
    search
        How the search ended: ``steps`` (total), ``stopped_by_time`` (codes of the
        containers a ``time_limit_s`` cut short: their plans may differ between runs;
        empty when the step budget alone decided, which makes the output reproducible)
        and ``stopped_by_steps`` (containers that used their whole step budget).
    """

    regions: gpd.GeoDataFrame
    assignment: pd.Series
    violations: list[dict[str, Any]]
    summary: pd.DataFrame
    service_points: gpd.GeoDataFrame
    timings_s: dict[str, float] = field(default_factory=dict)
    plans: list[ContainerPlan] = field(default_factory=list)
    search: dict[str, Any] = field(default_factory=dict)


_LEVELS = {
    "grid": {"parent": "community_code", "band": (300.0, 500.0), "suffix": "网格", "seq": 3},
    "community": {"parent": "subdistrict_code", "band": (2000.0, 4000.0), "suffix": "社区",
                  "seq": 3},
}


def _check_inputs(units, containers, roads, balance, band, level, options) -> None:
    problems = [f"{k} must be positive, got {v}" for k, v in options.items() if not v > 0]
    if level not in _LEVELS:
        problems.append(f"level must be 'grid' or 'community', got {level!r}")
    if balance not in ("households", "population"):
        problems.append(f"balance must be 'households' or 'population', got {balance!r}")
    for name, gdf in (("units", units), ("containers", containers)):
        if not isinstance(gdf, gpd.GeoDataFrame):
            problems.append(f"{name} must be a GeoDataFrame")
            continue
        if gdf.crs is None:
            problems.append(f"{name} has no CRS; set it (usually EPSG:4326) with .set_crs(4326)")
        if gdf.geometry.isna().any() or gdf.geometry.is_empty.any():
            problems.append(f"{name} has {int((gdf.geometry.isna() | gdf.geometry.is_empty).sum())} "
                            "rows without geometry; drop them first")
    if isinstance(units, gpd.GeoDataFrame):
        for col in ("households", "population"):
            if col not in units.columns:
                problems.append(f"units lack the column {col!r}")
            else:
                v = pd.to_numeric(units[col], errors="coerce")
                bad = v.isna() | (v < 0)
                if bad.any():
                    rows = (np.flatnonzero(bad.to_numpy())[:5] + 1).tolist()
                    problems.append(f"units.{col} must be a number >= 0 (rows {rows})")
    if isinstance(containers, gpd.GeoDataFrame) and "code" not in containers.columns:
        problems.append("containers lack the column 'code'")
    if isinstance(containers, gpd.GeoDataFrame) and not containers.geometry.geom_type.isin(
            ["Polygon", "MultiPolygon"]).all():
        problems.append("containers must be polygons (Polygon or MultiPolygon)")
    if roads is not None and not isinstance(roads, gpd.GeoDataFrame | gpd.GeoSeries):
        problems.append("roads must be a GeoDataFrame of lines")
    if band is not None and not (len(band) == 2 and 0 <= band[0] <= band[1]):
        problems.append(f"band must be (min, max) with 0 <= min <= max, got {band}")
    if problems:
        raise PartitionInputError("cannot repartition: " + "; ".join(problems))


def repartition(
    units: gpd.GeoDataFrame,
    containers: gpd.GeoDataFrame,
    *,
    roads: gpd.GeoDataFrame | None = None,
    level: Literal["grid", "community"] = "grid",
    balance: Literal["households", "population"] = "households",
    band: tuple[float, float] | None = None,
    radius_m: float = 1000.0,
    group_col: str | None = "compound_id",
    current_col: str | None = "grid_code",
    current_workers: Mapping[str, float] | None = None,
    staff: Mapping[str, Mapping[str, int]] | None = None,
    compactness_weight: float = 1.0,
    disruption_weight: float = 1.0,
    street_weight: float = 0.5,
    path_cost: float = 0.6,
    street_cost: float = 0.3,
    barrier_cost: float = 0.0,
    min_polsby_popper: float = 0.2,
    max_snap_m: float = 300.0,
    n_starts: int = 3,
    max_steps: int | None = None,
    time_limit_s: float | None = None,
    report_outside: bool = True,
    cells: Literal["voronoi", "polygons"] | None = None,
    locked: Collection[str] = (),
    current_regions: gpd.GeoDataFrame | None = None,
    rng: np.random.Generator | None = None,
) -> RepartitionResult:
    """Redraw the regions (grids, or communities) inside each container.

    Parameters
    ----------
    units
        Grid level: buildings (points or footprints) with ``households`` and ``population``;
        rows sharing ``group_col`` (a residential compound) are never split.
        Community level: the current grids (polygons) with ``households`` and ``population``.
    containers
        Polygons with ``code`` (and ``name``) that the new regions tile and nest in:
        communities at grid level, sub-districts at community level.
    roads
        Road lines with ``kind`` (``layers.schema.ROAD_KINDS``) and optional ``walkable``:
        the walking network (all but rivers and railways), block edges
        (:data:`STREET_KINDS`) and barriers (:data:`BARRIER_KINDS`). Without roads,
        walking distance is 1.3 x the straight line.
    level
        ``"grid"`` (codes: 12-digit community + 3-digit sequence) or ``"community"``
        (9-digit sub-district + 3-digit sequence).
    balance, band
        The quantity balanced and its inclusive band; default 300-500 households per grid,
        2,000-4,000 per community (times 2.5 residents per household when balancing
        ``"population"``).
    radius_m
        Every home within this walk of its region's service point (a unit in the region).
    group_col, current_col
        Column of unsplittable groups, and of each unit's current region code.
    current_workers
        Workers per current region code; the summary's worker count uses their ratio.
    staff
        Full-time workers and A/B posts per current grid code (:func:`grid_staff` of the
        workers layer): adds the staff-load columns to the summary (see :func:`comparison_table`).
    compactness_weight, disruption_weight, street_weight
        Weights of Polsby-Popper, households moved, and boundaries off streets.
    path_cost, street_cost, barrier_cost
        Cost of a metre of boundary along a footpath / street / barrier (across a block
        costs 1).
    min_polsby_popper
        Regions below it get a ``low_compactness`` warning (0 turns it off).
    max_snap_m
        Homes farther than this from any walkable road are off the network.
    n_starts, max_steps
        Search starts, and the search budget of each start in steps (default
        :func:`default_steps` of the container's cell count). The same inputs, seed and
        budget give byte-identical output on any machine and load.
    time_limit_s
        Optional wall-clock cap per container (``None``: none). A container whose search it
        stopped is listed in ``result.search["stopped_by_time"]`` (its plan may then differ
        between runs).
    cells
        How units become cells that tile a container: ``"voronoi"`` (default at grid level:
        each block shared among the buildings in it) or ``"polygons"`` (default at community
        level: the units' own polygons, e.g. grids or residential blocks).
    locked, current_regions
        Codes of current regions that must not change, and the current regions' polygons
        (``code`` and geometry; needed when ``locked`` is not empty). A locked region's units
        never move and it keeps its code and polygon (the same geometry object, when
        ``current_regions`` is in the units' CRS); the rest of each container is
        re-partitioned around it. Units inside a locked polygon join it. Locked rows carry
        ``locked=True`` in ``result.regions``.
    report_outside
        Add an ``outside_containers`` warning for units in no container (turn it off when
        the units were read for a larger area than the containers on purpose).
    rng
        Randomness (default ``np.random.default_rng(0)``).

    Returns
    -------
    RepartitionResult

    Raises
    ------
    PartitionInputError
        When the layers are unusable (missing columns, no CRS...), listing every problem.
    """
    _check_inputs(units, containers, roads, balance, band, level,
                  {"radius_m": radius_m, "n_starts": n_starts, "max_snap_m": max_snap_m,
                   **({} if time_limit_s is None else {"time_limit_s": time_limit_s}),
                   **({} if max_steps is None else {"max_steps": max_steps})})
    if cells not in (None, "voronoi", "polygons"):
        raise PartitionInputError(f"cells must be 'voronoi' or 'polygons', got {cells!r}")
    rng = np.random.default_rng(0) if rng is None else rng
    spec = _LEVELS[level]
    locked_set = {str(c) for c in locked}
    locked_gdf = _locked_regions(locked_set, current_regions)
    if locked_set and current_workers:  # the summary compares the redrawn grids only
        current_workers = {k: v for k, v in current_workers.items() if str(k) not in locked_set}
    lo, hi = band if band is not None else spec["band"]
    if balance == "population" and band is None:
        lo, hi = lo * 2.5, hi * 2.5
    timings: dict[str, float] = {}
    t = time.perf_counter()
    in_crs = units.crs
    metric = local_metric_crs(containers)
    U = units.to_crs(metric)
    C = containers.to_crs(metric).reset_index(drop=True)
    Rd = roads.to_crs(metric) if roads is not None and len(roads) else None
    net = None
    line_geom = np.zeros(0, dtype=object)
    line_kind = np.zeros(0, dtype=object)
    line_tree = None
    if Rd is not None:
        # only the roads a walk from these containers can use
        margin = 0.75 * radius_m + max_snap_m
        minx, miny, maxx, maxy = C.total_bounds
        Rd = Rd.iloc[Rd.sindex.query(shapely.box(minx - margin, miny - margin, maxx + margin,
                                                 maxy + margin))]
        kinds = Rd["kind"].astype(str).to_numpy() if "kind" in Rd.columns else np.full(len(Rd), "local")
        is_line = np.isin(kinds, STREET_KINDS + PATH_KINDS) & bounds_blocks(Rd)
        line_geom, line_kind = Rd.geometry.to_numpy()[is_line], kinds[is_line]
        line_tree = shapely.STRtree(line_geom)
        try:
            net = build_walk_network(Rd)
        except ValueError:
            net = None
    timings["prepare"] = time.perf_counter() - t

    # units -> containers
    t = time.perf_counter()
    geom = U.geometry.to_numpy()
    is_poly = np.isin(shapely.get_type_id(geom), (3, 6))
    pts = geom.copy()
    pts[is_poly] = shapely.point_on_surface(geom[is_poly])
    tree = shapely.STRtree(C.geometry.to_numpy())
    pi, ci = tree.query(pts, predicate="intersects")
    cont = np.full(len(U), -1, dtype=np.int64)
    cont[pi[::-1]] = ci[::-1]
    polygon_units = (cells or ("polygons" if level == "community" else "voronoi")) == "polygons"
    if polygon_units and not is_poly.all():
        raise PartitionInputError("cells='polygons' needs polygon units; these include points")
    if polygon_units:
        # a grid belongs to the container holding most of it
        pi2, ci2 = tree.query(geom, predicate="intersects")
        ov = shapely.area(shapely.intersection(geom[pi2], C.geometry.to_numpy()[ci2]))
        order = np.lexsort((-ov, pi2))
        first = np.ones(order.size, dtype=bool)
        first[1:] = pi2[order][1:] != pi2[order][:-1]
        # mostly inside (touching or overlapping a sliver does not count)
        first &= ov[order] > 0.01 * shapely.area(geom[pi2[order]])
        cont[:] = -1
        cont[pi2[order][first]] = ci2[order][first]
    hh_all = pd.to_numeric(U["households"]).to_numpy(dtype=float)
    pop_all = pd.to_numeric(U["population"]).to_numpy(dtype=float)
    wt_all = hh_all if balance == "households" else pop_all
    cur_all = (U[current_col].astype("string").to_numpy(dtype=object, na_value=None)
               if current_col and current_col in U.columns else np.full(len(U), None, dtype=object))
    grp_all = (U[group_col].astype("string").to_numpy(dtype=object, na_value=None)
               if group_col and group_col in U.columns and not polygon_units
               else np.full(len(U), None, dtype=object))
    viol_all: list[dict[str, Any]] = []
    outside = np.flatnonzero(cont < 0)
    if outside.size and report_outside:
        viol_all.append({"code": "outside_containers", "grid": None, "severity": "warning",
                         "reason": "outside_containers", "n_units": int(outside.size),
                         "units": [str(x) for x in U.index[outside[:10]]]})
    timings["assign"] = time.perf_counter() - t

    plans: list[ContainerPlan] = []
    new_code = np.full(len(U), None, dtype=object)
    t_cells = t_dist = t_solve = t_out = 0.0
    names = C["name"].astype(str).to_numpy() if "name" in C.columns else C["code"].astype(str).to_numpy()
    codes_c = C["code"].astype(str).to_numpy()
    by_cont = pd.Series(np.arange(len(U))).groupby(cont).indices
    ratio = _worker_ratio(current_workers)
    locked_m = locked_gdf.to_crs(metric) if locked_gdf is not None else None
    in_locked = np.full(len(U), None, dtype=object)
    if locked_m is not None:
        lk_codes = locked_m["code"].astype(str).to_numpy()
        li, lj = shapely.STRtree(locked_m.geometry.to_numpy()).query(pts, predicate="intersects")
        in_locked[li[::-1]] = lk_codes[lj[::-1]]
        own = np.array([x is not None and str(x) in locked_set for x in cur_all], dtype=bool)
        in_locked[own] = cur_all[own].astype(str)
        new_code[in_locked != None] = in_locked[in_locked != None]  # noqa: E711
    for c_idx in range(len(C)):
        rows = np.asarray(by_cont.get(c_idx, np.zeros(0, dtype=np.int64)), dtype=np.int64)
        poly = C.geometry.iloc[c_idx]
        reserved: tuple[str, ...] = ()
        if locked_m is not None:
            rows = rows[in_locked[rows] == None]  # noqa: E711
            hit = locked_m.geometry.to_numpy()[
                shapely.STRtree(locked_m.geometry.to_numpy()).query(poly, predicate="intersects")]
            if hit.size:
                poly = shapely.make_valid(shapely.difference(poly, shapely.union_all(hit)))
                poly = shapely.union_all([g for g in shapely.get_parts(poly)
                                          if shapely.get_type_id(g) == 3 and g.area > 1.0])
            reserved = tuple(sorted(c for c in locked_set if c.startswith(codes_c[c_idx])))
            if poly.is_empty:
                continue
        ta = time.perf_counter()
        # units of this container: a group (compound) or a single row
        if rows.size:
            gkeys = np.array([f"g:{grp_all[r]}" if grp_all[r] is not None else f"b:{r}" for r in rows],
                             dtype=object)
            ukeys, uinv = np.unique(gkeys, return_inverse=True)
        else:
            ukeys, uinv = np.zeros(0, dtype=object), np.zeros(0, dtype=np.int64)
        n_units = ukeys.size
        uinv = uinv.ravel()
        u_hh = np.bincount(uinv, weights=hh_all[rows], minlength=n_units)
        u_pop = np.bincount(uinv, weights=pop_all[rows], minlength=n_units)
        u_w = np.bincount(uinv, weights=wt_all[rows], minlength=n_units)
        # representative row per unit: the one with most households
        order = np.lexsort((-hh_all[rows], uinv))
        firsts = np.ones(order.size, dtype=bool)
        firsts[1:] = uinv[order][1:] != uinv[order][:-1]
        rep_row = rows[order][firsts]
        near = line_tree.query(poly) if line_tree is not None else np.zeros(0, dtype=np.int64)
        lines, lk = line_geom[near], line_kind[near]
        kw = {"street_lines": lines[np.isin(lk, STREET_KINDS)],
              "barrier_lines": lines[np.isin(lk, BARRIER_KINDS)],
              # footpaths only matter for cutting blocks among buildings
              "path_lines": lines[np.isin(lk, PATH_KINDS)] if not polygon_units else None}
        if polygon_units and rows.size:
            tess = tessellate(poly, unit_polygons=geom[rep_row], n_units=n_units, **kw)
        else:
            fp_rows = is_poly[rows]
            tess = tessellate(poly, point_xy=shapely.get_coordinates(pts[rows]), point_unit=uinv,
                              footprints=geom[rows][fp_rows] if fp_rows.any() else None,
                              footprint_unit=uinv[fp_rows], n_units=n_units, **kw)
        tb = time.perf_counter()
        t_cells += tb - ta
        n = tess.n_cells
        cell_xy = np.zeros((n, 2))
        if n_units:
            cell_xy[:n_units] = shapely.get_coordinates(pts[rep_row])
        if n > n_units:
            fill_pts = shapely.point_on_surface(
                np.array([tess.union(np.array([c])) for c in range(n_units, n)], dtype=object))
            cell_xy[n_units:] = shapely.get_coordinates(fill_pts)
        homes = np.zeros(n, dtype=bool)
        homes[:n_units] = (u_hh > 0) | (u_pop > 0)
        dist, unreachable = _cell_distances(
            net, pts, rows, uinv, rep_row, n_units, n, homes, poly, radius_m, max_snap_m, cell_xy)
        tc = time.perf_counter()
        t_dist += tc - tb
        # current labels: the household-weighted vote of each unit's rows
        cur_lab = np.full(n, -1, dtype=np.int64)
        cur_codes: list[str] = []
        if rows.size:
            cur_rows = cur_all[rows]
            known = np.array([x is not None for x in cur_rows])
            if known.any():
                cur_codes = sorted({str(x) for x in cur_rows[known]})
                cmap = {c: k for k, c in enumerate(cur_codes)}
                votes = np.zeros((n_units, len(cur_codes)))
                kr = np.flatnonzero(known)
                np.add.at(votes, (uinv[kr], [cmap[str(x)] for x in cur_rows[kr]]),
                          hh_all[rows][kr] + 1e-6)
                has = votes.sum(axis=1) > 0
                cur_lab[:n_units][has] = votes[has].argmax(axis=1)
        cut = (tess.shared_m - tess.path_m) + path_cost * (tess.path_m - tess.street_m) \
            + street_cost * (tess.street_m - tess.barrier_m) + barrier_cost * tess.barrier_m
        pad = np.zeros(n - n_units)
        graph = UnitGraph.from_edges(
            weight=np.concatenate([u_w, pad]), households=np.concatenate([u_hh, pad]),
            population=np.concatenate([u_pop, pad]), homes=homes,
            can_host=np.arange(n) < n_units,
            edges_i=tess.adj_i, edges_j=tess.adj_j, shared_m=tess.shared_m, cut_cost_m=cut,
            area_m2=tess.area_m2, perimeter_m=tess.perimeter_m, xy=cell_xy, dist=dist,
            current=cur_lab, container=np.full(n, c_idx),
        )
        problem = PartitionProblem(
            graph, lo=lo, hi=hi, radius_m=radius_m, compactness_weight=compactness_weight,
            disruption_weight=disruption_weight, street_weight=street_weight,
        )
        part = solve(problem, rng=rng, n_starts=n_starts, max_steps=max_steps,
                     time_limit_s=time_limit_s)
        td = time.perf_counter()
        t_solve += td - tc
        members = pd.Series(U.index[rows]).groupby(uinv).agg(list) if rows.size else pd.Series([])
        plan = ContainerPlan(
            code=codes_c[c_idx], name=names[c_idx], level=level, partition=part, tessellation=tess,
            cell_ids=[str(x) for x in U.index[rep_row]] + [f"filler-{c}" for c in range(n - n_units)],
            unit_rows=[list(m) for m in members.tolist()], unreachable=unreachable,
            current_codes=cur_codes, crs=metric, balance=balance, min_polsby_popper=min_polsby_popper,
            worker_ratio=ratio, reserved_codes=reserved,
        )
        plans.append(plan)
        if rows.size:
            new_code[rows] = np.array(plan.region_codes(part.k), dtype=object)[part.assignment[uinv]]
        t_out += time.perf_counter() - td
    timings.update(cells=t_cells, distances=t_dist, solve=t_solve)
    t = time.perf_counter()
    described = [p.describe() for p in plans]
    parts = [d[0] for d in described if len(d[0])]
    regions = (gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=metric) if parts
               else gpd.GeoDataFrame(geometry=[], crs=metric))
    for d in described:
        viol_all.extend(d[1])
    if len(regions) > 1:
        # containers were cut one by one: match the vertices along their shared edges so the
        # whole proposal is one valid coverage (for coverage_simplify on the map)
        cleaned = shapely.coverage_clean(regions.geometry.to_numpy())
        if not shapely.is_empty(cleaned).any():
            regions = regions.set_geometry(cleaned)
    services = [p.service_points() for p in plans]
    services = [s for s in services if len(s)]
    service_gdf = (gpd.GeoDataFrame(pd.concat(services, ignore_index=True), crs=metric) if services
                   else gpd.GeoDataFrame(geometry=[], crs=metric))
    if len(regions):
        regions = regions.to_crs(in_crs)
    if len(service_gdf):
        service_gdf = service_gdf.to_crs(in_crs)
    if locked_gdf is not None:
        regions = _with_locked(regions, locked_gdf, in_crs, spec["parent"], in_locked, hh_all, pop_all)
    summary = comparison_table(plans, current_workers=current_workers, staff=staff)
    timings["output"] = t_out + time.perf_counter() - t
    info = [(p.code, p.partition.search or {}) for p in plans]
    search = {"steps": int(sum(i.get("steps", 0) for _, i in info)),
              "stopped_by_time": [c for c, i in info if i.get("stopped_by") == "time"],
              "stopped_by_steps": [c for c, i in info if i.get("stopped_by") == "steps"]}
    return RepartitionResult(
        regions=regions,
        assignment=pd.Series(new_code, index=units.index, name="new_code"),
        violations=viol_all,
        summary=summary,
        service_points=service_gdf,
        timings_s=timings,
        plans=plans,
        search=search,
    )


def _locked_regions(locked: set[str], current_regions: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame | None:
    """The rows of ``current_regions`` whose code is locked (checked: every code found)."""
    if not locked:
        return None
    if current_regions is None or "code" not in current_regions.columns:
        raise PartitionInputError("locked regions need current_regions (polygons with 'code')")
    if current_regions.crs is None:
        raise PartitionInputError("current_regions has no CRS; set it with .set_crs(4326)")
    codes = current_regions["code"].astype(str)
    missing = sorted(locked - set(codes))
    if missing:
        raise PartitionInputError(f"locked codes not among the current regions: {missing}")
    out = current_regions[codes.isin(locked).to_numpy()]
    if out.geometry.isna().any() or out.geometry.is_empty.any():
        raise PartitionInputError("a locked region has no polygon")
    return out


_LOCKED_COLS = ("code", "name", "kind", "community_code", "subdistrict_code", "households",
                "population", "n_units", "moved_households", "moved_share", "previous_code",
                "violations", "locked")


def _with_locked(regions: gpd.GeoDataFrame, locked: gpd.GeoDataFrame, crs: Any, parent: str,
                 in_locked: NDArray[np.object_], hh: NDArray, pop: NDArray) -> gpd.GeoDataFrame:
    """Append the locked regions, their polygons untouched, to the proposal's rows."""
    lk = locked if locked.crs == crs else locked.to_crs(crs)
    rows = []
    attrs = pd.DataFrame(lk.drop(columns=lk.geometry.name)).astype(object)
    for rec in attrs.where(attrs.notna(), None).to_dict("records"):
        code = str(rec["code"])
        mine = in_locked == code
        rec.update({"code": code, "name": rec.get("name") or code,
                    "kind": rec.get("kind") or "comprehensive", parent: rec.get(parent) or code[:-3],
                    "households": int(round(hh[mine].sum())), "population": int(round(pop[mine].sum())),
                    "n_units": int(mine.sum()), "moved_households": 0, "moved_share": 0.0,
                    "previous_code": code, "violations": [], "locked": True})
        rows.append({k: v for k, v in rec.items() if k in regions.columns or k in _LOCKED_COLS
                     or k in ("leader", "workers")})
    add = gpd.GeoDataFrame(rows, geometry=list(lk.geometry.to_numpy()), crs=crs)
    if len(regions):
        regions = regions.assign(locked=False)
        return gpd.GeoDataFrame(pd.concat([regions, add], ignore_index=True), crs=crs)
    return add


@dataclass(frozen=True, eq=False)
class ContainerPlan:
    """One container's engine state: its cells, the proposal, and how to describe any edit.

    The planner page edits ``partition`` (e.g. ``plan.partition.flip({cell: region})``) and
    calls :meth:`describe` and :func:`comparison_table` on the result.

    Attributes
    ----------
    code, name, level
        The container (a community at grid level, a sub-district at community level).
    partition
        The proposal over the cells (units first, then filler cells without homes).
    tessellation
        The cells' geometry in ``crs`` (metres).
    cell_ids
        Per cell: the input index label (as text) of the unit's main row, or ``filler-<k>``.
    unit_rows
        Per unit: the input index labels of its rows (a compound's buildings).
    unreachable
        Cells with homes off the walking network.
    current_codes
        The current region code of each current label in ``partition.graph.current``.
    """

    code: str
    name: str
    level: str
    partition: Partition
    tessellation: Tessellation
    cell_ids: list[str]
    unit_rows: list[list[Any]]
    unreachable: NDArray[np.bool_]
    current_codes: list[str]
    crs: Any
    balance: str = "households"
    min_polsby_popper: float = 0.2
    worker_ratio: float | None = None
    reserved_codes: tuple[str, ...] = ()

    @property
    def n_units(self) -> int:
        """Cells that are real units (the rest are fillers)."""
        return len(self.unit_rows)

    def region_codes(self, k: int) -> list[str]:
        """New codes: the container's code and a 3-digit sequence (skipping locked codes)."""
        taken = set(self.reserved_codes)
        out: list[str] = []
        seq = 0
        while len(out) < k:
            seq += 1
            c = f"{self.code}{seq:03d}"
            if c not in taken:
                out.append(c)
        return out

    def cell_polygons(self) -> NDArray[np.object_]:
        """One (Multi)Polygon per cell, in ``crs``."""
        t = self.tessellation
        order = np.argsort(t.piece_unit, kind="stable")
        bounds = np.searchsorted(t.piece_unit[order], np.arange(t.n_cells + 1))
        return np.array([shapely.coverage_union_all(t.pieces[order[bounds[c]:bounds[c + 1]]])
                         for c in range(t.n_cells)], dtype=object)

    def current(self) -> Partition | None:
        """The current regions on the same cells (cells without one join a neighbour's)."""
        p = self.partition
        return _current_partition(p.problem, p.graph.current)

    def describe(self, partition: Partition | None = None) -> tuple[gpd.GeoDataFrame, list[dict[str, Any]]]:
        """Per-region rows (grid schema columns, metrics, violation codes; geometry in ``crs``)
        and the structured violations of ``partition`` (default: the proposal)."""
        part = self.partition if partition is None else partition
        spec = _LEVELS[self.level]
        pr = part.problem
        codes = self.region_codes(part.k)
        n_parts = self.tessellation.parts(part.assignment, part.k)
        viol = violations(part, region_codes=codes, cell_ids=self.cell_ids,
                          unreachable=self.unreachable, min_polsby_popper=self.min_polsby_popper,
                          quantity=self.balance, parts=n_parts,
                          cell_parts=self.tessellation.cell_parts)
        self._blame_manual(part, viol, codes)
        by_grid: dict[str, list[str]] = {}
        for v in viol:
            v[spec["parent"]] = self.code
            by_grid.setdefault(v["grid"], []).append(v["code"])
        street_share = _street_share(part, self.tessellation)
        prev = part.previous
        hh = part.graph.households
        cur_lab = part.graph.current
        rows, geoms = [], []
        for r, mem in enumerate(part.regions):
            outline = self.tessellation.union(mem)
            geoms.append(outline)
            W = part.weights[r]
            a = float(shapely.area(outline))
            per = float(shapely.length(outline))
            moved = float(hh[mem][(cur_lab[mem] >= 0) & (cur_lab[mem] != prev[r])].sum())
            rows.append({
                "code": codes[r],
                "name": f"{self.name}第{r + 1}{spec['suffix']}",
                "kind": "comprehensive",
                spec["parent"]: self.code,
                "workers": None if self.worker_ratio is None else int(round(self.worker_ratio)),
                "households": int(round(part.households[r])),
                "population": int(round(part.population[r])),
                "n_units": int(np.count_nonzero(mem < self.n_units)),
                "area_km2": a / 1e6,
                "max_walk_m": _finite(part.max_walk_m[r]),
                "p95_walk_m": _finite(part.p95_walk_m[r]),
                "polsby_popper": 4 * math.pi * a / per**2 if per > 0 else 0.0,
                "contiguous": bool(part.contiguous_regions[r]) and int(n_parts[r]) == 1,
                "parts": int(n_parts[r]),
                "within_band": bool(pr.lo <= W <= pr.hi),
                "within_radius": bool(np.all(np.nan_to_num(part.walk_m[mem], nan=0.0) <= pr.radius_m)),
                "moved_households": int(round(moved)),
                "moved_share": moved / part.households[r] if part.households[r] > 0 else 0.0,
                "street_boundary_share": street_share[r],
                "previous_code": self.current_codes[prev[r]] if prev[r] >= 0 else None,
                "service_unit": self.cell_ids[part.centres[r]] if part.centres[r] >= 0 else None,
                "violations": by_grid.get(codes[r], []),
            })
        return gpd.GeoDataFrame(rows, geometry=geoms, crs=self.crs), viol

    def manual_cells(self, partition: Partition) -> NDArray[np.int64]:
        """Cells whose region differs from the engine's proposal (moved by hand)."""
        a, b = partition.assignment, self.partition.assignment
        if a is b or a.shape != b.shape:
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(a != b)

    @cached_property
    def _proposal_violations(self) -> set[tuple[str, str]]:
        part = self.partition
        v = violations(part, region_codes=self.region_codes(part.k), cell_ids=self.cell_ids,
                       unreachable=self.unreachable, min_polsby_popper=self.min_polsby_popper,
                       quantity=self.balance, parts=self.tessellation.parts(part.assignment, part.k),
                       cell_parts=self.tessellation.cell_parts)
        return {(x["grid"], x["code"]) for x in v}

    def _blame_manual(self, part: Partition, viol: list[dict[str, Any]], codes: list[str]) -> None:
        """Violations that manual moves created are explained as manual: reason ``manual_move``,
        the units moved in or out of the grid, and the engine's reason as ``engine_reason``."""
        moved = self.manual_cells(part)
        if moved.size == 0:
            return
        before = self._proposal_violations
        for v in viol:
            grid = v.get("grid")
            if grid not in codes or (grid, v["code"]) in before:
                continue
            r = codes.index(grid)
            mine = moved[(part.assignment[moved] == r) | (self.partition.assignment[moved] == r)]
            if mine.size == 0:
                continue
            v["engine_reason"] = v["reason"]
            v["reason"] = "manual_move"
            v["moved_units"] = [self.cell_ids[i] for i in mine[:10]]
            v["moved_units_text"] = "、".join(v["moved_units"]) + ("…" if mine.size > 10 else "")

    def service_points(self, partition: Partition | None = None) -> gpd.GeoDataFrame:
        """The cell hosting each region's service point (its main building), in ``crs``."""
        part = self.partition if partition is None else partition
        codes = self.region_codes(part.k)
        keep = [r for r in range(part.k) if part.centres[r] >= 0]
        return gpd.GeoDataFrame(
            {"code": [codes[r] for r in keep], "unit": [self.cell_ids[part.centres[r]] for r in keep]},
            geometry=shapely.points(part.graph.xy[[part.centres[r] for r in keep]]) if keep else [],
            crs=self.crs)


#: Workers on an A/B post (AB岗) each grid should have.
AB_POSTS_PER_GRID = 2


def grid_staff(workers: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Per grid code, from the ``workers`` layer's current assignments: ``full_time`` (workers
    with role ``full_time``) and ``ab_posts`` (workers on an ``A`` or ``B`` post)."""
    if workers is None or not len(workers) or "grid_code" not in workers.columns:
        return {}
    code = workers["grid_code"].astype("string")
    role = workers["role"].astype("string") if "role" in workers.columns else pd.Series(pd.NA, index=workers.index)
    post = (workers["post"].astype("string").str.strip().str.upper() if "post" in workers.columns
            else pd.Series(pd.NA, index=workers.index))
    df = pd.DataFrame({"code": code, "full_time": (role == "full_time").fillna(False).astype(int),
                       "ab_posts": post.isin(["A", "B"]).fillna(False).astype(int)}).dropna(subset=["code"])
    agg = df.groupby("code")[["full_time", "ab_posts"]].sum()
    return {str(c): {"full_time": int(r.full_time), "ab_posts": int(r.ab_posts)}
            for c, r in zip(agg.index, agg.itertuples(index=False), strict=True)}


def comparison_table(
    plans: Sequence[ContainerPlan],
    partitions: Sequence[Partition] | None = None,
    *,
    current_workers: Mapping[str, float] | None = None,
    staff: Mapping[str, Mapping[str, int]] | None = None,
) -> pd.DataFrame:
    """The current-vs-proposed table over several containers.

    ``partitions`` (one per plan) replaces the proposals, e.g. after manual edits.
    Columns: ``grids``, ``households_min/median/max``, ``within_band_share``,
    ``contiguous_share``, ``max_walk_m``, ``p95_walk_m``, ``polsby_popper_median``,
    ``moved_share``, ``workers_needed``, ``households_per_worker_median`` and
    ``households_per_worker_max`` (staff load: households per grid worker, from
    ``current_workers``; a proposed grid gets the current mean per grid).

    With ``staff`` (:func:`grid_staff` of the workers layer), also
    ``households_per_full_time_median`` / ``_max`` (households per full-time worker, over the
    grids that have one) and ``ab_posts_short`` (grids with fewer than
    :data:`AB_POSTS_PER_GRID` workers on an A/B post). Workers stay with their current grid: a
    proposed grid has the staff of the current grid it continues
    (:attr:`Partition.previous`), a grid that continues none has nobody.
    """
    parts: dict[str, list[dict[str, Any]]] = {"current": [], "proposed": []}
    props = [p.partition for p in plans] if partitions is None else list(partitions)
    for plan, part in zip(plans, props, strict=True):
        lo, hi = part.problem.lo, part.problem.hi
        ratio = _worker_ratio(current_workers)
        prop = _summary_numbers(part, lo, hi, plan)
        prop["workers"] = [ratio] * part.k if ratio is not None else None
        if staff is not None:
            prev = part.previous
            prop["staff"] = [staff.get(plan.current_codes[i], {}) if i >= 0 else {} for i in prev]
        parts["proposed"].append(prop)
        if (part.graph.current[: plan.n_units] >= 0).any():
            cur = plan.current()
            if cur is not None:
                row = _summary_numbers(cur, lo, hi, plan)
                if current_workers:
                    # current labels number the sorted current codes; relabelling keeps the order
                    used = np.unique(part.graph.current[part.graph.current >= 0])
                    codes = [plan.current_codes[i] for i in used] if used.size == cur.k else []
                    row["workers"] = [current_workers.get(c) for c in codes] if codes else None
                if staff is not None:
                    used = np.unique(part.graph.current[part.graph.current >= 0])
                    if used.size == cur.k:
                        row["staff"] = [staff.get(plan.current_codes[i], {}) for i in used]
                parts["current"].append(row)
    table = _summary_table(parts, current_workers, sum(p.k for p in props))
    if staff is not None and len(table):
        for name in table.index:
            table.loc[name, list(_FULL_TIME_COLS)] = pd.Series(_full_time_load(parts[name]))
    return table


_FULL_TIME_COLS = ("households_per_full_time_median", "households_per_full_time_max", "ab_posts_short")


def _full_time_load(ps: list[dict[str, Any]]) -> dict[str, float | None]:
    """Households per full-time worker (median, max over staffed grids) and the grids short of
    A/B posts."""
    load: list[float] = []
    short = 0
    known = False
    for p in ps:
        st = p.get("staff")
        if st is None:
            continue
        known = True
        for h, s in zip(p["households"], st, strict=True):
            if s.get("full_time", 0) > 0:
                load.append(h / s["full_time"])
            short += int(s.get("ab_posts", 0) < AB_POSTS_PER_GRID)
    return {"households_per_full_time_median": float(np.median(load)) if load else None,
            "households_per_full_time_max": float(np.max(load)) if load else None,
            "ab_posts_short": float(short) if known else None}


def _staff_load(ps: list[dict[str, Any]]) -> dict[str, float | None]:
    """Households per grid worker: median and largest over the grids whose workers are known
    (current: each grid's own workers; proposed: the current mean per grid)."""
    load = []
    for p in ps:
        ws = p.get("workers")
        if not ws:
            continue
        for h, w in zip(p["households"], ws, strict=False):
            if w is not None and not pd.isna(w) and float(w) > 0:
                load.append(h / float(w))
    if not load:
        return {"households_per_worker_median": None, "households_per_worker_max": None}
    return {"households_per_worker_median": float(np.median(load)),
            "households_per_worker_max": float(np.max(load))}


def _finite(x: float) -> float | None:
    return None if not np.isfinite(x) else round(float(x), 1)


def _worker_ratio(current_workers: Mapping[str, float] | None) -> float | None:
    if not current_workers:
        return None
    vals = [float(v) for v in current_workers.values() if v is not None and not pd.isna(v)]
    return sum(vals) / len(vals) if vals else None


def _street_share(part: Partition, tess: Tessellation) -> list[float]:
    """Share of each region's internal boundary (towards other regions) along streets."""
    ra, rb = part.assignment[tess.adj_i], part.assignment[tess.adj_j]
    cut = ra != rb
    tot = np.bincount(ra[cut], weights=tess.shared_m[cut], minlength=part.k) + np.bincount(
        rb[cut], weights=tess.shared_m[cut], minlength=part.k)
    st = np.bincount(ra[cut], weights=tess.street_m[cut], minlength=part.k) + np.bincount(
        rb[cut], weights=tess.street_m[cut], minlength=part.k)
    return [float(s / t) if t > 0 else 1.0 for s, t in zip(st, tot, strict=True)]


def _current_partition(problem: PartitionProblem, cur_lab: NDArray[np.int64]) -> Partition | None:
    """The current regions on the same cells (cells without a label join a neighbour's)."""
    g = problem.graph
    lab = cur_lab.copy()
    if (lab < 0).all():
        return None
    for _ in range(g.n):
        miss = np.flatnonzero(lab < 0)
        if miss.size == 0:
            break
        changed = False
        for c in miss:
            nb = g.indices[g.indptr[c]:g.indptr[c + 1]]
            nb = nb[lab[nb] >= 0]
            if nb.size:
                lab[c] = lab[nb[0]]
                changed = True
        if not changed:
            lab[lab < 0] = lab[lab >= 0][0]
            break
    return Partition(problem, _relabel(lab))


def _summary_numbers(p: Partition, lo: float, hi: float,
                     plan: ContainerPlan | None = None) -> dict[str, Any]:
    hh = p.households
    one_piece = p.contiguous_regions
    if plan is not None:
        one_piece = one_piece & (plan.tessellation.parts(p.assignment, p.k) <= 1)
    return {
        "k": p.k,
        "weights": p.weights.tolist(),
        "households": hh.tolist(),
        "max_walk": p.max_walk_m.tolist(),
        "walk": [(float(d), float(h)) for d, h in zip(p.walk_m, p.graph.households, strict=True)
                 if not np.isnan(d)],
        "pp": p.polsby_popper.tolist(),
        "moved": p.moved_weight,
        "total_hh": float(p.graph.households.sum()),
        "in_band": int(np.sum((p.weights >= lo) & (p.weights <= hi))),
        "contiguous": int(np.sum(one_piece)),
    }


def _summary_table(parts: dict[str, list[dict[str, Any]]], current_workers, n_new: int) -> pd.DataFrame:
    rows = []
    ratio = _worker_ratio(current_workers)
    for name in ("current", "proposed"):
        ps = parts[name]
        if not ps:
            continue
        hh = np.concatenate([np.asarray(p["households"]) for p in ps]) if ps else np.zeros(0)
        k = sum(p["k"] for p in ps)
        walks = [w for p in ps for w in p["walk"]]
        d = np.array([w[0] for w in walks]) if walks else np.zeros(0)
        wt = np.array([w[1] for w in walks]) if walks else np.zeros(0)
        total = sum(p["total_hh"] for p in ps)
        moved = sum(p["moved"] for p in ps) if name == "proposed" else 0.0
        if name == "current":
            workers = float(sum(current_workers.values())) if current_workers else None
        else:
            workers = None if ratio is None else ratio * n_new
        fin = d[np.isfinite(d)]
        rows.append({
            "plan": name,
            "grids": k,
            "households_min": float(hh.min()) if hh.size else 0.0,
            "households_median": float(np.median(hh)) if hh.size else 0.0,
            "households_max": float(hh.max()) if hh.size else 0.0,
            "within_band_share": sum(p["in_band"] for p in ps) / max(k, 1),
            "contiguous_share": sum(p["contiguous"] for p in ps) / max(k, 1),
            "max_walk_m": float(d.max()) if d.size else 0.0,
            "p95_walk_m": _weighted_quantile(fin, wt[np.isfinite(d)] + 1e-9, 0.95) if fin.size else 0.0,
            "polsby_popper_median": float(np.median(np.concatenate([p["pp"] for p in ps]))),
            "moved_share": moved / total if total > 0 else 0.0,
            "workers_needed": None if workers is None else round(workers),
            **_staff_load(ps),
        })
    return pd.DataFrame(rows).set_index("plan") if rows else pd.DataFrame()


def _cell_distances(
    net: WalkNetwork | None,
    pts: NDArray[np.object_],
    rows: NDArray[np.int64],
    uinv: NDArray[np.int64],
    rep_row: NDArray[np.int64],
    n_units: int,
    n: int,
    homes: NDArray[np.bool_],
    poly: shapely.Geometry,
    radius_m: float,
    max_snap_m: float,
    cell_xy: NDArray[np.float64],
) -> tuple[DistanceTable, NDArray[np.bool_]]:
    """Walking distance from each unit's service location to the farthest home of every unit."""
    unreachable = np.zeros(n, dtype=bool)
    cutoff = 1.5 * radius_m
    if n_units == 0:
        return DistanceTable.from_dense(np.full((n, n), np.inf)), unreachable
    if net is None:
        d = np.full((n, n), np.inf, dtype=np.float32)
        bxy = shapely.get_coordinates(pts[rows])
        full = np.hypot(cell_xy[:n_units, None, 0] - bxy[None, :, 0],
                        cell_xy[:n_units, None, 1] - bxy[None, :, 1]) * 1.3
        d[:n_units, :n_units] = _reduce_max(full, uinv, n_units)
        d[:, ~homes] = np.inf
        return DistanceTable.from_dense(d), unreachable
    # a path of length L between two points of the container stays within L / 2 of it
    minx, miny, maxx, maxy = shapely.bounds(poly)
    m = cutoff / 2 + max_snap_m
    sub = net.subnetwork((minx - m, miny - m, maxx + m, maxy + m))
    src = snap_points(sub, cell_xy[:n_units], max_offset_m=max_snap_m)
    home_rows = np.flatnonzero(homes[:n_units][uinv])
    tgt_unit = uinv[home_rows]
    tgt = snap_points(sub, shapely.get_coordinates(pts[rows[home_rows]]), max_offset_m=max_snap_m)
    off = np.zeros(n_units, dtype=bool)
    np.logical_or.at(off, tgt_unit, np.isinf(tgt.offset_m))
    unreachable[:n_units] = off
    order = np.argsort(tgt_unit, kind="stable")
    tgt = tgt.take(order)
    tgt_unit = tgt_unit[order]
    starts = np.flatnonzero(np.r_[True, tgt_unit[1:] != tgt_unit[:-1]]) if tgt_unit.size else []
    cols = tgt_unit[starts] if tgt_unit.size else np.zeros(0, dtype=np.int64)
    dense = n <= _DENSE_MAX
    if dense:
        d = np.full((n, n), np.inf, dtype=np.float32)
    else:
        ri, ci, vals = [], [], []
    step = max(1, 4_000_000 // max(len(tgt), 1))
    for s0 in range(0, n_units, step):
        idx = np.arange(s0, min(s0 + step, n_units))
        full = network_distances(sub, src.take(idx), tgt, limit_m=cutoff)
        red = np.maximum.reduceat(full, starts, axis=1) if len(starts) else np.zeros((idx.size, 0))
        if dense:
            d[np.ix_(idx, cols)] = red
        else:
            rr, cc = np.nonzero(np.isfinite(red))
            ri.append(idx[rr])
            ci.append(cols[cc])
            vals.append(red[rr, cc])
    if not dense:
        ri = np.concatenate(ri) if ri else np.zeros(0, dtype=np.int64)
        ci = np.concatenate(ci) if ci else np.zeros(0, dtype=np.int64)
        vals = np.concatenate(vals) if vals else np.zeros(0)
        return DistanceTable.from_sparse(n, ri, ci, vals), unreachable
    return DistanceTable.from_dense(d), unreachable


def _reduce_max(full: NDArray, uinv: NDArray[np.int64], n_units: int) -> NDArray:
    order = np.argsort(uinv, kind="stable")
    su = uinv[order]
    starts = np.flatnonzero(np.r_[True, su[1:] != su[:-1]])
    out = np.full((full.shape[0], n_units), np.inf)
    out[:, su[starts]] = np.maximum.reduceat(full[:, order], starts, axis=1)
    return out
