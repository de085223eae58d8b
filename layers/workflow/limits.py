"""Time limits (时限), due times and the overdue rule — one implementation of each.

Time limits (:class:`TimeLimits`) are hours per level with overrides per category and item.
The production rule (:data:`DEFAULT_POLICY`) counts them in **working hours** of
:func:`layers.workflow.calendar.china_calendar` — Monday to Friday 9:00–12:00 and 13:30–18:00,
without China's public holidays, plus the make-up working days (调休), from the
``chinesecalendar`` package — except **level 3 (urgent), which counts calendar hours**.
Beyond the years the package covers, only weekends are off (a warning is logged once).

Each rule is written once, vectorised, and the scalar form calls it:
:meth:`WorkflowPolicy.add_hours` (hours counted by level) serves :func:`due_time`,
:func:`due_times` and extensions; :func:`overdue_flags` serves :func:`overdue` and
:func:`is_overdue`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from layers import taxonomy
from layers.workflow._base import isna, to_local, whistle_of
from layers.workflow.calendar import WorkCalendar, china_calendar
from layers.workflow.roles import ACTIVE_STAGES, OPEN_STAGES, RESOLVED

Mode = Literal["calendar", "working"]
MODES: tuple[str, ...] = ("calendar", "working")


@dataclass(frozen=True)
class TimeLimits:
    """Handling time limits in hours, by level, with overrides per category and per item.

    The most specific entry wins: item (``"0402"``) and level, then category (``"04"``) and
    level, then level. Hours are counted as ``mode`` says (``"calendar"`` or ``"working"``),
    or as ``mode_by_level`` says for a level. By default every limit counts working hours,
    except level 3 (urgent, 紧急) which runs on the clock: a missing manhole cover reported on
    a Friday evening is not left until Monday.

    Examples
    --------
    >>> lim = TimeLimits()
    >>> lim.hours("01", 1), lim.hours("10", 3), lim.hours("04", 3, item_code="0402")
    (72.0, 12.0, 4.0)
    """

    by_level: Mapping[int, float] = field(default_factory=lambda: dict(taxonomy.DEFAULT_LIMIT_HOURS))
    by_category: Mapping[str, Mapping[int, float]] = field(
        default_factory=lambda: {
            "10": {1: 48.0, 2: 72.0, 3: 12.0},  # safety hazards 安全隐患
            "04": {3: 12.0},  # municipal facilities, urgent 市政设施
        }
    )
    by_item: Mapping[str, Mapping[int, float]] = field(
        default_factory=lambda: {"0402": {1: 24.0, 2: 24.0, 3: 4.0}}  # missing manhole cover 井盖缺失
    )
    mode: Mode = "working"
    mode_by_level: Mapping[int, Mode] = field(default_factory=lambda: {3: "calendar"})

    def __post_init__(self) -> None:
        modes = [self.mode, *self.mode_by_level.values()]
        if any(m not in MODES for m in modes):
            raise ValueError(f"time-limit mode must be one of {MODES}, got {modes}")
        for lvl in (1, 2, 3):
            if lvl not in self.by_level:
                raise ValueError(f"TimeLimits.by_level needs an entry for level {lvl}")
        tables = [self.by_level, *self.by_category.values(), *self.by_item.values()]
        if any(float(v) <= 0 for tab in tables for v in tab.values()):
            raise ValueError("time limits must be positive hours")
        unknown = [c for c in self.by_category if c not in taxonomy.CATEGORIES]
        unknown += [c for c in self.by_item if c not in taxonomy.ITEMS]
        if unknown:
            raise ValueError(f"unknown category/item codes in TimeLimits: {unknown}")

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any]) -> TimeLimits:
        """Build from plain data: ``{"mode": "working", "levels": {"1": 72}, "categories":
        {"10": {"3": 12}}, "items": {"0402": {"3": 4}}, "mode_by_level": {"3": "calendar"}}``.

        Missing tables keep their defaults (``mode_by_level`` too: level 3 on the clock);
        unknown keys raise ``ValueError``.
        """
        unknown = set(cfg) - {"mode", "levels", "categories", "items", "mode_by_level"}
        if unknown:
            raise ValueError(f"unknown time-limit keys {sorted(unknown)}")

        def lv(m: Mapping[Any, Any]) -> dict[int, Any]:
            return {int(k): v for k, v in m.items()}

        base = cls()
        return cls(
            by_level={**base.by_level, **{k: float(v) for k, v in lv(cfg.get("levels", {})).items()}},
            by_category={str(c): {k: float(v) for k, v in lv(m).items()}
                         for c, m in cfg.get("categories", base.by_category).items()},
            by_item={str(c): {k: float(v) for k, v in lv(m).items()}
                     for c, m in cfg.get("items", base.by_item).items()},
            mode=cfg.get("mode", base.mode),
            mode_by_level=lv(cfg.get("mode_by_level", base.mode_by_level)),
        )

    def hours(self, category_code: str | None, level: int, *, item_code: str | None = None) -> float:
        """The time limit in hours for a case (``KeyError`` for a level that has no entry)."""
        level = int(level)
        for table, code in ((self.by_item, item_code), (self.by_category, category_code)):
            if code is not None and level in table.get(str(code), {}):
                return float(table[str(code)][level])
        return float(self.by_level[level])

    def mode_for(self, level: int) -> Mode:
        """How the hours of a level are counted."""
        return self.mode_by_level.get(int(level), self.mode)


@dataclass(frozen=True)
class WorkflowPolicy:
    """The configurable rules of the loop: limits, calendar, extension and escalation rules.

    The defaults are the production rule (:data:`DEFAULT_POLICY`): :class:`TimeLimits` in
    working hours (level 3 on the clock) of :func:`~layers.workflow.calendar.china_calendar`.
    """

    limits: TimeLimits = field(default_factory=TimeLimits)
    calendar: WorkCalendar = field(default_factory=china_calendar)
    max_extensions: int = 2
    escalate_after_reworks: int = 2

    def __post_init__(self) -> None:
        if self.max_extensions < 0 or self.escalate_after_reworks < 1:
            raise ValueError("max_extensions must be >= 0 and escalate_after_reworks >= 1")

    def add_hours(self, start: Any, hours: Any, *, level: int) -> Any:
        """``start`` plus ``hours`` counted the way ``level``'s limits are counted.

        Scalars give a ``Timestamp``; arrays (one level for all) a ``DatetimeIndex``.
        """
        if np.ndim(start) == 0 and np.ndim(hours) == 0:
            start = to_local(start)
        if self.limits.mode_for(level) == "working":
            return self.calendar.add_working_hours(start, hours)
        if np.ndim(start) == 0 and np.ndim(hours) == 0:
            return start + pd.Timedelta(hours=float(hours))
        return pd.DatetimeIndex(pd.to_datetime(np.asarray(start)) + pd.to_timedelta(np.asarray(hours, dtype=float), unit="h"))


DEFAULT_POLICY = WorkflowPolicy()


def due_time(
    start: Any,
    *,
    category_code: str | None,
    level: int,
    item_code: str | None = None,
    policy: WorkflowPolicy = DEFAULT_POLICY,
) -> pd.Timestamp:
    """When a case received at ``start`` must be closed (``expected_datetime``).

    Examples
    --------
    >>> pol = WorkflowPolicy(limits=TimeLimits(mode="working", mode_by_level={}), calendar=WorkCalendar())
    >>> due_time("2025-03-07 17:00", category_code="01", level=3, policy=pol)  # 1 + 7.5 * 3 + 0.5 working h
    Timestamp('2025-03-13 09:30:00')
    >>> due_time("2026-09-30 16:00", category_code="01", level=1)  # 72 working h over National Day (Sat 10th worked)
    Timestamp('2026-10-20 11:30:00')
    >>> due_time("2026-09-30 16:00", category_code="01", level=3)  # urgent: on the clock
    Timestamp('2026-10-01 16:00:00')
    """
    hours = policy.limits.hours(category_code, level, item_code=item_code)
    return policy.add_hours(start, hours, level=level)


def limit_hours(incidents: pd.DataFrame, *, policy: WorkflowPolicy = DEFAULT_POLICY) -> pd.Series:
    """Vectorised :meth:`TimeLimits.hours` for a table with ``level`` and optionally
    ``category_code`` and ``item_code`` (NaN where the level is missing or not 1-3)."""
    df = incidents
    level = pd.to_numeric(df["level"], errors="coerce")
    cat = df["category_code"].astype("string") if "category_code" in df else pd.Series(pd.NA, index=df.index)
    item = df["item_code"].astype("string") if "item_code" in df else pd.Series(pd.NA, index=df.index)
    ok = level.isin([1, 2, 3])
    keys = pd.DataFrame({"c": cat.astype(object), "i": item.astype(object), "l": level}).loc[ok]
    uniq = keys.drop_duplicates().copy()
    uniq["h"] = [policy.limits.hours(None if isna(c) else c, int(lvl), item_code=None if isna(i) else i)
                 for c, i, lvl in uniq.itertuples(index=False)]
    hours = pd.Series(np.nan, index=df.index)
    hours[ok.to_numpy()] = keys.merge(uniq, how="left", on=["c", "i", "l"])["h"].to_numpy()
    return hours


def due_times(incidents: pd.DataFrame, *, policy: WorkflowPolicy = DEFAULT_POLICY) -> pd.Series:
    """Vectorised :func:`due_time` for a table with ``requested_datetime``, ``category_code``,
    ``level`` and optionally ``item_code``; aligned to its index (NaT where anything is missing)."""
    df = incidents
    out = pd.Series(pd.NaT, index=df.index, dtype="datetime64[ns]")
    start = pd.to_datetime(df["requested_datetime"])
    level = pd.to_numeric(df["level"], errors="coerce")
    hours = limit_hours(df, policy=policy)
    ok = start.notna() & hours.notna()
    for lvl in (1, 2, 3):
        m = (ok & (level == lvl)).to_numpy()
        if m.any():
            out[m] = policy.add_hours(start[m].to_numpy(), hours[m].to_numpy(), level=lvl)
    return out


def _as_datetimes(x: Any, n: int) -> np.ndarray:
    return pd.to_datetime(pd.Series(x) if np.ndim(x) else pd.Series([x] * n)).to_numpy("datetime64[ns]")


def overdue_flags(stage: Any, due: Any, closed: Any, *, now: Any) -> np.ndarray:
    """THE overdue rule, on arrays: closed (结案) after the due time, or open and past it at ``now``.

    Cases closed without action and cases without a due time are never overdue.
    """
    stage = stage if isinstance(stage, pd.Series | pd.Index) else np.asarray(stage, dtype=object)
    codes, names = pd.factorize(stage)  # few distinct stages: test those
    resolved = np.append(np.isin(np.asarray(names, dtype=object), RESOLVED), False)[codes]
    open_ = np.append(np.isin(np.asarray(names, dtype=object), sorted(OPEN_STAGES)), False)[codes]
    due_a, closed_a = _as_datetimes(due, codes.size), _as_datetimes(closed, codes.size)
    when = np.datetime64(to_local(now).as_unit("ns").to_datetime64())
    late_closed = resolved & ~np.isnat(closed_a) & (closed_a > due_a)
    late_open = open_ & (due_a < when)
    return late_closed | late_open


def overdue(incidents: pd.DataFrame, *, now: Any) -> pd.Series:
    """Vectorised :func:`is_overdue`; a boolean Series aligned to ``incidents``."""
    closed = incidents["closed_datetime"] if "closed_datetime" in incidents else pd.Series(pd.NaT, index=incidents.index)
    flags = overdue_flags(incidents["stage"], incidents["expected_datetime"], closed, now=now)
    return pd.Series(flags, index=incidents.index, dtype=bool)


def is_overdue(incident: Mapping[str, Any], *, now: Any, policy: WorkflowPolicy = DEFAULT_POLICY) -> bool:
    """True when a case is past its due time: still open at ``now``, or closed after it.

    Cases closed without action and cases without ``expected_datetime`` are never overdue.
    The due time already holds the policy's limits and calendar (``policy`` is accepted for
    symmetry with the other rules).
    """
    def one(k: str) -> Any:
        v = incident.get(k)
        return pd.NaT if isna(v) else to_local(v)

    stage = incident.get("stage")
    return bool(overdue_flags([None if isna(stage) else stage], [one("expected_datetime")],
                              [one("closed_datetime")], now=now)[0])


def escalation_due(
    incident: Mapping[str, Any], *, now: Any, policy: WorkflowPolicy = DEFAULT_POLICY
) -> str | None:
    """Why a case should go up one whistle level now (``"overdue"`` or ``"reworked"``), or ``None``.

    Only open cases already routed (whistled .. verifying) below the 攻坚克难哨 qualify.
    """
    if incident.get("stage") not in ACTIVE_STAGES or whistle_of(incident) == "tough":
        return None
    if int(incident.get("reworks") or 0) >= policy.escalate_after_reworks:
        return "reworked"
    if is_overdue(incident, now=now, policy=policy):
        return "overdue"
    return None


__all__ = ["DEFAULT_POLICY", "MODES", "Mode", "TimeLimits", "WorkflowPolicy", "due_time", "due_times",
           "escalation_due", "is_overdue", "limit_hours", "limits_rule", "overdue", "overdue_flags"]


def limits_rule(lang: str | None = None, *, policy: WorkflowPolicy = DEFAULT_POLICY) -> str:
    """How ``policy`` counts time limits, in one sentence for the case board (``lang``: zh / en).

    Examples
    --------
    >>> limits_rule("en").startswith("Time limits count working hours: Monday to Friday 9:00–12:00 and 13:30–18:00")
    True
    >>> "level 3 (urgent) cases count calendar hours" in limits_rule("en")
    True
    """
    from layers.i18n import t

    key = "workflow_calendar."
    cal, lim = policy.calendar, policy.limits
    periods = t(key + "period_sep", lang).join(
        f"{a.hour}:{a.minute:02d}–{b.hour}:{b.minute:02d}" for a, b in cal.periods)
    if lim.mode == "working":
        if cal.covered is not None:
            text = t(key + "working", lang, periods=periods, last=cal.covered[1].isoformat())
        else:
            text = t(key + "working_plain", lang, periods=periods)
    else:
        text = t(key + "calendar", lang)
    other = "calendar" if lim.mode == "working" else "working"
    levels = ", ".join(str(lv) for lv in sorted(lim.mode_by_level) if lim.mode_by_level[lv] == other)
    if levels:
        text += t(key + ("clock_levels" if other == "calendar" else "working_levels"), lang, levels=levels)
    return text + t(key + "end", lang)
