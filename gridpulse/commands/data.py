"""Data commands: ``validate``, ``import``, ``export`` and ``info``.

* ``gridpulse validate LAYER FILE [--datum D]``: exit 0 when the file has no error, 1 with the
  report (in ``--lang``) when it has.
* ``gridpulse import LAYER FILE [--datum D] [--append] [--store URL]``: validate against the
  store and write only when clean; a failed import leaves the store unchanged (exit 1).
* ``gridpulse export LAYER FILE [--unmask]``: personal fields masked unless ``--unmask``
  (which is recorded in the audit log); the format comes from the suffix.
* ``gridpulse info``: the store, its layers with row counts, and the latest audit entries.

The store is ``--store`` or ``GRIDPULSE_STORE`` (:func:`layers.config.settings`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from layers.config import settings
from layers.errors import GridPulseError, StoreError
from layers.i18n import default_lang, t
from layers.schema import SCHEMAS

if TYPE_CHECKING:  # the store imports pandas: only the handlers that open it import it
    from layers.store import Store

DATUMS = ("wgs84", "gcj02", "bd09")
#: Issues shown before the report is cut (the rest is counted).
REPORT_LIMIT = 200


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``validate``, ``import``, ``export`` and ``info``."""
    lang = default_lang()

    def h(key: str) -> str:
        return t(f"cli.{key}", lang)

    def common(p: argparse.ArgumentParser, *, file: bool = True) -> None:
        p.add_argument("layer", metavar="LAYER", help=h("help_layer"))
        if file:
            p.add_argument("file", metavar="FILE", type=Path, help=h("help_file"))
        p.add_argument("--store", default=None, help=h("help_store"))

    p = subparsers.add_parser("validate", help=h("help_validate"), description=h("help_validate"))
    common(p)
    p.add_argument("--datum", choices=DATUMS, default="wgs84", help=h("help_datum"))
    p.add_argument("--encoding", default=None, help=h("help_encoding"))
    p.add_argument("--sheet", default=None, help=h("help_sheet"))
    p.set_defaults(func=cmd_validate)

    p = subparsers.add_parser("import", help=h("help_import"), description=h("help_import"))
    common(p)
    p.add_argument("--datum", choices=DATUMS, default="wgs84", help=h("help_datum"))
    how = p.add_mutually_exclusive_group()
    how.add_argument("--append", action="store_true", help=h("help_append"))
    how.add_argument("--replace", action="store_true", help=t("cas.help_replace", lang))
    p.add_argument("--orphans", choices=("refuse", "keep", "delete"), default="refuse",
                   help=t("cas.help_orphans", lang))
    p.add_argument("--encoding", default=None, help=h("help_encoding"))
    p.add_argument("--sheet", default=None, help=h("help_sheet"))
    p.add_argument("--as", "--actor", dest="as_account", default=None, metavar="ACCOUNT",
                   help=t("auth.cli.help_as", lang))
    p.set_defaults(func=cmd_import)

    p = subparsers.add_parser("export", help=h("help_export"), description=h("help_export"))
    common(p)
    p.add_argument("--unmask", action="store_true", help=h("help_unmask"))
    p.add_argument("--encoding", default="utf-8", help=h("help_encoding"))
    p.add_argument("--as", "--actor", dest="as_account", default=None, metavar="ACCOUNT",
                   help=t("auth.cli.help_as", lang))
    p.set_defaults(func=cmd_export)

    p = subparsers.add_parser("info", help=h("help_info"), description=h("help_info"))
    p.add_argument("--store", default=None, help=h("help_store"))
    p.set_defaults(func=cmd_info)


def _store_url(args: argparse.Namespace) -> str:
    return args.store or settings().store_url


def _existing_store(args: argparse.Namespace) -> Store | None:
    """The store when it exists (``validate`` must not create an empty GeoPackage)."""
    from layers.store import open_store

    url = _store_url(args)
    if not url.startswith(("postgresql://", "postgres://")) and not Path(url).expanduser().exists():
        return None
    return open_store(url)


def _known_layer(args: argparse.Namespace) -> bool:
    if args.layer in SCHEMAS:
        return True
    print(t("cli.unknown_layer", args.lang, layer=args.layer, known=", ".join(SCHEMAS)),
          file=sys.stderr)
    return False


def _fail(err: BaseException, lang: str | None) -> int:
    from layers.errors import error_text

    print(t("cli.failed", lang, error=error_text(err, lang)), file=sys.stderr)
    return 1


def cmd_validate(args: argparse.Namespace) -> int:
    """``gridpulse validate``: 0 when clean, 1 with the report otherwise."""
    from layers.ingest import check_file

    lang = args.lang
    if not _known_layer(args):
        return 2
    try:
        store = _existing_store(args)
        try:
            res = check_file(args.file, args.layer, datum=args.datum, store=store, lang=lang,
                             encoding=args.encoding, sheet=args.sheet)
        finally:
            if store is not None:
                store.close()
    except GridPulseError as exc:
        return _fail(exc, lang)
    if len(res.report):
        print(res.report.render(lang, limit=REPORT_LIMIT))
    if res.ok:
        rows = len(res.data) if res.data is not None else 0
        print(t("cli.valid", lang, file=res.source, layer=args.layer, rows=rows))
        return 0
    c = res.report.counts()
    print(t("cli.invalid", lang, file=res.source, errors=c["error"], warnings=c["warning"]))
    return 1


def cmd_import(args: argparse.Namespace) -> int:
    """``gridpulse import``: 0 when written, 1 (store unchanged) otherwise."""
    from layers.app import cli_account
    from layers.ingest import import_file
    from layers.permissions import require
    from layers.store import open_store

    lang = args.lang
    if not _known_layer(args):
        return 2
    try:
        with open_store(_store_url(args)) as store:
            account = cli_account(store, args.as_account)  # --as ACCOUNT, else the OS user
            if args.as_account:
                require(account, "import", layer=args.layer)
            report = import_file(store, args.layer, args.file, datum=args.datum,
                                 actor=account.username, lang=lang, encoding=args.encoding,
                                 sheet=args.sheet,
                                 mode="append" if args.append else
                                 "replace" if args.replace else None,
                                 on_orphans=args.orphans)
    except GridPulseError as exc:
        return _fail(exc, lang)
    print(report.render(lang, limit=REPORT_LIMIT))
    if report.ok:
        return 0
    c = report.counts()
    print(t("cli.invalid", lang, file=args.file.name, errors=c["error"], warnings=c["warning"]))
    print(t("cli.import_failed", lang))
    return 1


def cmd_export(args: argparse.Namespace) -> int:
    """``gridpulse export``: masked personal fields unless ``--unmask``."""
    from layers.app import cli_account
    from layers.io import write_file
    from layers.permissions import filter_frame, require
    from layers.privacy import mask_personal, personal_columns
    from layers.store import open_store

    lang = args.lang
    if not _known_layer(args):
        return 2
    try:
        with open_store(_store_url(args)) as store:
            if not store.has_layer(args.layer):
                print(t("cli.no_layer", lang, layer=args.layer), file=sys.stderr)
                print(f"    {t('common.fix', lang)}: {t('cli.no_layer.fix', lang, layer=args.layer)}",
                      file=sys.stderr)
                return 1
            account = cli_account(store, args.as_account)  # --as ACCOUNT, else the OS user
            if args.as_account:
                require(account, "export")
                if args.unmask:
                    require(account, "unmask")
            df = store.read(args.layer)
            if args.as_account:
                df = filter_frame(account, df, args.layer)
            personal = [c for c in personal_columns(args.layer) if c in df.columns]
            if not args.unmask:
                df = mask_personal(df, args.layer)
            path = write_file(df, args.file, layer=args.layer, encoding=args.encoding)
            if args.unmask and personal:
                store.record("export_unmasked", args.layer, rows=len(df), actor=account.username,
                             note=str(path))
    except (GridPulseError, ValueError) as exc:
        return _fail(exc, lang)
    print(t("cli.exported", lang, layer=args.layer, rows=len(df), file=path))
    if personal:
        print(t("cli.unmasked_note" if args.unmask else "cli.masked_note", lang))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """``gridpulse info``: store URL, layers with row counts, latest audit entries."""
    from layers.store_info import gpkg_summary

    lang = args.lang
    url = _store_url(args)
    summary = gpkg_summary(url, limit=10)  # sqlite3 only: no pandas for an existing GeoPackage
    if summary is None:
        from layers.store import open_store
        from layers.store_info import AuditEntry, StoreSummary

        try:
            with open_store(url) as store:
                layers = tuple((name, store.count(name)) for name in store.layer_names())
                log = store.audit_log(limit=10)
                summary = StoreSummary(store.url, layers, tuple(
                    AuditEntry(r.time.to_pydatetime(), r.actor, r.action, r.layer, int(r.rows), r.note)
                    for r in log.itertuples(index=False)))
        except StoreError as exc:
            return _fail(exc, lang)
    print(f"{t('cli.store', lang)}: {summary.url}")
    print(f"{t('cli.layers', lang)}:")
    if not summary.layers:
        print(f"  {t('cli.no_layers', lang)}")
    for name, rows in summary.layers:
        s = SCHEMAS[name]
        title = s.title_zh if (lang or default_lang()) == "zh" else s.title_en
        print(f"  {name:<16} {title:<12} {rows:>10,} {t('cli.rows', lang)}")
    if summary.recent:
        print(f"{t('cli.recent', lang)}:")
        for r in summary.recent:
            note = f"  {r.note}" if r.note else ""
            print(f"  {r.time:%Y-%m-%d %H:%M:%S}  {r.actor:<10} {r.action:<14} {r.layer:<16} "
                  f"{r.rows:>8}{note}")
    return 0
