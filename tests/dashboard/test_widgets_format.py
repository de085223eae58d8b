"""The number formats of the pages: a value, or a dash for what is missing."""

from __future__ import annotations

import pandas as pd

from dashboard.widgets import fmt_hours, fmt_int, fmt_pct


def test_formats_and_missing_values() -> None:
    assert fmt_pct(0.875) == "87.5%" and fmt_pct("0.5") == "50.0%" and fmt_pct(1) == "100.0%"
    assert fmt_hours(12.46) == "12.5" and fmt_hours(1234.0) == "1,234.0"
    assert fmt_int(12345.4) == "12,345"
    for missing in (None, float("nan"), float("inf"), "abc", pd.NA):
        assert fmt_pct(missing) == "—" and fmt_hours(missing) == "—"
    assert fmt_int(None) == fmt_int(float("nan")) == fmt_int(pd.NA) == "—"
