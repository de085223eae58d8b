"""指挥大屏 Command-centre wall display: runs all day, nobody touches it.

Only the KPI tiles, the feeds and the map's status layer refresh (``st.fragment(run_every=...)``);
the Leaflet map itself is mounted once and never reloads, so nothing flickers or resets.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import _html as html  # the one escaping rule
from dashboard import _wall as wall
from dashboard import maps, state, widgets
from dashboard.widgets import tr
from geo.domain import LOCAL_TZ

widgets.dark_css(hide_sidebar=True)
st.markdown(wall.CSS, unsafe_allow_html=True)
lang = state.lang()
refresh_s = state.settings().wall_refresh_s

if not state.has_data():
    st.markdown(f"<div class='gp-title'>{html.escape(tr('wall.heading'))}</div>", unsafe_allow_html=True)
    st.info(tr("store_empty"))
    st.stop()


@st.fragment(run_every=refresh_s)
def header_and_kpis() -> None:
    with state.timed("wall.kpis"):
        _header_and_kpis()


def _header_and_kpis() -> None:
    now = state.now()
    stamp = pd.Timestamp.now(tz=LOCAL_TZ)
    clock = stamp.strftime("%Y-%m-%d %H:%M:%S")  # ticks in the browser between refreshes (wall.CLOCK_JS)
    data_time = (f"<span class='gp-sub'>{html.escape(tr('updated', time=now.strftime('%Y-%m-%d %H:%M')))}</span>"
                 if state.demo_loaded() else "")
    st.markdown(
        f"<div class='gp-top' data-refreshed='{stamp.isoformat()}'><div><span class='gp-title'>{html.escape(tr('wall.heading'))}</span>"
        f"{data_time}</div><div class='gp-clock' data-testid='gp-clock'>{clock}</div></div>",
        unsafe_allow_html=True,
    )
    widgets.demo_label(dark=True)
    st.markdown(wall.kpi_html(wall.wall_kpis(now), lang, now=now), unsafe_allow_html=True)


header_and_kpis()
st.html(wall.CLOCK_JS, unsafe_allow_javascript=True)  # a fixed script: no data, no user text

cfg = state.map_config(dark=True)
map_col, feed_col = st.columns([64, 36], gap="small")

with map_col:

    @st.fragment(run_every=refresh_s)
    def status_map() -> None:
        with state.timed("wall.map"):
            _status_map()

    def _status_map() -> None:
        m = wall.base_map(cfg)
        fg = wall.status_group(cfg, wall.grid_status(state.now()))
        maps.show(m, key="wall_map", height=760, returned_objects=(), feature_group=fg)

    status_map()

with feed_col:

    @st.fragment(run_every=refresh_s)
    def feeds() -> None:
        with state.timed("wall.feeds"):
            _feeds()

    def _feeds() -> None:
        now = state.now()
        inc = wall.incidents()
        places = wall.places()
        st.markdown(wall.feed_html(inc, places, now=now, lang=lang), unsafe_allow_html=True)
        st.markdown(wall.whistle_html(inc, places, now=now, lang=lang), unsafe_allow_html=True)

    feeds()
