"""Idempotency keys of the intake API: claim, complete, release, replay (``gp_idempotency``).

Split out of :mod:`layers.intake`, which re-exports every public name here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from layers._intake_base import IntakeError, now_local
from layers._records import IDEMPOTENCY
from layers.errors import StoreError
from layers.permissions import Account

# -- idempotency -------------------------------------------------------------------------------


@dataclass
class Outcome:
    """An answer to replay: HTTP status and JSON body; ``replayed`` when it came from a
    stored earlier attempt."""

    status: int
    body: Any
    replayed: bool = False


def fingerprint(method: str, path: str, body: bytes) -> str:
    """SHA-256 of what makes two requests the same request."""
    h = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), body):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def _idem_key(account: Account, key: str) -> str:
    return hashlib.sha256(f"{account.username}\n{key.strip()[:200]}".encode()).hexdigest()


def claim(store: Any, account: Account, key: str, print_: str) -> Outcome | None:
    """Claim ``key`` for a new attempt (``None``), or return the stored answer of an earlier
    one (an :class:`Outcome` with ``replayed``).

    The claim is an insert only one process can win (the key is the primary key of
    ``gp_idempotency``). Raises :class:`IntakeError`: 422 when the key was used for another
    request, 409 while the first attempt is still running.
    """
    k = _idem_key(account, key)
    row = {"key": k, "username": account.username, "fingerprint": print_, "state": "pending",
           "status": None, "body": None, "created": now_local()}
    for _ in range(3):
        try:
            if store.insert_record(IDEMPOTENCY.name, row):
                return None
        except StoreError:  # two processes creating the table at once (PostgreSQL): again
            continue
        rows = store.records(IDEMPOTENCY.name, where={"key": k})
        if not rows:  # released meanwhile: claim again
            continue
        old = rows[0]
        if old["fingerprint"] != print_:
            raise IntakeError.one("idempotency_reused", key=key[:60])
        if old["state"] != "done":
            raise IntakeError.one("idempotency_pending", status=409, key=key[:60])
        return Outcome(int(old["status"]), json.loads(old["body"]), replayed=True)
    raise IntakeError.one("idempotency_pending", status=409, key=key[:60])


def complete(store: Any, account: Account, key: str, outcome: Outcome) -> None:
    """Store the answer of a claimed key (a 5xx answer releases the key instead)."""
    if outcome.status >= 500:
        release(store, account, key)
        return
    store.update_records(IDEMPOTENCY.name, {"key": _idem_key(account, key)},
                         {"state": "done", "status": int(outcome.status),
                          "body": json.dumps(outcome.body, ensure_ascii=False, default=str)})


def release(store: Any, account: Account, key: str) -> None:
    """Give a claimed key up (the attempt failed): a retry will do the work."""
    store.delete_records(IDEMPOTENCY.name, {"key": _idem_key(account, key)})


def idempotent(store: Any, account: Account, key: str | None, print_: str,
               work: Callable[[str | None], Outcome]) -> Outcome:
    """Run ``work`` once per ``(account, key)``; a retry gets the first answer back.

    ``work`` receives a seed derived from the key (for deterministic ids) and returns an
    :class:`Outcome`. Without a key ``work`` just runs. See :func:`claim`: a failed attempt
    (an exception, or a 5xx answer) releases the key so the client can retry; the same key
    with a different request is refused (422); a key whose first attempt is still running
    answers 409.
    """
    if not key:
        return work(None)
    replay = claim(store, account, key, print_)
    if replay is not None:
        return replay
    try:
        out = work(_idem_key(account, key))
    except BaseException:
        release(store, account, key)
        raise
    complete(store, account, key, out)
    return out
