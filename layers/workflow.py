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

Time limits (:class:`TimeLimits`) are hours per level with overrides per category and item,
counted in calendar hours or in working hours of a :class:`WorkCalendar` (Mon–Fri
9:00–12:00 and 13:30–18:00 by default, with holidays and make-up working days 调休).

Examples
--------
>>> inc = {"service_request_id": "A1", "category_code": "01", "level": 1}
>>> inc, ev = apply_transition(inc, "collect", actor="w1", role="grid_worker",
...                            time="2025-03-03 10:00")
>>> inc["stage"], inc["expected_datetime"]
('collected', Timestamp('2025-03-06 10:00:00'))
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

import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from datetime import time as dtime
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from layers import taxonomy
from layers.errors import GridPulseError
from layers.i18n import catalogue, normalize_lang, t
from layers.schema import DEPARTMENTS, STAGES, WHISTLES

Mode = Literal["calendar", "working"]
MODES: tuple[str, ...] = ("calendar", "working")

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
CLOSED_STAGES: frozenset[str] = frozenset({"closed", "evaluated", "closed_no_action"})
OPEN_STAGES: frozenset[str] = frozenset(STAGES) - CLOSED_STAGES
_ACTIVE = ("whistled", "dispatched", "handling", "verifying")
_DEPT_ROLES = frozenset({"department", "community"})
_VERIFIERS = frozenset({"command_centre", "community", "grid_worker"})
_SUPERVISORS = frozenset({"command_centre"}) | SUBDISTRICT_LEADERS

_MSG = "incidents.workflow."


class IllegalTransitionError(GridPulseError, ValueError):
    """A transition was refused; nothing changed.

    ``key`` is the catalogue key (``incidents.workflow.*``), ``params`` its placeholders.
    ``str(error)`` is the English text; :meth:`message` and :meth:`fix` render any language.
    """

    def __init__(self, key: str, **params: Any) -> None:
        self.key = key
        self.params = params
        super().__init__(self.message("en"))

    def _rendered(self, lang: str | None) -> dict[str, Any]:
        out = dict(self.params)
        for name, area in (("action", "action"), ("stage", "stage"), ("role", "role"),
                           ("target", "stage"), ("previous", "stage"),
                           ("kind", "whistle"), ("current", "whistle")):
            if isinstance(out.get(name), str):
                out[name] = label(area, out[name], lang)
        for name, area in (("roles", "role"), ("stages", "stage"), ("actions", "action")):
            if isinstance(out.get(name), str):
                sep = "、" if normalize_lang(lang) == "zh" else ", "
                out[name] = sep.join(label(area, x.strip(), lang) for x in out[name].split(","))
        return out

    def message(self, lang: str | None = None) -> str:
        """What was refused and why, in ``lang``."""
        return t(self.key, lang, **self._rendered(lang))

    def fix(self, lang: str | None = None) -> str | None:
        """What to do instead, in ``lang`` (``None`` if the catalogue has no fix text)."""
        key = f"{self.key}.fix"
        return t(key, lang, **self._rendered(lang)) if key in catalogue() else None


def label(area: str, code: str, lang: str | None = None) -> str:
    """Human name of a stage / action / role / whistle / reason code, e.g. ``label("stage", "closed")``."""
    key = f"incidents.{area}.{code}"
    return t(key, lang) if key in catalogue() else code


# --------------------------------------------------------------------------------------------
# Working-hours calendar and time limits
# --------------------------------------------------------------------------------------------

_DAY_S = 86_400


def _secs(x: Any) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Naive datetimes (scalar or array-like) to int64 seconds since 1970-01-01 local, and a NaT mask."""
    if isinstance(x, pd.Series | pd.Index):
        arr = pd.to_datetime(x).to_numpy()
    else:
        a = np.asarray(x)
        if a.dtype.kind != "M":
            a = pd.to_datetime(pd.Series(np.atleast_1d(np.asarray(x, dtype=object)))).to_numpy()
        arr = a
    arr = np.atleast_1d(arr).astype("datetime64[s]")
    na = np.isnat(arr)
    return np.where(na, 0, arr.astype(np.int64)), na


@dataclass(frozen=True)
class WorkCalendar:
    """Working time: weekly working days, daily periods, holidays and make-up working days.

    Parameters
    ----------
    periods
        Working periods of a day as ``(start, end)`` times, in order and not overlapping.
    weekdays
        Working weekdays, Monday = 0.
    holidays
        Dates that are not worked although their weekday is (法定节假日).
    workdays
        Dates that are worked although their weekday is not (调休上班).

    Examples
    --------
    >>> cal = WorkCalendar()
    >>> cal.add_working_hours(pd.Timestamp("2025-03-07 17:00"), 2)  # Friday 17:00 + 2 h
    Timestamp('2025-03-10 10:00:00')
    >>> float(cal.working_hours_between(pd.Timestamp("2025-03-07 17:00"),
    ...                                 pd.Timestamp("2025-03-10 10:00")))
    2.0
    """

    periods: tuple[tuple[dtime, dtime], ...] = ((dtime(9, 0), dtime(12, 0)), (dtime(13, 30), dtime(18, 0)))
    weekdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        bounds = [(_tod(a), _tod(b)) for a, b in self.periods]
        if not bounds or any(a >= b for a, b in bounds) or any(
            bounds[i][1] > bounds[i + 1][0] for i in range(len(bounds) - 1)
        ):
            raise ValueError(
                "WorkCalendar.periods must be non-empty (start, end) pairs in order without "
                "overlap, e.g. ((time(9), time(12)), (time(13, 30), time(18)))"
            )
        if not set(self.weekdays) <= set(range(7)):
            raise ValueError("WorkCalendar.weekdays are 0 (Monday) .. 6 (Sunday)")
        if not self.weekdays and not self.workdays:
            raise ValueError("WorkCalendar needs at least one working weekday or working date")

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any]) -> WorkCalendar:
        """Build from plain data (a TOML/JSON table).

        Keys: ``periods`` (``[["09:00", "12:00"], ...]``), ``weekdays`` (``[0, 1, 2, 3, 4]``),
        ``holidays`` and ``workdays`` (ISO dates). Unknown keys raise ``ValueError``.
        """
        unknown = set(cfg) - {"periods", "weekdays", "holidays", "workdays"}
        if unknown:
            raise ValueError(f"unknown calendar keys {sorted(unknown)}; use periods, weekdays, holidays, workdays")
        kw: dict[str, Any] = {}
        if "periods" in cfg:
            kw["periods"] = tuple((dtime.fromisoformat(a), dtime.fromisoformat(b)) for a, b in cfg["periods"])
        if "weekdays" in cfg:
            kw["weekdays"] = frozenset(int(d) for d in cfg["weekdays"])
        for k in ("holidays", "workdays"):
            if k in cfg:
                kw[k] = frozenset(date.fromisoformat(str(d)) for d in cfg[k])
        return cls(**kw)

    @property
    def _bounds(self) -> NDArray[np.int64]:
        return np.array([(_tod(a), _tod(b)) for a, b in self.periods], dtype=np.int64)

    @property
    def hours_per_day(self) -> float:
        """Working hours in one working day."""
        b = self._bounds
        return float((b[:, 1] - b[:, 0]).sum()) / 3600.0

    def is_workday(self, day: date) -> bool:
        """True when ``day`` is a working day."""
        return bool(self._is_work(np.array([_day_index(day)]))[0])

    def _is_work(self, days: NDArray[np.int64]) -> NDArray[np.bool_]:
        weekday = (days + 3) % 7  # 1970-01-01 was a Thursday
        ok = np.isin(weekday, sorted(self.weekdays))
        if self.holidays:
            ok &= ~np.isin(days, [_day_index(d) for d in self.holidays])
        if self.workdays:
            ok |= np.isin(days, [_day_index(d) for d in self.workdays])
        return ok

    def _within(self, sec_of_day: NDArray[np.int64]) -> NDArray[np.int64]:
        b = self._bounds
        return np.clip(sec_of_day[:, None] - b[None, :, 0], 0, (b[:, 1] - b[:, 0])[None, :]).sum(axis=1)

    def _table(self, d0: int, ndays: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Working seconds per day and cumulative working seconds before each day, from day ``d0``."""
        days = np.arange(d0, d0 + ndays, dtype=np.int64)
        per_day = np.where(self._is_work(days), int((self._bounds[:, 1] - self._bounds[:, 0]).sum()), 0)
        before = np.concatenate([[0], np.cumsum(per_day)[:-1]])
        return per_day, before

    def _clock(self, s: NDArray[np.int64], d0: int, before: NDArray[np.int64]) -> NDArray[np.int64]:
        """Working seconds from the start of day ``d0`` until each instant ``s``."""
        day = s // _DAY_S
        idx = day - d0
        work = self._is_work(day)
        return before[idx] + np.where(work, self._within(s - day * _DAY_S), 0)

    def working_hours_between(self, start: Any, end: Any) -> Any:
        """Working hours from ``start`` to ``end`` (negative when ``end`` is earlier).

        Scalars give a float, arrays an array (element-wise). Missing values give NaN.
        """
        scalar = np.ndim(start) == 0 and np.ndim(end) == 0
        (s, s_na), (e, e_na) = _secs(start), _secs(end)
        s, e, s_na, e_na = np.broadcast_arrays(s, e, s_na, e_na)
        na = s_na | e_na
        out = np.full(s.shape, np.nan)
        ok = ~na
        if ok.any():
            lo = int(min(s[ok].min(), e[ok].min()) // _DAY_S)
            hi = int(max(s[ok].max(), e[ok].max()) // _DAY_S)
            _, before = self._table(lo, hi - lo + 1)
            out[ok] = (self._clock(e[ok], lo, before) - self._clock(s[ok], lo, before)) / 3600.0
        return float(out[0]) if scalar else out

    def add_working_hours(self, start: Any, hours: Any) -> Any:
        """The instant ``hours`` working hours after ``start`` (a ``Timestamp`` or a ``DatetimeIndex``).

        A start outside working time counts from the next working period. The result is the
        end of the working minute that completes the count (12:00, not 13:30, when the morning
        is exactly used up). ``hours`` must be >= 0.
        """
        scalar = np.ndim(start) == 0 and np.ndim(hours) == 0
        s, na = _secs(start)
        h = np.atleast_1d(np.asarray(hours, dtype=float))
        if (h < 0).any() or not np.isfinite(h).all():
            raise ValueError("hours must be finite and >= 0")
        s, h, na = np.broadcast_arrays(s, h, na)
        if na.all():
            out = pd.DatetimeIndex(np.full(s.shape, np.datetime64("NaT"), dtype="datetime64[s]"))
            return out[0] if scalar else out
        s = np.where(na, s[~na].min(), s)
        d0 = int(s.min() // _DAY_S)
        per_wk = max(len(self.weekdays), 1)
        ndays = int((h.max() / max(self.hours_per_day, 1e-9)) * 7 / per_wk) + 16
        while True:
            per_day, before = self._table(d0, int(s.max() // _DAY_S) - d0 + ndays)
            target = self._clock(s, d0, before) + np.round(h * 3600).astype(np.int64)
            ends = before + per_day
            if ends[-1] >= target.max():
                break
            ndays *= 2
        idx = np.searchsorted(ends, target, side="left")
        rem = target - before[idx]  # > 0 except when hours == 0
        b = self._bounds
        lengths = b[:, 1] - b[:, 0]
        cum = np.concatenate([[0], np.cumsum(lengths)])
        k = np.clip(np.searchsorted(cum[1:], rem, side="left"), 0, len(lengths) - 1)
        sec = (d0 + idx) * _DAY_S + b[k, 0] + (rem - cum[k])
        sec = np.where(h == 0, s, sec).astype("datetime64[s]")
        out = pd.DatetimeIndex(np.where(na, np.datetime64("NaT"), sec))
        return out[0] if scalar else out


def _tod(x: dtime) -> int:
    return x.hour * 3600 + x.minute * 60 + x.second


def _day_index(d: date) -> int:
    return (d - date(1970, 1, 1)).days


@dataclass(frozen=True)
class TimeLimits:
    """Handling time limits in hours, by level, with overrides per category and per item.

    The most specific entry wins: item (``"0402"``) and level, then category (``"04"``) and
    level, then level. Hours are counted as ``mode`` says (``"calendar"`` or ``"working"``),
    or as ``mode_by_level`` says for a level (urgent level-3 cases often run on the clock).

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
    mode: Mode = "calendar"
    mode_by_level: Mapping[int, Mode] = field(default_factory=dict)

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

        Missing tables keep their defaults; unknown keys raise ``ValueError``.
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
            mode_by_level=lv(cfg.get("mode_by_level", {})),
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
    """The configurable rules of the loop: limits, calendar, extension and escalation rules."""

    limits: TimeLimits = field(default_factory=TimeLimits)
    calendar: WorkCalendar = field(default_factory=WorkCalendar)
    max_extensions: int = 2
    escalate_after_reworks: int = 2

    def __post_init__(self) -> None:
        if self.max_extensions < 0 or self.escalate_after_reworks < 1:
            raise ValueError("max_extensions must be >= 0 and escalate_after_reworks >= 1")

    def add_hours(self, start: Any, hours: float, *, level: int) -> pd.Timestamp:
        """``start`` plus ``hours`` counted the way ``level``'s limits are counted."""
        start = _ts(start)
        if self.limits.mode_for(level) == "working":
            return self.calendar.add_working_hours(start, hours)
        return start + pd.Timedelta(hours=float(hours))


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
    >>> pol = WorkflowPolicy(limits=TimeLimits(mode="working"))
    >>> due_time("2025-03-07 17:00", category_code="01", level=3, policy=pol)  # 1 + 7.5 * 3 + 0.5 working h
    Timestamp('2025-03-13 09:30:00')
    """
    hours = policy.limits.hours(category_code, level, item_code=item_code)
    return policy.add_hours(start, hours, level=level)


def due_times(incidents: pd.DataFrame, *, policy: WorkflowPolicy = DEFAULT_POLICY) -> pd.Series:
    """Vectorised :func:`due_time` for a table with ``requested_datetime``, ``category_code``,
    ``level`` and optionally ``item_code``; aligned to its index (NaT where anything is missing)."""
    df = incidents
    out = pd.Series(pd.NaT, index=df.index, dtype="datetime64[ns]")
    start = pd.to_datetime(df["requested_datetime"])
    level = pd.to_numeric(df["level"], errors="coerce")
    cat = df["category_code"].astype("string") if "category_code" in df else pd.Series(pd.NA, index=df.index)
    item = df["item_code"].astype("string") if "item_code" in df else pd.Series(pd.NA, index=df.index)
    ok = start.notna() & level.isin([1, 2, 3])
    keys = pd.DataFrame({"c": cat.astype(object), "i": item.astype(object), "l": level}).loc[ok]
    uniq = keys.drop_duplicates().copy()
    uniq["h"] = [policy.limits.hours(None if pd.isna(c) else c, int(lvl), item_code=None if pd.isna(i) else i)
                 for c, i, lvl in uniq.itertuples(index=False)]
    hours = pd.Series(np.nan, index=df.index)
    hours[ok.to_numpy()] = keys.merge(uniq, how="left", on=["c", "i", "l"])["h"].to_numpy()
    for lvl in (1, 2, 3):
        m = (ok & (level == lvl)).to_numpy()
        if not m.any():
            continue
        if policy.limits.mode_for(lvl) == "working":
            out[m] = policy.calendar.add_working_hours(start[m].to_numpy(), hours[m].to_numpy())
        else:
            out[m] = start[m] + pd.to_timedelta(hours[m], unit="h")
    return out


def is_overdue(incident: Mapping[str, Any], *, now: Any, policy: WorkflowPolicy = DEFAULT_POLICY) -> bool:
    """True when a case is past its due time: still open at ``now``, or closed after it.

    Cases closed without action and cases without ``expected_datetime`` are never overdue.
    ``policy`` is unused for now and kept so callers need not change when stage limits arrive.
    """
    due = incident.get("expected_datetime")
    stage = incident.get("stage")
    if due is None or pd.isna(due) or stage == "closed_no_action":
        return False
    if stage in ("closed", "evaluated"):
        closed = incident.get("closed_datetime")
        return closed is not None and not pd.isna(closed) and _ts(closed) > _ts(due)
    return _ts(now) > _ts(due)


def overdue(incidents: pd.DataFrame, *, now: Any) -> pd.Series:
    """Vectorised :func:`is_overdue`; a boolean Series aligned to ``incidents``."""
    due = pd.to_datetime(incidents["expected_datetime"])
    stage = incidents["stage"].astype("string")
    closed = pd.to_datetime(incidents.get("closed_datetime", pd.Series(pd.NaT, index=incidents.index)))
    done = stage.isin(["closed", "evaluated"]).fillna(False)
    late_closed = done & (closed > due).fillna(False)
    late_open = stage.isin(sorted(OPEN_STAGES)).fillna(False) & (due < _ts(now)).fillna(False)
    return (late_closed | late_open).astype(bool)


def escalation_due(
    incident: Mapping[str, Any], *, now: Any, policy: WorkflowPolicy = DEFAULT_POLICY
) -> str | None:
    """Why a case should go up one whistle level now (``"overdue"`` or ``"reworked"``), or ``None``.

    Only open cases already routed (whistled .. verifying) below the 攻坚克难哨 qualify.
    """
    if incident.get("stage") not in _ACTIVE or _whistle(incident) == "tough":
        return None
    if int(incident.get("reworks") or 0) >= policy.escalate_after_reworks:
        return "reworked"
    if is_overdue(incident, now=now, policy=policy):
        return "overdue"
    return None


# --------------------------------------------------------------------------------------------
# The transitions table
# --------------------------------------------------------------------------------------------


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


def _whistle(inc: Mapping[str, Any]) -> str:
    w = inc.get("whistle")
    return "none" if w is None or (not isinstance(w, str) and pd.isna(w)) else str(w)


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
    i = order.index(_whistle(inc)) if _whistle(inc) in order else 0
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
    if _whistle(c.incident) != "tough":
        return (_MSG + "tough_only", {})
    return None


def _lower_whistle_check(c: _Ctx) -> Refusal | None:
    cur, kind = _whistle(c.incident), c.options["kind"]
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
    base = c.time if due is None or pd.isna(due) else _ts(due)
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
    _T("report_for_duty", ("whistled",), "dispatched", _DEPT_ROLES, guards=(_dept_guard,)),
    _T("start_handling", ("dispatched",), "handling", _DEPT_ROLES, guards=(_dept_guard,)),
    _T("report_back", ("handling",), "verifying", _DEPT_ROLES, guards=(_dept_guard,)),
    _T("verify_pass", ("verifying",), "closed", _VERIFIERS, effect=_eff_close),
    _T("verify_fail", ("verifying",), "handling", _VERIFIERS, note_required=True, effect=_eff_rework),
    _T("evaluate", ("closed",), "evaluated", _SUPERVISORS | {"district_leader"},
       optional=("rating",), checks=(_rating_check,)),
    _T("close_no_action", ("collected",), "closed_no_action",
       frozenset({"command_centre", "community"}) | SUBDISTRICT_LEADERS,
       required=("reason",), optional=("duplicate_of",), checks=(_reason_check,), effect=_eff_close),
    _T("return_case", ("whistled", "dispatched"), "collected", _DEPT_ROLES, note_required=True,
       guards=(_dept_guard,), effect=_eff_return),
    _T("request_extension", ("dispatched", "handling"), None, _DEPT_ROLES, required=("hours",),
       note_required=True, guards=(_dept_guard, _extension_guard), checks=(_hours_check,)),
    _T("grant_extension", ("dispatched", "handling"), None, _SUPERVISORS, required=("hours",),
       guards=(_extension_guard,), checks=(_hours_check,), effect=_eff_extend),
    _T("deny_extension", ("dispatched", "handling"), None, _SUPERVISORS, note_required=True),
    _T("escalate", _ACTIVE, None, SUBDISTRICT_LEADERS | {"system"}, note_required=True,
       guards=(_escalate_guard,), effect=_eff_escalate),
    _T("instruct", _ACTIVE, None, frozenset({"district_leader"}), note_required=True,
       guards=(_tough_guard,)),
)
TRANSITIONS_BY_ACTION: Mapping[str, Transition] = {tr.action: tr for tr in TRANSITIONS}
if not {s for tr in TRANSITIONS for s in (*tr.sources, tr.target) if s} <= set(STAGES):  # pragma: no cover
    raise RuntimeError("layers.workflow.TRANSITIONS names a stage missing from layers.schema.STAGES")
ACTIONS: tuple[str, ...] = tuple(TRANSITIONS_BY_ACTION)


def _ts(x: Any) -> pd.Timestamp:
    ts = pd.Timestamp(x)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("Asia/Shanghai").tz_localize(None)
    return ts


def _stage_of(inc: Mapping[str, Any]) -> str | None:
    s = inc.get("stage")
    return None if s is None or (not isinstance(s, str) and pd.isna(s)) else str(s)


def _refuse(r: Refusal | None) -> None:
    if r is not None:
        raise IllegalTransitionError(r[0], **r[1])


def _state_checks(tr: Transition, inc: Mapping[str, Any], role: str, c: _Ctx) -> None:
    if role not in ROLES:
        raise IllegalTransitionError(_MSG + "unknown_role", role=role, codes=", ".join(ROLES))
    stage = _stage_of(inc)
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
        when = _ts(time)
    except (TypeError, ValueError):
        raise IllegalTransitionError(_MSG + "bad_time", value=str(time)) from None
    if pd.isna(when):
        raise IllegalTransitionError(_MSG + "bad_time", value=str(time))
    c = _Ctx(incident, role, when, options, policy)
    _state_checks(tr, incident, role, c)
    for name in options:
        if name not in tr.required + tr.optional:
            raise IllegalTransitionError(_MSG + "unknown_option", action=action, option=name,
                                         allowed=", ".join(tr.required + tr.optional) or "-")
    for name in tr.required:
        if options.get(name) is None:
            raise IllegalTransitionError(_MSG + "missing_option", action=action, option=name)
    for chk in tr.checks:
        _refuse(chk(c))
    if (tr.note_required and role != "system") and not note.strip():
        raise IllegalTransitionError(_MSG + "note_required", action=action)
    last = incident.get("updated_datetime")
    if last is None or pd.isna(last):
        last = incident.get("requested_datetime") if _stage_of(incident) else None
    if last is not None and not pd.isna(last) and when < _ts(last):
        raise IllegalTransitionError(_MSG + "time_before_last", time=str(when), last=str(_ts(last)))

    new = dict(incident)
    if tr.effect is not None:
        tr.effect(new, c)
    from_stage = _stage_of(incident)
    to_stage = tr.target or from_stage
    new["stage"] = to_stage
    new["status"] = "closed" if to_stage in CLOSED_STAGES else "open"
    new["updated_datetime"] = when
    if role == "system" and action == "escalate" and not note.strip():
        note = str(escalation_due(incident, now=when, policy=policy) or "")
    full_note = _format_note(options, note)
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
#: times). ``updated_datetime`` changes on every action, so it acts as the case's version.
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


def _isna(v: Any) -> bool:
    return v is None or (not isinstance(v, str) and bool(pd.isna(v)))


def _same(a: Any, b: Any) -> bool:
    if _isna(a) and _isna(b):
        return True
    if _isna(a) or _isna(b):
        return False
    return bool(a == b)


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
    when = None if time is None else _ts(time)
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


# --------------------------------------------------------------------------------------------
# Histories
# --------------------------------------------------------------------------------------------

#: Every legal stage change ``(from, to) -> action`` (``from`` None: a new incident).
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


_NOTE_RE = re.compile(r"^\[((?:\w+=\S+ ?)+)\] ?")


def _format_note(options: Mapping[str, Any], note: str) -> str:
    opts = " ".join(f"{k}={options[k]}" for k in sorted(options) if options[k] is not None)
    text = note.strip()
    return f"[{opts}] {text}".strip() if opts else text


def parse_note(note: str | None) -> tuple[dict[str, str], str]:
    """Split an event note into its ``[key=value ...]`` options and the free text.

    >>> parse_note("[department=housing kind=work] needs three departments")
    ({'department': 'housing', 'kind': 'work'}, 'needs three departments')
    """
    if not note:
        return {}, ""
    m = _NOTE_RE.match(note)
    if not m:
        return {}, note
    opts = dict(p.split("=", 1) for p in m.group(1).split())
    return opts, note[m.end():]


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


__all__ = [
    "ACTIONS", "CLOSED_STAGES", "DEFAULT_POLICY", "EDGES", "NO_ACTION_REASONS", "OPEN_STAGES",
    "ROLES", "TRANSITIONS", "WHISTLE_ROLES", "IllegalTransitionError", "TimeLimits", "Transition",
    "WorkCalendar", "WorkflowPolicy", "action_for", "apply_transition", "check_history", "due_time",
    "due_times", "escalation_due", "illegal_events", "is_legal_path", "is_overdue", "label", "legal_actions", "overdue",
    "parse_note", "pending_extension", "transition", "transitions_table",
]
