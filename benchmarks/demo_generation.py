"""Demo district generation: time per stage and per preset, row counts, and the GeoPackage write.

    .venv/bin/python benchmarks/demo_generation.py [--presets small,medium,full] [--seed 0] [--no-peer]

Prints JSON: for each preset the generation time by stage, the time of ``store.write`` into
a new GeoPackage (the ``gridpulse demo`` path), the row count of every layer, and, as the
peer on the same data, plain ``pyogrio.write_dataframe`` of the same layers into one
GeoPackage (no H3 columns, no transaction, no audit) with the ratio of the two. Wall and CPU
seconds are both given: on a shared machine the wall time says more about the neighbours.
The issue's budget: ``full`` generated and written in at most 120 s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyogrio  # noqa: E402

from data import demo  # noqa: E402
from layers.store import open_store  # noqa: E402


def run(preset: str, seed: int, *, peer: bool, workdir: Path) -> dict:
    stages: dict[str, float] = {}
    t0 = time.perf_counter()
    last = [t0]

    def progress(stage: str, fraction: float) -> None:
        now = time.perf_counter()
        if fraction >= 1.0:
            stages[stage] = round(stages.get(stage, 0.0) + now - last[0], 2)
            last[0] = now

    c0 = time.process_time()
    layers = demo.generate(preset, seed=seed, progress=progress)
    gen_s = time.perf_counter() - t0
    gen_cpu = time.process_time() - c0
    print(f"{preset}: generated in {gen_s:.1f} s", file=sys.stderr, flush=True)
    path = workdir / f"demo-{preset}.gpkg"
    t1 = time.perf_counter()
    c1 = time.process_time()
    with open_store(str(path)) as store:
        store.write(layers, mode="replace", actor=demo.DEMO_ACTOR, note=f"{demo.DEMO_NOTE} benchmark")
    write_s = time.perf_counter() - t1
    write_cpu = time.process_time() - c1
    print(f"{preset}: written in {write_s:.1f} s", file=sys.stderr, flush=True)
    out = {
        "preset": preset,
        "seed": seed,
        "generate_s": round(gen_s, 2),
        "stages_s": stages,
        "store_write_gpkg_s": round(write_s, 2),
        "total_s": round(gen_s + write_s, 2),
        "generate_cpu_s": round(gen_cpu, 2),
        "store_write_cpu_s": round(write_cpu, 2),
        "within_120_s": gen_s + write_s <= 120.0,
        "gpkg_mb": round(path.stat().st_size / 1e6, 1),
        "rows": {name: len(df) for name, df in layers.items()},
    }
    if peer:
        ppath = workdir / f"peer-{preset}.gpkg"
        t2 = time.perf_counter()
        for name, df in layers.items():
            pyogrio.write_dataframe(df, ppath, layer=name, driver="GPKG", use_arrow=True)
        peer_s = time.perf_counter() - t2
        out["peer_pyogrio_write_s"] = round(peer_s, 2)
        out["store_vs_pyogrio_ratio"] = round(write_s / peer_s, 2) if peer_s else None
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="small,medium,full")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-peer", action="store_true")
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.presets.split(","):
            results.append(run(preset.strip(), args.seed, peer=not args.no_peer, workdir=Path(tmp)))
            for f in Path(tmp).glob("*.gpkg"):
                f.unlink()
    # wall times depend on what else runs on the machine: the load average says how busy it was
    print(json.dumps({"benchmark": "demo_generation", "cpus": os.cpu_count(),
                      "load_avg_1m": round(os.getloadavg()[0], 2), "results": results},
                     ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
