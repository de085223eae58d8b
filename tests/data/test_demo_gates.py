"""The demo's compounds (小区) and gates (小区出入口): one compound per parcel with buildings, one
to three gates each on the outline facing a street (a few open blocks without any), and the
layers pass validation with the buildings that name them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely

from data import demo
from data._frame import METRIC_EPSG
from layers.validate import validate_layers


@pytest.fixture(scope="module")
def small() -> dict[str, pd.DataFrame]:
    return demo.generate("small", seed=0)


def test_every_building_names_a_compound_and_gates_sit_on_its_street_side(small) -> None:
    b, c, g = small["buildings"], small["compounds"], small["gates"]
    assert set(b["compound_id"]) == set(c["id"])  # exactly the parcels with buildings
    assert set(g["compound_id"]) <= set(c["id"])
    per = g.groupby("compound_id").size()
    assert per.between(1, 3).all()
    open_blocks = len(c) - len(per)
    assert 0 < open_blocks < 0.2 * len(c)  # a few open blocks (开放式街区) without gates
    cm = c.set_index("id").to_crs(METRIC_EPSG)
    gm = g.to_crs(METRIC_EPSG)
    outline = cm.boundary.reindex(g["compound_id"]).to_numpy()
    assert (shapely.distance(gm.geometry.to_numpy(), outline) < 0.5).all()
    # on a street (not a compound path) wherever the compound touches one
    roads = small["roads"].to_crs(METRIC_EPSG)
    streets = roads[roads["kind"].isin(["arterial", "secondary", "local"])].geometry.to_numpy()
    near_street = shapely.STRtree(streets).query(gm.geometry.to_numpy(), predicate="dwithin", distance=0.5)
    on_street = np.zeros(len(g), bool)
    on_street[near_street[0]] = True
    # a gate off the streets only where no street runs along the compound (paths all round)
    off = g.loc[~on_street, "compound_id"].unique()
    if off.size:
        band = shapely.buffer(shapely.union_all(streets), 0.05)
        shared = shapely.length(shapely.intersection(cm.boundary.loc[off].to_numpy(), band))
        assert (shared < 1.0).all()
    assert on_street.mean() > 0.5
    first = g.groupby("compound_id").head(1)
    assert (first["kind"] == "mixed").all() and set(g["kind"]) <= {"mixed", "pedestrian", "vehicle"}
    assert g["name"].str.endswith("门").all() and g["name"].str.len().gt(2).all()
    assert not g.duplicated(["compound_id", "name"]).any()


def test_compounds_and_gates_validate_with_the_rest(small) -> None:
    report = validate_layers({k: small[k] for k in ("communities", "compounds", "gates", "buildings")})
    bad = [i for i in report.issues if i.severity == "error"]
    assert not bad, bad[:3]


def test_an_unknown_compound_is_an_error(small) -> None:
    g = small["gates"].copy()
    g.loc[g.index[0], "compound_id"] = "C99999"
    report = validate_layers({"compounds": small["compounds"], "gates": g})
    codes = {(i.code, i.severity) for i in report.issues}
    assert ("validation.unknown_parent", "error") in codes
