"""One year of incidents and their closed-loop stage histories (vectorised).

Where: each category draws its places from anchor sets (homes weighted by households with old
compounds doubled, markets, construction sites, night-life streets, roads, parks, shops and
offices), jittered a few metres; a few hotspots emerge, intensify or fade during the year.
When: a day from seasonal, weekly and holiday rhythms per category, an hour from a profile
per source (patrols work office hours, night-life noise peaks at night).
How it went: the loop collected → (whistled →) dispatched → handling → verifying → closed →
evaluated, with rejections (closed_no_action), extensions, reworks and overdue cases; events
after :data:`DEMO_ANCHOR` have not happened yet, so recent incidents are still open.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from data import _columns as C
from data._names import fake_phones, person_names
from data._world import World
from layers import taxonomy
from layers.workflow import DEFAULT_POLICY

DAY_S = 86_400
CATEGORY_WEIGHT = {
    "01": .16, "02": .04, "03": .10, "04": .09, "05": .12, "06": .04, "07": .08,
    "08": .05, "09": .04, "10": .07, "11": .06, "12": .04, "13": .05, "14": .06,
}
SOURCES = ("hotline_12345", "patrol", "resident_app", "sensor")
_SOURCE_P = {
    "01": (.30, .45, .22, .03), "02": (.35, .50, .15, 0), "03": (.60, .15, .25, 0),
    "04": (.40, .25, .15, .20), "05": (.40, .30, .25, .05), "06": (.35, .40, .25, 0),
    "07": (.60, .05, .15, .20), "08": (.45, .15, .15, .25), "09": (.60, .15, .25, 0),
    "10": (.35, .35, .15, .15), "11": (.45, .35, .20, 0), "12": (.70, .15, .15, 0),
    "13": (.70, .15, .15, 0), "14": (.60, .15, .25, 0),
}
ANCHORS = ("home", "market", "construction", "nightlife", "road", "green", "shop")
_JITTER_M = {"home": 8.0, "market": 25.0, "construction": 35.0, "nightlife": 10.0, "road": 5.0,
             "green": 25.0, "shop": 12.0}
_AFFINITY = {  # category -> anchor set weights (ANCHORS order)
    "01": (.30, .30, 0, .10, .20, 0, .10), "02": (.80, 0, .10, 0, 0, 0, .10),
    "03": (1, 0, 0, 0, 0, 0, 0), "04": (.30, 0, 0, 0, .70, 0, 0),
    "05": (.10, .10, 0, .10, .50, 0, .20), "06": (.20, 0, 0, 0, .30, .50, 0),
    "07": (.20, 0, .35, .35, 0, 0, .10), "08": (.20, 0, .30, .20, 0, 0, .30),
    "09": (0, .50, 0, .20, 0, 0, .30), "10": (.70, .10, 0, 0, 0, 0, .20),
    "11": (.50, 0, 0, .30, 0, 0, .20), "12": (1, 0, 0, 0, 0, 0, 0),
    "13": (.80, 0, 0, 0, 0, 0, .20), "14": (.70, 0, 0, 0, .20, .10, 0),
}
# seasonal amplitude and peak day-of-year by category
_SEASON = {"04": (.5, 190), "06": (.4, 170), "07": (.35, 200), "08": (.3, 120), "05": (.1, 280)}
_LEVEL_P = {"10": (.55, .30, .15), "04": (.65, .27, .08), "02": (.55, .40, .05)}
_HOTSPOT_ITEMS = ("0103", "0703", "0802", "0501", "0101", "1102", "0701", "0401", "0801", "0203")
_HOTSPOT_ANCHOR = {"0103": "market", "0703": "nightlife", "0802": "construction", "0501": "road",
                   "0101": "market", "1102": "home", "0701": "construction", "0401": "road",
                   "0801": "nightlife", "0203": "home"}
DEPARTMENT_ZH = {
    "urban_management": "区城管局", "housing": "区住建局", "public_security": "公安分局",
    "market_regulation": "区市场监管局", "ecology_environment": "区生态环境局", "water": "区水务局",
    "landscaping": "区园林局", "transport": "区交通局", "civil_affairs": "区民政局",
    "emergency": "区应急管理局", "subdistrict_office": "街道办事处", "community": "社区居委会",
}
STAGE_CODES = ("collected", "whistled", "dispatched", "handling", "verifying", "closed",
               "evaluated", "closed_no_action")
# event slots in chronological order: (action, from_stage, to_stage); from None is the first event
_SLOTS = (  # action names follow layers.workflow.ACTIONS
    ("collect", None, "collected"),
    ("close_no_action", "collected", "closed_no_action"),
    ("whistle", "collected", "whistled"),
    ("assign", None, "dispatched"),  # "report_for_duty" when it was whistled
    ("start_handling", "dispatched", "handling"),
    ("grant_extension", "handling", "handling"),
    ("grant_extension", "handling", "handling"),
    ("report_back", "handling", "verifying"),
    ("verify_fail", "verifying", "handling"),
    ("report_back", "handling", "verifying"),
    ("verify_fail", "verifying", "handling"),
    ("report_back", "handling", "verifying"),
    ("verify_pass", "verifying", "closed"),
    ("evaluate", "closed", "evaluated"),
)


@dataclass
class Anchors:
    """Places incidents happen at: coordinates, address, weight, and the set each belongs to."""

    x: np.ndarray
    y: np.ndarray
    address: np.ndarray
    weight: np.ndarray
    kind: np.ndarray


def _road_points(world: World, mask: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    edges = world.road_geom[mask]
    if edges.size == 0:
        return np.empty((0, 2))
    length = shapely.length(edges)
    pick = rng.choice(edges.size, size=n, p=length / length.sum())
    pts = shapely.line_interpolate_point(edges[pick], rng.uniform(0.05, 0.95, n), normalized=True)
    return shapely.get_coordinates(pts)


def _parcel_points(world: World, uses: tuple[str, ...], per: int, rng: np.random.Generator) -> np.ndarray:
    idx = np.flatnonzero(np.isin(world.parcel_use, uses))
    if idx.size == 0:
        return np.empty((0, 2))
    inner = shapely.buffer(world.parcels[idx], -5.0)
    ok = ~shapely.is_empty(inner)
    pts = shapely.get_coordinates(shapely.point_on_surface(np.where(ok, inner, world.parcels[idx])))
    return np.repeat(pts, per, axis=0)


def anchors(world: World, rng: np.random.Generator) -> Anchors:
    """Build the anchor sets of the district."""
    b = world.bld
    xs, ys, w, kind = [], [], [], []
    res_old = world.parcel_use[b.parcel] == "res_old"
    home = b.households > 0
    xs.append(b.x[home]), ys.append(b.y[home])
    w.append(b.households[home] * np.where(res_old[home], 2.0, 1.0)), kind.append(np.full(home.sum(), 0))
    mk = world.fac.kind == "market"
    mxy = np.concatenate([np.column_stack([world.fac.x[mk], world.fac.y[mk]]),
                          _parcel_points(world, ("market",), 1, rng)])
    sets = {
        1: mxy,
        2: _parcel_points(world, ("construction",), 1, rng),
        3: _road_points(world, world.road_nightlife, 400, rng),
        4: _road_points(world, np.isin(world.road_kind, ("arterial", "secondary", "local")), 3000, rng),
        5: _parcel_points(world, ("park", "campus"), 1, rng),
    }
    for k, xy in sets.items():
        if xy.shape[0] == 0:  # fall back to roads so every set has places
            xy = sets[4][:50]
        xs.append(xy[:, 0]), ys.append(xy[:, 1]), w.append(np.ones(xy.shape[0])), kind.append(np.full(xy.shape[0], k))
    shop = (b.kind == "nonresidential") & np.isin(world.parcel_use[b.parcel], ("office", "commercial", "market"))
    if not shop.any():
        shop = b.kind == "nonresidential"
    xs.append(b.x[shop]), ys.append(b.y[shop]), w.append(np.ones(shop.sum())), kind.append(np.full(shop.sum(), 6))
    x, y = np.concatenate(xs), np.concatenate(ys)
    kind_a = np.concatenate(kind)
    # addresses: "<road><number>号" from the nearest named road; homes: "<compound><n>栋"
    named = np.array([n is not None for n in world.road_name])
    roads = world.road_geom[named]
    pts = shapely.points(x, y)
    near = shapely.STRtree(roads).nearest(pts)
    pos = shapely.line_locate_point(roads[near], pts)
    number = (np.floor(pos / 12.0).astype(int) * 2 + 1 + (np.arange(x.size) % 2)).astype(str)
    address = np.char.add(np.char.add(world.road_name[named][near].astype(str), number), "号")
    nb = home.sum()
    starts = np.searchsorted(b.parcel, b.parcel)  # buildings are sorted by parcel
    bno = (np.arange(b.parcel.size) - starts + 1).astype(str)
    comp = np.char.add(np.char.add(world.parcel_name[b.parcel].astype(str), bno), "栋")
    address[:nb] = comp[home]
    return Anchors(x, y, address.astype(object), np.concatenate(w).astype(float), kind_a)


def _hour_profiles() -> dict[str, np.ndarray]:
    h = np.arange(24)
    day = 0.15 + np.exp(-((h - 10) ** 2) / 6) + 0.9 * np.exp(-((h - 15.5) ** 2) / 6) + 0.5 * np.exp(-((h - 20) ** 2) / 4)
    day[:6] = 0.08
    patrol = np.where((h >= 8) & (h < 18), 1.0, 0.0) * (1.2 - 0.2 * (h == 12))
    sensor = 0.6 + 0.4 * np.exp(-((h - 14) ** 2) / 20)
    night = 0.1 + np.exp(-((h - 22) ** 2) / 5) + np.exp(-((h + 2) ** 2) / 5)
    return {k: v / v.sum() for k, v in {"day": day, "patrol": patrol, "sensor": sensor, "night": night}.items()}


def generate(
    world: World, rng: np.random.Generator, *, anchor: np.datetime64, n: int, hotspots: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Incidents (with metric ``x``, ``y`` columns) and their events; see the module docstring."""
    anc = anchors(world, rng)
    cats = list(taxonomy.CATEGORY_CODES)
    items = list(taxonomy.ITEM_CODES)
    item_cat = np.array([cats.index(taxonomy.ITEMS[i].category_code) for i in items])
    cw = np.array([CATEGORY_WEIGHT[c] for c in cats])
    cat_i = rng.choice(len(cats), size=n, p=cw / cw.sum())
    item_i = np.zeros(n, dtype=int)
    src_i = np.zeros(n, dtype=int)
    set_i = np.zeros(n, dtype=int)
    for ci, c in enumerate(cats):
        m = np.flatnonzero(cat_i == ci)
        own = np.flatnonzero(item_cat == ci)
        iw = rng.gamma(3.0, size=own.size)
        item_i[m] = own[rng.choice(own.size, size=m.size, p=iw / iw.sum())]
        p = np.array(_SOURCE_P[c], dtype=float)
        src_i[m] = rng.choice(4, size=m.size, p=p / p.sum())
        p = np.array(_AFFINITY[c], dtype=float)
        set_i[m] = rng.choice(len(ANCHORS), size=m.size, p=p / p.sum())

    # ---- where: an anchor of the chosen set, jittered
    anchor_i = np.zeros(n, dtype=int)
    sd = np.zeros(n)
    for k, name in enumerate(ANCHORS):
        m = np.flatnonzero(set_i == k)
        pool = np.flatnonzero(anc.kind == k)
        wts = anc.weight[pool]
        anchor_i[m] = pool[rng.choice(pool.size, size=m.size, p=wts / wts.sum())]
        sd[m] = _JITTER_M[name]
    jitter = rng.normal(0.0, 1.0, (n, 2)) * sd[:, None]

    # ---- when
    t0 = anchor - np.timedelta64(365, "D")
    first_day = t0.astype("datetime64[D]") + np.timedelta64(1, "D")
    days = first_day + np.arange(365)
    doy = (days - days.astype("datetime64[Y]")).astype(int)
    dow = (days.view("int64") - 4) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    weekly = np.array([1.05, 1.05, 1.05, 1.05, 1.0, .85, .8])[dow]
    holiday = np.where((days >= np.datetime64("2026-02-15")) & (days <= np.datetime64("2026-02-23")), 0.55, 1.0)
    trend = np.linspace(0.95, 1.05, 365)
    prof = _hour_profiles()
    day_i = np.zeros(n, dtype=int)
    for ci, c in enumerate(cats):
        amp, peak = _SEASON.get(c, (0.08, 200))
        season = 1 + amp * np.cos(2 * np.pi * (doy - peak) / 365.0)
        for patrol in (False, True):
            m = np.flatnonzero((cat_i == ci) & ((src_i == 1) == patrol))
            wk = np.where(dow >= 5, 0.4, 1.0) if patrol else weekly
            p = season * wk * holiday * trend
            day_i[m] = rng.choice(365, size=m.size, p=p / p.sum())
    night_codes = [items.index("0703"), items.index("0801")]
    night_item = np.isin(item_i, night_codes) | ((cat_i == cats.index("11")) & (rng.random(n) < 0.4))
    hour = np.zeros(n, dtype=int)
    for key, m in (("patrol", src_i == 1), ("sensor", (src_i == 3) & ~night_item),
                   ("night", (src_i != 1) & night_item), ("day", ((src_i == 0) | (src_i == 2)) & ~night_item)):
        idx = np.flatnonzero(m)
        hour[idx] = rng.choice(24, size=idx.size, p=prof[key])

    # ---- hotspots: a share of incidents re-drawn at a few places with their own rhythm
    n_hot = int(n * 0.012) if hotspots else 0
    shapes = ("emerge", "intensify", "fade")
    hot_items = rng.permutation(np.array(_HOTSPOT_ITEMS, dtype=object))
    taken = rng.permutation(n)
    d = np.arange(365.0)
    for h in range(hotspots):
        it = str(hot_items[h % hot_items.size])
        sel = np.sort(taken[h * n_hot:(h + 1) * n_hot])
        d0 = rng.uniform(90, 260)
        shape = shapes[h % 3]
        if shape == "emerge":
            curve = np.clip((d - d0) / 45.0, 0, 1)
        elif shape == "intensify":
            curve = 0.25 + 0.75 * np.clip((d - d0 + 60) / 120.0, 0, 1) ** 2
        else:
            curve = np.where(d < d0 - 120, 1.0, np.exp(-np.clip(d - d0 + 120, 0, None) / 35.0))
        pool = np.flatnonzero(anc.kind == ANCHORS.index(_HOTSPOT_ANCHOR[it]))
        centre = int(pool[rng.integers(pool.size)])
        r = rng.uniform(40, 110)
        item_i[sel] = items.index(it)
        cat_i[sel] = item_cat[items.index(it)]
        day_i[sel] = rng.choice(365, size=sel.size, p=curve / curve.sum())
        anchor_i[sel] = centre
        jitter[sel] = rng.normal(0, r / 2, (sel.size, 2))
        if it in ("0703", "0801"):
            night_sel = sel[src_i[sel] != 1]  # patrols keep office hours
            hour[night_sel] = rng.choice(24, size=night_sel.size, p=prof["night"])
    ax, ay = anc.x[anchor_i], anc.y[anchor_i]
    x, y = ax + jitter[:, 0], ay + jitter[:, 1]
    # outside the district: back to the anchor, moved 0.5 m off the street line it may lie on
    step = rng.normal(0.0, 1.0, (n, 2))
    step *= 0.5 / np.maximum(np.hypot(step[:, 0], step[:, 1]), 1e-9)[:, None]
    for fx, fy in ((ax + step[:, 0], ay + step[:, 1]), (ax - step[:, 0], ay - step[:, 1]), (ax, ay)):
        out = ~shapely.contains_xy(world.district, x, y)
        x = np.where(out, fx, x)
        y = np.where(out, fy, y)

    epoch = days.astype("datetime64[s]").view("int64")[day_i] + hour * 3600 + rng.integers(0, 3600, n)
    limit_epoch = int(anchor.astype("datetime64[s]").view("int64"))
    late = epoch >= limit_epoch
    epoch[late] = limit_epoch - rng.integers(60, 6 * 3600, late.sum())
    order = np.argsort(epoch, kind="stable")
    x, y, anchor_i, item_i, cat_i, src_i, epoch = (
        a[order] for a in (x, y, anchor_i, item_i, cat_i, src_i, epoch))

    # ---- how serious, which whistle, which department
    level = np.ones(n, dtype=np.int64)
    u = rng.random(n)
    for ci, c in enumerate(cats):
        p1, p2, _ = _LEVEL_P.get(c, (.74, .21, .05))
        m = cat_i == ci
        level[m] = np.where(u[m] < p1, 1, np.where(u[m] < p1 + p2, 2, 3))
    u = rng.random(n)
    whistle_i = np.where(level == 1, np.where(u < .85, 0, 1),
                         np.where(level == 2, np.where(u < .15, 0, np.where(u < .95, 1, 2)),
                                  np.where(u < .5, 1, 2)))
    depts = list(DEPARTMENT_ZH)
    dept_i = np.array([depts.index(taxonomy.ITEMS[i].department) for i in items])[item_i]

    # grid of each incident, and its full-time (post A) worker
    comp = world.grid_geom[: world.n_comprehensive]
    tree = shapely.STRtree(comp)
    pi, gi = tree.query(shapely.points(x, y), predicate="intersects")
    grid = np.full(n, -1)
    grid[pi[::-1]] = gi[::-1]
    missing = np.flatnonzero(grid < 0)
    if missing.size:
        grid[missing] = tree.nearest(shapely.points(x[missing], y[missing]))
    wk = world.workers
    ft = np.zeros(world.grid_code.size, dtype=int)
    fm = wk.role == "full_time"
    ft[wk.grid[fm]] = np.flatnonzero(fm)
    ft_of = ft[grid]  # index into workers
    sub = world.comm_sub[world.grid_comm[grid]]

    # ---- the closed loop: slot times in seconds after the request
    limit_h = np.array([0.0] + [taxonomy.DEFAULT_LIMIT_HOURS[k] for k in (1, 2, 3)])[level]
    # the limit's length on the wall clock: working hours (level 3 on the clock), by the workflow rule
    span = _add_limit_hours(epoch, limit_h, level) - epoch

    def ln(median_s: float | np.ndarray, sigma: float) -> np.ndarray:
        return np.maximum(60.0, median_s * np.exp(rng.normal(0.0, sigma, n)))

    S = len(_SLOTS)
    t = np.full((n, S), np.nan)
    t[:, 0] = 0.0
    reject = rng.random(n) < 0.05
    t[reject, 1] = ln(2 * 3600, 0.8)[reject]
    go = ~reject
    wh = go & (whistle_i > 0)
    t[wh, 2] = ln(40 * 60, 0.7)[wh]
    t[go, 3] = np.where(wh, t[:, 2], 0.0)[go] + ln(40 * 60, 0.7)[go]
    t[go, 4] = t[go, 3] + ln(2 * 3600, 0.8)[go]
    ext = (rng.random(n) < 0.065).astype(int) + (rng.random(n) < 0.015).astype(int)
    dur = ln(span * 0.33, 0.75) * np.where(ext > 0, 1.8, 1.0)
    tail = rng.random(n)
    dur = np.where(tail < 0.05, dur * rng.uniform(1.5, 4.0, n), dur)  # some overdue
    dur = np.where(tail > 0.996, dur + rng.uniform(20, 150, n) * DAY_S, dur)
    for k in (1, 2):
        m = go & (ext >= k)
        t[m, 4 + k] = t[m, 4] + dur[m] * (0.3 * k)
    t[go, 7] = t[go, 4] + dur[go]
    rework = (rng.random(n) < 0.10).astype(int) + (rng.random(n) < 0.02).astype(int)
    last = t[:, 7].copy()
    for k in (1, 2):
        m = go & (rework >= k)
        t[m, 6 + 2 * k] = last[m] + ln(3 * 3600, 0.6)[m]
        t[m, 7 + 2 * k] = t[m, 6 + 2 * k] + ln(10 * 3600, 0.8)[m]
        last[m] = t[m, 7 + 2 * k]
    t[go, 12] = last[go] + ln(5 * 3600, 0.7)[go]
    ev = go & (rng.random(n) < 0.8)
    t[ev, 13] = t[ev, 12] + ln(24 * 3600, 0.8)[ev]
    ts = epoch[:, None] + np.round(t)  # absolute seconds
    valid = ~np.isnan(ts) & (ts <= limit_epoch)
    last_slot = S - 1 - np.argmax(valid[:, ::-1], axis=1)
    slot_to = np.array([STAGE_CODES.index(s[2]) for s in _SLOTS])
    stage_i = slot_to[last_slot]
    updated = ts[np.arange(n), last_slot]
    n_ext = valid[:, 5:7].sum(axis=1)
    n_rework = valid[:, [8, 10]].sum(axis=1)
    closed_at = np.where(valid[:, 12], ts[:, 12], np.where(valid[:, 1], ts[:, 1], np.nan))
    expected = _add_limit_hours(epoch, limit_h * (1 + n_ext), level)
    status_i = np.isin(stage_i, [STAGE_CODES.index(s) for s in ("closed", "evaluated", "closed_no_action")])

    # ---- text columns, built in Arrow
    ids = C.join("GP", C.pad(np.arange(1, n + 1), 7))
    wnames = C.strings(wk.name)
    by_resident = (src_i == 0) | (src_i == 2)
    people = C.strings(person_names(n, rng))
    phones = C.strings(fake_phones(n, rng))
    reporter = pa_where(by_resident, people, pa_where(src_i == 1, C.take(wnames, ft_of), None))
    phone = pa_where(by_resident, phones, None)
    addr = C.take(C.strings(anc.address), anchor_i)
    item_names = [taxonomy.ITEMS[i].name_zh for i in items]
    prefix = C.dictionary(src_i, ["来电反映", "巡查发现", "居民随手拍：", "感知设备报警："])
    description = C.join(prefix, addr, "附近", C.dictionary(item_i, item_names))
    incidents = pd.DataFrame({
        "service_request_id": C.to_pandas(ids),
        "status": C.codes_to_str(status_i.astype(int), ["open", "closed"]),
        "service_code": C.codes_to_str(item_i, items),
        "service_name": C.codes_to_str(item_i, item_names),
        "description": C.to_pandas(description),
        "requested_datetime": _dt(epoch.astype(float)),
        "updated_datetime": _dt(updated),
        "expected_datetime": _dt(expected),
        "address": C.to_pandas(addr),
        "category_code": C.codes_to_str(cat_i, cats),
        "item_code": C.codes_to_str(item_i, items),
        "level": level,
        "source": C.codes_to_str(src_i, SOURCES),
        "stage": C.codes_to_str(stage_i, STAGE_CODES),
        "whistle": C.codes_to_str(whistle_i, ("none", "work", "tough")),
        "department": C.codes_to_str(dept_i, depts),
        "grid_code": C.codes_to_str(grid, list(world.grid_code)),
        "reporter_name": C.to_pandas(reporter),
        "reporter_phone": C.to_pandas(phone),
        "closed_datetime": _dt(closed_at),
        "reworks": n_rework.astype(np.int64),
        "extensions": n_ext.astype(np.int64),
        "x": x,
        "y": y,
    })

    # ---- events, flattened in chronological order per incident
    r, s = np.nonzero(valid)
    from_i = np.array([-1 if f is None else STAGE_CODES.index(f) for _, f, _ in _SLOTS])[s]
    disp = s == 3
    from_i[disp] = np.where(valid[r[disp], 2], STAGE_CODES.index("whistled"), STAGE_CODES.index("collected"))
    actions = [*dict.fromkeys(a for a, _, _ in _SLOTS), "report_for_duty"]
    action_i = np.array([actions.index(a) for a, _, _ in _SLOTS])[s]
    action_i[disp] = np.where(valid[r[disp], 2], actions.index("report_for_duty"), actions.index("assign"))
    # actors: one dictionary of every actor, then a code per event
    n_sub = world.sub_name.size
    fixed = ["12345热线坐席", "随手拍平台", "物联感知平台"]
    actor_dict = (fixed + [f"{nm}网格化服务管理中心" for nm in world.sub_name]
                  + [f"{nm}分管领导" for nm in world.sub_name] + [f"{nm}党工委书记" for nm in world.sub_name]
                  + [DEPARTMENT_ZH[d] for d in depts] + list(wk.name))
    o_centre = len(fixed)
    o_dept = o_centre + 3 * n_sub
    o_worker = o_dept + len(depts)
    centre_c = o_centre + sub
    dept_c = o_dept + dept_i
    worker_c = o_worker + ft_of
    collector_c = np.choose(src_i, [np.zeros(n, int), worker_c, np.ones(n, int), np.full(n, 2)])
    whistler_c = np.where(whistle_i == 2, o_centre + 2 * n_sub + sub, o_centre + n_sub + sub)
    dispatcher_c = np.where(whistle_i > 0, dept_c, centre_c)  # report_for_duty, or assign
    by_slot = np.stack([collector_c, centre_c, whistler_c, dispatcher_c, dept_c, centre_c, centre_c,
                        dept_c, centre_c, dept_c, centre_c, dept_c, worker_c, centre_c], axis=1)
    actor_i = by_slot[r, s]
    notes = [None, "工作推进哨", "攻坚克难哨", "核实未通过，返工", "重复工单", "非本部门职责", "无效诉求",
             "满意", "基本满意", "不满意"] + [f"同意延期{int(taxonomy.DEFAULT_LIMIT_HOURS[k])}小时" for k in (1, 2, 3)]
    note_i = np.zeros(r.size, dtype=int)
    m = s == 2
    note_i[m] = np.where(whistle_i[r[m]] == 2, 2, 1)
    m = (s == 5) | (s == 6)
    note_i[m] = 10 + level[r[m]] - 1  # an extension of one more time limit
    note_i[(s == 8) | (s == 10)] = 3
    m = s == 1
    note_i[m] = 4 + rng.integers(0, 3, m.sum())
    m = s == 13
    note_i[m] = 7 + rng.choice(3, size=m.sum(), p=[.82, .14, .04])
    seq = np.arange(r.size) - np.searchsorted(r, r) + 1
    events = pd.DataFrame({
        "event_id": C.to_pandas(C.join(C.take(ids, r), "-", C.pad(seq, 2))),
        "service_request_id": C.to_pandas(C.take(ids, r)),
        "action": C.codes_to_str(action_i, actions),
        "from_stage": C.codes_to_str(np.where(from_i < 0, len(STAGE_CODES), from_i), [*STAGE_CODES, None]),
        "to_stage": C.codes_to_str(slot_to[s], STAGE_CODES),
        "actor": C.codes_to_str(actor_i, actor_dict),
        "time": _dt(ts[r, s]),
        "note": C.codes_to_str(note_i, notes),
    })
    return incidents, events


def pa_where(mask: np.ndarray, a: pa.Array, b: pa.Array | None) -> pa.Array:
    """Element-wise ``a if mask else b`` for Arrow string arrays (``b=None`` gives nulls)."""
    other = pa.nulls(len(a), pa.string()) if b is None else b
    return pc.if_else(pa.array(mask), a, other)


def _add_limit_hours(epoch: np.ndarray, hours: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Seconds since the epoch of ``epoch + hours`` counted as the workflow counts each level's
    time limits (:meth:`layers.workflow.WorkflowPolicy.add_hours` of ``DEFAULT_POLICY``)."""
    out = np.zeros(epoch.shape, dtype=np.float64)
    for lvl in (1, 2, 3):
        m = level == lvl
        if m.any():
            due = DEFAULT_POLICY.add_hours(epoch[m].astype(np.int64).astype("datetime64[s]"), hours[m], level=lvl)
            out[m] = np.asarray(due).astype("datetime64[s]").astype(np.int64)
    return out


def _dt(sec: np.ndarray) -> np.ndarray:
    """Seconds since the epoch (local time, NaN for missing) as ``datetime64[us]``."""
    out = np.full(sec.shape, np.datetime64("NaT"), dtype="datetime64[s]")
    ok = np.isfinite(sec)
    out[ok] = sec[ok].astype(np.int64).astype("datetime64[s]")
    return out.astype("datetime64[us]")
