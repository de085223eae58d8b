"""Planner run time with and without compound walls on the small demo (issue 13).

Prints JSON: seconds of ``layers.planner.repartition`` (grid level, as the CLI and the planner
page call it) on one community and on the whole demo, without and with ``compounds=``, in the
same process; plus the tessellation share and whether every compound with homes is in one grid.

    PYTHONPATH=. python benchmarks/walls.py [--size small] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import shapely


def _run(layers: dict, containers, compounds) -> tuple[float, object]:
    from layers.planner import repartition

    t0 = time.perf_counter()
    res = repartition(layers["buildings"], containers, roads=layers["roads"], level="grid",
                      group_col="compound_id", current_col="grid_code", report_outside=False,
                      compounds=compounds, rng=np.random.default_rng(0))
    return time.perf_counter() - t0, res


def _walls_whole(res, layers: dict, containers) -> bool:
    metric = res.regions.estimate_utm_crs()
    grids = res.regions.to_crs(metric).geometry.to_numpy()
    comm = shapely.union_all(containers.to_crs(metric).geometry.to_numpy())
    b = layers["buildings"]
    homes = set(b.loc[b["households"] > 0, "compound_id"].dropna())
    cw = layers["compounds"]
    cw = cw[cw["id"].isin(homes)].to_crs(metric).geometry.to_numpy()
    for wall in cw:
        part = wall.intersection(comm)
        if part.area < 1.0:
            continue
        if shapely.area(shapely.intersection(grids, part)).max() < 0.999 * part.area:
            return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="small")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    from data import demo

    layers = demo.generate(args.size, seed=0)
    comms = layers["communities"]
    out: dict = {"size": args.size, "repeat": args.repeat, "communities": len(comms),
                 "buildings": len(layers["buildings"]), "compounds": len(layers["compounds"])}
    for scope, cont in (("one_community", comms.iloc[[0]]), ("whole_demo", comms)):
        for mode, cw in (("without_walls", None), ("with_walls", layers["compounds"])):
            times, cells = [], []
            for _ in range(args.repeat):
                s, res = _run(layers, cont, cw)
                times.append(s)
                cells.append(res.timings_s.get("cells", float("nan")))
            hh = float(res.regions["households"].sum())
            out[f"{scope}.{mode}"] = {
                "seconds_median": round(float(np.median(times)), 3),
                "seconds_min": round(min(times), 3),
                "cells_s_median": round(float(np.median(cells)), 3),
                "grids": len(res.regions), "households": hh,
                "walls_whole": _walls_whole(res, layers, cont) if cw is not None else None,
            }
    print(json.dumps(out, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
