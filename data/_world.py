"""The static demo district (metres, EPSG:32650): everything but incidents and patrols."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import shapely

from data import _admin, _people, _sites, _streets
from data._frame import PresetSpec, frame_metric
from data._names import compound_names, place_names

DISTRICT_CODE = "320106"
#: Name of the demo district: the real frame's name, marked as a synthetic demo.
DISTRICT_NAME = "鼓楼区（合成演示）"

Progress = Callable[[str, float], None]


@dataclass
class World:
    """The district before incidents and patrols, in metres (EPSG:32650)."""

    district: shapely.Geometry
    sub_code: np.ndarray
    sub_name: np.ndarray
    sub_geom: np.ndarray
    comm_code: np.ndarray
    comm_name: np.ndarray
    comm_sub: np.ndarray
    comm_geom: np.ndarray
    # grids: comprehensive first, then dedicated
    grid_code: np.ndarray
    grid_name: np.ndarray
    grid_kind: np.ndarray
    grid_dtype: np.ndarray
    grid_comm: np.ndarray
    grid_geom: np.ndarray
    grid_households: np.ndarray
    grid_population: np.ndarray
    n_comprehensive: int
    parcels: np.ndarray
    parcel_use: np.ndarray
    parcel_grid: np.ndarray
    parcel_comm: np.ndarray
    parcel_name: np.ndarray
    bld: _people.Buildings
    bld_grid: np.ndarray
    fac: _sites.Facilities
    road_geom: np.ndarray
    road_kind: np.ndarray
    road_name: np.ndarray
    road_nightlife: np.ndarray
    workers: _people.Workers
    grid_leader: np.ndarray
    grid_workers: np.ndarray


def build_world(spec: PresetSpec, rng: np.random.Generator, progress: Progress) -> World:
    """Draw the district: roads, parcels, buildings, the administrative ladder, sites and staff."""
    frame = frame_metric(spec)
    area_km2 = frame.area / 1e6
    chars: dict[str, np.ndarray] = {}

    def parcel_target(superblocks: np.ndarray) -> np.ndarray:
        chars["c"] = _people.superblock_character(superblocks, rng, area_km2=area_km2)
        return np.array([_people.PARCEL_M2[c] for c in chars["c"]])

    net = _streets.build_network(frame, rng, parcel_m2=parcel_target)
    progress("streets", 1.0)
    use = _people.parcel_use(chars["c"][net.superblock], rng)
    hh_total = int(round(spec.households_per_km2 * area_km2))
    bld = _people.buildings(net.parcels, use, rng, households_total=hh_total)
    progress("buildings", 1.0)

    n_p = net.parcels.size
    phh = np.bincount(bld.parcel, bld.households, n_p)
    ppop = np.bincount(bld.parcel, bld.population, n_p).astype(np.int64)
    parea = shapely.area(net.parcels)
    pxy = shapely.get_coordinates(shapely.centroid(net.parcels))
    # superblocks that still hold parcels, renumbered
    _, sb = np.unique(net.superblock, return_inverse=True)
    nsb = int(sb.max()) + 1
    sbw = np.bincount(sb, phh + parea * 0.002, nsb)
    sba = np.bincount(sb, parea, nsb)
    sbxy = np.column_stack([np.bincount(sb, pxy[:, 0] * parea, nsb), np.bincount(sb, pxy[:, 1] * parea, nsb)])
    sbxy /= sba[:, None]
    adj = net.adjacency
    sp = np.column_stack([sb[adj[:, 0].astype(int)], sb[adj[:, 1].astype(int)]])
    sp = np.unique(np.sort(sp[sp[:, 0] != sp[:, 1]], axis=1), axis=0)
    sub_of_sb = _admin.regions(sbxy, sbw, sp, spec.subdistricts, rng)
    n_sub = int(sub_of_sb.max()) + 1
    # communities per sub-district in proportion to weight, summing exactly to the preset's count
    share = np.bincount(sub_of_sb, sbw, n_sub) / sbw.sum() * spec.communities
    ncs = np.maximum(np.floor(share).astype(int), 1)
    for i in np.argsort(-(share - np.floor(share)), kind="stable")[: max(0, spec.communities - ncs.sum())]:
        ncs[i] += 1
    comm_of_sb = np.full(nsb, -1)
    base = 0
    for s in range(n_sub):
        m = np.flatnonzero(sub_of_sb == s)
        remap = np.full(nsb, -1)
        remap[m] = np.arange(m.size)
        spp = sp[(sub_of_sb[sp[:, 0]] == s) & (sub_of_sb[sp[:, 1]] == s)]
        lab = _admin.regions(sbxy[m], sbw[m], remap[spp], int(ncs[s]), rng)
        comm_of_sb[m] = lab + base
        base += int(lab.max()) + 1
    n_comm = base
    comm_sub = np.zeros(n_comm, dtype=int)
    comm_sub[comm_of_sb] = sub_of_sb
    pcomm = comm_of_sb[sb]
    pgrid = _admin.grow_grids(pcomm, phh, parea, pxy, adj, rng, mean_target=305.0)
    # order grids by community, then position (north-west first)
    n_g = int(pgrid.max()) + 1
    g_comm = np.zeros(n_g, dtype=int)
    g_comm[pgrid] = pcomm
    gx = np.bincount(pgrid, pxy[:, 0] * parea, n_g) / np.bincount(pgrid, parea, n_g)
    gy = np.bincount(pgrid, pxy[:, 1] * parea, n_g) / np.bincount(pgrid, parea, n_g)
    gorder = np.lexsort((gx, -np.round(gy / 200.0), g_comm))
    rank = np.empty(n_g, dtype=int)
    rank[gorder] = np.arange(n_g)
    pgrid = rank[pgrid]
    g_comm = g_comm[gorder]
    progress("grids", 0.5)

    sub_geom = _admin.union_by(net.parcels, comm_sub[pcomm])
    comm_geom = _admin.union_by(net.parcels, pcomm)
    grid_geom = _admin.union_by(net.parcels, pgrid)
    district = shapely.coverage_union_all(sub_geom)

    taken: set[str] = set()
    sub_name = np.array(place_names(n_sub, rng, suffix="街道", taken=taken), dtype=object)
    comm_name = np.array(place_names(n_comm, rng, suffix="社区", taken=taken), dtype=object)
    sub_code = np.array([f"{DISTRICT_CODE}{s + 1:03d}" for s in range(n_sub)], dtype=object)
    comm_code = np.empty(n_comm, dtype=object)
    for s in range(n_sub):
        for k, c in enumerate(np.flatnonzero(comm_sub == s).tolist()):
            comm_code[c] = f"{sub_code[s]}{k + 1:03d}"
    g_code = np.empty(n_g, dtype=object)
    g_name = np.empty(n_g, dtype=object)
    first_grid = np.zeros(n_comm, dtype=int)
    for c in range(n_comm):
        gs = np.flatnonzero(g_comm == c)
        first_grid[c] = gs[0]
        for k, g in enumerate(gs.tolist()):
            g_code[g] = f"{comm_code[c]}{k + 1:03d}"
            g_name[g] = f"{comm_name[c]}第{_admin.cn_number(k + 1)}网格"

    # dedicated grids
    ded = _sites.dedicated_grids(
        net.parcels, use, bld.x, bld.y, bld.parcel, bld.kind, rng,
        count=int(round(600 * area_km2 / 55.1)), taken=taken,
    )
    d_comm = pcomm[ded.parcel]
    d_code = np.empty(ded.geoms.size, dtype=object)
    for c in np.unique(d_comm).tolist():
        for k, i in enumerate(np.flatnonzero(d_comm == c).tolist()):
            d_code[i] = f"{comm_code[c]}{501 + k:03d}"
    progress("grids", 1.0)

    # names of parcels (compounds) used in addresses
    pname = compound_names(n_p, rng).astype(object)
    fac = _sites.facilities(net.parcels, use, pcomm, comm_sub, list(comm_name), list(sub_name), rng)
    night = _sites.nightlife_streets(net.edges, net.edge_kind, net.edge_name, net.parcels, use,
                                     count=max(1, round(area_km2 / 5)))

    n_ded = ded.geoms.size
    staff = _people.workers(n_g, n_ded, first_grid, rng)
    n_all = n_g + n_ded
    grid_workers = np.bincount(staff.grid[staff.role != "grid_leader"], minlength=n_all)
    leader_of_comm = staff.name[: n_comm]
    # comprehensive grids are led by their community's grid leader; a dedicated grid by the unit's worker
    grid_leader = np.concatenate([leader_of_comm[g_comm], staff.name[staff.grid >= n_g]])
    progress("people", 1.0)

    ghh = np.bincount(pgrid, phh, n_g).astype(np.int64)
    gpop = np.bincount(pgrid, ppop, n_g).astype(np.int64)
    return World(
        district=district,
        sub_code=sub_code, sub_name=sub_name, sub_geom=sub_geom,
        comm_code=comm_code, comm_name=comm_name, comm_sub=comm_sub, comm_geom=comm_geom,
        grid_code=np.concatenate([g_code, d_code]),
        grid_name=np.concatenate([g_name, np.char.add(ded.site_name.astype(str), "专属网格").astype(object)]),
        grid_kind=np.array(["comprehensive"] * n_g + ["dedicated"] * n_ded, dtype=object),
        grid_dtype=np.concatenate([np.full(n_g, None, dtype=object), ded.dtype]),
        grid_comm=np.concatenate([g_comm, d_comm]),
        grid_geom=np.concatenate([grid_geom, ded.geoms]),
        grid_households=np.concatenate([ghh, np.zeros(n_ded, np.int64)]),
        grid_population=np.concatenate([gpop, np.zeros(n_ded, np.int64)]),
        n_comprehensive=n_g,
        parcels=net.parcels, parcel_use=use, parcel_grid=pgrid, parcel_comm=pcomm, parcel_name=pname,
        bld=bld, bld_grid=pgrid[bld.parcel], fac=fac,
        road_geom=net.edges, road_kind=net.edge_kind, road_name=net.edge_name, road_nightlife=night,
        workers=staff, grid_leader=grid_leader, grid_workers=grid_workers,
    )
