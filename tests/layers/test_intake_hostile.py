"""Hostile Open311 POSTs: each one gets its own answer, and none spoils its batch.

A ``requested_datetime`` of year 9999 used to overflow the duplicate search's time window,
and the whole batch (every concurrent POST of the API's :class:`gridpulse.api.Batcher`)
failed with it; a control character in a description made the store refuse the batch's
write. Now the first is a 422 naming the field and the window, the second is dropped as the
file readers drop it, and a batch that still fails as a whole is retried request by request.
"""

from __future__ import annotations

import asyncio
import concurrent.futures

import pandas as pd
import pytest

from gridpulse import api
from layers import intake
from layers._io_guard import CONTROL_CHARS
from tests._intake_world import IN_A, IN_B
from tests.layers import test_intake as base
from tests.layers.test_intake import T0, _req

world = base.world
quick_hashes = base.quick_hashes


def _items(acc, bodies: list[dict]) -> list[tuple]:
    return [(acc, b, None, "zh", None) for b in bodies]


def test_control_characters_are_dropped_and_the_case_is_stored(world) -> None:
    store, acc = world
    bodies = [_req(IN_A, description="垃圾\x00堆积\x07", address_string="中山路\x0b1号",
                   first_name="张\x1b[31m"),
              _req(IN_B, description="第二件\x1f")]
    out = intake.create_requests(store, _items(acc["hotline"], bodies), now=T0)
    assert all(isinstance(r, intake.Created) for r in out), out
    assert [r.request["description"] for r in out] == ["垃圾堆积", "第二件"]
    ids = [r.request["service_request_id"] for r in out]
    rows = store.read("incidents", columns=["service_request_id", "description", "address",
                                            "reporter_name"],
                      where={"service_request_id": ids})
    assert len(rows) == 2
    for col in ("description", "address", "reporter_name"):
        assert not rows[col].dropna().map(lambda v: bool(CONTROL_CHARS.search(v))).any(), col
    one = rows.set_index("service_request_id").loc[ids[0]]
    assert (one["address"], one["reporter_name"]) == ("中山路1号", "张[31m")


@pytest.mark.parametrize(("when", "ok"), [
    ("9999-12-31T00:00:00", False),
    ("1677-09-22T00:00:00+08:00", False),
    ((T0 - pd.Timedelta(days=400)).isoformat(), False),
    ((T0 + pd.Timedelta(hours=2)).isoformat(), False),
    ((T0 - pd.Timedelta(days=300)).isoformat(), True),
    ((T0 + pd.Timedelta(minutes=30)).isoformat(), True),
])
def test_a_requested_time_outside_the_window_is_refused_alone(world, when: str, ok: bool) -> None:
    store, acc = world
    before = store.count("incidents")
    out = intake.create_requests(store, _items(acc["hotline"], [
        _req(IN_A, description="前"), _req(IN_B, requested_datetime=when),
        _req(IN_A, "0201", description="后")]), now=T0)
    assert isinstance(out[0], intake.Created) and isinstance(out[2], intake.Created)
    if ok:
        assert isinstance(out[1], intake.Created)
        assert store.count("incidents") == before + 3
        return
    err = out[1]
    assert isinstance(err, intake.IntakeError) and err.status == 422
    body = err.to_json("zh")["errors"][0]
    assert body["code"] == "api.error.time_out_of_range"
    assert body["column"] == "requested_datetime"
    assert "2025-12-02 10:00" in body["message"] and "2026-12-03 11:00" in body["message"]
    assert "一年前" in body["fix"]
    assert "outside what can be taken in" in err.message("en")
    assert store.count("incidents") == before + 2


def test_a_long_address_is_cut(world) -> None:
    store, acc = world
    (c,) = intake.create_requests(store, _items(acc["hotline"], [
        _req(IN_A, address_string="路" * 20_000)]), now=T0)
    assert isinstance(c, intake.Created)
    assert c.request["address"] == "路" * 200


def test_a_batch_that_fails_whole_is_retried_request_by_request(world, monkeypatch) -> None:
    """The API's batcher: a bug met by one request (simulated: ``create_requests`` raising
    when that request is in the batch) fails that request only; the others are stored."""
    store, acc = world
    real = intake.create_requests

    def with_a_bug(s, items, **kw):
        if any(it[1].get("description") == "poison" for it in items):
            raise RuntimeError("a bug met by one request")
        return real(s, items, now=T0, **kw)

    monkeypatch.setattr(intake, "create_requests", with_a_bug)
    stores = api._Stores(acc["_url"])
    try:
        batcher = api.Batcher(stores)
        h = acc["hotline"]

        async def post_all() -> list:
            jobs = [batcher.submit((h, _req(IN_A if i % 2 else IN_B,
                                            description="poison" if i == 2 else f"第{i}件"),
                                    None, "zh", None)) for i in range(5)]
            return await asyncio.gather(*jobs, return_exceptions=True)

        before = store.count("incidents")
        # a loop of its own, in a thread of its own: a browser test earlier in this process
        # may have left this thread's event loop marked as running
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            out = pool.submit(lambda: asyncio.run(post_all())).result(timeout=120)
    finally:
        stores.close()
    assert isinstance(out[2], RuntimeError)
    assert [type(r).__name__ for i, r in enumerate(out) if i != 2] == ["Created"] * 4
    assert store.count("incidents") == before + 4


def _fix(when: str) -> dict:
    return {"worker_id": "w1", "time": when, "long": IN_A[0], "lat": IN_A[1]}


@pytest.mark.parametrize(("when", "ok"), [
    ("9999-12-31T00:00:00", False),
    ("0001-01-01T00:00:00", False),
    ("1980-01-06T00:00:00Z", False),  # the GPS epoch: what a phone with a reset clock sends
    ("+2h", False),
    ("+30min", True),
    ("2001-05-01T08:00:00+08:00", True),
])
def test_a_fix_dated_outside_the_window_refuses_its_batch(world, when: str, ok: bool) -> None:
    from layers._intake_base import now_local

    store, acc = world
    if when.startswith("+"):
        when = (now_local() + pd.Timedelta(when[1:])).isoformat() + "+08:00"
    before = store.count("patrol_points") if store.has_layer("patrol_points") else 0
    batch = [_fix((T0 + pd.Timedelta(minutes=1)).isoformat()), _fix(when)]
    if ok:
        assert intake.post_fixes(store, acc["w1"], batch) == {"accepted": 2, "duplicates": 0}
        return
    with pytest.raises(intake.IntakeError) as e:
        intake.post_fixes(store, acc["w1"], batch)
    (issue,) = e.value.to_json("zh")["errors"]
    assert (issue["code"], issue["row"], issue["column"]) == (
        "api.error.fix_time_out_of_range", 1, "time")
    assert "第 2 个定位点" in issue["message"] and "2000-01-01" in issue["message"]
    assert "1970" in issue["fix"]
    assert "Fix number 2" in e.value.message("en")
    after = store.count("patrol_points") if store.has_layer("patrol_points") else 0
    assert after == before  # all or nothing


@pytest.mark.parametrize("key", ["actor", "role", "policy", "based_on", "incident", "department2"])
def test_a_case_action_takes_only_its_own_options(world, key: str) -> None:
    """``actor``/``role`` used to collide with the call's own arguments (a 500), ``policy`` was
    handed to the workflow as its policy; now every key the action does not take is refused."""
    from layers.workflow import IllegalTransitionError

    store, acc = world
    srid = intake.create_request(store, acc["hotline"], _req(IN_A), now=T0) \
        .request["service_request_id"]
    body = {"action": "assign", "department": "urban_management", key: {"x": 1}}
    with pytest.raises(IllegalTransitionError) as e:
        intake.case_action(store, acc["hotline"], srid, body, now=T0)
    assert e.value.key == "incidents.workflow.unknown_option"
    assert "department" in e.value.fix("en")
    stage = store.read("incidents", columns=["stage"], where={"service_request_id": srid})
    assert stage["stage"].tolist() == ["collected"]  # nothing written


def test_a_case_action_note_is_cleaned_and_its_time_checked(world) -> None:
    store, acc = world
    srid = intake.create_request(store, acc["hotline"], _req(IN_A), now=T0) \
        .request["service_request_id"]
    with pytest.raises(intake.IntakeError) as e:
        intake.case_action(store, acc["hotline"], srid, {
            "action": "assign", "department": "urban_management",
            "time": "9999-01-01T00:00:00"}, now=T0)
    assert e.value.to_json("en")["errors"][0]["code"] == "api.error.time_out_of_range"
    out = intake.case_action(store, acc["hotline"], srid, {
        "action": "assign", "department": "urban_management", "note": "派\x00单" + "长" * 5000},
        now=T0 + pd.Timedelta(minutes=5))
    assert out["event"]["note"].endswith(" 派单" + "长" * 1998)  # after the workflow's tag
    ev = store.read("incident_events", columns=["note"], where={"service_request_id": srid})
    assert not ev["note"].dropna().map(lambda v: bool(CONTROL_CHARS.search(v))).any()


def test_an_id_with_a_nul_is_not_found_on_both_engines(world) -> None:
    """PostgreSQL refuses a text parameter holding NUL (a ``%00`` in the API's path was a
    500); the store's filters now match such a value to nothing, on both engines."""
    store, acc = world
    h = acc["hotline"]
    srid = intake.create_request(store, h, _req(IN_A), now=T0).request["service_request_id"]
    with pytest.raises(intake.IntakeError) as e:
        intake.get_request(store, h, srid + "\x00")
    assert e.value.status == 404
    with pytest.raises(intake.IntakeError) as e:
        intake.case_action(store, h, "\x00" + srid, {"action": "assign",
                                                     "department": "urban_management"}, now=T0)
    assert e.value.status == 404
    assert intake.list_requests(store, h, ids=[srid + "\x00"], now=T0) == []
    found = store.read("incidents", columns=["service_request_id"],
                       where={"service_request_id": [srid, "a\x00b", None]})
    assert found["service_request_id"].tolist() == [srid]
    assert store.count("incidents", where={"service_request_id": "a\x00b"}) == 0
