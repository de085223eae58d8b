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
import pytest

from layers import plans
from layers.permissions import Account
from layers.store import open_store

ROOT = Path(__file__).resolve().parents[2]
COMMUNITY = "320106001001"


@pytest.fixture()
def dated_store(env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str, str]:
    path = tmp_path / "demo.gpkg"
    shutil.copy(env, path)
    monkeypatch.setenv("GRIDPULSE_STORE", str(path))
    admin = Account("planner1", role="planner")
    with open_store(str(path)) as s:
        live = s.read("grids")
        plans.save_plan(s, admin, plans.make_plan(s, live), effective="2026-06-01", confirm=True)
        com = live[(live["community_code"] == COMMUNITY) & (live["kind"] == "comprehensive")]
        keep, gone = sorted(com["code"])[:2]
        merged = live[live["code"] != gone].copy()
        both = live.loc[live["code"].isin([keep, gone]), "geometry"].union_all()
        merged.loc[merged["code"] == keep, "geometry"] = gpd.GeoSeries([both], crs=4326).values
        plans.save_plan(s, admin, plans.make_plan(s, merged), effective="2026-03-01", confirm=True)
        assert plans.plan_versions(s)["live"].tolist() == [True, False]  # history only
    return str(path), keep, gone


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
