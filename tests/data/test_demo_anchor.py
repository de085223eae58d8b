"""A live demo records where its history ends; the fixed demo does not (its clock stays frozen)."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import shapely

from data.demo import DEMO_ACTOR, DEMO_DISTRICT_CODE, DEMO_DISTRICT_NAME, DEMO_NOTE, demo_anchor
from layers.store import open_store


def _district() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"code": [DEMO_DISTRICT_CODE], "name": [DEMO_DISTRICT_NAME]},
                            geometry=[shapely.box(118.7, 32.0, 118.8, 32.1)], crs=4326)


def test_the_anchor_of_a_live_demo_is_read_back(tmp_path) -> None:
    with open_store(str(tmp_path / "s.gpkg")) as s:
        assert demo_anchor(s) is None  # no demo at all
        s.write({"districts": _district()}, actor=DEMO_ACTOR,
                note=f"{DEMO_NOTE} preset=small seed=0 (synthetic demo data)")
        assert demo_anchor(s) is None  # the fixed demo: frozen at DEMO_ANCHOR
        s.write({"districts": _district()}, actor=DEMO_ACTOR,
                note=f"{DEMO_NOTE} preset=small seed=0 anchor=2026-12-03T08:15:00 (synthetic)")
        assert demo_anchor(s) == pd.Timestamp("2026-12-03 08:15")
        s.write({"districts": _district()}, actor="someone", note="real boundaries")
        assert demo_anchor(s) is None  # replaced by real data: not a demo any more


def test_generate_ends_the_history_at_the_anchor() -> None:
    from data import demo

    anchor = pd.Timestamp("2026-12-03 08:15").to_pydatetime()
    layers = demo.generate("small", anchor=anchor)
    inc = layers["incidents"]["requested_datetime"]
    fixes = layers["patrol_points"]["time"]
    assert inc.max() <= anchor and fixes.max() <= anchor
    assert anchor - inc.max() < pd.Timedelta(hours=6)  # history runs up to the anchor
    assert inc.min() >= anchor - pd.Timedelta(days=366)
