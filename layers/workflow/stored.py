"""The store adapter: :func:`transition` performs an action on a stored case, compare-and-set.

It reads the case from a :class:`layers.store.Store`, runs
:func:`layers.workflow.transitions.apply_transition`, and writes the row update and the event in
one transaction (``Store.apply`` with ``RowUpdate.expect``); see :data:`CAS_COLUMNS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from layers.workflow._base import _MSG, IllegalTransitionError
from layers.workflow._base import isna as _isna
from layers.workflow.limits import DEFAULT_POLICY, WorkflowPolicy
from layers.workflow.transitions import apply_transition

CAS_COLUMNS: tuple[str, ...] = (
    "stage", "status", "whistle", "department", "reworks", "extensions", "expected_datetime",
    "updated_datetime", "closed_datetime",
)


def transition(
    store: Any,
    service_request_id: str,
    action: str,
    *,
    actor: str,
    role: str,
    time: Any,
    note: str = "",
    policy: WorkflowPolicy = DEFAULT_POLICY,
    incident: Mapping[str, Any] | None = None,
    based_on: Mapping[str, Any] | None = None,
    **options: Any,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Perform ``action`` on a stored incident: the row update and its event in one transaction.

    Reads the incident from ``store`` (a :class:`layers.store.Store`), runs
    :func:`apply_transition` and writes the changed columns and the event with
    ``Store.apply`` — both or neither. ``collect`` takes the new incident as ``incident`` (with
    its geometry) and appends it together with its event. An illegal transition raises
    :class:`IllegalTransitionError` before anything is written.

    The write is a compare-and-set: it succeeds only if the case still holds the values the
    decision was made on (:data:`CAS_COLUMNS`: stage, whistle, department, counters, due and
    last-update times). When another user or process moved the case in between,
    :class:`layers.errors.ConcurrentChangeError` is raised (catalogue ``cas.conflict``:
    "this case was just changed by someone else — reload and try again") and nothing changes,
    so two racing actions never both land (no broken event chain, no lost extension count).
    ``based_on`` is the case as the actor saw it (e.g. the row a page showed before the click):
    if any of its :data:`CAS_COLUMNS` differs from the stored case, the same error is raised.
    """
    import geopandas as gpd

    from layers.schema import SCHEMAS
    from layers.store import RowUpdate

    if action == "collect":
        if incident is None:
            raise IllegalTransitionError(_MSG + "missing_option", action=action, option="incident")
        row = {k: v for k, v in incident.items() if k != "geometry"}
        row["service_request_id"] = service_request_id
        new, event = apply_transition(row, action, actor=actor, role=role, time=time, note=note,
                                      policy=policy, **options)
        cols = [c for c in SCHEMAS["incidents"].columns if c in new]
        frame = gpd.GeoDataFrame({c: [new[c]] for c in cols}, geometry=[incident.get("geometry")], crs=4326)
        store.write({"incidents": frame, "incident_events": pd.DataFrame([event])}, mode="append",
                    actor=actor, note=action)
        return new, event
    df = store.read("incidents", columns=SCHEMAS["incidents"].columns,
                    where={"service_request_id": service_request_id})
    if len(df) != 1:
        raise IllegalTransitionError(_MSG + "not_found", id=service_request_id)
    current = {c: (None if _isna(v) else v) for c, v in df.drop(columns="geometry", errors="ignore").iloc[0].items()}
    if based_on is not None and any(not _same(based_on.get(c), current.get(c))
                                    for c in CAS_COLUMNS if c in based_on):
        from layers._store_common import conflict_error

        raise conflict_error("incidents", [service_request_id])
    new, event = apply_transition(current, action, actor=actor, role=role, time=time, note=note,
                                  policy=policy, **options)
    changes = {c: new[c] for c in new if c != "service_request_id" and not _same(new[c], current.get(c))}
    expect = {c: current.get(c) for c in CAS_COLUMNS if c in current}
    store.apply([RowUpdate("incidents", [service_request_id], changes, expect=expect)],
                events=pd.DataFrame([event]), actor=actor, note=action)
    return new, event


def _same(a: Any, b: Any) -> bool:
    if _isna(a) and _isna(b):
        return True
    if _isna(a) or _isna(b):
        return False
    return bool(a == b)


__all__ = ["CAS_COLUMNS", "transition"]
