"""The current-vs-proposed comparison table over several containers (:func:`comparison_table`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from geo.partition._metrics import band_excess, weighted_quantile
from geo.partition.plan import ContainerState
from geo.partition.state import Partition

__all__ = ["AB_POSTS_PER_GRID", "comparison_table", "worker_ratio"]

#: Workers on an A/B post (AB岗) each grid should have.
AB_POSTS_PER_GRID = 2


def comparison_table(
    plans: Sequence[ContainerState],
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

    With ``staff`` (:func:`layers.planner.grid_staff` of the workers layer), also
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
        ratio = worker_ratio(current_workers)
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


def worker_ratio(current_workers: Mapping[str, float] | None) -> float | None:
    if not current_workers:
        return None
    vals = [float(v) for v in current_workers.values() if v is not None and not pd.isna(v)]
    return sum(vals) / len(vals) if vals else None



def _summary_numbers(p: Partition, lo: float, hi: float,
                     plan: ContainerState | None = None) -> dict[str, Any]:
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
        "in_band": int(np.sum(band_excess(p.weights, lo, hi) == 0)),
        "contiguous": int(np.sum(one_piece)),
    }


def _summary_table(parts: dict[str, list[dict[str, Any]]], current_workers, n_new: int) -> pd.DataFrame:
    rows = []
    ratio = worker_ratio(current_workers)
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
            "p95_walk_m": weighted_quantile(fin, wt[np.isfinite(d)] + 1e-9, 0.95) if fin.size else 0.0,
            "polsby_popper_median": float(np.median(np.concatenate([p["pp"] for p in ps]))),
            "moved_share": moved / total if total > 0 else 0.0,
            "workers_needed": None if workers is None else round(workers),
            **_staff_load(ps),
        })
    return pd.DataFrame(rows).set_index("plan") if rows else pd.DataFrame()


