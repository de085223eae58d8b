"""Side files of the GeoPackage engine (staging and whole-file ``new`` GeoPackages) and their clean-up.

Side files carry a ``.lock`` companion that the writer holds with ``flock``; a writer killed
mid-write (SIGKILL, power loss) leaves them behind, and the next
:class:`~layers._gpkg.GeoPackageStore` opened on the store deletes those whose lock nobody
holds (:func:`clean_side_files`).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path


def unlink_db(path: Path) -> None:
    """Delete a side GeoPackage with SQLite's companions, and release its lock."""
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    release_side_lock(path)


_SIDE_LOCKS: dict[str, int] = {}
_SIDE_LOCKS_GUARD = threading.Lock()
#: A side file without a lock file (written by an older GridPulse) counts as abandoned after this.
LEGACY_STALE_AFTER_S = 3600.0
_SIDE_KINDS = ("staging", "new")


def _lock_path(side: Path) -> Path:
    return side.with_name(side.name + ".lock")


def hold_side_lock(side: Path) -> None:
    """Create ``<side>.lock`` already ``flock``-ed (made under a temporary name, then renamed),
    so a cleaner never sees the lock file of a live writer unlocked. The kernel drops the lock
    when the process dies, even by SIGKILL: that is how an abandoned side file is recognised."""
    import fcntl

    lock = _lock_path(side)
    tmp = lock.with_name(f"{lock.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.replace(tmp, lock)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    with _SIDE_LOCKS_GUARD:
        _SIDE_LOCKS[str(side)] = fd


def release_side_lock(side: Path) -> None:
    with _SIDE_LOCKS_GUARD:
        fd = _SIDE_LOCKS.pop(str(side), None)
    if fd is not None:
        _lock_path(side).unlink(missing_ok=True)
        os.close(fd)


def _is_abandoned(side: Path, now: float) -> bool:
    """True when no live writer holds ``side``: its lock file can be locked, or (no lock
    file) it is older than :data:`LEGACY_STALE_AFTER_S`."""
    import fcntl

    lock = _lock_path(side)
    try:
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        try:
            return now - side.stat().st_mtime > LEGACY_STALE_AFTER_S
        except FileNotFoundError:
            return False  # finished meanwhile
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # a live writer holds it
    finally:
        os.close(fd)
    return True


def clean_side_files(store_path: Path) -> list[Path]:
    """Delete the staging / new files a killed writer left beside ``store_path``.

    Side files are named ``.<store>.<staging|new>-<hex>.gpkg`` (plus SQLite's ``-journal``,
    ``-wal``, ``-shm``, GDAL's ``.tmp_rtree_<layer>.db`` and GridPulse's ``.lock``). Only abandoned ones go (:func:`_is_abandoned`):
    a writer still running holds its lock. Returns the side files removed (without companions).
    """
    import time

    now = time.time()
    removed: list[Path] = []
    prefix = f".{store_path.name}."
    for side in sorted(store_path.parent.glob(f"{glob_escape(prefix)}*-*.gpkg")):
        kind = side.name[len(prefix):].split("-", 1)[0]
        if kind not in _SIDE_KINDS or not _is_abandoned(side, now):
            continue
        # the file, SQLite's journals, GDAL's ``.tmp_rtree_*.db`` and the lock file
        for companion in side.parent.glob(glob_escape(side.name) + "*"):
            companion.unlink(missing_ok=True)
        removed.append(side)
    return removed


def glob_escape(text: str) -> str:
    """``text`` with glob wildcards escaped (store names may contain ``[``)."""
    import glob

    return glob.escape(text)


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


