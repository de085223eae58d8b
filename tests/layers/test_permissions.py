"""The one permission check: role x action x scope, and the scope filters."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from layers.permissions import (
    PAGES,
    ROLES,
    WORKFLOW_ROLE,
    Account,
    PermissionDenied,
    can,
    check_fields,
    filter_frame,
    pages,
    require,
)
from layers.workflow import ROLES as WORKFLOW_ROLES
from layers.workflow import TRANSITIONS

GRID = "320106001002003"  # district 320106, sub-district 001, community 002, grid 003
OTHER_GRID = "320106002001001"
ACCOUNTS = {
    "admin": Account("a", role="admin"),
    "district_leader": Account("dl", role="district_leader", scope_code="320106"),
    "subdistrict_secretary": Account("ss", role="subdistrict_secretary", scope_code="320106001"),
    "subdistrict_director": Account("sd", role="subdistrict_director", scope_code="320106001"),
    "subdistrict_leader": Account("sl", role="subdistrict_leader", scope_code="320106001"),
    "command_centre": Account("cc", role="command_centre", scope_code="320106001"),
    "community_secretary": Account("cs", role="community_secretary", scope_code="320106001002"),
    "grid_leader": Account("gl", role="grid_leader", scope_code=GRID),
    "grid_worker_full": Account("gw", role="grid_worker_full", scope_code=GRID),
    "grid_worker_part": Account("gp", role="grid_worker_part", scope_code=GRID),
    "department": Account("d", role="department", scope_code="320106", department="water"),
    "planner": Account("p", role="planner"),
    "analyst": Account("an", role="analyst"),
    "kiosk": Account("k", role="kiosk", scope_code="320106"),
}

# role -> (whistle work, whistle tough, assign, collect, start_handling (water), import,
#          export, unmask, plan.save, accounts, pages)
TABLE: dict[str, tuple[bool, bool, bool, bool, bool, bool, bool, bool, bool, bool, set[str]]] = {
    "admin": (False, False, True, True, False, True, True, True, True, True, set(PAGES)),
    "district_leader": (False, False, False, False, False, False, True, False, False, False,
                        {"explorer", "wall", "incidents", "hotspots", "patrol", "planner"}),
    "subdistrict_secretary": (True, True, False, False, False, False, True, False, False, False,
                              {"explorer", "wall", "incidents", "hotspots", "patrol", "planner"}),
    "subdistrict_director": (True, True, False, False, False, False, True, False, False, False,
                             {"explorer", "wall", "incidents", "hotspots", "patrol", "planner"}),
    "subdistrict_leader": (True, False, False, False, False, False, True, False, False, False,
                           {"explorer", "wall", "incidents", "hotspots", "patrol"}),
    "command_centre": (False, False, True, True, False, True, True, False, False, False,
                       {"explorer", "wall", "incidents", "hotspots", "patrol", "data"}),
    "community_secretary": (False, False, True, True, False, False, False, False, False, False,
                            {"explorer", "wall", "incidents", "hotspots", "patrol"}),
    "grid_leader": (False, False, False, True, False, False, False, False, False, False,
                    {"explorer", "wall", "incidents", "hotspots", "patrol"}),
    "grid_worker_full": (False, False, False, True, False, False, False, False, False, False,
                         {"explorer", "wall", "incidents", "hotspots", "patrol"}),
    "grid_worker_part": (False, False, False, True, False, False, False, False, False, False,
                         {"explorer", "wall", "incidents", "hotspots", "patrol"}),
    "department": (False, False, False, False, True, False, False, False, False, False,
                   {"explorer", "wall", "incidents", "hotspots"}),
    "planner": (False, False, False, False, False, True, True, False, True, False,
                {"explorer", "wall", "hotspots", "data", "planner"}),
    "analyst": (False, False, False, False, False, False, True, False, False, False,
                {"explorer", "wall", "incidents", "hotspots", "patrol", "data", "planner"}),
    "kiosk": (False, False, False, False, False, False, False, False, False, False, {"wall"}),
}


def test_the_table_covers_every_role_and_maps_onto_the_workflow() -> None:
    assert set(TABLE) == set(ROLES) == set(ACCOUNTS) == set(WORKFLOW_ROLE)
    assert {r for r in WORKFLOW_ROLE.values() if r} <= set(WORKFLOW_ROLES)


@pytest.mark.parametrize("role", ROLES)
def test_role_by_action_inside_the_scope(role: str) -> None:
    a = ACCOUNTS[role]
    work, tough, assign, collect, handle, imp, exp, unmask, save, manage, seen = TABLE[role]
    assert bool(can(a, "case.whistle", scope_code=GRID)) == (work or tough)
    # which whistle is the workflow's own check (transition); the role check is per action
    assert bool(can(a, "case.assign", scope_code=GRID)) == assign
    assert bool(can(a, "case.collect", scope_code=GRID)) == collect
    assert bool(can(a, "case.start_handling", scope_code=GRID, department="water")) == handle
    assert bool(can(a, "import")) == imp
    assert bool(can(a, "export")) == exp
    assert bool(can(a, "unmask")) == unmask
    assert bool(can(a, "plan.save")) == save == bool(can(a, "plan.rollback"))
    assert bool(can(a, "accounts")) == manage
    assert set(pages(a)) == seen


@pytest.mark.parametrize("role", [r for r in ROLES if WORKFLOW_ROLE[r]])
def test_outside_the_scope_every_case_action_is_refused(role: str) -> None:
    a = ACCOUNTS[role]
    for tr in TRANSITIONS:
        inside = can(a, f"case.{tr.action}", scope_code=GRID, department="water")
        outside = can(a, f"case.{tr.action}", scope_code=OTHER_GRID, department="water")
        if a.scope_code and not OTHER_GRID.startswith(a.scope_code):
            assert not outside
            if inside:
                assert outside.key == "auth.decision.out_of_scope"
        else:
            assert bool(outside) == bool(inside)
        handler_only = tr.roles <= {"department", "community"}
        community_on_water = role == "community_secretary" and handler_only
        assert bool(inside) == (WORKFLOW_ROLE[role] in tr.roles and not community_on_water)


def test_a_department_handler_acts_on_its_departments_cases_only() -> None:
    d = ACCOUNTS["department"]
    assert can(d, "case.report_for_duty", scope_code=GRID, department="water")
    refused = can(d, "case.report_for_duty", scope_code=GRID, department="housing")
    assert refused.key == "auth.decision.other_department"
    assert "住建" in refused.message("zh") and "水务" in refused.message("zh")
    assert not can(d, "case.whistle", scope_code=GRID, department="water")


def test_refusals_say_why_in_both_languages_and_raise_permission_errors() -> None:
    gw = ACCOUNTS["grid_worker_full"]
    d = can(gw, "case.whistle", scope_code=GRID)
    assert d.message("zh") == "「专职网格员」无权办理事件（街道吹哨）"
    assert d.message("en") == "the role “full-time grid worker” may not act on a case (blow the whistle)"
    assert d.fix("zh")
    with pytest.raises(PermissionError) as e:
        require(gw, "case.whistle", scope_code=GRID)
    assert isinstance(e.value, PermissionDenied)
    assert e.value.message("zh").startswith("操作被拒绝") and e.value.message("zh").endswith("未作任何修改。")
    far = can(ACCOUNTS["community_secretary"], "case.assign", scope_code=OTHER_GRID)
    assert far.message("zh") == "「320106002001001」不在您的管辖范围（社区 320106001002）内"
    assert not can(Account("x", role="admin", disabled=True), "view.wall")


def test_account_fields_are_checked_together() -> None:
    from layers.accounts import AccountError

    check_fields("grid_worker_full", GRID, "")
    check_fields("department", "320106", "water")
    for role, scope, dept, key in [
        ("grid_worker_full", "320106001", "", "bad_scope"),
        ("grid_worker_full", "32010600100200X", "", "bad_scope"),
        ("community_secretary", "", "", "bad_scope"),
        ("department", "320106", "", "bad_department"),
        ("mayor", "320106", "", "bad_role"),
    ]:
        with pytest.raises(AccountError) as e:
            check_fields(role, scope, dept)
        assert e.value.key == f"auth.account.{key}"


CASES = pd.DataFrame({
    "service_request_id": ["A", "B", "C", "D"],
    "grid_code": [GRID, "320106001002001", OTHER_GRID, None],
    "department": ["water", "housing", "water", "water"],
})


def test_scope_filters_on_a_hand_drawn_frame() -> None:
    ids = {r: filter_frame(a, CASES, "incidents")["service_request_id"].tolist()
           for r, a in ACCOUNTS.items()}
    assert ids["admin"] == ["A", "B", "C", "D"]
    assert ids["grid_worker_full"] == ["A"]
    assert ids["community_secretary"] == ["A", "B"]
    assert ids["subdistrict_leader"] == ["A", "B"]
    assert ids["district_leader"] == ["A", "B", "C"]  # a case without a grid is nobody's
    assert ids["department"] == ["A", "C"]
    workers = pd.DataFrame({"id": ["w1", "w2"], "grid_code": [GRID, OTHER_GRID]})
    fixes = pd.DataFrame({"worker_id": ["w1", "w2", "w1"]})
    gw = ACCOUNTS["grid_worker_full"]
    assert filter_frame(gw, fixes, "patrol_points", workers=workers).index.tolist() == [0, 2]
    assert filter_frame(gw, fixes, "patrol_points").empty  # no workers: nothing, not everything


@given(st.lists(st.sampled_from(["320106001002003", "320106001002001", "320106001001001",
                                 "320106002001001", "320107001001001"]), max_size=30),
       st.sampled_from(["", "320106", "320106001", "320106001002", "320106001002003"]))
def test_a_scope_keeps_exactly_the_grids_below_it(codes: list[str], scope: str) -> None:
    a = Account("x", role="analyst" if len(scope) != 15 else "grid_worker_full", scope_code=scope)
    df = pd.DataFrame({"grid_code": codes, "department": "water"})
    kept = filter_frame(a, df, "incidents")
    assert kept["grid_code"].tolist() == [c for c in codes if c.startswith(scope)]
    assert all(a.covers(c) for c in kept["grid_code"])
