from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from geo.crs import (
    ProjectionRequiredError,
    convert_gdf,
    convert_lonlat,
    local_metric_crs,
    require_projected,
    to_metric,
)

# Reference pair published with the widely used GCJ-02 formula (Tiananmen area, WGS-84 -> GCJ-02).
WGS = (116.391349, 39.907375)


def test_gcj_offset_in_beijing_is_hundreds_of_metres_and_known() -> None:
    lon, lat = convert_lonlat([WGS[0]], [WGS[1]], src="wgs84", dst="gcj02")
    # the well-known offset near Tiananmen: about +0.00624 deg lon, +0.00140 deg lat
    assert lon[0] - WGS[0] == pytest.approx(0.006243, abs=2e-5)
    assert lat[0] - WGS[1] == pytest.approx(0.001400, abs=2e-5)


def test_outside_china_gcj_is_wgs() -> None:
    lon, lat = convert_lonlat([2.35], [48.85], src="wgs84", dst="gcj02")
    assert (lon[0], lat[0]) == (2.35, 48.85)


@given(
    st.floats(min_value=100, max_value=125), st.floats(min_value=20, max_value=45),
    st.sampled_from(["gcj02", "bd09"]),
)
def test_round_trip_is_centimetre_exact(lon: float, lat: float, datum: str) -> None:
    x, y = convert_lonlat([lon], [lat], src="wgs84", dst=datum)
    bx, by = convert_lonlat(x, y, src=datum, dst="wgs84")
    assert abs(bx[0] - lon) < 2e-7 and abs(by[0] - lat) < 2e-7


def test_convert_gdf_moves_every_vertex() -> None:
    poly = shapely.box(118.77, 32.05, 118.78, 32.06)
    gdf = gpd.GeoDataFrame({"a": [1]}, geometry=[poly], crs=4326)
    out = convert_gdf(gdf, src="gcj02", dst="wgs84")
    moved = shapely.get_coordinates(out.geometry) - shapely.get_coordinates(gdf.geometry)
    assert np.all(np.abs(moved) > 1e-4)
    assert gdf.geometry.iloc[0].equals(poly), "input must not be modified"


def test_metric_crs_is_the_local_utm_zone_and_distance_on_degrees_is_refused() -> None:
    gdf = gpd.GeoDataFrame(geometry=[shapely.Point(118.78, 32.06)], crs=4326)
    assert local_metric_crs(gdf).to_epsg() == 32650
    with pytest.raises(ProjectionRequiredError, match="project it first"):
        require_projected(gdf)
    require_projected(to_metric(gdf))


@settings(max_examples=15, deadline=None)
@given(lon=st.floats(-179.5, 179.5), lat=st.floats(-79.5, 83.5))
def test_metric_crs_is_the_zone_geopandas_estimates(lon: float, lat: float) -> None:
    # off the zone edges and the equator, where two zones hold the point equally
    assume(abs((lon + 180) % 6 - 3) < 2.99 and abs(lat) > 0.01)
    gdf = gpd.GeoDataFrame(geometry=[shapely.Point(lon, lat)], crs=4326)
    assert local_metric_crs(gdf) == gdf.estimate_utm_crs()


def test_metric_crs_needs_a_geometry() -> None:
    with pytest.raises(ValueError):
        local_metric_crs(gpd.GeoDataFrame(geometry=[], crs=4326))


def test_geo_input_errors_share_one_base_and_stay_value_errors() -> None:
    from geo._errors import GeoError
    from geo.hotspots import HexCellError
    from geo.network import NetworkError
    from geo.patrol import PatrolInputError

    for cls in (HexCellError, NetworkError, PatrolInputError, ProjectionRequiredError):
        assert issubclass(cls, GeoError) and issubclass(cls, ValueError), cls
    gdf = gpd.GeoDataFrame(geometry=[shapely.Point(118.78, 32.06)], crs=4326)
    with pytest.raises(GeoError, match="project it first"):
        require_projected(gdf)


def test_keyed_geo_errors_render_through_the_installed_catalogue() -> None:
    from geo import _errors
    from geo.patrol import PatrolInputError
    from layers.i18n import t

    err = PatrolInputError([("patrol.input.bad_window", {"start": "2024-05-07", "end": "2024-05-06"})])
    assert str(err) == t("patrol.input.bad_window", "en", start="2024-05-07", end="2024-05-06")
    saved = _errors._renderer
    try:
        _errors.set_renderer(None)  # geo alone: the key and its values, never a second copy of the text
        assert str(err) == "patrol.input.bad_window (start=2024-05-07, end=2024-05-06)"
    finally:
        _errors.set_renderer(saved)
