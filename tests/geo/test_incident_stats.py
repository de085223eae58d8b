"""Chart aggregates and 每月一题 on small constructed tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geo.incident_stats import by_hour_of_week, by_month, counts_by, monthly_topics


def test_hour_of_week_has_all_168_buckets() -> None:
    t = pd.to_datetime(["2025-03-03 00:00", "2025-03-03 00:59", "2025-03-05 13:30", "2025-03-09 23:59", None])
    h = by_hour_of_week(t)
    assert len(h) == 168 and h["count"].sum() == 4
    assert h.loc[0, "count"] == 2  # Monday 0h
    assert h.loc[2 * 24 + 13].tolist() == [2, 13, 1]  # Wednesday 13h
    assert h.loc[167, "count"] == 1 and (h["weekday"].unique() == np.arange(7)).all()


def test_months_without_cases_are_zero() -> None:
    t = pd.to_datetime(["2025-01-31 23:00", "2025-03-01 00:00", "2025-03-15 00:00"])
    m = by_month(t)
    assert m["count"].to_dict() == {"2025-01": 1, "2025-02": 0, "2025-03": 2}
    assert by_month(t, start="2024-12-05", end="2025-04-01").index.tolist()[0] == "2024-12"
    assert by_month(pd.to_datetime([])).empty


def test_counts_by_category_and_source() -> None:
    s = pd.Series(["01", "01", "03", None, "99"], name="category_code")
    out = counts_by(s, categories=["01", "02", "03"])
    assert out.index.tolist() == ["01", "02", "03", "other"]
    assert out["count"].tolist() == [2, 0, 1, 1] and out["share"].sum() == pytest.approx(1.0)
    src = counts_by(pd.Series(["patrol", "hotline_12345", "patrol"], name="source"))
    assert src.index.tolist() == ["patrol", "hotline_12345"] and src.index.name == "source"


def test_monthly_topics_pick_the_biggest_rise_and_its_place() -> None:
    rows = []

    def add(month: str, item: str, grid: str, n: int) -> None:
        rows.extend({"requested_datetime": pd.Timestamp(f"{month}-10"), "item_code": item, "grid_code": grid}
                    for _ in range(n))

    # January: noise leads; February: noise steady, parking rises by 6, mostly in grid g2;
    # March: everything falls except bikes (+1); April: nothing rises
    add("2025-01", "0702", "g1", 10)
    add("2025-01", "0501", "g1", 2)
    add("2025-02", "0702", "g1", 10)
    add("2025-02", "0501", "g2", 6)
    add("2025-02", "0501", "g3", 2)
    add("2025-03", "0502", "g4", 1)
    out = monthly_topics(pd.DataFrame(rows))
    assert out.index.tolist() == ["2025-02", "2025-03"]
    feb = out.loc["2025-02"]
    assert (feb["type"], feb["count"], feb["prev_count"], feb["increase"]) == ("0501", 8, 2, 6)
    assert feb["growth"] == 3.0 and feb["top_area"] == "g2" and feb["area_share"] == 0.75
    assert feb["top_type"] == "0702"  # the most frequent is not the one that rose
    mar = out.loc["2025-03"]
    assert mar["type"] == "0502" and np.isnan(mar["growth"]) and mar["top_area"] == "g4"
    add("2025-04", "0502", "g4", 1)
    apr = monthly_topics(pd.DataFrame(rows)).loc["2025-04"]
    assert pd.isna(apr["type"]) and apr["top_type"] == "0502"


def test_monthly_topics_by_category_and_errors() -> None:
    df = pd.DataFrame({"requested_datetime": pd.to_datetime(["2025-01-05", "2025-02-05", "2025-02-06"]),
                       "category_code": ["01", "01", "01"], "grid_code": ["g", "g", "h"]})
    out = monthly_topics(df, type_col="category_code")
    assert out.loc["2025-02", "type"] == "01" and out.loc["2025-02", "area_share"] == 0.5
    with pytest.raises(KeyError, match="item_code"):
        monthly_topics(df)


def test_monthly_topics_of_a_single_month_or_nothing_is_an_empty_table() -> None:
    one = pd.DataFrame({"requested_datetime": pd.to_datetime(["2025-03-01", "2025-03-20"]),
                        "item_code": ["0501", "0702"], "grid_code": ["g", "h"]})
    for df in (one, one.iloc[:0]):
        out = monthly_topics(df)
        assert out.empty and out.index.name == "month"
        assert list(out.columns[:4]) == ["type", "count", "prev_count", "increase"]
