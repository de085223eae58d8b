"""Land use, buildings and households, and the grid workers of the demo district.

Each superblock gets a character (old city, 1990s compounds, new towers, business centre,
university campus, park) from a few seeded centres and gradients; each parcel gets a use
from its superblock's character. Buildings are points on a jittered lattice aligned with
their parcel, kept at least 6 m inside it, with floors and households by building type.
Households are then scaled by one factor to the preset's density, so totals add up exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from data._names import fake_phones, person_names

USES: tuple[str, ...] = (
    "res_old", "res_mid", "res_new", "office", "commercial", "school", "hospital",
    "campus", "park", "government", "market", "construction",
)
RESIDENTIAL_USES = ("res_old", "res_mid", "res_new")
_CHARACTERS = ("old", "mid", "new", "business", "campus", "park")
# parcel use probabilities by superblock character (columns follow USES)
_USE_P = {
    "old":      [.78, .02, 0, .01, .07, .03, .015, 0, .01, .015, .03, .02],
    "mid":      [.05, .72, .03, .03, .06, .05, .02, 0, .01, .01, .02, .03],
    "new":      [0, .06, .66, .09, .06, .05, .01, 0, .02, .01, .01, .06],
    "business": [0, .06, .12, .42, .26, .02, .03, 0, .02, .04, .01, .02],
    "campus":   [0, .12, 0, 0, .02, .04, 0, .82, 0, 0, 0, 0],
    "park":     [0, .12, 0, 0, .02, 0, 0, 0, .86, 0, 0, 0],
}
# building lattice spacing (m) and kind probabilities (lowrise, midrise, highrise, tower, nonresidential)
_LATTICE = {
    "res_old": ((26.0, 30.0), (.27, .23, 0, 0, .50)),
    "res_mid": ((31.0, 38.0), (.02, .43, .05, 0, .50)),
    "res_new": ((52.0, 58.0), (0, .02, .23, .25, .50)),
    "office": ((70.0, 70.0), (0, 0, 0, 0, 1)),
    "commercial": ((38.0, 38.0), (0, .15, 0, 0, .85)),
    "school": ((70.0, 70.0), (0, 0, 0, 0, 1)),
    "hospital": ((60.0, 60.0), (0, 0, 0, 0, 1)),
    "campus": ((75.0, 75.0), (0, 0, 0, 0, 1)),
    "park": ((200.0, 200.0), (0, 0, 0, 0, 1)),
    "government": ((60.0, 60.0), (0, 0, 0, 0, 1)),
    "market": ((60.0, 60.0), (0, 0, 0, 0, 1)),
    "construction": ((110.0, 110.0), (0, 0, 0, 0, 1)),
}
_NONRES_FLOORS = {
    "office": (10, 40), "commercial": (2, 6), "school": (3, 5), "hospital": (4, 20), "campus": (3, 12),
    "park": (1, 2), "government": (4, 10), "market": (1, 2), "construction": (1, 2),
    "res_old": (1, 3), "res_mid": (2, 5), "res_new": (2, 4),
}
BUILDING_KINDS = ("lowrise", "midrise", "highrise", "tower", "nonresidential")


#: median parcel area (m²) by superblock character: denser areas have smaller compounds
PARCEL_M2 = {"old": 7_000.0, "mid": 9_000.0, "new": 6_500.0, "business": 12_000.0,
             "campus": 40_000.0, "park": 40_000.0}


def superblock_character(superblocks: np.ndarray, rng: np.random.Generator, *, area_km2: float) -> np.ndarray:
    """The character of each superblock: old city, 1990s compounds, new towers, business, campus, park."""
    sxy = shapely.get_coordinates(shapely.centroid(superblocks))
    lo, hi = sxy.min(axis=0), sxy.max(axis=0)

    def near(k: int, r: float) -> np.ndarray:
        c = lo + rng.random((k, 2)) * (hi - lo)
        d = np.hypot(sxy[:, None, 0] - c[None, :, 0], sxy[:, None, 1] - c[None, :, 1]).min(axis=1)
        return d < r

    campus = near(max(1, round(area_km2 / 18)), 330.0)
    park = near(max(1, round(area_km2 / 11)), 230.0)
    business = near(max(1, round(area_km2 / 20)), 650.0)
    ang = rng.uniform(0, 2 * np.pi)
    grad = ((sxy - sxy.mean(axis=0)) @ np.array([np.cos(ang), np.sin(ang)])) / max(float(np.ptp(sxy)), 1.0)
    p_old = 0.15 + 0.6 / (1 + np.exp(-8 * grad))
    r = rng.random((sxy.shape[0], 4))
    char = np.where(r[:, 3] < p_old, 0, np.where(r[:, 2] < 0.55, 1, 2))
    char = np.where(business & (r[:, 0] < 0.65), 3, char)
    char = np.where(campus & (r[:, 1] < 0.75), 4, char)
    char = np.where(park & (r[:, 1] < 0.8), 5, char)
    return np.asarray(_CHARACTERS, dtype=object)[char]


def parcel_use(character: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The use of each parcel (one of :data:`USES`) from its superblock's character."""
    probs = np.array([_USE_P[c] for c in _CHARACTERS], dtype=float)
    probs /= probs.sum(axis=1, keepdims=True)
    idx = np.array([_CHARACTERS.index(c) for c in character], dtype=int)
    cum = np.cumsum(probs[idx], axis=1)
    u = rng.random(character.size)[:, None]
    use_idx = np.minimum((u > cum).sum(axis=1), len(USES) - 1)
    return np.asarray(USES, dtype=object)[use_idx]


@dataclass
class Buildings:
    """Building points and their attributes (metres, EPSG:32650)."""

    x: np.ndarray
    y: np.ndarray
    parcel: np.ndarray
    kind: np.ndarray
    floors: np.ndarray
    households: np.ndarray
    population: np.ndarray


def buildings(
    parcels: np.ndarray, use: np.ndarray, rng: np.random.Generator, *, households_total: int,
    persons_per_household: float = 2.81,
) -> Buildings:
    """Place buildings in every parcel and give them floors, households and residents."""
    env = shapely.oriented_envelope(parcels)
    ring = shapely.get_coordinates(shapely.get_exterior_ring(env)).reshape(-1, 5, 2)
    e1 = ring[:, 1] - ring[:, 0]
    e2 = ring[:, 2] - ring[:, 1]
    l1, l2 = np.hypot(*e1.T), np.hypot(*e2.T)
    u = e1 / np.maximum(l1, 1e-9)[:, None]
    v = e2 / np.maximum(l2, 1e-9)[:, None]
    centre = ring[:, 0] + (e1 + e2) / 2
    spacing = np.array([_LATTICE[k][0] for k in use])
    # put the longer spacing across the longer side, like rows of slab blocks
    swap = l1 < l2
    s1 = np.where(swap, spacing[:, 1], spacing[:, 0])
    s2 = np.where(swap, spacing[:, 0], spacing[:, 1])
    n1 = np.maximum(np.floor(l1 / s1).astype(int), 1)
    n2 = np.maximum(np.floor(l2 / s2).astype(int), 1)
    counts = n1 * n2
    pid = np.repeat(np.arange(parcels.size), counts)
    k = np.arange(pid.size) - np.repeat(np.cumsum(counts) - counts, counts)
    a = (k // n2[pid] + 0.5) / n1[pid] - 0.5
    b = (k % n2[pid] + 0.5) / n2[pid] - 0.5
    a = a * l1[pid] + rng.normal(0, 0.08, pid.size) * s1[pid]
    b = b * l2[pid] + rng.normal(0, 0.08, pid.size) * s2[pid]
    xy = centre[pid] + a[:, None] * u[pid] + b[:, None] * v[pid]
    inner = shapely.buffer(parcels, -6.0)
    shapely.prepare(inner)
    keep = shapely.contains_xy(inner[pid], xy[:, 0], xy[:, 1])
    xy, pid = xy[keep], pid[keep]
    # every residential parcel without a building gets one at its interior point
    has = np.bincount(pid, minlength=parcels.size) > 0
    res = np.isin(use, RESIDENTIAL_USES)
    lone = np.flatnonzero(~has & (res | (rng.random(parcels.size) < 0.5)))
    if lone.size:
        pts = shapely.get_coordinates(shapely.point_on_surface(parcels[lone]))
        xy = np.concatenate([xy, pts])
        pid = np.concatenate([pid, lone])
    order = np.lexsort((xy[:, 0], xy[:, 1], pid))
    xy, pid = xy[order], pid[order]
    n = pid.size

    probs = np.array([_LATTICE[k][1] for k in use[pid]], dtype=float)
    kind = np.minimum((rng.random(n)[:, None] > np.cumsum(probs, axis=1)).sum(axis=1), 4)
    floors = np.zeros(n, dtype=np.int64)
    hh = np.zeros(n, dtype=float)
    m = kind == 0
    floors[m] = rng.integers(1, 4, m.sum())
    hh[m] = rng.integers(2, 9, m.sum())
    m = kind == 1
    floors[m] = rng.integers(5, 8, m.sum())
    hh[m] = floors[m] * rng.integers(1, 4, m.sum()) * 2
    m = kind == 2
    floors[m] = rng.integers(11, 19, m.sum())
    hh[m] = floors[m] * rng.integers(1, 3, m.sum()) * rng.integers(2, 4, m.sum())
    m = kind == 3
    floors[m] = rng.integers(20, 34, m.sum())
    hh[m] = floors[m] * rng.integers(1, 3, m.sum()) * rng.integers(3, 5, m.sum())
    m = kind == 4
    lo_hi = np.array([_NONRES_FLOORS[k] for k in use[pid[m]]])
    floors[m] = rng.integers(lo_hi[:, 0], lo_hi[:, 1] + 1)
    # scale households to the preset's total: one factor, stochastic rounding, exact total
    raw = hh.sum()
    scaled = hh * (households_total / raw) if raw > 0 else hh
    base = np.floor(scaled)
    short = int(households_total - base.sum())
    if short > 0:
        frac = scaled - base
        pick = rng.choice(n, size=short, replace=False, p=frac / frac.sum())
        base[pick] += 1
    households = base.astype(np.int64)
    pph = np.clip(rng.normal(persons_per_household, 0.35, n), 1.0, 5.0)
    population = np.where(households > 0, np.maximum(np.rint(households * pph), households), 0).astype(np.int64)
    return Buildings(xy[:, 0], xy[:, 1], pid, np.asarray(BUILDING_KINDS, dtype=object)[kind], floors,
                     households, population)


@dataclass
class Workers:
    """Grid workers: one row per person."""

    id: np.ndarray
    name: np.ndarray
    phone: np.ndarray
    role: np.ndarray
    grid: np.ndarray  # index into the grids table
    post: np.ndarray  # "A", "B" or None


def workers(
    n_comprehensive: int, n_dedicated: int, community_first_grid: np.ndarray, rng: np.random.Generator
) -> Workers:
    """Staff every grid.

    Each comprehensive grid has a full-time worker on post A and one or two part-time
    workers on post B (the A/B post system); each dedicated grid one part-time worker of
    the unit on post A; each community one grid leader (网格长) who leads all its grids and
    is registered in the community's first grid. Grid indices: comprehensive grids first,
    then dedicated grids.
    """
    extra = rng.random(n_comprehensive) < 0.45
    per = 2 + extra.astype(int)
    cg = np.repeat(np.arange(n_comprehensive), per)
    slot = np.arange(cg.size) - np.repeat(np.cumsum(per) - per, per)
    role = np.where(slot == 0, "full_time", "part_time")
    post = np.where(slot == 0, "A", "B")
    dg = np.arange(n_dedicated) + n_comprehensive
    grid = np.concatenate([community_first_grid, cg, dg])
    role = np.concatenate([np.full(community_first_grid.size, "grid_leader"), role,
                           np.full(n_dedicated, "part_time")]).astype(object)
    post = np.concatenate([np.full(community_first_grid.size, None, dtype=object), post.astype(object),
                           np.full(n_dedicated, "A", dtype=object)])
    n = grid.size
    ids = np.char.add("W", np.char.zfill(np.arange(1, n + 1).astype(str), 6)).astype(object)
    return Workers(ids, person_names(n, rng).astype(object), fake_phones(n, rng).astype(object),
                   role, grid, post)
