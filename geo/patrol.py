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

from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from pyproj import CRS, Transformer

from geo import _errors
from geo import _patrol_clean as _c
from geo import _patrol_time as _tm
from geo import _patrol_visits as _v
from geo._errors import GeoError
from geo.crs import DATUMS, Datum, convert_lonlat, local_metric_crs
from geo.domain import LOCAL_TZ

__all__ = [
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

#: Walking limit (km/h): brisk walking with GPS noise to spare.
WALKING_KMH: float = 7.0
#: E-bike limit (km/h): the design speed cap of GB 17761-2018 electric bicycles.
EBIKE_KMH: float = 25.0
#: Why a fix was dropped, in the order the checks run (catalogue ``patrol.reason.<code>``).
REASONS: tuple[str, ...] = _c.REASONS
#: Columns of the hour-of-day matrix of :func:`post_coverage`.
HOUR_COLUMNS: tuple[str, ...] = tuple(f"h{h:02d}" for h in range(24))

_NS = _c.NS
_DAY_NS = 86_400 * _NS
_NAT = np.iinfo(np.int64).min

#: Message keys of the input problems; their zh and en text (and ``<key>.fix``) live in the
#: catalogue, ``layers/messages/patrol.toml``.
INPUT_KEYS: tuple[str, ...] = tuple(f"patrol.input.{k}" for k in (
    "missing_column", "no_crs", "not_polygons", "bad_time", "duplicate_ids",
    "bad_rule", "bad_option", "bad_window", "bad_datum",
))


class PatrolInputError(GeoError):
    """The inputs of a patrol computation are unusable; ``problems`` lists every one.

    Each problem is ``(key, params)``: a message key of the catalogue
    (``layers/messages/patrol.toml``, with ``<key>.fix`` saying how to fix it) and its values.
    """

    def __init__(self, problems: list[tuple[str, dict[str, Any]]]) -> None:
        self.problems = problems
        super().__init__(problems)

    def __str__(self) -> str:
        return "; ".join(_errors.render(k, p) for k, p in self.problems)


def _raise(problems: list[tuple[str, dict[str, Any]]]) -> None:
    if problems:
        raise PatrolInputError(problems)


@dataclass(frozen=True)
class CleaningRules:
    """How :func:`clean_fixes` judges GPS fixes.

    Parameters
    ----------
    max_speed_kmh
        Fastest plausible movement; :data:`EBIKE_KMH` (25) by default, :data:`WALKING_KMH`
        (7) for workers on foot (see :meth:`walking`).
    max_gap_s
        A longer silence between fixes ends a trip; in time in grid, each side of a gap
        counts at most ``max_gap_s / 2``.
    jump_m
        A step longer than this made faster than ``max_speed_kmh`` is a GPS jump.
    max_jump_fixes, max_jump_s
        The largest excursion (in fixes and seconds) dropped as a jump that returns.
    speed_slack_m
        Positioning error allowed on top of the speed limit (``max_speed * dt + slack``), so
        that GPS noise between close fixes does not read as speed.
    drift_radius_m, min_stay_s
        A worker whose fixes stay within ``drift_radius_m`` of one fix for at least
        ``min_stay_s`` is standing still: the fixes in between are drift.
    max_accuracy_m
        Fixes that report a worse ``accuracy_m`` are dropped.
    """

    max_speed_kmh: float = EBIKE_KMH
    max_gap_s: float = 600.0
    jump_m: float = 200.0
    max_jump_fixes: int = 5
    max_jump_s: float = 600.0
    speed_slack_m: float = 30.0
    drift_radius_m: float = 15.0
    min_stay_s: float = 120.0
    max_accuracy_m: float = 100.0

    def __post_init__(self) -> None:
        problems = []
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "speed_slack_m":
                bad, rule = not (v >= 0 and np.isfinite(v)), ">= 0"
            elif f.name == "max_jump_fixes":
                bad, rule = not (isinstance(v, int | np.integer) and v >= 1), "a whole number >= 1"
            else:
                bad, rule = not (v > 0 and np.isfinite(v)), "> 0"
            if bad:
                problems.append(("patrol.input.bad_rule", {"name": f.name, "value": v, "rule": rule}))
        _raise(problems)

    @classmethod
    def walking(cls, **changes: Any) -> CleaningRules:
        """Rules for workers on foot (``max_speed_kmh`` = :data:`WALKING_KMH`)."""
        return cls(**{"max_speed_kmh": WALKING_KMH, **changes})

    @property
    def max_speed_ms(self) -> float:
        """``max_speed_kmh`` in metres per second."""
        return self.max_speed_kmh / 3.6


@dataclass(frozen=True)
class _Track:
    """Sorted arrays of the kept fixes (internal)."""

    ids: pd.Index  # worker ids (str), position = worker code
    w: NDArray[np.int64]
    t: NDArray[np.int64]
    x: NDArray[np.float64]
    y: NDArray[np.float64]
    stay: NDArray[np.int64]
    trip: NDArray[np.int64]


@dataclass(frozen=True)
class CleanResult:
    """What :func:`clean_fixes` kept and dropped.

    Attributes
    ----------
    fixes
        Kept fixes (EPSG:4326), sorted by worker then time, on the input's index, with
        ``trip_id`` (int64, unique across workers), ``stay_id`` (int64, -1 when moving; the
        first and last fix of a stay are kept, moved to the stay's median position) and
        ``x_m``, ``y_m`` (coordinates in :attr:`crs`). ``time`` is timezone-naive local time.
    dropped
        Dropped rows of the input, as given, with a ``reason`` column (:data:`REASONS`).
    summary
        One row per reason and one for ``kept``: ``reason``, ``fixes``, ``share``.
    trips
        One row per trip: ``trip_id, worker_id, start, end, n_fixes, duration_h, distance_km``.
    crs
        The metric CRS of ``x_m``/``y_m``.
    rules
        The rules applied.
    """

    fixes: gpd.GeoDataFrame
    dropped: gpd.GeoDataFrame
    summary: pd.DataFrame
    trips: pd.DataFrame
    crs: CRS
    rules: CleaningRules
    _track: _Track | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class CoverageResult:
    """What :func:`coverage` found for the window ``[start, end)``.

    Attributes
    ----------
    per_grid
        On the grids' index: ``grid_code``, ``community_code`` (when the grids have it),
        ``buildings``, ``buildings_visited``, ``building_share``, ``cells``, ``cells_visited``,
        ``area_share``, ``buildings_stale``, ``cells_stale``. Shares are NaN for a grid with
        nothing to visit.
    cells
        One row per (grid, H3 cell): ``grid_code``, ``cell`` (int64), ``visited`` (in the
        window), ``last_visit`` (latest visit before ``end``, NaT if none), ``staleness_h``
        (hours from the last visit to ``end``; NaN if never visited).
    buildings
        On the buildings' index: ``id``, ``grid_code``, ``visited``, ``last_visit``,
        ``days_since_visit`` (NaN if never), ``stale`` (not visited for ``stale_days``).
    stale_buildings
        The rows of ``buildings`` that are stale.
    """

    per_grid: pd.DataFrame
    cells: pd.DataFrame
    buildings: pd.DataFrame
    stale_buildings: pd.DataFrame
    start: pd.Timestamp
    end: pd.Timestamp
    res: int
    visit_radius_m: float
    stale_days: float


# ---------------------------------------------------------------- validation helpers


def _missing(df: pd.DataFrame, layer: str, columns: tuple[str, ...]) -> list[tuple[str, dict]]:
    return [("patrol.input.missing_column", {"layer": layer, "column": c})
            for c in columns if c not in df.columns]


def _geo_problems(df: pd.DataFrame, layer: str) -> list[tuple[str, dict]]:
    if not isinstance(df, gpd.GeoDataFrame) or df._geometry_column_name not in df.columns:
        return [("patrol.input.missing_column", {"layer": layer, "column": "geometry"})]
    if df.crs is None:
        return [("patrol.input.no_crs", {"layer": layer})]
    return []


def _check_grids(grids: pd.DataFrame) -> list[tuple[str, dict]]:
    problems = _geo_problems(grids, "grids") + _missing(grids, "grids", ("code",))
    if problems:
        return problems
    types = shapely.get_type_id(np.asarray(grids.geometry.values, dtype=object))
    bad = int((~np.isin(types, (3, 6))).sum())
    if bad:
        problems.append(("patrol.input.not_polygons", {"layer": "grids", "rows": bad}))
    return problems + _dupes(grids["code"], "grids", "code")


def _check_workers(workers: pd.DataFrame) -> list[tuple[str, dict]]:
    problems = _missing(workers, "workers", ("id", "grid_code"))
    return problems or _dupes(workers["id"], "workers", "id")


def _dupes(s: pd.Series, layer: str, column: str) -> list[tuple[str, dict]]:
    d = _as_str(s)
    rep = d[d.duplicated()].unique()
    if len(rep):
        return [("patrol.input.duplicate_ids",
                 {"layer": layer, "column": column, "values": ", ".join(map(str, rep[:5]))})]
    return []


def _check_fixes(fixes: pd.DataFrame) -> None:
    _raise(_geo_problems(fixes, "fixes") + _missing(fixes, "fixes", ("worker_id", "time")))


def _as_str(s: pd.Series) -> pd.Series:
    """Ids as strings (missing stays missing)."""
    if pd.api.types.is_string_dtype(s.dtype) and s.dtype != object:
        return s
    return s.astype("string").astype("str")


def _times_ns(s: pd.Series) -> tuple[pd.Series, NDArray[np.int64]]:
    """Timezone-naive local datetimes and their int64 nanoseconds (NaT = int64 min)."""
    if not pd.api.types.is_datetime64_any_dtype(s.dtype):
        s = pd.to_datetime(s, errors="coerce", format="mixed")
        if s.dtype == object:  # mixed offsets
            s = pd.to_datetime(s, errors="coerce", utc=True)
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        s = s.dt.tz_convert(LOCAL_TZ).dt.tz_localize(None)
    s = s.astype("datetime64[ns]")
    return s, s.to_numpy().view(np.int64)


def _ts(value: date | datetime | str | pd.Timestamp, name: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        ts = pd.NaT
    if ts is pd.NaT:
        _raise([("patrol.input.bad_option", {"name": name, "value": value, "rule": "a date or date-time"})])
    if ts.tzinfo is not None:
        ts = ts.tz_convert(LOCAL_TZ).tz_localize(None)
    return ts.as_unit("ns")


def _positive(name: str, value: float) -> list[tuple[str, dict]]:
    ok = isinstance(value, int | float | np.integer | np.floating) and np.isfinite(value) and value > 0
    return [] if ok else [("patrol.input.bad_option", {"name": name, "value": value, "rule": "> 0"})]


def _lonlat(gdf: gpd.GeoDataFrame) -> tuple[NDArray, NDArray, NDArray[np.bool_]]:
    """Longitude, latitude (EPSG:4326) of point rows and which rows are usable points."""
    geoms = gdf.geometry
    if not CRS.from_user_input(geoms.crs).equals(CRS.from_epsg(4326)):
        geoms = geoms.to_crs(4326)
    arr = np.asarray(geoms.values, dtype=object)
    ok = shapely.get_type_id(arr) == 0
    xy = shapely.get_coordinates(arr[ok])
    if xy.shape[0] == int(ok.sum()):  # no empty point: one pass over the coordinates
        lon = np.full(arr.shape[0], np.nan)
        lat = np.full(arr.shape[0], np.nan)
        lon[ok], lat[ok] = xy[:, 0], xy[:, 1]
    else:
        ok &= ~shapely.is_empty(arr)
        lon = np.where(ok, shapely.get_x(np.where(ok, arr, None)), np.nan)
        lat = np.where(ok, shapely.get_y(np.where(ok, arr, None)), np.nan)
    ok &= np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 180) & (np.abs(lat) <= 90)
    return lon, lat, ok


def _metric_crs(lon: NDArray, lat: NDArray) -> CRS:
    if not lon.size:
        return CRS.from_epsg(32650)  # UTM 50N (Nanjing, Hefei), when there is nothing to place
    box = shapely.box(float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max()))
    return local_metric_crs(gpd.GeoSeries([box], crs=4326))


def _project(lon: NDArray, lat: NDArray, crs: CRS) -> tuple[NDArray, NDArray]:
    x, y = Transformer.from_crs(4326, crs, always_xy=True).transform(lon, lat)
    return np.asarray(x, dtype=float), np.asarray(y, dtype=float)


# ---------------------------------------------------------------- cleaning


def clean_fixes(
    fixes: gpd.GeoDataFrame, *, rules: CleaningRules | None = None, datum: Datum = "wgs84"
) -> CleanResult:
    """Clean GPS fixes and split them into trips, saying what was dropped and why.

    Parameters
    ----------
    fixes
        Points with ``worker_id`` and ``time`` (and optionally ``accuracy_m``), the
        ``patrol_points`` layer. Any CRS; usually EPSG:4326.
    rules
        Thresholds; default :class:`CleaningRules` (e-bike speed limit).
    datum
        Datum of the longitude/latitude: ``"wgs84"`` (stored data), or ``"gcj02"`` /
        ``"bd09"`` for fixes taken from AMap / Baidu, converted to WGS-84 here.

    Returns
    -------
    CleanResult
        Kept fixes with trips, dropped rows with reasons, a summary and the trips.

    Notes
    -----
    The checks, in order (reason codes in brackets): no usable point, time or worker
    [``invalid``]; ``accuracy_m`` above ``max_accuracy_m`` [``inaccurate``]; a second fix of a
    worker at the same time, keeping the most accurate [``duplicate``]; a GPS jump that
    returns, or a short glitch at a track's start or end cut off by a jump [``jump``]; a fix
    both reached and left faster than ``max_speed_kmh`` [``speed``]; the fixes between the
    first and last of a stay, i.e. drift while standing still [``drift``]. Trips end at gaps
    longer than ``max_gap_s`` and at the impossible steps that remain (a real fast ride, or
    a jump that does not return).
    """
    rules = rules or CleaningRules()
    if datum not in DATUMS:
        _raise([("patrol.input.bad_datum", {"value": datum, "choices": ", ".join(DATUMS)})])
    _check_fixes(fixes)
    n = len(fixes)
    lon, lat, ok = _lonlat(fixes)
    if datum != "wgs84" and ok.any():
        lon[ok], lat[ok] = convert_lonlat(lon[ok], lat[ok], src=datum, dst="wgs84")
    times, t = _times_ns(fixes["time"])
    ids = _as_str(fixes["worker_id"])
    wcode, uniques = pd.factorize(ids, sort=True)
    wcode = wcode.astype(np.int64)
    reason = np.full(n, -1, dtype=np.int8)
    reason[~ok | (t == _NAT) | (wcode < 0)] = 0
    acc = np.zeros(n)
    if "accuracy_m" in fixes.columns:
        acc = pd.to_numeric(fixes["accuracy_m"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        reason[(reason < 0) & (acc > rules.max_accuracy_m)] = 1
    pos = _c.sort_fixes(np.flatnonzero(reason < 0), wcode, t, acc)
    dup = _c.same_as_previous(wcode[pos]) & _c.same_as_previous(t[pos])
    reason[pos[dup]] = 2
    pos = pos[~dup]

    crs = _metric_crs(lon[pos], lat[pos])
    x, y = _project(lon[pos], lat[pos], crs)
    w, tt = wcode[pos], t[pos]
    vmax, slack = rules.max_speed_ms, rules.speed_slack_m

    def _drop(mask: NDArray[np.bool_], code: int) -> None:
        nonlocal pos, x, y, w, tt
        reason[pos[mask]] = code
        keep = ~mask
        pos, x, y, w, tt = pos[keep], x[keep], y[keep], w[keep], tt[keep]

    _drop(_c.excursions(w, tt, x, y, max_speed_ms=vmax, slack_m=slack, jump_m=rules.jump_m,
                        max_fixes=rules.max_jump_fixes, max_s=rules.max_jump_s), 3)
    _drop(_c.too_fast(w, tt, x, y, max_speed_ms=vmax, slack_m=slack), 4)
    moving = np.full(pos.shape[0], -1, dtype=np.int64)
    trip0 = np.cumsum(_c.trip_starts(w, tt, x, y, moving, max_speed_ms=vmax, slack_m=slack,
                                     max_gap_s=rules.max_gap_s)) - 1
    stay = _c.stays(trip0, tt, x, y, radius_m=rules.drift_radius_m, min_stay_s=rules.min_stay_s)
    sx, sy = _c.stay_centres(stay, x, y)
    interior = _c.stay_interior(stay)
    stay = stay[~interior]
    _drop(interior, 5)
    snap = np.flatnonzero(stay >= 0)  # the first and last fix of each stay, moved to its centre
    x[snap], y[snap] = sx[stay[snap]], sy[stay[snap]]
    trip = np.cumsum(_c.trip_starts(w, tt, x, y, stay, max_speed_ms=vmax, slack_m=slack,
                                    max_gap_s=rules.max_gap_s)) - 1

    # ---- outputs
    kept = fixes.iloc[pos]
    kept["time"] = times.iloc[pos].to_numpy()
    relocate = datum != "wgs84" or not CRS.from_user_input(fixes.crs).equals(CRS.from_epsg(4326))
    geoms = np.asarray(kept.geometry.values, dtype=object)
    if relocate:
        geoms = shapely.points(lon[pos], lat[pos])
    if snap.size:
        slon, slat = Transformer.from_crs(crs, 4326, always_xy=True).transform(x[snap], y[snap])
        geoms = geoms.copy()
        geoms[snap] = shapely.points(slon, slat)
    kept = kept.set_geometry(gpd.GeoSeries(geoms, index=kept.index, crs=4326))
    if relocate:
        kept = kept.set_crs(4326, allow_override=True)
    kept["trip_id"] = trip
    kept["stay_id"] = stay
    kept["x_m"] = x
    kept["y_m"] = y
    dropped_pos = np.flatnonzero(reason >= 0)
    dropped = fixes.iloc[dropped_pos].copy()
    dropped["reason"] = pd.Series(np.asarray(REASONS, dtype=object)[reason[dropped_pos]],
                                  index=dropped.index, dtype="str")
    counts = np.bincount(reason[dropped_pos], minlength=len(REASONS)).tolist() + [int(pos.shape[0])]
    summary = pd.DataFrame({"reason": [*REASONS, "kept"], "fixes": counts})
    summary["share"] = summary["fixes"] / n if n else 0.0
    ids_index = pd.Index(np.asarray(uniques, dtype=object).astype(str), dtype="str")
    track = _Track(ids_index, w, tt, x, y, stay, trip)
    return CleanResult(kept, dropped, summary, _trips(track), crs, rules, track)


def _trips(tr: _Track) -> pd.DataFrame:
    n_trips = int(tr.trip.max()) + 1 if tr.trip.size else 0
    starts = np.flatnonzero(~_c.same_as_previous(tr.trip)) if tr.trip.size else np.zeros(0, np.int64)
    ends = np.concatenate((starts[1:] - 1, [tr.trip.shape[0] - 1])) if starts.size else starts
    d, _dt = _c.steps(tr.t, tr.x, tr.y)
    d[~_c.same_as_previous(tr.trip)] = 0.0
    dist = np.bincount(tr.trip, d, minlength=n_trips) if n_trips else np.zeros(0)
    start = tr.t[starts].view("datetime64[ns]")
    end = tr.t[ends].view("datetime64[ns]")
    return pd.DataFrame({
        "trip_id": np.arange(n_trips, dtype=np.int64),
        "worker_id": tr.ids.to_numpy()[tr.w[starts]] if n_trips else np.zeros(0, dtype=object),
        "start": start,
        "end": end,
        "n_fixes": (ends - starts + 1).astype(np.int64),
        "duration_h": (tr.t[ends] - tr.t[starts]) / _NS / 3600.0,
        "distance_km": dist / 1000.0,
    })


def _as_cleaned(fixes: gpd.GeoDataFrame | CleanResult, rules: CleaningRules | None) -> CleanResult:
    """A :class:`CleanResult`: given, rebuilt from already-cleaned fixes, or cleaned now."""
    if isinstance(fixes, CleanResult):
        return fixes
    _check_fixes(fixes)
    if not {"trip_id", "stay_id"} <= set(fixes.columns):
        return clean_fixes(fixes, rules=rules)
    rules = rules or CleaningRules()
    lon, lat, ok = _lonlat(fixes)
    times, t = _times_ns(fixes["time"])
    ids = _as_str(fixes["worker_id"])
    wcode, uniques = pd.factorize(ids, sort=True)
    pos = _c.sort_fixes(np.flatnonzero(ok & (t != _NAT) & (wcode >= 0)), wcode.astype(np.int64), t,
                        np.zeros(len(fixes)))
    crs = _metric_crs(lon[pos], lat[pos])
    x, y = _project(lon[pos], lat[pos], crs)
    kept = fixes.iloc[pos].copy()
    kept["time"] = times.iloc[pos].to_numpy()
    kept["x_m"], kept["y_m"] = x, y
    track = _Track(pd.Index(np.asarray(uniques, dtype=object).astype(str), dtype="str"),
                   wcode[pos].astype(np.int64), t[pos], x, y,
                   kept["stay_id"].to_numpy(dtype=np.int64),
                   kept["trip_id"].to_numpy(dtype=np.int64))
    summary = pd.DataFrame({"reason": [*REASONS, "kept"],
                            "fixes": [0] * len(REASONS) + [len(pos)]})
    summary["share"] = summary["fixes"] / max(len(fixes), 1)
    return CleanResult(kept, fixes.iloc[:0].assign(reason=pd.Series(dtype="str")), summary,
                       _trips(track), crs, rules, track)


def _track_of(cleaned: CleanResult) -> _Track:
    if cleaned._track is not None:
        return cleaned._track
    return _as_cleaned(cleaned.fixes, cleaned.rules)._track  # type: ignore[return-value]


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
