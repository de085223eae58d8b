"""AppTest smoke tests of the 巡查 patrol page, on the small demo district.

Until ``dashboard/app.py`` lists the page, the tests run the real shell with the page appended
to its ``PAGES`` (the same source, loaded from a string).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from layers.store import open_store

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "dashboard" / "app.py"
ENTRY = ("views/patrol.py", "patrol", "patrol_page.title", ":material/directions_walk:")


@pytest.fixture()
def shell(env: str):
    """An AppTest of the shell whose navigation includes the patrol page (not yet run)."""
    from streamlit.testing.v1 import AppTest

    src = APP.read_text(encoding="utf-8")
    if f'"{ENTRY[0]}"' in src:
        return AppTest.from_file(str(APP), default_timeout=120), "views/"
    src = src.replace("Path(__file__).resolve().parent.parent", f"Path({str(ROOT)!r})")
    src = src.replace("_HERE = Path(__file__).resolve().parent", f"_HERE = Path({str(ROOT / 'dashboard')!r})")
    src = src.replace("\n]\n\n", f"\n    {ENTRY!r},\n]\n\n", 1)
    assert repr(ENTRY) in src, "could not add the patrol page to PAGES"
    return AppTest.from_string(src, default_timeout=120), str(ROOT / "dashboard" / "views") + "/"


def _open(shell, **params: str):
    at, prefix = shell
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    at.switch_page(prefix + "patrol.py").run()
    assert not at.exception, at.exception
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
