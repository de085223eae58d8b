"""The intake application functions on both engines, on a hand-drawn two-grid district.

Known answers: a point at IN_A lies in GRID_A; the sub-district-A hotline may not report a
case in B; two reports of the same item 50 m apart within 3 h make the second a likely
duplicate of the first, 300 m apart or another item do not; a retried key makes one case.
"""

from __future__ import annotations

import multiprocessing
import uuid
from collections.abc import Iterator
from pathlib import Path

import argon2
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from layers import accounts, intake
from layers.apitokens import issue_api_token, resolve_api_token, revoke_api_token
from layers.permissions import PermissionDenied
from layers.store import Store, open_store
from layers.workflow import parse_note
from tests._intake_world import GRID_B, IN_A, IN_B, fill

T0 = pd.Timestamp("2026-12-03 10:00")
M_LAT = 1 / 110_574.0  # degrees of latitude per metre, near enough


@pytest.fixture(autouse=True)
def quick_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real Argon2id with small parameters (the cost is measured in benchmarks/auth.py)."""
    monkeypatch.setattr(accounts, "HASHER", argon2.PasswordHasher(time_cost=1, memory_cost=1024,
                                                                  parallelism=1))


def _open(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str | None]:
    if request.param == "gpkg":
        return str(tmp_path / "store.gpkg"), None
    base = request.getfixturevalue("pg_url")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    return f"{base}?schema={schema}", schema


@pytest.fixture(params=["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, dict]]:
    url, schema = _open(request, tmp_path)
    with open_store(url) as s:
        tokens = fill(s)
        yield s, {u: resolve_api_token(s, tok) for u, tok in tokens.items()} | {"_url": url}
    if schema is not None:
        import psycopg

        with psycopg.connect(request.getfixturevalue("pg_url"), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _req(lonlat: tuple[float, float], code: str = "0101", **kw: object) -> dict:
    return {"service_code": code, "long": lonlat[0], "lat": lonlat[1], **kw}


def test_a_request_becomes_a_collected_case_in_its_grid(world) -> None:
    store, acc = world
    c = intake.create_request(store, acc["hotline"], _req(IN_B, description="垃圾", phone="139"),
                              now=T0, lang="en")
    srid = c.request["service_request_id"]
    assert c.duplicate_of is None and c.request["status"] == "open"
    assert c.request["extended_attributes"]["grid_code"] == GRID_B
    row = store.read("incidents", where={"service_request_id": srid}).iloc[0]
    assert (row["grid_code"], row["stage"], row["item_code"], row["category_code"]) == \
        (GRID_B, "collected", "0101", "01")
    assert row["reporter_phone"] == "139" and row["requested_datetime"] == T0
    ev = store.read("incident_events", where={"service_request_id": srid})
    assert ev["action"].tolist() == ["collect"] and ev["actor"].tolist() == ["hotline"]
    # the Open311 views never show the reporter
    listed = intake.list_requests(store, acc["hotline"], now=T0)
    assert [r["service_request_id"] for r in listed] == [srid]
    assert "139" not in str(listed) and "reporter" not in str(listed)


def test_scope_limits_posting_and_reading(world) -> None:
    store, acc = world
    with pytest.raises(PermissionDenied) as e:
        intake.create_request(store, acc["hotline-a"], _req(IN_B), now=T0)
    assert e.value.key == "auth.decision.out_of_scope"
    assert not store.has_layer("incidents") or store.count("incidents") == 0
    b = intake.create_request(store, acc["hotline"], _req(IN_B), now=T0).request
    a = intake.create_request(store, acc["hotline-a"], _req(IN_A), now=T0).request
    seen = [r["service_request_id"] for r in intake.list_requests(store, acc["hotline-a"], now=T0)]
    assert seen == [a["service_request_id"]]
    with pytest.raises(PermissionDenied):
        intake.get_request(store, acc["hotline-a"], b["service_request_id"])
    assert intake.get_request(store, acc["hotline"], b["service_request_id"])[0]["lat"] == IN_B[1]
    with pytest.raises(intake.IntakeError) as nf:
        intake.get_request(store, acc["hotline"], "nope")
    assert nf.value.status == 404


def test_bad_requests_list_every_problem_in_both_languages(world) -> None:
    store, acc = world
    with pytest.raises(intake.IntakeError) as e:
        intake.create_request(store, acc["hotline"], {"service_code": "9999", "lat": "north",
                                                      "level": 7}, now=T0)
    codes = [(i["code"], i["column"]) for i in e.value.to_json("en")["errors"]]
    assert codes == [("api.error.unknown_service", "service_code"),
                     ("api.error.bad_number", "lat"), ("api.error.missing_field", "long"),
                     ("api.error.bad_level", "level")]
    zh = e.value.to_json("zh")["errors"][0]
    assert "未知的事项代码" in zh["message"] and "services.json" in zh["fix"]
    # a point in no grid (lat and long swapped) is refused with advice
    with pytest.raises(intake.IntakeError) as out:
        intake.create_request(store, acc["hotline"], _req((IN_A[1], IN_A[0])), now=T0)
    assert out.value.to_json("en")["errors"][0]["code"] == "api.error.outside_grids"
    assert not store.has_layer("incidents") or store.count("incidents") == 0


@pytest.mark.parametrize(("dy_m", "minutes", "code", "dup"), [
    (50, 60, "0101", True),     # same item, 50 m, an hour later: flagged
    (50, 60, "0102", True),     # same category (01), another item: flagged
    (300, 60, "0101", False),   # too far
    (50, 200, "0101", False),   # too late (3 h 20 min)
    (50, 60, "0401", False),    # another category
])
def test_likely_duplicates_are_flagged(world, dy_m, minutes, code, dup) -> None:
    store, acc = world
    first = intake.create_request(store, acc["hotline"], _req(IN_A), now=T0).request
    lonlat = (IN_A[0], IN_A[1] + dy_m * M_LAT)
    c = intake.create_request(store, acc["hotline"], _req(lonlat, code),
                              now=T0 + pd.Timedelta(minutes=minutes))
    assert c.duplicate_of == (first["service_request_id"] if dup else None)
    note = store.read("incident_events", where={
        "service_request_id": c.request["service_request_id"]})["note"].iloc[0]
    assert parse_note(note)[0].get("duplicate_of") == (first["service_request_id"] if dup else None)
    if dup:
        assert abs(c.duplicate_m - dy_m) < 2


def test_a_closed_case_is_no_duplicate(world) -> None:
    store, acc = world
    first = intake.create_request(store, acc["hotline"], _req(IN_A), now=T0).request["service_request_id"]
    from layers.app import act_on_case

    act_on_case(store, acc["hotline"], first, "close_no_action", time=T0 + pd.Timedelta(minutes=1),
                reason="invalid")
    c = intake.create_request(store, acc["hotline"], _req(IN_A), now=T0 + pd.Timedelta(minutes=5))
    assert c.duplicate_of is None


def _work(store, acc, payload, now):
    def work(seed):
        c = intake.create_request(store, acc, payload, now=now,
                                  request_id=intake.new_request_id(now, seed) if seed else None)
        return intake.Outcome(201, intake.created_json(c, "en"))
    return work


def test_a_retried_key_creates_one_case_and_a_reused_key_is_refused(world) -> None:
    store, acc = world
    h = acc["hotline"]
    body = _req(IN_A)
    fp = intake.fingerprint("POST", "/r", b"same body")
    one = intake.idempotent(store, h, "key-1", fp, _work(store, h, body, T0))
    two = intake.idempotent(store, h, "key-1", fp, _work(store, h, body, T0))
    assert not one.replayed and two.replayed and one.body == two.body
    assert store.count("incidents") == 1
    with pytest.raises(intake.IntakeError) as e:
        intake.idempotent(store, h, "key-1", intake.fingerprint("POST", "/r", b"other"),
                          _work(store, h, body, T0))
    assert e.value.to_json("en")["errors"][0]["code"] == "api.error.idempotency_reused"
    # another client may use the same key string: keys are per account
    other = intake.idempotent(store, acc["hotline-a"], "key-1", fp,
                              _work(store, acc["hotline-a"], body, T0))
    assert not other.replayed and store.count("incidents") == 2
    # a failed attempt releases its key: the retry does the work
    with pytest.raises(intake.IntakeError):
        intake.idempotent(store, h, "key-2", fp, _work(store, h, {"service_code": "x"}, T0))
    assert not intake.idempotent(store, h, "key-2", fp, _work(store, h, body, T0)).replayed
    assert store.count("incidents") == 3


def _race(url: str, token: str, barrier, out) -> None:
    with open_store(url) as store:
        acc = resolve_api_token(store, token)
        barrier.wait()
        try:
            res = intake.idempotent(store, acc, "race", "fp", _work(store, acc, _req(IN_A), T0))
            out.put(("ok", res.body[0]["service_request_id"]))
        except intake.IntakeError as e:
            out.put(("err", e.issues[0].code))


def test_two_processes_with_one_key_make_one_case(world) -> None:
    store, acc = world
    url = acc["_url"]
    token = issue_api_token(store, "hotline", actor="tests")
    ctx = multiprocessing.get_context("fork")  # fast; each child opens its own store
    barrier, out = ctx.Barrier(3), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(url, token, barrier, out)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    results = [out.get(timeout=5) for _ in procs]
    assert store.count("incidents") == 1
    ids = {r[1] for r in results if r[0] == "ok"}
    assert len(ids) == 1  # whoever answered "ok" names the one case
    assert all(r[1] == "api.error.idempotency_pending" for r in results if r[0] == "err")


def _fix(worker: str, minute: int, lonlat=IN_A, **kw) -> dict:
    t = (T0 + pd.Timedelta(minutes=minute)).isoformat() + "+08:00"
    return {"worker_id": worker, "time": t, "long": lonlat[0], "lat": lonlat[1], **kw}


def test_fixes_are_appended_all_or_nothing(world) -> None:
    store, acc = world
    out = intake.post_fixes(store, acc["hotline"], [_fix("w1", i) for i in range(300)]
                            + [_fix("W2", 0, IN_B), _fix("W2", 0, IN_B)])
    assert out == {"accepted": 301, "duplicates": 1}
    pp = store.read("patrol_points")
    assert len(pp) == 301 and pp["time"].min() == T0
    bad = [_fix("w1", 1), {"worker_id": "w1", "time": "yesterday-ish", "lat": 1},
           _fix("nobody", 2), _fix("w1", 3, lat="x")]
    with pytest.raises(intake.IntakeError) as e:
        intake.post_fixes(store, acc["hotline"], bad)
    rows = [(i["row"], i["code"], i["column"]) for i in e.value.to_json("en")["errors"]]
    assert (1, "api.error.bad_datetime", "time") in rows
    assert (1, "api.error.missing_field", "long") in rows
    assert (3, "api.error.bad_number", "lat") in rows
    assert store.count("patrol_points") == 301  # nothing of the bad batch


def test_a_worker_posts_only_their_own_fixes_and_scope_binds_the_centre(world) -> None:
    store, acc = world
    assert intake.post_fixes(store, acc["w1"], [_fix("w1", 0)])["accepted"] == 1
    with pytest.raises(intake.IntakeError) as e:
        intake.post_fixes(store, acc["w1"], [_fix("w1", 1), _fix("W2", 1, IN_B)])
    err = e.value.to_json("zh")["errors"]
    assert [(x["row"], x["code"]) for x in err] == [(1, "api.error.not_own_fix")]
    assert "本人" in err[0]["message"]
    with pytest.raises(PermissionDenied):
        intake.post_fixes(store, acc["hotline-a"], [_fix("W2", 1, IN_B)])
    with pytest.raises(PermissionDenied):  # a department handler posts no fixes
        intake.post_fixes(store, acc["dept"], [_fix("w1", 1)])
    assert store.count("patrol_points") == 1


def test_case_actions_follow_the_loop(world) -> None:
    store, acc = world
    srid = intake.create_request(store, acc["hotline"], _req(IN_A), now=T0).request["service_request_id"]
    t = T0
    for who, body in (("hotline", {"action": "assign", "department": "urban_management"}),
                      ("dept", {"action": "start_handling"}),
                      ("dept", {"action": "report_back", "note": "已清理"})):
        t += pd.Timedelta(minutes=10)
        out = intake.case_action(store, acc[who], srid, body, now=t)
    assert out["request"]["extended_attributes"]["stage"] == "verifying"
    assert out["event"]["action"] == "report_back"
    from layers.workflow import IllegalTransitionError

    with pytest.raises(IllegalTransitionError):  # wrong stage
        intake.case_action(store, acc["dept"], srid, {"action": "start_handling"}, now=t)
    with pytest.raises(PermissionDenied):  # a department may not verify
        intake.case_action(store, acc["dept"], srid, {"action": "verify_pass"}, now=t)
    with pytest.raises(intake.IntakeError) as e:
        intake.case_action(store, acc["dept"], "nope", {"action": "start_handling"}, now=t)
    assert e.value.status == 404


def test_api_tokens_end_with_revocation_and_disabled_accounts(world) -> None:
    store, acc = world
    tok = issue_api_token(store, "w1", actor="tests")
    assert resolve_api_token(store, tok).username == "w1"
    assert resolve_api_token(store, tok + "x") is None
    assert accounts.resolve_session(store, tok) is None  # not a dashboard session
    accounts.set_disabled(store, "w1", True, actor="tests")
    assert resolve_api_token(store, tok) is None
    accounts.set_disabled(store, "w1", False, actor="tests")
    assert revoke_api_token(store, tok, actor="tests") == 1
    assert resolve_api_token(store, tok) is None


@settings(max_examples=60, deadline=None)
@given(lon1=st.floats(118.0, 119.0), lat1=st.floats(31.5, 32.5),
       dx=st.floats(-0.01, 0.01), dy=st.floats(-0.01, 0.01))
def test_distance_is_symmetric_and_matches_a_degree(lon1, lat1, dx, dy) -> None:
    d = intake.metres_between(lon1, lat1, lon1 + dx, lat1 + dy)
    assert d == pytest.approx(intake.metres_between(lon1 + dx, lat1 + dy, lon1, lat1))
    assert d >= 0
    assert intake.metres_between(lon1, lat1, lon1, lat1 + 0.001) == pytest.approx(111.2, abs=0.2)


def test_services_are_the_whistle_list() -> None:
    from layers import taxonomy

    zh, en = intake.services("zh"), intake.services("en")
    assert [s["service_code"] for s in zh] == list(taxonomy.ITEMS)
    assert zh[0]["service_name"] == "暴露垃圾" and en[0]["service_name"] == "Exposed rubbish"
    assert {s["type"] for s in en} == {"realtime"} and all(s["metadata"] is False for s in en)


def test_a_batch_writes_the_good_cases_together_and_answers_each(world) -> None:
    store, acc = world
    items = [(acc["hotline"], _req(IN_A), None, "en"),
             (acc["hotline-a"], _req(IN_B), None, "en"),           # out of scope
             (acc["hotline"], {"service_code": "0101"}, None, "zh"),  # no place
             (acc["hotline"], _req((IN_A[0], IN_A[1] + 30 * M_LAT)), None, "zh"),
             (acc["hotline-a"], _req(IN_A, "0401"), None, "en")]
    out = intake.create_requests(store, items, now=T0)
    assert isinstance(out[1], PermissionDenied) and isinstance(out[2], intake.IntakeError)
    made = [out[i] for i in (0, 3, 4)]
    assert all(isinstance(c, intake.Created) for c in made)
    assert store.count("incidents") == 3
    # the second report 30 m from the first, in the same batch, is flagged as its duplicate
    assert made[1].duplicate_of == made[0].request["service_request_id"]
    assert made[0].duplicate_of is None and made[2].duplicate_of is None
    assert made[1].request["status_notes"] == "问题收集" and made[0].request["status_notes"] == "collected"
    log = store.audit_log()
    collects = log[(log["note"] == "collect") & (log["layer"] == "incidents")]
    assert sorted(zip(collects["actor"], collects["rows"], strict=True)) == [("hotline", 2), ("hotline-a", 1)]


def test_fix_times_in_any_offset_are_local_time_and_resends_are_dropped(world) -> None:
    store, acc = world
    same = [{"worker_id": "w1", "time": "2026-12-03T02:00:00Z", "lat": IN_A[1], "long": IN_A[0]},
            {"worker_id": "w1", "time": "2026-12-03T10:00:00+08:00", "lat": IN_A[1],
             "long": IN_A[0]},
            {"worker_id": "w1", "time": "2026-12-03T10:00:00", "lat": IN_A[1], "long": IN_A[0]}]
    assert intake.post_fixes(store, acc["w1"], same) == {"accepted": 1, "duplicates": 2}
    assert store.read("patrol_points")["time"].tolist() == [T0]
    # resent later (a clean batch: the vectorised path), it is recognised by the same id
    again = [same[1], {**same[1], "time": "2026-12-03T10:00:30+08:00"}]
    assert intake.post_fixes(store, acc["w1"], again) == {"accepted": 1, "duplicates": 1}
    assert store.count("patrol_points") == 2
