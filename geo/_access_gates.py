"""Compound gates: leaving a walled compound only through its gates (:class:`GateExits`,
:func:`gate_exits`).

Split out of :mod:`geo.accessibility` (which re-exports every public name here). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from geo.crs import require_projected
from geo.network import (
    SnappedPoints,
    WalkNetwork,
    snap_points,
)


@dataclass(frozen=True)
class GateExits:
    """How each resident row leaves home (built by :func:`gate_exits`).

    Parameters
    ----------
    index
        The residents' index; every other array is positional against it.
    via
        Per resident: ``"gate"`` (through its compound's gates), ``"street"`` (its compound
        has no gate points: straight to the nearest street) or ``"no_compound"``.
    compound
        Per resident: its compound id, or ``None``.
    pair_row, pair_gate, pair_walk_m
        One entry per (resident, gate of its compound): the resident's position, the gate's
        position in ``gate_xy`` and the straight walk (metres) from the building to the gate.
    gate_xy
        ``(n_gates, 2)`` gate coordinates (metres, the residents' CRS).
    gate_id
        The gates' index labels.
    """

    index: pd.Index
    via: NDArray[np.object_]
    compound: NDArray[np.object_]
    pair_row: NDArray[np.int64]
    pair_gate: NDArray[np.int64]
    pair_walk_m: NDArray[np.float64]
    gate_xy: NDArray[np.float64]
    gate_id: NDArray[np.object_]

    def nearest_gate(self) -> NDArray[np.int64]:
        """Per resident, the gate (position in ``gate_xy``) nearest in a straight line, or -1."""
        best = np.full(len(self.index), -1, dtype=np.int64)
        if self.pair_row.size:
            order = np.lexsort((self.pair_walk_m, self.pair_row))
            rows = self.pair_row[order]
            first = np.ones(rows.size, dtype=bool)
            first[1:] = rows[1:] != rows[:-1]
            best[rows[first]] = self.pair_gate[order][first]
        return best

    def table(self) -> pd.DataFrame:
        """Per resident: ``compound``, ``via``, ``gate`` (nearest gate id) and ``gate_walk_m``."""
        near = self.nearest_gate()
        walk = np.full(len(self.index), np.nan)
        if self.pair_row.size:
            np.fmin.at(walk, self.pair_row, self.pair_walk_m)
        gid = np.where(near >= 0, self.gate_id[np.maximum(near, 0)] if self.gate_id.size else None, None)
        return pd.DataFrame({"compound": self.compound, "via": self.via, "gate": gid,
                             "gate_walk_m": walk}, index=self.index)

    def summary(self, weights: NDArray[np.float64] | None = None) -> dict[str, Any]:
        """Counts for the report: compounds with and without gates, residents by route."""
        w = np.ones(len(self.index)) if weights is None else np.asarray(weights, dtype=float)
        comp = pd.Series(self.compound)
        gated = comp[self.via == "gate"].dropna().unique()
        open_ = comp[self.via == "street"].dropna().unique()
        return {"compounds_with_gates": int(len(gated)), "compounds_without_gates": int(len(open_)),
                "gates": int(np.unique(self.pair_gate[self.via[self.pair_row] == "gate"]).size),
                "residents_via_gates": int(round(float(w[self.via == "gate"].sum()))),
                "residents_without_gates": int(round(float(w[self.via == "street"].sum()))),
                "residents_outside_compounds": int(round(float(w[self.via == "no_compound"].sum())))}


def gate_exits(
    residents: gpd.GeoDataFrame,
    gates: gpd.GeoDataFrame,
    *,
    compounds: gpd.GeoDataFrame | None = None,
    compound_col: str = "compound_id",
    gate_kinds: Sequence[str] | None = None,
) -> GateExits:
    """Which gates each resident row may leave through.

    Parameters
    ----------
    residents
        Buildings (points or polygons; polygons use a point on their surface) in a metric CRS.
        Their compound is ``compound_col`` where present and filled; otherwise the compound
        polygon (from ``compounds``) that holds the building.
    gates
        Gate points in the same CRS with a ``compound_id`` column (and ``kind``, optional).
    compounds
        Compound polygons with an ``id`` column (optional): used for buildings without a
        compound id, and to report compounds that have no gates.
    gate_kinds
        Gate kinds a walker may use (default: every kind; e.g. ``("pedestrian", "mixed")``).

    Returns
    -------
    GateExits

    Examples
    --------
    >>> from shapely import Point
    >>> b = gpd.GeoDataFrame({"compound_id": ["A", "B", None]},
    ...                      geometry=[Point(0, 0), Point(50, 0), Point(90, 0)], crs=32650)
    >>> g = gpd.GeoDataFrame({"compound_id": ["A", "A"]},
    ...                      geometry=[Point(0, 30), Point(40, 0)], crs=32650)
    >>> ex = gate_exits(b, g)
    >>> ex.via.tolist(), ex.pair_walk_m.tolist()
    (['gate', 'street', 'no_compound'], [30.0, 40.0])
    """
    require_projected(residents, "gate_exits")
    if "compound_id" not in gates.columns:
        raise ValueError("gates need a 'compound_id' column (layers.schema: gates.compound_id)")
    for name, gdf in (("gates", gates), ("compounds", compounds)):
        if gdf is not None and gdf.crs is not None and residents.crs is not None \
                and not gdf.crs.equals(residents.crs):
            raise ValueError(f"{name} are in {gdf.crs.to_string()} but residents in "
                             f"{residents.crs.to_string()}; use {name}.to_crs(residents.crs)")
    n = len(residents)
    geoms = residents.geometry.to_numpy()
    poly = np.isin(shapely.get_type_id(geoms), (3, 6))
    if poly.any():
        geoms = geoms.copy()
        geoms[poly] = shapely.point_on_surface(geoms[poly])
    comp = (residents[compound_col].astype(object).to_numpy(copy=True) if compound_col in residents.columns
            else np.full(n, None, dtype=object))
    comp[pd.isna(comp)] = None
    if compounds is not None and len(compounds) and (comp == None).any():  # noqa: E711
        miss = np.flatnonzero(comp == None)  # noqa: E711
        tree = shapely.STRtree(compounds.geometry.to_numpy())
        bi, ci = tree.query(geoms[miss], predicate="within")
        first = np.unique(bi, return_index=True)[1]
        comp[miss[bi[first]]] = compounds["id"].astype(object).to_numpy()[ci[first]]
    g = gates
    if gate_kinds is not None and "kind" in g.columns:
        kind = g["kind"].astype(object).to_numpy()
        g = g.loc[pd.isna(kind) | np.isin(kind.astype(str), list(gate_kinds))]
    g = g.loc[g["compound_id"].notna().to_numpy() & ~g.geometry.is_empty.to_numpy()]
    gxy = shapely.get_coordinates(shapely.point_on_surface(g.geometry.to_numpy())).reshape(-1, 2)
    gcomp = g["compound_id"].astype(str).to_numpy()
    has = comp != None  # noqa: E711
    rcomp = np.where(has, comp, "").astype(str)
    # (resident, gate) pairs sharing a compound
    order = np.argsort(gcomp, kind="stable")
    gs = gcomp[order]
    lo = np.searchsorted(gs, rcomp, side="left")
    hi = np.searchsorted(gs, rcomp, side="right")
    cnt = np.where(has, hi - lo, 0)
    row = np.repeat(np.arange(n), cnt)
    off = np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    gate = order[np.repeat(lo, cnt) + off].astype(np.int64)
    bxy = shapely.get_coordinates(geoms).reshape(-1, 2)
    walk = np.hypot(*(bxy[row] - gxy[gate]).T) if row.size else np.zeros(0)
    via = np.where(cnt > 0, "gate", np.where(has, "street", "no_compound")).astype(object)
    return GateExits(residents.index, via, comp, row.astype(np.int64), gate, walk.astype(float),
                     gxy, np.asarray(g.index.to_numpy(), dtype=object))


def _concat(a: SnappedPoints, b: SnappedPoints) -> SnappedPoints:
    return SnappedPoints(*(np.concatenate([getattr(a, f), getattr(b, f)])
                           for f in ("edge", "u", "v", "to_u_m", "to_v_m", "offset_m")))


def _through_gates(
    d_home: NDArray[np.float64], d_gate: NDArray[np.float64], exits: GateExits, rows: NDArray[np.int64],
    limit_m: float,
) -> NDArray[np.float64]:
    """Per resident (positions ``rows`` of ``exits``): through its gates where it has any."""
    out = d_home.copy()
    pos = np.full(len(exits.index), -1, dtype=np.int64)
    pos[rows] = np.arange(rows.size)
    keep = pos[exits.pair_row] >= 0
    prow = pos[exits.pair_row[keep]]
    total = exits.pair_walk_m[keep] + d_gate[exits.pair_gate[keep]]
    gated = exits.via[rows] == "gate"
    out[gated] = np.inf
    np.minimum.at(out, prow, total)
    out[out > limit_m] = np.inf
    return out


def _exit_points(network: WalkNetwork, residents: gpd.GeoDataFrame, exits: GateExits | None,
                 max_snap_m: float) -> SnappedPoints:
    """Residents snapped to the network; a gated one at its nearest gate, the walk added."""
    snapped = snap_points(network, residents, max_offset_m=max_snap_m)
    if exits is None or exits.gate_xy.shape[0] == 0:
        return snapped
    rows = exits.index.get_indexer(residents.index)
    near = np.where(rows >= 0, exits.nearest_gate()[np.maximum(rows, 0)], -1)
    use = np.flatnonzero(near >= 0)
    if use.size == 0:
        return snapped
    g = snap_points(network, exits.gate_xy[near[use]], max_offset_m=max_snap_m)
    walk = np.hypot(*(shapely.get_coordinates(shapely.point_on_surface(
        residents.geometry.to_numpy()[use])) - exits.gate_xy[near[use]]).T)
    fields = {f: getattr(snapped, f).copy() for f in ("edge", "u", "v", "to_u_m", "to_v_m", "offset_m")}
    for f in fields:
        fields[f][use] = getattr(g, f)
    fields["offset_m"][use] = g.offset_m + walk
    return SnappedPoints(**fields)
