"""Reader of OpenStreetMap extracts (.osm.pbf, .osm) with pyosmium.

Private to :mod:`layers.io`. Two layers can be read from OSM data:

* ``roads``: ways tagged ``highway=*`` become LineStrings with a ``kind`` from
  :data:`layers.schema.ROAD_KINDS`; rivers (``waterway=*``) and surface railways
  (``railway=*``) become ``river`` / ``railway`` lines, the barriers that grids follow.
* ``buildings``: ``building=*`` ways and multipolygon relations become polygons, with
  ``floors`` from ``building:levels`` and a ``kind`` from :data:`layers.schema.BUILDING_KINDS`
  where the tags make it clear.

* ``compounds``: residential compounds (小区): closed ways and multipolygon relations with a
  ``name`` tagged ``landuse=residential``, ``residential=*`` or ``place`` in
  :data:`COMPOUND_PLACES`.
* ``gates``: compound gates (小区出入口): ``barrier=gate``-style nodes and ``entrance=*`` nodes
  on or within :data:`GATE_NEAR_M` metres of a compound's outline, given to the nearest such
  compound; entrances that are doors of a building (nodes of a ``building=*`` way) are not
  gates. ``kind`` is ``vehicle`` (lift gates, ``foot=no``), ``pedestrian`` (turnstiles,
  entrances, ``motor_vehicle=no``) or ``mixed``; ``open_hours`` from ``opening_hours``.

Roads carry ``block_edge``: whether the way bounds a block (tunnels, building passages, covered
and indoor ways, private ways and driveways do not; see :func:`geo.partition.cells.tags_bound_blocks`).
Buildings carry ``outline``: ``complete``; ``clipped`` for a way at the edge of the extract whose
nodes outside it are missing (kept, its outline closed along the nodes that are there and cut
to the extract's bounds); ``repaired`` for an outline osmium could not assemble (self-touching)
made valid. Every building that could not be built at all is counted by reason in a warning
(``planner.osm.buildings_incomplete``): ways with fewer than three nodes inside the extract,
and multipolygon relations with missing members.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.partition.cells import tags_bound_blocks
from layers._io_common import ReadContext, listing

PBF_LAYERS: tuple[str, ...] = ("roads", "buildings", "compounds", "gates")
#: ``place=*`` values read as compounds (with a name), besides ``landuse=residential``.
COMPOUND_PLACES: frozenset[str] = frozenset(("neighbourhood", "quarter", "city_block"))
#: ``barrier=*`` values that are gates; entrances (``entrance=*``) count too.
GATE_BARRIERS: frozenset[str] = frozenset(
    ("gate", "lift_gate", "swing_gate", "sliding_gate", "turnstile", "full-height_turnstile",
     "kissing_gate", "entrance", "bollard_gate"))
_VEHICLE_ONLY: frozenset[str] = frozenset(("lift_gate",))
_PEDESTRIAN_ONLY: frozenset[str] = frozenset(
    ("turnstile", "full-height_turnstile", "kissing_gate", "entrance"))
#: A gate node counts for a compound when it lies this close to the outline (metres).
GATE_NEAR_M = 15.0

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
    lost: dict[str, Any] = {}
    if layer in ("compounds", "gates"):
        try:
            return _compounds_or_gates(ctx, layer)
        except (RuntimeError, OSError, ValueError, osmium.InvalidLocationError) as e:
            ctx.fail("io.corrupt", format="OSM PBF", detail=str(e).strip()[:200] or type(e).__name__)
    try:
        if layer == "roads":
            rows, wkbs, skipped = _roads(str(ctx.path))
        else:
            rows, wkbs, skipped, lost = _buildings(str(ctx.path))
    except (RuntimeError, OSError, ValueError, osmium.InvalidLocationError) as e:
        ctx.fail("io.corrupt", format="OSM PBF", detail=str(e).strip()[:200] or type(e).__name__)
    geoms = shapely.from_wkb(np.asarray(wkbs, dtype=object)) if wkbs else np.array([], dtype=object)
    if layer == "buildings" and len(geoms):
        parts = shapely.get_num_geometries(geoms)
        single = parts == 1
        geoms[single] = shapely.get_geometry(geoms[single], 0)
    columns = ["id", "kind", "name", "walkable", "osm_tag", "block_edge"] if layer == "roads" else \
        ["id", "kind", "floors", "name", "osm_tag", "outline"]
    df = pd.DataFrame(rows, columns=columns)
    extra = {"walkable": bool, "block_edge": bool} if layer == "roads" else {"floors": "Int64"}
    df = df.astype({"id": "str", "kind": "str", "name": "str", "osm_tag": "str", **extra})
    failed = lost.get("outside_extract", 0) + lost.get("broken_relations", 0)
    ctx.note("info", "io.pbf_read", features=len(df), skipped=skipped + failed)
    if failed or lost.get("clipped", 0) or lost.get("repaired", 0):
        ctx.note("warning", "planner.osm.buildings_incomplete", **lost)
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
    return (f"w{way.id}", kind[0], tags.get("name"), kind[1], f"{key}={tags[key]}",
            tags_bound_blocks(tags))


def _building_values(osm_id: str, tags: dict[str, str], outline: str) -> tuple[Any, ...]:
    floors = _floors(tags.get("building:levels"))
    return (osm_id, building_kind(tags, floors), floors, tags.get("name"),
            f"building={tags['building']}", outline)


def _roads(path: str) -> Rows:
    import osmium

    fp = (osmium.FileProcessor(path, osmium.osm.NODE | osmium.osm.WAY)
          .with_locations()
          .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
          .with_filter(osmium.filter.KeyFilter("highway", "waterway", "railway")))
    return _collect(fp, _road_row, osmium.geom.WKBFactory().create_linestring)


def _buildings(path: str) -> tuple[list[tuple[Any, ...]], list[str], int, dict[str, Any]]:
    """Buildings: the areas osmium assembles, then every ``building=*`` way or relation it could
    not: edge ways are closed along their nodes inside the extract and clipped to it, the rest
    are counted by reason (with up to five ids each)."""
    import osmium

    factory = osmium.geom.WKBFactory()
    rows: list[tuple[Any, ...]] = []
    wkbs: list[str] = []
    skipped = 0
    built: set[str] = set()
    fp = (osmium.FileProcessor(path)
          .with_areas(osmium.filter.KeyFilter("building"))
          .with_filter(osmium.filter.EntityFilter(osmium.osm.AREA))
          .with_filter(osmium.filter.KeyFilter("building")))
    for area in fp:
        tags = dict(area.tags)
        osm_id = f"{'w' if area.from_way() else 'r'}{area.orig_id()}"
        if tags.get("building") == "no":
            built.add(osm_id)
            skipped += 1
            continue
        try:
            wkb = factory.create_multipolygon(area)
        except (osmium.InvalidLocationError, RuntimeError):
            continue  # counted below with the ways and relations never assembled
        built.add(osm_id)
        rows.append(_building_values(osm_id, tags, "complete"))
        wkbs.append(wkb)
    bounds = _extract_bounds(path)
    lost: dict[str, Any] = {"clipped": 0, "repaired": 0, "outside_extract": 0, "broken_relations": 0,
                            "outside_ids": "", "relation_ids": ""}
    out_ids: list[str] = []
    rel_ids: list[str] = []
    fp2 = (osmium.FileProcessor(path, osmium.osm.NODE | osmium.osm.WAY | osmium.osm.RELATION)
           .with_locations()
           .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY | osmium.osm.RELATION))
           .with_filter(osmium.filter.KeyFilter("building")))
    for obj in fp2:
        tags = dict(obj.tags)
        if tags.get("building") == "no":
            continue
        if isinstance(obj, osmium.osm.Relation):
            osm_id = f"r{obj.id}"
            if osm_id not in built and tags.get("type") in ("multipolygon", "building"):
                lost["broken_relations"] += 1
                rel_ids.append(osm_id)
            continue
        osm_id = f"w{obj.id}"
        if osm_id in built:
            continue
        xy = [(n.location.lon, n.location.lat) for n in obj.nodes if n.location.valid()]
        complete = len(xy) == len(obj.nodes) and obj.is_closed()
        geom = _salvage(xy, bounds)
        if geom is None:
            if not obj.is_closed() and len(xy) == len(obj.nodes):
                continue  # an unclosed building way inside the extract: a member of a relation
            lost["outside_extract"] += 1
            out_ids.append(osm_id)
            continue
        outline = "repaired" if complete else "clipped"
        lost[outline] += 1
        rows.append(_building_values(osm_id, tags, outline))
        wkbs.append(shapely.to_wkb(geom, hex=True))
    lost["outside_ids"] = listing(out_ids[:5]) if out_ids else "—"
    lost["relation_ids"] = listing(rel_ids[:5]) if rel_ids else "—"
    return rows, wkbs, skipped, lost


def _salvage(xy: list[tuple[float, float]], bounds: shapely.Geometry | None) -> shapely.Geometry | None:
    """A polygon from the nodes of a building way that are in the extract, made valid and cut
    to the extract's bounds; ``None`` when fewer than three nodes are left or no area remains."""
    if len(set(xy)) < 3:
        return None
    poly = shapely.make_valid(shapely.Polygon(xy))
    if bounds is not None:
        poly = shapely.intersection(poly, bounds)
    parts = shapely.get_parts(poly)
    parts = parts[(shapely.get_type_id(parts) == 3) & (shapely.area(parts) > 0)]
    if parts.size == 0:
        return None
    return parts[0] if parts.size == 1 else shapely.multipolygons(parts)


def _extract_bounds(path: str) -> shapely.Geometry | None:
    """The extract's bounding box from the file header, else the box of its nodes."""
    import osmium

    try:
        box = osmium.io.Reader(path, osmium.osm.NOTHING).header().box()
        if box.valid():
            return shapely.box(box.bottom_left.lon, box.bottom_left.lat, box.top_right.lon,
                               box.top_right.lat)
    except (RuntimeError, OSError, ValueError):
        pass
    x0 = y0 = np.inf
    x1 = y1 = -np.inf
    for node in osmium.FileProcessor(path, osmium.osm.NODE):
        if node.location.valid():
            lon, lat = node.location.lon, node.location.lat
            x0, y0, x1, y1 = min(x0, lon), min(y0, lat), max(x1, lon), max(y1, lat)
    return shapely.box(x0, y0, x1, y1) if np.isfinite(x0) else None


def compound_row(tags: dict[str, str]) -> str | None:
    """The tag that makes an area a compound (``"landuse=residential"``...), else ``None``.

    >>> compound_row({"landuse": "residential", "name": "金陵小区"})
    'landuse=residential'
    >>> compound_row({"landuse": "residential"}) is None  # no name: a zoning area, not a compound
    True
    """
    if not tags.get("name"):
        return None
    if tags.get("landuse") == "residential":
        return "landuse=residential"
    if tags.get("place") in COMPOUND_PLACES:
        return f"place={tags['place']}"
    if "residential" in tags:
        return f"residential={tags['residential']}"
    return None


def gate_kind(tags: dict[str, str]) -> str | None:
    """``pedestrian``, ``vehicle`` or ``mixed`` for a gate node's tags; ``None`` if no gate.

    >>> gate_kind({"barrier": "gate"}), gate_kind({"barrier": "lift_gate"})
    ('mixed', 'vehicle')
    >>> gate_kind({"entrance": "main"}), gate_kind({"barrier": "gate", "motor_vehicle": "no"})
    ('pedestrian', 'pedestrian')
    """
    barrier = tags.get("barrier")
    if barrier not in GATE_BARRIERS and "entrance" not in tags:
        return None
    if tags.get("foot") == "no" or barrier in _VEHICLE_ONLY:
        return "vehicle"
    if (barrier in _PEDESTRIAN_ONLY or (barrier is None and "entrance" in tags)
            or tags.get("motor_vehicle") == "no" or tags.get("vehicle") == "no"):
        return "pedestrian"
    return "mixed"


def _compound_areas(path: str) -> gpd.GeoDataFrame:
    import osmium

    factory = osmium.geom.WKBFactory()
    rows: list[tuple[Any, ...]] = []
    wkbs: list[str] = []
    fp = (osmium.FileProcessor(path)
          .with_areas(osmium.filter.KeyFilter("landuse", "place", "residential"))
          .with_filter(osmium.filter.EntityFilter(osmium.osm.AREA)))
    for area in fp:
        tags = dict(area.tags)
        tag = compound_row(tags)
        if tag is None:
            continue
        try:
            wkb = factory.create_multipolygon(area)
        except (osmium.InvalidLocationError, RuntimeError):
            continue
        rows.append((f"{'w' if area.from_way() else 'r'}{area.orig_id()}", tags["name"], tag))
        wkbs.append(wkb)
    geoms = shapely.from_wkb(np.asarray(wkbs, dtype=object)) if wkbs else np.array([], dtype=object)
    if len(geoms):
        single = shapely.get_num_geometries(geoms) == 1
        geoms[single] = shapely.get_geometry(geoms[single], 0)
    df = pd.DataFrame(rows, columns=["id", "name", "osm_tag"]).astype("str")
    return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geoms), crs="EPSG:4326")


def _compounds_or_gates(ctx: ReadContext, layer: str) -> gpd.GeoDataFrame:
    """Compounds, or the gates on their outlines (see the module docstring)."""
    import osmium

    from geo.crs import local_metric_crs

    path = str(ctx.path)
    compounds = _compound_areas(path)
    if layer == "compounds":
        ctx.note("info", "gates.osm.compounds_read", compounds=len(compounds))
        return compounds
    doors: set[int] = set()
    for way in (osmium.FileProcessor(path, osmium.osm.WAY)
                .with_filter(osmium.filter.KeyFilter("building"))):
        doors.update(n.ref for n in way.nodes)
    rows: list[tuple[Any, ...]] = []
    xy: list[tuple[float, float]] = []
    n_doors = 0
    for node in (osmium.FileProcessor(path, osmium.osm.NODE)
                 .with_filter(osmium.filter.KeyFilter("barrier", "entrance"))):
        tags = dict(node.tags)
        kind = gate_kind(tags)
        if kind is None or not node.location.valid():
            continue
        if tags.get("barrier") not in GATE_BARRIERS and node.id in doors:
            n_doors += 1  # a building's door, not a compound gate
            continue
        rows.append((f"n{node.id}", kind, tags.get("name"), tags.get("opening_hours"),
                     f"barrier={tags['barrier']}" if "barrier" in tags else f"entrance={tags['entrance']}"))
        xy.append((node.location.lon, node.location.lat))
    pts = gpd.GeoSeries(shapely.points(np.asarray(xy, dtype=float).reshape(-1, 2)), crs="EPSG:4326")
    df = pd.DataFrame(rows, columns=["id", "kind", "name", "open_hours", "osm_tag"])
    compound_id = np.full(len(df), None, dtype=object)
    if len(compounds) and len(df):
        metric = local_metric_crs(compounds)
        rings = compounds.geometry.to_crs(metric).boundary.to_numpy()
        tree = shapely.STRtree(rings)
        (gi, ci), dist = tree.query_nearest(pts.to_crs(metric).to_numpy(), max_distance=GATE_NEAR_M,
                                            return_distance=True, all_matches=False)
        compound_id[gi] = compounds["id"].to_numpy(dtype=object)[ci]
    near = np.asarray([c is not None for c in compound_id], dtype=bool)
    out = df.loc[near].assign(compound_id=compound_id[near])
    out = out[["id", "compound_id", "kind", "name", "open_hours", "osm_tag"]].astype(
        {"id": "str", "compound_id": "str", "kind": "str", "name": "str", "open_hours": "str",
         "osm_tag": "str"})
    ctx.note("info", "gates.osm.gates_read", gates=len(out), compounds=len(compounds),
             away=int((~near).sum()), doors=n_doors, near_m=f"{GATE_NEAR_M:g}")
    return gpd.GeoDataFrame(out.reset_index(drop=True), geometry=pts[near].reset_index(drop=True),
                            crs="EPSG:4326")
