"""巡查 Patrols: the 4-hour rule worker by worker, A/B post coverage, tracks, replay, unvisited buildings."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import _html, maps, state, widgets
from dashboard import _patrol as pt
from dashboard._patrol import tp
from dashboard.widgets import fmt_hours, fmt_pct

lang = state.lang()


#: A ``ux.*`` label in the session's language.
tp_ux = widgets.translator("ux")


# --- sidebar: scope, dates, worker ----------------------------------------------------------
with st.sidebar:
    widgets.drilldown_selectors(st.sidebar)
    mode = st.radio(tp("filter.mode"), ["day", "range"], key="pt_mode", horizontal=True,
                    format_func=pt.tp_fn("filter.mode_"))
    yesterday = pt.default_day()
    if mode == "range":
        picked = st.date_input(tp("filter.range"), value=(yesterday - dt.timedelta(days=6), yesterday),
                               key="pt_range")
        picked = picked if isinstance(picked, list | tuple) else (picked,)
        first, last = (picked[0], picked[-1]) if picked else (yesterday, yesterday)
    else:
        first = last = st.date_input(tp("filter.day"), value=yesterday, key="pt_day")
    days = pt.days_between(first, last)
    if len(days) < len(pd.date_range(*sorted((pd.Timestamp(first), pd.Timestamp(last))))):
        st.caption(tp("filter.range_capped", days=pt.MAX_RANGE_DAYS, end=days[-1].date()))

widgets.page_heading(tp("heading"))

v = state.view()
grids = pt.scope_grids(v)
workers = pt.scope_workers(grids)
with st.spinner(tp("loading")):
    comp = pt.compliance(grids, days)
rows = pt.table_rows(comp, with_day=len(days) > 1)


def _table_key() -> str:
    """The table's key: a new one whenever the worker is picked in the sidebar, so the table
    never keeps highlighting the row of the worker picked before."""
    return f"pt_table_{st.session_state.get('pt_table_gen', 0)}"


def _picked_in_sidebar() -> None:
    st.session_state["pt_table_gen"] = st.session_state.get("pt_table_gen", 0) + 1
    st.session_state["pt_playing"] = False


def _pick_from_table() -> None:
    """A click on a table row selects that worker (and its day, in a range)."""
    sel = st.session_state.get(_table_key())
    picked = sel.selection.rows if sel is not None and hasattr(sel, "selection") else []
    ids = st.session_state.get("pt_table_ids", [])
    if picked and picked[0] < len(ids):
        worker, day = ids[picked[0]]
        st.session_state["pt_worker"] = worker
        if day:
            st.session_state["pt_replay_day"] = day


options = workers["id"].tolist()
if st.session_state.get("pt_worker") not in options:
    tracked = comp.per_worker.loc[comp.per_worker["n_fixes"] > 0, "worker_id"]
    tracked_ids = set(tracked)
    first_tracked = [w for w in options if w in tracked_ids]
    st.session_state["pt_worker"] = first_tracked[0] if first_tracked else (options[0] if options else "")
labels = pt.worker_labels(workers)
none_label = tp("filter.worker_none")
worker = st.sidebar.selectbox(tp("filter.worker"), options, key="pt_worker",
                              format_func=lambda w: labels.get(w, none_label), on_change=_picked_in_sidebar,
                              placeholder=tp_ux("streamlit.no_options"))

k = pt.kpis(comp)
dates_text = str(days[0].date()) if len(days) == 1 else f"{days[0].date()} – {days[-1].date()}"
st.caption(tp("scope_caption", scope=_html.md(pt.scope_name(v)), dates=dates_text,
              workers=widgets.fmt_int(len(workers))))
cols = st.columns(8)
strip = [
    ("workers", widgets.fmt_int(k["workers"]), None),
    ("meeting", fmt_pct(k["meeting"]), tp("kpi.help_meeting")),
    ("meeting_all", fmt_pct(k["meeting_all"]), None),
    ("mean_hours", fmt_hours(k["mean_hours"]), None),
    ("a_h", fmt_hours(k["a_h"]), tp("kpi.help_post")),
    ("b_h", fmt_hours(k["b_h"]), tp("kpi.help_post")),
    ("covered_h", fmt_hours(k["covered_h"]), tp("kpi.help_post")),
    ("dropped", fmt_pct(k["dropped_share"]), tp("kpi.help_dropped")),
]
for col, (key, value, helptext) in zip(cols, strip, strict=True):
    col.metric(tp(f"kpi.{key}"), value, help=helptext)
if not k["workers"]:
    st.info(tp("no_patrols"))

# --- compliance table (full width: every column readable) ------------------------------------
st.markdown(f"#### {tp('table.heading')}")
if rows.empty:
    st.info(tp("no_workers"))
else:
    st.caption(tp("table.caption"))
    st.session_state["pt_table_ids"] = list(zip(
        rows["worker_id"], rows["day"] if "day" in rows else [None] * len(rows), strict=True))
    shown = rows.drop(columns=["grid_code"]).rename(columns={c: tp(f"table.{c}") for c in rows.columns})
    st.dataframe(shown, key=_table_key(), hide_index=True, height=min(320, 35 * len(rows) + 38), width="stretch",
                 on_select=_pick_from_table, selection_mode="single-row",
                 column_config={tp("table.hours_in_grid"): st.column_config.ProgressColumn(
                     tp("table.hours_in_grid"), min_value=0.0, max_value=8.0, format="%.2f", width=170)})

cfg = state.map_config()
own_grid = str(workers.loc[worker, "grid_code"]) if worker in workers.index else None
codes = pt.coverage_codes(v, own_grid)
cov = pt.scope_coverage(codes, days)


#: Replay speed: frames per run of the track, and seconds between frames.
PLAY_FRAMES = 40
PLAY_EVERY_S = 0.8


def _toggle_play() -> None:
    st.session_state["pt_playing"] = not st.session_state.get("pt_playing", False)


playing = bool(st.session_state.get("pt_playing", False))


@st.fragment(run_every=PLAY_EVERY_S if playing else None)
def replay() -> None:
    """The map, the time slider and the play button: only this part reruns while it plays."""
    st.markdown(f"#### {tp('map.heading')}")
    if not worker:
        st.caption(tp("map.no_worker"))
        return
    day = days[-1]
    if len(days) > 1:
        choices = [d.date() for d in days]
        if st.session_state.get("pt_replay_day") not in choices:
            st.session_state["pt_replay_day"] = choices[-1]
        day = pd.Timestamp(st.selectbox(tp("replay.day"), choices, key="pt_replay_day"))
    track = pt.worker_day(worker, day)
    box = st.container()
    when = None
    if len(track):
        t0 = pd.Timestamp(track.time[0]).floor("min").to_pydatetime()
        t1 = pd.Timestamp(track.time[-1]).ceil("min").to_pydatetime()
        if t1 <= t0:
            t1 = t0 + dt.timedelta(minutes=1)
        key = f"pt_replay_{worker}_{day.date()}"
        if st.session_state.get("pt_playing"):  # one frame further; stop at the end
            step = max((t1 - t0) / PLAY_FRAMES, dt.timedelta(minutes=1))
            step = dt.timedelta(minutes=round(step.total_seconds() / 60))
            cur = st.session_state.get(key, t0)
            nxt = t0 if cur >= t1 else min(cur + step, t1)
            st.session_state[key] = nxt
            if nxt >= t1:
                st.session_state["pt_playing"] = False
                st.rerun(scope="app")  # back to a still page (no timer)
        play_col, slider_col = st.columns([1, 7], vertical_alignment="bottom")
        on = bool(st.session_state.get("pt_playing"))
        if play_col.button(tp_ux("patrol.pause") if on else tp_ux("patrol.play"), key="pt_play",
                           icon=":material/pause:" if on else ":material/play_arrow:", width="stretch"):
            _toggle_play()
            if not on and st.session_state.get(key, t1) >= t1:  # from the start when at the end
                st.session_state[key] = t0
            st.rerun(scope="app")  # the fragment's timer starts or stops with a full run
        if key not in st.session_state:
            st.session_state[key] = t1
        picked = slider_col.slider(tp("replay.time"), min_value=t0, max_value=t1,
                                   step=dt.timedelta(minutes=1), format="HH:mm", key=key)
        when = np.datetime64(pd.Timestamp(picked).as_unit("ns"))
        pos = pt.position_at(track, when)
        if pos is not None:
            inside = own_grid is not None and pt.inside_grid(own_grid, pos[0], pos[1])
            st.caption(tp("replay.status", time=pd.Timestamp(picked).strftime("%H:%M"), km=f"{pos[2]:.2f}",
                          where=tp("replay.inside") if inside else tp("replay.outside")))
    else:
        st.caption(tp("map.no_track"))
    with box:
        m = pt.build_map(cfg, own_grid=own_grid, codes=codes, cov=cov, track=track)
        fg = pt.replay_group(track, cfg, when) if when is not None else None
        maps.show(m, key="pt_map", height=560, feature_group=fg)
        st.caption(tp("map.caption", worker=_html.md(labels.get(worker, worker)), day=day.date(),
                      tolerance=pt.TRACK_TOLERANCE_M)
                   + " · " + tp_ux("patrol.breaks", minutes=int(pt.TRACK_BREAK_S // 60), metres=int(pt.TRACK_BREAK_M)))


map_col, stale_col = st.columns([7, 5], gap="medium")
with map_col:
    replay()

with stale_col:
    if widgets.panel(tp("stale.heading"), hint=tp("stale.pick_scope") if cov is None else None):
        stale = pt.stale_rows(cov)
        scope = pt.scope_name(v) if (v.grid or v.com) else labels.get(worker, "")
        per = cov.per_grid
        end = (cov.end - pd.Timedelta(days=1)).date()
        st.caption(tp("stale.caption", scope=_html.md(scope), stale=widgets.fmt_int(len(stale)),
                      total=widgets.fmt_int(per["buildings"].sum()), end=end,
                      radius=int(pt.VISIT_RADIUS_M)))
        a, b = st.columns(2)
        a.metric(tp("stale.building_share"), fmt_pct(per["buildings_visited"].sum() / max(per["buildings"].sum(), 1)))
        b.metric(tp("stale.area_share"), fmt_pct(per["cells_visited"].sum() / max(per["cells"].sum(), 1)))
        if stale.empty:
            st.success(tp("stale.none"))
        else:
            st.dataframe(stale.rename(columns={c: tp(f"stale.{c}") for c in stale.columns}),
                         key="pt_stale", hide_index=True, width="stretch", height=320)

# --- what cleaning dropped --------------------------------------------------------------------
st.markdown(f"#### {tp('clean.heading')}")
clean_col, _ = st.columns([5, 7])
with clean_col:
    dropped = pt.dropped_rows(comp)
    st.dataframe(dropped.rename(columns={c: tp(f"clean.{c}") for c in dropped.columns}),
                 key="pt_dropped", hide_index=True, width="stretch",
                 column_config={tp("clean.share"): st.column_config.NumberColumn(format="%.2f%%")})
    st.caption(tp("clean.caption", total=widgets.fmt_int(dropped["fixes"].sum()), speed=f"{pt.RULES.max_speed_kmh:g}",
                  drift=f"{pt.RULES.drift_radius_m:g}"))
