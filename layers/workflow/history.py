"""Histories: check a case's event log (or a whole ``incident_events`` table) against the table."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from layers.workflow._base import _MSG, IllegalTransitionError
from layers.workflow.notes import parse_note
from layers.workflow.transitions import TRANSITIONS

EDGES: Mapping[tuple[str | None, str], str] = {
    (s, tr.target): tr.action for tr in TRANSITIONS if tr.target for s in tr.sources
}


def action_for(from_stage: str | None, to_stage: str) -> str | None:
    """The action that moves a case from ``from_stage`` to ``to_stage`` (``None``: illegal).

    Same-stage events (extensions, escalation, instructions) are legal in any stage where
    one of those actions is; this returns ``None`` for them since several actions fit.
    """
    return EDGES.get((from_stage, to_stage))


def check_history(events: Iterable[Mapping[str, Any]], *, actions: bool = True) -> None:
    """Check one incident's events (in time order) against the table, ignoring roles.

    Each event needs ``from_stage`` and ``to_stage``; with ``actions`` and an ``action`` present it
    must be the action the table names for that change (``actions=False`` checks the stages only,
    for logs written with other action names). Raises :class:`IllegalTransitionError` at the first
    event that breaks the chain or the table.

    Examples
    --------
    >>> path = ["collected", "whistled", "dispatched", "handling", "verifying", "handling",
    ...         "verifying", "closed", "evaluated"]
    >>> check_history([{"from_stage": a, "to_stage": b} for a, b in zip([None] + path, path)])
    """
    prev: str | None = None
    first = True
    for ev in events:
        a = ev.get("from_stage")
        a = None if a is None or (not isinstance(a, str) and pd.isna(a)) else a
        b = ev.get("to_stage")
        if not first and a != prev:
            raise IllegalTransitionError(_MSG + "broken_history", stage=a or "new", previous=prev or "new")
        first = False
        if a == b:
            acts = {tr.action for tr in TRANSITIONS if tr.target is None and b in tr.sources}
        else:
            acts = {EDGES[(a, b)]} if (a, b) in EDGES else set()
        act = ev.get("action") if actions else None
        if not acts or (act is not None and act not in acts):
            raise IllegalTransitionError(_MSG + "illegal_step", stage=a or "new", target=b,
                                         action=str(act or "-"))
        prev = b


def illegal_events(events: pd.DataFrame, *, actions: bool = False) -> pd.DataFrame:
    """Vectorised :func:`check_history` over a whole ``incident_events`` table.

    Events are taken per ``service_request_id`` in ``time`` order (ties keep the table's order).
    Returns the offending rows (input index kept, in that order) with a ``problem`` column:
    ``broken_history`` (does not start where the previous event ended) or ``illegal_step``
    (a stage change, or with ``actions`` an action name, the table does not allow).
    """
    ev = events.sort_values(["service_request_id", "time"], kind="stable")
    frm = ev["from_stage"].astype(object).where(ev["from_stage"].notna(), None)
    to = ev["to_stage"].astype(object)
    prev = to.groupby(ev["service_request_id"], sort=False).shift(1)
    prev = prev.astype(object).where(prev.notna(), None)
    chain_ok = np.array([a == b for a, b in zip(frm, prev, strict=True)])
    loops = {(s, tr.action) for tr in TRANSITIONS if tr.target is None for s in tr.sources}
    names = ev["action"].tolist() if actions and "action" in ev else [None] * len(ev)
    step_ok = np.array([
        ((a, b) in EDGES and (n is None or EDGES[(a, b)] == n))
        or (a == b and (n is None and any(s == b for s, _ in loops) or (b, n) in loops))
        for a, b, n in zip(frm, to, names, strict=True)
    ])
    out = ev.loc[~chain_ok | ~step_ok].copy()
    out["problem"] = np.where(chain_ok[~chain_ok | ~step_ok], "illegal_step", "broken_history")
    return out


def is_legal_path(stages: Sequence[str]) -> bool:
    """True when a new case may pass through ``stages`` in this order (roles ignored)."""
    try:
        check_history({"from_stage": a, "to_stage": b} for a, b in zip([None, *stages], stages, strict=False))
    except IllegalTransitionError:
        return False
    return True


def pending_extension(events: Iterable[Mapping[str, Any]]) -> bool:
    """True when the last extension event of a case is an unanswered request."""
    last = None
    for ev in events:
        if ev.get("action") in ("request_extension", "grant_extension", "deny_extension"):
            last = ev.get("action")
    return last == "request_extension"


__all__ = ["EDGES", "action_for", "check_history", "illegal_events", "is_legal_path", "parse_note",
           "pending_extension"]
