"""The transitions table of the closed loop: guards, effects, :func:`apply_transition`, :func:`legal_actions`.

The transitions are data (:data:`TRANSITIONS`, one :class:`Transition` per action; the table is
written out in :mod:`layers.workflow`). :func:`apply_transition` never mutates its input: it
returns the new incident row and the event row to append to ``incident_events``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from layers.schema import DEPARTMENTS, STAGES, WHISTLES
from layers.workflow._base import (
    _MSG,
    IllegalTransitionError,
    label,
    stage_of,
    to_local,
    whistle_of,
)
from layers.workflow.limits import DEFAULT_POLICY, WorkflowPolicy, due_time, escalation_due
from layers.workflow.notes import format_note
from layers.workflow.roles import (
    ACTIVE_STAGES,
    CLOSED_STAGES,
    DEPT_ROLES,
    NO_ACTION_REASONS,
    ROLES,
    SUBDISTRICT_LEADERS,
    SUPERVISORS,
    VERIFIERS,
    WHISTLE_ROLES,
)


@dataclass(frozen=True)
class _Ctx:
    incident: Mapping[str, Any]
    role: str
    time: pd.Timestamp | None
    options: Mapping[str, Any]
    policy: WorkflowPolicy


Refusal = tuple[str, dict[str, Any]]
Guard = Callable[[_Ctx], Refusal | None]
Effect = Callable[[dict[str, Any], _Ctx], None]


@dataclass(frozen=True)
class Transition:
    """One row of the transitions table.

    Parameters
    ----------
    action
        Name stored in ``incident_events.action``.
    sources
        Stages the action may start from (``None``: a new incident without a stage).
    target
        Stage after the action; ``None`` keeps the stage (the event is still logged).
    roles
        Roles that may perform it (further narrowed by ``guards``).
    required, optional
        Keyword options it needs / accepts.
    note_required
        The actor must say why.
    guards
        State checks (incident, role, time): each returns ``None`` or a refusal.
    checks
        Option checks (values of ``required`` / ``optional``).
    effect
        Changes to the incident row beyond ``stage``, ``status`` and ``updated_datetime``.
    """

    action: str
    sources: tuple[str | None, ...]
    target: str | None
    roles: frozenset[str]
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    note_required: bool = False
    guards: tuple[Guard, ...] = ()
    checks: tuple[Guard, ...] = ()
    effect: Effect | None = None


def _dept_guard(c: _Ctx) -> Refusal | None:
    if c.role == "community" and c.incident.get("department") != "community":
        return (_MSG + "not_assignee", {"role": c.role, "department": c.incident.get("department")})
    return None


def _whistle_kind_check(c: _Ctx) -> Refusal | None:
    kind = c.options["kind"]
    if kind not in WHISTLE_ROLES:
        return (_MSG + "bad_option", {"option": "kind", "value": kind, "allowed": "work, tough"})
    if c.role not in WHISTLE_ROLES[kind]:
        return (_MSG + "whistle_role", {"role": c.role, "kind": kind,
                                        "roles": ", ".join(sorted(WHISTLE_ROLES[kind]))})
    return None


def _department_check(c: _Ctx) -> Refusal | None:
    d = c.options["department"]
    if d not in DEPARTMENTS:
        return (_MSG + "bad_option", {"option": "department", "value": d, "allowed": ", ".join(DEPARTMENTS)})
    return None


def _reason_check(c: _Ctx) -> Refusal | None:
    r = c.options["reason"]
    if r not in NO_ACTION_REASONS:
        return (_MSG + "bad_option", {"option": "reason", "value": r, "allowed": ", ".join(NO_ACTION_REASONS)})
    return None


def _hours_check(c: _Ctx) -> Refusal | None:
    h = c.options.get("hours")
    try:
        ok = float(h) > 0 and np.isfinite(float(h))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        return (_MSG + "bad_option", {"option": "hours", "value": h, "allowed": "> 0"})
    return None


def _rating_check(c: _Ctx) -> Refusal | None:
    r = c.options.get("rating")
    if r is not None and r not in (1, 2, 3, 4, 5):
        return (_MSG + "bad_option", {"option": "rating", "value": r, "allowed": "1, 2, 3, 4, 5"})
    return None


def _extension_guard(c: _Ctx) -> Refusal | None:
    if int(c.incident.get("extensions") or 0) >= c.policy.max_extensions:
        return (_MSG + "extension_limit", {"max": c.policy.max_extensions})
    return None


def _next_whistle(inc: Mapping[str, Any]) -> str | None:
    order = list(WHISTLES)
    i = order.index(whistle_of(inc)) if whistle_of(inc) in order else 0
    return order[i + 1] if i + 1 < len(order) else None


def _escalate_guard(c: _Ctx) -> Refusal | None:
    nxt = _next_whistle(c.incident)
    if nxt is None:
        return (_MSG + "escalate_top", {})
    if c.role == "system":
        if c.time is not None and escalation_due(c.incident, now=c.time, policy=c.policy) is None:
            return (_MSG + "escalate_not_due", {})
        return None
    if c.role not in WHISTLE_ROLES[nxt]:
        return (_MSG + "whistle_role", {"role": c.role, "kind": nxt,
                                        "roles": ", ".join(sorted(WHISTLE_ROLES[nxt]))})
    return None


def _tough_guard(c: _Ctx) -> Refusal | None:
    if whistle_of(c.incident) != "tough":
        return (_MSG + "tough_only", {})
    return None


def _lower_whistle_check(c: _Ctx) -> Refusal | None:
    cur, kind = whistle_of(c.incident), c.options["kind"]
    if kind in WHISTLES and WHISTLES.index(kind) < WHISTLES.index(cur):
        return (_MSG + "whistle_lower", {"current": cur, "kind": kind})
    return None


def _eff_collect(inc: dict[str, Any], c: _Ctx) -> None:
    if inc.get("requested_datetime") is None or pd.isna(inc.get("requested_datetime")):
        inc["requested_datetime"] = c.time
    inc["whistle"] = "none"
    inc["reworks"] = 0
    inc["extensions"] = 0
    inc["closed_datetime"] = None
    due = inc.get("expected_datetime")
    if (due is None or pd.isna(due)) and inc.get("level") is not None and not pd.isna(inc.get("level")):
        inc["expected_datetime"] = due_time(
            inc["requested_datetime"], category_code=inc.get("category_code"),
            level=int(inc["level"]), item_code=inc.get("item_code"), policy=c.policy,
        )


def _eff_assign(inc: dict[str, Any], c: _Ctx) -> None:
    inc["department"] = c.options["department"]


def _eff_whistle(inc: dict[str, Any], c: _Ctx) -> None:
    inc["whistle"] = c.options["kind"]
    inc["department"] = c.options["department"]


def _eff_close(inc: dict[str, Any], c: _Ctx) -> None:
    inc["closed_datetime"] = c.time


def _eff_rework(inc: dict[str, Any], c: _Ctx) -> None:
    inc["reworks"] = int(inc.get("reworks") or 0) + 1


def _eff_return(inc: dict[str, Any], c: _Ctx) -> None:
    inc["department"] = None


def _eff_extend(inc: dict[str, Any], c: _Ctx) -> None:
    inc["extensions"] = int(inc.get("extensions") or 0) + 1
    due = inc.get("expected_datetime")
    base = c.time if due is None or pd.isna(due) else to_local(due)
    level = int(inc.get("level") or 1)
    inc["expected_datetime"] = c.policy.add_hours(base, float(c.options["hours"]), level=level)


def _eff_escalate(inc: dict[str, Any], c: _Ctx) -> None:
    inc["whistle"] = _next_whistle(inc)


_T = Transition
TRANSITIONS: tuple[Transition, ...] = (
    _T("collect", (None,), "collected",
       frozenset({"grid_worker", "community", "command_centre", "system"}), effect=_eff_collect),
    _T("assign", ("collected",), "dispatched", frozenset({"command_centre", "community"}),
       required=("department",), checks=(_department_check,), effect=_eff_assign),
    _T("whistle", ("collected",), "whistled", SUBDISTRICT_LEADERS, required=("kind", "department"),
       checks=(_whistle_kind_check, _department_check, _lower_whistle_check),
       effect=_eff_whistle),
    _T("report_for_duty", ("whistled",), "dispatched", DEPT_ROLES, guards=(_dept_guard,)),
    _T("start_handling", ("dispatched",), "handling", DEPT_ROLES, guards=(_dept_guard,)),
    _T("report_back", ("handling",), "verifying", DEPT_ROLES, guards=(_dept_guard,)),
    _T("verify_pass", ("verifying",), "closed", VERIFIERS, effect=_eff_close),
    _T("verify_fail", ("verifying",), "handling", VERIFIERS, note_required=True, effect=_eff_rework),
    _T("evaluate", ("closed",), "evaluated", SUPERVISORS | {"district_leader"},
       optional=("rating",), checks=(_rating_check,)),
    _T("close_no_action", ("collected",), "closed_no_action",
       frozenset({"command_centre", "community"}) | SUBDISTRICT_LEADERS,
       required=("reason",), optional=("duplicate_of",), checks=(_reason_check,), effect=_eff_close),
    _T("return_case", ("whistled", "dispatched"), "collected", DEPT_ROLES, note_required=True,
       guards=(_dept_guard,), effect=_eff_return),
    _T("request_extension", ("dispatched", "handling"), None, DEPT_ROLES, required=("hours",),
       note_required=True, guards=(_dept_guard, _extension_guard), checks=(_hours_check,)),
    _T("grant_extension", ("dispatched", "handling"), None, SUPERVISORS, required=("hours",),
       guards=(_extension_guard,), checks=(_hours_check,), effect=_eff_extend),
    _T("deny_extension", ("dispatched", "handling"), None, SUPERVISORS, note_required=True),
    _T("escalate", ACTIVE_STAGES, None, SUBDISTRICT_LEADERS | {"system"}, note_required=True,
       guards=(_escalate_guard,), effect=_eff_escalate),
    _T("instruct", ACTIVE_STAGES, None, frozenset({"district_leader"}), note_required=True,
       guards=(_tough_guard,)),
)
TRANSITIONS_BY_ACTION: Mapping[str, Transition] = {tr.action: tr for tr in TRANSITIONS}
if not {s for tr in TRANSITIONS for s in (*tr.sources, tr.target) if s} <= set(STAGES):  # pragma: no cover
    raise RuntimeError("layers.workflow.TRANSITIONS names a stage missing from layers.schema.STAGES")
ACTIONS: tuple[str, ...] = tuple(TRANSITIONS_BY_ACTION)


def refuse_unknown_options(action: str, names: Iterable[str]) -> None:
    """Raise ``unknown_option`` for the first of ``names`` that ``action`` does not take (an
    unknown action takes none). The intake API calls it before the workflow does, so a body's
    ``actor`` or ``policy`` never reaches the call as an argument of its own."""
    tr = TRANSITIONS_BY_ACTION.get(action)
    allowed = (*tr.required, *tr.optional) if tr is not None else ()
    for name in names:
        if name not in allowed:
            raise IllegalTransitionError(_MSG + "unknown_option", action=str(action)[:30],
                                         option=str(name)[:30], allowed=", ".join(allowed) or "-")


def _refuse(r: Refusal | None) -> None:
    if r is not None:
        raise IllegalTransitionError(r[0], **r[1])


def _state_checks(tr: Transition, inc: Mapping[str, Any], role: str, c: _Ctx) -> None:
    if role not in ROLES:
        raise IllegalTransitionError(_MSG + "unknown_role", role=role, codes=", ".join(ROLES))
    stage = stage_of(inc)
    if stage not in tr.sources:
        raise IllegalTransitionError(_MSG + "wrong_stage", action=tr.action, stage=stage or "new",
                                     stages=", ".join(s or "new" for s in tr.sources))
    if role not in tr.roles:
        raise IllegalTransitionError(_MSG + "role_not_allowed", action=tr.action, role=role,
                                     roles=", ".join(sorted(tr.roles)))
    for g in tr.guards:
        _refuse(g(c))


def apply_transition(
    incident: Mapping[str, Any],
    action: str,
    *,
    actor: str,
    role: str,
    time: Any,
    note: str = "",
    policy: WorkflowPolicy = DEFAULT_POLICY,
    **options: Any,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Perform ``action`` on ``incident``; return ``(new incident row, event row)``.

    Parameters
    ----------
    incident
        The incident row (any mapping; a new incident has no ``stage``). Never mutated.
    action
        One of :data:`ACTIONS`.
    actor
        Who acts (a user id or name; stored in the event log).
    role
        The actor's role, one of :data:`ROLES`.
    time
        When (naive local time, Asia/Shanghai); not earlier than the incident's last update.
    note
        Free text for the event log; required by some actions.
    policy
        Time limits, calendar and rules.
    **options
        The action's options (``department``, ``kind``, ``reason``, ``duplicate_of``, ``hours``,
        ``rating``); see the table in the module docstring.

    Returns
    -------
    tuple of dict
        The updated incident row (``stage``, ``status``, ``updated_datetime`` and the action's
        effects) and the event row (``event_id``, ``service_request_id``, ``action``,
        ``from_stage``, ``to_stage``, ``actor``, ``time``, ``note``). The options are recorded at
        the start of the note as ``[key=value ...]`` (see :func:`parse_note`).

    Raises
    ------
    IllegalTransitionError
        Unknown action or role, wrong stage, role not allowed, missing or bad option, missing
        note, time going backwards, or a rule of the loop (whistle rights, extension limit...).
    """
    tr = TRANSITIONS_BY_ACTION.get(action)
    if tr is None:
        raise IllegalTransitionError(_MSG + "unknown_action", action=action, codes=", ".join(ACTIONS))
    srid = incident.get("service_request_id")
    if srid is None or (not isinstance(srid, str) and pd.isna(srid)) or str(srid) == "":
        raise IllegalTransitionError(_MSG + "missing_id")
    try:
        when = to_local(time)
    except (TypeError, ValueError):
        raise IllegalTransitionError(_MSG + "bad_time", value=str(time)) from None
    if pd.isna(when):
        raise IllegalTransitionError(_MSG + "bad_time", value=str(time))
    c = _Ctx(incident, role, when, options, policy)
    _state_checks(tr, incident, role, c)
    refuse_unknown_options(action, options)
    for name in tr.required:
        if options.get(name) is None:
            raise IllegalTransitionError(_MSG + "missing_option", action=action, option=name)
    for chk in tr.checks:
        _refuse(chk(c))
    if (tr.note_required and role != "system") and not note.strip():
        raise IllegalTransitionError(_MSG + "note_required", action=action)
    last = incident.get("updated_datetime")
    if last is None or pd.isna(last):
        last = incident.get("requested_datetime") if stage_of(incident) else None
    if last is not None and not pd.isna(last) and when < to_local(last):
        raise IllegalTransitionError(_MSG + "time_before_last", time=str(when), last=str(to_local(last)))

    new = dict(incident)
    if tr.effect is not None:
        tr.effect(new, c)
    from_stage = stage_of(incident)
    to_stage = tr.target or from_stage
    new["stage"] = to_stage
    new["status"] = "closed" if to_stage in CLOSED_STAGES else "open"
    new["updated_datetime"] = when
    if role == "system" and action == "escalate" and not note.strip():
        note = str(escalation_due(incident, now=when, policy=policy) or "")
    full_note = format_note(options, note)
    event = {
        "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL,
                                   f"gridpulse:{srid}|{action}|{when.isoformat()}|{actor}|{full_note}")),
        "service_request_id": str(srid),
        "action": action,
        "from_stage": from_stage,
        "to_stage": to_stage,
        "actor": actor,
        "time": when,
        "note": full_note,
    }
    return new, event


#: Columns a stored transition compares-and-sets: the values its rules read (stage and role
#: guards, whistle level, department, the rework and extension counters, due and last-update


def legal_actions(
    incident: Mapping[str, Any],
    role: str,
    *,
    time: Any = None,
    policy: WorkflowPolicy = DEFAULT_POLICY,
) -> list[str]:
    """Actions ``role`` may take on ``incident`` now, in table order.

    Options are not known here, so an action is listed when some choice of options is allowed
    (e.g. ``whistle`` for a sub-district leader, who may blow the work whistle). ``time`` lets
    ``system`` see whether an escalation is due; without it, reworks alone decide.
    """
    when = None if time is None else to_local(time)
    out = []
    for tr in TRANSITIONS:
        c = _Ctx(incident, role, when, {}, policy)
        try:
            _state_checks(tr, incident, role, c)
        except IllegalTransitionError:
            continue
        if tr.action == "escalate" and role == "system" and when is None and (
            int(incident.get("reworks") or 0) < policy.escalate_after_reworks
        ):
            continue
        out.append(tr.action)
    return out


def transitions_table(lang: str | None = None) -> pd.DataFrame:
    """The transitions table as a DataFrame (for the workflow page and the docs)."""
    rows = []
    for tr in TRANSITIONS:
        rows.append({
            "action": tr.action,
            "label": label("action", tr.action, lang),
            "from": ", ".join(label("stage", s or "new", lang) for s in tr.sources),
            "to": label("stage", tr.target, lang) if tr.target else "=",
            "roles": ", ".join(label("role", r, lang) for r in ROLES if r in tr.roles),
            "options": ", ".join([*tr.required, *(f"({o})" for o in tr.optional)]),
            "note_required": tr.note_required,
        })
    return pd.DataFrame(rows)


__all__ = ["ACTIONS", "TRANSITIONS", "TRANSITIONS_BY_ACTION", "Transition", "apply_transition",
           "legal_actions", "refuse_unknown_options", "transitions_table"]
