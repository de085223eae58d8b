"""Every filter option of every page renders something specific, never an exception.

The option grid of each page is taken from the page's own constants (time windows, map modes,
stages, metrics, …), and each test first checks that the widget on screen offers exactly those
options, so a new option is covered as soon as it is added. Empty and short results are part of
the grid: a 7-day window (one month only), a custom range with no cases, a day without GPS fixes.
A combination passes when the page raised nothing AND showed its heading plus either its content
(a map, a table, KPI tiles) or the page's own empty-state message.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json

import pytest

from dashboard import _hotspots as hot
from dashboard import _incidents as inc
from dashboard import state
from layers import analysis, taxonomy
from layers.i18n import t
from layers.schema import DEPARTMENTS, SOURCES, STAGES
from layers.store import open_store

ZH = "zh"
#: A custom date range years before the demo's data (within the date pickers' 10-year span): nothing.
EMPTY_RANGE = (dt.date(2020, 1, 1), dt.date(2020, 1, 31))


def _md(at) -> str:
    return "\n".join(m.value for m in at.markdown)


def _captions(at) -> str:
    return "\n".join(c.value for c in at.caption)


def _infos(at) -> str:
    return "\n".join(e.value for e in [*at.info, *at.success, *at.warning])


def _ok(at, what: str) -> None:
    assert not at.exception, f"{what}: {[e.message for e in at.exception]}"
    assert not at.error, f"{what}: {[e.value for e in at.error]}"


def _maps(at) -> int:
    return len(at.get("component_instance"))


@pytest.fixture(scope="module")
def scopes(demo_store: str) -> list[dict[str, str]]:
    """The district, one sub-district, one of its communities and one comprehensive grid there."""
    s = open_store(demo_store)
    try:
        grids = s.read("grids", columns=["code", "kind", "community_code"])
        coms = s.read("communities", columns=["code", "subdistrict_code"])
    finally:
        s.close()
    g = grids[grids["kind"] == "comprehensive"].sort_values("code").iloc[0]
    com = str(g["community_code"])
    sub = str(coms.loc[coms["code"] == com, "subdistrict_code"].iloc[0])
    return [{}, {"sub": sub}, {"sub": sub, "com": com}, {"sub": sub, "com": com, "grid": str(g["code"])}]


def _open(app, page: str, **params: str):
    for k, v in params.items():
        app.query_params[k] = v
    at = app.run()
    at.switch_page(f"views/{page}.py").run()
    _ok(at, page)
    return at


# --------------------------------------------------------------------------- 热点 hotspots


def _hotspots_rendered(at, what: str) -> None:
    _ok(at, what)
    assert f"## {inc.tp('hot.heading')}" in _md(at), what
    caps = _captions(at)
    assert "件事件" in caps, what  # the map's summary line
    assert _maps(at) == 1, what
    empty = inc.tp("hot.empty") in caps
    # the charts: four charts, or the empty note; 每月一题: a table, or why there is none
    assert empty or len(at.get("vega_lite_chart")) == 4, what
    topics = list(at.dataframe)  # the only table on the page
    assert topics or inc.tp("topic.none") in caps, what
    for d in topics:
        shown = d.value.astype(str)
        assert not shown.isin(["None", "<NA>", "nan"]).any().any(), f"{what}: {shown}"


@pytest.mark.parametrize("window", [*inc.WINDOWS, "custom"])
def test_hotspots_every_window_by_every_map_mode(app, window: str) -> None:
    at = _open(app, "hotspots")
    box = at.sidebar.selectbox(key="hot_window")
    assert len(box.options) == len(inc.WINDOWS) + 1
    box.set_value(window).run()
    if window == "custom":
        at.sidebar.date_input(key="hot_dates").set_value(EMPTY_RANGE).run()
    assert len(at.segmented_control(key="hot_mode").options) == len(hot.MODES)
    for mode in hot.MODES:
        at.segmented_control(key="hot_mode").set_value(mode).run()
        _hotspots_rendered(at, f"{window}/{mode}")
        if window == "custom":
            assert inc.tp("hot.empty") in _captions(at)
        elif mode == "emerging" and (inc.WINDOWS[window] or 10**6) // 7 < analysis.MIN_EHSA_STEPS:
            assert inc.tp("hot.too_short") in _captions(at)  # the CLI's minimum, layers.analysis
        else:  # every mode with cases has a legend
            script = json.loads(at.get("component_instance")[0].proto.json_args)["script"]
            assert "gp-legend" in script, f"{window}/{mode}: no legend"
        if mode == "rate" and window != "custom":  # the per-grid map counts grids, not hexagons
            assert "综合网格" in _captions(at) and "六边形" not in _captions(at).splitlines()[0]


def test_hotspots_every_resolution_and_significance_switch(app) -> None:
    at = _open(app, "hotspots")
    assert len(at.selectbox(key="hot_res").options) == len(hot.HEX_RES)
    for res, mode in itertools.product(hot.HEX_RES, ("hex", "gi", "emerging")):
        at.selectbox(key="hot_res").set_value(res).run()
        at.segmented_control(key="hot_mode").set_value(mode).run()
        _hotspots_rendered(at, f"{res}/{mode}")
    at.segmented_control(key="hot_mode").set_value("gi").run()
    at.toggle(key="hot_fdr").set_value(False).run()
    _hotspots_rendered(at, "gi without FDR")


def test_hotspots_each_category_level_and_source(app) -> None:
    at = _open(app, "hotspots")
    at.segmented_control(key="hot_mode").set_value("gi").run()
    for key, values in (("hot_cat", taxonomy.CATEGORY_CODES), ("hot_level", (1, 2, 3)), ("hot_source", SOURCES)):
        box = at.sidebar.multiselect(key=key)
        assert len(box.options) == len(values), key
        for value in values:
            at.sidebar.multiselect(key=key).set_value([value]).run()
            _hotspots_rendered(at, f"{key}={value}")
        at.sidebar.multiselect(key=key).set_value([]).run()
    # an item nobody reported in the last week: every part of the page is empty, none breaks
    at.sidebar.selectbox(key="hot_window").set_value("d7").run()
    for item in list(taxonomy.ITEMS)[:: max(len(taxonomy.ITEMS) // 4, 1)]:
        at.sidebar.multiselect(key="hot_item").set_value([item]).run()
        _hotspots_rendered(at, f"item {item}")


# --------------------------------------------------------------------------- 事件 case board


def _cases_rendered(at, what: str) -> None:
    _ok(at, what)
    assert f"## {inc.tp('cases.heading')}" in _md(at), what
    labels = [m.label for m in at.metric]
    assert labels[:3] == [inc.tp("kpi.incidents"), inc.tp("kpi.open"), inc.tp("kpi.overdue_open")], what
    table = [d for d in at.dataframe if d.value.shape[1] > 5]
    if at.metric[0].value in ("0", "—"):
        assert inc.tp("cases.none") in _infos(at), what
    else:
        assert table and len(table[0].value) > 0, what


@pytest.mark.parametrize("window", [*inc.WINDOWS, "custom"])
def test_case_board_every_window_overdue_or_not_and_every_scope(app, window: str, scopes) -> None:
    at = _open(app, "incidents")
    box = at.sidebar.selectbox(key="inc_window")
    assert len(box.options) == len(inc.WINDOWS) + 1
    box.set_value(window).run()
    if window == "custom":
        at.sidebar.date_input(key="inc_dates").set_value(EMPTY_RANGE).run()
    for overdue in (False, True):
        at.sidebar.checkbox(key="inc_overdue").set_value(overdue).run()
        _cases_rendered(at, f"{window}/overdue={overdue}")
    if window == "custom":
        assert at.metric[0].value in ("0", "—")
    for scope in scopes[1:]:
        for key, value in scope.items():
            at.sidebar.selectbox(key=f"w_{key}").set_value(value).run()
        _cases_rendered(at, f"{window}/{scope}")


def test_case_board_each_stage_department_category_and_level(app) -> None:
    at = _open(app, "incidents")
    at.sidebar.selectbox(key="inc_window").set_value("all").run()
    grid = (("inc_stage", STAGES), ("inc_dept", DEPARTMENTS), ("inc_cat", taxonomy.CATEGORY_CODES),
            ("inc_level", (1, 2, 3)))
    for key, values in grid:
        assert len(at.sidebar.multiselect(key=key).options) == len(values), key
        for value in values:
            at.sidebar.multiselect(key=key).set_value([value]).run()
            _cases_rendered(at, f"{key}={value}")
        at.sidebar.multiselect(key=key).set_value([]).run()


# --------------------------------------------------------------------------- 网格 explorer


def _explorer_rendered(at, what: str, scope: dict[str, str]) -> None:
    _ok(at, what)
    assert f"## {t('dashboard.explorer.heading', ZH)}" in _md(at), what
    assert _maps(at) == 1, what
    if "grid" in scope:
        assert scope["grid"] in _md(at), what  # the grid card


@pytest.mark.parametrize("level", [0, 3], ids=["district", "grid"])
def test_explorer_every_metric_scope_and_layer(app, level: int, scopes) -> None:
    at = _open(app, "explorer")
    assert len(at.sidebar.selectbox(key="w_metric").options) == len(state.METRICS)
    for key, value in scopes[level].items():
        at.sidebar.selectbox(key=f"w_{key}").set_value(value).run()
    for metric in state.METRICS:
        at.sidebar.selectbox(key="w_metric").set_value(metric).run()
        _explorer_rendered(at, f"{metric}/{scopes[level]}", scopes[level])
    if level == 0:
        for scope in scopes[1:3]:
            for key, value in scope.items():
                at.sidebar.selectbox(key=f"w_{key}").set_value(value).run()
            _explorer_rendered(at, str(scope), scope)
    for key in ("w_layer_sub", "w_layer_com", "w_layer_comp", "w_layer_ded", "w_layer_inc"):
        at.sidebar.checkbox(key=key).uncheck().run()
        _explorer_rendered(at, f"{key} off", scopes[level] if level else {})


# --------------------------------------------------------------------------- 巡查 patrol


def _patrol_rendered(at, what: str, *, empty: bool = False) -> None:
    from dashboard._patrol import tp

    _ok(at, what)
    assert f"## {tp('heading')}" in _md(at), what
    assert len(at.metric) >= 8, what
    assert _maps(at) in (0, 1), what
    if empty:
        assert tp("no_patrols") in _infos(at), what


@pytest.fixture(scope="module")
def workers_in(demo_store: str):
    """The ids of the workers whose grids lie in a scope (a dict of view codes)."""
    s = open_store(demo_store)
    try:
        workers = s.read("workers", columns=["id", "grid_code"])
    finally:
        s.close()

    def pick(scope: dict[str, str]) -> list[str]:
        code = scope.get("grid") or scope.get("com") or scope.get("sub") or ""
        return sorted(str(w) for w, g in zip(workers["id"], workers["grid_code"], strict=True)
                      if str(g).startswith(code))

    return pick


@pytest.mark.parametrize("mode", ["day", "range"])
def test_patrol_every_mode_scope_and_a_day_without_fixes(app, mode: str, scopes, workers_in) -> None:
    at = _open(app, "patrol")
    assert len(at.sidebar.radio(key="pt_mode").options) == 2
    at.sidebar.radio(key="pt_mode").set_value(mode).run()
    _patrol_rendered(at, mode)
    for scope in scopes[1:]:
        for key, value in scope.items():
            at.sidebar.selectbox(key=f"w_{key}").set_value(value).run()
        _patrol_rendered(at, f"{mode}/{scope}")
        workers = at.sidebar.selectbox(key="pt_worker").options
        assert workers, scope
    for worker in workers_in(scopes[-1]) if mode == "day" else ():  # the same code in a range
        at.session_state["pt_worker"] = worker
        at.run()
        _patrol_rendered(at, f"{mode}/worker {worker}")
        assert at.sidebar.selectbox(key="pt_worker").value == worker
    if mode == "day":
        at.sidebar.date_input(key="pt_day").set_value(EMPTY_RANGE[0]).run()
    else:
        at.sidebar.date_input(key="pt_range").set_value(EMPTY_RANGE).run()
    _patrol_rendered(at, f"{mode}/no fixes", empty=True)


# --------------------------------------------------------------------------- 网格调整 planner, wall


@pytest.mark.parametrize("balance", ["households", "population"])
def test_planner_every_balance_section_and_scope(app, balance: str, scopes) -> None:
    from dashboard._planner import tp

    at = _open(app, "planner")
    at.sidebar.radio(key="pl_balance").set_value(balance).run()
    for scope in scopes[:3] if balance == "households" else scopes[:1]:  # scopes once is enough
        for key, value in scope.items():
            at.sidebar.selectbox(key=f"w_{key}").set_value(value).run()
        for section in ("plan", "versions", "circle"):
            at.segmented_control(key="pl_section").set_value(section).run()
            _ok(at, f"{balance}/{scope}/{section}")
            assert f"## {tp('heading')}" in _md(at)
            assert tp("sections." + section) in at.segmented_control(key="pl_section").options
            if section == "plan":  # the current grids and their figures before any plan is run
                assert _maps(at) == 1 and at.dataframe, f"{scope}: nothing shown before a plan"


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_wall_in_each_language(app, lang: str) -> None:
    at = _open(app, "wall", lang=lang)
    md = _md(at)
    assert t("dashboard.wall.heading", lang) in md
    assert md.count("data-kpi=") == 8 and _maps(at) == 1
