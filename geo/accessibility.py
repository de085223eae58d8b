"""The 15-minute circle (一刻钟服务圈): walking isochrones, coverage, gaps and new sites.

* :func:`isochrones` — 5/10/15-minute walking areas around each facility.
* :func:`coverage_table` — the share of residents within each time of each facility kind,
  against the national 85% and the Shanghai 99% targets; one multi-source shortest-path
  search per kind.
* :func:`coverage_gaps` — the residential buildings outside the circle (the gap map).
* :func:`suggest_sites` — new sites that close the most gap: a maximal-covering location
  model (spopt's ``MCLP`` solved by CBC), or a greedy max-cover when no solver runs.
* :func:`gate_exits` — how residents leave home: through their compound's gates (小区出入口)
  where the compound has gate points, else straight onto the nearest street.
* :func:`accessibility` — all of the above from EPSG:4326 layers, as one result.

Residents of a gated compound walk from their building to a gate of the compound (a straight
line inside the compound), then along the streets; of all its gates the one that makes the
whole walk shortest counts. A compound without gate points (or a building outside any
compound) keeps the plain rule: straight to the nearest street. :func:`gate_exits` records
which rule each building used, so the fallback is reported, never silent.

Low-level functions take a :class:`~geo.network.WalkNetwork` and GeoDataFrames in its
metric CRS; :func:`accessibility` projects for you.

Leaving walled compounds through their gates lives in :mod:`geo._access_gates`
(re-exported here).

Examples
--------
A straight street 2 km long, a clinic at 0 m, homes at 300 m and 1,500 m:

>>> import geopandas as gpd
>>> from shapely import LineString, Point
>>> from geo.network import build_walk_network
>>> net = build_walk_network(gpd.GeoSeries([LineString([(0, 0), (2000, 0)])], crs=32650))
>>> fac = gpd.GeoDataFrame({"kind": ["clinic"]}, geometry=[Point(0, 0)], crs=32650)
>>> homes = gpd.GeoDataFrame({"population": [100, 300]},
...                          geometry=[Point(300, 0), Point(1500, 0)], crs=32650)
>>> t = coverage_table(net, homes, fac, minutes=(5, 15), speed_kmh=4.0)
>>> t[["kind", "minutes", "covered", "share"]].values.tolist()
[['clinic', 5, 100, 0.25], ['clinic', 15, 100, 0.25]]
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from geo._access_gates import (
    GateExits,
    _concat,
    _exit_points,
    _through_gates,
    gate_exits,
)
from geo.crs import local_metric_crs, require_projected
from geo.network import (
    WalkNetwork,
    build_walk_network,
    isochrone_polygons,
    nearest_source_distances,
    network_distances,
    node_distances,
    snap_points,
    walk_distance_m,
)

__all__ = [
    "AccessibilityResult",
    "DEFAULT_SPEED_KMH",
    "ELDERLY_SPEED_KMH",
    "TARGETS",
    "accessibility",
    "coverage_gaps",
    "GateExits",
    "coverage_table",
    "gate_exits",
    "isochrones",
    "nearest_by_kind",
    "suggest_sites",
]

#: The planning walking speed (km/h) and the elderly one reported beside it.
DEFAULT_SPEED_KMH = 3.6
ELDERLY_SPEED_KMH = 3.0

#: National target (85% of residents within 15 minutes by 2025) and Shanghai's (99%).
TARGETS: tuple[float, ...] = (0.85, 0.99)


def _check_speed_minutes(minutes: Sequence[float], speed_kmh: float) -> list[float]:
    problems = []
    mins = [float(m) for m in minutes]
    if not mins or any(m <= 0 for m in mins):
        problems.append(f"minutes must be positive numbers, got {list(minutes)}")
    if not 1.0 <= speed_kmh <= 8.0:
        problems.append(f"speed_kmh={speed_kmh} is not a walking speed; planning uses 3.6-4.8 km/h")
    if problems:
        raise ValueError("; ".join(problems))
    return sorted(mins)


def _kinds(facilities: gpd.GeoDataFrame, kinds: Sequence[str] | None) -> list[str]:
    if "kind" not in facilities.columns:
        raise ValueError("facilities need a 'kind' column (layers.schema.FACILITY_KINDS)")
    present = sorted(facilities["kind"].dropna().astype(str).unique())
    return present if kinds is None else [k for k in kinds]


def isochrones(
    network: WalkNetwork,
    facilities: gpd.GeoDataFrame,
    *,
    minutes: Sequence[float] = (5, 10, 15),
    speed_kmh: float = 4.0,
    buffer_m: float = 30.0,
    method: Literal["hull", "buffer"] = "hull",
    max_snap_m: float = 300.0,
) -> gpd.GeoDataFrame:
    """Walking isochrones around every facility (see :func:`geo.network.isochrone_polygons`).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per facility and time: ``facility`` (the input index), ``kind`` (when
        present), ``minutes``, ``distance_m``, geometry (network CRS). Facilities farther
        than ``max_snap_m`` from any walkable road get empty polygons.
    """
    require_projected(facilities, "isochrones")
    mins = _check_speed_minutes(minutes, speed_kmh)
    limits = walk_distance_m(mins, speed_kmh=speed_kmh)
    snapped = snap_points(network, facilities, max_offset_m=max_snap_m)
    polys = isochrone_polygons(network, snapped, limits_m=limits, buffer_m=buffer_m, method=method)
    k = len(facilities)
    out = pd.DataFrame({
        "facility": np.repeat(facilities.index.to_numpy(), len(mins)),
        "minutes": np.tile(mins, k),
        "distance_m": np.tile(limits, k),
    })
    if "kind" in facilities.columns:
        out.insert(1, "kind", np.repeat(facilities["kind"].to_numpy(), len(mins)))
    return gpd.GeoDataFrame(out, geometry=polys.ravel(), crs=facilities.crs)



def _residents(buildings: gpd.GeoDataFrame, weight_col: str) -> gpd.GeoDataFrame:
    if weight_col not in buildings.columns:
        raise ValueError(f"residents need a {weight_col!r} column")
    w = pd.to_numeric(buildings[weight_col], errors="coerce").fillna(0)
    return buildings.loc[w.to_numpy() > 0]


def nearest_by_kind(
    network: WalkNetwork,
    residents: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    *,
    kinds: Sequence[str] | None = None,
    limit_m: float = np.inf,
    max_snap_m: float = 300.0,
    exits: GateExits | None = None,
) -> pd.DataFrame:
    """Walking distance from every resident row to the nearest facility of each kind.

    One multi-source Dijkstra per kind (``min_only``), stopped at ``limit_m``.
    Columns are the kinds; ``inf`` beyond ``limit_m``; aligned to ``residents.index``.
    With ``exits`` (:func:`gate_exits`), residents of a gated compound walk to one of its
    gates and on from there (the shortest such walk); the others as without.
    """
    tgt = snap_points(network, residents, max_offset_m=max_snap_m)
    n = len(residents)
    rows = np.zeros(0, dtype=np.int64)
    if exits is not None and exits.pair_row.size:
        rows = exits.index.get_indexer(residents.index)
        if (rows < 0).any():
            raise ValueError("exits were built for other residents; call gate_exits(residents, ...)")
        tgt = _concat(tgt, snap_points(network, exits.gate_xy, max_offset_m=max_snap_m))
    out = {}
    for kind in _kinds(facilities, kinds):
        f = facilities.loc[facilities["kind"].astype(str).to_numpy() == kind]
        if len(f) == 0:
            out[kind] = np.full(n, np.inf)
            continue
        src = snap_points(network, f, max_offset_m=max_snap_m)
        d, _ = nearest_source_distances(network, src, tgt, limit_m=limit_m)
        out[kind] = d[:n] if rows.size == 0 else _through_gates(d[:n], d[n:], exits, rows, limit_m)
    return pd.DataFrame(out, index=residents.index)


def coverage_table(
    network: WalkNetwork,
    residents: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    *,
    minutes: Sequence[float] = (5, 10, 15),
    speed_kmh: float = 4.0,
    kinds: Sequence[str] | None = None,
    weight_col: str = "population",
    targets: Sequence[float] = TARGETS,
    max_snap_m: float = 300.0,
    nearest: pd.DataFrame | None = None,
    elderly_kmh: float | None = ELDERLY_SPEED_KMH,
) -> pd.DataFrame:
    """Share of residents within each walking time of each facility kind.

    Returns
    -------
    pandas.DataFrame
        Rows ``kind`` x ``minutes``: ``distance_m``, ``residents``, ``covered``,
        ``share``, and ``meets_<pct>`` for each target (e.g. ``meets_85``). With
        ``elderly_kmh`` (default :data:`ELDERLY_SPEED_KMH`; ``None`` leaves them out), the same
        minutes at the elderly walking speed beside them: ``elderly_kmh``,
        ``elderly_distance_m``, ``elderly_covered`` and ``elderly_share``.
    """
    require_projected(residents, "coverage_table")
    mins = _check_speed_minutes(minutes, speed_kmh)
    if elderly_kmh is not None:
        _check_speed_minutes(minutes, elderly_kmh)
    res = _residents(residents, weight_col)
    w = pd.to_numeric(res[weight_col]).to_numpy(dtype=float)
    limits = walk_distance_m(mins, speed_kmh=speed_kmh)
    old = walk_distance_m(mins, speed_kmh=elderly_kmh) if elderly_kmh is not None else limits
    if nearest is None:
        nearest = nearest_by_kind(network, res, facilities, kinds=kinds,
                                  limit_m=float(max(limits.max(), old.max())), max_snap_m=max_snap_m)
    rows = []
    total = float(w.sum())
    for kind in _kinds(facilities, kinds):
        d = nearest[kind].reindex(res.index).to_numpy(dtype=float)
        for m, lim, lim_old in zip(mins, limits, old, strict=True):
            cov = float(w[d <= lim].sum())
            share = cov / total if total > 0 else 0.0
            row: dict[str, Any] = {"kind": kind, "minutes": int(m) if float(m).is_integer() else m,
                                   "distance_m": round(float(lim), 1), "residents": int(round(total)),
                                   "covered": int(round(cov)), "share": round(share, 4)}
            for tgt in targets:
                row[f"meets_{round(tgt * 100)}"] = share >= tgt
            if elderly_kmh is not None:
                cov_old = float(w[d <= lim_old].sum())
                row.update(elderly_kmh=float(elderly_kmh), elderly_distance_m=round(float(lim_old), 1),
                           elderly_covered=int(round(cov_old)),
                           elderly_share=round(cov_old / total, 4) if total > 0 else 0.0)
            rows.append(row)
    return pd.DataFrame(rows)


def coverage_gaps(
    network: WalkNetwork,
    residents: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    *,
    minutes: float = 15,
    speed_kmh: float = 4.0,
    kinds: Sequence[str] | None = None,
    weight_col: str = "population",
    max_snap_m: float = 300.0,
    nearest: pd.DataFrame | None = None,
) -> gpd.GeoDataFrame:
    """Residential rows beyond ``minutes`` of a facility kind: the gap map.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per (resident row, kind) gap: ``resident`` (input index), ``kind``,
        ``population``, ``nearest_m`` (``inf`` when none within twice the limit), geometry.
    """
    _check_speed_minutes([minutes], speed_kmh)
    res = _residents(residents, weight_col)
    lim = float(walk_distance_m(minutes, speed_kmh=speed_kmh))
    if nearest is None:
        nearest = nearest_by_kind(network, res, facilities, kinds=kinds, limit_m=2 * lim,
                                  max_snap_m=max_snap_m)
    parts = []
    for kind in _kinds(facilities, kinds):
        d = nearest[kind].reindex(res.index).to_numpy(dtype=float)
        gap = d > lim
        parts.append(pd.DataFrame({
            "resident": res.index[gap], "kind": kind,
            weight_col: pd.to_numeric(res[weight_col]).to_numpy()[gap],
            "nearest_m": d[gap], "geometry": res.geometry.to_numpy()[gap],
        }))
    df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["resident", "kind", weight_col, "nearest_m", "geometry"])
    return gpd.GeoDataFrame(df, geometry="geometry", crs=residents.crs)


def _cbc(pulp: Any, time_limit_s: float) -> Any:
    """The CBC solver PuLP can run here (offline: the binary ships with PuLP)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for name in ("COIN_CMD", "PULP_CBC_CMD"):
            cls = getattr(pulp, name, None)
            if cls is None:
                continue
            solver = cls(msg=False, timeLimit=time_limit_s)
            if solver.available():
                return solver
    raise pulp.PulpSolverError("no CBC solver available")


def _greedy_max_cover(cover: NDArray[np.bool_], w: NDArray[np.float64], p: int) -> list[int]:
    """Pick ``p`` columns of ``cover`` (demand x candidate) covering the most weight."""
    left = w.copy()
    chosen: list[int] = []
    for _ in range(min(p, cover.shape[1])):
        gain = left @ cover
        j = int(np.argmax(gain))
        if gain[j] <= 0:
            break
        chosen.append(j)
        left[cover[:, j]] = 0.0
    return chosen


def suggest_sites(
    network: WalkNetwork,
    residents: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    *,
    kind: str,
    n_sites: int = 3,
    minutes: float = 15,
    speed_kmh: float = 4.0,
    candidates: gpd.GeoDataFrame | None = None,
    max_candidates: int = 120,
    weight_col: str = "population",
    solver: Literal["mclp", "greedy"] = "mclp",
    time_limit_s: float = 10.0,
    max_snap_m: float = 300.0,
    exits: GateExits | None = None,
) -> tuple[gpd.GeoDataFrame, list[dict[str, Any]]]:
    """New sites for ``kind`` that bring the most uncovered residents within ``minutes``.

    A maximal-covering location problem (Church & ReVelle) over the residents not yet
    covered: spopt's ``MCLP.from_cost_matrix`` solved with CBC (through PuLP); when the
    solver is missing or fails, a greedy max-cover (within 1 - 1/e of optimal) with a note.

    Parameters
    ----------
    candidates
        Possible sites (points, network CRS). Default: the network nodes nearest to the
        uncovered residents; the ``max_candidates`` that could cover most on their own
        enter the model.
    exits
        Gates (:func:`gate_exits`): a gated resident's demand sits at its nearest gate, the
        walk to it added.

    Returns
    -------
    sites, notes
        ``sites`` has ``rank``, ``kind``, ``added_covered`` (residents newly within reach,
        counted once), ``method`` and point geometry; ``notes`` are structured records
        (``{"code": "planner.access.solver_fallback", ...}``).
    """
    require_projected(residents, "suggest_sites")
    _check_speed_minutes([minutes], speed_kmh)
    lim = float(walk_distance_m(minutes, speed_kmh=speed_kmh))
    res = _residents(residents, weight_col)
    notes: list[dict[str, Any]] = []
    near = nearest_by_kind(network, res, facilities, kinds=[kind], limit_m=lim, max_snap_m=max_snap_m,
                           exits=exits)
    gap = near[kind].to_numpy() > lim
    demand = res.loc[gap]
    cols = ["rank", "kind", "added_covered", "method", "geometry"]
    if len(demand) == 0 or n_sites <= 0:
        return gpd.GeoDataFrame(columns=cols, geometry="geometry", crs=residents.crs), notes
    dsnap = _exit_points(network, demand, exits, max_snap_m)
    w_all = pd.to_numeric(demand[weight_col]).to_numpy(dtype=float)
    ok = dsnap.edge >= 0
    # demand aggregated at its nearest node, keeping the group's longest walk to that node
    node = np.where(dsnap.to_u_m <= dsnap.to_v_m, dsnap.u, dsnap.v)[ok]
    extra = (np.minimum(dsnap.to_u_m, dsnap.to_v_m) + dsnap.offset_m)[ok]
    gnode, ginv = np.unique(node, return_inverse=True)
    gw = np.bincount(ginv, weights=w_all[ok], minlength=gnode.size)
    gextra = np.zeros(gnode.size)
    np.maximum.at(gextra, ginv, extra)
    if candidates is None:
        # nodes next to uncovered homes, heaviest first, at most 4 x max_candidates
        pool = gnode[np.argsort(-gw, kind="stable")]
        if pool.size > 4 * max_candidates:
            pool = pool[np.linspace(0, pool.size - 1, 4 * max_candidates).round().astype(int)]
        cand_xy = network.node_xy[pool]
    else:
        cand_xy = shapely.get_coordinates(candidates.geometry.to_numpy())
    if gnode.size == 0 or cand_xy.shape[0] == 0:
        return gpd.GeoDataFrame(columns=cols, geometry="geometry", crs=residents.crs), notes
    csnap = snap_points(network, cand_xy, max_offset_m=max_snap_m)
    nd = node_distances(network, csnap, limit_m=lim)
    cover = ((nd[:, gnode] + gextra[None, :]) <= lim).T  # demand groups x candidates
    if cover.shape[1] > max_candidates:
        # keep the candidates that could cover the most on their own
        keep = np.sort(np.argsort(-(gw @ cover), kind="stable")[:max_candidates])
        cand_xy, cover = cand_xy[keep], cover[:, keep]
        csnap = csnap.take(keep)
    chosen: list[int] = []
    method = solver
    if solver == "mclp":
        try:
            import pulp
            from spopt.locate import MCLP

            # demand groups with the same set of covering candidates merge exactly
            useful = np.flatnonzero(cover.any(axis=1))
            patterns, pinv = np.unique(cover[useful], axis=0, return_inverse=True)
            pw = np.bincount(pinv.ravel(), weights=gw[useful], minlength=patterns.shape[0])
            cost = np.where(patterns, 0.0, lim * 10)
            with warnings.catch_warnings():  # PuLP 3.3 deprecations inside spopt
                warnings.simplefilter("ignore", DeprecationWarning)
                model = MCLP.from_cost_matrix(cost, pw, service_radius=lim,
                                              p_facilities=min(n_sites, cost.shape[1]))
                model = model.solve(_cbc(pulp, time_limit_s))
            chosen = [j for j in range(cost.shape[1]) if model.fac2cli[j]]
        except Exception as exc:  # any solver failure falls back, never crashes
            method = "greedy"
            notes.append({"code": "planner.access.solver_fallback", "severity": "info",
                          "error": type(exc).__name__})
    if method == "greedy" or not chosen:
        method = "greedy"
        chosen = _greedy_max_cover(cover, gw, n_sites)
    # exact gains on the buildings, ranked by marginal gain (each resident counted once)
    exact = network_distances(network, csnap.take(chosen), dsnap, limit_m=lim).T <= lim
    left = w_all.copy()
    ranked = []
    remaining = list(range(len(chosen)))
    while remaining:
        gains = [float(left @ exact[:, j]) for j in remaining]
        b = int(np.argmax(gains))
        j = remaining.pop(b)
        ranked.append((chosen[j], gains[b]))
        left[exact[:, j]] = 0.0
    rows = [{"rank": r + 1, "kind": kind, "added_covered": int(round(g)), "method": method}
            for r, (_, g) in enumerate(ranked)]
    geoms = shapely.points(cand_xy[[j for j, _ in ranked]]) if ranked else []
    return gpd.GeoDataFrame(rows, geometry=geoms, crs=residents.crs, columns=None), notes


@dataclass(frozen=True)
class AccessibilityResult:
    """Everything the 15-minute-circle page shows (all layers in the input CRS)."""

    isochrones: gpd.GeoDataFrame
    coverage: pd.DataFrame
    gaps: gpd.GeoDataFrame
    sites: gpd.GeoDataFrame
    notes: list[dict[str, Any]] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    #: Per residential building: ``compound``, ``via`` (``gate`` / ``street`` / ``no_compound``),
    #: ``gate`` (nearest gate id) and ``gate_walk_m``; empty when no gates were given.
    exits: pd.DataFrame = field(default_factory=pd.DataFrame)


def accessibility(
    roads: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    *,
    kinds: Sequence[str] | None = None,
    minutes: Sequence[float] = (5, 10, 15),
    speed_kmh: float = 4.0,
    buffer_m: float = 30.0,
    n_sites: int = 3,
    site_minutes: float | None = None,
    solver: Literal["mclp", "greedy"] = "mclp",
    weight_col: str = "population",
    max_snap_m: float = 300.0,
    network: WalkNetwork | None = None,
    elderly_kmh: float | None = ELDERLY_SPEED_KMH,
    gates: gpd.GeoDataFrame | None = None,
    compounds: gpd.GeoDataFrame | None = None,
    gate_kinds: Sequence[str] | None = None,
) -> AccessibilityResult:
    """Isochrones, the coverage table, the gap map and suggested sites in one call.

    Layers may be in EPSG:4326 (they are projected to the local UTM zone and the results
    projected back). ``site_minutes`` (default: the longest of ``minutes``) is the time the
    suggested sites should bring residents within; ``n_sites`` per kind below the 99% target.
    The coverage table also gives each time at ``elderly_kmh`` (see :func:`coverage_table`).

    With ``gates`` (and optionally ``compounds``; see :func:`gate_exits`), residents of gated
    compounds leave through the gates; the note ``gates.access.routing`` counts the compounds
    with and without gates and the residents routed each way, and ``exits`` has the rule used
    for every building.
    """
    mins = _check_speed_minutes(minutes, speed_kmh)
    for name, gdf in (("roads", roads), ("buildings", buildings), ("facilities", facilities)):
        if gdf.crs is None:
            raise ValueError(f"{name} has no CRS; set it (usually EPSG:4326) with .set_crs(4326)")
    timings: dict[str, float] = {}
    t = time.perf_counter()
    metric = local_metric_crs(buildings if len(buildings) else roads)
    in_crs = facilities.crs
    F = facilities.to_crs(metric)
    if kinds is not None:
        F = F.loc[F["kind"].astype(str).isin(list(kinds))]
    B = _residents(buildings.to_crs(metric), weight_col)
    net = network if network is not None else build_walk_network(roads.to_crs(metric))
    timings["network"] = time.perf_counter() - t
    exits = None
    notes: list[dict[str, Any]] = []
    if gates is not None:
        for name, gdf in (("gates", gates), ("compounds", compounds)):
            if gdf is not None and gdf.crs is None:
                raise ValueError(f"{name} has no CRS; set it (usually EPSG:4326) with .set_crs(4326)")
        exits = gate_exits(B, gates.to_crs(metric),
                           compounds=None if compounds is None else compounds.to_crs(metric),
                           gate_kinds=gate_kinds)
        w = pd.to_numeric(B[weight_col]).to_numpy(dtype=float)
        notes.append({"code": "gates.access.routing", "severity": "info", **exits.summary(w)})
    t = time.perf_counter()
    iso = isochrones(net, F, minutes=mins, speed_kmh=speed_kmh, buffer_m=buffer_m,
                     max_snap_m=max_snap_m)
    timings["isochrones"] = time.perf_counter() - t
    t = time.perf_counter()
    lim = float(walk_distance_m(max(mins), speed_kmh=max(speed_kmh, elderly_kmh or 0.0)))
    near = nearest_by_kind(net, B, F, kinds=kinds, limit_m=2 * lim, max_snap_m=max_snap_m,
                           exits=exits)
    cov = coverage_table(net, B, F, minutes=mins, speed_kmh=speed_kmh, kinds=kinds,
                         weight_col=weight_col, nearest=near, elderly_kmh=elderly_kmh)
    gaps = coverage_gaps(net, B, F, minutes=max(mins), speed_kmh=speed_kmh, kinds=kinds,
                         weight_col=weight_col, nearest=near)
    timings["coverage"] = time.perf_counter() - t
    t = time.perf_counter()
    site_parts = []
    sm = max(mins) if site_minutes is None else site_minutes
    if n_sites > 0:
        for kind in _kinds(F, kinds):
            row = cov[(cov["kind"] == kind) & (cov["minutes"] == max(mins))]
            if len(row) and float(row["share"].iloc[0]) >= TARGETS[-1]:
                continue
            s, nt = suggest_sites(net, B, F, kind=kind, n_sites=n_sites, minutes=sm,
                                  speed_kmh=speed_kmh, solver=solver, weight_col=weight_col,
                                  max_snap_m=max_snap_m, exits=exits)
            site_parts.append(s)
            notes.extend({**n, "kind": kind} for n in nt)
    sites = (pd.concat(site_parts, ignore_index=True) if site_parts
             else gpd.GeoDataFrame(columns=["rank", "kind", "added_covered", "method", "geometry"],
                                   geometry="geometry", crs=metric))
    sites = gpd.GeoDataFrame(sites, geometry="geometry", crs=metric)
    timings["sites"] = time.perf_counter() - t
    return AccessibilityResult(
        isochrones=iso.to_crs(in_crs),
        coverage=cov,
        gaps=gaps.to_crs(in_crs),
        sites=sites.to_crs(in_crs),
        notes=notes,
        timings_s=timings,
        exits=exits.table() if exits is not None else pd.DataFrame(),
    )
