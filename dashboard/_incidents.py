"""What the two incident pages share: filters, cached aggregates, labels, maps, the case loop.

The pages (:mod:`dashboard.views.incidents` 事件 and :mod:`dashboard.views.hotspots` 热点) only
wire these together. Everything heavy is cached per data version (the store's newest audit row,
:func:`dashboard.state.data_version`), so a workflow action anywhere refreshes both pages:

* the incident table is read once through :func:`dashboard.state.layer` (shared, read-only);
* hexagon counts come from the store's stored ``h3_<res>`` columns (:func:`h3_counts`, a
  ``GROUP BY`` in the engine), cached per filter;
* Gi* and emerging hot spots are cached per filter and resolution.

Candidates for the shared modules (kept here until they move): :func:`h3_counts` (a cached
``Store.h3_counts`` for :mod:`dashboard.state`), :func:`weighted_heat_layer`,
:func:`cluster_layer` and :func:`hex_class_layer` (for :mod:`dashboard.maps`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import altair as alt
import folium
import folium.plugins
import geopandas as gpd
import h3.api.basic_int as h3i
import numpy as np
import pandas as pd
import shapely
import streamlit as st

from dashboard import _html, maps, state, widgets
from geo.crs import convert_geometries, convert_lonlat
from geo.emerging import PATTERNS
from geo.hexes import cells_to_polygons
from geo.hotspots import hex_weights, rates_per_1000
from geo.incident_stats import by_hour_of_week, by_month, counts_by, monthly_topics
from layers import analysis, taxonomy, workflow
from layers._store_common import error_text
from layers.errors import ConcurrentChangeError, StoreError
from layers.i18n import t
from layers.privacy import mask_personal
from layers.schema import DEPARTMENTS, SOURCES, WHISTLES

#: Columns of the incidents layer both pages read (no personal fields, no free text).
COLUMNS: tuple[str, ...] = (
    "service_request_id", "requested_datetime", "updated_datetime", "expected_datetime",
    "closed_datetime", "stage", "whistle", "department", "category_code", "item_code", "level",
    "source", "grid_code", "reworks", "extensions", "h3_8", "h3_9", "h3_10",
)
#: Hexagon resolutions offered on the hotspot map, and the default.
HEX_RES: tuple[int, ...] = (8, 9, 10)
DEFAULT_RES = 9
#: Time-window presets (days back from "now"; ``None``: everything).
WINDOWS: dict[str, int | None] = {"d7": 7, "d30": 30, "d90": 90, "d365": 365, "all": None}
#: Most rows the case table shows (the newest first).
TABLE_ROWS = 500
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
#: Options each action takes, as widgets on the case board.
ACTION_OPTIONS: dict[str, tuple[str, ...]] = {
    "assign": ("department",),
    "whistle": ("kind", "department"),
    "close_no_action": ("reason", "duplicate_of"),
    "request_extension": ("hours",),
    "grant_extension": ("hours",),
    "evaluate": ("rating",),
}
#: Cluster circles are at most this many pixels in radius.
CLUSTER_MAX_RADIUS_PX = 28
#: Map modes of the hotspot page.
MODES: tuple[str, ...] = ("hex", "heat", "clusters", "rate", "gi", "emerging")
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def tp(key: str, **params: Any) -> str:
    """A label of these pages (``incident_pages.<key>``) in the session's language."""
    return t(f"incident_pages.{key}", state.lang(), **params)


# --------------------------------------------------------------------------- labels


def item_label(code: Any, lang: str) -> str:
    """Whistle-list item name (事项) in ``lang``."""
    item = taxonomy.ITEMS.get(str(code))
    return str(code) if item is None else (item.name_zh if lang == "zh" else item.name_en)


def category_label(code: Any, lang: str) -> str:
    """Whistle-list category name (大类) in ``lang``."""
    cat = taxonomy.CATEGORIES.get(str(code))
    return str(code) if cat is None else (cat.name_zh if lang == "zh" else cat.name_en)


def source_label(code: Any, lang: str) -> str:
    """Case source (12345 hotline, patrol, ...) in ``lang``."""
    return t(f"incident_pages.source.{code}", lang) if code in (*SOURCES, "other") else str(code)


def department_label(code: Any, lang: str) -> str:
    """Department name in ``lang`` (``—`` when unassigned)."""
    if not isinstance(code, str) or not code:
        return "—"
    return workflow.label("department", code, lang)


def pattern_name(code: int) -> str:
    """An ArcGIS emerging-pattern code (-8..8) as its translated name."""
    return tp(f"pattern.{PATTERNS[int(code)]}")


def cell_area_km2(res: int) -> float:
    """Average H3 cell area at ``res``."""
    return float(h3i.average_hexagon_area(res, unit="km^2"))


# --------------------------------------------------------------------------- filters


@dataclass(frozen=True)
class IncidentFilter:
    """What the pages filter on; an empty tuple means "all".

    ``start``/``end`` bound ``requested_datetime`` half-open, ``[start, end)``; ``grids`` holds
    grid codes (the drill-down's scope), empty for the whole district.
    """

    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    stages: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    items: tuple[str, ...] = ()
    levels: tuple[int, ...] = ()
    sources: tuple[str, ...] = ()
    grids: tuple[str, ...] = ()

    def where(self) -> dict[str, list[Any]]:
        """The filter as ``Store.read``/``Store.h3_counts`` ``where``."""
        pairs = (("stage", self.stages), ("department", self.departments),
                 ("category_code", self.categories), ("item_code", self.items),
                 ("level", self.levels), ("source", self.sources), ("grid_code", self.grids))
        return {col: list(vals) for col, vals in pairs if vals}

    def between(self) -> dict[str, tuple[Any, Any]]:
        """The time window as ``between``."""
        if self.start is None and self.end is None:
            return {}
        return {"requested_datetime": (self.start, self.end)}

    def mask(self, df: pd.DataFrame) -> np.ndarray:
        """Rows of ``df`` (the incidents layer) that pass, as a boolean array."""
        ok = np.ones(len(df), dtype=bool)
        for col, vals in self.where().items():
            ok &= df[col].isin(vals).fillna(False).to_numpy(bool)
        req = pd.to_datetime(df["requested_datetime"])
        if self.start is not None:
            ok &= (req >= self.start).fillna(False).to_numpy(bool)
        if self.end is not None:
            ok &= (req < self.end).fillna(False).to_numpy(bool)
        return ok

    def key(self) -> tuple[Any, ...]:
        """A hashable, cache-friendly form (``IncidentFilter(*f.key()) == f``)."""
        return (self.start, self.end, self.stages, self.departments, self.categories, self.items,
                self.levels, self.sources, self.grids)


def window_bounds(choice: str, now: pd.Timestamp, dates: Sequence[Any] = ()) -> tuple[
        pd.Timestamp | None, pd.Timestamp | None]:
    """``[start, end)`` of a time-window preset ending at ``now`` (or a custom date range).

    Examples
    --------
    >>> window_bounds("d7", pd.Timestamp("2026-11-20 16:00"))
    (Timestamp('2026-11-13 16:00:00'), Timestamp('2026-11-20 16:00:01'))
    >>> window_bounds("custom", pd.Timestamp("2026-11-20"), ["2026-01-01", "2026-01-31"])
    (Timestamp('2026-01-01 00:00:00'), Timestamp('2026-02-01 00:00:00'))
    """
    if choice in WINDOWS:  # the presets are the KPI windows of layers.analysis
        return analysis.kpi_window(now, WINDOWS[choice]) if WINDOWS[choice] is not None else (None, None)
    end = now + pd.Timedelta(seconds=1)
    if choice == "custom":
        picked = [pd.Timestamp(d) for d in dates if d is not None]
        if not picked:
            return None, end
        return min(picked).normalize(), max(picked).normalize() + pd.Timedelta(days=1)
    return None, None


def time_window(prefix: str, *, default: str = "d90", container: Any = st.sidebar) -> tuple[
        pd.Timestamp | None, pd.Timestamp | None, str]:
    """The time-window widget (presets plus a custom date range); returns start, end and a label."""
    now = state.now()
    options = [*WINDOWS, "custom"]
    names = {k: tp(f"window.{k}") for k in options}  # bound now: AppTest formats outside the run
    choice = container.selectbox(tp("filter.window"), options, index=options.index(default),
                                 key=f"{prefix}_window", format_func=names.__getitem__)
    dates: Sequence[Any] = ()
    if choice == "custom":
        picked = container.date_input(tp("filter.dates"),
                                      value=((now - pd.Timedelta(days=30)).date(), now.date()),
                                      key=f"{prefix}_dates")
        dates = picked if isinstance(picked, list | tuple) else [picked]
    start, end = window_bounds(choice, now, dates)
    if choice != "custom":
        return start, end, names[choice]
    text = tp("window.range", start=start.date() if start is not None else "…",
              end=(end - pd.Timedelta(days=1)).date() if end is not None else "…")
    return start, end, text


def multiselect(label: str, options: Sequence[Any], *, key: str, fmt: Any,
                container: Any = st.sidebar) -> tuple[Any, ...]:
    """A multiselect where nothing picked means "all"."""
    return tuple(container.multiselect(label, list(options), key=key, format_func=fmt,
                                       placeholder=tp("filter.all_hint"), select_all=False))


def category_filters(prefix: str, *, container: Any = st.sidebar) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Category then item (items narrowed to the chosen categories)."""
    lang = state.lang()
    cats = multiselect(tp("filter.category"), taxonomy.CATEGORY_CODES, key=f"{prefix}_cat",
                       fmt=lambda c: f"{c} {category_label(c, lang)}", container=container)
    items = [i for i, it in taxonomy.ITEMS.items() if not cats or it.category_code in cats]
    st.session_state[f"{prefix}_item"] = [i for i in st.session_state.get(f"{prefix}_item", []) if i in items]
    its = multiselect(tp("filter.item"), items, key=f"{prefix}_item",
                      fmt=lambda c: f"{c} {item_label(c, lang)}", container=container)
    return cats, its


def level_filter(prefix: str, *, container: Any = st.sidebar) -> tuple[int, ...]:
    """Levels 1–3."""
    names = {v: tp("filter.level_value", level=v) for v in (1, 2, 3)}
    return multiselect(tp("filter.level"), (1, 2, 3), key=f"{prefix}_level", fmt=names.__getitem__,
                       container=container)


def scope_grids(v: state.View) -> tuple[str, ...]:
    """Grid codes inside the view's sub-district / community / grid (empty: the whole district)."""
    if not (v.sub or v.com or v.grid):
        return ()
    if v.grid:
        return (v.grid,)
    grids = state.layer("grids", ["code", "community_code"])
    if v.com:
        return tuple(sorted(grids.loc[grids["community_code"] == v.com, "code"].astype(str)))
    coms = state.layer("communities", ["code", "subdistrict_code"])
    in_sub = set(coms.loc[coms["subdistrict_code"] == v.sub, "code"].astype(str))
    return tuple(sorted(grids.loc[grids["community_code"].isin(in_sub), "code"].astype(str)))


# --------------------------------------------------------------------------- data


def incidents() -> pd.DataFrame:
    """The incidents layer's :data:`COLUMNS` (cached per data version; shared, read-only)."""
    return state.layer("incidents", COLUMNS)


def filtered(flt: IncidentFilter) -> pd.DataFrame:
    """The incidents passing ``flt`` inside the signed-in account's scope (shared; do not modify)."""
    return _filtered(state.settings().store_url, state.data_version(), flt.key(), state.scope_key())


@st.cache_resource(max_entries=16, show_spinner=False)
def _filtered(url: str, version: str, key: tuple[Any, ...], scope: tuple[str, str, str] = ("", "", "")
              ) -> pd.DataFrame:
    df = state.scoped(incidents(), "incidents", scope)
    return df[IncidentFilter(*key).mask(df)]


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
    return state.locked(store.h3_counts, "incidents", res=res, where=flt.where() or None,
                        between=flt.between() or None, by=list(by))


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
    return _gi(state.settings().store_url, state.data_version(), int(res), flt.key(), bool(fdr))


@st.cache_resource(max_entries=16, show_spinner=False)
def _gi(url: str, version: str, res: int, key: tuple[Any, ...], fdr: bool) -> pd.DataFrame:
    flt = IncidentFilter(*key)
    table, _ = state.locked(analysis.hotspots, state.get_store(), None, res=res, since=flt.start,
                            until=flt.end, where=flt.where() or None, fdr=fdr, emerging=False,
                            domain=_domain(url, version, res))
    return table[["count", "z", "p", "gi_bin"]]


def emerging_table(res: int, flt: IncidentFilter, *, now: pd.Timestamp) -> tuple[
        pd.DataFrame, pd.DatetimeIndex] | None:
    """Emerging hot spots over weekly bins ending at the window's end (``None``: too few weeks).

    :func:`layers.analysis.hotspots` decides (the same function as ``gridpulse hotspots``).
    """
    return _emerging(state.settings().store_url, state.data_version(), int(res), flt.key(), now)


@st.cache_resource(max_entries=8, show_spinner=False)
def _emerging(url: str, version: str, res: int, key: tuple[Any, ...],
              now: pd.Timestamp) -> tuple[pd.DataFrame, pd.DatetimeIndex] | None:
    flt = IncidentFilter(*key)
    end = (flt.end or now).ceil("D")
    table, n_steps = state.locked(analysis.hotspots, state.get_store(), None, res=res, since=flt.start,
                                  until=end, where=flt.where() or None, domain=_domain(url, version, res))
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


def kpi_row(df: pd.DataFrame, *, now: pd.Timestamp, since: pd.Timestamp | None = None,
            until: pd.Timestamp | None = None) -> dict[str, float]:
    """The closed-loop KPIs of the filtered cases in ``[since, until)`` (:func:`layers.analysis.case_kpis`)."""
    return analysis.case_kpis(df, now=now, since=since, until=until)


def grid_names() -> dict[str, str]:
    """Grid code → grid name (the demo's names already carry the community's)."""
    return widgets.admin_names()


def district_bounds() -> np.ndarray:
    """WGS-84 bounds of the district (or of whatever admin layer exists)."""
    for name in ("districts", "subdistricts", "grids"):
        df = state.layer(name)
        if len(df):
            return df.total_bounds
    return np.array([118.7, 32.0, 118.8, 32.1])


# --------------------------------------------------------------------------- map layers


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


# --------------------------------------------------------------------------- cases


def case_rows(df: pd.DataFrame, *, now: pd.Timestamp, lang: str, limit: int = TABLE_ROWS) -> pd.DataFrame:
    """The newest ``limit`` cases as the board shows them, personal fields masked.

    The shared frame carries no personal columns; the reporter's name and phone of the shown
    rows are read from the store and masked (:func:`layers.privacy.mask_personal`).
    """
    rows = df.sort_values("requested_datetime", ascending=False, kind="stable").head(limit)
    ids = rows["service_request_id"].astype(str).tolist()
    personal = _personal(state.settings().store_url, state.data_version(), tuple(ids)).reindex(ids)
    names = grid_names()
    late = workflow.overdue(rows, now=now)
    return pd.DataFrame({
        "id": ids,
        "received": pd.to_datetime(rows["requested_datetime"]).dt.strftime("%Y-%m-%d %H:%M").to_numpy(),
        "item": [item_label(c, lang) for c in rows["item_code"]],
        "level": rows["level"].to_numpy(),
        "stage": [workflow.label("stage", str(s), lang) for s in rows["stage"]],
        "department": [department_label(d, lang) for d in rows["department"]],
        "grid": [names.get(str(g), str(g)) for g in rows["grid_code"]],
        "due": pd.to_datetime(rows["expected_datetime"]).dt.strftime("%Y-%m-%d %H:%M").to_numpy(),
        "overdue": np.where(late.to_numpy(), "⚠", ""),
        "source": [source_label(s, lang) for s in rows["source"]],
        "reporter": personal["reporter_name"].fillna("—").to_numpy(),
        "phone": personal["reporter_phone"].fillna("—").to_numpy(),
    })


@st.cache_resource(max_entries=16, show_spinner=False)
def _personal(url: str, version: str, ids: tuple[str, ...]) -> pd.DataFrame:
    cols = ["service_request_id", "reporter_name", "reporter_phone"]
    if not ids:
        return pd.DataFrame(columns=cols[1:], index=pd.Index([], name="service_request_id"))
    store = state.get_store()
    df = state.locked(store.read, "incidents", columns=cols, where={"service_request_id": list(ids)})
    df = pd.DataFrame(df.drop(columns="geometry", errors="ignore"))
    return mask_personal(df, "incidents").set_index("service_request_id")


def case_record(srid: str) -> dict[str, Any] | None:
    """One stored case (every column, geometry included) with personal fields masked.

    ``None`` also when the case lies outside the signed-in account's scope.
    """
    from dashboard import _auth
    from layers.permissions import filter_frame

    store = state.get_store()
    df = state.locked(store.read, "incidents", where={"service_request_id": srid})
    acc = _auth.account()
    if acc is not None:
        df = filter_frame(acc, df, "incidents")
    if len(df) != 1:
        return None
    row = mask_personal(df, "incidents").iloc[0].to_dict()
    return {k: (None if not isinstance(v, str | shapely.Geometry) and pd.isna(v) else v) for k, v in row.items()}


def case_history(srid: str, lang: str) -> pd.DataFrame:
    """The case's event log, oldest first (newest last), actors masked, options split from notes."""
    store = state.get_store()
    if "incident_events" not in state.locked(store.layer_names):
        return pd.DataFrame()
    ev = state.locked(store.read, "incident_events", where={"service_request_id": srid}, order_by="time")
    ev = mask_personal(ev, "incident_events")
    parsed = [workflow.parse_note(n if isinstance(n, str) else "") for n in ev["note"]]
    return pd.DataFrame({
        "time": pd.to_datetime(ev["time"]).dt.strftime("%Y-%m-%d %H:%M").to_numpy(),
        "action": [workflow.label("action", str(a), lang) for a in ev["action"]],
        "from_stage": [workflow.label("stage", str(s), lang) if isinstance(s, str) else "—"
                       for s in ev["from_stage"]],
        "to_stage": [workflow.label("stage", str(s), lang) for s in ev["to_stage"]],
        "actor": ev["actor"].fillna("—").to_numpy(),
        "options": [_options_text(o, lang) for o, _ in parsed],
        "note": [txt for _, txt in parsed],
    })


def _options_text(opts: Mapping[str, str], lang: str) -> str:
    parts = []
    for k, v in opts.items():
        if k == "department":
            v = department_label(v, lang)
        elif k == "kind":
            v = workflow.label("whistle", v, lang)
        elif k == "reason":
            v = workflow.label("reason", v, lang)
        name = t(f"incident_pages.act.{k}", lang) if k in ("department", "kind", "reason", "hours", "rating") else k
        parts.append(f"{name}: {v}")
    return "; ".join(parts)


def case_map(record: Mapping[str, Any], cfg: maps.MapConfig) -> folium.Map:
    """A small map: the case's point and its grid's outline."""
    geom = record.get("geometry")
    grid = None
    if record.get("grid_code"):
        shapes = state.display_layer("grids", cfg, columns=("code", "name"))
        hit = shapes[shapes["code"] == record["grid_code"]]
        grid = hit if len(hit) else None
    if grid is not None:
        b = grid.total_bounds
    elif geom is not None:
        b = np.array(geom.buffer(0.003).bounds)
    else:
        b = district_bounds()
    pad = max(b[2] - b[0], b[3] - b[1]) * 0.35
    m = maps.base_map(cfg, bounds=[b[0] - pad, b[1] - pad, b[2] + pad, b[3] + pad])
    if grid is not None:
        maps.PolygonLayer(grid, name="grid", styles=[{"color": "#3a6ea5", "weight": 2,
                                                      "fillColor": "#4c78a8", "fillOpacity": 0.12}],
                          tooltip=[("name", tp("cases.grid"))], css_name="casegrid").add_to(m)
    if geom is not None and not geom.is_empty:
        x, y = maps.to_display_lonlat([geom.x], [geom.y], cfg)
        folium.CircleMarker([round(float(y[0]), 5), round(float(x[0]), 5)], radius=9, color="#b10026",
                            weight=2, fill=True, fill_color="#e31a1c", fill_opacity=0.9,
                            ).add_child(_html.Tooltip(record.get("service_request_id"))).add_to(m)
    return maps.finish(m, cfg)


def action_time(record: Mapping[str, Any], now: pd.Timestamp) -> pd.Timestamp:
    """When an action taken now is recorded: "now", but never before the case's last update.

    The demo's clock stands still (:func:`dashboard.state.now`), so a step taken after another
    is recorded a minute after it: the log keeps its order and every event its own id.
    """
    last = record.get("updated_datetime") or record.get("requested_datetime")
    if last is None:
        return now
    return max(pd.Timestamp(now).floor("s"), pd.Timestamp(last).floor("s") + pd.Timedelta(minutes=1))


@dataclass(frozen=True)
class Outcome:
    """What an attempted action did: ``ok``, the message, and for a refusal how to fix it."""

    ok: bool
    message: str
    fix: str | None = None


def perform(srid: str, action: str, *, note: str, time: pd.Timestamp,
            options: Mapping[str, Any], lang: str, seen: Mapping[str, Any] | None = None) -> Outcome:
    """Run one workflow transition on the stored case as the signed-in account.

    The role and the actor come from the account (:func:`layers.app.act_on_case` checks role,
    scope and department); a refused step changes nothing. ``seen`` is the case as the page
    showed it when the button was clicked: if someone else changed it since, or changes it
    while this action is written, the action is refused with "this case was just changed by
    someone else — reload and try again".
    """
    from dashboard import _auth
    from layers.app import act_on_case
    from layers.permissions import PermissionDenied

    account = _auth.actor()
    opts = {k: v for k, v in options.items() if v is not None and v != ""}
    store = state.get_store()
    try:
        _, event = state.locked(act_on_case, store, account, srid, action, time=time, note=note,
                                based_on=seen, **opts)
    except PermissionDenied as err:
        return Outcome(False, err.message(lang), err.fix(lang))
    except workflow.IllegalTransitionError as err:
        sep = "。" if lang == "zh" else ". "
        return Outcome(False, f"{err.message(lang)}{sep}{tp('act.refused')}", err.fix(lang))
    except ConcurrentChangeError as err:  # someone moved the case since it was read
        return Outcome(False, error_text(err, lang), t("cas.conflict.fix", lang))
    except StoreError as err:
        return Outcome(False, tp("act.store_failed", error=str(err)))
    return Outcome(True, tp("act.done", action=workflow.label("action", action, lang),
                            from_stage=workflow.label("stage", event.get("from_stage") or "new", lang),
                            to_stage=workflow.label("stage", str(event["to_stage"]), lang)))


def action_form(srid: str, record: Mapping[str, Any], *, now: pd.Timestamp, lang: str) -> None:
    """The signed-in account's role, the action (the legal ones, or all), its options, note, button.

    The outcome is shown at the top of the form after the rerun that refreshes the case.
    """
    from dashboard import _auth
    from layers.app import legal_case_actions
    from layers.permissions import role_label

    show_outcome(srid)
    seen = seen_record(srid, record)
    if any(seen.get(c) != record.get(c) for c in seen):  # moved by someone else since shown
        st.warning(t("cas.changed", lang))
    account = _auth.actor()
    role = account.workflow_role
    if role is None:
        return
    st.caption(f"{tp('act.role')}: {role_label(account.role, lang)} · "
               f"{tp('act.actor')}: {account.username}")
    show_all = st.checkbox(tp("act.show_all"), key="inc_show_all")
    legal = legal_case_actions(account, record, time=now)
    choices = [a for a in (workflow.ACTIONS if show_all else legal) if a != "collect"]
    if not choices:
        st.info(tp("act.no_legal", role=role_label(account.role, lang),
                   stage=workflow.label("stage", str(record["stage"]), lang)))
        return
    if st.session_state.get("inc_action") not in choices:
        st.session_state["inc_action"] = choices[0]
    action = st.selectbox(tp("act.action"), choices, key="inc_action",
                          format_func=lambda a: workflow.label("action", a, lang) + ("" if a in legal else " ✕"))
    opts = _option_widgets(action, record, lang)
    note = st.text_area(tp("act.note"), key="inc_note", height=68)
    when = action_time(record, now)
    st.caption(tp("act.time", time=when.strftime("%Y-%m-%d %H:%M")))
    if st.button(tp("act.submit"), key="inc_submit", type="primary"):
        out = perform(srid, action, note=note, time=when, options=opts, lang=lang, seen=seen)
        st.session_state["inc_flash"] = (srid, out)
        if out.ok:
            st.session_state.pop("inc_note", None)
            st.session_state.pop("inc_action", None)
            st.session_state.pop("inc_seen", None)  # our own change: nothing to warn about
        st.rerun()


def seen_record(srid: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """The case as the page showed it on the previous run (what the user acted on).

    Streamlit reruns the page when a button is clicked, so ``record`` is already the case as
    stored *now*; the values shown before the click are kept in the session. Returns those
    (or ``record``'s on a first view) and remembers ``record``'s for the next click.
    """
    now = {c: record.get(c) for c in workflow.CAS_COLUMNS if c in record}
    prev_srid, prev = st.session_state.get("inc_seen", (None, None))
    st.session_state["inc_seen"] = (srid, now)
    return prev if prev_srid == srid and prev is not None else now


def contacts_button(srid: str, record: Mapping[str, Any], container: Any) -> None:
    """The reporter's name and phone unmasked, for the case's own handlers (audited)."""
    from dashboard import _auth
    from layers.app import case_contacts
    from layers.permissions import can

    account = _auth.account()
    grid = record.get("grid_code")
    if account is None or not can(account, "unmask.case", scope_code=str(grid) if grid else "",
                                  department=record.get("department")):
        return
    shown = st.session_state.get("inc_contacts")
    if shown is not None and shown[0] == srid:
        c = shown[1]
        container.text(f"{c.get('reporter_name') or '—'} · {c.get('reporter_phone') or '—'}")  # plain text
    elif container.button(t("auth.ui.show_contacts", state.lang()), key="inc_unmask"):
        st.session_state["inc_contacts"] = (srid, state.locked(case_contacts, state.get_store(),
                                                               account, srid))
        st.rerun()


def show_outcome(srid: str) -> None:
    """The outcome of the last action on this case (kept until the next action)."""
    case, flash = st.session_state.get("inc_flash", (None, None))
    if flash is None or case != srid:
        return
    (st.success if flash.ok else st.error)(_html.md(flash.message))
    if flash.fix:
        st.caption(_html.md(flash.fix))


def _option_widgets(action: str, record: Mapping[str, Any], lang: str) -> dict[str, Any]:
    """One widget per option of ``action`` (:data:`ACTION_OPTIONS`)."""
    opts: dict[str, Any] = {}
    for opt in ACTION_OPTIONS.get(action, ()):
        if opt == "department":
            default = record.get("department") or ""
            item = taxonomy.ITEMS.get(str(record.get("item_code")))
            if not default and item is not None:
                default = item.department
            opts[opt] = st.selectbox(tp("act.department"), DEPARTMENTS, key="inc_opt_department",
                                     index=DEPARTMENTS.index(default) if default in DEPARTMENTS else 0,
                                     format_func=lambda d: department_label(d, lang))
        elif opt == "kind":
            opts[opt] = st.selectbox(tp("act.kind"), WHISTLES[1:], key="inc_opt_kind",
                                     format_func=lambda w: workflow.label("whistle", w, lang))
        elif opt == "reason":
            opts[opt] = st.selectbox(tp("act.reason"), workflow.NO_ACTION_REASONS, key="inc_opt_reason",
                                     format_func=lambda r: workflow.label("reason", r, lang))
        elif opt == "duplicate_of":
            opts[opt] = st.text_input(tp("act.duplicate_of"), key="inc_opt_dup").strip() or None
        elif opt == "hours":
            opts[opt] = float(st.number_input(tp("act.hours"), min_value=1, max_value=720, value=24,
                                              step=12, key="inc_opt_hours"))
        elif opt == "rating":
            stars = [tp("act.no_rating"), *("★" * v for v in range(1, 6))]
            r = st.selectbox(tp("act.rating"), [0, 1, 2, 3, 4, 5], index=5, key="inc_opt_rating",
                             format_func=stars.__getitem__)
            opts[opt] = int(r) if r else None
    return opts


# --------------------------------------------------------------------------- hotspot page


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


def limits_caption(lang: str) -> None:
    """State how time limits are counted (working hours, holidays, urgent cases) under the KPIs."""
    st.caption(workflow.limits_rule(lang))
