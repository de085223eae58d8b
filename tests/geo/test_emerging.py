"""Emerging hot spots: the cube, space-time Gi* (checked by esda), Mann–Kendall, the 17 classes."""

from __future__ import annotations

import os

import h3.api.basic_int as h3i
import numpy as np
import pandas as pd
import pymannkendall
import pytest

from geo.emerging import (
    PATTERNS,
    SpaceTimeCube,
    classify_emerging,
    emerging_hotspots,
    mann_kendall,
    space_time_cube,
    space_time_gi_star,
)
from geo.hotspots import hex_weights

os.environ.setdefault("NUMBA_DISABLE_JIT", "1")

CENTRE = int(h3i.latlng_to_cell(32.06, 118.78, 9))
CODE = {v: k for k, v in PATTERNS.items()}


def disk(k: int, centre: int = CENTRE) -> np.ndarray:
    return np.array(sorted(h3i.grid_disk(centre, k)), dtype=np.uint64).view(np.int64)


# ----------------------------------------------------------------------------- Mann–Kendall


@pytest.mark.parametrize("steps", [4, 12, 52])
def test_mann_kendall_matches_pymannkendall(steps: int) -> None:
    rng = np.random.default_rng(steps)
    x = rng.integers(0, 4, (30, steps)).astype(float)  # many ties
    x[:5] += np.arange(steps) * 0.3  # and some trends
    got = mann_kendall(x)
    for i, row in enumerate(x):
        ref = pymannkendall.original_test(row)
        assert got.s[i] == ref.s
        assert got.var_s[i] == pytest.approx(ref.var_s)
        assert got.z[i] == pytest.approx(ref.z, abs=1e-12)
        assert got.p[i] == pytest.approx(ref.p, abs=1e-12)
        assert got.tau[i] == pytest.approx(ref.Tau)


def test_mann_kendall_edge_cases() -> None:
    flat = mann_kendall(np.full((2, 8), 3.0))
    assert flat.z.tolist() == [0.0, 0.0] and flat.p.tolist() == [1.0, 1.0]
    one = mann_kendall([5.0, 4.0, 3.0, 2.0])
    assert one.s.tolist() == [-6.0] and one.tau.tolist() == [-1.0]
    with pytest.raises(ValueError, match="NaN"):
        mann_kendall([[1.0, np.nan, 2.0]])


# ----------------------------------------------------------------------------- the cube


def test_cube_steps_end_at_the_end_and_drop_partial_leading_steps() -> None:
    a, b = disk(1)[:2]
    end = pd.Timestamp("2025-03-31")  # a Monday; steps are the 4 weeks before it
    times = pd.to_datetime([
        "2025-03-30 23:59", "2025-03-24 00:00", "2025-03-23 12:00",  # weeks 4, 4, 3
        "2025-03-03 00:00", "2025-03-02 23:00",  # week 1, and before the cube
        "2025-03-31 00:00",  # at the end: outside
    ])
    cells = np.array([a, a, b, b, a, a])
    cube = space_time_cube(cells, times, step="7D", end=end, n_steps=4)
    assert list(cube.starts) == list(pd.date_range("2025-03-03", periods=4, freq="7D"))
    assert cube.cells.tolist() == sorted([a, b])
    got = dict(zip(cube.cells.tolist(), cube.counts.tolist(), strict=True))
    assert got[a] == [0, 0, 0, 2] and got[b] == [1, 0, 1, 0]
    # default: as many full steps as fit from the first point, the end just after the last
    cube2 = space_time_cube(cells[:5], times[:5])
    assert cube2.starts[-1] + cube2.step == pd.Timestamp("2025-03-31") and len(cube2.starts) == 4
    # a study area adds empty locations and drops points elsewhere
    dom = disk(1)[1:]
    cube3 = space_time_cube(cells, times, end=end, n_steps=4, domain=dom)
    assert cube3.cells.tolist() == dom.tolist() and cube3.counts.sum() == 2
    with pytest.raises(ValueError, match="no full time step"):
        space_time_cube(cells, times, end=end, start="2025-03-30")


@pytest.mark.filterwarnings("ignore:The weights matrix is not fully connected")
def test_space_time_gi_star_agrees_with_esda_on_space_time_weights() -> None:
    import esda
    import libpysal

    rng = np.random.default_rng(5)
    cells = disk(2)
    n, steps = cells.size, 6
    x = rng.poisson(3, (n, steps)).astype(float)
    w = hex_weights(cells)
    for lag in (0, 1, 2):
        got = space_time_gi_star(x, w, time_step=lag)
        # the same neighbourhood as explicit weights on the n * T bins (bin id = i * T + t)
        nb = {}
        for i in range(n):
            js = w.indices[w.indptr[i]:w.indptr[i + 1]]
            for t in range(steps):
                nb[i * steps + t] = [int(j * steps + s) for j in js for s in range(max(0, t - lag), t + 1)
                                     if (j, s) != (i, t)]
        ref = esda.G_Local(x.ravel(), libpysal.weights.W(nb, silence_warnings=True), transform="B",
                           star=True, permutations=0)
        assert np.abs(got.z.ravel() - ref.Zs).max() < 1e-9


# ----------------------------------------------------------------------------- the classes


def masks(series: str) -> tuple[np.ndarray, np.ndarray]:
    """'H' hot, 'C' cold, '.' neither, one character per time step."""
    s = np.array(list(series))
    return (s == "H")[None, :], (s == "C")[None, :]


UP, DOWN, FLAT = (3.0, 0.001), (-3.0, 0.001), (0.5, 0.6)

CASES = [
    # name, series, trend of the z-scores
    ("no_pattern", "..........", FLAT),
    ("no_pattern", "...HH.....", FLAT),  # hot once, not at the end, not 90 %
    ("new_hot", ".........H", FLAT),
    ("consecutive_hot", "......HHHH", UP),
    ("intensifying_hot", "HHHHHHHHHH", UP),
    ("persistent_hot", "HHHHHHHHHH", FLAT),
    ("persistent_hot", ".HHHHHHHHH", (3.0, 0.2)),  # 90 %, trend not significant
    ("diminishing_hot", "HHHHHHHHHH", DOWN),
    ("sporadic_hot", "..H..H...H", FLAT),
    ("sporadic_hot", "H.....HHHH", FLAT),  # hot before the final run: not consecutive
    ("oscillating_hot", "..C.....HH", FLAT),
    ("oscillating_hot", "CCCCCCCCCH", FLAT),  # a final hot step wins over historical cold
    ("oscillating_hot", "C........H", FLAT),  # cold before: oscillating, not new
    ("historical_hot", "HHHHHHHHH.", DOWN),
    ("historical_hot", "HHHHHHHHHC", FLAT),
    ("new_cold", ".........C", FLAT),
    ("consecutive_cold", ".......CCC", DOWN),
    ("intensifying_cold", "CCCCCCCCCC", DOWN),
    ("persistent_cold", "CCCCCCCCCC", FLAT),
    ("diminishing_cold", "CCCCCCCCCC", UP),
    ("sporadic_cold", "C..C.C...C", FLAT),
    ("oscillating_cold", ".H.......C", FLAT),
    ("historical_cold", "CCCCCCCCC.", FLAT),
]


@pytest.mark.parametrize(("name", "series", "trend"), CASES, ids=[f"{c[0]}:{c[1]}" for c in CASES])
def test_each_class_on_a_constructed_series(name: str, series: str, trend: tuple[float, float]) -> None:
    hot, cold = masks(series)
    got = classify_emerging(hot, cold, [trend[0]], [trend[1]], trend_alpha=0.10)
    assert PATTERNS[int(got[0])] == name


def test_all_17_classes_are_covered_and_rows_are_independent() -> None:
    assert {c[0] for c in CASES} == set(PATTERNS.values()) and len(PATTERNS) == 17
    hot = np.vstack([masks(s)[0] for _, s, _ in CASES])
    cold = np.vstack([masks(s)[1] for _, s, _ in CASES])
    tz = [c[2][0] for c in CASES]
    tp = [c[2][1] for c in CASES]
    got = classify_emerging(hot, cold, tz, tp)
    assert [PATTERNS[int(v)] for v in got] == [c[0] for c in CASES]


def rings(cells: np.ndarray, centre: int) -> list[int]:
    inside = {c: i for i, c in enumerate(cells.tolist())}
    return [inside[c] for c in h3i.grid_disk(centre, 1) if c in inside]


def cube_of(x: np.ndarray, cells: np.ndarray) -> SpaceTimeCube:
    steps = x.shape[1]
    return SpaceTimeCube(cells, pd.date_range("2025-01-06", periods=steps, freq="7D"), pd.Timedelta("7D"), x)


def test_end_to_end_on_constructed_cubes() -> None:
    cells = disk(4)
    n, steps = cells.size, 12
    a, b = int(cells[0]), int(cells[-1])  # two far corners of the disk
    # background 1 everywhere; a steady cluster in the centre; a cluster growing at b
    x = np.ones((n, steps))
    x[rings(cells, CENTRE)] = 27
    x[rings(cells, b)] = np.linspace(15, 40, steps)
    out = emerging_hotspots(cube_of(x, cells))
    assert out.loc[CENTRE, "pattern"] == "persistent_hot"
    assert out.loc[b, "pattern"] == "intensifying_hot"
    assert out["count"].sum() == x.sum() and out.index.tolist() == cells.tolist()
    # a cluster fading at b (still hot at the end)
    x[rings(cells, b)] = np.linspace(60, 30, steps)
    assert emerging_hotspots(cube_of(x, cells)).loc[b, "pattern"] == "diminishing_hot"
    # a cluster appearing in the last week only at a
    y = np.ones((n, steps))
    y[rings(cells, CENTRE)] = 6
    y[rings(cells, a), -1] = 12
    out = emerging_hotspots(cube_of(y, cells))
    assert out.loc[a, "pattern"] == "new_hot" and out.loc[CENTRE, "pattern"] == "persistent_hot"
    # an empty patch in a busy district is a cold spot all along
    z = np.full((n, steps), 8.0)
    z[rings(cells, a)] = 0
    assert emerging_hotspots(cube_of(z, cells)).loc[a, "pattern"] == "persistent_cold"


def test_emerging_needs_two_steps() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        emerging_hotspots(cube_of(np.ones((7, 1)), disk(1)))
