"""The likely-duplicate search at intake against a read of every open case in the window.

``layers.intake.find_duplicates`` asks the store only for open cases whose (category, H3 cell)
pair a batch can match. The baseline is the search it replaced: read every open case of the
batch's categories received in the 3-hour window, then compare in numpy (the same answer:
``tests/layers/test_intake_duplicates.py``). For each engine the small demo is loaded and
``--flood`` cases are filed through :func:`layers.intake.create_requests` in steps, as a
sustained intake does; after each step both searches run on the same ``--batches`` batches
of 8. Prints JSON: ms per batch of each and their ratio, and whether the answers agree.

    python benchmarks/duplicates.py [--flood 0,2000,6000,12000] [--pg postgresql://...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def read_every_open_case(store: Any, rows: list[dict], ids: list[str]) -> list:
    """The baseline: every open case of the batch's categories in the window, then numpy."""
    from layers.intake import DUPLICATE_HOURS, DUPLICATE_RADIUS_M, metres_between
    from layers.workflow import OPEN_STAGES

    times = [pd.Timestamp(r["requested_datetime"]) for r in rows]
    near = store.read("incidents", columns=["service_request_id", "category_code",
                                            "requested_datetime"],
                      where={"category_code": sorted({str(r["category_code"]) for r in rows}),
                             "stage": sorted(OPEN_STAGES)},
                      between={"requested_datetime": (
                          min(times) - pd.Timedelta(hours=DUPLICATE_HOURS),
                          max(times) + pd.Timedelta(seconds=1))})
    c_id = near["service_request_id"].astype(str).tolist() + ids
    c_cat = np.concatenate([near["category_code"].astype(str).to_numpy(dtype=object),
                            np.array([str(r["category_code"]) for r in rows], dtype=object)])
    c_ns = np.concatenate([pd.to_datetime(near["requested_datetime"]).to_numpy(
        dtype="datetime64[ns]").astype(np.int64), np.array([t.value for t in times])])
    c_x = np.concatenate([near.geometry.x.to_numpy(), [r["geometry"].x for r in rows]])
    c_y = np.concatenate([near.geometry.y.to_numpy(), [r["geometry"].y for r in rows]])
    n0, span, out = len(near), int(DUPLICATE_HOURS * 3_600e9), []
    for i, r in enumerate(rows):
        ns = c_ns[n0 + i]
        cand = np.flatnonzero((c_cat[:n0 + i] == str(r["category_code"]))
                              & (c_ns[:n0 + i] <= ns) & (c_ns[:n0 + i] >= ns - span))
        hit = None
        if cand.size:
            d = metres_between(r["geometry"].x, r["geometry"].y, c_x[cand], c_y[cand])
            k = int(np.argmin(d))
            if d[k] <= DUPLICATE_RADIUS_M:
                hit = c_id[int(cand[k])]
        out.append(hit)
    return out


def run_engine(name: str, url: str, floods: list[int], batches: int) -> list[dict]:
    from benchmarks.intake import prepare
    from layers import intake
    from layers.apitokens import resolve_api_token
    from layers.store import open_store

    ctx = prepare(url)
    out = []
    with open_store(url) as store:
        acc = resolve_api_token(store, ctx["token"])
        rng = np.random.default_rng(0)
        codes = ["0101", "0201", "0401", "0402", "0501", "0701", "1101", "1301"]
        pts = ctx["points"]

        def payloads(n: int) -> list[dict]:
            return [{"service_code": codes[int(rng.integers(len(codes)))],
                     "long": pts[int(rng.integers(len(pts)))][0],
                     "lat": pts[int(rng.integers(len(pts)))][1]} for _ in range(n)]

        ids = [f"NEW{i}" for i in range(8)]
        filed = 0
        for target in floods:
            while filed < target:
                n = min(500, target - filed)
                intake.create_requests(store, [(acc, p, None, "en") for p in payloads(n)])
                filed += n
            grids, now = intake.grid_index(store), intake.now_local()
            sample = [[intake.parse_request(p, grids=grids, now=now) for p in payloads(8)]
                      for _ in range(batches)]
            timing, answers = {}, {}
            for label, fn in (("baseline", lambda b: read_every_open_case(store, b, ids)),
                              ("gridpulse", lambda b: [None if h is None else h[0] for h in
                                                       intake.find_duplicates(store, b,
                                                                              ids=ids)])):
                fn(sample[0])  # warm
                t0 = time.perf_counter()
                answers[label] = [fn(b) for b in sample]
                timing[label] = (time.perf_counter() - t0) / batches * 1000
            out.append({"engine": name, "cases_filed": filed,
                        "ms_per_batch_baseline": round(timing["baseline"], 1),
                        "ms_per_batch_gridpulse": round(timing["gridpulse"], 1),
                        "ratio": round(timing["baseline"] / timing["gridpulse"], 2),
                        "same_answers": answers["baseline"] == answers["gridpulse"]})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--flood", default="0,2000,6000,12000")
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--pg", default=os.environ.get("GRIDPULSE_TEST_PG", ""))
    args = p.parse_args()
    floods = [int(x) for x in args.flood.split(",")]
    results = run_engine("gpkg", str(Path(tempfile.mkdtemp()) / "dup.gpkg"), floods,
                         args.batches)
    if args.pg:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        try:
            results += run_engine("postgis", f"{args.pg}?schema={schema}", floods, args.batches)
        finally:
            import psycopg

            with psycopg.connect(args.pg, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    print(json.dumps({"benchmark": "duplicates", "cpus": os.cpu_count(),
                      "load_avg_1m": round(os.getloadavg()[0], 1), "results": results},
                     indent=1))


if __name__ == "__main__":
    main()
