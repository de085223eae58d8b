"""One ``streamlit run`` server and one headless Chromium for the whole e2e session.

The server runs ``dashboard/app.py`` on a free localhost port, in offline mode with no basemap
(so the browser needs nothing beyond the server), against a temporary GeoPackage filled with
the SMALL demo preset. Chromium is Debian's (``/usr/bin/chromium``) driven by Playwright.

Every page needs sign-in. Each browser context these tests open (the ``page`` fixture and any
``browser.new_context()``) comes signed in as the test admin: the session cookie of an admin
session created in the demo store through :mod:`layers.accounts` is added to the context.
``browser.new_context(signed_in=False)`` gives an anonymous visitor;
``browser.new_context(token=...)`` another account's session (:func:`tests._signin.session_token`).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]
pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    """Base URL of a running ``streamlit run dashboard/app.py``."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (make test does)")
    from gridpulse.commands.serve import streamlit_command

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDPULSE_")}
    env.update(GRIDPULSE_STORE=str(demo_gpkg), GRIDPULSE_OFFLINE="1", GRIDPULSE_BASEMAP="none",
               GRIDPULSE_WALL_REFRESH_S="5", HOME=str(tmp_path_factory.mktemp("home")))
    cmd = streamlit_command(port=port, address="127.0.0.1")
    log = open(tmp_path_factory.mktemp("log") / "streamlit.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.3)
    else:
        proc.terminate()
        pytest.fail("streamlit did not start within 60 s")
    if proc.poll() is not None:
        pytest.fail(f"streamlit exited with {proc.returncode}; see {log.name}")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


class SignedInBrowser:
    """A Playwright browser whose new contexts carry a session cookie (the test admin's)."""

    def __init__(self, browser: object, server: str, store: Path) -> None:
        self._browser = browser
        self._server = server
        self._store = store

    def new_context(self, *args: object, signed_in: bool = True, token: str | None = None,
                    **kwargs: object) -> object:
        from dashboard._auth import COOKIE
        from tests._signin import session_token

        ctx = self._browser.new_context(*args, **kwargs)  # type: ignore[attr-defined]
        if signed_in or token:
            value = token or session_token(self._store)
            ctx.add_cookies([{"name": COOKIE, "value": value, "url": self._server}])
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
    """Browser tests drive a real Streamlit server on a shared 2-core machine: a step can miss its
    timeout when the machine is loaded. Each e2e test may run up to twice more before it fails;
    a failure that repeats three times is real. Unit and AppTest tests are never re-run."""
    here = Path(__file__).resolve().parent
    for item in items:
        if Path(str(item.fspath)).resolve().parent == here:
            item.add_marker(pytest.mark.flaky(reruns=2, reruns_delay=2))
