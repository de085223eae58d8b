"""Analyses of the past use the boundaries in force at that time (layers/plans.py call sites).

The hand-drawn store of ``test_plans.py``: the A|B boundary moves from 118.775 (v1, from
2026-01-01) to 118.774 (v2, from 2026-06-01). A spot at 118.7745 is A's before the change and
B's after it. Worker w2 stays on grid B throughout.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geo.patrol import clean_fixes, time_in_grid
from layers import plans
from layers.store import open_store
from tests.layers.test_plans import ADMIN, DAY1, DAY2, TODAY, A, B, grids, seed

SPOT = (118.7745, 32.063)


def _history(path):
    with open_store(str(path)) as s:
        seed(s)
        t = [pd.Timestamp("2026-03-10 09:00"), pd.Timestamp("2026-07-10 09:00"), pd.Timestamp("2026-07-11 09:00")]
        inc = gpd.GeoDataFrame({
            "service_request_id": ["SR1", "SR2", "SR3"], "status": ["open"] * 3,
            "requested_datetime": t, "updated_datetime": t,
            "category_code": ["01"] * 3, "item_code": ["0101"] * 3, "level": 1, "source": "patrol",
            "stage": ["collected"] * 3, "whistle": "none",
            # imported history, every case filed under today's grid of its place
            "grid_code": [B, B, A]}, geometry=shapely.points([SPOT, SPOT, (118.771, 32.061)]), crs=4326)
        s.write({"incidents": inc}, mode="append")
        plans.save_plan(s, ADMIN, plans.make_plan(s, grids(118.775)), effective=DAY1, today=TODAY)
        plans.save_plan(s, ADMIN, plans.make_plan(s, grids(118.774)), effective=DAY2, today=TODAY)
        yield s


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """The store, shared by the read-only tests of this module."""
    yield from _history(tmp_path_factory.mktemp("hist") / "h.gpkg")


@pytest.fixture()
def own_history(tmp_path):
    """A store of its own, for a test that saves another version."""
    yield from _history(tmp_path / "h.gpkg")


def test_kpi_table_counts_each_case_for_the_grid_of_its_day(history) -> None:
    from gridpulse.commands.incidents import kpi_table

    table = kpi_table(history, by="grid", now=pd.Timestamp("2026-08-01")).set_index("code")
    assert table["incidents"].to_dict() == {A: 2, B: 1}  # SR1 was A's when it came in
    march = kpi_table(history, by="grid", start=pd.Timestamp("2026-03-01"), end=pd.Timestamp("2026-04-01"),
                      now=pd.Timestamp("2026-08-01")).set_index("code")
    assert march["incidents"].to_dict() == {A: 1}


def test_cases_per_grid_use_the_boundaries_of_their_day(history) -> None:
    cases = history.read("incidents")
    assert plans.count_by_grid_at(history, cases).to_dict() == {A: 2, B: 1}
    outside = cases.iloc[[0]].set_geometry(gpd.GeoSeries(shapely.points([(118.9, 32.0)]), crs=4326))
    assert plans.count_by_grid_at(history, outside).to_dict() == {B: 1}  # outside: the recorded grid


def _walk(day: str) -> gpd.GeoDataFrame:
    times = pd.date_range(f"{day} 08:00", f"{day} 10:00", freq="1min")
    lon = SPOT[0] + 0.00015 * np.sin(np.arange(len(times)) / 10)  # pacing around the spot
    return gpd.GeoDataFrame({"worker_id": "w2", "time": times},
                            geometry=gpd.points_from_xy(lon, [SPOT[1]] * len(times)), crs=4326)


def test_patrol_hours_of_a_past_day_use_that_days_grids(history) -> None:
    live_grids = history.read("grids", columns=["code"])
    live_workers = history.read("workers", columns=["id", "grid_code", "post"])
    hours = {}
    for day in ("2026-03-10", "2026-07-10"):
        g, w = plans.assignments_at(history, day, live_grids, live_workers)
        row = time_in_grid(clean_fixes(_walk(day)), g, w, day=day).set_index("worker_id").loc["w2"]
        hours[day] = float(row["hours_in_grid"])
    # in March the spot was grid A's, so w2 (grid B) was outside their grid; in July inside
    assert hours["2026-03-10"] == 0.0 and hours["2026-07-10"] == pytest.approx(2.0, abs=0.05)
    # today's boundaries would have credited March too
    today = time_in_grid(clean_fixes(_walk("2026-03-10")), live_grids, live_workers, day="2026-03-10")
    assert float(today.set_index("worker_id").loc["w2", "hours_in_grid"]) > 1.9


def test_assignments_follow_the_plan_of_the_day(own_history) -> None:
    history = own_history
    plans.save_plan(history, ADMIN, plans.make_plan(history, grids(118.774), workers={"w2": (A, "B")}),
                    effective="2026-07-01", today=TODAY)
    w = history.read("workers", columns=["id", "grid_code", "post"])
    _, june = plans.assignments_at(history, "2026-06-15", history.read("grids", columns=["code"]), w)
    _, july = plans.assignments_at(history, "2026-07-15", history.read("grids", columns=["code"]), w)
    assert june.set_index("id").loc["w2", ["grid_code", "post"]].tolist() == [B, "A"]
    assert july.set_index("id").loc["w2", ["grid_code", "post"]].tolist() == [A, "B"]
