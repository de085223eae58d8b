"""Patrol inputs: limits, reason codes, input errors, rule and result types, input checks.

Split out of :mod:`geo.patrol` (which re-exports every public name here); see that module
for the conventions. Pure: no I/O.
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
from geo._errors import GeoError
from geo.crs import local_metric_crs
from geo.domain import LOCAL_TZ

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


def _share(num: NDArray, den: NDArray) -> NDArray[np.float64]:
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out
