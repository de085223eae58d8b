"""``gridpulse user add|list|disable|enable|passwd|grant|kiosk`` on a real GeoPackage."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from gridpulse.cli import main
from layers import accounts
from layers.store import open_store


@pytest.fixture(autouse=True)
def quick_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real Argon2id with small parameters: the tests check the flow, not the cost."""
    import argon2

    monkeypatch.setattr(accounts, "HASHER", argon2.PasswordHasher(time_cost=1, memory_cost=1024,
                                                                  parallelism=1))


@pytest.fixture()
def store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = str(tmp_path / "store.gpkg")
    monkeypatch.setenv("GRIDPULSE_STORE", url)
    return url


def _user(monkeypatch: pytest.MonkeyPatch, *argv: str, password: str | None = None) -> int:
    if password is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(password + "\n"))
    return main(["--lang", "en", "user", *argv])


def test_the_first_admin_then_people_and_their_changes(store_url, monkeypatch, capsys) -> None:
    assert _user(monkeypatch, "list") == 0
    assert "gridpulse user add NAME --admin" in capsys.readouterr().out  # no default account
    assert _user(monkeypatch, "add", "root", "--admin", "--password-stdin", password="short") == 1
    assert "too short" in capsys.readouterr().err
    assert _user(monkeypatch, "add", "root", "--admin", "--password-stdin",
                 password="root-password") == 0
    # a grid worker needs a 15-digit grid code
    assert _user(monkeypatch, "add", "wang", "--role", "grid_worker_full", "--scope", "320106001",
                 "--password-stdin", password="wang-password") == 1
    err = capsys.readouterr().err
    assert "needs a grid scope code (15 digits)" in err and "--scope" in err
    assert _user(monkeypatch, "add", "wang", "--role", "grid_worker_full", "--scope",
                 "320106001001001", "--password-stdin", password="wang-password") == 0
    assert _user(monkeypatch, "add", "wang", "--role", "analyst", "--password-stdin",
                 password="wang-password") == 1
    assert "already exists" in capsys.readouterr().err
    assert _user(monkeypatch, "list") == 0
    out = capsys.readouterr().out
    assert "root" in out and "administrator" in out and "grid 320106001001001" in out
    with open_store(store_url) as s:
        token = accounts.sign_in(s, "wang", "wang-password")
        log = s.audit_log(limit=5)
    assert (log["action"] == "account_add").sum() == 2
    assert log["actor"].str.startswith("os:").all()  # the operating-system user ran the CLI
    # grant moves wang to another grid; disable ends the session and refuses sign-in
    assert _user(monkeypatch, "grant", "wang", "--scope", "320106001001002") == 0
    assert _user(monkeypatch, "disable", "wang") == 0
    assert "ended 1 sessions" in capsys.readouterr().out
    with open_store(store_url) as s:
        assert accounts.get_account(s, "wang").scope_code == "320106001001002"
        assert accounts.resolve_session(s, token) is None
        with pytest.raises(accounts.AccountError):
            accounts.sign_in(s, "wang", "wang-password")
    assert _user(monkeypatch, "enable", "wang") == 0
    assert _user(monkeypatch, "passwd", "wang", "--password-stdin", password="new-password") == 0
    with open_store(store_url) as s:
        assert accounts.resolve_session(s, accounts.sign_in(s, "wang", "new-password"))
    # --as: only an administrator may manage accounts; the last admin stays
    assert _user(monkeypatch, "--as", "wang", "add", "li", "--role", "analyst",
                 "--password-stdin", password="li-password") == 1
    assert "may not manage accounts" in capsys.readouterr().err
    assert _user(monkeypatch, "disable", "root") == 1
    assert "last enabled administrator" in capsys.readouterr().err


def test_a_kiosk_token_is_printed_once_and_opens_the_wall_only(store_url, monkeypatch,
                                                                capsys) -> None:
    assert _user(monkeypatch, "add", "wall", "--role", "kiosk", "--scope", "320106",
                 "--password-stdin", password="wall-password") == 0
    capsys.readouterr()
    assert _user(monkeypatch, "kiosk", "wall", "--days", "30") == 0
    token = capsys.readouterr().out.split("wall?kiosk=")[1].split()[0]
    with open_store(store_url) as s:
        acc = accounts.resolve_session(s, token, kiosk=True)
        assert acc is not None and acc.is_kiosk
        assert accounts.resolve_session(s, token) is None  # not a session token
        with pytest.raises(accounts.AccountError):  # a kiosk never signs in with a password
            accounts.sign_in(s, "wall", "wall-password")
