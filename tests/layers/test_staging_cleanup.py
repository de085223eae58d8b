"""A GeoPackage writer killed mid-write (SIGKILL) leaves its staging file; reopening removes it.

The writer is a real process writing a large layer; it is killed while GDAL is filling the
staging (append) or new-file (whole-store replace) GeoPackage beside the store. While it runs,
opening the store must NOT touch its file (the writer holds a lock); after the kill, opening
the store deletes it, and the store is exactly as before.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

import pytest

from layers._gpkg import LEGACY_STALE_AFTER_S, clean_side_files
from layers.store import open_store
from tests.layers import _writers


def side_files(store: Path) -> list[Path]:
    return sorted(p for p in store.parent.iterdir() if p.name.startswith(f".{store.name}."))


def wait_for_staging(store: Path, proc, *, min_bytes: int, timeout_s: float = 120) -> Path:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for p in side_files(store):
            if p.suffix == ".gpkg" and p.exists() and p.stat().st_size >= min_bytes:
                return p
        assert proc.is_alive(), "the writer finished before it could be killed"
        time.sleep(0.02)
    pytest.fail("no staging file appeared")


@pytest.mark.parametrize(("mode", "kind", "prefilled"), [("append", "staging", True),
                                                        ("replace", "new", False)])
def test_a_killed_writer_leaves_nothing_once_the_store_is_reopened(
        tmp_path: Path, mode: str, kind: str, prefilled: bool) -> None:
    path = tmp_path / "store.gpkg"
    with open_store(str(path)) as s:
        if prefilled:  # a store holding more than the written layer: appends stage
            s.write({"patrol_points": _writers.patrol_frame(10)}, actor="setup")
        before = {n: s.count(n) for n in s.layer_names()}
        audit = len(s.audit_log())
    size_before = path.stat().st_size

    ctx = mp.get_context("spawn")
    proc = ctx.Process(target=_writers.write_patrol, args=(str(path), 150_000, mode))
    proc.start()
    try:
        staging = wait_for_staging(path, proc, min_bytes=1_000_000)
        assert staging.name.startswith(f".store.gpkg.{kind}-")
        # the writer is alive: opening the store leaves its file alone
        with open_store(str(path)) as s:
            assert s.cleaned == []
        assert staging.exists()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.join(timeout=30)
    assert proc.exitcode == -signal.SIGKILL
    left = side_files(path)
    assert staging in left and sum(p.stat().st_size for p in left) >= 1_000_000

    with open_store(str(path)) as s:
        assert s.cleaned == [staging]
        assert {n: s.count(n) for n in s.layer_names()} == before
        assert len(s.audit_log()) == audit
    assert side_files(path) == []
    assert path.stat().st_size == size_before


def test_an_old_unlocked_side_file_goes_only_once_it_is_old(tmp_path: Path) -> None:
    path = tmp_path / "s.gpkg"
    open_store(str(path)).close()
    old = tmp_path / ".s.gpkg.staging-0123abcd.gpkg"
    old.write_bytes(b"x" * 100)
    Path(f"{old}-journal").write_bytes(b"j")
    other = tmp_path / ".s.gpkg.backup-1.gpkg"  # not ours: never touched
    other.write_bytes(b"y")
    assert clean_side_files(path) == []  # fresh: it may belong to an older, running writer
    t = time.time() - LEGACY_STALE_AFTER_S - 60
    os.utime(old, (t, t))
    assert clean_side_files(path) == [old]
    assert not old.exists() and not Path(f"{old}-journal").exists() and other.exists()
