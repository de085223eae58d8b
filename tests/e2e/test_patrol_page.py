"""Real-browser test of the 巡查 patrol page: table, map layers, replay slider, screenshots.

It runs on the session's shared server (``conftest.py``) once ``dashboard/app.py`` lists the
page. Until then it starts a second server on a copy of the shell whose ``PAGES`` has the page
appended (the same source; ``static/`` linked beside it for the local Leaflet assets), against
the same small-demo GeoPackage. Screenshots at 1920x1080 go to ``test-artifacts/``.
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

from layers.store import open_store

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
MAP = "iframe[title='streamlit_folium.st_folium']"
TIMEOUT_MS = 60_000
ENTRY = ("views/patrol.py", "patrol", "patrol_page.title", ":material/directions_walk:")


def _shell_with_page(tmp: Path) -> Path:
    src = (ROOT / "dashboard" / "app.py").read_text(encoding="utf-8")
    src = src.replace("Path(__file__).resolve().parent.parent", f"Path({str(ROOT)!r})")
    src = src.replace("_HERE = Path(__file__).resolve().parent", f"_HERE = Path({str(ROOT / 'dashboard')!r})")
    src = src.replace("\n]\n\n", f"\n    {ENTRY!r},\n]\n\n", 1)
    assert repr(ENTRY) in src, "could not add the patrol page to PAGES"
    (tmp / "static").symlink_to(ROOT / "dashboard" / "static")
    app = tmp / "app.py"
    app.write_text(src, encoding="utf-8")
    return app


@pytest.fixture(scope="module")
def site(request, demo_gpkg: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a server whose navigation has the patrol page."""
    if f'"{ENTRY[0]}"' in (ROOT / "dashboard" / "app.py").read_text(encoding="utf-8"):
        yield request.getfixturevalue("server")
        return
    from gridpulse.commands.serve import streamlit_command

    tmp = tmp_path_factory.mktemp("patrol_shell")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDPULSE_")}
    env.update(GRIDPULSE_STORE=str(demo_gpkg), GRIDPULSE_OFFLINE="1", GRIDPULSE_BASEMAP="none",
               HOME=str(tmp_path_factory.mktemp("home")))
    log = open(tmp / "streamlit.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(streamlit_command(port=port, address="127.0.0.1", app=_shell_with_page(tmp)),
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.3)
    if proc.poll() is not None:
        pytest.fail(f"streamlit exited with {proc.returncode}; see {log.name}")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def community(demo_gpkg: Path) -> dict[str, str]:
    """The first community of the small demo (a few of its buildings go unvisited) and its sub-district."""
    s = open_store(str(demo_gpkg))
    try:
        coms = s.read("communities", columns=["code", "subdistrict_code"]).sort_values("code")
    finally:
        s.close()
    return {"sub": str(coms["subdistrict_code"].iloc[0]), "com": str(coms["code"].iloc[0])}


def _settle(page, *, quiet_s: float = 1.0) -> None:
    """Wait until Streamlit has finished the rerun: nothing stale, and no element added for ``quiet_s``."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    last, calm_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        n = page.locator("[data-testid='stElementContainer']").count()
        busy = page.locator("[data-stale='true']").count() > 0
        if busy or n != last:
            last, calm_since = n, time.monotonic()
        elif time.monotonic() - calm_since >= quiet_s:
            return
        time.sleep(0.15)


def _count(locator, at_least: int) -> int:
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while locator.count() < at_least and time.monotonic() < deadline:
        time.sleep(0.25)
    return locator.count()


def _shot(page, artifacts_dir: Path, name: str) -> None:
    """Save a screenshot once two in a row agree."""
    _settle(page)
    page.evaluate("document.fonts.ready")
    frames = page.locator(MAP)
    for i in range(frames.count()):  # headless Chromium may leave part of a map frame unpainted
        frames.nth(i).screenshot()
    prev = page.screenshot()
    for _ in range(8):
        time.sleep(0.7)
        img = page.screenshot()
        if img == prev:
            break
        prev = img
    (artifacts_dir / name).write_bytes(prev)


def _local(url: str, server: str) -> bool:
    return url.startswith((server, "data:", "blob:", "about:", "chrome-extension:"))


def test_patrol_page_table_map_and_replay(page, site, community, artifacts_dir) -> None:
    page.goto(site + "/patrol")
    page.get_by_text("网格员巡查").first.wait_for(timeout=TIMEOUT_MS)
    page.get_by_text("4小时在格达标情况").wait_for(timeout=TIMEOUT_MS)
    grid = page.locator("[data-testid='stDataFrame']").first
    grid.wait_for(timeout=TIMEOUT_MS)
    heads = grid.locator("th[role='columnheader']")  # the grid's accessible table
    assert _count(heads, 6) >= 6
    assert heads.all_inner_texts()[:6] == ["网格", "人员编号", "网格员", "类型", "岗位", "本网格内（小时）"]
    assert int(grid.locator("table[role='grid']").get_attribute("aria-rowcount")) == 83  # 82 workers
    frame = page.frame_locator(MAP).first
    assert _count(frame.locator("path.gp-own"), 1) == 1  # the worker's grid outline
    assert _count(frame.locator("path.gp-track-full"), 1) >= 1
    assert _count(frame.locator("path.gp-cells"), 20) >= 20  # H3 cells by staleness
    frame.get_by_text("本周无到访").wait_for(timeout=TIMEOUT_MS)  # legend, in Chinese
    _shot(page, artifacts_dir, "e2e-patrol-district.png")

    query = "&".join(f"{k}={v}" for k, v in community.items())
    page.goto(site + "/patrol?" + query)
    page.get_by_text("本周无人巡查的楼栋").wait_for(timeout=TIMEOUT_MS)
    _settle(page)
    frame = page.frame_locator(MAP).first
    assert _count(frame.locator("path.gp-position"), 1) == 1
    assert _count(frame.locator("path.gp-scope"), 5) >= 5  # the community's grids
    assert _count(frame.locator("path.gp-stale-bld"), 1) >= 1  # buildings nobody visited
    now_path = frame.locator("path.gp-track-now").first
    before = now_path.get_attribute("d")
    status = page.get_by_text("已走").first.inner_text()
    frame.locator("body").evaluate("() => { window.__gp_old = true; }")
    _shot(page, artifacts_dir, "e2e-patrol-community.png")

    thumb = page.locator("[data-testid='stSlider'] input[type='range']").first
    thumb.focus()
    for _ in range(4):
        page.keyboard.press("PageDown")  # back in time
    _settle(page)
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while page.get_by_text("已走").first.inner_text() == status and time.monotonic() < deadline:
        time.sleep(0.25)
    assert page.get_by_text("已走").first.inner_text() != status
    frame = page.frame_locator(MAP).first
    assert frame.locator("body").evaluate("() => window.__gp_old === true"), "the map was reloaded"
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while frame.locator("path.gp-track-now").first.get_attribute("d") == before and time.monotonic() < deadline:
        time.sleep(0.25)
    assert frame.locator("path.gp-track-now").first.get_attribute("d") != before
    _shot(page, artifacts_dir, "e2e-patrol-replay.png")

    page.get_by_text("轨迹清洗：剔除了什么、为什么").scroll_into_view_if_needed()  # not the wheel: it zooms the map
    _settle(page)
    assert page.get_by_text("栋楼在截至 2026-11-19 的 7 天内无人到访").count() == 1
    _shot(page, artifacts_dir, "e2e-patrol-tables.png")
    assert not [u for u in page.requests if not _local(u, site)]
