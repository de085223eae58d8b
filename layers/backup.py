"""Back up a store safely while the app keeps running.

* GeoPackage: SQLite's online backup API copies the file page by page inside one read
  transaction, so the copy is one consistent state of the store even while case actions or
  imports are being written (a writer waits for the copy; a whole-file replace swaps in a new
  file, and the copy is of the old one, complete). Never ``cp`` a GeoPackage that may be
  written at that moment: a copy taken mid-commit can be torn.
* PostGIS: ``pg_dump`` (custom format, only the store's schema), which reads one consistent
  snapshot of the database; restore with ``pg_restore``.

:func:`backup_store` is what ``gridpulse backup DEST`` runs.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from layers.errors import StoreError


def backup_geopackage(store: str | os.PathLike[str], dest: str | os.PathLike[str]) -> Path:
    """Copy the GeoPackage ``store`` to ``dest`` (a new file) as one consistent snapshot.

    The copy is written beside ``dest`` under a temporary name, checked with
    ``PRAGMA integrity_check`` and renamed into place, so ``dest`` is never half-written.
    Returns ``dest``.
    """
    src_path, dest_path = Path(store).expanduser().resolve(), Path(dest).expanduser().resolve()
    if not src_path.exists():
        raise StoreError("engines.backup.no_source", path=str(src_path))
    if dest_path == src_path:
        raise StoreError("engines.backup.same_file")
    dest_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest_path.with_name(f".{dest_path.name}.partial")
    tmp.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{src_path}?mode=ro", uri=True, timeout=60)
    try:
        dst = sqlite3.connect(tmp)
        try:
            src.backup(dst)  # all pages in one step: one read transaction, one snapshot
            (ok,) = dst.execute("PRAGMA integrity_check").fetchone()
            if ok != "ok":  # pragma: no cover - would mean a damaged source
                raise StoreError("engines.backup.integrity", result=ok)
        finally:
            dst.close()
    finally:
        src.close()
    os.replace(tmp, dest_path)
    return dest_path


def backup_postgis(url: str, dest: str | os.PathLike[str]) -> Path:
    """``pg_dump`` the store's schema (custom format) to ``dest``; restore with ``pg_restore``."""
    from layers._postgis import split_url

    exe = shutil.which("pg_dump")
    if exe is None:
        raise StoreError("engines.backup.no_pg_dump")
    conninfo, schema = split_url(url)
    dest_path = Path(dest).expanduser().resolve()
    dest_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest_path.with_name(f".{dest_path.name}.partial")
    res = subprocess.run([exe, "--format=custom", f"--schema={schema}", f"--file={tmp}",
                          f"--dbname={conninfo}"], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise StoreError("engines.backup.pg_dump_failed", error=res.stderr.strip())
    os.replace(tmp, dest_path)
    return dest_path


def backup_store(url: str, dest: str | os.PathLike[str]) -> Path:
    """Back up the store at ``url`` (GeoPackage path or ``postgresql://`` URL) to ``dest``."""
    if url.startswith(("postgresql://", "postgres://")):
        return backup_postgis(url, dest)
    return backup_geopackage(url.removeprefix("gpkg://").removeprefix("file://"), dest)
