"""Real-browser test of the explorer's date picker (any date's boundaries) and the planner's
plan-version history, on a private copy of the small demo with two dated plan versions.

v1 records today's grids as in force since 2026-06-01; v2 is history imported afterwards, in
force from 2026-03-01 until 2026-06-01, when two grids of 兰石社区 were one. Screenshots go to
``test-artifacts/``.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pytest

from tests.e2e._helpers import MAP, TIMEOUT_MS, settle, shot, streamlit_server

pytestmark = pytest.mark.e2e

SUB, COM = "320106001", "320106001001"


@pytest.fixture(scope="module")
def dated(demo_gpkg: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    from layers import plans
    from layers.permissions import Account
    from layers.store import open_store

    path = tmp_path_factory.mktemp("dated") / "demo.gpkg"
    shutil.copy(demo_gpkg, path)
    admin = Account("planner1", role="planner")
    with open_store(str(path)) as s:
        live = s.read("grids")
        plans.save_plan(s, admin, plans.make_plan(s, live), effective="2026-06-01", confirm=True,
                        note="现行网格")
        com = live[(live["community_code"] == COM) & (live["kind"] == "comprehensive")]
        keep, gone = sorted(com["code"])[:2]
        merged = live[live["code"] != gone].copy()
        both = live.loc[live["code"].isin([keep, gone]), "geometry"].union_all()
        merged.loc[merged["code"] == keep, "geometry"] = gpd.GeoSeries([both], crs=4326).values
        plans.save_plan(s, admin, plans.make_plan(s, merged), effective="2026-03-01", confirm=True,
                        note="补录：2026年3月的网格")
    with streamlit_server(path, tmp_path_factory.mktemp("dated-server")) as url:
        yield url, path


def _comp_paths(page) -> int:
    loc = page.frame_locator(MAP).first.locator("path.gp-comp")
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while loc.count() == 0 and time.monotonic() < deadline:
        time.sleep(0.25)
    return loc.count()


def test_explorer_date_picker_and_planner_history(browser, dated, artifacts_dir) -> None:
    from dashboard._auth import COOKIE
    from tests._signin import session_token

    url, store = dated
    ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN", signed_in=False)
    ctx.add_cookies([{"name": COOKIE, "value": session_token(store), "url": url}])
    page = ctx.new_page()
    try:
        page.goto(f"{url}/?sub={SUB}&com={COM}")
        page.get_by_text("生效的方案：v1，自 2026-06-01 起").first.wait_for(timeout=TIMEOUT_MS)
        settle(page)
        now = _comp_paths(page)
        assert now >= 2
        # the picker is a react-aria date field: type into its year segment, then leave it
        year = page.locator("[data-testid='stSidebar'] [data-testid='stDateInput'] "
                            "[role='spinbutton'][data-type='year']").first
        year.focus()
        page.keyboard.type("20260401")
        page.keyboard.press("Escape")
        page.get_by_text("网格总览").first.click()
        page.get_by_text("2026-04-01 生效的方案：v2，自 2026-03-01 起，至 2026-06-01").first.wait_for(
            timeout=TIMEOUT_MS)
        settle(page)
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while _comp_paths(page) != now - 1 and time.monotonic() < deadline:
            time.sleep(0.3)
        assert _comp_paths(page) == now - 1  # the two grids that were one are drawn as one
        shot(page, artifacts_dir, "e2e-explorer-date.png")
        # the date is in the link: opening it again shows that date's boundaries
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while "asof=2026-04-01" not in page.url and time.monotonic() < deadline:
            time.sleep(0.25)
        assert "asof=2026-04-01" in page.url, page.url
        page.goto(page.url)
        page.get_by_text("2026-04-01 生效的方案：v2，自 2026-03-01 起，至 2026-06-01").first.wait_for(
            timeout=TIMEOUT_MS)
        settle(page)
        assert _comp_paths(page) == now - 1

        page.goto(f"{url}/planner?sub={SUB}&com={COM}")
        page.get_by_text("保存与版本").first.wait_for(timeout=TIMEOUT_MS)
        settle(page)  # a tab clicked while the first run is still drawing can be redrawn unclicked
        page.get_by_text("保存与版本").first.click()
        page.get_by_text("整体方案版本").first.wait_for(timeout=TIMEOUT_MS)
        settle(page)
        grid = page.locator("[data-testid='stDataFrame']").first
        grid.wait_for(timeout=TIMEOUT_MS)
        shot(page, artifacts_dir, "e2e-planner-history.png")
        assert page.get_by_text("记录的未满足规则").count() >= 1  # the recorded violations, per version
    finally:
        ctx.close()
