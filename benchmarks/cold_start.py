"""Cold start: ``streamlit run`` on a full-district store, every page cold then warm, settle times and RSS.

Starts ``streamlit run dashboard/app.py`` (the command ``gridpulse serve`` runs, offline, no
basemap) on an existing store (``gridpulse demo --preset full --store STORE``), waits for
``/_stcore/health``, then drives headless ``/usr/bin/chromium`` (Playwright) through every
page of ``dashboard/app.py`` twice, each visit in a fresh browser context (a new session):

* ``cold``: the first visit of each page after the server started (nothing cached);
* ``warm``: a second visit, in a new session (the server's caches are filled).

A page's settle time runs from ``page.goto`` until the last change to the page: the app
script no longer running (Streamlit's ``data-test-script-state``), no stale element or
spinner, and the element count unchanged for ``--quiet-s`` seconds (the quiet period is not
counted; compare ``tests/e2e/_helpers.py`` ``settle``). A page still running after
``TIMEOUT_S`` (300 s) reports ``NaN``. The
server's resident memory (the streamlit process and its children, ``VmRSS``, and their
peak ``VmHWM``) is read from ``/proc`` after start-up, after the cold pass and after the
warm pass.

``--tree DIR`` runs the server from another checkout of GridPulse (e.g. the commit before a
change, extracted with ``git archive``), so before and after are measured in the same run.
If the app asks for a sign-in, :func:`sign_in` fills it from ``GRIDPULSE_BENCH_USER`` /
``GRIDPULSE_BENCH_PASSWORD``.

Run: ``.venv/bin/python benchmarks/cold_start.py STORE.gpkg [--tree DIR] [--pages wall patrol]``;
prints JSON (``load_avg``: the 1-minute load average at the start).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
#: url path of every page in ``dashboard/app.py`` ("" is the default page).
PAGES = ("", "wall", "incidents", "hotspots", "patrol", "data", "planner")
TIMEOUT_S = 300.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tree_pids(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def rss_mb(pid: int) -> dict[str, float]:
    """Resident and peak resident memory of ``pid`` and its children, in MB."""
    now = peak = 0
    for p in _tree_pids(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                now += int(line.split()[1])
            elif line.startswith("VmHWM:"):
                peak += int(line.split()[1])
    return {"rss_mb": round(now / 1024, 1), "peak_rss_mb": round(peak / 1024, 1)}


def sign_in(page: Any) -> bool:
    """Fill the app's sign-in form when it shows one; True when it signed in.

    TODO(auth): the sign-in gate (issue 11) is not on this branch; this fills the first text
    and password inputs and presses Enter. Adjust the selectors to the ``auth`` helper's form.
    """
    password = page.locator("input[type='password']")
    if password.count() == 0:
        return False
    user = os.environ.get("GRIDPULSE_BENCH_USER")
    secret = os.environ.get("GRIDPULSE_BENCH_PASSWORD")
    if not (user and secret):
        raise SystemExit("the app asks for a sign-in: set GRIDPULSE_BENCH_USER and GRIDPULSE_BENCH_PASSWORD")
    page.locator("input[type='text']").first.fill(user)
    password.first.fill(secret)
    password.first.press("Enter")
    return True


def _script_state(page: Any) -> str | None:
    """Streamlit's own run state of the app: ``initial``, ``running`` or ``notRunning``."""
    return page.evaluate("(() => { const a = document.querySelector(\"[data-testid='stApp']\");"
                         " return a ? a.getAttribute('data-test-script-state') : null; })()")


def settle_s(page: Any, t0: float, *, quiet_s: float) -> float:
    """Seconds from ``t0`` until the page last changed (then stayed quiet for ``quiet_s``).

    Busy while the app script runs (``data-test-script-state`` of ``stApp``, which Streamlit
    sets for its own browser tests), while an element is stale or a spinner shows, and until
    the element count has not changed for ``quiet_s``.
    """
    deadline = t0 + TIMEOUT_S
    last, last_change = -1, time.perf_counter()
    ran = False
    while time.perf_counter() < deadline:
        state = _script_state(page)
        ran = ran or state == "running"
        n = page.locator("[data-testid='stElementContainer']").count()
        busy = (state != "notRunning" or page.locator("[data-stale='true']").count() > 0
                or page.locator("[data-testid='stSpinner']").count() > 0)
        if busy or n != last:
            last, last_change = n, time.perf_counter()
        elif ran and time.perf_counter() - last_change >= quiet_s:
            return last_change - t0
        time.sleep(0.1)
    return float("nan")


def visit(browser: Any, url: str, *, quiet_s: float) -> dict[str, Any]:
    ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        t0 = time.perf_counter()
        page.goto(url, timeout=TIMEOUT_S * 1000)
        secs = settle_s(page, t0, quiet_s=quiet_s)
        if sign_in(page):
            t0 = time.perf_counter()
            secs = settle_s(page, t0, quiet_s=quiet_s)
        exceptions = page.locator("[data-testid='stException']").count()
    finally:
        ctx.close()
    return {"settle_s": round(secs, 2), "exceptions": exceptions, "js_errors": len(errors)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("store", type=Path)
    ap.add_argument("--tree", type=Path, default=ROOT, help="GridPulse checkout to serve from")
    ap.add_argument("--pages", nargs="*", default=list(PAGES))
    ap.add_argument("--quiet-s", type=float, default=1.5)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    tree = args.tree.resolve()
    port = _free_port()
    home = Path(tempfile.mkdtemp(prefix="gp-bench-home-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDPULSE_")}
    env.update(GRIDPULSE_STORE=str(args.store.resolve()), GRIDPULSE_OFFLINE="1",
               GRIDPULSE_BASEMAP="none", HOME=str(home), PYTHONPATH=str(tree))
    cmd = [sys.executable, "-m", "streamlit", "run", str(tree / "dashboard" / "app.py"),
           "--server.headless", "true", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.enableStaticServing", "true",
           "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal",
           "--theme.base", "light"]
    out: dict[str, Any] = {"store": str(args.store), "tree": str(tree),
                           "load_avg": round(os.getloadavg()[0], 2), "pages": {}}
    log = open(home / "streamlit.log", "w")  # noqa: SIM115
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        while time.perf_counter() - t0 < TIMEOUT_S:
            if proc.poll() is not None:
                raise SystemExit(f"streamlit exited with {proc.returncode}; see {log.name}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
        out["server_health_s"] = round(time.perf_counter() - t0, 2)
        out["memory_after_start"] = rss_mb(proc.pid)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for phase in ("cold", "warm"):
                for path in args.pages:
                    name = path or "explorer"
                    res = visit(browser, f"{url}/{path}", quiet_s=args.quiet_s)
                    res.update(rss_mb(proc.pid))
                    out["pages"].setdefault(name, {})[phase] = res
                    print(json.dumps({phase: name, **res}), file=sys.stderr, flush=True)
                out[f"memory_after_{phase}"] = rss_mb(proc.pid)
            browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        shutil.rmtree(home, ignore_errors=True)
    print(json.dumps(out, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
