"""The arithmetic every part of the partitioner shares, written once (private, a leaf module).

* :func:`polsby_popper`: compactness ``4 pi A / P^2`` of one region or of an array of them;
* :func:`band_excess` and :func:`count_range`: how far a weight lies outside the band, and
  which region counts can put a total inside it;
* :func:`match_overlap`: the one-to-one matching of new regions to current ones by largest
  overlap (what "a region continues a current one" means everywhere);
* :func:`walk_excess` and :func:`best_centre`: walking distance beyond the radius, and the
  cell hosting a region's service point;
* :func:`weighted_quantile`.

It imports nothing from the rest of :mod:`geo.partition`, so every other module may use it.

Examples
--------
>>> round(polsby_popper(100.0 * 100.0, 400.0), 4), polsby_popper(0.0, 0.0)
(0.7854, 0.0)
>>> band_excess(550.0, 300.0, 500.0), band_excess(np.array([250.0, 400.0]), 300.0, 500.0).tolist()
(50.0, [50.0, 0.0])
>>> count_range(1200, 300, 500)
(3, 4)
"""

from __future__ import annotations

import math
from typing import Any, overload

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

#: Walking excess counts at most this many radii (an unreachable home costs this much).
EXCESS_CAP = 2.0


@overload
def polsby_popper(area: float, perimeter: float) -> float: ...
@overload
def polsby_popper(area: NDArray, perimeter: NDArray) -> NDArray[np.float64]: ...
def polsby_popper(area: Any, perimeter: Any) -> Any:
    """Polsby-Popper compactness ``4 pi A / P^2`` (0 where the perimeter is 0).

    Scalars in, a float out (the search calls it in its inner loop); arrays in, an array out.
    """
    if isinstance(perimeter, float | int):
        return 4.0 * math.pi * area / (perimeter * perimeter) if perimeter > 0 else 0.0
    p = np.asarray(perimeter, dtype=float)
    a = np.asarray(area, dtype=float)
    return np.where(p > 0, 4 * np.pi * a / np.where(p > 0, p, 1) ** 2, 0.0)


@overload
def band_excess(weight: float, lo: float, hi: float) -> float: ...
@overload
def band_excess(weight: NDArray, lo: float, hi: float) -> NDArray[np.float64]: ...
def band_excess(weight: Any, lo: float, hi: float) -> Any:
    """How far ``weight`` lies outside the inclusive band ``[lo, hi]`` (0 inside)."""
    if isinstance(weight, float | int):
        if weight < lo:
            return lo - weight
        if weight > hi:
            return weight - hi
        return 0.0
    w = np.asarray(weight, dtype=float)
    return np.maximum(lo - w, 0.0) + np.maximum(w - hi, 0.0)


def count_range(total: float, lo: float, hi: float) -> tuple[int, int]:
    """The region counts ``(kmin, kmax)`` whose mean lies in the band (``kmin > kmax`` when none)."""
    kmin = max(1, math.ceil(total / hi)) if hi > 0 else 1
    kmax = math.floor(total / lo) if lo > 0 else kmin
    return kmin, kmax


def match_overlap(
    assignment: NDArray[np.int64], current: NDArray[np.int64], weight: NDArray[np.float64], k: int,
    *, eps: float = 0.0,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Match new regions ``0..k-1`` one-to-one to current labels by largest overlap.

    Parameters
    ----------
    assignment, current
        New region and current label (``-1``: none) per cell.
    weight
        What overlap is measured in (households); ``eps`` is added per cell so regions that
        share only cells without weight still match.

    Returns
    -------
    rows, cols, labels, overlap
        Matched new regions and their columns of ``overlap`` (the current labels, sorted, are
        ``labels``), and the overlap matrix (new region x current label).
    """
    known = current >= 0
    labels, cur = np.unique(current[known], return_inverse=True)
    overlap = np.zeros((k, labels.size))
    np.add.at(overlap, (assignment[known], cur.ravel()), weight[known] + eps)
    r, c = linear_sum_assignment(overlap, maximize=True)
    return r.astype(np.int64), c.astype(np.int64), labels.astype(np.int64), overlap


def walk_excess(d: float, radius: float) -> float:
    """Walking-distance excess over ``radius`` in units of ``radius`` (capped at :data:`EXCESS_CAP`)."""
    if d <= radius:
        return 0.0
    if d == math.inf:
        return EXCESS_CAP
    return min((d - radius) / radius, EXCESS_CAP)


def best_centre(graph: Any, members: list[int], radius_m: float) -> int:
    """The member hosting a region's service point: fewest homes beyond ``radius_m``
    (summed excess), then the smallest worst walk; ``-1`` if no member can host.

    ``graph`` is a :class:`~geo.partition.graph.UnitGraph` (``can_host``, ``homes``, ``dist``).
    """
    cands = [m for m in members if graph.can_host[m]]
    if not cands:
        return -1
    homes = [m for m in members if graph.homes[m]]
    if not homes:
        return cands[0]
    sub = graph.dist.block(cands, homes)
    R = radius_m
    inf = np.isinf(sub)
    exc = np.where(inf, EXCESS_CAP, np.minimum(np.maximum(sub - R, 0) / R, EXCESS_CAP))
    worst = np.where(inf, 1e12, sub).max(axis=1)
    score = exc.sum(axis=1) * 1e9 + worst
    return cands[int(np.argmin(score))]


def weighted_quantile(x: NDArray, w: NDArray, q: float) -> float:
    """The ``q`` quantile of ``x`` weighted by ``w`` (``q >= 1``: the maximum)."""
    if q >= 1.0:
        return float(np.max(x))
    order = np.argsort(x)
    x, w = x[order], w[order]
    cw = np.cumsum(w)
    return float(x[min(np.searchsorted(cw, q * cw[-1]), x.size - 1)])


def relabel(lab: NDArray[np.int64]) -> NDArray[np.int64]:
    """Labels renumbered ``0..k-1`` in sorted order."""
    _, inv = np.unique(lab, return_inverse=True)
    return inv.astype(np.int64).ravel()
