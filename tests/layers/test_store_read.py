"""The GeoPackage read path for time windows (issue 14): index or rowid-range scan, same rows.

A ``between`` read on an indexed column either follows the index or scans the rowid range of
its matches (:data:`layers._gpkg.SCAN_FACTOR`); whichever it picks, the rows, their order
(``fid``) and the dtypes are those of filtering the whole layer. The fixes below are written
half in time order and half shuffled, so both paths are taken.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from layers import _gpkg
from layers._gpkg import GeoPackageStore, _read_frame

T0 = pd.Timestamp("2024-05-01 00:00:00")
N = 240


def fixes() -> gpd.GeoDataFrame:
    rng = np.random.default_rng(7)
    minutes = np.arange(N, dtype=np.int64) * 7  # one fix every 7 minutes: 28 hours in all
    order = np.concatenate([np.arange(N // 2), N // 2 + rng.permutation(N // 2)])
    t = T0 + pd.to_timedelta(minutes[order], unit="min")
    acc = rng.random(N) * 20
    acc[::11] = np.nan
    return gpd.GeoDataFrame({
        "fix_id": [f"F{i:04d}" for i in range(N)],
        "worker_id": np.where(np.arange(N) % 2 == 0, "W001", "W002"),
        "time": t,
        "accuracy_m": acc,
    }, geometry=shapely.points(118.77 + rng.random(N) * 0.01, 32.06 + rng.random(N) * 0.005), crs=4326)


@pytest.fixture(scope="module")
def gpkg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GeoPackageStore]:
    store = GeoPackageStore(tmp_path_factory.mktemp("read") / "store.gpkg")
    store.write({"patrol_points": fixes()})
    yield store
    store.close()


def _read(store: GeoPackageStore, factor: float, lo: pd.Timestamp | None, hi: pd.Timestamp | None):
    default = _gpkg.SCAN_FACTOR
    _gpkg.SCAN_FACTOR = factor
    try:
        return store.read("patrol_points", between={"time": (lo, hi)})
    finally:
        _gpkg.SCAN_FACTOR = default


@settings(max_examples=40, deadline=None)
@given(lo=st.one_of(st.none(), st.integers(-60, 28 * 60 + 60)),
       length=st.one_of(st.none(), st.integers(0, 30 * 60)))
def test_every_access_path_returns_the_rows_of_the_window_in_fid_order(gpkg, lo, length) -> None:
    start = None if lo is None else T0 + pd.Timedelta(minutes=lo)
    end = None if length is None else (start or T0) + pd.Timedelta(minutes=length)
    whole = gpkg.read("patrol_points")
    keep = pd.Series(True, index=whole.index)
    if start is not None:
        keep &= whole["time"] >= start
    if end is not None:
        keep &= whole["time"] < end
    expected = whole[keep].reset_index(drop=True)
    for factor in (0.0, math.inf, _gpkg.SCAN_FACTOR):
        got = _read(gpkg, factor, start, end).reset_index(drop=True)
        assert got["fix_id"].tolist() == expected["fix_id"].tolist()
        pd.testing.assert_frame_equal(got, expected)


def test_a_window_in_time_order_is_scanned_and_a_shuffled_one_follows_the_index(gpkg) -> None:
    conn = gpkg._connect()
    try:
        ordered = gpkg._range_access(conn, "patrol_points",
                                     {"time": (T0, T0 + pd.Timedelta(hours=2))})
        # the second half is shuffled over 14 hours: half an hour of it spans most of that half
        shuffled = gpkg._range_access(conn, "patrol_points",
                                      {"time": (T0 + pd.Timedelta(hours=15), T0 + pd.Timedelta(hours=15.5))})
        nothing = gpkg._range_access(conn, "patrol_points",
                                     {"time": (T0 - pd.Timedelta(days=2), T0 - pd.Timedelta(days=1))})
        unindexed = gpkg._range_access(conn, "patrol_points", {"accuracy_m": (0, 5)})
    finally:
        conn.close()
    assert ordered == (18, True, 1, 18)  # fixes 1..18 at 0, 7, ..., 119 minutes
    assert shuffled is not None and shuffled[0] == 4  # at 903, 910, 917 and 924 minutes
    assert shuffled[1] is False and shuffled[3] - shuffled[2] + 1 > _gpkg.SCAN_FACTOR * shuffled[0]
    assert nothing == (0, False, 0, 0)
    assert unindexed is None  # no index on accuracy_m: the planner decides, as before


def test_an_empty_window_has_the_dtypes_of_an_empty_query(gpkg) -> None:
    window = {"time": (T0 - pd.Timedelta(days=2), T0 - pd.Timedelta(days=1))}
    fast = gpkg.read("patrol_points", between=window)
    # a where clause keeps the query on GDAL's path: the reference for an empty result
    plain = gpkg.read("patrol_points", between=window, where={"worker_id": ["W001", "W002"]})
    assert len(fast) == 0 and isinstance(fast, gpd.GeoDataFrame) and fast.crs == plain.crs
    assert fast.dtypes.astype(str).to_dict() == plain.dtypes.astype(str).to_dict()


def test_read_frame_equals_pyogrio_for_naive_aware_and_missing_datetimes(tmp_path: Path) -> None:
    path = tmp_path / "dt.gpkg"
    df = gpd.GeoDataFrame({
        "name": ["甲", None, "丙"],
        "naive": pd.to_datetime(["2024-05-01 08:00:00", None, "2024-05-01 23:59:59.500"], format="ISO8601"),
        "aware": pd.to_datetime(["2024-05-01 08:00:00+08:00", "2024-05-02 01:00:00+08:00", None],
                                format="ISO8601"),
        "n": [1, 2, 3],
    }, geometry=[shapely.Point(118.77, 32.06), None, shapely.Point(118.78, 32.07)], crs=4326)
    pyogrio.write_dataframe(df, path, layer="t", driver="GPKG")
    theirs = pyogrio.read_dataframe(path, layer="t", use_arrow=True)
    mine = _read_frame(path, layer="t")
    assert list(mine.columns) == list(theirs.columns) and mine.crs == theirs.crs
    for col in ("naive", "aware"):
        assert mine[col].dtype.kind == "M"
        pd.testing.assert_series_equal(mine[col].astype(theirs[col].dtype), theirs[col])
    assert mine["naive"].iloc[2] == pd.Timestamp("2024-05-01 23:59:59.500")
    pd.testing.assert_frame_equal(mine.drop(columns=["naive", "aware"]),
                                  theirs.drop(columns=["naive", "aware"]))
    sql = _read_frame(path, sql="SELECT geom, name, naive FROM t WHERE n >= 2 ORDER BY fid")
    assert sql["name"].isna().tolist() == [True, False] and sql.geometry.isna().tolist() == [True, False]
