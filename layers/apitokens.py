"""Per-client API tokens: a Bearer token tied to one account, its role and its scope.

A department system, the 12345 hotline platform or a grid worker's phone gets a token with
:func:`issue_api_token`; every call it makes to the intake API acts as that account (the same
permission checks as a person signed in to the dashboard). The store keeps only the token's
SHA-256 (``gp_api_tokens``); a token can be revoked, and it stops working when its account is
disabled. API tokens are not sessions: a token cannot sign in to the dashboard, and a session
cookie cannot call the API.

Examples
--------
>>> import tempfile, pathlib
>>> from layers.store import open_store
>>> from layers.accounts import create_account
>>> store = open_store(str(pathlib.Path(tempfile.mkdtemp()) / "s.gpkg"))
>>> _ = create_account(store, "hotline", "correct horse", role="command_centre",
...                    scope_code="320106001", actor="setup")
>>> token = issue_api_token(store, "hotline", actor="setup", label="12345")
>>> resolve_api_token(store, token).scope_code
'320106001'
>>> revoke_api_token(store, token, actor="setup")
1
>>> resolve_api_token(store, token) is None
True
"""

from __future__ import annotations

import secrets
from typing import Any

import pandas as pd

from layers._records import ACCOUNTS, API_TOKENS
from layers.accounts import _account, _actor, get_account, now, token_hash
from layers.permissions import Account

#: An API token's default life.
API_TOKEN_DAYS = 365
#: Tokens carry this prefix, so a leaked one is recognisable in logs and secret scanners.
PREFIX = "gpk_"


def issue_api_token(store: Any, username: str, *, actor: str | Account,
                    days: int = API_TOKEN_DAYS, label: str = "") -> str:
    """A new API token for ``username`` (any role but the kiosk); audited. Shown once."""
    from layers.accounts import AccountError

    who = _actor(actor)
    account = get_account(store, username)
    if account.is_kiosk:
        raise AccountError("bad_role", role=account.role, roles="!kiosk")
    token = PREFIX + secrets.token_urlsafe(32)
    when = now()
    store.put_record(API_TOKENS.name, {
        "token_hash": token_hash(token), "username": username, "label": label,
        "created": when, "expires": when + pd.Timedelta(days=days), "revoked": False,
    }, audit={"action": "account_api_token", "layer": ACCOUNTS.name, "rows": 1, "actor": who,
              "note": f"{username} {days}d {label}".strip()})
    return token


def resolve_api_token(store: Any, token: str | None, *, at: pd.Timestamp | None = None
                      ) -> Account | None:
    """The account an API token acts as, or ``None`` (unknown, revoked, expired, disabled)."""
    if not token or len(token) > 200 or not token.startswith(PREFIX):
        return None
    rows = store.records(API_TOKENS.name, where={"token_hash": token_hash(token)})
    if not rows:
        return None
    row = rows[0]
    when = at if at is not None else now()
    if row.get("revoked") or row.get("expires") is None or row["expires"] <= when:
        return None
    acc = store.records(ACCOUNTS.name, where={"username": row["username"]})
    if not acc or acc[0].get("disabled"):
        return None
    return _account(acc[0])


def revoke_api_token(store: Any, token: str, *, actor: str | Account) -> int:
    """Revoke one token; returns 1 when it existed."""
    who = _actor(actor)
    return store.update_records(API_TOKENS.name, {"token_hash": token_hash(token)},
                                {"revoked": True},
                                audit={"action": "account_api_revoke", "layer": ACCOUNTS.name,
                                       "rows": 1, "actor": who, "note": ""})


__all__ = ["API_TOKEN_DAYS", "issue_api_token", "resolve_api_token", "revoke_api_token"]
