"""Re-partition proposals as an application function: the planner's "run", one definition.

``gridpulse repartition``, the planner page (网格调整) and ``POST /api/v1/plans/proposals`` all call
:func:`proposal_job` (checked: ``view.planner`` inside the account's scope; audited as
:data:`layers.analysis.AUDIT_PROPOSAL`; nothing saved -- saving a plan is
:func:`layers.app.save_plan_version`). :func:`plan_inputs` reads what a proposal needs for a scope
(``com:<code>``, ``sub:<code>`` or ``district``), so every front end plans the same buildings.

Moved out of :mod:`layers.analysis` (incident analysis and patrol hours) to keep both modules
small; it reuses that module's error, scope check and audit text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from geo.planner_defaults import DEFAULTS
from layers.analysis import AUDIT_PROPOSAL, AnalysisError, _check_codes, _describe, _need_layers

#: Roads are read this far (degrees, about 2 km) around the scope: a walk may leave it.
ROAD_PAD_DEG = 0.02


@dataclass(frozen=True)
class PlanInputs:
    """The layers of one proposal's scope as the engine wants them (EPSG:4326).

    The planner page's ``Inputs`` has the same fields (it builds them from its cached layers
    with the same rules); :func:`proposal_job` reads only ``containers, units, roads, current,
    workers, staff, compounds``.
    """

    scope: str
    level: str
    containers: Any
    units: Any
    roads: Any
    current: Any
    workers: dict[str, float] | None
    staff: dict[str, dict[str, int]] | None = None
    compounds: Any = None


def scope_codes(scope: str) -> tuple[str, str]:
    """``("com"|"sub"|"district", code)`` of a proposal scope (``com:<code>``, ``sub:<code>``,
    ``district``); raises :class:`AnalysisError` for anything else.

    Examples
    --------
    >>> scope_codes("com:320106001001"), scope_codes("district")
    (('com', '320106001001'), ('district', ''))
    """
    kind, _, code = str(scope).partition(":")
    if kind == "district" and not code:
        return kind, ""
    if kind in ("com", "sub") and code.isdigit():
        return kind, code
    raise AnalysisError("reports.api.bad_body", field="scope", value=str(scope)[:40])


def _touching(frame: Any, shapes: Any) -> Any:
    import numpy as np

    if frame is None or len(frame) == 0 or len(shapes) == 0:
        return frame
    hit = np.unique(frame.sindex.query(shapes.geometry.values, predicate="intersects")[1])
    return frame.iloc[hit]


def scope_layers(scope: str, communities: Any, grids: Any, buildings: Any,
                 roads: Any) -> tuple[Any, Any, Any, Any, dict[str, float] | None]:
    """The grid-level inputs of ``scope`` cut from whole layers (frames in, frames out; no I/O).

    Returns the scope's communities, their comprehensive grids, the buildings touching the
    communities with ``grid_code`` blanked where it is no comprehensive grid of the scope (a
    dedicated grid is no current assignment), the roads within :data:`ROAD_PAD_DEG` of the
    communities (``None`` when there are none), and each grid's ``workers`` figure (``None`` when
    the layer has none). :func:`plan_inputs` and the planner page both cut their inputs here.
    """
    import shapely

    kind, code = scope_codes(scope)
    coms = communities
    if kind == "com":
        coms = coms[coms["code"].astype(str) == code]
    elif kind == "sub":
        coms = coms[coms["subdistrict_code"].astype(str) == code]
    comp = grids[(grids["kind"] == "comprehensive") & grids["community_code"].isin(coms["code"])]
    bld = _touching(buildings, coms)
    codes = set(comp["code"].astype(str))
    units = bld.assign(grid_code=bld["grid_code"].where(bld["grid_code"].isin(codes), None))
    if roads is not None and len(roads) and len(coms):
        x0, y0, x1, y1 = coms.total_bounds
        box = shapely.box(x0 - ROAD_PAD_DEG, y0 - ROAD_PAD_DEG, x1 + ROAD_PAD_DEG, y1 + ROAD_PAD_DEG)
        roads = roads.iloc[roads.sindex.query(box, predicate="intersects")]
    workers = None
    if "workers" in comp.columns:
        w = pd.to_numeric(comp["workers"], errors="coerce")
        if w.notna().any():
            workers = dict(zip(comp["code"].astype(str), w.fillna(0).astype(float), strict=True))
    return coms, comp, units, roads if roads is not None and len(roads) else None, workers


def plan_inputs(store: Any, scope: str, *, level: str = "grid") -> PlanInputs:
    """The inputs of a proposal for ``scope`` read from ``store``.

    Grid level: the communities of the scope (containers), the buildings touching them
    (units; a building of a dedicated grid has no current grid), the comprehensive grids of
    those communities (current regions, with their ``workers``), the roads within
    :data:`ROAD_PAD_DEG` of the communities, compound walls touching them, and full-time
    workers and A/B posts per grid (:func:`layers.planner.grid_staff`). Community level: the
    sub-districts of the scope, and the comprehensive grids touching them as units.
    """
    import shapely

    kind, code = scope_codes(scope)
    for name in ("communities", "grids", "buildings") if level == "grid" else ("subdistricts",
                                                                              "grids"):
        _need_layers(store, name)
    grids = store.read("grids")
    comp_all = grids[grids["kind"] == "comprehensive"]
    roads = store.read("roads") if store.has_layer("roads") else None
    workers = None
    if level == "grid":
        containers, current, units, roads, workers = scope_layers(
            scope, store.read("communities"), grids, store.read("buildings"), roads)
    else:
        if kind == "com":
            raise AnalysisError("planner.cli.community_level")
        subs = store.read("subdistricts")
        if kind == "sub":
            subs = subs[subs["code"].astype(str) == code]
        containers = subs
        units = _touching(comp_all, subs)
        current = store.read("communities") if store.has_layer("communities") else None
        if roads is not None and len(roads) and len(containers):
            x0, y0, x1, y1 = containers.total_bounds
            box = shapely.box(x0 - ROAD_PAD_DEG, y0 - ROAD_PAD_DEG, x1 + ROAD_PAD_DEG, y1 + ROAD_PAD_DEG)
            roads = roads.iloc[roads.sindex.query(box, predicate="intersects")]
    if len(containers) == 0:
        raise AnalysisError("planner.cli.unknown_code", code=code or scope)
    staff = None
    if level == "grid" and store.has_layer("workers"):
        from layers.planner import grid_staff

        staff = grid_staff(store.read("workers"))
    compounds = None
    if level == "grid" and store.has_layer("compounds"):
        compounds = _touching(store.read("compounds"), containers)
        compounds = compounds if compounds is not None and len(compounds) else None
    return PlanInputs(scope, level, containers.reset_index(drop=True), units,
                      roads if roads is not None and len(roads) else None, current, workers,
                      staff, compounds)


def proposal_job(store: Any, account: Any, *, scope: str, level: str = "grid",
                 balance: str = "households", band: tuple[float, float] | None = None,
                 radius_m: float = 1000.0, compactness_weight: float = 1.0,
                 disruption_weight: float = 1.0, street_weight: float = 0.5, seed: int = 0,
                 time_limit_s: float | None = None, max_steps: int | None = None,
                 locked: Any = (), walls: bool = False, inputs: Any = None) -> Any:
    """A re-partition proposal (the planner's "run"), as a job of ``account``: checked
    (``view.planner``, and every container of the scope inside the account's scope), computed
    by :func:`layers.planner.repartition`, audited (:data:`AUDIT_PROPOSAL`); nothing is saved.

    ``gridpulse repartition``, the planner page's run and ``POST /api/v1/plans/proposals`` are
    this function: the same options and ``seed`` give the same proposal (with ``time_limit_s``
    unset, or not reached: ``result.search["stopped_by_time"]`` empty).

    Parameters
    ----------
    scope
        ``com:<community code>``, ``sub:<sub-district code>`` or ``district``.
    level
        ``"grid"`` (grids inside communities) or ``"community"`` (communities inside
        sub-districts).
    balance, band
        The balanced quantity and its band; ``None``: :data:`layers.plans.DEFAULT_BAND` per
        grid, the community band per community (both :data:`geo.planner_defaults.DEFAULTS`).
    radius_m, compactness_weight, disruption_weight, street_weight, time_limit_s, max_steps
        The engine's options (:func:`geo.partition.repartition`).
    seed
        Seeds the search (``numpy.random.default_rng(seed)``).
    locked
        Codes of current regions that must not change.
    walls
        Compound walls are unsplittable outlines (needs a ``compounds`` layer).
    inputs
        :func:`plan_inputs` of ``scope`` already read (the page's cache); ``None``: read them.

    Returns
    -------
    geo.partition.RepartitionResult
        With ``assignment`` indexed by the units' ``id`` (buildings; at community level the
        grids' ``code``) when they have one.

    Raises
    ------
    layers.permissions.PermissionDenied
        Not a planner role, or the scope reaches outside the account's (nothing computed,
        nothing audited).
    AnalysisError
        An unknown scope or locked code, a missing layer.
    """
    from layers.permissions import require
    from layers.planner import repartition

    require(account, "view.planner")
    kind, code = scope_codes(scope)
    if inputs is None:
        inputs = plan_inputs(store, scope, level=level)
    if account.scope_code:
        _check_codes(account, "view.planner",
                     [code] if code else inputs.containers["code"].astype(str).unique())
    if band is None:
        band = DEFAULTS.band(level)
    locked = sorted({str(c) for c in locked})
    if locked:
        known = set(inputs.current["code"].astype(str)) if inputs.current is not None else set()
        missing = [c for c in locked if c not in known]
        if missing:
            raise AnalysisError("planner2.cli.lock_unknown", codes=", ".join(missing))
    grid = level == "grid"
    res = repartition(
        inputs.units, inputs.containers, roads=inputs.roads, level=level,  # type: ignore[arg-type]
        balance=balance, band=(float(band[0]), float(band[1])), radius_m=radius_m,  # type: ignore[arg-type]
        group_col="compound_id" if grid else None,
        current_col="grid_code" if grid else "community_code",
        current_workers=inputs.workers if grid else None, staff=inputs.staff if grid else None,
        compactness_weight=compactness_weight, disruption_weight=disruption_weight,
        street_weight=street_weight, time_limit_s=time_limit_s, max_steps=max_steps,
        rng=np.random.default_rng(seed), report_outside=False,
        locked=locked, current_regions=inputs.current if locked else None,
        compounds=inputs.compounds if walls and grid else None,
    )
    key = "id" if grid else "code"
    if key in inputs.units.columns:  # each unit's new region by the unit's own id
        from dataclasses import replace

        res = replace(res, assignment=res.assignment.set_axis(
            pd.Index(inputs.units[key].astype(str).to_numpy(), name=key)))
    store.record(AUDIT_PROPOSAL, "grids" if grid else "communities", rows=len(res.regions),
                 actor=account.username,
                 note=_describe(scope=scope, level=level, balance=balance,
                                band=f"{band[0]:g}-{band[1]:g}", radius_m=f"{radius_m:g}",
                                weights=f"{compactness_weight:g}/{disruption_weight:g}/"
                                        f"{street_weight:g}",
                                seed=seed, locked=",".join(locked), walls=walls or None,
                                account_scope=account.scope_code))
    return res
