"""Residents leave their compound through its gates (小区出入口): hand-drawn cases (EPSG:32650).

Two parallel streets joined at the west end only; a compound between them, its building near
the north street::

    N (0,300) o-------------------------------o (1000,300)   clinic K2 at the east end of N
              |          +----gN----+
              |          |    b     |  compound A: box (400,20)-(600,280), building b (500,260)
              W          |          |  gN = north gate (500,280), gS = south gate (500,20)
              |          +----gS----+
    S (0,0)   o-------------------------------o (1000,0)     clinic K1 at the east end of S

Without gates b steps 40 m onto N. Through the south gate only, it walks 240 m across the
compound to gS, 20 m onto S, then 500 m east: 760 m to K1 (instead of 40 + 500 + 300 + 1000 =
1,840 m), but 240 + 20 + 500 + 300 + 1000 = 2,060 m to K2 (instead of 40 + 500 = 540 m).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely import LineString, Point, box

from geo.accessibility import (
    accessibility,
    coverage_table,
    gate_exits,
    nearest_by_kind,
    suggest_sites,
)
from geo.network import build_walk_network

CRS = 32650
ROADS = gpd.GeoDataFrame({"kind": ["local"] * 3}, geometry=[
    LineString([(0, 0), (1000, 0)]), LineString([(0, 300), (1000, 300)]),
    LineString([(0, 0), (0, 300)])], crs=CRS)
NET = build_walk_network(ROADS)
K1 = gpd.GeoDataFrame({"kind": ["clinic"]}, geometry=[Point(1000, 0)], crs=CRS)
K2 = gpd.GeoDataFrame({"kind": ["clinic"]}, geometry=[Point(1000, 300)], crs=CRS)
COMPOUND_A = box(400, 20, 600, 280)
GN, GS = Point(500, 280), Point(500, 20)


def homes(compound_id: str | None = "A") -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"population": [100], "compound_id": [compound_id]},
                            geometry=[Point(500, 260)], crs=CRS, index=[7])


def gates(*points: Point, compound: str = "A") -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"compound_id": [compound] * len(points), "kind": ["mixed"] * len(points)},
                            geometry=list(points), crs=CRS, index=[f"g{i}" for i in range(len(points))])


def dist(fac: gpd.GeoDataFrame, g: gpd.GeoDataFrame | None, h: gpd.GeoDataFrame | None = None) -> float:
    h = homes() if h is None else h
    ex = None if g is None else gate_exits(h, g)
    return float(nearest_by_kind(NET, h, fac, exits=ex)["clinic"].iloc[0])


def test_a_gate_on_the_far_side_changes_the_walk_both_ways() -> None:
    assert dist(K1, None) == pytest.approx(1840)
    assert dist(K2, None) == pytest.approx(540)
    assert dist(K1, gates(GS)) == pytest.approx(760)
    assert dist(K2, gates(GS)) == pytest.approx(2060)
    # with both gates the shorter way out counts
    assert dist(K1, gates(GN, GS)) == pytest.approx(760)
    assert dist(K2, gates(GN, GS)) == pytest.approx(540)


def test_a_compound_without_gates_falls_back_and_says_so() -> None:
    h = gpd.GeoDataFrame({"population": [100, 50, 20], "compound_id": ["A", "B", None]},
                         geometry=[Point(500, 260), Point(800, 100), Point(900, 150)], crs=CRS)
    ex = gate_exits(h, gates(GS))
    assert ex.via.tolist() == ["gate", "street", "no_compound"]
    d = nearest_by_kind(NET, h, K1, exits=ex)["clinic"].to_numpy()
    plain = nearest_by_kind(NET, h, K1)["clinic"].to_numpy()
    assert d[0] == pytest.approx(760) and plain[0] == pytest.approx(1840)
    np.testing.assert_allclose(d[1:], plain[1:])  # B and the loose building: today's rule
    assert ex.summary(np.array([100, 50, 20.0])) == {
        "compounds_with_gates": 1, "compounds_without_gates": 1, "gates": 1,
        "residents_via_gates": 100, "residents_without_gates": 50, "residents_outside_compounds": 20}
    table = ex.table()
    assert table.loc[0, "gate"] == "g0" and table.loc[0, "gate_walk_m"] == pytest.approx(240)
    assert pd.isna(table.loc[1, "gate"])


def test_buildings_without_compound_id_are_placed_by_the_compound_polygon() -> None:
    comp = gpd.GeoDataFrame({"id": ["A"]}, geometry=[COMPOUND_A], crs=CRS)
    ex = gate_exits(homes(None), gates(GS), compounds=comp)
    assert ex.compound.tolist() == ["A"] and ex.via.tolist() == ["gate"]


def test_vehicle_gates_can_be_left_out() -> None:
    g = gates(GN, GS)
    g.loc["g0", "kind"] = "vehicle"
    ex = gate_exits(homes(), g, gate_kinds=("pedestrian", "mixed"))
    assert float(nearest_by_kind(NET, homes(), K2, exits=ex)["clinic"].iloc[0]) == pytest.approx(2060)


def test_elderly_and_default_speed_both_reported_through_the_gate() -> None:
    # 15 min: 900 m at 3.6 km/h, 750 m at 3.0 km/h; through the south gate K1 is 760 m away
    h = homes()
    near = nearest_by_kind(NET, h, K1, exits=gate_exits(h, gates(GS)))
    t = coverage_table(NET, h, K1, minutes=(15,), speed_kmh=3.6, nearest=near)
    assert (t["covered"].iloc[0], t["elderly_covered"].iloc[0]) == (100, 0)
    plain = coverage_table(NET, h, K1, minutes=(15,), speed_kmh=3.6)
    assert (plain["covered"].iloc[0], plain["elderly_covered"].iloc[0]) == (0, 0)


def test_accessibility_in_lonlat_routes_through_gates_and_reports_it() -> None:
    shift = (667_000.0, 3_540_000.0)

    def ll(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        return gdf.set_geometry(gdf.geometry.translate(*shift)).to_crs(4326)

    h = gpd.GeoDataFrame({"population": [100, 50], "compound_id": ["A", "B"]},
                         geometry=[Point(500, 260), Point(800, 100)], crs=CRS)
    comp = gpd.GeoDataFrame({"id": ["A", "B"]}, geometry=[COMPOUND_A, box(700, 20, 900, 280)], crs=CRS)
    res = accessibility(ll(ROADS), ll(h), ll(K1), minutes=(15,), speed_kmh=3.6, n_sites=0,
                        gates=ll(gates(GS)), compounds=ll(comp))
    row = res.coverage.iloc[0]
    # A (760 m via its gate) is covered at 3.6 km/h but not at 3.0; B steps onto S (80 + 200 m)
    assert (row["covered"], row["elderly_covered"]) == (150, 50)
    note = next(n for n in res.notes if n["code"] == "gates.access.routing")
    assert (note["compounds_with_gates"], note["compounds_without_gates"]) == (1, 1)
    assert res.exits["via"].tolist() == ["gate", "street"]
    plain = accessibility(ll(ROADS), ll(h), ll(K1), minutes=(15,), speed_kmh=3.6, n_sites=0)
    assert plain.coverage.iloc[0]["covered"] == 50 and plain.exits.empty


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.floats(5, 995), st.floats(5, 295)), min_size=1, max_size=6),
       st.lists(st.tuples(st.floats(0, 1000), st.sampled_from([0.0, 300.0])), min_size=1, max_size=3))
def test_gate_properties(spots: list[tuple[float, float]], extra: list[tuple[float, float]]) -> None:
    h = gpd.GeoDataFrame({"population": [1] * len(spots), "compound_id": [f"c{i}" for i in range(len(spots))]},
                         geometry=[Point(x, y) for x, y in spots], crs=CRS)
    fac = gpd.GeoDataFrame({"kind": ["clinic", "clinic"]}, geometry=[Point(1000, 0), Point(1000, 300)],
                           crs=CRS)
    plain = nearest_by_kind(NET, h, fac)["clinic"].to_numpy()
    # a gate right at each building changes nothing
    at_home = gpd.GeoDataFrame({"compound_id": h["compound_id"]}, geometry=h.geometry, crs=CRS)
    same = nearest_by_kind(NET, h, fac, exits=gate_exits(h, at_home))["clinic"].to_numpy()
    np.testing.assert_allclose(same, plain, atol=1e-6)
    # one gate on a street per compound: never shorter than the straight walk to it plus the street;
    # adding a second gate never makes the walk longer
    g1 = gpd.GeoDataFrame({"compound_id": h["compound_id"]},
                          geometry=[Point(extra[0][0], extra[0][1])] * len(h), crs=CRS)
    d1 = nearest_by_kind(NET, h, fac, exits=gate_exits(h, g1))["clinic"].to_numpy()
    walk = h.geometry.distance(Point(extra[0])).to_numpy()
    street = float(nearest_by_kind(NET, gpd.GeoDataFrame(geometry=[Point(extra[0])], crs=CRS),
                                   fac.assign(kind="clinic"))["clinic"].iloc[0])
    np.testing.assert_allclose(d1, walk + street, atol=1e-6)
    g2 = gpd.GeoDataFrame(
        {"compound_id": list(h["compound_id"]) * 2},
        geometry=[Point(extra[0])] * len(h) + [Point(extra[-1])] * len(h), crs=CRS)
    d2 = nearest_by_kind(NET, h, fac, exits=gate_exits(h, g2))["clinic"].to_numpy()
    assert (d2 <= d1 + 1e-6).all()


def test_suggested_site_is_on_the_side_of_the_gate() -> None:
    # 5 min at 3.6 km/h = 300 m; the clinic K1 is beyond it either way; two candidate sites
    cand = gpd.GeoDataFrame(geometry=[Point(500, 300), Point(500, 0)], crs=CRS)
    h = homes()
    # the site model gathers demand at street nodes: a node every 20 m
    net = build_walk_network(ROADS.set_geometry(ROADS.geometry.segmentize(20.0)))
    plain, _ = suggest_sites(net, h, K1, kind="clinic", n_sites=1, minutes=5, speed_kmh=3.6,
                             candidates=cand, solver="greedy")
    gated, _ = suggest_sites(net, h, K1, kind="clinic", n_sites=1, minutes=5, speed_kmh=3.6,
                             candidates=cand, solver="greedy", exits=gate_exits(h, gates(GS)))
    assert plain.geometry.iloc[0].equals(Point(500, 300))  # 40 m from the north street
    assert gated.geometry.iloc[0].equals(Point(500, 0))  # 240 + 20 m through the south gate
    assert plain["added_covered"].iloc[0] == gated["added_covered"].iloc[0] == 100
