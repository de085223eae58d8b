"""A record table created by this store object and dropped by another process is recreated.

The dashboard keeps one store object for hours; ``gridpulse demo`` (a new GeoPackage renamed over
the old one) or an administrator recreating the PostGIS schema drops the record tables under it.
The store object believed them created (its DDL runs once per object); a later write must
recreate them instead of failing with "no such table".
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from layers import _records
from layers.errors import StoreError
from layers.store import Store

ROOT = Path(__file__).resolve().parents[2]
ROW = {"key": "k1", "username": "u", "fingerprint": "f", "state": "done", "status": 200,
       "body": "{}", "created": pd.Timestamp("2026-01-01 08:00")}


def _reset(store: Store, *, process: bool = False) -> None:
    """What a second store object does (in another process with ``process=True``): a fresh,
    empty store in place of this one."""
    path = getattr(store, "path", None)
    if path is not None:  # gridpulse demo: a new file renamed over the store
        code = f"""
            import os
            from layers.store import open_store
            fresh = {str(path.with_name('.fresh.gpkg'))!r}
            with open_store(fresh):
                pass
            os.replace(fresh, {str(path)!r})
        """
    else:  # PostGIS: the schema dropped and the store opened anew
        base, _, query = store.url.partition("?")
        schema = query.split("schema=", 1)[1]
        code = f"""
            import psycopg
            from layers.store import open_store
            with psycopg.connect({base!r}, autocommit=True) as conn:
                conn.execute('DROP SCHEMA "{schema}" CASCADE')
            with open_store({store.url!r}):
                pass
        """
    if not process:
        exec(textwrap.dedent(code), {})
        assert store.records(_records.IDEMPOTENCY.name) == []
        return
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert store.records(_records.IDEMPOTENCY.name) == []  # the other process really dropped it


def test_every_record_write_recovers_after_another_process_dropped_the_table(store: Store) -> None:
    table = _records.IDEMPOTENCY.name
    store.put_record(table, ROW)
    assert [r["key"] for r in store.records(table)] == ["k1"]

    _reset(store, process=True)
    store.put_record(table, {**ROW, "key": "k2"},
                     audit={"action": "test_put", "layer": table, "actor": "tester"})
    assert [r["key"] for r in store.records(table)] == ["k2"]
    assert "test_put" in set(store.audit_log()["action"])

    _reset(store)
    assert store.insert_record(table, {**ROW, "key": "k3"}) is True
    assert store.insert_record(table, {**ROW, "key": "k3"}) is False  # the key is still unique

    _reset(store)
    assert store.update_records(table, {"key": "k3"}, {"state": "x"}) == 0
    store.put_record(table, {**ROW, "key": "k4"})
    assert store.update_records(table, {"key": "k4"}, {"state": "x"}) == 1
    assert store.records(table, where={"key": "k4"})[0]["state"] == "x"

    _reset(store)
    assert store.delete_records(table, {"key": "k4"}) == 0

    _reset(store)
    grids = gpd.GeoDataFrame(
        {"code": ["320106001001001"], "name": ["宁海路第一网格"], "kind": ["comprehensive"],
         "community_code": ["320106001001"], "households": [420], "population": [1130]},
        geometry=[shapely.box(118.770, 32.060, 118.775, 32.065)], crs="EPSG:4326")
    store.write({"grids": grids}, mode="append", records={table: [{**ROW, "key": "k5"}]})
    assert [r["key"] for r in store.records(table)] == ["k5"]
    assert store.read("grids")["code"].tolist() == ["320106001001001"]


def test_other_errors_are_not_retried(store: Store) -> None:
    table = _records.IDEMPOTENCY.name
    store.put_record(table, ROW)
    with pytest.raises(StoreError):
        store.update_records(table, {"key": "k1"}, {"no_such_column": 1})
    assert store.records(table)[0]["state"] == "done"


def test_is_missing_table_reads_both_engines_errors(pg_url: str) -> None:
    import sqlite3

    import psycopg

    with pytest.raises(sqlite3.OperationalError) as lite:
        sqlite3.connect(":memory:").execute("SELECT 1 FROM gone")
    with psycopg.connect(pg_url) as conn, pytest.raises(psycopg.Error) as pg:
        conn.execute("SELECT 1 FROM gp_leftovers_no_such_table")
    for exc in (lite.value, pg.value):
        wrapped = StoreError("engines.records.no_column", table="t", column="c", columns="")
        wrapped.__cause__ = exc
        assert _records.is_missing_table(exc) and _records.is_missing_table(wrapped)
    with pytest.raises(sqlite3.OperationalError) as other:
        sqlite3.connect(":memory:").execute("SELEC 1")
    assert not _records.is_missing_table(other.value)
