"""Helpers the browser tests share: waiting for Streamlit to settle, screenshots, locality."""

from __future__ import annotations

import time
from pathlib import Path

MAP = "iframe[title='streamlit_folium.st_folium']"
TIMEOUT_MS = 60_000


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
