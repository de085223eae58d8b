"""The patrol page's pieces (巡查): cached patrol figures, the track map, the replay, the tables.

The figures come from :mod:`geo.patrol`; this module only decides what to read and caches it.

Caching
-------
* :func:`compliance` reads the patrol summary kept at write time (:mod:`layers.summaries`):
  per day, a few thousand rows for the whole district (time in grid, A/B post coverage,
  cleaning counts), shared by all sessions through ``st.cache_resource``; narrowing the view
  is a filter. No GPS fix is read for it (it used to cache a whole day of fixes: ~0.5 GB).
* :func:`worker_day` reads and cleans one worker's day (a few hundred fixes) for the map.
* :func:`scope_coverage` reads the fixes around a grid or community (R-tree ``bbox`` read) for
  the window plus a week of history, and runs :func:`geo.patrol.coverage`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import streamlit as st

from dashboard import _html, maps, state
from dashboard.widgets import admin_names, translator
from geo import patrol
from geo.crs import convert_geometries, local_metric_crs
from geo.hexes import cells_to_polygons, lonlat_to_cells
from layers import analysis, summaries
from layers.i18n import t
from layers.privacy import mask_personal

#: Longest date range the page computes (days).
MAX_RANGE_DAYS = 31
#: Fixes this close to a day's edges are read too, so intervals across midnight count (the
#: summaries' window, so a worker's drilled-down day matches the table).
MARGIN = summaries.MARGIN
#: A building or H3 cell not visited for this many days is stale.
STALE_DAYS = 7.0
#: H3 resolution of the coverage cells (about 2,150 m² each).
CELL_RES = 11
#: A fix within this many metres of a building or cell centre is a visit.
VISIT_RADIUS_M = 30.0
#: The cleaning rules applied everywhere on the page (the engine's defaults: e-bike speeds).
RULES = patrol.CleaningRules()
#: Tolerance (m) of the track simplification before it is sent to the browser.
TRACK_TOLERANCE_M = 3.0
#: The drawn track breaks where two fixes are further apart than this in time (s) or space (m):
#: a straight line across a gap would claim a path nobody walked (fixes come every ~30 s).
TRACK_BREAK_S = 300.0
TRACK_BREAK_M = 150.0
#: More unvisited buildings than this are drawn as H3 totals instead of one circle each.
BUILDING_MARKERS_MAX = 400
#: Staleness classes of the cells: upper bounds in hours, then "never visited".
STALE_BOUNDS_H: tuple[float, ...] = (24.0, 72.0, STALE_DAYS * 24.0, np.inf)
STALE_KEYS: tuple[str, ...] = ("stale_le_1d", "stale_1_3d", "stale_3_7d", "stale_gt_7d", "stale_never")
STALE_COLOURS: tuple[str, ...] = ("#1a9850", "#91cf60", "#fee08b", "#fc8d59", "#d73027")
#: Map styles.
OWN_GRID_STYLE = {"color": "#0057b8", "weight": 3.5, "opacity": 1.0, "fill": False}
SCOPE_STYLE = {"color": "#5f6b7a", "weight": 1.2, "opacity": 0.9, "fill": False, "dashArray": "5 4"}
TRACK_FULL_STYLE = {"color": "#7a4fd0", "weight": 2.0, "opacity": 0.35, "fill": False}
TRACK_NOW_STYLE = {"color": "#5b21b6", "weight": 3.5, "opacity": 0.95, "fill": False}
BUILDING_STYLE = {"color": "#b10026", "weight": 1.0, "fillColor": "#e31a1c", "fillOpacity": 0.85}


#: A patrol-page label in the session's language (``key`` without ``patrol_page.``).
tp = translator("patrol_page")
#: A ``format_func`` for ``patrol_page.<prefix><value>`` in the language of this run.
tp_fn = tp.fn


# --------------------------------------------------------------------------- dates and scope


def default_day() -> date:
    """Yesterday of the dashboard's "now" (the demo anchor while the demo is loaded)."""
    return (state.now().normalize() - pd.Timedelta(days=1)).date()


def days_between(start: date, end: date, *, cap: int = MAX_RANGE_DAYS) -> list[pd.Timestamp]:
    """Every day from ``start`` to ``end`` (both included; swapped if reversed), at most ``cap``.

    Examples
    --------
    >>> [d.day for d in days_between(date(2026, 11, 19), date(2026, 11, 17))]
    [17, 18, 19]
    >>> len(days_between(date(2026, 1, 1), date(2026, 12, 31), cap=31))
    31
    """
    lo, hi = sorted((pd.Timestamp(start), pd.Timestamp(end)))
    return list(pd.date_range(lo, hi, freq="D"))[:cap]


def scope_grids(v: state.View) -> pd.DataFrame:
    """Grids of the view (grid, community, sub-district or the whole district).

    Columns ``code, name, kind, community_code, subdistrict_code`` (every grid kind).
    """
    grids = state.layer("grids", ["code", "name", "kind", "community_code"])
    coms = state.layer("communities", ["code", "subdistrict_code"])
    sub_of = dict(zip(coms["code"], coms["subdistrict_code"], strict=False))
    out = pd.DataFrame({
        "code": grids["code"].to_numpy(), "name": grids["name"].to_numpy(),
        "kind": grids["kind"].to_numpy(), "community_code": grids["community_code"].to_numpy(),
    })
    out["subdistrict_code"] = out["community_code"].map(sub_of)
    if v.grid:
        return out[out["code"] == v.grid]
    if v.com:
        return out[out["community_code"] == v.com]
    if v.sub:
        return out[out["subdistrict_code"] == v.sub]
    return out


def scope_name(v: state.View) -> str:
    """Name of the view's smallest unit (``全区`` at district level)."""
    names = admin_names()
    for code in (v.grid, v.com, v.sub):
        if code:
            return names.get(code, code)
    return tp("district")


def masked_workers() -> pd.DataFrame:
    """The workers inside the signed-in account's scope, names and phones masked (PIPL), by id."""
    w = state.scoped(state.layer("workers", ["id", "name", "phone", "role", "grid_code", "post"]),
                     "workers")
    out = mask_personal(w, "workers")
    out.index = pd.Index(out["id"].to_numpy(), name=None)
    return out


def scope_workers(grids: pd.DataFrame) -> pd.DataFrame:
    """Masked workers whose grid is one of ``grids``, ordered by grid, post and id."""
    w = masked_workers()
    w = w[w["grid_code"].isin(grids["code"])]
    post = w["post"].fillna("Z").astype(str)
    return w.assign(_p=post.to_numpy()).sort_values(["grid_code", "_p", "id"]).drop(columns="_p")


def worker_label(row: pd.Series) -> str:
    """``张** · W000123 · A岗``."""
    post = row.get("post")
    post_text = tp(f"post.{post}") if isinstance(post, str) and post in ("A", "B") else tp("post.none")
    return tp("filter.worker_label", name=row["name"], id=row["id"], post=post_text)


def worker_labels(workers: pd.DataFrame) -> dict[str, str]:
    """:func:`worker_label` of every worker, by id: the catalogue is looked up once per post
    (not twice per worker: a district has thousands)."""
    lang = state.lang()
    posts = {p: tp(f"post.{p}") for p in ("A", "B")}
    none = tp("post.none")
    pattern = t("patrol_page.filter.worker_label", lang, name="\x00N", id="\x00I", post="\x00P")
    out = {}
    for wid, name, post in zip(workers["id"], workers["name"], workers["post"], strict=True):
        text = posts.get(post, none) if isinstance(post, str) else none
        out[wid] = (pattern.replace("\x00N", str(name)).replace("\x00I", str(wid))
                    .replace("\x00P", text))
    return out


# --------------------------------------------------------------------------- compliance


def _read_fixes(**kw: Any) -> gpd.GeoDataFrame:
    store = state.get_store()
    if "patrol_points" not in state.locked(store.layer_names):
        return gpd.GeoDataFrame({"worker_id": pd.Series(dtype="str"), "time": pd.Series(dtype="datetime64[ns]")},
                                geometry=gpd.GeoSeries([], crs=4326), crs=4326)
    return state.locked(store.read, "patrol_points", columns=["worker_id", "time", "accuracy_m"], **kw)


def _day_window(day: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    return summaries.day_window(day)


def _account() -> Any:
    """The signed-in account (the job's actor and scope); the OS user outside a session."""
    from dashboard import _auth
    from layers.app import os_account

    return _auth.account() or os_account()


@st.cache_resource(max_entries=32, show_spinner=False)
def _day_figures(url: str, version: str, day: pd.Timestamp,
                 scope: tuple[str, str, str] = ("", "", ""), _acc: Any = None) -> analysis.PatrolHours:
    """Every patrol figure of ``day`` inside the account's scope: :func:`layers.analysis.patrol_job`
    (the job ``gridpulse patrols`` and ``GET /api/v1/patrols`` run: checked, scoped, audited).

    It reads the patrol summary kept at write time (:mod:`layers.summaries`): a few thousand
    rows, shared by the sessions of one scope until the data changes; no fix is read.
    """
    grids = state.layer("grids", ["code"])
    workers = state.layer("workers", ["id", "grid_code", "post"])
    return state.locked(analysis.patrol_job, state.get_store(), _acc or _account(), day=day,
                        current=(grids, workers))


@dataclass(frozen=True)
class Compliance:
    """Patrol figures of a scope over some days."""

    per_worker: pd.DataFrame  # one row per worker and day (time_in_grid + day, role, name)
    per_grid: pd.DataFrame  # one row per grid and day (post_coverage + day)
    dropped: pd.DataFrame  # reason, fixes (summed; "kept" included)


def compliance(grids: pd.DataFrame, days: Sequence[pd.Timestamp]) -> Compliance:
    """Time in grid, A/B post coverage and cleaning counts for ``grids`` on ``days``."""
    url, version = state.settings().store_url, state.data_version()
    acc = _account()
    parts = [_day_figures(url, version, pd.Timestamp(day).normalize(), state.scope_key(), acc)
             for day in days]
    codes = set(grids["code"])
    workers = masked_workers()
    if parts:
        pw = pd.concat([p.per_worker for p in parts], ignore_index=True)
        pg = pd.concat([p.per_grid for p in parts], ignore_index=True)
        dr = pd.concat([p.cleaning for p in parts], ignore_index=True)
    else:
        pw = pd.DataFrame(columns=["worker_id", "grid_code", "n_fixes", "day"])
        pg = pd.DataFrame(columns=["grid_code", "workers", "day"])
        dr = pd.DataFrame(columns=["worker_id", "reason", "fixes"])
    pw = pw[pw["grid_code"].isin(codes) & pw["worker_id"].isin(workers.index)].copy()
    pw["name"] = pw["worker_id"].map(workers["name"])
    pw["role"] = pw["worker_id"].map(workers["role"])
    pg = pg[pg["grid_code"].isin(codes)]
    in_scope = set(workers.loc[workers["grid_code"].isin(codes), "id"])
    dr = dr[dr["worker_id"].isin(in_scope)].groupby("reason", sort=False)["fixes"].sum()
    order = [*patrol.REASONS, "kept"]
    dropped = pd.DataFrame({"reason": order, "fixes": dr.reindex(order, fill_value=0).astype(int).to_numpy()})
    return Compliance(pw, pg, dropped)


def kpis(c: Compliance) -> dict[str, float]:
    """Headline numbers: workers tracked, rule shares, mean hours, A/B coverage, dropped share."""
    tracked = c.per_worker[c.per_worker["n_fixes"] > 0]
    full = tracked[tracked["role"] == "full_time"]
    staffed = c.per_grid[c.per_grid["workers"] > 0]
    total = float(c.dropped["fixes"].sum())
    dropped = float(c.dropped.loc[c.dropped["reason"] != "kept", "fixes"].sum())
    share = patrol.compliance_summary(full)["compliance_share"].iloc[0] if len(full) else np.nan
    share_all = patrol.compliance_summary(tracked)["compliance_share"].iloc[0] if len(tracked) else np.nan
    return {
        "workers": float(tracked["worker_id"].nunique()),
        "meeting": float(share),
        "meeting_all": float(share_all),
        "mean_hours": float(tracked["hours_in_grid"].mean()) if len(tracked) else np.nan,
        "a_h": float(staffed["a_h"].mean()) if len(staffed) else np.nan,
        "b_h": float(staffed["b_h"].mean()) if len(staffed) else np.nan,
        "covered_h": float(staffed["covered_h"].mean()) if len(staffed) else np.nan,
        "dropped": dropped,
        "dropped_share": dropped / total if total else np.nan,
    }


def table_rows(c: Compliance, *, with_day: bool) -> pd.DataFrame:
    """The compliance table (raw values; the page labels the columns), by grid then worker."""
    names = admin_names()
    pw = c.per_worker
    rows = pd.DataFrame({
        "day": pd.to_datetime(pw["day"]).dt.date,
        "grid": pw["grid_code"].map(names).fillna(pw["grid_code"]),
        "grid_code": pw["grid_code"],
        "worker_id": pw["worker_id"],
        "name": pw["name"],
        "role": pw["role"].map({r: tp(f"role.{r}") for r in ("grid_leader", "full_time", "part_time")}).fillna("—"),
        "post": pw["post"].map({p: tp(f"post.{p}") for p in ("A", "B")}).fillna("—"),
        "hours_in_grid": pw["hours_in_grid"].astype(float).round(2),
        "meets_rule": np.where(pw["meets_rule"].astype(bool), "✓", "✗"),
        "hours_tracked": pw["hours_tracked"].astype(float).round(2),
        "distance_km": pw["distance_km"].astype(float).round(2),
        "first_fix": pd.to_datetime(pw["first_fix"]).dt.strftime("%H:%M").fillna("—"),
        "last_fix": pd.to_datetime(pw["last_fix"]).dt.strftime("%H:%M").fillna("—"),
        "n_fixes": pw["n_fixes"].astype(int),
    })
    rows = rows.sort_values(["grid_code", "post", "worker_id", "day"], kind="stable")
    if with_day:  # over a range, only the days a worker patrolled (part-timers work some days)
        return rows[rows["n_fixes"] > 0].reset_index(drop=True)
    return rows.drop(columns="day").reset_index(drop=True)


def dropped_rows(c: Compliance) -> pd.DataFrame:
    """What cleaning dropped, by reason (translated), then the kept fixes."""
    total = int(c.dropped["fixes"].sum())
    lang = state.lang()
    return pd.DataFrame({
        "reason": [t(f"patrol.reason.{r}", lang) for r in c.dropped["reason"]],
        "fixes": c.dropped["fixes"].astype(int).to_numpy(),
        "share": (c.dropped["fixes"] / total * 100).round(2).to_numpy() if total else 0.0,
    })


# --------------------------------------------------------------------------- one worker's day


@dataclass(frozen=True)
class Track:
    """One worker's kept fixes on one day, sorted by time (metric and WGS-84 coordinates)."""

    time: np.ndarray  # datetime64[ns]
    x: np.ndarray
    y: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    trip: np.ndarray
    crs: Any

    def __len__(self) -> int:
        return int(self.time.shape[0])


@st.cache_resource(max_entries=128, show_spinner=False)
def _worker_day(url: str, version: str, worker_id: str, day: pd.Timestamp) -> Track:
    fixes = _read_fixes(where={"worker_id": worker_id}, between={"time": _day_window(day)})
    clean = patrol.clean_fixes(fixes, rules=RULES)
    fx = clean.fixes
    tt = pd.to_datetime(fx["time"]).to_numpy(dtype="datetime64[ns]")
    on_day = (tt >= np.datetime64(day, "ns")) & (tt < np.datetime64(day + pd.Timedelta(days=1), "ns"))
    fx = fx[on_day]
    xy = shapely.get_coordinates(np.asarray(fx.geometry.values, dtype=object))
    return Track(tt[on_day], fx["x_m"].to_numpy(float), fx["y_m"].to_numpy(float),
                 xy[:, 0] if len(xy) else np.zeros(0), xy[:, 1] if len(xy) else np.zeros(0),
                 fx["trip_id"].to_numpy(np.int64), clean.crs)


def worker_day(worker_id: str, day: pd.Timestamp) -> Track:
    """One worker's cleaned fixes on ``day`` (cached)."""
    return _worker_day(state.settings().store_url, state.data_version(), worker_id, pd.Timestamp(day))


def track_geometry(track: Track, cfg: maps.MapConfig, *, upto: np.datetime64 | None = None,
                   tolerance_m: float = TRACK_TOLERANCE_M) -> gpd.GeoDataFrame:
    """The track (up to ``upto``) as one simplified multi-line, in the map's datum, rounded.

    Trips are drawn apart, and so are the pieces of a trip between a gap or a jump
    (:func:`track_parts`); simplification runs in the metric CRS.
    """
    keep = np.ones(len(track), dtype=bool) if upto is None else track.time <= upto
    x, y = track.x[keep], track.y[keep]
    part = track_parts(track.time[keep], x, y, track.trip[keep])
    ids, counts = np.unique(part, return_counts=True)
    ok = np.isin(part, ids[counts >= 2])
    if not ok.any():
        return gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs=4326), crs=4326)
    _, index = np.unique(part[ok], return_inverse=True)  # 0..n-1 with no gap (single fixes dropped)
    lines = shapely.linestrings(np.column_stack([x[ok], y[ok]]), indices=index)
    geom = shapely.simplify(shapely.multilinestrings(lines), tolerance_m)
    gs = gpd.GeoSeries([geom], crs=track.crs).to_crs(4326)
    out = np.asarray(gs.values, dtype=object)
    if cfg.datum != "wgs84":
        out = convert_geometries(out, src="wgs84", dst=cfg.datum)  # type: ignore[arg-type]
    return gpd.GeoDataFrame(geometry=maps.round_coordinates(out), crs=4326)


def track_parts(time: np.ndarray, x: np.ndarray, y: np.ndarray, trip: np.ndarray, *,
                max_gap_s: float = TRACK_BREAK_S, max_step_m: float = TRACK_BREAK_M) -> np.ndarray:
    """A piece number per fix: a new piece starts at a new trip, after a gap longer than
    ``max_gap_s``, or after a step longer than ``max_step_m`` (metric ``x``/``y``).

    Examples
    --------
    >>> t = np.array([0, 30, 60, 600, 630, 660], dtype="datetime64[s]")
    >>> track_parts(t, np.array([0., 20, 40, 60, 80, 500]), np.zeros(6), np.zeros(6, int)).tolist()
    [0, 0, 0, 1, 1, 2]
    """
    if len(time) == 0:
        return np.zeros(0, dtype=np.int64)
    gap_s = np.diff(np.asarray(time, dtype="datetime64[ns]")).astype(np.int64) / 1e9
    step_m = np.hypot(np.diff(x), np.diff(y))
    trip = np.asarray(trip)
    cut = (trip[1:] != trip[:-1]) | (gap_s > max_gap_s) | (step_m > max_step_m)
    return np.concatenate(([0], np.cumsum(cut))).astype(np.int64)


def position_at(track: Track, when: np.datetime64) -> tuple[float, float, float] | None:
    """``(lon, lat, km walked)`` of the last fix at or before ``when`` (WGS-84), or ``None``."""
    i = int(np.searchsorted(track.time, when, side="right")) - 1
    if i < 0:
        return None
    dx, dy = np.diff(track.x[: i + 1]), np.diff(track.y[: i + 1])
    same = track.trip[1: i + 1] == track.trip[:i]
    km = float(np.hypot(dx, dy)[same].sum() / 1000.0)
    return float(track.lon[i]), float(track.lat[i]), km


def inside_grid(code: str, lon: float, lat: float) -> bool:
    """True when WGS-84 ``(lon, lat)`` lies in grid ``code``."""
    g = state.layer("grids", ["code"])
    hit = g[g["code"] == code]
    return bool(len(hit)) and bool(shapely.intersects_xy(hit.geometry.values[0], lon, lat))


# --------------------------------------------------------------------------- coverage


@st.cache_resource(max_entries=32, show_spinner=False)
def _coverage(url: str, version: str, codes: tuple[str, ...], start: pd.Timestamp,
              end: pd.Timestamp) -> patrol.CoverageResult:
    grids = state.layer("grids")
    grids = grids[grids["code"].isin(codes)]
    buildings = state.layer("buildings", ["id", "kind", "households", "grid_code"])
    buildings = buildings[buildings["grid_code"].isin(codes)]
    x0, y0, x1, y1 = (float(v) for v in grids.total_bounds)
    pad = 0.0006  # ~60 m: fixes just outside still visit buildings at the edge
    history = min(start, end - pd.Timedelta(days=STALE_DAYS))
    fixes = _read_fixes(bbox=(x0 - pad, y0 - pad, x1 + pad, y1 + pad), between={"time": (history, end)})
    clean = patrol.clean_fixes(fixes, rules=RULES)
    return patrol.coverage(clean, grids, buildings, start=start, end=end, res=CELL_RES,
                           visit_radius_m=VISIT_RADIUS_M, stale_days=STALE_DAYS)


def scope_coverage(codes: Sequence[str], days: Sequence[pd.Timestamp]) -> patrol.CoverageResult | None:
    """Coverage of the grids ``codes`` over ``days`` (a week of history for the staleness)."""
    if not len(codes) or not len(days):
        return None
    start = pd.Timestamp(min(days))
    end = pd.Timestamp(max(days)) + pd.Timedelta(days=1)
    return _coverage(state.settings().store_url, state.data_version(), tuple(sorted(codes)), start, end)


def coverage_codes(v: state.View, worker_grid: str | None) -> list[str]:
    """Grids the coverage is computed for: the view's grid or community, else the worker's grid."""
    if v.grid:
        return [v.grid]
    if v.com:
        g = state.layer("grids", ["code", "community_code"])
        return sorted(g.loc[g["community_code"] == v.com, "code"].tolist())
    return [worker_grid] if worker_grid else []


def stale_rows(cov: patrol.CoverageResult) -> pd.DataFrame:
    """Buildings nobody visited in the week before the window's end, by grid then id."""
    names = admin_names()
    b = state.layer("buildings", ["id", "households"]).set_index("id")["households"]
    s = cov.stale_buildings
    last = pd.to_datetime(s["last_visit"])
    return pd.DataFrame({
        "id": s["id"].to_numpy(),
        "grid": s["grid_code"].map(names).fillna(s["grid_code"]).to_numpy(),
        "households": s["id"].map(b).to_numpy(),
        "last_visit": np.where(last.isna(), tp("stale.never"), last.dt.strftime("%m-%d %H:%M")),
    }).sort_values(["grid", "id"]).reset_index(drop=True)


def staleness_class(hours: Any) -> np.ndarray:
    """Class of each cell's staleness (:data:`STALE_KEYS`); NaN (never visited) is the last.

    Examples
    --------
    >>> staleness_class([1.0, 30.0, 100.0, 500.0, float("nan")]).tolist()
    [0, 1, 2, 3, 4]
    """
    h = np.asarray(hours, dtype=float)
    cls = np.searchsorted(np.asarray(STALE_BOUNDS_H), h, side="left")
    return np.where(np.isnan(h), len(STALE_KEYS) - 1, np.minimum(cls, len(STALE_KEYS) - 2))


# --------------------------------------------------------------------------- the map


def _bounds(codes: Sequence[str]) -> np.ndarray | None:
    g = state.layer("grids", ["code"])
    hit = g[g["code"].isin(codes)]
    if hit.empty:
        return None
    b = hit.total_bounds
    pad = max(b[2] - b[0], b[3] - b[1]) * 0.12
    return np.array([b[0] - pad, b[1] - pad, b[2] + pad, b[3] + pad])


def _buildings_layer(m: folium.Map, cov: patrol.CoverageResult, cfg: maps.MapConfig) -> list[tuple[str, str, str]]:
    stale = cov.stale_buildings
    if stale.empty:
        return []
    pts = state.layer("buildings", ["id"]).set_index("id").geometry.reindex(stale["id"].to_numpy())
    pts = gpd.GeoSeries(pts.to_numpy(), crs=4326)
    if len(stale) > BUILDING_MARKERS_MAX:  # aggregate: H3 totals, never thousands of shapes
        cells = lonlat_to_cells(pts.x.to_numpy(), pts.y.to_numpy(), res=10)
        counts = pd.Series(cells).value_counts().rename_axis("cell").reset_index(name="count")
        layer, rows = maps.hex_layer(counts, name=tp("map.buildings_hex"), label=tp("map.buildings"), cfg=cfg)
        layer.add_to(m)
        return rows
    metric = pts.to_crs(local_metric_crs(pts))
    circles = gpd.GeoSeries(metric.buffer(7.0, quad_segs=3), crs=metric.crs).to_crs(4326)
    geoms = np.asarray(circles.values, dtype=object)
    if cfg.datum != "wgs84":
        geoms = convert_geometries(geoms, src="wgs84", dst=cfg.datum)  # type: ignore[arg-type]
    days = stale["days_since_visit"].to_numpy(dtype=float)
    gdf = gpd.GeoDataFrame({"id": stale["id"].to_numpy(),
                            "days": np.where(np.isnan(days), None, np.round(days, 1))},
                           geometry=maps.round_coordinates(geoms, decimals=6), crs=4326)
    maps.PolygonLayer(gdf, name=tp("map.buildings"), styles=[BUILDING_STYLE],
                      tooltip=[("id", tp("map.building_id")), ("days", tp("map.days"))],
                      css_name="stale-bld").add_to(m)
    return [(BUILDING_STYLE["fillColor"], tp("map.buildings"), "fill")]


def build_map(cfg: maps.MapConfig, *, own_grid: str | None, codes: Sequence[str],
              cov: patrol.CoverageResult | None, track: Track | None) -> folium.Map:
    """The static part of the map: grids, H3 cells by staleness, unvisited buildings, whole track.

    Nothing here depends on the replay time, so the map is not reloaded when the slider moves
    (the moving part is :func:`replay_group`).
    """
    focus = list(codes) or ([own_grid] if own_grid else [])
    m = maps.base_map(cfg, bounds=_bounds(focus))
    legend: list[tuple[str, list[tuple[str, str, str]]]] = []
    if cov is not None and len(cov.cells):
        cells = cov.cells
        geoms = cells_to_polygons(cells["cell"].to_numpy())
        if cfg.datum != "wgs84":
            geoms = convert_geometries(geoms, src="wgs84", dst=cfg.datum)  # type: ignore[arg-type]
        hours = cells["staleness_h"].to_numpy(dtype=float)
        gdf = gpd.GeoDataFrame({"h": np.where(np.isnan(hours), None, np.round(hours, 1))},
                               geometry=maps.round_coordinates(geoms), crs=4326)
        styles = [{"color": c, "weight": 0.4, "opacity": 0.6, "fillColor": c, "fillOpacity": 0.45}
                  for c in STALE_COLOURS]
        maps.PolygonLayer(gdf, name=tp("map.cells"), styles=styles, style_index=staleness_class(hours),
                          tooltip=[("h", tp("map.staleness"))], css_name="cells").add_to(m)
        legend.append((tp("map.cells"), [(c, tp(f"map.{k}"), "fill")
                                         for c, k in zip(STALE_COLOURS, STALE_KEYS, strict=True)]))
    lines: list[tuple[str, str, str]] = []
    if codes:
        shapes = state.display_layer("grids", cfg, columns=("code", "name"))
        scope = shapes[shapes["code"].isin(codes)]
        maps.PolygonLayer(scope, name=tp("map.scope_grids"), styles=[SCOPE_STYLE],
                          tooltip=[("name", tp("table.grid")), ("code", tp("table.grid_code"))],
                          css_name="scope").add_to(m)
        lines.append((SCOPE_STYLE["color"], tp("map.scope_grids"), "line"))
    if cov is not None:
        rows = _buildings_layer(m, cov, cfg)
        if rows:
            legend.append((tp("map.buildings"), rows))
    if own_grid:
        shapes = state.display_layer("grids", cfg, columns=("code", "name"))
        own = shapes[shapes["code"] == own_grid]
        maps.PolygonLayer(own, name=tp("map.own_grid"), styles=[OWN_GRID_STYLE], interactive=False,
                          css_name="own").add_to(m)
        lines.append((OWN_GRID_STYLE["color"], tp("map.own_grid"), "line"))
    if track is not None and len(track):
        full = track_geometry(track, cfg)
        if len(full):
            maps.PolygonLayer(full, name=tp("map.track_full"), styles=[TRACK_FULL_STYLE],
                              interactive=False, css_name="track-full").add_to(m)
            lines.append((TRACK_FULL_STYLE["color"], tp("map.track_full"), "line"))
        lines.append((TRACK_NOW_STYLE["color"], tp("map.track_so_far"), "line"))
    legend.insert(0, (tp("map.track"), lines))
    maps.Legend(legend).add_to(m)
    bounds = _bounds(focus)
    if bounds is not None:  # the grid beside the legend, not under it
        (x0, x1), (y0, y1) = maps.to_display_lonlat([bounds[0], bounds[2]], [bounds[1], bounds[3]], cfg)
        maps.FitBesideLegend([x0, y0, x1, y1], side="right").add_to(m)
    return maps.finish(m, cfg)


def replay_group(track: Track, cfg: maps.MapConfig, when: np.datetime64) -> folium.FeatureGroup:
    """The moving part of the replay: the track up to ``when`` and the position marker."""
    fg = folium.FeatureGroup(name="replay")
    so_far = track_geometry(track, cfg, upto=when)
    if len(so_far):
        maps.PolygonLayer(so_far, name=tp("map.track_so_far"), styles=[TRACK_NOW_STYLE],
                          interactive=False, css_name="track-now").add_to(fg)
    pos = position_at(track, when)
    if pos is not None:
        (x,), (y,) = maps.to_display_lonlat([pos[0]], [pos[1]], cfg)
        folium.CircleMarker([round(float(y), 5), round(float(x), 5)], radius=8, color="#ffffff", weight=3,
                            fill=True, fill_color="#e4007c", fill_opacity=1.0,
                            class_name="gp-position").add_child(_html.Tooltip(tp("map.position"))).add_to(fg)
    return fg


__all__ = [
    "BUILDING_MARKERS_MAX", "CELL_RES", "MAX_RANGE_DAYS", "STALE_DAYS", "Compliance", "Track",
    "build_map", "compliance", "coverage_codes", "days_between", "default_day", "dropped_rows", "inside_grid",
    "kpis", "masked_workers", "position_at", "replay_group", "scope_coverage", "scope_grids", "scope_name",
    "scope_workers", "stale_rows", "staleness_class", "table_rows", "tp", "tp_fn", "track_geometry", "track_parts",
    "worker_day",
    "worker_label", "worker_labels",
]
