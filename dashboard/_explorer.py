"""The grid explorer's pieces: the per-grid table, the map, drill-down clicks, the grid card.

The page (:mod:`dashboard.views.explorer`) only wires these together. Personal fields are
masked (the grid leader on the card, by :func:`dashboard._kpis.grid_table`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import streamlit as st

from dashboard import _html, maps, state
from dashboard import _kpis as kpis
from dashboard.widgets import fmt_int, tr
from geo.crs import to_metric
from layers import plans

#: Map styles per layer.
SUB_STYLE = {"color": "#1d3557", "weight": 3, "opacity": 0.95, "fill": True, "fillOpacity": 0.0}
COM_STYLE = {"color": "#457b9d", "weight": 1.8, "opacity": 0.9, "fill": True, "fillOpacity": 0.0,
             "dashArray": "6 4"}
COMP_STYLE = {"color": "#3a6ea5", "weight": 1.0, "opacity": 0.85, "fillColor": "#4c78a8",
              "fillOpacity": 0.10}
DED_STYLE = {"color": "#7b2cbf", "weight": 1.5, "opacity": 0.95, "fillColor": "#9b59b6",
             "fillOpacity": 0.28, "dashArray": "3 3"}
SEL_STYLE = {"color": "#00b4d8", "weight": 4, "opacity": 1.0, "fill": False}
NODATA = "#c8c8c8"
#: H3 resolution of the incident hexes (~0.1 km² cells).
HEX_RES = 9


# --------------------------------------------------------------------------- data


@st.cache_resource(max_entries=4, show_spinner=False)
def _grid_table(url: str, version: str, now: pd.Timestamp) -> pd.DataFrame:
    grids = state.layer("grids")
    incidents = state.layer("incidents", ["service_request_id", "grid_code", "requested_datetime"])
    return kpis.grid_table(
        grids, state.layer("communities", ["code", "name", "subdistrict_code"]),
        state.layer("subdistricts", ["code", "name"]),
        state.layer("workers", ["id", "grid_code", "post", "role"]),
        incidents, None, now=now,
    )


# --------------------------------------------------------------------------- boundaries of a date


def as_of(day: Any) -> plans.Boundaries | None:
    """The plan version in force on ``day`` (:func:`layers.plans.boundaries_at`); ``None``
    when no plan version is saved (the live layers are all there is)."""
    return _as_of(state.settings().store_url, state.data_version(), pd.Timestamp(day).normalize())


@st.cache_resource(max_entries=8, show_spinner=False)
def _as_of(url: str, version: str, day: pd.Timestamp) -> plans.Boundaries | None:
    store = state.get_store()
    if not state.locked(plans.has_versions, store):
        return None
    return state.locked(plans.boundaries_at, store, day)


def _live_version(url: str, version: str) -> int | None:
    vers = _versions(url, version)
    live = vers.loc[vers["live"].astype(bool), "version"] if len(vers) else []
    return int(live.iloc[0]) if len(live) else None


@st.cache_resource(max_entries=4, show_spinner=False)
def _versions(url: str, version: str) -> pd.DataFrame:
    return state.locked(plans.plan_versions, state.get_store(), settle=False)


def past_boundaries(day: Any) -> plans.Boundaries | None:
    """The boundaries to draw for ``day`` when they are not the live layers' (``None``: draw
    the live layers: no version saved, or the version in force then is the live one)."""
    b = as_of(day)
    if b is None or b.version == _live_version(state.settings().store_url, state.data_version()):
        return None
    return b


def version_caption(day: Any) -> str:
    """Which plan version is in force on ``day`` and since when (Markdown, escaped)."""
    d = pd.Timestamp(day).normalize()
    b = as_of(d)
    if b is None:
        return tr_v("explorer.live")
    if b.before_first:
        return tr_v("explorer.before_first", date=f"{d:%Y-%m-%d}", version=b.version,
                    since=f"{b.effective:%Y-%m-%d}")
    until = tr_v("explorer.until", date=f"{b.until:%Y-%m-%d}") if b.until is not None else ""
    return tr_v("explorer.caption", date=f"{d:%Y-%m-%d}", version=b.version,
                since=f"{b.effective:%Y-%m-%d}", until=until)


def tr_v(key: str, **params: Any) -> str:
    """A label of the plan versions (``versions.<key>``) in the session's language."""
    from layers.i18n import t

    return t(f"versions.{key}", state.lang(), **params)


@st.cache_resource(max_entries=4, show_spinner=False)
def _grid_table_at(url: str, version: str, now: pd.Timestamp, day: pd.Timestamp) -> pd.DataFrame:
    b = past_boundaries(day)
    assert b is not None
    incidents = state.layer("incidents", ["service_request_id", "grid_code", "requested_datetime"])
    workers = state.layer("workers", ["id", "grid_code", "post", "role"])
    _, workers = state.locked(plans.assignments_at, state.get_store(), day, b.grids, workers)
    return kpis.grid_table(
        b.grids, state.layer("communities", ["code", "name", "subdistrict_code"]),
        state.layer("subdistricts", ["code", "name"]), workers, incidents, None, now=now,
    )


@st.cache_resource(max_entries=4, show_spinner=False)
def _shapes_at(url: str, version: str, day: pd.Timestamp, datum: str) -> gpd.GeoDataFrame:
    b = past_boundaries(day)
    assert b is not None
    g = b.grids
    parts = [maps.prepare_polygons(g.loc[g["kind"] == k, ["code", "kind", g.geometry.name]],
                                   tolerance_m=4.0, datum=datum)
             for k in ("comprehensive", "dedicated")]
    return pd.concat(parts)


def grids_of(day: Any = None) -> gpd.GeoDataFrame:
    """The grids in force on ``day`` (default: the live layer, also when it is the one in force):
    what clicks locate, the selection outlines and the breadcrumb's names."""
    b = past_boundaries(day) if day is not None else None
    return state.layer("grids") if b is None else b.grids


def grid_shapes(cfg: maps.MapConfig, day: Any = None) -> gpd.GeoDataFrame:
    """The grids drawn for ``day`` (default: the live layer), ready for the browser."""
    if day is None or past_boundaries(day) is None:
        return state.display_layer("grids", cfg, columns=("code", "kind"))
    return _shapes_at(state.settings().store_url, state.data_version(),
                      pd.Timestamp(day).normalize(), cfg.datum)


def grid_table(*, with_patrol_hours: bool = False, day: Any = None) -> pd.DataFrame:
    """One row per grid in force on ``day`` (default today) with card fields and choropleth
    metrics (shared, read-only).

    Patrol hours are those of the latest day with GPS fixes up to ``day`` (:func:`patrol_day`):
    the hours in which at least one of the grid's own workers was inside it (A/B post
    coverage), NaN for a grid without workers, under the grids and posts in force that day.
    They are filled only when asked for (the patrol-hours choropleth); the grid card reads its
    own grid's.
    """
    if day is not None and past_boundaries(day) is not None:  # another date's boundaries
        table = _grid_table_at(state.settings().store_url, state.data_version(), state.now(),
                               pd.Timestamp(day).normalize())
    else:
        table = _grid_table(state.settings().store_url, state.data_version(), state.now())
    if not with_patrol_hours:
        return table
    patrol = _patrol(day)
    if patrol is None:
        return table
    return table.assign(patrol_hours=_coverage_hours(patrol.per_grid).reindex(table.index)
                        .round(1).to_numpy())


def _patrol(day: Any = None) -> kpis.PatrolDay | None:
    """The district's patrol figures of :func:`patrol_day` ``(day)``, counted under the grids and
    posts in force on that patrol day."""
    pday = patrol_day(day)
    if pday is None:
        return None
    return kpis.district_patrol_day(pday, then=past_boundaries(pday) is not None)


def _coverage_hours(per_grid: pd.DataFrame) -> pd.Series:
    """``covered_h`` by grid code, NaN where the grid has no worker to patrol it."""
    return per_grid["covered_h"].where(per_grid["workers"] > 0).astype(float)


def patrol_day(day: Any = None) -> pd.Timestamp | None:
    """The day the patrol hours are of: the latest complete day with fixes (up to ``day``, the
    explorer's date), or ``None``."""
    return kpis.latest_patrol_day(on_or_before=day)


def patrol_hours(code: str, day: Any = None) -> float:
    """Hours of :func:`patrol_day` ``(day)`` in which one of the grid's workers was inside it."""
    if day is None:
        whole = kpis.grid_patrol_day(code)
    else:
        whole = _patrol(day)
    if whole is None or code not in whole.per_grid.index:
        return float("nan")
    return float(_coverage_hours(whole.per_grid).loc[code])


def metric_label(metric: str, day: Any = None) -> str:
    """The choropleth's legend title and tooltip label (patrol hours name their day)."""
    if metric == "patrol_hours":
        day = patrol_day(day)
        if day is not None:
            return tr("metric.patrol_hours_on",
                      day=kpis.day_label(day, now=state.now(), lang=state.lang()))
    return tr(f"metric.{metric}")


@st.cache_resource(max_entries=8, show_spinner=False)
def _hexes(url: str, version: str, now: pd.Timestamp) -> pd.DataFrame:
    store = state.get_store()
    if "incidents" not in state.locked(store.layer_names):
        return pd.DataFrame({"cell": [], "grid_code": [], "count": []})
    return state.locked(store.h3_counts, "incidents", res=HEX_RES, by=["grid_code"],
                        between={"requested_datetime": (kpis.month_start(now), now)})


def scope_rows(table: pd.DataFrame, v: state.View) -> pd.DataFrame:
    """Grids inside the view's sub-district / community (all of them at district level)."""
    if v.com:
        return table[table["community_code"] == v.com]
    if v.sub:
        return table[table["subdistrict_code"] == v.sub]
    return table


def breadcrumb(v: state.View, day: Any = None) -> list[str]:
    """``鼓楼区 › 宁海路街道 › 山西路社区 › 第1网格`` (grid names of ``day``'s grids)."""
    names = _names()
    g = grids_of(day)
    names.update(zip(g["code"].astype(str), g["name"].astype(str), strict=False))
    district = state.layer("districts", ["code", "name"])
    out = [f"**{_html.md(district['name'].iloc[0])}**" if len(district) else f"**{tr('level.district')}**"]
    for code in (v.sub, v.com, v.grid):
        if code:
            out.append(_html.md(names.get(code, code)))
    return out


def _names() -> dict[str, str]:
    out: dict[str, str] = {}
    for name in ("subdistricts", "communities", "grids"):
        df = state.layer(name, ["code", "name"])
        out.update(zip(df["code"], df["name"], strict=False))
    return out


def up_one_level(v: state.View) -> dict[str, str]:
    """The view one step up the ladder."""
    if v.grid:
        return {"grid": ""}
    if v.com:
        return {"com": "", "grid": ""}
    return {"sub": "", "com": "", "grid": ""}


#: The explorer never zooms closer than a view this many metres across (a small dedicated grid,
#: a school or a market, would otherwise fill the map at street-furniture scale).
MIN_VIEW_M = 600.0


def min_extent(bounds: np.ndarray, *, metres: float = MIN_VIEW_M) -> np.ndarray:
    """WGS-84 ``bounds`` grown about their centre to at least ``metres`` in each direction.

    Examples
    --------
    >>> b = min_extent(np.array([118.0, 32.0, 118.0001, 32.0001]))
    >>> round((b[3] - b[1]) * 111_320), round((b[2] - b[0]) * 111_320 * np.cos(np.radians(32.00005)))
    (600, 600)
    """
    x0, y0, x1, y1 = (float(v) for v in bounds)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half_lat = max((y1 - y0) / 2, metres / 2 / 111_320)
    half_lon = max((x1 - x0) / 2, metres / 2 / (111_320 * np.cos(np.radians(cy))))
    return np.array([cx - half_lon, cy - half_lat, cx + half_lon, cy + half_lat])


def _bounds(v: state.View, day: Any = None) -> np.ndarray:
    for code, name in ((v.grid, "grids"), (v.com, "communities"), (v.sub, "subdistricts")):
        if code:
            df = grids_of(day) if name == "grids" else state.layer(name)
            hit = df[df["code"] == code]
            if len(hit):
                b = hit.total_bounds
                pad = max(b[2] - b[0], b[3] - b[1]) * (0.6 if name == "grids" else 0.05)
                return min_extent(np.array([b[0] - pad, b[1] - pad, b[2] + pad, b[3] + pad]))
    for name in ("districts", "subdistricts", "grids"):
        df = state.layer(name)
        if len(df):
            return df.total_bounds
    return np.array([118.7, 32.0, 118.8, 32.1])


# --------------------------------------------------------------------------- map


def build(v: state.View, cfg: maps.MapConfig, table: pd.DataFrame, *, day: Any = None) -> folium.Map:
    """The explorer map for view ``v``: the chosen layers, the choropleth, the selection, a legend.

    ``day``: draw the grids in force that day (:func:`grid_shapes`; default the live layer)."""
    m = maps.base_map(cfg, bounds=_bounds(v, day))
    legend: list[tuple[str, list[tuple[str, str, str]]]] = []
    lyr: list[tuple[str, str, str]] = []
    if "sub" in v.layers:
        subs = state.display_layer("subdistricts", cfg)
        maps.PolygonLayer(subs, name=tr("layer.subdistricts"), styles=[SUB_STYLE],
                          tooltip=[("name", tr("level.subdistrict")), ("code", tr("card.code"))],
                          css_name="sub").add_to(m)
        lyr.append((SUB_STYLE["color"], tr("layer.subdistricts"), "line"))
    if "com" in v.layers:
        coms = state.display_layer("communities", cfg, columns=("code", "name", "subdistrict_code"))
        if v.sub:
            coms = coms[coms["subdistrict_code"] == v.sub]
        maps.PolygonLayer(coms, name=tr("layer.communities"), styles=[COM_STYLE],
                          tooltip=[("name", tr("level.community")), ("code", tr("card.code"))],
                          css_name="com").add_to(m)
        lyr.append((COM_STYLE["color"], tr("layer.communities"), "line"))
    scope = scope_rows(table, v)
    if "comp" in v.layers or "ded" in v.layers:
        shapes = grid_shapes(cfg, day)
        shapes = shapes[shapes["code"].isin(scope.index)]
    if "comp" in v.layers:
        comp = shapes[shapes["kind"] == "comprehensive"]
        legend_rows = _grid_layer(m, comp, scope, v.metric, day=day)
        if legend_rows:
            legend.append((metric_label(v.metric, day), legend_rows))
        lyr.append((COMP_STYLE["color"], tr("layer.comprehensive"), "line"))
    if "ded" in v.layers:
        ded = shapes[shapes["kind"] == "dedicated"]
        ded = ded.join(scope[["name", "community", "population"]], on="code")
        maps.PolygonLayer(ded, name=tr("layer.dedicated"), styles=[DED_STYLE],
                          tooltip=[("name", tr("card.name")), ("code", tr("card.code")),
                                   ("community", tr("card.community"))],
                          css_name="ded").add_to(m)
        lyr.append((DED_STYLE["fillColor"], tr("layer.dedicated"), "fill"))
    if "inc" in v.layers:
        counts = _hexes(state.settings().store_url, state.data_version(), state.now())
        counts = counts[counts["grid_code"].isin(scope.index)]
        counts = counts.groupby("cell", as_index=False)["count"].sum()
        if len(counts):
            layer, rows = maps.hex_layer(counts, name=tr("layer.incidents"),
                                         label=tr("card.incidents_month"), cfg=cfg)
            layer.add_to(m)
            legend.append((tr("layer.incidents"), rows))
    if v.grid or v.com or v.sub:
        sel = _selected_shape(v, cfg, day)
        if sel is not None:
            maps.PolygonLayer(sel, name=tr("layer.selected"), styles=[SEL_STYLE],
                              interactive=False, css_name="sel").add_to(m)
            lyr.append((SEL_STYLE["color"], tr("layer.selected"), "line"))
    legend.insert(0, (tr("layer.layers"), lyr))
    maps.Legend(legend).add_to(m)
    return maps.finish(m, cfg)


def _grid_layer(m: folium.Map, comp: gpd.GeoDataFrame, scope: pd.DataFrame, metric: str, *,
                day: Any = None) -> list[tuple[str, str, str]]:
    cols = ["name", "community", "households", "population"]
    if metric != "none" and metric not in cols:
        cols.append(metric)
    data = comp.join(scope[cols], on="code")
    tooltip = [("name", tr("card.name")), ("code", tr("card.code")),
               ("community", tr("card.community")), ("households", tr("card.households")),
               ("population", tr("card.population"))]
    if metric == "none":
        maps.PolygonLayer(data, name=tr("layer.comprehensive"), styles=[COMP_STYLE],
                          tooltip=tooltip, css_name="comp").add_to(m)
        return []
    if metric not in ("households", "population"):
        tooltip.append((metric, metric_label(metric, day)))
    classes, edges = maps.classify(data[metric].to_numpy(dtype=float))
    colours = maps.ramp(max(len(edges) - 1, 1))
    styles = [{**COMP_STYLE, "fillColor": c, "fillOpacity": 0.72} for c in colours]
    styles.append({**COMP_STYLE, "fillColor": NODATA, "fillOpacity": 0.5})
    maps.PolygonLayer(data, name=tr("layer.comprehensive"), styles=styles, style_index=classes,
                      tooltip=tooltip, css_name="comp").add_to(m)
    fmt = "{:,.0f}" if metric in ("households", "population") else "{:,.1f}"
    return maps.legend_items(edges, colours, fmt=fmt)


def _selected_shape(v: state.View, cfg: maps.MapConfig, day: Any = None) -> gpd.GeoDataFrame | None:
    for code, name in ((v.grid, "grids"), (v.com, "communities"), (v.sub, "subdistricts")):
        if code:
            df = grid_shapes(cfg, day) if name == "grids" else state.display_layer(name, cfg)
            hit = df[df["code"] == code]
            return hit if len(hit) else None
    return None


def show(m: folium.Map, *, key: str, height: int) -> dict[str, Any]:
    """Draw the map; only object clicks come back (panning and hovering never rerun)."""
    return maps.show(m, key=key, height=height, returned_objects=["last_object_clicked"])


# --------------------------------------------------------------------------- clicks


def locate(name: str, lon: float, lat: float, *, kind: str | None = None,
           frame: gpd.GeoDataFrame | None = None) -> str | None:
    """Code of the ``name`` polygon containing WGS-84 ``(lon, lat)`` (smallest if several);
    ``frame``: those polygons (default: the live layer ``name``)."""
    df = state.layer(name) if frame is None else frame
    if kind is not None:
        df = df[df["kind"] == kind]
    if df.empty:
        return None
    pt = shapely.Point(lon, lat)
    idx = df.sindex.query(pt, predicate="intersects")
    if len(idx) == 0:
        return None
    hits = df.iloc[idx]
    area_m2 = to_metric(hits[["geometry"]]).area.to_numpy()  # never areas in square degrees
    return str(hits.iloc[int(np.argmin(area_m2))]["code"])


def drill(v: state.View, lon: float, lat: float, *, day: Any = None) -> dict[str, str] | None:
    """The view one level below ``v`` at the clicked point (district → sub-district → ...);
    ``day``: among the grids in force that day (:func:`grids_of`)."""
    sub = locate("subdistricts", lon, lat)
    if not v.sub or (sub and sub != v.sub and not v.com):
        return {"sub": sub, "com": "", "grid": ""} if sub else None
    com = locate("communities", lon, lat)
    if not v.com:
        if com is None:
            return None
        return {"sub": _parent_sub(com) or v.sub, "com": com, "grid": ""}
    # the comprehensive grid (every point has one); a dedicated grid only where none is
    g = grids_of(day)
    grid = locate("grids", lon, lat, kind="comprehensive", frame=g)
    if grid is None and "ded" in v.layers:
        grid = locate("grids", lon, lat, kind="dedicated", frame=g)
    if grid is None:
        return None
    com = str(g.loc[g["code"] == grid, "community_code"].iloc[0])
    return {"sub": _parent_sub(com) or v.sub, "com": com, "grid": grid}


def _parent_sub(com: str) -> str | None:
    coms = state.layer("communities", ["code", "subdistrict_code"])
    hit = coms.loc[coms["code"] == com, "subdistrict_code"]
    return str(hit.iloc[0]) if len(hit) else None


def handle_click(out: Mapping[str, Any], v: state.View, cfg: maps.MapConfig, *,
                 day: Any = None) -> dict[str, str] | None:
    """A new click on the map → the view to move to (``None``: nothing to do); ``day``: the
    grids in force that day.

    streamlit-folium keeps returning the last click on every rerun; only a click not seen
    before counts.
    """
    click = out.get("last_object_clicked") if out else None
    if not click:
        return None
    seen = st.session_state.get("explorer_last_click")
    if seen == click:
        return None
    st.session_state["explorer_last_click"] = click
    pt = maps.click_to_wgs84(click, cfg)
    if pt is None:
        return None
    change = drill(v, *pt, day=day)
    if change and any(getattr(v, k) != val for k, val in change.items()):
        return change
    return None


# --------------------------------------------------------------------------- card


def grid_card(table: pd.DataFrame, code: str, lang: str, day: Any = None) -> None:
    """网格信息卡: code, name, community, leader, A/B workers, households, residents, area, ...

    ``table`` is :func:`grid_table` of ``day``; the patrol hours are of :func:`patrol_day` ``(day)``."""
    st.markdown(f"#### {tr('card.title')}")
    if not code or code not in table.index:
        st.caption(tr("explorer.no_selection"))
        return
    r = table.loc[code]
    kind = tr(f"card.{r['kind']}") if r["kind"] in ("comprehensive", "dedicated") else str(r["kind"])
    # masked names end in "*" (谢*, 欧阳**): escaped, so that Markdown shows them as they are
    leader = _html.md(r["leader"]) if isinstance(r["leader"], str) and r["leader"] else "—"
    ab = f"A {fmt_int(r['workers_a'])} · B {fmt_int(r['workers_b'])}"
    rows = [
        (tr("card.code"), _html.md(code)),
        (tr("card.name"), _html.md(r["name"])),
        (tr("card.kind"), kind),
        (tr("card.community"), _html.md(r["community"])),
        (tr("card.subdistrict"), _html.md(r["subdistrict"])),
        (tr("card.leader"), leader),
        (tr("card.workers_ab"), ab),
        (tr("card.area"), f"{float(r['area_km2']):.3f}"),
    ]
    st.markdown("\n".join(f"- **{k}**: {v}" for k, v in rows))
    a, b = st.columns(2)
    a.metric(tr("card.households"), fmt_int(r["households"]))
    b.metric(tr("card.population"), fmt_int(r["population"]))
    c, d = st.columns(2)
    c.metric(tr("card.incidents_month"), fmt_int(r["incidents_month"]))
    pday = patrol_day(day)
    hours = patrol_hours(code, day)
    value = "—" if not np.isfinite(hours) else f"{hours:,.1f}"
    if pday is None:
        d.metric(tr("metric.patrol_hours"), value)
    else:
        d.metric(tr("card.patrol_hours", day=kpis.day_label(pday, now=state.now(), lang=lang)), value,
                 help=tr("card.patrol_hours_help", date=pday.strftime("%Y-%m-%d")))
