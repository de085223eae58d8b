"""Array kernels that clean GPS tracks; private, used by :mod:`geo.patrol`.

Every function here takes NumPy arrays already sorted by worker code, then time:
``w`` (int64 worker code), ``t`` (int64 nanoseconds), ``x``/``y`` (float64 metres in a
projected CRS). A *step* ``i`` goes from fix ``i - 1`` to fix ``i`` of the same worker.
Nothing loops over fixes in Python: the loops below run over *rounds* (a handful) or over
*lags* inside a stay window (bounded by the number of fixes in ``min_stay_s``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

NS = 1_000_000_000

#: Drop reasons, in the order the cleaning pipeline applies them.
REASONS: tuple[str, ...] = ("invalid", "inaccurate", "duplicate", "jump", "speed", "drift")

_MAX_ROUNDS = 50

Bool = NDArray[np.bool_]
I64 = NDArray[np.int64]
F64 = NDArray[np.float64]


def same_as_previous(a: NDArray) -> Bool:
    """``out[i]`` is True when ``a[i] == a[i - 1]`` (False for the first element)."""
    out = np.zeros(a.shape[0], dtype=bool)
    if a.shape[0] > 1:
        out[1:] = a[1:] == a[:-1]
    return out


def steps(t: I64, x: F64, y: F64) -> tuple[F64, F64]:
    """Length (m) and duration (s) of the step into each fix (0 for the first element)."""
    d = np.zeros(t.shape[0])
    dt = np.zeros(t.shape[0])
    if t.shape[0] > 1:
        d[1:] = np.hypot(np.diff(x), np.diff(y))
        dt[1:] = np.diff(t) / NS
    return d, dt


def impossible(w: I64, t: I64, x: F64, y: F64, *, max_speed_ms: float, slack_m: float) -> tuple[Bool, F64, F64]:
    """Steps longer than ``max_speed_ms * dt + slack_m`` (same worker only), step lengths and durations."""
    d, dt = steps(t, x, y)
    return same_as_previous(w) & (d > max_speed_ms * dt + slack_m), d, dt


def excursions(
    w: I64, t: I64, x: F64, y: F64, *, max_speed_ms: float, slack_m: float, jump_m: float,
    max_fixes: int, max_s: float,
) -> Bool:
    """Fixes on a GPS jump that returns ("jump and return"), found in rounds until none is left.

    A *jump* is an impossible step longer than ``jump_m``. Jumps cut a worker's track into
    segments; a segment of at most ``max_fixes`` fixes and ``max_s`` seconds with a jump on
    both sides is an excursion when the fixes just before and just after it agree with each
    other (the step between them is possible). A short segment at the very start or end of
    a worker's track, cut off by a jump from a longer segment, is a cold-start glitch and is
    dropped the same way.
    """
    n = t.shape[0]
    drop = np.zeros(n, dtype=bool)
    alive = np.arange(n)
    for _ in range(_MAX_ROUNDS):
        if alive.shape[0] < 2:
            break
        wa, ta, xa, ya = w[alive], t[alive], x[alive], y[alive]
        imp, d, _dt = impossible(wa, ta, xa, ya, max_speed_ms=max_speed_ms, slack_m=slack_m)
        jump = imp & (d > jump_m)
        if not jump.any():
            break
        same = same_as_previous(wa)
        seg_start = ~same | jump
        s_idx = np.flatnonzero(seg_start)
        e_idx = np.empty_like(s_idx)
        e_idx[:-1] = s_idx[1:] - 1
        e_idx[-1] = alive.shape[0] - 1
        nfix = e_idx - s_idx + 1
        small = (nfix <= max_fixes) & ((ta[e_idx] - ta[s_idx]) <= max_s * NS)
        left = jump[s_idx]
        right = np.zeros(s_idx.shape[0], dtype=bool)
        right[:-1] = jump[s_idx[1:]]
        hit = np.zeros(s_idx.shape[0], dtype=bool)
        # both sides: the bracketing fixes must agree with each other
        both = np.flatnonzero(left & right & small)
        if both.size:
            p, q = s_idx[both] - 1, e_idx[both] + 1
            dpq = np.hypot(xa[q] - xa[p], ya[q] - ya[p])
            ok = dpq <= max_speed_ms * (ta[q] - ta[p]) / NS + slack_m
            hit[both[ok]] = True
        # one side at the track's start or end, next to a longer segment
        at_start = ~same[s_idx]
        at_end = np.ones(s_idx.shape[0], dtype=bool)
        at_end[:-1] = ~same[s_idx[1:]]
        longer_next = np.zeros(s_idx.shape[0], dtype=bool)
        longer_next[:-1] = nfix[1:] > nfix[:-1]
        longer_prev = np.zeros(s_idx.shape[0], dtype=bool)
        longer_prev[1:] = nfix[:-1] > nfix[1:]
        hit |= small & at_start & right & ~left & longer_next
        hit |= small & at_end & left & ~right & longer_prev
        if not hit.any():
            break
        kill = hit[np.cumsum(seg_start) - 1]
        drop[alive[kill]] = True
        alive = _changed(alive, kill, w)
    return drop


def _changed(alive: I64, kill: Bool, w: I64) -> I64:
    """The surviving fixes of the workers that lost fixes: only their steps changed."""
    touched = np.zeros(int(w.max()) + 1, dtype=bool)
    touched[w[alive[kill]]] = True
    alive = alive[~kill]
    return alive[touched[w[alive]]]


def too_fast(w: I64, t: I64, x: F64, y: F64, *, max_speed_ms: float, slack_m: float) -> Bool:
    """Fixes reached *and* left by impossible steps (sustained speed or a short spike).

    Found in rounds: dropping the inside of a fast ride exposes its ends to the next round.
    A single impossible step between two plausible stretches drops nothing; it splits trips.
    """
    n = t.shape[0]
    drop = np.zeros(n, dtype=bool)
    alive = np.arange(n)
    for _ in range(_MAX_ROUNDS):
        imp, _d, _dt = impossible(w[alive], t[alive], x[alive], y[alive],
                                  max_speed_ms=max_speed_ms, slack_m=slack_m)
        kill = np.zeros(alive.shape[0], dtype=bool)
        kill[:-1] = imp[:-1] & imp[1:]
        if not kill.any():
            break
        drop[alive[kill]] = True
        alive = _changed(alive, kill, w)
    return drop


def trip_starts(
    w: I64, t: I64, x: F64, y: F64, stay: I64, *, max_speed_ms: float, slack_m: float,
    max_gap_s: float,
) -> Bool:
    """Where trips start: a new worker, a gap longer than ``max_gap_s``, or an impossible step.

    Two consecutive fixes of the same stay (``stay >= 0``) never start a trip: the stay was
    observed continuously.
    """
    same = same_as_previous(w)
    imp, _d, dt = impossible(w, t, x, y, max_speed_ms=max_speed_ms, slack_m=slack_m)
    in_stay = same & (stay >= 0) & same_as_previous(stay)
    return ~same | (~in_stay & ((dt > max_gap_s) | imp))


def stays(trip: I64, t: I64, x: F64, y: F64, *, radius_m: float, min_stay_s: float) -> I64:
    """Stay id of each fix (``-1`` when moving): where a worker stood still, drifting.

    Fix ``i`` *anchors* a still window when every fix of its trip from ``i`` up to the first
    fix at least ``min_stay_s`` later lies within ``radius_m`` of fix ``i``. A stay is a run of
    consecutive fixes of one trip each covered by some still window.
    """
    n = t.shape[0]
    out = np.full(n, -1, dtype=np.int64)
    if n < 2:
        return out
    rel = (t - t.min()) / NS
    span = float(rel.max()) + 2.0 * min_stay_s + 1.0
    key = trip.astype(np.float64) * span + rel
    end = np.searchsorted(key, key + min_stay_s, side="left")
    valid = end < n
    valid[valid] &= trip[end[valid]] == trip[valid]
    still = valid.copy()
    active = np.flatnonzero(valid)
    r2 = radius_m * radius_m
    lag = 1
    while active.size:
        j = active + lag
        far = (x[j] - x[active]) ** 2 + (y[j] - y[active]) ** 2 > r2
        still[active[far]] = False
        active = active[~far & (j < end[active])]
        lag += 1
    anchors = np.flatnonzero(still)
    if not anchors.size:
        return out
    cover = np.cumsum(
        np.bincount(anchors, minlength=n + 1) - np.bincount(end[anchors] + 1, minlength=n + 1)
    )[:n] > 0
    first = cover & ~(same_as_previous(trip) & np.concatenate(([False], cover[:-1])))
    return np.where(cover, np.cumsum(first) - 1, -1)


def stay_interior(stay: I64) -> Bool:
    """Fixes of a stay other than its first and last: the drift to drop."""
    in_stay = stay >= 0
    first = in_stay & ~same_as_previous(stay)
    last = np.zeros_like(in_stay)
    last[:-1] = in_stay[:-1] & (stay[:-1] != stay[1:])
    last[-1:] = in_stay[-1:]
    return in_stay & ~first & ~last


def stay_centres(stay: I64, x: F64, y: F64) -> tuple[F64, F64]:
    """Median position of each stay id ``0 .. stay.max()``."""
    in_stay = stay >= 0
    n = int(stay.max()) + 1 if in_stay.any() else 0
    return group_median(stay[in_stay], x[in_stay], n), group_median(stay[in_stay], y[in_stay], n)


def group_median(group: I64, values: F64, n_groups: int) -> F64:
    """Median of ``values`` per ``group`` id in ``0..n_groups - 1`` (NaN for empty groups)."""
    out = np.full(n_groups, np.nan)
    if not group.size:
        return out
    order = np.lexsort((values, group))
    g, v = group[order], values[order]
    starts = np.flatnonzero(np.concatenate(([True], g[1:] != g[:-1])))
    ends = np.concatenate((starts[1:], [g.shape[0]]))
    lo = starts + (ends - starts - 1) // 2
    hi = starts + (ends - starts) // 2
    out[g[starts]] = (v[lo] + v[hi]) / 2.0
    return out


def sort_fixes(pos: I64, w: I64, t: I64, accuracy: F64) -> I64:
    """``pos`` ordered by worker, time, then accuracy (best first; NaN last), ties stable."""
    if not pos.size:
        return pos
    wp, tp = w[pos], t[pos]
    t0 = int(tp.min())
    span = int(tp.max()) - t0 + 1
    if (int(wp.max()) + 1) * span < 2**62:  # one int64 key sorts faster than two
        order = np.argsort(wp * span + (tp - t0), kind="stable")
    else:
        order = np.lexsort((tp, wp))
    out = pos[order]
    # ties in (worker, time) are duplicates: order each run of them by accuracy
    tie = same_as_previous(w[out]) & same_as_previous(t[out])
    if tie.any():
        in_run = tie.copy()
        in_run[:-1] |= tie[1:]
        idx = np.flatnonzero(in_run)
        sub = out[idx]
        out[idx] = sub[np.lexsort((accuracy[sub], t[sub], w[sub]))]
    return out
