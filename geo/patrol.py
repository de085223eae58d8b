"""Grid-worker patrols (网格员巡查): clean GPS fixes, time in grid, A/B posts, coverage.

Each grid has workers on A/B posts (AB岗), and each worker is meant to spend 4 hours a day
inside the grid (4小时网格工作制). This module turns the workers' GPS fixes (the
``patrol_points`` layer) into the figures a command centre watches:

* :func:`clean_fixes` drops invalid, inaccurate and duplicate fixes, GPS jumps that return,
  impossible speeds and the drift of a worker standing still, splits tracks into trips and
  says what it dropped and why (reason codes :data:`REASONS`).
* :func:`time_in_grid` gives, per worker and day, the hours inside the worker's *own* grid,
  whether that meets the daily rule, the distance walked, the first and last fix.
* :func:`post_coverage` gives, per grid, the hours of the day when at least one of its workers
  was inside (all workers, post A, post B) and an hour-of-day matrix.
* :func:`coverage` gives the share of each grid's buildings and fine H3 cells visited in a
  window, the staleness of every cell and the buildings not visited for N days;
  :func:`rollup` sums per-grid figures up to communities and sub-districts.
* :func:`on_patrol_now` and :func:`compliance_summary` feed the wall display.

Conventions: fixes are points in EPSG:4326 with ``worker_id`` and ``time`` (timezone-naive
local time, Asia/Shanghai; timezone-aware times are converted); distances are measured in the
local UTM zone (:func:`geo.crs.local_metric_crs`); every function is vectorised (no Python loop
over fixes). Clean once and pass the :class:`CleanResult` to the other functions; given raw
fixes they clean them with the rules given.

The input types and checks live in :mod:`geo._patrol_input` and the cleaning in
:mod:`geo._patrol_fixes`; every public name is re-exported here (import from this module).

How time in grid is counted
---------------------------
The interval between two consecutive fixes of a worker is split in halves: the first half
takes the earlier fix's place, the second half the later fix's. Each half is at most
``max_gap_s / 2`` long (the cap on gaps), except inside a stay (drift while standing still),
which was observed throughout. So an interval counts fully when both fixes are inside the
grid and half when one is; a day boundary cuts intervals at midnight.

Examples
--------
>>> import geopandas as gpd, numpy as np, pandas as pd, shapely
>>> grid = gpd.GeoDataFrame({"code": ["320106001001001"]},
...     geometry=[shapely.box(118.770, 32.050, 118.780, 32.060)], crs=4326)
>>> workers = pd.DataFrame({"id": ["w1"], "grid_code": ["320106001001001"], "post": ["A"]})
>>> times = pd.date_range("2024-05-06 08:00", "2024-05-06 12:30", freq="1min")
>>> lon = 118.775 + 0.004 * np.sin(np.arange(len(times)) / 10)  # back and forth, 2.4 km/h
>>> fixes = gpd.GeoDataFrame({"worker_id": "w1", "time": times},
...     geometry=gpd.points_from_xy(lon, [32.055] * len(times)), crs=4326)
>>> clean = clean_fixes(fixes)
>>> row = time_in_grid(clean, grid, workers, day="2024-05-06").iloc[0]
>>> float(row.hours_in_grid), bool(row.meets_rule)
(4.5, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from pyproj import CRS

from geo import _patrol_time as _tm
from geo import _patrol_visits as _v
from geo._patrol_fixes import _as_cleaned, _track_of, clean_fixes
from geo._patrol_input import (
    _DAY_NS,
    _NAT,
    _NS,
    EBIKE_KMH,
    HOUR_COLUMNS,
    INPUT_KEYS,
    REASONS,
    WALKING_KMH,
    CleaningRules,
    CleanResult,
    CoverageResult,
    PatrolInputError,
    _as_str,
    _check_fixes,
    _check_grids,
    _check_workers,
    _geo_problems,
    _lonlat,
    _missing,
    _positive,
    _project,
    _raise,
    _times_ns,
    _Track,
    _ts,
)

__all__ = [
    "HOUR_COLUMNS",
    "INPUT_KEYS",
    "EBIKE_KMH",
    "REASONS",
    "WALKING_KMH",
    "CleanResult",
    "CleaningRules",
    "CoverageResult",
    "PatrolInputError",
    "clean_fixes",
    "compliance_summary",
    "coverage",
    "on_patrol_now",
    "post_coverage",
    "rollup",
    "time_in_grid",
]

# ---------------------------------------------------------------- time in grid


@dataclass(frozen=True)
class _DaySegments:
    """Half-interval segments of one day, attributed to workers' rows and grids."""

    row: NDArray[np.int64]  # workers row position
    grid: NDArray[np.int64]  # grids row position, -1 when the worker's grid is unknown
    s: NDArray[np.float64]
    e: NDArray[np.float64]
    inside: NDArray[np.bool_]
    worker_grid: NDArray[np.int64]  # grid position of every workers row (-1 unknown)
    row_of_code: NDArray[np.int64]  # workers row of each worker code of the track (-1 unknown)
    track: _Track


def _day_bounds(day: date | datetime | str | pd.Timestamp) -> tuple[pd.Timestamp, int, int]:
    lo = _ts(day, "day").normalize()
    return lo, int(lo.value), int(lo.value) + _DAY_NS


def _day_segments(
    cleaned: CleanResult, grids: gpd.GeoDataFrame, workers: pd.DataFrame, lo: int, hi: int
) -> _DaySegments:
    tr = _track_of(cleaned)
    row_of_code = pd.Index(_as_str(workers["id"])).get_indexer(tr.ids).astype(np.int64)
    worker_grid = pd.Index(_as_str(grids["code"])).get_indexer(_as_str(workers["grid_code"])).astype(np.int64)
    polys = np.asarray(grids.geometry.to_crs(cleaned.crs).values, dtype=object)
    shapely.prepare(polys)
    fix, s, e = _tm.half_segments(tr.w, tr.t, tr.stay, cap_s=cleaned.rules.max_gap_s, lo_ns=lo, hi_ns=hi)
    row = row_of_code[tr.w[fix]]
    known = row >= 0
    fix, s, e, row = fix[known], s[known], e[known], row[known]
    grid = worker_grid[row]
    fix_grid = np.full(tr.t.shape[0], -1, dtype=np.int64)
    fix_grid[fix] = grid
    need = np.flatnonzero(fix_grid >= 0)
    inside_fix = np.zeros(tr.t.shape[0], dtype=bool)
    if need.size:
        inside_fix[need] = shapely.intersects_xy(polys[fix_grid[need]], tr.x[need], tr.y[need])
    return _DaySegments(row, grid, s, e, inside_fix[fix], worker_grid, row_of_code, tr)


def time_in_grid(
    fixes: gpd.GeoDataFrame | CleanResult,
    grids: gpd.GeoDataFrame,
    workers: pd.DataFrame,
    *,
    day: date | datetime | str | pd.Timestamp,
    rules: CleaningRules | None = None,
    min_hours: float = 4.0,
) -> pd.DataFrame:
    """Hours each worker spent inside their own grid on ``day``, and the daily rule.

    Parameters
    ----------
    fixes
        Raw fixes (cleaned here with ``rules``) or a :class:`CleanResult` (or its ``fixes``).
        Include the fixes just before and after the day so that intervals across midnight count.
    grids
        Grid polygons with ``code`` (any CRS).
    workers
        One row per worker: ``id``, ``grid_code``, optional ``post`` (``A``/``B``).
    day
        The local calendar day.
    rules
        Cleaning rules for raw fixes (default :class:`CleaningRules`); their ``max_gap_s`` is
        the cap on gaps. Cleaned fixes keep the rules they were cleaned with.
    min_hours
        The daily rule (4小时网格工作制): hours inside the own grid to meet it.

    Returns
    -------
    pandas.DataFrame
        On ``workers``' index: ``worker_id, grid_code, post, hours_in_grid, hours_tracked,
        meets_rule, distance_km, first_fix, last_fix, n_fixes``. ``hours_tracked`` counts time
        anywhere; ``distance_km`` sums steps within trips; ``first_fix``/``last_fix`` are the
        day's first and last kept fixes (NaT without any) and ``n_fixes`` their number (a
        stay keeps two). A worker whose grid is not in
        ``grids`` gets NaN hours and does not meet the rule; fixes of workers not in
        ``workers`` are ignored (their number is in ``attrs["unknown_workers"]``).
    """
    _raise(_check_grids(grids) + _check_workers(workers) + _positive("min_hours", min_hours))
    cleaned = _as_cleaned(fixes, rules)
    _lo_ts, lo, hi = _day_bounds(day)
    seg = _day_segments(cleaned, grids, workers, lo, hi)
    tr = seg.track
    nw = len(workers)
    in_h = np.bincount(seg.row, (seg.e - seg.s) * seg.inside, minlength=nw) / 3600.0
    tracked_h = np.bincount(seg.row, seg.e - seg.s, minlength=nw) / 3600.0
    b, metres = _tm.step_distance(tr.w, tr.t, tr.x, tr.y, tr.trip, lo_ns=lo, hi_ns=hi)
    brow = seg.row_of_code[tr.w[b]]
    distance_km = np.bincount(brow[brow >= 0], metres[brow >= 0], minlength=nw) / 1000.0
    day_idx = np.flatnonzero((tr.t >= lo) & (tr.t < hi))
    drow = seg.row_of_code[tr.w[day_idx]]
    known = drow >= 0
    day_idx, drow = day_idx[known], drow[known]
    first = np.full(nw, np.iinfo(np.int64).max)
    last = np.full(nw, _NAT)
    np.minimum.at(first, drow, tr.t[day_idx])
    np.maximum.at(last, drow, tr.t[day_idx])
    n_fixes = np.bincount(drow, minlength=nw)
    first[n_fixes == 0] = _NAT
    has_grid = seg.worker_grid >= 0
    in_h = np.where(has_grid, in_h, np.nan)
    post = workers["post"] if "post" in workers.columns else pd.Series(None, index=workers.index)
    out = pd.DataFrame(
        {
            "worker_id": _as_str(workers["id"]).to_numpy(),
            "grid_code": _as_str(workers["grid_code"]).to_numpy(),
            "post": post.to_numpy(),
            "hours_in_grid": in_h,
            "hours_tracked": tracked_h,
            "meets_rule": has_grid & (np.nan_to_num(in_h) >= min_hours - 1e-9),
            "distance_km": distance_km,
            "first_fix": first.view("datetime64[ns]"),
            "last_fix": last.view("datetime64[ns]"),
            "n_fixes": n_fixes.astype(np.int64),
        },
        index=workers.index,
    )
    out.attrs["unknown_workers"] = int((seg.row_of_code < 0).sum())
    return out


def post_coverage(
    fixes: gpd.GeoDataFrame | CleanResult,
    grids: gpd.GeoDataFrame,
    workers: pd.DataFrame,
    *,
    day: date | datetime | str | pd.Timestamp,
    rules: CleaningRules | None = None,
) -> pd.DataFrame:
    """A/B post coverage: when, on ``day``, at least one of each grid's workers was inside it.

    Parameters are those of :func:`time_in_grid`.

    Returns
    -------
    pandas.DataFrame
        On ``grids``' index: ``grid_code``, ``workers`` (assigned), ``workers_seen`` (with any
        time inside), ``covered_h`` (hours with at least one worker inside), ``a_h`` and
        ``b_h`` (the same for the A-post and B-post workers alone), ``hours_with_presence``
        (clock hours with any presence), and ``h00`` .. ``h23``: the share of each clock hour
        with at least one worker inside.
    """
    _raise(_check_grids(grids) + _check_workers(workers))
    cleaned = _as_cleaned(fixes, rules)
    _lo_ts, lo, hi = _day_bounds(day)
    seg = _day_segments(cleaned, grids, workers, lo, hi)
    ng = len(grids)
    m = seg.inside & (seg.grid >= 0)
    # each worker's own time inside first (segments come sorted by worker), then grids
    wr, s, e = _tm.union(seg.row[m], seg.s[m], seg.e[m], presorted=True)
    g = seg.worker_grid[wr]
    ug, us, ue = _tm.union(g, s, e)
    covered = np.bincount(ug, ue - us, minlength=ng) / 3600.0
    hours = _tm.hour_fractions(ug, us, ue, ng)
    post = (workers["post"].astype("str").str.upper().to_numpy() if "post" in workers.columns
            else np.full(len(workers), ""))
    post_code = np.select([post == "A", post == "B"], [0, 1], 2).astype(np.int64)
    pg, ps, pe = _tm.union(g * 3 + post_code[wr], s, e)
    by_post = np.bincount(pg, pe - ps, minlength=ng * 3).reshape(ng, 3) / 3600.0
    assigned = seg.worker_grid[seg.worker_grid >= 0]
    seen = seg.worker_grid[np.unique(wr)]
    out = pd.DataFrame(
        {
            "grid_code": _as_str(grids["code"]).to_numpy(),
            "workers": np.bincount(assigned, minlength=ng).astype(np.int64),
            "workers_seen": np.bincount(seen, minlength=ng).astype(np.int64),
            "covered_h": covered,
            "a_h": by_post[:, 0],
            "b_h": by_post[:, 1],
            "hours_with_presence": (hours > 0).sum(axis=1).astype(np.int64),
        },
        index=grids.index,
    )
    for h, col in enumerate(HOUR_COLUMNS):
        out[col] = hours[:, h]
    return out


# ---------------------------------------------------------------- coverage


def coverage(
    fixes: gpd.GeoDataFrame | CleanResult,
    grids: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    *,
    start: date | datetime | str | pd.Timestamp,
    end: date | datetime | str | pd.Timestamp,
    res: int = 11,
    visit_radius_m: float = 30.0,
    stale_days: float = 7.0,
    rules: CleaningRules | None = None,
) -> CoverageResult:
    """Which buildings and which parts of each grid were visited in ``[start, end)``.

    Parameters
    ----------
    fixes
        Raw fixes (cleaned here) or a :class:`CleanResult`. Fixes before ``start`` do not
        count as visits in the window but do set the staleness; pass ``stale_days`` of history
        to find every stale building.
    grids
        Grid polygons with ``code`` (and ``community_code`` for :func:`rollup`).
    buildings
        Points or polygons with ``id`` and ``grid_code`` (without ``grid_code``, a building
        belongs to the grid holding its representative point).
    start, end
        The window (end excluded); a date means its midnight.
    res
        H3 resolution of the area cells (11: about 2,150 m² each); the cells of a grid are
        those whose centre lies in it.
    visit_radius_m
        A building or cell (its centre) is visited by any kept fix within this distance.
    stale_days
        A building is stale when its last visit before ``end`` is older than this, or never.
    rules
        Cleaning rules for raw fixes.

    Returns
    -------
    CoverageResult
    """
    problems = _check_grids(grids) + _geo_problems(buildings, "buildings")
    problems += _missing(buildings, "buildings", ("id",))
    problems += _positive("visit_radius_m", visit_radius_m) + _positive("stale_days", stale_days)
    if not (isinstance(res, int | np.integer) and 0 <= res <= 15):
        problems.append(("patrol.input.bad_option", {"name": "res", "value": res, "rule": "0..15"}))
    lo_ts, hi_ts = _ts(start, "start"), _ts(end, "end")
    if lo_ts >= hi_ts:
        problems.append(("patrol.input.bad_window", {"start": lo_ts, "end": hi_ts}))
    _raise(problems)
    cleaned = _as_cleaned(fixes, rules)
    tr = _track_of(cleaned)
    lo, hi = int(lo_ts.value), int(hi_ts.value)
    before = np.flatnonzero(tr.t < hi)
    fx, fy, ft = tr.x[before], tr.y[before], tr.t[before]
    codes = _as_str(grids["code"]).to_numpy()
    ng = len(grids)

    # places: the centres of every grid's H3 cells, then the buildings
    geoms_ll = np.asarray(grids.geometry.to_crs(4326).values, dtype=object)
    cgrid, cells = _v.grid_cells(geoms_ll, res=int(res))
    ucells, cinv = np.unique(cells, return_inverse=True)
    clon, clat = _v.cell_centres(ucells)
    cx, cy = _project(clon, clat, cleaned.crs)
    nu = ucells.shape[0]
    bgeoms = np.asarray(buildings.geometry.to_crs(cleaned.crs).values, dtype=object)
    bx, by, breach, bzone = _v.places(bgeoms)
    fix, place = _v.visits(
        np.concatenate((cx, bx)), np.concatenate((cy, by)),
        np.concatenate((np.zeros(nu), breach)),
        np.concatenate((np.full(nu, None, dtype=object), bzone)),
        fx, fy, radius_m=visit_radius_m,
    )
    last, in_window = _v.last_visits(nu + len(buildings), place, ft[fix], lo)

    last_c = last[:nu][cinv]
    vis_c = in_window[:nu][cinv]
    never_c = last_c == _v.NEVER
    stale_h = np.where(never_c, np.nan, (hi - last_c) / _NS / 3600.0)
    cells_df = pd.DataFrame({
        "grid_code": codes[cgrid],
        "cell": cells,
        "visited": vis_c,
        "last_visit": np.where(never_c, _NAT, last_c).view("datetime64[ns]"),
        "staleness_h": stale_h,
    })
    cell_stale = never_c | (stale_h > stale_days * 24.0)

    b_last, b_win = last[nu:], in_window[nu:]
    never_b = b_last == _v.NEVER
    days = np.where(never_b, np.nan, (hi - b_last) / _NS / 86400.0)
    b_stale = never_b | (days > stale_days)
    if "grid_code" in buildings.columns:
        bcode = _as_str(buildings["grid_code"]).to_numpy()
    else:
        bcode = _containing_grid(bgeoms, grids, cleaned.crs, codes)
    bgrid = pd.Index(codes).get_indexer(bcode)
    bdf = pd.DataFrame({
        "id": _as_str(buildings["id"]).to_numpy(),
        "grid_code": bcode,
        "visited": b_win,
        "last_visit": np.where(never_b, _NAT, b_last).view("datetime64[ns]"),
        "days_since_visit": days,
        "stale": b_stale,
    }, index=buildings.index)

    hasg = bgrid >= 0
    nb = np.bincount(bgrid[hasg], minlength=ng)
    nbv = np.bincount(bgrid[hasg], b_win[hasg], minlength=ng)
    nbs = np.bincount(bgrid[hasg], b_stale[hasg], minlength=ng)
    nc = np.bincount(cgrid, minlength=ng)
    ncv = np.bincount(cgrid, vis_c, minlength=ng)
    ncs = np.bincount(cgrid, cell_stale, minlength=ng)
    per = pd.DataFrame({"grid_code": codes}, index=grids.index)
    if "community_code" in grids.columns:
        per["community_code"] = _as_str(grids["community_code"]).to_numpy()
    per["buildings"] = nb.astype(np.int64)
    per["buildings_visited"] = nbv.astype(np.int64)
    per["building_share"] = _share(nbv, nb)
    per["cells"] = nc.astype(np.int64)
    per["cells_visited"] = ncv.astype(np.int64)
    per["area_share"] = _share(ncv, nc)
    per["buildings_stale"] = nbs.astype(np.int64)
    per["cells_stale"] = ncs.astype(np.int64)
    return CoverageResult(per, cells_df, bdf, bdf[bdf["stale"]], lo_ts, hi_ts, int(res),
                          float(visit_radius_m), float(stale_days))


def _share(num: NDArray, den: NDArray) -> NDArray[np.float64]:
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _containing_grid(geoms_m: NDArray, grids: gpd.GeoDataFrame, crs: CRS, codes: NDArray) -> NDArray:
    polys = np.asarray(grids.geometry.to_crs(crs).values, dtype=object)
    pts = shapely.point_on_surface(geoms_m)
    tree = shapely.STRtree(polys)
    b, g = tree.query(pts, predicate="intersects")
    out = np.full(geoms_m.shape[0], None, dtype=object)
    first = np.unique(b, return_index=True)[1]
    out[b[first]] = codes[g[first]]
    return out


# ---------------------------------------------------------------- wall display, rollups


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
