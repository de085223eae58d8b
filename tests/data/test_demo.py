"""The demo district generator: determinism, schema, tiling, totals, places and times, scale."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data import demo
from data._frame import PRESET_SPECS
from data._world import build_world
from geo.crs import local_metric_crs
from layers.schema import SCHEMAS, STAGES

ANCHOR = pd.Timestamp(demo.DEMO_ANCHOR)
METRIC = None


@pytest.fixture(scope="module")
def small() -> dict[str, pd.DataFrame]:
    return demo.generate("small", seed=0)


def metric(df: gpd.GeoDataFrame) -> gpd.GeoSeries:
    global METRIC
    METRIC = METRIC or local_metric_crs(df)
    return df.geometry.to_crs(METRIC)


def fingerprint(layers: dict[str, pd.DataFrame]) -> dict[str, tuple[int, bytes]]:
    """A hash of every layer's attributes and the WKB of its geometries."""
    out = {}
    for name, df in layers.items():
        attrs = pd.DataFrame(df.drop(columns="geometry", errors="ignore"))
        h = int(pd.util.hash_pandas_object(attrs, index=True).sum()) if len(attrs.columns) else 0
        wkb = b"".join(shapely.to_wkb(df.geometry.values)) if "geometry" in df else b""
        out[name] = (h, wkb)
    return out


# -- determinism and schema ----------------------------------------------------------------------


def test_same_seed_gives_identical_layers_and_another_seed_does_not(small) -> None:
    again = demo.generate("small", seed=0)
    assert fingerprint(again) == fingerprint(small)
    other = demo.generate("small", seed=1)
    assert fingerprint(other)["incidents"] != fingerprint(small)["incidents"]
    assert fingerprint(other)["grids"] != fingerprint(small)["grids"]


def test_every_layer_has_exactly_the_schema_columns_and_dtypes(small) -> None:
    dtypes = {"str": "str", "code": "str", "int": "int64", "float": "float64", "bool": "bool",
              "datetime": "datetime64[us]"}
    assert list(small) == list(SCHEMAS)
    for name, df in small.items():
        s = SCHEMAS[name]
        assert [c for c in df.columns if c != "geometry"] == s.columns, name
        assert ("geometry" in df.columns) == (s.geometry is not None), name
        if s.geometry is not None:
            assert df.crs.to_epsg() == 4326
            assert shapely.is_valid(df.geometry.values).all(), name
        for f in s.fields:
            assert str(df[f.name].dtype) == dtypes[f.dtype], (name, f.name, df[f.name].dtype)
            if not f.nullable:
                assert df[f.name].notna().all(), (name, f.name)
            if f.allowed:
                assert set(df[f.name].dropna()) <= set(f.allowed), (name, f.name)
            if f.digits:
                assert df[f.name].dropna().str.fullmatch(rf"\d{{{f.digits}}}").all(), (name, f.name)
        assert df[s.key].is_unique, name


def test_unknown_preset_and_bad_seed_are_refused() -> None:
    with pytest.raises(demo.UnknownPresetError, match="small, medium, full"):
        demo.generate("huge")
    with pytest.raises(ValueError, match="non-negative"):
        demo.generate("small", seed=-1)


def test_progress_reports_every_generation_stage_in_order() -> None:
    seen: list[str] = []
    demo.generate("small", seed=2, progress=lambda stage, fraction: seen.append(stage))
    assert list(dict.fromkeys(seen)) == [s for s in demo.STAGES if s != "store"]


# -- the administrative ladder -------------------------------------------------------------------


def _assert_tiles(children: gpd.GeoDataFrame, parents: gpd.GeoDataFrame, parent_col: str) -> None:
    cm, pm = metric(children), metric(parents)
    for code, parent in zip(parents["code"], pm, strict=True):
        kids = cm[(children[parent_col] == code).to_numpy()]
        assert len(kids), code
        union = shapely.union_all(kids.values)
        assert union.symmetric_difference(parent).area < 1.0, code  # m²: no gaps, nothing outside
        assert abs(kids.area.sum() - union.area) < 1.0, code  # no overlaps


def test_grids_tile_communities_which_tile_subdistricts_which_tile_the_district(small) -> None:
    grids = small["grids"][small["grids"]["kind"] == "comprehensive"]
    _assert_tiles(grids, small["communities"], "community_code")
    _assert_tiles(small["communities"], small["subdistricts"], "subdistrict_code")
    _assert_tiles(small["subdistricts"], small["districts"], "district_code")
    assert shapely.coverage_is_valid(grids.geometry.values)  # neighbours share their vertices


def test_codes_nest_in_their_parents(small) -> None:
    g, c, s = small["grids"], small["communities"], small["subdistricts"]
    assert (g["code"].str[:12] == g["community_code"]).all()
    assert (c["code"].str[:9] == c["subdistrict_code"]).all()
    assert (s["code"].str[:6] == s["district_code"]).all()
    assert set(g["community_code"]) == set(c["code"])
    assert small["districts"]["code"].tolist() == [demo.DEMO_DISTRICT_CODE]


def test_dedicated_grids_overlay_one_comprehensive_grid_of_their_community(small) -> None:
    g = small["grids"]
    ded, comp = g[g["kind"] == "dedicated"], g[g["kind"] == "comprehensive"]
    assert len(ded) and ded["dedicated_type"].notna().all() and comp["dedicated_type"].isna().all()
    comm = small["communities"].set_index("code").geometry
    for geom, cc in zip(ded.geometry, ded["community_code"], strict=True):
        assert comm[cc].buffer(1e-7).contains(geom)
    assert (ded["households"] == 0).all()


def test_buildings_lie_in_their_grid_and_totals_add_up(small) -> None:
    b, g = small["buildings"], small["grids"].set_index("code")
    assert g.loc[b["grid_code"], "kind"].eq("comprehensive").all()
    assert shapely.contains(g.geometry.loc[b["grid_code"]].values, b.geometry.values).all()
    by_grid = b.groupby("grid_code")[["households", "population"]].sum()
    comp = g[g["kind"] == "comprehensive"]
    assert (by_grid.reindex(comp.index, fill_value=0)["households"] == comp["households"]).all()
    assert (by_grid.reindex(comp.index, fill_value=0)["population"] == comp["population"]).all()
    res = b[b["households"] > 0]
    assert (res["population"] >= res["households"]).all()
    assert (b.loc[b["kind"] == "nonresidential", "households"] == 0).all()


def test_every_grid_is_staffed_and_led(small) -> None:
    g, w = small["grids"], small["workers"]
    staff = w[w["role"] != "grid_leader"].groupby("grid_code").size()
    assert (staff.reindex(g["code"], fill_value=0).to_numpy() == g["workers"].to_numpy()).all()
    comp = g[g["kind"] == "comprehensive"]
    assert comp["workers"].between(2, 3).all() and g["leader"].notna().all()
    posts = w[w["grid_code"].isin(comp["code"]) & (w["role"] != "grid_leader")].groupby("grid_code")["post"]
    assert posts.apply(lambda p: sorted(set(p)) == ["A", "B"]).all()
    leaders = w[w["role"] == "grid_leader"]
    assert len(leaders) == len(small["communities"])
    assert set(comp["leader"]) == set(leaders["name"])


# -- incidents and patrols -----------------------------------------------------------------------


def test_incidents_and_fixes_are_inside_the_district_and_in_time(small) -> None:
    district = metric(small["districts"]).iloc[0].buffer(0.01)
    for name, col in (("incidents", "requested_datetime"), ("patrol_points", "time")):
        df = small[name]
        assert shapely.contains(district, metric(df).values).all(), name
        assert (df[col] < ANCHOR).all() and (df[col] >= ANCHOR - pd.Timedelta(days=365)).all(), name
    inc = small["incidents"]
    grids = small["grids"].set_index("code")
    assert shapely.intersects(grids.geometry.loc[inc["grid_code"]].values, inc.geometry.values).all()


def test_stage_histories_follow_the_closed_loop(small) -> None:
    inc, ev = small["incidents"], small["incident_events"]
    assert ev["time"].max() <= ANCHOR
    assert ev["service_request_id"].isin(inc["service_request_id"]).all()
    last = ev.groupby("service_request_id").tail(1).set_index("service_request_id")
    i = inc.set_index("service_request_id")
    assert (last.loc[i.index, "to_stage"] == i["stage"]).all()
    assert (last.loc[i.index, "time"] == i["updated_datetime"]).all()
    # each event starts where the previous one ended
    prev = ev.groupby("service_request_id")["to_stage"].shift()
    assert (ev["from_stage"].fillna("-") == prev.fillna("-")).all()
    assert ev.groupby("service_request_id")["time"].apply(lambda t: t.is_monotonic_increasing).all()
    first = ev.groupby("service_request_id").head(1).set_index("service_request_id")
    assert (first.loc[i.index, "time"] == i["requested_datetime"]).all()
    closed = i["stage"].isin(["closed", "evaluated", "closed_no_action"])
    assert (i["status"] == np.where(closed, "closed", "open")).all()
    assert i.loc[closed, "closed_datetime"].notna().all() and i.loc[~closed, "closed_datetime"].isna().all()
    assert (i["expected_datetime"] > i["requested_datetime"]).all()
    assert set(i["stage"]) <= set(STAGES) and {"closed", "evaluated", "handling"} <= set(i["stage"])
    late = (i["closed_datetime"] > i["expected_datetime"]) | (~closed & (i["expected_datetime"] < ANCHOR))
    assert 0.02 < late.mean() < 0.3  # some overdue, most on time
    assert (i["reworks"] > 0).any() and (i["extensions"] > 0).any() and (i["whistle"] == "tough").any()


def test_incidents_have_daily_weekly_and_seasonal_rhythms(small) -> None:
    t = small["incidents"]["requested_datetime"]
    by_hour = t.dt.hour.value_counts()
    assert by_hour.reindex(range(9, 18), fill_value=0).sum() > 3 * by_hour.reindex(range(0, 6), fill_value=0).sum()
    patrol = small["incidents"]["source"] == "patrol"
    assert t[patrol].dt.hour.between(8, 17).all()
    assert (t.dt.day_of_week < 5).mean() > 5 / 7
    flooding = t[small["incidents"]["category_code"] == "04"].dt.month
    assert flooding.isin([6, 7, 8]).sum() > 1.5 * flooding.isin([12, 1, 2]).sum()  # the rainy season


def test_most_full_time_workers_spend_about_four_hours_in_their_grid(small) -> None:
    fx, w = small["patrol_points"], small["workers"].set_index("id")
    day = fx[fx["time"].dt.normalize() == ANCHOR.normalize() - pd.Timedelta(days=1)]
    assert set(day["worker_id"]) == set(w.index)  # every worker patrolled yesterday
    grids = small["grids"].set_index("code").geometry
    inside = shapely.contains(grids.loc[w.loc[day["worker_id"], "grid_code"]].values, day.geometry.values)
    dt = day.groupby("worker_id")["time"].diff().dt.total_seconds().clip(upper=60).fillna(0)
    hours = (dt * inside).groupby(day["worker_id"]).sum() / 3600
    ft = hours[w.loc[hours.index, "role"] == "full_time"]
    assert 3.8 < ft.median() < 5.2 and (ft < 2.5).any()
    gaps = day.groupby("worker_id")["time"].diff().dt.total_seconds()
    assert gaps.quantile(0.5) <= 30 and (gaps > 180).any()


# -- properties over seeds, scale, validation ----------------------------------------------------


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_invariants_hold_for_any_seed(seed: int) -> None:
    layers = demo.generate("small", seed=seed)
    grids = layers["grids"][layers["grids"]["kind"] == "comprehensive"]
    _assert_tiles(grids, layers["communities"], "community_code")
    _assert_tiles(layers["communities"], layers["subdistricts"], "subdistrict_code")
    assert grids["households"].sum() == layers["buildings"]["households"].sum()
    district = metric(layers["districts"]).iloc[0].buffer(0.01)
    assert shapely.contains(district, metric(layers["patrol_points"]).values).all()


def test_small_preset_scale(small) -> None:
    n = {k: len(v) for k, v in small.items()}
    comp = (small["grids"]["kind"] == "comprehensive").sum()
    assert n["subdistricts"] >= 2 and n["communities"] >= 3 and comp >= 20
    assert 2_000 <= n["incidents"] <= 20_000 and n["incident_events"] > 4 * n["incidents"]
    assert n["workers"] >= 2 * comp and n["patrol_points"] > 20_000
    assert n["roads"] > 100 and n["facilities"] >= 5 and n["buildings"] > 200


@pytest.mark.parametrize(("preset", "subs", "comms", "grids", "households"), [
    ("medium", 4, 32, (150, 350), (60_000, 110_000)),
    ("full", 13, 120, (820, 1_100), (300_000, 340_000)),
])
def test_medium_and_full_preset_scale(preset, subs, comms, grids, households) -> None:
    w = build_world(PRESET_SPECS[preset], np.random.default_rng(0), lambda s, f: None)
    assert w.sub_code.size == subs and w.comm_code.size == comms
    assert grids[0] <= w.n_comprehensive <= grids[1]
    assert households[0] <= w.grid_households.sum() <= households[1]
    hh = w.grid_households[: w.n_comprehensive]
    assert 0.6 < ((hh >= 300) & (hh <= 500)).mean() < 0.9  # mostly in the band, a minority outside
    if preset == "full":
        assert 27_000 <= w.bld.x.size <= 33_000 and 850_000 <= w.grid_population.sum() <= 950_000
        assert 550 <= w.grid_code.size - w.n_comprehensive <= 650
        assert 50 <= shapely.area(w.district) / 1e6 <= 60


def test_small_preset_passes_the_foundations_validation(small) -> None:
    from layers.validate import validate_layers

    report = validate_layers(small)
    errors = [(i.code, i.column, i.row) for i in report if i.severity == "error"]
    assert not errors, errors[:10]
    assert not [i for i in report if i.severity == "warning"]


def test_roads_form_one_noded_walkable_network(small) -> None:
    import networkx as nx

    roads = small["roads"]
    assert not shapely.is_empty(roads.geometry.values).any() and roads["walkable"].all()
    assert {"arterial", "local", "path"} <= set(roads["kind"])
    g = nx.Graph()
    for line in roads.geometry.values:
        xy = shapely.get_coordinates(line)
        g.add_edge(tuple(xy[0]), tuple(xy[-1]))
    parts = sorted((len(c) for c in nx.connected_components(g)), reverse=True)
    assert parts[0] > 0.95 * g.number_of_nodes()  # edges meet at shared end points


def test_layers_do_not_depend_on_the_process_hash_seed(tmp_path) -> None:
    import os
    import subprocess
    import sys

    script = tmp_path / "fp.py"
    script.write_text(
        "import hashlib, shapely, pandas as pd\n"
        "from data import demo\n"
        "h = hashlib.sha256()\n"
        "for name, df in demo.generate('small', seed=3).items():\n"
        "    a = pd.DataFrame(df.drop(columns='geometry', errors='ignore'))\n"
        "    h.update(pd.util.hash_pandas_object(a, index=True).values.tobytes())\n"
        "    if 'geometry' in df: h.update(b''.join(shapely.to_wkb(df.geometry.values)))\n"
        "print(h.hexdigest())\n", encoding="utf-8")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    digests = {
        subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True, cwd=root,
                       env={**os.environ, "PYTHONHASHSEED": str(s), "PYTHONPATH": root}).stdout
        for s in (1, 2)
    }
    assert len(digests) == 1
