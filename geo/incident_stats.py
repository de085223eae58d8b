"""Incident aggregates for charts, and 每月一题 (the problem of the month).

Chart aggregates come back in long form with every bucket present (zeros included), so a chart
never silently skips an hour, a month or a category:

* :func:`by_hour_of_week` – 168 rows, Monday 00:00–00:59 is hour 0;
* :func:`by_month` – one row per calendar month in the period;
* :func:`counts_by` – counts and shares by any column (category, source, department...).

:func:`monthly_topics` picks, for each month, the complaint type whose count rose most over the
previous month (Dongcheng's 每月一题 turns it into a targeted campaign) and where it concentrates.

Examples
--------
>>> t = pd.to_datetime(["2025-03-03 08:10", "2025-03-03 08:50", "2025-03-09 23:00"])
>>> h = by_hour_of_week(t)
>>> len(h), h.loc[8, "count"], h.loc[167, "count"]
(168, np.int64(2), np.int64(1))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike


def _times(times: ArrayLike) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(pd.Series(np.asarray(times))))


def by_hour_of_week(times: ArrayLike) -> pd.DataFrame:
    """Counts per hour of the week: index ``hour_of_week`` 0..167, columns ``weekday`` (Monday 0),
    ``hour`` and ``count``. Missing times are skipped."""
    t = _times(times)
    t = t[~t.isna()]
    how = (t.day_of_week * 24 + t.hour).to_numpy()
    counts = np.bincount(how, minlength=168)
    idx = np.arange(168)
    return pd.DataFrame({"weekday": idx // 24, "hour": idx % 24, "count": counts},
                        index=pd.Index(idx, name="hour_of_week"))


def by_month(times: ArrayLike, *, start: Any = None, end: Any = None) -> pd.DataFrame:
    """Counts per calendar month from ``start``'s month to ``end``'s (default: the data's range).

    Index ``month`` (``"2025-03"``), column ``count``.
    """
    t = _times(times)
    t = t[~t.isna()]
    if start is None and not len(t) or end is None and not len(t):
        return pd.DataFrame({"count": pd.Series([], dtype=np.int64)}, index=pd.Index([], name="month"))
    lo = pd.Timestamp(start if start is not None else t.min()).to_period("M")
    hi = pd.Timestamp(end if end is not None else t.max()).to_period("M")
    months = pd.period_range(lo, hi, freq="M")
    counts = pd.Series(t.to_period("M")).value_counts().reindex(months, fill_value=0)
    return pd.DataFrame({"count": counts.to_numpy().astype(np.int64)},
                        index=pd.Index(months.strftime("%Y-%m"), name="month"))


def counts_by(values: pd.Series, *, categories: Sequence[Any] | None = None) -> pd.DataFrame:
    """Counts and shares by value (e.g. ``category_code`` or ``source``), largest first.

    With ``categories`` every listed value appears (zeros included) in that order, and values not
    listed are summed into an ``"other"`` row when there are any. Missing values are left out.
    """
    vc = values.dropna().value_counts()
    if categories is not None:
        cats = list(categories)
        other = int(vc.drop([c for c in cats if c in vc.index]).sum())
        vc = vc.reindex(cats, fill_value=0)
        if other:
            vc = pd.concat([vc, pd.Series({"other": other})])
    total = vc.sum()
    out = pd.DataFrame({"count": vc.to_numpy().astype(np.int64),
                        "share": vc.to_numpy() / total if total else np.zeros(len(vc))},
                       index=pd.Index(vc.index, name=values.name))
    return out


def monthly_topics(
    incidents: pd.DataFrame,
    *,
    type_col: str = "item_code",
    time_col: str = "requested_datetime",
    area_col: str = "grid_code",
) -> pd.DataFrame:
    """每月一题: for each month, the type that rose most since the previous month, and where.

    Parameters
    ----------
    incidents
        Cases with ``time_col``, ``type_col`` and ``area_col``.
    type_col
        What a "complaint type" is (``item_code`` 事项 or ``category_code`` 大类).
    time_col
        When the case came in.
    area_col
        Where to look for its concentration (``grid_code``, a community code, or an ``h3_<res>``).

    Returns
    -------
    pandas.DataFrame
        One row per month that has a previous month (the first month is left out), index
        ``month`` (``"2025-03"``): ``type``, ``count``, ``prev_count``, ``increase`` (count minus
        previous; the largest wins, ties broken by the larger count, then the smaller code),
        ``growth`` (increase / previous count, NaN from 0), ``top_area``, ``area_count`` and
        ``area_share`` (of that type's cases that month), and ``top_type`` / ``top_type_count``,
        the most frequent type of the month for comparison. A month in which nothing rose has
        ``type`` missing.
    """
    missing = [c for c in (type_col, time_col, area_col) if c not in incidents.columns]
    if missing:
        raise KeyError(f"monthly_topics needs the columns {missing}")
    cols = ["type", "count", "prev_count", "increase", "growth", "top_area", "area_count", "area_share",
            "top_type", "top_type_count"]
    df = incidents[[type_col, time_col, area_col]].dropna(subset=[type_col, time_col])
    month = pd.to_datetime(df[time_col]).dt.to_period("M")
    if df.empty or month.nunique() < 2:  # no month has a previous month to compare with
        return pd.DataFrame(columns=cols, index=pd.Index([], dtype=object, name="month"))
    months = pd.period_range(month.min(), month.max(), freq="M")
    table = pd.crosstab(month, df[type_col]).reindex(months, fill_value=0)
    table = table.reindex(sorted(table.columns), axis=1)
    prev = table.shift(1, fill_value=0)
    inc = table - prev
    per_area = df.assign(_m=month).groupby(["_m", type_col, area_col], observed=True).size()
    rows = []
    for m in months[1:]:
        cnt, up = table.loc[m], inc.loc[m]
        order = pd.DataFrame({"up": up, "cnt": cnt}).sort_values(["up", "cnt"], ascending=[False, False],
                                                                  kind="stable")
        best = order.index[0]
        row: dict[str, Any] = {"month": m.strftime("%Y-%m"), "top_type": cnt.idxmax(),
                               "top_type_count": int(cnt.max())}
        if order.iloc[0]["up"] > 0:
            p = int(prev.loc[m, best])
            try:
                areas = per_area.loc[(m, best)]
            except KeyError:  # the type's cases that month have no area
                areas = pd.Series(dtype=np.int64)
            row.update({
                "type": best, "count": int(cnt[best]), "prev_count": p, "increase": int(up[best]),
                "growth": up[best] / p if p else np.nan,
            })
            if len(areas):
                row.update({"top_area": areas.idxmax(), "area_count": int(areas.max()),
                            "area_share": float(areas.max() / areas.sum())})
        rows.append(row)
    return pd.DataFrame(rows).set_index("month").reindex(columns=cols)
