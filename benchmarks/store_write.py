"""Store write/read figures: 300k incidents + 1M patrol GPS fixes into the GeoPackage store.

Compares :meth:`GeoPackageStore.write` (atomic across both layers, H3 columns computed,
attribute indexes, audit row) with the peer: ``geopandas.GeoDataFrame.to_file`` through
pyogrio with Arrow, one layer per call (not atomic), on the same frames in the same run.
Reads compare ``Store.read`` with ``geopandas.read_file(engine="pyogrio", use_arrow=True)``.
With ``GRIDPULSE_TEST_PG`` set, the PostGIS engine is measured too.

Run: ``.venv/bin/python benchmarks/store_write.py [n_incidents] [n_fixes]``; prints JSON.
``benchmarks/store_write.py demo [preset]`` writes the demo district's layers instead (``full``:
300k incidents, 1.9M events, 2.7M GPS fixes, ...): into an empty GeoPackage (a whole new
file), against pyogrio writing the same prepared layers one call each, then a ``reset`` refill
of that demo store; with ``GRIDPULSE_TEST_PG`` set the same on PostGIS. ``load_avg`` is the
1-minute load average at the start (the figures are only comparable at similar load).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from layers import _store_common as sc  # noqa: E402
from layers.store import Store, open_store  # noqa: E402


def frames(n_inc: int, n_fix: int, rng: np.random.Generator) -> dict[str, gpd.GeoDataFrame]:
    def pts(n: int) -> np.ndarray:
        return shapely.points(118.74 + rng.random(n) * 0.08, 32.03 + rng.random(n) * 0.07)

    inc = gpd.GeoDataFrame({
        "service_request_id": [f"SR{i:08d}" for i in range(n_inc)],
        "status": "open",
        "description": "占道经营",
        "requested_datetime": pd.Timestamp("2024-01-01")
        + pd.to_timedelta(rng.integers(0, 365 * 86400, n_inc), unit="s"),
        "category_code": "01", "item_code": "0101",
        "level": rng.integers(1, 4, n_inc), "source": "hotline_12345",
        "stage": rng.choice(["collected", "handling", "closed"], n_inc),
        "grid_code": "320106001001001", "reporter_name": "张三", "reporter_phone": "13812345678",
    }, geometry=pts(n_inc), crs=4326)
    fix = gpd.GeoDataFrame({
        "fix_id": [f"F{i:09d}" for i in range(n_fix)],
        "worker_id": rng.choice([f"W{i:04d}" for i in range(900)], n_fix),
        "time": pd.Timestamp("2024-05-01") + pd.to_timedelta(np.arange(n_fix) * 2, unit="s"),
        "accuracy_m": rng.random(n_fix) * 15,
    }, geometry=pts(n_fix), crs=4326)
    return {"incidents": inc, "patrol_points": fix}


def timed(f):
    t = time.perf_counter()
    out = f()
    return time.perf_counter() - t, out


@contextlib.contextmanager
def postgis_store(pg: str) -> Iterator[Store]:
    """A PostGIS store in a fresh schema, dropped afterwards."""
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    store = open_store(f"{pg}?schema={schema}")
    try:
        yield store
    finally:
        store.close()
        with psycopg.connect(pg, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def demo_main(preset: str) -> None:
    from data.demo import generate

    result: dict[str, object] = {"preset": preset, "load_avg": os.getloadavg()[0]}
    result["generate_s"], data = timed(lambda: generate(preset, seed=0))
    result["rows"] = sum(len(df) for df in data.values())
    result["prepare_s"], prepared = timed(lambda: {k: sc.prepare_layer(v, k) for k, v in data.items()})
    with tempfile.TemporaryDirectory() as d:
        store = open_store(str(Path(d) / "store.gpkg"))
        result["gpkg_write_empty_s"], _ = timed(lambda: store.write(data, actor="bench"))
        result["gpkg_reset_refill_s"], _ = timed(lambda: store.write(data, reset=True))
        peer = Path(d) / "peer.gpkg"

        def peer_write() -> None:
            for name, df in prepared.items():
                pyogrio.write_dataframe(df, peer, layer=name, driver="GPKG", use_arrow=True)

        result["peer_pyogrio_s"], _ = timed(peer_write)
        result["write_ratio"] = result["gpkg_write_empty_s"] / result["peer_pyogrio_s"]
    pg = os.environ.get("GRIDPULSE_TEST_PG")
    if pg:
        with postgis_store(pg) as store:
            result["postgis_write_empty_s"], _ = timed(lambda: store.write(data, actor="bench"))
            result["postgis_reset_refill_s"], _ = timed(lambda: store.write(data, reset=True))
    result["load_avg_end"] = os.getloadavg()[0]
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()},
                     indent=2))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "demo":
        demo_main(sys.argv[2] if len(sys.argv) > 2 else "full")
        return
    n_inc = int(sys.argv[1]) if len(sys.argv) > 1 else 300_000
    n_fix = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    data = frames(n_inc, n_fix, np.random.default_rng(42))
    result: dict[str, object] = {"incidents": n_inc, "patrol_points": n_fix}
    with tempfile.TemporaryDirectory() as d:
        store = open_store(str(Path(d) / "store.gpkg"))
        result["gpkg_write_s"], _ = timed(lambda: store.write(data, actor="bench"))
        # the peer writes the same columns (H3 included), one layer per call, no atomicity
        prepared = {k: sc.prepare_layer(v, k) for k, v in data.items()}
        peer = Path(d) / "peer.gpkg"

        def peer_write() -> None:
            for name, df in prepared.items():
                df.to_file(peer, layer=name, driver="GPKG", engine="pyogrio", use_arrow=True)

        result["peer_to_file_s"], _ = timed(peer_write)
        result["write_ratio"] = result["gpkg_write_s"] / result["peer_to_file_s"]
        result["gpkg_file_mb"] = (Path(d) / "store.gpkg").stat().st_size / 2**20
        result["gpkg_read_patrol_s"], _ = timed(lambda: store.read("patrol_points"))
        result["peer_read_patrol_s"], _ = timed(
            lambda: gpd.read_file(peer, layer="patrol_points", engine="pyogrio", use_arrow=True))
        result["gpkg_read_incidents_one_month_s"], got = timed(lambda: store.read(
            "incidents", between={"requested_datetime": ("2024-03-01", "2024-04-01")}))
        result["incidents_one_month_rows"] = len(got)
        result["gpkg_h3_counts_patrol_res9_s"], _ = timed(
            lambda: store.h3_counts("patrol_points", res=9))
        result["gpkg_latest_50_incidents_s"], _ = timed(lambda: store.read(
            "incidents", order_by="requested_datetime", descending=True, limit=50))
        ev = pd.DataFrame({"event_id": ["e1"], "service_request_id": ["SR00000001"],
                           "action": ["assign"], "from_stage": [None], "to_stage": ["dispatched"],
                           "actor": ["bench"], "time": [pd.Timestamp("2024-06-01")], "note": [""]})
        result["gpkg_transition_s"], _ = timed(lambda: store.update_rows(
            "incidents", ["SR00000001"], {"stage": "dispatched"}, events=ev, actor="bench"))
    pg = os.environ.get("GRIDPULSE_TEST_PG")
    if pg:
        with postgis_store(pg) as store:
            result["postgis_write_s"], _ = timed(lambda: store.write(data, actor="bench"))
            result["postgis_read_patrol_s"], _ = timed(lambda: store.read("patrol_points"))
            result["postgis_h3_counts_patrol_res9_s"], _ = timed(
                lambda: store.h3_counts("patrol_points", res=9))
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()},
                     indent=2))


if __name__ == "__main__":
    main()
