"""One container's engine state (:class:`ContainerState`) and how regions are named (:class:`RegionNaming`).

The state keeps everything needed to edit a proposal and describe it again: the cells and
their polygons, the partition, the units' rows, the current codes. How a region is
identified and labelled (codes, names, kinds, the parent column) is not the engine's
business: it is a :class:`RegionNaming` passed in; :class:`SequenceNaming` is a neutral
default (``<container code>-<n>``), and :mod:`layers.planner` gives the grid codes and names of
the administrative ladder.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import NDArray

from geo.partition._metrics import band_excess, polsby_popper, relabel
from geo.partition.cells import Tessellation
from geo.partition.state import Partition, PartitionProblem
from geo.partition.violations import violations

__all__ = ["ContainerState", "RegionNaming", "SequenceNaming", "current_partition", "sequence_codes"]


class RegionNaming(Protocol):
    """How new regions are identified and labelled (a presentation choice the caller makes)."""

    #: Column of a region row (and key of a violation record) holding its container's code.
    parent_col: str

    def codes(self, container_code: str, k: int, reserved: Collection[str] = ()) -> list[str]:
        """Codes of ``k`` new regions of a container, avoiding ``reserved`` (locked) codes."""
        ...

    def attributes(self, container_code: str, container_name: str, seq: int) -> dict[str, Any]:
        """Columns of the ``seq``-th (1-based) new region's row besides ``code`` (name, kind...)."""
        ...

    def defaults(self, code: str) -> dict[str, Any]:
        """Columns of a kept (locked) region's row, for those its own row lacks."""
        ...


@dataclass(frozen=True)
class SequenceNaming:
    """Neutral naming: ``<container code>-<n>``, named the same, parent column ``container``.

    >>> SequenceNaming().codes("A", 3, reserved={"A-2"})
    ['A-1', 'A-3', 'A-4']
    """

    parent_col: str = "container"

    def codes(self, container_code: str, k: int, reserved: Collection[str] = ()) -> list[str]:
        return sequence_codes(lambda seq: f"{container_code}-{seq}", k, reserved)

    def attributes(self, container_code: str, container_name: str, seq: int) -> dict[str, Any]:
        return {"name": f"{container_name}-{seq}", self.parent_col: container_code}

    def defaults(self, code: str) -> dict[str, Any]:
        return {"name": code}


def sequence_codes(make: Callable[[int], str], k: int, reserved: Collection[str] = ()) -> list[str]:
    """The first ``k`` codes ``make(1), make(2), ...`` that are not ``reserved``."""
    taken = set(reserved)
    out: list[str] = []
    seq = 0
    while len(out) < k:
        seq += 1
        c = make(seq)
        if c not in taken:
            out.append(c)
    return out


@dataclass(frozen=True, eq=False)
class ContainerState:
    """One container's engine state: its cells, the proposal, and how to describe any edit.

    The planner page edits ``partition`` (e.g. ``plan.partition.flip({cell: region})``) and
    calls :meth:`describe` and :func:`comparison_table` on the result.

    Attributes
    ----------
    code, name
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
    naming: RegionNaming = field(default_factory=SequenceNaming)

    @property
    def n_units(self) -> int:
        """Cells that are real units (the rest are fillers)."""
        return len(self.unit_rows)

    def region_codes(self, k: int) -> list[str]:
        """Codes of ``k`` new regions (the naming's, skipping locked codes)."""
        return self.naming.codes(self.code, k, self.reserved_codes)

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
        return current_partition(p.problem, p.graph.current)

    def describe(self, partition: Partition | None = None) -> tuple[gpd.GeoDataFrame, list[dict[str, Any]]]:
        """Per-region rows (grid schema columns, metrics, violation codes; geometry in ``crs``)
        and the structured violations of ``partition`` (default: the proposal)."""
        part = self.partition if partition is None else partition
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
            v[self.naming.parent_col] = self.code
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
                **self.naming.attributes(self.code, self.name, r + 1),
                "workers": None if self.worker_ratio is None else int(round(self.worker_ratio)),
                "households": int(round(part.households[r])),
                "population": int(round(part.population[r])),
                "n_units": int(np.count_nonzero(mem < self.n_units)),
                "area_km2": a / 1e6,
                "max_walk_m": _finite(part.max_walk_m[r]),
                "p95_walk_m": _finite(part.p95_walk_m[r]),
                "polsby_popper": polsby_popper(a, per),
                "contiguous": bool(part.contiguous_regions[r]) and int(n_parts[r]) == 1,
                "parts": int(n_parts[r]),
                "within_band": bool(band_excess(float(W), pr.lo, pr.hi) == 0),
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



def _finite(x: float) -> float | None:
    return None if not np.isfinite(x) else round(float(x), 1)


def _street_share(part: Partition, tess: Tessellation) -> list[float]:
    """Share of each region's internal boundary (towards other regions) along streets."""
    ra, rb = part.assignment[tess.adj_i], part.assignment[tess.adj_j]
    cut = ra != rb
    tot = np.bincount(ra[cut], weights=tess.shared_m[cut], minlength=part.k) + np.bincount(
        rb[cut], weights=tess.shared_m[cut], minlength=part.k)
    st = np.bincount(ra[cut], weights=tess.street_m[cut], minlength=part.k) + np.bincount(
        rb[cut], weights=tess.street_m[cut], minlength=part.k)
    return [float(s / t) if t > 0 else 1.0 for s, t in zip(st, tot, strict=True)]


def current_partition(problem: PartitionProblem, cur_lab: NDArray[np.int64]) -> Partition | None:
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
    return Partition(problem, relabel(lab))

