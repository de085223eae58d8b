"""Benchmark: Gi* with FDR and emerging hot spots on 1,000,000 incidents, against esda.

    .venv/bin/python benchmarks/hotspots.py [--n 1000000] [--repeat 5] [--res 9 10] [--seed 0]

Synthetic incidents over a Gulou-sized district (about 52 km² around 118.77 E, 32.06 N): a
background of scattered cases plus clusters, 14 categories, one year (52 weeks), with some
clusters that appear, grow or fade. H3 ids are computed once, as the store does at ingest,
and that step is timed on its own (it is not part of the analysis).

For each resolution and the filter ``category_code == "01"``:

* ``gridpulse_gi_fdr_s``: filter + count per cell on the study area (every cell with an incident)
  + k = 1 weights from ``h3.grid_disk`` + Gi* + Benjamini–Hochberg classes (budget 0.5 s);
* ``gridpulse_gi_only_s``: Gi* on the same counts and weights (the part esda computes);
* ``esda_g_local_s``: ``esda.G_Local(y, w, transform="B", star=True, permutations=0)`` on the same
  cells, with a FRESH ``libpysal.weights.W`` built for every call (``G_Local`` changes the W it is
  given) — ``esda_w_build_s`` is that build;
* ``max_abs_z_diff``: agreement of the analytical z-scores (must be < 1e-6);
* ``gridpulse_ehsa_s``: the space-time cube (52 weekly steps) + space-time Gi* + FDR + Mann–Kendall
  + the 17 classes (budget 5 s).

Times are medians of ``--repeat`` runs in this process. ``numba`` is reported: with numba installed
esda pays about 19 s of JIT compilation once per process before the first ``G_Local``; that
first call is timed apart (``esda_first_call_s``) and left out of the medians.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from geo.emerging import PATTERNS, emerging_hotspots, space_time_cube  # noqa: E402
from geo.hexes import lonlat_to_cells  # noqa: E402
from geo.hotspots import count_cells, gi_star, hex_weights, hotspots  # noqa: E402

LON0, LON1, LAT0, LAT1 = 118.735, 118.810, 32.030, 32.092  # ~7.1 km x 6.9 km
START = np.datetime64("2025-01-06T00:00")  # a Monday
WEEKS = 52


def synthetic(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``lon``, ``lat``, ``time`` (datetime64[s]) and ``category`` (0..13) of ``n`` incidents."""
    seconds = WEEKS * 7 * 86400
    n_bg = int(n * 0.55)
    lon = np.empty(n)
    lat = np.empty(n)
    t = np.empty(n, dtype=np.int64)
    lon[:n_bg] = rng.uniform(LON0, LON1, n_bg)
    lat[:n_bg] = rng.uniform(LAT0, LAT1, n_bg)
    t[:n_bg] = rng.integers(0, seconds, n_bg)
    # 40 clusters: steady, emerging (second half only), growing (density rises), fading
    k = 40
    centres = np.column_stack([rng.uniform(LON0 + 0.005, LON1 - 0.005, k), rng.uniform(LAT0 + 0.005, LAT1 - 0.005, k)])
    kind = rng.integers(0, 4, k)
    which = rng.integers(0, k, n - n_bg)
    m = n - n_bg
    lon[n_bg:] = centres[which, 0] + rng.normal(0, 0.0015, m)
    lat[n_bg:] = centres[which, 1] + rng.normal(0, 0.0015, m)
    u = rng.random(m)
    frac = np.select([kind[which] == 1, kind[which] == 2, kind[which] == 3],
                     [0.5 + 0.5 * u, np.sqrt(u), 1 - np.sqrt(u)], u)
    t[n_bg:] = (frac * (seconds - 1)).astype(np.int64)
    weights = np.array([.16, .04, .10, .09, .12, .04, .08, .05, .04, .07, .06, .04, .05, .06])
    cat = rng.choice(14, size=n, p=weights / weights.sum())
    cat[n_bg:][which % 5 == 0] = 0  # some clusters are rubbish (category 01) clusters
    return {"lon": lon, "lat": lat, "time": START.astype("datetime64[s]") + t, "category": cat}


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def neighbours_dict(w: Any) -> dict[int, list[int]]:
    return {i: [int(j) for j in w.indices[w.indptr[i]:w.indptr[i + 1]] if j != i] for i in range(w.shape[0])}


def run(n: int, repeat: int, resolutions: list[int], seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    data = synthetic(n, rng)
    t0 = time.perf_counter()
    import esda  # noqa: F401 - import cost reported, not timed in the comparison
    import libpysal

    import_s = time.perf_counter() - t0
    report: dict[str, Any] = {
        "n_incidents": n, "repeat": repeat, "python": platform.python_version(),
        "machine": platform.machine(), "cpu_count": __import__("os").cpu_count(),
        "numba": importlib.util.find_spec("numba") is not None,
        "esda_import_s": round(import_s, 3), "filter": "category_code == '01'", "results": [],
    }
    mask = data["category"] == 0
    for res in resolutions:
        t0 = time.perf_counter()
        cells = lonlat_to_cells(data["lon"], data["lat"], res=res)
        ingest_s = time.perf_counter() - t0
        domain_s, domain = timed(lambda c=cells: np.unique(c[c != 0]), repeat)

        def ours(c=cells, d=domain) -> Any:
            counts = count_cells(c[mask], domain=d)
            return hotspots(counts, weights=hex_weights(d, k=1), fdr=True)

        ours_s, table = timed(ours, repeat)
        counts = count_cells(cells[mask], domain=domain)
        w = hex_weights(domain, k=1)
        cached_s, _ = timed(lambda counts=counts, w=w: hotspots(counts, weights=w, fdr=True), repeat)
        y = counts.to_numpy(dtype=np.float64)
        gi_only_s, gi = timed(lambda y=y, w=w: gi_star(y, w), repeat)

        nb = neighbours_dict(w)
        build_s, _ = timed(lambda nb=nb: libpysal.weights.W(nb, silence_warnings=True), repeat)
        t0 = time.perf_counter()
        esda.G_Local(y, libpysal.weights.W(nb, silence_warnings=True), transform="B", star=True, permutations=0)
        first_s = time.perf_counter() - t0
        times, ref = [], None
        for _ in range(repeat):
            wobj = libpysal.weights.W(nb, silence_warnings=True)  # fresh: G_Local alters the W it gets
            t0 = time.perf_counter()
            ref = esda.G_Local(y, wobj, transform="B", star=True, permutations=0)
            times.append(time.perf_counter() - t0)
        esda_s = statistics.median(times)
        ok = np.isfinite(gi.z) & np.isfinite(ref.Zs)
        zdiff = float(np.abs(gi.z[ok] - ref.Zs[ok]).max())

        def ehsa(c=cells, d=domain, w=w) -> Any:
            cube = space_time_cube(c, data["time"], step="7D", end=START + np.timedelta64(WEEKS * 7, "D"),
                                   n_steps=WEEKS, domain=d)
            return emerging_hotspots(cube, weights=w)

        def ehsa_with_weights(c=cells, d=domain) -> Any:
            cube = space_time_cube(c, data["time"], step="7D", end=START + np.timedelta64(WEEKS * 7, "D"),
                                   n_steps=WEEKS, domain=d)
            return emerging_hotspots(cube, k=1)

        ehsa_s, ehsa_table = timed(ehsa_with_weights, repeat)
        ehsa_cached_s, _ = timed(ehsa, repeat)
        report["results"].append({
            "res": res,
            "cells": int(domain.size),
            "incidents_in_filter": int(mask.sum()),
            "ingest_h3_s": round(ingest_s, 3),
            "study_area_unique_s": round(domain_s, 4),
            "gridpulse_gi_fdr_s": round(ours_s, 4),
            "gridpulse_gi_fdr_cached_weights_s": round(cached_s, 5),
            "gridpulse_gi_only_s": round(gi_only_s, 5),
            "esda_g_local_s": round(esda_s, 5),
            "esda_w_build_s": round(build_s, 5),
            "esda_first_call_s": round(first_s, 4),
            "ratio_esda_over_gridpulse_gi_only": round(esda_s / gi_only_s, 1),
            "ratio_esda_with_w_over_gridpulse_gi_fdr": round((esda_s + build_s) / ours_s, 2),
            "max_abs_z_diff": zdiff,
            "z_agree_1e-6": zdiff < 1e-6,
            "gi_bin_counts": {int(k): int(v) for k, v in table["gi_bin"].value_counts().sort_index().items()},
            "gridpulse_ehsa_52w_s": round(ehsa_s, 3),
            "gridpulse_ehsa_52w_cached_weights_s": round(ehsa_cached_s, 3),
            "ehsa_patterns": {PATTERNS[int(k)]: int(v)
                              for k, v in ehsa_table["category"].value_counts().sort_index().items()},
            "budget_gi_fdr_ok": ours_s <= 0.5,
            "budget_ehsa_ok": ehsa_s <= 5.0,
        })
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--res", type=int, nargs="+", default=[9, 10])
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    print(json.dumps(run(a.n, a.repeat, a.res, a.seed), indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
