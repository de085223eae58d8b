"""The case board (事件): the case table, one case's facts, history and map, and its actions.

Each action goes through :mod:`layers.app` as the signed-in account (permission, the
workflow's compare-and-set, audit); a likely duplicate flagged at intake is offered for
merging into the case it duplicates (:func:`layers.duplicates.merge_duplicate`). Filters and
labels are shared with the hotspot page (:mod:`dashboard._incidents`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import folium
import folium.plugins
import numpy as np
import pandas as pd
import shapely
import streamlit as st

from dashboard import _html, maps, state
from dashboard._incidents import (
    department_label,
    district_bounds,
    grid_names,
    item_label,
    source_label,
    tp,
)
from layers import taxonomy, workflow
from layers._store_common import error_text
from layers.errors import ConcurrentChangeError, StoreError
from layers.i18n import t
from layers.privacy import mask_personal
from layers.schema import DEPARTMENTS, WHISTLES

#: Most rows the case table shows (the newest first).
TABLE_ROWS = 500


#: Options each action takes, as widgets on the case board.
ACTION_OPTIONS: dict[str, tuple[str, ...]] = {
    "assign": ("department",),
    "whistle": ("kind", "department"),
    "close_no_action": ("reason", "duplicate_of"),
    "request_extension": ("hours",),
    "grant_extension": ("hours",),
    "evaluate": ("rating",),
}


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
    duplicate_box(srid, record, seen=seen, now=now, lang=lang)
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


def duplicate_box(srid: str, record: Mapping[str, Any], *, seen: Mapping[str, Any],
                  now: pd.Timestamp, lang: str) -> None:
    """A likely duplicate flagged at intake: the hint and a button "merge into case X"
    (:func:`layers.duplicates.merge_duplicate` as the signed-in account); a merged case: a
    link to the case kept."""
    from dashboard import _auth
    from layers.duplicates import duplicate_links
    from layers.permissions import can

    links = state.locked(duplicate_links, state.get_store(), srid)
    kept = links["merged_into"]
    if kept:
        st.info(_html.md(t("live.merge.merged_into", lang, id=kept)))
        st.button(_html.md(t("live.merge.open_kept", lang, id=kept)), key="inc_open_kept",
                  on_click=_open_case, args=(kept,))
        return
    dup = links["flagged"]
    if not dup or record.get("stage") != "collected":
        return
    st.warning(_html.md(t("live.merge.flagged_short", lang, id=dup)))
    account = _auth.actor()
    grid = record.get("grid_code")
    if not can(account, "case.close_no_action", scope_code=str(grid) if grid else "",
               department=record.get("department")):
        return
    if st.button(_html.md(t("live.merge.button", lang, id=dup)), key="inc_merge"):
        st.session_state["inc_flash"] = (srid, merge(srid, dup, time=action_time(record, now),
                                                     lang=lang, seen=seen))
        st.session_state.pop("inc_seen", None)
        st.rerun()


def _open_case(srid: str) -> None:
    st.session_state["inc_case"] = srid


def merge(srid: str, into: str, *, time: pd.Timestamp, lang: str,
          seen: Mapping[str, Any] | None = None) -> Outcome:
    """Merge case ``srid`` into ``into`` as the signed-in account; the outcome to show."""
    from dashboard import _auth
    from layers.duplicates import merge_duplicate
    from layers.permissions import PermissionDenied

    try:
        state.locked(merge_duplicate, state.get_store(), _auth.actor(), srid, into, time=time,
                     based_on=seen)
    except PermissionDenied as err:
        return Outcome(False, err.message(lang), err.fix(lang))
    except workflow.IllegalTransitionError as err:
        return Outcome(False, err.message(lang), err.fix(lang))
    except ConcurrentChangeError as err:
        return Outcome(False, error_text(err, lang), t("cas.conflict.fix", lang))
    except StoreError as err:
        return Outcome(False, tp("act.store_failed", error=str(err)))
    return Outcome(True, t("live.merge.done", lang, id=srid, kept=into))


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


def limits_caption(lang: str) -> None:
    """State how time limits are counted (working hours, holidays, urgent cases) under the KPIs."""
    st.caption(workflow.limits_rule(lang))
