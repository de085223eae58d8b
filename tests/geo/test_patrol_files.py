"""Fixes from real files (GPX from gpxpy, a GBK CSV and an XLSX with GCJ-02 coordinates),
read by layers.io and cleaned by geo.patrol: the same track gives the same hours."""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import gpxpy
import gpxpy.gpx
import numpy as np
import pandas as pd
import pytest

from geo.crs import wgs84_to_gcj02
from geo.patrol import clean_fixes, time_in_grid
from layers import io
from tests.geo.test_patrol import DAY, lonlat, make_grids, make_workers, zigzag

UTC = dt.UTC


def track() -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
    """Half an hour walking inside G1, one fix a minute, plus one GPS jump at 08:10:30."""
    rows = zigzag("w1", f"{DAY} 08:00", 30)
    times = pd.DatetimeIndex([r[1] for r in rows] + [pd.Timestamp(f"{DAY} 08:10:30")])
    lon, lat = lonlat([r[2] for r in rows] + [-5000.0], [r[3] for r in rows] + [3000.0])
    return times, lon, lat


def check(fixes: gpd.GeoDataFrame, **kw) -> None:
    res = clean_fixes(fixes, **kw)
    assert res.dropped["reason"].tolist() == ["jump"]
    assert res.fixes["time"].min() == pd.Timestamp(f"{DAY} 08:00")
    r = time_in_grid(res, make_grids(), make_workers(), day=DAY).iloc[0]
    assert r.hours_in_grid == pytest.approx(0.5)
    assert r.distance_km == pytest.approx(1.8, abs=1e-3)


def test_gpx_track_from_a_phone(tmp_path) -> None:
    times, lon, lat = track()
    gpx = gpxpy.gpx.GPX()
    trk = gpxpy.gpx.GPXTrack(name="w1")
    seg = gpxpy.gpx.GPXTrackSegment()
    for t, x, y in sorted(zip(times, lon, lat, strict=True)):
        utc = t.tz_localize("Asia/Shanghai").tz_convert("UTC").to_pydatetime()
        seg.points.append(gpxpy.gpx.GPXTrackPoint(y, x, time=utc))
    trk.segments.append(seg)
    gpx.tracks.append(trk)
    path = tmp_path / "w1.gpx"
    path.write_text(gpx.to_xml(), encoding="utf-8")
    read = io.read_file(path, layer="patrol_points").data
    fixes = gpd.GeoDataFrame(read.assign(worker_id=read["track"]), geometry="geometry")
    check(fixes)  # GPX times are UTC; the cleaned ones are Beijing time


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_spreadsheet_with_chinese_headers_and_gcj02_coordinates(tmp_path, suffix) -> None:
    times, lon, lat = track()
    glon, glat = wgs84_to_gcj02(lon, lat)
    table = pd.DataFrame({"人员编号": "w1", "定位时间": times.strftime("%Y-%m-%d %H:%M:%S"),
                          "经度": np.round(glon, 7), "纬度": np.round(glat, 7), "精度": 8.0})
    path = tmp_path / f"轨迹{suffix}"
    if suffix == ".csv":
        table.to_csv(path, index=False, encoding="gbk")
    else:
        table.to_excel(path, index=False)
    fixes = io.read_file(path, layer="patrol_points").data
    assert {"worker_id", "time", "accuracy_m"} <= set(fixes.columns)
    check(fixes, datum="gcj02")
