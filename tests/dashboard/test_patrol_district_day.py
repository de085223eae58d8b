"""The patrol page's figures from one read of the district's day equal those of one read per sub-district.

:func:`dashboard._patrol._sub_day` now splits :func:`dashboard._patrol._district_day` (one
``between`` read of the day's fixes, cleaned once); before issue 14 it read and cleaned each
sub-district's workers' fixes separately. Cleaning, time in grid and post coverage are per
worker and per grid, so both must give the same tables: checked on the small demo district.
"""

from __future__ import annotations

import pandas as pd
import pytest

from geo import patrol
from layers.store import open_store


def _per_sub_reference(store, sub: str, day: pd.Timestamp, margin: pd.Timedelta):
    """The pre-issue-14 computation: read only this sub-district's workers' fixes."""
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
    kept = clean.fixes.groupby("worker_id").size().rename("fixes").reset_index().assign(reason="kept")
    dropped = clean.dropped.groupby(["worker_id", "reason"]).size().rename("fixes").reset_index()
    counts = pd.concat([dropped, kept], ignore_index=True)[["worker_id", "reason", "fixes"]]
    return per_worker, per_grid, counts


def _sorted(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return df.sort_values(keys).reset_index(drop=True)


@pytest.mark.filterwarnings("ignore")
def test_district_day_split_by_sub_district_equals_one_read_per_sub_district(env: str) -> None:
    from dashboard import _patrol, state

    with open_store(env) as store:
        last = store.read("patrol_points", columns=["time"], order_by="time", descending=True, limit=1)
        day = pd.Timestamp(last["time"].iloc[0]).normalize() - pd.Timedelta(days=1)
        subs = store.read("subdistricts", columns=["code"])["code"].tolist()
        url, version = state.settings().store_url, state.data_version()
        n_workers = 0
        for sub in subs:
            got = _patrol._sub_day(url, version, sub, day)
            per_worker, per_grid, counts = _per_sub_reference(store, sub, day, _patrol.MARGIN)
            pd.testing.assert_frame_equal(_sorted(got.per_worker.drop(columns="day"), ["worker_id"]),
                                          _sorted(per_worker, ["worker_id"]), check_dtype=False)
            pd.testing.assert_frame_equal(_sorted(got.per_grid.drop(columns="day"), ["grid_code"]),
                                          _sorted(per_grid, ["grid_code"]), check_dtype=False)
            pd.testing.assert_frame_equal(_sorted(got.dropped, ["worker_id", "reason"]),
                                          _sorted(counts, ["worker_id", "reason"]), check_dtype=False)
            n_workers += int((got.per_worker["n_fixes"] > 0).sum())
    assert len(subs) > 1 and n_workers > 0  # several sub-districts, real fixes compared
    empty = _patrol._sub_day(url, version, "no-such-sub", day)
    assert empty.per_worker.empty and list(empty.per_worker.columns) == list(got.per_worker.columns)
