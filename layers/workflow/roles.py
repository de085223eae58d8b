"""Who acts in the loop, who may blow which whistle, and the stage sets of the loop.

The stage sets are defined once in :mod:`geo.domain` (``CLOSED_STAGES``: closed, evaluated,
closed_no_action — status ``closed``); here they are frozensets for membership tests.
"""

from __future__ import annotations

from collections.abc import Mapping

from geo import domain

#: Who acts in the loop. ``system`` is the platform itself (hotline intake, automatic escalation).
ROLES: tuple[str, ...] = (
    "grid_worker",  # 网格员
    "community",  # 社区（居委会）
    "command_centre",  # 街道社会治理综合指挥中心 / 网格化服务管理中心
    "subdistrict_leader",  # 街道党政班子成员
    "subdistrict_secretary",  # 街道党工委书记
    "subdistrict_director",  # 街道办事处主任
    "department",  # 职能部门
    "district_leader",  # 区领导
    "system",  # 平台自动
)
SUBDISTRICT_LEADERS = frozenset({"subdistrict_leader", "subdistrict_secretary", "subdistrict_director"})
#: Who may blow each whistle (seed 003: 工作推进哨 by the sub-district's leading members,
#: 攻坚克难哨 by its party secretary and its office director).
WHISTLE_ROLES: Mapping[str, frozenset[str]] = {
    "work": SUBDISTRICT_LEADERS,
    "tough": frozenset({"subdistrict_secretary", "subdistrict_director"}),
}
#: Reasons for closing without action (不予受理 / 重复 / 非本部门职责 / 无效).
NO_ACTION_REASONS: tuple[str, ...] = ("duplicate", "not_our_responsibility", "invalid")
#: Status ``closed`` (closed, evaluated, closed_no_action); see :mod:`geo.domain`.
CLOSED_STAGES: frozenset[str] = frozenset(domain.CLOSED_STAGES)
OPEN_STAGES: frozenset[str] = frozenset(domain.OPEN_STAGES)
#: Routed and not yet closed: where escalation, extensions and instructions apply.
ACTIVE_STAGES: tuple[str, ...] = domain.ACTIVE_STAGES
DEPT_ROLES = frozenset({"department", "community"})
VERIFIERS = frozenset({"command_centre", "community", "grid_worker"})
SUPERVISORS = frozenset({"command_centre"}) | SUBDISTRICT_LEADERS
#: Closed after handling (结案): closed, evaluated.
RESOLVED: tuple[str, ...] = domain.RESOLVED_STAGES
