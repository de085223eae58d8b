"""The hard rules of a plan (:func:`check_plan`) and how violations read.

Private to :mod:`layers.plans` (import from there). Computed from the plan's data, whoever made
it (engine, manual moves, a file).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import shapely

from layers._plan_model import (
    DEFAULT_BAND,
    MAX_IDS,
    Plan,
)
from layers.permissions import Account, require

# --------------------------------------------------------------------------- the hard rules


def check_plan(store: Any, plan: Plan, *, band: tuple[float, float] = DEFAULT_BAND,
               balance: str = "households") -> list[dict[str, Any]]:
    """The violations of ``plan``: hard rules (``severity="error"``) and warnings.

    Computed from the plan's data, whoever made it (engine, manual moves, a file):

    * ``over_band`` / ``under_band``: a comprehensive grid whose buildings' ``balance``
      (households or population) lies outside ``band``;
    * ``fragmented``: a grid whose polygon is in more than one piece on the map;
    * ``unassigned_buildings``: buildings in no grid of the plan;
    * ``workers_on_missing_grid`` (warning): workers assigned to a grid the plan does not have.

    Records use the planner's catalogue (``planner.violation.<code>``) where it has the code,
    this module's (``versions.violation.<code>``) otherwise: see :func:`violation_text`.
    """
    out: list[dict[str, Any]] = []
    grids = plan.grids
    codes = grids["code"].astype(str)
    lo, hi = float(band[0]), float(band[1])
    weights = pd.Series(0, index=plan.buildings.index, dtype="int64")
    if len(plan.buildings) and store.has_layer("buildings"):
        live = store.read("buildings", columns=["id", balance])
        w = pd.Series(pd.to_numeric(live[balance], errors="coerce").fillna(0).astype("int64").to_numpy(),
                      index=live["id"].astype(str).to_numpy())
        weights = w[~w.index.duplicated()].reindex(plan.buildings.index, fill_value=0)
    totals = weights.groupby(plan.buildings.fillna("").to_numpy()).sum()
    kinds = grids["kind"].astype(str) if "kind" in grids.columns else pd.Series("comprehensive", index=grids.index)
    for code, kind in zip(codes, kinds, strict=True):
        if kind != "comprehensive":
            continue
        value = int(totals.get(code, 0))
        if value > hi:
            out.append({"code": "over_band", "severity": "error", "grid": code, "value": value,
                        "max": int(hi), "quantity": balance})
        elif value < lo:
            out.append({"code": "under_band", "severity": "error", "grid": code, "value": value,
                        "min": int(lo), "quantity": balance})
    parts = shapely.get_num_geometries(np.asarray(grids.geometry.values, dtype=object))
    for code, n in zip(codes, parts, strict=True):
        if int(n) > 1:
            out.append({"code": "fragmented", "severity": "error", "grid": code, "parts": int(n)})
    known = set(codes)
    lost = plan.buildings[~plan.buildings.isin(known) | plan.buildings.isna()]
    if len(lost):
        ids = sorted(map(str, lost.index))
        out.append({"code": "unassigned_buildings", "severity": "error", "grid": None,
                    "n": len(ids), "ids": ", ".join(ids[:MAX_IDS]) + ("…" if len(ids) > MAX_IDS else "")})
    w = plan.workers
    orphans = w[~w["grid_code"].astype(str).isin(known)] if len(w) else w
    if len(orphans):
        ids = sorted(orphans["id"].astype(str))
        out.append({"code": "workers_on_missing_grid", "severity": "warning", "grid": None,
                    "n": len(ids), "ids": ", ".join(ids[:MAX_IDS]) + ("…" if len(ids) > MAX_IDS else "")})
    return out


def merge_reasons(found: Sequence[Mapping[str, Any]], reasons: Sequence[Mapping[str, Any]]
                  ) -> list[dict[str, Any]]:
    """``found`` (:func:`check_plan`) with the explanations of an engine's records of the same
    ``(code, grid)`` merged in (``reason``, moved units...): the rule stays this module's,
    the why comes from whoever knows it. Records the check does not make (``not_contiguous``,
    ``beyond_radius``...) are added as they are, as warnings unless they are errors already.
    """
    by_key = {(str(r.get("code")), str(r.get("grid"))): r for r in reasons}
    out = []
    seen = set()
    for v in found:
        key = (str(v["code"]), str(v.get("grid")))
        extra = {k: x for k, x in by_key.get(key, {}).items() if k not in v}
        out.append({**v, **extra})
        seen.add(key)
    for key, r in by_key.items():
        if key not in seen:
            out.append({**r, "severity": r.get("severity", "warning")})
    return out


def check_permission(account: Account, action: str) -> None:
    """:func:`layers.permissions.require` (``plan.save`` / ``plan.rollback``)."""
    require(account, action)


def open_errors(violations: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The violations of hard rules (severity ``error``)."""
    return [dict(v) for v in violations if v.get("severity") == "error"]


def violation_text(rec: Mapping[str, Any], lang: str | None = None) -> str:
    """One violation record of :func:`check_plan` (or of the engine) as a sentence."""
    from layers.i18n import catalogue, t
    from layers.planner_text import violation_text as planner_text

    if f"versions.violation.{rec['code']}" in catalogue():
        params = {k: ("-" if v is None else v) for k, v in rec.items()}
        return t(f"versions.violation.{rec['code']}", lang, **params)
    return planner_text(rec, lang)


def violations_summary(violations: Sequence[Mapping[str, Any]], lang: str | None = None) -> str:
    """One line: how many hard rules a version breaks, by kind (empty when none)."""
    from layers.i18n import t

    errors = open_errors(violations)
    if not errors:
        return ""
    counts = pd.Series([t(f"versions.code.{v['code']}", lang) for v in errors]).value_counts()
    return t("versions.summary", lang, n=len(errors),
             codes=", ".join(f"{k}×{n}" for k, n in counts.items()))

