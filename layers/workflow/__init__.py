"""The closed loop (闭环管理): a state machine over :data:`layers.schema.STAGES`.

Gulou's loop (``../shared/DOMAIN.md``): 问题收集 collect -> 街道吹哨 whistle -> 部门报到 report for
duty -> 处理反馈 handle and report back -> 核实结项 verify and close -> 综合评价 evaluate, with
rework, extensions, closure without action and the two whistles. The transitions are data
(:data:`TRANSITIONS`); :func:`apply_transition` never mutates its input: it returns the new
incident row and the event row to append to ``incident_events``. An illegal transition raises
:class:`IllegalTransitionError` (a ``ValueError`` carrying a catalogue key) and changes nothing.

Transitions
-----------
``=`` means the stage does not change (the event is still logged). "Dept" is the ``department``
role, or the ``community`` role when the case's department is ``community`` (社区居委会).
"Sub-district leaders" are ``subdistrict_leader`` (街道班子成员), ``subdistrict_secretary``
(街道党工委书记) and ``subdistrict_director`` (街道办事处主任).

==================  ==================  ===================  =====================================  =======================================
action              from                to                   who                                    options / effect
==================  ==================  ===================  =====================================  =======================================
collect 问题收集     (new)               collected            grid_worker, community,                status open, whistle none, counters 0,
                                                             command_centre, system                 ``expected_datetime`` from the limits
assign 派遣          collected           dispatched           command_centre, community              ``department``; routine case, no whistle
whistle 街道吹哨     collected           whistled             work: sub-district leaders;            ``kind`` (work/tough), ``department``
                                                             tough: secretary, director             (the lead department)
report_for_duty     whistled            dispatched           Dept                                   部门报到
start_handling      dispatched          handling             Dept                                   开始处置
report_back         handling            verifying            Dept                                   处理反馈
verify_pass         verifying           closed               command_centre, community,             status closed, ``closed_datetime``
                                                             grid_worker                            核实结项
verify_fail         verifying           handling             command_centre, community,             note required; ``reworks`` + 1 (返工)
                                                             grid_worker
evaluate            closed              evaluated            command_centre, sub-district           optional ``rating`` 1–5 (综合评价)
                                                             leaders, district_leader
close_no_action     collected           closed_no_action     command_centre, community,             ``reason``: duplicate /
                                                             sub-district leaders                   not_our_responsibility / invalid;
                                                                                                    optional ``duplicate_of``
return_case 退回     whistled,           collected            Dept                                   note required; department cleared
                    dispatched
request_extension   dispatched,         =                    Dept                                   ``hours``, note required (申请延期)
                    handling
grant_extension     dispatched,         =                    command_centre, sub-district           ``hours``; ``extensions`` + 1, due time
                    handling                                 leaders                                moved (at most ``max_extensions``)
deny_extension      dispatched,         =                    command_centre, sub-district           note required (驳回延期)
                    handling                                 leaders
escalate 升级        whistled,           =                    none->work: sub-district leaders;      whistle raised one level; note required,
                    dispatched,                              work->tough: secretary, director;      except for ``system``, which may only
                    handling,                                system when escalation is due          escalate a case that is due
                    verifying
instruct 领导批示    whistled ..         =                    district_leader                        tough-whistle cases only; note required
                    verifying
==================  ==================  ===================  =====================================  =======================================

Escalation (:func:`escalation_due`): an open, whistled or dispatched case that is overdue, or
that has been reworked ``escalate_after_reworks`` times (default 2), is due to go up one
whistle level: a routine case to a 工作推进哨, a 工作推进哨 to a 攻坚克难哨 (which brings in the
district leaders).

Time limits (:class:`TimeLimits`) are hours per level with overrides per category and item.
In production (:data:`DEFAULT_POLICY`) they count **working hours**: Monday to Friday
9:00–12:00 and 13:30–18:00, without China's public holidays (法定节假日) and with the make-up
working days (调休上班), both from the maintained package ``chinesecalendar``
(:func:`china_calendar`); **level 3 (urgent) counts calendar hours**. Dates beyond the years
the package covers fall back to weekends-only, with a warning logged once.

Modules
-------
:mod:`~layers.workflow.calendar`
    :class:`WorkCalendar` (working-time arithmetic, vectorised), :func:`china_calendar`.
:mod:`~layers.workflow.limits`
    :class:`TimeLimits`, :class:`WorkflowPolicy`, :data:`DEFAULT_POLICY`, due times, the
    overdue rule (:func:`overdue_flags`, one implementation) and :func:`escalation_due`.
:mod:`~layers.workflow.roles`
    roles, whistle rights, stage sets (from :mod:`geo.domain`).
:mod:`~layers.workflow.transitions`
    the transitions table, guards, effects, :func:`apply_transition`, :func:`legal_actions`.
:mod:`~layers.workflow.history`
    :func:`check_history`, :func:`illegal_events`, :func:`parse_note` (from ``notes``).
:mod:`~layers.workflow.stored`
    :func:`transition`: an action on a stored case, compare-and-set.

Examples
--------
>>> inc = {"service_request_id": "A1", "category_code": "01", "level": 1}
>>> inc, ev = apply_transition(inc, "collect", actor="w1", role="grid_worker",
...                            time="2025-03-03 10:00")
>>> inc["stage"], inc["expected_datetime"]
('collected', Timestamp('2025-03-14 16:00:00'))
>>> legal_actions(inc, "command_centre")
['assign', 'close_no_action']
>>> inc, ev = apply_transition(inc, "whistle", actor="leader", role="subdistrict_leader",
...                            time="2025-03-03 11:00", kind="work", department="housing")
>>> ev["from_stage"], ev["to_stage"], inc["whistle"]
('collected', 'whistled', 'work')
>>> try:
...     apply_transition(inc, "whistle", actor="x", role="grid_worker", time="2025-03-03 12:00")
... except IllegalTransitionError as e:
...     print(e.key)
incidents.workflow.wrong_stage
"""

from __future__ import annotations

from layers.workflow._base import IllegalTransitionError, label
from layers.workflow.calendar import WorkCalendar, china_calendar, coverage
from layers.workflow.history import (
    EDGES,
    action_for,
    check_history,
    illegal_events,
    is_legal_path,
    parse_note,
    pending_extension,
)
from layers.workflow.limits import (
    DEFAULT_POLICY,
    MODES,
    Mode,
    TimeLimits,
    WorkflowPolicy,
    due_time,
    due_times,
    escalation_due,
    is_overdue,
    limit_hours,
    limits_rule,
    overdue,
    overdue_flags,
)
from layers.workflow.roles import (
    CLOSED_STAGES,
    NO_ACTION_REASONS,
    OPEN_STAGES,
    ROLES,
    SUBDISTRICT_LEADERS,
    WHISTLE_ROLES,
)
from layers.workflow.stored import CAS_COLUMNS, transition
from layers.workflow.transitions import (
    ACTIONS,
    TRANSITIONS,
    TRANSITIONS_BY_ACTION,
    Transition,
    apply_transition,
    legal_actions,
    transitions_table,
)

__all__ = [
    "ACTIONS", "CAS_COLUMNS", "CLOSED_STAGES", "DEFAULT_POLICY", "EDGES", "MODES", "NO_ACTION_REASONS",
    "OPEN_STAGES", "ROLES", "SUBDISTRICT_LEADERS", "TRANSITIONS", "TRANSITIONS_BY_ACTION", "WHISTLE_ROLES",
    "IllegalTransitionError", "Mode", "TimeLimits", "Transition", "WorkCalendar", "WorkflowPolicy",
    "action_for", "apply_transition", "check_history", "china_calendar", "coverage", "due_time",
    "due_times", "escalation_due", "illegal_events", "is_legal_path", "is_overdue", "label",
    "legal_actions", "limit_hours", "limits_rule", "overdue", "overdue_flags", "parse_note", "pending_extension",
    "transition", "transitions_table",
]
