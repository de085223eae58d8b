"""``gridpulse simulate``: a living district -- a realistic day replayed through the intake API.

Three kinds of traffic, all over HTTP with API tokens, exactly as outside systems would send it:

* the 12345 hotline posts Open311 service requests at the store's own hourly rates (cases per
  hour of day averaged over its history), items drawn by their frequency, places near earlier
  cases of the same item (jittered by up to ~100 m);
* every on-duty grid worker's phone posts a GPS fix every 30 s (a random walk kept inside the
  worker's grid), batched per tick;
* the command centre assigns new cases to the item's department, department systems report
  back (start handling, report back), and the command centre verifies.

``speed`` multiplies the rates (the simulated clock runs ``speed`` times faster; the
timestamps sent are the real clock, so every page sees the cases arrive "now").

The simulator needs the store (to read rates, workers and grids, and to create its accounts
and tokens: ``sim-hotline`` (command centre of the district) and ``sim-<department>``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import shapely

from layers import taxonomy
from layers.intake import now_local

#: Seconds between two fixes of one worker.
FIX_EVERY_S = 30.0
#: Worker duty hours (local time, half-open).
DUTY_HOURS = (8, 18)
#: Metres a walking worker moves in 30 s at most.
STEP_M = 35.0


@dataclass
class Plan:
    """What the simulation draws from: rates, items, places, workers, and the tokens."""

    hourly: np.ndarray  # 24 mean cases per hour of day
    items: np.ndarray
    item_p: np.ndarray
    places: dict[str, np.ndarray]  # item -> (n, 2) lon/lat of past cases
    workers: pd.DataFrame  # id, grid_code, lon, lat
    grids: dict[str, Any]  # grid code -> polygon
    tokens: dict[str, str] = field(default_factory=dict)


def _token_for(store: Any, username: str, role: str, scope: str, department: str = "") -> str:
    import secrets

    from layers.accounts import AccountError, create_account, get_account
    from layers.apitokens import issue_api_token

    try:
        get_account(store, username)
    except AccountError:
        create_account(store, username, secrets.token_urlsafe(16), role=role, scope_code=scope,
                       department=department, display_name=f"模拟 {username}", actor="simulate")
    return issue_api_token(store, username, actor="simulate", days=2, label="simulate")


def plan_from_store(store: Any) -> Plan:
    """Rates, items, places and workers of the store, and API tokens for the simulator."""
    inc = store.read("incidents", columns=["item_code", "requested_datetime"])
    t = pd.to_datetime(inc["requested_datetime"])
    days = max((t.max() - t.min()).total_seconds() / 86400.0, 1.0) if len(t) else 1.0
    hourly = np.bincount(t.dt.hour.to_numpy(), minlength=24)[:24] / days if len(t) else \
        np.full(24, 1.0)
    grids = store.read("grids", columns=["code"])
    gmap = dict(zip(grids["code"].astype(str), grids.geometry, strict=True))
    located = inc[inc.geometry.notna() & ~inc.geometry.is_empty & inc["item_code"].notna()]
    if len(located):
        freq = located["item_code"].astype(str).value_counts()
        items = freq.index.to_numpy()
        item_p = (freq / freq.sum()).to_numpy(float)
        pts = located.geometry.to_numpy()
        xy = np.column_stack([shapely.get_x(pts), shapely.get_y(pts)])
        codes = located["item_code"].astype(str).to_numpy()
        places = {c: xy[codes == c][-500:] for c in items}
    else:  # a district without history yet: every whistle-list item, at every grid
        items = np.array(sorted(taxonomy.ITEMS), dtype=object)
        item_p = np.full(len(items), 1.0 / len(items))
        inner = [g.representative_point() for g in gmap.values()]
        xy = np.array([(p.x, p.y) for p in inner], dtype=float)
        places = {c: xy for c in items}
    w = store.read("workers", columns=["id", "grid_code"])
    w = w[w["grid_code"].astype(str).isin(gmap)].reset_index(drop=True)
    start = [gmap[str(g)].representative_point() for g in w["grid_code"]]
    workers = pd.DataFrame({"id": w["id"].astype(str), "grid_code": w["grid_code"].astype(str),
                            "lon": [p.x for p in start], "lat": [p.y for p in start]})
    district = str(grids["code"].iloc[0])[:6]
    tokens = {"hotline": _token_for(store, "sim-hotline", "command_centre", district)}
    for dept in sorted({it.department for it in taxonomy.ITEMS.values()}):
        if dept == "community":
            continue
        tokens[dept] = _token_for(store, f"sim-{dept.replace('_', '-')}", "department",
                                  district, dept)
    return Plan(hourly, items, item_p, places, workers, gmap, tokens)


@dataclass
class Stats:
    """Counters of what was sent and accepted."""

    cases: int = 0
    fixes: int = 0
    actions: int = 0
    errors: int = 0
    refused: list[str] = field(default_factory=list)


def _jitter(rng: np.random.Generator, lon: float, lat: float, metres: float) -> tuple[float, float]:
    d = rng.uniform(0, metres)
    a = rng.uniform(0, 2 * np.pi)
    return (lon + d * np.cos(a) / (111_320.0 * np.cos(np.radians(lat))),
            lat + d * np.sin(a) / 110_540.0)


def run(api_url: str, plan: Plan, *, speed: float = 1.0, hours: float = 24.0,
        rng: np.random.Generator | None = None, tick_s: float = 1.0,
        stop: Callable[[], bool] | None = None,
        report: Callable[[Stats], None] | None = None,
        start: pd.Timestamp | None = None) -> Stats:
    """Replay ``hours`` of simulated time through the API at ``api_url``; returns the counters.

    Each real tick (``tick_s``) advances the simulated clock by ``tick_s * speed`` seconds and
    sends what falls due: Poisson-many cases at the hour's rate, the fixes of on-duty workers,
    and one step of the loop for a few open cases. ``start`` is the simulated clock's start
    (default: now); it decides the hour's rate and who is on duty.
    """
    import httpx

    rng = rng or np.random.default_rng()
    stats = Stats()
    hdr = {k: {"Authorization": f"Bearer {v}", "Accept-Language": "en"}
           for k, v in plan.tokens.items()}
    sim = start if start is not None else now_local()
    end = sim + pd.Timedelta(hours=hours)
    last_fix = -1e9
    pos = plan.workers[["lon", "lat"]].to_numpy(float).copy()
    pipeline: list[tuple[str, str]] = []  # (case id, department)
    with httpx.Client(base_url=api_url, timeout=30.0) as client:
        while sim < end and not (stop and stop()):
            t0 = time.monotonic()
            dt = tick_s * speed
            rate = plan.hourly[sim.hour] / 3600.0 * dt
            for _ in range(int(rng.poisson(rate))):
                item = str(rng.choice(plan.items, p=plan.item_p))
                base = plan.places[item][rng.integers(len(plan.places[item]))]
                lon, lat = _jitter(rng, float(base[0]), float(base[1]), 100.0)
                r = client.post("/open311/v2/requests.json", headers=hdr["hotline"], json={
                    "service_code": item, "lat": lat, "long": lon, "source": "hotline_12345",
                    "description": f"模拟来电 {taxonomy.ITEMS[item].name_zh}"})
                if r.status_code == 201:
                    stats.cases += 1
                    pipeline.append((r.json()[0]["service_request_id"],
                                     taxonomy.ITEMS[item].department))
                else:
                    stats.errors += 1
            sim_s = (sim - sim.normalize()).total_seconds()
            on_duty = DUTY_HOURS[0] * 3600 <= sim_s < DUTY_HOURS[1] * 3600
            if on_duty and sim_s - last_fix >= FIX_EVERY_S and len(pos):
                last_fix = sim_s
                step = rng.uniform(0, STEP_M, len(pos))
                ang = rng.uniform(0, 2 * np.pi, len(pos))
                cand = pos.copy()
                cand[:, 0] += step * np.cos(ang) / (111_320.0 * np.cos(np.radians(pos[:, 1])))
                cand[:, 1] += step * np.sin(ang) / 110_540.0
                polys = [plan.grids[g] for g in plan.workers["grid_code"]]
                inside = shapely.contains_xy(np.array(polys, dtype=object), cand[:, 0], cand[:, 1])
                pos[inside] = cand[inside]
                when = now_local().isoformat(timespec="milliseconds") + "+08:00"
                fixes = [{"worker_id": w, "time": when, "lat": float(y), "long": float(x),
                          "accuracy_m": 8.0} for w, (x, y) in zip(plan.workers["id"], pos,
                                                                   strict=True)]
                r = client.post("/api/v1/fixes", headers=hdr["hotline"], json={"fixes": fixes})
                if r.status_code == 201:
                    stats.fixes += int(r.json()["accepted"])
                else:
                    stats.errors += 1
            _advance(client, hdr, pipeline, rng, stats, dt)
            if report is not None:
                report(stats)
            sim = sim + pd.Timedelta(seconds=dt)
            time.sleep(max(0.0, tick_s - (time.monotonic() - t0)))
    return stats


#: The steps a simulated case goes through after it is received: (who, action, options).
_STEPS: tuple[tuple[str, str], ...] = (
    ("hotline", "assign"), ("dept", "start_handling"), ("dept", "report_back"),
    ("hotline", "verify_pass"),
)


def _advance(client: Any, hdr: dict[str, dict[str, str]], pipeline: list[tuple[str, str]],
             rng: np.random.Generator, stats: Stats, dt: float) -> None:
    """Move some open cases one step (about one step per case per simulated 20 minutes)."""
    if not pipeline:
        return
    n = int(rng.poisson(len(pipeline) * dt / 1200.0))
    for _ in range(min(n, len(pipeline))):
        i = int(rng.integers(len(pipeline)))
        srid, dept = pipeline[i]
        r = client.get(f"/open311/v2/requests/{srid}.json", headers=hdr["hotline"])
        if r.status_code != 200:
            pipeline.pop(i)
            continue
        stage = _stage_of(r.json()[0])
        step = {"collected": 0, "dispatched": 1, "handling": 2, "verifying": 3}.get(stage)
        if step is None:
            pipeline.pop(i)
            continue
        who, action = _STEPS[step]
        key = "hotline" if who == "hotline" or dept not in hdr else dept
        body: dict[str, Any] = {"action": action, "note": "模拟"}
        if action == "assign":
            body["department"] = dept
        r = client.post(f"/api/v1/cases/{srid}/actions", headers=hdr[key], json=body)
        if r.status_code == 200:
            stats.actions += 1
            if action == "verify_pass":
                pipeline.pop(i)
        else:
            stats.errors += 1
            stats.refused.append(f"{srid} {action} {r.status_code}")
            pipeline.pop(i)


def _stage_of(request: dict[str, Any]) -> str | None:
    return (request.get("extended_attributes") or {}).get("stage")
