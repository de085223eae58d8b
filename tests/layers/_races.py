"""Helpers for the concurrent-transition test: cases at known stages and the race worker.

Lives in an importable module (not the test file) because ``spawn`` workers import the
function they run by its module name.
"""

from __future__ import annotations

import multiprocessing.synchronize as mps
import traceback
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely

#: When the cases were filed, and when both workers act (the same instant for both).
T0 = pd.Timestamp("2025-03-03 09:00")
RACE_TIME = pd.Timestamp("2025-03-10 10:00")
KINDS = ("assign_vs_close", "two_evaluations", "two_extensions")
#: ``kind -> (side A's step, side B's step)``; a step is ``(action, role, options)``.
STEPS: dict[str, tuple[tuple[str, str, dict[str, Any]], tuple[str, str, dict[str, Any]]]] = {
    "assign_vs_close": (("assign", "command_centre", {"department": "urban_management"}),
                        ("close_no_action", "community", {"reason": "duplicate"})),
    "two_evaluations": (("evaluate", "command_centre", {"rating": 5}),
                        ("evaluate", "subdistrict_leader", {"rating": 1})),
    "two_extensions": (("grant_extension", "command_centre", {"hours": 24}),
                       ("grant_extension", "subdistrict_leader", {"hours": 48})),
}
#: The history that brings a case to the stage its race starts from (one extension granted:
#: the policy allows two, so exactly one of the two racing grants may land).
_SETUP: dict[str, list[tuple[str, str, dict[str, Any], str]]] = {
    "assign_vs_close": [],
    "two_evaluations": [("assign", "command_centre", {"department": "urban_management"}, ""),
                        ("start_handling", "department", {}, ""),
                        ("report_back", "department", {}, ""),
                        ("verify_pass", "grid_worker", {}, "")],
    "two_extensions": [("assign", "command_centre", {"department": "urban_management"}, ""),
                       ("start_handling", "department", {}, ""),
                       ("grant_extension", "command_centre", {"hours": 24}, "")],
}


def kind_of(i: int) -> str:
    """The race kind of case number ``i`` (the three kinds in turn)."""
    return KINDS[i % len(KINDS)]


def case_id(i: int) -> str:
    return f"R{i:04d}"


def build_cases(n: int) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """``n`` incidents at the stages their races start from, with their legal event history."""
    from layers.schema import SCHEMAS
    from layers.workflow import apply_transition

    rows, events = [], []
    for i in range(n):
        inc: dict[str, Any] = {"service_request_id": case_id(i), "category_code": "01",
                               "item_code": "0101", "level": 1, "source": "patrol",
                               "grid_code": "320106001001001", "description": f"case {i}"}
        inc, ev = apply_transition(inc, "collect", actor="gw", role="grid_worker", time=T0)
        events.append(ev)
        for k, (action, role, opts, note) in enumerate(_SETUP[kind_of(i)], start=1):
            inc, ev = apply_transition(inc, action, actor="setup", role=role,
                                       time=T0 + pd.Timedelta(hours=k), note=note, **opts)
            events.append(ev)
        rows.append({c: inc.get(c) for c in SCHEMAS["incidents"].columns})
    frame = gpd.GeoDataFrame(pd.DataFrame(rows), geometry=[shapely.Point(118.771, 32.061)] * n,
                             crs=4326)
    return frame, pd.DataFrame(events)


def race_worker(url: str, n: int, side: int, barrier: mps.Barrier, out: Any) -> None:
    """Act on cases ``0..n-1`` in turn, each one started together with the other side.

    Puts ``(side, [(case id, outcome, detail), ...])`` on ``out``; an outcome is ``won``,
    ``conflict`` (the compare-and-set refused it), ``illegal`` (it read the case after the
    other side's commit and the workflow refused it) or ``error`` (anything else: a bug).
    """
    import threading

    from layers.errors import ConcurrentChangeError, StoreError
    from layers.store import open_store
    from layers.workflow import IllegalTransitionError, transition

    results: list[tuple[str, str, str]] = []
    try:
        with open_store(url) as store:
            for i in range(n):
                action, role, opts = STEPS[kind_of(i)][side]
                try:
                    barrier.wait(timeout=120)
                except threading.BrokenBarrierError:
                    results.append((case_id(i), "error", "barrier broken"))
                    break
                try:
                    transition(store, case_id(i), action, actor=f"side-{side}", role=role,
                               time=RACE_TIME, note=f"race by side {side}", **opts)
                    results.append((case_id(i), "won", ""))
                except ConcurrentChangeError as exc:
                    results.append((case_id(i), "conflict", exc.key))
                except IllegalTransitionError as exc:
                    results.append((case_id(i), "illegal", exc.key))
                except StoreError as exc:
                    results.append((case_id(i), "error", str(exc)))
    except Exception:  # noqa: BLE001 - reported to the test, which fails on it
        results.append(("-", "error", traceback.format_exc()))
        barrier.abort()
    out.put((side, results))


def fixes_of(side: int, n: int) -> gpd.GeoDataFrame:
    """``n`` GPS fixes of ``side``'s own worker, with fix ids no other side uses."""
    return gpd.GeoDataFrame({
        "fix_id": [f"S{side}-F{k}" for k in range(n)], "worker_id": f"W{side}",
        "time": pd.date_range(T0, periods=n, freq="min"), "accuracy_m": 5.0},
        geometry=[shapely.Point(118.771 + side * 1e-4, 32.061 + k * 1e-5) for k in range(n)],
        crs=4326)


def first_append_worker(urls: list[str], delay_s: float, side: int, barrier: mps.Barrier,
                        out: Any) -> None:
    """For each store of ``urls`` (each without ``patrol_points``), append this side's fixes
    together with the other side: the first append of a layer creates it. Side 1 starts
    ``delay_s`` later in each store than in the one before (0, 1, 2 ... times ``delay_s``).

    Puts ``(side, [(url, "ok" | "refused" | "error", detail), ...])`` on ``out``; "refused" is
    a :class:`~layers.errors.StoreError` (a clean refusal the caller can retry).
    """
    import threading
    import time

    from layers.errors import StoreError
    from layers.store import open_store

    results: list[tuple[str, str, str]] = []
    try:
        for url in urls:
            with open_store(url) as store:
                store.has_layer("patrol_points")  # connect before the start
                try:
                    barrier.wait(timeout=120)
                except threading.BrokenBarrierError:
                    results.append((url, "error", "barrier broken"))
                    break
                if side == 1:  # the second starts later and later: one of them falls in
                    time.sleep(delay_s * len(results))  # the other's window, whatever it is
                try:
                    store.write({"patrol_points": fixes_of(side, 3 + side)}, mode="append",
                                actor=f"side-{side}")
                    results.append((url, "ok", ""))
                except StoreError as exc:
                    results.append((url, "refused", exc.key))
    except Exception:  # noqa: BLE001 - reported to the test, which fails on it
        results.append(("-", "error", traceback.format_exc()))
        barrier.abort()
    out.put((side, results))


def run_sides(target: Any, args: tuple[Any, ...], *, timeout_s: float = 240.0
              ) -> dict[int, list[tuple[str, str, str]]]:
    """Run ``target(*args, side, barrier, out)`` in two ``spawn`` processes (sides 0 and 1)
    sharing a barrier; their results by side. A worker that does not report within
    ``timeout_s`` raises :class:`TimeoutError`; the processes are gone afterwards."""
    import multiprocessing as mp
    import queue

    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, side, barrier, out)) for side in (0, 1)]
    for p in procs:
        p.start()
    results: dict[int, list[tuple[str, str, str]]] = {}
    try:
        for _ in procs:
            side, res = out.get(timeout=timeout_s)
            results[side] = res
    except queue.Empty:
        raise TimeoutError(f"a worker did not finish within {timeout_s:.0f} s") from None
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    return results
