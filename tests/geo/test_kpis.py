"""KPIs of the closed loop on a small hand-checked table, grouping, and invariants."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.kpis import KPI_COLUMNS, code_prefix, kpis

T = pd.Timestamp("2025-03-03 09:00")
H = pd.Timedelta(hours=1)

#   case  dept      stage             requested  due      closed   reworks  extensions
CASES = [
    ("c1", "water", "closed", T, T + 48 * H, T + 10 * H, 0, 0),  # on time, 10 h
    ("c2", "water", "evaluated", T, T + 48 * H, T + 60 * H, 2, 1),  # late, 60 h, reworked, extended
    ("c3", "water", "handling", T, T + 48 * H, None, 1, 0),  # open, overdue at NOW, reworked
    ("c4", "water", "verifying", T, T + 500 * H, None, 0, 0),  # open, not due
    ("c5", "water", "closed_no_action", T, T + 48 * H, T + 1 * H, 0, 0),  # not counted as accepted
    ("c6", "housing", "closed", T, None, T + 20 * H, 0, 0),  # no due time: on time
    ("c7", None, "collected", T, T + 48 * H, None, 0, 0),  # not assigned yet
]
NOW = T + 100 * H


def table() -> pd.DataFrame:
    return pd.DataFrame(CASES, columns=["id", "department", "stage", "requested_datetime", "expected_datetime",
                                        "closed_datetime", "reworks", "extensions"])


def test_definitions_on_a_hand_checked_table() -> None:
    k = kpis(table(), by="department", now=NOW)
    w = k.loc["water"]
    assert (w["incidents"], w["no_action"], w["accepted"], w["closed"], w["open"]) == (5, 1, 4, 2, 2)
    assert (w["due"], w["closed_on_time"], w["overdue_open"]) == (3, 1, 1)
    assert w["closure_rate"] == 2 / 4
    assert w["on_time_rate"] == 1 / 3
    # reported back at least once: c1, c2 (closed), c3 (reworked), c4 (verifying) -> 2 reworked of 4
    assert w["rework_rate"] == 2 / 4
    assert w["extension_rate"] == 1 / 4
    assert w["median_hours"] == 35.0  # 10 h and 60 h
    assert w["p90_hours"] == pytest.approx(10 + 0.9 * 50)
    h = k.loc["housing"]
    assert (h["closure_rate"], h["on_time_rate"], h["median_hours"]) == (1.0, 1.0, 20.0)
    # unassigned cases form their own group; rates with an empty denominator are NaN
    na = k[k.index.isna()].iloc[0]
    assert na["accepted"] == 1 and na["closure_rate"] == 0 and na["on_time_rate"] == 0  # overdue, open
    assert np.isnan(na["median_hours"]) and np.isnan(na["rework_rate"])
    assert list(k.columns) == list(KPI_COLUMNS)


def test_overall_row_and_default_now() -> None:
    overall = kpis(table(), now=NOW)
    assert len(overall) == 1 and overall["incidents"].item() == 7
    # the default "now" is the latest time in the table (T + 60 h): c3 and c7 are overdue already
    assert kpis(table())["overdue_open"].item() == 2
    assert kpis(table(), now=T + 47 * H)["overdue_open"].item() == 0


def test_working_hours_can_replace_calendar_hours() -> None:
    k = kpis(table(), by="department", now=NOW, hours_between=lambda s, e: (e - s) / np.timedelta64(2, "h"))
    assert k.loc["housing", "median_hours"] == 10.0


def test_several_keys_and_code_prefixes() -> None:
    df = table().assign(grid_code=["110101001001001", "110101001001002", "110101001002001", "110101002001001",
                                   "110101002001001", "110101002001001", None])
    df["community_code"] = code_prefix(df["grid_code"], 12)
    df["subdistrict_code"] = code_prefix(df["grid_code"], 9)
    assert df["subdistrict_code"].tolist()[:4] == ["110101001", "110101001", "110101001", "110101002"]
    assert pd.isna(df["community_code"].iloc[6])
    k = kpis(df, by=["subdistrict_code", "community_code"], now=NOW)
    assert k.loc[("110101001", "110101001001"), "incidents"] == 2
    assert k["incidents"].sum() == 7


def test_missing_columns_are_named() -> None:
    with pytest.raises(KeyError, match="expected_datetime"):
        kpis(table().drop(columns="expected_datetime"))
    with pytest.raises(KeyError, match="grid_code"):
        kpis(table(), by="grid_code")


STAGES = ["collected", "whistled", "dispatched", "handling", "verifying", "closed", "evaluated", "closed_no_action"]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(STAGES), st.sampled_from(["a", "b", "c"]),
                          st.integers(0, 200), st.integers(0, 3), st.integers(0, 2)), min_size=1, max_size=40))
def test_group_rows_add_up_and_rates_are_proportions(rows) -> None:
    df = pd.DataFrame(rows, columns=["stage", "grid", "h", "reworks", "extensions"])
    df["requested_datetime"] = T
    df["expected_datetime"] = T + 48 * H
    done = df["stage"].isin(["closed", "evaluated", "closed_no_action"])
    df["closed_datetime"] = (T + pd.to_timedelta(df["h"], unit="h")).where(done)
    by = kpis(df, by="grid", now=NOW)
    total = kpis(df, now=NOW)
    counts = ["incidents", "no_action", "accepted", "closed", "open", "due", "closed_on_time", "overdue_open"]
    assert (by[counts].sum() == total[counts].iloc[0]).all()
    assert (by["accepted"] == by["closed"] + by["open"]).all()
    for c in ("closure_rate", "on_time_rate", "rework_rate", "extension_rate"):
        v = by[c].dropna()
        assert ((v >= 0) & (v <= 1)).all()
