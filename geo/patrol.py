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

The input types and checks live in :mod:`geo._patrol_input`, the cleaning in
:mod:`geo._patrol_fixes` and the wall display and rollups in :mod:`geo._patrol_wall`; every
public name is re-exported here (import from this module).

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
    _check_grids,
    _check_workers,
    _geo_problems,
    _missing,
    _positive,
    _project,
    _raise,
    _share,
    _Track,
    _ts,
)
from geo._patrol_wall import (
    compliance_summary,
    on_patrol_now,
    rollup,
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


def _containing_grid(geoms_m: NDArray, grids: gpd.GeoDataFrame, crs: CRS, codes: NDArray) -> NDArray:
    polys = np.asarray(grids.geometry.to_crs(crs).values, dtype=object)
    pts = shapely.point_on_surface(geoms_m)
    tree = shapely.STRtree(polys)
    b, g = tree.query(pts, predicate="intersects")
    out = np.full(geoms_m.shape[0], None, dtype=object)
    first = np.unique(b, return_index=True)[1]
    out[b[first]] = codes[g[first]]
    return out
