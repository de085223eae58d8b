"""GridPulse dashboard entry point: ``streamlit run dashboard/app.py`` (``gridpulse serve`` does it).

The shell: wide layout, the page list (``st.navigation``), the language switch and basemap in
the sidebar, the "synthetic demo data" label on every page, and the view mirrored into the
link. Later pages (incidents, patrols, re-partition) are added to :data:`PAGES`.

Nothing is shown before sign-in: an anonymous visitor gets only the sign-in form, on every
URL (:mod:`dashboard._auth`). A signed-in person gets the pages their role may open
(:func:`layers.permissions.pages`); the wall kiosk gets the wall alone, without the sidebar.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:  # `streamlit run dashboard/app.py` puts only dashboard/ on the path
    sys.path.insert(0, str(_ROOT))

import streamlit as st  # noqa: E402

from dashboard import _auth, state, widgets  # noqa: E402
from dashboard.widgets import tr  # noqa: E402
from layers.i18n import t  # noqa: E402
from layers.permissions import pages as allowed_pages  # noqa: E402

_HERE = Path(__file__).resolve().parent

#: (file under dashboard/, url path, full catalogue key of the title, icon). The first is the
#: default page (served at "/"). Other areas add their pages here with their own title keys.
#: Page files live in ``views/``, not ``pages/``: a ``pages/`` folder beside the entry script
#: switches Streamlit to its legacy multipage mode, which never runs this script.
PAGES: list[tuple[str, str, str, str]] = [
    ("views/explorer.py", "explorer", "dashboard.page.explorer", ":material/grid_view:"),
    ("views/wall.py", "wall", "dashboard.page.wall", ":material/tv:"),
    ("views/incidents.py", "incidents", "incident_pages.page.incidents", ":material/report:"),
    ("views/hotspots.py", "hotspots", "incident_pages.page.hotspots", ":material/local_fire_department:"),
    ("views/patrol.py", "patrol", "patrol_page.title", ":material/directions_walk:"),
    ("views/data.py", "data", "dashboard.page.data", ":material/database:"),
    ("views/planner.py", "planner", "planner_page.title", ":material/edit_location_alt:"),
]


_CSS = """<style>
[data-testid="stMainBlockContainer"], .block-container {padding-top: 2.2rem !important;}
</style>"""


def _unknown_page(known: set[str]) -> str | None:
    """The address a visitor typed when it names no page in ``known``, else None.

    Streamlit would answer it with its own English "Page not found" dialog. The request is
    turned into one for the default page (Streamlit's page intent is cleared before
    ``st.navigation`` resolves it), and the caller says what happened in the visitor's language.
    """
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        pm = get_script_run_ctx().pages_manager  # type: ignore[union-attr]
        name, page_hash = pm.intended_page_name or "", pm.intended_page_script_hash or ""
    except Exception:  # noqa: BLE001 - another Streamlit: its own dialog then
        return None
    if page_hash or not name or name.strip("/") in known:
        return None
    pm.set_script_intent("", "")
    return name.strip("/")


def _say_unknown(name: str | None, *, exists: bool) -> None:
    if name is not None:
        from dashboard import _html

        key = "startup.page.not_allowed" if exists else "startup.page.not_found"
        st.warning(_html.md(t(key, state.lang(), page=f"/{name}")))


def main() -> None:
    """Build the shell and run the chosen page."""
    st.set_page_config(page_title="GridPulse 网格脉搏", page_icon=str(_HERE / "static" / "icon.png"),
                       layout="wide", initial_sidebar_state="expanded")
    state.view()  # read the link once per session
    account = _auth.signed_in()
    if account is None:
        unknown = _unknown_page({url for _, url, _, _ in PAGES})
        # every page is known (so a typed address is kept for after signing in) but none runs
        st.navigation([st.Page(str(_HERE / path), title=t(title, state.lang()), url_path=url,
                               default=i == 0) for i, (path, url, title, _) in enumerate(PAGES)],
                      position="hidden")
        st.markdown(_CSS, unsafe_allow_html=True)
        with st.sidebar:
            widgets.language_switch(st.sidebar)
        _say_unknown(unknown, exists=False)
        _auth.sign_in_form()
        state.sync_query_params()
        return
    _auth.pending_cookie()
    mine = set(allowed_pages(account))
    shown = [p for p in PAGES if p[1] in mine]
    unknown = _unknown_page({"home", "wall"} if account.is_kiosk else {p[1] for p in shown})
    pages = [
        st.Page(str(_HERE / path), title=t(title, state.lang()), url_path=url, icon=icon,
                default=i == 0)
        for i, (path, url, title, icon) in enumerate(shown)
    ]
    if account.is_kiosk:  # the wall alone, at /wall; "/" leads to it too
        path, url, title, icon = next(p for p in PAGES if p[1] == "wall")
        wall_page = st.Page(str(_HERE / path), title=t(title, state.lang()), url_path=url,
                            icon=icon)
        pages = [st.Page(lambda: st.switch_page(wall_page), title=wall_page.title,
                         url_path="home", default=True), wall_page]
    page = st.navigation(pages, position="hidden" if account.is_kiosk else "sidebar")
    wall = page.url_path == "wall"
    if not wall:
        with st.sidebar:
            st.markdown(f"### {tr('title')}")
            _auth.account_box(account, st.sidebar)
            widgets.language_switch(st.sidebar)
            widgets.basemap_select(st.sidebar)
    state.sync_query_params()
    if not wall:
        st.markdown(_CSS, unsafe_allow_html=True)
        widgets.streamlit_texts_css()
        widgets.demo_label()
    widgets.demo_filling_banner(dark=wall)  # while serve writes the demo's history
    _say_unknown(unknown, exists=unknown in {p[1] for p in PAGES})
    page.run()


with state.timed("run"):  # server seconds per script run (benchmarks/cold_start.py)
    main()
