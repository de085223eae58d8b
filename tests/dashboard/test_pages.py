"""AppTest smoke tests: every page runs without an exception and shows its key elements."""

from __future__ import annotations

import re

import pytest

from layers.store import open_store


def _md(at) -> str:
    return "\n".join(m.value for m in at.markdown)


@pytest.fixture(scope="module")
def codes(demo_store: str) -> dict[str, str]:
    """A sub-district, one of its communities and one of its comprehensive grids."""
    s = open_store(demo_store)
    grids = s.read("grids", columns=["code", "kind", "community_code"])
    coms = s.read("communities", columns=["code", "subdistrict_code"])
    g = grids[grids["kind"] == "comprehensive"].sort_values("code").iloc[0]
    com = str(g["community_code"])
    sub = str(coms.loc[coms["code"] == com, "subdistrict_code"].iloc[0])
    return {"sub": sub, "com": com, "grid": str(g["code"])}


def test_explorer_opens_with_map_selectors_and_demo_label(app) -> None:
    at = app.run()
    assert not at.exception
    md = _md(at)
    assert "## 网格总览" in md
    assert "合成演示数据" in md  # the demo label
    labels = {s.label for s in at.sidebar.selectbox}
    assert {"底图", "街道", "社区", "网格", "专题着色"} <= labels
    assert {c.label for c in at.sidebar.checkbox} == {"街道", "社区", "综合网格", "专属网格", "本月事件（H3 六边形）"}
    assert len(at.get("component_instance")) == 1  # the Leaflet map
    assert "在地图上点击网格" in "\n".join(c.value for c in at.caption)


def test_a_shared_link_restores_the_view_and_shows_the_grid_card(app, codes) -> None:
    for k, v in codes.items():
        app.query_params[k] = v
    app.query_params["metric"] = "population"
    at = app.run()
    assert not at.exception
    md = _md(at)
    assert "网格信息卡" in md and codes["grid"] in md
    assert {m.label for m in at.metric} >= {"户数", "人口", "本月事件", "本月巡查时长（小时）"}
    assert at.sidebar.selectbox(key="w_sub").value == codes["sub"]
    assert at.sidebar.selectbox(key="w_grid").value == codes["grid"]
    assert at.sidebar.selectbox(key="w_metric").value == "population"


def test_selectors_drill_down_and_write_the_link(app, codes) -> None:
    at = app.run()
    at.sidebar.selectbox(key="w_sub").set_value(codes["sub"]).run()
    assert not at.exception
    assert at.query_params["sub"] == [codes["sub"]] or at.query_params["sub"] == codes["sub"]
    at.sidebar.selectbox(key="w_com").set_value(codes["com"]).run()
    at.sidebar.selectbox(key="w_grid").set_value(codes["grid"]).run()
    assert not at.exception
    assert codes["grid"] in _md(at)
    at.button(key="w_up").click().run()  # back to the community
    assert at.sidebar.selectbox(key="w_grid").value == ""


def test_search_by_code_selects_the_grid(app, codes) -> None:
    at = app.run()
    at.sidebar.text_input(key="w_search").input(codes["grid"]).run()
    assert not at.exception
    assert codes["grid"] in _md(at)
    assert at.sidebar.selectbox(key="w_com").value == codes["com"]


@pytest.mark.parametrize("metric", ["households", "workers_per_1000_hh", "incidents_per_1000_res",
                                    "patrol_hours"])
def test_every_choropleth_renders(app, metric) -> None:
    app.query_params["metric"] = metric
    app.query_params["layers"] = "sub,com,comp,ded,inc"
    at = app.run()
    assert not at.exception


def test_language_switch_changes_every_label(app) -> None:
    at = app.run()
    at.sidebar.button_group(key="w_lang").set_value("en").run()
    assert not at.exception
    md = _md(at)
    assert "## Grid explorer" in md and "网格总览" not in md
    assert "Synthetic demo data" in md
    assert {s.label for s in at.sidebar.selectbox} >= {"Basemap", "Sub-district", "Community", "Grid"}
    assert at.query_params["lang"] in (["en"], "en")


def test_wall_display_shows_kpis_feed_and_whistles(app) -> None:
    at = app.run()
    at.switch_page("views/wall.py").run()
    assert not at.exception
    md = _md(at)
    for kpi in ("today", "month", "open", "overdue", "closure_rate", "on_time_rate", "on_patrol"):
        assert f"data-kpi='{kpi}'" in md
    for text in ("今日事件", "结案率", "按期结案率", "在岗巡查网格员", "最新事件", "吹哨事项办理中", "合成演示数据"):
        assert text in md
    assert len(at.get("component_instance")) == 1
    # the numbers are numbers
    values = re.findall(r"<div class='v'>([^<]+)</div>", md)
    assert len(values) == 7 and all(re.fullmatch(r"[\d,]+|[\d.]+%|—", v) for v in values)


def test_wall_in_english(app) -> None:
    app.query_params["lang"] = "en"
    at = app.run()
    at.switch_page("views/wall.py").run()
    md = _md(at)
    assert "Closure rate" in md and "On-time closure rate" in md and "结案率" not in md


def test_data_page_shows_import_export_and_audit(app) -> None:
    at = app.run()
    at.switch_page("views/data.py").run()
    assert not at.exception
    md = _md(at)
    assert "## 数据导入与导出" in md and "合成演示数据" in md
    assert {t.label for t in at.tabs} == {"导入", "导出"}
    assert {s.label for s in at.selectbox} >= {"导入到图层", "坐标系", "图层", "格式"}
    assert {e.label for e in at.expander} == {"数据库中的图层", "最近的修改记录"}
