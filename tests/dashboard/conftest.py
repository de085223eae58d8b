"""A GeoPackage with the SMALL demo district, shared by the dashboard tests, and an AppTest."""

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


@pytest.fixture()
def app(env: str):
    """An AppTest of the dashboard entry point (not yet run)."""
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(str(APP), default_timeout=90)
