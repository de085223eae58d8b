"""Gi* on H3 cells: a hand-computed lattice, agreement with esda, FDR, classes, counting."""

from __future__ import annotations

import math
import os

import h3.api.basic_int as h3i
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import false_discovery_control

from geo.hotspots import (
    HexCellError,
    cell_resolution,
    check_cells,
    count_cells,
    fdr_threshold,
    gi_bins,
    gi_star,
    hex_weights,
    hotspots,
    rates_per_1000,
)

os.environ.setdefault("NUMBA_DISABLE_JIT", "1")  # esda's numba JIT costs ~19 s per process

CENTRE = int(h3i.latlng_to_cell(32.06, 118.78, 9))


def disk(k: int, centre: int = CENTRE) -> np.ndarray:
    return np.array(sorted(h3i.grid_disk(centre, k)), dtype=np.uint64).view(np.int64)


def test_gi_star_on_a_hand_computed_lattice() -> None:
    # 19 hexagons (the disk of radius 2):  value 10 on the centre and its ring, 0 on the outer ring.
    #
    #         0   0   0
    #       0  10  10   0
    #     0  10  10* 10   0        n = 19, sum = 70, sum of squares = 700
    #       0  10  10   0          mean = 70/19, S^2 = 700/19 - (70/19)^2 = 8400/361
    #         0   0   0
    #
    # Gi*_i = (L_i - mean W_i) / (S sqrt((n W_i - W_i^2) / (n - 1))), L = neighbourhood sum.
    cells = disk(2)
    ring1 = set(h3i.grid_disk(CENTRE, 1))
    x = pd.Series([10 if int(c) in ring1 else 0 for c in cells.view(np.uint64)], index=cells)
    out = hotspots(x)
    # centre: L = 70, W = 7 -> (70 - 490/19) / (sqrt(8400)/19 * sqrt(84/18)) = sqrt(18)
    assert out.loc[CENTRE, "z"] == pytest.approx(math.sqrt(18), abs=1e-12)
    # inner ring: L = 40 (itself, the centre, 2 ring cells; 3 outer zeros), W = 7 -> 270/sqrt(39200)
    inner = [c for c in ring1 if c != CENTRE]
    assert out.loc[inner, "z"].to_numpy() == pytest.approx(270 / math.sqrt(39200), abs=1e-12)
    # outer ring: "corner" cells touch 1 inner cell (W = 4), "edge" cells touch 2 (W = 5)
    outer = out.drop(list(ring1))
    w = np.asarray(hex_weights(cells).sum(axis=1)).ravel()
    wz = dict(zip(cells.tolist(), w.tolist(), strict=True))
    corner = outer[[wz[c] == 4 for c in outer.index]]
    edge = outer[[wz[c] == 5 for c in outer.index]]
    assert len(corner) == len(edge) == 6
    assert corner["z"].to_numpy() == pytest.approx(-90 / math.sqrt(28000), abs=1e-12)
    assert edge["z"].to_numpy() == pytest.approx(30 / math.sqrt(8400 * 70 / 18), abs=1e-12)
    # p two-sided; only the centre is significant, at 99 %, also after FDR
    assert out.loc[CENTRE, "p"] == pytest.approx(2 * (1 - 0.5 * (1 + math.erf(math.sqrt(18) / math.sqrt(2)))))
    assert out["gi_bin"].to_dict() == {c: (3 if c == CENTRE else 0) for c in cells.tolist()}


def test_undefined_statistics_are_nan_not_significant() -> None:
    cells = disk(1)
    flat = hotspots(pd.Series(4, index=cells))  # no variance
    assert flat["z"].isna().all() and (flat["gi_bin"] == 0).all()
    # the centre of a 7-cell disk sees every cell: W = n, the variance is 0
    out = hotspots(pd.Series(np.arange(7), index=cells))
    assert np.isnan(out.loc[CENTRE, "z"]) and out["z"].drop(CENTRE).notna().all()


def _esda_z(values: np.ndarray, w) -> np.ndarray:
    import esda
    import libpysal

    nb = {i: [int(j) for j in w.indices[w.indptr[i]:w.indptr[i + 1]] if j != i] for i in range(w.shape[0])}
    wobj = libpysal.weights.W(nb, silence_warnings=True)  # a fresh W: esda changes the one it is given
    return esda.G_Local(values, wobj, transform="B", star=True, permutations=0).Zs


@pytest.mark.filterwarnings("ignore:The weights matrix is not fully connected")
@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([1, 2]), st.floats(0.3, 1.0))
def test_agrees_with_esda_on_random_data(seed: int, k: int, keep: float) -> None:
    rng = np.random.default_rng(seed)
    cells = disk(5)
    cells = cells[rng.random(cells.size) < keep]  # holes and islands
    if cells.size < 4:
        return
    x = rng.poisson(rng.uniform(0.5, 20), cells.size).astype(float)
    if x.std() == 0:
        x[0] += 1
    w = hex_weights(cells, k=k)
    mine = gi_star(x, w)
    ref = _esda_z(x, w)
    ok = ~np.isnan(mine.z)
    assert np.abs(mine.z[ok] - ref[ok]).max() < 1e-9
    assert (np.isnan(ref[~ok]) | ~np.isfinite(ref[~ok]) | (np.abs(ref[~ok]) < 1e-6)).all()


def test_p_values_are_twice_esdas_one_sided_p() -> None:
    import esda
    import libpysal

    rng = np.random.default_rng(3)
    cells = disk(4)
    x = rng.poisson(5, cells.size).astype(float)
    w = hex_weights(cells)
    nb = {i: [int(j) for j in w.indices[w.indptr[i]:w.indptr[i + 1]] if j != i] for i in range(cells.size)}
    g = esda.G_Local(x, libpysal.weights.W(nb, silence_warnings=True), transform="B", star=True, permutations=0)
    assert gi_star(x, w).p == pytest.approx(2 * g.p_norm, abs=1e-12)


def test_reusing_weights_gives_the_same_answer() -> None:
    cells = disk(3)
    w = hex_weights(cells)
    x = pd.Series(np.random.default_rng(1).poisson(3, cells.size), index=cells)
    first = hotspots(x, weights=w)
    second = hotspots(x, weights=w)
    pd.testing.assert_frame_equal(first, second)
    pd.testing.assert_frame_equal(first, hotspots(x))


def test_fdr_threshold_by_hand_and_against_scipy() -> None:
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216])
    # BH at 5 %: p(k) <= k * 0.05 / 10 holds for k = 1, 2 only -> critical p 0.008
    assert fdr_threshold(p, alpha=0.05) == 0.008
    assert fdr_threshold(p, alpha=0.001) == 0.0
    assert fdr_threshold(np.array([np.nan, 0.5]), alpha=0.6) == 0.5
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = np.concatenate([rng.uniform(0, 1, 80), rng.uniform(0, 0.01, rng.integers(0, 20))])
        for a in (0.1, 0.05, 0.01):
            assert ((q <= fdr_threshold(q, alpha=a)) == (false_discovery_control(q) <= a)).all()


def test_gi_bin_classes_like_arcgis() -> None:
    z = np.array([3.0, -2.7, 2.0, -1.97, 1.7, -1.66, 1.0, np.nan])
    p = np.array([0.002, 0.007, 0.045, 0.049, 0.09, 0.097, 0.3, np.nan])
    assert gi_bins(z, p, fdr=False).tolist() == [3, -3, 2, -2, 1, -1, 0, 0]
    # BH over the 7 tests: at 99 % no p(k) <= k * 0.01 / 7; at 95 % p(2) = 0.007 <= 2 * 0.05 / 7;
    # at 90 % p(4) = 0.049 <= 4 * 0.1 / 7 = 0.057 but p(5) = 0.09 > 0.071
    fdr = gi_bins(z, p, fdr=True)
    assert (np.abs(fdr) <= np.abs(gi_bins(z, p, fdr=False))).all()
    assert fdr.tolist() == [2, -2, 1, -1, 0, 0, 0, 0]


def test_weights_are_k_ring_contiguity_within_the_study_area() -> None:
    cells = disk(3)
    w = hex_weights(cells)
    assert (w != w.T).nnz == 0 and (w.diagonal() == 1).all()
    deg = np.asarray(w.sum(axis=1)).ravel()
    assert deg[cells.tolist().index(CENTRE)] == 7 and deg.min() == 4
    assert np.asarray(hex_weights(cells, k=2).sum(axis=1)).ravel().max() == 19
    assert hex_weights(cells, self_weight=False).diagonal().sum() == 0
    shuffled = np.random.default_rng(2).permutation(cells)
    w2 = hex_weights(shuffled)
    order = [cells.tolist().index(c) for c in shuffled]
    assert (w2 != w[order][:, order]).nnz == 0
    with pytest.raises(ValueError, match="k must be"):
        hex_weights(cells, k=0)


def test_cell_checks_say_what_to_do() -> None:
    a = disk(1)
    assert cell_resolution(a) == 9
    with pytest.raises(HexCellError, match="resolutions"):
        check_cells(np.concatenate([a, [int(h3i.latlng_to_cell(32.06, 118.78, 8))]]))
    with pytest.raises(HexCellError, match="not an H3 cell"):
        check_cells(np.array([0, *a]))
    with pytest.raises(HexCellError, match="repeat"):
        check_cells(np.concatenate([a, a[:1]]))
    with pytest.raises(HexCellError, match="int64"):
        check_cells(np.array(["8928308280fffff"]))


def test_count_cells_with_and_without_a_study_area() -> None:
    a = disk(1)
    pts = np.array([a[0], a[0], a[3], 0, int(h3i.latlng_to_cell(30.0, 120.0, 9))], dtype=np.int64)
    free = count_cells(pts)
    assert free.to_dict() == {a[0]: 2, a[3]: 1, pts[4]: 1}
    dom = count_cells(pts, domain=a[::-1])
    assert dom.index.tolist() == a[::-1].tolist()
    assert dom.sum() == 3 and dom[a[0]] == 2 and (dom.drop([a[0], a[3]]) == 0).all()


def test_rates_per_1000_residents() -> None:
    counts = pd.Series({"g1": 5, "g2": 2, "gX": 9})
    pop = pd.Series({"g1": 2500, "g2": 0, "g3": 1000})
    out = rates_per_1000(counts, pop)
    assert out.index.tolist() == ["g1", "g2", "g3"]
    assert out.loc["g1", "rate_per_1000"] == 2.0 and np.isnan(out.loc["g2", "rate_per_1000"])
    assert out.loc["g3", "count"] == 0 and out.loc["g3", "rate_per_1000"] == 0.0
