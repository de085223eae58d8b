"""Regenerate the README gallery: every page in zh and en at 1920×1080, the wall at 3840×2160.

    python benchmarks/screenshots.py --store demo.gpkg [--out docs/screenshots] [--url URL]
                                     [--pages explorer,wall,...] [--langs zh,en]

Starts the dashboard (:func:`tests.e2e._helpers.streamlit_server`: ``gridpulse serve``'s
``streamlit run``, offline mode, no basemap, so nothing leaves the machine) against
``--store`` unless ``--url`` points at a running server over that store, then drives Debian's
headless Chromium (``/usr/bin/chromium``) through Playwright, signed in as a test admin of the
store (a session cookie: :func:`tests.e2e._helpers.add_session_cookie`). Each PNG is
re-encoded as an 8-bit palette image (Pillow) so it stays well under 600 KB. Prints one JSON
line per screenshot (name, bytes, seconds).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e._helpers import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    MAP,
    add_session_cookie,
    settle,
    streamlit_server,
    wait_for_map,
)

PAGES = ("explorer", "wall", "incidents", "hotspots", "patrol", "data", "planner")


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
    page.locator("[data-testid='stMainBlockContainer']").first.wait_for(timeout=180_000)
    # the page's main content (a map, a table or the uploader), then no script run in progress
    page.locator(f"{MAP}, [data-testid='stDataFrame'], [data-testid='stFileUploader']").first.wait_for(
        timeout=300_000)
    settle(page, quiet_s=2.0, timeout_s=180)
    if wait_map and page.locator(MAP).count() and wait_for_map(page, timeout_s=90):
        settle(page, quiet_s=2.0, timeout_s=90)
    page.evaluate("document.fonts.ready")
    prev = page.screenshot()
    for _ in range(8):  # until two frames agree (map tiles and fonts paint late)
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
    if not args.store:
        ap.error("give --store (with --url: the store that server runs on, to sign in)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with contextlib.ExitStack() as stack:
        url = args.url
        if not url:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gp-shots-")))
            url = str(stack.enter_context(streamlit_server(args.store, work)))
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
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
                add_session_cookie(ctx, url, args.store)
                page = ctx.new_page()
                try:
                    capture(page, link, out / fname)
                except Exception as e:  # noqa: BLE001 - say which page, take the others
                    print(json.dumps({"name": fname, "error": str(e).splitlines()[0]}), flush=True)
                    continue
                finally:
                    ctx.close()
                print(json.dumps({"name": fname, "bytes": (out / fname).stat().st_size,
                                  "seconds": round(time.perf_counter() - t0, 1)}), flush=True)
            browser.close()
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
