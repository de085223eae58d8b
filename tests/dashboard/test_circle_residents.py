"""The 15-minute circle counts the residents the explorer counts: the scope's buildings, no neighbours'."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from dashboard import _planner as pl
from layers.store import open_store

# An L-shaped sub-district A (two communities) whose bounding box holds a building of B.
A1, A2 = shapely.box(0.0, 0.0, 0.01, 0.02), shapely.box(0.01, 0.0, 0.02, 0.01)
B1 = shapely.box(0.01, 0.01, 0.02, 0.02)  # the missing corner of the L: another sub-district


def _layers() -> dict[str, gpd.GeoDataFrame]:
    coms = gpd.GeoDataFrame({"code": ["000000001001", "000000001002", "000000002001"],
                             "name": ["A1", "A2", "B1"],
                             "subdistrict_code": ["000000001", "000000001", "000000002"]},
                            geometry=[A1, A2, B1], crs=4326)
    grids = gpd.GeoDataFrame({"code": ["000000001001001", "000000001002001", "000000002001001"],
                              "name": ["a1", "a2", "b1"], "kind": "comprehensive",
                              "community_code": coms["code"], "population": [100, 200, 4000]},
                             geometry=[A1, A2, B1], crs=4326)
    pts = [(0.005, 0.015), (0.015, 0.005), (0.015, 0.015)]
    bld = gpd.GeoDataFrame({"id": ["h1", "h2", "h3"], "population": [100, 200, 4000],
                            "grid_code": grids["code"].tolist()},
                           geometry=[shapely.Point(x, y).buffer(0.0002) for x, y in pts], crs=4326)
    roads = gpd.GeoDataFrame({"id": ["r"]}, geometry=[shapely.LineString([(0, 0), (0.02, 0.02)])], crs=4326)
    return {"communities": coms, "grids": grids, "buildings": bld, "roads": roads}


def test_a_neighbours_building_in_the_bounding_box_is_not_a_resident() -> None:
    lay = _layers()
    inp = pl.inputs_from_layers("sub:000000001", lay["communities"], lay["grids"], lay["buildings"],
                                lay["roads"])
    assert sorted(inp.units["id"]) == ["h1", "h2"]
    assert inp.units["population"].sum() == 300  # not 4,300: B's tower lies in A's bounding box


def test_circle_residents_equal_the_explorers_on_the_demo(demo_store: str) -> None:
    with open_store(demo_store) as s:
        lay = {n: s.read(n) for n in ("subdistricts", "communities", "grids", "buildings", "roads")}
    g = lay["grids"]
    for sub in lay["subdistricts"]["code"]:
        coms = lay["communities"].loc[lay["communities"]["subdistrict_code"] == sub, "code"]
        explorer = pd.to_numeric(g.loc[(g["kind"] == "comprehensive") & g["community_code"].isin(coms),
                                       "population"]).sum()
        inp = pl.inputs_from_layers(f"sub:{sub}", lay["communities"], g, lay["buildings"], lay["roads"])
        assert inp.units["population"].sum() == pytest.approx(explorer), sub
