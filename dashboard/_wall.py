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

from dashboard import _html as html  # the one escaping rule: html.escape is _html.text
from dashboard import _kpis as kpis
from dashboard import maps, state
from layers import taxonomy
from layers.i18n import t
from layers.workflow import OPEN_STAGES, label, overdue

FEED_ROWS = 8
WHISTLE_ROWS = 5
#: Status classes of a grid on the wall map.
STATUS = ("status_ok", "status_open", "status_overdue")

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
.gp-row{display:grid;grid-template-columns:6.2vw 1fr auto;gap:.6vw;align-items:center;font-size:1.0vw;line-height:1.35;padding:.55vh 0;border-top:1px solid #17304f}
.gp-row .t{color:#8aa0b8;font-variant-numeric:tabular-nums}
.gp-row .w{color:#e6edf7;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.gp-row .w small{color:#8aa0b8;font-size:.8vw;margin-left:.4vw}
.gp-badge{font-size:.8vw;padding:.15vh .45vw;border-radius:.3vw;background:#17304f;color:#cfe3ff;white-space:nowrap}
.gp-badge.tough{background:#7a1f2b;color:#ffd6dc}.gp-badge.work{background:#7a5a12;color:#ffe9b3}
.gp-badge.late{background:#8b1d1d;color:#fff}
.gp-empty{font-size:1.0vw;color:#8aa0b8;padding:.6vh 0}
iframe[title="streamlit_folium.st_folium"]{height:72vh !important;border-radius:.5vw}
</style>
"""


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

    tiles = [
        tile("today", f"{k['today']:,}"),
        tile("month", f"{k['month']:,}"),
        tile("open", f"{k['open']:,}", "warn" if k["open"] else ""),
        tile("overdue", f"{k['overdue']:,}", "bad" if k["overdue"] else "good"),
        tile("closure_rate", _pct(k["closure_rate"]), rate_cls(k["closure_rate"])),
        tile("on_time_rate", _pct(k["on_time_rate"]), rate_cls(k["on_time_rate"])),
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


def incidents() -> pd.DataFrame:
    """The incident columns the wall needs (cached with the data version)."""
    return state.layer("incidents", _INC_COLS)


def recent_fixes(now: pd.Timestamp) -> pd.DataFrame | None:
    """GPS fixes of the last hour (enough for "on patrol now")."""
    return _recent_fixes(state.settings().store_url, state.data_version(), now)


@st.cache_resource(max_entries=4, show_spinner=False)
def _recent_fixes(url: str, version: str, now: pd.Timestamp) -> pd.DataFrame | None:
    store = state.get_store()
    if "patrol_points" not in state.locked(store.layer_names):
        return None
    return state.locked(store.read, "patrol_points", columns=["worker_id", "time"],
                        between={"time": (now - pd.Timedelta(hours=1), now + pd.Timedelta(seconds=1))})


def places() -> dict[str, str]:
    """Grid code → "community · grid" name, for the feed."""
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

    The patrol day is computed once for the district and cached
    (:func:`dashboard._kpis.district_patrol_day`); without fixes there is no compliance tile.
    """
    day = kpis.district_patrol_day()
    k = kpis.wall_kpis(incidents(), recent_fixes(now), now=now,
                       per_worker=None if day is None else day.per_worker)
    if day is not None:
        k["compliance_day"] = day.day
    return k


def grid_status(now: pd.Timestamp) -> pd.Series:
    """Per comprehensive grid: 0 no open case, 1 open cases, 2 an overdue case."""
    inc = incidents()
    grids = state.layer("grids", ["code", "kind"])
    comp = grids.loc[grids["kind"] == "comprehensive", "code"]
    open_ = inc[inc["stage"].isin(sorted(OPEN_STAGES))
                & (pd.to_datetime(inc["requested_datetime"]) <= now)]
    late = open_[overdue(open_, now=now)]
    status = pd.Series(0, index=pd.Index(comp, name="code"), name="status")
    status[status.index.isin(open_["grid_code"])] = 1
    status[status.index.isin(late["grid_code"])] = 2
    return status


# --------------------------------------------------------------------------- map

STATUS_STYLES = [
    {"color": "#2b4a6f", "weight": 1, "fillColor": c, "fillOpacity": op}
    for c, op in zip(maps.STATUS_COLOURS, (0.35, 0.55, 0.75), strict=True)
]


def base_map(cfg: maps.MapConfig) -> folium.Map:
    """The wall's fixed map: basemap, view and legend (the layers come in :func:`status_group`)."""
    subs = state.display_layer("subdistricts", cfg)
    bounds = subs.total_bounds if len(subs) else None
    m = maps.base_map(cfg, bounds=bounds, font_px=16, fill_frame=True)
    lang = cfg.lang
    maps.Legend([(t("dashboard.wall.grid_status", lang),
                  [(c, t(f"dashboard.wall.{s}", lang), "fill")
                   for c, s in zip(maps.STATUS_COLOURS, STATUS, strict=True)])],
                dark=True, font_px=16, position="bottomleft").add_to(m)
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
