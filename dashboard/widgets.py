"""Widgets every page shares: language switch, basemap choice, demo label, drill-down selectors.

Each widget is bound to one field of the view (:mod:`dashboard.state`): its value is set from
the view before it is drawn and written back by its ``on_change`` callback, so the view, the
widgets and the link in the address bar always agree, also after a map click changed the view.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import _html, maps, state
from layers.i18n import t


class Translator:
    """Labels of one catalogue area (``<area>.<key>``) in the session's language.

    ``tr = translator("dashboard")`` makes ``tr("store_empty")`` mean
    ``t("dashboard.store_empty", state.lang())``, and ``tr.fn("metric.")`` a ``format_func``.
    """

    def __init__(self, area: str) -> None:
        self.area = area

    def __call__(self, key: str, **params: Any) -> str:
        """The label ``<area>.<key>`` in the session's language, filled with ``params``."""
        return t(f"{self.area}.{key}", state.lang(), **params)

    def fn(self, prefix: str) -> Callable[[str], str]:
        """A ``format_func`` translating ``<area>.<prefix><value>`` in the language of *this* run.

        The language is bound now: a format function may be called outside the script run
        (AppTest does), where the session's language cannot be read.
        """
        lang = state.lang()
        area = self.area
        return lambda v: t(f"{area}.{prefix}{v}", lang)


def translator(area: str) -> Translator:
    """The one translation helper of the pages: labels of catalogue ``area`` (see :class:`Translator`)."""
    return Translator(area)


#: A dashboard label in the session's language (``key`` without the ``dashboard.`` prefix).
tr = translator("dashboard")
#: A ``format_func`` for ``dashboard.<prefix><value>`` (see :meth:`Translator.fn`).
tr_fn = tr.fn


def _from_widget(field: str, key: str) -> None:
    """``on_change`` callback: copy the widget's value into the view (``None`` keeps it)."""
    value = st.session_state.get(key)
    if value is not None:
        state.set_view(**{field: value})


def bound_select(
    field: str,
    options: Sequence[str],
    *,
    label: str,
    key: str,
    format_func: Callable[[str], str] = str,
    container: Any = st,
    **kw: Any,
) -> str:
    """A selectbox bound to the view field ``field``."""
    current = getattr(state.view(), field)
    opts = list(options)
    if current not in opts:
        current = opts[0] if opts else ""
    st.session_state[key] = current
    return container.selectbox(label, opts, key=key, format_func=format_func,
                               on_change=_from_widget, args=(field, key), **kw)


def language_switch(container: Any = st.sidebar) -> None:
    """中文 / English: every label on every page follows it."""
    key = "w_lang"
    st.session_state[key] = state.lang()
    container.segmented_control(
        t("dashboard.language", state.lang()), ["zh", "en"], key=key,
        format_func=lambda v: "中文" if v == "zh" else "English",
        on_change=_from_widget, args=("lang", key), selection_mode="single",
    )


def basemap_select(container: Any = st.sidebar) -> None:
    """Basemap choice among those this installation can draw."""
    options = maps.available_basemaps(state.settings())
    cfg = state.map_config()
    key = "w_basemap"
    st.session_state[key] = cfg.basemap if cfg.basemap in options else options[-1]
    container.selectbox(tr("basemap"), options, key=key,
                        format_func=tr_fn("basemaps."),
                        on_change=_from_widget, args=("basemap", key))
    if state.settings().offline:
        container.caption(tr("offline_note"))


def demo_label(*, dark: bool = False) -> None:
    """The "synthetic demo data" label, shown on every page while the demo is loaded."""
    if not state.demo_loaded():
        return
    _notice("gp-demo-label", f"⚠ {tr('demo_label')}",
            ("#ffd479", "rgba(255,196,0,0.12)", "#ffb300") if dark else ("#7a4b00", "#fff4d6", "#f0b429"),
            "padding:4px 12px;font-size:0.95rem;display:inline-block")


def _notice(testid: str, html_text: str, colours: tuple[str, str, str], style: str, *,
            role: str = "") -> None:
    """A coloured notice box: ``colours`` = (text, background, border); ``html_text`` is HTML
    (catalogue text, or user text through ``_html.text``)."""
    fg, bg, bd = colours
    role_attr = f" role='{role}'" if role else ""
    st.markdown(
        f"<div data-testid='{testid}'{role_attr} style='background:{bg};color:{fg};"
        f"border:1px solid {bd};border-radius:6px;{style}'>{html_text}</div>",
        unsafe_allow_html=True,
    )


def demo_filling_banner(*, dark: bool = False) -> None:
    """While ``gridpulse serve`` writes the demo's history in the background: say so, and
    rerun the page when the store changes (the history is in)."""
    if not state.demo_filling():
        return
    _notice("gp-demo-filling", _html.text(t("startup.banner.filling", state.lang())),
            ("#9fd3ff", "rgba(0,120,255,0.14)", "#3d8bfd") if dark else ("#0b3d91", "#e7f1ff", "#3d8bfd"),
            "padding:6px 12px;margin:4px 0;font-size:1rem", role="status")
    state.follow_changes(every_s=3.0)


def page_heading(title: str) -> None:
    """Write a page's ``## title`` heading; on an empty store say so and stop the page.

    ``title`` is already translated (plain text, rendered as Markdown by Streamlit)."""
    st.markdown(f"## {title}")
    if not state.has_data():
        st.info(tr("store_empty"))
        st.stop()


def panel(heading: str, *, hint: str | None = None) -> bool:
    """Write a panel's ``####`` heading; with ``hint`` (what to do while there is nothing to show)
    write the hint as a caption and return False, else return True.

    ``if widgets.panel(tp("x.heading"), hint=tp("x.none") if pick is None else None): ...``
    (texts already translated; user data in them through ``_html.md``)."""
    st.markdown(f"#### {heading}")
    if hint is not None:
        st.caption(hint)
        return False
    return True


def admin_names() -> dict[str, str]:
    """Code → name for sub-districts, communities and grids (names are Chinese in the data)."""
    out: dict[str, str] = {}
    for name in ("districts", "subdistricts", "communities", "grids"):
        df = state.layer(name, ["code", "name"])
        out.update(zip(df["code"].astype(str), df["name"].astype(str), strict=False))
    return out


def drilldown_selectors(container: Any = st.sidebar) -> None:
    """district → sub-district → community → grid, bound to the view."""
    v = state.view()
    names = admin_names()
    districts = state.layer("districts", ["code", "name"])
    if len(districts):
        container.markdown(f"**{tr('level.district')}**: {_html.md(districts['name'].iloc[0])}")
    subs = state.layer("subdistricts", ["code", "name"]).sort_values("code")
    all_label = tr("all")

    def fmt(code: str) -> str:
        return all_label if not code else f"{names.get(code, code)}"

    bound_select("sub", ["", *subs["code"].tolist()], label=tr("level.subdistrict"),
                 key="w_sub", format_func=fmt, container=container)
    coms = state.layer("communities", ["code", "name", "subdistrict_code"])
    if v.sub:
        coms = coms[coms["subdistrict_code"] == v.sub]
    bound_select("com", ["", *sorted(coms["code"].tolist())], label=tr("level.community"),
                 key="w_com", format_func=fmt, container=container,
                 disabled=not v.sub)
    grids = state.layer("grids", ["code", "name", "community_code", "kind"])
    if v.com:
        grids = grids[grids["community_code"] == v.com]
    else:
        grids = grids.iloc[0:0]
    bound_select("grid", ["", *sorted(grids["code"].tolist())], label=tr("level.grid"),
                 key="w_grid", format_func=fmt, container=container, disabled=not v.com)


def select_grid(code: str) -> None:
    """Select a grid, filling its community and sub-district into the view."""
    grids = state.layer("grids", ["code", "community_code"])
    row = grids[grids["code"] == code]
    if row.empty:
        return
    com = str(row["community_code"].iloc[0])
    coms = state.layer("communities", ["code", "subdistrict_code"])
    sub_row = coms[coms["code"] == com]
    sub = str(sub_row["subdistrict_code"].iloc[0]) if len(sub_row) else ""
    state.set_view(sub=sub, com=com, grid=code)


def search_box(container: Any = st.sidebar) -> None:
    """Search grids by code or name; one match selects it, several offer a choice."""
    query = container.text_input(tr("explorer.search"), key="w_search").strip()
    if not query:
        return
    grids = state.layer("grids", ["code", "name"])
    hit = grids[grids["code"].str.contains(query, regex=False)
                | grids["name"].str.contains(query, regex=False, case=False)]
    if hit.empty:
        container.caption(tr("explorer.search_none", query=_html.md(query)))
        return
    hit = hit.sort_values("code").head(50)
    if len(hit) == 1:
        code = str(hit["code"].iloc[0])
        if state.view().grid != code and st.session_state.get("w_search_done") != query:
            st.session_state["w_search_done"] = query
            select_grid(code)
            st.rerun()
        return
    labels = {str(c): f"{n} · {c}" for c, n in zip(hit["code"], hit["name"], strict=True)}
    pick = container.selectbox(tr("explorer.search_pick"), ["", *labels], key="w_search_pick",
                               format_func=lambda c: labels.get(c, "—"))
    if pick and pick != state.view().grid and st.session_state.get("w_search_done") != pick:
        st.session_state["w_search_done"] = pick
        select_grid(pick)
        st.rerun()


def layer_toggles(container: Any = st.sidebar) -> tuple[str, ...]:
    """One checkbox per layer, bound to ``view.layers``."""
    v = state.view()
    container.markdown(f"**{tr('layer.layers')}**")
    names = {"sub": "layer.subdistricts", "com": "layer.communities",
             "comp": "layer.comprehensive", "ded": "layer.dedicated", "inc": "layer.incidents"}
    for k in state.LAYER_KEYS:
        key = f"w_layer_{k}"
        st.session_state[key] = k in v.layers

        def cb(k: str = k, key: str = key) -> None:
            cur = [x for x in state.view().layers if x != k]
            if st.session_state[key]:
                cur.append(k)
            state.set_view(layers=tuple(x for x in state.LAYER_KEYS if x in cur))

        container.checkbox(tr(names[k]), key=key, on_change=cb)
    return state.view().layers


def fmt_int(x: Any) -> str:
    """``12,345`` (or ``—`` for missing)."""
    if x is None or (isinstance(x, float) and pd.isna(x)) or x is pd.NA:
        return "—"
    return f"{int(round(float(x))):,}"


def _finite(x: Any) -> float | None:
    """``x`` as a finite float, or None (missing, not a number, inf)."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None


def fmt_pct(x: Any) -> str:
    """``87.5%`` for a share of 0.875 (``—`` for missing)."""
    v = _finite(x)
    return "—" if v is None else f"{v * 100:.1f}%"


def fmt_hours(x: Any) -> str:
    """``12.5`` hours (``—`` for missing)."""
    v = _finite(x)
    return "—" if v is None else f"{v:,.1f}"


def dark_css(*, hide_sidebar: bool = True) -> None:
    """The wall display's theme: dark, large type, no chrome."""
    css = """
    <style>
    .stApp, [data-testid="stAppViewContainer"], [data-testid="stHeader"] {background:#070d18 !important;color:#e6edf7;}
    [data-testid="stMainBlockContainer"], .block-container {padding-top:0.8rem !important;padding-bottom:0 !important;max-width:100% !important;}
    [data-testid="stHeader"] {display:none;}
    [data-testid="stToolbar"], [data-testid="stDecoration"], [data-testid="stStatusWidget"] {display:none !important;}
    .stApp h1, .stApp h2, .stApp h3, .stApp p, .stApp span, .stApp div {color:#e6edf7;}
    """
    if hide_sidebar:
        css += """
        [data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stExpandSidebarButton"] {display:none !important;}
        """
    css += "</style>"
    st.markdown(css, unsafe_allow_html=True)


def streamlit_texts_css() -> None:
    """Streamlit's own English, in the session's language.

    Streamlit 1.67 has no translations: the file uploader's button ("Upload") and size line
    ("200MB per file • GEOJSON, …", a second copy of the formats the label already lists) and
    the empty dropdown ("No results") are fixed English strings. CSS hides them and draws the
    catalogue's text in their place (``content`` is a CSS string: only catalogue text, quoted).
    "Select all" is switched off where it appears (``select_all=False``), and selectboxes that can
    be empty get a ``placeholder``.
    """
    limit_mb = int(st.get_option("server.maxUploadSize") or 200)

    ux = translator("ux.streamlit")

    def css_text(key: str, **params: Any) -> str:
        return json.dumps(ux(key, **params), ensure_ascii=False)  # a CSS string

    st.markdown(
        "<style>"
        "[data-testid='stFileUploaderDropzone'] button [data-testid='stMarkdownContainer'] p{font-size:0}"
        "[data-testid='stFileUploaderDropzone'] button [data-testid='stMarkdownContainer'] p::after"
        f"{{content:{css_text('upload')};font-size:.875rem}}"
        "[data-testid='stFileUploaderDropzoneInstructions'] span{font-size:0}"
        "[data-testid='stFileUploaderDropzoneInstructions'] span::after"
        f"{{content:{css_text('per_file', mb=limit_mb)};font-size:.8rem}}"
        "[role='listbox'][data-empty='true'] [role='option'] > span{font-size:0}"
        f"[role='listbox'][data-empty='true'] [role='option'] > span::after{{content:{css_text('no_results')};"
        "font-size:.875rem}"
        "</style>",
        unsafe_allow_html=True,
    )
