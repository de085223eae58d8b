"""Likely duplicate cases: what intake flagged, and merging a duplicate into the case it repeats.

The intake API (:func:`layers.intake.create_requests`) flags a new case that lies within
:data:`layers.intake.DUPLICATE_RADIUS_M` of an open case of the same category received at most
:data:`layers.intake.DUPLICATE_HOURS` before it; the flag is the collect event's note option
``[duplicate_of=<id>]`` (:func:`layers.workflow.parse_note`). The case board offers such a
case for merging (:func:`merge_duplicate`): the duplicate closes without action
(``close_no_action``, reason ``duplicate``, ``duplicate_of`` = the kept case) -- its event
records the link -- while the kept case stays as it is.

Examples
--------
>>> links_from_events([{"action": "collect", "note": "[duplicate_of=SR-1] open311"}])
{'flagged': 'SR-1', 'merged_into': None}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from layers.permissions import Account, require
from layers.workflow import CAS_COLUMNS, IllegalTransitionError, apply_transition, parse_note

_K = "live.merge."


def links_from_events(events: Iterable[Mapping[str, Any]]) -> dict[str, str | None]:
    """``flagged``: the case intake said this one likely duplicates (collect event), and
    ``merged_into``: the case it was closed into as a duplicate (``close_no_action``)."""
    out: dict[str, str | None] = {"flagged": None, "merged_into": None}
    for ev in events:
        opts, _ = parse_note(ev.get("note") if isinstance(ev.get("note"), str) else "")
        dup = opts.get("duplicate_of")
        if not dup:
            continue
        if ev.get("action") == "collect":
            out["flagged"] = dup
        elif ev.get("action") == "close_no_action":
            out["merged_into"] = dup
    return out


def duplicate_links(store: Any, service_request_id: str) -> dict[str, str | None]:
    """:func:`links_from_events` of one stored case."""
    if not store.has_layer("incident_events"):
        return {"flagged": None, "merged_into": None}
    ev = store.read("incident_events", columns=["action", "note"],
                    where={"service_request_id": str(service_request_id),
                           "action": ["collect", "close_no_action"]})
    return links_from_events(ev.to_dict("records"))


def _clean(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (None if not isinstance(v, str) and pd.api.types.is_scalar(v) and pd.isna(v)
                else v) for k, v in row.items() if k != "geometry"}


def merge_duplicate(store: Any, account: Account, service_request_id: str, into: str, *,
                    time: Any, note: str = "", based_on: Mapping[str, Any] | None = None
                    ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Close ``service_request_id`` as a duplicate of ``into`` (the case kept), checked,
    compare-and-set on both cases, audited.

    Parameters
    ----------
    store, account
        Where, and who: the account needs ``case.close_no_action`` on the duplicate (its
        grid and department) and must be allowed to see the kept case.
    service_request_id, into
        The duplicate and the case kept.
    time
        When the merge is recorded.
    note
        Free text for the event (the options ``reason=duplicate duplicate_of=<into>`` are
        recorded in front of it).
    based_on
        The duplicate as the user saw it (e.g. the case board before the click): if any of
        :data:`layers.workflow.CAS_COLUMNS` changed since, nothing is written.

    Returns
    -------
    tuple of dict
        The duplicate's updated row and its ``close_no_action`` event.

    Raises
    ------
    layers.permissions.PermissionDenied
        Not allowed on either case.
    layers.workflow.IllegalTransitionError
        Same case, unknown kept case, a kept case that is itself a merged duplicate, or a
        duplicate past the stage where it can be closed without action.
    layers.errors.ConcurrentChangeError
        Either case changed meanwhile (``based_on``, or another writer during the write):
        the duplicate was not closed.
    """
    from layers._store_common import conflict_error
    from layers.schema import SCHEMAS
    from layers.store import RowUpdate

    dup_id, kept_id = str(service_request_id), str(into)
    if dup_id == kept_id:
        raise IllegalTransitionError(_K + "same_case", id=dup_id)
    df = store.read("incidents", columns=SCHEMAS["incidents"].columns,
                    where={"service_request_id": [dup_id, kept_id]}) \
        if store.has_layer("incidents") else pd.DataFrame()
    rows = {str(r["service_request_id"]): _clean(r) for r in df.to_dict("records")}
    if dup_id not in rows:
        raise IllegalTransitionError("incidents.workflow.not_found", id=dup_id)
    dup = rows[dup_id]
    require(account, "case.close_no_action", scope_code=str(dup.get("grid_code") or ""),
            department=dup.get("department"))
    if kept_id not in rows:
        raise IllegalTransitionError(_K + "not_found", id=kept_id)
    kept = rows[kept_id]
    require(account, "view.incidents", scope_code=str(kept.get("grid_code") or ""))
    if kept.get("stage") == "closed_no_action":
        other = duplicate_links(store, kept_id)["merged_into"]
        if other:
            raise IllegalTransitionError(_K + "kept_merged", id=kept_id, other=other)
    if based_on is not None and any(
            not _same(based_on.get(c), dup.get(c)) for c in CAS_COLUMNS if c in based_on):
        raise conflict_error("incidents", [dup_id])
    role = account.workflow_role
    assert role is not None  # require() refused roles without one
    new, event = apply_transition(dup, "close_no_action", actor=account.username, role=role,
                                  time=time, note=note, reason="duplicate",
                                  duplicate_of=kept_id)
    changes = {c: new[c] for c in new if c != "service_request_id" and not _same(new[c], dup.get(c))}
    from layers.i18n import t

    store.apply(
        [RowUpdate("incidents", [dup_id], changes,
                   expect={c: dup.get(c) for c in CAS_COLUMNS if c in dup}),
         # the kept case must still be what was checked: a pure check that locks its row
         RowUpdate("incidents", [kept_id], {},
                   expect={c: kept.get(c) for c in CAS_COLUMNS if c in kept})],
        events=pd.DataFrame([event]), actor=account.username,
        note=t(_K + "audit_note", "en", id=dup_id, kept=kept_id))
    return new, event


def _same(a: Any, b: Any) -> bool:
    na = lambda v: v is None or (not isinstance(v, str) and pd.isna(v))  # noqa: E731
    if na(a) or na(b):
        return na(a) and na(b)
    return bool(a == b)


__all__ = ["duplicate_links", "links_from_events", "merge_duplicate"]
