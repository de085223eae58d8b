"""The Data page's preview pieces: the table as people read it, the map fitted with dots."""

from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from dashboard import _data as data
from dashboard.maps import MapConfig


def test_preview_table_has_chinese_headers_and_blanks_for_missing() -> None:
    df = gpd.GeoDataFrame(
        {"service_request_id": ["A1", "A2"], "address": ["宁海路1号", None],
         "level": pd.array([1, pd.NA], dtype="Int64"),
         "requested_datetime": pd.to_datetime(["2025-03-03 09:05", None]),
         "reworks": [0.0, np.nan]},
        geometry=[shapely.Point(118.78, 32.06), None], crs=4326)
    table = data.preview_table(df, "incidents", "zh")
    assert list(table.columns) == ["事件编号", "地址", "等级", "受理时间", "返工次数"]
    assert table.iloc[1].tolist() == ["A2", "", "", "", ""]
    assert table.iloc[0].tolist() == ["A1", "宁海路1号", "1", "2025-03-03 09:05", "0.0"]
    en = data.preview_table(df, "incidents", "en")
    assert "None" not in en.to_string() and "NaN" not in en.to_string()


def test_record_layers_offer_append_first() -> None:
    assert data.commit_modes("incidents") == ["append", "replace"]
    assert data.commit_modes("patrol_points") == ["append", "replace"]
    assert data.commit_modes("grids") == ["replace", "append"]


def test_preview_map_fits_the_points_and_draws_each_as_a_dot() -> None:
    xy = [(118.770, 32.060), (118.790, 32.075), (118.780, 32.068)]
    g = gpd.GeoDataFrame(geometry=shapely.points(xy), crs=4326)
    m = data.preview_map(g, MapConfig(basemap="none"), name="事件", label="要素数")
    html = m.get_root().render()
    assert html.count('"type": "Point"') == 3 and "new L.CircleMarker(latlng" in html
    x0, y0, x1, y1 = data.preview_bounds(g)
    assert (x0, y0, x1, y1) == (118.770, 32.060, 118.790, 32.075)
    fit = html.split(".fitBounds(", 1)[1].split(")", 1)[0]
    assert [float(v) for v in re.findall(r"-?\d+\.\d+", fit)] == [y0, x0, y1, x1]


def test_preview_of_one_point_opens_on_a_street_not_a_province() -> None:
    g = gpd.GeoDataFrame(geometry=[shapely.Point(118.78, 32.06)], crs=4326)
    x0, y0, x1, y1 = data.preview_bounds(g)
    assert 0.004 < x1 - x0 < 0.006 and 0.004 < y1 - y0 < 0.006
