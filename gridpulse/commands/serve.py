"""``gridpulse serve``: fill an empty store with the demo district, then serve the dashboard.

    gridpulse serve [--port 8501] [--address 127.0.0.1] [--store URL] [--preset full|medium|small]
                    [--no-demo]

Underneath it is ``streamlit run dashboard/app.py`` with headless mode, the port, no usage
statistics, and static file serving on (the local Leaflet assets for offline mode). It listens
on 127.0.0.1 (this machine only) unless ``--address`` says otherwise. On a store holding the
demo district it creates one account per role and prints their passwords once.

An empty store is filled in two steps (:func:`start_demo`), so the first map shows within
seconds rather than after the minute and a half the whole full-size district takes: first
the district's world (boundaries, grids, buildings, facilities, roads, workers: a few seconds),
then the dashboard starts while the history (a year of incidents and their events, millions
of GPS fixes) is generated and written in the background (:meth:`DemoFill.finish`). Meanwhile
every page says the demo is being generated and reruns itself when the history is in; the
intake API starts after it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from layers.i18n import catalogue, default_lang, t

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
#: Where the dashboard listens unless ``--address`` is given: this machine only.
DEFAULT_ADDRESS = "127.0.0.1"
PRESETS: tuple[str, ...] = ("small", "medium", "full")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``serve`` to the CLI."""
    lang = default_lang()

    def hp(key: str) -> str:
        return t(f"dashboard.serve.help_{key}", lang)

    p = sub.add_parser("serve", help=hp("serve"), description=hp("serve"))
    p.add_argument("--port", type=int, default=8501, help=hp("port"))
    p.add_argument("--store", default=None, help=t("cli.help_store", lang))
    p.add_argument("--preset", choices=PRESETS, default=None, help=hp("preset"))
    p.add_argument("--address", default=None, help=hp("address"))
    p.add_argument("--no-demo", action="store_true", help=hp("no_demo"))
    p.add_argument("--api-port", type=int, default=8502, help=t("api.help_api_port", lang))
    p.add_argument("--no-api", action="store_true", help=t("api.help_no_api", lang))
    p.add_argument("--api-workers", type=int, default=1, help=t("throughput.help_workers", lang))
    p.add_argument("--simulate", action="store_true", help=t("api.help_sim_flag", lang))
    p.add_argument("--speed", type=float, default=1.0, help=t("api.help_speed", lang))
    p.set_defaults(func=run)


def streamlit_command(*, port: int, address: str | None = DEFAULT_ADDRESS, app: Path = APP,
                      max_upload_mb: int | None = None) -> list[str]:
    """The ``streamlit run`` command line ``serve`` executes (``address=None``: every interface).

    Uploads are capped at ``max_upload_mb`` (default ``GRIDPULSE_MAX_UPLOAD_MB``), the same
    limit :func:`layers.io.read_file` applies.
    """
    if max_upload_mb is None:
        from layers.config import settings

        max_upload_mb = settings().max_upload_mb
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.headless", "true",
        "--server.port", str(port),
        "--server.enableStaticServing", "true",
        "--server.maxUploadSize", str(max_upload_mb),
        "--browser.gatherUsageStats", "false",
        "--browser.serverAddress", "localhost",
        "--client.toolbarMode", "minimal",
        "--client.showErrorDetails", "false",
        "--theme.base", "light",
    ]
    if address:
        cmd += ["--server.address", address]
    return cmd


class ProgressBar:
    """A one-line terminal progress bar; accepts the demo generator's progress calls.

    Called as ``bar(fraction)``, ``bar(fraction, message)``, ``bar(done, total)`` or
    ``bar(done, total, message)``.
    """

    def __init__(self, stream: Any = None, width: int = 30) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.last = ""

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        frac, msg = _fraction(args, kwargs)
        filled = int(round(frac * self.width))
        line = f"\r[{'#' * filled}{'.' * (self.width - filled)}] {frac * 100:5.1f}% {msg}"[:120]
        if line != self.last:
            self.stream.write(line.ljust(len(self.last)))
            self.stream.flush()
            self.last = line

    def close(self) -> None:
        if self.last:
            self.stream.write("\n")
            self.stream.flush()


def _fraction(args: Sequence[Any], kwargs: dict[str, Any]) -> tuple[float, str]:
    nums = [a for a in args if isinstance(a, int | float) and not isinstance(a, bool)]
    texts = [str(a) for a in args if isinstance(a, str)]
    msg = str(kwargs.get("message") or kwargs.get("step") or kwargs.get("label") or " ".join(texts))
    if "fraction" in kwargs:
        frac = float(kwargs["fraction"])
    elif "done" in kwargs and "total" in kwargs:
        frac = float(kwargs["done"]) / max(float(kwargs["total"]), 1.0)
    elif len(nums) >= 2:
        frac = float(nums[0]) / max(float(nums[1]), 1.0)
    elif nums:
        frac = float(nums[0])
    else:
        frac = 0.0
    return min(max(frac, 0.0), 1.0), msg


def store_is_empty(store: Any) -> bool:
    """True when the store holds no grids."""
    return "grids" not in store.layer_names() or store.count("grids") == 0


def needs_demo(store: Any) -> bool:
    """True when the store holds no grids, or a demo whose history was never finished
    (a ``serve`` stopped while it wrote it: :func:`data.demo.is_filling`)."""
    if store_is_empty(store):
        return True
    from data.demo import is_filling

    return bool(is_filling(store))


def stage_name(stage: str, lang: str | None) -> str:
    """The demo generator's stage (``streets``, ``buildings``, …) in words, from the catalogue.

    >>> stage_name("buildings", "zh"), stage_name("buildings", "en")
    ('生成楼栋', 'buildings')
    """
    return t(f"ux.stage.{stage}", lang) if f"ux.stage.{stage}" in catalogue() else stage


def ensure_demo(url: str, *, preset: str, lang: str | None,
                progress: Callable[..., None] | None = None, out: Any = None,
                anchor: str | None = None) -> bool:
    """Load the demo district into the store at ``url`` if it is empty; True when loaded.

    ``anchor="now"`` ends its history at the moment it is loaded (a live demo, what ``serve``
    does); ``None`` keeps the fixed, reproducible anchor (tests).
    """
    from layers.store import open_store

    out = out or sys.stderr
    print(t("dashboard.serve.opening", lang, store=url), file=out)
    store = open_store(url)
    try:
        if not store_is_empty(store):
            print(t("dashboard.serve.has_data", lang), file=out)
            return False
        from data.demo import STAGES, load_into

        print(t("dashboard.serve.empty", lang, preset=preset), file=out)
        bar = ProgressBar(out) if progress is None else None
        report = progress or bar

        def overall(stage: str, fraction: float) -> None:
            """The generator reports each stage from 0 to 1; the bar shows the whole run."""
            i = STAGES.index(stage) if stage in STAGES else 0
            report((i + min(max(fraction, 0.0), 1.0)) / len(STAGES), stage_name(stage, lang))

        t0 = time.perf_counter()
        try:
            load_into(store, preset, progress=overall, anchor=anchor)
        finally:
            if bar is not None:
                bar.close()
        warm_summaries(store)
        print(t("dashboard.serve.loaded", lang, seconds=f"{time.perf_counter() - t0:.0f}"), file=out)
        return True
    finally:
        store.close()


def warm_summaries(store: Any) -> float:
    """Build the summaries a demo write leaves to the first read; seconds taken.

    Writing the demo's GPS fixes (a replace) only marks the patrol summary unbuilt
    (:func:`layers.summaries.after_write`): the first page that reads it (the wall's compliance
    tile, the patrol page) would pay the rebuild, ~10 s and ~1.5 GB of the dashboard's memory
    on the full district. Run right after the write, in the writing process, it costs the
    dashboard nothing. The incident summaries are built inside the write itself.
    """
    from layers import summaries

    t0 = time.perf_counter()
    if store.has_layer("patrol_points"):
        summaries.patrol_days(store)  # rebuilds once when unbuilt, settles dirty marks
    return time.perf_counter() - t0


@dataclass
class DemoFill:
    """The second step of :func:`start_demo`: generate the whole demo and write it.

    ``finish()`` writes every layer in one transaction that replaces the partial demo (on a
    GeoPackage a new file renamed over the store, so the dashboard reads the old file or the
    new one, never a mix). If someone changed the store's data meanwhile (an import, a saved
    plan), only the history layers are written, so nothing they did is lost.
    """

    url: str
    preset: str
    seed: int
    anchor: Any
    lang: str | None
    out: Any
    started: float = field(default_factory=time.perf_counter)
    #: Set when ``finish`` has returned (written, or failed: see ``error``).
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None

    def finish(self) -> bool:
        """Generate and write the whole demo; True when written. Prints what happened."""
        from data.demo import DEMO_ACTOR, DEMO_NOTE, HISTORY_LAYERS, generate
        from layers.store import open_store

        try:
            t0 = time.perf_counter()
            layers = generate(self.preset, seed=self.seed, anchor=self.anchor)
            gen_s = time.perf_counter() - t0
            note = (f"{DEMO_NOTE} preset={self.preset} seed={self.seed} generated_s={gen_s:.1f}"
                    f" anchor={self.anchor.isoformat()} (synthetic demo data)")
            with open_store(self.url) as store:
                if changed_since_fill(store):
                    store.write({k: layers[k] for k in HISTORY_LAYERS}, mode="replace",
                                actor=DEMO_ACTOR, note=note)
                else:
                    store.write(layers, mode="replace", actor=DEMO_ACTOR, note=note, reset=True)
            del layers
            print(t("startup.serve.filled", self.lang,
                    seconds=f"{time.perf_counter() - self.started:.0f}"), file=self.out, flush=True)
            return True
        except Exception as e:  # noqa: BLE001 - reported; the store keeps the partial demo
            self.error = e
            print(t("startup.serve.fill_failed", self.lang, error=e), file=self.out)
            print(t("startup.serve.fill_failed.fix", self.lang), file=self.out, flush=True)
            return False
        finally:
            self.done.set()

    def warm(self) -> bool:
        """After :meth:`finish`: build the patrol summary now, in this process (not in the
        dashboard's, at its first patrol read: :func:`warm_summaries`). True when done."""
        from layers.store import open_store

        try:
            with open_store(self.url) as store:
                seconds = warm_summaries(store)
        except Exception as e:  # noqa: BLE001 - reported; the first read rebuilds it then
            print(t("pages.serve.warm_failed", self.lang, error=e), file=self.out)
            print(t("pages.serve.warm_failed.fix", self.lang), file=self.out, flush=True)
            return False
        print(t("pages.serve.warmed", self.lang, seconds=f"{seconds:.0f}"), file=self.out, flush=True)
        return True


def changed_since_fill(store: Any) -> bool:
    """True when a data write by someone other than the demo followed its first write."""
    from data.demo import DEMO_ACTOR, FILLING_MARK
    from layers.app import is_data_action

    log = store.audit_log()
    for _, row in log.iterrows():  # newest first, down to the partial write
        if FILLING_MARK in str(row["note"]).split():
            return False
        if is_data_action(str(row["action"])) and str(row["actor"]) != DEMO_ACTOR:
            return True
    return False


def start_demo(url: str, *, preset: str, lang: str | None, seed: int = 0,
               anchor: str | None = "now", out: Any = None) -> DemoFill | None:
    """First step of loading the demo into an empty store: write its world (every layer but
    the history, :data:`data.demo.HISTORY_LAYERS`) and return the :class:`DemoFill` that
    writes the rest; ``None`` when the store already holds data.

    The world takes seconds at any size; it is written as the demo (so accounts, the demo
    label and the live clock work at once) with :data:`data.demo.FILLING_MARK` in its audit
    note, which makes every page say that the demo is being generated.
    """
    import pandas as pd

    from data.demo import DEMO_ACTOR, DEMO_NOTE, FILLING_MARK, generate_world, is_demo
    from layers.store import open_store

    out = out or sys.stderr
    print(t("dashboard.serve.opening", lang, store=url), file=out)
    store = open_store(url)
    try:
        if not needs_demo(store):
            print(t("dashboard.serve.has_data", lang), file=out)
            return None
        print(t("dashboard.serve.empty", lang, preset=preset), file=out)
        stamp = (pd.Timestamp.now(tz="Asia/Shanghai").tz_localize(None).floor("s")
                 if anchor == "now" else pd.Timestamp(anchor or "2026-11-20 16:00"))
        fill = DemoFill(url=url, preset=preset, seed=seed, anchor=stamp, lang=lang, out=out)
        bar = ProgressBar(out)
        try:
            world = generate_world(preset, seed=seed,
                                   progress=lambda stage, f: bar(f, stage_name(stage, lang)))
        finally:
            bar.close()
        note = (f"{DEMO_NOTE} preset={preset} seed={seed} anchor={stamp.isoformat()} "
                f"{FILLING_MARK} (synthetic demo data)")
        store.write(world, mode="replace", actor=DEMO_ACTOR, note=note, reset=is_demo(store))
        print(t("startup.serve.world", lang, seconds=f"{time.perf_counter() - fill.started:.0f}"),
              file=out, flush=True)
        return fill
    finally:
        store.close()


def demo_accounts(url: str, *, lang: str | None, port: int, out: Any = None) -> dict[str, Any]:
    """On a demo store: create one account per role and print the passwords (once).

    Accounts that exist are left alone (their passwords are not shown again). On a store that
    is not the demo and has no account yet, say how to create the first administrator.
    Returns what was created (``{role: (username, password or kiosk token)}``).
    """
    from layers import accounts
    from layers.permissions import role_label
    from layers.store import open_store

    out = out or sys.stderr
    store = open_store(url)
    try:
        try:
            from data.demo import is_demo
        except ImportError:  # pragma: no cover - the demo package is optional
            demo = False
        else:
            demo = bool(is_demo(store))
        if not demo:
            if not accounts.has_accounts(store):
                print(t("auth.cli.no_accounts", lang), file=out)
            return {}
        made = accounts.create_demo_accounts(store, actor="serve")
    finally:
        store.close()
    if made:
        print(t("auth.cli.demo_accounts", lang), file=out)
        for role, (user, secret) in made.items():
            if role == "kiosk":
                print(t("auth.cli.demo_kiosk", lang,
                        url=f"http://localhost:{port}/wall?kiosk={secret}"), file=out)
            else:
                print(f"  {user:<12} {secret:<14} {role_label(role, lang)}", file=out)
    return made


def run(args: argparse.Namespace) -> int:
    """Handler of ``gridpulse serve``."""
    from layers.config import settings

    lang = args.lang
    env = dict(os.environ)
    if args.store:
        env["GRIDPULSE_STORE"] = args.store
    s = settings() if not args.store else settings().__class__.from_env(env)
    url = s.store_url
    env["GRIDPULSE_STORE"] = url
    if url and not url.startswith(("postgresql://", "postgres://")):
        Path(url).expanduser().parent.mkdir(parents=True, exist_ok=True)
    fill: DemoFill | None = None
    if not args.no_demo:
        try:
            fill = start_demo(url, preset=args.preset or s.demo_preset, lang=lang, anchor="now")
        except ImportError as e:
            print(t("dashboard.serve.no_demo", lang, error=e), file=sys.stderr)
            print(t("dashboard.serve.no_demo.fix", lang), file=sys.stderr)
            return 1
    demo_accounts(url, lang=lang, port=args.port)
    if lang:
        env["GRIDPULSE_LANG"] = lang
    print(t("dashboard.serve.url", lang, port=args.port), file=sys.stderr)
    cmd = streamlit_command(port=args.port, address=args.address or DEFAULT_ADDRESS)
    sys.stdout.flush()
    sys.stderr.flush()
    if fill is not None or not getattr(args, "no_api", True):
        return run_with_api(cmd, env, args, lang, fill=fill)
    if os.name == "posix":  # become streamlit: signals (Ctrl-C, SIGTERM) reach it directly
        os.execve(cmd[0], cmd, env)
    try:  # pragma: no cover - Windows
        return subprocess.call(cmd, env=env)
    except KeyboardInterrupt:  # pragma: no cover
        return 0


def run_with_api(cmd: list[str], env: dict[str, str], args: argparse.Namespace,
                 lang: str | None, *, fill: DemoFill | None = None) -> int:
    """Run the dashboard and the intake API (and, with ``--simulate``, the live simulation)
    as child processes; stop them all when the dashboard ends or on Ctrl-C / SIGTERM.

    With ``fill`` (the demo's history still to write, :func:`start_demo`) the dashboard starts
    at once, the history is written in a background thread of this process, and the API and
    the simulation start once it is in (so nothing they post is replaced by the demo).
    """
    import signal

    procs = [subprocess.Popen(cmd, env=env)]
    lock = threading.Lock()
    stopping = threading.Event()

    def start_api() -> None:
        if getattr(args, "no_api", True):
            return
        from gridpulse.api import uvicorn_command

        address = args.address or DEFAULT_ADDRESS
        with lock:
            if stopping.is_set():
                return
            print(t("api.api_url", lang, address=address, port=args.api_port), file=sys.stderr)
            workers = max(1, int(getattr(args, "api_workers", 1) or 1))
            procs.append(subprocess.Popen(uvicorn_command(port=args.api_port, address=address,
                                                          workers=workers), env=env))
            if getattr(args, "simulate", False):
                sim = [sys.executable, "-m", "gridpulse", "simulate", "--api",
                       f"http://127.0.0.1:{args.api_port}", "--speed", str(args.speed)]
                procs.append(subprocess.Popen(sim, env=env))

    if fill is None:
        start_api()
    else:
        def background() -> None:
            if fill.finish():
                start_api()
                fill.warm()

        threading.Thread(target=background, name="gridpulse-demo-fill", daemon=True).start()

    def stop(*_: Any) -> None:
        with lock:
            stopping.set()
            for p in procs:
                if p.poll() is None:
                    p.terminate()

    signal.signal(signal.SIGTERM, stop)
    try:
        while procs[0].poll() is None:  # the dashboard decides; a failed API is reported
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
    return int(procs[0].returncode or 0)
