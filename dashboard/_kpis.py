"""KPIs for the grid explorer and the wall display, over the engines.

Closure rates come from :func:`geo.kpis.kpis` (结案率 = closed / accepted, 按期结案率 =
closed on time / due), "on patrol now" from :func:`geo.patrol.on_patrol_now`, overdue from
:func:`layers.workflow.overdue`, and the patrol figures of a day from :mod:`geo.patrol`
(:func:`patrol_day`: GPS fixes cleaned once, then ``time_in_grid`` per worker and
``post_coverage`` per grid). Personal fields never reach a screen unmasked: :func:`grid_table`
masks the grid leader with :func:`layers.privacy.mask_personal`.

The functions above the "store" section are pure (frames in, frames or numbers out) and take
``now`` or ``day`` explicitly; the functions below it read the store and are cached, shared by
the explorer (patrol-hours choropleth, grid card) and the wall display (4-hour compliance).

Examples
--------
>>> import pandas as pd
>>> inc = pd.DataFrame({
...     "requested_datetime": pd.to_datetime(["2024-05-20 09:00", "2024-05-02 10:00"]),
...     "expected_datetime": pd.to_datetime(["2024-05-21 09:00", "2024-05-03 10:00"]),
...     "closed_datetime": pd.to_datetime([None, "2024-05-03 09:00"]),
...     "stage": ["handling", "closed"], "whistle": ["work", "none"]})
>>> k = wall_kpis(inc, None, now=pd.Timestamp("2024-05-20 12:00"))
>>> k["today"], k["month"], k["open"], k["overdue"], k["closure_rate"], k["on_time_rate"]
(1, 2, 1, 0, 0.5, 1.0)
>>> "compliance" in k  # only with a day of patrol figures (``per_worker=``)
False
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import streamlit as st

from dashboard import state
from layers.analysis import KPI_WINDOW_DAYS
from layers.privacy import mask_personal

#: A worker with a fix this recent is "on patrol now".
ON_PATROL_WITHIN_MIN = 10
#: Fixes this close to a day's edges are read too, so that intervals across midnight count.
DAY_MARGIN = pd.Timedelta(minutes=10)
#: The daily rule (4小时网格工作制): hours inside the own grid.
MIN_HOURS = 4.0
#: The only role held to the daily rule (part-time workers and grid leaders are not).
RULE_ROLE = "full_time"


def month_start(now: pd.Timestamp) -> pd.Timestamp:
    """Midnight on the first day of ``now``'s month."""
    return now.normalize().replace(day=1)


def _in(s: pd.Series, lo: pd.Timestamp, hi: pd.Timestamp) -> pd.Series:
    t = pd.to_datetime(s)
    return ((t >= lo) & (t <= hi)).fillna(False).astype(bool)


def wall_kpis(incidents: pd.DataFrame, fixes: pd.DataFrame | None, *, now: pd.Timestamp,
              per_worker: pd.DataFrame | None = None) -> dict[str, Any]:
    """The wall's headline numbers.

    Returns ``today`` and ``month`` (cases received), the case KPIs ``open`` (在办), ``overdue``
    (超期), ``closure_rate`` (结案率) and ``on_time_rate`` (按期结案率) of the cases received in the
    last ``kpi_days`` days (:func:`layers.analysis.case_kpis` over
    :func:`layers.analysis.kpi_window`, the case board's default window, so both show the same
    numbers under the same labels; rates ``nan`` without any case), and ``on_patrol``
    (workers with a GPS fix in the last :data:`ON_PATROL_WITHIN_MIN` minutes). Given
    ``per_worker`` (a day of :func:`patrol_day`), also ``compliance``: the
    :func:`compliance_rate` of that day.
    """
    from layers.analysis import case_kpis, kpi_window

    today = _in(incidents["requested_datetime"], now.normalize(), now)
    month = _in(incidents["requested_datetime"], month_start(now), now)
    since, until = kpi_window(now)
    k = case_kpis(incidents, now=now, since=since, until=until)
    nan = float("nan")
    out = {
        "today": int(today.sum()),
        "month": int(month.sum()),
        "open": int(k.get("open", 0)),
        "overdue": int(k.get("overdue_open", 0)),
        "closure_rate": k.get("closure_rate", nan),
        "on_time_rate": k.get("on_time_rate", nan),
        "kpi_days": KPI_WINDOW_DAYS,
        "on_patrol": on_patrol_now(fixes, now=now),
    }
    if per_worker is not None:
        out["compliance"] = compliance_rate(per_worker)
    return out


def on_patrol_now(fixes: pd.DataFrame | None, *, now: pd.Timestamp,
                  within_min: int = ON_PATROL_WITHIN_MIN) -> int:
    """Number of workers with a GPS fix in the last ``within_min`` minutes before ``now``."""
    if fixes is None or len(fixes) == 0:
        return 0
    from geo.patrol import on_patrol_now as engine

    return int(len(engine(fixes, now=now, within_min=within_min)))


# --------------------------------------------------------------------------- patrol


@dataclass(frozen=True)
class PatrolDay:
    """The patrol figures of one day (from :func:`patrol_day`).

    Attributes
    ----------
    day
        The local calendar day (midnight).
    per_worker
        :func:`geo.patrol.time_in_grid` (``worker_id, grid_code, post, hours_in_grid,
        meets_rule, n_fixes, ...``) plus the worker's ``role``, one row per worker.
    per_grid
        :func:`geo.patrol.post_coverage` indexed by grid code: ``workers``, ``covered_h`` (hours
        with at least one of the grid's workers inside it), ``a_h``, ``b_h``, ``h00``..``h23``.
    """

    day: pd.Timestamp
    per_worker: pd.DataFrame
    per_grid: pd.DataFrame


def day_window(day: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The fixes to read for ``day``: the day and :data:`DAY_MARGIN` either side (half-open)."""
    day = pd.Timestamp(day).normalize()
    return day - DAY_MARGIN, day + pd.Timedelta(days=1) + DAY_MARGIN


def patrol_day(fixes: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, workers: pd.DataFrame, *,
               day: pd.Timestamp, rules: Any = None) -> PatrolDay:
    """Time in grid per worker and A/B post coverage per grid on ``day`` (:mod:`geo.patrol`).

    Parameters
    ----------
    fixes
        Raw GPS fixes (``worker_id``, ``time``, optional ``accuracy_m``) of ``day`` and a few
        minutes either side (:func:`day_window`); cleaned here once with ``rules``.
    grids
        Grid polygons with ``code``.
    workers
        ``id``, ``grid_code``, ``post`` and ``role``.
    day
        The local calendar day.
    rules
        :class:`geo.patrol.CleaningRules` (the engine's defaults when ``None``).
    """
    from geo import patrol

    day = pd.Timestamp(day).normalize()
    clean = patrol.clean_fixes(fixes, rules=rules)
    per_worker = patrol.time_in_grid(clean, grids, workers, day=day, min_hours=MIN_HOURS)
    role = workers["role"] if "role" in workers.columns else pd.Series(pd.NA, index=workers.index)
    per_worker["role"] = role.to_numpy()
    per_grid = patrol.post_coverage(clean, grids, workers, day=day)
    per_grid = per_grid.set_index(pd.Index(per_grid["grid_code"].to_numpy(), name="code"))
    return PatrolDay(day, per_worker, per_grid)


def compliance_rate(per_worker: pd.DataFrame) -> float:
    """4小时达标率: share of the full-time workers on duty that day who met the daily rule.

    Only full-time workers are held to the rule (part-time workers and grid leaders are not);
    a worker is on duty when the day has at least one of their fixes (there is no rota to
    tell a day off from a missed day), which is also how the patrol page counts. ``nan``
    when no full-time worker was on duty.
    """
    from geo.patrol import compliance_summary

    if per_worker is None or per_worker.empty:
        return float("nan")
    duty = per_worker[(per_worker["role"] == RULE_ROLE) & (per_worker["n_fixes"] > 0)]
    if duty.empty:
        return float("nan")
    return float(compliance_summary(duty)["compliance_share"].iloc[0])


def day_label(day: pd.Timestamp, *, now: pd.Timestamp, lang: str) -> str:
    """``昨日`` / ``yesterday`` for the day before ``now``, else ``11月19日`` / ``11/19``.

    Examples
    --------
    >>> now = pd.Timestamp("2026-11-20 16:00")
    >>> day_label(pd.Timestamp("2026-11-19"), now=now, lang="zh"), day_label(pd.Timestamp("2026-11-17"), now=now, lang="en")
    ('昨日', '11/17')
    """
    from layers.i18n import t

    day = pd.Timestamp(day).normalize()
    if day == pd.Timestamp(now).normalize() - pd.Timedelta(days=1):
        return t("dashboard.day.yesterday", lang)
    return t("dashboard.day.date", lang, month=day.month, day=day.day)


# --------------------------------------------------------------------------- grid table


def grid_table(
    grids: gpd.GeoDataFrame,
    communities: pd.DataFrame,
    subdistricts: pd.DataFrame,
    workers: pd.DataFrame,
    incidents: pd.DataFrame,
    patrol_hours: pd.Series | None,
    *,
    now: pd.Timestamp,
) -> pd.DataFrame:
    """One row per grid (index: code) with everything the grid card and the choropleths show.

    ``patrol_hours`` (by grid code) may be ``None``; grids it lacks (or all, for ``None``) get NaN. The grid leader's
    name is masked (``谢超`` -> ``谢*``): this table is only ever shown.
    """
    leader = (mask_personal(grids[["leader"]], "grids")["leader"] if "leader" in grids
              else pd.Series(pd.NA, index=grids.index))
    g = pd.DataFrame({
        "code": grids["code"].astype(str),
        "name": grids["name"],
        "kind": grids["kind"],
        "community_code": grids["community_code"].astype(str),
        "leader": leader,
        "households": pd.to_numeric(grids["households"], errors="coerce"),
        "population": pd.to_numeric(grids["population"], errors="coerce"),
    }).set_index("code", drop=False)
    metric = grids.to_crs(grids.estimate_utm_crs()) if len(grids) else grids
    g["area_km2"] = (metric.geometry.area / 1e6).to_numpy() if len(grids) else []
    com_name = dict(zip(communities["code"], communities["name"], strict=False))
    com_sub = dict(zip(communities["code"], communities["subdistrict_code"], strict=False))
    sub_name = dict(zip(subdistricts["code"], subdistricts["name"], strict=False))
    g["community"] = g["community_code"].map(com_name)
    g["subdistrict_code"] = g["community_code"].map(com_sub)
    g["subdistrict"] = g["subdistrict_code"].map(sub_name)
    if len(workers):
        w = workers.assign(post=workers.get("post", pd.Series(pd.NA, index=workers.index)))
        n = w.groupby("grid_code").size()
        a = w[w["post"] == "A"].groupby("grid_code").size()
        b = w[w["post"] == "B"].groupby("grid_code").size()
        g["workers"] = n.reindex(g.index, fill_value=0).to_numpy()
        g["workers_a"] = a.reindex(g.index, fill_value=0).to_numpy()
        g["workers_b"] = b.reindex(g.index, fill_value=0).to_numpy()
    elif "workers" in grids:
        g["workers"] = pd.to_numeric(grids["workers"], errors="coerce").to_numpy()
        g["workers_a"] = g["workers_b"] = np.nan
    else:
        g["workers"] = g["workers_a"] = g["workers_b"] = np.nan
    if len(incidents):
        month = incidents[_in(incidents["requested_datetime"], month_start(now), now)]
        g["incidents_month"] = month.groupby("grid_code").size().reindex(g.index, fill_value=0).to_numpy()
    else:
        g["incidents_month"] = 0
    g["patrol_hours"] = (np.nan if patrol_hours is None
                         else patrol_hours.reindex(g.index).astype(float).round(1).to_numpy())
    with np.errstate(divide="ignore", invalid="ignore"):
        hh = g["households"].astype(float).replace(0, np.nan)
        pop = g["population"].astype(float).replace(0, np.nan)
        g["workers_per_1000_hh"] = (g["workers"].astype(float) / hh * 1000).round(2)
        g["incidents_per_1000_res"] = (g["incidents_month"].astype(float) / pop * 1000).round(2)
    return g


# --------------------------------------------------------------------------- store (cached)


@st.cache_resource(max_entries=8, show_spinner=False)
def _latest_day(url: str, version: str, today: pd.Timestamp) -> pd.Timestamp | None:
    store = state.get_store()
    if "patrol_points" not in state.locked(store.layer_names):
        return None
    last = state.locked(store.read, "patrol_points", columns=["time"],
                        between={"time": (None, today)}, order_by="time", descending=True, limit=1)
    if last.empty or pd.isna(last["time"].iloc[0]):
        return None
    return pd.Timestamp(last["time"].iloc[0]).normalize()


def latest_patrol_day(*, on_or_before: Any = None) -> pd.Timestamp | None:
    """The latest complete day with GPS fixes: the newest fix before today's midnight, as a day.

    "Today" is the dashboard's (:func:`dashboard.state.now`: yesterday of the demo anchor has
    fixes of every demo worker). ``None`` when the store holds no fixes before today.
    ``on_or_before``: a past day (the explorer's date): the latest day with fixes up to it.
    """
    end = state.now().normalize()
    if on_or_before is not None:
        end = min(end, pd.Timestamp(on_or_before).normalize() + pd.Timedelta(days=1))
    return _latest_day(state.settings().store_url, state.data_version(), end)


def _day_inputs(codes: list[str] | None, *, plan_day: pd.Timestamp | None = None
                ) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    grids = state.layer("grids", ["code"])
    workers = state.layer("workers", ["id", "grid_code", "post", "role"])
    if plan_day is not None:  # the grids and assignments in force that day (layers.plans)
        from layers import plans

        grids, workers = state.locked(plans.assignments_at, state.get_store(), plan_day, grids,
                                      workers)
    if codes is not None:
        grids = grids[grids["code"].isin(codes)]
        workers = workers[workers["grid_code"].isin(codes)]
    return grids, workers


@st.cache_resource(max_entries=4, show_spinner=False)
def _district_day(url: str, version: str, day: pd.Timestamp, then: bool = False
                  ) -> PatrolDay | None:
    """The day's figures from the patrol summary kept at write time (no fix is read); with
    ``then``, under the grids and assignments in force that day, computed from that day's fixes
    (the summary is kept for the live layers only)."""
    from layers import summaries

    store = state.get_store()
    if "patrol_points" not in state.locked(store.layer_names):
        return None
    grids, workers = _day_inputs(None, plan_day=day if then else None)
    if then:
        fixes = state.locked(store.read, "patrol_points", between={"time": day_window(day)})
        return patrol_day(fixes, grids, workers, day=day)
    fig = state.locked(summaries.patrol_figures, store, [day], grids=grids,
                       workers=workers[["id", "grid_code", "post"]])
    per_worker = fig.per_worker.drop(columns="day")
    per_worker["role"] = workers["role"].to_numpy()
    per_grid = fig.per_grid.drop(columns="day")
    per_grid = per_grid.set_index(pd.Index(per_grid["grid_code"].to_numpy(), name="code"))
    return PatrolDay(pd.Timestamp(day).normalize(), per_worker, per_grid)


def district_patrol_day(day: pd.Timestamp | None = None, *, then: bool = False
                        ) -> PatrolDay | None:
    """Every worker's and grid's patrol figures on ``day`` (default :func:`latest_patrol_day`;
    cached).

    One read of that day's fixes and one cleaning for the whole district, shared by every
    session until the data changes (a few seconds on the full demo district, once).
    ``then``: count them under the grids and assignments in force on ``day``
    (:func:`layers.plans.assignments_at`) instead of the live ones.
    """
    day = latest_patrol_day() if day is None else pd.Timestamp(day).normalize()
    if day is None:
        return None
    return _district_day(state.settings().store_url, state.data_version(), day, then)


def _grid_day(url: str, version: str, day: pd.Timestamp, code: str) -> PatrolDay | None:
    """One grid's rows of :func:`_district_day` (a filter of the summary's small tables)."""
    whole = _district_day(url, version, day)
    if whole is None or code not in whole.per_grid.index:
        return None
    pw = whole.per_worker[whole.per_worker["grid_code"] == code]
    return PatrolDay(whole.day, pw, whole.per_grid.loc[[code]])


def grid_patrol_day(code: str) -> PatrolDay | None:
    """One grid's patrol figures on :func:`latest_patrol_day`, from its own workers' fixes only.

    The same numbers as that grid's row of :func:`district_patrol_day` (coverage depends only
    on the grid's own workers), without reading the whole district's day: the grid card uses it.
    """
    day = latest_patrol_day()
    if day is None:
        return None
    return _grid_day(state.settings().store_url, state.data_version(), day, code)
