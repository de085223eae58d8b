"""Summary tables kept at write time vs recomputing from raw rows, on the same store in one run.

On a store (default: a copy of the full demo district made by ``gridpulse demo --preset full``),
times, each the best of ``--repeat`` runs:

* ``patrol_day``: one day's patrol figures for every worker and grid: the summary read
  (:func:`layers.summaries.patrol_figures`) vs the raw recompute
  (:func:`layers.summaries.raw_patrol_day`: one ``between`` read of the day's fixes, cleaning,
  time in grid, post coverage), and whether both give the same per-worker table;
* ``grid_open``: open and overdue cases per grid: the summary's range sum vs reading
  ``incidents`` (stage, due time, grid) and applying :func:`layers.workflow.overdue`;
* ``incident_cells``: a week of incident counts per res-9 cell and category: summary vs
  ``Store.h3_counts`` over the week;
* ``cli_patrols``: ``gridpulse patrols --date D`` wall time (a new process each), summary vs
  ``--raw``;
* ``write``: on a throw-away copy of the store (``--copy``), the cost summaries add to a
  write: appending 200 fixes of two workers, and one case action (``Store.apply``).

Run: ``.venv/bin/python benchmarks/summaries.py STORE [--day 2026-11-19] [--copy]``; prints JSON.

``benchmarks/summaries.py append [--preset medium] [--pg URL] [--before REV]``: the lazy patrol
re-summary against the eager one it replaced, on both engines in one run. The module as it was
at ``REV`` (default: the last commit before the change) is loaded from git and its
``after_write`` swapped in for the "before" figures. On a fresh store of the demo (GeoPackage;
and a fresh schema of ``--pg``, default ``GRIDPULSE_TEST_PG``): the demo load (a replace of
every layer) and the first read after it, then, each best of ``--repeat``, appending 200 fixes
of two workers (one hour of their day, shifted by a second, new ids) before and after, the
first patrol read of the day after such an append (it settles the dirty marks) and a read
without marks, and the raw recompute of the day for reference (with whether the figures agree).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import types
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from layers import summaries as sm  # noqa: E402
from layers.store import RowUpdate, open_store  # noqa: E402
from layers.workflow import OPEN_STAGES, overdue  # noqa: E402


def best(fn: Any, repeat: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return round(min(times), 4), out


def cli(store: str, day: str, *extra: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "gridpulse", "patrols", "--date", day, "--store", store,
                        "--out", str(Path(d) / "p.csv"), *extra], check=True, env=env,
                       capture_output=True)
        return round(time.perf_counter() - t0, 2)


#: The last commit whose summaries re-summarised patrol days inside the append.
BEFORE_REV = "3b3b6d1"


def _module_at(rev: str) -> types.ModuleType:
    """``layers/summaries.py`` as it was at ``rev`` (loaded from git, registered under a new name)."""
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:layers/summaries.py"], check=True,
                         capture_output=True, text=True).stdout
    mod = types.ModuleType("layers._summaries_before")
    mod.__file__ = f"{rev}:layers/summaries.py"
    sys.modules[mod.__name__] = mod
    exec(compile(src, mod.__file__, "exec"), mod.__dict__)  # noqa: S102 -- our own history
    return mod


def _batch(store: Any, day: pd.Timestamp, shift_s: int, tag: str) -> pd.DataFrame:
    fixes = store.read("patrol_points", columns=["worker_id", "time", "accuracy_m"],
                       between={"time": (day + pd.Timedelta(hours=9), day + pd.Timedelta(hours=10))})
    two = fixes[fixes["worker_id"].isin(fixes["worker_id"].drop_duplicates().head(2))].head(200).copy()
    two["time"] = two["time"] + pd.Timedelta(seconds=shift_s)
    two["fix_id"] = [f"B{tag}{shift_s}_{i:05d}" for i in range(len(two))]
    return two


def _append_engine(url: str, layers: dict[str, Any] | None, old: types.ModuleType,
                   repeat: int) -> dict[str, Any]:
    from data.demo import DEMO_ACTOR, DEMO_NOTE

    out: dict[str, Any] = {}
    new_after_write = sm.after_write
    with open_store(url) as store:
        if layers is not None:  # a first load, so that both timed loads are resets of the demo
            store.write(layers, mode="replace", actor=DEMO_ACTOR, note=f"{DEMO_NOTE} bench")
        days = sm.patrol_days(store)
        for label, hook in (("before", old.after_write), ("after", new_after_write)):
            if layers is None:
                break
            sm.after_write = hook
            try:
                t0 = time.perf_counter()
                store.write(layers, mode="replace", actor=DEMO_ACTOR, note=f"{DEMO_NOTE} bench",
                            reset=True)
                out[f"demo_load_{label}_s"] = round(time.perf_counter() - t0, 2)
            finally:
                sm.after_write = new_after_write
            t0 = time.perf_counter()
            days = sm.patrol_days(store)  # after: the rebuild the load left to the first read
            out[f"first_read_after_load_{label}_s"] = round(time.perf_counter() - t0, 2)
        day = days[len(days) // 2]
        out["day"] = str(day.date())
        grids = store.read("grids", columns=["code"])
        workers = store.read("workers", columns=["id", "grid_code", "post"])
        before, after, first, second = [], [], [], []
        for r in range(repeat):
            batch = _batch(store, day, 1 + 2 * r, "o")
            sm.after_write = old.after_write
            try:
                t0 = time.perf_counter()
                store.write({"patrol_points": batch}, mode="append")
                before.append(time.perf_counter() - t0)
            finally:
                sm.after_write = new_after_write
            batch = _batch(store, day, 2 + 2 * r, "n")
            t0 = time.perf_counter()
            store.write({"patrol_points": batch}, mode="append")
            after.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            fig = sm.patrol_figures(store, [day], grids=grids, workers=workers)
            first.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            sm.patrol_figures(store, [day], grids=grids, workers=workers)
            second.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        raw_w, _ = sm.raw_patrol_day(store, day, grids=grids, workers=workers)
        raw_s = time.perf_counter() - t0
        got = fig.per_worker.set_index("worker_id").loc[raw_w["worker_id"]]
        same = bool(np.allclose(got["hours_in_grid"].to_numpy(float), raw_w["hours_in_grid"].to_numpy(float),
                                equal_nan=True)
                    and np.array_equal(got["n_fixes"].to_numpy(), raw_w["n_fixes"].to_numpy()))
        out.update({
            "fixes_per_append": len(batch),
            "append_200_before_s": round(min(before), 3), "append_200_after_s": round(min(after), 3),
            "append_ratio": round(min(before) / min(after), 1),
            "fixes_per_s_before": round(len(batch) / min(before)),
            "fixes_per_s_after": round(len(batch) / min(after)),
            "first_read_after_append_s": round(min(first), 3),
            "read_without_marks_s": round(min(second), 3), "raw_recompute_s": round(raw_s, 3),
            "same_numbers_as_raw": same, "all_s": {"before": [round(x, 3) for x in before],
                                                   "after": [round(x, 3) for x in after],
                                                   "first_read": [round(x, 3) for x in first]}})
    return out


def append_main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="summaries.py append")
    ap.add_argument("--preset", default="medium")
    ap.add_argument("--pg", default=os.environ.get("GRIDPULSE_TEST_PG", ""))
    ap.add_argument("--before", default=BEFORE_REV)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--store", default="", help="time appends on a COPY of this GeoPackage instead")
    args = ap.parse_args(argv)
    from data.demo import generate

    old = _module_at(args.before)
    if args.store:
        with tempfile.TemporaryDirectory() as d:
            copy = Path(d) / "copy.gpkg"
            shutil.copy(args.store, copy)
            out_s = {"store": args.store, "load_avg": os.getloadavg()[0],
                     "gpkg": _append_engine(str(copy), None, old, args.repeat)}
        print(json.dumps(out_s, indent=1, ensure_ascii=False))
        return
    t0 = time.perf_counter()
    layers = generate(args.preset)
    out: dict[str, Any] = {"preset": args.preset, "before_rev": args.before,
                           "patrol_points": len(layers["patrol_points"]),
                           "generate_s": round(time.perf_counter() - t0, 1),
                           "load_avg": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as d:
        out["gpkg"] = _append_engine(str(Path(d) / "bench.gpkg"), layers, old, args.repeat)
    if args.pg:
        import psycopg

        schema = f"bench_{uuid.uuid4().hex[:10]}"
        try:
            out["postgis"] = _append_engine(f"{args.pg}?schema={schema}", layers, old, args.repeat)
        finally:
            with psycopg.connect(args.pg, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    out["load_avg_end"] = os.getloadavg()[0]
    print(json.dumps(out, indent=1, ensure_ascii=False))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "append":
        append_main(sys.argv[2:])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("store")
    ap.add_argument("--day", default="2026-11-19")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--copy", action="store_true", help="also time writes, on a copy of the store")
    args = ap.parse_args()
    out: dict[str, Any] = {"store": args.store, "day": args.day, "load_avg": os.getloadavg()[0]}
    day = pd.Timestamp(args.day)
    with open_store(args.store) as store:
        t0 = time.perf_counter()
        sm.patrol_days(store)  # builds the summaries once if the store predates them
        sm.grid_open(store, now=day)
        out["first_read_or_rebuild_s"] = round(time.perf_counter() - t0, 2)
        grids = store.read("grids", columns=["code"])
        workers = store.read("workers", columns=["id", "grid_code", "post"])
        s_t, fig = best(lambda: sm.patrol_figures(store, [day], grids=grids, workers=workers), args.repeat)
        r_t, (raw_w, _raw_g) = best(lambda: sm.raw_patrol_day(store, day, grids=grids, workers=workers), 1)
        got = fig.per_worker.set_index("worker_id").loc[raw_w["worker_id"]]
        same = bool(np.array_equal(got["hours_in_grid"].to_numpy(), raw_w["hours_in_grid"].to_numpy(),
                                   equal_nan=True)
                    and np.array_equal(got["n_fixes"].to_numpy(), raw_w["n_fixes"].to_numpy()))
        out["patrol_day"] = {"summary_s": s_t, "raw_s": r_t, "ratio": round(r_t / s_t, 1),
                             "workers_with_fixes": len(raw_w), "same_numbers": same}

        now = day + pd.Timedelta(hours=16)
        s_t, counts = best(lambda: sm.grid_open(store, now=now), args.repeat)

        def raw_open() -> pd.DataFrame:
            inc = store.read("incidents", columns=["stage", "expected_datetime", "closed_datetime", "grid_code"])
            o = inc[inc["stage"].isin(sorted(OPEN_STAGES))]
            late = overdue(o, now=now)
            return pd.DataFrame({"open": o.groupby("grid_code").size(),
                                 "overdue": o[late.to_numpy()].groupby("grid_code").size()}).fillna(0)

        r_t, ref = best(raw_open, 1)
        ref = ref.astype("int64")
        c = counts.set_index("grid_code")[["open", "overdue"]]
        c = c[c.index != ""]
        out["grid_open"] = {"summary_s": s_t, "raw_s": r_t, "ratio": round(r_t / s_t, 1),
                            "same_numbers": bool(c.sort_index().equals(ref.sort_index().reindex(c.sort_index().index)))}

        week = (day - pd.Timedelta(days=day.weekday())).strftime("%Y-%m-%d")
        s_t, cells = best(lambda: sm.incident_cells(store, weeks=[week]), args.repeat)
        lo = pd.Timestamp(week)
        r_t, h3c = best(lambda: store.h3_counts("incidents", res=sm.CELL_RES, by=["category_code"],
                                                 between={"requested_datetime": (lo, lo + pd.Timedelta(days=7))}),
                        args.repeat)
        out["incident_cells_week"] = {"summary_s": s_t, "raw_s": r_t, "ratio": round(r_t / s_t, 1),
                                      "same_total": int(cells["n"].sum()) == int(h3c["count"].sum())}
    out["cli_patrols"] = {"summary_s": cli(args.store, args.day), "raw_s": cli(args.store, args.day, "--raw")}
    out["cli_patrols"]["ratio"] = round(out["cli_patrols"]["raw_s"] / out["cli_patrols"]["summary_s"], 1)

    if args.copy:
        with tempfile.TemporaryDirectory(dir=Path(args.store).parent) as d:
            copy = Path(d) / "copy.gpkg"
            shutil.copy(args.store, copy)
            with open_store(str(copy)) as store:
                fixes = store.read("patrol_points", columns=["worker_id", "time", "accuracy_m"],
                                   between={"time": (day + pd.Timedelta(hours=9), day + pd.Timedelta(hours=10))})
                two = fixes[fixes["worker_id"].isin(fixes["worker_id"].drop_duplicates().head(2))].head(200).copy()
                two["time"] = two["time"] + pd.Timedelta(seconds=1)
                two["fix_id"] = [f"BENCH{i:06d}" for i in range(len(two))]
                t0 = time.perf_counter()
                store.write({"patrol_points": two}, mode="append")
                out_w = {"append_200_fixes_s": round(time.perf_counter() - t0, 3)}
                case = store.read("incidents", columns=["service_request_id", "stage"],
                                  where={"stage": "collected"}, limit=1)
                if len(case):
                    t0 = time.perf_counter()
                    store.apply([RowUpdate("incidents", [case["service_request_id"].iloc[0]],
                                           {"stage": "dispatched"}, expect={"stage": "collected"})])
                    out_w["case_action_s"] = round(time.perf_counter() - t0, 3)
                out["write"] = out_w
    print(json.dumps(out, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
