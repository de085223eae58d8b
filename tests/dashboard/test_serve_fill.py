"""``gridpulse serve`` on an empty store: the demo's world first, its history in the background.

Real GeoPackage files, the real demo generator (small preset), the real dashboard under AppTest.
"""

from __future__ import annotations

import io

import pytest

from data.demo import HISTORY_LAYERS, demo_anchor, generate, is_demo, is_filling
from gridpulse.commands import serve
from layers.schema import SCHEMAS
from layers.store import open_store


def _start(url: str) -> serve.DemoFill:
    fill = serve.start_demo(url, preset="small", lang="en", anchor="2026-11-20 16:00",
                            out=io.StringIO())
    assert fill is not None
    return fill


def test_world_first_then_history_in_one_replacing_write(tmp_path) -> None:
    url = str(tmp_path / "fresh.gpkg")
    fill = _start(url)
    with open_store(url) as s:
        assert is_demo(s) and is_filling(s)
        assert set(s.layer_names()) == set(SCHEMAS) - set(HISTORY_LAYERS)
        assert s.count("grids") == 41
        from layers import accounts  # an account made meanwhile (serve makes the demo's) stays

        accounts.create_account(s, "early", "early-password-1", role="admin", actor="tests")
    assert fill.finish() and fill.done.is_set() and fill.error is None
    assert "complete" in fill.out.getvalue()
    full = generate("small", anchor=fill.anchor.to_pydatetime())
    with open_store(url) as s:
        assert is_demo(s) and not is_filling(s)
        assert {name: s.count(name) for name in SCHEMAS} == {k: len(v) for k, v in full.items()}
        assert demo_anchor(s) == fill.anchor
        accounts.get_account(s, "early")
    # a second start finds the data and writes nothing
    out = io.StringIO()
    assert serve.start_demo(url, preset="small", lang="en", out=out) is None
    assert "already holds data" in out.getvalue()


def test_a_change_made_while_filling_is_kept(tmp_path) -> None:
    """Someone replaced the facilities before the history was in: only the history is written."""
    url = str(tmp_path / "fresh.gpkg")
    fill = _start(url)
    with open_store(url) as s:
        fac = s.read("facilities").head(3)
        s.write({"facilities": fac}, mode="replace", actor="planner", note="three left")
        assert serve.changed_since_fill(s)
    assert fill.finish()
    with open_store(url) as s:
        assert s.count("facilities") == 3
        assert s.count("patrol_points") > 0 and not is_filling(s)


def test_an_unfinished_fill_is_loaded_again(tmp_path) -> None:
    """A serve stopped before the history was in: the next one starts the demo over."""
    url = str(tmp_path / "fresh.gpkg")
    _start(url)
    with open_store(url) as s:
        assert serve.needs_demo(s) and not serve.changed_since_fill(s)
    fill = _start(url)
    assert fill.finish()
    with open_store(url) as s:
        assert not serve.needs_demo(s)


def test_a_failed_fill_says_so_and_how_to_fix(tmp_path) -> None:
    url = str(tmp_path / "fresh.gpkg")
    fill = _start(url)
    fill.preset = "no-such-preset"
    assert not fill.finish()
    assert fill.error is not None and fill.done.is_set()
    assert "run gridpulse serve again" in fill.out.getvalue()


@pytest.fixture(scope="module")
def filling_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = str(tmp_path_factory.mktemp("filling") / "fresh.gpkg")
    _start(url)
    return url


@pytest.mark.parametrize("page", ["explorer", "wall", "patrol"])
def test_every_page_says_the_demo_is_generating(filling_store, monkeypatch, page) -> None:
    from streamlit.testing.v1 import AppTest

    from tests.dashboard.conftest import APP

    for k in ("GRIDPULSE_STORE", "GRIDPULSE_BASEMAP", "GRIDPULSE_LANG"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("GRIDPULSE_STORE", filling_store)
    monkeypatch.setenv("GRIDPULSE_BASEMAP", "none")
    at = AppTest.from_file(str(APP), default_timeout=90)
    if page != "explorer":
        at.switch_page(f"views/{page}.py")
    at.run()
    assert not at.exception
    html = " ".join(m.value for m in at.markdown)
    assert "gp-demo-filling" in html and "演示数据生成中" in html
