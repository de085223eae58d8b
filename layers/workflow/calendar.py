"""The working-hours calendar (工作时间): daily periods, working weekdays, holidays, make-up days.

:class:`WorkCalendar` counts working time vectorised over whole columns of datetimes
(:meth:`WorkCalendar.add_working_hours`, :meth:`WorkCalendar.working_hours_between`).
:func:`china_calendar` is the production calendar: Monday to Friday, 9:00–12:00 and
13:30–18:00, with China's official public holidays (法定节假日) and make-up working days
(调休上班) from the maintained package ``chinesecalendar`` (import ``chinese_calendar``).

Coverage: ``chinesecalendar`` lists the State Council's holiday arrangements year by year
(published each November/December for the next year); its :func:`coverage` says which years.
Days outside those years fall back to weekends-only (Monday to Friday worked), and the first
computation that touches such a day logs one warning (logger ``layers.workflow.calendar``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from datetime import time as dtime
from functools import cache, cached_property
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

log = logging.getLogger(__name__)
_WARNED: set[tuple[date, date]] = set()

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
    covered
        First and last date the ``holidays`` / ``workdays`` lists are known for (``None``:
        complete). Outside it only ``weekdays`` decide, and a warning is logged once.

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
    covered: tuple[date, date] | None = None

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
        self._warn_beyond(_day_index(day), _day_index(day))
        return bool(self._is_work(np.array([_day_index(day)]))[0])

    @cached_property
    def _holiday_idx(self) -> NDArray[np.int64]:
        return np.array(sorted(_day_index(d) for d in self.holidays), dtype=np.int64)

    @cached_property
    def _workday_idx(self) -> NDArray[np.int64]:
        return np.array(sorted(_day_index(d) for d in self.workdays), dtype=np.int64)

    @cached_property
    def _weekday_mask(self) -> NDArray[np.bool_]:
        return np.isin(np.arange(7), sorted(self.weekdays))

    def _is_work(self, days: NDArray[np.int64]) -> NDArray[np.bool_]:
        ok = self._weekday_mask[(days + 3) % 7]  # 1970-01-01 was a Thursday
        if self.holidays:
            ok &= ~np.isin(days, self._holiday_idx)
        if self.workdays:
            ok |= np.isin(days, self._workday_idx)
        return ok

    def _warn_beyond(self, lo: int, hi: int) -> None:
        """Log once when days ``lo`` .. ``hi`` (day numbers) leave the holiday data's years."""
        if self.covered is None:
            return
        first, last = (_day_index(d) for d in self.covered)
        if (lo < first or hi > last) and self.covered not in _WARNED:
            _WARNED.add(self.covered)
            log.warning(
                "holiday data covers %s .. %s only; working time on dates outside it counts "
                "Monday to Friday without public holidays or make-up working days (update the "
                "chinesecalendar package when the State Council publishes the next year)",
                self.covered[0].isoformat(), self.covered[1].isoformat(),
            )

    def _within(self, sec_of_day: NDArray[np.int64]) -> NDArray[np.int64]:
        b = self._bounds
        return np.clip(sec_of_day[:, None] - b[None, :, 0], 0, (b[:, 1] - b[:, 0])[None, :]).sum(axis=1)

    def _table(self, d0: int, ndays: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Working seconds per day and cumulative working seconds before each day, from day ``d0``."""
        days = np.arange(d0, d0 + ndays, dtype=np.int64)
        per_day = np.where(self._is_work(days), int((self._bounds[:, 1] - self._bounds[:, 0]).sum()), 0)
        before = np.concatenate([[0], np.cumsum(per_day)[:-1]])
        return per_day, before

    def _clock(
        self, s: NDArray[np.int64], d0: int, per_day: NDArray[np.int64], before: NDArray[np.int64]
    ) -> NDArray[np.int64]:
        """Working seconds from the start of day ``d0`` until each instant ``s``."""
        day = s // _DAY_S
        idx = day - d0
        work = per_day[idx] > 0
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
            self._warn_beyond(lo, hi)
            per_day, before = self._table(lo, hi - lo + 1)
            out[ok] = (self._clock(e[ok], lo, per_day, before) - self._clock(s[ok], lo, per_day, before)) / 3600.0
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
            target = self._clock(s, d0, per_day, before) + np.round(h * 3600).astype(np.int64)
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
        sec = np.where(h == 0, s, sec)
        self._warn_beyond(d0, int(sec[~na].max() // _DAY_S))
        sec = sec.astype("datetime64[s]")
        out = pd.DatetimeIndex(np.where(na, np.datetime64("NaT"), sec))
        return out[0] if scalar else out


def _tod(x: dtime) -> int:
    return x.hour * 3600 + x.minute * 60 + x.second


def _day_index(d: date) -> int:
    return (d - date(1970, 1, 1)).days


@cache
def coverage() -> tuple[date, date]:
    """First and last date of the years ``chinesecalendar`` has holiday arrangements for.

    >>> coverage()[0]
    datetime.date(2004, 1, 1)
    """
    from chinese_calendar import constants

    years = sorted({d.year for d in constants.holidays} | {d.year for d in constants.workdays})
    return date(years[0], 1, 1), date(years[-1], 12, 31)


@cache
def china_calendar(
    periods: tuple[tuple[dtime, dtime], ...] = WorkCalendar.periods,
) -> WorkCalendar:
    """Monday to Friday in ``periods`` (default 9:00–12:00, 13:30–18:00), with China's public
    holidays and make-up working days from ``chinesecalendar``; weekends-only beyond its years.

    Examples
    --------
    >>> cal = china_calendar()
    >>> cal.is_workday(date(2026, 10, 1)), cal.is_workday(date(2026, 9, 20))  # National Day; a Sunday worked
    (False, True)
    >>> cal.add_working_hours(pd.Timestamp("2026-09-30 16:00"), 8)  # 2 h, the holiday, then 6 h
    Timestamp('2026-10-08 16:30:00')
    """
    from chinese_calendar import constants

    first, last = coverage()
    return WorkCalendar(
        periods=periods,
        holidays=frozenset(d for d in constants.holidays if first <= d <= last),
        workdays=frozenset(d for d in constants.workdays if first <= d <= last),
        covered=(first, last),
    )


__all__ = ["WorkCalendar", "china_calendar", "coverage"]
