"""``gridpulse user``: local accounts in the store.

    gridpulse user add NAME (--admin | --role ROLE) [--scope CODE] [--department DEPT]
                           [--display NAME] [--password-stdin]
    gridpulse user list
    gridpulse user disable NAME | enable NAME
    gridpulse user passwd NAME [--password-stdin]
    gridpulse user grant NAME [--role ROLE] [--scope CODE] [--department DEPT]
    gridpulse user kiosk NAME [--days N]

There is no default password: the first administrator is made with ``user add NAME --admin``
and a password typed twice at the prompt (or one line on standard input with
``--password-stdin``). The person running the CLI on the store's machine is recorded as the
actor (``os:<user>``), or the account given with ``gridpulse user --as ACCOUNT ...`` (which
must then be an administrator).
"""

from __future__ import annotations

import argparse
import getpass
import sys

from layers.i18n import default_lang, t
from layers.permissions import ROLES, role_label, scope_label
from layers.schema import DEPARTMENTS


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``user`` and its sub-commands."""
    lang = default_lang()

    def h(key: str) -> str:
        return t(f"auth.cli.help_{key}", lang)

    p = subparsers.add_parser("user", help=h("user"), description=h("user"))
    p.add_argument("--store", default=None, help=t("cli.help_store", lang))
    p.add_argument("--as", dest="as_account", default=None, metavar="ACCOUNT", help=h("as"))
    sub = p.add_subparsers(dest="user_cmd", required=True)

    a = sub.add_parser("add", help=h("add"))
    a.add_argument("username", help=h("username"))
    a.add_argument("--admin", action="store_true", help=h("admin"))
    a.add_argument("--role", choices=ROLES, default=None, help=h("role"))
    a.add_argument("--scope", default="", help=h("scope"))
    a.add_argument("--department", choices=DEPARTMENTS, default="", help=h("department"))
    a.add_argument("--display", default="", help=h("display"))
    a.add_argument("--password-stdin", action="store_true", help=h("password_stdin"))
    a.set_defaults(func=cmd_add)

    sub.add_parser("list", help=h("list")).set_defaults(func=cmd_list)
    for name, func in (("disable", cmd_disable), ("enable", cmd_enable)):
        d = sub.add_parser(name, help=h(name))
        d.add_argument("username", help=h("username"))
        d.set_defaults(func=func)

    pw = sub.add_parser("passwd", help=h("passwd"))
    pw.add_argument("username", help=h("username"))
    pw.add_argument("--password-stdin", action="store_true", help=h("password_stdin"))
    pw.set_defaults(func=cmd_passwd)

    g = sub.add_parser("grant", help=h("grant"))
    g.add_argument("username", help=h("username"))
    g.add_argument("--role", choices=ROLES, default=None, help=h("role"))
    g.add_argument("--scope", default=None, help=h("scope"))
    g.add_argument("--department", choices=DEPARTMENTS, default=None, help=h("department"))
    g.add_argument("--display", default=None, help=h("display"))
    g.set_defaults(func=cmd_grant)

    k = sub.add_parser("kiosk", help=h("kiosk"))
    k.add_argument("username", help=h("username"))
    k.add_argument("--days", type=int, default=365, help=h("days"))
    k.set_defaults(func=cmd_kiosk)


def _store(args: argparse.Namespace):
    from layers.config import settings
    from layers.store import open_store

    return open_store(args.store or settings().store_url)


def _password(args: argparse.Namespace) -> str:
    """The new password: one line of stdin, or typed twice at a prompt (never echoed)."""
    from layers.accounts import AccountError

    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(t("auth.cli.prompt", args.lang))
    if getpass.getpass(t("auth.cli.prompt2", args.lang)) != first:
        raise AccountError("auth.cli.mismatch")
    return first


def _run(args: argparse.Namespace, job) -> int:
    """Open the store, resolve the actor, run ``job(store, actor)``; errors in the user's language."""
    from layers.accounts import AccountError
    from layers.app import cli_account
    from layers.errors import GridPulseError
    from layers.permissions import PermissionDenied

    lang = args.lang
    try:
        with _store(args) as store:
            who = cli_account(store, args.as_account)
            actor = who if args.as_account else who.username
            return job(store, actor)
    except (AccountError, PermissionDenied) as err:
        print(err.message(lang), file=sys.stderr)
        fix = err.fix(lang)
        if fix:
            print(f"    {t('common.fix', lang)}: {fix}", file=sys.stderr)
        return 1
    except GridPulseError as err:
        print(str(err), file=sys.stderr)
        return 1


def cmd_add(args: argparse.Namespace) -> int:
    """``gridpulse user add``."""
    from layers.accounts import create_account

    role = "admin" if args.admin else (args.role or "analyst")

    def job(store, actor) -> int:
        pw = _password(args)
        acc = create_account(store, args.username, pw, role=role, scope_code=args.scope,
                             department=args.department, display_name=args.display, actor=actor)
        print(t("auth.cli.added", args.lang, username=acc.username,
                role=role_label(acc.role, args.lang)))
        return 0

    return _run(args, job)


def cmd_list(args: argparse.Namespace) -> int:
    """``gridpulse user list``: user name, role, scope, department, state, last sign-in."""
    from layers.accounts import list_accounts

    def job(store, actor) -> int:
        people = list_accounts(store)
        if not people:
            print(t("auth.cli.no_accounts", args.lang))
            return 0
        for a in people:
            last = a.extra.get("last_login")
            print(f"{a.username:<20} {role_label(a.role, args.lang):<14} "
                  f"{scope_label(a.scope_code, args.lang):<20} {a.department or '-':<18} "
                  f"{'disabled' if a.disabled else 'active':<9} "
                  f"{'-' if last is None else f'{last:%Y-%m-%d %H:%M}'}")
        return 0

    return _run(args, job)


def _set_disabled(args: argparse.Namespace, disabled: bool) -> int:
    from layers.accounts import set_disabled

    def job(store, actor) -> int:
        n = set_disabled(store, args.username, disabled, actor=actor)
        key = "disabled" if disabled else "enabled"
        print(t(f"auth.cli.{key}", args.lang, username=args.username, sessions=n))
        return 0

    return _run(args, job)


def cmd_disable(args: argparse.Namespace) -> int:
    """``gridpulse user disable``: the account can no longer sign in; its sessions end."""
    return _set_disabled(args, True)


def cmd_enable(args: argparse.Namespace) -> int:
    """``gridpulse user enable``."""
    return _set_disabled(args, False)


def cmd_passwd(args: argparse.Namespace) -> int:
    """``gridpulse user passwd``: a new password; the account's sessions end."""
    from layers.accounts import set_password

    def job(store, actor) -> int:
        set_password(store, args.username, _password(args), actor=actor)
        print(t("auth.cli.passwd", args.lang, username=args.username))
        return 0

    return _run(args, job)


def cmd_grant(args: argparse.Namespace) -> int:
    """``gridpulse user grant``: change role, scope, department (checked together)."""
    from layers.accounts import grant

    def job(store, actor) -> int:
        acc = grant(store, args.username, actor=actor, role=args.role, scope_code=args.scope,
                    department=args.department, display_name=args.display)
        print(t("auth.cli.granted", args.lang, username=acc.username,
                role=role_label(acc.role, args.lang), scope=scope_label(acc.scope_code, args.lang)))
        return 0

    return _run(args, job)


def cmd_kiosk(args: argparse.Namespace) -> int:
    """``gridpulse user kiosk``: a long-lived token for the wall (printed once)."""
    from layers.accounts import issue_kiosk_token

    def job(store, actor) -> int:
        token = issue_kiosk_token(store, args.username, actor=actor, days=args.days)
        print(t("auth.cli.kiosk", args.lang, token=token))
        return 0

    return _run(args, job)
