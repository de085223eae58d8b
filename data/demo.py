"""The synthetic demo district: every layer of the schema, seeded, inside Gulou's real outline.

The frame is the real outline of Nanjing's Gulou district (adcode 320106; see
``data/README.md`` for its source and licence). Everything inside it is invented: streets,
sub-districts, communities, grids, buildings, people, incidents and GPS tracks, with invented
names. The same preset and seed always give byte-identical layers.

Examples
--------
>>> layers = generate("small", seed=1)
>>> sorted(layers) == sorted(SCHEMAS)
True
>>> layers["districts"]["code"].tolist()
['320106']
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from data import _gates, _incidents, _patrols
from data._frame import PRESET_SPECS, PresetSpec, to_lonlat, xy_to_lonlat
from data._world import DISTRICT_CODE, DISTRICT_NAME, World, build_world
from geo.domain import LOCAL_TZ
from layers.schema import SCHEMAS

__all__ = [
    "DEMO_ACTOR", "DEMO_ANCHOR", "DEMO_DISTRICT_CODE", "DEMO_DISTRICT_NAME", "DEMO_NOTE", "FILLING_MARK",
    "HISTORY_LAYERS", "PRESETS", "UnknownPresetError", "demo_anchor", "generate", "generate_world",
    "is_demo", "is_filling", "load_into",
]

PRESETS: tuple[str, ...] = ("small", "medium", "full")
#: The demo's "now": near the end of the incident year, a Friday afternoon. Incidents cover the
#: 365 days before it; patrol tracks cover the day before it, and its own afternoon up to it.
DEMO_ANCHOR: datetime = datetime(2026, 11, 20, 16, 0)
DEMO_DISTRICT_CODE: str = DISTRICT_CODE
#: The district's name in the demo: marks every screen that shows it as a synthetic demo.
DEMO_DISTRICT_NAME: str = DISTRICT_NAME
#: Actor of the store write, and the prefix of its audit note.
DEMO_ACTOR: str = "demo"
DEMO_NOTE: str = "gridpulse-demo"

Progress = Callable[[str, float], None]
#: Stages reported to ``progress`` (each with a fraction 0..1), in order.
STAGES: tuple[str, ...] = ("streets", "buildings", "grids", "people", "incidents", "patrols", "layers", "store")


class UnknownPresetError(ValueError):
    """The preset is not one of :data:`PRESETS`."""


def _spec(preset: str) -> PresetSpec:
    if preset not in PRESET_SPECS:
        raise UnknownPresetError(f"unknown demo preset {preset!r}; use one of {', '.join(PRESETS)}")
    return PRESET_SPECS[preset]


def _rngs(seed: int, n: int) -> list[np.random.Generator]:
    """Independent generators for the stages, from one seed (no global state)."""
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return [np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(n)]


def generate(
    preset: str | PresetSpec = "small", *, seed: int = 0, progress: Progress | None = None,
    anchor: datetime | None = None,
) -> dict[str, pd.DataFrame]:
    """Generate every layer of the demo district.

    Parameters
    ----------
    preset
        ``"small"`` (two sub-districts, four communities; for tests), ``"medium"`` or
        ``"full"`` (the size of Nanjing's Gulou district).
    seed
        Non-negative seed; the same preset and seed give byte-identical layers.
    progress
        Called with ``(stage, fraction)`` as the work advances (see :data:`STAGES`).
    anchor
        The demo's "now", where its history ends (naive local time); default
        :data:`DEMO_ANCHOR` (reproducible). ``gridpulse serve`` passes the loading time.

    Returns
    -------
    dict of str to pandas.DataFrame
        Layer name to a GeoDataFrame (EPSG:4326) or DataFrame with exactly the schema's
        columns in order and dtypes (no ``h3_*`` columns: the store adds them).
    """
    spec = preset if isinstance(preset, PresetSpec) else _spec(preset)  # a spec: data/city.py
    # a fourth stream for the gates: the first three (and so every older layer) are unchanged
    rng_world, rng_inc, rng_patrol, rng_gates = _rngs(seed, 4)
    report = progress or (lambda stage, fraction: None)
    world = build_world(spec, rng_world, report)
    anchor = np.datetime64(DEMO_ANCHOR if anchor is None else anchor, "s")
    n_inc = int(round(spec.incidents_per_household * int(world.grid_households.sum())))
    incidents, events = _incidents.generate(world, rng_inc, anchor=anchor, n=n_inc, hotspots=spec.hotspots)
    report("incidents", 1.0)
    fixes = _patrols.generate(world, rng_patrol, anchor=anchor, history=spec.history,
                              history_days=spec.history_days)
    report("patrols", 1.0)
    layers = _layers(world, incidents, events, fixes, rng_gates)
    report("layers", 1.0)
    return layers


def _conform(layer: str, cols: dict[str, object], geometry: np.ndarray | None = None) -> pd.DataFrame:
    """A frame with exactly the schema's columns, in order, with the schema's dtypes."""
    s = SCHEMAS[layer]
    out: dict[str, object] = {}
    n = len(next(iter(cols.values())))
    for f in s.fields:
        v = cols.get(f.name)
        if v is None:
            v = [None] * n
        if f.dtype in ("str", "code"):
            arr = v if isinstance(v, pd.api.extensions.ExtensionArray) and v.dtype == "str" else pd.array(
                [None if x is None else str(x) for x in v], dtype="str")
        elif f.dtype == "int":
            arr = np.asarray(v, dtype=np.int64)
        elif f.dtype == "float":
            arr = np.asarray(v, dtype=np.float64)
        elif f.dtype == "bool":
            arr = np.asarray(v, dtype=bool)
        else:
            arr = np.asarray(v, dtype="datetime64[us]")
        out[f.name] = arr
    df = pd.DataFrame(out)
    if geometry is None:
        return df
    return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geometry, crs=4326), crs=4326)


def _columns_of(df: pd.DataFrame, layer: str) -> dict[str, object]:
    """The schema's columns of ``df``: Arrow-backed strings as they are, others as arrays."""
    return {c: df[c].array if df[c].dtype == "str" else df[c].to_numpy() for c in SCHEMAS[layer].columns}


def _points(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    lon, lat = xy_to_lonlat(x, y)
    return shapely.points(lon, lat)


def _layers(world: World, incidents: pd.DataFrame, events: pd.DataFrame, fixes: pd.DataFrame,
            rng_gates: np.random.Generator) -> dict[str, pd.DataFrame]:
    """Convert the metric world to the schema's layers in EPSG:4326."""
    w = world
    out: dict[str, pd.DataFrame] = {}
    out["districts"] = _conform("districts", {"code": [DISTRICT_CODE], "name": [DISTRICT_NAME]},
                                to_lonlat(np.array([w.district], dtype=object)))
    out["subdistricts"] = _conform("subdistricts", {
        "code": w.sub_code, "name": w.sub_name, "district_code": [DISTRICT_CODE] * w.sub_code.size,
    }, to_lonlat(w.sub_geom))
    out["communities"] = _conform("communities", {
        "code": w.comm_code, "name": w.comm_name, "subdistrict_code": w.sub_code[w.comm_sub],
    }, to_lonlat(w.comm_geom))
    out["grids"] = _conform("grids", {
        "code": w.grid_code, "name": w.grid_name, "kind": w.grid_kind, "dedicated_type": w.grid_dtype,
        "community_code": w.comm_code[w.grid_comm], "leader": w.grid_leader,
        "workers": w.grid_workers, "households": w.grid_households, "population": w.grid_population,
    }, to_lonlat(w.grid_geom))
    b = w.bld
    bid = np.array([f"B{i:06d}" for i in range(1, b.x.size + 1)], dtype=object)
    compound = np.array([f"C{p:05d}" for p in range(w.parcels.size)], dtype=object)[b.parcel]
    out["buildings"] = _conform("buildings", {
        "id": bid, "kind": b.kind, "compound_id": compound, "floors": b.floors,
        "households": b.households, "population": b.population, "grid_code": w.grid_code[w.bld_grid],
    }, _points(b.x, b.y))
    out["compounds"], out["gates"] = _compounds(w, rng_gates)
    f = w.fac
    out["facilities"] = _conform("facilities", {
        "id": [f"F{i:04d}" for i in range(1, f.x.size + 1)], "kind": f.kind, "name": f.name,
        "community_code": w.comm_code[f.community],
    }, _points(f.x, f.y))
    roads = to_lonlat(w.road_geom)  # full precision: a few edges are only centimetres long
    out["roads"] = _conform("roads", {
        "id": [f"R{i:06d}" for i in range(1, w.road_geom.size + 1)], "kind": w.road_kind,
        "name": w.road_name, "walkable": np.ones(w.road_geom.size, dtype=bool),
    }, roads)
    wk = w.workers
    out["workers"] = _conform("workers", {
        "id": wk.id, "name": wk.name, "phone": wk.phone, "id_number": None, "role": wk.role,
        "grid_code": w.grid_code[wk.grid], "post": wk.post,
    })
    out["incidents"] = _conform("incidents", _columns_of(incidents, "incidents"),
                                _points(incidents["x"].to_numpy(), incidents["y"].to_numpy()))
    out["incident_events"] = _conform("incident_events", _columns_of(events, "incident_events"))
    out["patrol_points"] = _conform("patrol_points", _columns_of(fixes, "patrol_points"),
                                    _points(fixes["x"].to_numpy(), fixes["y"].to_numpy()))
    return {name: out[name] for name in SCHEMAS}


def _compounds(w: World, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The compounds (parcels holding buildings) and one to three gates each facing a street."""
    held = np.flatnonzero(np.bincount(w.bld.parcel, minlength=w.parcels.size) > 0)
    compounds = _conform("compounds", {
        "id": [f"C{p:05d}" for p in held], "name": w.parcel_name[held],
        "community_code": w.comm_code[w.parcel_comm[held]],
    }, to_lonlat(w.parcels[held]))
    g = _gates.compound_gates(w.parcels, held, w.parcel_name, w.road_geom, w.road_kind, rng)
    gates = _conform("gates", {
        "id": [f"G{i:06d}" for i in range(1, g.x.size + 1)],
        "compound_id": [f"C{p:05d}" for p in g.parcel], "kind": g.kind, "name": g.name,
        "open_hours": g.open_hours,
    }, _points(g.x, g.y))
    return compounds, gates


def load_into(
    store, preset: str = "full", *, seed: int = 0, progress: Progress | None = None,
    anchor: datetime | str | None = None,
) -> dict[str, int]:
    """Generate the demo district and write it into ``store`` (replacing those layers).

    A store that already holds the demo (:func:`is_demo`) is reset: every layer, the
    append-only event log included, is replaced in the same transaction.

    The write is one transaction by actor :data:`DEMO_ACTOR` with a note starting with
    :data:`DEMO_NOTE`, which :func:`is_demo` looks for. Returns the row count of each layer.
    """
    report = progress or (lambda stage, fraction: None)
    t0 = time.perf_counter()
    if isinstance(anchor, str):
        anchor = (pd.Timestamp.now(tz=LOCAL_TZ).tz_localize(None).floor("s")
                  if anchor == "now" else pd.Timestamp(anchor)).to_pydatetime()
    layers = generate(preset, seed=seed, progress=report, anchor=anchor)
    gen_s = time.perf_counter() - t0
    report("store", 0.0)
    live = "" if anchor is None else f" anchor={pd.Timestamp(anchor).isoformat()}"
    note = (f"{DEMO_NOTE} preset={preset} seed={seed} generated_s={gen_s:.1f}{live} "
            "(synthetic demo data)")
    # a store that holds only the demo is reset (its append-only event log included)
    store.write(layers, mode="replace", actor=DEMO_ACTOR, note=note, reset=is_demo(store))
    report("store", 1.0)
    return {name: len(df) for name, df in layers.items()}


def demo_anchor(store) -> pd.Timestamp | None:
    """The anchor a live demo was loaded with (``load_into(anchor=...)``), else ``None``.

    ``None`` also for the fixed, reproducible demo (:data:`DEMO_ANCHOR`) and for a store that
    does not hold the demo.
    """
    if not is_demo(store):
        return None
    log = store.audit_log()
    rows = log[log["layer"].astype(str) == "districts"]
    m = re.search(r" anchor=(\S+)", str(rows.iloc[0]["note"]))
    return pd.Timestamp(m.group(1)) if m else None


def is_demo(store) -> bool:
    """True when the store's districts are the demo district, written by the demo generator.

    Checks that the ``districts`` layer is exactly the demo's (code and name) and that the
    latest write of ``districts`` in the audit log is the demo's (actor and note marker).
    """
    if not store.has_layer("districts"):
        return False
    d = store.read("districts", columns=["code", "name"])
    if len(d) != 1 or str(d["code"].iloc[0]) != DEMO_DISTRICT_CODE or str(d["name"].iloc[0]) != DEMO_DISTRICT_NAME:
        return False
    log = store.audit_log()
    rows = log[log["layer"].astype(str) == "districts"]
    if rows.empty:
        return False
    last = rows.iloc[0]  # the audit log is newest first
    return str(last["actor"]) == DEMO_ACTOR and str(last["note"]).startswith(DEMO_NOTE)


#: Layers :func:`generate_world` leaves out: the large, append-only history of the district
#: (``gridpulse serve`` writes them in the background, after the dashboard has started).
HISTORY_LAYERS: tuple[str, ...] = ("incidents", "incident_events", "patrol_points")


def generate_world(
    preset: str = "small", *, seed: int = 0, progress: Progress | None = None,
) -> dict[str, pd.DataFrame]:
    """The demo district without its history: every layer of :func:`generate` except
    :data:`HISTORY_LAYERS`, identical to those :func:`generate` gives for the same preset and seed.

    The world (streets, sub-districts, communities, grids, buildings, facilities, roads,
    workers) takes a few seconds even at ``full`` size; the history (a year of incidents and
    their events, millions of GPS fixes) takes the rest. ``gridpulse serve`` writes this first,
    starts the dashboard, then writes :func:`generate`'s layers.

    Examples
    --------
    >>> world = generate_world("small", seed=1)
    >>> sorted(set(SCHEMAS) - set(world)) == sorted(HISTORY_LAYERS)
    True
    """
    spec = _spec(preset)
    rngs = _rngs(seed, 4)
    rng_world, rng_gates = rngs[0], rngs[3]
    world = build_world(spec, rng_world, progress or (lambda stage, fraction: None))

    def empty(layer: str) -> pd.DataFrame:
        cols = {c: pd.Series([], dtype=object) for c in SCHEMAS[layer].columns}
        return pd.DataFrame({**cols, "x": np.array([], float), "y": np.array([], float)})

    layers = _layers(world, empty("incidents"), empty("incident_events"), empty("patrol_points"),
                     rng_gates)
    return {name: df for name, df in layers.items() if name not in HISTORY_LAYERS}


#: Marker in the audit note of the first, partial write of ``gridpulse serve`` (the world
#: without :data:`HISTORY_LAYERS`); the full write that follows carries no marker.
FILLING_MARK = "filling=history"


def is_filling(store) -> bool:
    """True while the store holds the demo's world and its history is still being written.

    That is: the store holds the demo (:func:`is_demo`) and the demo's latest write is the
    partial first write of ``gridpulse serve`` (its note carries :data:`FILLING_MARK`).
    A serve stopped before the history was in leaves the store filling; the next
    ``gridpulse serve`` loads the demo again.
    """
    if not is_demo(store):
        return False
    log = store.audit_log()
    mine = log[(log["actor"].astype(str) == DEMO_ACTOR)
               & log["note"].astype(str).str.startswith(DEMO_NOTE)]
    return FILLING_MARK in str(mine.iloc[0]["note"]).split()
