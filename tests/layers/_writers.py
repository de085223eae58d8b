"""A store writer run in its own process (``spawn``), for the kill-mid-write test."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd


def patrol_frame(n: int, *, first: int = 0) -> gpd.GeoDataFrame:
    """``n`` patrol fixes around Gulou (ids ``f<first>`` ...)."""
    rng = np.random.default_rng(first)
    ids = np.arange(first, first + n)
    return gpd.GeoDataFrame(
        {"fix_id": pd.Series([f"f{i}" for i in ids], dtype="str"),
         "worker_id": pd.Series(["W1"] * n, dtype="str"),
         "time": pd.Timestamp("2025-03-03 08:00") + pd.to_timedelta(ids, unit="s")},
        geometry=gpd.points_from_xy(118.77 + rng.random(n) * 0.02, 32.06 + rng.random(n) * 0.01),
        crs=4326)


def write_patrol(path: str, n: int, mode: str) -> None:
    """Write ``n`` fixes into the store at ``path`` (the test kills this process meanwhile)."""
    from layers.store import open_store

    with open_store(path) as store:
        store.write({"patrol_points": patrol_frame(n, first=10_000_000)}, mode=mode,
                    actor="killed")
