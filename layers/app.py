"""Application functions: one per user job, each checked against the acting account.

The dashboard, the CLI and any later HTTP front end call these, never the store's writes
directly. Each one asks :func:`layers.permissions.can` first (role, scope, department); a
refusal raises :class:`~layers.permissions.PermissionDenied` and changes nothing. The work
itself is done by the existing modules (:func:`layers.workflow.transition`, ``Store.write``,
``Store.save_version``...), with the account's user name as the actor of every event and
audit row.

Examples
--------
>>> import tempfile, pathlib
>>> from layers.store import open_store
>>> from layers.permissions import Account, PermissionDenied
>>> store = open_store(str(pathlib.Path(tempfile.mkdtemp()) / "s.gpkg"))
>>> try:
...     save_plan_version(store, Account("a", role="analyst"), "grids", None)
... except PermissionDenied as e:
...     print(e.message("en"))
Refused: the role “analyst (read only)” may not save a grid version. Nothing was changed.
"""

from __future__ import annotations

import getpass
from collections.abc import Mapping
from typing import Any

import pandas as pd

from layers.permissions import Account, PermissionDenied, can, filter_frame, require
from layers.privacy import mask_personal, personal_columns

#: Audit actions that do not change any layer (the dashboard's data version skips them).
NON_DATA_ACTIONS: tuple[str, ...] = ("account_", "sign_", "export", "unmask", "kiosk_",
                                     "analysis_")


def _case_place(store: Any, service_request_id: str) -> tuple[str | None, str | None]:
    if not store.has_layer("incidents"):
        return None, None
    df = store.read("incidents", columns=["service_request_id", "grid_code", "department"],
                    where={"service_request_id": service_request_id})
    if len(df) != 1:
        return None, None
    row = df.iloc[0]
    grid = row.get("grid_code")
    dept = row.get("department")
    return (None if pd.isna(grid) else str(grid)), (None if pd.isna(dept) else str(dept))


def case_decision(store: Any, account: Account, service_request_id: str, action: str):
    """The :class:`~layers.permissions.Decision` for ``action`` on one stored case."""
    grid, dept = _case_place(store, service_request_id)
    return can(account, f"case.{action}", scope_code=grid or "", department=dept)


def act_on_case(store: Any, account: Account, service_request_id: str, action: str, *,
                time: Any, note: str = "", incident: Mapping[str, Any] | None = None,
                **options: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check ``account`` may do ``action`` on the case, then run the workflow transition.

    The workflow role comes from the account (:data:`layers.permissions.WORKFLOW_ROLE`), the
    actor of the event and the audit row is ``account.username``. ``collect`` takes the new
    case as ``incident`` (its ``grid_code`` must lie in the account's scope).

    Raises
    ------
    PermissionDenied
        The role may not take the action, the case lies outside the account's scope, or it
        belongs to another department. Nothing is written.
    layers.workflow.IllegalTransitionError
        The workflow refuses the step (wrong stage, missing option...). Nothing is written.
    """
    from layers import workflow

    if action == "collect":
        grid = None if incident is None else incident.get("grid_code")
        require(account, "case.collect", scope_code=str(grid) if grid else "")
    else:
        grid, dept = _case_place(store, service_request_id)
        if grid is None and dept is None and not store.has_layer("incidents"):
            raise workflow.IllegalTransitionError("incidents.workflow.not_found", id=service_request_id)
        require(account, f"case.{action}", scope_code=grid or "", department=dept)
    role = account.workflow_role
    assert role is not None  # require() refused roles without one
    return workflow.transition(store, service_request_id, action, actor=account.username,
                               role=role, time=time, note=note, incident=incident, **options)


def legal_case_actions(account: Account, record: Mapping[str, Any], *, time: Any = None
                       ) -> list[str]:
    """Actions ``account`` may take on ``record`` now: the workflow's legal ones that pass
    :func:`~layers.permissions.can` for the case's grid and department."""
    from layers import workflow

    role = account.workflow_role
    if role is None:
        return []
    grid = record.get("grid_code")
    return [a for a in workflow.legal_actions(record, role, time=time)
            if can(account, f"case.{a}", scope_code=str(grid) if grid else "",
                   department=record.get("department"))]


def import_layers(store: Any, account: Account, layers: Mapping[str, pd.DataFrame], *,
                  mode: str | None = None, on_orphans: str = "refuse", note: str = "") -> None:
    """Write validated layers (all or nothing) after checking ``account`` may import each.

    One layer goes through :func:`layers.replace_check.write_checked`: append by default for
    record layers, and a replace that would orphan rows of other layers is refused unless
    ``on_orphans`` says what happens to them. Several layers are written together with
    ``mode`` (default ``"replace"``).
    """
    from layers.replace_check import write_checked

    for name in layers:
        require(account, "import", layer=name)
    if len(layers) == 1:
        ((name, data),) = layers.items()
        write_checked(store, name, data, mode=mode, on_orphans=on_orphans,  # type: ignore[arg-type]
                      actor=account.username, note=note)
        return
    store.write(dict(layers), mode=mode or "replace", actor=account.username,  # type: ignore[arg-type]
                note=note)


def export_layer(store: Any, account: Account, layer: str, *, unmask: bool = False,
                 note: str = "") -> pd.DataFrame:
    """A layer for download: the rows in the account's scope, personal fields masked unless
    ``unmask`` (a permission of its own). Every export is audited with the account."""
    require(account, "export")
    if unmask:
        require(account, "unmask")
    df = store.read(layer) if store.has_layer(layer) else pd.DataFrame()
    df = filter_frame(account, df, layer, workers=_workers(store, account, layer))
    personal = [c for c in personal_columns(layer) if c in df.columns] if len(df.columns) else []
    if not unmask and personal:
        df = mask_personal(df, layer)
    store.record("export_unmasked" if unmask and personal else "export", layer, rows=len(df),
                 actor=account.username, note=note)
    return df


def record_download(store: Any, account: Account, layer: str, *, rows: int, note: str = "") -> None:
    """Audit a download the page prepared itself (masked data already in scope)."""
    require(account, "export")
    store.record("export", layer, rows=int(rows), actor=account.username, note=note)


def _workers(store: Any, account: Account, layer: str) -> pd.DataFrame | None:
    if layer != "patrol_points" or not account.scope_code or not store.has_layer("workers"):
        return None
    return store.read("workers", columns=["id", "grid_code"])


def case_contacts(store: Any, account: Account, service_request_id: str) -> dict[str, Any]:
    """The case's reporter name and phone unmasked, for the case's own handlers; audited."""
    grid, dept = _case_place(store, service_request_id)
    require(account, "unmask.case", scope_code=grid or "", department=dept)
    df = store.read("incidents", columns=["service_request_id", *personal_columns("incidents")],
                    where={"service_request_id": service_request_id})
    store.record("unmask", "incidents", rows=len(df), actor=account.username,
                 note=service_request_id)
    if not len(df):
        return {}
    return {c: df.iloc[0][c] for c in personal_columns("incidents")}


def save_plan_version(store: Any, account: Account, layer: str, data: pd.DataFrame | None, *,
                      note: str = "") -> int:
    """Save ``data`` as a new live version of ``layer`` (planners, admins)."""
    require(account, "plan.save")
    return int(store.save_version(layer, data, actor=account.username, note=note))


def rollback_plan(store: Any, account: Account, layer: str, version: int, *, note: str = "") -> int:
    """Make ``version`` of ``layer`` live again (planners, admins)."""
    require(account, "plan.rollback")
    return int(store.rollback(layer, int(version), actor=account.username, note=note))


def os_account() -> Account:
    """The operating-system user running the CLI, as the actor of its writes.

    Whoever can run the CLI on the store's machine can open the store file itself, so the
    CLI without ``--as`` is not refused; it records who ran it (``os:<user>``).
    """
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        user = "unknown"
    return Account(f"os:{user}", role="admin", display_name=user)


def cli_account(store: Any, as_account: str | None) -> Account:
    """``--as ACCOUNT`` (checked like a signed-in person) or the operating-system user."""
    from layers.accounts import AccountError, get_account

    if not as_account:
        return os_account()
    account = get_account(store, as_account)
    if account.disabled:
        raise AccountError("auth.decision.disabled")
    return account


def is_data_action(action: str) -> bool:
    """False for audit rows that change no layer (sign-ins, account changes, exports).

    Examples
    --------
    >>> is_data_action("replace"), is_data_action("export_unmasked"), is_data_action("account_add")
    (True, False, False)
    """
    return not str(action).startswith(NON_DATA_ACTIONS)


__all__ = [
    "NON_DATA_ACTIONS", "PermissionDenied", "act_on_case", "case_contacts", "case_decision",
    "cli_account", "export_layer", "import_layers", "is_data_action", "legal_case_actions",
    "os_account", "record_download", "rollback_plan", "save_plan_version",
]
