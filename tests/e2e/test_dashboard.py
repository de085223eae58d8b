"""Real-browser tests: headless Chromium against ``streamlit run dashboard/app.py``.

The server (see ``conftest.py``) is in offline mode with no basemap, so every request the
page makes must go to the server itself. Screenshots at 1920x1080 go to ``test-artifacts/``.
"""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlparse

import pytest

from tests.e2e._helpers import MAP, TIMEOUT_MS, choose, is_local, open_list, settle

pytestmark = pytest.mark.e2e



def _open(page, server: str, path: str, text: str) -> None:
    page.goto(server + path)
    page.get_by_text(text).first.wait_for(timeout=TIMEOUT_MS)


def _map_paths(page, *, at_least: int = 1):
    """The Leaflet paths drawn in the map frame (waits until ``at_least`` are there)."""
    paths = _the_map(page).locator(".leaflet-overlay-pane path")
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while paths.count() < at_least and time.monotonic() < deadline:
        time.sleep(0.25)
    return paths


def _wait_url(page, pattern: str) -> str:
    """Wait until the address bar (updated in place by st.query_params) matches ``pattern``."""
    rx = re.compile(pattern)
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    href = page.evaluate("location.href")
    while not rx.search(href) and time.monotonic() < deadline:
        time.sleep(0.25)
        href = page.evaluate("location.href")
    assert rx.search(href), f"{href} does not match {pattern}"
    return href


def _the_map(page):
    """The map's frame locator, once a rerun has replaced any previous map frame."""
    loc = page.locator(MAP)
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while loc.count() != 1 and time.monotonic() < deadline:
        time.sleep(0.25)
    return page.frame_locator(MAP)


def _map_frames(page) -> list:
    """The frames of the map iframes in the page now, found through the DOM.

    Not ``page.frames``: the sync client refreshes that list only while it is inside a call, so
    a loop that reads it between sleeps can keep seeing a frame that is long gone (a rerun
    briefly holds the old and the new map iframe).
    """
    out = []
    for handle in page.locator(MAP).element_handles():
        frame = handle.content_frame()
        if frame is not None:
            out.append(frame)
    return out


def _mark_map(page) -> None:
    """Tag the map now on screen, so that :func:`_new_map` can tell when a rerun replaced it."""
    _map_paths(page, at_least=1)
    _map_frame(page).evaluate("window.__gp_old = true")


def _new_map(page, *, at_least: int = 3):
    """Wait until the tagged map is gone and a new one has drawn ``at_least`` paths."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    seen: list = []
    while time.monotonic() < deadline:
        frames = _map_frames(page)
        seen = []
        for frame in frames:
            try:
                seen.append(frame.evaluate(
                    "[!!window.__gp_old, document.querySelectorAll('.leaflet-overlay-pane path').length]"))
            except Exception:  # noqa: BLE001 - the frame was detached while we looked
                seen.append(None)
        if len(seen) == 1 and seen[0] is not None and not seen[0][0] and seen[0][1] >= at_least:
            return _map_paths(page, at_least=at_least)
        time.sleep(0.25)
    raise AssertionError(f"the map was not redrawn: map frames [tagged, paths] = {seen}")


def _click_a_grid(page) -> None:
    """Click a point of the map that lies inside a comprehensive grid."""
    _map_paths(page, at_least=3)
    xy = _map_frame(page).evaluate(
        """(() => { const r = document.getElementById('map_div').getBoundingClientRect();
            for (let y = r.top + 40; y < r.bottom - 40; y += 12) {
              for (let x = r.left + 60; x < r.right - 60; x += 12) {
                const el = document.elementFromPoint(x, y);
                if (el && el.classList && el.classList.contains('gp-comp')) return [x - r.left, y - r.top];
              } } return null; })()"""
    )
    assert xy, "no comprehensive grid visible on the map"
    _the_map(page).locator("#map_div").click(position={"x": xy[0], "y": xy[1]})


def _map_frame(page):
    """The frame of the one map on screen (waits until a rerun has removed any other)."""
    _the_map(page)
    frames = _map_frames(page)
    assert len(frames) == 1, f"{len(frames)} map frames"
    return frames[0]


def test_explorer_draws_grids_and_a_click_drills_down(page, server, artifacts_dir) -> None:
    _open(page, server, "/", "网格总览")
    paths = _map_paths(page, at_least=20)
    n = paths.count()
    assert n >= 20, f"only {n} Leaflet paths drawn"
    page.get_by_text("合成演示数据").first.wait_for()
    time.sleep(0.5)
    page.screenshot(path=str(artifacts_dir / "e2e-explorer.png"))
    # click a comprehensive grid: the view drills into its sub-district
    _mark_map(page)
    _click_a_grid(page)
    _wait_url(page, r"[?&]sub=\d{9}")
    sub = parse_qs(urlparse(page.evaluate("location.href")).query)["sub"][0]
    # the map was redrawn for that sub-district, and the selector followed
    _new_map(page)
    assert page.locator("[data-testid='stSidebar']").get_by_text(re.compile("街道$")).count() >= 1
    # a second click goes one level further: a community of that sub-district
    _mark_map(page)
    _click_a_grid(page)
    _wait_url(page, r"[?&]com=" + sub + r"\d{3}")
    assert not [u for u in page.requests if not is_local(u, server)]


def test_a_grid_link_shows_its_card(page, server, demo_gpkg, artifacts_dir) -> None:
    from layers.privacy import mask_name
    from layers.store import open_store

    _open(page, server, "/", "网格总览")
    _map_paths(page, at_least=20)
    code = _map_frame(page).evaluate(
        "(() => { for (const l of Object.values(window.map._layers)) {"
        "  if (l.feature && l.options.className === 'gp-comp') return l.feature.properties.code; } })()"
    )
    assert re.fullmatch(r"\d{15}", code)
    grids = open_store(str(demo_gpkg)).read("grids", columns=["code", "leader"])
    leader = str(grids.loc[grids["code"] == code, "leader"].iloc[0])
    search = page.get_by_label("按网格代码或名称搜索")
    _mark_map(page)
    search.fill(code)
    search.press("Enter")
    _wait_url(page, r"[?&]grid=" + code)
    # the card: that grid, its leader masked (谢*), never the full name
    page.get_by_text("网格信息卡", exact=True).wait_for()
    page.get_by_text("A/B 岗网格员").wait_for(timeout=TIMEOUT_MS)
    main = page.locator("[data-testid='stMain']")
    main.get_by_text(code).first.wait_for(timeout=TIMEOUT_MS)
    main.get_by_text(f"网格长: {mask_name(leader)}").wait_for(timeout=TIMEOUT_MS)
    assert leader not in main.inner_text()
    # the map: redrawn around that grid, with the grid outlined
    _new_map(page)
    shown = _map_frame(page).evaluate(
        """(code) => {
          const ls = Object.values(window.map._layers).filter(l => l.feature);
          const grid = ls.find(l => l.options.className === 'gp-comp' && l.feature.properties.code === code);
          const sel = ls.filter(l => l.options.className === 'gp-sel');
          if (!grid || sel.length !== 1) return {grid: !!grid, outlines: sel.length};
          const g = grid.getBounds(), s = sel[0].getBounds(), v = window.map.getBounds();
          return {grid: true, outlines: 1, outlined: g.equals(s, 1e-6), inView: v.contains(g),
                  share: Math.max((g.getEast() - g.getWest()) / (v.getEast() - v.getWest()),
                                  (g.getNorth() - g.getSouth()) / (v.getNorth() - v.getSouth()))};
        }""",
        code,
    )
    assert shown.get("outlined") and shown["inView"], shown
    assert shown["share"] > 0.25, f"the map is not zoomed to the grid: {shown}"
    time.sleep(0.5)
    page.screenshot(path=str(artifacts_dir / "e2e-explorer-grid-card.png"))


def test_language_switch_changes_the_labels(page, server, artifacts_dir) -> None:
    _open(page, server, "/?metric=population", "网格总览")
    _mark_map(page)
    page.locator("[data-testid='stSidebar']").get_by_text("English", exact=True).click()
    page.get_by_text("Grid explorer").first.wait_for(timeout=TIMEOUT_MS)
    assert page.get_by_text("网格总览").count() == 0
    page.get_by_text("Synthetic demo data").first.wait_for()
    _wait_url(page, r"[?&]lang=en")
    _new_map(page, at_least=20)
    assert _map_frame(page).get_by_text("Population").count() >= 1  # the legend
    time.sleep(0.5)
    page.screenshot(path=str(artifacts_dir / "e2e-explorer-en.png"))


def test_wall_refreshes_without_reloading_the_map(page, server, artifacts_dir) -> None:
    _open(page, server, "/wall", "网格化服务管理指挥中心")
    paths = _map_paths(page, at_least=20)
    assert paths.count() >= 20
    for label in ("今日事件", "本月事件", "在办", "超期", "结案率", "按期结案率", "在岗巡查网格员",
                  "昨日4小时达标率", "最新事件", "吹哨事项办理中", "合成演示数据"):
        page.get_by_text(label).first.wait_for(timeout=TIMEOUT_MS)  # the feeds render after the map
    time.sleep(0.5)
    page.screenshot(path=str(artifacts_dir / "e2e-wall-1920x1080.png"))
    # mark the live Leaflet map; an auto-refresh (every 5 s here) must keep the same map object
    frame = _map_frame(page)
    frame.evaluate("window.map.__gp_mark = 'kept'; window.map.setZoom(window.map.getZoom() + 1)")
    zoom = frame.evaluate("window.map.getZoom()")
    stamp = page.locator(".gp-top").get_attribute("data-refreshed")
    deadline = time.monotonic() + 30
    while page.locator(".gp-top").get_attribute("data-refreshed") == stamp and time.monotonic() < deadline:
        time.sleep(0.5)
    assert page.locator(".gp-top").get_attribute("data-refreshed") != stamp, "the KPI fragment did not refresh"
    time.sleep(6)  # and one more cycle, which also re-sends the map's status layer
    frame = _map_frame(page)
    assert frame.evaluate("window.map.__gp_mark") == "kept", "the map was reloaded"
    assert frame.evaluate("window.map.getZoom()") == zoom, "the map view was reset"
    assert _map_paths(page, at_least=20).count() >= 20
    assert not [u for u in page.requests if not is_local(u, server)]


#: What the wall measures in the browser: type sizes in CSS px, the district's box and the
#: legend's box in the map frame, and whether any feed line overflows its box.
_WALL_JS = """() => {
  const px = (el) => el ? parseFloat(getComputedStyle(el).fontSize) : 0;
  const q = (s) => document.querySelector(s);
  const rows = [...document.querySelectorAll('.gp-row .w')];
  return {kpi: px(q('.gp-kpi .v')), demo: px(q("[data-testid='gp-demo-label']")),
          feed: px(q('.gp-row')), clipped: rows.filter(e => e.scrollWidth > e.clientWidth + 1).length,
          ellipsis: rows.filter(e => getComputedStyle(e).textOverflow === 'ellipsis').length,
          rows: rows.length};
}"""
_MAP_JS = """() => {
  const px = (el) => el ? parseFloat(getComputedStyle(el).fontSize) : 0;
  const box = (el) => { const r = el.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  const paths = [...document.querySelectorAll('.leaflet-overlay-pane path')].map(box);
  const lg = document.querySelector('.gp-legend > div');
  const sw = [...lg.querySelectorAll('span')].map(s => getComputedStyle(s).backgroundColor);
  const fills = [...new Set([...document.querySelectorAll('.leaflet-overlay-pane path[fill-opacity]')]
      .filter(p => p.getAttribute('fill') !== 'none')
      .map(p => p.getAttribute('fill').toLowerCase() + '@' + p.getAttribute('fill-opacity')))];
  return {w: innerWidth, h: innerHeight, legend: px(lg), legend_box: box(lg),
          zoom: document.querySelector('.leaflet-control-zoom a').getBoundingClientRect().width,
          scale: px(document.querySelector('.leaflet-control-scale-line')),
          district: [Math.min(...paths.map(b => b[0])), Math.min(...paths.map(b => b[1])),
                     Math.max(...paths.map(b => b[2])), Math.max(...paths.map(b => b[3]))],
          swatches: sw, fills: fills};
}"""


def _measure_wall(browser, server: str, width: int, height: int, artifacts_dir) -> tuple[dict, dict]:
    ctx = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
    page = ctx.new_page()
    try:
        _open(page, server, "/wall", "网格化服务管理指挥中心")
        _map_paths(page, at_least=20)
        # the frame fits the district beside the legend once its CSS height applies: wait for
        # that fit (up to 30 s on a loaded machine), then measure; the test judges the result
        deadline = time.monotonic() + 30.0
        while True:
            m = _map_frame(page).evaluate(_MAP_JS)
            x0, y0, x1, y1 = m["district"]
            fitted = m["legend_box"][2] <= x0 + 2 and max((x1 - x0) / m["w"], (y1 - y0) / m["h"]) >= 0.95
            if fitted or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        time.sleep(0.5)
        page.screenshot(path=str(artifacts_dir / f"e2e-wall-{width}x{height}.png"))
        frame = _map_frame(page)
        measured = frame.evaluate(_MAP_JS)
        # every fit the map made (maps.FitBesideLegend): why, when, legend width, map size, padding
        measured["fits"] = frame.evaluate("window.__gp_fits || []")
        return page.evaluate(_WALL_JS), measured
    finally:
        ctx.close()


def test_wall_at_4k(browser, server, artifacts_dir) -> None:
    """Everything on the wall, the map's legend and controls included, scales with the screen; the
    district fills its panel beside the legend; no feed line is cut; the legend shows the map's colours."""
    hd, hd_map = _measure_wall(browser, server, 1920, 1080, artifacts_dir)
    uhd, uhd_map = _measure_wall(browser, server, 3840, 2160, artifacts_dir)
    for key in ("kpi", "demo", "feed"):
        assert uhd[key] == pytest.approx(2 * hd[key], rel=0.1), (key, hd[key], uhd[key])
    for key in ("legend", "zoom", "scale"):
        assert uhd_map[key] == pytest.approx(2 * hd_map[key], rel=0.1), (key, hd_map[key], uhd_map[key])
    assert uhd_map["legend"] >= 28 and uhd_map["zoom"] >= 60 and uhd["demo"] >= 24  # readable across a room
    for m in (hd_map, uhd_map):
        x0, y0, x1, y1 = m["district"]
        fill = max((x1 - x0) / m["w"], (y1 - y0) / m["h"])
        assert fill >= 0.95, f"the district fills {fill:.0%} of the map panel; fits: {m['fits']}"
        assert m["legend_box"][2] <= x0 + 2, f"the legend covers the district; fits: {m['fits']}"
        # the last fit counted the legend as laid out in its corner (not the unstyled block)
        assert m["fits"] and m["fits"][-1]["legend"] > 0, m["fits"]
        # five degrees of trouble; each swatch is the map fill at the map's opacity
        assert len(m["swatches"]) == 5
        drawn = {f.split("@")[0]: float(f.split("@")[1]) for f in m["fills"]}
        matched = 0
        for sw in m["swatches"]:
            r, g, b, a = (float(v) for v in re.findall(r"[\d.]+", sw))
            colour = f"#{int(r):02x}{int(g):02x}{int(b):02x}"
            if colour in drawn:
                matched += 1
                assert drawn[colour] == pytest.approx(a, abs=0.01), (colour, drawn)
        assert matched >= 2 and matched == len(drawn), (m["swatches"], drawn)
    for w in (hd, uhd):
        assert w["rows"] >= 5 and w["clipped"] == 0 and w["ellipsis"] == 0


def _district_clear(m: dict) -> tuple[bool, float]:
    x0, y0, x1, y1 = m["district"]
    fill = max((x1 - x0) / m["w"], (y1 - y0) / m["h"])
    return m["legend_box"][2] <= x0 + 2 and fill >= 0.95, fill


def test_wall_refits_when_the_legend_gets_its_style_late(browser, server) -> None:
    """The race behind issue 16, replayed on purpose: the map is fitted while Leaflet's stylesheet
    is missing (as when streamlit-folium re-inserts it and the fit runs before it has loaded), so
    the legend is a full-width block and the fit cannot count it; when the stylesheet applies, the
    legend shrinks into its corner and the map must refit beside it with no window event."""
    ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    page = ctx.new_page()
    try:
        _open(page, server, "/wall", "网格化服务管理指挥中心")
        _map_paths(page, at_least=20)
        frame = _map_frame(page)
        deadline = time.monotonic() + 30.0
        while not _district_clear(frame.evaluate(_MAP_JS))[0] and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _district_clear(frame.evaluate(_MAP_JS))[0], frame.evaluate("window.__gp_fits")
        # take the stylesheets away and fit (a window resize): the legend is an unplaced block.
        # Fits are counted in __gp_fit_n (the log keeps only the last 40, so its length is no
        # mark); the ones after a mark are those whose n is above it.
        since = "window.__gp_fits.filter(f => f.n > window.__gp_mark)"
        frame.evaluate("""() => {
            window.__gp_mark = window.__gp_fit_n || 0;
            document.querySelectorAll('link[rel=stylesheet]').forEach(l => { l.disabled = true; });
            window.dispatchEvent(new Event('resize')); }""")
        deadline = time.monotonic() + 10.0
        unstyled = frame.evaluate(since)
        while not unstyled and time.monotonic() < deadline:
            time.sleep(0.1)
            unstyled = frame.evaluate(since)
        assert unstyled and unstyled[-1]["legend"] == -1 and unstyled[-1]["pad"] == 6, unstyled
        # the stylesheet arrives: no window event, only the legend changes size
        frame.evaluate("""() => {
            window.__gp_mark = window.__gp_fit_n || 0;
            document.querySelectorAll('link[rel=stylesheet]').forEach(l => { l.disabled = false; }); }""")
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline:
            m = frame.evaluate(_MAP_JS)
            fits = frame.evaluate(since)
            if _district_clear(m)[0] and fits and fits[-1]["legend"] > 0:
                break
            time.sleep(0.25)
        ok, fill = _district_clear(m)
        assert ok, (f"after the stylesheet applied: legend right {m['legend_box'][2]:.0f} px, "
                    f"district {m['district']}, fill {fill:.0%}; fits since: {fits}")
        assert fits and fits[-1]["legend"] > 0 and fits[-1]["pad"] == fits[-1]["legend"], fits
    finally:
        ctx.close()


def test_data_page_validates_previews_and_cancels_an_upload(page, server, demo_gpkg, tmp_path,
                                                           artifacts_dir) -> None:
    import pandas as pd

    from layers.store import open_store

    s = open_store(str(demo_gpkg))
    grids = s.read("grids")
    before = s.count("facilities")
    rows = []
    for i, (_, g) in enumerate(grids.head(12).iterrows()):
        pt = g.geometry.representative_point()
        rows.append({"设施编号": f"UP-{i}", "设施类型": "clinic", "名称": f"上传设施{i}",
                     "社区代码": g["community_code"], "经度": pt.x, "纬度": pt.y})
    rows.append({"设施编号": "UP-bad", "设施类型": "spaceport", "名称": "坏行",
                 "社区代码": "123", "经度": 118.77, "纬度": 32.06})
    path = tmp_path / "设施.csv"
    pd.DataFrame(rows).to_csv(path, index=False, encoding="gbk")
    _open(page, server, "/data", "数据导入与导出")
    choose(page, page.get_by_label("导入到图层"), "公共服务设施（facilities）")
    page.locator("[data-testid='stFileUploader'] input[type=file]").set_input_files(str(path))
    page.get_by_text("校验报告").first.wait_for(timeout=TIMEOUT_MS)
    page.get_by_text("存在错误，不能写入").wait_for(timeout=TIMEOUT_MS)
    assert page.get_by_text("修改方法").count() >= 1
    _map_paths(page, at_least=1)  # the preview (points as H3 hexes)
    time.sleep(0.5)
    page.screenshot(path=str(artifacts_dir / "e2e-data-report.png"))
    assert page.get_by_role("button", name="写入数据库").is_disabled()
    page.get_by_role("button", name="取消").click()
    page.get_by_text("已取消，数据库未改变").wait_for(timeout=TIMEOUT_MS)
    assert s.count("facilities") == before


def test_data_page_opens_and_exports(page, server, artifacts_dir) -> None:
    _open(page, server, "/data", "数据导入与导出")
    page.get_by_text("合成演示数据").first.wait_for()
    page.get_by_role("tab", name="导出").click()
    settle(page, quiet_s=0.5)  # a click during a rerun lands on a button about to be replaced
    with page.expect_download(timeout=TIMEOUT_MS) as dl:
        page.get_by_role("button", name=re.compile(r"下载 grids\.gpkg")).click()
    assert dl.value.suggested_filename == "grids.gpkg"
    page.get_by_role("tab", name="导入").click()
    time.sleep(0.5)
    page.screenshot(path=str(artifacts_dir / "e2e-data.png"))
    assert not [u for u in page.requests if not is_local(u, server)]


def test_offline_mode_requests_nothing_outside_localhost(page, server) -> None:
    for path, text in (("/", "网格总览"), ("/wall", "指挥中心"), ("/data", "数据导入与导出")):
        _open(page, server, path, text)
        if path != "/data":
            _map_paths(page, at_least=10)
    outside = sorted({u for u in page.requests if not is_local(u, server)})
    assert not outside, outside
    assert any("/app/static/leaflet/leaflet.js" in u for u in page.requests)


def test_streamlit_own_english_is_replaced_in_chinese(page, server) -> None:
    """Streamlit 1.67 has no translations: the uploader's button and size line and the empty
    dropdown are drawn from the catalogue over CSS; the filters offer no "Select all"."""
    _open(page, server, "/data", "数据导入与导出")
    zone = page.locator("[data-testid='stFileUploaderDropzone']")
    zone.wait_for(timeout=TIMEOUT_MS)
    button = _drawn(zone.locator("button [data-testid='stMarkdownContainer'] p"), '"选择文件"|0px')
    size = _drawn(zone.locator("[data-testid='stFileUploaderDropzoneInstructions'] span"),
                  '"拖放文件到此处，每个文件不超过 200 MB"')
    assert button == '"选择文件"|0px', button
    assert size.startswith('"拖放文件到此处，每个文件不超过 200 MB"') and size.endswith("|0px"), size
    _open(page, server, "/incidents", "事件办理台账")
    open_list(page, "inc_stage")
    assert page.get_by_role("option", name="Select all").count() == 0
    page.keyboard.press("Escape")
    # typed into the box itself (a rerun between opening and typing would take the focus away)
    open_list(page, "inc_stage", typed="zzzz")
    empty = page.locator("[role='listbox'][data-empty='true'] [role='option'] > span")
    empty.wait_for(timeout=TIMEOUT_MS)
    assert _drawn(empty, '"没有匹配的选项"').startswith('"没有匹配的选项"')


def _drawn(el, want: str, timeout_s: float = TIMEOUT_MS / 1000) -> str:
    """``::after`` content and font size of ``el`` once the content starts with ``want``.

    The catalogue's CSS is a markdown element of its own, so for a moment after the page
    draws the widget it may not be styled yet; the last value read is returned either way.
    """
    after = "e => getComputedStyle(e, '::after').content + '|' + getComputedStyle(e).fontSize"
    deadline = time.monotonic() + timeout_s
    got = el.evaluate(after)
    while not got.startswith(want) and time.monotonic() < deadline:
        time.sleep(0.2)
        got = el.evaluate(after)
    return got
