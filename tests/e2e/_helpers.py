"""Helpers the browser tests share: waiting for Streamlit to settle, screenshots, locality."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

MAP = "iframe[title='streamlit_folium.st_folium']"
TIMEOUT_MS = 60_000
ROOT = Path(__file__).resolve().parents[2]


def is_local(url: str, server: str) -> bool:
    """True for a request that stays on the GridPulse server (or is no network request)."""
    return url.startswith((server, "data:", "blob:", "about:", "chrome-extension:"))


def settle(page, *, quiet_s: float = 1.0) -> None:
    """Wait until Streamlit has finished the rerun: nothing stale, and no element added for ``quiet_s``."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    last, calm_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        n = page.locator("[data-testid='stElementContainer']").count()
        busy = page.locator("[data-stale='true']").count() > 0
        if busy or n != last:
            last, calm_since = n, time.monotonic()
        elif time.monotonic() - calm_since >= quiet_s:
            return
        time.sleep(0.15)


def shot(page, artifacts_dir: Path, name: str) -> None:
    """Save a screenshot once two in a row agree (a busy machine may paint map tiles late)."""
    settle(page)
    page.evaluate("document.fonts.ready")
    frames = page.locator(MAP)
    for i in range(frames.count()):  # headless Chromium may leave part of a map frame unpainted
        frames.nth(i).screenshot()
    prev = page.screenshot()
    for _ in range(8):
        time.sleep(0.7)
        img = page.screenshot()
        if img == prev:
            break
        prev = img
    (artifacts_dir / name).write_bytes(prev)


@contextlib.contextmanager
def streamlit_server(store: str | Path, workdir: Path, **env_extra: str) -> Iterator[str]:
    """Run ``streamlit run dashboard/app.py`` on a free localhost port over ``store``; yields its URL.

    Offline, no basemap (the browser needs nothing beyond the server); ``env_extra`` adds
    ``GRIDPULSE_*`` settings. The log goes to ``workdir/streamlit.log``.
    """
    from gridpulse.commands.serve import streamlit_command

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDPULSE_")}
    (workdir / "home").mkdir(parents=True, exist_ok=True)
    env.update(GRIDPULSE_STORE=str(store), GRIDPULSE_OFFLINE="1", GRIDPULSE_BASEMAP="none",
               HOME=str(workdir / "home"), **env_extra)
    url = f"http://127.0.0.1:{port}"
    with open(workdir / "streamlit.log", "w") as log:
        proc = subprocess.Popen(streamlit_command(port=port, address="127.0.0.1"), cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as r:
                        if r.status == 200:
                            break
                except OSError:
                    time.sleep(0.3)
            else:
                raise RuntimeError(f"streamlit did not start within 60 s; see {log.name}")
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {proc.returncode}; see {log.name}")
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
