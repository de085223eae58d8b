"""The explorer shows any date's boundaries: the plan version in force that day (AppTest).

On a private copy of the small demo: v1 records today's grids as in force since 2026-06-01;
v2 is history imported afterwards, in force from 2026-03-01 until 2026-06-01, when two grids
of 兰石社区 were one. The page's date picker switches the map and the caption between them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

from layers import plans
from layers.permissions import Account
from layers.store import open_store

ROOT = Path(__file__).resolve().parents[2]
COMMUNITY = "320106001001"


def _two_versions(src: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, live_from: str,
                  merged_from: str, move_workers: bool = False) -> tuple[str, str, str]:
    """A private copy of the demo with two plan versions: today's grids in force since
    ``live_from``, and history in force from ``merged_from`` in which the first two
    comprehensive grids of 兰石社区 were one (``keep``; ``gone``'s workers moved to it when
    ``move_workers``)."""
    path = tmp_path / "demo.gpkg"
    shutil.copy(src, path)
    monkeypatch.setenv("GRIDPULSE_STORE", str(path))
    admin = Account("planner1", role="planner")
    with open_store(str(path)) as s:
        live = s.read("grids")
        plans.save_plan(s, admin, plans.make_plan(s, live), effective=live_from, confirm=True)
        com = live[(live["community_code"] == COMMUNITY) & (live["kind"] == "comprehensive")]
        keep, gone = sorted(com["code"])[:2]
        merged = live[live["code"] != gone].copy()
        both = live.loc[live["code"].isin([keep, gone]), "geometry"].union_all()
        merged.loc[merged["code"] == keep, "geometry"] = gpd.GeoSeries([both], crs=4326).values
        moved = {}
        if move_workers:
            workers = s.read("workers")
            moved = {w: keep for w in workers.loc[workers["grid_code"] == gone, "id"].astype(str)}
            assert moved  # the grid that was merged away has workers
        plans.save_plan(s, admin, plans.make_plan(s, merged, workers=moved), effective=merged_from,
                        confirm=True)
        assert plans.plan_versions(s)["live"].tolist() == [True, False]  # history only
    return str(path), keep, gone


@pytest.fixture()
def dated_store(env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str, str]:
    return _two_versions(env, tmp_path, monkeypatch, live_from="2026-06-01",
                         merged_from="2026-03-01")


def _script(at) -> str:
    return json.loads(at.get("component_instance")[0].proto.json_args)["script"]


def test_the_date_picker_shows_the_boundaries_in_force_that_day(dated_store) -> None:
    import datetime as dt

    from streamlit.testing.v1 import AppTest

    _, keep, gone = dated_store
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120)
    at.query_params["sub"] = "320106001"
    at.query_params["com"] = COMMUNITY
    at.run()
    assert not at.exception, at.exception
    caption = " ".join(c.value for c in at.caption)
    assert "2026-11-20 生效的方案：v1，自 2026-06-01 起" in caption  # the demo's today
    now = _script(at)
    assert keep in now and gone in now
    at.date_input(key="w_asof").set_value(dt.date(2026, 4, 1)).run()
    assert not at.exception, at.exception
    caption = " ".join(c.value for c in at.caption)
    assert "2026-04-01 生效的方案：v2，自 2026-03-01 起，至 2026-06-01" in caption
    then = _script(at)
    assert keep in then and gone not in then  # the two grids were one
    at.date_input(key="w_asof").set_value(dt.date(2025, 1, 1)).run()
    assert "早于最早的方案版本" in " ".join(c.value for c in at.caption)


def test_the_date_is_in_the_link(dated_store) -> None:
    import datetime as dt

    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120)
    at.query_params["sub"] = "320106001"
    at.query_params["com"] = COMMUNITY
    at.run()
    assert "asof" not in at.query_params  # today: nothing to say
    at.date_input(key="w_asof").set_value(dt.date(2026, 4, 1)).run()
    assert not at.exception, at.exception
    assert at.query_params["asof"] in ("2026-04-01", ["2026-04-01"])
    # the shared link opens on that date's boundaries
    shared = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120)
    for k in ("sub", "com", "asof"):
        shared.query_params[k] = at.query_params[k]
    shared.run()
    assert not shared.exception, shared.exception
    assert shared.date_input(key="w_asof").value == dt.date(2026, 4, 1)
    assert "2026-04-01 生效的方案：v2" in " ".join(c.value for c in shared.caption)
    shared.date_input(key="w_asof").set_value(dt.date(2026, 11, 20)).run()  # back to today
    assert "asof" not in shared.query_params


def _drill(lon: float, lat: float, day: str | None) -> None:
    import streamlit as st

    from dashboard import _explorer, state

    v = state.View(sub="320106001", com="320106001001")
    st.text(repr(_explorer.drill(v, lon, lat, day=day)))


def test_a_click_finds_the_grid_of_the_date_shown(dated_store) -> None:
    from streamlit.testing.v1 import AppTest

    path, keep, gone = dated_store
    with open_store(path) as s:
        live = s.read("grids")
    pt = live.loc[live["code"] == gone, "geometry"].iloc[0].representative_point()
    found = {}
    for day in (None, "2026-11-20", "2026-04-01"):
        at = AppTest.from_function(_drill, args=(pt.x, pt.y, day), default_timeout=120)
        at.run()
        assert not at.exception, at.exception
        found[day] = at.text[0].value
    assert f"'grid': '{gone}'" in found[None] and found["2026-11-20"] == found[None]
    assert f"'grid': '{keep}'" in found["2026-04-01"]  # gone's area was keep's then


@pytest.fixture()
def patrol_dated_store(env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                       ) -> tuple[str, str, str]:
    """Today's grids in force since 2026-11-20; before that (from 2026-11-10) two grids of 兰石社区
    were one, patrolled by both grids' workers. The demo has GPS fixes of 2026-11-13 to 11-20
    (every worker's on 11-19, none of 兰石社区's on 11-17)."""
    return _two_versions(env, tmp_path, monkeypatch, live_from="2026-11-20",
                         merged_from="2026-11-10", move_workers=True)


def _hours_of(path: str, code: str, day: str, *, then: bool) -> float:
    """Coverage hours of ``code`` on ``day`` from the raw fixes (not the patrol summary)."""
    from dashboard import _kpis

    with open_store(path) as s:
        grids = s.read("grids", columns=["code"])
        workers = s.read("workers", columns=["id", "grid_code", "post", "role"])
        if then:
            grids, workers = plans.assignments_at(s, day, grids, workers)
        fixes = s.read("patrol_points", between={"time": _kpis.day_window(pd.Timestamp(day))})
    per_grid = _kpis.patrol_day(fixes, grids, workers, day=pd.Timestamp(day)).per_grid
    return float(per_grid.loc[code, "covered_h"])


def _card(at) -> tuple[str, str]:
    card = next(m for m in at.metric if "巡查" in m.label)
    return card.label, card.value


def test_patrol_hours_follow_the_date_shown(patrol_dated_store) -> None:
    from streamlit.testing.v1 import AppTest

    path, keep, gone = patrol_dated_store
    then = _hours_of(path, keep, "2026-11-19", then=True)
    assert then > _hours_of(path, keep, "2026-11-19", then=False) > 0  # merged: covered longer
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120)
    for k, val in (("sub", "320106001"), ("com", COMMUNITY), ("grid", keep),
                   ("metric", "patrol_hours"), ("asof", "2026-11-19")):
        at.query_params[k] = val
    at.run()
    assert not at.exception, at.exception
    label, value = _card(at)
    assert "昨日" in label and value == f"{then:,.1f}"  # 11-19 under the boundaries of 11-19
    assert gone not in _script(at)  # the map draws that day's grids
    # today: the latest patrol day is still 11-19, counted under the grids in force on 11-19
    at.date_input(key="w_asof").set_value(pd.Timestamp("2026-11-20").date()).run()
    assert not at.exception, at.exception
    assert _card(at) == (label, value) and gone in _script(at)
    # 11-17: that day's fixes (none of this community's workers were tracked that day)
    at.date_input(key="w_asof").set_value(pd.Timestamp("2026-11-17").date()).run()
    assert not at.exception, at.exception
    label, value = _card(at)
    assert "11月17日" in label and value == f"{_hours_of(path, keep, '2026-11-17', then=True):,.1f}"
