"""End to end: ``gridpulse patrols`` and ``gridpulse coverage`` on a tiny GeoPackage district.

Two grids side by side (G1 west, G2 east, 500 m squares), one worker per grid, one day of
fixes every minute along y = 250 m (see tests/geo/test_patrol.py for the drawing).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

from gridpulse.cli import main
from layers.store import open_store
from tests.geo.test_patrol import (
    C1,
    C2,
    CROSSING_XS,
    DAY,
    G1,
    G2,
    SUB,
    local_poly,
    lonlat,
    make_fixes,
    walk,
    zigzag,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def store_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("patrol") / "s.gpkg"
    district = gpd.GeoDataFrame({"code": ["320106"], "name": ["鼓楼区"]},
                                geometry=[local_poly(0, 0, 1000, 500)], crs=4326)
    subs = gpd.GeoDataFrame({"code": [SUB], "name": ["华侨路街道"], "district_code": ["320106"]},
                            geometry=[local_poly(0, 0, 1000, 500)], crs=4326)
    comms = gpd.GeoDataFrame({"code": [C1, C2], "name": ["甲社区", "乙社区"], "subdistrict_code": [SUB, SUB]},
                             geometry=[local_poly(0, 0, 500, 500), local_poly(500, 0, 1000, 500)], crs=4326)
    grids = gpd.GeoDataFrame(
        {"code": [G1, G2], "name": ["一网格", "二网格"], "kind": ["comprehensive"] * 2,
         "community_code": [C1, C2], "households": [400, 350], "population": [1000, 900]},
        geometry=[local_poly(0, 0, 500, 500), local_poly(500, 0, 1000, 500)], crs=4326)
    workers = pd.DataFrame({"id": ["w1", "w2"], "name": ["张三", "李四"], "role": ["full_time"] * 2,
                            "grid_code": [G1, G2], "post": ["A", "A"]})
    b_lon, b_lat = lonlat([250, 250, 700], [270, 450, 400])
    b_geom = gpd.points_from_xy(b_lon, b_lat)
    buildings = gpd.GeoDataFrame({"id": ["b1", "b2", "b3"], "households": [30, 30, 30],
                                  "population": [80, 80, 80], "grid_code": [G1, G1, G2]},
                                 geometry=b_geom, crs=4326)
    rows = walk("w1", f"{DAY} 08:00", CROSSING_XS)  # 13 of 20 minutes in G1
    rows += zigzag("w1", f"{DAY} 09:00", 240)  # 4 more hours in G1
    rows += zigzag("w2", f"{DAY} 23:30", 60)  # in G1, not its own grid, across midnight
    rows.append(("w1", pd.Timestamp(f"{DAY} 10:00:30"), -5000.0, 3000.0))  # a GPS jump
    rows += zigzag("w1", "2024-05-03 10:00", 30, y=450)  # earlier in the week, by b2
    fixes = make_fixes(rows)
    with open_store(str(path)) as store:
        store.write({"districts": district, "subdistricts": subs, "communities": comms, "grids": grids,
                     "workers": workers, "buildings": buildings, "patrol_points": fixes})
    return path


def test_patrols_writes_one_row_per_worker(store_path, tmp_path, capsys) -> None:
    out = tmp_path / "patrols.csv"
    code = main(["--lang", "en", "patrols", "--date", DAY, "--out", str(out), "--store", str(store_path)])
    assert code == 0
    text = capsys.readouterr().out
    assert "dropped 1" in text and "GPS jump" in text and "1 met 4 hours" in text
    df = pd.read_csv(out, dtype={"grid_code": str})
    assert list(df.columns[:8]) == ["worker_id", "grid_code", "post", "hours_in_grid", "meets_rule",
                                    "distance_km", "first_fix", "last_fix"]
    w1, w2 = df.set_index("worker_id").loc["w1"], df.set_index("worker_id").loc["w2"]
    assert w1.grid_code == G1 and bool(w1.meets_rule)
    # 13 min crossing, 5 + 5 min either side of the 40-min gap (capped at 10), 4 h zigzag
    assert w1.hours_in_grid == pytest.approx(4.0 + 23 / 60, abs=1e-3)
    assert w1.first_fix == f"{DAY} 08:00:00" and w1.last_fix == f"{DAY} 13:00:00"
    assert w2.hours_in_grid == 0 and not bool(w2.meets_rule)
    assert w2.hours_tracked == pytest.approx(0.5, abs=1e-3)  # 23:30 .. midnight


def test_patrols_next_day_counts_the_half_hour_after_midnight(store_path, tmp_path) -> None:
    out = tmp_path / "next.csv"
    assert main(["patrols", "--date", "2024-05-07", "--out", str(out), "--store", str(store_path),
                 "--min-hours", "0.4"]) == 0
    w2 = pd.read_csv(out).set_index("worker_id").loc["w2"]
    assert w2.hours_tracked == pytest.approx(0.5, abs=1e-3) and w2.first_fix == "2024-05-07 00:00:00"


def test_coverage_per_grid_and_rolled_up(store_path, tmp_path, capsys) -> None:
    out = tmp_path / "cov.csv"
    assert main(["--lang", "en", "coverage", "--from", DAY, "--to", DAY, "--out", str(out),
                 "--store", str(store_path), "--stale-days", "3"]) == 0
    assert "2 grids" in capsys.readouterr().out
    df = pd.read_csv(out, dtype={"grid_code": str, "community_code": str}).set_index("grid_code")
    assert df.loc[G1, "buildings"] == 2 and df.loc[G1, "buildings_visited"] == 1
    assert df.loc[G1, "building_share"] == 0.5 and df.loc[G2, "buildings_visited"] == 0
    assert df.loc[G1, "name"] == "一网格" and df.loc[G1, "community_code"] == C1
    assert 0 < df.loc[G1, "area_share"] < 1
    gpkg = tmp_path / "cov.gpkg"
    assert main(["coverage", "--from", DAY, "--to", "2024-05-07", "--out", str(gpkg),
                 "--store", str(store_path)]) == 0
    spatial = gpd.read_file(gpkg)
    assert spatial.geom_type.unique().tolist() == ["Polygon"] and len(spatial) == 2
    sub = tmp_path / "sub.csv"
    assert main(["coverage", "--from", DAY, "--to", DAY, "--out", str(sub), "--store", str(store_path),
                 "--level", "subdistrict"]) == 0
    s = pd.read_csv(sub, dtype={"code": str}).iloc[0]
    assert s["code"] == SUB and s["name"] == "华侨路街道" and s["buildings"] == 3
    assert s["buildings_visited"] == 1


def test_the_week_window_sees_at_least_as_much_as_the_day(store_path, tmp_path) -> None:
    day, week = tmp_path / "d.csv", tmp_path / "w.csv"
    main(["coverage", "--from", DAY, "--to", DAY, "--out", str(day), "--store", str(store_path)])
    main(["coverage", "--from", "2024-05-01", "--to", "2024-05-07", "--out", str(week), "--store", str(store_path)])
    d, w = pd.read_csv(day), pd.read_csv(week)
    assert (w["cells_visited"] >= d["cells_visited"]).all() and w["cells_visited"].sum() > d["cells_visited"].sum()


def test_bad_arguments_and_missing_layers(store_path, tmp_path, capsys) -> None:
    out = tmp_path / "x.csv"
    assert main(["--lang", "en", "patrols", "--date", "06/05/2024", "--out", str(out),
                 "--store", str(store_path)]) == 2
    assert "Cannot read the date" in capsys.readouterr().err
    assert main(["--lang", "en", "coverage", "--from", "2024-05-07", "--to", DAY, "--out", str(out),
                 "--store", str(store_path)]) == 2
    assert "window start" in capsys.readouterr().err
    assert main(["--lang", "en", "patrols", "--date", DAY, "--out", str(out), "--store",
                 str(store_path), "--max-gap-s", "0"]) == 2
    empty = tmp_path / "empty.gpkg"
    assert main(["--lang", "zh", "patrols", "--date", DAY, "--out", str(out), "--store", str(empty)]) == 1
    err = capsys.readouterr().err
    assert "没有图层 grids" in err and "修改方法" in err
    assert not out.exists()


def test_the_installed_command_runs_as_a_nightly_job(store_path, tmp_path) -> None:
    out = tmp_path / "nightly.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "gridpulse", "patrols", "--date", DAY, "--out", str(out),
         "--store", str(store_path)],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(pd.read_csv(out)) == 2
