"""Walking distances between the cells of one container, over the road network (private).

From each unit's service location (its main building) to the farthest home of every unit,
cut off at 1.5 x the radius; dense up to a few thousand cells, sparse beyond. Without a
network, 1.3 x the straight line.
"""

from __future__ import annotations

import numpy as np
import shapely
from numpy.typing import NDArray

from geo.network import WalkNetwork, network_distances, snap_points
from geo.partition.graph import DistanceTable

_DENSE_MAX = 4000


def cell_distances(
    net: WalkNetwork | None,
    pts: NDArray[np.object_],
    rows: NDArray[np.int64],
    uinv: NDArray[np.int64],
    rep_row: NDArray[np.int64],
    n_units: int,
    n: int,
    homes: NDArray[np.bool_],
    poly: shapely.Geometry,
    radius_m: float,
    max_snap_m: float,
    cell_xy: NDArray[np.float64],
) -> tuple[DistanceTable, NDArray[np.bool_]]:
    """Walking distance from each unit's service location to the farthest home of every unit."""
    unreachable = np.zeros(n, dtype=bool)
    cutoff = 1.5 * radius_m
    if n_units == 0:
        return DistanceTable.from_dense(np.full((n, n), np.inf)), unreachable
    if net is None:
        d = np.full((n, n), np.inf, dtype=np.float32)
        bxy = shapely.get_coordinates(pts[rows])
        full = np.hypot(cell_xy[:n_units, None, 0] - bxy[None, :, 0],
                        cell_xy[:n_units, None, 1] - bxy[None, :, 1]) * 1.3
        d[:n_units, :n_units] = _reduce_max(full, uinv, n_units)
        d[:, ~homes] = np.inf
        return DistanceTable.from_dense(d), unreachable
    # a path of length L between two points of the container stays within L / 2 of it
    minx, miny, maxx, maxy = shapely.bounds(poly)
    m = cutoff / 2 + max_snap_m
    sub = net.subnetwork((minx - m, miny - m, maxx + m, maxy + m))
    src = snap_points(sub, cell_xy[:n_units], max_offset_m=max_snap_m)
    home_rows = np.flatnonzero(homes[:n_units][uinv])
    tgt_unit = uinv[home_rows]
    tgt = snap_points(sub, shapely.get_coordinates(pts[rows[home_rows]]), max_offset_m=max_snap_m)
    off = np.zeros(n_units, dtype=bool)
    np.logical_or.at(off, tgt_unit, np.isinf(tgt.offset_m))
    unreachable[:n_units] = off
    order = np.argsort(tgt_unit, kind="stable")
    tgt = tgt.take(order)
    tgt_unit = tgt_unit[order]
    dense = n <= _DENSE_MAX
    if dense:
        d = np.full((n, n), np.inf, dtype=np.float32)
    else:
        ri, ci, vals = [], [], []
    # sources in spatially compact chunks; each chunk looks only at the units whose every home
    # lies within ``cutoff`` of the chunk's box (a walk is never shorter than the straight line,
    # so the others are beyond the cutoff anyway: the result is the same, found sooner)
    sxy = cell_xy[:n_units]
    band_id = np.floor((sxy[:, 1] - sxy[:, 1].min()) / max(cutoff, 1.0)) if n_units else np.zeros(0)
    src_order = np.lexsort((sxy[:, 0], band_id))
    txy = shapely.get_coordinates(pts[rows[home_rows]])[order]
    step = max(1, 4_000_000 // max(len(tgt), 1))
    for s0 in range(0, n_units, step):
        idx = np.sort(src_order[s0:s0 + step])
        (x0, y0), (x1, y1) = sxy[idx].min(axis=0) - cutoff, sxy[idx].max(axis=0) + cutoff
        row_in = (txy[:, 0] >= x0) & (txy[:, 0] <= x1) & (txy[:, 1] >= y0) & (txy[:, 1] <= y1)
        # a unit counts only when all its homes are near (its farthest home decides)
        unit_out = np.zeros(n_units, dtype=bool)
        unit_out[tgt_unit[~row_in]] = True
        sel = np.flatnonzero(~unit_out[tgt_unit])
        if sel.size == 0:
            continue
        su = tgt_unit[sel]
        st = np.flatnonzero(np.r_[True, su[1:] != su[:-1]])
        full = network_distances(sub, src.take(idx), tgt.take(sel), limit_m=cutoff)
        red = np.maximum.reduceat(full, st, axis=1)
        c_sel = su[st]
        if dense:
            d[np.ix_(idx, c_sel)] = red
        else:
            rr, cc = np.nonzero(np.isfinite(red))
            ri.append(idx[rr])
            ci.append(c_sel[cc])
            vals.append(red[rr, cc])
    if not dense:
        ri = np.concatenate(ri) if ri else np.zeros(0, dtype=np.int64)
        ci = np.concatenate(ci) if ci else np.zeros(0, dtype=np.int64)
        vals = np.concatenate(vals) if vals else np.zeros(0)
        return DistanceTable.from_sparse(n, ri, ci, vals), unreachable
    return DistanceTable.from_dense(d), unreachable


def _reduce_max(full: NDArray, uinv: NDArray[np.int64], n_units: int) -> NDArray:
    order = np.argsort(uinv, kind="stable")
    su = uinv[order]
    starts = np.flatnonzero(np.r_[True, su[1:] != su[:-1]])
    out = np.full((full.shape[0], n_units), np.inf)
    out[:, su[starts]] = np.maximum.reduceat(full[:, order], starts, axis=1)
    return out
