"""One KPI, one number: the wall, the case board and ``gridpulse kpis`` agree on the small demo."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from dashboard import _incidents as inc
from dashboard import _kpis as wall
from dashboard._wall import _INC_COLS
from data.demo import DEMO_ANCHOR
from gridpulse.cli import main
from layers import analysis
from layers.store import open_store

NOW = pd.Timestamp(DEMO_ANCHOR).tz_localize(None) if pd.Timestamp(DEMO_ANCHOR).tzinfo else pd.Timestamp(DEMO_ANCHOR)


@pytest.fixture(scope="module")
def cases(demo_store: str) -> pd.DataFrame:
    with open_store(demo_store) as s:
        df = s.read("incidents", columns=list(dict.fromkeys([*inc.COLUMNS, *_INC_COLS])))
    return pd.DataFrame(df.drop(columns="geometry", errors="ignore"))


def test_wall_board_and_cli_give_the_same_kpis(demo_store: str, cases: pd.DataFrame, tmp_path: Path) -> None:
    since, until = inc.window_bounds("d90", NOW)  # the case board's default window
    assert (since, until) == analysis.kpi_window(NOW)  # ... is the wall's KPI window
    w = wall.wall_kpis(cases[_INC_COLS], None, now=NOW)
    flt = inc.IncidentFilter(start=since, end=until)  # what views/incidents.py builds
    board = inc.kpi_row(cases[flt.mask(cases)], now=NOW, since=since, until=until)
    out = tmp_path / "k.csv"
    assert main(["kpis", "--store", demo_store, "--by", "subdistrict", "--out", str(out), "--now", str(NOW),
                 "--from", str(since), "--to", str(until)]) == 0
    cli = pd.read_csv(out, encoding="utf-8-sig", dtype={"code": str})
    total = cli[["incidents", "accepted", "closed", "open", "due", "closed_on_time", "overdue_open"]].sum()

    assert board["open"] > 0 and board["closed"] > 0  # a real question, not an empty window
    assert w["open"] == board["open"] == total["open"]
    assert w["overdue"] == board["overdue_open"] == total["overdue_open"]
    assert board["incidents"] == total["incidents"]
    assert w["closure_rate"] == pytest.approx(board["closure_rate"]) == pytest.approx(
        total["closed"] / total["accepted"])
    assert w["on_time_rate"] == pytest.approx(board["on_time_rate"]) == pytest.approx(
        total["closed_on_time"] / total["due"])
    if len(cli) == 1:  # one sub-district: its row is the whole window, rate for rate
        assert cli.loc[0, "closure_rate"] == pytest.approx(board["closure_rate"], abs=1e-6)


def test_the_window_is_stated_on_the_wall_tiles() -> None:
    from dashboard._wall import kpi_html

    k = {"today": 1, "month": 2, "open": 3, "overdue": 0, "closure_rate": 0.5, "on_time_rate": 1.0,
         "on_patrol": 0, "kpi_days": analysis.KPI_WINDOW_DAYS}
    assert f"在办·近{analysis.KPI_WINDOW_DAYS}天" in kpi_html(k, "zh")
    assert "Closure rate · last 90 d" in kpi_html(k, "en")


def test_a_case_received_after_now_is_not_counted(cases: pd.DataFrame) -> None:
    later = cases.iloc[:1].copy()
    later["requested_datetime"] = NOW + pd.Timedelta(hours=1)
    later["stage"] = "handling"
    later["closed_datetime"] = pd.NaT
    both = pd.concat([cases, later], ignore_index=True)
    since, until = analysis.kpi_window(NOW)
    assert analysis.case_kpis(both, now=NOW, since=since, until=None) == analysis.case_kpis(
        cases, now=NOW, since=since, until=until)
