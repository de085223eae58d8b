"""网格 Grid explorer: the administrative ladder on a map, drill-down, choropleths, grid card."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import _explorer as explorer_map
from dashboard import state, widgets
from dashboard.widgets import fmt_int, tr

lang = state.lang()
with st.sidebar:
    widgets.drilldown_selectors(st.sidebar)
    widgets.search_box(st.sidebar)
    widgets.layer_toggles(st.sidebar)
    widgets.bound_select("metric", state.METRICS, label=tr("metric.label"), key="w_metric",
                         format_func=widgets.tr_fn("metric."), container=st.sidebar)

st.markdown(f"## {tr('explorer.heading')}")
if not state.has_data():
    st.info(tr("store_empty"))
    st.stop()

v = state.view()
# any date's boundaries: the plan version in force that day (layers.plans); the date is in the link
today = state.now().date()
day = st.sidebar.date_input(explorer_map.tr_v("explorer.date"),
                            value=pd.Timestamp(v.asof).date() if v.asof else today,
                            key="w_asof", help=explorer_map.tr_v("explorer.date_help"))
if (asof := "" if day == today else f"{day:%Y-%m-%d}") != v.asof:
    v = state.set_view(asof=asof)
with st.spinner(tr("explorer.loading")):
    table = explorer_map.grid_table(with_patrol_hours=v.metric == "patrol_hours", day=day)
cfg = state.map_config()

st.caption(explorer_map.version_caption(day))
crumbs = explorer_map.breadcrumb(v, day)
head, up = st.columns([6, 1])
head.markdown(" › ".join(crumbs))
if v.sub and up.button(tr("explorer.up"), key="w_up", width="stretch"):
    state.set_view(**explorer_map.up_one_level(v))
    st.rerun()

scope = explorer_map.scope_rows(table, v)
st.caption(tr(
    "explorer.summary",
    grids=fmt_int((scope["kind"] == "comprehensive").sum()),
    dedicated=fmt_int((scope["kind"] == "dedicated").sum()),
    households=fmt_int(scope.loc[scope["kind"] == "comprehensive", "households"].sum()),
    population=fmt_int(scope.loc[scope["kind"] == "comprehensive", "population"].sum()),
) + " · " + tr("explorer.click_hint"))

map_col, card_col = st.columns([3, 1], gap="medium")
with map_col:
    m = explorer_map.build(v, cfg, table, day=day)
    out = explorer_map.show(m, key="explorer_map", height=720)
    change = explorer_map.handle_click(out, v, cfg, day=day)
    if change:
        state.set_view(**change)
        st.rerun()

with card_col:
    explorer_map.grid_card(table, v.grid, lang, day)
