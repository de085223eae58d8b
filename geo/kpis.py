"""Closed-loop KPIs per group: closure, on-time closure, rework and extension rates, handling time.

Definitions (one row per group; rates are NaN when their denominator is 0):

================  =========================================================================
column            meaning
================  =========================================================================
incidents         all cases
no_action         closed without action (不予受理 / 重复 / 非本部门职责)
accepted          cases taken on: ``incidents - no_action`` (受理数)
closed            closed or evaluated (结案数)
open              accepted and not closed
due               cases that should be closed by ``now``: closed ones plus open ones past
                  their ``expected_datetime`` (应结案数)
closed_on_time    closed no later than ``expected_datetime`` (按期结案数; no due time = on time)
overdue_open      open and past ``expected_datetime`` at ``now``
closure_rate      结案率 = closed / accepted
on_time_rate      按期结案率 = closed_on_time / due
rework_rate       返工率 = cases reworked at least once / cases reported back at least once
                  (now verifying, closed or evaluated, or reworked)
extension_rate    延期率 = cases extended at least once / accepted
median_hours      median handling time of closed cases, ``requested`` to ``closed`` (hours)
p90_hours         90th percentile of the same (linear interpolation)
================  =========================================================================

Handling time is in calendar hours unless ``hours_between`` is given (e.g. a working-hours
calendar's ``working_hours_between``).

Examples
--------
>>> df = pd.DataFrame({
...     "grid": ["a", "a", "a", "b"],
...     "stage": ["closed", "handling", "closed_no_action", "evaluated"],
...     "requested_datetime": pd.to_datetime(["2025-03-01 08:00"] * 4),
...     "expected_datetime": pd.to_datetime(["2025-03-02 08:00"] * 4),
...     "closed_datetime": pd.to_datetime(["2025-03-01 20:00", None, "2025-03-01 09:00",
...                                        "2025-03-03 08:00"]),
...     "reworks": [1, 0, 0, 0], "extensions": [0, 1, 0, 0]})
>>> k = kpis(df, by="grid", now="2025-03-05")
>>> k.loc["a", ["accepted", "closed", "closure_rate", "on_time_rate", "median_hours"]].tolist()
[2.0, 1.0, 0.5, 0.5, 12.0]
>>> k.loc["b", ["closure_rate", "on_time_rate", "median_hours"]].tolist()
[1.0, 0.0, 48.0]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from geo.domain import REPORTED_STAGES, RESOLVED_STAGES, VOID_STAGES

# Stage sets are defined once in geo.domain: RESOLVED_STAGES (closed, evaluated) count as closed
# (结案), VOID_STAGES (closed_no_action) as closed without action (不予受理).

REQUIRED: tuple[str, ...] = ("stage", "requested_datetime", "expected_datetime", "closed_datetime")
KPI_COLUMNS: tuple[str, ...] = (
    "incidents", "no_action", "accepted", "closed", "open", "due", "closed_on_time", "overdue_open",
    "closure_rate", "on_time_rate", "rework_rate", "extension_rate", "median_hours", "p90_hours",
)

HoursBetween = Callable[[np.ndarray, np.ndarray], np.ndarray]


def kpis(
    incidents: pd.DataFrame,
    *,
    by: str | Sequence[str] | None = None,
    now: Any = None,
    hours_between: HoursBetween | None = None,
) -> pd.DataFrame:
    """KPIs of the closed loop per group (see the module docstring for the definitions).

    Parameters
    ----------
    incidents
        One row per case with ``stage``, ``requested_datetime``, ``expected_datetime``,
        ``closed_datetime`` and optionally ``reworks`` and ``extensions`` (missing: 0).
    by
        Column(s) to group by (a sub-district, community, grid or department code column).
        Missing keys form their own group (NaN). ``None``: one row for everything.
    now
        When open cases are judged overdue. Default: the latest time in the table.
    hours_between
        ``f(start, end) -> hours`` for handling times (default: calendar hours).

    Returns
    -------
    pandas.DataFrame
        Indexed by the group key(s), columns :data:`KPI_COLUMNS`.
    """
    missing = [c for c in REQUIRED if c not in incidents.columns]
    keys = [] if by is None else [by] if isinstance(by, str) else list(by)
    missing += [k for k in keys if k not in incidents.columns]
    if missing:
        raise KeyError(f"kpis needs the columns {missing}; read the incidents layer with them")
    df = incidents
    stage = df["stage"].astype("string")
    req = pd.to_datetime(df["requested_datetime"])
    due_t = pd.to_datetime(df["expected_datetime"])
    closed_t = pd.to_datetime(df["closed_datetime"])
    if now is None:
        now_ts = max(x.max() for x in (req, closed_t, pd.to_datetime(df.get("updated_datetime", req)))
                     if not pd.isna(x.max())) if len(df) else pd.Timestamp.now()
    else:
        now_ts = pd.Timestamp(now)
    reworks = pd.to_numeric(df.get("reworks", 0), errors="coerce")
    extensions = pd.to_numeric(df.get("extensions", 0), errors="coerce")
    void = stage.isin(VOID_STAGES).fillna(False).to_numpy(bool)
    closed = stage.isin(RESOLVED_STAGES).fillna(False).to_numpy(bool)
    accepted = ~void
    open_ = accepted & ~closed
    late_open = open_ & (due_t < now_ts).fillna(False).to_numpy(bool)
    on_time = closed & ~(closed_t > due_t).fillna(False).to_numpy(bool)
    reworked = accepted & (np.nan_to_num(np.asarray(reworks, dtype=float) * np.ones(len(df))) > 0)
    reported = accepted & (stage.isin(REPORTED_STAGES).fillna(False).to_numpy(bool) | reworked)
    extended = accepted & (np.nan_to_num(np.asarray(extensions, dtype=float) * np.ones(len(df))) > 0)
    if hours_between is None:
        hours = ((closed_t - req).dt.total_seconds() / 3600.0).to_numpy()
    else:
        hours = np.asarray(hours_between(req.to_numpy(), closed_t.to_numpy()), dtype=float)
    hours = np.where(closed, hours, np.nan)
    flags = pd.DataFrame(
        {
            "incidents": np.ones(len(df), dtype=np.int64), "no_action": void, "accepted": accepted,
            "closed": closed, "open": open_, "due": closed | late_open, "closed_on_time": on_time,
            "overdue_open": late_open, "_reworked": reworked, "_reported": reported,
            "_extended": extended, "_hours": hours,
        },
        index=df.index,
    )
    if keys:
        for k in keys:
            flags[k] = df[k].to_numpy()
        grouped = flags.groupby(keys, dropna=False, sort=True)
        sums = grouped[[c for c in flags.columns if c not in keys and c != "_hours"]].sum()
        med = grouped["_hours"].median()
        p90 = grouped["_hours"].quantile(0.9)
    else:
        sums = flags.drop(columns="_hours").sum().to_frame().T
        med = pd.Series([flags["_hours"].median()])
        p90 = pd.Series([flags["_hours"].quantile(0.9)])
    out = sums.astype(np.int64)
    out["closure_rate"] = _rate(out["closed"], out["accepted"])
    out["on_time_rate"] = _rate(out["closed_on_time"], out["due"])
    out["rework_rate"] = _rate(out["_reworked"], out["_reported"])
    out["extension_rate"] = _rate(out["_extended"], out["accepted"])
    out["median_hours"] = med.to_numpy()
    out["p90_hours"] = p90.to_numpy()
    return out[list(KPI_COLUMNS)]


def _rate(num: pd.Series, den: pd.Series) -> pd.Series:
    with np.errstate(divide="ignore", invalid="ignore"):
        return pd.Series(np.where(den > 0, num / den.where(den > 0, 1), np.nan), index=num.index)


def code_prefix(codes: pd.Series, digits: int) -> pd.Series:
    """The parent code in a 15-digit grid code: 9 digits = sub-district, 12 = community (DB11/T 2157)."""
    s = codes.astype("string")
    return s.where(s.str.len() >= digits).str.slice(0, digits)
