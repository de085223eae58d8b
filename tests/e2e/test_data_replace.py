"""The Data page in a browser: a case file is appended by default; replacing shows what goes."""

from __future__ import annotations

import re
import time

import pytest

from tests.e2e._helpers import MAP, TIMEOUT_MS, choose, shot

pytestmark = pytest.mark.e2e


def test_a_case_upload_appends_by_default_and_a_replace_shows_the_orphans(
        page, server, demo_gpkg, tmp_path, artifacts_dir) -> None:
    from layers.schema import SCHEMAS
    from layers.store import open_store

    s = open_store(str(demo_gpkg))
    before = {n: s.count(n) for n in ("incidents", "incident_events")}
    inc = s.read("incidents", limit=20)
    cols = [c for c in SCHEMAS["incidents"].columns if c not in ("reporter_name", "reporter_phone")]
    df = inc[cols].copy()
    df["经度"], df["纬度"] = inc.geometry.x, inc.geometry.y
    df.loc[df.index[0], "address"] = None  # a missing value: shown as a blank cell
    path = tmp_path / "事件.csv"
    df.to_csv(path, index=False, encoding="utf-8")

    page.goto(server + "/data")
    page.get_by_text("数据导入与导出").first.wait_for(timeout=TIMEOUT_MS)
    choose(page, page.get_by_label("导入到图层"), f"{SCHEMAS['incidents'].title_zh}（incidents）")
    page.locator("[data-testid='stFileUploader'] input[type=file]").set_input_files(str(path))
    # reading + validating against the store's 8,000 cases: slow on a cold, busy server
    page.get_by_text("校验报告").first.wait_for(timeout=3 * TIMEOUT_MS)
    # a case file is appended unless replacing is chosen
    page.get_by_text("校验通过").first.wait_for(timeout=TIMEOUT_MS)
    append = page.get_by_role("radio", name="追加到图层")
    append.wait_for(state="attached", timeout=TIMEOUT_MS)
    assert append.is_checked()
    assert page.get_by_text("替换将删除的内容").count() == 0
    # the preview opens on the cases, each a visible dot
    frame = page.frame_locator(MAP)
    dots = frame.locator(".leaflet-overlay-pane path.leaflet-interactive")
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while dots.count() < 20 and time.monotonic() < deadline:
        time.sleep(0.25)
    assert dots.count() == 20
    scale_line = frame.locator(".leaflet-control-scale-line").first
    scale_line.wait_for(timeout=TIMEOUT_MS)
    scale = scale_line.inner_text()
    value, unit = re.fullmatch(r"(\d+)\s*(m|km)", scale.strip()).groups()
    # fitted to the cases (a district ~8 km across), not opened at a 200 km provincial scale
    assert int(value) * (1000 if unit == "km" else 1) <= 10_000, scale
    shot(page, artifacts_dir, "e2e-data-append-default.png")

    page.get_by_text("替换整个图层").click()
    page.get_by_text("替换将删除的内容").wait_for(timeout=TIMEOUT_MS)
    warning = page.get_by_text(re.compile("指向不存在的对象")).first
    warning.wait_for(timeout=TIMEOUT_MS)
    assert re.search(r"\d[\d,]* 行", warning.inner_text())
    assert page.get_by_role("radio", name="不写入（改用追加或修正文件）").is_checked()
    shot(page, artifacts_dir, "e2e-data-replace-impact.png")
    page.get_by_role("button", name="写入数据库").click()
    page.get_by_text("请先选择如何处理这些记录，或改用追加").wait_for(timeout=TIMEOUT_MS)
    page.get_by_role("button", name="取消").click()
    page.get_by_text("已取消，数据库未改变").wait_for(timeout=TIMEOUT_MS)
    assert {n: s.count(n) for n in before} == before
    s.close()
