"""Real-browser tests of the incident pages (事件 case board, 热点 hotspots).

They run on the session's shared server (``conftest.py``) over the small-demo GeoPackage.
Screenshots at 1920x1080 go to ``test-artifacts/``.
"""

from __future__ import annotations

import re
import time

import pytest

from layers.store import open_store
from tests.e2e._helpers import MAP, TIMEOUT_MS, choose, is_local, settle, shot

pytestmark = pytest.mark.e2e


def _map_paths(page, *, at_least: int = 1, frame_index: int = 0):
    """Leaflet paths drawn in a map frame (waits until ``at_least`` are there)."""
    frame = page.frame_locator(MAP).nth(frame_index) if frame_index else page.frame_locator(MAP).first
    paths = frame.locator(".leaflet-overlay-pane path")
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while paths.count() < at_least and time.monotonic() < deadline:
        time.sleep(0.25)
    return paths


def _fill(page, key: str, text: str) -> None:
    field = page.locator(f".st-key-{key}").locator("input, textarea").first
    field.fill(text)
    field.press("Tab")
    settle(page)


def test_hotspot_page_draws_hexagons_and_gi_classes(page, server, artifacts_dir) -> None:
    page.goto(server + "/hotspots")
    page.get_by_text("事件热点分析").first.wait_for(timeout=TIMEOUT_MS)
    hexes = _map_paths(page, at_least=30).count()
    assert hexes >= 30, f"only {hexes} Leaflet paths on the hex map"
    page.get_by_text("每月一题", exact=True).wait_for(timeout=TIMEOUT_MS)
    settle(page)
    shot(page, artifacts_dir, "e2e-hotspots-hex.png")
    # finer hexagons: the small demo's clusters stand out after the FDR correction at res 10
    choose(page, "hot_res", re.compile(r"^10 级"), typed="10 级")
    hexes = _map_paths(page, at_least=hexes + 1).count()
    page.get_by_role("radio", name="冷热点（Gi*）").click()
    settle(page)
    frame = page.frame_locator(MAP).first
    frame.get_by_text("热点 99% 置信度").wait_for(timeout=TIMEOUT_MS)
    gi = _map_paths(page, at_least=hexes).count()
    assert gi >= hexes  # the whole study area, zeros included
    hot = sum(frame.locator(f"path.gp-hot[fill='{c}']").count() for c in ("#d62f27", "#ed7551", "#fab984"))
    assert hot >= 1, "no hot spot drawn"
    shot(page, artifacts_dir, "e2e-hotspots-gi.png")
    page.get_by_role("radio", name="时空热点（按周）").click()
    settle(page)
    frame.get_by_text("时空热点模式").wait_for(timeout=TIMEOUT_MS)
    _map_paths(page, at_least=hexes)
    shot(page, artifacts_dir, "e2e-hotspots-emerging.png")
    page.get_by_role("radio", name="网格每千人事件").click()
    settle(page)
    assert _map_paths(page, at_least=10).count() >= 10
    page.get_by_text("按来源", exact=True).evaluate("e => e.scrollIntoView({block: 'center'})")
    settle(page)
    shot(page, artifacts_dir, "e2e-hotspots-charts.png")
    assert not [u for u in page.requests if not is_local(u, server)]


def _sign_in_as(page, server, store_path, username: str, *, role: str, scope_code: str,
                department: str = "") -> None:
    """Swap the browser's session cookie for one of ``username`` (created when missing)."""
    from dashboard._auth import COOKIE
    from tests._signin import session_token

    token = session_token(store_path, username, role=role, scope_code=scope_code,
                          department=department)
    page.context.clear_cookies()
    page.context.add_cookies([{"name": COOKIE, "value": token, "url": server}])


def _open_case(page, server, srid: str, stage: str) -> None:
    """Open the case board afresh (a new session of the current account) on case ``srid``."""
    page.goto(server + "/incidents")
    page.get_by_text("事件办理台账").first.wait_for(timeout=TIMEOUT_MS)
    settle(page)
    choose(page, "inc_stage", stage)
    choose(page, "inc_case", re.compile("^" + re.escape(srid)), typed=srid)
    page.get_by_text(f"事件 {srid}").first.wait_for(timeout=TIMEOUT_MS)


def test_a_case_goes_round_the_whole_loop(page, server, demo_gpkg, artifacts_dir) -> None:
    store_path = demo_gpkg
    page.goto(server + "/incidents")
    page.get_by_text("事件办理台账").first.wait_for(timeout=TIMEOUT_MS)
    settle(page)
    shot(page, artifacts_dir, "e2e-incidents-board.png")
    choose(page, "inc_stage", "问题收集")
    srid = re.match(r"\S+", choose(page, "inc_case", nth=1)).group(0)  # the first case listed
    page.get_by_text(f"事件 {srid}").first.wait_for(timeout=TIMEOUT_MS)
    assert _map_paths(page, at_least=1).count() >= 1  # the grid outline and the point
    store = open_store(str(store_path))
    try:
        grid = str(store.read("incidents", columns=["grid_code"],
                              where={"service_request_id": srid})["grid_code"].iloc[0])
    finally:
        store.close()
    # the role comes from the account: a grid worker of the case's grid may not assign;
    # it is refused and nothing changes
    _sign_in_as(page, server, store_path, "e2e-worker", role="grid_worker_full", scope_code=grid)
    _open_case(page, server, srid, "问题收集")
    page.locator(".st-key-inc_show_all").get_by_text("显示全部操作").click()
    settle(page)
    choose(page, "inc_action", "派遣 ✕")
    page.get_by_role("button", name="执行").click()
    page.get_by_text("「专职网格员」无权办理事件（派遣）").wait_for(timeout=TIMEOUT_MS)
    assert page.get_by_text("未作任何修改").count() >= 1
    shot(page, artifacts_dir, "e2e-incidents-refused.png")
    accounts = {
        "街道班子成员": ("e2e-leader", "subdistrict_leader", grid[:9]),
        "职能部门": ("e2e-dept", "department", grid[:6]),
        "网格员": ("e2e-worker", "grid_worker_full", grid),
        "街道指挥中心": ("e2e-centre", "command_centre", grid[:9]),
    }
    steps = [
        ("街道班子成员", "街道吹哨", "问题收集 → 街道吹哨", "问题收集"),
        ("职能部门", "部门报到", "街道吹哨 → 部门报到", "街道吹哨"),
        ("职能部门", "开始处置", "部门报到 → 处理中", "部门报到"),
        ("职能部门", "处理反馈", "处理中 → 待核实", "处理中"),
        ("网格员", "核实不通过（返工）", "待核实 → 处理中", "待核实"),
        ("职能部门", "处理反馈", "处理中 → 待核实", "处理中"),
        ("街道指挥中心", "核实结项", "待核实 → 已结项", "待核实"),
        ("街道指挥中心", "综合评价", "已结项 → 已评价", "已结项"),
    ]
    users = set()
    for who, action, change, stage in steps:
        user, role, scope = accounts[who]
        dept = ""
        if role == "department":  # the department the whistle sent the case to
            store = open_store(str(store_path))
            try:
                dept = str(store.read("incidents", columns=["department"],
                                      where={"service_request_id": srid})["department"].iloc[0])
            finally:
                store.close()
            user = f"e2e-dept-{dept}"
        users.add(user)
        _sign_in_as(page, server, store_path, user, role=role, scope_code=scope, department=dept)
        _open_case(page, server, srid, stage)
        choose(page, "inc_action", action)
        if action.startswith("核实不通过"):
            _fill(page, "inc_note", "现场复核仍有积水，请重新处置")
        page.get_by_role("button", name="执行").click()
        page.get_by_text(f"已执行「{action}」：{change}").wait_for(timeout=TIMEOUT_MS)
        settle(page)
        if action == "街道吹哨":
            shot(page, artifacts_dir, "e2e-incidents-whistled.png")
    page.locator("text=已评价 >> visible=true").first.wait_for(timeout=TIMEOUT_MS)
    page.locator(".st-key-inc_case").scroll_into_view_if_needed()
    shot(page, artifacts_dir, "e2e-incidents-evaluated.png")
    store = open_store(str(store_path))
    try:
        row = store.read("incidents", where={"service_request_id": srid})
        events = store.read("incident_events", where={"service_request_id": srid}, order_by="time")
    finally:
        store.close()
    assert row["stage"].iloc[0] == "evaluated" and int(row["reworks"].iloc[0]) == 1
    assert row["whistle"].iloc[0] == "work"
    tail = events["to_stage"].tolist()[-8:]
    assert tail == ["whistled", "dispatched", "handling", "verifying", "handling", "verifying",
                    "closed", "evaluated"]
    assert set(events["actor"].tolist()[-8:]) == users  # every event names its account
    assert not [u for u in page.requests if not is_local(u, server)]
