"""``gridpulse demo``: generate the synthetic demo district and write it into the store.

    gridpulse demo [--preset small|medium|full] [--seed N] [--store URL] [--force]

Progress goes to stderr, the row count of every layer and the time to stdout. A store that
already holds data that is not the demo is left alone unless ``--force`` is given. The event
log is append-only, so a GeoPackage that already holds the demo is regenerated as a new file
that then replaces it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from layers.config import settings
from layers.errors import GridPulseError
from layers.i18n import default_lang, t

#: The presets of :data:`data.demo.PRESETS`, spelled out so that building the parser does not
#: import the generator (numpy, pandas, geopandas); a test keeps the two equal.
PRESETS: tuple[str, ...] = ("small", "medium", "full")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``demo`` to the CLI."""
    lang = default_lang()
    p = subparsers.add_parser("demo", help=t("demo.help", lang), description=t("demo.help", lang))
    p.add_argument("--preset", choices=PRESETS, default=None, help=t("demo.help_preset", lang))
    p.add_argument("--seed", type=int, default=0, help=t("demo.help_seed", lang))
    p.add_argument("--store", default=None, help=t("demo.help_store", lang))
    p.add_argument("--force", action="store_true", help=t("demo.help_force", lang))
    p.add_argument("--live", action="store_true", help=t("api.help_live_demo", lang))
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    """Generate and store the demo district; exit 0 on success, 1 otherwise."""
    from data.demo import is_demo, load_into
    from gridpulse.commands.serve import warm_summaries
    from layers.store import open_store

    lang = getattr(args, "lang", None)
    cfg = settings()
    preset = args.preset or cfg.demo_preset
    url = args.store or cfg.store_url
    if args.seed < 0:
        print(t("demo.failed", lang, error=f"--seed {args.seed} < 0"), file=sys.stderr)
        return 2
    t0 = time.perf_counter()

    def progress(stage: str, fraction: float) -> None:
        label = t(f"demo.stage.{stage}", lang)
        print(f"[{time.perf_counter() - t0:6.1f}s] {label} {fraction * 100:3.0f}%",
              file=sys.stderr, flush=True)

    try:
        with open_store(url) as store:
            names = store.layer_names()
            demo_already = bool(names) and is_demo(store)
            if names and not demo_already and not args.force:
                print(t("demo.not_demo", lang, store=url), file=sys.stderr)
                print(t("demo.not_demo.fix", lang), file=sys.stderr)
                return 1
            path = getattr(store, "path", None)
            # the event log is append-only: a demo GeoPackage is regenerated as a new file
            swap = demo_already and path is not None and store.count("incident_events") > 0
            print(t("demo.started", lang, preset=preset, seed=args.seed, store=url), file=sys.stderr)
            if not swap:
                counts = load_into(store, preset, seed=args.seed, progress=progress,
                                   anchor="now" if getattr(args, "live", False) else None)
                warm_summaries(store)  # not left to the first page that reads patrol figures
        if swap:
            target = Path(path)
            fresh = target.with_name(f".{target.name}.demo-{os.getpid()}.gpkg")
            try:
                with open_store(str(fresh)) as new_store:
                    counts = load_into(new_store, preset, seed=args.seed, progress=progress,
                                       anchor="now" if getattr(args, "live", False) else None)
                    warm_summaries(new_store)
                os.replace(fresh, target)
            finally:
                fresh.unlink(missing_ok=True)
    except (GridPulseError, OSError) as exc:
        print(t("demo.failed", lang, error=str(exc)), file=sys.stderr)
        return 1
    seconds = f"{time.perf_counter() - t0:.1f}"
    print(t("demo.done", lang, store=url, preset=preset, seed=args.seed, seconds=seconds))
    for layer, rows in counts.items():
        print(t("demo.rows", lang, layer=layer, rows=rows))
    return 0
