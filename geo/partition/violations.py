"""Violations: every broken constraint as a structured record, with the reason computed from its cause.

Records are ``{"code", "grid", "severity", "reason", ...params}``; callers render them with
the catalogue (``planner.violation.<code>``, ``planner.reason.<reason>``). ``geo/`` holds no
text of its own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from geo.partition._metrics import band_excess, count_range
from geo.partition.graph import UnitGraph
from geo.partition.state import Partition

__all__ = ["violations"]


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
        if band_excess(W, pr.lo, pr.hi) > 0:
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
                kmin, kmax = count_range(cw, pr.lo, pr.hi)
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
        elif band_excess(float(p.weights[(taker if over else giver)]
                               + (g.weight[i] if over else -g.weight[i])), pr.lo, pr.hi) > 0:
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

