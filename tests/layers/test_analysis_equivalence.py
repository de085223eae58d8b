"""The same question, the same answer: ``gridpulse hotspots`` and :func:`layers.analysis.hotspots`."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from gridpulse.cli import main
from layers import analysis
from layers.store import open_store

T0 = pd.Timestamp("2025-01-06")  # a Monday; 12 weeks
HOT = (118.775, 32.055)
COLD = (118.785, 32.065)
BOX = shapely.box(118.77, 32.05, 118.79, 32.07)


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Cases at only two places (a busy market and a quiet corner), in a district of ~40 res-9 cells."""
    rng = np.random.default_rng(1)
    n_hot, n_cold = 120, 12
    lon = np.r_[HOT[0] + rng.normal(0, 0.0012, n_hot), np.full(n_cold, COLD[0])]
    lat = np.r_[HOT[1] + rng.normal(0, 0.0012, n_hot), np.full(n_cold, COLD[1])]
    n = lon.size
    # the market gets busier week by week
    week = np.r_[np.sort(rng.integers(0, 12, n_hot) ** 2 // 12), rng.integers(0, 12, n_cold)]
    req = T0 + pd.to_timedelta(week * 7 * 24 * 60 + rng.integers(0, 6 * 24 * 60, n), unit="min")
    inc = gpd.GeoDataFrame({
        "service_request_id": [f"SR{i:04d}" for i in range(n)], "status": "open",
        "requested_datetime": req, "updated_datetime": req, "expected_datetime": req + pd.Timedelta(hours=72),
        "category_code": "01", "item_code": "0101", "level": 1, "source": "patrol", "stage": "handling",
        "whistle": "none", "department": "urban_management", "grid_code": "320106001001001",
        "closed_datetime": pd.NaT, "reworks": 0, "extensions": 0,
    }, geometry=gpd.points_from_xy(lon, lat), crs=4326)
    subs = gpd.GeoDataFrame({"code": ["320106001"], "name": ["宁海路街道"], "district_code": ["320106"]},
                            geometry=[BOX], crs=4326)
    path = tmp_path_factory.mktemp("equiv") / "gridpulse.gpkg"
    with open_store(str(path)) as s:
        s.write({"subdistricts": subs, "incidents": inc})
    return path


def test_cli_file_and_function_give_the_same_classes(store_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "hot.gpkg"
    assert main(["hotspots", "--store", str(store_path), "--out", str(out),
                 "--from", "2025-01-06", "--to", "2025-03-30"]) == 0
    cli = pyogrio.read_dataframe(out, layer="hotspots").set_index("cell")
    with open_store(str(store_path)) as s:
        table, n_steps = analysis.hotspots(s, None, res=9, since=pd.Timestamp("2025-01-06"),
                                           until=pd.Timestamp("2025-03-31"))
    assert n_steps == 12 >= analysis.MIN_EHSA_STEPS
    cli.index = cli.index.astype(np.int64)
    assert sorted(cli.index) == sorted(table.index)
    cli = cli.loc[table.index]
    assert (cli["count"].to_numpy() == table["count"].to_numpy()).all()
    assert (cli["gi_bin"].to_numpy() == table["gi_bin"].to_numpy()).all()
    assert cli["ehsa"].tolist() == table["ehsa"].tolist()
    assert np.allclose(cli["z"].to_numpy(), table["z"].to_numpy())
    market = h3.str_to_int(h3.latlng_to_cell(HOT[1], HOT[0], 9))
    assert table.loc[market, "gi_bin"] == 3
    assert table["ehsa"].notna().all()  # 12 weekly steps: emerging hot spots ran for every cell


def test_cells_without_incidents_are_in_the_study_area(store_path: Path) -> None:
    district = {h3.str_to_int(c) for c in h3.geo_to_cells(BOX, 9)}
    assert len(district) > 20
    with open_store(str(store_path)) as s:
        area = set(analysis.study_area(s, 9).tolist())
        table, _ = analysis.hotspots(s, None, res=9)
    assert district <= area  # every district cell, not only the two with cases
    assert set(table.index) == area
    assert int(table["count"].sum()) == 132
    assert (table["count"] == 0).sum() > len(area) // 2  # empty cells are counted as zeros
    near = {h3.str_to_int(c) for c in h3.grid_disk(h3.latlng_to_cell(HOT[1], HOT[0], 9), 2)}
    assert (table.loc[sorted(area - near), "gi_bin"] <= 0).all()  # nothing hot away from the market


def test_a_short_window_has_no_emerging_classes_anywhere(store_path: Path) -> None:
    with open_store(str(store_path)) as s:
        table, n_steps = analysis.hotspots(s, None, res=9, since=pd.Timestamp("2025-03-01"),
                                           until=pd.Timestamp("2025-03-31"))
    assert n_steps == 4 < analysis.MIN_EHSA_STEPS
    assert table["ehsa"].isna().all() and (table["ehsa_category"] == 0).all()


def test_an_accounts_scope_narrows_the_cases_not_the_study_area(tmp_path: Path) -> None:
    from layers.permissions import Account

    west, east = shapely.box(118.77, 32.05, 118.78, 32.07), shapely.box(118.78, 32.05, 118.79, 32.07)
    grids = gpd.GeoDataFrame({"code": ["320106001001001", "320106001002001"], "name": ["西", "东"],
                              "kind": "comprehensive", "community_code": ["320106001001", "320106001002"],
                              "households": [10, 10], "population": [20, 20]},
                             geometry=[west, east], crs=4326)
    pts = [(118.775, 32.06)] * 3 + [(118.785, 32.06)] * 5
    req = pd.Timestamp("2025-01-06 09:00")
    inc = gpd.GeoDataFrame({
        "service_request_id": [f"S{i}" for i in range(8)], "status": "open", "requested_datetime": req,
        "updated_datetime": req, "expected_datetime": req + pd.Timedelta(hours=72), "category_code": "01",
        "item_code": "0101", "level": 1, "source": "patrol", "stage": "handling", "whistle": "none",
        "department": "urban_management", "grid_code": ["320106001001001"] * 3 + ["320106001002001"] * 5,
        "closed_datetime": pd.NaT, "reworks": 0, "extensions": 0,
    }, geometry=gpd.points_from_xy(*zip(*pts, strict=True)), crs=4326)
    path = tmp_path / "s.gpkg"
    with open_store(str(path)) as s:
        s.write({"grids": grids, "incidents": inc})
        everyone, _ = analysis.hotspots(s, None, res=9)
        west_only, _ = analysis.hotspots(s, Account("w", role="analyst", scope_code="320106001001"), res=9)
    assert int(everyone["count"].sum()) == 8
    assert int(west_only["count"].sum()) == 3
    assert west_only.index.equals(everyone.index)  # the same district study area
