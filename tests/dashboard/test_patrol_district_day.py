"""The patrol page's figures, read from the patrol summary, equal the raw computation.

Before issue 14 the page read and cleaned a whole day of the district's fixes
(``_district_day``, ~0.5 GB cached on the full district). Now :func:`dashboard._patrol.compliance`
reads the summary kept at write time (:mod:`layers.summaries`). This checks, on the small demo
district and for every sub-district, that the page's tables are exactly what the pre-issue-14
computation gives from that sub-district's workers' raw fixes (one read per sub-district,
cleaned, :func:`geo.patrol.time_in_grid` and :func:`geo.patrol.post_coverage`).
"""

from __future__ import annotations

import pandas as pd
import pytest

from geo import patrol
from layers.store import open_store


def _per_sub_reference(store, sub: str, day: pd.Timestamp, margin: pd.Timedelta):
    """The raw computation: read only this sub-district's workers' fixes of the day's window."""
    from dashboard._patrol import RULES

    grids = store.read("grids")
    coms = store.read("communities", columns=["code", "subdistrict_code"])
    grids = grids[grids["community_code"].isin(coms.loc[coms["subdistrict_code"] == sub, "code"])]
    workers = store.read("workers", columns=["id", "grid_code", "post"])
    workers = workers[workers["grid_code"].isin(grids["code"])]
    fixes = store.read("patrol_points", columns=["worker_id", "time", "accuracy_m"],
                       where={"worker_id": workers["id"].tolist()},
                       between={"time": (day - margin, day + pd.Timedelta(days=1) + margin)})
    clean = patrol.clean_fixes(fixes, rules=RULES)
    per_worker = patrol.time_in_grid(clean, grids, workers, day=day)
    per_grid = patrol.post_coverage(clean, grids, workers, day=day)
    on_day = clean.fixes[(clean.fixes["time"] >= day) & (clean.fixes["time"] < day + pd.Timedelta(days=1))]
    kept = on_day.groupby("worker_id").size().rename("fixes").reset_index().assign(reason="kept")
    d = clean.dropped[(clean.dropped["time"] >= day) & (clean.dropped["time"] < day + pd.Timedelta(days=1))]
    dropped = d.groupby(["worker_id", "reason"]).size().rename("fixes").reset_index()
    counts = pd.concat([dropped, kept], ignore_index=True)[["worker_id", "reason", "fixes"]]
    return per_worker, per_grid, counts


def _sorted(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return df.sort_values(keys).reset_index(drop=True)


@pytest.mark.filterwarnings("ignore")
def test_page_figures_from_the_summary_equal_the_raw_computation_per_sub_district(env: str) -> None:
    from dashboard import _patrol, state

    with open_store(env) as store:
        last = store.read("patrol_points", columns=["time"], order_by="time", descending=True, limit=1)
        day = pd.Timestamp(last["time"].iloc[0]).normalize() - pd.Timedelta(days=1)
        subs = store.read("subdistricts", columns=["code"])["code"].tolist()
        url, version = state.settings().store_url, state.data_version()
        fig = _patrol._day_figures(url, version, day)
        coms = store.read("communities", columns=["code", "subdistrict_code"])
        grids = store.read("grids", columns=["code", "community_code"])
        n_workers = 0
        for sub in subs:
            codes = grids.loc[grids["community_code"].isin(
                coms.loc[coms["subdistrict_code"] == sub, "code"]), "code"]
            per_worker, per_grid, counts = _per_sub_reference(store, sub, day, _patrol.MARGIN)
            got_w = fig.per_worker[fig.per_worker["grid_code"].isin(codes)].drop(columns="day")
            got_g = fig.per_grid[fig.per_grid["grid_code"].isin(codes)].drop(columns="day")
            got_c = fig.cleaning[fig.cleaning["worker_id"].isin(per_worker["worker_id"])
                                 & (fig.cleaning["fixes"] > 0)].drop(columns="day")
            pd.testing.assert_frame_equal(_sorted(got_w, ["worker_id"]), _sorted(per_worker, ["worker_id"]),
                                          check_dtype=False)
            pd.testing.assert_frame_equal(_sorted(got_g, ["grid_code"]), _sorted(per_grid, ["grid_code"]),
                                          check_dtype=False)
            pd.testing.assert_frame_equal(_sorted(got_c, ["worker_id", "reason"]),
                                          _sorted(counts, ["worker_id", "reason"]), check_dtype=False)
            n_workers += int((per_worker["n_fixes"] > 0).sum())
    assert len(subs) > 1 and n_workers > 0  # several sub-districts, real fixes compared
