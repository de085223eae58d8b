"""Start a server process for a test, and make sure every process it started is gone after.

``gridpulse api --workers 2`` is a uvicorn supervisor with two worker processes. Stopping the
supervisor alone may leave a worker behind (one still importing, or waiting to finish a
request), holding its store connections: a ``DROP SCHEMA`` in the test's teardown then waits
for it without end. So the server runs in its own session (process group), and teardown
signals the whole group: SIGTERM, then SIGKILL for whatever is still there after a grace
period.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx


def stop_group(proc: subprocess.Popen, *, grace_s: float = 20.0) -> None:
    """SIGTERM the process group of ``proc`` (started with ``start_new_session``: the group's
    id is its pid), then SIGKILL whatever is left after ``grace_s``; returns once the group
    is empty."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            proc.poll()  # reap the leader: a zombie still counts as a member
            if not _group_alive(proc.pid):
                return
            time.sleep(0.1)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's group: not ours to wait for
        return False
    return True


@contextlib.contextmanager
def http_server(cmd: Sequence[str], *, port: int, env: dict[str, str], cwd: Path, log: Path,
                timeout_s: float = 60.0, health: str = "/health") -> Iterator[str]:
    """Run ``cmd`` (serving on 127.0.0.1:``port``) until its ``health`` path answers 200;
    yield its URL; stop its whole process group afterwards. Fails with the log's path when
    it exits or does not answer within ``timeout_s``."""
    url = f"http://127.0.0.1:{port}"
    with open(log, "w") as out:
        proc = subprocess.Popen(list(cmd), cwd=cwd, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited with {proc.returncode}; see {log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not answer within {timeout_s:.0f} s; "
                                   f"see {log}")
            try:
                if httpx.get(url + health, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield url
    finally:
        stop_group(proc)
