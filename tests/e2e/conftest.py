"""One ``streamlit run`` server and one headless Chromium for the whole e2e session.

The server runs ``dashboard/app.py`` on a free localhost port, in offline mode with no basemap
(so the browser needs nothing beyond the server), against a temporary GeoPackage filled with
the SMALL demo preset. Chromium is Debian's (``/usr/bin/chromium``) driven by Playwright.

Every page needs sign-in. Each browser context these tests open (the ``page`` fixture and any
``browser.new_context()``) comes signed in as the test admin: the session cookie of an admin
session created in the demo store through :mod:`layers.accounts` is added to the context.
``browser.new_context(signed_in=False)`` gives an anonymous visitor;
``browser.new_context(token=...)`` another account's session (:func:`tests._signin.session_token`).

The waits look at Streamlit's own run state (:func:`tests.e2e._helpers.settle`), picks from
select lists go through :func:`tests.e2e._helpers.choose` (settle, type to filter, re-open a list
whose click was lost), and the server is known to be ours before a test starts
(:func:`tests.e2e._helpers.streamlit_server`). One re-run is still allowed (see
:func:`pytest_collection_modifyitems` for why).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e._helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    add_session_cookie,
    free_port,
    streamlit_server,
)

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "ROOT", "SignedInBrowser", "_free_port"]
pytestmark = pytest.mark.e2e
_free_port = free_port  # the name tests/e2e/test_live_intake.py imports


@pytest.fixture(scope="session")
def demo_gpkg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GeoPackage holding the small demo district (what ``gridpulse serve`` would load)."""
    import io

    from gridpulse.commands.serve import ensure_demo

    path = tmp_path_factory.mktemp("e2e") / "demo.gpkg"
    ensure_demo(str(path), preset="small", lang="en", progress=lambda *a: None, out=io.StringIO())
    return path


@pytest.fixture(scope="session")
def server(demo_gpkg: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a running ``streamlit run dashboard/app.py`` (:func:`streamlit_server`)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (make test does)")
    with streamlit_server(demo_gpkg, tmp_path_factory.mktemp("server"),
                          GRIDPULSE_WALL_REFRESH_S="5") as url:
        yield url


class SignedInBrowser:
    """A Playwright browser whose new contexts carry a session cookie (the test admin's)."""

    def __init__(self, browser: object, server: str, store: Path) -> None:
        self._browser = browser
        self._server = server
        self._store = store

    def new_context(self, *args: object, signed_in: bool = True, token: str | None = None,
                    **kwargs: object) -> object:
        ctx = self._browser.new_context(*args, **kwargs)  # type: ignore[attr-defined]
        if signed_in or token:
            add_session_cookie(ctx, self._server, self._store, token=token)
        return ctx

    def __getattr__(self, name: str) -> object:
        return getattr(self._browser, name)


@pytest.fixture(scope="session")
def raw_browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def browser(raw_browser, server, demo_gpkg) -> SignedInBrowser:
    """Headless Chromium; its contexts are signed in as the test admin unless asked not to be."""
    return SignedInBrowser(raw_browser, server, demo_gpkg)


@pytest.fixture()
def page(browser, server) -> Iterator[object]:
    """A fresh 1920x1080 page, signed in as the test admin, that records every request it makes."""
    ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    pg = ctx.new_page()
    pg.requests = []  # type: ignore[attr-defined]
    ctx.on("request", lambda r: pg.requests.append(r.url))  # type: ignore[attr-defined]
    yield pg
    ctx.close()



def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests drive a real Streamlit server on a shared 2-core machine. The waits now follow
    real conditions (server log + health, Streamlit's run state, no stale element), which removed
    the known causes of flakiness; one re-run stays as a safety net because a step can still miss
    its time budget when the machine is loaded (the live-intake tests assert a 10 s budget). A
    failure that repeats is real. Unit and AppTest tests are never re-run.

    Issue 16: two full runs with re-runs disabled, at a load average of 25-29 on 2 cores, were not
    clean (test_auth's scoped-account tests, the case upload, the hostile wall), so the re-run
    stays; the one failure examined was a page that did not draw within ``TIMEOUT_MS`` (120 s),
    not a lost click or a wrong map fit. Drop it only when two such runs are clean."""
    here = Path(__file__).resolve().parent
    for item in items:
        if Path(str(item.fspath)).resolve().parent == here:
            item.add_marker(pytest.mark.flaky(reruns=1, reruns_delay=2))
