"""Map rendering shared by every page: folium (Leaflet) through streamlit-folium.

What reaches the browser is kept small and honest:

* polygon layers are simplified **as a coverage** (:func:`simplify_coverage`, built on
  ``shapely.coverage_simplify``): neighbours keep sharing the same edges, so no slivers or gaps
  open between grids, and coordinates are rounded (5 decimals, about 1 m) before serialisation;
* features are written as compact JSON (no spaces, UTF-8 Chinese) by :class:`PolygonLayer`,
  which styles each feature by a class index into a small style table instead of repeating a
  style per feature, and builds tooltips in the browser from a label table;
* large point sets are aggregated before they are drawn (H3 hexes via :func:`hex_layer`, or a
  heat layer), never sent one by one;
* the basemap is a setting (:class:`MapConfig`): OpenStreetMap, Tianditu (key), AMap (every
  overlay converted to GCJ-02 when drawn, clicks converted back), a self-hosted XYZ URL, or none;
* in offline mode (and whenever Streamlit serves ``dashboard/static``), Leaflet and its plugins
  load from the GridPulse server itself; jQuery, Bootstrap and font-awesome, which folium adds by
  default, are never loaded because nothing here uses them.

Pages call :func:`base_map`, add layers, and hand the map to :func:`show` with only the returned
objects they need (``returned_objects``), so panning the map never reruns the script.

The folium elements (feature collections, polygon layer, legend, tile-error notice, fitting
beside the legend) live in :mod:`dashboard._map_elements` and are re-exported here.

Examples
--------
>>> import shapely, geopandas as gpd
>>> sq = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1, 1)], crs=4326)
>>> round_coordinates(sq.geometry.values, decimals=1)[0].bounds
(0.0, 0.0, 1.0, 1.0)
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import Element

from dashboard._map_elements import (  # noqa: F401 (re-exported: moved there)
    FitBesideLegend,
    Legend,
    TileErrorNotice,
    _js,
    feature_collection,
)
from dashboard._map_elements import PolygonLayer as _PolygonLayer
from geo.crs import convert_geometries, convert_lonlat, to_metric
from geo.hexes import cells_to_polygons
from layers.config import Settings
from layers.i18n import t

#: Basemaps a user can choose (``GRIDPULSE_BASEMAP``).
BASEMAPS: tuple[str, ...] = ("osm", "tianditu", "amap", "xyz", "none")
#: Basemaps that fetch tiles from the public internet (refused in offline mode).
EXTERNAL_BASEMAPS: frozenset[str] = frozenset({"osm", "tianditu", "amap"})
#: Where Streamlit serves ``dashboard/static`` (``server.enableStaticServing``).
STATIC_URL = "/app/static"
#: Coordinates sent to the browser are rounded to this many decimals (1e-5 deg ~ 1.1 m).
DECIMALS = 5
#: Sequential palette for choropleths (ColorBrewer YlOrRd, 6 classes).
PALETTE: tuple[str, ...] = ("#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#f03b20", "#bd0026")
#: Status colours (ok, attention, alarm) for the wall display.
STATUS_COLOURS: tuple[str, ...] = ("#1f9d55", "#f2a900", "#e3342f")

# Local copies of the assets folium would load from CDNs; ``None`` drops the asset.
_LOCAL_JS: dict[str, str | None] = {
    "leaflet": f"{STATIC_URL}/leaflet/leaflet.js",
    "jquery": None,
    "bootstrap": None,
    "awesome_markers": None,
    "leaflet-heat.js": f"{STATIC_URL}/heat/leaflet-heat.js",
    "markerclusterjs": f"{STATIC_URL}/markercluster/leaflet.markercluster.js",
}
_LOCAL_CSS: dict[str, str | None] = {
    "leaflet_css": f"{STATIC_URL}/leaflet/leaflet.css",
    "bootstrap_css": None,
    "glyphicons_css": None,
    "awesome_markers_font_css": None,
    "awesome_markers_css": None,
    "awesome_rotate_css": None,
    "markerclustercss": f"{STATIC_URL}/markercluster/MarkerCluster.css",
    "markerclusterdefaultcss": f"{STATIC_URL}/markercluster/MarkerCluster.Default.css",
}


class MapConfigError(ValueError):
    """A basemap setting that cannot be drawn (e.g. Tianditu without a key)."""


@dataclass(frozen=True)
class MapConfig:
    """How maps are drawn: basemap, offline mode, theme, language.

    Parameters
    ----------
    basemap
        ``osm``, ``tianditu``, ``amap``, ``xyz`` or ``none``.
    tianditu_key
        Tianditu (天地图) token; needed for ``tianditu``.
    tiles_url
        Self-hosted XYZ template (``.../{z}/{x}/{y}.png``); needed for ``xyz``.
    offline
        Request nothing beyond the GridPulse server: local Leaflet assets, and public
        basemaps fall back to ``none`` (a self-hosted ``xyz`` server stays).
    local_assets
        Load Leaflet from :data:`STATIC_URL` (Streamlit static serving must be on).
    dark
        Dark theme (wall display): dark background, dimmed tiles.
    lang
        ``zh`` or ``en`` (tooltips, legend, Tianditu/AMap labels).
    """

    basemap: str = "osm"
    tianditu_key: str = ""
    tiles_url: str = ""
    offline: bool = False
    local_assets: bool = False
    dark: bool = False
    lang: str = "zh"

    def __post_init__(self) -> None:
        if self.basemap not in BASEMAPS:
            raise MapConfigError(
                f"basemap {self.basemap!r} is not one of {', '.join(BASEMAPS)}"
            )

    @classmethod
    def from_settings(cls, s: Settings, **overrides: Any) -> MapConfig:
        """Build from :class:`layers.config.Settings`, with per-page overrides."""
        cfg = cls(
            basemap=s.basemap,
            tianditu_key=s.tianditu_key,
            tiles_url=s.tiles_url,
            offline=s.offline,
            local_assets=s.offline,
        )
        return replace(cfg, **overrides)

    @property
    def effective_basemap(self) -> str:
        """The basemap actually drawn (offline mode or a missing key/URL gives ``none``)."""
        if self.offline and self.basemap in EXTERNAL_BASEMAPS:
            return "none"
        if self.basemap == "tianditu" and not self.tianditu_key:
            return "none"
        if self.basemap == "xyz" and not self.tiles_url:
            return "none"
        return self.basemap

    @property
    def datum(self) -> str:
        """Datum overlays are drawn in: ``gcj02`` on AMap, else ``wgs84``."""
        return "gcj02" if self.effective_basemap == "amap" else "wgs84"

    @property
    def uses_local_assets(self) -> bool:
        """True when Leaflet is loaded from the GridPulse server."""
        return self.offline or self.local_assets


def available_basemaps(s: Settings) -> list[str]:
    """Basemaps this installation can draw (a key or URL present; public ones only online)."""
    out = []
    for b in BASEMAPS:
        if s.offline and b in EXTERNAL_BASEMAPS:
            continue
        if b == "tianditu" and not s.tianditu_key:
            continue
        if b == "xyz" and not s.tiles_url:
            continue
        out.append(b)
    return out


# --------------------------------------------------------------------------- cached GeoJSON

#: Largest total size (characters) of the GeoJSON texts :func:`geojson_text` keeps.
GEOJSON_CACHE_CHARS = 48_000_000
_GEOJSON: OrderedDict[bytes, str] = OrderedDict()
_GEOJSON_LOCK = threading.Lock()


def _digest(gdf: gpd.GeoDataFrame, properties: Sequence[str], style_index: np.ndarray) -> bytes:
    """A digest of what :func:`feature_collection` writes: geometries, properties, classes."""
    h = hashlib.blake2b(digest_size=20)
    wkb = shapely.to_wkb(np.asarray(gdf.geometry.values, dtype=object))
    h.update(np.array([-1 if b is None else len(b) for b in wkb], dtype=np.int64).tobytes())
    h.update(b"".join(b for b in wkb if b is not None))
    h.update(json.dumps([list(properties)] + [gdf[c].tolist() for c in properties],
                        default=str, ensure_ascii=False).encode())
    h.update(np.asarray(style_index, dtype=np.int64).tobytes())
    return h.digest()


def geojson_text(gdf: gpd.GeoDataFrame, *, properties: Sequence[str] = (),
                 style_index: Any = None) -> str:
    """``feature_collection(gdf, ...)`` as the compact, script-safe JSON a layer embeds.

    Built once per content and shared (a digest of the geometries' WKB, the properties and
    the classes keys a bounded cache): a map drawn again (every rerun, every session, the
    wall's 30 s refresh) skips building and serialising thousands of polygons, and
    streamlit-folium renders a map several times per run.
    """
    idx = np.zeros(len(gdf), dtype=int) if style_index is None else np.asarray(style_index)
    key = _digest(gdf, properties, idx)
    with _GEOJSON_LOCK:
        text = _GEOJSON.get(key)
        if text is not None:
            _GEOJSON.move_to_end(key)
            return text
    text = _js(feature_collection(gdf, properties=properties, style_index=idx))
    with _GEOJSON_LOCK:
        _GEOJSON[key] = text
        total = sum(len(v) for v in _GEOJSON.values())
        while len(_GEOJSON) > 1 and total > GEOJSON_CACHE_CHARS:
            _, old = _GEOJSON.popitem(last=False)
            total -= len(old)
    return text


class PolygonLayer(_PolygonLayer):
    """:class:`dashboard._map_elements.PolygonLayer` with its GeoJSON from :func:`geojson_text`.

    The same layer, the same script; only the text is built once per content. ``data`` (the
    feature collection) is parsed back from that text when asked for.
    """

    def __init__(
        self,
        gdf: gpd.GeoDataFrame,
        *,
        name: str,
        styles: Sequence[Mapping[str, Any]],
        style_index: Any = None,
        tooltip: Sequence[tuple[str, str]] = (),
        interactive: bool = True,
        show: bool = True,
        css_name: str = "layer",
    ) -> None:
        idx = np.zeros(len(gdf), dtype=int) if style_index is None else np.asarray(style_index)
        if len(idx) != len(gdf):
            raise ValueError("style_index must have one entry per feature")
        # the parent sets styles, fields and names; its features are built here, from the cache
        super().__init__(gdf.iloc[:0], name=name, styles=styles, tooltip=tooltip,
                         interactive=interactive, show=show, css_name=css_name)
        self._text = geojson_text(gdf, properties=[c for c, _ in tooltip], style_index=idx)
        self._bounds = gdf.total_bounds if len(gdf) else None

    @property  # type: ignore[override]
    def data(self) -> dict[str, Any]:
        return json.loads(self._text)

    @data.setter
    def data(self, value: Any) -> None:  # the parent's (empty) collection: the text is the data
        pass

    @property
    def data_js(self) -> str:
        return self._text


# --------------------------------------------------------------------------- geometry


def simplify_coverage(gdf: gpd.GeoDataFrame, *, tolerance_m: float) -> gpd.GeoDataFrame:
    """Simplify polygons without opening gaps or overlaps between neighbours.

    A valid coverage (polygons that only touch) goes through ``shapely.coverage_simplify`` in
    the local metric CRS, so every shared edge is simplified once and stays shared. Polygons that
    overlap (dedicated grids laid over comprehensive ones, say) are simplified one by one with
    topology preserved.

    Parameters
    ----------
    gdf
        Polygons in EPSG:4326 (or any CRS with a known definition).
    tolerance_m
        Largest distance, in metres, a simplified edge may move.

    Returns
    -------
    geopandas.GeoDataFrame
        A copy, same index and columns, in the input CRS.
    """
    if tolerance_m < 0:
        raise ValueError(f"tolerance_m must be >= 0, got {tolerance_m}")
    if gdf.empty or tolerance_m == 0:
        return gdf.copy()
    metric = to_metric(gdf[[gdf.geometry.name]])
    geoms = np.asarray(metric.geometry.values, dtype=object)
    ok = ~(pd.isna(geoms) | shapely.is_empty(geoms))
    out = geoms.copy()
    good = as_coverage(geoms[ok])
    if good is not None:
        out[ok] = shapely.coverage_simplify(good, tolerance_m, simplify_boundary=True)
    else:
        out[ok] = shapely.simplify(geoms[ok], tolerance_m, preserve_topology=True)
    res = gdf.copy()
    res[gdf.geometry.name] = gpd.GeoSeries(out, index=gdf.index, crs=metric.crs).to_crs(gdf.crs)
    return res


def as_coverage(geoms: np.ndarray, *, snap_m: float = 0.05, max_change: float = 0.005) -> np.ndarray | None:
    """``geoms`` (metric CRS) as a valid coverage, or ``None`` if they are not one.

    Polygons whose shared edges do not match exactly (floating-point noise from the tool that
    cut them) are cleaned with ``shapely.coverage_clean`` (vertices within ``snap_m`` metres
    snapped together). The cleaned version is used only if no polygon's area changed by more
    than ``max_change`` (a fraction): real overlaps, such as dedicated grids laid over each
    other, are left alone and give ``None``.
    """
    if len(geoms) == 0:
        return None
    kinds = shapely.get_type_id(geoms)
    if not np.isin(kinds, (3, 6)).all():  # Polygon, MultiPolygon
        return None
    if bool(shapely.coverage_is_valid(geoms)):
        return geoms
    cleaned = shapely.coverage_clean(geoms, snapping_distance=snap_m)
    before = shapely.area(geoms)
    after = shapely.area(cleaned)
    with np.errstate(divide="ignore", invalid="ignore"):
        change = np.abs(after - before) / np.where(before > 0, before, 1)
    if np.nanmax(change) > max_change or not bool(shapely.coverage_is_valid(cleaned)):
        return None
    return cleaned


def round_coordinates(geoms: Any, *, decimals: int = DECIMALS) -> np.ndarray:
    """Round every vertex of shapely geometries to ``decimals`` places (lon/lat degrees).

    Shared vertices round to the same value, so a coverage stays a coverage.
    """
    arr = np.asarray(geoms, dtype=object)
    return shapely.transform(arr, lambda c: np.round(c, decimals))


def prepare_polygons(
    gdf: gpd.GeoDataFrame,
    *,
    tolerance_m: float = 4.0,
    decimals: int = DECIMALS,
    datum: str = "wgs84",
) -> gpd.GeoDataFrame:
    """Everything polygons need before they reach the browser.

    Coverage-simplify (:func:`simplify_coverage`), convert to the basemap's datum (GCJ-02 for
    AMap), and round coordinates. Pages cache the result (``st.cache_resource``).
    """
    out = simplify_coverage(gdf.to_crs(4326), tolerance_m=tolerance_m)
    geoms = out.geometry.values
    if datum != "wgs84":
        geoms = convert_geometries(geoms, src="wgs84", dst=datum)  # type: ignore[arg-type]
    out[out.geometry.name] = gpd.GeoSeries(
        round_coordinates(geoms, decimals=decimals), index=out.index, crs=4326
    )
    return out


def to_display_lonlat(lon: Any, lat: Any, cfg: MapConfig) -> tuple[np.ndarray, np.ndarray]:
    """WGS-84 lon/lat to the datum the map is drawn in."""
    return convert_lonlat(lon, lat, src="wgs84", dst=cfg.datum)  # type: ignore[arg-type]


def click_to_wgs84(click: Mapping[str, float] | None, cfg: MapConfig) -> tuple[float, float] | None:
    """A streamlit-folium click (``{"lat":..,"lng":..}`` in the map's datum) as WGS-84 ``(lon, lat)``."""
    if not click or click.get("lat") is None or click.get("lng") is None:
        return None
    lon, lat = convert_lonlat(
        [float(click["lng"])], [float(click["lat"])], src=cfg.datum, dst="wgs84"  # type: ignore[arg-type]
    )
    return float(lon[0]), float(lat[0])


# --------------------------------------------------------------------------- classes


def classify(values: Any, *, k: int = len(PALETTE)) -> tuple[np.ndarray, list[float]]:
    """Quantile classes for a choropleth.

    Parameters
    ----------
    values
        Numbers (NaN allowed).
    k
        Largest number of classes.

    Returns
    -------
    classes, edges
        ``classes`` aligned to ``values``: 0..n-1, or -1 for NaN; ``edges`` has n+1 entries.

    Examples
    --------
    >>> c, e = classify([1, 2, 3, 4, float("nan")], k=2)
    >>> c.tolist(), e
    ([0, 0, 1, 1, -1], [1.0, 2.5, 4.0])
    """
    v = np.asarray(values, dtype=float)
    fin = np.isfinite(v)
    classes = np.full(v.shape, -1, dtype=int)
    if not fin.any():
        return classes, []
    edges = np.unique(np.nanquantile(v[fin], np.linspace(0, 1, k + 1)))
    if len(edges) == 1:
        classes[fin] = 0
        return classes, [float(edges[0]), float(edges[0])]
    inner = edges[1:-1]
    classes[fin] = np.searchsorted(inner, v[fin], side="right")
    return classes, [float(x) for x in edges]


def ramp(n: int) -> list[str]:
    """``n`` colours spread over :data:`PALETTE`."""
    if n <= 0:
        return []
    if n == 1:  # one class (all values equal): a colour that shows on any background
        return [PALETTE[3]]
    idx = np.round(np.linspace(0, len(PALETTE) - 1, n)).astype(int)
    return [PALETTE[i] for i in idx]


# --------------------------------------------------------------------------- maps

_TIANDITU = (
    "https://t{s}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
    "&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}&tk={key}"
)
_AMAP = (
    "https://webrd0{{s}}.is.autonavi.com/appmaptile?lang={lang}&size=1&scale=1&style=8"
    "&x={{x}}&y={{y}}&z={{z}}"
)


def _tile_layers(cfg: MapConfig) -> list[folium.TileLayer]:
    b = cfg.effective_basemap
    if b == "osm":
        return [folium.TileLayer(
            "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
            attr="&copy; OpenStreetMap contributors", name="OpenStreetMap", max_zoom=19,
        )]
    if b == "tianditu":
        note = "cva" if cfg.lang == "zh" else "eva"
        return [
            folium.TileLayer(
                _TIANDITU.format(s="{s}", layer=layer, key=cfg.tianditu_key),
                attr="&copy; 天地图 Tianditu", name=name, subdomains="01234567",
                max_zoom=18, overlay=overlay,
            )
            for layer, name, overlay in (("vec", "天地图", False), (note, "注记", True))
        ]
    if b == "amap":
        url = _AMAP.format(lang="zh_cn" if cfg.lang == "zh" else "en")
        return [folium.TileLayer(url, attr="&copy; 高德地图 AMap", name="AMap",
                                 subdomains="1234", max_zoom=18)]
    if b == "xyz":
        return [folium.TileLayer(cfg.tiles_url, attr="GridPulse tiles", name="tiles", max_zoom=20)]
    return []


def use_local_assets(m: folium.Map | folium.MacroElement) -> None:
    """Point every element's JS/CSS at the copies under :data:`STATIC_URL` (and drop unused ones)."""
    for el in _walk(m):
        for attr, table in (("default_js", _LOCAL_JS), ("default_css", _LOCAL_CSS)):
            links = getattr(el, attr, None)
            if not links:
                continue
            new = []
            for name, url in links:
                local = table.get(name, url)
                if local is not None:
                    new.append((name, local))
            setattr(el, attr, new)


def drop_unused_assets(m: folium.Map | folium.MacroElement) -> None:
    """Remove jQuery, Bootstrap and font-awesome links, which no GridPulse map uses."""
    drop_js = {k for k, v in _LOCAL_JS.items() if v is None}
    drop_css = {k for k, v in _LOCAL_CSS.items() if v is None}
    for el in _walk(m):
        if getattr(el, "default_js", None):
            el.default_js = [(n, u) for n, u in el.default_js if n not in drop_js]
        if getattr(el, "default_css", None):
            el.default_css = [(n, u) for n, u in el.default_css if n not in drop_css]


def _walk(el: Any) -> Iterable[Any]:
    yield el
    for child in getattr(el, "_children", {}).values():
        yield from _walk(child)


def base_map(
    cfg: MapConfig,
    *,
    bounds: Sequence[float] | None = None,
    font_px: int = 13,
    fill_frame: bool = False,
) -> folium.Map:
    """A Leaflet map with the configured basemap, fitted to WGS-84 ``bounds`` (minx, miny, maxx, maxy).

    ``fill_frame`` makes the map as tall as the frame it is drawn in (the wall display sizes the
    frame in ``vh`` so the map fills the same share of a 1080p and a 4K screen).
    """
    m = folium.Map(tiles=None, control_scale=True, prefer_canvas=False, zoom_control=True,
                   zoom_snap=0.25, zoom_delta=0.5,
                   attribution_control=cfg.effective_basemap != "none", zoom_start=12,
                   location=None if bounds is None else [
                       (bounds[1] + bounds[3]) / 2, (bounds[0] + bounds[2]) / 2])
    tiles = _tile_layers(cfg)
    for tl in tiles:
        tl.add_to(m)
    if tiles:
        TileErrorNotice(t("ux.map.tiles_failed", cfg.lang)).add_to(m)
    bg = "#0b1220" if cfg.dark else "#eef1f5"
    css = [
        f".leaflet-container{{background:{bg};font-family:'Noto Sans CJK SC','Microsoft YaHei',sans-serif;"
        f"font-size:{font_px}px}}",
        f".leaflet-tooltip{{font-size:{font_px}px}}",
    ]
    if fill_frame:
        css.append(f"html,body{{background:{bg}}}#{m.get_name()}{{height:100vh !important}}")
    if cfg.dark:
        css.append(".leaflet-tile-pane{filter:invert(1) hue-rotate(180deg) brightness(.85) contrast(.9)}")
    m.get_root().header.add_child(Element(f"<style>{''.join(css)}</style>"), name="gp_css")
    if bounds is not None:
        x0, y0, x1, y1 = bounds
        (lx0, lx1), (ly0, ly1) = to_display_lonlat([x0, x1], [y0, y1], cfg)
        m.fit_bounds([[float(ly0), float(lx0)], [float(ly1), float(lx1)]])
    return m


def finish(m: folium.Map, cfg: MapConfig) -> folium.Map:
    """Last step before rendering: trim or localise the asset links."""
    if cfg.uses_local_assets:
        use_local_assets(m)
    else:
        drop_unused_assets(m)
    return m


def hex_layer(
    counts: pd.DataFrame,
    *,
    name: str,
    label: str,
    cfg: MapConfig,
    cell_col: str = "cell",
    count_col: str = "count",
    opacity: float = 0.65,
) -> tuple[PolygonLayer, list[tuple[str, str, str]]]:
    """H3 cells (int64 ids) coloured by count: the aggregate that replaces thousands of points.

    Returns the layer and its legend items.
    """
    counts = counts[counts[cell_col] != 0]
    geoms = cells_to_polygons(counts[cell_col].to_numpy())
    if cfg.datum != "wgs84":
        geoms = convert_geometries(geoms, src="wgs84", dst=cfg.datum)  # type: ignore[arg-type]
    gdf = gpd.GeoDataFrame(
        {"n": counts[count_col].to_numpy()},
        geometry=round_coordinates(geoms), crs=4326,
    )
    classes, edges = classify(gdf["n"].to_numpy())
    colours = ramp(max(len(edges) - 1, 1))
    styles = [{"fillColor": c, "fillOpacity": opacity, "weight": 0.5, "color": c} for c in colours]
    layer = PolygonLayer(gdf, name=name, styles=styles, style_index=classes,
                         tooltip=[("n", label)], css_name="hex")
    return layer, legend_items(edges, colours)


def legend_items(edges: Sequence[float], colours: Sequence[str], *, fmt: str = "{:,.0f}") -> list[tuple[str, str, str]]:
    """Legend rows ``(colour, "a – b", "fill")`` for classes with ``edges``."""
    rows = []
    for i, c in enumerate(colours):
        if i + 1 >= len(edges):
            break
        rows.append((c, f"{fmt.format(edges[i])} – {fmt.format(edges[i + 1])}", "fill"))
    return rows


def preview_map(gdf: gpd.GeoDataFrame, cfg: MapConfig, *, name: str, label: str,
                max_features: int = 5000) -> folium.Map:
    """Any layer on a map: polygons coverage-simplified, lines simplified, points as H3 hexes.

    Used by the Data page before a file is committed. More than ``max_features`` polygons or
    lines are thinned to a sample of that size (the preview is for looking, not for counting).
    """
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty].to_crs(4326)
    m = base_map(cfg, bounds=gdf.total_bounds if len(gdf) else None)
    if gdf.empty:
        return finish(m, cfg)
    kinds = set(gdf.geom_type.unique())
    style = {"color": "#d62728", "weight": 1.5, "fillColor": "#ff7f0e", "fillOpacity": 0.25}
    if kinds <= {"Point", "MultiPoint"}:
        from geo.hexes import lonlat_to_cells

        pts = gdf.geometry.representative_point()
        cells = lonlat_to_cells(pts.x.to_numpy(), pts.y.to_numpy(), res=10)
        counts = pd.Series(cells).value_counts().rename_axis("cell").reset_index(name="count")
        layer, rows = hex_layer(counts, name=name, label=label, cfg=cfg)
        layer.add_to(m)
        Legend([(name, rows)]).add_to(m)
        return finish(m, cfg)
    if len(gdf) > max_features:
        gdf = gdf.sample(max_features, random_state=0)
    if kinds <= {"Polygon", "MultiPolygon"}:
        shown = prepare_polygons(gdf[[gdf.geometry.name]], tolerance_m=2.0, datum=cfg.datum)
    else:
        geoms = shapely.simplify(gdf.geometry.values, 1e-5, preserve_topology=True)
        if cfg.datum != "wgs84":
            geoms = convert_geometries(geoms, src="wgs84", dst=cfg.datum)  # type: ignore[arg-type]
        shown = gpd.GeoDataFrame(geometry=round_coordinates(geoms), crs=4326)
    PolygonLayer(shown, name=name, styles=[style], css_name="preview").add_to(m)
    return finish(m, cfg)


def show(
    m: folium.Map,
    *,
    key: str,
    height: int = 640,
    returned_objects: Sequence[str] = (),
    feature_group: folium.FeatureGroup | None = None,
) -> dict[str, Any]:
    """Draw the map with streamlit-folium, returning only ``returned_objects``.

    An empty ``returned_objects`` means the map never reruns the script (panning, zooming
    and hovering stay in the browser). ``feature_group`` is drawn as a dynamic layer: when only
    it changes between runs, the browser swaps that group in place and the map (its view,
    tiles and other layers) is not reloaded; the wall display's status layer uses this.
    """
    from streamlit_folium import st_folium

    return st_folium(
        m, key=key, height=height, use_container_width=True,
        returned_objects=list(returned_objects), feature_group_to_add=feature_group,
    ) or {}

