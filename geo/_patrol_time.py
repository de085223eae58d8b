"""Array kernels for time in grid and A/B post coverage; private, used by :mod:`geo.patrol`.

The time between two consecutive fixes of a worker is split in two halves: the first half
belongs to the earlier fix (the worker is where that fix says), the second half to the later
fix. Each half is at most ``cap_s / 2`` long (a long gap says nothing about where the worker
was), except inside a stay, which was observed continuously. When one end is inside the grid
and the other outside, half the interval counts: the rule the issue asks for, with the counted
half placed next to the fix that was inside, so that a day boundary cuts it correctly.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from geo._patrol_clean import NS, same_as_previous

HOUR_S = 3600.0

I64 = NDArray[np.int64]
F64 = NDArray[np.float64]


def _pairs(w: I64, t: I64, lo_ns: int, hi_ns: int) -> tuple[I64, I64]:
    """Consecutive fixes ``(a, b)`` of one worker whose interval overlaps ``[lo, hi)``."""
    b = np.flatnonzero(same_as_previous(w))
    a = b - 1
    m = (t[a] < hi_ns) & (t[b] > lo_ns)
    return a[m], b[m]


def half_segments(
    w: I64, t: I64, stay: I64, *, cap_s: float, lo_ns: int, hi_ns: int
) -> tuple[I64, F64, F64]:
    """Half-interval segments ``(fix, start_s, end_s)`` clipped to ``[lo, hi)``.

    Times are seconds after ``lo``. Empty segments are left out. The segments come sorted
    by worker, then start (the first half of each interval, then its second half).
    """
    a, b = _pairs(w, t, lo_ns, hi_ns)
    dt = (t[b] - t[a]) / NS
    in_stay = (stay[a] >= 0) & (stay[a] == stay[b])
    h = np.where(in_stay, dt, np.minimum(dt, cap_s)) / 2.0
    span = (hi_ns - lo_ns) / NS
    ta = (t[a] - lo_ns) / NS
    tb = (t[b] - lo_ns) / NS
    fix = np.column_stack((a, b)).ravel()
    s = np.clip(np.column_stack((ta, tb - h)).ravel(), 0.0, span)
    e = np.clip(np.column_stack((ta + h, tb)).ravel(), 0.0, span)
    keep = e > s
    return fix[keep], s[keep], e[keep]


def step_distance(
    w: I64, t: I64, x: F64, y: F64, trip: I64, *, lo_ns: int, hi_ns: int
) -> tuple[I64, F64]:
    """Metres walked inside ``[lo, hi)`` on each step of a trip, as ``(later fix, metres)``.

    A step cut by the window boundary counts in proportion to its time inside the window.
    Steps between trips (gaps, impossible moves) are not walked distance.
    """
    a, b = _pairs(w, t, lo_ns, hi_ns)
    same_trip = trip[a] == trip[b]
    a, b = a[same_trip], b[same_trip]
    d = np.hypot(x[b] - x[a], y[b] - y[a])
    ta, tb = t[a].astype(np.float64), t[b].astype(np.float64)
    frac = (np.minimum(tb, hi_ns) - np.maximum(ta, lo_ns)) / (tb - ta)
    return b, d * np.clip(frac, 0.0, 1.0)


def union(group: I64, s: F64, e: F64, *, presorted: bool = False) -> tuple[I64, F64, F64]:
    """Merge overlapping intervals within each group: ``(group, start, end)``.

    ``presorted``: each group's intervals already come together, sorted by start (the
    groups themselves in any order); otherwise they are sorted here by group, then start.
    """
    if not group.size:
        return group, s, e
    if presorted:
        g = group
    else:
        order = np.lexsort((s, group))
        g, s, e = group[order], s[order], e[order]
    change = np.ones(g.shape[0], dtype=bool)
    change[1:] = g[1:] != g[:-1]
    # offset each group onto its own stretch of one time axis, in order of appearance
    off = (np.cumsum(change) - 1).astype(np.float64) * (float(e.max() - min(s.min(), 0.0)) + 1.0)
    so, eo = s + off, e + off
    run = np.maximum.accumulate(eo)
    new = change.copy()
    new[1:] |= so[1:] > run[:-1]
    starts = np.flatnonzero(new)
    return g[starts], s[starts], np.maximum.reduceat(eo, starts) - off[starts]


def hour_fractions(group: I64, s: F64, e: F64, n_groups: int, *, hours: int = 24) -> F64:
    """Share of each clock hour covered by the (disjoint) intervals of each group."""
    out = np.zeros((n_groups, hours))
    for h in range(hours):
        ov = np.clip(np.minimum(e, (h + 1) * HOUR_S) - np.maximum(s, h * HOUR_S), 0.0, None)
        out[:, h] = np.bincount(group, ov, minlength=n_groups)[:n_groups] / HOUR_S
    return out
