"""AppTest tests of the incident pages, 事件 case board and 热点 hotspots, in the real shell."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from layers.i18n import t
from layers.store import open_store

#: The heading each page shows: a page left out of the app's navigation shows the default page
#: instead, and :func:`_open` fails.
HEADINGS = {"incidents.py": "incident_pages.cases.heading", "hotspots.py": "incident_pages.hot.heading"}


@pytest.fixture()
def shell(app):
    """The dashboard as shipped, with its own page list (not yet run)."""
    return app, "views/"


def _open(shell, page: str, **params: str):
    at, prefix = shell
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    at.switch_page(prefix + page).run()
    assert not at.exception, at.exception
    heading = t(HEADINGS[page], params.get("lang", "zh"))
    assert f"## {heading}" in _md(at), f"{page} is not in the app's navigation"
    return at


def _md(at) -> str:
    return "\n".join(m.value for m in at.markdown)


@pytest.fixture()
def collected_case(demo_store: str) -> str:
    """A case still at stage "collected" in the shared small demo."""
    s = open_store(demo_store)
    try:
        df = s.read("incidents", columns=["service_request_id", "stage"], where={"stage": "collected"})
    finally:
        s.close()
    assert len(df), "the small demo should hold a collected case"
    return str(df["service_request_id"].iloc[0])


def test_case_board_shows_filters_kpis_and_a_masked_table(shell) -> None:
    at = _open(shell, "incidents.py")
    assert "## 事件办理台账" in _md(at)
    assert {s.label for s in at.sidebar.selectbox} >= {"街道", "社区", "网格", "时间范围"}
    assert {m.label for m in at.sidebar.multiselect} == {"流程阶段", "承办部门", "大类", "事项", "等级"}
    labels = [m.label for m in at.metric]
    assert labels[:7] == ["事件数", "在办", "超期在办", "结案率", "按期结案率", "返工率", "延期率"]
    assert re.fullmatch(r"\d+(\.\d)?%", at.metric[3].value)
    table = at.dataframe[0].value
    assert list(table.columns[:4]) == ["事件编号", "受理时间", "事项", "等级"]
    phones = table["联系电话"][table["联系电话"] != "—"]
    assert len(phones) and phones.str.fullmatch(r"\*{7}\d{4}").all()  # the last 4 digits only
    names = table["反映人"][table["反映人"] != "—"]
    assert names.str.contains(r"\*").all()


def test_filters_narrow_the_cases(shell) -> None:
    at = _open(shell, "incidents.py")
    total = int(at.metric[0].value.replace(",", ""))
    at.sidebar.multiselect(key="inc_stage").set_value(["handling"]).run()
    assert not at.exception
    n = int(at.metric[0].value.replace(",", ""))
    assert 0 < n < total
    assert set(at.dataframe[0].value["阶段"]) == {"处理中"}
    at.sidebar.multiselect(key="inc_level").set_value([3]).run()
    assert int(at.metric[0].value.replace(",", "") if at.metric[0].value != "—" else 0) <= n


def test_a_case_opens_with_its_history_and_refuses_an_illegal_step(shell, collected_case, env) -> None:
    from tests._signin import session_token

    s = open_store(env)
    try:
        grid = s.read("incidents", columns=["grid_code"],
                      where={"service_request_id": collected_case})["grid_code"].iloc[0]
    finally:
        s.close()
    # a full-time grid worker of the case's own grid: the role comes from the account
    shell[0].session_state["gp_token"] = session_token(env, "test-worker", role="grid_worker_full",
                                                       scope_code=str(grid))
    at = _open(shell, "incidents.py")
    at.sidebar.selectbox(key="inc_window").set_value("all").run()
    at.selectbox(key="inc_case").set_value(collected_case).run()
    assert not at.exception
    assert f"#### 事件 {collected_case}" in _md(at)
    hist = next(d.value for d in at.dataframe if "新阶段" in d.value.columns)  # the history
    assert list(hist["新阶段"])[-1] == "问题收集"
    assert len(at.get("component_instance")) == 1  # the small map
    assert not [b for b in at.selectbox if b.key == "inc_role"]  # no role to pick
    assert not [b for b in at.text_input if b.key == "inc_actor"]  # no name to type
    # a grid worker may not assign: ask for every action and try it
    at.checkbox(key="inc_show_all").check().run()
    at.selectbox(key="inc_action").set_value("assign").run()
    at.button(key="inc_submit").click().run()
    assert not at.exception
    err = " ".join(e.value for e in at.error)
    assert "「专职网格员」无权办理事件（派遣）" in err and "未作任何修改" in err
    s = open_store(env)
    try:
        stage = s.read("incidents", columns=["stage"], where={"service_request_id": collected_case})
    finally:
        s.close()
    assert stage["stage"].iloc[0] == "collected"


def test_case_board_in_english(shell) -> None:
    at = _open(shell, "incidents.py", lang="en")
    md = _md(at)
    assert "## Case board" in md and "事件办理台账" not in md
    assert {m.label for m in at.metric} >= {"Closure rate", "On-time closure rate", "Rework rate", "Extension rate"}
    assert {s.label for s in at.sidebar.multiselect} >= {"Stage", "Department", "Category", "Item", "Level"}
    assert list(at.dataframe[0].value.columns[:3]) == ["Case id", "Received", "Item"]


@pytest.mark.parametrize("mode", ["hex", "heat", "clusters", "rate", "gi", "emerging"])
def test_hotspot_page_renders_every_map_mode(shell, mode) -> None:
    at = _open(shell, "hotspots.py")
    if mode != "hex":
        at.button_group(key="hot_mode").set_value(mode).run()
    assert not at.exception, at.exception
    md = _md(at)
    assert "## 事件热点分析" in md
    assert len(at.get("component_instance")) == 1  # the Leaflet map
    cap = "\n".join(c.value for c in at.caption)
    assert "件事件" in cap
    if mode == "gi":
        assert re.search(r"热点 \d+ 个 · 冷点 \d+ 个", cap)
    if mode == "emerging":
        assert "按周统计" in cap


def test_hotspot_page_has_charts_and_the_problem_of_the_month(shell) -> None:
    at = _open(shell, "hotspots.py")
    md = _md(at)
    for title in ("一周各时段事件数", "按月事件数", "按大类", "按来源", "每月一题"):
        assert title in md
    assert len(at.get("vega_lite_chart")) == 4
    topics = at.dataframe[0].value
    assert len(topics) >= 10 and "上升最多的事项" in topics.columns
    months = pd.to_datetime(topics["月份"])
    assert months.is_monotonic_decreasing


def test_hotspot_filters_change_the_counts(shell) -> None:
    at = _open(shell, "hotspots.py")
    before = " ".join(c.value for c in at.caption)
    at.sidebar.multiselect(key="hot_source").set_value(["sensor"]).run()
    assert not at.exception
    after = " ".join(c.value for c in at.caption)
    n0 = int(re.search(r"([\d,]+) 件事件", before).group(1).replace(",", ""))
    n1 = int(re.search(r"([\d,]+) 件事件", after).group(1).replace(",", ""))
    assert 0 < n1 < n0
