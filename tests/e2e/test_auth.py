"""Real-browser tests of sign-in, roles and scopes (issue 11).

Each role signs in through the form (or, for the wall, with its kiosk token in the link) on the
session's shared server and small-demo GeoPackage, and the test checks what it can see and do
against the store itself.
"""

from __future__ import annotations

import re

import pytest

from layers import accounts
from layers.store import open_store
from tests.e2e._helpers import TIMEOUT_MS, choose, open_list, settle, shot

pytestmark = pytest.mark.e2e

PASSWORD = "e2e-password-1"
PATHS = ("/", "/explorer", "/wall", "/incidents", "/hotspots", "/patrol", "/data", "/planner")


@pytest.fixture(scope="module")
def people(demo_gpkg) -> dict[str, object]:
    """Accounts of several roles in the demo store, with what the tests need to know."""
    with open_store(str(demo_gpkg)) as store:
        inc = store.read("incidents", columns=["service_request_id", "grid_code", "department",
                                               "stage", "requested_datetime"])
        workers = store.read("workers", columns=["name", "phone"])
        grid = str(inc.loc[inc["stage"] == "collected", "grid_code"].value_counts().index[0])
        community = grid[:12]
        made = {"auth-worker": ("grid_worker_full", grid, ""),
                "auth-dept": ("department", grid[:6], "water"),
                "auth-community": ("community_secretary", community, ""),
                "auth-wall": ("kiosk", grid[:6], "")}
        for user, (role, scope, dept) in made.items():
            try:
                accounts.get_account(store, user)
            except accounts.AccountError:
                accounts.create_account(store, user, PASSWORD, role=role, scope_code=scope,
                                        department=dept, actor="tests")
        kiosk = accounts.issue_kiosk_token(store, "auth-wall", actor="tests", days=1)
    return {"incidents": inc, "grid": grid, "community": community, "kiosk": kiosk,
            "workers": workers}


def _anonymous(browser):
    ctx = browser.new_context(viewport={"width": 1600, "height": 1000}, locale="zh-CN",
                              signed_in=False)
    return ctx, ctx.new_page()


def _sign_in(page, server: str, user: str, password: str = PASSWORD, path: str = "/") -> None:
    page.goto(server + path)
    page.get_by_text("登录 GridPulse").first.wait_for(timeout=TIMEOUT_MS)
    page.get_by_label("用户名").fill(user)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()


def _case_options(page, typed: str = "") -> list[str]:
    """The case ids the case selectbox offers (the first screenful, or those matching ``typed``)."""
    options = open_list(page, "inc_case", typed=typed)
    settle(page, quiet_s=0.5)
    texts = [t.strip() for t in options.all_inner_texts()]
    page.keyboard.press("Escape")
    return [t.split()[0] for t in texts if re.match(r"^[A-Z]+\d+", t)]


def test_an_anonymous_visitor_sees_only_the_sign_in_form(browser, server, artifacts_dir) -> None:
    ctx, page = _anonymous(browser)
    try:
        for path in PATHS:  # typed straight into the address bar
            page.goto(server + path)
            page.get_by_text("登录 GridPulse").first.wait_for(timeout=TIMEOUT_MS)
            settle(page, quiet_s=0.5)
            assert page.locator("[data-testid='stSidebarNav']").count() == 0, path
            assert page.locator("iframe").count() == 0, path  # no map, no component
            assert page.locator("[data-testid='stMetric']").count() == 0, path
            body = page.locator("[data-testid='stMain']").inner_text()
            assert "合成演示数据" not in body and "事件" not in body and "网格总览" not in body, path
        shot(page, artifacts_dir, "e2e-auth-sign-in.png")
        # a wrong password is refused and says nothing about which part was wrong
        _sign_in(page, server, "auth-worker", "not-the-password")
        page.get_by_text("用户名或密码不正确").wait_for(timeout=TIMEOUT_MS)
        assert page.locator("[data-testid='stSidebarNav']").count() == 0
    finally:
        ctx.close()


def test_a_grid_worker_sees_their_grid_and_cannot_whistle(browser, server, demo_gpkg, people,
                                                          artifacts_dir) -> None:
    ctx, page = _anonymous(browser)
    try:
        _sign_in(page, server, "auth-worker")
        page.get_by_text("当前用户").first.wait_for(timeout=TIMEOUT_MS)
        nav = page.locator("[data-testid='stSidebarNav']").inner_text()
        assert "数据" not in nav and "网格调整" not in nav  # no data page, no planner
        # the session survives a reload (the cookie), and a page typed in opens signed in
        page.goto(server + "/incidents")
        page.get_by_text("事件办理台账").first.wait_for(timeout=TIMEOUT_MS)
        settle(page)
        inc = people["incidents"]
        grid = people["grid"]
        mine = set(inc.loc[inc["grid_code"] == grid, "service_request_id"])
        shown = _case_options(page)
        assert shown and set(shown) <= mine  # only the cases of their own grid
        collected = inc[(inc["grid_code"] == grid) & (inc["stage"] == "collected")]
        srid = str(collected.sort_values("requested_datetime")["service_request_id"].iloc[-1])
        choose(page, "inc_case", re.compile("^" + re.escape(srid)), typed=srid)
        page.get_by_text(f"事件 {srid}").first.wait_for(timeout=TIMEOUT_MS)
        assert page.get_by_text("专职网格员").count() >= 1  # acting as: from the account
        page.locator(".st-key-inc_show_all").get_by_text("显示全部操作").click()
        settle(page)
        choose(page, "inc_action", "街道吹哨 ✕")  # marked illegal
        page.get_by_role("button", name="执行").click()
        page.get_by_text("「专职网格员」无权办理事件（街道吹哨）").wait_for(timeout=TIMEOUT_MS)
        assert page.get_by_text("未作任何修改").count() >= 1
        shot(page, artifacts_dir, "e2e-auth-worker-refused.png")
    finally:
        ctx.close()
    with open_store(str(demo_gpkg)) as store:
        row = store.read("incidents", columns=["stage", "whistle"],
                         where={"service_request_id": srid})
        ev = store.read("incident_events", columns=["actor"], where={"service_request_id": srid})
    assert row["stage"].iloc[0] == "collected"
    assert "auth-worker" not in set(ev["actor"])


def test_a_department_handler_sees_only_its_departments_cases(browser, server, people) -> None:
    ctx, page = _anonymous(browser)
    try:
        _sign_in(page, server, "auth-dept", path="/")
        page.get_by_text("当前用户").first.wait_for(timeout=TIMEOUT_MS)
        page.goto(server + "/incidents")
        page.get_by_text("事件办理台账").first.wait_for(timeout=TIMEOUT_MS)
        settle(page)
        inc = people["incidents"]
        water = set(inc.loc[inc["department"] == "water", "service_request_id"])
        shown = _case_options(page)
        assert shown and set(shown) <= water
        other = sorted(inc.loc[inc["department"] == "housing", "service_request_id"])[-1]
        assert _case_options(page, typed=other) == []  # another department's case is not offered
    finally:
        ctx.close()


def test_a_community_secretary_cannot_see_another_communitys_cases(browser, server, people) -> None:
    ctx, page = _anonymous(browser)
    try:
        _sign_in(page, server, "auth-community")
        page.get_by_text("当前用户").first.wait_for(timeout=TIMEOUT_MS)
        page.goto(server + "/incidents")
        page.get_by_text("事件办理台账").first.wait_for(timeout=TIMEOUT_MS)
        settle(page)
        inc = people["incidents"]
        com = people["community"]
        ours = inc["grid_code"].astype(str).str.startswith(com)
        shown = _case_options(page)
        assert shown and set(shown) <= set(inc.loc[ours, "service_request_id"])
        theirs = sorted(inc.loc[~ours, "service_request_id"])[-1]
        assert _case_options(page, typed=theirs) == []
    finally:
        ctx.close()


def test_the_wall_kiosk_shows_the_wall_and_nothing_else(browser, server, people,
                                                        artifacts_dir) -> None:
    ctx, page = _anonymous(browser)
    token = people["kiosk"]
    try:
        for path in ("/wall", "/", "/incidents", "/data"):
            page.goto(f"{server}{path}?kiosk={token}")
            page.get_by_text("网格化服务管理指挥中心").first.wait_for(timeout=TIMEOUT_MS)
            settle(page)
            assert page.locator("[data-testid='stSidebarNav']").count() == 0, path
            assert page.get_by_text("事件办理台账").count() == 0, path
            assert page.get_by_text("登录 GridPulse").count() == 0, path
            text = page.locator("body").inner_text()
            names = [n for n in people["workers"]["name"].astype(str) if len(n) >= 2]
            assert not [n for n in names if n in text], path  # no worker's name
            assert not re.search(r"1\d{10}", text), path  # no phone number
        shot(page, artifacts_dir, "e2e-auth-kiosk-wall.png")
        # a wrong token gets the sign-in form, not the wall
        page.goto(f"{server}/wall?kiosk=not-a-token")
        page.get_by_text("大屏令牌无效或已失效").first.wait_for(timeout=TIMEOUT_MS)
        assert page.get_by_text("网格化服务管理指挥中心").count() == 0
    finally:
        ctx.close()
