"""``gridpulse api``: the intake API alone (``gridpulse serve`` runs it next to the dashboard).

    gridpulse api [--port 8502] [--address 127.0.0.1] [--store URL] [--workers 1]
    gridpulse api --token ACCOUNT [--days 365] [--label TEXT]   (issue an API token, once)

The API listens on 127.0.0.1 (this machine only) unless ``--address`` says otherwise; put a
reverse proxy with HTTPS in front of it before opening it to other machines.
"""

from __future__ import annotations

import argparse
import sys

from layers.i18n import default_lang, t

DEFAULT_ADDRESS = "127.0.0.1"


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``api`` to the CLI."""
    lang = default_lang()
    p = sub.add_parser("api", help=t("api.help_api", lang), description=t("api.help_api", lang))
    p.add_argument("--port", type=int, default=8502, help=t("api.help_api_port", lang))
    p.add_argument("--address", default=None, help=t("dashboard.serve.help_address", lang))
    p.add_argument("--store", default=None, help=t("cli.help_store", lang))
    p.add_argument("--workers", type=int, default=1, help=t("throughput.help_workers", lang))
    p.add_argument("--token", default=None, metavar="ACCOUNT", help=t("api.help_token", lang))
    p.add_argument("--days", type=int, default=365, help=t("auth.cli.help_days", lang))
    p.add_argument("--label", default="", help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Handler of ``gridpulse api``."""
    from layers.config import settings

    url = args.store or settings().store_url
    if args.token:
        from layers.accounts import AccountError
        from layers.apitokens import issue_api_token
        from layers.app import os_account
        from layers.store import open_store

        with open_store(url) as store:
            try:
                token = issue_api_token(store, args.token, actor=os_account(), days=args.days,
                                        label=args.label)
            except AccountError as e:
                print(e.message(args.lang), file=sys.stderr)
                return 1
        print(t("api.token_issued", args.lang, user=args.token, token=token))
        return 0
    from gridpulse.api import serve

    address = args.address or DEFAULT_ADDRESS
    print(t("api.api_url", args.lang, address=address, port=args.port), file=sys.stderr)
    serve(url, port=args.port, address=address, workers=max(1, int(args.workers)))
    return 0
