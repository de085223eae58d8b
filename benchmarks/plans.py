"""Whole-plan versions (layers/plans.py): how long saving, reading a date's boundaries and
attributing cases to the grid of their day take, on the demo district, per engine.

Prints JSON. ``grid_codes_at`` is compared with geopandas ``sjoin`` of the same points against
the same version's grids (the peer way to do one point-in-polygon pass) in the same run.

    python benchmarks/plans.py [--preset small|standard] [--pg postgresql://...]
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
import uuid
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd


def _timed(fn, *args, repeat: int = 3, **kw):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(*args, **kw)
        best = min(best, time.perf_counter() - t0)
    return best, out


def run(url: str, src: Path) -> dict:
    from layers import plans
    from layers.permissions import Account
    from layers.store import open_store

    admin = Account("bench", role="planner")
    with open_store(str(src)) as demo, open_store(url) as s:
        s.write({n: demo.read(n) for n in demo.layer_names() if n != "incident_events"})
        grids = s.read("grids")
        t0 = time.perf_counter()
        plan = plans.make_plan(s, grids)
        make_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        viol = plans.check_plan(s, plan)
        check_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        plans.save_plan(s, admin, plan, effective="2026-01-01", confirm=True)
        save_live_s = time.perf_counter() - t0
        moved = grids.copy()
        moved["geometry"] = moved.geometry.translate(0.0004, 0.0)  # every boundary moves ~40 m
        plan2 = plans.make_plan(s, moved)
        t0 = time.perf_counter()
        plans.save_plan(s, admin, plan2, effective="2026-06-01", confirm=True)
        save2_s = time.perf_counter() - t0
        plans._CACHE.clear()
        t0 = time.perf_counter()
        plans.boundaries_at(s, "2026-03-01")
        at_cold_s = time.perf_counter() - t0
        at_warm_s, _ = _timed(plans.boundaries_at, s, "2026-03-01")
        cases = s.read("incidents", columns=["requested_datetime", "grid_code"])
        at_s, codes = _timed(plans.grid_codes_at, s, cases, cases["requested_datetime"])
        b1 = plans.boundaries_at(s, "2026-03-01").grids
        b2 = plans.boundaries_at(s, "2026-07-01").grids
        early = (cases["requested_datetime"] < pd.Timestamp("2026-06-01")).to_numpy()

        def peer() -> int:
            n = 0
            for mask, g in ((early, b1), (~early, b2)):
                j = gpd.sjoin(cases[mask][["geometry"]], g[["code", "geometry"]], predicate="intersects")
                n += len(j.index.unique())
            return n

        peer_s, matched = _timed(peer)
        changed = int((codes.astype(object) != cases["grid_code"].astype(object)).sum())
    return {
        "engine": "postgis" if url.startswith("postgresql") else "gpkg",
        "grids": len(grids), "buildings": len(plan.buildings), "workers": len(plan.workers),
        "cases": len(cases), "violations_found": len(viol),
        "make_plan_s": round(make_s, 3), "check_plan_s": round(check_s, 3),
        "save_plan_live_s": round(save_live_s, 3), "save_second_plan_s": round(save2_s, 3),
        "boundaries_at_cold_s": round(at_cold_s, 3), "boundaries_at_warm_s": round(at_warm_s, 4),
        "grid_codes_at_s": round(at_s, 3), "sjoin_peer_s": round(peer_s, 3),
        "ratio_vs_sjoin": round(at_s / peer_s, 2) if peer_s else None,
        "cases_matched": int(codes.notna().sum()), "peer_matched": matched,
        "cases_attributed_differently_than_recorded": changed,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--preset", default="small")
    ap.add_argument("--pg", default=None)
    args = ap.parse_args()
    from gridpulse.commands.serve import ensure_demo

    tmp = Path(tempfile.mkdtemp())
    src = tmp / "demo.gpkg"
    ensure_demo(str(src), preset=args.preset, lang="en", progress=lambda *a: None, out=io.StringIO())
    out = [run(str(tmp / "bench.gpkg"), src)]
    if args.pg:
        schema = f"b_{uuid.uuid4().hex[:10]}"
        try:
            out.append(run(f"{args.pg}?schema={schema}", src))
        finally:
            import psycopg

            with psycopg.connect(args.pg, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    print(json.dumps({"preset": args.preset, "runs": out}, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
