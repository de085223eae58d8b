"""Regenerate the README gallery: every page in zh and en at 1920×1080, the wall at 3840×2160.

    python benchmarks/screenshots.py --store demo.gpkg [--out docs/screenshots] [--url URL]
                                     [--pages explorer,wall,...] [--langs zh,en]

Starts ``streamlit run dashboard/app.py`` on a free port against ``--store`` (offline mode,
no basemap, so nothing leaves the machine) unless ``--url`` points at a running server, then
drives Debian's headless Chromium (``/usr/bin/chromium``) through Playwright. Each PNG is
re-encoded as an 8-bit palette image (Pillow) so it stays well under 600 KB. Prints one JSON
line per screenshot (name, bytes, seconds).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e._helpers import settle  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
PAGES = ("explorer", "wall", "incidents", "hotspots", "patrol", "data", "planner")
MAP = "iframe[title='streamlit_folium.st_folium']"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(store: str, *, port: int | None = None) -> tuple[subprocess.Popen, str]:
    """A ``streamlit run`` of the dashboard on ``store``; returns the process and its URL."""
    from gridpulse.commands.serve import streamlit_command

    port = port or _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDPULSE_")}
    env.update(GRIDPULSE_STORE=store, GRIDPULSE_OFFLINE="1", GRIDPULSE_BASEMAP="none",
               PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(streamlit_command(port=port, address="127.0.0.1"), cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise SystemExit("streamlit did not start within 90 s")


def compress(png: bytes) -> bytes:
    """The screenshot as an adaptive 256-colour palette PNG (text stays sharp, size drops ~4×)."""
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    out = io.BytesIO()
    img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        out, format="PNG", optimize=True)
    return out.getvalue()


def capture(page, url: str, path: Path, *, wait_map: bool = True) -> None:
    """Open ``url``, wait for Streamlit and the maps to settle, save a compressed full-viewport PNG."""
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector("[data-testid='stMainBlockContainer'] [data-testid='stMarkdown']", timeout=90_000)
    # the page's main content (a map, a table or the uploader), then no script run in progress
    page.wait_for_selector(f"{MAP}, [data-testid='stDataFrame'], [data-testid='stFileUploader']",
                           timeout=180_000)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and page.locator("[data-testid='stStatusWidget']").count():
        time.sleep(0.5)
    time.sleep(1.5)
    settle(page, quiet_s=2.0)
    if wait_map and page.locator(MAP).count():  # until the map frame has drawn its shapes
        deadline = time.monotonic() + 90
        frame = page.frame_locator(MAP).first
        while time.monotonic() < deadline and frame.locator(".leaflet-overlay-pane path").count() == 0:
            time.sleep(0.5)
        settle(page, quiet_s=2.0)
        time.sleep(1.5)
    page.evaluate("document.fonts.ready")
    prev = page.screenshot()
    for _ in range(8):
        time.sleep(0.8)
        img = page.screenshot()
        if img == prev:
            break
        prev = img
    path.write_bytes(compress(prev))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", help="GeoPackage or PostGIS URL holding a district (e.g. the demo)")
    ap.add_argument("--url", help="a running GridPulse server instead of starting one")
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    ap.add_argument("--pages", default=",".join(PAGES))
    ap.add_argument("--langs", default="zh,en")
    ap.add_argument("--wall-4k", action=argparse.BooleanOptionalAction, default=True)
    args = ap.parse_args(argv)
    if not (args.url or args.store):
        ap.error("give --store or --url")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    proc = None
    url = args.url
    if not url:
        proc, url = start_server(args.store)
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            shots: list[tuple[str, str, dict[str, int]]] = []
            for lang in args.langs.split(","):
                for name in args.pages.split(","):
                    path = "" if name == "explorer" else name  # the default page is served at /
                    shots.append((f"{name}_{lang}.png", f"{url}/{path}?lang={lang}",
                                  {"width": 1920, "height": 1080}))
                if args.wall_4k and "wall" in args.pages.split(","):
                    shots.append((f"wall_4k_{lang}.png", f"{url}/wall?lang={lang}",
                                  {"width": 3840, "height": 2160}))
            for fname, link, viewport in shots:
                t0 = time.perf_counter()
                ctx = browser.new_context(viewport=viewport, locale="zh-CN")
                page = ctx.new_page()
                capture(page, link, out / fname)
                ctx.close()
                print(json.dumps({"name": fname, "bytes": (out / fname).stat().st_size,
                                  "seconds": round(time.perf_counter() - t0, 1)}), flush=True)
            browser.close()
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
