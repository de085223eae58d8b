"""The closed loop: every legal and illegal transition, the rules of the loop, time limits."""

from __future__ import annotations

import copy
import re
from datetime import date, time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from layers.i18n import catalogue
from layers.schema import SCHEMAS, STAGES
from layers.workflow import (
    ACTIONS,
    ROLES,
    IllegalTransitionError,
    TimeLimits,
    WorkCalendar,
    WorkflowPolicy,
    action_for,
    apply_transition,
    check_history,
    due_time,
    due_times,
    escalation_due,
    illegal_events,
    is_legal_path,
    is_overdue,
    legal_actions,
    overdue,
    parse_note,
    pending_extension,
    transition,
    transitions_table,
)

T0 = pd.Timestamp("2025-03-03 09:00")  # a Monday
H1 = pd.Timedelta(hours=1)
LEADERS = {"subdistrict_leader", "subdistrict_secretary", "subdistrict_director"}
TOP = {"subdistrict_secretary", "subdistrict_director"}
DEPT = {"department"}

# The specification, written out independently of layers.workflow.TRANSITIONS:
# action -> (stages it starts from, stage after (None = same), roles allowed on the test incident).
SPEC: dict[str, tuple[set[str | None], str | None, set[str]]] = {
    "collect": ({None}, "collected", {"grid_worker", "community", "command_centre", "system"}),
    "assign": ({"collected"}, "dispatched", {"command_centre", "community"}),
    "whistle": ({"collected"}, "whistled", LEADERS),
    "report_for_duty": ({"whistled"}, "dispatched", DEPT),
    "start_handling": ({"dispatched"}, "handling", DEPT),
    "report_back": ({"handling"}, "verifying", DEPT),
    "verify_pass": ({"verifying"}, "closed", {"command_centre", "community", "grid_worker"}),
    "verify_fail": ({"verifying"}, "handling", {"command_centre", "community", "grid_worker"}),
    "evaluate": ({"closed"}, "evaluated", {"command_centre", "district_leader"} | LEADERS),
    "close_no_action": ({"collected"}, "closed_no_action", {"command_centre", "community"} | LEADERS),
    "return_case": ({"whistled", "dispatched"}, "collected", DEPT),
    "request_extension": ({"dispatched", "handling"}, None, DEPT),
    "grant_extension": ({"dispatched", "handling"}, None, {"command_centre"} | LEADERS),
    "deny_extension": ({"dispatched", "handling"}, None, {"command_centre"} | LEADERS),
    # the test incidents carry a work whistle and are not due: only secretary/director may raise it
    "escalate": ({"whistled", "dispatched", "handling", "verifying"}, None, TOP),
    # instructions need a tough whistle, which the test incidents do not have
    "instruct": (set(), None, set()),
}

OPTIONS = {
    "assign": {"department": "housing"},
    "whistle": {"kind": "work", "department": "housing"},
    "close_no_action": {"reason": "duplicate", "duplicate_of": "X0"},
    "request_extension": {"hours": 24},
    "grant_extension": {"hours": 24},
    "evaluate": {"rating": 5},
}

PATH = ["collected", "whistled", "dispatched", "handling", "verifying", "closed", "evaluated"]
STEP = {  # the action and role that take a case one stage along PATH
    "collected": ("collect", "grid_worker", {}),
    "whistled": ("whistle", "subdistrict_leader", {"kind": "work", "department": "housing"}),
    "dispatched": ("report_for_duty", "department", {}),
    "handling": ("start_handling", "department", {}),
    "verifying": ("report_back", "department", {}),
    "closed": ("verify_pass", "command_centre", {}),
    "evaluated": ("evaluate", "subdistrict_leader", {}),
}


def new_incident(**kw) -> dict:
    return {"service_request_id": "GP-1", "category_code": "01", "item_code": "0101", "level": 1,
            "source": "patrol", **kw}


def walk(stages: list[str], inc: dict | None = None, *, start: pd.Timestamp = T0) -> tuple[dict, list[dict]]:
    """Take a new incident through ``stages`` with the standard actors, one hour apart."""
    inc = inc or new_incident()
    events = []
    for i, st_ in enumerate(stages):
        action, role, opts = STEP[st_]
        inc, ev = apply_transition(inc, action, actor=role, role=role,
                                   time=start + pd.Timedelta(hours=i), **opts)
        events.append(ev)
    return inc, events


def at_stage(stage: str | None) -> dict:
    if stage is None:
        return new_incident()
    if stage == "closed_no_action":
        inc, _ = walk(["collected"])
        inc, _ = apply_transition(inc, "close_no_action", actor="c", role="command_centre",
                                  time=T0 + pd.Timedelta(hours=1), reason="invalid")
        return inc
    return walk(PATH[: PATH.index(stage) + 1])[0]


@pytest.mark.parametrize("action", ACTIONS)
def test_every_stage_and_role_against_the_spec(action: str) -> None:
    sources, target, roles = SPEC[action]
    when = T0 + pd.Timedelta(hours=20)
    mismatches = []
    for stage in (None, *STAGES):
        base = at_stage(stage)
        for role in ROLES:
            inc = copy.deepcopy(base)
            expected = stage in sources and role in roles
            try:
                new, ev = apply_transition(inc, action, actor=f"{role}-1", role=role, time=when,
                                           note="because", **OPTIONS.get(action, {}))
            except IllegalTransitionError as e:
                assert e.key in catalogue(), e.key
                assert inc == base, "a refused transition must change nothing"
                if expected:
                    mismatches.append((stage, role, "refused", e.key))
                continue
            assert inc == base, "apply_transition must not mutate its input"
            if not expected:
                mismatches.append((stage, role, "allowed"))
                continue
            to = target or stage
            assert new["stage"] == to and ev["to_stage"] == to and ev["from_stage"] == stage
            assert ev["action"] == action and ev["actor"] == f"{role}-1" and ev["time"] == when
            assert new["status"] == ("closed" if to in ("closed", "evaluated", "closed_no_action") else "open")
            assert new["updated_datetime"] == when
            assert set(ev) == set(SCHEMAS["incident_events"].columns)
            assert action in legal_actions(base, role, time=when)
    assert not mismatches, mismatches


def test_legal_actions_lists_exactly_what_apply_accepts() -> None:
    for stage in (None, *STAGES):
        inc = at_stage(stage)
        for role in ROLES:
            listed = set(legal_actions(inc, role))
            expected = {a for a, (src, _, roles) in SPEC.items() if stage in src and role in roles}
            assert listed == expected, (stage, role)


def test_the_demo_generators_histories_are_legal() -> None:
    full = ["collected", "whistled", "dispatched", "handling", "verifying", "closed", "evaluated"]
    assert is_legal_path(full)
    assert is_legal_path(["collected", "whistled", "dispatched", "handling", "verifying", "handling",
                          "verifying", "closed", "evaluated"])
    assert is_legal_path(["collected", "closed_no_action"])
    assert is_legal_path(["collected", "dispatched", "handling"])  # routine, no whistle
    assert not is_legal_path(["collected", "handling"])
    assert not is_legal_path(["whistled"])
    assert not is_legal_path(["collected", "closed", "evaluated"])
    assert action_for("verifying", "handling") == "verify_fail"
    assert action_for(None, "collected") == "collect"
    assert action_for("closed", "collected") is None


def test_events_written_by_the_machine_replay_as_a_legal_history() -> None:
    inc, events = walk(PATH[:5])
    inc, ev = apply_transition(inc, "verify_fail", actor="gw", role="grid_worker",
                               time=T0 + pd.Timedelta(hours=6), note="still dirty")
    events.append(ev)
    inc, ev = apply_transition(inc, "request_extension", actor="d", role="department",
                               time=T0 + pd.Timedelta(hours=7), hours=48, note="need parts")
    events.append(ev)
    assert pending_extension(events)
    inc, ev = apply_transition(inc, "grant_extension", actor="cc", role="command_centre",
                               time=T0 + pd.Timedelta(hours=8), hours=48)
    events.append(ev)
    assert not pending_extension(events)
    for action, role in (("report_back", "department"), ("verify_pass", "community")):
        inc, ev = apply_transition(inc, action, actor=role, role=role, time=T0 + pd.Timedelta(hours=9))
        events.append(ev)
    check_history(events)
    assert inc["reworks"] == 1 and inc["extensions"] == 1 and inc["stage"] == "closed"
    assert inc["closed_datetime"] == T0 + pd.Timedelta(hours=9)
    assert len({e["event_id"] for e in events}) == len(events)
    broken = [events[0], events[2]]
    with pytest.raises(IllegalTransitionError) as e:
        check_history(broken)
    assert e.value.key == "incidents.workflow.broken_history"
    with pytest.raises(IllegalTransitionError) as e:
        check_history([{**events[0], "action": "assign"}])
    assert e.value.key == "incidents.workflow.illegal_step"


def test_illegal_events_checks_a_whole_log_at_once() -> None:
    inc, events = walk(PATH)
    other, more = walk(PATH[:3], new_incident(service_request_id="GP-2"))
    log = pd.DataFrame(events + more).sample(frac=1.0, random_state=1)  # any order: sorted by time
    assert illegal_events(log).empty and illegal_events(log, actions=True).empty
    log.loc[log["action"] == "report_back", "to_stage"] = "closed"
    log.loc[(log["service_request_id"] == "GP-2") & (log["action"] == "whistle"), "action"] = "dispatch"
    bad = illegal_events(log)
    assert bad["problem"].tolist() == ["illegal_step", "broken_history"]
    assert illegal_events(log, actions=True)["action"].tolist() == ["report_back", "verify_pass", "dispatch"]


def test_the_demo_generators_event_log_is_legal() -> None:
    from data import demo

    layers = demo.generate("small", seed=0)
    assert illegal_events(layers["incident_events"]).empty  # stage changes (its action names differ)


def test_transitions_on_a_stored_incident_are_atomic(tmp_path) -> None:
    import shapely

    from layers.store import open_store

    with open_store(str(tmp_path / "s.gpkg")) as store:
        inc = {"category_code": "01", "item_code": "0101", "level": 1, "source": "patrol",
               "geometry": shapely.Point(118.78, 32.06)}
        transition(store, "GP-9", "collect", actor="w", role="grid_worker", time=T0, incident=inc)
        transition(store, "GP-9", "whistle", actor="l", role="subdistrict_leader", time=T0 + H1,
                   kind="work", department="housing")
        with pytest.raises(IllegalTransitionError):
            transition(store, "GP-9", "verify_pass", actor="c", role="command_centre", time=T0 + 2 * H1)
        with pytest.raises(IllegalTransitionError) as e:
            transition(store, "GP-404", "report_for_duty", actor="d", role="department", time=T0 + 2 * H1)
        assert e.value.key == "incidents.workflow.not_found"
        row = store.read("incidents").iloc[0]
        assert (row["stage"], row["whistle"], row["department"]) == ("whistled", "work", "housing")
        assert row["updated_datetime"] == T0 + H1 and row["h3_9"] != 0
        events = store.read("incident_events")
        assert events["action"].tolist() == ["collect", "whistle"]
        assert illegal_events(events, actions=True).empty


def test_collect_sets_the_due_time_and_counters() -> None:
    inc, ev = apply_transition(new_incident(level=3, category_code="10", item_code="1001"), "collect",
                               actor="w", role="grid_worker", time=T0)
    assert inc["requested_datetime"] == T0
    assert inc["expected_datetime"] == T0 + pd.Timedelta(hours=12)  # safety hazard, urgent
    assert (inc["whistle"], inc["reworks"], inc["extensions"]) == ("none", 0, 0)
    assert ev["from_stage"] is None and ev["to_stage"] == "collected"


LATER = T0 + pd.Timedelta(hours=30)


def refused(inc: dict, action: str, role: str, *, key: str, time=LATER, **kw) -> None:
    before = copy.deepcopy(inc)
    with pytest.raises(IllegalTransitionError) as e:
        apply_transition(inc, action, actor="x", role=role, time=time, **kw)
    assert e.value.key == f"incidents.workflow.{key}"
    assert inc == before
    for lang in ("zh", "en"):
        msg = e.value.message(lang)
        assert msg and "{" not in msg and not msg.startswith("incidents.")
        assert e.value.fix(lang)
    assert str(e.value) == e.value.message("en")


def test_who_may_blow_which_whistle() -> None:
    inc = at_stage("collected")
    tough = {"kind": "tough", "department": "housing"}
    refused(inc, "whistle", "subdistrict_leader", key="whistle_role", **tough)
    refused(inc, "whistle", "grid_worker", key="role_not_allowed", kind="work", department="housing")
    for role in TOP:
        new, _ = apply_transition(inc, "whistle", actor="s", role=role, time=T0 + pd.Timedelta(hours=1), **tough)
        assert new["whistle"] == "tough" and new["department"] == "housing"
    refused(inc, "whistle", "subdistrict_secretary", key="bad_option", kind="loud", department="housing")
    refused(inc, "whistle", "subdistrict_secretary", key="bad_option", kind="work", department="police")
    refused(inc, "whistle", "subdistrict_secretary", key="missing_option", kind="work")
    # a returned tough case cannot be re-blown as a work whistle
    t, _ = apply_transition(inc, "whistle", actor="s", role="subdistrict_director", time=T0 + pd.Timedelta(hours=1), **tough)
    back, _ = apply_transition(t, "return_case", actor="d", role="department", time=T0 + pd.Timedelta(hours=2),
                               note="not ours")
    assert back["stage"] == "collected" and back["department"] is None
    refused(back, "whistle", "subdistrict_secretary", key="whistle_lower", kind="work", department="water")


def test_escalation_rules() -> None:
    inc = at_stage("handling")  # work whistle
    refused(inc, "escalate", "subdistrict_leader", key="whistle_role", note="x")
    refused(inc, "escalate", "subdistrict_secretary", key="note_required")
    refused(inc, "escalate", "system", key="escalate_not_due", time=T0 + pd.Timedelta(hours=10))
    up, _ = apply_transition(inc, "escalate", actor="s", role="subdistrict_secretary",
                             time=T0 + pd.Timedelta(hours=10), note="needs the district")
    assert up["whistle"] == "tough" and up["stage"] == "handling"
    refused(up, "escalate", "subdistrict_director", key="escalate_top", note="x")
    refused(inc, "instruct", "district_leader", key="tough_only", note="hurry")
    _, ev = apply_transition(up, "instruct", actor="d", role="district_leader", time=T0 + pd.Timedelta(hours=11),
                             note="hurry")
    assert ev["from_stage"] == ev["to_stage"] == "handling"

    # a routine (no whistle) case goes up to a work whistle; a sub-district leader may do it
    r, _ = walk(["collected"])
    r, _ = apply_transition(r, "assign", actor="cc", role="command_centre", time=T0 + pd.Timedelta(hours=1),
                            department="water")
    r2, _ = apply_transition(r, "escalate", actor="l", role="subdistrict_leader",
                             time=T0 + pd.Timedelta(hours=2), note="several departments")
    assert (r["whistle"], r2["whistle"]) == ("none", "work")


def test_reworked_twice_or_overdue_escalates_automatically() -> None:
    inc = at_stage("verifying")
    now = T0 + pd.Timedelta(hours=10)
    assert escalation_due(inc, now=now) is None
    for k in range(2):
        inc, _ = apply_transition(inc, "verify_fail", actor="gw", role="grid_worker",
                                  time=now + pd.Timedelta(hours=2 * k), note="not fixed")
        inc, _ = apply_transition(inc, "report_back", actor="d", role="department",
                                  time=now + pd.Timedelta(hours=2 * k + 1))
    assert inc["reworks"] == 2 and escalation_due(inc, now=now + pd.Timedelta(hours=5)) == "reworked"
    assert "escalate" in legal_actions(inc, "system")
    up, ev = apply_transition(inc, "escalate", actor="platform", role="system", time=now + pd.Timedelta(hours=5))
    assert up["whistle"] == "tough" and ev["note"] == "reworked"

    late = at_stage("handling")
    after_due = late["expected_datetime"] + pd.Timedelta(minutes=1)
    assert escalation_due(late, now=after_due) == "overdue"
    assert is_overdue(late, now=after_due) and not is_overdue(late, now=late["expected_datetime"])
    assert "escalate" not in legal_actions(late, "system")
    assert "escalate" in legal_actions(late, "system", time=after_due)
    up, ev = apply_transition(late, "escalate", actor="platform", role="system", time=after_due)
    assert up["whistle"] == "tough" and ev["note"] == "overdue"


def test_extensions_move_the_due_time_and_are_limited() -> None:
    pol = WorkflowPolicy(max_extensions=1)
    inc = at_stage("handling")
    due = inc["expected_datetime"]
    refused(inc, "request_extension", "department", key="note_required", hours=24)
    refused(inc, "request_extension", "department", key="bad_option", hours=-3, note="x")
    refused(inc, "grant_extension", "command_centre", key="missing_option")
    new, ev = apply_transition(inc, "grant_extension", actor="cc", role="command_centre",
                               time=T0 + pd.Timedelta(hours=10), hours=24, policy=pol)
    # level 1 counts working hours: due Fri 2025-03-14 15:00 + 24 h = Fri 15:00-18:00 (3 h), Mon and
    # Tue (7.5 h each), Wed 9:00-12:00 and 13:30-16:30
    assert due == pd.Timestamp("2025-03-14 15:00")
    assert new["expected_datetime"] == pd.Timestamp("2025-03-19 16:30") and new["extensions"] == 1
    assert parse_note(ev["note"]) == ({"hours": "24"}, "")
    with pytest.raises(IllegalTransitionError) as e:
        apply_transition(new, "grant_extension", actor="cc", role="command_centre",
                         time=T0 + pd.Timedelta(hours=11), hours=24, policy=pol)
    assert e.value.key == "incidents.workflow.extension_limit"
    # in working-hours mode the extension is counted in working hours
    wpol = WorkflowPolicy(limits=TimeLimits(mode="working"))
    w = {**inc, "expected_datetime": pd.Timestamp("2025-03-07 17:00")}
    new, _ = apply_transition(w, "grant_extension", actor="cc", role="command_centre",
                              time=T0 + pd.Timedelta(hours=10), hours=2, policy=wpol)
    assert new["expected_datetime"] == pd.Timestamp("2025-03-10 10:00")


def test_department_actions_belong_to_the_assignee() -> None:
    inc = at_stage("whistled")  # housing
    refused(inc, "report_for_duty", "community", key="not_assignee")
    c, _ = walk(["collected"])
    c, _ = apply_transition(c, "assign", actor="cc", role="command_centre", time=T0 + pd.Timedelta(hours=1),
                            department="community")
    c, _ = apply_transition(c, "start_handling", actor="jwh", role="community", time=T0 + pd.Timedelta(hours=2))
    assert c["stage"] == "handling"


def test_other_refusals_say_why() -> None:
    inc = at_stage("collected")
    refused(inc, "fly", "community", key="unknown_action")
    refused(inc, "assign", "mayor", key="unknown_role", department="water")
    refused(inc, "assign", "command_centre", key="unknown_option", department="water", colour="red")
    refused(inc, "close_no_action", "command_centre", key="bad_option", reason="lazy")
    refused(inc, "assign", "command_centre", key="time_before_last", department="water",
            time=T0 - pd.Timedelta(hours=1))
    refused({"stage": None}, "collect", "grid_worker", key="missing_id")
    refused(inc, "assign", "command_centre", key="bad_time", department="water", time="not a time")
    refused(at_stage("verifying"), "verify_fail", "grid_worker", key="note_required")
    refused(at_stage("closed"), "evaluate", "command_centre", key="bad_option", rating=9)
    refused(at_stage("closed"), "verify_pass", "command_centre", key="wrong_stage")
    refused(at_stage("handling"), "report_back", "grid_worker", key="role_not_allowed")


def test_the_table_for_the_page() -> None:
    tab = transitions_table("zh")
    assert list(tab["action"]) == list(ACTIONS)
    assert tab.loc[tab.action == "whistle", "label"].item() == "街道吹哨"
    assert "工作推进哨" not in tab.to_string()  # whistle kinds are options, not stages


# ----------------------------------------------------------------------------- time limits


CAL = WorkCalendar()


@pytest.mark.parametrize(
    ("start", "hours", "due"),
    [
        ("2025-03-07 17:00", 2, "2025-03-10 10:00"),  # Friday evening over the weekend
        ("2025-03-04 22:00", 1, "2025-03-05 10:00"),  # at night: counts from 9:00 next morning
        ("2025-03-04 12:30", 1, "2025-03-04 14:30"),  # over lunch
        ("2025-03-04 09:00", 3, "2025-03-04 12:00"),  # exactly the morning: 12:00, not 13:30
        ("2025-03-08 10:00", 7.5, "2025-03-10 18:00"),  # Saturday: the whole of Monday
        ("2025-03-04 10:15", 0, "2025-03-04 10:15"),
        ("2025-03-07 16:00", 15, "2025-03-11 16:00"),  # 2 + 7.5 + 5.5 hours
    ],
)
def test_adding_working_hours(start: str, hours: float, due: str) -> None:
    assert CAL.add_working_hours(pd.Timestamp(start), hours) == pd.Timestamp(due)


def test_holidays_and_make_up_working_days() -> None:
    cal = WorkCalendar(holidays=frozenset({date(2025, 5, 1), date(2025, 5, 2), date(2025, 5, 5)}),
                       workdays=frozenset({date(2025, 4, 27)}))  # Sunday worked (调休)
    assert cal.add_working_hours(pd.Timestamp("2025-04-30 17:00"), 2) == pd.Timestamp("2025-05-06 10:00")
    assert cal.add_working_hours(pd.Timestamp("2025-04-26 09:00"), 1) == pd.Timestamp("2025-04-27 10:00")
    assert cal.is_workday(date(2025, 4, 27)) and not cal.is_workday(date(2025, 5, 1))
    assert cal.working_hours_between(pd.Timestamp("2025-04-30 18:00"), pd.Timestamp("2025-05-06 09:00")) == 0


def test_working_hours_between_is_signed_and_vectorised() -> None:
    s = pd.to_datetime(["2025-03-07 17:00", "2025-03-10 10:00", "2025-03-04 12:15", None])
    e = pd.to_datetime(["2025-03-10 10:00", "2025-03-07 17:00", "2025-03-04 13:45", "2025-03-04 00:00"])
    out = CAL.working_hours_between(s, e)
    assert out[:3].tolist() == [2.0, -2.0, 0.25] and np.isnan(out[3])


def test_custom_calendar_from_plain_data() -> None:
    cal = WorkCalendar.from_mapping({"periods": [["08:30", "12:00"], ["14:00", "17:30"]],
                                     "weekdays": [0, 1, 2, 3, 4, 5], "holidays": ["2025-03-05"]})
    assert cal.hours_per_day == 7.0
    assert cal.add_working_hours(pd.Timestamp("2025-03-04 17:00"), 1) == pd.Timestamp("2025-03-06 09:00")
    assert cal.add_working_hours(pd.Timestamp("2025-03-08 17:00"), 1) == pd.Timestamp("2025-03-10 09:00")
    with pytest.raises(ValueError, match="periods"):
        WorkCalendar(periods=((time(12), time(9)),))
    with pytest.raises(ValueError, match="unknown calendar keys"):
        WorkCalendar.from_mapping({"hours": 8})


@settings(max_examples=60, deadline=None)
@given(
    st.datetimes(min_value=pd.Timestamp("2024-01-01").to_pydatetime(),
                 max_value=pd.Timestamp("2026-12-31").to_pydatetime()),
    st.integers(min_value=0, max_value=400 * 60),
)
def test_add_then_measure_gives_back_the_hours(start, minutes: int) -> None:
    start = pd.Timestamp(start).floor("min")
    due = CAL.add_working_hours(start, minutes / 60)
    assert due >= start
    assert CAL.working_hours_between(start, due) == pytest.approx(minutes / 60, abs=1e-9)
    if minutes:
        assert CAL.add_working_hours(start, (minutes - 1) / 60) < due


def test_time_limit_table_and_modes() -> None:
    lim = TimeLimits.from_mapping({"mode": "working", "levels": {"1": 15}, "mode_by_level": {"3": "calendar"},
                                   "categories": {"05": {"2": 30}}})
    pol = WorkflowPolicy(limits=lim)
    fri = "2025-03-07 17:00"
    assert due_time(fri, category_code="01", level=1, policy=pol) == pd.Timestamp("2025-03-11 17:00")
    assert due_time(fri, category_code="01", level=3, policy=pol) == pd.Timestamp("2025-03-08 17:00")
    assert lim.hours("05", 2) == 30.0 and lim.hours("06", 2) == 120.0
    # the default counts working hours (72 h: Fri 17:00-18:00, nine days of 7.5 h, Fri 21st 9:00-14:00) ...
    assert due_time(fri, category_code="01", level=1) == pd.Timestamp("2025-03-21 14:00")
    # ... except level 3 (urgent), on the clock
    assert due_time(fri, category_code="01", level=3) == pd.Timestamp("2025-03-08 17:00")
    with pytest.raises(ValueError, match="mode"):
        TimeLimits(mode="lunar")
    with pytest.raises(ValueError, match="unknown category"):
        TimeLimits(by_category={"99": {1: 3.0}})


def test_vectorised_due_and_overdue_match_the_scalar_rules() -> None:
    rng = np.random.default_rng(7)
    n = 60
    pol = WorkflowPolicy(limits=TimeLimits(mode="working", mode_by_level={3: "calendar"}))
    df = pd.DataFrame({
        "requested_datetime": T0 + pd.to_timedelta(rng.integers(0, 30 * 24 * 60, n), unit="min"),
        "category_code": rng.choice(["01", "04", "10"], n),
        "item_code": rng.choice(["0101", "0402", "1001"], n),
        "level": rng.integers(1, 4, n),
    })
    got = due_times(df, policy=pol)
    want = [due_time(r.requested_datetime, category_code=r.category_code, level=r.level,
                     item_code=r.item_code, policy=pol) for r in df.itertuples()]
    assert got.tolist() == want
    df["expected_datetime"] = got
    df["stage"] = rng.choice(list(STAGES), n)
    df["closed_datetime"] = df["requested_datetime"] + pd.to_timedelta(rng.integers(1, 400, n), unit="h")
    now = T0 + pd.Timedelta(days=20)
    assert overdue(df, now=now).tolist() == [is_overdue(r, now=now) for r in df.to_dict("records")]


def test_every_message_key_the_module_uses_exists() -> None:
    from pathlib import Path

    import layers.workflow as wf

    src = "".join(p.read_text(encoding="utf-8") for p in Path(wf.__file__).parent.glob("*.py"))
    keys = {f"incidents.workflow.{k}" for k in re.findall(r'_MSG \+ "(\w+)"', src)}
    assert keys and keys <= set(catalogue())
    for area, codes in (("stage", ("new", *STAGES)), ("action", ACTIONS), ("role", ROLES),
                        ("whistle", ("none", "work", "tough"))):
        for c in codes:
            assert f"incidents.{area}.{c}" in catalogue()
