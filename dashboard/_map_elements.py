"""Folium elements of the maps: GeoJSON feature collections, the polygon layer, the legend,
the tile-error notice and fitting beside the legend.

Split out of :mod:`dashboard.maps`, which re-exports every public name here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import MacroElement
from folium.template import Template

from dashboard import _html

# --------------------------------------------------------------------------- elements


def _js(obj: Any) -> str:
    """Compact JSON that is safe inside a ``<script>`` element."""
    return _html.js(obj)


def _clean(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, float | np.floating):
        return None if not np.isfinite(v) else (int(v) if float(v).is_integer() else round(float(v), 2))
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, pd.Timestamp):
        return v.strftime("%Y-%m-%d %H:%M")
    if v is pd.NA or v is pd.NaT:
        return None
    return v if isinstance(v, str | int | bool) else str(v)


def feature_collection(
    gdf: gpd.GeoDataFrame, *, properties: Sequence[str] = (), style_index: Any = None
) -> dict[str, Any]:
    """A GeoJSON FeatureCollection with only ``properties`` (and ``_s``, the style index)."""
    geoms = gdf.geometry.values
    feats = []
    cols = {c: gdf[c].tolist() for c in properties}
    styles = None if style_index is None else np.asarray(style_index).tolist()
    for i, g in enumerate(geoms):
        if g is None or g.is_empty:
            continue
        props = {c: _clean(cols[c][i]) for c in properties}
        if styles is not None:
            props["_s"] = int(styles[i])
        feats.append({"type": "Feature", "geometry": shapely.geometry.mapping(g), "properties": props})
    return {"type": "FeatureCollection", "features": feats}


class PolygonLayer(folium.map.Layer):
    """A GeoJSON layer written compactly: one style table, tooltips built in the browser.

    Parameters
    ----------
    gdf
        Prepared polygons (:func:`prepare_polygons`; EPSG:4326 in the map's datum).
    name
        Layer name (shown in a layer control, and as a ``data-gp-layer`` hook).
    styles
        Leaflet path styles; feature ``i`` uses ``styles[style_index[i]]`` (``-1``: the last one).
    style_index
        Class per feature (default: all 0).
    tooltip
        ``[(column, label), ...]`` shown on hover.
    interactive
        Whether the layer takes clicks and hovers.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = (function () {
            var S = {{ this.styles_js }}, F = {{ this.fields_js }}, T = {{ this.tip_js }};
            return L.geoJson({{ this.data_js }}, {
                interactive: {{ this.interactive_js }},
                className: "gp-{{ this.css_name }}",
                style: function (f) { var i = f.properties._s; return S[(i == null || i < 0) ? S.length - 1 : i]; },
                onEachFeature: function (f, l) {
                    if (!F.length) { return; }
                    l.bindTooltip(function () {
                        var p = f.properties;
                        return T(F.map(function (x) { return [x[1], p[x[0]]]; }));
                    }, {sticky: true});
                }
            });
        })();
        {% endmacro %}
        """
    )

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
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "PolygonLayer"
        if not styles:
            raise ValueError("PolygonLayer needs at least one style")
        props = [c for c, _ in tooltip]
        idx = np.zeros(len(gdf), dtype=int) if style_index is None else np.asarray(style_index)
        if len(idx) != len(gdf):
            raise ValueError("style_index must have one entry per feature")
        self.data = feature_collection(gdf, properties=props, style_index=idx)
        # strokes under 1 px vanish in places when Chromium rasterises an iframe at a fractional
        # offset (seen on axis-aligned edges in headless Chromium); keep every stroke >= 1 px
        self.styles = [{**s, "weight": max(float(s.get("weight", 3)), 1.0)} for s in styles]
        self.fields = [(c, str(lbl)) for c, lbl in tooltip]  # shown as text (_html.TEXT_TIP_JS)
        self.interactive = interactive
        self.css_name = "".join(ch for ch in css_name if ch.isalnum() or ch in "-_")
        self._bounds = gdf.total_bounds if len(gdf) else None

    @property
    def data_js(self) -> str:
        return _js(self.data)

    @property
    def styles_js(self) -> str:
        return _js(self.styles)

    @property
    def fields_js(self) -> str:
        return _js([list(f) for f in self.fields])

    @property
    def tip_js(self) -> str:
        return _html.TEXT_TIP_JS

    @property
    def interactive_js(self) -> str:
        return "true" if self.interactive else "false"

    def _get_self_bounds(self) -> list[list[float]] | None:
        if self._bounds is None:
            return None
        x0, y0, x1, y1 = (float(v) for v in self._bounds)
        return [[y0, x0], [y1, x1]]


class Legend(MacroElement):
    """A legend drawn as a Leaflet control (no d3/branca scripts needed).

    ``entries`` is ``[(title, [(colour, label, kind), ...]), ...]`` where ``kind`` is
    ``"fill"`` (a swatch) or ``"line"`` (an outline).
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function () {
            var c = L.control({position: "{{ this.position }}"});
            c.onAdd = function () {
                var d = L.DomUtil.create("div", "gp-legend");
                d.innerHTML = {{ this.html_js }};
                L.DomEvent.disableClickPropagation(d);
                return d;
            };
            c.addTo({{ this._parent.get_name() }});
        })();
        {% endmacro %}
        """
    )

    def __init__(
        self,
        entries: Sequence[tuple[str, Sequence[tuple[str, str, str]]]],
        *,
        position: str = "bottomright",
        dark: bool = False,
        font_px: int = 13,
    ) -> None:
        super().__init__()
        self._name = "Legend"
        self.position = position
        fg, bg = ("#e6edf7", "rgba(10,18,32,0.85)") if dark else ("#1f2933", "rgba(255,255,255,0.92)")
        parts = [
            f'<div style="background:{bg};color:{fg};padding:8px 10px;border-radius:6px;'
            f'font:{font_px}px/1.45 \'Noto Sans CJK SC\',\'Microsoft YaHei\',sans-serif;'
            'box-shadow:0 1px 4px rgba(0,0,0,.3);max-width:260px">'
        ]
        for title, items in entries:
            parts.append(f"<div style='font-weight:600;margin:2px 0'>{_html.text(title)}</div>")
            for colour, label, kind in items:
                if kind == "line":
                    sw = f"border:2px solid {colour};background:transparent"
                else:
                    sw = f"background:{colour};border:1px solid rgba(0,0,0,.25)"
                parts.append(
                    f"<div><span style='display:inline-block;width:14px;height:11px;{sw};"
                    f"margin-right:6px;vertical-align:middle'></span>{_html.text(label)}</div>"
                )
        parts.append("</div>")
        self.html = "".join(parts)

    @property
    def html_js(self) -> str:
        return _js(self.html)


class TileErrorNotice(MacroElement):
    """Say so on the map when the basemap cannot load (no internet, a blocked tile server).

    Without it a map whose tiles all fail is plain grey while still crediting the tile provider.
    After the first few tile errors with no tile loaded, the attribution is removed and ``text``
    (catalogue text, set as ``textContent``) is shown in the top-right corner.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function () {
            var m = {{ this._parent.get_name() }};
            var errors = 0, loaded = 0, shown = false;
            function check() {
                if (shown || loaded > 0 || errors < 3) return;
                shown = true;
                var c = L.control({position: "topright"});
                c.onAdd = function () {
                    var d = L.DomUtil.create("div", "gp-tile-notice");
                    d.textContent = {{ this.text_js }};
                    d.style.cssText = "background:rgba(255,244,214,.95);color:#7a4b00;border:1px solid #f0b429;"
                        + "border-radius:4px;padding:4px 8px;max-width:320px;font-size:12px;line-height:1.4";
                    return d;
                };
                c.addTo(m);
                if (m.attributionControl) { m.attributionControl.remove(); }
            }
            m.eachLayer(function (l) {
                if (l instanceof L.TileLayer) {
                    l.on("tileerror", function () { errors += 1; check(); });
                    l.on("tileload", function () { loaded += 1; });
                }
            });
        })();
        {% endmacro %}
        """
    )

    def __init__(self, text: str) -> None:
        super().__init__()
        self._name = "TileErrorNotice"
        self.text_js = _html.js(text)  # the one escaping rule: never ends the script element


class FitBesideLegend(MacroElement):
    """Fit ``bounds`` so the legend (a :class:`Legend` on the ``side`` corner) covers none of it.

    The legend's width is only known in the browser, so the fit runs there, with padding on the
    legend's side of the legend's width (when the frame is wide enough; a narrow frame keeps the
    plain fit). ``bounds`` are display lon/lat ``(minx, miny, maxx, maxy)``.

    When to fit: a fit made once, or on window events, can be wrong whatever its delay.
    streamlit-folium evaluates the map script after the frame's ``load`` event and re-inserts the
    page's ``<link>`` stylesheets (``head.innerHTML += header``); until Leaflet's stylesheet has
    loaded again the legend is an unpositioned full-width block, so a fit then measures the frame,
    not the legend, and when the stylesheet arrives the legend shrinks into its corner without
    any window event. So the map refits whenever the map's container or the legend changes size
    (``ResizeObserver``, which also reports each element once when first observed) and whenever a
    stylesheet finishes loading, and counts the legend only while it is laid out as a control
    (absolutely positioned corner, floated). The last fits are kept in ``window.__gp_fits``
    (each numbered ``n``, counted in ``window.__gp_fit_n``)
    (reason, time, legend width, map size, padding) for tests and for anyone debugging a layout.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function () {
            var m = {{ this._parent.get_name() }};
            var b = L.latLngBounds({{ this.bounds_js }});
            var box = m.getContainer(), seen = null, ro = null;
            var log = window.__gp_fits = window.__gp_fits || [];
            function legend() {
                var lg = box.querySelector(".gp-legend");
                if (!lg || !lg.parentNode) { return null; }
                // styled as a Leaflet control? (before leaflet.css applies it is a static block)
                var placed = getComputedStyle(lg.parentNode).position === "absolute"
                    && getComputedStyle(lg).cssFloat !== "none";
                return {el: lg, w: placed ? lg.offsetWidth + 16 : -1};
            }
            function fit(why) {
                m.invalidateSize(false);
                var lg = legend();
                if (lg && ro && seen !== lg.el) { seen = lg.el; ro.observe(lg.el); }
                var x = m.getSize().x, w = lg ? lg.w : 0;
                var side = (w > 0 && x - w > {{ this.min_share }} * x) ? w : {{ this.pad }};
                var opts = {animate: false};
                opts[{{ this.side_js }}] = [side, {{ this.pad }}];
                opts[{{ this.other_js }}] = [{{ this.pad }}, {{ this.pad }}];
                m.fitBounds(b, opts);
                window.__gp_fit_n = (window.__gp_fit_n || 0) + 1;  // never shifted: a mark
                log.push({n: window.__gp_fit_n, why: why, t: Math.round(performance.now()),
                          legend: lg ? lg.w : null, size: [x, m.getSize().y], pad: side});
                if (log.length > 40) { log.shift(); }
            }
            if (window.ResizeObserver) {
                ro = new ResizeObserver(function () { fit("resize-observed"); });
                ro.observe(box);
            }
            window.addEventListener("resize", function () { fit("window-resize"); });
            // a stylesheet (re)loaded after the map was drawn can move and resize the legend
            document.addEventListener("load", function (e) {
                if (e.target && e.target.tagName === "LINK") { fit("stylesheet"); }
            }, true);
            if (document.fonts && document.fonts.ready) {
                document.fonts.ready.then(function () { fit("fonts"); });
            }
            setTimeout(function () { fit("start"); }, 30);
        })();
        {% endmacro %}
        """
    )

    def __init__(
        self,
        bounds: Sequence[float],
        *,
        side: str = "right",
        pad_px: int = 8,
        min_share: float = 0.55,
    ) -> None:
        super().__init__()
        self._name = "FitBesideLegend"
        x0, y0, x1, y1 = (float(v) for v in bounds)
        self.bounds_js = _html.js([[y0, x0], [y1, x1]])
        self.side_js = _html.js("paddingBottomRight" if side == "right" else "paddingTopLeft")
        self.other_js = _html.js("paddingTopLeft" if side == "right" else "paddingBottomRight")
        self.pad = int(pad_px)
        self.min_share = float(min_share)  # the map keeps at least this share of its width
