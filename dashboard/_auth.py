"""Sign-in for the dashboard: who is at the screen, on every page run.

:func:`signed_in` finds the account of this browser session, in this order:

1. the session token kept in ``st.session_state`` (this browser tab, after signing in);
2. a kiosk token (``?kiosk=TOKEN`` in the link, or the ``X-GridPulse-Kiosk`` header a
   reverse proxy can add) -- the wall screen that stays signed in unattended;
3. the ``gp_session`` cookie (a reload, a new tab): Streamlit reads cookies from the
   websocket handshake (``st.context.cookies``); the cookie is written by a small script
   (``st.html(..., unsafe_allow_javascript=True)``) right after signing in.

Every token is checked against the store on every run (:func:`layers.accounts.resolve_session`),
so an expired session, a disabled account or a changed password ends access at the next click.
An anonymous visitor gets the sign-in form (:func:`sign_in_form`) and nothing else.
"""

from __future__ import annotations

import json
import time
from typing import Any

import streamlit as st

from dashboard import state
from dashboard.widgets import translator
from layers import accounts
from layers.accounts import AccountError
from layers.errors import GridPulseError
from layers.permissions import Account, role_label, scope_label

COOKIE = "gp_session"
KIOSK_PARAM = "kiosk"
KIOSK_HEADER = "X-GridPulse-Kiosk"
_TOKEN = "gp_token"
_ACCOUNT = "gp_account"
_KIOSK = "gp_kiosk"
_SET_COOKIE = "gp_set_cookie"
_SIGNED_OUT = "gp_signed_out"
_CHECK_MS = "gp_auth_ms"


#: An ``auth.ui.*`` label in the session's language.
tx = translator("auth.ui")


def account() -> Account | None:
    """The account of this run (set by :func:`signed_in`), or ``None``."""
    acc = st.session_state.get(_ACCOUNT)
    return acc if isinstance(acc, Account) else None


def actor() -> Account:
    """The signed-in account; pages behind the gate may rely on it."""
    acc = account()
    if acc is None:  # pragma: no cover - the gate stops anonymous runs before any page
        st.stop()
    return acc  # type: ignore[return-value]


def _resolve(token: str | None, *, kiosk: bool = False) -> Account | None:
    if not token:
        return None
    try:
        return state.locked(accounts.resolve_session, state.get_store(), token, kiosk=kiosk)
    except Exception:  # noqa: BLE001 - a store without account tables yet, or unreachable
        return None


def _kiosk_token() -> str | None:
    token = st.query_params.get(KIOSK_PARAM)
    if not token:
        try:
            token = st.context.headers.get(KIOSK_HEADER)
        except Exception:  # noqa: BLE001 - no request context (AppTest)
            token = None
    return token or None


def _cookie_token() -> str | None:
    try:
        return st.context.cookies.get(COOKIE)
    except Exception:  # noqa: BLE001 - no request context (AppTest)
        return None


def signed_in() -> Account | None:
    """The account at the screen, or ``None`` (then show :func:`sign_in_form`).

    Also records how long the check took (``st.session_state["gp_auth_ms"]``).
    """
    t0 = time.perf_counter()
    acc: Account | None = None
    token = st.session_state.get(_TOKEN)
    kiosk = bool(st.session_state.get(_KIOSK))
    if token:
        acc = _resolve(token, kiosk=kiosk)
    if acc is None:
        st.session_state.pop(_TOKEN, None)
        kt = _kiosk_token()
        if kt:
            acc = _resolve(kt, kiosk=True)
            if acc is not None:
                st.session_state[_TOKEN], st.session_state[_KIOSK] = kt, True
        if acc is None and not st.session_state.get(_SIGNED_OUT):
            ct = _cookie_token()
            acc = _resolve(ct)
            if acc is not None:
                st.session_state[_TOKEN], st.session_state[_KIOSK] = ct, False
    if acc is None:
        st.session_state.pop(_ACCOUNT, None)
    else:
        st.session_state[_ACCOUNT] = acc
    st.session_state[_CHECK_MS] = (time.perf_counter() - t0) * 1000.0
    return acc


def _write_cookie(token: str, *, max_age_s: int) -> None:
    """Set (or with ``max_age_s=0`` clear) the session cookie in the browser."""
    secure = "; Secure" if _https() else ""
    value = json.dumps(f"{COOKIE}={token}; path=/; max-age={int(max_age_s)}; SameSite=Strict{secure}")
    try:
        st.html(f"<script>document.cookie = {value};</script>", unsafe_allow_javascript=True)
    except TypeError:  # Streamlit before unsafe_allow_javascript: a same-origin component frame
        import streamlit.components.v1 as components

        components.html(f"<script>parent.document.cookie = {value};</script>", height=0)


def _https() -> bool:
    """True when the browser reached us over HTTPS (directly or through a reverse proxy)."""
    try:
        proto = (st.context.headers.get("X-Forwarded-Proto") or "").lower()
        url = str(getattr(st.context, "url", "") or "")
    except Exception:  # noqa: BLE001 - no request context (AppTest)
        return False
    return proto == "https" or url.startswith("https://")


def pending_cookie() -> None:
    """Write the cookie a sign-in (or sign-out) asked for on the run before."""
    job = st.session_state.pop(_SET_COOKIE, None)
    if job is not None:
        _write_cookie(job[0], max_age_s=job[1])


def sign_in_form() -> None:
    """The only thing an anonymous visitor sees: user name, password, sign in."""
    pending_cookie()
    if st.query_params.get(KIOSK_PARAM):
        st.error(tx("kiosk_bad"))
    _, mid, _ = st.columns([1, 1.2, 1])
    with mid:
        st.markdown(f"## {tx('title')}")
        st.caption(tx("intro"))
        with st.form("gp_sign_in", clear_on_submit=False):
            user = st.text_input(tx("username"), key="gp_user", autocomplete="username")
            pw = st.text_input(tx("password"), type="password", key="gp_password",
                               autocomplete="current-password")
            go = st.form_submit_button(tx("sign_in"), type="primary")
        if go:
            try:
                token = state.locked(accounts.sign_in, state.get_store(), user.strip(), pw)
            except AccountError as err:
                st.error(err.message(state.lang()))
            except GridPulseError as err:  # the store cannot be opened: say so
                st.error(str(err))
            else:
                st.session_state[_TOKEN] = token
                st.session_state[_KIOSK] = False
                st.session_state.pop(_SIGNED_OUT, None)
                st.session_state.pop("gp_password", None)
                st.session_state[_SET_COOKIE] = (token, int(accounts.SESSION_HOURS * 3600))
                st.rerun()
        st.caption(tx("offline_note"))


def sign_out() -> None:
    """End the session in the store, forget it here, and clear the cookie."""
    state.locked(accounts.sign_out, state.get_store(), st.session_state.get(_TOKEN))
    for k in (_TOKEN, _ACCOUNT, _KIOSK):
        st.session_state.pop(k, None)
    st.session_state[_SIGNED_OUT] = True
    st.session_state[_SET_COOKIE] = ("", 0)


def account_box(acc: Account, container: Any = st.sidebar) -> None:
    """Who is signed in, their scope, sign out, change the password."""
    lang = state.lang()
    container.caption(tx("signed_in_as", name=acc.username, role=role_label(acc.role, lang)) + " · "
                      + tx("scope", scope=scope_label(acc.scope_code, lang)))
    if container.button(tx("sign_out"), key="gp_sign_out"):
        sign_out()
        st.rerun()
    with container.popover(tx("change_password")):
        with st.form("gp_passwd", clear_on_submit=True):
            old = st.text_input(tx("old_password"), type="password", key="gp_pw_old")
            new = st.text_input(tx("new_password"), type="password", key="gp_pw_new")
            new2 = st.text_input(tx("new_password2"), type="password", key="gp_pw_new2")
            go = st.form_submit_button(tx("change_password"))
        if go:
            if new != new2:
                st.error(tx("mismatch"))
            else:
                try:
                    store = state.get_store()
                    state.locked(accounts.set_password, store, acc.username, new, actor=acc,
                                 old_password=old)
                    token = state.locked(accounts.sign_in, store, acc.username, new)
                except AccountError as err:
                    st.error(err.message(lang))
                else:
                    st.session_state[_TOKEN] = token
                    st.session_state[_SET_COOKIE] = (token, int(accounts.SESSION_HOURS * 3600))
                    st.success(tx("changed"))


__all__ = ["account", "account_box", "actor", "pending_cookie", "sign_in_form", "sign_out",
           "signed_in"]
