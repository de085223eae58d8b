"""热点 Hotspots: where and when cases cluster, which spots are new or growing, 每月一题."""

from __future__ import annotations

import streamlit as st

from dashboard import _hotspots as hot
from dashboard import _incidents as inc
from dashboard import maps, state, widgets
from dashboard._incidents import tp
from layers.schema import SOURCES

lang = state.lang()
now = state.now()

with st.sidebar:
    st.markdown(f"**{tp('filter.heading')}**")
    start, end, window_text = inc.time_window("hot", default="d365")
    cats, items = inc.category_filters("hot")
    levels = inc.level_filter("hot")
    sources = inc.multiselect(tp("filter.source"), SOURCES, key="hot_source",
                              fmt=lambda s: inc.source_label(s, lang))

st.markdown(f"## {tp('hot.heading')}")
if not state.has_data():
    st.info(widgets.tr("store_empty"))
    st.stop()

flt = inc.IncidentFilter(start=start, end=end, categories=cats, items=items, levels=levels,
                         sources=sources)
c_mode = st.container()  # a row of its own: six mode names fit in either language
c_res, c_fdr, _ = st.columns([2, 2, 3], vertical_alignment="bottom")
mode_names = {m: tp(f"mode.{m}") for m in hot.MODES}
res_names = {r: tp("hot.res_value", res=r, area=f"{hot.cell_area_km2(r):.3f}") for r in hot.HEX_RES}
mode = c_mode.segmented_control(tp("hot.mode"), hot.MODES, key="hot_mode", default="hex",
                                format_func=mode_names.__getitem__) or "hex"
res = c_res.selectbox(tp("hot.res"), hot.HEX_RES, index=hot.HEX_RES.index(hot.DEFAULT_RES), key="hot_res",
                      format_func=res_names.__getitem__)
fdr = c_fdr.toggle(tp("hot.fdr"), value=True, key="hot_fdr", disabled=mode != "gi")

cfg = state.map_config()
m, caption = hot.build_map(mode, res, flt, cfg, now=now, fdr=fdr, window_text=window_text)
st.caption(caption)
maps.show(m, key="hot_map", height=600)

hot.charts(flt, lang=lang)
hot.monthly_topic_table(flt, lang=lang)
