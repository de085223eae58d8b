"""Re-partitioning: redraw grids (or communities) with fair loads, short walks and compact shapes.

A package in the shape of GerryChain; the arrows run one way (each module imports only those
above it)::

    _metrics      polsby_popper, band arithmetic, overlap matching, service points (a leaf)
    graph         UnitGraph, DistanceTable: the cells of one container and how they touch
    state         PartitionProblem, Partition (immutable; flip returns a new state), PartitionInputError
    constraints   Constraint = Callable[[Partition], bool]; within_band, within_radius, contiguous, nested
    search        Budget, Search: objective, moves, region growing, local descent
    repair        ejection chains, swaps, re-splits of regions out of the band
    construction  choose_k, component plans, grown and current starts
    solve         solve(problem, rng=...) -> Partition, bounded by steps (deterministic)
    violations    every broken constraint as a record, with the reason from its cause
    cells         Tessellation: units (points, footprints, compounds, polygons) to cells that tile
    plan          ContainerState (one container's editable engine state), RegionNaming
    summary       comparison_table (current vs proposed)
    adapter       repartition(units, containers, ...) on GeoDataFrames

Every default (band of each level, radius, weights) comes from :data:`DEFAULTS`
(:mod:`geo.planner_defaults`, a leaf beside this package).

Two layers, as in spopt's location models: the **core** works on one container (a
:class:`UnitGraph` and a :class:`PartitionProblem` solved by :func:`solve` into a
:class:`Partition`); the **GeoDataFrame adapter** :func:`repartition` validates the layers,
projects to metres, builds each container's cells and walking distances, solves, and returns
polygons that tile each container exactly, with per-region metrics and structured violations.
How regions are coded and named is passed in (:class:`RegionNaming`): the grid codes and
Chinese names of the administrative ladder live in :mod:`layers.planner`.

The search picks the number of regions from the band (keeping the current count when it
fits), grows regions from k-means++ seeds (and, in another start, from the current grids),
then moves boundary cells; regions still out of the band get ejection chains along paths of
regions, swaps, and re-splits of a pair of neighbours, minimising::

    100 * (band excess + walking excess) + lam * (1 - Polsby-Popper)
    + rho * mean walk + mu * households moved + nu * boundary not on streets

When the constraints cannot all hold (a single tower above the band, a home no service
point reaches within the radius) the best partition is still returned and every violation
is named with its reason; nothing raises.

Examples
--------
A 4 x 2 lattice of 100-household units, band 300-500, splits into two 2 x 2 squares:

>>> import numpy as np
>>> g = UnitGraph.lattice(4, 2, weight=np.full(8, 100.0), cell_m=100.0)
>>> p = solve(PartitionProblem(g, lo=300, hi=500, radius_m=1000), rng=np.random.default_rng(0))
>>> sorted(np.bincount(p.assignment).tolist()), validate(p, default_constraints(p.problem))
([4, 4], [])
"""

from geo.partition._metrics import band_excess, count_range, match_overlap, polsby_popper
from geo.partition.adapter import (
    BARRIER_KINDS,
    PATH_KINDS,
    STREET_KINDS,
    RepartitionResult,
    bounds_blocks,
    repartition,
)
from geo.partition.cells import Tessellation, tags_bound_blocks, tessellate
from geo.partition.constraints import (
    Constraint,
    contiguous,
    default_constraints,
    nested,
    validate,
    within_band,
    within_radius,
)
from geo.partition.construction import choose_k
from geo.partition.graph import DistanceTable, UnitGraph
from geo.partition.plan import ContainerState, RegionNaming, SequenceNaming
from geo.partition.solve import default_steps, objective, solve
from geo.partition.state import Partition, PartitionInputError, PartitionProblem
from geo.partition.summary import AB_POSTS_PER_GRID, comparison_table
from geo.partition.violations import violations
from geo.planner_defaults import DEFAULTS, LEVEL_BANDS, PlannerDefaults

__all__ = [
    "AB_POSTS_PER_GRID",
    "BARRIER_KINDS",
    "Constraint",
    "ContainerState",
    "DEFAULTS",
    "DistanceTable",
    "LEVEL_BANDS",
    "PATH_KINDS",
    "Partition",
    "PartitionInputError",
    "PartitionProblem",
    "PlannerDefaults",
    "RegionNaming",
    "RepartitionResult",
    "STREET_KINDS",
    "SequenceNaming",
    "Tessellation",
    "UnitGraph",
    "band_excess",
    "bounds_blocks",
    "choose_k",
    "comparison_table",
    "contiguous",
    "count_range",
    "default_constraints",
    "default_steps",
    "match_overlap",
    "nested",
    "objective",
    "polsby_popper",
    "repartition",
    "solve",
    "tags_bound_blocks",
    "tessellate",
    "validate",
    "violations",
    "within_band",
    "within_radius",
]
