"""Patrol GPS fixes of the grid workers (vectorised).

Every worker patrols on the day before :data:`DEMO_ANCHOR` ("yesterday") and in the 90 minutes
before the anchor ("today", so a wall display can show who is on duty now); the grid
workers of one sub-district (one community in the small preset) also have the days before,
30 days in all: full-time workers every weekday and about a third of them on weekends,
part-time workers on about two weekdays in five.
A working day has a morning session in the worker's own grid, a spell outside it (meetings at
the community centre, errands in other grids), a lunch break without fixes and an afternoon
session in the grid. Most full-time workers spend about four hours inside their grid
(the 4-hour rule), about one in eight much less. Fixes come every 10–30 s with GPS noise,
occasional jumps of a few hundred metres and gaps when the app or the signal drops.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

from data import _columns as C
from data._world import World

POOL = 48  # random waypoints per polygon


def random_points(polys: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` random points inside each polygon, shape ``(len(polys), k, 2)``."""
    n = polys.size
    out = np.zeros((n, k, 2))
    have = np.zeros(n, dtype=int)
    b = shapely.bounds(polys)
    shapely.prepare(polys)
    for _ in range(12):
        need = np.flatnonzero(have < k)
        if need.size == 0:
            break
        m = 3 * k
        idx = np.repeat(need, m)
        x = b[idx, 0] + rng.random(idx.size) * (b[idx, 2] - b[idx, 0])
        y = b[idx, 1] + rng.random(idx.size) * (b[idx, 3] - b[idx, 1])
        ok = shapely.contains_xy(polys[idx], x, y)
        idx, x, y = idx[ok], x[ok], y[ok]
        rank = np.arange(idx.size) - np.searchsorted(idx, idx) + have[idx]
        keep = rank < k
        out[idx[keep], rank[keep], 0] = x[keep]
        out[idx[keep], rank[keep], 1] = y[keep]
        np.add.at(have, idx[keep], 1)
    short = np.flatnonzero(have < k)
    if short.size:  # very thin shapes: fill with the interior point
        pts = shapely.get_coordinates(shapely.point_on_surface(polys[short]))
        for j, i in enumerate(short.tolist()):
            out[i, have[i]:] = pts[j]
    return out


def generate(
    world: World, rng: np.random.Generator, *, anchor: np.datetime64, history: str, history_days: int,
) -> pd.DataFrame:
    """GPS fixes (with metric ``x``, ``y`` columns); see the module docstring."""
    wk = world.workers
    nw = wk.id.size
    grid_pool = random_points(world.grid_geom, POOL, rng)
    comm_pool = random_points(world.comm_geom, POOL, rng)
    wcomm = world.grid_comm[wk.grid]

    # who patrols on which day: (worker, day offset from the anchor's day, 0 = today)
    today = anchor.astype("datetime64[D]")
    if history == "community":
        counts = np.bincount(wcomm, minlength=world.comm_code.size)
        scope = wcomm == int(np.argmax(counts))
    else:
        wsub = world.comm_sub[wcomm]
        counts = np.bincount(wsub, minlength=world.sub_code.size)
        scope = wsub == int(np.argmin(np.where(counts > 0, counts, counts.max() + 1)))
    hist = np.flatnonzero(scope & np.isin(wk.role, ("full_time", "part_time"))
                           & (wk.grid < world.n_comprehensive))
    offs = np.arange(-history_days, -1)  # the days before yesterday
    hw = np.repeat(hist, offs.size)
    hd = np.tile(offs, hist.size)
    dow = ((today + hd).view("int64") - 4) % 7
    # full-time workers patrol every weekday and take turns on weekends; part-time ones some days
    hft = wk.role[hw] == "full_time"
    u = rng.random(hd.size)
    on = np.where(hft, (dow < 5) | (u < 0.3), (dow < 5) & (u < 0.4))
    w_day = np.concatenate([hw[on], np.arange(nw), np.arange(nw)])
    d_day = np.concatenate([hd[on], np.full(nw, -1), np.zeros(nw, dtype=int)])
    order = np.lexsort((d_day, w_day))
    w_day, d_day = w_day[order], d_day[order]
    nd = w_day.size

    # ---- the day's plan: in-grid time, time outside, start of day
    role = wk.role[w_day]
    dedicated = wk.grid[w_day] >= world.n_comprehensive
    ft = role == "full_time"
    few = rng.random(nd) < 0.12
    t_in = np.where(ft, np.clip(rng.normal(4.75, 0.45, nd), 3.5, 6.0), rng.uniform(0.8, 1.8, nd))
    t_in = np.where(ft & few, rng.uniform(0.3, 1.8, nd), t_in)
    t_in = np.where(dedicated, rng.uniform(1.0, 2.0, nd), t_in)
    t_in = np.where(role == "grid_leader", rng.uniform(0.5, 1.5, nd), t_in)
    t_out = np.where(ft & few, rng.uniform(1.5, 3.0, nd), np.where(ft, rng.uniform(0.3, 1.0, nd),
                                                                   rng.uniform(0.2, 0.5, nd)))
    t_out = np.where(role == "grid_leader", rng.uniform(1.5, 2.5, nd), t_out)
    start = 8.5 + rng.normal(0, 0.3, nd)
    in1 = t_in * rng.uniform(0.4, 0.6, nd)
    s_out = start + in1
    s_aft = np.maximum(s_out + t_out, 13.5) + np.abs(rng.normal(0, 0.2, nd))
    # sessions: (worker-day, start hour, duration hours, pool row); pool rows: grids then communities
    ng = world.grid_code.size
    ses_day = np.repeat(np.arange(nd), 3)
    ses_start = np.column_stack([start, s_out, s_aft]).ravel()
    ses_dur = np.column_stack([in1, t_out, t_in - in1])
    # today (up to the anchor) only the afternoon session is recorded: enough to show who is on duty
    ses_dur[d_day == 0, :2] = 0.0
    ses_dur = ses_dur.ravel()
    own = wk.grid[w_day]
    ses_pool = np.column_stack([own, ng + wcomm[w_day], own]).ravel()
    pools = np.concatenate([grid_pool, comm_pool])

    # ---- waypoints: random pool points, legs of 1.5–4 minutes
    leg_s = 90.0
    dur_s = ses_dur * 3600
    k = np.ceil(dur_s / leg_s).astype(int) + 2
    ws = np.repeat(np.arange(ses_dur.size), k)
    wp = pools[ses_pool[ws], rng.integers(0, POOL, ws.size)]
    legs = rng.uniform(leg_s, 240.0, ws.size)
    first = np.searchsorted(ws, ws) == np.arange(ws.size)
    legs[first] = 0.0
    csum = np.cumsum(legs)
    wt = csum - np.repeat(csum[first], k)  # seconds since the session started
    span = 1e5  # sessions last less than 1e5 s, so one global axis holds them all
    gwt = ws * span + wt

    # ---- fixes: every 10–30 s per worker-day, jittered
    # most phones report every 20–30 s, a few every 10–15 s; on the history days the app's
    # battery-saving default of 30 s
    interval = np.array([10.0, 15.0, 20.0, 30.0])[rng.choice(4, size=nd, p=[.05, .1, .25, .6])]
    interval = np.where(d_day < -1, 30.0, interval)
    iv = interval[ses_day]
    m = np.floor(dur_s / iv).astype(int)
    fs = np.repeat(np.arange(ses_dur.size), m)
    j = np.arange(fs.size) - np.repeat(np.cumsum(m) - m, m)
    ft_s = (j + 0.5 + rng.uniform(-0.3, 0.3, fs.size)) * iv[fs]
    cx = np.interp(fs * span + ft_s, gwt, wp[:, 0])
    cy = np.interp(fs * span + ft_s, gwt, wp[:, 1])
    day_of_fix = ses_day[fs]
    epoch = ((today + d_day[day_of_fix]).astype("datetime64[s]").view("int64")
             + np.round(ses_start[fs] * 3600 + ft_s).astype(np.int64))

    # gaps: the app or the signal drops for a few minutes
    g_n = rng.choice(3, size=nd, p=[.55, .3, .15])
    g_start = np.where(np.arange(2)[None, :] < g_n[:, None],
                       rng.uniform(8.0, 17.0, (nd, 2)) * 3600, np.inf)
    g_len = rng.uniform(180, 1500, (nd, 2))
    sec_of_day = epoch - (today + d_day[day_of_fix]).astype("datetime64[s]").view("int64")
    gs, gl = g_start[day_of_fix], g_len[day_of_fix]
    gap = ((sec_of_day[:, None] >= gs) & (sec_of_day[:, None] < gs + gl)).any(axis=1)
    limit = int(anchor.astype("datetime64[s]").view("int64"))
    # today: the last 90 minutes before the anchor, enough to show who is on duty now
    keep = ~gap & (epoch < limit) & ((d_day[day_of_fix] != 0) | (epoch >= limit - 5400))
    cx, cy, epoch, day_of_fix, fs = cx[keep], cy[keep], epoch[keep], day_of_fix[keep], fs[keep]
    nf = cx.size

    # noise, and rare jumps of a few hundred metres
    acc = np.clip(8.0 * np.exp(rng.normal(0, 0.5, nf)), 3.0, 60.0)
    dx = rng.normal(0, 1, nf) * acc / 1.5
    dy = rng.normal(0, 1, nf) * acc / 1.5
    jump = rng.random(nf) < 0.004
    ang = rng.uniform(0, 2 * np.pi, jump.sum())
    dist = rng.uniform(150, 600, jump.sum())
    dx[jump] = np.cos(ang) * dist
    dy[jump] = np.sin(ang) * dist
    acc[jump] = rng.uniform(80, 200, jump.sum())
    x, y = cx + dx, cy + dy
    out = ~shapely.contains_xy(world.district, x, y)
    x[out], y[out] = cx[out], cy[out]
    out = ~shapely.contains_xy(world.district, x, y)
    if out.any():  # a straight leg that left a concave district: back to a waypoint of the session
        x[out], y[out] = pools[ses_pool[fs[out]], 0, 0], pools[ses_pool[fs[out]], 0, 1]

    worker = w_day[day_of_fix]
    ids = C.join("F", C.pad(np.arange(1, nf + 1), 9))
    return pd.DataFrame({
        "fix_id": C.to_pandas(ids),
        "worker_id": C.codes_to_str(worker, list(wk.id)),
        "time": epoch.astype("datetime64[s]").astype("datetime64[us]"),
        "accuracy_m": np.round(acc, 1),
        "x": x,
        "y": y,
    })
