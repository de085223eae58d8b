"""Hostile text in every field never runs and never fetches: a real-browser walk of every page.

The store (``_hostile.py``) is the small demo district with every free-text value replaced by
script, HTML, Markdown-image, template-literal, quote, 10,000-character and RTL/zero-width
payloads. Each payload that could run writes its field into ``window.__pwned`` (or calls
``alert``); each that could fetch asks for 198.51.100.1. The browser walks the explorer (grid
card, search, drill-down click), the wall, the case board (opening cases whose ids carry a
backtick, ``${...}`` and ``</script>``), every hotspot view, the patrol page, the data page and
the planner (proposal, pick, versions with a rollback confirmation, the 15-minute circle), and
hovers the map features to open their tooltips. After every step it asserts, in the page and in
every frame: the sentinel is untouched, no dialog opened, no request left 127.0.0.1, no
Streamlit exception box is shown, and the open tooltips hold the hostile text as text (no
element of its own). Screenshots go to ``test-artifacts/e2e-hostile-*.png``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from layers.schema import SCHEMAS
from layers.store import open_store
from tests.e2e._helpers import MAP, TIMEOUT_MS, choose, is_local, settle, shot, streamlit_server
from tests.e2e._hostile import OUTSIDE, write_hostile_store

pytestmark = pytest.mark.e2e

SUB, COM = "320106001", "320106001001"  # codes stay valid; only the names are hostile
#: Free-text fields left valid on purpose: ``action`` names the workflow step the event log replays.
NOT_HOSTILE = {"incident_events.action"}
SENTINEL = """
window.__pwned = 0;
window.addEventListener('securitypolicyviolation', function () {});
"""
#: Links, images and frames that only the data could have made (Markdown or HTML rendered).
OUTSIDE_ELEMENTS = ("a[href*='198.51.100.1'], a[href^='javascript'], img[src*='198.51.100.1'], "
                    "iframe[src^='javascript'], [data-testid='stMarkdownContainer'] img")
#: Elements a tooltip may contain (the text-node builder: div, b, bdi, br).
TIP_TAGS = {"DIV", "B", "BDI", "BR"}


@pytest.fixture(scope="module")
def hostile_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hostile") / "hostile.gpkg"
    write_hostile_store(path)
    return path


@pytest.fixture(scope="module")
def hostile_server(hostile_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with streamlit_server(hostile_store, tmp_path_factory.mktemp("hostile-server"),
                          GRIDPULSE_WALL_REFRESH_S="5") as url:
        yield url


class Watch:
    """A page plus what it did: requests, requests that left the server, dialogs."""

    def __init__(self, page: Any, server: str) -> None:
        self.page = page
        self.server = server
        self.requests: list[str] = []
        self.outside: list[str] = []
        self.dialogs: list[str] = []
        self.tooltips = 0

    def check(self, where: str) -> None:
        """Nothing ran, nothing left the server, no exception box (in the page and every frame)."""
        settle(self.page)
        flags = {}
        for frame in self.page.frames:
            try:
                v = frame.evaluate("() => window.__pwned")
            except Exception:  # noqa: BLE001 - a frame detached by a rerun while we looked
                continue
            if v not in (0, None):
                flags[frame.url[:80]] = v
            try:
                n = frame.locator(OUTSIDE_ELEMENTS).count()
            except Exception:  # noqa: BLE001 - detached
                n = 0
            if n:
                flags[frame.url[:80] + " elements"] = frame.locator(OUTSIDE_ELEMENTS).first.evaluate("e => e.outerHTML")[:200]
        assert flags == {}, f"{where}: script from the data ran or its markup rendered: {flags}"
        assert self.dialogs == [], f"{where}: a dialog opened: {self.dialogs}"
        assert self.outside == [], f"{where}: requests left the server: {self.outside[:5]}"
        assert self.page.locator("[data-testid='stException']").count() == 0, \
            f"{where}: {self.page.locator('[data-testid=stException]').first.inner_text()[:500]}"


@pytest.fixture()
def watch(browser, hostile_server: str, hostile_store: Path) -> Iterator[Watch]:
    from dashboard._auth import COOKIE
    from tests._signin import session_token

    ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN",
                              signed_in=False)
    # signed in as an admin of the hostile store (sees every page and every personal field)
    ctx.add_cookies([{"name": COOKIE, "value": session_token(hostile_store),
                      "url": hostile_server}])
    ctx.add_init_script(SENTINEL)
    page = ctx.new_page()
    w = Watch(page, hostile_server)

    def on_request(r: Any) -> None:
        w.requests.append(r.url)
        if not is_local(r.url, hostile_server):
            w.outside.append(r.url)

    ctx.on("request", on_request)
    # nothing outside may be fetched: abort it (and it is recorded above)
    ctx.route(lambda url: not is_local(url, hostile_server), lambda route: route.abort())

    def on_dialog(d: Any) -> None:
        w.dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", on_dialog)
    yield w
    ctx.close()


def _open(page: Any, url: str) -> None:
    """Open a page of the app (the one place to sign in once the app asks for it)."""
    page.goto(url)


def _map_frames(page: Any) -> list[Any]:
    out = []
    for handle in page.locator(MAP).element_handles():
        frame = handle.content_frame()
        if frame is not None:
            out.append(frame)
    return out


def _wait_paths(page: Any, selector: str, *, at_least: int = 1) -> None:
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    n = 0
    while time.monotonic() < deadline:
        n = 0
        for f in _map_frames(page):
            try:
                n += f.locator(selector).count()
            except Exception:  # noqa: BLE001 - detached by a rerun
                pass
        if n >= at_least:
            return
        time.sleep(0.25)
    raise AssertionError(f"only {n} {selector} drawn")


_HOVER_JS = """([sel, limit]) => {
    // open the tooltip of up to `limit` features matching `sel`: Leaflet listens on the map
    // container, so a bubbling mouseover/mousemove at the path opens it like a real hover
    const out = [];
    const paths = Array.from(document.querySelectorAll(sel)).slice(0, limit);
    for (const p of paths) {
        const r = p.getBoundingClientRect();
        const o = {bubbles: true, cancelable: true, view: window,
                   clientX: r.left + r.width / 2, clientY: r.top + r.height / 2};
        p.dispatchEvent(new MouseEvent('mouseover', o));
        p.dispatchEvent(new MouseEvent('mousemove', o));
        for (const t of document.querySelectorAll('.leaflet-tooltip, .leaflet-popup-content')) {
            const tags = Array.from(t.querySelectorAll('*')).map(e => e.tagName);
            out.push({text: t.textContent, tags: tags});
        }
        p.dispatchEvent(new MouseEvent('mouseout', o));
    }
    return out;
}"""


def _hover(w: Watch, selector: str, *, limit: int = 12, expect: str | None = None) -> list[str]:
    """Open the tooltips of features in every map frame; their text, checked to be plain text."""
    texts: list[str] = []
    for f in _map_frames(w.page):
        try:
            tips = f.evaluate(_HOVER_JS, [selector, limit])
        except Exception:  # noqa: BLE001 - detached by a rerun
            continue
        for tip in tips:
            assert set(tip["tags"]) <= TIP_TAGS, f"a tooltip holds markup {tip['tags']}: {tip['text'][:300]}"
            texts.append(tip["text"])
    w.tooltips += len(texts)
    if expect is not None:
        assert any(re.search(expect, t) for t in texts), \
            f"no tooltip of {selector} shows {expect!r}: {[t[:200] for t in texts[:3]]}"
    return texts


def _wait_heading(page: Any, text: str) -> None:
    """Wait for a heading that reads ``text`` (ignoring the word joiners that stop autolinks)."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    seen: list[str] = []
    while time.monotonic() < deadline:
        seen = [h.replace("\u2060", "") for h in page.locator("h4").all_inner_texts()]
        if any(text in h for h in seen):
            return
        time.sleep(0.25)
    raise AssertionError(f"no heading {text[:80]!r}: {[h[:80] for h in seen]}")


def _choose_typed(page: Any, key: str, typed: str) -> str:
    """Type into the searchable selectbox ``key`` and take the first option; returns its text."""
    return choose(page, key, typed=typed)


# --------------------------------------------------------------------------- the fixture itself


def test_every_free_text_field_of_every_layer_is_hostile(hostile_store: Path) -> None:
    store = open_store(str(hostile_store))
    try:
        for layer, schema in SCHEMAS.items():
            free = [f.name for f in schema.fields if f.dtype == "str" and f.allowed is None
                    and f"{layer}.{f.name}" not in NOT_HOSTILE]
            if not free:
                continue
            df = store.read(layer, columns=free)
            assert len(df), layer
            for col in free:
                values = df[col].dropna().astype(str)
                assert len(values), f"{layer}.{col} is empty"
                hostile = values.str.contains("__pwned|alert\\(|198\\.51\\.100\\.1", regex=True)
                assert hostile.all(), f"{layer}.{col}: {values[~hostile].head(3).tolist()}"
        lengths = store.read("grids", columns=["name"])["name"].str.len()
        assert lengths.max() == 10_000
        ids = store.read("incidents", columns=["service_request_id"])["service_request_id"]
        assert ids.str.contains("`").any() and ids.str.contains("${", regex=False).any()
    finally:
        store.close()


# --------------------------------------------------------------------------- the walk


def test_explorer_and_wall_show_hostile_names_as_text(watch: Watch, hostile_server: str, hostile_store: Path,
                                                       artifacts_dir: Path) -> None:
    w, page = watch, watch.page
    store = open_store(str(hostile_store))
    try:
        grid = str(store.read("grids", where={"community_code": COM}, columns=["code"])["code"].iloc[0])
    finally:
        store.close()
    _open(page, f"{hostile_server}/?sub={SUB}&com={COM}&grid={grid}")
    page.get_by_text("网格信息卡").first.wait_for(timeout=TIMEOUT_MS)
    _wait_paths(page, "path.gp-comp", at_least=3)
    w.check("explorer")
    card = page.locator("[data-testid='stMarkdownContainer']").filter(has_text="window.__pwned")
    assert card.count() >= 1, "the grid card does not show the hostile name as text"
    assert page.locator("[data-testid='stMarkdownContainer'] img").count() == 0
    _hover(w, "path.gp-comp", expect=r"window\.__pwned='grids\.name'")
    _hover(w, "path.gp-com, path.gp-sub")
    w.check("explorer tooltips")
    shot(page, artifacts_dir, "e2e-hostile-explorer.png")
    # a hostile search
    field = page.locator(".st-key-w_search input")
    field.fill("![q](" + OUTSIDE + "/search.png) <img src=x onerror=alert(1)>")
    field.press("Enter")
    settle(page)
    w.check("explorer search")
    # the whole district, with every layer on
    _open(page, f"{hostile_server}/?layers=sub,com,comp,ded,inc")
    _wait_paths(page, "path.gp-comp", at_least=10)
    _hover(w, "path.gp-comp, path.gp-ded, path.gp-hex", limit=40)
    w.check("explorer district")

    _open(page, f"{hostile_server}/wall")
    page.locator("[data-panel='feed']").first.wait_for(timeout=TIMEOUT_MS)
    _wait_paths(page, "path.gp-status", at_least=5)
    rows = page.locator("[data-panel] .gp-row")
    assert rows.count() >= 3
    assert rows.locator("img, svg, iframe, script, a, style, link, b").count() == 0
    w.check("wall")
    shot(page, artifacts_dir, "e2e-hostile-wall.png")
    assert w.tooltips >= 10


def test_cases_with_hostile_ids_open_safely(watch: Watch, hostile_server: str, artifacts_dir: Path) -> None:
    w, page = watch, watch.page
    _open(page, f"{hostile_server}/incidents")
    page.locator(".st-key-inc_case").wait_for(timeout=TIMEOUT_MS)
    settle(page)
    w.check("case board")
    shot(page, artifacts_dir, "e2e-hostile-cases.png")
    for i, typed in enumerate(("`+(window.__pwned", "${window.__pwned", "</script><script>", "<img src=")):
        picked = _choose_typed(page, "inc_case", typed)
        assert typed in picked
        _wait_heading(page, "事件 " + picked.strip())
        _wait_paths(page, "path.leaflet-interactive", at_least=1)
        w.check(f"case {picked[:40]!r}")  # the attack ran on opening, with no hover
        tips = _hover(w, "path.leaflet-interactive", limit=4)
        assert any(picked.strip() in t for t in tips), f"the case marker does not show its id: {tips}"
        assert page.locator("[data-testid='stMarkdownContainer'] img").count() == 0
        w.check(f"case {picked[:40]!r} tooltips")
        if i == 0:
            shot(page, artifacts_dir, "e2e-hostile-case.png")


def test_hotspots_patrol_and_data_pages(watch: Watch, hostile_server: str, artifacts_dir: Path) -> None:
    w, page = watch, watch.page
    _open(page, f"{hostile_server}/hotspots")
    page.get_by_text("每月一题", exact=True).wait_for(timeout=TIMEOUT_MS)
    _wait_paths(page, "path.gp-hex", at_least=10)
    _hover(w, "path.gp-hex")
    w.check("hotspots hex")
    for mode, sel in (("聚合点", "path.leaflet-interactive"), ("网格每千人事件", "path.gp-rate"),
                      ("冷热点（Gi*）", "path.gp-hot")):
        page.get_by_role("radio", name=mode).click()
        settle(page)
        _wait_paths(page, sel, at_least=3)
        _hover(w, sel, expect=r"grids\.name" if mode == "网格每千人事件" else None)
        w.check(f"hotspots {mode}")
    shot(page, artifacts_dir, "e2e-hostile-hotspots.png")

    _open(page, f"{hostile_server}/patrol?sub={SUB}&com={COM}")
    page.locator(".st-key-pt_worker").wait_for(timeout=TIMEOUT_MS)
    _wait_paths(page, "path.leaflet-interactive", at_least=3)
    _hover(w, "path.gp-scope, path.gp-stale-bld, path.gp-cells, path.gp-position", limit=20)
    w.check("patrol")
    shot(page, artifacts_dir, "e2e-hostile-patrol.png")

    _open(page, f"{hostile_server}/data")
    page.get_by_role("tab").nth(1).click()
    settle(page)
    for name in ("审计", "图层"):
        exp = page.locator("[data-testid='stExpander']").filter(has_text=name)
        if exp.count():
            exp.first.locator("summary").click()
    settle(page)
    w.check("data")
    shot(page, artifacts_dir, "e2e-hostile-data.png")


def test_planner_with_hostile_names(watch: Watch, hostile_server: str, artifacts_dir: Path) -> None:
    w, page = watch, watch.page
    _open(page, f"{hostile_server}/planner?sub={SUB}&com={COM}")
    page.get_by_text("生成调整方案").first.wait_for(timeout=TIMEOUT_MS)
    w.check("planner")
    page.locator("button").filter(has_text="运行调整").first.click()
    page.get_by_text("方案对比").first.wait_for(timeout=TIMEOUT_MS)
    _wait_paths(page, "path.gp-bld", at_least=20)
    _hover(w, "path.gp-current, path.gp-proposed", expect=r"grids\.name")
    _hover(w, "path.gp-bld", limit=20, expect=r"buildings\.(id|compound_id)")
    w.check("planner proposal")
    # pick a compound by clicking a building: its hostile id is shown in the pick panel
    for i in range(8):
        settle(page)
        frame = _map_frames(page)[-1]  # a rerun may replace the map's frame: look it up each time
        frame.locator("path.gp-bld").nth(i * 7).click(force=True)
        settle(page)
        if page.get_by_text("已选：小区").count():
            break
    w.check("planner pick")
    shot(page, artifacts_dir, "e2e-hostile-planner.png")
    # versions: hostile actors and notes, and the rollback confirmation quoting a note
    page.get_by_text("保存与版本").first.click()
    page.locator(".st-key-pl_rb_version").wait_for(timeout=TIMEOUT_MS)
    page.locator("button").filter(has_text="回滚").first.click()
    settle(page)
    w.check("planner versions")
    assert page.locator("[data-testid='stAlert'] img").count() == 0
    shot(page, artifacts_dir, "e2e-hostile-versions.png")
    # the 15-minute circle: facility names in the markers' tooltips
    page.get_by_text("一刻钟服务圈").first.click()
    _wait_paths(page, "path.gp-fac", at_least=1)
    _hover(w, "path.gp-fac", expect=r"facilities\.name")
    w.check("planner circle")
    shot(page, artifacts_dir, "e2e-hostile-circle.png")
    assert not [u for u in w.requests if not is_local(u, hostile_server)]
