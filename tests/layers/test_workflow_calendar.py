"""Working hours with China's public holidays and make-up working days (chinesecalendar).

Hand-made cases across 2026's real arrangements (State Council notice for 2026):
New Year 1 Jan - 3 Jan off, Sunday 4 Jan worked; Spring Festival 15 - 23 Feb off, Saturdays
14 and 28 Feb worked; Labour Day 1 - 5 May off, Saturday 9 May worked; Mid-Autumn Friday
25 Sep off; National Day 1 - 7 Oct off, Sunday 20 Sep and Saturday 10 Oct worked.
Working time is Monday to Friday 9:00-12:00 and 13:30-18:00 (7.5 h a day).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from layers.workflow import (
    DEFAULT_POLICY,
    WorkCalendar,
    china_calendar,
    coverage,
    due_time,
    due_times,
    is_overdue,
    overdue,
)
from layers.workflow import calendar as calmod

CN = china_calendar()
TS = pd.Timestamp


@pytest.mark.parametrize(
    ("start", "hours", "due"),
    [
        # eve of National Day: 2 h on Wed 30 Sep, then the first working day after the holiday
        ("2026-09-30 16:00", 8, "2026-10-08 16:30"),
        # a make-up working Sunday counts (20 Sep), so does a make-up Saturday (10 Oct)
        ("2026-09-18 17:00", 2, "2026-09-20 10:00"),
        ("2026-10-09 17:00", 1.5, "2026-10-10 09:30"),
        # an ordinary Saturday does not: Sat 19 Sep -> the make-up Sunday
        ("2026-09-19 10:00", 1, "2026-09-20 10:00"),
        # Mid-Autumn Friday 25 Sep is off: Thu 17:00 + 2 h -> Mon 28 Sep 10:00
        ("2026-09-24 17:00", 2, "2026-09-28 10:00"),
        # lunch break excluded
        ("2026-03-02 11:00", 2, "2026-03-02 14:30"),
        ("2026-03-02 12:10", 0.5, "2026-03-02 14:00"),
        # New Year: 31 Dec 17:30 + 1 h -> Sunday 4 Jan (worked) 9:30
        ("2025-12-31 17:30", 1, "2026-01-04 09:30"),
        # Spring Festival: Fri 13 Feb 17:00 + 2 h -> Saturday 14 Feb (worked) 10:00;
        # Sat 14 Feb 17:00 + 2 h -> Tue 24 Feb 10:00 (15 - 23 Feb off)
        ("2026-02-13 17:00", 2, "2026-02-14 10:00"),
        ("2026-02-14 17:00", 2, "2026-02-24 10:00"),
        # Labour Day: Thu 30 Apr 17:00 + 1.5 h -> Wed 6 May 9:30
        ("2026-04-30 17:00", 1.5, "2026-05-06 09:30"),
    ],
)
def test_adding_working_hours_across_2026_holidays(start: str, hours: float, due: str) -> None:
    assert CN.add_working_hours(TS(start), hours) == TS(due)
    assert CN.working_hours_between(TS(start), TS(due)) == pytest.approx(hours)


def test_holidays_and_make_up_days_come_from_the_package() -> None:
    assert not CN.is_workday(date(2026, 10, 1)) and not CN.is_workday(date(2026, 10, 7))
    assert CN.is_workday(date(2026, 9, 20)) and CN.is_workday(date(2026, 10, 10))  # Sun, Sat worked
    assert not CN.is_workday(date(2026, 9, 19))  # an ordinary Saturday
    assert CN.is_workday(date(2026, 10, 8))
    # the whole National Day week holds no working time
    assert CN.working_hours_between(TS("2026-09-30 18:00"), TS("2026-10-08 09:00")) == 0
    # the plain calendar (no holiday data) would count five days in it
    assert WorkCalendar().working_hours_between(TS("2026-09-30 18:00"), TS("2026-10-08 09:00")) == 37.5


def test_the_production_policy_counts_working_hours_except_urgent_cases() -> None:
    assert DEFAULT_POLICY.calendar == CN
    assert DEFAULT_POLICY.limits.mode_for(1) == "working" and DEFAULT_POLICY.limits.mode_for(2) == "working"
    assert DEFAULT_POLICY.limits.mode_for(3) == "calendar"
    eve = "2026-09-30 16:00"
    # level 1, 72 working hours: 2 h on 30 Sep, then 8 Oct, 9 Oct, Sat 10 Oct, 12-16 Oct, 19 Oct
    # (9 days, 67.5 h) and 2.5 h on Tue 20 Oct
    assert due_time(eve, category_code="01", level=1) == TS("2026-10-20 11:30")
    # level 3 runs on the clock: 24 h, 12 h for safety hazards, 4 h for a missing manhole cover
    assert due_time(eve, category_code="01", level=3) == TS("2026-10-01 16:00")
    assert due_time(eve, category_code="10", level=3) == TS("2026-10-01 04:00")
    assert due_time(eve, category_code="04", item_code="0402", level=3) == TS("2026-09-30 20:00")
    # a case received on the holiday itself starts counting on 8 Oct 9:00: 24 h = 8, 9 and Sat 10 Oct
    # (22.5 h) and 1.5 h on Mon 12 Oct
    assert due_time("2026-10-03 10:00", category_code="01", item_code="0402", level=1) == TS("2026-10-12 10:30")


def test_overdue_counts_the_holiday_as_time_off() -> None:
    inc = {"stage": "handling", "expected_datetime": due_time("2026-09-30 16:00", category_code="01", level=2)}
    # 120 working hours are nowhere near used up on the last day of the holiday
    assert not is_overdue(inc, now="2026-10-07 23:00")
    assert is_overdue(inc, now=inc["expected_datetime"] + pd.Timedelta(minutes=1))
    df = pd.DataFrame([inc, {**inc, "stage": "closed_no_action"}])
    assert overdue(df, now="2026-12-01").tolist() == [True, False]


def test_vectorised_due_times_match_the_scalar_rule_over_the_holidays() -> None:
    rng = np.random.default_rng(3)
    n = 80
    df = pd.DataFrame({
        "requested_datetime": TS("2026-09-15") + pd.to_timedelta(rng.integers(0, 40 * 24 * 60, n), unit="min"),
        "category_code": rng.choice(["01", "04", "10"], n),
        "item_code": rng.choice(["0101", "0402", "1001"], n),
        "level": rng.integers(1, 4, n),
    })
    want = [due_time(r.requested_datetime, category_code=r.category_code, level=r.level,
                     item_code=r.item_code) for r in df.itertuples()]
    assert due_times(df).tolist() == want


def test_beyond_the_package_years_only_weekends_are_off_with_one_warning(caplog) -> None:
    first, last = coverage()
    assert first <= date(2026, 1, 1) and last >= date(2026, 12, 31)
    # the first Friday a year after the data ends: a weekday, so a working day
    day = last + timedelta(days=365)
    day += timedelta(days=(4 - day.weekday()) % 7)
    calmod._WARNED.discard(CN.covered)
    with caplog.at_level(logging.WARNING, logger="layers.workflow.calendar"):
        start = TS(datetime.combine(day, datetime.min.time())) + pd.Timedelta(hours=17)
        assert CN.add_working_hours(start, 2) == start + pd.Timedelta(days=3, hours=-7)  # Mon 10:00
        CN.add_working_hours(start, 3)
    warnings = [r for r in caplog.records if r.name == "layers.workflow.calendar"]
    assert len(warnings) == 1  # once, not per call
    assert last.isoformat() in warnings[0].getMessage()


@settings(max_examples=80, deadline=None)
@given(
    st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2026, 12, 1)),
    st.integers(min_value=0, max_value=300 * 60),
)
def test_adding_then_measuring_gives_the_hours_back(start: datetime, minutes: int) -> None:
    start_ts = TS(start).floor("min")
    due = CN.add_working_hours(start_ts, minutes / 60)
    assert due >= start_ts
    assert CN.working_hours_between(start_ts, due) == pytest.approx(minutes / 60, abs=1e-9)


@settings(max_examples=80, deadline=None)
@given(
    st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2026, 12, 1)),
    st.lists(st.integers(min_value=0, max_value=300 * 60), min_size=2, max_size=8),
)
def test_due_time_is_monotonic_in_the_hours(start: datetime, minutes: list[int]) -> None:
    start_ts = TS(start).floor("min")
    hours = np.sort(np.array(minutes)) / 60
    dues = CN.add_working_hours(np.full(hours.size, start_ts.to_datetime64()), hours)  # vectorised
    assert (np.diff(dues.asi8) >= 0).all()
    assert list(dues) == [CN.add_working_hours(start_ts, h) for h in hours]  # same as one by one
