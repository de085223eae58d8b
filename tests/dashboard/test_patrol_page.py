"""AppTest tests of the 巡查 patrol page in the real shell, on the small demo district."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from layers.i18n import t
from layers.store import open_store


@pytest.fixture()
def shell(app):
    """The dashboard as shipped, with its own page list (not yet run)."""
    return app, "views/"


def _open(shell, **params: str):
    at, prefix = shell
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    at.switch_page(prefix + "patrol.py").run()
    assert not at.exception, at.exception
    # a page left out of the app's navigation shows the default page instead
    assert f"## {t('patrol_page.heading', params.get('lang', 'zh'))}" in _md(at), "the patrol page is not in the app"
    return at


def _md(at) -> str:
    return "\n".join(m.value for m in at.markdown)


@pytest.fixture(scope="module")
def history_grid(demo_store: str) -> dict[str, str]:
    """A grid of the community with a week of patrol history, and its parents."""
    s = open_store(demo_store)
    try:
        fixes = s.read("patrol_points", columns=["worker_id", "time"],
                       between={"time": (pd.Timestamp("2026-11-13"), pd.Timestamp("2026-11-14"))})
        workers = s.read("workers", columns=["id", "grid_code"])
        coms = s.read("communities", columns=["code", "subdistrict_code"])
    finally:
        s.close()
    grid = workers.loc[workers["id"].isin(fixes["worker_id"]), "grid_code"].sort_values().iloc[0]
    com = grid[:12]
    sub = str(coms.loc[coms["code"] == com, "subdistrict_code"].iloc[0])
    return {"sub": sub, "com": com, "grid": str(grid)}


def test_patrol_page_opens_on_yesterday_with_kpis_table_and_map(shell) -> None:
    at = _open(shell)
    md = _md(at)
    assert "## 网格员巡查" in md and "合成演示数据" in md
    assert at.sidebar.date_input(key="pt_day").value == date(2026, 11, 19)  # the demo anchor's yesterday
    labels = [m.label for m in at.metric]
    assert labels[:3] == ["有轨迹的网格员", "达到4小时（专职）", "达到4小时（全部）"]
    assert at.metric[0].value == "82"  # every worker of the small demo patrols yesterday
    table = at.dataframe[0].value
    assert list(table.columns[:6]) == ["网格", "人员编号", "网格员", "类型", "岗位", "本网格内（小时）"]
    assert set(table["达标"]) == {"✓", "✗"}
    assert table["网格员"].str.contains(r"\*").all()  # names masked
    assert (table["达标"] == "✓").sum() == (table["本网格内（小时）"] >= 4.0 - 1e-9).sum()
    assert len(at.get("component_instance")) == 1  # the Leaflet map
    assert at.slider[0].label == "回放时刻"
    dropped = at.dataframe[1].value
    assert "静止时的定位漂移" in set(dropped["原因"]) and dropped["定位点数"].sum() > 0


def test_a_grid_lists_its_unvisited_buildings_and_the_slider_replays(shell, history_grid) -> None:
    at = _open(shell, **history_grid)
    assert set(at.dataframe[0].value["网格"]) == {at.dataframe[0].value["网格"].iloc[0]}  # one grid
    stale_md = "\n".join(c.value for c in at.caption)
    assert "栋楼在截至 2026-11-19 的 7 天内无人到访" in stale_md
    slider = at.slider[0]
    end = slider.value  # the replay starts at the day's last fix
    mid = (end - timedelta(hours=3)).replace(second=0, microsecond=0)
    slider.set_value(mid).run()
    assert not at.exception, at.exception
    status = [c.value for c in at.caption if "已走" in c.value]
    assert status and status[0].startswith(mid.strftime("%H:%M"))


def test_a_date_range_adds_a_date_column_and_english_follows_the_switch(shell, history_grid) -> None:
    at = _open(shell, lang="en", **history_grid)
    at.sidebar.radio(key="pt_mode").set_value("range").run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert "Date" in table.columns and table["Date"].nunique() > 1
    assert "## Grid-worker patrols" in _md(at)
    assert at.selectbox(key="pt_replay_day").value == date(2026, 11, 19)


def test_staleness_classes_and_track_simplification() -> None:
    from dashboard import _patrol as pt
    from dashboard.maps import MapConfig

    assert pt.staleness_class([0.5, 24.0, 24.5, 168.0, 169.0, np.nan]).tolist() == [0, 0, 1, 2, 3, 4]
    # an L-shaped walk with 1 m of zig-zag and a second trip: two lines, zig-zag gone
    x = np.r_[np.arange(0, 101, 10.0), np.full(10, 100.0), [500.0, 510.0]]
    y = np.r_[np.tile([0.0, 1.0], 6)[:11], np.arange(10, 101, 10.0), [0.0, 0.0]]
    trip = np.r_[np.zeros(21, int), [1, 1]]
    from pyproj import CRS

    crs = CRS.from_epsg(32650)
    track = pt.Track(np.arange(23).astype("datetime64[m]").astype("datetime64[ns]"), x, y,
                     np.zeros(23), np.zeros(23), trip, crs)
    g = pt.track_geometry(track, MapConfig(basemap="none")).geometry.iloc[0]
    assert g.geom_type == "MultiLineString" and len(g.geoms) == 2
    assert len(g.geoms[0].coords) == 3  # start, corner, end
    lon, lat, km = pt.position_at(track, np.datetime64(10, "m").astype("datetime64[ns]"))
    assert km == pytest.approx(np.hypot(10, 1) * 10 / 1000)
    assert pt.position_at(track, np.datetime64(-1, "m").astype("datetime64[ns]")) is None


def test_the_track_breaks_at_a_gap_in_time_and_at_a_jump() -> None:
    from pyproj import CRS

    from dashboard import _patrol as pt
    from dashboard.maps import MapConfig

    # one trip: 5 fixes 30 s / 20 m apart, a 10-minute gap, 5 more, a 400 m jump, 5 more
    t = np.r_[np.arange(5) * 30, 900 + np.arange(5) * 30, 1200 + np.arange(5) * 30].astype("datetime64[s]")
    x = np.r_[np.arange(5) * 20.0, 100 + np.arange(5) * 20.0, 580 + np.arange(5) * 20.0]
    y = np.r_[np.zeros(10), np.full(5, 300.0)]
    assert pt.track_parts(t, x, y, np.zeros(15, int)).tolist() == [0] * 5 + [1] * 5 + [2] * 5
    track = pt.Track(t.astype("datetime64[ns]"), x, y, np.zeros(15), np.zeros(15), np.zeros(15, int),
                     CRS.from_epsg(32650))
    g = pt.track_geometry(track, MapConfig(basemap="none"), tolerance_m=0.1).geometry.iloc[0]
    assert len(g.geoms) == 3  # no straight line across the gap or the jump
    # a lone fix between two jumps is no line at all, and the pieces around it still are
    x[5] = 5000.0
    lone = pt.Track(track.time, x, y, track.lon, track.lat, track.trip, track.crs)
    g = pt.track_geometry(lone, MapConfig(basemap="none"), tolerance_m=0.1).geometry.iloc[0]
    assert len(g.geoms) == 3  # the five before, the four after the lone fix, the last five


def test_stale_buildings_are_listed_and_the_play_button_restarts_the_replay(shell, demo_store) -> None:
    s = open_store(demo_store)
    try:
        grids = s.read("grids", columns=["code", "kind", "community_code"])
        coms = s.read("communities", columns=["code", "subdistrict_code"])
    finally:
        s.close()
    # the small demo's grid with buildings nobody reached on 2026-11-13..19 (found by geo.patrol.coverage)
    grid = "320106001001003"
    assert grid in set(grids["code"])
    com = grid[:12]
    sub = str(coms.loc[coms["code"] == com, "subdistrict_code"].iloc[0])
    at = _open(shell, sub=sub, com=com, grid=grid)
    stale = [d.value for d in at.dataframe if "楼栋编号" in d.value.columns]
    assert stale and len(stale[0]) >= 1
    assert "本周所有楼栋都有人巡查" not in "\n".join(e.value for e in at.success)
    slider = at.slider[0]
    end = slider.value
    at.button(key="pt_play").click().run()
    assert not at.exception, at.exception
    assert at.button(key="pt_play").label == "暂停"
    assert at.slider[0].value < end  # playing from the start of the day
