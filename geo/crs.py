"""Datums and projections: GCJ-02 / BD-09 <-> WGS-84, and local metric CRSs.

Chinese web maps publish coordinates in GCJ-02 (AMap, Tencent) or BD-09 (Baidu).
GridPulse stores WGS-84 (EPSG:4326) and converts at the edges. The forward GCJ-02
transform is the widely published obfuscation formula; the inverse is solved by
fixed-point iteration to better than 1e-7 degrees (about 1 cm). The PyPI packages
that do this (``eviltransform``, ``coord-convert``) work on one point at a time and
are unmaintained, so this module keeps a vectorised NumPy version.

Outside mainland China GCJ-02 equals WGS-84 (the offset is only applied inside).

Examples
--------
>>> lon, lat = wgs84_to_gcj02(118.7784, 32.0663)
>>> round(float(lon - 118.7784) * 1e5) != 0
True
>>> back = gcj02_to_wgs84(lon, lat)
>>> abs(float(back[0]) - 118.7784) < 1e-7 and abs(float(back[1]) - 32.0663) < 1e-7
True
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from pyproj import CRS
from pyproj.database import query_utm_crs_info

from geo._errors import GeoError

Datum = Literal["wgs84", "gcj02", "bd09"]
DATUMS: tuple[str, ...] = ("wgs84", "gcj02", "bd09")

_A = 6378245.0  # Krasovsky 1940 semi-major axis used by GCJ-02
_EE = 0.00669342162296594323
_X_PI = np.pi * 3000.0 / 180.0


class ProjectionRequiredError(GeoError):
    """Distance work was asked of a geographic CRS; project to a metric CRS first."""


def in_china(lon: ArrayLike, lat: ArrayLike) -> NDArray[np.bool_]:
    """Rough mainland-China box inside which GCJ-02 applies its offset."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    return (lon > 72.004) & (lon < 137.8347) & (lat > 0.8293) & (lat < 55.8271)


def _delta(lon: NDArray[np.float64], lat: NDArray[np.float64]) -> tuple[NDArray, NDArray]:
    x = lon - 105.0
    y = lat - 35.0
    sq = np.sqrt(np.abs(x))
    dlat = (
        -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sq
        + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
        + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
        + (160.0 * np.sin(y / 12.0 * np.pi) + 320 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    )
    dlon = (
        300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sq
        + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
        + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
        + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    )
    radlat = lat / 180.0 * np.pi
    magic = 1 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * np.pi)
    inside = in_china(lon, lat)
    return np.where(inside, dlon, 0.0), np.where(inside, dlat, 0.0)


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray, NDArray]:
    """WGS-84 longitude/latitude (degrees) to GCJ-02."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    dlon, dlat = _delta(lon, lat)
    return lon + dlon, lat + dlat


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike, *, tol_deg: float = 1e-9) -> tuple[NDArray, NDArray]:
    """GCJ-02 longitude/latitude to WGS-84, by fixed-point iteration (error < ``tol_deg``)."""
    glon = np.asarray(lon, dtype=float)
    glat = np.asarray(lat, dtype=float)
    wlon, wlat = glon.copy(), glat.copy()
    for _ in range(30):
        flon, flat = wgs84_to_gcj02(wlon, wlat)
        elon, elat = flon - glon, flat - glat
        wlon = wlon - elon
        wlat = wlat - elat
        if np.all(np.abs(elon) < tol_deg) and np.all(np.abs(elat) < tol_deg):
            break
    return wlon, wlat


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray, NDArray]:
    """GCJ-02 to Baidu BD-09."""
    x = np.asarray(lon, dtype=float)
    y = np.asarray(lat, dtype=float)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray, NDArray]:
    """Baidu BD-09 to GCJ-02: the published approximate inverse, refined by iteration."""
    blon = np.asarray(lon, dtype=float)
    blat = np.asarray(lat, dtype=float)
    x = blon - 0.0065
    y = blat - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    glon, glat = z * np.cos(theta), z * np.sin(theta)
    for _ in range(10):
        flon, flat = gcj02_to_bd09(glon, glat)
        glon, glat = glon - (flon - blon), glat - (flat - blat)
    return glon, glat


def convert_lonlat(
    lon: ArrayLike, lat: ArrayLike, *, src: Datum, dst: Datum
) -> tuple[NDArray, NDArray]:
    """Convert longitude/latitude arrays between ``wgs84``, ``gcj02`` and ``bd09``."""
    for d in (src, dst):
        if d not in DATUMS:
            raise ValueError(f"unknown datum {d!r}; use one of {', '.join(DATUMS)}")
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    if src == dst:
        return lon.copy(), lat.copy()
    # go through GCJ-02
    if src == "wgs84":
        glon, glat = wgs84_to_gcj02(lon, lat)
    elif src == "bd09":
        glon, glat = bd09_to_gcj02(lon, lat)
    else:
        glon, glat = lon, lat
    if dst == "gcj02":
        return glon, glat
    if dst == "bd09":
        return gcj02_to_bd09(glon, glat)
    return gcj02_to_wgs84(glon, glat)


def convert_geometries(geoms: ArrayLike, *, src: Datum, dst: Datum) -> NDArray[np.object_]:
    """Convert every vertex of shapely geometries between datums (lon/lat order)."""

    def _tx(coords: NDArray) -> NDArray:
        x, y = convert_lonlat(coords[:, 0], coords[:, 1], src=src, dst=dst)
        return np.column_stack([x, y])

    return shapely.transform(np.asarray(geoms, dtype=object), _tx)


def convert_gdf(gdf: gpd.GeoDataFrame, *, src: Datum, dst: Datum) -> gpd.GeoDataFrame:
    """Return a copy of ``gdf`` (EPSG:4326 longitude/latitude) converted between datums."""
    if gdf.crs is not None and not CRS.from_user_input(gdf.crs).is_geographic:
        raise ValueError("datum conversion needs longitude/latitude (EPSG:4326) input")
    out = gdf.copy()
    out.geometry.values[:] = convert_geometries(out.geometry.values, src=src, dst=dst)
    return out


@lru_cache(maxsize=1)
def _utm_zones() -> tuple[tuple[int, float, float, float, float], ...]:
    """The WGS-84 UTM zones of pyproj's EPSG database: ``(epsg, west, south, east, north)``.

    Read once: :meth:`geopandas.GeoDataFrame.estimate_utm_crs` asks the database on every
    call (about 100 ms), which is too slow for callers that project on every page render.
    """
    zones = []
    for info in query_utm_crs_info(datum_name="WGS 84"):
        aou = info.area_of_use
        if aou is not None:
            zones.append((int(info.code), aou.west, aou.south, aou.east, aou.north))
    return tuple(zones)


def local_metric_crs(gdf: gpd.GeoDataFrame | gpd.GeoSeries) -> CRS:
    """The UTM zone (WGS-84) containing the centre of ``gdf``'s bounds: metres, little distortion.

    The zone is the one :meth:`geopandas.GeoDataFrame.estimate_utm_crs` picks (the first UTM
    CRS of pyproj's database whose area of use holds the centre), looked up in a cached copy
    of that database list. Beyond the UTM latitudes (84°N, 80°S) the zone of the longitude
    band is used.
    """
    if gdf.crs is None:
        raise ValueError("the layer has no CRS; set it (usually EPSG:4326) before projecting")
    bounds = gdf.to_crs(4326).total_bounds
    lon = (bounds[0] + bounds[2]) / 2
    lat = (bounds[1] + bounds[3]) / 2
    if not (np.isfinite(lon) and np.isfinite(lat)):
        raise ValueError("the layer has no geometry to place in a UTM zone")
    hemisphere = [z for z in _utm_zones() if (z[0] // 100 == 326) == (lat >= 0)]
    for strict in (True, False):
        for epsg, west, south, east, north in hemisphere:
            if west <= lon <= east and (not strict or south <= lat <= north):
                return CRS.from_epsg(epsg)
    raise ValueError(f"no UTM zone for longitude {lon}")


def to_metric(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Project ``gdf`` to its local UTM zone (metres)."""
    return gdf.to_crs(local_metric_crs(gdf))


def require_projected(gdf: gpd.GeoDataFrame | gpd.GeoSeries, what: str = "this operation") -> None:
    """Refuse distance work on a geographic CRS, saying how to fix it."""
    if gdf.crs is None or CRS.from_user_input(gdf.crs).is_geographic:
        raise ProjectionRequiredError(
            f"{what} measures distances in metres, but the data is in "
            f"{'no CRS' if gdf.crs is None else gdf.crs.to_string()}; project it first, "
            "e.g. geo.crs.to_metric(gdf)"
        )
