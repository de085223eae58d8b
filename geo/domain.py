"""Constants of the domain shared by ``geo/`` and ``layers/`` (defined here once: geo imports nothing).

Stage sets of the closed loop
-----------------------------
``STAGES`` are the stages of an incident (``layers.schema`` uses this tuple for the
``incidents.stage`` column). A case is *closed* (status ``closed``) in three of them:

=====================  ==============================================================
``CLOSED_STAGES``      closed, evaluated, closed_no_action — status ``closed``, no more
                       work; everything else is ``OPEN_STAGES``
``RESOLVED_STAGES``    closed, evaluated — closed after handling (结案): the KPIs'
                       ``closed`` count, on-time closure, handling times
``VOID_STAGES``        closed_no_action — closed without action (不予受理): not accepted
``REPORTED_STAGES``    verifying, closed, evaluated — the department reported back
=====================  ==============================================================

Examples
--------
>>> set(CLOSED_STAGES) == set(RESOLVED_STAGES) | set(VOID_STAGES)
True
>>> [s for s in STAGES if s in OPEN_STAGES]
['collected', 'whistled', 'dispatched', 'handling', 'verifying']
"""

from __future__ import annotations

#: Local time zone of every timezone-naive datetime GridPulse stores or computes with.
LOCAL_TZ: str = "Asia/Shanghai"

#: Stages of the closed loop (see shared DOMAIN.md): collect -> whistle ->
#: departments report for duty -> handle and report back -> verify -> close -> evaluate.
STAGES: tuple[str, ...] = (
    "collected",  # 问题收集
    "whistled",  # 街道吹哨
    "dispatched",  # 部门报到
    "handling",  # 处理反馈
    "verifying",  # 核实结项 (pending verification)
    "closed",  # 已结项
    "evaluated",  # 综合评价
    "closed_no_action",  # 不予受理/重复/非本部门职责
)
#: Closed after handling (结案).
RESOLVED_STAGES: tuple[str, ...] = ("closed", "evaluated")
#: Closed without action (不予受理 / 重复 / 非本部门职责).
VOID_STAGES: tuple[str, ...] = ("closed_no_action",)
#: Status ``closed``: no more work on the case.
CLOSED_STAGES: tuple[str, ...] = RESOLVED_STAGES + VOID_STAGES
#: Status ``open``.
OPEN_STAGES: tuple[str, ...] = tuple(s for s in STAGES if s not in CLOSED_STAGES)
#: The department has reported back (verifying or later, not void).
REPORTED_STAGES: tuple[str, ...] = ("verifying", *RESOLVED_STAGES)
#: Routed to a department and not yet closed (whistled .. verifying).
ACTIVE_STAGES: tuple[str, ...] = ("whistled", "dispatched", "handling", "verifying")

__all__ = ["ACTIVE_STAGES", "CLOSED_STAGES", "LOCAL_TZ", "OPEN_STAGES", "REPORTED_STAGES",
           "RESOLVED_STAGES", "STAGES", "VOID_STAGES"]
