"""``gridpulse hotspots`` and ``gridpulse kpis`` end to end on a real GeoPackage store."""

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
from layers.store import open_store

T0 = pd.Timestamp("2025-01-06")  # a Monday; 12 weeks of data
HOT = (118.775, 32.055)


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    n = 1500
    lon = 118.77 + rng.random(n) * 0.02
    lat = 32.05 + rng.random(n) * 0.02
    hot = rng.random(n) < 0.3  # a market where rubbish piles up
    lon[hot] = HOT[0] + rng.normal(0, 0.0006, hot.sum())
    lat[hot] = HOT[1] + rng.normal(0, 0.0006, hot.sum())
    req = T0 + pd.to_timedelta(rng.integers(0, 84 * 24 * 60, n), unit="min")
    stage = rng.choice(["collected", "handling", "closed", "evaluated", "closed_no_action"], n)
    done = np.isin(stage, ["closed", "evaluated"])
    inc = gpd.GeoDataFrame({
        "service_request_id": [f"SR{i:05d}" for i in range(n)],
        "status": np.where(done | (stage == "closed_no_action"), "closed", "open"),
        "requested_datetime": req, "updated_datetime": req, "expected_datetime": req + pd.Timedelta(hours=72),
        "category_code": np.where(hot, "01", "05"), "item_code": np.where(hot, "0101", "0501"),
        "level": 1, "source": "patrol", "stage": stage, "whistle": "none",
        "department": np.where(hot, "urban_management", "public_security"),
        "grid_code": np.where(lon < 118.78, "320106001001001", "320106001002001"),
        "closed_datetime": pd.Series(req + pd.Timedelta(hours=30)).where(done).to_numpy(),
        "reworks": 0, "extensions": (rng.random(n) < 0.1).astype(int),
    }, geometry=gpd.points_from_xy(lon, lat), crs=4326)
    west, east = shapely.box(118.77, 32.05, 118.78, 32.07), shapely.box(118.78, 32.05, 118.79, 32.07)
    subs = gpd.GeoDataFrame({"code": ["320106001"], "name": ["宁海路街道"], "district_code": ["320106"]},
                            geometry=[west.union(east)], crs=4326)
    comms = gpd.GeoDataFrame({"code": ["320106001001", "320106001002"], "name": ["西社区", "东社区"],
                              "subdistrict_code": ["320106001"] * 2}, geometry=[west, east], crs=4326)
    grids = gpd.GeoDataFrame({"code": ["320106001001001", "320106001002001"], "name": ["西一网格", "东一网格"],
                              "kind": ["comprehensive"] * 2, "community_code": ["320106001001", "320106001002"],
                              "households": [400, 380], "population": [1000, 900]},
                             geometry=[west, east], crs=4326)
    path = tmp_path_factory.mktemp("store") / "gridpulse.gpkg"
    with open_store(str(path)) as s:
        s.write({"subdistricts": subs, "communities": comms, "grids": grids, "incidents": inc})
    return path


def test_hotspots_geojson_has_every_column_and_finds_the_market(store_path: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "hot.geojson"
    assert main(["--lang", "en", "hotspots", "--store", str(store_path), "--out", str(out),
                 "--from", "2025-01-06", "--to", "2025-03-30"]) == 0
    assert "Wrote" in capsys.readouterr().err
    g = pyogrio.read_dataframe(out)
    assert {"h3", "count", "z", "p", "gi_bin", "ehsa", "ehsa_category", "ehsa_label", "trend_z", "trend_p"} <= set(g)
    assert "cell" not in g  # 64-bit ids do not survive JSON numbers
    assert g["count"].sum() == 1500
    market = h3.latlng_to_cell(HOT[1], HOT[0], 9)
    row = g.set_index("h3").loc[market]
    assert row["gi_bin"] == 3 and row["ehsa"] in ("persistent_hot", "intensifying_hot", "diminishing_hot")
    assert row["ehsa_label"].endswith("hot spot")
    assert set(g["gi_bin"]) <= {-3, -2, -1, 0, 1, 2, 3}


def test_a_category_filter_keeps_the_study_area(store_path: Path, tmp_path: Path) -> None:
    out_all, out_01, out_05 = tmp_path / "all.gpkg", tmp_path / "c01.gpkg", tmp_path / "i0501.gpkg"
    assert main(["hotspots", "--store", str(store_path), "--out", str(out_all)]) == 0
    assert main(["hotspots", "--store", str(store_path), "--out", str(out_01), "--category", "01"]) == 0
    assert main(["hotspots", "--store", str(store_path), "--out", str(out_05), "--category", "0501"]) == 0
    a, c, i = (pyogrio.read_dataframe(p, layer="hotspots") for p in (out_all, out_01, out_05))
    assert a["h3"].tolist() == c["h3"].tolist() == i["h3"].tolist()
    assert (a["cell"].map(lambda x: h3.int_to_str(int(x))) == a["h3"]).all()
    assert (c["count"] + i["count"] == a["count"]).all()
    assert (c["count"] == 0).any()  # cells with incidents of other kinds count as zeros
    market = h3.latlng_to_cell(HOT[1], HOT[0], 9)
    assert c.set_index("h3").loc[market, "gi_bin"] == 3
    assert i.set_index("h3").loc[market, "gi_bin"] <= 0  # the market is not a parking hot spot


def test_a_short_period_skips_emerging_hot_spots(store_path: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "short.gpkg"
    assert main(["hotspots", "--store", str(store_path), "--out", str(out), "--from", "2025-03-01",
                 "--to", "2025-03-31"]) == 0
    assert "时空热点趋势" in capsys.readouterr().err
    g = pyogrio.read_dataframe(out)
    assert g["ehsa"].isna().all() and g["count"].sum() > 0


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (["--out", "x.shp"], "Unsupported output format"),
        (["--out", "x.gpkg", "--category", "99"], "Unknown whistle-list code"),
        (["--out", "x.gpkg", "--res", "12"], "not stored at ingest"),
        (["--out", "x.gpkg", "--from", "2030-01-01"], "No incidents"),
        (["--out", "x.gpkg", "--from", "yesterday-ish"], "Unreadable date"),
        (["--out", "x.gpkg", "--from", "2025-03-02", "--to", "2025-03-01"], "empty"),
    ],
)
def test_hotspot_errors_say_what_to_do(store_path: Path, tmp_path: Path, capsys, argv, text) -> None:
    argv = [a if a != "x.gpkg" and a != "x.shp" else str(tmp_path / a) for a in argv]
    assert main(["--lang", "en", "hotspots", "--store", str(store_path), *argv]) == 2
    assert text in capsys.readouterr().err


@pytest.mark.parametrize(("by", "codes"), [
    ("grid", {"320106001001001": "西一网格", "320106001002001": "东一网格"}),
    ("community", {"320106001001": "西社区", "320106001002": "东社区"}),
    ("subdistrict", {"320106001": "宁海路街道"}),
    ("department", {"public_security": "公安", "urban_management": "城管"}),
])
def test_kpis_csv_by_each_grouping(store_path: Path, tmp_path: Path, by: str, codes: dict) -> None:
    out = tmp_path / f"kpis_{by}.csv"
    assert main(["kpis", "--store", str(store_path), "--by", by, "--out", str(out), "--now", "2025-04-01"]) == 0
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads the Chinese names
    df = pd.read_csv(out, encoding="utf-8-sig", dtype={"code": str})
    assert dict(zip(df["code"], df["name"], strict=True)) == codes
    assert df["incidents"].sum() == 1500
    assert ((df["closure_rate"] >= 0) & (df["closure_rate"] <= 1)).all()
    assert (df["median_hours"] == 30).all()


def test_kpis_refuse_other_formats(store_path: Path, tmp_path: Path, capsys) -> None:
    assert main(["--lang", "en", "kpis", "--store", str(store_path), "--out", str(tmp_path / "k.xlsx")]) == 2
    assert ".csv" in capsys.readouterr().err
