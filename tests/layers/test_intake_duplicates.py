"""The likely-duplicate search at intake reads only the cases near the batch, and finds what a
read of every open case would.

* :func:`layers.intake.near_cells` covers every point within the radius (property test, at
  the finest stored resolution and at a parent one, from the equator to Heilongjiang).
* A compound ``where`` key (``(category, cell)`` pairs) keeps exactly the rows whose columns
  match one pair together, on both engines.
* :func:`layers.intake.find_duplicates` gives the answer of a brute-force search over every
  open case (the code it replaced) for seeded batches around a hand-drawn district: cases at
  0-400 m, of four categories, received over five hours, some closed.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.hexes import cells_to_parents, lonlat_to_cells
from layers import intake
from layers.app import act_on_case
from layers.workflow import OPEN_STAGES
from tests._intake_world import IN_A
from tests.layers import test_intake as base
from tests.layers.test_intake import T0

world = base.world
quick_hashes = base.quick_hashes

M_LAT = 1 / 110_574.0


def _offset(lon: float, lat: float, metres: float, bearing: float) -> tuple[float, float]:
    """The point ``metres`` from ``(lon, lat)`` towards ``bearing`` (radians from north)."""
    dlat = metres * math.cos(bearing) * M_LAT
    dlon = metres * math.sin(bearing) * M_LAT / math.cos(math.radians(lat))
    return lon + dlon, lat + dlat


@settings(max_examples=300, deadline=None)
@given(lon=st.floats(73.0, 135.0), lat=st.floats(0.0, 53.5), bearing=st.floats(0, 2 * math.pi),
       frac=st.floats(0.0, 1.0), res=st.sampled_from([9, 10]))
def test_every_point_within_the_radius_has_a_cell_of_the_disk(lon, lat, bearing, frac,
                                                             res) -> None:
    radius = intake.DUPLICATE_RADIUS_M
    qx, qy = _offset(lon, lat, radius * frac, bearing)
    assert float(intake.metres_between(lon, lat, qx, qy)) <= radius * 1.01
    stored = lonlat_to_cells(np.array([qx]), np.array([qy]), res=10)  # as h3_columns stores it
    if res != 10:
        stored = cells_to_parents(stored, res)
    assert int(stored[0]) in set(intake.near_cells([lon], [lat], radius, res=res)[0].tolist())


def test_a_compound_key_keeps_the_rows_matching_a_pair_together(world) -> None:
    store, acc = world
    pts = [IN_A, _offset(*IN_A, 20, 0.0), _offset(*IN_A, 600, 1.0)]
    items = [(acc["hotline"], {"service_code": code, "long": x, "lat": y}, None, "en")
             for code in ("0101", "0401") for x, y in pts]
    assert all(isinstance(r, intake.Created) for r in intake.create_requests(store, items, now=T0))
    every = store.read("incidents", columns=["service_request_id", "category_code", "h3_10"])
    cell_a = int(every.loc[every["category_code"] == "01", "h3_10"].iloc[0])
    pairs = [("01", cell_a), ("04", 12345), (None, cell_a), ("04", None)]  # no row has 04@12345
    got = store.read("incidents", columns=["service_request_id"],
                     where={("category_code", "h3_10"): pairs})
    want = every[(every["category_code"] == "01") & (every["h3_10"] == cell_a)]
    assert len(want) >= 1 and len(want) < len(every)
    assert sorted(got["service_request_id"]) == sorted(want["service_request_id"])
    assert store.count("incidents", where={("category_code", "h3_10"): pairs}) == len(want)
    assert store.count("incidents", where={("category_code", "h3_10"): [(None, None)]}) == 0
    with pytest.raises(TypeError):
        store.read("incidents", where={("category_code", "requested_datetime"): [("01", T0)]})


def _brute_force(store, rows, ids, radius=intake.DUPLICATE_RADIUS_M, hours=intake.DUPLICATE_HOURS):
    """The search as it was: every open case of the batch's categories in the time window."""
    times = [pd.Timestamp(r["requested_datetime"]) for r in rows]
    near = store.read("incidents", columns=["service_request_id", "category_code",
                                            "requested_datetime"],
                      where={"stage": sorted(OPEN_STAGES)},
                      between={"requested_datetime": (min(times) - pd.Timedelta(hours=hours),
                                                      max(times) + pd.Timedelta(seconds=1))})
    cand = [(str(i), str(c), pd.Timestamp(t), g.x, g.y) for i, c, t, g in zip(
        near["service_request_id"], near["category_code"], near["requested_datetime"],
        near.geometry, strict=True)]
    out = []
    for r, t, rid in zip(rows, times, ids, strict=True):
        best = None
        for cid, cat, ct, x, y in cand:
            if cat != str(r["category_code"]) or ct > t or ct < t - pd.Timedelta(hours=hours):
                continue
            d = float(intake.metres_between(r["geometry"].x, r["geometry"].y, x, y))
            if d <= radius and (best is None or d < best[1]):
                best = (cid, d)
        out.append(best)
        cand.append((rid, str(r["category_code"]), t, r["geometry"].x, r["geometry"].y))
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_the_search_finds_what_reading_every_open_case_finds(world, seed) -> None:
    store, acc = world
    rng = np.random.default_rng(seed)
    codes = ["0101", "0201", "0401", "0501"]

    def batch(n, t):
        return [(acc["hotline"], {"service_code": codes[int(rng.integers(4))],
                                  "long": x, "lat": y,
                                  "requested_datetime": (t - pd.Timedelta(minutes=int(
                                      rng.integers(0, 300)))).isoformat()}, None, "en")
                for x, y in (_offset(*IN_A, float(rng.uniform(0, 400)),
                                     float(rng.uniform(0, 2 * math.pi))) for _ in range(n))]

    made = [r for r in intake.create_requests(store, batch(80, T0), now=T0)
            if isinstance(r, intake.Created)]
    assert len(made) == 80
    for c in made[:25]:  # closed cases are no duplicates
        act_on_case(store, acc["hotline"], c.request["service_request_id"], "close_no_action",
                    time=T0 + pd.Timedelta(minutes=1), reason="invalid")
    grids = intake.grid_index(store)
    now = T0 + pd.Timedelta(minutes=30)
    rows = [intake.parse_request(b[1], grids=grids, now=now) for b in batch(40, now)]
    ids = [f"NEW{i}" for i in range(len(rows))]
    got = intake.find_duplicates(store, rows, ids=ids)
    want = _brute_force(store, rows, ids)
    assert sum(w is not None for w in want) >= 10  # the case is not trivial
    assert sum(w is None for w in want) >= 1
    assert [None if g is None else (g[0], round(g[1], 6)) for g in got] == \
        [None if w is None else (w[0], round(w[1], 6)) for w in want]
