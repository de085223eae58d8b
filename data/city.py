"""The ``city`` demo preset: several synthetic districts side by side, for PostGIS at city scale.

Each district is the demo district (:func:`data.demo.generate`, inside Gulou's outline) with
its own seed, moved east and north so that the districts lie side by side, and recoded: the
district's 6-digit code (Nanjing's real adcodes, :data:`CITY_DISTRICTS`) replaces ``320106``
at the start of every sub-district, community and grid code, and every other identifier
(buildings, roads, workers, cases, events, fixes, compounds) starts with that code, so keys
stay unique across the city and references stay whole. Everything in them is invented.

At full size (:data:`FULL`: eight districts of the full demo size, four incidents per
household and year) the city holds about 12,000 grids, 10 million incidents and 10 million
GPS fixes a day; that is a benchmark (``benchmarks/city_load.py``), not a test. The tests
load a reduced city (:func:`city_spec` with two small districts).

Examples
--------
>>> spec = city_spec(districts=2, size="small", incidents_per_household=0.5)
>>> [code for code, _ in spec.districts]
['320102', '320104']
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime

import pandas as pd
import shapely

from data._frame import PRESET_SPECS, PresetSpec
from data._world import DISTRICT_CODE
from layers.schema import SCHEMAS

__all__ = ["CITY_DISTRICTS", "CITY_NOTE", "FULL", "CitySpec", "city_spec", "generate_district",
           "load_city"]

#: Nanjing's districts (GB/T 2260 adcodes) the city preset names its synthetic districts after.
CITY_DISTRICTS: tuple[tuple[str, str], ...] = (
    ("320102", "玄武区"), ("320104", "秦淮区"), ("320105", "建邺区"), ("320106", "鼓楼区"),
    ("320111", "浦口区"), ("320113", "栖霞区"), ("320114", "雨花台区"), ("320115", "江宁区"),
    ("320116", "六合区"), ("320117", "溧水区"), ("320118", "高淳区"),
)
#: Prefix of the audit note of a city load.
CITY_NOTE = "gridpulse-city"
#: Gap between neighbouring districts, as a fraction of the district's width or height.
_GAP = 0.05


@dataclass(frozen=True)
class CitySpec:
    """What :func:`load_city` generates: which districts, each of which demo size."""

    districts: tuple[tuple[str, str], ...]
    district: PresetSpec
    #: Districts per row of the layout (west to east), rows from south to north.
    columns: int = 4


def city_spec(*, districts: int = 8, size: str = "full", incidents_per_household: float = 4.0,
              history_days: int = 1) -> CitySpec:
    """A city of ``districts`` synthetic districts of demo size ``size`` (``small``,
    ``medium``, ``full``), with ``incidents_per_household`` incidents a year per household
    and ``history_days`` days of GPS fixes (1: the day before the anchor, and its afternoon).
    """
    if not 1 <= districts <= len(CITY_DISTRICTS):
        raise ValueError(f"districts must be 1..{len(CITY_DISTRICTS)}, got {districts}")
    if size not in PRESET_SPECS:
        raise ValueError(f"size must be one of {', '.join(PRESET_SPECS)}, got {size!r}")
    if incidents_per_household < 0 or history_days < 1:
        raise ValueError("incidents_per_household must be >= 0 and history_days >= 1")
    base = PRESET_SPECS[size]
    spec = replace(base, name=f"city-{size}", incidents_per_household=incidents_per_household,
                   history_days=history_days)
    return CitySpec(CITY_DISTRICTS[:districts], spec)


#: The full city: 8 full-size districts, 4 incidents a year per household, one day of fixes.
FULL: CitySpec = city_spec()


def _id_columns(layer: str) -> list[str]:
    """Text identifiers of ``layer`` that :func:`_recode` prefixes: its text key, references to
    another layer's text key, and ``*_id`` text columns (compound ids)."""
    s = SCHEMAS[layer]
    out = []
    for f in s.fields:
        if f.dtype != "str":
            continue
        ref_is_text = f.ref is not None and SCHEMAS[f.ref[0]].field(f.ref[1]).dtype == "str"
        if f.name == s.key or ref_is_text or f.name.endswith("_id"):
            out.append(f.name)
    return out


def _recode(df: pd.DataFrame, layer: str, code: str, name: str, dx: float, dy: float) -> pd.DataFrame:
    """One district's layer under its own code, identifiers and place (see the module docstring)."""
    out = df.copy()
    s = SCHEMAS[layer]
    for f in s.fields:
        col = out[f.name]
        if f.dtype == "code":
            out[f.name] = col.where(col.isna(), code + col.str.slice(len(DISTRICT_CODE)))
        elif f.name in _id_columns(layer):
            out[f.name] = col.where(col.isna(), code + "-" + col.astype("str"))
    if layer == "districts":
        out["name"] = f"{name}（合成演示）"
    if "geometry" in out.columns and len(out):
        out = out.set_geometry(shapely.transform(out.geometry.values, lambda c: c + [dx, dy]),
                               crs=4326)
    return out


def generate_district(spec: CitySpec, index: int, *, seed: int = 0,
                      anchor: datetime | None = None) -> dict[str, pd.DataFrame]:
    """Every layer of the city's ``index``-th district (seed ``seed + index``)."""
    from data.demo import generate

    code, name = spec.districts[index]
    layers = generate(spec.district, seed=seed + index, anchor=anchor)
    x0, y0, x1, y1 = layers["districts"].total_bounds
    col, row = index % spec.columns, index // spec.columns
    dx, dy = col * (x1 - x0) * (1 + _GAP), row * (y1 - y0) * (1 + _GAP)
    return {layer: _recode(df, layer, code, name, dx, dy) for layer, df in layers.items()}


def districts(spec: CitySpec, *, seed: int = 0, anchor: datetime | None = None
              ) -> Iterator[dict[str, pd.DataFrame]]:
    """The city's districts one at a time (one district's frames in memory at once)."""
    for i in range(len(spec.districts)):
        yield generate_district(spec, i, seed=seed, anchor=anchor)


def load_city(store, spec: CitySpec, *, seed: int = 0, anchor: datetime | None = None,
              progress: Callable[[int, int, dict[str, int]], None] | None = None) -> dict[str, float]:
    """Generate the city district by district and write it into ``store``.

    The first district replaces every layer of the store (``reset``: the store must hold
    nothing else worth keeping); each further district is appended in its own transaction,
    so memory holds one district at a time. On PostGIS every layer travels by binary COPY
    (:mod:`layers._postgis`). Returns the rows written, the seconds spent generating and
    writing, and the rows written per second of writing.
    """
    rows: dict[str, int] = {}
    gen_s = write_s = 0.0
    n = len(spec.districts)
    t0 = time.perf_counter()
    for i, layers in enumerate(districts(spec, seed=seed, anchor=anchor)):
        t1 = time.perf_counter()
        gen_s += t1 - t0
        code = spec.districts[i][0]
        note = f"{CITY_NOTE} {spec.district.name} district={code} seed={seed + i} (synthetic demo data)"
        if i == 0:
            store.write(layers, mode="replace", actor="demo", note=note, reset=True)
        else:
            store.write(layers, mode="append", actor="demo", note=note)
        t0 = time.perf_counter()
        write_s += t0 - t1
        for layer, df in layers.items():
            rows[layer] = rows.get(layer, 0) + len(df)
        if progress is not None:
            progress(i + 1, n, rows)
        del layers
    total = int(sum(rows.values()))
    return {"rows": total, **{f"rows_{k}": v for k, v in rows.items()},
            "generate_s": round(gen_s, 2), "write_s": round(write_s, 2),
            "rows_per_s": round(total / write_s) if write_s else float("nan")}

