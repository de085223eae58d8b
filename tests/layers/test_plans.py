"""Whole-plan versions (layers/plans.py) on both engines, over a hand-drawn two-grid store.

    118.770      118.774 118.775      118.780
      +-------------+-------+-------------+  32.065
      |   b1 (300)  |  b2   |  b3 (350)   |
      |      A      | (100) |      B      |
      +-------------+-------+-------------+  32.060

v1 (effective 2026-01-01) draws the A|B boundary at 118.775: A = b1 + b2 = 400 households,
B = b3 = 350. v2 (effective 2026-06-01) moves it to 118.774: A = 300, B = 450. A case at
b2's corner is A's before 2026-06-01 and B's from then on.
"""

from __future__ import annotations

import json
import sqlite3

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from layers import plans
from layers.permissions import Account, PermissionDenied

A, B = "320106001001001", "320106001001002"
COM = "320106001001"
ADMIN = Account("planner1", role="planner")
DAY1, DAY2 = pd.Timestamp("2026-01-01"), pd.Timestamp("2026-06-01")
TODAY = pd.Timestamp("2026-07-15")


def grids(split: float, *, a_geom: shapely.Geometry | None = None) -> gpd.GeoDataFrame:
    a = a_geom if a_geom is not None else shapely.box(118.770, 32.060, split, 32.065)
    return gpd.GeoDataFrame({
        "code": [A, B], "name": ["第一网格", "第二网格"], "kind": ["comprehensive"] * 2,
        "community_code": [COM, COM], "households": [0, 0], "population": [0, 0],
    }, geometry=[a, shapely.box(split, 32.060, 118.780, 32.065)], crs=4326)


def seed(store, *, with_communities: bool = True) -> None:
    communities = gpd.GeoDataFrame({"code": [COM], "name": ["宁海路社区"], "subdistrict_code": ["320106001"]},
                                   geometry=[shapely.box(118.770, 32.060, 118.780, 32.065)], crs=4326)
    buildings = gpd.GeoDataFrame({
        "id": ["b1", "b2", "b3"], "households": [300, 100, 350], "population": [800, 260, 900],
        "grid_code": [A, A, B]},
        geometry=shapely.points([(118.771, 32.062), (118.7745, 32.062), (118.778, 32.062)]), crs=4326)
    workers = pd.DataFrame({"id": ["w1", "w2"], "name": ["张三", "李四"], "role": ["full_time"] * 2,
                            "grid_code": [A, B], "post": ["A", "A"]})
    layers = {"communities": communities} if with_communities else {}
    store.write({**layers, "grids": grids(118.775), "buildings": buildings, "workers": workers})


def live(store) -> tuple[list, dict, dict]:
    g = store.read("grids").sort_values("code")
    b = store.read("buildings", columns=["id", "grid_code"])
    w = store.read("workers", columns=["id", "grid_code", "post"])
    return ([shapely.to_wkb(x) for x in g.geometry], dict(zip(b["id"], b["grid_code"], strict=True)),
            {i: (c, p) for i, c, p in zip(w["id"], w["grid_code"], w["post"], strict=True)})


def test_plan_versions_move_grids_buildings_and_workers_together(store) -> None:
    seed(store)
    v1 = plans.save_plan(store, ADMIN, plans.make_plan(store, grids(118.775)), effective=DAY1,
                         note="基线", today=TODAY)
    plan2 = plans.make_plan(store, grids(118.774), workers={"w1": (B, "B")})
    assert plan2.buildings.to_dict() == {"b1": A, "b2": B, "b3": B}  # b2 placed by location
    v2 = plans.save_plan(store, ADMIN, plan2, effective=DAY2, note="调整", today=TODAY)
    assert (v1, v2) == (1, 2)
    _, b, w = live(store)
    assert b == {"b1": A, "b2": B, "b3": B}
    assert w == {"w1": (B, "B"), "w2": (B, "A")}
    vers = plans.plan_versions(store)
    assert vers["state"].tolist() == ["saved", "saved"]
    assert vers["live"].tolist() == [False, True] and vers["n_errors"].tolist() == [0, 0]
    assert vers["effective"].tolist() == [DAY1, DAY2]
    log = store.audit_log()
    assert (log["action"] == "plan_save").sum() == 2 and set(log["actor"]) >= {"planner1"}


def test_past_analyses_use_the_boundaries_in_force_then(store) -> None:
    seed(store)
    plans.save_plan(store, ADMIN, plans.make_plan(store, grids(118.775)), effective=DAY1, today=TODAY)
    plans.save_plan(store, ADMIN, plans.make_plan(store, grids(118.774)), effective=DAY2, today=TODAY)
    before = plans.boundaries_at(store, "2026-03-10")
    after = plans.boundaries_at(store, "2026-06-01 08:00")
    assert (before.version, before.effective, before.until) == (1, DAY1, DAY2)
    assert (after.version, after.until) == (2, None)
    assert before.buildings["b2"] == A and after.buildings["b2"] == B
    early = plans.boundaries_at(store, "2025-05-01")
    assert early.version == 1 and early.before_first
    # a case at b2's corner, and GPS fixes either side of the change
    pts = gpd.GeoSeries(shapely.points([(118.7745, 32.063)] * 3 + [(118.771, 32.061)]), crs=4326)
    when = ["2026-05-31 23:59", "2026-06-01 00:00", None, "2026-07-01"]
    assert plans.grid_codes_at(store, pts, when).tolist() == [A, B, B, A]


def test_future_plan_waits_and_history_import_does_not_touch_live(store) -> None:
    seed(store)
    plans.save_plan(store, ADMIN, plans.make_plan(store, grids(118.775)), effective=DAY1, today=TODAY)
    before = live(store)
    future = pd.Timestamp("2026-09-01")
    v = plans.save_plan(store, ADMIN, plans.make_plan(store, grids(118.774)), effective=future,
                        today=TODAY)
    assert live(store) == before  # not in force yet
    assert plans.in_force_version(store, TODAY) == 1
    assert plans.boundaries_at(store, "2026-09-02").version == v
    # a plan recorded with a past date, superseded since: history only
    old = plans.save_plan(store, ADMIN, plans.make_plan(store, grids(118.776)),
                          effective="2025-06-01", today=TODAY)
    assert live(store) == before and plans.boundaries_at(store, "2025-07-01").version == old
    assert plans.activate_due(store, ADMIN, today=TODAY) is None
    assert plans.activate_due(store, ADMIN, today="2026-09-01") == v
    assert live(store)[1] == {"b1": A, "b2": B, "b3": B}
    assert plans.activate_due(store, ADMIN, today="2026-09-02") is None


def test_a_plan_breaking_a_hard_rule_needs_confirmation_and_records_it(store) -> None:
    seed(store)
    plans.save_plan(store, ADMIN, plans.make_plan(store, grids(118.775)), effective=DAY1, today=TODAY)
    before = live(store)
    bad = plans.make_plan(store, grids(118.7705))  # A: 0 households, B: 750
    with pytest.raises(plans.UnconfirmedViolationsError) as err:
        plans.save_plan(store, ADMIN, bad, today=TODAY)
    codes = sorted(v["code"] for v in err.value.violations)
    assert codes == ["over_band", "under_band"]
    assert "2 hard rule(s)" in str(err.value)
    assert live(store) == before and len(plans.plan_versions(store)) == 1  # nothing written
    v = plans.save_plan(store, ADMIN, bad, today=TODAY, confirm=True, note="临时")
    row = plans.plan_versions(store).set_index("version").loc[v]
    assert row["confirmed"] and row["n_errors"] == 2
    over = next(x for x in row["violations"] if x["code"] == "over_band")
    assert (over["grid"], over["value"], over["max"]) == (B, 750, 500)
    assert "超上限" in store.audit_log()["note"].iloc[0]


def test_pieces_and_buildings_in_no_grid_are_hard_rules(store) -> None:
    seed(store)
    two = shapely.MultiPolygon([shapely.box(118.770, 32.060, 118.772, 32.065),
                                shapely.box(118.773, 32.060, 118.775, 32.065)])
    plan = plans.make_plan(store, grids(118.775, a_geom=two))
    viol = plans.check_plan(store, plan)
    frag = [v for v in viol if v["code"] == "fragmented"]
    assert frag == [{"code": "fragmented", "severity": "error", "grid": A, "parts": 2}]
    gone = plans.make_plan(store, grids(118.775).iloc[[1]])  # grid A deleted
    viol = plans.check_plan(store, gone)
    lost = next(v for v in viol if v["code"] == "unassigned_buildings")
    assert (lost["n"], lost["ids"]) == (2, "b1, b2")
    orphan = next(v for v in viol if v["code"] == "workers_on_missing_grid")
    assert orphan["severity"] == "warning" and orphan["ids"] == "w1"
    assert "2 building(s) lie in no grid" in plans.violation_text(lost, "en")


def _fail_on_workers_audit(store, pg_base: str | None) -> None:
    """A real database failure in the middle of the write: the audit row of ``workers``
    (written after grids and buildings were replaced, in the same transaction) is refused."""
    if pg_base is None:
        conn = sqlite3.connect(store.path)
        conn.execute("CREATE TRIGGER boom BEFORE INSERT ON audit_log WHEN NEW.layer = 'workers' "
                     "BEGIN SELECT RAISE(ABORT, 'workers refused'); END")
        conn.commit()
        conn.close()
        return
    import psycopg

    s = store.schema
    with psycopg.connect(pg_base, autocommit=True) as conn:
        conn.execute(f'CREATE FUNCTION "{s}".boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN '
                     "IF NEW.layer = 'workers' THEN RAISE EXCEPTION 'workers refused'; END IF; "
                     "RETURN NEW; END $$")
        conn.execute(f'CREATE TRIGGER boom BEFORE INSERT ON "{s}".audit_log FOR EACH ROW '
                     f'EXECUTE FUNCTION "{s}".boom()')


@pytest.mark.parametrize("communities", [True, False], ids=["in-place", "whole-store"])
def test_a_failed_save_leaves_grids_buildings_and_workers_as_they_were(store, request, communities) -> None:
    """Both write paths: a transaction in place, and (a GeoPackage holding only the three
    layers) the engine's rebuild of the whole file that is renamed into place."""
    seed(store, with_communities=communities)
    plans.save_plan(store, ADMIN, plans.make_plan(store, grids(118.775)), effective=DAY1, today=TODAY)
    before = live(store)
    pg = request.getfixturevalue("pg_url") if store.url.startswith("postgresql") else None
    _fail_on_workers_audit(store, pg)
    plan = plans.make_plan(store, grids(118.774), workers={"w1": (B, "B")})
    with pytest.raises(Exception, match="workers refused"):
        plans.save_plan(store, ADMIN, plan, today=TODAY)
    assert live(store) == before
    vers = plans.plan_versions(store)
    assert vers["state"].tolist() == ["saved", "failed"]
    assert plans.boundaries_at(store, TODAY).version == 1  # the failed version is never in force


def test_rollback_saves_the_old_plan_again_and_checks_permission(store) -> None:
    seed(store)
    plans.save_plan(store, ADMIN, plans.make_plan(store, grids(118.775)), effective=DAY1, today=TODAY)
    first = live(store)
    plans.save_plan(store, ADMIN, plans.make_plan(store, grids(118.774), workers={"w1": (B, "B")}),
                    effective=DAY2, today=TODAY)
    with pytest.raises(PermissionDenied):
        plans.rollback_plan(store, Account("a", role="analyst"), 1, today=TODAY)
    v3 = plans.rollback_plan(store, ADMIN, 1, note="撤回", today=TODAY)
    assert live(store) == first
    vers = plans.plan_versions(store).set_index("version")
    assert vers.loc[v3, "source_version"] == 1 and vers.loc[v3, "live"]
    assert vers.loc[v3, "effective"] == TODAY  # default: effective today
    # the snapshot is shared with v1 (content-addressed)
    assert len(store.records(plans.SNAPSHOTS)) == 2
    with pytest.raises(plans.PlanError, match="no saved plan version v9"):
        plans.rollback_plan(store, ADMIN, 9, today=TODAY)


def test_bad_effective_date_is_refused_before_anything_changes(store) -> None:
    seed(store)
    with pytest.raises(plans.PlanError) as err:
        plans.save_plan(store, ADMIN, plans.make_plan(store, grids(118.775)), effective="明天")
    assert err.value.message("zh") == "无法识别的日期：明天"
    assert plans.plan_versions(store).empty


def test_without_versions_the_live_layers_are_the_boundaries(store) -> None:
    seed(store)
    b = plans.boundaries_at(store, "2020-01-01")
    assert b.version is None and sorted(b.grids["code"]) == [A, B] and b.buildings["b2"] == A
    pts = gpd.GeoSeries(shapely.points([(118.7745, 32.063)]), crs=4326)
    assert plans.grid_codes_at(store, pts, ["2020-01-01"]).tolist() == [A]


def test_snapshot_round_trip_keeps_every_part() -> None:
    plan = plans.Plan(grids(118.775), pd.Series({"b1": A, "b2": None}, name="grid_code", dtype=object),
                      pd.DataFrame({"id": ["w1"], "grid_code": [A], "post": [None]}))
    back = plans.plan_from_text(plans.snapshot_text(plan))
    assert back.grids.geom_equals(plan.grids).all() and back.buildings.to_dict() == {"b1": A, "b2": None}
    assert back.workers.to_dict("records") == [{"id": "w1", "grid_code": A, "post": None}]
    assert json.loads(plans.snapshot_text(plan)).keys() == {"grids", "buildings", "workers"}


def test_a_save_that_died_half_way_is_settled_later(store) -> None:
    """A process killed between the live write and the version's mark leaves a ``pending``
    row: once older than the timeout it is settled by comparing its snapshot with the live
    layers (saved when they hold it, failed otherwise)."""
    seed(store)
    plan = plans.make_plan(store, grids(118.774))
    digest = plans._put_snapshot(store, plan)
    old = plans.now_local() - plans.PENDING_TIMEOUT - pd.Timedelta(minutes=1)
    for version, eff in ((1, DAY1), (2, pd.Timestamp("2030-01-01"))):
        store.insert_record(plans.VERSIONS, {"version": version, "state": "pending", "effective": eff,
                                             "saved": old, "actor": "x", "note": "", "snapshot": digest,
                                             "violations": "[]", "band": "{}"})
    fresh = {"version": 3, "state": "pending", "effective": DAY1, "saved": plans.now_local(),
             "actor": "x", "note": "", "snapshot": digest, "violations": "[]", "band": "{}"}
    store.insert_record(plans.VERSIONS, fresh)
    # v1's write never happened (live still has the 118.775 boundary): failed; v2 was a future
    # version (nothing to write): saved; v3 may still be running: left pending
    assert plans.plan_versions(store)["state"].tolist() == ["failed", "saved", "pending"]
