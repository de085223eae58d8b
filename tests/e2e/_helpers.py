"""What the browser tests and the browser benchmarks share: one way to start the dashboard,
one way to sign a browser in, one way to wait for Streamlit to settle, screenshots.

``tests/e2e/conftest.py`` (the session server), ``tests/e2e/test_hostile.py``,
``benchmarks/cold_start.py`` and ``benchmarks/screenshots.py`` all start the server with
:func:`streamlit_server` and wait with :func:`settle`.

Why the waits look at Streamlit's own state rather than sleeping: on a shared machine a rerun
takes anything from 0.1 to 20 s. Streamlit marks its app element with
``data-test-script-state`` (``initial`` / ``running`` / ``notRunning``, for its own browser
tests) and elements of a finished run's predecessor with ``data-stale``; a page has settled
when the script is not running, nothing is stale or spinning, and no element has been added
for a short quiet period.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests._servers import stop_group

MAP = "iframe[title='streamlit_folium.st_folium']"
#: Longest wait for one element (a loaded 2-core machine: 8 people share it).
TIMEOUT_MS = 120_000
#: Longest wait for a page to settle (a loaded 2-core machine runs a 5 s page in a minute).
SETTLE_TIMEOUT_S = 180.0
ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]
#: Seconds the server may take to answer its health check (a loaded 2-core machine).
START_TIMEOUT_S = 120.0


def is_local(url: str, server: str) -> bool:
    """True for a request that stays on the GridPulse server (or is no network request)."""
    return url.startswith((server, "data:", "blob:", "about:", "chrome-extension:"))


# --------------------------------------------------------------------------- waiting


_STATE_JS = ("(() => { const a = document.querySelector(\"[data-testid='stApp']\");"
             " return a ? a.getAttribute('data-test-script-state') : null; })()")
_BUSY_JS = ("(() => document.querySelectorAll(\"[data-stale='true'], [data-testid='stSpinner']\")"
            ".length)()")
_COUNT_JS = "(() => document.querySelectorAll(\"[data-testid='stElementContainer']\").length)()"


def script_state(page: Any) -> str | None:
    """Streamlit's run state of the app: ``initial``, ``running``, ``notRunning`` (None before
    the app has mounted)."""
    return page.evaluate(_STATE_JS)


def settle(page: Any, *, quiet_s: float = 1.0, timeout_s: float = SETTLE_TIMEOUT_S) -> float:
    """Wait until the page has settled; returns the seconds until its last change.

    Settled: the app script is not running (``data-test-script-state``), no element is stale,
    no spinner shows, and the number of elements has not changed for ``quiet_s``.
    The quiet period is not part of the returned time. Raises ``TimeoutError`` after
    ``timeout_s``, naming what was still busy.
    """
    t0 = time.monotonic()
    deadline = t0 + timeout_s
    last, calm_since = -1, time.monotonic()
    state, busy = None, 0
    while time.monotonic() < deadline:
        try:
            state = page.evaluate(_STATE_JS)
            busy = page.evaluate(_BUSY_JS)
            n = page.evaluate(_COUNT_JS)
        except Exception:  # noqa: BLE001 - a navigation replaced the document: look again
            state, busy, n = None, 1, -1
        if state != "notRunning" or busy or n != last:
            last, calm_since = n, time.monotonic()
        elif time.monotonic() - calm_since >= quiet_s:
            return calm_since - t0
        time.sleep(0.1)
    raise TimeoutError(f"the page did not settle within {timeout_s:.0f} s "
                       f"(script state {state!r}, {busy} stale/spinning elements)")


def rerun_after(page: Any, action: Any, *, quiet_s: float = 1.0,
                timeout_s: float = SETTLE_TIMEOUT_S) -> float:
    """Do ``action()`` (a click, a fill...) and wait for the rerun it starts to finish.

    Streamlit starts the rerun a moment after the event: waiting right away could see the
    previous run's "not running" state. This waits for the element tree to change or the
    script to run (at most 2 s: an action may change nothing server-side), then settles.
    """
    before = page.evaluate(_COUNT_JS)
    action()
    t0 = time.monotonic()
    while time.monotonic() - t0 < 2.0:
        if page.evaluate(_STATE_JS) == "running" or page.evaluate(_BUSY_JS) \
                or page.evaluate(_COUNT_JS) != before:
            break
        time.sleep(0.05)
    return settle(page, quiet_s=quiet_s, timeout_s=timeout_s)


# --------------------------------------------------------------------------- widgets

#: How long one attempt to open a select list waits for its options.
_LIST_WAIT_MS = 10_000


def _combobox(page: Any, box: Any) -> Any:
    return page.locator(f".st-key-{box} [role='combobox']") if isinstance(box, str) else box


def open_list(page: Any, box: Any, *, typed: str = "", tries: int = 3) -> Any:
    """Open the option list of a selectbox or multiselect and return its options' locator.

    ``box`` is a widget key (``.st-key-<key>``) or a locator of the widget's combobox.
    ``typed`` is typed into the box first: Streamlit's option lists are virtualised (only a
    screenful of options is in the page), so an option further down exists only once typing has
    filtered the list. The page is settled first (a click during a rerun lands on a widget
    that is about to be replaced and is lost) and the list is opened again, up to ``tries``
    times, when no option shows up.
    """
    combo = _combobox(page, box)
    options = page.get_by_role("option")
    for attempt in range(tries):
        settle(page, quiet_s=0.5)
        combo.click()
        if typed:
            combo.press_sequentially(typed)  # into the box itself: never a stray key to the page
        try:
            options.first.wait_for(timeout=_LIST_WAIT_MS)
            return options
        except Exception:  # noqa: BLE001 - Playwright's TimeoutError: the click was lost
            page.keyboard.press("Escape")
            if attempt == tries - 1:
                raise
    return options


def choose(page: Any, box: Any, option: Any = None, *, typed: str | None = None, nth: int = 0,
           tries: int = 3) -> str:
    """Pick an option in a selectbox or multiselect and wait for the rerun; returns its text.

    ``option`` is the option's exact name, a compiled regular expression, or None for the
    ``nth`` option listed. ``typed`` filters the list first (default: the option's name when it
    is a string; see :func:`open_list` for why). A selectbox already showing ``option`` is left
    alone. A selectbox must show the picked option afterwards, else the pick is tried again
    (up to ``tries`` times); a multiselect's list is closed after the pick.
    """
    combo = _combobox(page, box)
    multi = combo.evaluate("e => !!e.closest(\"[data-testid='stMultiSelect']\")")
    if isinstance(option, str) and not multi and _norm(combo.input_value()) == _norm(option):
        return option
    if typed is None:
        typed = option if isinstance(option, str) else ""
    shown = ""
    for attempt in range(tries):
        options = open_list(page, combo, typed=typed, tries=tries)
        wanted = options.nth(nth) if option is None else page.get_by_role(
            "option", name=option, exact=isinstance(option, str)).first
        try:
            wanted.wait_for(timeout=_LIST_WAIT_MS)
            text = wanted.inner_text()
            wanted.click(timeout=_LIST_WAIT_MS)
        except Exception:  # noqa: BLE001 - the list was re-rendered under the click: again
            page.keyboard.press("Escape")
            if attempt == tries - 1:
                raise
            continue
        if multi:
            page.keyboard.press("Escape")
        settle(page, quiet_s=0.5)
        if multi:
            return text
        shown = combo.input_value()
        if _norm(shown) == _norm(text):
            return text
    raise AssertionError(f"the selectbox shows {shown!r} after picking {option or nth!r} "
                         f"{tries} times")


def _norm(text: str) -> str:
    return " ".join(text.split())


def wait_for_map(page: Any, *, timeout_s: float = 90.0) -> bool:
    """Wait until a map frame is on the page and has drawn at least one shape; False when
    none has within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if page.locator(MAP).count() > 0:
            frame = page.frame_locator(MAP).first
            if frame.locator(".leaflet-overlay-pane path, .leaflet-marker-pane > *").count() > 0:
                return True
        time.sleep(0.2)
    return False


def shot(page: Any, artifacts_dir: Path, name: str) -> None:
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


# --------------------------------------------------------------------------- signing in


def add_session_cookie(context: Any, server: str, store: str | Path, *,
                       username: str | None = None, role: str = "admin", scope_code: str = "",
                       department: str = "", token: str | None = None) -> str:
    """Sign a browser context in: add the session cookie of ``username`` (default: the test
    admin, created in ``store`` when missing; :func:`tests._signin.session_token`) for
    ``server``. Returns the token."""
    from dashboard._auth import COOKIE
    from tests._signin import ADMIN, session_token

    value = token or session_token(str(store), username or ADMIN, role=role,
                                   scope_code=scope_code, department=department)
    context.add_cookies([{"name": COOKIE, "value": value, "url": server}])
    return value


# --------------------------------------------------------------------------- the server


def free_port() -> int:
    """A TCP port free on 127.0.0.1 at the moment of asking (see :func:`streamlit_server`
    for what happens when someone takes it before the server binds it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server(str):
    """A running dashboard: the string is its URL; also its port, process, log and how long it
    took to start (seconds from starting the process to its first healthy answer)."""

    port: int
    proc: subprocess.Popen
    log: Path
    start_s: float

    def __new__(cls, url: str, *, port: int, proc: subprocess.Popen, log: Path,
                start_s: float) -> Server:
        self = super().__new__(cls, url)
        self.port, self.proc, self.log, self.start_s = port, proc, log, start_s
        return self


def _listening(log: Path, port: int) -> bool:
    """True once streamlit has written that it serves on ``port`` (it binds, then prints)."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return False
    return f":{port}" in text and "URL:" in text


def _start(cmd: list[str], env: dict[str, str], cwd: Path, log_path: Path, port: int,
           timeout_s: float) -> tuple[subprocess.Popen, float] | None:
    """Start the server on ``port``; None when the port was taken (streamlit exits at once)."""
    t0 = time.monotonic()
    with open(log_path, "w") as log:
        # its own process group, stopped whole (:func:`tests._servers.stop_group`)
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = t0 + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            if "already in use" in log_path.read_text(errors="replace"):
                return None
            raise RuntimeError(f"streamlit exited with {proc.returncode}; see {log_path}")
        # the health answer must come from OUR process: another test server may have taken
        # the port between free_port() and our bind (8 people share this machine)
        if _listening(log_path, port):
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200 and proc.poll() is None:
                        return proc, time.monotonic() - t0
            except OSError:
                pass
        time.sleep(0.1)
    stop_group(proc)
    raise RuntimeError(f"streamlit did not start within {timeout_s:.0f} s; see {log_path}")


@contextlib.contextmanager
def streamlit_server(store: str | Path, workdir: Path, *, tree: Path = ROOT,
                     timeout_s: float = START_TIMEOUT_S, **env_extra: str) -> Iterator[Server]:
    """Run the dashboard (``gridpulse serve``'s ``streamlit run`` command) over ``store`` on a
    free localhost port; yields the :class:`Server` (a ``str``: its URL).

    Offline, no basemap (the browser needs nothing beyond the server); ``env_extra`` adds
    ``GRIDPULSE_*`` settings; ``tree`` serves another checkout of GridPulse (a benchmark's
    "before"). ``HOME`` is ``workdir/home`` and the log ``workdir/streamlit.log``. When
    another process takes the port first, it starts again on another port (three tries); it
    is ready when its own log says it listens and the port answers the health check.
    """
    workdir = Path(workdir)
    (workdir / "home").mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDPULSE_")}
    env.update(GRIDPULSE_STORE=str(store), GRIDPULSE_OFFLINE="1", GRIDPULSE_BASEMAP="none",
               HOME=str(workdir / "home"), PYTHONPATH=str(tree), PYTHONUNBUFFERED="1",
               **env_extra)
    sys.path.insert(0, str(tree))
    try:
        from gridpulse.commands.serve import streamlit_command
    finally:
        sys.path.remove(str(tree))
    log = workdir / "streamlit.log"
    started = None
    for _ in range(3):
        port = free_port()
        cmd = streamlit_command(port=port, address="127.0.0.1", app=tree / "dashboard" / "app.py")
        started = _start(cmd, env, tree, log, port, timeout_s)
        if started is not None:
            break
    if started is None:
        raise RuntimeError(f"no free port after three tries; see {log}")
    proc, start_s = started
    try:
        yield Server(f"http://127.0.0.1:{port}", port=port, proc=proc, log=log, start_s=start_s)
    finally:
        stop_group(proc)
