"""Signing tests in: an admin account and session in a store, through the layers API.

The dashboard shows nothing before sign-in, so the shared fixtures (the AppTest ``app`` and
the browser ``page``) come signed in as :data:`ADMIN` unless a test asks otherwise.
"""

from __future__ import annotations

import functools

from layers import accounts
from layers.store import open_store

ADMIN = "test-admin"
PASSWORD = "test-admin-password"


@functools.cache
def _token(url: str, username: str, role: str, scope_code: str, department: str) -> str:
    with open_store(url) as store:
        try:
            accounts.get_account(store, username)
        except accounts.AccountError:
            accounts.create_account(store, username, PASSWORD, role=role, scope_code=scope_code,
                                    department=department, actor="tests")
        return accounts.sign_in(store, username, PASSWORD)


def session_token(url: str, username: str = ADMIN, *, role: str = "admin", scope_code: str = "",
                  department: str = "") -> str:
    """A session token of ``username`` (created with ``role``/scope when missing) in the store
    at ``url``; one per store and account for the whole test session."""
    token = _token(str(url), username, role, scope_code, department)
    with open_store(str(url)) as store:
        if accounts.resolve_session(store, token) is None:  # expired or signed out meanwhile
            _token.cache_clear()
            token = _token(str(url), username, role, scope_code, department)
    return token
