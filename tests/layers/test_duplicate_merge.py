"""Merging a likely duplicate into the case it repeats, on both engines (layers/duplicates.py).

Known answers on the hand-drawn district (tests/_intake_world.py): a second report of item
0101 30 m from the first and 20 minutes later is flagged as its duplicate; merging closes it
without action (reason duplicate, duplicate_of = the first) in one compare-and-set write
that also checks the kept case, audited with the account; the kept case is unchanged.
"""

from __future__ import annotations

import pandas as pd
import pytest

from layers import intake
from layers.duplicates import duplicate_links, merge_duplicate
from layers.errors import ConcurrentChangeError
from layers.permissions import PermissionDenied
from layers.workflow import IllegalTransitionError, parse_note
from tests._intake_world import IN_A, IN_B
from tests.layers import test_intake as base
from tests.layers.test_intake import M_LAT, T0, _req

#: The intake tests' two-grid district on both engines, with quick Argon2 hashes.
world = base.world
quick_hashes = base.quick_hashes

T1 = T0 + pd.Timedelta(minutes=20)


def _pair(store, acc, where=IN_A) -> tuple[str, str]:
    first = intake.create_request(store, acc["hotline"], _req(where), now=T0)
    second = intake.create_request(store, acc["hotline"],
                                   _req((where[0], where[1] + 30 * M_LAT)), now=T1)
    assert second.duplicate_of == first.request["service_request_id"]
    return first.request["service_request_id"], second.request["service_request_id"]


def _case(store, srid: str) -> dict:
    return store.read("incidents", where={"service_request_id": srid}).iloc[0].to_dict()


def test_merge_closes_the_duplicate_with_a_link_and_keeps_the_other(world) -> None:
    store, acc = world
    kept, dup = _pair(store, acc)
    assert duplicate_links(store, dup) == {"flagged": kept, "merged_into": None}
    before_kept = _case(store, kept)
    audit_before = len(store.audit_log())
    when = T1 + pd.Timedelta(minutes=5)
    new, event = merge_duplicate(store, acc["hotline"], dup, kept, time=when, note="同一堆垃圾")
    row = _case(store, dup)
    assert (row["stage"], row["status"], row["closed_datetime"]) == ("closed_no_action", "closed",
                                                                     when)
    assert new["stage"] == "closed_no_action"
    opts, text = parse_note(event["note"])
    assert opts == {"reason": "duplicate", "duplicate_of": kept} and text.strip() == "同一堆垃圾"
    ev = store.read("incident_events", where={"service_request_id": dup}, order_by="time")
    assert ev["action"].tolist() == ["collect", "close_no_action"]
    assert ev["actor"].tolist()[-1] == "hotline"
    assert duplicate_links(store, dup) == {"flagged": kept, "merged_into": kept}
    after_kept = _case(store, kept)
    assert {k: after_kept[k] for k in ("stage", "updated_datetime")} == \
        {k: before_kept[k] for k in ("stage", "updated_datetime")}
    audit = store.audit_log().head(len(store.audit_log()) - audit_before)
    assert set(audit["actor"]) == {"hotline"} and len(audit) == 3  # two updates, one event
    assert audit["note"].str.contains(f"merged duplicate {dup} into {kept}").all()
    # the Open311 view of the merged case says closed
    assert intake.get_request(store, acc["hotline"], dup)[0]["status"] == "closed"


def test_merge_is_refused_without_the_right_or_outside_scope(world) -> None:
    store, acc = world
    kept, dup = _pair(store, acc)
    with pytest.raises(PermissionDenied):  # a department handler may not close cases
        merge_duplicate(store, acc["dept"], dup, kept, time=T1)
    kept_b = intake.create_request(store, acc["hotline"], _req(IN_B), now=T0)
    with pytest.raises(PermissionDenied):  # sub-district A's centre cannot see B's case
        merge_duplicate(store, acc["hotline-a"], dup, kept_b.request["service_request_id"],
                        time=T1)
    assert _case(store, dup)["stage"] == "collected"
    merge_duplicate(store, acc["hotline-a"], dup, kept, time=T1)  # inside A: allowed
    assert _case(store, dup)["stage"] == "closed_no_action"


def test_merge_refuses_nonsense(world) -> None:
    store, acc = world
    kept, dup = _pair(store, acc)
    h = acc["hotline"]
    for into, key in ((dup, "live.merge.same_case"), ("nope", "live.merge.not_found")):
        with pytest.raises(IllegalTransitionError) as e:
            merge_duplicate(store, h, dup, into, time=T1)
        assert e.value.key == key
    merge_duplicate(store, h, dup, kept, time=T1)
    third = intake.create_request(store, h, _req((IN_A[0], IN_A[1] + 60 * M_LAT)), now=T1)
    srid3 = third.request["service_request_id"]
    with pytest.raises(IllegalTransitionError) as e:  # no chains through a merged case
        merge_duplicate(store, h, srid3, dup, time=T1)
    assert e.value.key == "live.merge.kept_merged" and kept in e.value.message("en")
    with pytest.raises(IllegalTransitionError):  # already closed: the workflow refuses
        merge_duplicate(store, h, dup, kept, time=T1)


def test_merge_is_a_compare_and_set_on_both_cases(world) -> None:
    store, acc = world
    kept, dup = _pair(store, acc)
    h = acc["hotline"]
    seen = _case(store, dup)
    # someone assigned the duplicate after the page showed it: refused, nothing written
    intake.case_action(store, h, dup, {"action": "assign", "department": "urban_management"},
                       now=T1 + pd.Timedelta(minutes=1))
    n_events = store.count("incident_events")
    with pytest.raises((ConcurrentChangeError, IllegalTransitionError)):
        merge_duplicate(store, h, dup, kept, time=T1 + pd.Timedelta(minutes=2),
                        based_on={c: seen[c] for c in ("stage", "department", "updated_datetime")})
    assert store.count("incident_events") == n_events
    # a kept case changed between the read and the write is caught by its row check
    kept2, dup2 = _pair(store, acc, where=IN_B)
    real_read = store.read

    def read_then_change(layer, **kw):  # another writer acts on the kept case in between
        out = real_read(layer, **kw)
        if layer == "incidents" and kw.get("where", {}).get("service_request_id") == [dup2, kept2]:
            store.read = real_read
            intake.case_action(store, h, kept2, {"action": "assign",
                                                 "department": "urban_management"},
                               now=T1 + pd.Timedelta(minutes=3))
        return out

    store.read = read_then_change
    try:
        with pytest.raises(ConcurrentChangeError):
            merge_duplicate(store, h, dup2, kept2, time=T1 + pd.Timedelta(minutes=4))
    finally:
        store.read = real_read
    assert _case(store, dup2)["stage"] == "collected"
    assert _case(store, kept2)["stage"] == "dispatched"
