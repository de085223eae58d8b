"""``gridpulse simulate``: replay a realistic day of the store's district through the intake API.

    gridpulse simulate [--api http://127.0.0.1:8502] [--store URL] [--speed 1] [--hours 24]
                       [--seed N]

See :mod:`gridpulse.simulate`. ``gridpulse serve --simulate`` starts it next to the dashboard.
"""

from __future__ import annotations

import argparse
import sys

from layers.i18n import default_lang, t


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``simulate`` to the CLI."""
    lang = default_lang()
    p = sub.add_parser("simulate", help=t("api.help_simulate", lang),
                       description=t("api.help_simulate", lang))
    p.add_argument("--api", default="http://127.0.0.1:8502", help="intake API base URL")
    p.add_argument("--store", default=None, help=t("cli.help_store", lang))
    p.add_argument("--speed", type=float, default=1.0, help=t("api.help_speed", lang))
    p.add_argument("--hours", type=float, default=24.0, help=t("api.help_hours", lang))
    p.add_argument("--seed", type=int, default=None, help=t("demo.help_seed", lang))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Handler of ``gridpulse simulate``."""
    import time

    import numpy as np

    from gridpulse import simulate
    from layers.config import settings
    from layers.store import open_store

    url = args.store or settings().store_url
    with open_store(url) as store:
        plan = simulate.plan_from_store(store)
    last = [0.0]

    def report(stats: simulate.Stats) -> None:
        if time.monotonic() - last[0] >= 10:
            last[0] = time.monotonic()
            print(t("api.sim_status", args.lang, cases=stats.cases, fixes=stats.fixes,
                    actions=stats.actions), file=sys.stderr)

    try:
        stats = simulate.run(args.api, plan, speed=args.speed, hours=args.hours,
                             rng=np.random.default_rng(args.seed), report=report)
    except KeyboardInterrupt:
        return 0
    print(t("api.sim_status", args.lang, cases=stats.cases, fixes=stats.fixes,
            actions=stats.actions))
    return 0
