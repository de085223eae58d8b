"""Local accounts, passwords, sign-in throttling, sessions and kiosk tokens, kept in the store.

Accounts live in the store's ``gp_accounts`` table and sessions in ``gp_sessions`` (both
engines, through :meth:`layers.store.Store.records` and friends), so a GeoPackage carries
its people with it and a PostGIS store shares them between servers. Nothing here works
without a store; nothing needs a network (an intranet without an identity provider works).

* Passwords are hashed with Argon2id (``argon2-cffi``, OWASP's parameters, :data:`HASHER`);
  a hash made with other parameters is upgraded at the next sign-in.
* :func:`sign_in` throttles: after :data:`MAX_FAILURES` wrong passwords in a row the account
  is locked for :data:`LOCK_MINUTES` (doubling with every further failure, up to a day). An
  unknown user name costs the same time as a known one.
* A session is a random token (``secrets.token_urlsafe``); the store keeps only its SHA-256,
  so a copy of the store does not let anyone sign in. Sessions expire
  :data:`SESSION_HOURS` after sign-in or :data:`IDLE_HOURS` after they were last seen.
* A kiosk token is a long-lived session of a ``kiosk`` account (the wall screen).
* Account changes are written to ``audit_log`` with the acting account as actor.

Examples
--------
>>> import tempfile, pathlib
>>> from layers.store import open_store
>>> store = open_store(str(pathlib.Path(tempfile.mkdtemp()) / "s.gpkg"))
>>> admin = create_account(store, "root", "correct horse", role="admin", actor="setup")
>>> token = sign_in(store, "root", "correct horse")
>>> resolve_session(store, token).username
'root'
>>> try:
...     sign_in(store, "root", "wrong")
... except AccountError as e:
...     print(e.key)
auth.account.bad_credentials
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from typing import Any

import argon2
import pandas as pd

from geo.domain import LOCAL_TZ
from layers._records import ACCOUNTS, SESSIONS
from layers.permissions import Account, AccountError, check_fields, require

#: Wrong passwords in a row before the account is locked.
MAX_FAILURES = 5
#: First lock length; it doubles with every further failure (at most a day).
LOCK_MINUTES = 15
#: A session ends this long after sign-in ...
SESSION_HOURS = 12.0
#: ... or this long after it was last seen.
IDLE_HOURS = 2.0
#: A kiosk token's default life.
KIOSK_DAYS = 365
#: ``last_seen`` is written at most this often (seconds), not on every page run.
TOUCH_EVERY_S = 60.0
MIN_PASSWORD = 8

#: The Argon2id hasher, with OWASP's recommended parameters (m = 19 MiB, t = 2, p = 1): on the
#: 2-core servers districts run, argon2-cffi's default (64 MiB, t = 3, p = 4) made one sign-in
#: cost over a second of both cores (benchmarks/auth.py), and every wrong guess as much.
#: Hashes record their parameters; a hash made with others is upgraded at the next sign-in.
HASHER = argon2.PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,31}$")
_DUMMY: list[str] = []


def now() -> pd.Timestamp:
    """Naive local time (Asia/Shanghai), like every time in the store."""
    return pd.Timestamp.now(tz=LOCAL_TZ).tz_localize(None)


def hash_password(password: str) -> str:
    """An Argon2id hash of ``password`` (salted; ``$argon2id$...``)."""
    if len(password) < MIN_PASSWORD:
        raise AccountError("weak_password", min=MIN_PASSWORD)
    return HASHER.hash(password)


def verify_password(hashed: str, password: str) -> bool:
    """True when ``password`` matches ``hashed`` (constant-time inside argon2)."""
    try:
        return bool(HASHER.verify(hashed, password))
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False


def token_hash(token: str) -> str:
    """SHA-256 (hex) of a session or kiosk token: what the store keeps."""
    return hashlib.sha256(token.encode()).hexdigest()


def _account(row: Mapping[str, Any]) -> Account:
    return Account(
        username=row["username"], role=row["role"], scope_code=row.get("scope_code") or "",
        department=row.get("department") or "", display_name=row.get("display_name") or "",
        disabled=bool(row.get("disabled")),
        extra={k: row.get(k) for k in ("failed_logins", "locked_until", "created",
                                       "password_changed", "last_login")},
    )


def _audit(action: str, actor: str, username: str, note: str = "") -> dict[str, Any]:
    return {"action": action, "layer": ACCOUNTS.name, "rows": 1, "actor": actor,
            "note": f"{username}{' ' + note if note else ''}"}


def _row(store: Any, username: str) -> dict[str, Any] | None:
    rows = store.records(ACCOUNTS.name, where={"username": username})
    return rows[0] if rows else None


def get_account(store: Any, username: str) -> Account:
    """The account called ``username``; :class:`AccountError` when there is none."""
    row = _row(store, username)
    if row is None:
        raise AccountError("unknown", username=username)
    return _account(row)


def list_accounts(store: Any) -> list[Account]:
    """Every account, by user name."""
    return [_account(r) for r in store.records(ACCOUNTS.name)]


def has_accounts(store: Any) -> bool:
    """True when the store has at least one account."""
    return bool(store.records(ACCOUNTS.name))


def create_account(store: Any, username: str, password: str, *, role: str, scope_code: str = "",
                   department: str = "", display_name: str = "", actor: str | Account) -> Account:
    """Add an account (``actor`` must be an admin account, or a string for the CLI's first admin).

    Raises
    ------
    AccountError
        Bad user name, role, scope or department, a short password, or the name is taken.
    PermissionDenied
        ``actor`` is an account that may not manage accounts.
    """
    who = _actor(actor)
    if not _USERNAME.match(username or ""):
        raise AccountError("bad_username", username=username)
    check_fields(role, scope_code, department)
    if _row(store, username) is not None:
        raise AccountError("exists", username=username)
    hashed = hash_password(password)
    when = now()
    store.put_record(ACCOUNTS.name, {
        "username": username, "display_name": display_name, "role": role,
        "scope_code": scope_code, "department": department if role == "department" else "",
        "password_hash": hashed, "disabled": False, "failed_logins": 0, "locked_until": None,
        "created": when, "password_changed": when, "last_login": None,
    }, audit=_audit("account_add", who, username, role))
    return get_account(store, username)


def _actor(actor: str | Account) -> str:
    if isinstance(actor, Account):
        require(actor, "accounts")
        return actor.username
    return str(actor)


def grant(store: Any, username: str, *, actor: str | Account, role: str | None = None,
          scope_code: str | None = None, department: str | None = None,
          display_name: str | None = None) -> Account:
    """Change an account's role, scope, department or display name (validated together)."""
    who = _actor(actor)
    row = _row(store, username)
    if row is None:
        raise AccountError("unknown", username=username)
    new_role = role or row["role"]
    new_scope = row.get("scope_code") or "" if scope_code is None else scope_code
    new_dept = row.get("department") or "" if department is None else department
    check_fields(new_role, new_scope, new_dept)
    if row["role"] == "admin" and new_role != "admin":
        _keep_an_admin(store, username)
    changes = {"role": new_role, "scope_code": new_scope,
               "department": new_dept if new_role == "department" else ""}
    if display_name is not None:
        changes["display_name"] = display_name
    store.update_records(ACCOUNTS.name, {"username": username}, changes,
                         audit=_audit("account_grant", who, username,
                                      f"{new_role} {new_scope} {changes['department']}".strip()))
    return get_account(store, username)


def _keep_an_admin(store: Any, username: str) -> None:
    others = [a for a in list_accounts(store)
              if a.role == "admin" and not a.disabled and a.username != username]
    if not others:
        raise AccountError("last_admin")


def set_disabled(store: Any, username: str, disabled: bool, *, actor: str | Account) -> int:
    """Disable (ending every session) or enable an account; returns the sessions ended."""
    who = _actor(actor)
    row = _row(store, username)
    if row is None:
        raise AccountError("unknown", username=username)
    if disabled and row["role"] == "admin":
        _keep_an_admin(store, username)
    store.update_records(ACCOUNTS.name, {"username": username},
                         {"disabled": bool(disabled), "failed_logins": 0, "locked_until": None},
                         audit=_audit("account_disable" if disabled else "account_enable", who,
                                      username))
    return store.delete_records(SESSIONS.name, {"username": username}) if disabled else 0


def set_password(store: Any, username: str, password: str, *, actor: str | Account,
                 old_password: str | None = None) -> None:
    """Set a new password and end the account's sessions (kiosk tokens too).

    A person changing their own password gives ``old_password``; an admin (or the CLI run
    by the machine's operator, ``actor`` a string) does not need it.
    """
    row = _row(store, username)
    if row is None:
        raise AccountError("unknown", username=username)
    own = isinstance(actor, Account) and actor.username == username
    if own:
        if old_password is None or not verify_password(row["password_hash"] or "", old_password):
            raise AccountError("wrong_password")
        who = username
    else:
        who = _actor(actor)
    hashed = hash_password(password)
    store.update_records(ACCOUNTS.name, {"username": username},
                         {"password_hash": hashed, "password_changed": now(),
                          "failed_logins": 0, "locked_until": None},
                         audit=_audit("account_passwd", who, username))
    store.delete_records(SESSIONS.name, {"username": username})


# -- sign-in and sessions ----------------------------------------------------------------------


def _dummy_hash() -> str:
    if not _DUMMY:
        _DUMMY.append(HASHER.hash(secrets.token_hex(16)))
    return _DUMMY[0]


def check_password(store: Any, username: str, password: str, *, at: pd.Timestamp | None = None
                   ) -> Account:
    """The account when ``password`` is right; counts failures and locks (see module doc).

    Raises
    ------
    AccountError
        ``bad_credentials`` (wrong name or password, or a disabled account: the same answer)
        or ``locked`` (too many failures; ``until`` says when to try again).
    """
    when = at if at is not None else now()
    row = _row(store, username) if _USERNAME.match(username or "") else None
    if row is None:
        verify_password(_dummy_hash(), password)  # the same time as a known name
        raise AccountError("bad_credentials")
    locked = row.get("locked_until")
    if locked is not None and locked > when:
        raise AccountError("locked", until=locked.strftime("%Y-%m-%d %H:%M"))
    ok = verify_password(row["password_hash"] or "", password)
    if not ok or row.get("disabled"):
        fails = int(row.get("failed_logins") or 0) + 1
        changes: dict[str, Any] = {"failed_logins": fails}
        if fails >= MAX_FAILURES:
            minutes = min(LOCK_MINUTES * 2 ** (fails - MAX_FAILURES), 24 * 60)
            changes["locked_until"] = when + pd.Timedelta(minutes=minutes)
        store.update_records(ACCOUNTS.name, {"username": username}, changes)
        if "locked_until" in changes:
            raise AccountError("locked", until=changes["locked_until"].strftime("%Y-%m-%d %H:%M"))
        raise AccountError("bad_credentials")
    changes = {"failed_logins": 0, "locked_until": None, "last_login": when}
    if HASHER.check_needs_rehash(row["password_hash"]):
        changes["password_hash"] = HASHER.hash(password)
    store.update_records(ACCOUNTS.name, {"username": username}, changes)
    return _account(row)


def sign_in(store: Any, username: str, password: str, *, at: pd.Timestamp | None = None) -> str:
    """Check the password and open a session; returns the session token (keep it secret).

    Raises :class:`AccountError` like :func:`check_password`. A kiosk account cannot sign in
    with a password; it uses a token from :func:`issue_kiosk_token`.
    """
    account = check_password(store, username, password, at=at)
    if account.is_kiosk:
        raise AccountError("bad_credentials")
    return _new_session(store, account.username, "session", at=at,
                        hours=SESSION_HOURS)


def _new_session(store: Any, username: str, kind: str, *, hours: float,
                 at: pd.Timestamp | None = None, label: str = "") -> str:
    token = secrets.token_urlsafe(32)
    when = at if at is not None else now()
    store.put_record(SESSIONS.name, {
        "token_hash": token_hash(token), "username": username, "kind": kind, "created": when,
        "expires": when + pd.Timedelta(hours=hours), "last_seen": when, "label": label,
    })
    return token


def issue_kiosk_token(store: Any, username: str, *, actor: str | Account, days: int = KIOSK_DAYS,
                      label: str = "") -> str:
    """A long-lived token for a ``kiosk`` account (the wall); audited."""
    who = _actor(actor)
    account = get_account(store, username)
    if not account.is_kiosk:
        raise AccountError("bad_role", role=account.role, roles="kiosk")
    token = _new_session(store, username, "kiosk", hours=days * 24.0, label=label)
    store.record("kiosk_issue", ACCOUNTS.name, rows=1, actor=who, note=f"{username} {days}d")
    return token


def resolve_session(store: Any, token: str | None, *, at: pd.Timestamp | None = None,
                    kiosk: bool = False) -> Account | None:
    """The account a session (or, with ``kiosk=True``, a kiosk) token belongs to, or ``None``.

    ``None`` when the token is unknown, expired (absolute or idle), of the wrong kind, or its
    account is disabled; an expired session is deleted. ``last_seen`` is refreshed at most
    every :data:`TOUCH_EVERY_S` seconds.
    """
    if not token or len(token) > 200:
        return None
    when = at if at is not None else now()
    key = token_hash(token)
    rows = store.records(SESSIONS.name, where={"token_hash": key})
    if not rows:
        return None
    s = rows[0]
    if (s["kind"] == "kiosk") != kiosk:
        return None
    idle_out = s["kind"] == "session" and s["last_seen"] is not None and \
        when - s["last_seen"] > pd.Timedelta(hours=IDLE_HOURS)
    if s["expires"] is None or s["expires"] <= when or idle_out:
        store.delete_records(SESSIONS.name, {"token_hash": key})
        return None
    row = _row(store, s["username"])
    if row is None or row.get("disabled"):
        return None
    if s["last_seen"] is None or (when - s["last_seen"]).total_seconds() >= TOUCH_EVERY_S:
        store.update_records(SESSIONS.name, {"token_hash": key}, {"last_seen": when})
    return _account(row)


def sign_out(store: Any, token: str | None) -> None:
    """End the session of ``token`` (nothing when it is unknown)."""
    if token:
        store.delete_records(SESSIONS.name, {"token_hash": token_hash(token)})


def purge_expired(store: Any, *, at: pd.Timestamp | None = None) -> int:
    """Delete expired sessions; returns how many."""
    when = at if at is not None else now()
    n = 0
    for s in store.records(SESSIONS.name):
        if s["expires"] is None or s["expires"] <= when:
            n += store.delete_records(SESSIONS.name, {"token_hash": s["token_hash"]})
    return n


__all__ = [
    "AccountError", "check_password", "create_account", "get_account", "grant", "has_accounts",
    "hash_password", "issue_kiosk_token", "list_accounts", "purge_expired", "resolve_session",
    "set_disabled", "set_password", "sign_in", "sign_out", "token_hash", "verify_password",
]


# -- the demo: one account per role -------------------------------------------------------------

#: Demo user names by role (``gridpulse serve`` on a demo store creates them).
DEMO_USERS: dict[str, str] = {
    "admin": "admin", "district_leader": "district", "subdistrict_secretary": "secretary",
    "subdistrict_director": "director", "subdistrict_leader": "leader",
    "command_centre": "centre", "community_secretary": "community", "grid_leader": "gridleader",
    "grid_worker_full": "worker", "grid_worker_part": "parttime", "department": "dept",
    "planner": "planner", "analyst": "analyst", "kiosk": "wall",
}
#: The demo department handler's department.
DEMO_DEPARTMENT = "urban_management"


def demo_scopes(store: Any) -> dict[str, str]:
    """A scope code per level taken from the store: its first district, sub-district,
    community and (comprehensive) grid, nested in one another."""
    grids = store.read("grids", columns=["code", "kind"]) if store.has_layer("grids") else None
    if grids is None or not len(grids):
        raise AccountError("auth.account.unknown", username="grids")
    comp = grids[grids["kind"] == "comprehensive"] if "kind" in grids else grids
    grid = str(sorted((comp if len(comp) else grids)["code"].astype(str))[0])
    return {"district": grid[:6], "subdistrict": grid[:9], "community": grid[:12], "grid": grid}


def create_demo_accounts(store: Any, *, actor: str = "demo") -> dict[str, tuple[str, str]]:
    """One account per role with a random password (the kiosk gets a token instead).

    Returns ``{role: (username, password or kiosk token)}``; accounts that already exist are
    left alone and not returned. Meant for demo stores only: the passwords are printed once.
    """
    from layers.permissions import ROLES, SCOPE_LEVELS

    scopes = demo_scopes(store)
    existing = {a.username for a in list_accounts(store)}
    out: dict[str, tuple[str, str]] = {}
    for role in ROLES:
        user = DEMO_USERS[role]
        if user in existing:
            continue
        level = SCOPE_LEVELS[role][0]
        scope = scopes[level] if level else ""
        password = secrets.token_urlsafe(9)
        create_account(store, user, password, role=role, scope_code=scope,
                       department=DEMO_DEPARTMENT if role == "department" else "",
                       display_name=f"演示{user}", actor=actor)
        out[role] = (user, issue_kiosk_token(store, user, actor=actor) if role == "kiosk"
                     else password)
    return out
