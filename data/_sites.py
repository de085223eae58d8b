"""Dedicated grids, facilities and night-life streets of the demo district (metres)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from data._names import place_names

_DEDICATED_OF_USE = {
    "office": "office_tower", "commercial": "commercial_street", "school": "school",
    "hospital": "hospital", "campus": "campus", "park": "park", "government": "government",
    "market": "other",
}
#: target share of each dedicated type (filled from what the district offers)
_SHARE = {"office_tower": .30, "commercial_street": .12, "business_district": .05, "school": .18,
          "hospital": .08, "campus": .06, "park": .08, "government": .08, "industrial_park": .03,
          "other": .02}
_SITE_SUFFIX = {
    "office_tower": "大厦", "commercial_street": "商业街", "business_district": "商圈", "school": "学校",
    "hospital": "医院", "campus": "学院", "park": "公园", "government": "机关大院",
    "industrial_park": "科创园", "other": "市场",
}


@dataclass
class Dedicated:
    """Dedicated grids: geometry, type, the parcel they sit in, and the site's name."""

    geoms: np.ndarray
    dtype: np.ndarray
    parcel: np.ndarray
    site_name: np.ndarray


def dedicated_grids(
    parcels: np.ndarray, use: np.ndarray, bx: np.ndarray, by: np.ndarray, bparcel: np.ndarray,
    bkind: np.ndarray, rng: np.random.Generator, *, count: int, taken: set[str],
) -> Dedicated:
    """About ``count`` dedicated grids over units that run themselves.

    Office towers get a 35 m footprint around the tower; schools, hospitals, campuses, parks,
    government compounds, markets and commercial blocks get their parcel, inset by 4 m, so
    each dedicated grid lies inside one comprehensive grid.
    """
    inner = shapely.buffer(parcels, -4.0, join_style="mitre")
    area = shapely.area(parcels)
    site = np.isin(use, list(_DEDICATED_OF_USE)) & ~shapely.is_empty(inner)
    site &= shapely.get_type_id(inner) == 3  # single polygons
    dtype = np.array([_DEDICATED_OF_USE.get(u, "other") for u in use], dtype=object)
    dtype = np.where((dtype == "commercial_street") & (area > 15_000), "business_district", dtype)
    office = use == "office"
    creative = office & (rng.random(use.size) < 0.1)  # a creative-industry park instead of towers
    dtype = np.where(creative, "industrial_park", dtype)
    whole = np.flatnonzero(site & ~(office & ~creative))
    # office towers: a 35 m footprint around each tower, inside its parcel
    tw = np.flatnonzero((bkind == "nonresidential") & office[bparcel] & ~creative[bparcel] & site[bparcel])
    fp = shapely.intersection(shapely.buffer(shapely.points(bx[tw], by[tw]), 35.0, quad_segs=4),
                              inner[bparcel[tw]])
    ok = (shapely.get_type_id(fp) == 3) & (shapely.area(fp) > 500)
    cand_geom = np.concatenate([inner[whole], fp[ok]])
    cand_type = np.concatenate([dtype[whole], np.full(int(ok.sum()), "office_tower", dtype=object)])
    cand_parcel = np.concatenate([whole, bparcel[tw][ok]])
    types = np.asarray(cand_type, dtype=object)
    rnd = rng.random(types.size)
    chosen = np.zeros(types.size, bool)
    for t, share in _SHARE.items():
        idx = np.flatnonzero(types == t)
        chosen[idx[np.argsort(rnd[idx], kind="stable")][: int(round(share * count))]] = True
    rest = np.flatnonzero(~chosen)
    chosen[rest[np.argsort(rnd[rest], kind="stable")][: max(0, count - int(chosen.sum()))]] = True
    order = np.flatnonzero(chosen)
    dtype = np.asarray(cand_type, dtype=object)[order]
    stems = place_names(order.size, rng, suffix="", taken=taken)
    names = np.array([s + _SITE_SUFFIX[t] for s, t in zip(stems, dtype, strict=True)], dtype=object)
    geoms = shapely.set_precision(cand_geom[order], 0.01)
    return Dedicated(geoms, dtype, cand_parcel[order].astype(int), names)


@dataclass
class Facilities:
    """Facility points."""

    x: np.ndarray
    y: np.ndarray
    kind: np.ndarray
    name: np.ndarray
    community: np.ndarray


def facilities(
    parcels: np.ndarray, use: np.ndarray, parcel_comm: np.ndarray, comm_sub: np.ndarray,
    comm_names: list[str], sub_names: list[str], rng: np.random.Generator,
) -> Facilities:
    """Community service centres, police posts, clinics, schools, markets, elderly care, parks.

    Every community has a service centre (社区党群服务中心) near its middle; every sub-district
    a police post and a health centre, plus posts and stations in some communities; schools,
    markets and parks sit in parcels of that use.
    """
    inner = shapely.buffer(parcels, -8.0)
    ok = ~shapely.is_empty(inner)
    spot = shapely.get_coordinates(shapely.point_on_surface(np.where(ok, inner, parcels)))
    cxy = shapely.get_coordinates(shapely.centroid(parcels))
    rows: list[tuple[float, float, str, str, int]] = []
    n_comm = comm_sub.size
    comm_stem = [n.removesuffix("社区") for n in comm_names]
    sub_stem = [n.removesuffix("街道") for n in sub_names]
    usable = ~np.isin(use, ("park", "campus", "construction"))

    def central(members: np.ndarray, skip: int = -1) -> int:
        m = members[usable[members]] if usable[members].any() else members
        m = m[m != skip] if (m != skip).sum() else m
        c = cxy[m].mean(axis=0)
        return int(m[np.argmin(np.hypot(*(cxy[m] - c).T))])

    for c in range(n_comm):
        members = np.flatnonzero(parcel_comm == c)
        p = central(members)
        rows.append((*spot[p], "community_service_centre", f"{comm_names[c]}党群服务中心", c))
        if c % 6 == 3:
            q = int(rng.choice(members))
            rows.append((*spot[q], "police_post", f"{comm_stem[c]}社区警务室", c))
        if c % 8 == 5:
            q = int(rng.choice(members))
            rows.append((*spot[q], "clinic", f"{comm_stem[c]}社区卫生服务站", c))
        if c % 4 == 1:
            q = int(rng.choice(members))
            rows.append((*spot[q], "elderly_care", f"{comm_stem[c]}养老服务站", c))
    for s in range(len(sub_names)):
        members = np.flatnonzero(comm_sub[parcel_comm] == s)
        p = central(members)
        rows.append((*spot[p], "police_post", f"{sub_stem[s]}警务工作站", int(parcel_comm[p])))
        q = central(members, skip=p)
        rows.append((*spot[q], "clinic", f"{sub_stem[s]}社区卫生服务中心", int(parcel_comm[q])))
    for kind, u, cap, suffix in (("school", "school", max(1, n_comm // 3), ("小学", "中学")),
                                 ("market", "market", max(1, n_comm // 4), ("农贸市场",)),
                                 ("park", "park", max(1, n_comm // 8), ("公园", "游园"))):
        cand = np.flatnonzero(use == u)
        if cand.size == 0:
            continue
        pick = np.sort(rng.choice(cand, size=min(cap, cand.size), replace=False))
        for p in pick.tolist():
            c = int(parcel_comm[p])
            rows.append((*spot[p], kind, f"{comm_stem[c]}{suffix[int(rng.integers(len(suffix)))]}", c))
    x, y, kind, name, comm = zip(*rows, strict=True)
    return Facilities(np.array(x), np.array(y), np.array(kind, dtype=object), np.array(name, dtype=object),
                      np.array(comm))


def nightlife_streets(
    edges: np.ndarray, edge_kind: np.ndarray, edge_name: np.ndarray, parcels: np.ndarray,
    use: np.ndarray, *, count: int,
) -> np.ndarray:
    """Mask of road edges on the ``count`` named streets that run most along commercial parcels."""
    shop = parcels[np.isin(use, ("commercial", "office", "market"))]
    named = np.array([n is not None for n in edge_name]) & np.isin(edge_kind, ("secondary", "local"))
    if shop.size == 0 or not named.any():
        return np.zeros(edges.size, bool)
    tree = shapely.STRtree(shop)
    ei, _ = tree.query(edges, predicate="dwithin", distance=15.0)
    hit = np.zeros(edges.size, bool)
    hit[ei] = True
    hit &= named
    names, counts = np.unique(edge_name[hit].astype(str), return_counts=True)
    top = names[np.lexsort((names, -counts))][:count]
    return named & np.isin(edge_name.astype(str), top) & hit
