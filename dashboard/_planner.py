"""The 网格调整 re-partition page's pieces: scope inputs, the plan model, manual moves, maps, tables.

The engine (:func:`layers.planner.repartition`: :mod:`geo.partition` with the grid codes) redraws the grids and hands back, per community,
its state (:class:`layers.planner.ContainerPlan`: cells, graph, walking distances, the proposal as
a :class:`geo.partition.Partition`). A manual move is ``partition.flip({cell: grid})`` on that
state; :meth:`ContainerPlan.describe` and :func:`geo.partition.comparison_table` give the new
polygons, per-grid metrics, violations and comparison table (milliseconds for a community).

New grids keep the code (and name, leader, workers) of the current grid they continue, so a
saved plan changes as few codes as it changes homes; new grids take the next free sequence
numbers of their community.

Why one module of about 890 lines (issue 16): it holds the state of one page, the editable
:class:`PlanModel`, and everything the page does to it (inputs, moves, evaluation, tables,
saving through :mod:`layers.plans`, maps and the 15-minute circle) shares that model and the
page's cached scope inputs; the page script ``dashboard/views/planner.py`` stays thin because of
it. Its save path is being changed this session (issue 13) by its owner; its sections (maps,
15-minute circle, saving) can move to sibling modules once that work has landed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import streamlit as st
from numpy.typing import NDArray
from pyproj import CRS

from dashboard import _html, maps, state
from geo.crs import to_metric
from geo.partition import DEFAULTS, Partition, RepartitionResult
from geo.partition import comparison_table as engine_table
from layers import plans
from layers.i18n import t
from layers.permissions import Account
from layers.planner import ContainerPlan, grid_staff
from layers.planner_text import fmt_value
from layers.schema import SCHEMAS

#: Categorical colours of the proposed grids (ColorBrewer Set2 + Dark2, colour-blind safe-ish).
GRID_COLOURS: tuple[str, ...] = (
    "#66c2a5", "#fc8d62", "#8da0cb", "#e78ac3", "#a6d854", "#ffd92f", "#e5c494", "#1b9e77",
    "#d95f02", "#7570b3", "#e7298a", "#66a61e",
)
CURRENT_STYLE = {"color": "#3a6ea5", "weight": 1.4, "opacity": 0.9, "fillColor": "#4c78a8",
                 "fillOpacity": 0.12}
OUT_OF_BAND_STYLE = {**CURRENT_STYLE, "fillColor": "#f28e2b", "fillOpacity": 0.45}
ERROR_STYLE = {"color": "#d7191c", "weight": 4, "opacity": 1.0, "fill": False, "dashArray": "8 5"}
WARNING_STYLE = {"color": "#f2a900", "weight": 3, "opacity": 1.0, "fill": False, "dashArray": "3 4"}
COMMUNITY_STYLE = {"color": "#1d3557", "weight": 2.5, "opacity": 0.9, "fill": False}
PICK_STYLE = {"color": "#00b4d8", "weight": 4, "opacity": 1.0, "fill": False}
#: Violations listed on the page (the rest are counted).
MAX_LISTED = 60
#: Columns of the comparison table, in order.
TABLE_COLS: tuple[str, ...] = (
    "grids", "households_min", "households_median", "households_max", "within_band_share",
    "contiguous_share", "max_walk_m", "p95_walk_m", "polsby_popper_median", "moved_share",
    "workers_needed", "households_per_worker_median", "households_per_worker_max",
    "households_per_full_time_median", "households_per_full_time_max", "ab_posts_short",
)


def tp(key: str, **params: Any) -> str:
    """A label of this page in the session's language (``key`` without ``planner_page.``)."""
    return t(f"planner_page.{key}", state.lang(), **params)


def tu(key: str, **params: Any) -> str:
    """A label added by the ux work (``key`` without ``ux.``)."""
    return t(f"ux.{key}", state.lang(), **params)


def tp_fn(prefix: str) -> Callable[[str], str]:
    """A ``format_func`` translating ``prefix + value`` in the language of *this* run (AppTest
    calls format functions outside the run, where the session's language cannot be read)."""
    lang = state.lang()
    return lambda v: t(f"planner_page.{prefix}{v}", lang)


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Params:
    """What the planner chose in the sidebar."""

    balance: str = "households"
    lo: float = DEFAULTS.grid_band[0]  # the planner's one set of defaults (geo.planner_defaults)
    hi: float = DEFAULTS.grid_band[1]
    radius_m: float = DEFAULTS.radius_m
    compactness_weight: float = DEFAULTS.compactness_weight
    disruption_weight: float = DEFAULTS.disruption_weight
    street_weight: float = DEFAULTS.street_weight
    time_limit_s: float = DEFAULTS.time_limit_s
    seed: int = 0
    locked: tuple[str, ...] = ()  # current grids that must not change
    walls: bool = False  # compounds' walls are unsplittable unit outlines (needs Inputs.compounds)


@dataclass(frozen=True)
class Inputs:
    """The layers of one scope, as the engine wants them (EPSG:4326)."""

    scope: str
    containers: gpd.GeoDataFrame
    units: gpd.GeoDataFrame
    roads: gpd.GeoDataFrame | None
    current: gpd.GeoDataFrame
    live: pd.DataFrame
    workers: dict[str, float] | None
    staff: dict[str, dict[str, int]] | None = None  # full-time workers and A/B posts per grid
    compounds: gpd.GeoDataFrame | None = None  # compound walls touching the scope (None: no layer)


def scope_key(v: state.View) -> str:
    """``com:<code>``, ``sub:<code>`` or ``district``: what a run covers."""
    if v.com:
        return f"com:{v.com}"
    if v.sub:
        return f"sub:{v.sub}"
    return "district"


def scope_inputs(scope: str) -> Inputs:
    """The inputs of ``scope`` from the store (shared, cached layers)."""
    inputs = inputs_from_layers(scope, state.layer("communities"), state.layer("grids"),
                                state.layer("buildings"), state.layer("roads"))
    inputs = replace(inputs, compounds=scope_compounds(inputs.containers, state.layer("compounds")))
    try:
        return replace(inputs, staff=grid_staff(state.layer("workers")))
    except Exception:  # noqa: BLE001 - no workers layer: the staff columns stay empty
        return inputs


def scope_compounds(containers: gpd.GeoDataFrame, compounds: gpd.GeoDataFrame) -> gpd.GeoDataFrame | None:
    """The compound walls touching ``containers`` (``None`` when the store has none)."""
    if compounds is None or len(compounds) == 0 or len(containers) == 0:
        return None
    hit = np.unique(compounds.sindex.query(containers.geometry.values, predicate="intersects")[1])
    return compounds.iloc[hit] if hit.size else None


def inputs_from_layers(scope: str, communities: gpd.GeoDataFrame, grids: gpd.GeoDataFrame,
                       buildings: gpd.GeoDataFrame, roads: gpd.GeoDataFrame) -> Inputs:
    """Communities, buildings, roads, current comprehensive grids and their workers of ``scope``
    (:func:`layers.proposals.scope_layers`, the cut the CLI and the API plan on)."""
    from layers.proposals import scope_layers

    coms, comp, units, near, workers = scope_layers(scope, communities, grids, buildings, roads)
    return Inputs(scope, coms.reset_index(drop=True), units, near, comp,
                  grids[["code", "name", "kind", "community_code"]], workers)


# --------------------------------------------------------------------------- the plan model


@dataclass(frozen=True, eq=False)
class PlanModel:
    """An editable proposal: the engine's per-community state and the partition of each.

    Units are numbered across communities (``units[u] = (community index, cell)``; a unit is a
    compound, or a building outside any compound); grids too (``offsets[c] + region``). Moves
    return a new model (``history`` keeps the earlier partitions).
    """

    params: Params
    scope: str
    plans: tuple[ContainerPlan, ...]
    partitions: tuple[Partition, ...]
    buildings: gpd.GeoDataFrame  # EPSG:4326, with ``unit`` (global unit index)
    units: tuple[tuple[int, int], ...]
    unit_ids: list[str]
    cells: tuple[NDArray[np.object_], ...]  # per community, cell polygons (metric CRS)
    codes: tuple[list[str], ...]  # per community, per region: the grid code shown and saved
    names: tuple[list[str], ...]
    carry: dict[str, dict[str, Any]]  # code -> leader, workers of the current grid it continues
    current_workers: dict[str, float] | None
    timings_s: dict[str, float]
    history: tuple[tuple[Partition, ...], ...] = ()
    moves: tuple[tuple[str, str, str], ...] = ()
    locked: gpd.GeoDataFrame | None = None  # the locked grids, unchanged (EPSG:4326)
    staff: dict[str, dict[str, int]] | None = None  # full-time workers and A/B posts per grid

    @property
    def n_units(self) -> int:
        return len(self.units)

    @property
    def metric(self) -> CRS:
        return CRS.from_user_input(self.plans[0].crs)

    @property
    def offsets(self) -> list[int]:
        """Global index of each community's first grid."""
        return np.cumsum([0, *(p.k for p in self.partitions)])[:-1].tolist()

    @property
    def all_codes(self) -> list[str]:
        return [c for codes in self.codes for c in codes]

    @property
    def all_names(self) -> list[str]:
        return [n for names in self.names for n in names]

    def region(self, unit: int) -> int:
        """Global grid index of ``unit``."""
        c, cell = self.units[unit]
        return self.offsets[c] + int(self.partitions[c].assignment[cell])

    @property
    def labels(self) -> NDArray[np.int64]:
        """Global grid index of every unit."""
        return np.array([self.region(u) for u in range(self.n_units)], dtype=np.int64)


def run_plan(inputs: Inputs, params: Params) -> PlanModel:
    """Run the engine on ``inputs`` and build the editable model of its proposal."""
    t0 = time.perf_counter()
    from dashboard import _auth
    from layers.app import os_account
    from layers.proposals import proposal_job

    # the one proposal job (gridpulse repartition, POST /api/v1/plans/proposals): checked, audited
    class _Store:  # the store lock around each store call only: the engine runs unlocked
        def __getattr__(self, name: str) -> Any:
            attr = getattr(state.get_store(), name)
            return (lambda *a, **k: state.locked(attr, *a, **k)) if callable(attr) else attr

    res = proposal_job(
        _Store(), _auth.account() or os_account(), scope=inputs.scope,
        balance=params.balance, band=(params.lo, params.hi), radius_m=params.radius_m,
        compactness_weight=params.compactness_weight, disruption_weight=params.disruption_weight,
        street_weight=params.street_weight, time_limit_s=params.time_limit_s, seed=params.seed,
        locked=params.locked, walls=params.walls, inputs=inputs,
    )
    engine_s = time.perf_counter() - t0
    model = build_model(inputs, params, res)
    timings = {**res.timings_s, "engine_total": engine_s,
               "model": time.perf_counter() - t0 - engine_s}
    return replace(model, timings_s=timings)


def _continuity_codes(res: RepartitionResult, inputs: Inputs) -> tuple[list[list[str]], list[list[str]]]:
    """Per community, codes and names of the new grids: the continued grid's, else the
    community's next free sequence numbers (never a code a current grid has)."""
    live = inputs.live
    names = dict(zip(live["code"].astype(str), live["name"].astype(str), strict=True))
    used = set(live["code"].astype(str))
    top: dict[str, int] = {}
    for code in live.loc[live["kind"] == "comprehensive", "code"].astype(str):
        top[code[:12]] = max(top.get(code[:12], 0), int(code[12:]))
    codes: list[list[str]] = []
    out_names: list[list[str]] = []
    for plan in res.plans:
        rows, _ = plan.describe()
        cc, nn = [], []
        taken: set[str] = set()
        for prev in rows["previous_code"]:
            if isinstance(prev, str) and prev and prev not in taken:
                code, name = prev, names.get(prev, prev)
            else:
                seq = top.get(plan.code, 0) + 1
                while f"{plan.code}{seq:03d}" in used | taken:
                    seq += 1
                top[plan.code] = seq
                code, name = f"{plan.code}{seq:03d}", f"{plan.name}第{seq}网格"
            taken.add(code)
            cc.append(code)
            nn.append(name)
        codes.append(cc)
        out_names.append(nn)
    return codes, out_names


def build_model(inputs: Inputs, params: Params, res: RepartitionResult) -> PlanModel:
    """The editable model of an engine result (the engine's :class:`ContainerPlan` per community)."""
    units: list[tuple[int, int]] = []
    unit_ids: list[str] = []
    rows: list[Any] = []
    unit_of_row: list[int] = []
    has_compound = "compound_id" in inputs.units.columns
    for c, plan in enumerate(res.plans):
        for cell, labels in enumerate(plan.unit_rows):
            u = len(units)
            units.append((c, cell))
            first = inputs.units.loc[labels[0]]
            comp = first["compound_id"] if has_compound else None
            unit_ids.append(str(comp) if isinstance(comp, str) and comp else str(first.get("id", labels[0])))
            rows.extend(labels)
            unit_of_row.extend([u] * len(labels))
    bld = inputs.units.loc[rows]
    buildings = gpd.GeoDataFrame({
        "id": bld["id"].astype(str).to_numpy() if "id" in bld.columns else bld.index.astype(str),
        "compound_id": [unit_ids[u] for u in unit_of_row],
        "unit": np.asarray(unit_of_row, dtype=np.int64),
        "households": pd.to_numeric(bld["households"]).astype(int).to_numpy(),
        "population": pd.to_numeric(bld["population"]).astype(int).to_numpy(),
    }, geometry=bld.geometry.to_crs(4326).to_numpy(), crs=4326)
    codes, names = _continuity_codes(res, inputs)
    live = inputs.current.set_index(inputs.current["code"].astype(str))
    carry = {c: {"leader": live.at[c, "leader"] if "leader" in live.columns else None,
                 "workers": live.at[c, "workers"] if "workers" in live.columns else None}
             for cc in codes for c in cc if c in live.index}
    return PlanModel(
        params=params, scope=inputs.scope, plans=tuple(res.plans),
        partitions=tuple(p.partition for p in res.plans), buildings=buildings, units=tuple(units),
        unit_ids=unit_ids, cells=tuple(p.cell_polygons() for p in res.plans), codes=tuple(codes),
        names=tuple(names), carry=carry, timings_s=dict(res.timings_s),
        current_workers=None if inputs.workers is None else  # the locked grids are not compared
        {k: v for k, v in inputs.workers.items() if k not in set(params.locked)},
        locked=_locked_rows(res, params), staff=inputs.staff,
    )


def _locked_rows(res: RepartitionResult, params: Params) -> gpd.GeoDataFrame | None:
    """The engine's rows of the locked grids, completed for the page's tables (after the
    proposed grids, so global grid indices stay those of the plans)."""
    reg = res.regions
    if "locked" not in reg.columns or not reg["locked"].any():
        return None
    lk = reg[reg["locked"].astype(bool)].copy()
    metric = to_metric(lk)
    area, per = metric.geometry.area.to_numpy(), metric.geometry.length.to_numpy()
    lk["polsby_popper"] = np.where(per > 0, 4 * np.pi * area / np.maximum(per, 1e-9) ** 2, 0.0)
    w = lk["households" if params.balance == "households" else "population"]
    lk["within_band"] = ((w >= params.lo) & (w <= params.hi)).to_numpy()
    lk["violations"] = [[] for _ in range(len(lk))]
    for col in ("max_walk_m", "p95_walk_m"):  # not measured: the engine did not touch them
        if col not in lk.columns:
            lk[col] = np.nan
    return lk.to_crs(4326) if lk.crs is not None and lk.crs.to_epsg() != 4326 else lk


# --------------------------------------------------------------------------- moves


def neighbours(model: PlanModel, unit: int) -> list[int]:
    """Grids (global indices) of the same community that touch ``unit``'s cell."""
    c, cell = model.units[unit]
    part = model.partitions[c]
    g = part.graph
    own = int(part.assignment[cell])
    nb = {int(part.assignment[x]) for x in g.indices[g.indptr[cell]:g.indptr[cell + 1]]}
    return sorted(model.offsets[c] + r for r in nb if r != own)


def can_move(model: PlanModel, unit: int) -> bool:
    """A unit may leave its grid unless it is the grid's last unit (fillers do not count)."""
    c, cell = model.units[unit]
    part = model.partitions[c]
    mates = np.flatnonzero(part.assignment[: model.plans[c].n_units] == part.assignment[cell])
    return mates.size > 1


def move(model: PlanModel, unit: int, region: int) -> PlanModel:
    """``unit`` (a compound or building) moved to grid ``region`` (global index): a new model."""
    if region not in neighbours(model, unit):
        raise ValueError(f"grid {region} does not border unit {unit} in its community")
    if not can_move(model, unit):
        raise ValueError(f"unit {unit} is the last one of its grid")
    c, cell = model.units[unit]
    src = model.region(unit)
    parts = list(model.partitions)
    parts[c] = parts[c].flip({cell: region - model.offsets[c]})
    return replace(model, partitions=tuple(parts), history=(*model.history, model.partitions),
                   moves=(*model.moves, (model.unit_ids[unit], model.all_codes[src],
                                         model.all_codes[region])))


def undo(model: PlanModel) -> PlanModel:
    """The model before the last move."""
    if not model.history:
        return model
    return replace(model, partitions=model.history[-1], history=model.history[:-1],
                   moves=model.moves[:-1])


def unit_at(model: PlanModel, lon: float, lat: float, *, snap_m: float = 25.0) -> int | None:
    """The unit clicked at WGS-84 ``(lon, lat)``: the nearest building within ``snap_m``, else the
    unit whose cell holds the point."""
    pt = gpd.GeoSeries([shapely.Point(lon, lat)], crs=4326).to_crs(model.metric).iloc[0]
    d = model.buildings.to_crs(model.metric).geometry.distance(pt).to_numpy()
    if d.size and d.min() <= snap_m:
        return int(model.buildings["unit"].iloc[int(np.argmin(d))])
    for u, (c, cell) in enumerate(model.units):
        if model.cells[c][cell].contains(pt):
            return u
    return None


def unit_households(model: PlanModel) -> NDArray[np.int64]:
    """Households of every unit."""
    b = model.buildings
    return np.bincount(b["unit"].to_numpy(), weights=b["households"].to_numpy(),
                       minlength=model.n_units).astype(np.int64)


def movable_units(model: PlanModel) -> list[int]:
    """Units with homes that may move to a neighbouring grid."""
    hh = unit_households(model)
    return [u for u in range(model.n_units) if hh[u] > 0 and can_move(model, u) and neighbours(model, u)]


def unit_cell(model: PlanModel, unit: int) -> shapely.Geometry:
    """The cell of ``unit`` (metric CRS)."""
    c, cell = model.units[unit]
    return model.cells[c][cell]


# --------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class Evaluation:
    """Metrics of a model's partitions: grids (EPSG:4326), violations, the comparison table."""

    regions: gpd.GeoDataFrame
    violations: list[dict[str, Any]]
    summary: pd.DataFrame
    seconds: float = 0.0


def evaluate(model: PlanModel) -> Evaluation:
    """Per-grid metrics, violations and the comparison table of the model's partitions
    (the engine's :meth:`ContainerPlan.describe` and :func:`comparison_table`)."""
    t0 = time.perf_counter()
    frames = []
    viol: list[dict[str, Any]] = []
    for c, (plan, part) in enumerate(zip(model.plans, model.partitions, strict=True)):
        rows, v = plan.describe(part)
        rename = dict(zip(plan.region_codes(part.k), model.codes[c], strict=True))
        rows["code"] = model.codes[c]
        rows["name"] = model.names[c]
        rows["leader"] = [model.carry.get(code, {}).get("leader") for code in model.codes[c]]
        kept = [model.carry.get(code, {}).get("workers") for code in model.codes[c]]
        rows["workers"] = [w if w is not None and not pd.isna(w) else e
                           for w, e in zip(kept, rows["workers"], strict=True)]
        viol.extend({**x, "grid": rename.get(x.get("grid"), x.get("grid"))} for x in v)
        frames.append(rows.to_crs(4326))
    if model.locked is not None:
        frames.append(model.locked.rename_geometry("geometry")
                      if model.locked.geometry.name != "geometry" else model.locked)
    regions = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=4326)
    summary = engine_table(list(model.plans), list(model.partitions),
                           current_workers=model.current_workers, staff=model.staff)
    return Evaluation(regions, viol, summary, time.perf_counter() - t0)


# --------------------------------------------------------------------------- text and tables


def violation_rows(viol: Sequence[Mapping[str, Any]], names: Mapping[str, str], lang: str) -> pd.DataFrame:
    """The violations as a table: severity, grid, what and why, how to fix."""
    rows = []
    for v in sorted(viol, key=lambda r: (r.get("severity") != "error", str(r.get("grid")))):
        fix_key = f"planner.violation.{v['code']}.fix"
        fix = t(fix_key, lang)
        if fix == fix_key:  # the rules layers.plans adds (buildings in no grid...)
            fix_key = f"versions.violation.{v['code']}.fix"
            fix = t(fix_key, lang)
        rows.append({
            t("planner_page.viol.severity", lang): t(f"common.{v.get('severity', 'warning')}", lang),
            t("planner_page.viol.grid", lang): names.get(str(v.get("grid")), str(v.get("grid") or "—")),
            t("planner_page.viol.problem", lang): plans.violation_text(v, lang),
            t("planner_page.viol.fix", lang): "" if fix == fix_key else fix,
        })
    cols = [t(f"planner_page.viol.{c}", lang) for c in ("severity", "grid", "problem", "fix")]
    return pd.DataFrame(rows, columns=cols).set_index(cols[0])


def comparison_table(summary: pd.DataFrame, lang: str) -> pd.DataFrame:
    """Rows = metrics, columns = current / proposed, formatted for reading."""
    plans = [p for p in ("current", "proposed") if p in summary.index]
    cols = [c for c in TABLE_COLS if c in summary.columns]
    data = {t(f"planner.table.{p}", lang): [fmt_value(c, summary.loc[p, c]) for c in cols]
            for p in plans}
    index = pd.Index([t(f"planner.table.{c}", lang) for c in cols],
                     name=t("planner.table.plan", lang))
    return pd.DataFrame(data, index=index)


def grid_rows(regions: gpd.GeoDataFrame, lang: str) -> pd.DataFrame:
    """The proposed grids, one row each, for the table under the maps."""
    cols = {"code": "grid_code", "name": "grid_name", "households": "households",
            "population": "population", "n_units": "units", "max_walk_m": "max_walk_m",
            "p95_walk_m": "p95_walk_m", "polsby_popper": "polsby_popper"}
    df = pd.DataFrame({t(f"planner_page.grid.{v}", lang): regions[k].to_numpy() for k, v in cols.items()})
    ok, bad = "✓", "✗"
    df[t("planner_page.grid.within_band", lang)] = np.where(regions["within_band"], ok, bad)
    df[t("planner_page.grid.polsby_popper", lang)] = regions["polsby_popper"].round(3).to_numpy()
    df[t("planner_page.grid.violations", lang)] = [
        "、".join(t(f"planner_page.code.{c}", lang) for c in v) if lang == "zh"
        else ", ".join(t(f"planner_page.code.{c}", lang) for c in v) for v in regions["violations"]]
    return df


# --------------------------------------------------------------------------- saving


def plan_layer(regions: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The proposed grids with the ``grids`` schema's columns only (what is saved and exported)."""
    cols = [c for c in SCHEMAS["grids"].columns if c in regions.columns]
    out = regions[cols].copy()
    out["workers"] = pd.to_numeric(out["workers"], errors="coerce").round().astype("Int64")
    return gpd.GeoDataFrame(out, geometry=regions.geometry.to_numpy(), crs=4326)


def full_layer(live: gpd.GeoDataFrame, plan: gpd.GeoDataFrame, communities: Sequence[str]) -> gpd.GeoDataFrame:
    """The whole ``grids`` layer with the plan in place of the communities' comprehensive grids."""
    drop = (live["kind"] == "comprehensive") & live["community_code"].isin(list(communities))
    keep = live.loc[~drop, [*SCHEMAS["grids"].columns, live.geometry.name]]
    keep = keep.rename_geometry("geometry") if keep.geometry.name != "geometry" else keep
    both = pd.concat([keep, plan.rename_geometry("geometry") if plan.geometry.name != "geometry" else plan],
                     ignore_index=True)
    return gpd.GeoDataFrame(both, geometry="geometry", crs=4326)


#: A plan that breaks a hard rule was saved without confirmation (raised by :mod:`layers.plans`).
OpenViolationsError = plans.UnconfirmedViolationsError


def open_errors(ev: Evaluation) -> list[dict[str, Any]]:
    """The violations of hard rules (severity ``error``) the engine reports for the proposal."""
    return plans.open_errors(ev.violations)


def violations_note(ev: Evaluation, lang: str = "zh") -> str:
    """The engine's hard-rule violations in one line (empty when none)."""
    errors = open_errors(ev)
    if not errors:
        return ""
    by_hand = t("planner.save.by_hand", lang)
    counts = pd.Series([t(f"planner_page.code.{v['code']}", lang)
                        + (f"（{by_hand}）" if v.get("reason") == "manual_move" else "")
                        for v in errors]).value_counts()
    grids = sorted({str(v.get("grid")) for v in errors if v.get("grid") is not None})
    return t("planner.save.open_violations", lang, n=len(errors),
             codes=", ".join(f"{k}×{n}" for k, n in counts.items()),
             grids=", ".join(grids[:10]) + ("…" if len(grids) > 10 else ""))


def whole_plan(model: PlanModel, ev: Evaluation) -> plans.Plan:
    """The whole plan the proposal makes: every grid (the proposal in place of the scope's
    comprehensive grids), every building's grid code, every worker's grid (kept)."""
    store = state.get_store()
    grids = full_layer(state.layer("grids"), plan_layer(ev.regions), [p.code for p in model.plans])
    codes = model.all_codes
    labels = model.labels
    buildings = dict(zip(model.buildings["id"].astype(str),
                         [codes[labels[u]] for u in model.buildings["unit"]], strict=True))
    return state.locked(plans.make_plan, store, grids, buildings=buildings)


def plan_check(model: PlanModel, ev: Evaluation) -> list[dict[str, Any]]:
    """The violations :mod:`layers.plans` finds in the whole plan (what saving checks), with
    the engine's reasons (manual move...) merged in."""
    p = model.params
    found = state.locked(plans.check_plan, state.get_store(), whole_plan(model, ev),
                         band=(p.lo, p.hi), balance=p.balance)
    return plans.merge_reasons(found, ev.violations)


def save_plan(model: PlanModel, ev: Evaluation, *, actor: Account, note: str,
              confirm_violations: bool = False, effective: Any = None) -> int:
    """Save the whole plan as a plan version (:func:`layers.plans.save_plan`: permission,
    hard rules, one transaction, audit). The first save also records the boundaries before it
    as a baseline version. Returns the version written.

    A plan that breaks a hard rule is refused with :class:`OpenViolationsError` unless
    ``confirm_violations``; the version records the open violations with the engine's reasons."""
    store = state.get_store()
    p = model.params
    plan = whole_plan(model, ev)

    def save() -> int:
        plans.check_permission(actor, "plan.save")
        plans.ensure_baseline(store, actor, before=effective,
                              note=t("planner_page.save.baseline_note", "zh"))
        return plans.save_plan(store, actor, plan, effective=effective, note=note,
                               confirm=confirm_violations, band=(p.lo, p.hi), balance=p.balance,
                               reasons=ev.violations)

    return int(state.locked(save))


def versions() -> pd.DataFrame:
    """Saved plan versions, newest first (:func:`layers.plans.plan_versions`)."""
    v = state.locked(plans.plan_versions, state.get_store())
    return v.sort_values("version", ascending=False).reset_index(drop=True)


def rollback(version: int, *, actor: Account, note: str, confirm: bool = False,
             effective: Any = None) -> int:
    """Save the plan of ``version`` again as a new version (checked and audited as ``actor``)."""
    return int(state.locked(plans.rollback_plan, state.get_store(), actor, int(version),
                            note=note, confirm=confirm, effective=effective))


def history_rows(vers: pd.DataFrame, lang: str) -> pd.DataFrame:
    """The plan versions as the history table: version, effective date, status, who, why,
    source, the violations recorded with it."""
    from layers.privacy import mask_name

    today = plans.today_local()

    def status(r: pd.Series) -> str:
        if r["in_force"]:
            key = "in_force"
        elif pd.Timestamp(r["effective"]) > today:
            key = "future"
        elif r["live"]:
            key = "live"
        else:
            key = "past"
        return t(f"versions.status.{key}", lang)

    rows = pd.DataFrame({
        "version": [f"v{x}" for x in vers["version"]],
        "effective": pd.to_datetime(vers["effective"]).dt.strftime("%Y-%m-%d"),
        "status": [status(r) for _, r in vers.iterrows()],
        "saved": pd.to_datetime(vers["saved"]).dt.strftime("%Y-%m-%d %H:%M"),
        "actor": vers["actor"].map(mask_name, na_action="ignore"),
        "note": vers["note"].fillna(""),
        "source": [f"v{int(x)}" if pd.notna(x) else "" for x in vers["source_version"]],
        "violations": [plans.violations_summary(v, lang) or "—" for v in vers["violations"]],
        "grids": vers["grids"].astype(int),
    })
    rows.columns = [t(f"versions.col.{c}", lang) for c in rows.columns]
    return rows


def activate_due(actor: Account) -> int | None:
    """Write the version in force today into the live layers when a scheduled one came due."""
    from layers.permissions import can

    if not can(actor, "plan.save"):
        return None
    return state.locked(plans.activate_due, state.get_store(), actor)


def export_bytes(model: PlanModel, ev: Evaluation, suffix: str) -> bytes:
    """The proposed grids as a file (``.gpkg``, ``.geojson`` or zipped Shapefile ``.zip``)."""
    from dashboard._data import export_bytes as write

    return write(plan_layer(ev.regions), "grids", suffix)


# --------------------------------------------------------------------------- maps


def _bounds(gdf: gpd.GeoDataFrame) -> NDArray[np.float64]:
    b = gdf.total_bounds
    pad = max(b[2] - b[0], b[3] - b[1]) * 0.04
    return np.array([b[0] - pad, b[1] - pad, b[2] + pad, b[3] + pad])


def _points(gdf: gpd.GeoDataFrame, cfg: maps.MapConfig) -> gpd.GeoDataFrame:
    """Points in the map's datum, rounded."""
    x, y = maps.to_display_lonlat(gdf.geometry.x.to_numpy(), gdf.geometry.y.to_numpy(), cfg)
    return gdf.set_geometry(gpd.points_from_xy(np.round(x, 6), np.round(y, 6)), crs=4326)


def point_layer(gdf: gpd.GeoDataFrame, cfg: maps.MapConfig, *, name: str, css: str,
                colour_col: str | None = None, colour: str = "#333", radius: int = 5,
                tooltip: Sequence[tuple[str, str]] = ()) -> folium.GeoJson:
    """Points drawn as circle markers (``path.gp-<css>`` in the page) with a tooltip."""
    props = [c for c, _ in tooltip] + ([colour_col] if colour_col else [])
    data = maps.feature_collection(_points(gdf, cfg), properties=list(dict.fromkeys(props)))

    def style(f: dict[str, Any]) -> dict[str, Any]:
        c = f["properties"].get(colour_col) if colour_col else colour
        return {"fill": True, "fillColor": c, "color": "#222", "weight": 1, "fillOpacity": 0.95}

    layer = folium.GeoJson(data, name=name, marker=folium.CircleMarker(radius=radius, class_name=f"gp-{css}"),
                           style_function=style)
    return layer.add_child(_html.FieldsTooltip(tooltip)) if tooltip else layer


def current_map(inputs: Inputs, params: Params, cfg: maps.MapConfig) -> folium.Map:
    """The current comprehensive grids of the scope; grids outside the band filled orange."""
    m = maps.base_map(cfg, bounds=_bounds(inputs.containers))
    grids = maps.prepare_polygons(inputs.current[["code", "name", "households", "population", "geometry"]],
                                  datum=cfg.datum)
    w = pd.to_numeric(inputs.current[params.balance], errors="coerce").to_numpy(dtype=float)
    out_band = ((w < params.lo) | (w > params.hi)).astype(int)
    maps.PolygonLayer(grids, name=tp("map.current"), styles=[CURRENT_STYLE, OUT_OF_BAND_STYLE],
                      style_index=out_band, css_name="current",
                      tooltip=[("name", tp("grid.grid_name")), ("code", tp("grid.grid_code")),
                               ("households", tp("grid.households")),
                               ("population", tp("grid.population"))]).add_to(m)
    coms = maps.prepare_polygons(inputs.containers[["code", "name", "geometry"]], datum=cfg.datum)
    maps.PolygonLayer(coms, name=tp("map.communities"), styles=[COMMUNITY_STYLE], interactive=False,
                      css_name="community").add_to(m)
    maps.Legend([(tp("map.current"), [
        (CURRENT_STYLE["fillColor"], tp("map.in_band"), "fill"),
        (OUT_OF_BAND_STYLE["fillColor"], tp("map.out_of_band"), "fill"),
        (COMMUNITY_STYLE["color"], tp("map.communities"), "line"),
    ])]).add_to(m)
    return maps.finish(m, cfg)


def current_rows(inputs: Inputs, params: Params, lang: str) -> pd.DataFrame:
    """The current comprehensive grids of the scope with their figures, before any plan is run:
    households, population, area (km², in a metric CRS) and whether the balanced quantity is in
    the band, the largest first."""
    cur = inputs.current
    w = pd.to_numeric(cur[params.balance], errors="coerce").to_numpy(dtype=float)
    area = to_metric(cur[["geometry"]]).area.to_numpy() / 1e6 if len(cur) else np.zeros(0)
    df = pd.DataFrame({
        t("planner_page.grid.grid_code", lang): cur["code"].astype(str).to_numpy(),
        t("planner_page.grid.grid_name", lang): cur["name"].astype(str).to_numpy(),
        t("planner_page.grid.households", lang): pd.to_numeric(cur["households"], errors="coerce").to_numpy(),
        t("planner_page.grid.population", lang): pd.to_numeric(cur["population"], errors="coerce").to_numpy(),
        t("ux.planner.area_km2", lang): np.round(area, 3),
        t("planner_page.grid.within_band", lang): np.where((w >= params.lo) & (w <= params.hi), "✓", "✗"),
    })
    return df.sort_values(df.columns[2], ascending=False, kind="stable").reset_index(drop=True)


def proposed_map(model: PlanModel, ev: Evaluation, cfg: maps.MapConfig, *,
                 picked: int | None = None) -> folium.Map:
    """The proposed grids (one colour each), their buildings, violations outlined, the pick."""
    m = maps.base_map(cfg, bounds=_bounds(ev.regions))
    regions = ev.regions.copy()
    k = len(regions)
    regions["colour"] = [GRID_COLOURS[r % len(GRID_COLOURS)] for r in range(k)]
    shown = maps.prepare_polygons(regions[["code", "name", "households", "population", "polsby_popper",
                                           "geometry"]], datum=cfg.datum)
    styles = [{"color": "#37474f", "weight": 1.4, "opacity": 0.95, "fillColor": c, "fillOpacity": 0.35}
              for c in GRID_COLOURS]
    maps.PolygonLayer(shown, name=tp("map.proposed"), styles=styles,
                      style_index=np.arange(k) % len(GRID_COLOURS), css_name="proposed",
                      tooltip=[("name", tp("grid.grid_name")), ("code", tp("grid.grid_code")),
                               ("households", tp("grid.households")),
                               ("population", tp("grid.population")),
                               ("polsby_popper", tp("grid.polsby_popper"))]).add_to(m)
    sev: dict[str, int] = {}
    for v in ev.violations:
        if v.get("grid") is not None:
            sev[v["grid"]] = min(sev.get(v["grid"], 1), 0 if v.get("severity") == "error" else 1)
    if sev:
        bad = shown[shown["code"].isin(sev)]
        maps.PolygonLayer(bad, name=tp("map.violations"), styles=[ERROR_STYLE, WARNING_STYLE],
                          style_index=bad["code"].map(sev).to_numpy(), interactive=False,
                          css_name="viol").add_to(m)
    b = model.buildings.copy()
    lab = model.labels[b["unit"].to_numpy()]
    b["colour"] = [GRID_COLOURS[r % len(GRID_COLOURS)] for r in lab]
    names = model.all_names
    b["grid"] = [names[r] for r in lab]
    point_layer(b, cfg, name=tp("map.buildings"), css="bld", colour_col="colour", radius=5,
                tooltip=[("id", tp("pick.building")), ("compound_id", tp("pick.compound")),
                         ("households", tp("grid.households")), ("grid", tp("grid.grid_name"))]).add_to(m)
    if picked is not None:
        cell = gpd.GeoDataFrame(geometry=[unit_cell(model, picked)], crs=model.metric).to_crs(4326)
        maps.PolygonLayer(maps.prepare_polygons(cell, tolerance_m=0, datum=cfg.datum),
                          name=tp("map.picked"), styles=[PICK_STYLE], interactive=False,
                          css_name="pick").add_to(m)
    maps.Legend([(tp("map.proposed"), [
        (ERROR_STYLE["color"], tp("map.error"), "line"),
        (WARNING_STYLE["color"], tp("map.warning"), "line"),
        (PICK_STYLE["color"], tp("map.picked"), "line"),
    ])]).add_to(m)
    return maps.finish(m, cfg)


# --------------------------------------------------------------------------- 15-minute circle


@st.cache_resource(max_entries=4, show_spinner=False)
def _walk_network(url: str, version: str, scope: str) -> Any:
    """The scope's walking network, built once per store version (every kind and speed uses it)."""
    from geo.crs import local_metric_crs
    from geo.network import build_walk_network

    inputs = scope_inputs(scope)
    roads = inputs.roads if inputs.roads is not None else state.layer("roads")
    # the metric CRS accessibility() picks for these layers
    return build_walk_network(roads.to_crs(local_metric_crs(inputs.units if len(inputs.units) else roads)))


@st.cache_resource(max_entries=16, show_spinner=False)
def _access(url: str, version: str, scope: str, kind: str, speed_kmh: float) -> Any:
    from geo.accessibility import accessibility

    inputs = scope_inputs(scope)
    facilities = state.layer("facilities")
    roads = inputs.roads if inputs.roads is not None else state.layer("roads")
    gates = state.layer("gates", ["id", "compound_id", "kind"])
    compounds = state.layer("compounds", ["id"])
    t0 = time.perf_counter()
    net = _walk_network(url, version, scope)
    res = accessibility(roads, inputs.units, facilities, kinds=[kind], minutes=(5, 10, 15),
                        speed_kmh=speed_kmh, n_sites=3, network=net,
                        gates=gates if len(gates) else None,
                        compounds=compounds if len(compounds) else None)
    return res, time.perf_counter() - t0


def access(scope: str, kind: str, speed_kmh: float) -> tuple[Any, float]:
    """Isochrones, coverage, gaps and suggested sites of ``kind`` for the scope's residents."""
    return _access(state.settings().store_url, state.data_version(), scope, kind, float(speed_kmh))


ISO_COLOURS = {5: "#1a9850", 10: "#91cf60", 15: "#d9ef8b"}


def useful_sites(sites: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Suggested sites that bring at least one more resident within reach."""
    return sites[pd.to_numeric(sites["added_covered"]) > 0] if len(sites) else sites


def coverage_rows(cov: pd.DataFrame, lang: str) -> pd.DataFrame:
    """The coverage table in ``lang``, with ✓/✗ against the 85% and 99% targets."""
    yes, no = "✓", "✗"
    return pd.DataFrame({
        t("planner.access.minutes", lang): cov["minutes"].astype(int).to_numpy(),
        t("planner_page.access.distance", lang): [f"{x:,.0f}" for x in cov["distance_m"]],
        t("planner.access.residents", lang): [f"{x:,}" for x in cov["residents"]],
        t("planner.access.covered", lang): [f"{x:,}" for x in cov["covered"]],
        t("planner.access.share", lang): [f"{100 * s:.1f}%" for s in cov["share"]],
        t("planner.access.meets_85", lang): [yes if x else no for x in cov["meets_85"]],
        t("planner.access.meets_99", lang): [yes if x else no for x in cov["meets_99"]],
        **({} if "elderly_share" not in cov.columns else {
            t("planner2.access.elderly_covered", lang, kmh=f"{float(cov['elderly_kmh'].iloc[0]):g}"):
                [f"{x:,}" for x in cov["elderly_covered"]],
            t("planner2.access.elderly_share", lang, kmh=f"{float(cov['elderly_kmh'].iloc[0]):g}"):
                [f"{100 * s:.1f}%" for s in cov["elderly_share"]]}),
    })


def access_map(res: Any, inputs: Inputs, kind: str, cfg: maps.MapConfig) -> folium.Map:
    """Isochrones (5/10/15 min), facilities, the gap homes and the suggested sites."""
    m = maps.base_map(cfg, bounds=_bounds(inputs.containers))
    iso = res.isochrones[~res.isochrones.geometry.is_empty]
    legend: list[tuple[str, str, str]] = []
    for minutes in sorted(iso["minutes"].unique(), reverse=True):
        part = iso[iso["minutes"] == minutes]
        merged = gpd.GeoDataFrame(geometry=[shapely.union_all(part.geometry.to_numpy())], crs=4326)
        colour = ISO_COLOURS.get(int(minutes), "#cccccc")
        shown = maps.prepare_polygons(merged, tolerance_m=3.0, datum=cfg.datum)
        maps.PolygonLayer(shown, name=f"{minutes:g}", styles=[{"color": colour, "weight": 1,
                          "fillColor": colour, "fillOpacity": 0.45}], interactive=False,
                          css_name=f"iso{int(minutes)}").add_to(m)
        legend.append((colour, tp("access.iso", minutes=f"{minutes:g}"), "fill"))
    coms = maps.prepare_polygons(inputs.containers[["code", "name", "geometry"]], datum=cfg.datum)
    maps.PolygonLayer(coms, name=tp("map.communities"), styles=[COMMUNITY_STYLE], interactive=False,
                      css_name="community").add_to(m)
    fac = state.layer("facilities")
    fac = fac[fac["kind"] == kind]
    if len(fac):
        point_layer(fac, cfg, name=tp("access.facilities"), css="fac", colour="#1f78b4", radius=7,
                    tooltip=[("name", tp("access.facility"))]).add_to(m)
        legend.append(("#1f78b4", tp("access.facilities"), "fill"))
    ex = getattr(res, "exits", None)
    if ex is not None and len(ex) and (ex["via"] == "gate").any():
        gates = state.layer("gates", ["id", "compound_id", "kind", "name"])
        gates = gates[gates["compound_id"].isin(ex.loc[ex["via"] == "gate", "compound"])]
        point_layer(gates, cfg, name=t("gates.map.gates", state.lang()), css="gate", colour="#ff7f00",
                    radius=3, tooltip=[("name", t("gates.map.gate_name", state.lang()))]).add_to(m)
        legend.append(("#ff7f00", t("gates.map.gates", state.lang()), "fill"))
    gaps = res.gaps
    if len(gaps):
        g = gaps.assign(nearest=[("—" if not np.isfinite(x) else f"{x:,.0f}") for x in gaps["nearest_m"]])
        point_layer(g, cfg, name=tp("access.gaps"), css="gap", colour="#d7191c", radius=4,
                    tooltip=[("population", tp("grid.population")),
                             ("nearest", tp("access.nearest_m"))]).add_to(m)
        legend.append(("#d7191c", tp("access.gaps"), "fill"))
    sites = useful_sites(res.sites)
    if len(sites):
        point_layer(sites, cfg, name=tp("access.sites"), css="site", colour="#6a3d9a", radius=9,
                    tooltip=[("rank", tp("access.rank")), ("added_covered", tp("access.added"))]).add_to(m)
        legend.append(("#6a3d9a", tp("access.sites"), "fill"))
    maps.Legend([(tp("access.legend"), legend)]).add_to(m)
    return maps.finish(m, cfg)
