"""``gridpulse backup DEST [--store URL]``: a consistent copy of the store while it runs.

GeoPackage: SQLite's online backup API (never a torn copy); PostGIS: ``pg_dump`` of the
store's schema. See ``docs/backup.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from layers.config import settings
from layers.errors import GridPulseError
from layers.i18n import default_lang, t


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``backup``."""
    lang = default_lang()
    p = subparsers.add_parser("backup", help=t("cas.backup.help", lang),
                              description=t("cas.backup.help", lang))
    p.add_argument("dest", metavar="DEST", type=Path, help=t("cas.backup.help_dest", lang))
    p.add_argument("--store", default=None, help=t("cas.backup.help_store", lang))
    p.set_defaults(func=cmd_backup)


def cmd_backup(args: argparse.Namespace) -> int:
    """Exit 0 with the backup written, 1 (nothing at DEST) when it failed."""
    from layers.backup import backup_store

    lang = getattr(args, "lang", None)
    url = args.store or settings().store_url
    try:
        out = backup_store(url, args.dest)
    except (GridPulseError, OSError) as exc:
        print(t("cas.backup.failed", lang, error=str(exc)), file=sys.stderr)
        return 1
    print(t("cas.backup.done", lang, dest=str(out), size=f"{out.stat().st_size / 1e6:.1f}"))
    return 0
