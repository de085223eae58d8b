"""AppTest tests of the explorer and the wall: every page runs, shows its key elements, masks
personal data, and shows the patrol engine's figures for the latest day with GPS fixes."""

from __future__ import annotations

import json
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from dashboard import _kpis
from layers.privacy import mask_name
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
    assert {m.label for m in at.metric} >= {"户数", "人口", "本月事件", "昨日巡查时长（小时）"}
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
    for kpi in ("today", "month", "open", "overdue", "closure_rate", "on_time_rate", "on_patrol",
                "compliance"):
        assert f"data-kpi='{kpi}'" in md
    for text in ("今日事件", "结案率", "按期结案率", "在岗巡查网格员", "昨日4小时达标率", "最新事件",
                 "吹哨事项办理中", "合成演示数据"):
        assert text in md
    assert len(at.get("component_instance")) == 1
    # the numbers are numbers
    values = re.findall(r"<div class='v'>([^<]+)</div>", md)
    assert len(values) == 8 and all(re.fullmatch(r"[\d,]+|[\d.]+%|—", v) for v in values)


def test_wall_in_english(app) -> None:
    app.query_params["lang"] = "en"
    at = app.run()
    at.switch_page("views/wall.py").run()
    md = _md(at)
    assert "Closure rate" in md and "On-time closure rate" in md and "结案率" not in md
    assert "4-hour rule met, yesterday" in md


def test_data_page_shows_import_export_and_audit(app) -> None:
    at = app.run()
    at.switch_page("views/data.py").run()
    assert not at.exception
    md = _md(at)
    assert "## 数据导入与导出" in md and "合成演示数据" in md
    assert {t.label for t in at.tabs} == {"导入", "导出"}
    assert {s.label for s in at.selectbox} >= {"导入到图层", "坐标系", "图层", "格式"}
    assert {e.label for e in at.expander} == {"数据库中的图层", "最近的修改记录"}


# --------------------------------------------------------------------------- personal data


def _screen_text(at) -> str:
    """Everything a person can read on the page: text elements, metrics, and the map's HTML."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [f"{m.label} {m.value} {m.help}" for m in at.metric]
    for c in at.get("component_instance"):
        args = json.loads(c.proto.json_args)
        parts += [args.get("script", ""), args.get("html", "")]
    return "\n".join(parts)


@pytest.fixture(scope="module")
def people(demo_store: str) -> set[str]:
    """Full names of every worker and grid leader of the demo (none is part of a place name)."""
    s = open_store(demo_store)
    names = set(s.read("workers", columns=["name"])["name"]) | set(s.read("grids", columns=["leader"])["leader"].dropna())
    return {n for n in names if len(n) >= 2}


def test_the_grid_card_shows_the_leader_masked(app, codes, demo_store) -> None:
    grids = open_store(demo_store).read("grids", columns=["code", "leader"])
    leader = str(grids.loc[grids["code"] == codes["grid"], "leader"].iloc[0])
    assert len(leader) >= 2
    for k, v in codes.items():
        app.query_params[k] = v
    at = app.run()
    assert not at.exception
    md = _md(at)
    masked = mask_name(leader).replace("*", "\\*")  # 谢\* in Markdown, shown as 谢*
    assert masked.startswith(leader[0]) and f"- **网格长**: {masked}" in md
    assert leader not in _screen_text(at)


@pytest.mark.parametrize("page", ["explorer", "wall"])
def test_no_full_name_reaches_the_screen(app, codes, people, page) -> None:
    for k, v in codes.items():
        app.query_params[k] = v
    app.query_params["layers"] = "sub,com,comp,ded,inc"
    app.query_params["metric"] = "patrol_hours"
    at = app.run()
    if page == "wall":
        at.switch_page("views/wall.py").run()
    assert not at.exception
    text = _screen_text(at)
    assert len(text) > 1000
    shown = sorted(n for n in people if n in text)
    assert not shown, shown


# --------------------------------------------------------------------------- patrol figures


def _engine_day(demo_store: str) -> tuple[pd.Timestamp, pd.DataFrame, pd.DataFrame]:
    """time_in_grid and post_coverage of the demo's yesterday, straight from geo.patrol."""
    from data.demo import DEMO_ANCHOR
    from geo import patrol

    day = pd.Timestamp(DEMO_ANCHOR).normalize() - pd.Timedelta(days=1)
    s = open_store(demo_store)
    fixes = s.read("patrol_points", columns=["worker_id", "time", "accuracy_m"],
                   between={"time": (day - pd.Timedelta(minutes=10), day + pd.Timedelta(days=1, minutes=10))})
    grids = s.read("grids", columns=["code"])
    workers = s.read("workers", columns=["id", "grid_code", "post", "role"])
    clean = patrol.clean_fixes(fixes)
    per_worker = patrol.time_in_grid(clean, grids, workers, day=day).assign(role=workers["role"].to_numpy())
    per_grid = patrol.post_coverage(clean, grids, workers, day=day).set_index("grid_code")
    return day, per_worker, per_grid


def test_the_card_shows_yesterdays_patrol_hours_of_the_grid(app, codes, demo_store) -> None:
    _day, _pw, per_grid = _engine_day(demo_store)
    want = float(per_grid.loc[codes["grid"], "covered_h"])
    assert want > 0
    for k, v in codes.items():
        app.query_params[k] = v
    at = app.run()
    metric = next(m for m in at.metric if "巡查时长" in m.label)
    assert metric.label == "昨日巡查时长（小时）"
    assert "2026-11-19" in metric.help
    assert metric.value == f"{want:,.1f}"


def test_the_patrol_choropleth_names_its_day(app) -> None:
    app.query_params["metric"] = "patrol_hours"
    at = app.run()
    assert not at.exception
    script = json.loads(at.get("component_instance")[0].proto.json_args)["script"]
    assert "昨日巡查时长（小时）" in script  # the legend title


def test_the_wall_shows_yesterdays_full_time_compliance(app, demo_store) -> None:
    _day, per_worker, _pg = _engine_day(demo_store)
    duty = per_worker[(per_worker["role"] == "full_time") & (per_worker["n_fixes"] > 0)]
    assert len(duty) >= 10 and duty["meets_rule"].any() and not duty["meets_rule"].all()
    want = f"{duty['meets_rule'].mean() * 100:.1f}%"
    at = app.run()
    at.switch_page("views/wall.py").run()
    md = _md(at)
    tile = re.search(r"data-kpi='compliance'><div class='v'>([^<]+)</div><div class='l'>([^<]+)<", md)
    assert tile and tile.groups() == (want, "昨日4小时达标率")


# --------------------------------------------------------------------------- hand-drawn


DAY = pd.Timestamp("2024-05-06")


def _walk(worker: str, start: str, hours: float, *, x0: float) -> pd.DataFrame:
    """One fix a minute for ``hours`` from ``start``, walking back and forth around ``x0``."""
    times = pd.date_range(f"2024-05-06 {start}", periods=int(hours * 60) + 1, freq="1min")
    lon = x0 + 0.003 * np.sin(np.arange(len(times)) / 10)
    return pd.DataFrame({"worker_id": worker, "time": times, "lon": lon, "lat": 32.055})


def test_patrol_day_and_compliance_on_a_hand_drawn_grid() -> None:
    grids = gpd.GeoDataFrame({"code": ["g1", "g2"]},
                             geometry=[shapely.box(118.770, 32.050, 118.780, 32.060),
                                       shapely.box(118.780, 32.050, 118.790, 32.060)], crs=4326)
    workers = pd.DataFrame({
        "id": ["ft_ok", "ft_short", "ft_off", "pt", "leader"],
        "grid_code": ["g1", "g1", "g1", "g1", "g2"],
        "post": ["A", "B", "A", None, None],
        "role": ["full_time", "full_time", "full_time", "part_time", "grid_leader"],
    })
    df = pd.concat([
        _walk("ft_ok", "08:00", 4.5, x0=118.775),     # 4.5 h in g1: meets the rule
        _walk("ft_short", "14:00", 2.0, x0=118.775),  # 2 h in g1: does not
        _walk("pt", "10:00", 1.0, x0=118.775),        # part-time: not held to the rule
        _walk("leader", "09:00", 1.0, x0=118.785),    # grid leader: not held to it either
    ], ignore_index=True)                             # ft_off: no fix that day (off duty)
    fixes = gpd.GeoDataFrame(df[["worker_id", "time"]],
                             geometry=gpd.points_from_xy(df["lon"], df["lat"]), crs=4326)
    day = _kpis.patrol_day(fixes, grids, workers, day=DAY)
    pw = day.per_worker.set_index("worker_id")
    assert pw.loc["ft_ok", "hours_in_grid"] == pytest.approx(4.5, abs=0.01)
    assert pw.loc["ft_short", "hours_in_grid"] == pytest.approx(2.0, abs=0.01)
    assert pw["meets_rule"].to_dict() == {"ft_ok": True, "ft_short": False, "ft_off": False,
                                          "pt": False, "leader": False}
    assert pw.loc["leader", "role"] == "grid_leader"
    # full-time workers on duty: ft_ok meets the rule, ft_short does not; ft_off, pt, leader don't count
    assert _kpis.compliance_rate(day.per_worker) == 0.5
    # g1 had someone inside 08:00-12:30 and 14:00-16:00 (the part-timer's hour lies within)
    assert day.per_grid.loc["g1", "covered_h"] == pytest.approx(6.5, abs=0.01)
    assert day.per_grid.loc["g2", "covered_h"] == pytest.approx(1.0, abs=0.01)
    k = _kpis.wall_kpis(pd.DataFrame({"requested_datetime": pd.to_datetime([]), "expected_datetime": pd.to_datetime([]),
                                      "closed_datetime": pd.to_datetime([]), "stage": [], "whistle": []}),
                        None, now=DAY + pd.Timedelta(days=1, hours=9), per_worker=day.per_worker)
    assert k["compliance"] == 0.5


def test_compliance_without_full_time_workers_on_duty_is_unknown() -> None:
    pw = pd.DataFrame({"role": ["part_time", "full_time"], "n_fixes": [10, 0],
                       "meets_rule": [True, False], "hours_in_grid": [5.0, 0.0]})
    assert np.isnan(_kpis.compliance_rate(pw))
    assert np.isnan(_kpis.compliance_rate(pw.iloc[0:0]))


def test_a_click_inside_a_dedicated_grid_picks_the_comprehensive_one_in_metres(env) -> None:
    import warnings

    from dashboard import _explorer, state

    s = open_store(env)
    try:
        grids = s.read("grids", columns=["code", "kind", "community_code"])
    finally:
        s.close()
    ded = grids[grids["kind"] == "dedicated"].iloc[0]
    pt = ded.geometry.representative_point()
    comp = grids[(grids["kind"] == "comprehensive") & grids.intersects(pt)]
    assert len(comp) == 1
    view = state.View(sub=str(ded["community_code"])[:9], com=str(ded["community_code"]),
                      layers=("comp", "ded"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Geometry is in a geographic CRS ... 'area'" fails the test
        change = _explorer.drill(view, pt.x, pt.y)
    assert change is not None and change["grid"] == str(comp["code"].iloc[0])
    # and the view of a tiny grid never zooms in closer than MIN_VIEW_M across
    b = _explorer.min_extent(np.array(ded.geometry.bounds))
    assert (b[3] - b[1]) * 111_320 >= _explorer.MIN_VIEW_M - 1
