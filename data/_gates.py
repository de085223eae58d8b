"""Residential compounds (小区) and their gates (出入口) in the demo district (metres).

Every parcel that holds buildings is a compound (its id is the buildings' ``compound_id``).
Each compound gets one to three gates on its outline where it faces a street (an arterial,
secondary or local road; a compound path only when no street touches it): a gate sits on a
street piece that runs along the outline, somewhere in the middle third of that piece.
Larger compounds get more gates; the first is for pedestrians and vehicles (``mixed``), the
others pedestrian or vehicle only. About one compound in twelve is an open block (开放式街区)
without gates: its residents step straight onto the nearest street.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

#: Streets a compound opens onto (paths only when nothing else touches it).
_STREETS: tuple[str, ...] = ("arterial", "secondary", "local")
#: Share of compounds that are open blocks without gates.
OPEN_SHARE = 0.08
_SIDE = ("东门", "北门", "西门", "南门")  # by the direction from the compound's centre


@dataclass
class Gates:
    """Gate points: the compound (parcel index) each opens, position, kind, name, hours."""

    parcel: np.ndarray
    x: np.ndarray
    y: np.ndarray
    kind: np.ndarray
    name: np.ndarray
    open_hours: np.ndarray


def compound_gates(
    parcels: np.ndarray, compounds: np.ndarray, parcel_name: np.ndarray, edges: np.ndarray,
    edge_kind: np.ndarray, rng: np.random.Generator,
) -> Gates:
    """One to three gates for each parcel index in ``compounds`` (see the module docstring)."""
    polys = parcels[compounds]
    rings = shapely.boundary(polys)
    street = np.isin(edge_kind, _STREETS)
    pi, ei = _facing(rings, edges)
    # prefer streets: a compound uses paths only when no street piece lies along it
    has_street = np.zeros(compounds.size, bool)
    has_street[pi[street[ei]]] = True
    keep = street[ei] | ~has_street[pi]
    pi, ei = pi[keep], ei[keep]
    area = shapely.area(polys)
    want = np.where(area < 10_000, 1, np.where(area < 30_000, 2, 3))
    want = np.minimum(want + (rng.random(compounds.size) < 0.25), 3)
    want[rng.random(compounds.size) < OPEN_SHARE] = 0
    # a random order of each compound's street pieces, longest pieces favoured
    length = shapely.length(edges[ei])
    key = rng.random(pi.size) ** (1.0 / np.maximum(length, 1.0))  # weighted sampling keys
    order = np.lexsort((-key, pi))
    pi, ei = pi[order], ei[order]
    first = np.searchsorted(pi, pi, side="left")
    rank = np.arange(pi.size) - first
    take = rank < want[pi]
    pi, ei, rank = pi[take], ei[take], rank[take]
    frac = rng.uniform(1 / 3, 2 / 3, pi.size)
    pts = shapely.line_interpolate_point(edges[ei], frac, normalized=True)
    xy = shapely.get_coordinates(pts)
    c = shapely.get_coordinates(shapely.centroid(polys))[pi]
    ang = np.arctan2(xy[:, 1] - c[:, 1], xy[:, 0] - c[:, 0])
    side = np.round(ang / (np.pi / 2)).astype(int) % 4
    kind = np.where(rank == 0, "mixed", np.where(rng.random(pi.size) < 0.6, "pedestrian", "vehicle"))
    hours = np.where(kind == "pedestrian", "06:00-22:00", None)
    names = parcel_name[compounds[pi]].astype(str)
    side_name = np.array(_SIDE, dtype=object)[side]
    # several gates on one side: 南门, 南二门, 南三门
    grp = pi * 4 + side
    o = np.lexsort((rank, grp))
    g_sorted = grp[o]
    nth = np.empty(pi.size, dtype=np.int64)
    nth[o] = np.arange(pi.size) - np.searchsorted(g_sorted, g_sorted, side="left")
    stem = np.char.replace(side_name.astype(str), "门", "")
    label = np.where(nth == 0, side_name.astype(str),
                     np.char.add(stem, np.array(["", "二门", "三门"])[np.minimum(nth, 2)]))
    return Gates(compounds[pi], xy[:, 0], xy[:, 1], kind.astype(object),
                 np.char.add(names, label).astype(object), hours.astype(object))


def _facing(rings: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (ring index, edge index) where the edge runs along the ring (not just touches it)."""
    tree = shapely.STRtree(edges)
    ri, ei = tree.query(rings, predicate="dwithin", distance=0.05)
    mid = shapely.line_interpolate_point(edges[ei], 0.5, normalized=True)
    along = shapely.distance(mid, rings[ri]) < 0.05
    return ri[along], ei[along]
