"""A live system in a real browser: a case posted through the intake API shows on the wall.

This module runs its own servers on a LIVE demo store (small preset, history ending at the
moment it is loaded, so the dashboard runs on the real clock): ``streamlit run`` with the wall
refreshing every 5 s (the shortest the settings allow), and the intake API under uvicorn. The test posts a case at "now" and
waits for it on the wall -- feed and today's count -- within 10 s, while the Leaflet map stays
the same object (no reload). It also checks that a retried POST makes one case and that a
token of one sub-district can neither post nor read outside it.
"""

from __future__ import annotations

import io
import os
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e._helpers import MAP, TIMEOUT_MS, choose
from tests.e2e.conftest import ROOT, SignedInBrowser, _free_port

pytestmark = pytest.mark.e2e


def _wait(url: str, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.terminate()
    pytest.fail(f"{what} did not start")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    from gridpulse.api import uvicorn_command
    from gridpulse.commands.serve import ensure_demo, streamlit_command
    from layers.accounts import create_account
    from layers.apitokens import issue_api_token
    from layers.store import open_store

    path = tmp_path_factory.mktemp("live") / "live.gpkg"
    ensure_demo(str(path), preset="small", lang="en", progress=lambda *a: None,
                out=io.StringIO(), anchor="now")
    with open_store(str(path)) as s:
        grids = s.read("grids", columns=["code", "kind"])
        comp = grids[grids["kind"] == "comprehensive"].sort_values("code")
        subs = sorted(comp["code"].str[:9].unique())
        tokens = {}
        for user, scope in (("api-district", subs[0][:6]), ("api-sub0", subs[0])):
            create_account(s, user, "correct horse battery", role="command_centre",
                           scope_code=scope, actor="tests")
            tokens[user] = issue_api_token(s, user, actor="tests")
        inside = {sub: comp[comp["code"].str.startswith(sub)].geometry.iloc[0]
                  .representative_point() for sub in subs}
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDPULSE_")}
    env.update(GRIDPULSE_STORE=str(path), GRIDPULSE_OFFLINE="1", GRIDPULSE_BASEMAP="none",
               GRIDPULSE_WALL_REFRESH_S="5", HOME=str(tmp_path_factory.mktemp("home")),
               PYTHONPATH=str(ROOT))
    logs = tmp_path_factory.mktemp("logs")
    st_port, api_port = _free_port(), _free_port()
    st_log, api_log = open(logs / "st.log", "w"), open(logs / "api.log", "w")  # noqa: SIM115
    procs = [subprocess.Popen(streamlit_command(port=st_port, address="127.0.0.1"), cwd=ROOT,
                              env=env, stdout=st_log, stderr=subprocess.STDOUT),
             subprocess.Popen(uvicorn_command(port=api_port), cwd=ROOT, env=env,
                              stdout=api_log, stderr=subprocess.STDOUT)]
    server, api = f"http://127.0.0.1:{st_port}", f"http://127.0.0.1:{api_port}"
    _wait(f"{server}/_stcore/health", procs[0], "streamlit")
    _wait(f"{api}/health", procs[1], "the API")
    yield {"server": server, "api": api, "store": path, "tokens": tokens, "subs": subs,
           "inside": inside}
    for p in procs:
        p.terminate()
        p.wait(timeout=10)
    st_log.close()
    api_log.close()


def _kpi(page, key: str) -> int:
    return int(page.locator(f"[data-kpi='{key}'] .v").first.inner_text().replace(",", ""))


def test_a_posted_case_reaches_the_wall_within_10_s(raw_browser, live, artifacts_dir) -> None:
    browser = SignedInBrowser(raw_browser, live["server"], live["store"])
    ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    page = ctx.new_page()
    page.goto(live["server"] + "/wall")
    page.locator("[data-kpi='today']").first.wait_for(timeout=TIMEOUT_MS)
    page.locator(MAP).first.wait_for(timeout=TIMEOUT_MS)
    frame = page.locator(MAP).first.element_handle().content_frame()
    frame.wait_for_function("window.map !== undefined", timeout=TIMEOUT_MS)
    frame.evaluate("window.map.__gp_mark = 'kept'")
    time.sleep(6)  # one refresh cycle, so the counts below are settled
    today = _kpi(page, "today")

    sub = live["subs"][0]
    p = live["inside"][sub]
    h = {"Authorization": f"Bearer {live['tokens']['api-district']}", "Idempotency-Key": "e2e-1"}
    body = {"service_code": "1103", "lat": p.y, "long": p.x, "description": "e2e 实时"}
    posted = time.monotonic()
    r = httpx.post(f"{live['api']}/open311/v2/requests.json", headers=h, json=body, timeout=30)
    assert r.status_code == 201, r.text
    again = httpx.post(f"{live['api']}/open311/v2/requests.json", headers=h, json=body, timeout=30)
    assert again.json()[0]["service_request_id"] == r.json()[0]["service_request_id"]

    feed = page.locator("[data-panel='feed'] .gp-row").first
    while time.monotonic() - posted < 10 and not (
            "流浪乞讨" in feed.inner_text() and _kpi(page, "today") == today + 1):
        time.sleep(0.25)
    seen_after = time.monotonic() - posted
    assert "流浪乞讨" in feed.inner_text(), feed.inner_text()
    assert _kpi(page, "today") == today + 1  # one case, although posted twice
    assert seen_after <= 10.0, f"shown after {seen_after:.1f} s"
    assert frame.evaluate("window.map.__gp_mark") == "kept", "the map was reloaded"
    page.screenshot(path=str(artifacts_dir / "e2e-live-wall.png"))
    ctx.close()


def test_a_sub_district_token_stays_in_its_sub_district(live) -> None:
    own, other = live["subs"][0], live["subs"][1]
    h = {"Authorization": f"Bearer {live['tokens']['api-sub0']}", "Accept-Language": "zh"}
    p = live["inside"][other]
    out = httpx.post(f"{live['api']}/open311/v2/requests.json", headers=h,
                     json={"service_code": "0101", "lat": p.y, "long": p.x}, timeout=30)
    assert out.status_code == 403 and out.json()["errors"][0]["code"] == "auth.decision.out_of_scope"
    listed = httpx.get(f"{live['api']}/open311/v2/requests.json", headers=h, timeout=60).json()
    assert listed and all(r["extended_attributes"]["grid_code"].startswith(own) for r in listed)
    theirs = httpx.get(f"{live['api']}/open311/v2/requests.json", timeout=60, headers={
        "Authorization": f"Bearer {live['tokens']['api-district']}"}).json()
    foreign = next(r["service_request_id"] for r in theirs
                   if r["extended_attributes"]["grid_code"].startswith(other))
    one = httpx.get(f"{live['api']}/open311/v2/requests/{foreign}.json", headers=h, timeout=30)
    assert one.status_code == 403


def test_the_case_board_shows_a_posted_case_within_10_s(raw_browser, live) -> None:
    browser = SignedInBrowser(raw_browser, live["server"], live["store"])
    ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    page = ctx.new_page()
    page.goto(live["server"] + "/incidents")
    value = page.locator("[data-testid='stMetricValue']").first
    value.wait_for(timeout=TIMEOUT_MS)
    time.sleep(6)  # settled

    def count() -> int:
        return int(value.inner_text().replace(",", "").strip())

    before = count()
    page.evaluate("window.__gp_mark = 'kept'")
    p = live["inside"][live["subs"][1]]
    h = {"Authorization": f"Bearer {live['tokens']['api-district']}"}
    posted = time.monotonic()
    r = httpx.post(f"{live['api']}/open311/v2/requests.json", headers=h, timeout=30,
                   json={"service_code": "0402", "lat": p.y, "long": p.x})
    assert r.status_code == 201, r.text
    while time.monotonic() - posted < 10 and count() != before + 1:
        time.sleep(0.25)
    assert count() == before + 1, f"{count()} cases shown, {before + 1} expected"
    assert time.monotonic() - posted <= 10.5
    assert page.evaluate("window.__gp_mark") == "kept", "the page was reloaded"
    ctx.close()


def test_a_flagged_duplicate_is_merged_on_the_case_board(raw_browser, live, artifacts_dir) -> None:
    """Two reports of one problem through the API: the second is flagged; the board offers
    "merge into case X"; one click closes it as a duplicate with a link to the kept case."""
    import re

    from layers.store import open_store
    from tests.e2e._helpers import settle

    p = live["inside"][live["subs"][1]]
    h = {"Authorization": f"Bearer {live['tokens']['api-district']}"}
    body = {"service_code": "0203", "lat": p.y, "long": p.x, "description": "e2e 合并"}
    first = httpx.post(f"{live['api']}/open311/v2/requests.json", headers=h, json=body,
                       timeout=30).json()[0]
    second = httpx.post(f"{live['api']}/open311/v2/requests.json", headers=h, timeout=30,
                        json={**body, "lat": p.y + 0.0002}).json()[0]
    kept, dup = first["service_request_id"], second["service_request_id"]
    assert second["duplicate_of"] == kept
    browser = SignedInBrowser(raw_browser, live["server"], live["store"])
    ctx = browser.new_context(viewport={"width": 1920, "height": 1200}, locale="zh-CN")
    page = ctx.new_page()
    page.goto(live["server"] + "/incidents")
    page.get_by_text("事件办理台账").first.wait_for(timeout=TIMEOUT_MS)
    settle(page)
    choose(page, "inc_case", re.compile("^" + re.escape(dup)), typed=dup)
    page.get_by_text(f"疑似重复：与案件 {kept} 同类且相近").wait_for(timeout=TIMEOUT_MS)
    page.get_by_role("button", name=f"合并到案件 {kept}").click()
    page.get_by_text(f"已合并：案件 {dup} 作为重复件结案，保留案件 {kept}").wait_for(
        timeout=TIMEOUT_MS)
    page.get_by_text(f"本案件已作为重复件合并到案件 {kept}").wait_for(timeout=TIMEOUT_MS)
    page.screenshot(path=str(artifacts_dir / "e2e-merge-duplicate.png"), full_page=True)
    with open_store(str(live["store"])) as s:
        row = s.read("incidents", where={"service_request_id": dup}).iloc[0]
        ev = s.read("incident_events", where={"service_request_id": dup}, order_by="time")
        kept_stage = s.read("incidents", where={"service_request_id": kept})["stage"].iloc[0]
    assert row["stage"] == "closed_no_action" and kept_stage == "collected"
    assert ev["action"].tolist()[-1] == "close_no_action"
    assert f"duplicate_of={kept}" in ev["note"].iloc[-1]
    # the link opens the kept case
    page.get_by_role("button", name=f"打开案件 {kept}").click()
    page.get_by_text(f"事件 {kept}").first.wait_for(timeout=TIMEOUT_MS)
    ctx.close()
