"""Idempotency keys written in the same transaction as the cases they create, on both engines.

:func:`layers.intake.create_requests` (the API's batch path) stores each key with its answer
in the write of its case: a retry gets the first answer, the same key with another body is
refused, one key twice in a batch makes one case, and processes racing with one key make one
case and all get its answer (no "pending" window: the key appears with the case).
"""

from __future__ import annotations

import multiprocessing

from layers import intake
from layers._records import IDEMPOTENCY
from layers.apitokens import issue_api_token, resolve_api_token
from layers.store import open_store
from tests._intake_world import IN_A, IN_B
from tests.layers import test_intake as base
from tests.layers.test_intake import T0, _req

world = base.world
quick_hashes = base.quick_hashes


def _item(acc, body, key: str | None, fp: str = "fp-1"):
    return (acc, body, None, "en", intake.Keyed(key, fp) if key else None)


def test_keys_are_stored_with_their_cases_and_replayed(world) -> None:
    store, acc = world
    h = acc["hotline"]
    out = intake.create_requests(store, [_item(h, _req(IN_A), "k1"), _item(h, _req(IN_B), None),
                                         _item(h, _req(IN_A), "k1"),  # the same key again
                                         _item(h, _req(IN_B), "k2", "fp-other"),
                                         _item(h, {"service_code": "x"}, "k3")], now=T0)
    first, plain, again, second, bad = out
    assert isinstance(first, intake.Created) and isinstance(plain, intake.Created)
    assert isinstance(again, intake.Outcome) and again.replayed and again.body == first.answer
    assert isinstance(second, intake.Created) and isinstance(bad, intake.IntakeError)
    assert store.count("incidents") == 3
    rows = {r["key"]: r for r in store.records(IDEMPOTENCY.name)}
    assert len(rows) == 2 and {r["state"] for r in rows.values()} == {"done"}
    # a later retry: the stored answer, nothing written; another body: refused
    retry, other, fixed = intake.create_requests(
        store, [_item(h, _req(IN_A), "k1"), _item(h, _req(IN_A, level=2), "k1", "fp-2"),
                _item(h, _req(IN_A), "k3")], now=T0)
    assert isinstance(retry, intake.Outcome) and retry.body == first.answer
    assert isinstance(other, intake.IntakeError)
    assert other.issues[0].code == "api.error.idempotency_reused"
    assert isinstance(fixed, intake.Created)  # a refused attempt kept no key
    assert store.count("incidents") == 4
    # keys belong to accounts: another client's "k1" is its own
    mine = intake.create_requests(store, [_item(acc["hotline-a"], _req(IN_A), "k1")], now=T0)
    assert isinstance(mine[0], intake.Created) and store.count("incidents") == 5


def _race(url: str, token: str, barrier, out) -> None:
    with open_store(url) as store:
        acc = resolve_api_token(store, token)
        barrier.wait()
        res = intake.create_requests(store, [_item(acc, _req(IN_A), "race")], now=T0)[0]
        if isinstance(res, intake.Created):
            out.put(("new", res.answer[0]["service_request_id"]))
        elif isinstance(res, intake.Outcome):
            out.put(("replayed", res.body[0]["service_request_id"]))
        else:
            out.put(("err", repr(res)))


def test_processes_racing_with_one_key_make_one_case_and_share_its_answer(world) -> None:
    store, acc = world
    token = issue_api_token(store, "hotline", actor="tests")
    ctx = multiprocessing.get_context("fork")
    barrier, out = ctx.Barrier(3), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(acc["_url"], token, barrier, out)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    results = [out.get(timeout=5) for _ in procs]
    assert store.count("incidents") == 1
    assert sorted(r[0] for r in results) == ["new", "replayed", "replayed"], results
    assert len({r[1] for r in results}) == 1
