"""Hand-built tracks with known answers for geo.patrol.

The district is drawn in local metres (UTM 50N around Gulou, Nanjing) and converted to
longitude/latitude, so every distance below is exact:

    y=500 +-----------+-----------+
          |    G1     |    G2     |      G1 = 320106001001001 (community ...001)
          |           |           |      G2 = 320106001001002 (community ...002)
    y=0   +-----------+-----------+
         x=0        x=500       x=1000

Workers walk along y = 250 at 1 m/s with a fix every minute (60 m steps), so a boundary
crossing between x = 470 and x = 530 happens exactly half-way between two fixes.
"""

from __future__ import annotations

import geopandas as gpd
import h3.api.basic_int as h3i
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Transformer

import layers.i18n  # noqa: F401  (renders geo's keyed errors in the catalogue's English)
from geo.patrol import (
    HOUR_COLUMNS,
    INPUT_KEYS,
    REASONS,
    CleaningRules,
    CleanResult,
    PatrolInputError,
    clean_fixes,
    compliance_summary,
    coverage,
    on_patrol_now,
    post_coverage,
    rollup,
    time_in_grid,
)

UTM = 32650
_TO_LL = Transformer.from_crs(UTM, 4326, always_xy=True)
X0, Y0 = Transformer.from_crs(4326, UTM, always_xy=True).transform(118.78, 32.06)
G1, G2 = "320106001001001", "320106001001002"
C1, C2 = "320106001001", "320106001002"
SUB = "320106001"
DAY = "2024-05-06"
MIN = 1 / 60


def lonlat(x, y):
    return _TO_LL.transform(X0 + np.asarray(x, dtype=float), Y0 + np.asarray(y, dtype=float))


def local_poly(x0: float, y0: float, x1: float, y1: float) -> shapely.Geometry:
    """A rectangle in local metres, as a lon/lat polygon (edges densified every 10 m)."""
    ring = shapely.segmentize(shapely.box(x0, y0, x1, y1), 10.0)
    return shapely.transform(ring, lambda c: np.column_stack(lonlat(c[:, 0], c[:, 1])))


def make_grids() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"code": [G1, G2], "community_code": [C1, C2], "name": ["一网格", "二网格"]},
        geometry=[local_poly(0, 0, 500, 500), local_poly(500, 0, 1000, 500)], crs=4326,
    )


def make_workers(*rows: tuple[str, str, str]) -> pd.DataFrame:
    return pd.DataFrame(rows or [("w1", G1, "A")], columns=["id", "grid_code", "post"])


def make_fixes(rows: list[tuple]) -> gpd.GeoDataFrame:
    """Rows of ``(worker, time, x_m, y_m[, accuracy_m])``."""
    df = pd.DataFrame([r[:4] for r in rows], columns=["worker_id", "time", "x", "y"])
    lon, lat = lonlat(df["x"], df["y"])
    out = gpd.GeoDataFrame({"worker_id": df["worker_id"], "time": pd.to_datetime(df["time"])},
                           geometry=gpd.points_from_xy(lon, lat), crs=4326)
    if any(len(r) > 4 for r in rows):
        out["accuracy_m"] = [r[4] if len(r) > 4 else np.nan for r in rows]
    return out


def walk(worker: str, start: str, xs, y: float = 250.0, every_s: float = 60.0) -> list[tuple]:
    t0 = pd.Timestamp(start)
    return [(worker, t0 + pd.Timedelta(seconds=i * every_s), float(x), y) for i, x in enumerate(xs)]


def zigzag(worker: str, start: str, minutes: int, x0: float = 110.0, y: float = 250.0) -> list[tuple]:
    """Back and forth between x0 and x0 + 300 (60 m a minute), one fix a minute."""
    k = np.arange(minutes + 1) % 10
    xs = x0 + 60.0 * np.where(k <= 5, k, 10 - k)
    return walk(worker, start, xs, y)


# crossing from x=110 to 710 and back: inside (x < 500) from 0 to 6.5 and 13.5 to 20 min
CROSSING_XS = [110 + 60 * k for k in range(11)] + [650 - 60 * k for k in range(10)]


def one(df: pd.DataFrame, worker: str = "w1") -> pd.Series:
    return df.set_index("worker_id").loc[worker]


# ------------------------------------------------------------------ time in grid


def test_crossing_in_and_out_counts_half_of_each_crossing_interval() -> None:
    fixes = make_fixes(walk("w1", f"{DAY} 08:00", CROSSING_XS))
    r = one(time_in_grid(fixes, make_grids(), make_workers(), day=DAY))
    assert r.hours_in_grid == pytest.approx(13 * MIN)
    assert r.hours_tracked == pytest.approx(20 * MIN)
    assert r.distance_km == pytest.approx(1.2, abs=1e-6)
    assert r.first_fix == pd.Timestamp(f"{DAY} 08:00") and r.last_fix == pd.Timestamp(f"{DAY} 08:20")
    assert r.n_fixes == 21 and r.grid_code == G1 and r.post == "A"
    assert not r.meets_rule
    low = one(time_in_grid(fixes, make_grids(), make_workers(), day=DAY, min_hours=0.2))
    assert low.meets_rule


def test_the_same_track_in_the_other_grid_is_the_complement() -> None:
    fixes = make_fixes(walk("w1", f"{DAY} 08:00", CROSSING_XS))
    r = one(time_in_grid(fixes, make_grids(), make_workers(("w1", G2, "B")), day=DAY))
    assert r.hours_in_grid == pytest.approx(7 * MIN)


def test_gap_longer_than_the_cap_counts_only_the_cap() -> None:
    rows = walk("w1", f"{DAY} 08:00", [110, 170, 230, 290, 350, 410])
    rows += walk("w1", f"{DAY} 09:05", [410, 350, 290, 230, 170, 110])
    clean = clean_fixes(make_fixes(rows))
    assert (clean.fixes["stay_id"] == -1).all(), "a gap at one place is not a stay"
    assert clean.fixes["trip_id"].nunique() == 2
    r = one(time_in_grid(clean, make_grids(), make_workers(), day=DAY))
    # 5 min + the 60-min gap capped at 10 min + 5 min
    assert r.hours_in_grid == pytest.approx(20 * MIN)
    assert r.distance_km == pytest.approx(0.6)
    longer_cap = CleaningRules(max_gap_s=3600)
    r2 = one(time_in_grid(make_fixes(rows), make_grids(), make_workers(), day=DAY, rules=longer_cap))
    assert r2.hours_in_grid == pytest.approx(70 * MIN)


def test_gps_jump_to_the_other_side_of_the_district_and_back_is_dropped() -> None:
    clean_rows = walk("w1", f"{DAY} 08:00", CROSSING_XS)
    rows = list(clean_rows)
    rows[3] = ("w1", rows[3][1], -5000.0, 3000.0)
    res = clean_fixes(make_fixes(rows))
    assert res.summary.set_index("reason").loc["jump", "fixes"] == 1
    assert res.dropped["reason"].tolist() == ["jump"]
    assert res.dropped.index.tolist() == [3]
    r = one(time_in_grid(res, make_grids(), make_workers(), day=DAY))
    assert r.hours_in_grid == pytest.approx(13 * MIN)
    assert r.distance_km == pytest.approx(1.2, abs=1e-6)
    assert res.fixes["trip_id"].nunique() == 1


def test_multi_fix_excursion_and_cold_start_glitch_are_jumps() -> None:
    rows = walk("w1", f"{DAY} 08:00", CROSSING_XS)
    for i, (dx, dy) in zip((5, 6, 7), ((0, 0), (40, 10), (80, -10)), strict=True):
        rows[i] = ("w1", rows[i][1], 6000.0 + dx, 6000.0 + dy)
    rows.insert(0, ("w1", pd.Timestamp(f"{DAY} 07:59:30"), 9000.0, -4000.0))
    res = clean_fixes(make_fixes(rows))
    assert sorted(res.dropped.index) == [0, 6, 7, 8]
    assert set(res.dropped["reason"]) == {"jump"}
    assert len(res.fixes) == len(rows) - 4


def test_walking_and_ebike_speed_limits() -> None:
    xs = 20 + 55.6 * np.arange(60)  # 20 km/h, a fix every 10 s
    fixes = make_fixes(walk("w1", f"{DAY} 08:00", xs, every_s=10))
    ebike = clean_fixes(fixes)
    assert len(ebike.dropped) == 0 and ebike.trips.shape[0] == 1
    assert ebike.trips["distance_km"].iloc[0] == pytest.approx(55.6 * 59 / 1000)
    walking = clean_fixes(fixes, rules=CleaningRules.walking())
    assert walking.rules.max_speed_kmh == 7.0
    assert walking.summary.set_index("reason").loc["speed", "fixes"] == 58
    assert walking.fixes.index.tolist() == [0, 59]
    assert walking.trips.shape[0] == 2


def test_standing_still_with_drift_is_collapsed_to_one_place() -> None:
    rng = np.random.default_rng(7)
    n = 361  # 08:00 .. 09:00, every 10 s
    times = pd.date_range(f"{DAY} 08:00", periods=n, freq="10s")
    for cx, grid in ((250.0, G1), (497.0, G1)):  # in the middle; 3 m from the boundary
        xs = cx + rng.normal(0, 3, n)
        ys = 250 + rng.normal(0, 3, n)
        fixes = make_fixes([("w1", t, x, y) for t, x, y in zip(times, xs, ys, strict=True)])
        if cx == 497.0:
            assert (xs > 500).sum() > 20  # the raw fixes wander out of the grid
        res = clean_fixes(fixes)
        drift = res.summary.set_index("reason").loc["drift", "fixes"]
        assert drift > 0.9 * n
        assert (res.dropped["reason"] == "drift").sum() == drift
        kept_stays = res.fixes[res.fixes["stay_id"] >= 0]
        assert kept_stays.groupby("stay_id").size().eq(2).all()
        r = one(time_in_grid(res, make_grids(), make_workers(("w1", grid, "A")), day=DAY))
        assert r.hours_tracked == pytest.approx(1.0)
        assert r.hours_in_grid > 0.97
        assert r.distance_km < 0.05  # the raw jitter path is about 1.4 km


def test_track_across_midnight_is_split_at_the_day_boundary() -> None:
    fixes = make_fixes(zigzag("w1", f"{DAY} 23:30", 60))
    clean = clean_fixes(fixes)
    d1 = one(time_in_grid(clean, make_grids(), make_workers(), day=DAY))
    d2 = one(time_in_grid(clean, make_grids(), make_workers(), day="2024-05-07"))
    assert d1.hours_in_grid == pytest.approx(0.5) and d2.hours_in_grid == pytest.approx(0.5)
    assert d1.distance_km + d2.distance_km == pytest.approx(3.6)
    assert d1.last_fix == pd.Timestamp(f"{DAY} 23:59") and d1.n_fixes == 30
    assert d2.first_fix == pd.Timestamp("2024-05-07 00:00") and d2.n_fixes == 31


def test_gap_across_midnight_is_capped_and_split() -> None:
    rows = zigzag("w1", f"{DAY} 23:30", 28)  # last fix 23:58
    rows += zigzag("w1", "2024-05-07 00:30", 30)  # 00:30 .. 01:00
    clean = clean_fixes(make_fixes(rows))
    d1 = one(time_in_grid(clean, make_grids(), make_workers(), day=DAY))
    d2 = one(time_in_grid(clean, make_grids(), make_workers(), day="2024-05-07"))
    # 23:30-23:58, then 5 of the capped 10 minutes after 23:58 (2 before midnight, 3 after),
    # then 5 minutes before 00:30 and 00:30-01:00
    assert d1.hours_in_grid == pytest.approx(30 * MIN)
    assert d2.hours_in_grid == pytest.approx(38 * MIN)


def test_workers_without_fixes_or_grid_and_unknown_workers() -> None:
    fixes = make_fixes(walk("w1", f"{DAY} 08:00", CROSSING_XS) + walk("zz", f"{DAY} 08:00", [100, 160]))
    workers = make_workers(("w1", G1, "A"), ("w2", G1, "B"), ("w3", "320106009009009", "A"))
    out = time_in_grid(fixes, make_grids(), workers.set_index(pd.Index([10, 11, 12])), day=DAY)
    assert out.index.tolist() == [10, 11, 12]
    w2, w3 = out.loc[11], out.loc[12]
    assert w2.hours_in_grid == 0 and w2.n_fixes == 0 and pd.isna(w2.first_fix) and not w2.meets_rule
    assert np.isnan(w3.hours_in_grid) and not w3.meets_rule
    assert out.attrs["unknown_workers"] == 1


def test_a_day_without_fixes_gives_zeros() -> None:
    fixes = make_fixes(walk("w1", f"{DAY} 08:00", CROSSING_XS))
    r = one(time_in_grid(fixes, make_grids(), make_workers(), day="2024-05-09"))
    assert r.hours_in_grid == 0 and r.distance_km == 0 and r.n_fixes == 0


# ------------------------------------------------------------------ cleaning details


def test_invalid_inaccurate_and_duplicate_fixes_are_reported() -> None:
    rows = walk("w1", f"{DAY} 08:00", [110, 170, 230, 290])
    rows = [(*r, 5.0) for r in rows]
    rows.append(("w1", rows[1][1], 171.0, 250.0, 3.0))  # same time, more accurate: wins
    rows.append(("w1", pd.Timestamp(f"{DAY} 08:10"), 300.0, 250.0, 500.0))  # inaccurate
    rows.append((None, pd.Timestamp(f"{DAY} 08:11"), 300.0, 250.0, 5.0))  # no worker
    rows.append(("w1", pd.NaT, 300.0, 250.0, 5.0))  # no time
    fixes = make_fixes(rows)
    fixes.loc[len(fixes)] = ["w1", pd.Timestamp(f"{DAY} 08:12"), None, 5.0]  # no geometry
    fixes.loc[len(fixes)] = ["w1", pd.Timestamp(f"{DAY} 08:13"), shapely.Point(), 5.0]  # empty
    res = clean_fixes(fixes)
    reasons = res.dropped["reason"].to_dict()
    assert reasons == {1: "duplicate", 5: "inaccurate", 6: "invalid", 7: "invalid", 8: "invalid",
                       9: "invalid"}
    s = res.summary.set_index("reason")["fixes"]
    assert s.to_dict() == {"invalid": 4, "inaccurate": 1, "duplicate": 1, "jump": 0, "speed": 0,
                           "drift": 0, "kept": 4}
    assert res.summary["share"].sum() == pytest.approx(1.0)
    assert list(res.summary["reason"]) == [*REASONS, "kept"]
    assert res.fixes.index.tolist() == [0, 4, 2, 3]


def test_empty_inputs_give_empty_results() -> None:
    empty = make_fixes(walk("w1", f"{DAY} 08:00", [100])).iloc[:0]
    res = clean_fixes(empty)
    assert len(res.fixes) == 0 and len(res.trips) == 0 and res.summary["fixes"].sum() == 0
    r = one(time_in_grid(res, make_grids(), make_workers(), day=DAY))
    assert r.hours_in_grid == 0 and r.n_fixes == 0 and pd.isna(r.last_fix)
    assert post_coverage(empty, make_grids(), make_workers(), day=DAY)["covered_h"].sum() == 0
    cov = coverage(empty, make_grids(), make_buildings(), start=DAY, end="2024-05-07")
    assert cov.per_grid["buildings_visited"].sum() == 0 and cov.per_grid["cells"].min() > 0
    assert cov.cells["staleness_h"].isna().all() and len(cov.stale_buildings) == 6
    live = on_patrol_now(empty, now=f"{DAY} 09:00")
    assert len(live) == 0 and "minutes_ago" in live.columns


def test_cleaning_keeps_the_input_columns_and_sorts_by_worker_and_time() -> None:
    rows = zigzag("w2", f"{DAY} 08:00", 5) + zigzag("w1", f"{DAY} 09:00", 5)
    fixes = make_fixes(rows[::-1])
    fixes["fix_id"] = [f"f{i}" for i in range(len(fixes))]
    res = clean_fixes(fixes)
    out = res.fixes
    assert list(out["worker_id"]) == ["w1"] * 6 + ["w2"] * 6
    assert out["time"].is_monotonic_increasing is False
    assert (out.groupby("worker_id")["time"].apply(lambda s: s.is_monotonic_increasing)).all()
    assert {"fix_id", "trip_id", "stay_id", "x_m", "y_m"} <= set(out.columns)
    assert out.crs.to_epsg() == 4326 and res.crs.is_projected
    assert set(res.trips["worker_id"]) == {"w1", "w2"}
    assert res.trips["trip_id"].is_unique


def test_timezone_aware_times_become_local_and_projected_input_is_accepted() -> None:
    fixes = make_fixes(zigzag("w1", f"{DAY} 08:00", 30))
    aware = fixes.assign(time=fixes["time"].dt.tz_localize("Asia/Shanghai").dt.tz_convert("UTC"))
    projected = aware.to_crs(UTM)
    res = clean_fixes(projected)
    assert res.fixes["time"].iloc[0] == pd.Timestamp(f"{DAY} 08:00")
    assert res.fixes.crs.to_epsg() == 4326
    a = np.column_stack([res.fixes.geometry.x, res.fixes.geometry.y])
    b = np.column_stack([fixes.geometry.x, fixes.geometry.y])
    assert np.abs(a - b).max() < 1e-9
    r = one(time_in_grid(res, make_grids(), make_workers(), day=DAY))
    assert r.hours_in_grid == pytest.approx(0.5)


def test_gcj02_fixes_are_converted_to_wgs84() -> None:
    from geo.crs import wgs84_to_gcj02

    fixes = make_fixes(zigzag("w1", f"{DAY} 08:00", 30))
    glon, glat = wgs84_to_gcj02(fixes.geometry.x, fixes.geometry.y)
    gcj = fixes.set_geometry(gpd.points_from_xy(glon, glat), crs=4326)
    res = clean_fixes(gcj, datum="gcj02")
    assert np.abs(res.fixes.geometry.x.to_numpy() - fixes.geometry.x.to_numpy()).max() < 1e-7
    r = one(time_in_grid(res, make_grids(), make_workers(), day=DAY))
    assert r.hours_in_grid == pytest.approx(0.5)
    wrong = one(time_in_grid(gcj, make_grids(), make_workers(), day=DAY))
    assert wrong.hours_in_grid < 0.5  # unconverted, the track sits 500 m off


def test_cleaned_frames_are_used_as_they_are() -> None:
    rng = np.random.default_rng(3)
    times = pd.date_range(f"{DAY} 08:00", periods=361, freq="10s")
    fixes = make_fixes([("w1", t, 250 + x, 250 + y)
                        for t, x, y in zip(times, rng.normal(0, 3, 361), rng.normal(0, 3, 361), strict=True)])
    res = clean_fixes(fixes)
    again = one(time_in_grid(res.fixes, make_grids(), make_workers(), day=DAY))
    direct = one(time_in_grid(res, make_grids(), make_workers(), day=DAY))
    assert again.hours_in_grid == pytest.approx(direct.hours_in_grid)
    assert again.hours_in_grid > 0.97


# ------------------------------------------------------------------ A/B posts, wall display


def test_post_coverage_unions_a_and_b_workers_by_hour() -> None:
    rows = zigzag("w1", f"{DAY} 08:00", 120) + zigzag("w2", f"{DAY} 09:00", 180)
    rows += zigzag("w3", f"{DAY} 08:00", 60)  # a G2 worker walking in G1
    workers = make_workers(("w1", G1, "A"), ("w2", G1, "B"), ("w3", G2, "A"))
    out = post_coverage(make_fixes(rows), make_grids(), workers, day=DAY).set_index("grid_code")
    g1, g2 = out.loc[G1], out.loc[G2]
    assert g1.covered_h == pytest.approx(4.0)
    assert g1.a_h == pytest.approx(2.0) and g1.b_h == pytest.approx(3.0)
    assert g1.workers == 2 and g1.workers_seen == 2 and g1.hours_with_presence == 4
    assert [g1[c] for c in HOUR_COLUMNS[7:13]] == pytest.approx([0, 1, 1, 1, 1, 0])
    assert g2.covered_h == 0 and g2.workers == 1 and g2.workers_seen == 0


def test_on_patrol_now_and_compliance_summary() -> None:
    rows = zigzag("w1", f"{DAY} 08:00", 59) + zigzag("w2", f"{DAY} 08:00", 40, y=700)
    rows += zigzag("w3", f"{DAY} 09:05", 5)  # after "now"
    fixes = make_fixes(rows)
    workers = make_workers(("w1", G1, "A"), ("w2", G1, "B"), ("w3", G2, "A"))
    now = pd.Timestamp(f"{DAY} 09:00")
    live = on_patrol_now(fixes, now=now, within_min=10, grids=make_grids(), workers=workers)
    assert live["worker_id"].tolist() == ["w1"]
    assert live["minutes_ago"].iloc[0] == pytest.approx(1.0)
    assert bool(live["in_own_grid"].iloc[0]) and live["post"].iloc[0] == "A"
    assert on_patrol_now(fixes, now=now, within_min=30)["worker_id"].tolist() == ["w1", "w2"]
    per_worker = time_in_grid(fixes, make_grids(), workers, day=DAY, min_hours=0.9)
    total = compliance_summary(per_worker)
    assert total.iloc[0][["workers", "workers_meeting"]].tolist() == [3, 1]
    assert total["compliance_share"].iloc[0] == pytest.approx(1 / 3)
    by_grid = compliance_summary(per_worker, by="grid_code").set_index("grid_code")
    assert by_grid.loc[G1, "compliance_share"] == pytest.approx(0.5)
    assert by_grid.loc[G1, "mean_hours"] == pytest.approx(59 * MIN / 2)


# ------------------------------------------------------------------ coverage


def make_buildings() -> gpd.GeoDataFrame:
    geoms_m = [
        shapely.Point(250, 270),  # b1: 20 m from the path -> visited
        shapely.Point(250, 450),  # b2: far
        shapely.box(290, 275, 310, 300),  # b3: footprint 25 m from a fix -> visited
        shapely.box(280, 290, 320, 330),  # b4: 40 m away
        shapely.Point(700, 250),  # b5: in G2
        shapely.Point(250, 281),  # b6: 31 m from the path, 36.9 m from the nearest fix
    ]
    geoms = [shapely.transform(g, lambda c: np.column_stack(lonlat(c[:, 0], c[:, 1]))) for g in geoms_m]
    return gpd.GeoDataFrame({"id": [f"b{i}" for i in range(1, 7)],
                             "grid_code": [G1, G1, G1, G1, G2, G1]}, geometry=geoms, crs=4326)


def brute_force_visited_cells(fixes: gpd.GeoDataFrame, grid_geom, res: int, radius_m: float) -> set[int]:
    cells = {int(c) for c in h3i.geo_to_cells(grid_geom.__geo_interface__, res)}
    to_m = Transformer.from_crs(4326, UTM, always_xy=True)
    fx, fy = to_m.transform(fixes.geometry.x.to_numpy(), fixes.geometry.y.to_numpy())
    out = set()
    for c in cells:
        lat, lon = h3i.cell_to_latlng(c)
        cx, cy = to_m.transform(lon, lat)
        if np.hypot(fx - cx, fy - cy).min() <= radius_m:
            out.add(int(np.int64(np.uint64(c))))
    return out


def test_coverage_of_buildings_and_cells_with_known_answers() -> None:
    fixes = make_fixes(zigzag("w1", f"{DAY} 08:00", 60))
    grids = make_grids()
    res = coverage(fixes, grids, make_buildings(), start=DAY, end="2024-05-07", stale_days=1)
    b = res.buildings.set_index("id")
    assert b["visited"].to_dict() == {"b1": True, "b2": False, "b3": True, "b4": False,
                                      "b5": False, "b6": False}
    assert res.buildings.index.tolist() == list(range(6))
    per = res.per_grid.set_index("grid_code")
    assert per.loc[G1, ["buildings", "buildings_visited"]].tolist() == [5, 2]
    assert per.loc[G1, "building_share"] == pytest.approx(0.4)
    assert per.loc[G2, "building_share"] == 0 and per.loc[G1, "community_code"] == C1
    expected = brute_force_visited_cells(fixes, grids.geometry.iloc[0], 11, 30.0)
    cells = res.cells[res.cells["grid_code"] == G1]
    assert set(cells.loc[cells["visited"], "cell"]) == expected
    assert per.loc[G1, "cells"] == len(cells) and per.loc[G1, "cells_visited"] == len(expected)
    assert 0 < per.loc[G1, "area_share"] < 0.5 and per.loc[G2, "area_share"] == 0
    # last visit of b1: the last fix at x = 230 or 290 (28.3 m away)
    xs = 110 + 60 * np.where(np.arange(61) % 10 <= 5, np.arange(61) % 10, 10 - np.arange(61) % 10)
    last_b1 = pd.Timestamp(f"{DAY} 08:00") + pd.Timedelta(minutes=int(np.flatnonzero(np.isin(xs, (230, 290)))[-1]))
    assert b.loc["b1", "last_visit"] == last_b1
    assert b.loc["b1", "days_since_visit"] == pytest.approx((pd.Timestamp("2024-05-07") - last_b1) / pd.Timedelta(days=1))
    assert set(res.stale_buildings["id"]) == {"b2", "b4", "b5", "b6"}


def test_staleness_counts_from_the_window_end_and_visits_before_the_window_do_not_count() -> None:
    fixes = make_fixes(zigzag("w1", f"{DAY} 08:00", 60))
    res = coverage(fixes, make_grids(), make_buildings(), start="2024-05-07", end="2024-05-08", stale_days=2)
    assert not res.cells["visited"].any() and not res.buildings["visited"].any()
    seen = res.cells.dropna(subset=["staleness_h"])
    assert len(seen) > 0
    assert seen["staleness_h"].between(39.0, 40.0).all()  # last visits 08:00-09:00 on the 6th
    assert set(res.stale_buildings["id"]) == {"b2", "b4", "b5", "b6"}  # b1, b3 seen 1.6 days ago
    assert res.per_grid["buildings_stale"].sum() == 4


def test_polygon_buildings_count_a_fix_inside_the_footprint() -> None:
    big = local_poly(100, 100, 400, 400)  # 300 m footprint: its centre is 150 m from any wall
    buildings = gpd.GeoDataFrame({"id": ["big", "lost"]}, geometry=[big, None], crs=4326)
    fixes = make_fixes(walk("w1", f"{DAY} 08:00", [250, 252]))
    res = coverage(fixes, make_grids(), buildings, start=DAY, end="2024-05-07")
    assert res.buildings["visited"].tolist() == [True, False]
    assert res.buildings["grid_code"].iloc[0] == G1  # found from the footprint
    assert pd.isna(res.buildings["grid_code"].iloc[1])
    assert res.stale_buildings["id"].tolist() == ["lost"]


def test_rollup_to_communities_and_subdistricts() -> None:
    fixes = make_fixes(zigzag("w1", f"{DAY} 08:00", 60))
    res = coverage(fixes, make_grids(), make_buildings(), start=DAY, end="2024-05-07")
    communities = pd.DataFrame({"code": [C1, C2], "name": ["甲社区", "乙社区"], "subdistrict_code": [SUB, SUB]})
    subs = pd.DataFrame({"code": [SUB], "name": ["华侨路街道"], "district_code": ["320106"]})
    out = rollup(res.per_grid, make_grids(), communities, subdistricts=subs)
    assert out["level"].tolist() == ["community", "community", "subdistrict"]
    c1 = out.set_index("code").loc[C1]
    assert c1["name"] == "甲社区" and c1["parent_code"] == SUB and c1["grids"] == 1
    s = out.set_index("code").loc[SUB]
    assert s["name"] == "华侨路街道" and s["grids"] == 2 and s["parent_code"] == "320106"
    assert s["buildings"] == 6 and s["buildings_visited"] == 2
    assert s["building_share"] == pytest.approx(2 / 6)
    assert s["area_share"] == pytest.approx(s["cells_visited"] / s["cells"])
    workers = make_workers(("w1", G1, "A"), ("w2", G2, "B"))
    per_worker = time_in_grid(fixes, make_grids(), workers, day=DAY, min_hours=0.5)
    comp = rollup(compliance_summary(per_worker, by="grid_code"), make_grids(), communities)
    assert comp.set_index("code").loc[SUB, "compliance_share"] == pytest.approx(0.5)
    hours = rollup(post_coverage(fixes, make_grids(), workers, day=DAY), make_grids(), communities)
    assert hours.set_index("code").loc[SUB, "h08"] == pytest.approx(0.5)  # mean of 1.0 and 0.0


# ------------------------------------------------------------------ validation


def test_inputs_are_validated_up_front_with_every_problem() -> None:
    fixes = make_fixes(zigzag("w1", f"{DAY} 08:00", 5))
    with pytest.raises(PatrolInputError) as e:
        clean_fixes(pd.DataFrame({"worker": ["w1"]}))  # type: ignore[arg-type]
    keys = [k for k, _ in e.value.problems]
    assert keys == ["patrol.input.missing_column"] * 3
    assert isinstance(e.value, ValueError)
    with pytest.raises(PatrolInputError, match="no CRS"):
        clean_fixes(fixes.set_crs(None, allow_override=True))
    bad_grids = make_grids()
    bad_grids.loc[1, "geometry"] = shapely.Point(118.78, 32.06)
    bad_grids.loc[1, "code"] = G1
    with pytest.raises(PatrolInputError) as e:
        time_in_grid(fixes, bad_grids, make_workers(("w1", G1, "A"), ("w1", G2, "B")), day=DAY, min_hours=-1)
    keys = [k for k, _ in e.value.problems]
    assert keys == ["patrol.input.not_polygons", "patrol.input.duplicate_ids",
                    "patrol.input.duplicate_ids", "patrol.input.bad_option"]
    with pytest.raises(PatrolInputError, match="max_gap_s"):
        CleaningRules(max_gap_s=0)
    with pytest.raises(PatrolInputError, match="window start"):
        coverage(fixes, make_grids(), make_buildings(), start="2024-05-07", end=DAY)
    with pytest.raises(PatrolInputError, match="datum"):
        clean_fixes(fixes, datum="wgs")  # type: ignore[arg-type]
    with pytest.raises(PatrolInputError, match="day"):
        time_in_grid(fixes, make_grids(), make_workers(), day="not a day")


def test_input_messages_match_the_catalogue() -> None:
    from layers.i18n import catalogue

    cat = catalogue()
    for key in INPUT_KEYS:
        assert cat[key]["zh"] and cat[key]["en"], key
        assert f"{key}.fix" in cat, key
    err = PatrolInputError([("patrol.input.no_crs", {"layer": "fixes"})])
    assert str(err) == "fixes: the layer has no CRS" == cat["patrol.input.no_crs"]["en"].format(layer="fixes")
    for reason in (*REASONS, "kept"):
        assert f"patrol.reason.{reason}" in cat


def test_clean_result_is_frozen() -> None:
    res = clean_fixes(make_fixes(zigzag("w1", f"{DAY} 08:00", 5)))
    assert isinstance(res, CleanResult)
    with pytest.raises(AttributeError):
        res.fixes = res.fixes  # type: ignore[misc]
