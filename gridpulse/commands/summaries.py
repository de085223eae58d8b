"""``gridpulse summaries rebuild``: rebuild the summary tables kept at write time.

Every write and case action keeps the summaries (:mod:`layers.summaries`) up to date in its
own transaction, and a read that finds one missing or stale rebuilds it once; this command
does it on purpose, e.g. right after upgrading a store written before summaries existed, so
the first page visit does not pay for it. Exit 0, or 1 when the store cannot be used.
"""

from __future__ import annotations

import argparse
import sys
import time

from layers.i18n import default_lang, t


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``summaries rebuild``."""
    lang = default_lang()
    p = subparsers.add_parser("summaries", help=t("summaries.cli.help", lang),
                              description=t("summaries.cli.help", lang))
    sub = p.add_subparsers(dest="summaries_command", metavar="ACTION", required=True)
    r = sub.add_parser("rebuild", help=t("summaries.cli.rebuild_help", lang),
                       description=t("summaries.cli.rebuild_help", lang))
    r.add_argument("--store", default=None, help=t("cli.help_store", lang))
    r.add_argument("--only", choices=("patrol", "incidents"), default=None,
                   help=t("summaries.cli.help_only", lang))
    r.set_defaults(func=cmd_rebuild)


def cmd_rebuild(args: argparse.Namespace) -> int:
    """Rebuild the summaries; print each table's rows."""
    from layers import summaries
    from layers._store_common import error_text
    from layers.config import settings
    from layers.errors import GridPulseError
    from layers.store import open_store

    lang = args.lang
    names = [args.only] if args.only else list(summaries.SUMMARIES)
    t0 = time.perf_counter()
    try:
        with open_store(args.store or settings().store_url) as store:
            rows = summaries.rebuild(store, names)
    except GridPulseError as exc:
        print(t("summaries.cli.failed", lang, detail=error_text(exc, lang)), file=sys.stderr)
        print(f"    {t('common.fix', lang)}: {t('summaries.cli.failed.fix', lang)}", file=sys.stderr)
        return 1
    for table, n in rows.items():
        print(t("summaries.cli.rebuilt", lang, table=table, rows=n))
    print(t("summaries.cli.took", lang, seconds=f"{time.perf_counter() - t0:.1f}"))
    return 0
