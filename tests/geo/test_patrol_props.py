"""Property tests of geo.patrol: invariants that hold for any track."""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Transformer
from scipy.spatial import cKDTree

from geo._patrol_visits import near_pairs
from geo.patrol import CleaningRules, clean_fixes, coverage, time_in_grid
from tests.geo.test_patrol import DAY, G1, G2, make_buildings, make_fixes, make_grids, make_workers

DAY0 = pd.Timestamp(DAY)
PROPS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

step = st.tuples(
    st.integers(1, 2400),  # seconds to the next fix
    st.floats(-250, 250),  # dx (m)
    st.floats(-250, 250),  # dy (m)
)


@st.composite
def tracks(draw, *, days: int = 1) -> pd.DataFrame:
    rows = []
    for worker in draw(st.lists(st.sampled_from(["w1", "w2", "w3"]), min_size=1, max_size=3, unique=True)):
        t = DAY0 + pd.Timedelta(seconds=draw(st.integers(0, 86_399 * days)))
        x, y = draw(st.floats(-100, 1100)), draw(st.floats(-100, 600))
        for dt, dx, dy in draw(st.lists(step, min_size=1, max_size=40)):
            if t >= DAY0 + pd.Timedelta(days=days):
                break
            rows.append((worker, t, x, y))
            t += pd.Timedelta(seconds=dt)
            x, y = x + dx, y + dy
            if draw(st.booleans()) and draw(st.booleans()):  # now and then stand still with drift
                for k in range(draw(st.integers(2, 12))):
                    rows.append((worker, t + pd.Timedelta(seconds=20 * k), x + (k % 3), y - (k % 2)))
                t += pd.Timedelta(seconds=20 * 12 + 1)
    end = DAY0 + pd.Timedelta(days=days)
    return make_fixes([r for r in rows if r[1] < end])


WORKERS = make_workers(("w1", G1, "A"), ("w2", G1, "B"), ("w3", G2, "A"))


@PROPS
@given(tracks())
def test_time_in_grid_never_exceeds_the_time_between_first_and_last_fix(fixes) -> None:
    out = time_in_grid(fixes, make_grids(), WORKERS, day=DAY)
    span_h = ((out["last_fix"] - out["first_fix"]).dt.total_seconds() / 3600).fillna(0.0)
    assert (out["hours_in_grid"] <= out["hours_tracked"] + 1e-9).all()
    assert (out["hours_tracked"] <= span_h + 1e-9).all()
    assert (out["hours_in_grid"] >= 0).all() and (out["distance_km"] >= 0).all()


@PROPS
@given(tracks(days=2))
def test_days_add_up_to_at_most_the_whole_track(fixes) -> None:
    clean = clean_fixes(fixes)
    days = [time_in_grid(clean, make_grids(), WORKERS, day=DAY0 + pd.Timedelta(days=d)) for d in (0, 1)]
    total = days[0]["hours_in_grid"] + days[1]["hours_in_grid"]
    t = clean.fixes.groupby("worker_id")["time"].agg(["min", "max"])
    span = ((t["max"] - t["min"]).dt.total_seconds() / 3600).reindex(WORKERS["id"]).fillna(0.0)
    assert (total.to_numpy() <= span.to_numpy() + 1e-9).all()


@PROPS
@given(tracks(), st.randoms(use_true_random=False))
def test_results_do_not_depend_on_row_order(fixes, rnd) -> None:
    order = list(range(len(fixes)))
    rnd.shuffle(order)
    a = clean_fixes(fixes)
    b = clean_fixes(fixes.iloc[order])
    assert sorted(a.fixes.index) == sorted(b.fixes.index)
    assert a.summary.equals(b.summary)
    ta = time_in_grid(a, make_grids(), WORKERS, day=DAY)
    tb = time_in_grid(b, make_grids(), WORKERS, day=DAY)
    pd.testing.assert_frame_equal(ta, tb)
    assert len(a.fixes) + len(a.dropped) == len(fixes)


def reference_hours(clean, grids, workers, day: pd.Timestamp, cap_s: float) -> dict[str, float]:
    """Time in own grid by a plain loop over intervals: the rule as written in the issue."""
    polys = dict(zip(grids["code"], grids.to_crs(clean.crs).geometry, strict=True))
    own = dict(zip(workers["id"], workers["grid_code"], strict=True))
    lo, hi = day, day + pd.Timedelta(days=1)
    out = {w: 0.0 for w in workers["id"]}
    for w, g in clean.fixes.groupby("worker_id"):
        poly = polys[own[w]]
        rows = list(zip(g["time"], g["x_m"], g["y_m"], g["stay_id"], strict=True))
        for (t0, x0, y0, s0), (t1, x1, y1, s1) in zip(rows, rows[1:], strict=False):
            dt = (t1 - t0).total_seconds()
            half = dt / 2 if (s0 >= 0 and s0 == s1) else min(dt, cap_s) / 2
            for a, b, x, y in ((t0, t0 + pd.Timedelta(seconds=half), x0, y0),
                               (t1 - pd.Timedelta(seconds=half), t1, x1, y1)):
                if poly.intersects(shapely.Point(x, y)):
                    ov = (min(b, hi) - max(a, lo)).total_seconds()
                    out[w] += max(ov, 0.0) / 3600
    return out


@PROPS
@given(tracks(days=2), st.sampled_from([300.0, 600.0, 1800.0]))
def test_vectorised_time_in_grid_matches_a_plain_loop(fixes, cap_s) -> None:
    rules = CleaningRules(max_gap_s=cap_s)
    clean = clean_fixes(fixes, rules=rules)
    for d in (0, 1):
        day = DAY0 + pd.Timedelta(days=d)
        got = time_in_grid(clean, make_grids(), WORKERS, day=day).set_index("worker_id")["hours_in_grid"]
        want = reference_hours(clean, make_grids(), WORKERS, day, cap_s)
        for w, h in want.items():
            assert abs(got[w] - h) < 1e-9, (w, got[w], h)


@PROPS
@given(tracks(days=3), st.integers(0, 2), st.integers(0, 2), st.integers(1, 3), st.integers(0, 2))
def test_coverage_is_monotone_in_the_window(fixes, s_inner, s_shift, length, e_shift) -> None:
    start_in = DAY0 + pd.Timedelta(hours=12 * s_inner)
    end_in = start_in + pd.Timedelta(hours=12 * length)
    start_out = start_in - pd.Timedelta(hours=12 * s_shift)
    end_out = end_in + pd.Timedelta(hours=12 * e_shift)
    clean = clean_fixes(fixes)
    inner = coverage(clean, make_grids(), make_buildings(), start=start_in, end=end_in)
    outer = coverage(clean, make_grids(), make_buildings(), start=start_out, end=end_out)
    for col in ("building_share", "area_share", "buildings_visited", "cells_visited"):
        a = inner.per_grid[col].fillna(0).to_numpy()
        b = outer.per_grid[col].fillna(0).to_numpy()
        assert (b >= a - 1e-12).all(), col
    assert (outer.cells["visited"] | ~inner.cells["visited"]).all()


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 60), st.integers(1, 400), st.floats(1, 80))
def test_near_pairs_finds_every_pair_within_the_radius(seed, n_places, n_points, radius) -> None:
    rng = np.random.default_rng(seed)
    places = rng.uniform(0, 200, (n_places, 2))
    pts = rng.uniform(-20, 220, (n_points, 2))
    qi, pj, d = near_pairs(cKDTree(places), pts[:, 0], pts[:, 1], radius_m=radius, k=2)
    got = set(zip(qi.tolist(), pj.tolist(), strict=True))
    dist = np.hypot(pts[:, None, 0] - places[None, :, 0], pts[:, None, 1] - places[None, :, 1])
    want = set(zip(*map(np.ndarray.tolist, np.nonzero(dist <= radius)), strict=True))
    assert got == want
    assert np.allclose(d, dist[qi, pj])


def test_reference_loop_agrees_on_a_fixed_track() -> None:
    """The oracle itself, on the hand-built crossing track (13 of 20 minutes inside)."""
    from tests.geo.test_patrol import CROSSING_XS, walk

    clean = clean_fixes(make_fixes(walk("w1", f"{DAY} 08:00", CROSSING_XS)))
    got = reference_hours(clean, make_grids(), make_workers(), DAY0, 600.0)
    assert abs(got["w1"] - 13 / 60) < 1e-12
    # and the projection used by both is the fixes' local UTM zone
    assert Transformer.from_crs(4326, clean.crs).target_crs.is_projected
