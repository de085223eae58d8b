"""The hotspot page and ``gridpulse hotspots`` give the same classes per cell on the small demo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio

from dashboard import _hotspots as hot
from dashboard import _incidents as inc
from data.demo import DEMO_ANCHOR
from gridpulse.cli import main
from layers import analysis

NOW = pd.Timestamp(DEMO_ANCHOR).tz_localize(None) if pd.Timestamp(DEMO_ANCHOR).tzinfo else pd.Timestamp(DEMO_ANCHOR)


def test_page_and_cli_agree_cell_by_cell(env: str, tmp_path: Path) -> None:
    since, until = inc.window_bounds("d90", NOW)
    flt = inc.IncidentFilter(start=since, end=until)
    gi = hot.gi_table(9, flt)  # what the page draws in "gi" mode
    out = hot.emerging_table(9, flt, now=NOW)  # ... and in "emerging" mode
    assert out is not None  # 90 days = 12 weekly steps >= the one minimum
    emerging, starts = out
    assert len(starts) >= analysis.MIN_EHSA_STEPS

    path = tmp_path / "hot.gpkg"
    end = until.ceil("D")  # the page's weekly bins end at the end of the window's last day
    assert main(["hotspots", "--store", env, "--out", str(path), "--res", "9",
                 "--from", str(since), "--to", str(end)]) == 0
    cli = pyogrio.read_dataframe(path, layer="hotspots")
    cli.index = pd.Index(cli["cell"].astype(np.int64), name="cell")

    assert set(cli.index) == set(gi.index) == set(hot.domain_cells(9))  # one study area
    cli = cli.loc[gi.index]
    assert (cli["gi_bin"].to_numpy() == gi["gi_bin"].to_numpy()).all()
    assert (gi["gi_bin"] != 0).any()  # something to agree on
    assert cli.loc[emerging.index, "ehsa"].tolist() == emerging["pattern"].tolist()
