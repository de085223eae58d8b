"""A GeoPackage with the SMALL demo district, shared by the dashboard tests, and an AppTest.

Every page needs a signed-in account: each AppTest of these tests (the ``app`` fixture, and
any a test builds itself) starts signed in as the test admin of the store it runs against
(:func:`signed_in_apptests`). A test that wants another account sets ``gp_token`` in the
AppTest's session state before the first run (``""`` for an anonymous visitor).
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "dashboard" / "app.py"


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Path of a GeoPackage holding the small demo district (built once per session)."""
    import io

    from gridpulse.commands.serve import ensure_demo

    path = tmp_path_factory.mktemp("dash") / "demo.gpkg"
    ensure_demo(str(path), preset="small", lang="en", progress=lambda *a: None, out=io.StringIO())
    return str(path)


@pytest.fixture()
def env(monkeypatch: pytest.MonkeyPatch, demo_store: str) -> str:
    """Only the settings the dashboard tests want: the demo store, no basemap."""
    import os

    for k in list(os.environ):
        if k.startswith("GRIDPULSE_") and k != "GRIDPULSE_TEST_PG":
            monkeypatch.delenv(k)
    monkeypatch.setenv("GRIDPULSE_STORE", demo_store)
    monkeypatch.setenv("GRIDPULSE_BASEMAP", "none")
    return demo_store


@pytest.fixture(autouse=True)
def signed_in_apptests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before an AppTest's first run, sign it in as the test admin of ``GRIDPULSE_STORE``."""
    import os

    from streamlit.testing.v1 import AppTest

    from tests._signin import session_token

    real_run = AppTest.run

    def run(self, *args, **kwargs):
        url = os.environ.get("GRIDPULSE_STORE")
        if url and not getattr(self, "_gp_signed", False):
            self._gp_signed = True
            if "gp_token" not in self.session_state:
                try:
                    self.session_state["gp_token"] = session_token(url)
                except Exception:  # noqa: BLE001 - a broken store: the app shows its own error
                    self.session_state["gp_token"] = ""
        return real_run(self, *args, **kwargs)

    monkeypatch.setattr(AppTest, "run", run)


@pytest.fixture()
def app(env: str):
    """An AppTest of the dashboard entry point (not yet run)."""
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(str(APP), default_timeout=90)
