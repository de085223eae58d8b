"""The command-centre wall display's pieces: KPI tiles, live feed, whistle list, status map.

Everything is sized in viewport units (``vw``/``vh``), so the same page reads the same on a
1920x1080 and a 3840x2160 screen, from across a room. The HTML builders are pure functions
(frames in, HTML out); the page puts them into auto-refreshing fragments.
"""

from __future__ import annotations

from typing import Any

import folium
import numpy as np
import pandas as pd
import streamlit as st
from branca.element import Element, MacroElement
from folium.template import Template

from dashboard import _html as html  # the one escaping rule: html.escape is _html.text
from dashboard import _kpis as kpis
from dashboard import maps, state
from layers import summaries, taxonomy
from layers.i18n import t
from layers.workflow import OPEN_STAGES, label, overdue

FEED_ROWS = 7
WHISTLE_ROWS = 5
#: Status classes of a grid on the wall map: no open case, open cases, then by overdue count.
STATUS = ("status_ok", "status_open", "overdue_1", "overdue_2", "overdue_3")
#: Overdue open cases per grid of each overdue class (inclusive; ``None``: no upper bound).
OVERDUE_CLASSES: tuple[tuple[int, int | None], ...] = ((1, 1), (2, 3), (4, None))
#: Class colours: calm green and blue, then amber → orange → red as overdue cases pile up.
STATUS_COLOURS: tuple[str, ...] = ("#1f9d55", "#3f7fd0", "#f2c200", "#f57c1f", "#e3242b")
#: One fill opacity for every class, used by the map and the legend alike.
STATUS_OPACITY = 0.7

CSS = """
<style>
.gp-top{display:flex;align-items:baseline;justify-content:space-between;margin:0 0 .6vh 0}
.gp-title{font-size:2.1vw;font-weight:700;letter-spacing:.1vw;color:#e6edf7}
.gp-clock{font-size:1.6vw;font-variant-numeric:tabular-nums;color:#7fdbff}
.gp-sub{font-size:.85vw;color:#8aa0b8;margin-left:1vw}
.gp-kpis{display:grid;grid-auto-flow:column;grid-auto-columns:1fr;gap:.7vw;margin:.4vh 0 1.2vh 0}
.gp-kpi{background:linear-gradient(180deg,#10213a,#0b1628);border:1px solid #1f3b61;border-radius:.5vw;padding:.9vh .8vw}
.gp-kpi .v{font-size:3.1vw;font-weight:700;line-height:1.1;font-variant-numeric:tabular-nums;color:#7fdbff}
.gp-kpi .l{font-size:1.05vw;color:#a9bdd3;margin-top:.3vh}
.gp-kpi.bad .v{color:#ff6b6b}.gp-kpi.warn .v{color:#ffc14d}.gp-kpi.good .v{color:#5be49b}
.gp-panel{background:#0b1628;border:1px solid #1f3b61;border-radius:.5vw;padding:.8vh .8vw;margin-bottom:1vh}
.gp-panel h3{font-size:1.3vw !important;margin:0 0 .6vh 0 !important;padding:0 !important;color:#e6edf7 !important}
.gp-row{display:grid;grid-template-columns:6.2vw 1fr auto;gap:.6vw;align-items:center;font-size:1.0vw;line-height:1.3;padding:.45vh 0;border-top:1px solid #17304f}
.gp-row .t{color:#8aa0b8;font-variant-numeric:tabular-nums}
.gp-row .w{color:#e6edf7;white-space:normal;overflow-wrap:anywhere;line-height:1.3}
.gp-row .w small{display:block;color:#8aa0b8;font-size:.78vw;line-height:1.25}
.gp-badge{font-size:.8vw;padding:.15vh .45vw;border-radius:.3vw;background:#17304f;color:#cfe3ff;white-space:nowrap}
.gp-badge.tough{background:#7a1f2b;color:#ffd6dc}.gp-badge.work{background:#7a5a12;color:#ffe9b3}
.gp-badge.late{background:#8b1d1d;color:#fff}
.gp-empty{font-size:1.0vw;color:#8aa0b8;padding:.6vh 0}
iframe[title="streamlit_folium.st_folium"]{height:72vh !important;border-radius:.5vw}
[data-testid="gp-demo-label"]{font-size:.8vw !important;padding:.3vh .6vw !important;border-radius:.3vw !important}
</style>
"""

#: Ticks the wall clock every second in the browser (the page itself refreshes every 30 s, which
#: would make a server-side clock with seconds jump). Installed once per browser tab.
CLOCK_JS = """<script>
(function () {
  if (window.__gpClock) return;
  var fmt = new Intl.DateTimeFormat("sv-SE", {timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit",
    day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false});
  window.__gpClock = setInterval(function () {
    var el = window.parent.document.querySelector("[data-testid='gp-clock']") ||
             document.querySelector("[data-testid='gp-clock']");
    if (el) el.textContent = fmt.format(new Date());
  }, 1000);
})();
</script>"""


def _pct(x: float) -> str:
    return "—" if x is None or not np.isfinite(x) else f"{x * 100:.1f}%"


def kpi_html(k: dict[str, Any], lang: str, *, now: pd.Timestamp | None = None) -> str:
    """The KPI tiles: today, month, open, overdue, 结案率, 按期结案率, on patrol, and 4小时达标率.

    The last tile is drawn when ``k`` has ``compliance`` (a day of patrol figures exists); its
    label names the day (``k["compliance_day"]``): ``昨日4小时达标率`` when that is the day
    before ``now``, else the date.
    """
    def tile(key: str, value: str, cls: str = "", label: str | None = None) -> str:
        text = t(f"dashboard.wall.{key}", lang) if label is None else label
        return (f"<div class='gp-kpi {cls}' data-kpi='{key}'><div class='v'>{html.escape(value)}</div>"
                f"<div class='l'>{html.escape(text)}</div></div>")

    def rate_cls(x: float) -> str:
        if x is None or not np.isfinite(x):
            return ""
        return "good" if x >= 0.9 else ("warn" if x >= 0.75 else "bad")

    days = k.get("kpi_days")

    def windowed(key: str) -> str | None:  # the KPI window, stated on its tiles
        if days is None:
            return None
        return t("equiv.kpi_label", lang, label=t(f"dashboard.wall.{key}", lang), days=days)

    tiles = [
        tile("today", f"{k['today']:,}"),
        tile("month", f"{k['month']:,}"),
        tile("open", f"{k['open']:,}", "warn" if k["open"] else "", label=windowed("open")),
        tile("overdue", f"{k['overdue']:,}", "bad" if k["overdue"] else "good", label=windowed("overdue")),
        tile("closure_rate", _pct(k["closure_rate"]), rate_cls(k["closure_rate"]), label=windowed("closure_rate")),
        tile("on_time_rate", _pct(k["on_time_rate"]), rate_cls(k["on_time_rate"]), label=windowed("on_time_rate")),
        tile("on_patrol", f"{k['on_patrol']:,}"),
    ]
    if "compliance" in k:
        day = pd.Timestamp(k["compliance_day"])
        when = (kpis.day_label(day, now=now, lang=lang) if now is not None
                else t("dashboard.day.date", lang, month=day.month, day=day.day))
        tiles.append(tile("compliance", _pct(k["compliance"]), rate_cls(k["compliance"]),
                          label=t("dashboard.wall.compliance", lang, day=when)))
    return "<div class='gp-kpis'>" + "".join(tiles) + "</div>"


def ago(then: Any, now: pd.Timestamp, lang: str) -> str:
    """``12 分钟前`` / ``3 h ago``."""
    if then is None or pd.isna(then):
        return "—"
    mins = max(int((now - pd.Timestamp(then)).total_seconds() // 60), 0)
    if mins < 120:
        return t("dashboard.wall.minutes_ago", lang, n=mins)
    if mins < 48 * 60:
        return t("dashboard.wall.hours_ago", lang, n=mins // 60)
    return t("dashboard.wall.days_ago", lang, n=mins // (24 * 60))


def item_name(code: Any, lang: str) -> str:
    """Whistle-list item name in ``lang``."""
    item = taxonomy.ITEMS.get(str(code)) if code is not None else None
    if item is None:
        return str(code or "—")
    return item.name_zh if lang == "zh" else item.name_en


def feed_html(incidents: pd.DataFrame, places: dict[str, str], *, now: pd.Timestamp, lang: str,
              rows: int = FEED_ROWS) -> str:
    """The newest incidents received up to ``now``."""
    inc = incidents[pd.to_datetime(incidents["requested_datetime"]) <= now]
    inc = inc.sort_values("requested_datetime", ascending=False).head(rows)
    out = [f"<div class='gp-panel' data-panel='feed'><h3>{html.escape(t('dashboard.wall.feed', lang))}</h3>"]
    for _, r in inc.iterrows():
        place = places.get(str(r.get("grid_code")), "")
        out.append(
            "<div class='gp-row'>"
            f"<span class='t'>{html.escape(ago(r['requested_datetime'], now, lang))}</span>"
            f"<span class='w'>{html.escape(item_name(r.get('item_code'), lang))}"
            f"<small>{html.escape(place)}</small></span>"
            f"<span class='gp-badge'>{html.escape(label('stage', str(r['stage']), lang))}</span>"
            "</div>"
        )
    out.append("</div>")
    return "".join(out)


def whistle_html(incidents: pd.DataFrame, places: dict[str, str], *, now: pd.Timestamp,
                 lang: str, rows: int = WHISTLE_ROWS) -> str:
    """Whistle cases (工作推进哨 / 攻坚克难哨) still open, tough ones and the oldest first."""
    w = incidents[incidents["whistle"].isin(["work", "tough"])
                  & incidents["stage"].isin(sorted(OPEN_STAGES))
                  & (pd.to_datetime(incidents["requested_datetime"]) <= now)]
    out = [f"<div class='gp-panel' data-panel='whistles'><h3>{html.escape(t('dashboard.wall.whistles', lang))}"
           f" <span class='gp-badge'>{len(w)}</span></h3>"]
    if w.empty:
        out.append(f"<div class='gp-empty'>{html.escape(t('dashboard.wall.no_whistles', lang))}</div>")
    else:
        late = overdue(w, now=now)
        w = w.assign(_tough=(w["whistle"] == "tough"), _late=late)
        w = w.sort_values(["_tough", "_late", "requested_datetime"], ascending=[False, False, True]).head(rows)
        for _, r in w.iterrows():
            dept = r.get("department")
            dept_txt = t(f"dashboard.department.{dept}", lang) if isinstance(dept, str) else "—"
            badge = (f"<span class='gp-badge {html.attr(r['whistle'])}'>"
                     f"{html.escape(label('whistle', str(r['whistle']), lang))}</span>")
            if r["_late"]:
                badge += f" <span class='gp-badge late'>{html.escape(t('dashboard.wall.overdue', lang))}</span>"
            out.append(
                "<div class='gp-row'>"
                f"<span class='t'>{html.escape(ago(r['requested_datetime'], now, lang))}</span>"
                f"<span class='w'>{html.escape(item_name(r.get('item_code'), lang))}"
                f"<small>{html.escape(places.get(str(r.get('grid_code')), ''))} · {html.escape(dept_txt)}</small></span>"
                f"<span>{badge}</span></div>"
            )
    out.append("</div>")
    return "".join(out)


# --------------------------------------------------------------------------- data


_INC_COLS = ["service_request_id", "requested_datetime", "expected_datetime", "closed_datetime",
             "stage", "whistle", "item_code", "grid_code", "department"]


def incidents(now: pd.Timestamp | None = None) -> pd.DataFrame:
    """The incidents the wall shows: those received since the start of the KPI window (or of
    the month, whichever is earlier), plus every open whistle case, whatever its age.

    That is all the tiles, the feed and the whistle list use, and a few hundred thousand rows
    at most instead of the whole layer (a million rows on the full district; issue 14).
    Cached with the data version and the window's first day.
    """
    from layers.analysis import kpi_window

    now = state.now() if now is None else pd.Timestamp(now)
    since, _until = kpi_window(now)
    lo = kpis.month_start(now) if since is None else min(kpis.month_start(now), since.normalize())
    return _incidents(state.settings().store_url, state.data_version(), None if since is None else lo)


@st.cache_resource(max_entries=2, show_spinner=False)
def _incidents(url: str, version: str, lo: pd.Timestamp | None) -> pd.DataFrame:
    store = state.get_store()
    if "incidents" not in state.locked(store.layer_names):
        return state.layer("incidents", _INC_COLS)
    if lo is None:
        return state.locked(store.read, "incidents", columns=_INC_COLS)
    recent = state.locked(store.read, "incidents", columns=_INC_COLS,
                          between={"requested_datetime": (lo, None)})
    whistles = state.locked(store.read, "incidents", columns=_INC_COLS,
                            where={"whistle": ["work", "tough"], "stage": sorted(OPEN_STAGES)})
    # a set, not Series.isin: an Arrow string column's isin builds one scalar per value (2.8 s
    # for the 80,000 ids of the full district; this takes milliseconds)
    seen = set(recent["service_request_id"].tolist())
    older = whistles[[i not in seen for i in whistles["service_request_id"].tolist()]]
    return pd.concat([recent, older], ignore_index=True) if len(older) else recent


#: :func:`recent_fixes` reads the fixes of a window this long (plus the on-patrol minutes
#: before it) and keeps it for every ``now`` inside: the live clock moves every run.
FIX_WINDOW = pd.Timedelta(minutes=10)


def recent_fixes(now: pd.Timestamp) -> pd.DataFrame | None:
    """GPS fixes of the last :data:`dashboard._kpis.ON_PATROL_WITHIN_MIN` minutes up to ``now``
    (all that "on patrol now" looks at).

    One read per :data:`FIX_WINDOW` of the clock (and data version), shared by every session;
    each run keeps the rows of its own minutes: the same rows as a read of exactly those.
    """
    now = pd.Timestamp(now)
    back = pd.Timedelta(minutes=kpis.ON_PATROL_WITHIN_MIN)
    lo, hi = now - back, now + pd.Timedelta(seconds=1)  # half-open, as a read
    fixes = _recent_fixes(state.settings().store_url, state.data_version(), now.floor(FIX_WINDOW), back)
    if fixes is None:
        return None
    t = fixes["time"]
    return fixes[((t >= lo) & (t < hi)).to_numpy()].reset_index(drop=True)


@st.cache_resource(max_entries=4, show_spinner=False)
def _recent_fixes(url: str, version: str, start: pd.Timestamp, back: pd.Timedelta) -> pd.DataFrame | None:
    store = state.get_store()
    if "patrol_points" not in state.locked(store.layer_names):
        return None
    return state.locked(store.read, "patrol_points", columns=["worker_id", "time"],
                        between={"time": (start - back, start + FIX_WINDOW + pd.Timedelta(seconds=1))})


def places() -> dict[str, str]:
    """Grid code → "community · grid" name, for the feed (built once per data version)."""
    return _places(state.settings().store_url, state.data_version())


@st.cache_resource(max_entries=2, show_spinner=False)
def _places(url: str, version: str) -> dict[str, str]:
    grids = state.layer("grids", ["code", "name", "community_code"])
    coms = state.layer("communities", ["code", "name"])
    cname = dict(zip(coms["code"], coms["name"], strict=False))
    out = {}
    for c, n, cc in zip(grids["code"], grids["name"], grids["community_code"], strict=False):
        com = cname.get(cc, "")
        out[c] = n if str(n).startswith(com) else f"{com} {n}".strip()
    return out


def wall_kpis(now: pd.Timestamp) -> dict[str, Any]:
    """Headline numbers, with the 4-hour compliance of the latest day with GPS fixes.

    The patrol day is read from the patrol summary
    (:func:`dashboard._kpis.district_patrol_day`); without fixes there is no compliance tile.
    """
    now = pd.Timestamp(now)
    day = kpis.district_patrol_day()
    return dict(_wall_kpis(state.settings().store_url, state.data_version(), now,
                           None if day is None else day.day))


@st.cache_resource(max_entries=8, show_spinner=False)
def _wall_kpis(url: str, version: str, now: pd.Timestamp, day: pd.Timestamp | None) -> dict[str, Any]:
    """The tiles of one data version and clock reading, shared by every wall (the fixed demo's
    clock stands still: every refresh of every session reads this)."""
    patrol = kpis.district_patrol_day() if day is not None else None
    k = kpis.wall_kpis(incidents(now), recent_fixes(now), now=now,
                       per_worker=None if patrol is None else patrol.per_worker)
    if patrol is not None:
        k["compliance_day"] = patrol.day
    return k


def grid_status(now: pd.Timestamp) -> pd.Series:
    """Per comprehensive grid, a degree of trouble (an index into :data:`STATUS`).

    0 no open case, 1 open cases none overdue, then by the number of overdue open cases:
    2 one, 3 two or three, 4 four or more (:data:`OVERDUE_CLASSES`).
    """
    grids = state.layer("grids", ["code", "kind"])
    comp = grids.loc[grids["kind"] == "comprehensive", "code"]
    store = state.get_store()
    if "incidents" not in state.locked(store.layer_names):
        return status_classes(comp, [], [])
    counts = state.locked(summaries.grid_open, store, now=now)  # the per-grid summary: ~1 ms
    return status_counts(comp, counts.set_index("grid_code")["open"], counts.set_index("grid_code")["overdue"])


def status_counts(codes: Any, open_n: pd.Series, late_n: pd.Series) -> pd.Series:
    """:func:`status_classes` from per-grid counts of open and overdue cases.

    Examples
    --------
    >>> status_counts(["a", "b", "c", "d", "e"], pd.Series({"b": 1, "c": 1, "d": 2, "e": 5}),
    ...               pd.Series({"b": 0, "c": 1, "d": 2, "e": 4})).tolist()
    [0, 1, 2, 3, 4]
    """
    index = pd.Index(list(codes), name="code")
    status = pd.Series(0, index=index, name="status")
    status[(open_n.reindex(index).fillna(0) > 0).to_numpy()] = 1
    n_late = late_n.reindex(index).fillna(0)
    for cls, (lo, _hi) in enumerate(OVERDUE_CLASSES, start=2):
        status[(n_late >= lo).to_numpy()] = cls
    return status


def status_classes(codes: Any, open_grids: Any, late_grids: Any) -> pd.Series:
    """The class of each grid in ``codes`` from the grid codes of its open and overdue cases.

    Examples
    --------
    >>> status_classes(["a", "b", "c", "d", "e"], ["b", "c", "d", "d", "e"] + ["e"] * 4,
    ...                ["c", "d", "d", "e", "e", "e", "e"]).tolist()
    [0, 1, 2, 3, 4]
    """
    index = pd.Index(list(codes), name="code")
    status = pd.Series(0, index=index, name="status")
    status[index.isin(pd.Index(list(open_grids)))] = 1
    n_late = pd.Series(list(late_grids), dtype=object).value_counts().reindex(index, fill_value=0)
    for cls, (lo, _hi) in enumerate(OVERDUE_CLASSES, start=2):
        status[(n_late >= lo).to_numpy()] = cls
    return status


# --------------------------------------------------------------------------- map

STATUS_STYLES = [
    {"color": "#2b4a6f", "weight": 1, "fillColor": c, "fillOpacity": STATUS_OPACITY} for c in STATUS_COLOURS
]

#: The wall map's controls, legend and labels in viewport units of the map's own frame (the frame
#: is ~64% of the screen wide), so they grow with the screen like everything else on the wall.
MAP_CSS = """
.leaflet-control-zoom a{width:2.6vw !important;height:2.6vw !important;line-height:2.6vw !important;
  font-size:1.9vw !important}
.leaflet-control-scale-line{font-size:1.25vw !important;line-height:1.4 !important;padding:0 .4vw !important;
  border-width:.18vw !important;border-top:none !important;background:rgba(10,18,32,.75) !important;
  color:#e6edf7 !important;border-color:#e6edf7 !important}
.leaflet-control-attribution{font-size:1.0vw !important}
.leaflet-left .leaflet-control,.leaflet-right .leaflet-control{margin-left:1vw;margin-right:1vw}
.leaflet-bottom .leaflet-control{margin-bottom:1.2vw}.leaflet-top .leaflet-control{margin-top:1vw}
.gp-legend > div{font-size:1.55vw !important;line-height:1.5 !important;padding:.8vw 1.1vw !important;
  border-radius:.5vw !important;max-width:none !important}
.gp-legend > div span{width:1.9vw !important;height:1.3vw !important;margin-right:.7vw !important}
"""


def _rgba(colour: str, alpha: float) -> str:
    """``#rrggbb`` with ``alpha`` as a CSS ``rgba()`` (the legend swatch looks like the map fill)."""
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha:g})"


def status_legend(lang: str) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """The wall legend: one swatch per class, drawn with the map's own colour and opacity."""
    return [(t("dashboard.wall.grid_status", lang),
             [(_rgba(c, STATUS_OPACITY), t(f"ux.wall.{s}", lang), "fill")
              for c, s in zip(STATUS_COLOURS, STATUS, strict=True)])]


class _ScaleBar(MacroElement):
    """A metric scale bar sized to the screen (the wall's frame is a fixed share of it)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        L.control.scale({maxWidth: Math.round(window.innerWidth * 0.14), imperial: false})
            .addTo({{ this._parent.get_name() }});
        {% endmacro %}
    """)

    def __init__(self) -> None:
        super().__init__()
        self._name = "ScaleBar"


def base_map(cfg: maps.MapConfig) -> folium.Map:
    """The wall's fixed map: basemap, view and legend (the layers come in :func:`status_group`)."""
    subs = state.display_layer("subdistricts", cfg)
    bounds = subs.total_bounds if len(subs) else None
    m = maps.base_map(cfg, bounds=bounds, font_px=16, fill_frame=True)
    m.control_scale = False  # replaced by one sized to the screen (:class:`_ScaleBar`)
    m.options["zoomSnap"] = 0.05
    m.get_root().header.add_child(Element(f"<style>{MAP_CSS}</style>"), name="gp_wall_css")
    if bounds is not None:
        # fitted in the browser beside the bottom-left legend, refitted whenever the frame or
        # the legend changes size (the frame's height is CSS; the legend's needs leaflet.css)
        maps.FitBesideLegend([float(v) for v in bounds], side="left", pad_px=6, min_share=0.6).add_to(m)
    _ScaleBar().add_to(m)
    maps.Legend(status_legend(cfg.lang), dark=True, font_px=16, position="bottomleft").add_to(m)
    return maps.finish(m, cfg)


def status_group(cfg: maps.MapConfig, status: pd.Series) -> folium.FeatureGroup:
    """Comprehensive grids coloured by status, as a group streamlit-folium swaps in place."""
    shapes = state.display_layer("grids", cfg, columns=("code", "name", "kind"))
    shapes = shapes[shapes["kind"] == "comprehensive"]
    idx = status.reindex(shapes["code"]).fillna(0).astype(int).to_numpy()
    fg = folium.FeatureGroup(name="status")
    maps.PolygonLayer(shapes, name="grid status", styles=STATUS_STYLES, style_index=idx,
                      interactive=False, css_name="status").add_to(fg)
    subs = state.display_layer("subdistricts", cfg)
    maps.PolygonLayer(subs, name="subdistricts",
                      styles=[{"color": "#7fdbff", "weight": 2.5, "opacity": 0.95, "fill": False}],
                      interactive=False, css_name="sub").add_to(fg)
    return fg
