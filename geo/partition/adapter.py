"""The GeoDataFrame adapter: :func:`repartition` validates the layers, projects to metres, builds
each container's cells (:mod:`geo.partition.cells`) and walking distances (:mod:`geo.network`),
solves (:func:`geo.partition.solve.solve`) and returns polygons that tile each container exactly,
with per-region metrics and structured violations.

Region codes, names and kinds are the caller's (a :class:`~geo.partition.plan.RegionNaming`;
:mod:`layers.planner` passes the grid codes of the administrative ladder).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

import geo.partition._compounds as _compounds
import geo.partition.cells as _cells
from geo.crs import local_metric_crs
from geo.network import build_walk_network
from geo.partition._distances import cell_distances
from geo.partition.cells import tessellate
from geo.partition.graph import UnitGraph
from geo.partition.plan import ContainerState, RegionNaming, SequenceNaming
from geo.partition.solve import solve
from geo.partition.state import PartitionInputError, PartitionProblem
from geo.partition.summary import comparison_table, worker_ratio
from geo.planner_defaults import DEFAULTS, LEVEL_BANDS

__all__ = ["BARRIER_KINDS", "LEVEL_BANDS", "PATH_KINDS", "RepartitionResult", "STREET_KINDS",
           "bounds_blocks", "repartition"]

STREET_KINDS: tuple[str, ...] = ("arterial", "secondary", "local", "river", "railway")
#: Lines that also cut cells (compound paths), at a higher cost than streets.
PATH_KINDS: tuple[str, ...] = ("path",)
#: Road kinds that are barriers (boundaries along them cost nothing).
BARRIER_KINDS: tuple[str, ...] = ("arterial", "river", "railway")


def bounds_blocks(roads: pd.DataFrame) -> NDArray[np.bool_]:
    """Whether each road bounds a block (a street a person would take as a boundary).

    A ``block_edge`` column (as :func:`layers.io.read` gives for OSM extracts) decides where
    present; otherwise OSM tag columns do: tunnels and building passages, covered ways,
    indoor ways (``indoor`` other than ``no``, and corridors), private ways and driveways do
    not bound blocks. Roads without any of these columns all bound blocks.

    >>> import pandas as pd
    >>> bounds_blocks(pd.DataFrame({"tunnel": [None, "building_passage"], "indoor": ["no", None]}))
    array([ True, False])
    """
    n = len(roads)
    if "block_edge" in roads.columns:
        b = roads["block_edge"]
        return ~b.astype("boolean").fillna(True).eq(False).to_numpy(dtype=bool)
    out = np.ones(n, dtype=bool)
    for key, values in _cells.NOT_A_BOUNDARY.items():
        if key in roads.columns:
            out &= ~roads[key].astype("string").isin(values).fillna(False).to_numpy(dtype=bool)
    if "indoor" in roads.columns:
        v = roads["indoor"].astype("string")
        out &= ~(v.notna() & (v != "no")).to_numpy(dtype=bool)
    if "osm_tag" in roads.columns:
        out &= ~roads["osm_tag"].astype("string").isin(["highway=corridor"]).fillna(False).to_numpy(bool)
    return out



@dataclass(frozen=True)
class RepartitionResult:
    """What :func:`repartition` returns.

    Attributes
    ----------
    regions
        One row per new region (grid schema columns plus metrics and ``violations``),
        in the input CRS.
    assignment
        New region code per input unit row (aligned to the input index; ``None`` where a
        unit lay outside every container).
    violations
        Structured records (see :func:`violations`), plus ``outside_containers`` records.
    summary
        The comparison table: one row ``current`` and one row ``proposed``.
    service_points
        The unit hosting each region's service point (points, input CRS).
    timings_s
        Seconds spent per stage.
    plans
        Each container's engine state (:class:`~geo.partition.plan.ContainerState`), for
        editing the proposal.
    search
        How the search ended: ``steps`` (total), ``stopped_by_time`` (codes of the
        containers a ``time_limit_s`` cut short: their plans may differ between runs;
        empty when the step budget alone decided, which makes the output reproducible)
        and ``stopped_by_steps`` (containers that used their whole step budget).
    """

    regions: gpd.GeoDataFrame
    assignment: pd.Series
    violations: list[dict[str, Any]]
    summary: pd.DataFrame
    service_points: gpd.GeoDataFrame
    timings_s: dict[str, float] = field(default_factory=dict)
    plans: list[ContainerState] = field(default_factory=list)
    search: dict[str, Any] = field(default_factory=dict)




def _check_inputs(units, containers, roads, balance, band, level, options) -> None:
    problems = [f"{k} must be positive, got {v}" for k, v in options.items() if not v > 0]
    if level not in LEVEL_BANDS:
        problems.append(f"level must be 'grid' or 'community', got {level!r}")
    if balance not in ("households", "population"):
        problems.append(f"balance must be 'households' or 'population', got {balance!r}")
    for name, gdf in (("units", units), ("containers", containers)):
        if not isinstance(gdf, gpd.GeoDataFrame):
            problems.append(f"{name} must be a GeoDataFrame")
            continue
        if gdf.crs is None:
            problems.append(f"{name} has no CRS; set it (usually EPSG:4326) with .set_crs(4326)")
        if gdf.geometry.isna().any() or gdf.geometry.is_empty.any():
            problems.append(f"{name} has {int((gdf.geometry.isna() | gdf.geometry.is_empty).sum())} "
                            "rows without geometry; drop them first")
    if isinstance(units, gpd.GeoDataFrame):
        for col in ("households", "population"):
            if col not in units.columns:
                problems.append(f"units lack the column {col!r}")
            else:
                v = pd.to_numeric(units[col], errors="coerce")
                bad = v.isna() | (v < 0)
                if bad.any():
                    rows = (np.flatnonzero(bad.to_numpy())[:5] + 1).tolist()
                    problems.append(f"units.{col} must be a number >= 0 (rows {rows})")
    if isinstance(containers, gpd.GeoDataFrame) and "code" not in containers.columns:
        problems.append("containers lack the column 'code'")
    if isinstance(containers, gpd.GeoDataFrame) and not containers.geometry.geom_type.isin(
            ["Polygon", "MultiPolygon"]).all():
        problems.append("containers must be polygons (Polygon or MultiPolygon)")
    if roads is not None and not isinstance(roads, gpd.GeoDataFrame | gpd.GeoSeries):
        problems.append("roads must be a GeoDataFrame of lines")
    if band is not None and not (len(band) == 2 and 0 <= band[0] <= band[1]):
        problems.append(f"band must be (min, max) with 0 <= min <= max, got {band}")
    if problems:
        raise PartitionInputError("cannot repartition: " + "; ".join(problems))


def repartition(
    units: gpd.GeoDataFrame,
    containers: gpd.GeoDataFrame,
    *,
    roads: gpd.GeoDataFrame | None = None,
    level: Literal["grid", "community"] = "grid",
    balance: Literal["households", "population"] = "households",
    band: tuple[float, float] | None = None,
    radius_m: float = DEFAULTS.radius_m,
    group_col: str | None = "compound_id",
    current_col: str | None = "grid_code",
    current_workers: Mapping[str, float] | None = None,
    staff: Mapping[str, Mapping[str, int]] | None = None,
    compactness_weight: float = DEFAULTS.compactness_weight,
    disruption_weight: float = DEFAULTS.disruption_weight,
    street_weight: float = DEFAULTS.street_weight,
    path_cost: float = DEFAULTS.path_cost,
    street_cost: float = DEFAULTS.street_cost,
    barrier_cost: float = DEFAULTS.barrier_cost,
    min_polsby_popper: float = DEFAULTS.min_polsby_popper,
    max_snap_m: float = DEFAULTS.max_snap_m,
    n_starts: int = DEFAULTS.n_starts,
    max_steps: int | None = None,
    time_limit_s: float | None = None,
    report_outside: bool = True,
    cells: Literal["voronoi", "polygons"] | None = None,
    locked: Collection[str] = (),
    current_regions: gpd.GeoDataFrame | None = None,
    rng: np.random.Generator | None = None,
    naming: RegionNaming | None = None,
    compounds: gpd.GeoDataFrame | None = None,
) -> RepartitionResult:
    """Redraw the regions (grids, or communities) inside each container.

    Parameters
    ----------
    units
        Grid level: buildings (points or footprints) with ``households`` and ``population``;
        rows sharing ``group_col`` (a residential compound) are never split.
        Community level: the current grids (polygons) with ``households`` and ``population``.
    containers
        Polygons with ``code`` (and ``name``) that the new regions tile and nest in:
        communities at grid level, sub-districts at community level.
    roads
        Road lines with ``kind`` (``layers.schema.ROAD_KINDS``) and optional ``walkable``:
        the walking network (all but rivers and railways), block edges
        (:data:`STREET_KINDS`) and barriers (:data:`BARRIER_KINDS`). Without roads,
        walking distance is 1.3 x the straight line.
    level
        ``"grid"`` (codes: 12-digit community + 3-digit sequence) or ``"community"``
        (9-digit sub-district + 3-digit sequence).
    balance, band
        The quantity balanced and its inclusive band; default ``DEFAULTS.band(level,
        balance=balance)`` (300-500 households per grid, 2,000-4,000 per community, times 2.5
        residents per household when balancing ``"population"``).
    radius_m
        Every home within this walk of its region's service point (a unit in the region).
    group_col, current_col
        Column of unsplittable groups, and of each unit's current region code.
    current_workers
        Workers per current region code; the summary's worker count uses their ratio.
    staff
        Full-time workers and A/B posts per current grid code (:func:`grid_staff` of the
        workers layer): adds the staff-load columns to the summary (see :func:`comparison_table`).
    compactness_weight, disruption_weight, street_weight
        Weights of Polsby-Popper, households moved, and boundaries off streets.
    path_cost, street_cost, barrier_cost
        Cost of a metre of boundary along a footpath / street / barrier (across a block
        costs 1).
    min_polsby_popper
        Regions below it get a ``low_compactness`` warning (0 turns it off).
    max_snap_m
        Homes farther than this from any walkable road are off the network.
    n_starts, max_steps
        Search starts, and the search budget of each start in steps (default
        :func:`default_steps` of the container's cell count). The same inputs, seed and
        budget give byte-identical output on any machine and load.
    time_limit_s
        Optional wall-clock cap per container (``None``: none). A container whose search it
        stopped is listed in ``result.search["stopped_by_time"]`` (its plan may then differ
        between runs).
    cells
        How units become cells that tile a container: ``"voronoi"`` (default at grid level:
        each block shared among the buildings in it) or ``"polygons"`` (default at community
        level: the units' own polygons, e.g. grids or residential blocks).
    locked, current_regions
        Codes of current regions that must not change, and the current regions' polygons
        (``code`` and geometry; needed when ``locked`` is not empty). A locked region's units
        never move and it keeps its code and polygon (the same geometry object, when
        ``current_regions`` is in the units' CRS); the rest of each container is
        re-partitioned around it. Units inside a locked polygon join it. Locked rows carry
        ``locked=True`` in ``result.regions``.
    report_outside
        Add an ``outside_containers`` warning for units in no container (turn it off when
        the units were read for a larger area than the containers on purpose).
    rng
        Randomness (default ``np.random.default_rng(0)``).
    compounds
        Residential compounds' wall polygons with ``id`` (matching ``units[group_col]``; grid
        level, Voronoi cells): each compound is one unit whose cell is its wall polygon, never
        split between grids; buildings without a compound whose point lies inside a wall join
        it; a compound without homes is one filler cell. The rest of each container is cut as
        without walls.
    naming
        Codes, names and kinds of the new regions (default :class:`~geo.partition.plan.SequenceNaming`:
        ``<container code>-<n>``); :func:`layers.planner.repartition` passes the grid codes.

    Returns
    -------
    RepartitionResult

    Raises
    ------
    PartitionInputError
        When the layers are unusable (missing columns, no CRS...), listing every problem.
    """
    _check_inputs(units, containers, roads, balance, band, level,
                  {"radius_m": radius_m, "n_starts": n_starts, "max_snap_m": max_snap_m,
                   **({} if time_limit_s is None else {"time_limit_s": time_limit_s}),
                   **({} if max_steps is None else {"max_steps": max_steps})})
    if cells not in (None, "voronoi", "polygons"):
        raise PartitionInputError(f"cells must be 'voronoi' or 'polygons', got {cells!r}")
    problems = _compounds.check(compounds)
    if compounds is not None and (cells == "polygons" or (cells is None and level == "community")):
        problems.append("compounds need cells='voronoi' (grid level: buildings as units)")
    if problems:
        raise PartitionInputError("cannot repartition: " + "; ".join(problems))
    rng = np.random.default_rng(0) if rng is None else rng
    naming = SequenceNaming() if naming is None else naming
    locked_set = {str(c) for c in locked}
    locked_gdf = _locked_regions(locked_set, current_regions)
    if locked_set and current_workers:  # the summary compares the redrawn grids only
        current_workers = {k: v for k, v in current_workers.items() if str(k) not in locked_set}
    lo, hi = band if band is not None else DEFAULTS.band(level, balance=balance)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    in_crs = units.crs
    metric = local_metric_crs(containers)
    U = units.to_crs(metric)
    C = containers.to_crs(metric).reset_index(drop=True)
    Rd = roads.to_crs(metric) if roads is not None and len(roads) else None
    net = None
    line_geom = np.zeros(0, dtype=object)
    line_kind = np.zeros(0, dtype=object)
    line_tree = None
    if Rd is not None:
        # only the roads a walk from these containers can use
        margin = 0.75 * radius_m + max_snap_m
        minx, miny, maxx, maxy = C.total_bounds
        Rd = Rd.iloc[Rd.sindex.query(shapely.box(minx - margin, miny - margin, maxx + margin,
                                                 maxy + margin))]
        kinds = Rd["kind"].astype(str).to_numpy() if "kind" in Rd.columns else np.full(len(Rd), "local")
        is_line = np.isin(kinds, STREET_KINDS + PATH_KINDS) & bounds_blocks(Rd)
        line_geom, line_kind = Rd.geometry.to_numpy()[is_line], kinds[is_line]
        line_tree = shapely.STRtree(line_geom)
        try:
            net = build_walk_network(Rd)
        except ValueError:
            net = None
    timings["prepare"] = time.perf_counter() - t

    # units -> containers
    t = time.perf_counter()
    geom = U.geometry.to_numpy()
    is_poly = np.isin(shapely.get_type_id(geom), (3, 6))
    pts = geom.copy()
    pts[is_poly] = shapely.point_on_surface(geom[is_poly])
    tree = shapely.STRtree(C.geometry.to_numpy())
    pi, ci = tree.query(pts, predicate="intersects")
    cont = np.full(len(U), -1, dtype=np.int64)
    cont[pi[::-1]] = ci[::-1]
    polygon_units = (cells or ("polygons" if level == "community" else "voronoi")) == "polygons"
    if polygon_units and not is_poly.all():
        raise PartitionInputError("cells='polygons' needs polygon units; these include points")
    if polygon_units:
        # a grid belongs to the container holding most of it
        pi2, ci2 = tree.query(geom, predicate="intersects")
        ov = shapely.area(shapely.intersection(geom[pi2], C.geometry.to_numpy()[ci2]))
        order = np.lexsort((-ov, pi2))
        first = np.ones(order.size, dtype=bool)
        first[1:] = pi2[order][1:] != pi2[order][:-1]
        # mostly inside (touching or overlapping a sliver does not count)
        first &= ov[order] > 0.01 * shapely.area(geom[pi2[order]])
        cont[:] = -1
        cont[pi2[order][first]] = ci2[order][first]
    hh_all = pd.to_numeric(U["households"]).to_numpy(dtype=float)
    pop_all = pd.to_numeric(U["population"]).to_numpy(dtype=float)
    wt_all = hh_all if balance == "households" else pop_all
    cur_all = (U[current_col].astype("string").to_numpy(dtype=object, na_value=None)
               if current_col and current_col in U.columns else np.full(len(U), None, dtype=object))
    grp_all = (U[group_col].astype("string").to_numpy(dtype=object, na_value=None)
               if group_col and group_col in U.columns and not polygon_units
               else np.full(len(U), None, dtype=object))
    walls = wall_ids = None
    if compounds is not None and len(compounds):
        grp_all, cont, wall_ids, walls = _compounds.attach(
            compounds.to_crs(metric), pts, grp_all, cont, C.geometry.to_numpy())
    viol_all: list[dict[str, Any]] = []
    outside = np.flatnonzero(cont < 0)
    if outside.size and report_outside:
        viol_all.append({"code": "outside_containers", "grid": None, "severity": "warning",
                         "reason": "outside_containers", "n_units": int(outside.size),
                         "units": [str(x) for x in U.index[outside[:10]]]})
    timings["assign"] = time.perf_counter() - t

    plans: list[ContainerState] = []
    new_code = np.full(len(U), None, dtype=object)
    t_cells = t_dist = t_solve = t_out = 0.0
    names = C["name"].astype(str).to_numpy() if "name" in C.columns else C["code"].astype(str).to_numpy()
    codes_c = C["code"].astype(str).to_numpy()
    by_cont = pd.Series(np.arange(len(U))).groupby(cont).indices
    ratio = worker_ratio(current_workers)
    locked_m = locked_gdf.to_crs(metric) if locked_gdf is not None else None
    in_locked = np.full(len(U), None, dtype=object)
    if locked_m is not None:
        lk_codes = locked_m["code"].astype(str).to_numpy()
        li, lj = shapely.STRtree(locked_m.geometry.to_numpy()).query(pts, predicate="intersects")
        in_locked[li[::-1]] = lk_codes[lj[::-1]]
        own = np.array([x is not None and str(x) in locked_set for x in cur_all], dtype=bool)
        in_locked[own] = cur_all[own].astype(str)
        new_code[in_locked != None] = in_locked[in_locked != None]  # noqa: E711
    for c_idx in range(len(C)):
        rows = np.asarray(by_cont.get(c_idx, np.zeros(0, dtype=np.int64)), dtype=np.int64)
        poly = C.geometry.iloc[c_idx]
        reserved: tuple[str, ...] = ()
        if locked_m is not None:
            rows = rows[in_locked[rows] == None]  # noqa: E711
            hit = locked_m.geometry.to_numpy()[
                shapely.STRtree(locked_m.geometry.to_numpy()).query(poly, predicate="intersects")]
            if hit.size:
                poly = shapely.make_valid(shapely.difference(poly, shapely.union_all(hit)))
                poly = shapely.union_all([g for g in shapely.get_parts(poly)
                                          if shapely.get_type_id(g) == 3 and g.area > 1.0])
            reserved = tuple(sorted(c for c in locked_set if c.startswith(codes_c[c_idx])))
            if poly.is_empty:
                continue
        ta = time.perf_counter()
        # units of this container: a group (compound) or a single row
        if rows.size:
            gkeys = np.array([f"g:{grp_all[r]}" if grp_all[r] is not None else f"b:{r}" for r in rows],
                             dtype=object)
            ukeys, uinv = np.unique(gkeys, return_inverse=True)
        else:
            ukeys, uinv = np.zeros(0, dtype=object), np.zeros(0, dtype=np.int64)
        n_units = ukeys.size
        uinv = uinv.ravel()
        u_hh = np.bincount(uinv, weights=hh_all[rows], minlength=n_units)
        u_pop = np.bincount(uinv, weights=pop_all[rows], minlength=n_units)
        u_w = np.bincount(uinv, weights=wt_all[rows], minlength=n_units)
        # representative row per unit: the one with most households
        order = np.lexsort((-hh_all[rows], uinv))
        firsts = np.ones(order.size, dtype=bool)
        firsts[1:] = uinv[order][1:] != uinv[order][:-1]
        rep_row = rows[order][firsts]
        near = line_tree.query(poly) if line_tree is not None else np.zeros(0, dtype=np.int64)
        lines, lk = line_geom[near], line_kind[near]
        kw = {"street_lines": lines[np.isin(lk, STREET_KINDS)],
              "barrier_lines": lines[np.isin(lk, BARRIER_KINDS)],
              # footpaths only matter for cutting blocks among buildings
              "path_lines": lines[np.isin(lk, PATH_KINDS)] if not polygon_units else None}
        if polygon_units and rows.size:
            tess = tessellate(poly, unit_polygons=geom[rep_row], n_units=n_units, **kw)
        else:
            if walls is not None:
                kw["areas"], kw["area_unit"] = _compounds.walls_in(
                    poly, wall_ids, walls, {str(k)[2:]: u for u, k in enumerate(ukeys) if str(k)[:2] == "g:"})
            fp_rows = is_poly[rows]
            tess = tessellate(poly, point_xy=shapely.get_coordinates(pts[rows]), point_unit=uinv,
                              footprints=geom[rows][fp_rows] if fp_rows.any() else None,
                              footprint_unit=uinv[fp_rows], n_units=n_units, **kw)
        tb = time.perf_counter()
        t_cells += tb - ta
        n = tess.n_cells
        cell_xy = np.zeros((n, 2))
        if n_units:
            cell_xy[:n_units] = shapely.get_coordinates(pts[rep_row])
        if n > n_units:
            fill_pts = shapely.point_on_surface(
                np.array([tess.union(np.array([c])) for c in range(n_units, n)], dtype=object))
            cell_xy[n_units:] = shapely.get_coordinates(fill_pts)
        homes = np.zeros(n, dtype=bool)
        homes[:n_units] = (u_hh > 0) | (u_pop > 0)
        dist, unreachable = cell_distances(
            net, pts, rows, uinv, rep_row, n_units, n, homes, poly, radius_m, max_snap_m, cell_xy)
        tc = time.perf_counter()
        t_dist += tc - tb
        # current labels: the household-weighted vote of each unit's rows
        cur_lab = np.full(n, -1, dtype=np.int64)
        cur_codes: list[str] = []
        if rows.size:
            cur_rows = cur_all[rows]
            known = np.array([x is not None for x in cur_rows])
            if known.any():
                cur_codes = sorted({str(x) for x in cur_rows[known]})
                cmap = {c: k for k, c in enumerate(cur_codes)}
                votes = np.zeros((n_units, len(cur_codes)))
                kr = np.flatnonzero(known)
                np.add.at(votes, (uinv[kr], [cmap[str(x)] for x in cur_rows[kr]]),
                          hh_all[rows][kr] + 1e-6)
                has = votes.sum(axis=1) > 0
                cur_lab[:n_units][has] = votes[has].argmax(axis=1)
        cut = (tess.shared_m - tess.path_m) + path_cost * (tess.path_m - tess.street_m) \
            + street_cost * (tess.street_m - tess.barrier_m) + barrier_cost * tess.barrier_m
        pad = np.zeros(n - n_units)
        graph = UnitGraph.from_edges(
            weight=np.concatenate([u_w, pad]), households=np.concatenate([u_hh, pad]),
            population=np.concatenate([u_pop, pad]), homes=homes,
            can_host=np.arange(n) < n_units,
            edges_i=tess.adj_i, edges_j=tess.adj_j, shared_m=tess.shared_m, cut_cost_m=cut,
            area_m2=tess.area_m2, perimeter_m=tess.perimeter_m, xy=cell_xy, dist=dist,
            current=cur_lab, container=np.full(n, c_idx),
        )
        problem = PartitionProblem(
            graph, lo=lo, hi=hi, radius_m=radius_m, compactness_weight=compactness_weight,
            disruption_weight=disruption_weight, street_weight=street_weight,
        )
        part = solve(problem, rng=rng, n_starts=n_starts, max_steps=max_steps,
                     time_limit_s=time_limit_s)
        td = time.perf_counter()
        t_solve += td - tc
        members = pd.Series(U.index[rows]).groupby(uinv).agg(list) if rows.size else pd.Series([])
        plan = ContainerState(
            code=codes_c[c_idx], name=names[c_idx], partition=part, tessellation=tess,
            cell_ids=[str(x) for x in U.index[rep_row]] + [f"filler-{c}" for c in range(n - n_units)],
            unit_rows=[list(m) for m in members.tolist()], unreachable=unreachable,
            current_codes=cur_codes, crs=metric, balance=balance, min_polsby_popper=min_polsby_popper,
            worker_ratio=ratio, reserved_codes=reserved, naming=naming,
        )
        plans.append(plan)
        if rows.size:
            new_code[rows] = np.array(plan.region_codes(part.k), dtype=object)[part.assignment[uinv]]
        t_out += time.perf_counter() - td
    timings.update(cells=t_cells, distances=t_dist, solve=t_solve)
    t = time.perf_counter()
    described = [p.describe() for p in plans]
    parts = [d[0] for d in described if len(d[0])]
    regions = (gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=metric) if parts
               else gpd.GeoDataFrame(geometry=[], crs=metric))
    for d in described:
        viol_all.extend(d[1])
    if len(regions) > 1:
        # containers were cut one by one: match the vertices along their shared edges so the
        # whole proposal is one valid coverage (for coverage_simplify on the map)
        cleaned = shapely.coverage_clean(regions.geometry.to_numpy())
        if not shapely.is_empty(cleaned).any():
            regions = regions.set_geometry(cleaned)
    services = [p.service_points() for p in plans]
    services = [s for s in services if len(s)]
    service_gdf = (gpd.GeoDataFrame(pd.concat(services, ignore_index=True), crs=metric) if services
                   else gpd.GeoDataFrame(geometry=[], crs=metric))
    if len(regions):
        regions = regions.to_crs(in_crs)
    if len(service_gdf):
        service_gdf = service_gdf.to_crs(in_crs)
    if locked_gdf is not None:
        regions = _with_locked(regions, locked_gdf, in_crs, naming, in_locked, hh_all, pop_all)
    summary = comparison_table(plans, current_workers=current_workers, staff=staff)
    timings["output"] = t_out + time.perf_counter() - t
    info = [(p.code, p.partition.search or {}) for p in plans]
    search = {"steps": int(sum(i.get("steps", 0) for _, i in info)),
              "stopped_by_time": [c for c, i in info if i.get("stopped_by") == "time"],
              "stopped_by_steps": [c for c, i in info if i.get("stopped_by") == "steps"]}
    return RepartitionResult(
        regions=regions,
        assignment=pd.Series(new_code, index=units.index, name="new_code"),
        violations=viol_all,
        summary=summary,
        service_points=service_gdf,
        timings_s=timings,
        plans=plans,
        search=search,
    )


def _locked_regions(locked: set[str], current_regions: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame | None:
    """The rows of ``current_regions`` whose code is locked (checked: every code found)."""
    if not locked:
        return None
    if current_regions is None or "code" not in current_regions.columns:
        raise PartitionInputError("locked regions need current_regions (polygons with 'code')")
    if current_regions.crs is None:
        raise PartitionInputError("current_regions has no CRS; set it with .set_crs(4326)")
    codes = current_regions["code"].astype(str)
    missing = sorted(locked - set(codes))
    if missing:
        raise PartitionInputError(f"locked codes not among the current regions: {missing}")
    out = current_regions[codes.isin(locked).to_numpy()]
    if out.geometry.isna().any() or out.geometry.is_empty.any():
        raise PartitionInputError("a locked region has no polygon")
    return out


_LOCKED_COLS = ("code", "name", "households", "population", "n_units", "moved_households",
                "moved_share", "previous_code", "violations", "locked")


def _with_locked(regions: gpd.GeoDataFrame, locked: gpd.GeoDataFrame, crs: Any, naming: RegionNaming,
                 in_locked: NDArray[np.object_], hh: NDArray, pop: NDArray) -> gpd.GeoDataFrame:
    """Append the locked regions, their polygons untouched, to the proposal's rows."""
    lk = locked if locked.crs == crs else locked.to_crs(crs)
    rows = []
    attrs = pd.DataFrame(lk.drop(columns=lk.geometry.name)).astype(object)
    for rec in attrs.where(attrs.notna(), None).to_dict("records"):
        code = str(rec["code"])
        mine = in_locked == code
        defaults = naming.defaults(code)
        rec.update({k: rec.get(k) or v for k, v in defaults.items()})
        rec.update({"code": code,
                    "households": int(round(hh[mine].sum())), "population": int(round(pop[mine].sum())),
                    "n_units": int(mine.sum()), "moved_households": 0, "moved_share": 0.0,
                    "previous_code": code, "violations": [], "locked": True})
        rows.append({k: v for k, v in rec.items() if k in regions.columns or k in _LOCKED_COLS
                     or k in defaults or k in ("leader", "workers")})
    add = gpd.GeoDataFrame(rows, geometry=list(lk.geometry.to_numpy()), crs=crs)
    if len(regions):
        regions = regions.assign(locked=False)
        return gpd.GeoDataFrame(pd.concat([regions, add], ignore_index=True), crs=crs)
    return add
