"""事件 Case board: filter the cases, read one with its history and place, move it along the loop."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import _cases as board
from dashboard import _html, maps, state, widgets
from dashboard import _incidents as inc
from dashboard._incidents import tp
from layers import workflow
from layers.schema import DEPARTMENTS, STAGES

lang = state.lang()
now = state.now()
state.follow_changes()  # new cases (intake API, other desks) appear without a reload

with st.sidebar:
    widgets.drilldown_selectors(st.sidebar)
    st.markdown(f"**{tp('filter.heading')}**")
    start, end, window_text = inc.time_window("inc", default="d90")
    stages = inc.multiselect(tp("filter.stage"), STAGES, key="inc_stage",
                             fmt=lambda s: workflow.label("stage", s, lang))
    departments = inc.multiselect(tp("filter.department"), DEPARTMENTS, key="inc_dept",
                                  fmt=lambda d: inc.department_label(d, lang))
    cats, items = inc.category_filters("inc")
    levels = inc.level_filter("inc")
    overdue_only = st.checkbox(tp("filter.overdue_only"), key="inc_overdue")

st.markdown(f"## {tp('cases.heading')}")
if not state.has_data():
    st.info(widgets.tr("store_empty"))
    st.stop()

flt = inc.IncidentFilter(start=start, end=end, stages=stages, departments=departments,
                         categories=cats, items=items, levels=levels,
                         grids=inc.scope_grids(state.view()))
cases = inc.filtered(flt)
if overdue_only:
    cases = cases[workflow.overdue(cases, now=now).to_numpy()]

# --- KPI strip ------------------------------------------------------------------------------
k = inc.board_kpis(flt, now=now, overdue_only=overdue_only)  # kpi_job: one definition, audited
cols = st.columns(9)
strip = [
    ("incidents", widgets.fmt_int(k.get("incidents"))),
    ("open", widgets.fmt_int(k.get("open"))),
    ("overdue_open", widgets.fmt_int(k.get("overdue_open"))),
    ("closure_rate", widgets.fmt_pct(k.get("closure_rate"))),
    ("on_time_rate", widgets.fmt_pct(k.get("on_time_rate"))),
    ("rework_rate", widgets.fmt_pct(k.get("rework_rate"))),
    ("extension_rate", widgets.fmt_pct(k.get("extension_rate"))),
    ("median_hours", widgets.fmt_hours(k.get("median_hours"))),
    ("p90_hours", widgets.fmt_hours(k.get("p90_hours"))),
]
for col, (key, value) in zip(cols, strip, strict=True):
    col.metric(tp(f"kpi.{key}"), value)
board.limits_caption(lang)

# --- the table (full width), then the case picked in it or by id -----------------------------
cap_col, pick_col = st.columns([3, 1], gap="medium", vertical_alignment="bottom")
if cases.empty:
    st.info(tp("cases.none"))
    rows = pd.DataFrame()
else:
    rows = board.case_rows(cases, now=now, lang=lang)
    cap_col.caption(tp("cases.caption", total=widgets.fmt_int(len(cases)), shown=widgets.fmt_int(len(rows)))
                    + f" · {window_text} · {tp('cases.masked')}")
    shown = rows.rename(columns={c: tp(f"cases.{c}") for c in rows.columns})
    # every column wide enough for its longest value (the item names, the two timestamps)
    widths = {"id": 150, "received": 140, "item": 200, "level": 60, "stage": 100, "department": 130,
              "grid": 150, "due": 140, "overdue": 60, "source": 110, "reporter": 90, "phone": 120}
    picked = st.dataframe(shown, key="inc_table", hide_index=True, height=min(560, 35 * len(rows) + 38),
                          on_select="rerun", selection_mode="single-row", width="stretch",
                          column_config={tp(f"cases.{c}"): st.column_config.Column(width=w)
                                         for c, w in widths.items()})
    sel = picked.selection.rows if picked is not None and hasattr(picked, "selection") else []
    if sel and st.session_state.get("inc_table_seen") != (rows["id"].iloc[sel[0]]):
        st.session_state["inc_table_seen"] = rows["id"].iloc[sel[0]]
        st.session_state["inc_case"] = rows["id"].iloc[sel[0]]

# --- one case -------------------------------------------------------------------------------
with pick_col:
    ids = rows["id"].tolist() if len(rows) else []
    current = st.session_state.get("inc_case", "")
    if current and current not in ids:
        ids = [current, *ids]
    # shown by id alone: the browser matches the choice by its label, which must never change
    pick = tp("cases.pick")
    srid = st.selectbox(tp("cases.open_case"), ["", *ids], key="inc_case",
                        format_func=lambda i: i or pick)
if srid:
    with st.container(border=True):
        record = board.case_record(srid)
        if record is None:
            st.warning(tp("case.gone", id=_html.md(srid)))
        else:
            late = workflow.is_overdue(record, now=now)
            st.markdown(f"#### {tp('case.heading', id=_html.md(srid))}")
            badge = workflow.label("stage", str(record["stage"]), lang)
            whistle = str(record.get("whistle") or "none")
            st.markdown(
                f"**{_html.md(inc.item_label(record.get('item_code'), lang))}** · "
                f"{_html.md(inc.category_label(record.get('category_code'), lang))} · "
                f"{tp('filter.level_value', level=record.get('level'))} · :blue-background[{badge}]"
                + (f" · :orange-background[{workflow.label('whistle', whistle, lang)}]" if whistle != "none" else "")
                + (f" · :red-background[{tp('cases.overdue')}]" if late else "")
            )
            fmt = lambda v: "—" if v is None else pd.Timestamp(v).strftime("%Y-%m-%d %H:%M")  # noqa: E731
            facts = [
                (tp("cases.received"), fmt(record.get("requested_datetime"))),
                (tp("cases.due"), fmt(record.get("expected_datetime"))),
                (tp("cases.closed"), fmt(record.get("closed_datetime"))),
                (tp("cases.department"), inc.department_label(record.get("department"), lang)),
                (tp("cases.grid"), inc.grid_names().get(str(record.get("grid_code")), "—")),
                (tp("cases.source"), inc.source_label(record.get("source"), lang)),
                (tp("cases.reporter"), f"{record.get('reporter_name') or '—'} · {record.get('reporter_phone') or '—'}"),
                (tp("cases.address"), record.get("address") or "—"),
                (tp("cases.reworks"), f"{int(record.get('reworks') or 0)} · {tp('cases.extensions')} "
                                      f"{int(record.get('extensions') or 0)}"),
            ]
            fact_col, map_col, act_col = st.columns([4, 4, 5], gap="medium")
            fact_col.markdown("\n".join(f"- **{a}**: {_html.md(b)}" for a, b in facts))
            board.contacts_button(srid, record, fact_col)
            if record.get("description"):
                fact_col.caption(f"{tp('cases.description')}: {_html.md(record['description'])}")
            with map_col:
                st.caption(tp("case.place"))
                maps.show(board.case_map(record, state.map_config()), key="inc_case_map", height=320)
            with act_col:
                st.markdown(f"##### {tp('act.heading')}")
                board.action_form(srid, record, now=now, lang=lang)
                with st.expander(tp("act.transitions")):
                    st.dataframe(workflow.transitions_table(lang).drop(columns=["action"]),
                                 hide_index=True, width="stretch", key="inc_rules")
            st.markdown(f"##### {tp('case.history')}")
            hist = board.case_history(srid, lang)
            if hist.empty:
                st.caption(tp("case.no_history"))
            else:
                st.dataframe(hist.rename(columns={c: tp(f"case.{c}") for c in hist.columns}),
                             key="inc_history", hide_index=True, width="stretch",
                             column_config={tp("case.options"): st.column_config.TextColumn(width="large"),
                                            tp("case.note"): st.column_config.TextColumn(width="large")})
