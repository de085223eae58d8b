"""Reader of OpenStreetMap extracts (.osm.pbf, .osm) with pyosmium.

Private to :mod:`layers.io`. Two layers can be read from OSM data:

* ``roads``: ways tagged ``highway=*`` become LineStrings with a ``kind`` from
  :data:`layers.schema.ROAD_KINDS`; rivers (``waterway=*``) and surface railways
  (``railway=*``) become ``river`` / ``railway`` lines, the barriers that grids follow.
* ``buildings``: ``building=*`` ways and multipolygon relations become polygons, with
  ``floors`` from ``building:levels`` and a ``kind`` from :data:`layers.schema.BUILDING_KINDS`
  where the tags make it clear.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from layers._io_common import ReadContext, listing

PBF_LAYERS: tuple[str, ...] = ("roads", "buildings")

#: ``highway=*`` -> road kind. Values not listed (construction, proposed, platform...) are skipped.
HIGHWAY_KINDS: dict[str, str] = {
    **dict.fromkeys(("motorway", "motorway_link", "trunk", "trunk_link", "primary",
                     "primary_link"), "arterial"),
    **dict.fromkeys(("secondary", "secondary_link", "tertiary", "tertiary_link"), "secondary"),
    **dict.fromkeys(("residential", "unclassified", "living_street", "service", "road"), "local"),
    **dict.fromkeys(("pedestrian", "footway", "path", "steps", "cycleway", "track", "bridleway",
                     "corridor"), "path"),
}
#: Roads people may not walk along (expressways: 快速路 are mostly ``trunk`` in China).
NOT_WALKABLE_HIGHWAYS: frozenset[str] = frozenset(
    ("motorway", "motorway_link", "trunk", "trunk_link"))
WATERWAYS: frozenset[str] = frozenset(("river", "stream", "canal", "drain", "ditch"))
RAILWAYS: frozenset[str] = frozenset(("rail", "light_rail", "narrow_gauge", "monorail"))
RESIDENTIAL_BUILDINGS: frozenset[str] = frozenset(
    ("yes", "residential", "apartments", "house", "detached", "semidetached_house", "terrace",
     "dormitory", "bungalow"))


def road_kind(tags: dict[str, str]) -> tuple[str, bool] | None:
    """``(kind, walkable)`` for a way's tags, or ``None`` when it is neither a road nor a barrier.

    >>> road_kind({"highway": "primary"})
    ('arterial', True)
    >>> road_kind({"highway": "trunk"})
    ('arterial', False)
    >>> road_kind({"waterway": "river"})
    ('river', False)
    >>> road_kind({"railway": "subway", "tunnel": "yes"}) is None
    True
    """
    hw = tags.get("highway")
    if hw is not None:
        kind = HIGHWAY_KINDS.get(hw)
        if kind is None:
            return None
        walkable = hw not in NOT_WALKABLE_HIGHWAYS
        foot = tags.get("foot")
        if foot == "no" or (tags.get("access") == "no" and foot not in ("yes", "designated")):
            walkable = False
        elif foot in ("yes", "designated", "permissive"):
            walkable = True
        return kind, walkable
    underground = tags.get("tunnel") in ("yes", "culvert", "building_passage")
    if tags.get("waterway") in WATERWAYS and not underground:
        return "river", False
    if tags.get("railway") in RAILWAYS and not underground and tags.get("bridge") != "yes":
        return "railway", False
    return None


def building_kind(tags: dict[str, str], floors: int | None) -> str | None:
    """Building kind from tags and floor count (GB 50352-2019 height bands), ``None`` if unclear.

    >>> building_kind({"building": "apartments"}, 6), building_kind({"building": "office"}, 20)
    ('midrise', 'nonresidential')
    """
    value = tags.get("building", "yes")
    if value not in RESIDENTIAL_BUILDINGS:
        return "nonresidential"
    if floors is None:
        return None
    if floors <= 3:
        return "lowrise"
    if floors <= 9:
        return "midrise"
    if floors <= 33:
        return "highrise"
    return "tower"


def _floors(text: str | None) -> int | None:
    try:
        return int(float(text)) if text is not None else None
    except ValueError:
        return None


def read_pbf(ctx: ReadContext) -> gpd.GeoDataFrame:
    """Read roads (default) or buildings from an OSM extract."""
    import osmium

    layer = ctx.layer or "roads"
    if layer not in PBF_LAYERS:
        ctx.fail("io.pbf_layer", layer=layer, supported=listing(PBF_LAYERS))
    try:
        rows, wkbs, skipped = (_roads if layer == "roads" else _buildings)(str(ctx.path))
    except (RuntimeError, OSError, ValueError, osmium.InvalidLocationError) as e:
        ctx.fail("io.corrupt", format="OSM PBF", detail=str(e).strip()[:200] or type(e).__name__)
    geoms = shapely.from_wkb(np.asarray(wkbs, dtype=object)) if wkbs else np.array([], dtype=object)
    if layer == "buildings" and len(geoms):
        parts = shapely.get_num_geometries(geoms)
        single = parts == 1
        geoms[single] = shapely.get_geometry(geoms[single], 0)
    columns = ["id", "kind", "name", "walkable", "osm_tag"] if layer == "roads" else \
        ["id", "kind", "floors", "name", "osm_tag"]
    df = pd.DataFrame(rows, columns=columns)
    extra = {"walkable": bool} if layer == "roads" else {"floors": "Int64"}
    df = df.astype({"id": "str", "kind": "str", "name": "str", "osm_tag": "str", **extra})
    ctx.note("info", "io.pbf_read", features=len(df), skipped=skipped)
    return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geoms), crs="EPSG:4326")


Rows = tuple[list[tuple[Any, ...]], list[str], int]


def _collect(objects: Any, row: Any, geometry: Any) -> Rows:
    """Rows, WKB geometries and the number skipped, for OSM objects; ``row`` returns ``None`` to skip."""
    import osmium

    rows: list[tuple[Any, ...]] = []
    wkbs: list[str] = []
    skipped = 0
    for obj in objects:
        values = row(obj, dict(obj.tags))
        if values is None:
            skipped += 1
            continue
        try:
            wkbs.append(geometry(obj))
        except (osmium.InvalidLocationError, RuntimeError):
            skipped += 1
            continue
        rows.append(values)
    return rows, wkbs, skipped


def _road_row(way: Any, tags: dict[str, str]) -> tuple[Any, ...] | None:
    kind = road_kind(tags)
    if kind is None:
        return None
    key = next(k for k in ("highway", "waterway", "railway") if k in tags)
    return f"w{way.id}", kind[0], tags.get("name"), kind[1], f"{key}={tags[key]}"


def _building_row(area: Any, tags: dict[str, str]) -> tuple[Any, ...] | None:
    if tags.get("building") == "no":
        return None
    floors = _floors(tags.get("building:levels"))
    prefix = "w" if area.from_way() else "r"
    return (f"{prefix}{area.orig_id()}", building_kind(tags, floors), floors, tags.get("name"),
            f"building={tags['building']}")


def _roads(path: str) -> Rows:
    import osmium

    fp = (osmium.FileProcessor(path, osmium.osm.NODE | osmium.osm.WAY)
          .with_locations()
          .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
          .with_filter(osmium.filter.KeyFilter("highway", "waterway", "railway")))
    return _collect(fp, _road_row, osmium.geom.WKBFactory().create_linestring)


def _buildings(path: str) -> Rows:
    import osmium

    fp = (osmium.FileProcessor(path)
          .with_areas(osmium.filter.KeyFilter("building"))
          .with_filter(osmium.filter.EntityFilter(osmium.osm.AREA))
          .with_filter(osmium.filter.KeyFilter("building")))
    return _collect(fp, _building_row, osmium.geom.WKBFactory().create_multipolygon)
