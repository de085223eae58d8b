"""Patrol figures for the wall display and rollups: who is on patrol now, compliance summaries,
per-grid figures summed up to communities and sub-districts.

Split out of :mod:`geo.patrol` (which re-exports every public name here). Pure: no I/O.
"""

from __future__ import annotations

from datetime import datetime

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo._patrol_input import (
    _NAT,
    _NS,
    HOUR_COLUMNS,
    CleanResult,
    _as_str,
    _check_fixes,
    _check_grids,
    _check_workers,
    _lonlat,
    _missing,
    _positive,
    _raise,
    _share,
    _times_ns,
    _ts,
)


def on_patrol_now(
    fixes: gpd.GeoDataFrame | CleanResult,
    *,
    now: datetime | str | pd.Timestamp,
    within_min: float = 10.0,
    grids: gpd.GeoDataFrame | None = None,
    workers: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Workers with a fix in the last ``within_min`` minutes before ``now``: on patrol now.

    Parameters
    ----------
    fixes
        Today's fixes, raw or cleaned. Raw fixes are not cleaned (the wall display refreshes
        often); unusable rows and fixes after ``now`` are skipped.
    now
        The current local time.
    within_min
        How recent the last fix must be.
    grids, workers
        When both are given, add each worker's ``grid_code``, ``post`` and ``in_own_grid``.

    Returns
    -------
    pandas.DataFrame
        One row per worker on patrol, by ``worker_id``: ``worker_id, last_fix, minutes_ago,
        lon, lat`` (EPSG:4326) and, with grids and workers, ``grid_code, post, in_own_grid``.
    """
    _raise(_positive("within_min", within_min))
    now_ts = _ts(now, "now")
    frame = fixes.fixes if isinstance(fixes, CleanResult) else fixes
    _check_fixes(frame)
    lon, lat, ok = _lonlat(frame)
    _times, t = _times_ns(frame["time"])
    ids = _as_str(frame["worker_id"])
    hi = int(now_ts.value)
    lo = hi - int(within_min * 60 * _NS)
    sel = np.flatnonzero(ok & (t != _NAT) & (t <= hi) & (t >= lo) & ids.notna().to_numpy())
    recent = pd.DataFrame({"worker_id": ids.to_numpy()[sel], "t": t[sel], "lon": lon[sel], "lat": lat[sel]})
    recent = recent.sort_values(["worker_id", "t"], kind="stable").drop_duplicates("worker_id", keep="last")
    out = pd.DataFrame({
        "worker_id": recent["worker_id"].to_numpy(),
        "last_fix": recent["t"].to_numpy().view("datetime64[ns]"),
        "minutes_ago": (hi - recent["t"].to_numpy()) / _NS / 60.0,
        "lon": recent["lon"].to_numpy(),
        "lat": recent["lat"].to_numpy(),
    })
    if grids is not None and workers is not None:
        _raise(_check_grids(grids) + _check_workers(workers))
        wrow = pd.Index(_as_str(workers["id"])).get_indexer(out["worker_id"])
        gcode = np.where(wrow >= 0, _as_str(workers["grid_code"]).to_numpy()[wrow], None)
        post = workers["post"].to_numpy() if "post" in workers.columns else np.full(len(workers), None)
        out["grid_code"] = gcode
        out["post"] = np.where(wrow >= 0, post[wrow], None)
        gpos = pd.Index(_as_str(grids["code"])).get_indexer(pd.Series(gcode, dtype="str"))
        polys = np.asarray(grids.geometry.to_crs(4326).values, dtype=object)
        inside = np.zeros(len(out), dtype=bool)
        m = gpos >= 0
        inside[m] = shapely.intersects_xy(polys[gpos[m]], out["lon"].to_numpy()[m], out["lat"].to_numpy()[m])
        out["in_own_grid"] = inside
    return out


def compliance_summary(per_worker: pd.DataFrame, *, by: str | None = None) -> pd.DataFrame:
    """Share of workers meeting the daily rule, from :func:`time_in_grid`'s table.

    Parameters
    ----------
    per_worker
        The result of :func:`time_in_grid`.
    by
        A column to group by (``"grid_code"``, ``"post"``); ``None`` for one overall row.

    Returns
    -------
    pandas.DataFrame
        ``[by,] workers, workers_meeting, compliance_share, hours_total, mean_hours``.
    """
    _raise(_missing(per_worker, "per_worker", ("meets_rule", "hours_in_grid") + ((by,) if by else ())))
    df = pd.DataFrame({
        "key": per_worker[by].to_numpy() if by else np.zeros(len(per_worker), dtype=np.int64),
        "workers": 1,
        "workers_meeting": per_worker["meets_rule"].astype(bool).astype(np.int64).to_numpy(),
        "hours_total": per_worker["hours_in_grid"].fillna(0.0).to_numpy(dtype=float),
    })
    out = df.groupby("key", sort=True).sum()
    if not by and out.empty:
        out = pd.DataFrame({"workers": [0], "workers_meeting": [0], "hours_total": [0.0]})
    out["compliance_share"] = _share(out["workers_meeting"], out["workers"])
    out["mean_hours"] = _share(out["hours_total"], out["workers"])
    out = out[["workers", "workers_meeting", "compliance_share", "hours_total", "mean_hours"]]
    if by:
        return out.rename_axis(by).reset_index()
    return out.reset_index(drop=True)


#: Ratios that :func:`rollup` recomputes from summed numerators and denominators.
_RATIOS: dict[str, tuple[str, str]] = {
    "building_share": ("buildings_visited", "buildings"),
    "area_share": ("cells_visited", "cells"),
    "compliance_share": ("workers_meeting", "workers"),
    "mean_hours": ("hours_total", "workers"),
}


def rollup(
    per_grid: pd.DataFrame,
    grids: pd.DataFrame,
    communities: pd.DataFrame,
    *,
    subdistricts: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per-grid figures summed up to communities and sub-districts.

    Parameters
    ----------
    per_grid
        A table with ``grid_code``: :attr:`CoverageResult.per_grid`, :func:`post_coverage`,
        or :func:`compliance_summary` ``(by="grid_code")``.
    grids
        ``code`` and ``community_code`` of every grid.
    communities
        ``code``, ``subdistrict_code`` and optionally ``name``.
    subdistricts
        ``code``, ``name`` and ``district_code``, for the sub-districts' names and parents.

    Returns
    -------
    pandas.DataFrame
        Rows for every community then every sub-district: ``level`` (``community`` /
        ``subdistrict``), ``code``, ``name``, ``parent_code``, ``grids``, then each numeric
        column summed, except the ratios (``building_share``, ``area_share``,
        ``compliance_share``, ``mean_hours``), recomputed from their sums, and the hour
        shares ``h00`` .. ``h23``, averaged over grids.
    """
    problems = _missing(per_grid, "per_grid", ("grid_code",))
    problems += _missing(grids, "grids", ("code", "community_code"))
    problems += _missing(communities, "communities", ("code", "subdistrict_code"))
    _raise(problems)
    parent = pd.Series(_as_str(grids["community_code"]).to_numpy(), index=_as_str(grids["code"]).to_numpy())
    sub_of = pd.Series(_as_str(communities["subdistrict_code"]).to_numpy(),
                       index=_as_str(communities["code"]).to_numpy())
    names = {}
    for table in (communities, subdistricts):
        if table is not None and "name" in table.columns:
            names.update(dict(zip(_as_str(table["code"]), table["name"], strict=True)))
    numeric = [c for c in per_grid.columns
               if c != "grid_code" and pd.api.types.is_numeric_dtype(per_grid[c].dtype)]
    mean_cols = [c for c in numeric if c in HOUR_COLUMNS]
    sum_cols = [c for c in numeric if c not in _RATIOS and c not in mean_cols]
    base = per_grid[numeric].copy()
    base["grids"] = 1
    comm = parent.reindex(_as_str(per_grid["grid_code"]).to_numpy()).to_numpy()
    sub = sub_of.reindex(comm).to_numpy()
    frames = []
    district_of = pd.Series(dtype="str")
    if subdistricts is not None and {"code", "district_code"} <= set(subdistricts.columns):
        district_of = pd.Series(_as_str(subdistricts["district_code"]).to_numpy(),
                                index=_as_str(subdistricts["code"]).to_numpy())
    for level, key, parent_of in (("community", comm, sub_of), ("subdistrict", sub, district_of)):
        g = base.assign(_key=key).groupby("_key", sort=True)
        agg = g[["grids", *sum_cols]].sum()
        if mean_cols:
            agg = agg.join(g[mean_cols].mean())
        for ratio, (num, den) in _RATIOS.items():
            if ratio in numeric and num in agg and den in agg:
                agg[ratio] = _share(agg[num], agg[den])
        agg = agg.reset_index().rename(columns={"_key": "code"})
        agg.insert(0, "level", level)
        agg.insert(2, "name", agg["code"].map(names))
        agg.insert(3, "parent_code", agg["code"].map(parent_of))
        frames.append(agg)
    cols = ["level", "code", "name", "parent_code", "grids", *[c for c in numeric if c in frames[0]]]
    return pd.concat(frames, ignore_index=True)[cols]
