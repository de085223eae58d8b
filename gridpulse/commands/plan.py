"""``gridpulse plan``: whole-plan versions (grids, buildings' grids, workers' grids) with dates.

    gridpulse plan versions                      the versions, their effective dates and violations
    gridpulse plan show [--at DATE]              the plan in force on a date (default today)
    gridpulse plan save --grids FILE [--effective DATE] [--confirm] --note WHY
                                                 record a plan from a grids file (e.g. history)
    gridpulse plan rollback VERSION [--effective DATE] [--confirm] --note WHY
    gridpulse plan activate                      write a version whose date has come into the layers

Thin callers of :mod:`layers.plans`; ``--as ACCOUNT`` acts as that account (else the
operating-system user, see :func:`layers.app.cli_account`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from layers.i18n import default_lang, t

_M = "versions.cli."


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``plan`` with its sub-commands."""
    lang = default_lang()

    def h(key: str) -> str:
        return t(_M + key, lang)

    p = subparsers.add_parser("plan", help=h("help"), description=h("help"))
    sub = p.add_subparsers(dest="plan_cmd", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--store", default=None, help=t("cli.help_store", lang))
        q.add_argument("--as", dest="as_account", default=None, metavar="ACCOUNT", help=h("as_account"))

    q = sub.add_parser("versions", help=h("versions"), description=h("versions"))
    common(q)
    q.set_defaults(func=cmd_versions)
    q = sub.add_parser("show", help=h("show"), description=h("show"))
    q.add_argument("--at", default=None, metavar="DATE", help=h("at"))
    common(q)
    q.set_defaults(func=cmd_show)
    q = sub.add_parser("save", help=t("versions.cli.save", lang), description=t("versions.cli.save", lang))
    q.add_argument("--grids", required=True, type=Path, metavar="FILE", help=t("versions.cli.grids", lang))
    q.add_argument("--effective", default=None, metavar="DATE", help=h("effective"))
    q.add_argument("--confirm", action="store_true", help=h("confirm"))
    q.add_argument("--note", required=True, help=h("note"))
    common(q)
    q.set_defaults(func=cmd_save)
    q = sub.add_parser("rollback", help=h("rollback"), description=h("rollback"))
    q.add_argument("version", type=int, metavar="VERSION")
    q.add_argument("--effective", default=None, metavar="DATE", help=h("effective"))
    q.add_argument("--confirm", action="store_true", help=h("confirm"))
    q.add_argument("--note", required=True, help=h("note"))
    common(q)
    q.set_defaults(func=cmd_rollback)
    q = sub.add_parser("activate", help=h("activate"), description=h("activate"))
    common(q)
    q.set_defaults(func=cmd_activate)


def _run(args: argparse.Namespace, body: Any) -> int:
    from layers.app import cli_account
    from layers.config import settings
    from layers.errors import GridPulseError
    from layers.plans import PlanError, UnconfirmedViolationsError
    from layers.store import open_store

    lang = getattr(args, "lang", None)
    try:
        with open_store(args.store or settings().store_url) as store:
            return int(body(store, cli_account(store, args.as_account), lang))
    except UnconfirmedViolationsError as exc:
        _violations(exc.violations, lang)
        _fail(exc.message(lang), lang, fix=t("versions.error.unconfirmed.fix", lang))
        return 1
    except PlanError as exc:
        fix = t(f"{exc.key}.fix", lang)
        _fail(exc.message(lang), lang, fix=None if fix == f"{exc.key}.fix" else fix)
        return 1
    except (GridPulseError, OSError) as exc:  # PermissionDenied, StoreError...
        msg = exc.message(lang) if hasattr(exc, "message") else str(exc)
        _fail(msg, lang)
        return 1


def _fail(message: str, lang: str | None, *, fix: str | None = None) -> None:
    print(t(_M + "failed", lang, error=message), file=sys.stderr)
    if fix:
        print(f"    {t('common.fix', lang)}: {fix}", file=sys.stderr)


def _violations(violations: list[dict[str, Any]], lang: str | None, *, limit: int = 20) -> None:
    from layers.plans import violation_text

    for v in violations[:limit]:
        sev = t(f"common.{v.get('severity', 'warning')}", lang)
        print(f"  [{sev}] {violation_text(v, lang)}", file=sys.stderr)
    if len(violations) > limit:
        print(f"  … +{len(violations) - limit}", file=sys.stderr)


def cmd_versions(args: argparse.Namespace) -> int:
    """List the plan versions (oldest first)."""
    from layers.plans import plan_versions, violations_summary

    def body(store: Any, account: Any, lang: str | None) -> int:
        vers = plan_versions(store)
        if vers.empty:
            print(t(_M + "none", lang))
            return 0
        for _, r in vers.iterrows():
            flags = [t(f"versions.status.{k}", lang) for k in ("in_force", "live") if r[k]]
            src = f" ← v{int(r['source_version'])}" if r["source_version"] is not None and str(
                r["source_version"]) not in ("nan", "<NA>") else ""
            viol = violations_summary(r["violations"], lang)
            print(f"v{int(r['version'])}\t{r['state']}\t{r['effective']:%Y-%m-%d}\t"
                  f"{r['saved']:%Y-%m-%d %H:%M}\t{r['actor']}{src}\t{r['note']}"
                  + (f"\t[{', '.join(flags)}]" if flags else "") + (f"\t{viol}" if viol else ""))
        return 0

    return _run(args, body)


def cmd_show(args: argparse.Namespace) -> int:
    """The plan in force on ``--at`` (default today): version, period, counts, violations."""
    from layers.plans import boundaries_at, effective_day, today_local

    def body(store: Any, account: Any, lang: str | None) -> int:
        day = effective_day(args.at) if args.at else today_local()
        b = boundaries_at(store, day)
        if b.version is None:
            print(t(_M + "live_only", lang, date=f"{day:%Y-%m-%d}", grids=len(b.grids)))
            return 0
        until = t(_M + "until", lang, date=f"{b.until:%Y-%m-%d}") if b.until is not None else ""
        print(t(_M + "in_force", lang, date=f"{day:%Y-%m-%d}", version=b.version,
                since=f"{b.effective:%Y-%m-%d}", until=until, grids=len(b.grids),
                buildings=len(b.buildings), workers=len(b.workers))
              + (t(_M + "before_first", lang) if b.before_first else ""))
        _violations(b.violations, lang)
        return 0

    return _run(args, body)


def cmd_save(args: argparse.Namespace) -> int:
    """Record the plan of a grids file (buildings and workers placed by location)."""
    from layers.ingest import check_file
    from layers.plans import effective_day, make_plan, save_plan, today_local

    def body(store: Any, account: Any, lang: str | None) -> int:
        checked = check_file(args.grids, "grids", lang=lang)
        if checked.data is None or not checked.report.ok:
            print(checked.report.render(lang, limit=20), file=sys.stderr)
            return 1
        plan = make_plan(store, checked.data)
        day = effective_day(args.effective) if args.effective else today_local()
        v = save_plan(store, account, plan, effective=day, note=args.note, confirm=args.confirm)
        print(t("versions.page.saved", lang, version=v, date=f"{day:%Y-%m-%d}"))
        return 0

    return _run(args, body)


def cmd_rollback(args: argparse.Namespace) -> int:
    """Save an old version again as a new one."""
    from layers.plans import effective_day, rollback_plan, today_local

    def body(store: Any, account: Any, lang: str | None) -> int:
        day = effective_day(args.effective) if args.effective else today_local()
        v = rollback_plan(store, account, args.version, effective=day, note=args.note,
                          confirm=args.confirm)
        print(t(_M + "rolled_back", lang, source=args.version, version=v, date=f"{day:%Y-%m-%d}"))
        return 0

    return _run(args, body)


def cmd_activate(args: argparse.Namespace) -> int:
    """Write the version in force today into the live layers (for a daily timer)."""
    from layers.plans import activate_due

    def body(store: Any, account: Any, lang: str | None) -> int:
        v = activate_due(store, account)
        print(t(_M + "nothing_due", lang) if v is None else t(_M + "activated", lang, version=v))
        return 0

    return _run(args, body)
