"""The hotspot page (热点): cached aggregates, Gi* and emerging hot spots, map layers, charts.

Hexagon counts come from the store's stored ``h3_<res>`` columns (:func:`h3_counts`, a
``GROUP BY`` in the engine), cached per filter; Gi* and emerging hot spots are cached per
filter and resolution (:mod:`layers.analysis` does the work, the same as the CLI). Filters
and labels are shared with the case board (:mod:`dashboard._incidents`).

Candidates for the shared modules: :func:`h3_counts` (a cached ``Store.h3_counts`` for
:mod:`dashboard.state`), :func:`weighted_heat_layer`, :func:`cluster_layer` and
:func:`hex_class_layer` (for :mod:`dashboard.maps`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import altair as alt
import folium
import folium.plugins
import geopandas as gpd
import h3.api.basic_int as h3i
import numpy as np
import pandas as pd
import streamlit as st

from dashboard import _html, maps, state, widgets
from dashboard._incidents import (
    IncidentFilter,
    _filtered,
    category_label,
    district_bounds,
    filtered,
    grid_names,
    item_label,
    source_label,
    tp,
)
from geo.crs import convert_geometries, convert_lonlat
from geo.emerging import PATTERNS
from geo.hexes import cells_to_parents, cells_to_polygons
from geo.hotspots import hex_weights, rates_per_1000
from geo.incident_stats import by_hour_of_week, by_month, counts_by, monthly_topics
from layers import analysis, summaries, taxonomy
from layers.i18n import t
from layers.schema import SOURCES

#: Hexagon resolutions offered on the hotspot map, and the default.
HEX_RES: tuple[int, ...] = (8, 9, 10)


DEFAULT_RES = 9


#: ArcGIS's Hot Spot Analysis ramp, Gi_Bin -3..3 (blue cold, red hot).
GI_COLOURS: dict[int, str] = {
    -3: "#4575b5", -2: "#849eba", -1: "#c0ccbe", 0: "#ffffbf", 1: "#fab984", 2: "#ed7551", 3: "#d62f27",
}


GI_KEYS: dict[int, str] = {-3: "cold99", -2: "cold95", -1: "cold90", 0: "none", 1: "hot90", 2: "hot95",
                           3: "hot99"}


#: Emerging hot spot colours per ArcGIS CATEGORY code (hot reds/oranges, cold blues, 0 none).
PATTERN_COLOURS: dict[int, str] = {
    1: "#fcae91", 2: "#fb6a4a", 3: "#a50f15", 4: "#de2d26", 5: "#f4a582", 6: "#fdd0a2",
    7: "#e6550d", 8: "#bcbddc",
    -1: "#c6dbef", -2: "#9ecae1", -3: "#08519c", -4: "#3182bd", -5: "#92c5de", -6: "#deebf7",
    -7: "#6baed6", -8: "#d9f0d3",
    0: "#f7f7f7",
}


#: Legend order of the 17 emerging patterns.
PATTERN_ORDER: tuple[int, ...] = (3, 4, 2, 1, 5, 6, 7, 8, 0, -8, -7, -6, -5, -1, -2, -4, -3)


#: Cluster circles are at most this many pixels in radius.
CLUSTER_MAX_RADIUS_PX = 28


#: Map modes of the hotspot page.
MODES: tuple[str, ...] = ("hex", "heat", "clusters", "rate", "gi", "emerging")


WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def pattern_name(code: int) -> str:
    """An ArcGIS emerging-pattern code (-8..8) as its translated name."""
    return tp(f"pattern.{PATTERNS[int(code)]}")


def cell_area_km2(res: int) -> float:
    """Average H3 cell area at ``res``."""
    return float(h3i.average_hexagon_area(res, unit="km^2"))


def h3_counts(res: int, flt: IncidentFilter, *, by: Sequence[str] = ()) -> pd.DataFrame:
    """Cases per stored ``h3_<res>`` cell (``cell``, ``*by``, ``count``), a ``GROUP BY`` in the store.

    Cached per data version, resolution and filter (a generic cached ``Store.h3_counts`` for
    :mod:`dashboard.state`).
    """
    return _h3_counts(state.settings().store_url, state.data_version(), int(res), flt.key(), tuple(by))


@st.cache_resource(max_entries=48, show_spinner=False)
def _h3_counts(url: str, version: str, res: int, key: tuple[Any, ...], by: tuple[str, ...]) -> pd.DataFrame:
    flt = IncidentFilter(*key)
    store = state.get_store()
    if "incidents" not in state.locked(store.layer_names):
        return pd.DataFrame({"cell": pd.Series([], dtype="int64"), **{b: [] for b in by},
                             "count": pd.Series([], dtype="int64")})
    if summary_allows(res, flt, by):
        return state.locked(summary_counts, store, res, flt)
    return state.locked(store.h3_counts, "incidents", res=res, where=flt.where() or None,
                        between=flt.between() or None, by=list(by))


def summary_allows(res: int, flt: IncidentFilter, by: Sequence[str] = ()) -> bool:
    """True when :func:`summary_counts` can answer, and faster: a time window (without one
    the store's indexed ``GROUP BY`` over every row is quicker), cells at the summary's
    resolution or coarser, no grouping, and no filter but the categories."""
    return (not by and res <= summaries.CELL_RES
            and (flt.start is not None or flt.end is not None)
            and not (flt.stages or flt.departments or flt.items or flt.levels or flt.sources
                     or flt.grids))


def summary_counts(store: Any, res: int, flt: IncidentFilter) -> pd.DataFrame:
    """``Store.h3_counts("incidents", res=res, ...)`` of ``flt`` from the per cell / week /
    category summary kept at write time (:func:`layers.summaries.cell_counts`).

    The whole ISO weeks inside the window come from the summary; the part-weeks at either
    end (at most six days each) are counted from the raw rows (an indexed time range); cells
    coarser than :data:`layers.summaries.CELL_RES` are the H3 parents of its cells, which is
    how the store derives its coarser ``h3_<res>`` columns. The same counts as the raw
    ``GROUP BY`` (``tests/dashboard/test_hotspot_summary.py``), a fraction of the time on a
    year of cases.
    """
    day = pd.Timedelta(days=1)
    cats = list(flt.categories)
    where = {"category_code": cats} if cats else None
    parts: list[pd.DataFrame] = []
    edges: list[tuple[pd.Timestamp | None, pd.Timestamp | None]] = []
    if flt.start is None and flt.end is None:
        parts.append(summaries.cell_counts(store, categories=cats))
    else:
        lo = hi = None
        if flt.start is not None:  # the first Monday on or after the start
            first = pd.Timestamp(flt.start).normalize()
            first += day if first < flt.start else pd.Timedelta(0)
            lo = first + (7 - first.day_of_week) % 7 * day
        if flt.end is not None:  # the Monday of the end's week: weeks before it end by the end
            hi = pd.Timestamp(flt.end).normalize()
            hi -= hi.day_of_week * day
        if lo is None or hi is None or lo + 7 * day <= hi:
            last = None if hi is None else (hi - 7 * day).strftime("%Y-%m-%d")
            parts.append(summaries.cell_counts(
                store, weeks=(None if lo is None else lo.strftime("%Y-%m-%d"), last), categories=cats))
            if lo is not None and flt.start < lo:
                edges.append((flt.start, lo))
            if hi is not None and hi < flt.end:
                edges.append((hi, flt.end))
        else:  # not one whole week: all raw
            edges.append((flt.start, flt.end))
    for a, b in edges:
        parts.append(store.h3_counts("incidents", res=summaries.CELL_RES, where=where,
                                     between={"requested_datetime": (a, b)}))
    cells = pd.concat([p[["cell", "count"]] for p in parts], ignore_index=True)
    cell = cells["cell"].to_numpy(dtype="int64")
    if res < summaries.CELL_RES:
        cell = cells_to_parents(cell, res)
    out = (pd.DataFrame({"cell": cell, "count": cells["count"].to_numpy(dtype="int64")})
           .groupby("cell", sort=True)["count"].sum().reset_index())
    out = out[out["count"] != 0].reset_index(drop=True)
    return out.astype({"cell": "int64", "count": "int64"})


def domain_cells(res: int) -> np.ndarray:
    """The study area at ``res`` (:func:`layers.analysis.study_area`: district cells, zeros included)."""
    return _domain(state.settings().store_url, state.data_version(), int(res))


@st.cache_resource(max_entries=8, show_spinner=False)
def _domain(url: str, version: str, res: int) -> np.ndarray:
    return state.locked(analysis.study_area, state.get_store(), res)


@st.cache_resource(max_entries=8, show_spinner=False)
def _weights(url: str, version: str, res: int) -> Any:
    return hex_weights(_domain(url, version, res), k=1)


def gi_table(res: int, flt: IncidentFilter, *, fdr: bool = True) -> pd.DataFrame:
    """Gi* hot and cold spots of the filtered counts over the study area (cached)."""
    return _gi(state.settings().store_url, state.data_version(), int(res), flt.key(), bool(fdr),
               state.scope_key(), _account())


def _account() -> Any:
    """The signed-in account (the job's actor and scope); the OS user outside a session."""
    from dashboard import _auth
    from layers.app import os_account

    return _auth.account() or os_account()


@st.cache_resource(max_entries=16, show_spinner=False)
def _gi(url: str, version: str, res: int, key: tuple[Any, ...], fdr: bool,
        scope: tuple[str, str, str] = ("", "", ""), _acc: Any = None) -> pd.DataFrame:
    flt = IncidentFilter(*key)
    table, _ = state.locked(analysis.hotspot_job, state.get_store(), _acc or _account(), res=res,
                            since=flt.start, until=flt.end, where=flt.where() or None, fdr=fdr,
                            emerging=False, domain=_domain(url, version, res))
    return table[["count", "z", "p", "gi_bin"]]


def emerging_table(res: int, flt: IncidentFilter, *, now: pd.Timestamp) -> tuple[
        pd.DataFrame, pd.DatetimeIndex] | None:
    """Emerging hot spots over weekly bins ending at the window's end (``None``: too few weeks).

    :func:`layers.analysis.hotspots` decides (the same function as ``gridpulse hotspots``).
    """
    return _emerging(state.settings().store_url, state.data_version(), int(res), flt.key(), now,
                     state.scope_key(), _account())


@st.cache_resource(max_entries=8, show_spinner=False)
def _emerging(url: str, version: str, res: int, key: tuple[Any, ...],
              now: pd.Timestamp, scope: tuple[str, str, str] = ("", "", ""), _acc: Any = None
              ) -> tuple[pd.DataFrame, pd.DatetimeIndex] | None:
    flt = IncidentFilter(*key)
    end = (flt.end or now).ceil("D")
    table, n_steps = state.locked(analysis.hotspot_job, state.get_store(), _acc or _account(),
                                  res=res, since=flt.start, until=end, where=flt.where() or None,
                                  domain=_domain(url, version, res))
    if n_steps < analysis.MIN_EHSA_STEPS or "ehsa_starts" not in table.attrs:
        return None
    out = table[["count", "ehsa", "ehsa_category", "trend_z", "trend_p"]].rename(
        columns={"ehsa": "pattern", "ehsa_category": "category"})
    return out, table.attrs["ehsa_starts"]


def grid_rates(flt: IncidentFilter) -> pd.DataFrame:
    """Cases per 1,000 residents by comprehensive grid (``count``, ``population``, ``rate_per_1000``)."""
    return _grid_rates(state.settings().store_url, state.data_version(), flt.key())


@st.cache_resource(max_entries=16, show_spinner=False)
def _grid_rates(url: str, version: str, key: tuple[Any, ...]) -> pd.DataFrame:
    counts = _h3_counts(url, version, 8, key, ("grid_code",))
    per_grid = counts.groupby("grid_code")["count"].sum()
    from layers import plans

    if state.locked(plans.has_versions, state.get_store()):  # each case in the grid of its day
        cases = _filtered(url, version, key)
        per_grid = state.locked(plans.count_by_grid_at, state.get_store(), cases)
    grids = state.layer("grids", ["code", "kind", "population"])
    comp = grids[grids["kind"] == "comprehensive"]
    pop = pd.Series(pd.to_numeric(comp["population"], errors="coerce").to_numpy(),
                    index=pd.Index(comp["code"].astype(str), name="code"))
    return rates_per_1000(per_grid, pop)


def _centres(cells: np.ndarray, cfg: maps.MapConfig) -> tuple[np.ndarray, np.ndarray]:
    """Display lon/lat of int64 cell centres."""
    if not len(cells):
        return np.zeros(0), np.zeros(0)
    latlng = np.array([h3i.cell_to_latlng(int(c)) for c in np.asarray(cells, dtype=np.int64).view(np.uint64)])
    return convert_lonlat(latlng[:, 1], latlng[:, 0], src="wgs84", dst=cfg.datum)  # type: ignore[arg-type]


#: Colour stops of the heat layer (weight 0..1 → colour); the legend shows the same stops.
HEAT_GRADIENT: dict[float, str] = {0.2: "#2c7bb6", 0.45: "#abd9e9", 0.65: "#ffffbf", 0.85: "#fdae61",
                                   1.0: "#d7191c"}


def heat_scale(counts: pd.DataFrame) -> float:
    """The count (per hexagon) that the heat layer draws at full heat: the 98th percentile."""
    w = counts["count"].to_numpy(dtype=float)
    return max(float(np.quantile(w, 0.98)), 1.0) if len(w) else 1.0


def weighted_heat_layer(counts: pd.DataFrame, *, name: str, cfg: maps.MapConfig,
                        radius: int = 18) -> folium.plugins.HeatMap:
    """A heat layer from per-cell counts at the cell centres (never one point per case)."""
    x, y = _centres(counts["cell"].to_numpy(dtype=np.int64), cfg)
    w = counts["count"].to_numpy(dtype=float)
    top = heat_scale(counts)
    pts = np.column_stack([np.round(y, 5), np.round(x, 5), np.round(np.minimum(w / top, 1.0), 3)])
    return folium.plugins.HeatMap(pts.tolist(), name=name, radius=radius, blur=radius,
                                  min_opacity=0.25, max_zoom=16,
                                  gradient={str(k): v for k, v in HEAT_GRADIENT.items()})


def heat_legend(counts: pd.DataFrame, res: int) -> list[tuple[str, str, str]]:
    """Legend rows of the heat layer: each colour stop with the cases per hexagon it stands for."""
    top = heat_scale(counts)
    stops = list(HEAT_GRADIENT.items())
    rows = [(c, t("ux.hot.heat_about", state.lang(), n=f"{k * top:,.0f}"), "fill") for k, c in stops[:-1]]
    rows.append((stops[-1][1], t("ux.hot.heat_top", state.lang(), n=f"{top:,.0f}"), "fill"))
    return rows[::-1]


def cluster_layer(counts: pd.DataFrame, *, cfg: maps.MapConfig, label: str) -> tuple[
        folium.FeatureGroup, list[tuple[str, str, str]]]:
    """Cases pooled at cell centres: one circle per cell, area proportional to the count.

    Returns the layer and its legend rows (the colour classes of the counts).
    """
    fg = folium.FeatureGroup(name="clusters")
    if counts.empty:
        return fg, []
    x, y = _centres(counts["cell"].to_numpy(dtype=np.int64), cfg)
    n = counts["count"].to_numpy(dtype=float)
    r = 4 + (CLUSTER_MAX_RADIUS_PX - 4) * np.sqrt(n / n.max())
    classes, edges = maps.classify(n)
    colours = maps.ramp(max(len(edges) - 1, 1))
    for lat, lon, rad, cnt, k in zip(y, x, r, n, classes, strict=True):
        folium.CircleMarker(
            [round(float(lat), 5), round(float(lon), 5)], radius=float(round(rad, 1)),
            color="#7f2704", weight=1, fill=True, fill_color=colours[max(int(k), 0)], fill_opacity=0.8,
        ).add_child(_html.Tooltip(f"{label} {int(cnt):,}")).add_to(fg)
    return fg, maps.legend_items(edges, colours)


def hex_class_layer(cells: np.ndarray, classes: np.ndarray, *, colours: Mapping[int, str], name: str,
                    cfg: maps.MapConfig, tooltip: Sequence[tuple[str, str]] = (),
                    extra: Mapping[str, Any] | None = None) -> maps.PolygonLayer:
    """Hexagons coloured by a class code (Gi_Bin or emerging pattern) from a fixed colour table."""
    geoms = cells_to_polygons(cells)
    if cfg.datum != "wgs84":
        geoms = convert_geometries(geoms, src="wgs84", dst=cfg.datum)  # type: ignore[arg-type]
    gdf = gpd.GeoDataFrame({k: np.asarray(v) for k, v in (extra or {}).items()},
                           geometry=maps.round_coordinates(geoms), crs=4326)
    codes = list(colours)
    styles = [{"fillColor": colours[c], "fillOpacity": 0.7, "color": "#555555", "weight": 0.3} for c in codes]
    idx = np.array([codes.index(int(c)) for c in classes], dtype=int)
    return maps.PolygonLayer(gdf, name=name, styles=styles, style_index=idx, tooltip=tooltip, css_name="hot")


def outline_layer(cfg: maps.MapConfig) -> maps.PolygonLayer | None:
    """Sub-district outlines for orientation (not interactive)."""
    subs = state.display_layer("subdistricts", cfg)
    if subs.empty:
        return None
    return maps.PolygonLayer(subs, name="subdistricts", styles=[
        {"color": "#1d3557", "weight": 2, "opacity": 0.8, "fill": False}], interactive=False,
        css_name="sub")


def build_map(mode: str, res: int, flt: IncidentFilter, cfg: maps.MapConfig, *, now: pd.Timestamp,
              fdr: bool, window_text: str) -> tuple[folium.Map, str]:
    """The hotspot map in ``mode`` (one of :data:`MODES`) and the caption that explains it."""
    m = maps.base_map(cfg, bounds=district_bounds())
    counts = h3_counts(res, flt)
    total = int(counts["count"].sum())
    caption = tp("hot.summary", count=f"{total:,}", cells=f"{len(counts):,}", window=window_text)
    legend: list[tuple[str, list[tuple[str, str, str]]]] = []
    if total == 0:
        caption = f"{caption} · {tp('hot.empty')}"
    elif mode == "hex":
        layer, rows = maps.hex_layer(counts, name=tp("mode.hex"), label=tp("hot.count"), cfg=cfg)
        layer.add_to(m)
        legend.append((tp("hot.count"), rows))
    elif mode == "heat":
        fine = h3_counts(10, flt)
        weighted_heat_layer(fine, name=tp("mode.heat"), cfg=cfg).add_to(m)
        legend.append((t("ux.hot.heat_legend", state.lang()), heat_legend(fine, 10)))
    elif mode == "clusters":
        cres = max(res - 1, 7)
        layer, rows = cluster_layer(h3_counts(cres, flt), cfg=cfg, label=tp("hot.count"))
        layer.add_to(m)
        legend.append((t("ux.hot.cluster_legend", state.lang()), rows))
        caption = f"{caption} · {tp('hot.clusters', res=cres)}"
    elif mode == "rate":
        rows, n_grids = _rate_layer(m, flt, cfg)
        legend.append((tp("hot.rate"), rows))
        caption = t("ux.hot.summary_grids", state.lang(), count=f"{total:,}", grids=f"{n_grids:,}",
                    window=window_text)
    elif mode == "gi":
        gi = gi_table(res, flt, fdr=fdr)
        bins = gi["gi_bin"].to_numpy()
        hex_class_layer(gi.index.to_numpy(), bins, colours=GI_COLOURS, name=tp("mode.gi"), cfg=cfg,
                        tooltip=[("cls", tp("hot.class")), ("n", tp("hot.count")), ("z", tp("hot.z")),
                                 ("p", tp("hot.p"))],
                        extra={"cls": [tp(f"gi.{GI_KEYS[int(b)]}") for b in bins], "n": gi["count"].to_numpy(),
                               "z": gi["z"].round(2).to_numpy(), "p": gi["p"].round(4).to_numpy()}).add_to(m)
        legend.append((tp("gi.legend"), [(GI_COLOURS[b], tp(f"gi.{GI_KEYS[b]}"), "fill")
                                         for b in (3, 2, 1, 0, -1, -2, -3)]))
        caption = f"{caption} · " + tp("hot.gi_counts", hot=int((bins > 0).sum()), cold=int((bins < 0).sum()),
                                       res=res)
    elif mode == "emerging":
        out = emerging_table(res, flt, now=now)
        if out is None:
            caption = f"{caption} · {tp('hot.too_short')} {tp('hot.too_short.fix')}"
        else:
            table, starts = out
            cats = table["category"].to_numpy()
            hex_class_layer(table.index.to_numpy(), cats, colours=PATTERN_COLOURS, name=tp("mode.emerging"),
                            cfg=cfg, tooltip=[("pat", tp("hot.pattern")), ("n", tp("hot.count"))],
                            extra={"pat": [pattern_name(c) for c in cats], "n": table["count"].to_numpy()},
                            ).add_to(m)
            legend.append((tp("pattern.legend"),
                           [(PATTERN_COLOURS[c], pattern_name(c), "fill") for c in PATTERN_ORDER]))
            caption = f"{caption} · " + tp("hot.weeks", weeks=len(starts), start=starts[0].date(),
                                           end=(starts[-1] + pd.Timedelta(days=6)).date())
    outline = outline_layer(cfg)
    if outline is not None:
        outline.add_to(m)
    if legend:
        maps.Legend(legend, position="bottomright").add_to(m)
    return maps.finish(m, cfg), caption


def _rate_layer(m: folium.Map, flt: IncidentFilter, cfg: maps.MapConfig) -> tuple[
        list[tuple[str, str, str]], int]:
    """Comprehensive grids by cases per 1,000 residents; returns the legend rows and the grid count."""
    rates = grid_rates(flt)
    shapes = state.display_layer("grids", cfg, columns=("code", "name", "kind"))
    shapes = shapes[shapes["kind"] == "comprehensive"]
    data = shapes.join(rates, on="code")
    data["rate"] = data["rate_per_1000"].round(1)
    classes, edges = maps.classify(data["rate_per_1000"].to_numpy(dtype=float))
    colours = maps.ramp(max(len(edges) - 1, 1))
    styles = [{"color": "#666666", "weight": 0.5, "fillColor": c, "fillOpacity": 0.75} for c in colours]
    styles.append({"color": "#666666", "weight": 0.5, "fillColor": "#c8c8c8", "fillOpacity": 0.5})
    maps.PolygonLayer(data, name=tp("mode.rate"), styles=styles, style_index=classes, css_name="rate",
                      tooltip=[("name", tp("hot.grid")), ("count", tp("hot.count")),
                               ("population", tp("hot.population")), ("rate", tp("hot.rate"))]).add_to(m)
    return maps.legend_items(edges, colours, fmt="{:,.1f}"), int(len(data))


def charts(flt: IncidentFilter, *, lang: str) -> None:
    """Hour-of-week heatmap, cases by month, by category and by source."""
    df = filtered(flt)
    st.markdown(f"#### {tp('chart.heading')}")
    if df.empty:
        st.caption(tp("hot.empty"))
        return
    days = [tp(f"chart.{d}") for d in WEEKDAYS]
    how = by_hour_of_week(df["requested_datetime"])
    how["day"] = [days[i] for i in how["weekday"]]
    last = None if flt.end is None else flt.end - pd.Timedelta(seconds=1)
    month = by_month(df["requested_datetime"], start=flt.start, end=last).reset_index()
    cat = counts_by(df["category_code"], categories=taxonomy.CATEGORY_CODES).reset_index()
    cat["name"] = [category_label(c, lang) for c in cat["category_code"]]
    src = counts_by(df["source"], categories=SOURCES).reset_index()
    src["name"] = [source_label(s, lang) for s in src["source"]]
    n = tp("chart.count")
    left, right = st.columns(2, gap="medium")
    with left:
        st.markdown(f"**{tp('chart.hour_of_week')}**")
        st.altair_chart(alt.Chart(how).mark_rect().encode(
            x=alt.X("hour:O", title=tp("chart.hour")),
            y=alt.Y("day:N", sort=days, title=tp("chart.weekday")),
            color=alt.Color("count:Q", title=n, scale=alt.Scale(scheme="orangered")),
            tooltip=[alt.Tooltip("day:N", title=tp("chart.weekday")), alt.Tooltip("hour:O", title=tp("chart.hour")),
                     alt.Tooltip("count:Q", title=n)],
        ).properties(height=230), width="stretch")
        st.markdown(f"**{tp('chart.category')}**")
        st.altair_chart(_bars(cat, n, tp("filter.category"), "#e6550d"), width="stretch")
    with right:
        st.markdown(f"**{tp('chart.month')}**")
        st.altair_chart(alt.Chart(month).mark_bar(color="#3182bd").encode(
            x=alt.X("month:O", title=tp("chart.month_axis"), axis=alt.Axis(labelAngle=-45)),
            y=alt.Y("count:Q", title=n),
            tooltip=[alt.Tooltip("month:O", title=tp("chart.month_axis")), alt.Tooltip("count:Q", title=n)],
        ).properties(height=230), width="stretch")
        st.markdown(f"**{tp('chart.source')}**")
        st.altair_chart(_bars(src, n, tp("filter.source"), "#31a354"), width="stretch")


def _bars(df: pd.DataFrame, count_title: str, name_title: str, colour: str) -> alt.Chart:
    """Horizontal bars, largest first, every label shown."""
    return alt.Chart(df).mark_bar(color=colour).encode(
        x=alt.X("count:Q", title=count_title),
        y=alt.Y("name:N", sort="-x", title=None, axis=alt.Axis(labelOverlap=False, labelLimit=240)),
        tooltip=[alt.Tooltip("name:N", title=name_title), alt.Tooltip("count:Q", title=count_title),
                 alt.Tooltip("share:Q", title=tp("chart.share"), format=".1%")],
    ).properties(height=alt.Step(24))


def monthly_topic_table(flt: IncidentFilter, *, lang: str) -> None:
    """每月一题: the item that rose most each month, and the grid where it concentrates (newest first)."""
    st.markdown(f"#### {tp('topic.heading')}")
    st.caption(tp("topic.caption"))
    topics = _topics(state.settings().store_url, state.data_version(), flt.key())
    if topics.empty:
        st.caption(tp("topic.none"))
        return
    names = grid_names()
    rows = pd.DataFrame({
        tp("topic.month"): topics.index,
        tp("topic.type"): [item_label(x, lang) if isinstance(x, str) else tp("topic.nothing_rose")
                           for x in topics["type"]],
        tp("topic.count"): [_count_text(v) for v in topics["count"]],
        tp("topic.prev"): [_count_text(v) for v in topics["prev_count"]],
        tp("topic.increase"): [_count_text(v, sign=True) for v in topics["increase"]],
        tp("topic.growth"): [widgets.fmt_pct(g) for g in topics["growth"]],
        tp("topic.area"): [names.get(str(a), "—") if isinstance(a, str) else "—" for a in topics["top_area"]],
        tp("topic.area_share"): [widgets.fmt_pct(s) for s in topics["area_share"]],
        tp("topic.top"): [f"{item_label(x, lang)} ({int(c)})" for x, c in
                          zip(topics["top_type"], topics["top_type_count"], strict=True)],
    }).iloc[::-1]
    st.dataframe(rows, hide_index=True, width="stretch", key="hot_topics")


def _count_text(value: Any, *, sign: bool = False) -> str:
    """A whole count as text ("—" when missing, so the table never shows "None" or "<NA>")."""
    if value is None or pd.isna(value):
        return "—"
    return f"{int(value):+,}" if sign else f"{int(value):,}"


@st.cache_resource(max_entries=16, show_spinner=False)
def _topics(url: str, version: str, key: tuple[Any, ...]) -> pd.DataFrame:
    return monthly_topics(_filtered(url, version, key), type_col="item_code", area_col="grid_code")
