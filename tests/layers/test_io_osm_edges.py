"""The OSM reader on a hand-written .osm extract with the faults real extracts have: building
ways cut at the extract's edge (nodes outside it missing), a way with only two nodes inside, a
multipolygon relation with a missing member, a self-touching outline; and roads that do not
bound blocks (tunnels, building passages, indoor corridors, driveways)."""

from __future__ import annotations

from pathlib import Path

import pytest
import shapely

from layers.i18n import t
from layers.io import read_file

# bounds 118.770-118.780 x 32.050-32.060; nodes 90-99 are referenced but not in the file
OSM = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6" generator="hand">
  <bounds minlon="118.770" minlat="32.050" maxlon="118.780" maxlat="32.060"/>
  <node id="1" lon="118.771" lat="32.051"/> <node id="2" lon="118.772" lat="32.051"/>
  <node id="3" lon="118.772" lat="32.052"/> <node id="4" lon="118.771" lat="32.052"/>
  <node id="5" lon="118.779" lat="32.051"/> <node id="6" lon="118.7795" lat="32.051"/>
  <node id="7" lon="118.7795" lat="32.052"/>
  <node id="8" lon="118.7798" lat="32.055"/> <node id="9" lon="118.7799" lat="32.055"/>
  <node id="10" lon="118.774" lat="32.054"/> <node id="11" lon="118.775" lat="32.054"/>
  <node id="12" lon="118.775" lat="32.055"/> <node id="13" lon="118.774" lat="32.055"/>
  <node id="14" lon="118.776" lat="32.056"/> <node id="15" lon="118.777" lat="32.057"/>
  <node id="16" lon="118.776" lat="32.057"/> <node id="17" lon="118.777" lat="32.056"/>
  <node id="20" lon="118.770" lat="32.053"/> <node id="21" lon="118.780" lat="32.053"/>
  <node id="22" lon="118.773" lat="32.050"/> <node id="23" lon="118.773" lat="32.060"/>
  <way id="100"><nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="4"/><nd ref="1"/>
    <tag k="building" v="apartments"/><tag k="building:levels" v="6"/></way>
  <way id="101"><nd ref="5"/><nd ref="6"/><nd ref="90"/><nd ref="91"/><nd ref="7"/><nd ref="5"/>
    <tag k="building" v="residential"/></way>
  <way id="102"><nd ref="8"/><nd ref="92"/><nd ref="93"/><nd ref="9"/><nd ref="8"/>
    <tag k="building" v="yes"/></way>
  <way id="103"><nd ref="10"/><nd ref="11"/><nd ref="12"/><nd ref="13"/><nd ref="10"/></way>
  <relation id="200"><member type="way" ref="103" role="outer"/>
    <member type="way" ref="199" role="inner"/>
    <tag k="type" v="multipolygon"/><tag k="building" v="yes"/></relation>
  <way id="104"><nd ref="14"/><nd ref="15"/><nd ref="16"/><nd ref="17"/><nd ref="14"/>
    <tag k="building" v="house"/></way>
  <way id="105"><nd ref="4"/><nd ref="3"/><tag k="building" v="no"/></way>
  <way id="300"><nd ref="20"/><nd ref="21"/><tag k="highway" v="residential"/></way>
  <way id="301"><nd ref="22"/><nd ref="23"/><tag k="highway" v="secondary"/><tag k="tunnel" v="yes"/></way>
  <way id="302"><nd ref="1"/><nd ref="3"/><tag k="highway" v="footway"/><tag k="tunnel" v="building_passage"/></way>
  <way id="303"><nd ref="10"/><nd ref="12"/><tag k="highway" v="corridor"/><tag k="level" v="1"/></way>
  <way id="304"><nd ref="5"/><nd ref="7"/><tag k="highway" v="service"/><tag k="service" v="driveway"/></way>
  <way id="305"><nd ref="2"/><nd ref="11"/><tag k="highway" v="footway"/></way>
</osm>
"""


@pytest.fixture
def osm_file(tmp_path: Path) -> Path:
    path = tmp_path / "edge.osm"
    path.write_text(OSM, encoding="utf-8")
    return path


def test_edge_buildings_are_kept_clipped_and_every_loss_is_counted(osm_file: Path) -> None:
    r = read_file(osm_file, layer="buildings")
    df = r.data.set_index("id")
    # a whole building, an edge building closed along its nodes inside, a self-touching one repaired
    assert df.loc["w100", "outline"] == "complete" and df.loc["w100", "floors"] == 6
    assert df.loc["w101", "outline"] == "clipped"
    assert df.loc["w101"].geometry.equals(
        shapely.Polygon([(118.779, 32.051), (118.7795, 32.051), (118.7795, 32.052)]))
    assert df.loc["w104", "outline"] == "repaired" and df.loc["w104"].geometry.area > 0
    # two nodes inside: cannot be built; the relation lacks its inner way: cannot be built
    assert "w102" not in df.index and "r200" not in df.index
    issues = {i.code: i for i in r.report.issues}
    lost = issues["planner.osm.buildings_incomplete"]
    assert lost.severity == "warning"
    assert (lost.params["clipped"], lost.params["repaired"], lost.params["outside_extract"],
            lost.params["broken_relations"]) == (1, 1, 1, 1)
    assert "w102" in lost.params["outside_ids"] and "r200" in lost.params["relation_ids"]
    # the summary never says "0 skipped" when some were: the two lost (w105 is no building)
    assert issues["io.pbf_read"].params["skipped"] == 2
    for lang in ("zh", "en"):
        text = t("planner.osm.buildings_incomplete", lang, **lost.params)
        assert "w102" in text and "r200" in text


def test_roads_say_whether_they_bound_blocks(osm_file: Path) -> None:
    df = read_file(osm_file, layer="roads").data.set_index("id")
    assert df["block_edge"].to_dict() == {"w300": True, "w301": False, "w302": False, "w303": False,
                                        "w304": False, "w305": True}
    assert df.loc["w301", "kind"] == "secondary" and df.loc["w303", "kind"] == "path"
