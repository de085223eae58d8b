"""Cleaning GPS fixes into tracks and trips (:func:`clean_fixes`).

Split out of :mod:`geo.patrol` (which re-exports :func:`clean_fixes`); see that module for the
conventions and how time in grid is counted. Pure: no I/O.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from pyproj import CRS, Transformer

from geo import _patrol_clean as _c
from geo._patrol_input import (
    _NAT,
    _NS,
    REASONS,
    CleaningRules,
    CleanResult,
    _as_str,
    _check_fixes,
    _lonlat,
    _metric_crs,
    _project,
    _raise,
    _times_ns,
    _Track,
)
from geo.crs import DATUMS, Datum, convert_lonlat


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
