"""Emerging hot spots: Gi* in a space-time cube, a Mann–Kendall trend per cell, ArcGIS's 17 classes.

Follows ArcGIS *Emerging Hot Spot Analysis* (Space Time Pattern Mining):

1. **Cube.** Points are counted in (H3 cell, time step) bins. The locations are the cells with at
   least one point in at least one step, or a given study area (like ArcGIS's analysis mask);
   empty bins count 0. Steps are aligned to the end of the period (ArcGIS's default
   ``END_TIME`` alignment); points before the first full step are left out.
2. **Space-time Gi\\*.** Each bin's neighbourhood is its k-ring cells (itself included) in the same
   step and in the ``time_step`` steps before it (ArcGIS's *Neighborhood Time Step*, default 1),
   with binary weights; the mean and standard deviation are those of the whole cube (ArcGIS's
   default *Global Window*: entire cube). Bins are classed hot / cold with the
   Benjamini–Hochberg correction over all bins (``fdr=True``) at the 90 % level (``alpha``).
3. **Trend.** A Mann–Kendall test on each cell's series of Gi* z-scores (``trend_alpha``).
4. **Classes** (``category``: ArcGIS's CATEGORY codes; cold spots mirror hot spots with negative
   codes). With ``T`` steps, ``H`` hot steps and "last" the final step:

   ====  ===============  ==================================================================
   code  pattern          rule (checked in this order; cold mirrors hot)
   ====  ===============  ==================================================================
   3     intensifying     last hot, ``H >= 0.9 T``, significant upward trend
   5     diminishing      last hot, ``H >= 0.9 T``, significant downward trend
   4     persistent       last hot, ``H >= 0.9 T``, no significant trend
   7     oscillating      last hot, ``H < 0.9 T``, a cold step before
   1     new              last hot, the only significant step
   2     consecutive      last hot, one unbroken run of >= 2 hot steps at the end, nothing
                          significant before it
   6     sporadic         last hot, ``H < 0.9 T``, other hot steps with gaps, never cold
   8     historical       last step not hot, ``H >= 0.9 T``
   0     no pattern       none of the above, hot or cold
   ====  ===============  ==================================================================

   Where ArcGIS's wording leaves an overlap, the order above decides: a cell that was once a
   cold spot and is now newly hot is *oscillating* (not *new*), as in sfdep's reading; a final
   hot step puts a cell in a hot class before any cold class.

The Mann–Kendall test is vectorised here (all cells at once, with the tie correction); it
matches ``pymannkendall.original_test`` (checked in the tests).

Examples
--------
>>> x = np.array([[1, 2, 3, 4, 5, 6], [3, 1, 3, 1, 3, 1]], dtype=float)
>>> mk = mann_kendall(x)
>>> mk.s.tolist(), mk.p.round(3).tolist()
([15.0, -3.0], [0.009, 0.663])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtr

from geo.hotspots import ALPHAS, GiStar, _gi_from_sums, check_cells, fdr_threshold, hex_weights

#: ArcGIS CATEGORY code -> pattern name (hot positive, cold negative, 0 none).
PATTERNS: dict[int, str] = {
    0: "no_pattern",
    1: "new_hot", 2: "consecutive_hot", 3: "intensifying_hot", 4: "persistent_hot",
    5: "diminishing_hot", 6: "sporadic_hot", 7: "oscillating_hot", 8: "historical_hot",
    -1: "new_cold", -2: "consecutive_cold", -3: "intensifying_cold", -4: "persistent_cold",
    -5: "diminishing_cold", -6: "sporadic_cold", -7: "oscillating_cold", -8: "historical_cold",
}


class MannKendall(NamedTuple):
    """Mann–Kendall results per row: S, its variance (tie-corrected), z, two-sided p, Kendall's tau."""

    s: NDArray[np.float64]
    var_s: NDArray[np.float64]
    z: NDArray[np.float64]
    p: NDArray[np.float64]
    tau: NDArray[np.float64]


@dataclass(frozen=True)
class SpaceTimeCube:
    """Counts in (cell, time step) bins.

    Attributes
    ----------
    cells
        int64 H3 ids of the locations, shape ``(n,)``.
    starts
        Start of each time step, shape ``(T,)``; step ``t`` is ``[starts[t], starts[t] + step)``.
    step
        Length of a time step.
    counts
        ``(n, T)`` float array of counts.
    """

    cells: NDArray[np.int64]
    starts: pd.DatetimeIndex
    step: pd.Timedelta
    counts: NDArray[np.float64]


def space_time_cube(
    cells: ArrayLike,
    times: ArrayLike,
    *,
    step: str | pd.Timedelta = "7D",
    end: Any = None,
    n_steps: int | None = None,
    start: Any = None,
    domain: ArrayLike | None = None,
) -> SpaceTimeCube:
    """Count points into a space-time cube.

    Parameters
    ----------
    cells
        int64 H3 cell of each point (0: none, skipped).
    times
        Time of each point (naive local datetimes).
    step
        Length of a time step (``"7D"``: weekly).
    end
        End of the last step (exclusive). Default: just after the latest point, rounded up to a
        day boundary.
    n_steps
        Number of steps; default: as many full steps as fit between ``start`` and ``end``.
    start
        Earliest time considered when ``n_steps`` is not given (default: the earliest point).
    domain
        Locations (int64 cells) of the cube; default: cells with at least one point in the cube.
    """
    c = np.asarray(cells, dtype=np.int64)
    tt = pd.to_datetime(pd.Series(np.asarray(times))).to_numpy(dtype="datetime64[ns]")
    if c.shape != tt.shape:
        raise ValueError(f"cells ({c.size}) and times ({tt.size}) differ in length")
    stp = pd.Timedelta(step)
    if stp <= pd.Timedelta(0):
        raise ValueError("step must be positive, e.g. '7D'")
    ok = (c != 0) & ~np.isnat(tt)
    if end is None:
        if not ok.any():
            raise ValueError("no points with a cell and a time; give end= and n_steps=")
        end_ts = (pd.Timestamp(tt[ok].max()) + pd.Timedelta(1, "ns")).ceil("D")
    else:
        end_ts = pd.Timestamp(end)
    if n_steps is None:
        if start is None:
            if not ok.any():
                raise ValueError("no points with a cell and a time; give n_steps=")
            start = tt[ok].min()
        n_steps = int((end_ts - pd.Timestamp(start)) // stp)
    if n_steps < 1:
        raise ValueError(f"the period holds no full time step of {stp}; lengthen it or shorten the step")
    first = end_ts - n_steps * stp
    offs = (tt - np.datetime64(first.to_datetime64(), "ns")).astype(np.int64)
    tidx = np.floor_divide(offs, stp.value)
    ok &= (tidx >= 0) & (tidx < n_steps)
    if domain is None:
        locs = np.unique(c[ok])
    else:
        locs = check_cells(domain)
    order = np.argsort(locs)
    sl = locs[order]
    pos = np.clip(np.searchsorted(sl, c), 0, max(sl.size - 1, 0))
    ok &= (sl[pos] == c) if sl.size else False
    flat = order[pos[ok]] * n_steps + tidx[ok]
    counts = np.bincount(flat, minlength=locs.size * n_steps).astype(np.float64).reshape(locs.size, n_steps)
    starts = pd.DatetimeIndex([first + i * stp for i in range(n_steps)])
    return SpaceTimeCube(locs, starts, stp, counts)


def space_time_gi_star(
    counts: NDArray[np.float64], weights: sp.sparray | sp.spmatrix, *, time_step: int = 1
) -> GiStar:
    """Gi* z-scores and p-values of every bin of an ``(n, T)`` cube.

    The neighbourhood of bin ``(i, t)`` is ``{(j, s): w[i, j] > 0, t - time_step <= s <= t}`` with
    weight ``w[i, j]``; ``weights`` holds the spatial weights with the self-weight on the diagonal.
    Mean and standard deviation are over all ``n * T`` bins.
    """
    x = np.asarray(counts, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError("counts must be an (n cells, T steps) array")
    n, nt = x.shape
    if weights.shape != (n, n):
        raise ValueError(f"weights are {weights.shape}, the cube has {n} cells")
    if time_step < 0:
        raise ValueError("time_step must be >= 0")
    w = sp.csr_array(weights)
    lag = np.asarray(w @ x)  # (n, T) spatial lag per step
    csum = np.cumsum(lag, axis=1)
    window = csum.copy()
    if time_step + 1 < nt:
        window[:, time_step + 1:] -= csum[:, : nt - time_step - 1]
    steps_in = np.minimum(np.arange(nt), time_step) + 1  # steps in each bin's window
    wsum = np.asarray(w.sum(axis=1)).ravel()[:, None] * steps_in[None, :]
    wsq = np.asarray(w.multiply(w).sum(axis=1)).ravel()[:, None] * steps_in[None, :]
    flat = _gi_from_sums(window.ravel(), wsum.ravel(), wsq.ravel(), x.mean(), x.std(), x.size)
    return GiStar(flat.z.reshape(n, nt), flat.p.reshape(n, nt))


def mann_kendall(x: ArrayLike) -> MannKendall:
    """Mann–Kendall trend test on each row of ``x`` (no missing values), vectorised.

    ``S = sum_{i<j} sign(x_j - x_i)``; the variance has the tie correction; z has the continuity
    correction; ``tau = S / (T (T - 1) / 2)``; p is two-sided. A row of ties has z = 0, p = 1.
    """
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[None, :]
    if np.isnan(a).any():
        raise ValueError("mann_kendall needs series without NaN")
    n, nt = a.shape
    s = np.zeros(n)
    for lag in range(1, nt):
        s += np.sign(a[:, lag:] - a[:, :-lag]).sum(axis=1)
    srt = np.sort(a, axis=1)
    new_run = np.ones((n, nt), dtype=bool)
    new_run[:, 1:] = srt[:, 1:] != srt[:, :-1]
    run_id = np.cumsum(new_run, axis=1) - 1 + (np.arange(n) * nt)[:, None]
    sizes = np.bincount(run_id.ravel(), minlength=n * nt).astype(np.float64)
    ties = (sizes * (sizes - 1) * (2 * sizes + 5)).reshape(n, nt).sum(axis=1)
    var = (nt * (nt - 1) * (2 * nt + 5) - ties) / 18.0
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(var > 0, (s - np.sign(s)) / np.sqrt(var), 0.0)
    p = 2.0 * ndtr(-np.abs(z))
    tau = s / (nt * (nt - 1) / 2.0) if nt > 1 else np.zeros(n)
    return MannKendall(s, var, z, p, tau)


def classify_emerging(
    hot: ArrayLike, cold: ArrayLike, trend_z: ArrayLike, trend_p: ArrayLike, *, trend_alpha: float = 0.10
) -> NDArray[np.int8]:
    """ArcGIS EHSA CATEGORY code per row from per-step significance masks and the trend.

    Parameters
    ----------
    hot, cold
        ``(n, T)`` booleans: the bin is a significant hot / cold spot.
    trend_z, trend_p
        Mann–Kendall z and p of each row's Gi* z-scores.
    trend_alpha
        Significance level of the trend.
    """
    h = np.asarray(hot, dtype=bool)
    c = np.asarray(cold, dtype=bool)
    if h.shape != c.shape or h.ndim != 2:
        raise ValueError("hot and cold must be (n, T) arrays of the same shape")
    tz = np.asarray(trend_z, dtype=np.float64)
    tp = np.asarray(trend_p, dtype=np.float64)
    up = (tp < trend_alpha) & (tz > 0)
    down = (tp < trend_alpha) & (tz < 0)
    hot_code = _one_side(h, c, up, down)
    cold_code = _one_side(c, h, down, up)
    return np.where(hot_code != 0, hot_code, -cold_code).astype(np.int8)


def _one_side(h: NDArray[np.bool_], other: NDArray[np.bool_], up: NDArray[np.bool_],
              down: NDArray[np.bool_]) -> NDArray[np.int8]:
    """Codes 1..8 for the side whose significant steps are ``h`` (hot; cold with arguments swapped)."""
    n, nt = h.shape
    count = h.sum(axis=1)
    last = h[:, -1]
    mostly = count >= 0.9 * nt
    any_other = other.any(axis=1)
    any_sig = h | other
    # length of the final run of h, and whether anything significant precedes it
    rev = h[:, ::-1]
    run = np.where(rev.all(axis=1), nt, np.argmin(rev, axis=1))
    before = np.arange(nt)[None, :] < (nt - run)[:, None]
    clean_before = ~(any_sig & before).any(axis=1)
    code = np.zeros(n, dtype=np.int8)
    rules = [
        (last & mostly & up, 3),
        (last & mostly & down, 5),
        (last & mostly, 4),
        (last & any_other, 7),
        (last & (count == 1) & clean_before, 1),
        (last & (run >= 2) & (run == count) & clean_before, 2),
        (last, 6),
        (~last & mostly, 8),
    ]
    done = np.zeros(n, dtype=bool)
    for mask, value in rules:
        pick = mask & ~done
        code[pick] = value
        done |= pick
    return code


def emerging_hotspots(
    cube: SpaceTimeCube,
    *,
    k: int = 1,
    time_step: int = 1,
    alpha: float = ALPHAS[0],
    trend_alpha: float = 0.10,
    fdr: bool = True,
    weights: sp.sparray | None = None,
) -> pd.DataFrame:
    """Emerging hot and cold spots of a cube: one row per cell.

    Parameters
    ----------
    cube
        From :func:`space_time_cube`.
    k
        Spatial neighbourhood radius in grid steps (``h3.grid_disk``).
    time_step
        Previous steps in each bin's neighbourhood (ArcGIS *Neighborhood Time Step*).
    alpha
        Significance of a hot / cold bin (0.10: ArcGIS's 90 % confidence).
    trend_alpha
        Significance of the Mann–Kendall trend of the z-scores.
    fdr
        Benjamini–Hochberg correction over all bins.
    weights
        Precomputed :func:`~geo.hotspots.hex_weights` of ``cube.cells`` (self-weight included).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``cell``: ``count`` (total), ``category`` (-8..8), ``pattern``, ``hot_steps``,
        ``cold_steps``, ``trend_z``, ``trend_p`` and ``tau`` (of the z-scores), ``count_trend_z``
        and ``count_trend_p`` (of the counts, as in the cube), ``last_z``, ``last_p``.
    """
    if cube.counts.shape[1] < 2:
        raise ValueError("emerging hot spots need at least 2 time steps (ArcGIS asks for 10)")
    w = hex_weights(cube.cells, k=k) if weights is None else weights
    gi = space_time_gi_star(cube.counts, w, time_step=time_step)
    p = np.where(np.isnan(gi.p), 1.0, gi.p)
    crit = fdr_threshold(gi.p.ravel(), alpha=alpha) if fdr else alpha
    sig = (p <= crit) if fdr else (p < crit)
    zz = np.nan_to_num(gi.z)
    hot = sig & (zz > 0)
    cold = sig & (zz < 0)
    mk = mann_kendall(np.round(zz, 10))  # rounding makes equal z-scores exact ties
    mkc = mann_kendall(cube.counts)
    cat = classify_emerging(hot, cold, mk.z, mk.p, trend_alpha=trend_alpha)
    return pd.DataFrame(
        {
            "count": cube.counts.sum(axis=1).astype(np.int64),
            "category": cat,
            "pattern": [PATTERNS[int(v)] for v in cat],
            "hot_steps": hot.sum(axis=1),
            "cold_steps": cold.sum(axis=1),
            "trend_z": mk.z,
            "trend_p": mk.p,
            "tau": mk.tau,
            "count_trend_z": mkc.z,
            "count_trend_p": mkc.p,
            "last_z": gi.z[:, -1],
            "last_p": gi.p[:, -1],
        },
        index=pd.Index(cube.cells, name="cell"),
    )
