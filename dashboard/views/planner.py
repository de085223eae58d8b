"""网格调整 Re-partition: redraw the grids of a community, sub-district or the district, compare,
move compounds by hand, save as a version (audited), roll back, and the 15-minute circle."""

from __future__ import annotations

import time

import streamlit as st

from dashboard import _auth, _html, maps, state, widgets
from dashboard import _planner as pl
from dashboard._planner import tp
from dashboard.widgets import fmt_int
from geo.planner_defaults import DEFAULTS
from layers import plans
from layers.i18n import t
from layers.permissions import PermissionDenied

lang = state.lang()
names = widgets.admin_names()

# --- sidebar: scope and parameters ----------------------------------------------------------
with st.sidebar:
    widgets.drilldown_selectors(st.sidebar)
    st.markdown(f"**{tp('params.heading')}**")
    balance = st.radio(tp("params.balance"), ["households", "population"], key="pl_balance",
                       horizontal=True, format_func=pl.tp_fn("params."))
    quantity = tp(f"params.{balance}")
    lo_default, hi_default = (int(v) for v in DEFAULTS.band("grid", balance=balance))
    step = 10 if balance == "households" else 50
    band_cols = st.columns(2)
    lo = band_cols[0].number_input(tp("params.min", quantity=quantity), min_value=0,
                                   value=lo_default, step=step, key=f"pl_lo_{balance}")
    hi = band_cols[1].number_input(tp("params.max", quantity=quantity), min_value=0,
                                   value=hi_default, step=step, key=f"pl_hi_{balance}")
    radius = st.slider(tp("params.radius"), 200, 2000, int(DEFAULTS.radius_m), step=50, key="pl_radius",
                       help=tp("params.radius_help"))
    w_compact = st.slider(tp("params.compactness"), 0.0, 5.0, DEFAULTS.compactness_weight, step=0.1,
                          key="pl_w_compact")
    w_disrupt = st.slider(tp("params.disruption"), 0.0, 5.0, DEFAULTS.disruption_weight, step=0.1,
                          key="pl_w_disrupt")
    w_street = st.slider(tp("params.streets"), 0.0, 5.0, DEFAULTS.street_weight, step=0.1,
                         key="pl_w_street")
    time_limit = st.slider(tp("params.time_limit"), 0.5, 10.0, DEFAULTS.time_limit_s, step=0.5,
                           key="pl_time")
    walls_slot = st.empty()  # shown once the scope's compounds are known
    lock_slot = st.empty()  # filled once the scope's grids are known
    run = st.button(tp("params.run"), type="primary", key="pl_run", width="stretch",
                    icon=":material/play_arrow:")

widgets.page_heading(tp("heading"))

v = state.view()
scope = pl.scope_key(v)
inputs = pl.scope_inputs(scope)
scope_name = names.get(v.com or v.sub, tp("district")) if (v.com or v.sub) else tp("district")
st.caption(tp("scope_caption", scope=_html.md(scope_name), communities=fmt_int(len(inputs.containers)),
              grids=fmt_int(len(inputs.current)),
              households=fmt_int(inputs.current["households"].sum())))
grid_names = dict(zip(inputs.current["code"].astype(str), inputs.current["name"].astype(str), strict=True))
locked = lock_slot.multiselect(t("planner2.page.lock", lang), sorted(grid_names), key="pl_locked",
                               help=t("planner2.page.lock_help", lang),
                               placeholder=t("planner2.page.lock_placeholder", lang),
                               format_func=lambda c: f"{grid_names.get(c, c)} · {c}")
walls = inputs.compounds is not None and walls_slot.checkbox(
    t("walls.page.follow", lang), value=True, key="pl_walls", help=t("walls.page.follow_help", lang))
params = pl.Params(balance=balance, lo=float(lo), hi=float(hi), radius_m=float(radius),
                   compactness_weight=float(w_compact), disruption_weight=float(w_disrupt),
                   street_weight=float(w_street), time_limit_s=float(time_limit),
                   locked=tuple(sorted(locked)), walls=bool(walls))

if run:
    if params.lo > params.hi:
        st.error(tp("params.bad_band"))
    elif len(inputs.units) == 0:
        st.warning(tp("no_buildings"))
    else:
        with st.spinner(tp("run.spinner")):
            t0 = time.perf_counter()
            try:
                model = pl.run_plan(inputs, params)
            except ValueError as exc:  # the engine's PartitionInputError names every problem
                st.error(tp("run.failed", error=_html.md(exc)))
                model = None
            total = time.perf_counter() - t0
        if model is not None:
            st.session_state.update(pl_model=model, pl_model_key=(scope, params), pl_pick=None,
                                    pl_total_s=total, pl_msg=None)

model: pl.PlanModel | None = st.session_state.get("pl_model")
if model is not None and model.scope != scope:
    model = None  # another scope: its plan does not apply here

section = st.segmented_control(tp("section"), ["plan", "versions", "circle"], key="pl_section",
                               default="plan", format_func=pl.tp_fn("sections."),
                               label_visibility="collapsed") or "plan"
cfg = state.map_config()

# --- the proposal ---------------------------------------------------------------------------
if section == "plan":
    if model is None:  # the grids as they are, with their figures: what a plan would change
        st.info(tp("run.prompt"))
        n_out = int((pl.current_rows(inputs, params, lang).iloc[:, -1] == "✗").sum())
        map_col, table_col = st.columns([3, 2], gap="medium")
        with map_col:
            st.markdown(f"#### {tp('map.current')}")
            maps.show(pl.current_map(inputs, params, cfg), key="pl_map_current", height=560)
        with table_col:
            st.markdown(f"#### {pl.tu('planner.current_table')}")
            st.caption(pl.tu("planner.out_of_band", n=n_out, total=len(inputs.current),
                             quantity=quantity.lower() if lang == "en" else quantity,
                             lo=fmt_int(params.lo), hi=fmt_int(params.hi)))
            st.dataframe(pl.current_rows(inputs, params, lang), hide_index=True, width="stretch",
                         height=520, key="pl_current_table")
        st.stop()
    tm = model.timings_s
    st.caption(tp("run.timing", total=f"{st.session_state.get('pl_total_s', 0.0):.2f}",
                  engine=f"{tm.get('engine_total', 0.0):.2f}", cells=f"{tm.get('cells', 0.0):.2f}",
                  distances=f"{tm.get('distances', 0.0):.2f}", solve=f"{tm.get('solve', 0.0):.2f}",
                  model=f"{tm.get('model', 0.0):.2f}")
               + (" · " + tp("pick.moves", n=len(model.moves)) if model.moves else ""))
    if st.session_state.get("pl_model_key") != (scope, params):
        st.warning(tp("run.stale"))
    if st.session_state.get("pl_msg"):
        st.success(_html.md(st.session_state["pl_msg"]))
    ev = pl.evaluate(model)
    pick = st.session_state.get("pl_pick")
    pick = pick if isinstance(pick, int) and 0 <= pick < model.n_units else None
    left, right = st.columns(2, gap="small")
    with left:
        st.markdown(f"#### {tp('map.current')}")
        maps.show(pl.current_map(inputs, model.params, cfg), key="pl_map_current", height=520)
    with right:
        st.markdown(f"#### {tp('map.proposed')}")
        out = maps.show(pl.proposed_map(model, ev, cfg, picked=pick), key="pl_map_proposed",
                        height=520, returned_objects=["last_object_clicked"])
    click = out.get("last_object_clicked") if out else None
    if click and click != st.session_state.get("pl_last_click"):
        st.session_state["pl_last_click"] = click
        pt = maps.click_to_wgs84(click, cfg)
        unit = pl.unit_at(model, *pt) if pt else None
        if unit is not None and unit != pick:
            st.session_state.update(pl_pick=unit, pl_msg=None)
            st.rerun()
    st.caption(tp("map.click_hint"))

    table_col, move_col = st.columns([3, 2], gap="medium")
    with table_col:
        st.markdown(f"#### {tp('table.heading')}")
        st.table(pl.comparison_table(ev.summary, lang))
    with move_col:
        if widgets.panel(tp("pick.heading"), hint=tp("pick.none") if pick is None else None):
            own = model.region(pick)
            grid_names = model.all_names
            in_unit = model.buildings[model.buildings["unit"] == pick]
            st.markdown(_html.md(tp("pick.picked", compound=model.unit_ids[pick], buildings=len(in_unit),
                                    households=fmt_int(in_unit["households"].sum()),
                                    grid=grid_names[own])))
            targets = pl.neighbours(model, pick)
            if not pl.can_move(model, pick):
                st.caption(tp("pick.last_unit"))
            elif not targets:
                st.caption(tp("pick.no_neighbour"))
            else:
                hh = ev.regions["households"].tolist()
                target = st.selectbox(tp("pick.target"), targets, key="pl_target",
                                      format_func=lambda r: f"{grid_names[r]} · {hh[r]:,}")
                if st.button(tp("pick.move"), key="pl_move", type="primary",
                             icon=":material/move_down:"):
                    t0 = time.perf_counter()
                    moved = pl.move(model, pick, int(target))
                    pl.evaluate(moved)
                    ms = (time.perf_counter() - t0) * 1000
                    st.session_state.update(pl_model=moved, pl_msg=tp(
                        "pick.moved", unit=model.unit_ids[pick], src=grid_names[own],
                        dst=grid_names[int(target)], ms=f"{ms:.0f}"))
                    st.rerun()
        if model.history and st.button(tp("pick.undo"), key="pl_undo", icon=":material/undo:"):
            st.session_state.update(pl_model=pl.undo(model), pl_msg=None)
            st.rerun()

    st.markdown(f"#### {tp('table.violations')}")
    errors = sum(x.get("severity") == "error" for x in ev.violations)
    if not ev.violations:
        st.success(tp("table.all_met"))
    else:
        st.caption(tp("table.counts", errors=errors, warnings=len(ev.violations) - errors))
        st.table(_html.md_frame(pl.violation_rows(ev.violations, dict(zip(model.all_codes, model.all_names, strict=True)),
                                                  lang).head(pl.MAX_LISTED)))
        if len(ev.violations) > pl.MAX_LISTED:
            st.caption(tp("table.more", n=len(ev.violations) - pl.MAX_LISTED))
    st.markdown(f"#### {tp('table.grids')}")
    st.dataframe(pl.grid_rows(ev.regions, lang), hide_index=True, width="stretch")

# --- saving, export, versions ---------------------------------------------------------------
elif section == "versions":
    st.markdown(f"#### {tp('save.heading')}")
    st.caption(tp("versions.audit"))
    account = _auth.actor()  # the signed-in planner or admin; layers.plans checks the role
    st.caption(f"{tp('save.actor')}: {_html.md(account.username)}")
    due = pl.activate_due(account)  # a scheduled version whose date has come
    if due is not None:
        st.info(t("versions.page.activated", lang, version=due))
    note = st.text_input(tp("save.note"), key="pl_note").strip()
    effective = st.date_input(t("versions.page.effective", lang), value=plans.today_local().date(),
                              key="pl_effective", help=t("versions.page.effective_help", lang))
    if model is None:
        st.info(tp("save.need_plan"))
    else:
        ev = pl.evaluate(model)
        found = pl.plan_check(model, ev)  # the rules layers.plans enforces on the whole plan
        n_errors = len(plans.open_errors(found))
        confirmed = False
        if n_errors:
            # a plan that breaks a hard rule is saved only when the planner says so
            st.warning(_html.md(plans.violations_summary(found, lang)))
            st.table(_html.md_frame(pl.violation_rows(
                plans.open_errors(found), {**names, **dict(zip(model.all_codes, model.all_names, strict=True))},
                lang).head(pl.MAX_LISTED)))
            confirmed = st.checkbox(t("versions.page.confirm", lang, n=n_errors),
                                    key="pl_confirm_violations")
        if st.button(tp("save.button"), key="pl_save", type="primary", icon=":material/save:"):
            if not note:
                st.warning(tp("save.need_fields"))
            elif n_errors and not confirmed:
                st.warning(t("versions.page.need_confirm", lang, n=n_errors))
            else:
                try:
                    written = pl.save_plan(model, ev, actor=account, note=note,
                                           confirm_violations=confirmed, effective=effective)
                    st.session_state.update(pl_saved=(written, str(effective)), pl_rolled=None)
                except PermissionDenied as exc:
                    st.error(exc.message(lang))
                except plans.PlanError as exc:
                    st.warning(_html.md(exc.message(lang)))
                except Exception as exc:  # noqa: BLE001 - the store's error says what failed
                    st.error(tp("save.failed", error=_html.md(exc)))
        if st.session_state.get("pl_saved"):
            ver, day = st.session_state["pl_saved"]
            st.success(t("versions.page.saved", lang, version=ver, date=day))
        st.markdown(f"#### {tp('save.export')}")
        cols = st.columns(3)
        stem = f"grids_plan_{scope.replace(':', '_')}"
        for col, (suffix, label, mime) in zip(cols, [
            (".gpkg", "save.gpkg", "application/geopackage+sqlite3"),
            (".geojson", "save.geojson", "application/geo+json"),
            (".zip", "save.shp", "application/zip"),
        ], strict=True):
            col.download_button(tp(label), data=lambda s=suffix: pl.export_bytes(model, ev, s),
                                file_name=stem + suffix, mime=mime, key=f"pl_dl{suffix}",
                                icon=":material/download:", width="stretch", on_click="ignore")

    st.markdown(f"#### {t('versions.page.history', lang)}")
    vers = pl.versions()
    saved = vers[vers["state"] == "saved"] if len(vers) else vers
    if saved.empty:
        st.caption(tp("versions.none"))
    else:
        st.dataframe(pl.history_rows(saved, lang), hide_index=True, width="stretch",
                     key="pl_history")
        notes = dict(zip(saved["version"].astype(int), saved["note"].astype(str), strict=True))
        recorded = {int(v): x for v, x in zip(saved["version"], saved["violations"], strict=True)}
        shown = st.selectbox(t("versions.page.recorded_pick", lang),
                             list(recorded), key="pl_recorded",
                             format_func=lambda x: f"v{x} · {notes.get(x, '')}")
        if recorded.get(shown):
            st.table(_html.md_frame(pl.violation_rows(recorded[shown], names, lang).head(pl.MAX_LISTED)))
        else:
            st.caption(t("versions.page.none_recorded", lang))
        choices = [int(x) for x in saved.loc[~saved["in_force"].astype(bool), "version"]]
        if choices:
            target = st.selectbox(tp("versions.pick"), choices, key="pl_rb_version",
                                  format_func=lambda x: f"v{x} · {notes.get(x, '')}")
            if st.button(tp("versions.rollback"), key="pl_rollback", icon=":material/history:"):
                st.session_state["pl_confirm"] = int(target)
                st.session_state["pl_rolled"] = None
            pending = st.session_state.get("pl_confirm")
            if pending is not None:
                st.warning(tp("versions.confirm", version=pending, note=_html.md(notes.get(pending, ""))))
                n_old = len(plans.open_errors(recorded.get(pending, [])))
                rb_ok = (st.checkbox(t("versions.page.confirm", lang, n=n_old), key="pl_rb_confirm_viol")
                         if n_old else False)
                ok, cancel = st.columns([1, 5])
                if ok.button(tp("versions.confirm_button"), key="pl_confirm_yes", type="primary"):
                    why = tp("versions.rollback_note", version=pending) + (f" · {note}" if note else "")
                    try:
                        new = pl.rollback(pending, actor=account, note=why, confirm=rb_ok,
                                          effective=effective)
                    except PermissionDenied as exc:
                        st.error(exc.message(lang))
                    except plans.PlanError as exc:
                        st.warning(_html.md(exc.message(lang)))
                    else:
                        st.session_state.update(pl_confirm=None, pl_rolled=(pending, new), pl_saved=None)
                        st.rerun()
                if cancel.button(tp("versions.cancel"), key="pl_confirm_no"):
                    st.session_state["pl_confirm"] = None
                    st.rerun()
        if st.session_state.get("pl_rolled"):
            old, new = st.session_state["pl_rolled"]
            st.success(t("versions.page.rolled_back", lang, version=old, new=new))

# --- the 15-minute circle -------------------------------------------------------------------
else:
    st.markdown(f"#### {tp('access.heading')}")
    facilities = state.layer("facilities", ["id", "kind"])
    kinds = sorted(facilities["kind"].dropna().astype(str).unique())
    if not kinds:
        st.info(tp("access.no_facilities"))
        st.stop()
    a, b = st.columns(2)
    default = kinds.index("community_service_centre") if "community_service_centre" in kinds else 0
    kind = a.selectbox(tp("access.kind"), kinds, index=default, key="pl_kind",
                       format_func=pl.tp_fn("kind."))
    speed = b.slider(tp("access.speed"), 3.6, 4.8, 3.6, step=0.1, key="pl_speed",
                     help=tp("access.speed_help"))
    with st.spinner(tp("access.spinner")):
        res, seconds = pl.access(scope, kind, speed)
    cov = res.coverage
    row15 = cov[cov["minutes"] == cov["minutes"].max()].iloc[0]
    verdict = ("meets_both" if row15["meets_99"] else "meets_85" if row15["meets_85"] else "meets_none")
    st.markdown("**" + tp("access.verdict", share=f"{100 * row15['share']:.1f}%",
                          verdict=tp(f"access.{verdict}")) + "**")
    st.caption(tp("access.targets") + " · " + tp("access.timing", seconds=f"{seconds:.2f}"))
    routing = next((n for n in res.notes if n.get("code") == "gates.access.routing"), None)
    st.caption(t("gates.access.routing", lang, **{k: fmt_int(v) for k, v in routing.items()
                                                  if k not in ("code", "severity")})
               if routing else t("gates.access.no_gates", lang))
    map_col, side = st.columns([3, 2], gap="medium")
    with map_col:
        maps.show(pl.access_map(res, inputs, kind, cfg), key="pl_map_access", height=560)
    with side:
        st.table(pl.coverage_rows(cov, lang))
        st.markdown(f"**{tp('access.sites')}**")
        sites = pl.useful_sites(res.sites)
        if len(sites):
            for _, s in sites.iterrows():
                st.markdown(f"- {tp('access.rank')} {int(s['rank'])}: "
                            f"{tp('access.added')} {fmt_int(s['added_covered'])} "
                            f"({s.geometry.y:.5f}, {s.geometry.x:.5f})")
        else:
            st.caption(tp("access.no_sites" if row15["meets_99"] else "access.no_gain"))
