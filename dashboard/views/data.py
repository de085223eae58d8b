"""数据 Data: upload any file the readers know, see the validation report, preview, commit or
cancel; export any layer."""

from __future__ import annotations

import streamlit as st

from dashboard import _auth, _html, maps, state
from dashboard import _data as data
from dashboard.widgets import fmt_int, tr, tr_fn
from geo.crs import DATUMS
from layers._store_common import error_text
from layers.app import import_layers, record_download
from layers.i18n import t
from layers.io import SUPPORTED_READ
from layers.permissions import PermissionDenied, can
from layers.privacy import mask_name
from layers.replace_check import ORPHAN_POLICIES, replace_impact

lang = state.lang()
st.markdown(f"## {tr('data.heading')}")
store = state.get_store()
account = _auth.actor()  # every write and download below is checked and audited as this account
tab_in, tab_out = st.tabs([tr("data.import"), tr("data.export")])

with tab_in:
    nonce = st.session_state.setdefault("data_nonce", 0)
    c1, c2 = st.columns(2)
    layer = c1.selectbox(tr("data.target"), data.IMPORTABLE, index=data.IMPORTABLE.index("grids"),
                         format_func=lambda n: data.layer_title(n, lang), key="w_data_layer")
    datum = c2.selectbox(tr("data.datum"), DATUMS, format_func=tr_fn("data.datum_"),
                         key="w_data_datum")
    formats = " ".join(s.lstrip(".") for s in SUPPORTED_READ)
    up = st.file_uploader(tr("data.upload", formats=formats),
                          type=[s.lstrip(".") for s in SUPPORTED_READ], key=f"w_upload_{nonce}")
    if up is not None:
        key = (up.file_id, layer, datum)
        if st.session_state.get("data_checked_key") != key:
            reference = {n: state.layer(n) for n in data.references(layer)}
            with st.spinner(tr("data.report")):
                st.session_state["data_checked"] = data.check_upload(
                    up.getvalue(), up.name, layer=layer, datum=datum, reference=reference, lang=lang)
            st.session_state["data_checked_key"] = key
        checked: data.Checked = st.session_state["data_checked"]
        st.markdown(f"#### {tr('data.report')}")
        st.caption(tr("data.report_counts", **checked.report.counts()))
        if len(checked.report):
            st.dataframe(data.report_table(checked.report, lang), hide_index=True, width="stretch")
        rows = 0 if checked.data is None else len(checked.data)
        if checked.ok:
            st.success(tr("data.report_ok", rows=fmt_int(rows), layer=data.layer_title(layer, lang)))
        else:
            st.error(tr("data.report_blocked"))
        if data.is_spatial(checked.data):
            st.markdown(f"#### {tr('data.preview')}")
            m = data.preview_map(checked.data, state.map_config(), name=data.layer_title(layer, lang),
                                 label=tr("data.features"))
            maps.show(m, key="data_preview", height=420)
        elif checked.data is not None:
            st.caption(tr("data.no_geometry"))
        if checked.data is not None:
            st.dataframe(data.preview_table(checked.data, layer, lang), hide_index=True,
                         width="stretch", height=240)
        # the mode sits outside the form: switching it shows at once what a replace deletes
        mode = st.radio(tr("data.mode"), data.commit_modes(layer), horizontal=True,
                        format_func=tr_fn("data.mode_"), key=f"w_data_mode_{layer}")
        impact = None
        if mode == "replace" and checked.ok and checked.data is not None:
            impact = state.locked(replace_impact, store, layer, checked.data, mode="replace")
            st.markdown(f"#### {t('cas.page.impact', lang)}")
            if impact.removed_rows or impact.orphans:
                st.dataframe(data.impact_frame(impact, lang), hide_index=True, width="stretch")
            else:
                st.caption(t("cas.page.impact_none", lang))
        with st.form("data_commit", border=False):
            policy = "refuse"
            if impact is not None and impact.orphans:
                st.warning(t("cas.page.orphans_warning", lang, rows=fmt_int(impact.orphaned_rows),
                             orphans=impact.orphan_text(lang, values=False)))
                policy = st.radio(t("cas.page.orphans_choice", lang), ORPHAN_POLICIES,
                                  format_func=lambda p: t(f"cas.page.orphans_{p}", lang),
                                  key="w_data_orphans")
            note = st.text_input(tr("data.note"))
            b1, b2 = st.columns(2)
            commit = b1.form_submit_button(tr("data.commit"), type="primary", disabled=not checked.ok)
            cancel = b2.form_submit_button(tr("data.cancel"))
        if commit and impact is not None and impact.orphans and policy == "refuse":
            st.error(t("cas.page.orphans_blocked", lang))
        elif commit and checked.ok and checked.data is not None:
            try:
                state.locked(import_layers, store, account, {layer: checked.data}, mode=mode,
                             on_orphans=policy, note=note or checked.file)
            except PermissionDenied as e:
                st.error(e.message(lang))
            except Exception as e:  # noqa: BLE001 - the store rolls back; say why
                st.error(tr("data.failed", error=_html.md(error_text(e, lang))))
            else:
                st.session_state["data_flash"] = tr("data.committed", rows=fmt_int(rows),
                                                    layer=data.layer_title(layer, lang))
                st.session_state["data_nonce"] = nonce + 1
                st.session_state.pop("data_checked_key", None)
                st.rerun()
        if cancel:
            st.session_state["data_flash"] = tr("data.cancelled")
            st.session_state["data_nonce"] = nonce + 1
            st.session_state.pop("data_checked_key", None)
            st.rerun()
    flash = st.session_state.pop("data_flash", None)
    if flash:
        st.info(flash)

with tab_out:
    names = state.locked(store.layer_names)
    c1, c2 = st.columns(2)
    ex_layer = c1.selectbox(tr("data.export_layer"), names or ["grids"],
                            index=names.index("grids") if "grids" in names else 0,
                            format_func=lambda n: data.layer_title(n, lang), key="w_export_layer")
    suffix = c2.selectbox(tr("data.export_format"), list(data.EXPORT_FORMATS),
                          format_func=data.EXPORT_FORMATS.get, key="w_export_format")
    frame = state.layer(ex_layer) if ex_layer in names else None
    if frame is None or len(frame) == 0:
        st.caption(tr("data.export_empty"))
    elif not can(account, "export"):
        st.caption(can(account, "export").message(lang))
    else:
        st.caption(tr("data.rows", rows=fmt_int(len(frame))))
        fname = f"{ex_layer}{suffix}"
        st.download_button(tr("data.download", file=fname),
                           data=lambda: (state.locked(record_download, store, account, ex_layer,
                                                      rows=len(frame), note=fname),
                                         data.export_bytes(frame, ex_layer, suffix))[1],
                           file_name=fname, key="w_download", type="primary")

with st.expander(tr("data.layer_counts")):
    counts = {data.layer_title(n, lang): fmt_int(state.locked(store.count, n))
              for n in state.locked(store.layer_names)}
    st.dataframe(counts, width="stretch")
with st.expander(tr("data.audit")):
    log = state.locked(store.audit_log, limit=20)
    st.dataframe(log.assign(actor=log["actor"].map(mask_name, na_action="ignore")),
                 hide_index=True, width="stretch")
