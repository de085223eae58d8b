"""Real-browser test of the 巡查 patrol page: table, map layers, replay slider, screenshots.

It runs on the session's shared server (``conftest.py``) over the small-demo GeoPackage.
Screenshots at 1920x1080 go to ``test-artifacts/``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from layers.store import open_store
from tests.e2e._helpers import MAP, TIMEOUT_MS, is_local, settle, shot

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def community(demo_gpkg: Path) -> dict[str, str]:
    """The first community of the small demo (a few of its buildings go unvisited) and its sub-district."""
    s = open_store(str(demo_gpkg))
    try:
        coms = s.read("communities", columns=["code", "subdistrict_code"]).sort_values("code")
    finally:
        s.close()
    return {"sub": str(coms["subdistrict_code"].iloc[0]), "com": str(coms["code"].iloc[0])}


def _count(locator, at_least: int) -> int:
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while locator.count() < at_least and time.monotonic() < deadline:
        time.sleep(0.25)
    return locator.count()


def test_patrol_page_table_map_and_replay(page, server, community, artifacts_dir) -> None:
    page.goto(server + "/patrol")
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
    shot(page, artifacts_dir, "e2e-patrol-district.png")

    query = "&".join(f"{k}={v}" for k, v in community.items())
    page.goto(server + "/patrol?" + query)
    page.get_by_text("本周无人巡查的楼栋").wait_for(timeout=TIMEOUT_MS)
    settle(page)
    frame = page.frame_locator(MAP).first
    assert _count(frame.locator("path.gp-position"), 1) == 1
    assert _count(frame.locator("path.gp-scope"), 5) >= 5  # the community's grids
    assert _count(frame.locator("path.gp-stale-bld"), 1) >= 1  # buildings nobody visited
    now_path = frame.locator("path.gp-track-now").first
    before = now_path.get_attribute("d")
    status = page.get_by_text("已走").first.inner_text()
    frame.locator("body").evaluate("() => { window.__gp_old = true; }")
    shot(page, artifacts_dir, "e2e-patrol-community.png")

    thumb = page.locator("[data-testid='stSlider'] input[type='range']").first
    thumb.focus()
    for _ in range(4):
        page.keyboard.press("PageDown")  # back in time
    settle(page)
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
    shot(page, artifacts_dir, "e2e-patrol-replay.png")

    # the play button runs the replay from the start of the day, frame by frame, on the same map
    page.get_by_role("button", name="播放").click()
    page.get_by_role("button", name="暂停").wait_for(timeout=TIMEOUT_MS)
    seen = set()
    deadline = time.monotonic() + 30
    while len(seen) < 3 and time.monotonic() < deadline:
        seen.add(page.get_by_text("已走").first.inner_text())
        time.sleep(0.4)
    assert len(seen) >= 3, f"the replay did not advance: {seen}"
    assert page.frame_locator(MAP).first.locator("body").evaluate("() => window.__gp_old === true")
    page.get_by_role("button", name="暂停").click()
    page.get_by_role("button", name="播放").wait_for(timeout=TIMEOUT_MS)

    page.get_by_text("轨迹清洗：剔除了什么、为什么").scroll_into_view_if_needed()  # not the wheel: it zooms the map
    settle(page)
    assert page.get_by_text("栋楼在截至 2026-11-19 的 7 天内无人到访").count() == 1
    shot(page, artifacts_dir, "e2e-patrol-tables.png")
    assert not [u for u in page.requests if not is_local(u, server)]
