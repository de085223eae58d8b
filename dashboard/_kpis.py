"""KPIs for the grid explorer and the wall display, over the engines.

Closure rates come from :func:`geo.kpis.kpis` (结案率 = closed / accepted, 按期结案率 =
closed on time / due), "on patrol now" from :func:`geo.patrol.on_patrol_now`, overdue from
:func:`layers.workflow.overdue`. :func:`patrol_hours_by_grid` is an interim simple version
(a month of patrol time per grid; ``geo.patrol.time_in_grid`` works per worker and day) kept
here so it can be swapped when a month-level engine function exists.
All functions are pure (frames in, frames or numbers out) and take ``now`` explicitly.

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
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

#: Fixes further apart than this do not count as continuous patrol time.
PATROL_GAP_S = 300.0
#: A worker with a fix this recent is "on patrol now".
ON_PATROL_WITHIN_MIN = 10


def month_start(now: pd.Timestamp) -> pd.Timestamp:
    """Midnight on the first day of ``now``'s month."""
    return now.normalize().replace(day=1)


def _in(s: pd.Series, lo: pd.Timestamp, hi: pd.Timestamp) -> pd.Series:
    t = pd.to_datetime(s)
    return ((t >= lo) & (t <= hi)).fillna(False).astype(bool)


def wall_kpis(incidents: pd.DataFrame, fixes: pd.DataFrame | None, *, now: pd.Timestamp) -> dict[str, Any]:
    """The wall's headline numbers.

    Returns ``today`` and ``month`` (cases received), ``open`` and ``overdue`` (open cases, and
    those past due, among all received up to ``now``), ``closure_rate`` (结案率) and
    ``on_time_rate`` (按期结案率) of this month's cases (``nan`` without any), and ``on_patrol``
    (workers with a GPS fix in the last :data:`ON_PATROL_WITHIN_MIN` minutes).
    """
    from geo.kpis import kpis

    req = pd.to_datetime(incidents["requested_datetime"])
    upto = (req <= now).fillna(False).to_numpy(bool)
    today = _in(incidents["requested_datetime"], now.normalize(), now)
    month = _in(incidents["requested_datetime"], month_start(now), now)
    k_all = kpis(incidents[upto], now=now).iloc[0]
    k_month = kpis(incidents[month], now=now).iloc[0] if month.any() else None
    nan = float("nan")
    return {
        "today": int(today.sum()),
        "month": int(month.sum()),
        "open": int(k_all["open"]),
        "overdue": int(k_all["overdue_open"]),
        "closure_rate": nan if k_month is None else float(k_month["closure_rate"]),
        "on_time_rate": nan if k_month is None else float(k_month["on_time_rate"]),
        "on_patrol": on_patrol_now(fixes, now=now),
    }


def on_patrol_now(fixes: pd.DataFrame | None, *, now: pd.Timestamp,
                  within_min: int = ON_PATROL_WITHIN_MIN) -> int:
    """Number of workers with a GPS fix in the last ``within_min`` minutes before ``now``."""
    if fixes is None or len(fixes) == 0:
        return 0
    from geo.patrol import on_patrol_now as engine

    return int(len(engine(fixes, now=now, within_min=within_min)))


def patrol_hours_by_grid(fixes: pd.DataFrame, grids: gpd.GeoDataFrame) -> pd.Series:
    """Hours of patrol recorded inside each grid (index: grid code).

    Each fix holds the time until the worker's next fix, capped at :data:`PATROL_GAP_S`; the
    time counts for the grid the fix lies in.
    """
    if fixes is None or len(fixes) == 0 or len(grids) == 0:
        return pd.Series(0.0, index=pd.Index(grids["code"], name="code"), name="patrol_hours")
    f = fixes[["worker_id", "time", fixes.geometry.name]].sort_values(["worker_id", "time"])
    t = pd.to_datetime(f["time"]).to_numpy("datetime64[ns]").astype("int64") / 1e9
    same = f["worker_id"].to_numpy()[1:] == f["worker_id"].to_numpy()[:-1]
    dt = np.zeros(len(f))
    dt[:-1] = np.where(same, np.minimum(np.diff(t), PATROL_GAP_S), 0.0)
    pts = gpd.GeoDataFrame({"dt": dt}, geometry=f.geometry.values, crs=fixes.crs)
    joined = gpd.sjoin(pts, grids[["code", grids.geometry.name]], predicate="within", how="inner")
    hours = joined.groupby("code")["dt"].sum() / 3600.0
    return hours.reindex(grids["code"], fill_value=0.0).rename("patrol_hours")


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

    ``patrol_hours`` (by grid code) may be ``None``: the column is then NaN.
    """
    g = pd.DataFrame({
        "code": grids["code"].astype(str),
        "name": grids["name"],
        "kind": grids["kind"],
        "community_code": grids["community_code"].astype(str),
        "leader": grids["leader"] if "leader" in grids else pd.NA,
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
                         else patrol_hours.reindex(g.index, fill_value=0.0).round(1).to_numpy())
    with np.errstate(divide="ignore", invalid="ignore"):
        hh = g["households"].astype(float).replace(0, np.nan)
        pop = g["population"].astype(float).replace(0, np.nan)
        g["workers_per_1000_hh"] = (g["workers"].astype(float) / hh * 1000).round(2)
        g["incidents_per_1000_res"] = (g["incidents_month"].astype(float) / pop * 1000).round(2)
    return g
