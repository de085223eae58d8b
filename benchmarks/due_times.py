"""Benchmark: vectorised due times and overdue flags on 300,000 incidents.

    .venv/bin/python benchmarks/due_times.py [--n 300000] [--repeat 5] [--seed 0]

Synthetic incidents received over two years (2025-01-01 .. 2026-12-31, so part of them fall
beyond the holiday data of ``chinesecalendar`` when it ends in 2026 — the fall-back path is
exercised too), random categories, items and levels 1-3. Timed (medians of ``--repeat`` runs):

* ``due_times_default_s``: :func:`layers.workflow.due_times` with ``DEFAULT_POLICY`` (the
  production rule: working hours with China's holidays and make-up days, level 3 on the clock);
* ``due_times_working_plain_s``: every level in working hours of a plain Mon-Fri calendar;
* ``due_times_calendar_s``: every level in calendar hours;
* ``overdue_s``: :func:`layers.workflow.overdue` on the table with its due times;
* ``working_hours_between_s``: working hours from request to due time for every row.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from layers import taxonomy
from layers.workflow import (
    DEFAULT_POLICY,
    TimeLimits,
    WorkCalendar,
    WorkflowPolicy,
    due_times,
    overdue,
)


def frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2025-01-01").value // 10**9
    span = 2 * 365 * 86_400
    items = np.array(taxonomy.ITEM_CODES)
    item = items[rng.integers(0, items.size, n)]
    df = pd.DataFrame({
        "requested_datetime": pd.to_datetime(start + rng.integers(0, span, n), unit="s"),
        "category_code": [i[:2] for i in item],
        "item_code": item,
        "level": rng.integers(1, 4, n),
    })
    df["stage"] = rng.choice(["collected", "handling", "closed", "evaluated", "closed_no_action"], n)
    return df


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    out = None
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    df = frame(a.n, a.seed)
    plain = WorkflowPolicy(limits=TimeLimits(mode="working"), calendar=WorkCalendar())
    clock = WorkflowPolicy(limits=TimeLimits(mode="calendar", mode_by_level={}))
    res: dict[str, Any] = {"n": a.n, "repeat": a.repeat, "python": platform.python_version(),
                           "default_policy": repr(DEFAULT_POLICY.limits.mode)}
    res["due_times_default_s"], due = timed(lambda: due_times(df, policy=DEFAULT_POLICY), a.repeat)
    res["due_times_working_plain_s"], _ = timed(lambda: due_times(df, policy=plain), a.repeat)
    res["due_times_calendar_s"], _ = timed(lambda: due_times(df, policy=clock), a.repeat)
    df["expected_datetime"] = due
    df["closed_datetime"] = due + pd.to_timedelta(np.random.default_rng(1).integers(-96, 48, a.n), unit="h")
    now = pd.Timestamp("2026-11-20 16:00")
    res["overdue_s"], late = timed(lambda: overdue(df, now=now), a.repeat)
    res["overdue_share"] = round(float(late.mean()), 4)
    cal = DEFAULT_POLICY.calendar
    res["working_hours_between_s"], _ = timed(
        lambda: cal.working_hours_between(df["requested_datetime"], df["expected_datetime"]), a.repeat)
    res = {k: round(v, 4) if isinstance(v, float) else v for k, v in res.items()}
    print(json.dumps(res))


if __name__ == "__main__":
    main()
