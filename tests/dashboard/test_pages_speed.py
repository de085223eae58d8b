"""Page speed without changed answers (issue 14): the hotspot counts from the incident-cell
summary, the cached data version, the wall's bucketed fix reads, the GeoJSON text cache, and
the patrol summary warmed after a demo write. Each against the plain path on the small demo.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboard import _hotspots as hot
from dashboard import _map_elements as elements
from dashboard import _wall as wall
from dashboard import maps, state
from dashboard._incidents import IncidentFilter
from data.demo import DEMO_ANCHOR
from layers import accounts, summaries
from layers.store import open_store

NOW = pd.Timestamp(DEMO_ANCHOR).tz_localize(None) if pd.Timestamp(DEMO_ANCHOR).tzinfo else pd.Timestamp(DEMO_ANCHOR)


def _raw(store, res: int, flt: IncidentFilter) -> pd.DataFrame:
    return store.h3_counts("incidents", res=res, where=flt.where() or None, between=flt.between() or None)


# --------------------------------------------------------------------------- hotspot summary


@pytest.mark.parametrize("res", [7, 8, 9])
@pytest.mark.parametrize(("start", "end", "cats"), [
    (NOW - pd.Timedelta(days=365), NOW + pd.Timedelta(seconds=1), ()),      # the page's default
    (pd.Timestamp("2026-11-16"), pd.Timestamp("2026-11-23"), ()),            # one whole ISO week
    (pd.Timestamp("2026-11-17 09:30"), pd.Timestamp("2026-11-19"), ()),      # inside one week
    (None, pd.Timestamp("2026-10-01 12:00"), ("01", "02")),                  # open start
    (pd.Timestamp("2026-06-03 00:00:01"), None, ("05",)),                    # open end
])
def test_summary_counts_equal_the_raw_group_by(demo_store, res, start, end, cats) -> None:
    flt = IncidentFilter(start=start, end=end, categories=cats)
    assert hot.summary_allows(res, flt)
    with open_store(demo_store) as store:
        got, want = hot.summary_counts(store, res, flt), _raw(store, res, flt)
    pd.testing.assert_frame_equal(got, want)
    assert want["count"].sum() > 0 or cats  # something was counted


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.integers(0, 400 * 24), hours=st.integers(1, 200 * 24), res=st.sampled_from([7, 8, 9]))
def test_any_window_counts_the_same(demo_store, first, hours, res) -> None:
    start = NOW - pd.Timedelta(days=400) + pd.Timedelta(hours=first, minutes=first % 60)
    flt = IncidentFilter(start=start, end=start + pd.Timedelta(hours=hours))
    with open_store(demo_store) as store:
        pd.testing.assert_frame_equal(hot.summary_counts(store, res, flt), _raw(store, res, flt))


def test_filters_the_summary_cannot_answer_use_the_raw_rows() -> None:
    window = {"start": NOW - pd.Timedelta(days=30), "end": NOW}
    assert hot.summary_allows(8, IncidentFilter(**window, categories=("01",)))
    assert not hot.summary_allows(10, IncidentFilter(**window))  # finer than the summary
    assert not hot.summary_allows(9, IncidentFilter(**window, sources=("hotline",)))
    assert not hot.summary_allows(9, IncidentFilter(**window, items=("0101",)))
    assert not hot.summary_allows(9, IncidentFilter(**window), by=("grid_code",))
    assert not hot.summary_allows(9, IncidentFilter())  # no window: the indexed GROUP BY is faster


def test_the_page_counts_come_from_the_summary_and_match(env) -> None:
    flt = IncidentFilter(start=NOW - pd.Timedelta(days=90), end=NOW + pd.Timedelta(seconds=1))
    with open_store(env) as store:
        want = _raw(store, 8, flt)
    pd.testing.assert_frame_equal(hot.h3_counts(8, flt), want)


# --------------------------------------------------------------------------- data version


def test_the_data_version_follows_writes_and_a_replaced_file(env, tmp_path, monkeypatch) -> None:
    path = tmp_path / "copy.gpkg"
    shutil.copy(env, path)
    monkeypatch.setenv("GRIDPULSE_STORE", str(path))
    first = state.data_version()
    assert first != "empty" and state.data_version() == first
    with open_store(str(path)) as store:  # a sign-in changes no layer: the caches stay
        accounts.create_account(store, "speed-test", "speed-test-password", role="admin", actor="tests")
        accounts.sign_in(store, "speed-test", "speed-test-password")
    assert state.data_version() == first
    with open_store(str(path)) as store:  # a data write moves it
        grids = store.read("grids")
        store.write({"grids": grids}, mode="replace", actor="tests", note="same grids again")
    second = state.data_version()
    assert second != first and "same grids again" in second
    # audited reads (each view of the case board, patrol hours, hotspots) change no layer: more
    # of them than one look-back holds still give the same token, in this process and a new one
    with open_store(str(path)) as store:
        for i in range(3):
            store.record("analysis_kpis", "incidents", rows=i, actor="speed-test", note=f"view {i}")
        assert state.data_version() == second
        for i in range(120):
            store.record("analysis_patrols", "patrol_points", rows=i, actor="speed-test")
    assert state.data_version() == second
    state._VERSIONS.clear()  # a new dashboard process: looks back past the read rows
    assert state.data_version() == second
    os.replace(shutil.copy(env, tmp_path / "other.gpkg"), path)  # a new file at the same path
    assert state.data_version() == first


# --------------------------------------------------------------------------- wall


@pytest.mark.parametrize("offset_s", [0, -7 * 60, -3600, -(10 * 3600 - 1), -(27 * 3600 + 121)])
def test_the_wall_reads_the_same_recent_fixes_as_a_read_of_its_minutes(env, offset_s) -> None:
    now = NOW + pd.Timedelta(seconds=offset_s)
    got = wall.recent_fixes(now)
    with open_store(env) as store:
        want = store.read("patrol_points", columns=["worker_id", "time"],
                          between={"time": (now - pd.Timedelta(minutes=10), now + pd.Timedelta(seconds=1))})
    key = ["worker_id", "time"]
    got = got[key].sort_values(key).reset_index(drop=True)
    want = want[key].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want)
    if offset_s in (0, -7 * 60, -3600):  # the demo's workers are out on the anchor's afternoon
        assert len(want) > 0


# --------------------------------------------------------------------------- GeoJSON text


def _shapes() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"code": ["a", "b", "c"], "name": ["</script><b>x</b>", "网格 & \"2\"", None]},
        geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1), None], crs=4326)


def test_polygon_layers_write_the_same_script_once_per_content() -> None:
    gdf = _shapes()
    kw = {"name": "t", "styles": [{"color": "#111"}, {"color": "#222"}], "tooltip": [("name", "名称")]}
    cached = maps.PolygonLayer(gdf, style_index=[1, 0, 0], **kw)
    plain = elements.PolygonLayer(gdf, style_index=[1, 0, 0], **kw)
    assert cached.data_js == plain.data_js
    assert cached.data == json.loads(plain.data_js)  # the collection, as the browser gets it
    assert cached._get_self_bounds() == plain._get_self_bounds()
    assert "</script>" not in cached.data_js  # still escaped for a <script>
    again = maps.PolygonLayer(gdf.copy(), style_index=np.array([1, 0, 0]), **kw)
    assert again.data_js is cached.data_js  # the same text object: built once
    other = maps.PolygonLayer(gdf, style_index=[0, 0, 0], **kw)
    assert other.data_js != cached.data_js and '"_s":0' in other.data_js
    moved = gdf.copy()
    moved.geometry = [shapely.box(0, 0, 1, 2), gdf.geometry.iloc[1], None]
    assert maps.PolygonLayer(moved, style_index=[1, 0, 0], **kw).data_js != cached.data_js
    with pytest.raises(ValueError, match="one entry per feature"):
        maps.PolygonLayer(gdf, style_index=[0], **kw)


# --------------------------------------------------------------------------- serve


def test_a_demo_write_is_followed_by_the_patrol_summary(env, tmp_path) -> None:
    from gridpulse.commands.serve import warm_summaries

    path = tmp_path / "copy.gpkg"
    shutil.copy(env, path)
    with open_store(str(path)) as store:
        fixes = store.read("patrol_points")
        store.write({"patrol_points": fixes}, mode="replace", actor="demo", note="fixes again")
        with summaries._reading(store) as tx:
            assert tx.basis("patrol") is None  # a replace leaves it to the first read
        assert warm_summaries(store) >= 0
        with summaries._reading(store) as tx:
            assert tx.basis("patrol") is not None
        days = summaries.patrol_days(store)
    with open_store(env) as original:
        assert days == summaries.patrol_days(original) and days


def test_serve_warms_after_the_fill(tmp_path) -> None:
    from gridpulse.commands import serve

    url = str(tmp_path / "fresh.gpkg")
    fill = serve.start_demo(url, preset="small", lang="en", anchor="2026-11-20 16:00", out=io.StringIO())
    assert fill is not None and fill.finish()
    with open_store(url) as store, summaries._reading(store) as tx:
        assert tx.basis("patrol") is None
    assert fill.warm()
    assert "built ahead" in fill.out.getvalue()
    with open_store(url) as store, summaries._reading(store) as tx:
        assert tx.basis("patrol") is not None


def test_timed_sections_are_written_only_when_asked(tmp_path, monkeypatch) -> None:
    log = tmp_path / "t.jsonl"
    monkeypatch.delenv(state.TIMING_ENV, raising=False)
    with state.timed("off"):
        pass
    assert not log.exists()
    monkeypatch.setenv(state.TIMING_ENV, str(log))
    with state.timed("on"):
        sum(range(1000))
    rec = json.loads(log.read_text().splitlines()[0])
    assert rec["name"] == "on" and rec["s"] >= 0 and rec["cpu_s"] >= 0
    assert Path(log).read_text().count("\n") == 1
