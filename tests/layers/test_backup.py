"""``gridpulse backup``: a consistent copy of a GeoPackage store even while it is written;
``pg_dump`` of a PostGIS store's schema."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import threading
import uuid
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from gridpulse.cli import main
from layers.backup import backup_store
from layers.store import open_store


def fixes(first: int, n: int) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"fix_id": [f"f{i}" for i in range(first, first + n)], "worker_id": ["W1"] * n,
         "time": [pd.Timestamp("2025-03-03 08:00") + pd.Timedelta(seconds=i)
                  for i in range(first, first + n)]},
        geometry=[shapely.Point(118.77 + i * 1e-5, 32.06) for i in range(first, first + n)],
        crs=4326)


def test_a_backup_taken_during_writes_is_one_consistent_store(tmp_path: Path) -> None:
    path = tmp_path / "store.gpkg"
    with open_store(str(path)) as s:
        s.write({"patrol_points": fixes(0, 100)}, actor="setup")
    stop = threading.Event()

    def writer() -> None:
        i = 1
        with open_store(str(path)) as s:
            while not stop.is_set():
                s.write({"patrol_points": fixes(i * 100, 100)}, mode="append", actor="w")
                i += 1

    t = threading.Thread(target=writer)
    t.start()
    try:
        copies = [backup_store(str(path), tmp_path / f"copy{k}.gpkg") for k in range(4)]
    finally:
        stop.set()
        t.join()
    with open_store(str(path)) as s:
        assert s.count("patrol_points") > 100  # the writer did write meanwhile
    for copy in copies:
        with sqlite3.connect(copy) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        with open_store(str(copy)) as c:
            n = c.count("patrol_points")
            log = c.audit_log()
            # every committed write is in the copy with its rows and its audit row, no more
            assert n == int(log["rows"].sum()) and n % 100 == 0
            assert len(c.read("patrol_points")) == n
    assert not list(tmp_path.glob(".*partial"))


def test_the_cli_backs_up_and_refuses_to_overwrite_the_store(tmp_path: Path, capsys) -> None:
    path = tmp_path / "store.gpkg"
    with open_store(str(path)) as s:
        s.write({"patrol_points": fixes(0, 10)}, actor="setup")
    assert main(["--lang", "en", "backup", str(tmp_path / "b" / "copy.gpkg"),
                 "--store", str(path)]) == 0
    assert "backed up to" in capsys.readouterr().out
    with open_store(str(tmp_path / "b" / "copy.gpkg")) as c:
        assert c.count("patrol_points") == 10
    assert main(["--lang", "en", "backup", str(path), "--store", str(path)]) == 1
    assert "no backup file was written" in capsys.readouterr().err


@pytest.mark.postgis
def test_a_postgis_store_is_dumped_with_pg_dump(pg_url: str, tmp_path: Path) -> None:
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    url = f"{pg_url}?schema={schema}"
    try:
        with open_store(url) as s:
            s.write({"patrol_points": fixes(0, 10)}, actor="setup")
        out = backup_store(url, tmp_path / "dump.pgc")
        listing = subprocess.run([shutil.which("pg_restore") or "pg_restore", "--list", str(out)],
                                 capture_output=True, text=True, check=True).stdout
        assert f"TABLE DATA {schema} patrol_points" in listing
        assert f"TABLE DATA {schema} audit_log" in listing
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
