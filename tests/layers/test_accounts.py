"""Accounts, passwords, throttling, sessions and the checked application functions, on both
engines (a GeoPackage file and a fresh PostGIS schema)."""

from __future__ import annotations

import argon2
import geopandas as gpd
import pandas as pd
import pytest
import shapely

from layers import accounts
from layers.accounts import AccountError
from layers.app import (
    act_on_case,
    case_contacts,
    export_layer,
    import_layers,
    rollback_plan,
    save_plan_version,
)
from layers.permissions import Account, PermissionDenied
from layers.store import Store, open_store
from layers.workflow import IllegalTransitionError

T0 = pd.Timestamp("2025-03-03 10:00")
GRID = "320106001002003"
OTHER = "320106002001001"


@pytest.fixture(autouse=True)
def quick_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real Argon2id with small parameters (the cost is measured in benchmarks/auth.py)."""
    monkeypatch.setattr(accounts, "HASHER", argon2.PasswordHasher(time_cost=1, memory_cost=1024,
                                                                  parallelism=1))




def test_passwords_are_argon2id_hashes_and_never_stored_plain(store) -> None:
    accounts.create_account(store, "root", "correct horse battery", role="admin", actor="setup")
    row = store.records("gp_accounts", where={"username": "root"})[0]
    assert row["password_hash"].startswith("$argon2id$")
    assert "correct horse" not in str(row)
    assert accounts.verify_password(row["password_hash"], "correct horse battery")
    assert not accounts.verify_password(row["password_hash"], "correct horse batterY")
    assert not accounts.verify_password("not a hash", "x")
    with pytest.raises(AccountError) as e:
        accounts.create_account(store, "li", "short", role="analyst", actor="setup")
    assert e.value.key == "auth.account.weak_password"
    with pytest.raises(AccountError) as e:
        accounts.create_account(store, "bad name!", "long enough pw", role="analyst", actor="setup")
    assert e.value.key == "auth.account.bad_username"
    assert [a.username for a in accounts.list_accounts(store)] == ["root"]
    log = store.audit_log()
    assert log["action"].tolist() == ["account_add"] and log["actor"].tolist() == ["setup"]


def test_failed_sign_ins_lock_the_account_then_it_opens_again(store) -> None:
    accounts.create_account(store, "wang", "wang-password", role="analyst", actor="setup")
    for _ in range(accounts.MAX_FAILURES - 1):
        with pytest.raises(AccountError) as e:
            accounts.sign_in(store, "wang", "guess", at=T0)
        assert e.value.key == "auth.account.bad_credentials"
    with pytest.raises(AccountError) as e:  # the 5th failure locks for 15 minutes
        accounts.sign_in(store, "wang", "guess", at=T0)
    assert e.value.key == "auth.account.locked" and e.value.params["until"] == "2025-03-03 10:15"
    with pytest.raises(AccountError) as e:  # even the right password waits
        accounts.sign_in(store, "wang", "wang-password", at=T0 + pd.Timedelta(minutes=10))
    assert e.value.key == "auth.account.locked"
    with pytest.raises(AccountError) as e:  # one more failure after the lock doubles it
        accounts.sign_in(store, "wang", "guess", at=T0 + pd.Timedelta(minutes=16))
    assert e.value.params["until"] == "2025-03-03 10:46"
    token = accounts.sign_in(store, "wang", "wang-password", at=T0 + pd.Timedelta(minutes=47))
    assert accounts.resolve_session(store, token, at=T0 + pd.Timedelta(minutes=48)).username == "wang"
    assert accounts.get_account(store, "wang").extra["failed_logins"] == 0
    with pytest.raises(AccountError) as e:  # an unknown name gets the same answer
        accounts.sign_in(store, "nobody", "guess")
    assert e.value.key == "auth.account.bad_credentials"
    assert "用户名或密码不正确" == e.value.message("zh")


def test_sessions_expire_when_idle_or_old_and_end_on_sign_out(store) -> None:
    accounts.create_account(store, "li", "li-password-1", role="analyst", actor="setup")
    token = accounts.sign_in(store, "li", "li-password-1", at=T0)
    key = accounts.token_hash(token)
    rows = store.records("gp_sessions")
    assert [r["token_hash"] for r in rows] == [key] and token not in str(rows)  # only the hash
    hour = pd.Timedelta(hours=1)
    assert accounts.resolve_session(store, token, at=T0 + 1.5 * hour) is not None  # seen: touched
    assert accounts.resolve_session(store, token, at=T0 + 3 * hour) is not None
    assert accounts.resolve_session(store, token, at=T0 + 5.5 * hour) is None  # idle 2.5 h
    assert store.records("gp_sessions") == []  # the expired session is gone
    token = accounts.sign_in(store, "li", "li-password-1", at=T0)
    for h in range(1, 12):  # kept busy, it still ends 12 h after sign-in
        assert accounts.resolve_session(store, token, at=T0 + h * hour) is not None
    assert accounts.resolve_session(store, token, at=T0 + 12 * hour) is None
    token = accounts.sign_in(store, "li", "li-password-1")
    accounts.sign_out(store, token)
    assert accounts.resolve_session(store, token) is None
    assert accounts.resolve_session(store, "forged-token") is None
    assert accounts.resolve_session(store, "") is None


def test_password_change_and_disabling_end_every_session(store) -> None:
    root = accounts.create_account(store, "root", "root-password", role="admin", actor="setup")
    accounts.create_account(store, "li", "li-password-1", role="analyst", actor=root)
    t1 = accounts.sign_in(store, "li", "li-password-1")
    li = accounts.get_account(store, "li")
    with pytest.raises(AccountError) as e:
        accounts.set_password(store, "li", "li-password-2", actor=li, old_password="wrong")
    assert e.value.key == "auth.account.wrong_password"
    accounts.set_password(store, "li", "li-password-2", actor=li, old_password="li-password-1")
    assert accounts.resolve_session(store, t1) is None
    t2 = accounts.sign_in(store, "li", "li-password-2")
    with pytest.raises(PermissionDenied):  # an analyst may not disable anyone
        accounts.set_disabled(store, "root", True, actor=li)
    assert accounts.set_disabled(store, "li", True, actor=root) == 1
    assert accounts.resolve_session(store, t2) is None
    with pytest.raises(AccountError):
        accounts.sign_in(store, "li", "li-password-2")
    with pytest.raises(AccountError) as e:
        accounts.set_disabled(store, "root", True, actor=root)
    assert e.value.key == "auth.account.last_admin"
    acts = store.audit_log()["action"].tolist()
    assert {"account_add", "account_passwd", "account_disable"} <= set(acts)


def _case(store: Store) -> None:
    """Two collected cases: one in GRID (department water), one in OTHER."""
    cc = Account("setup-centre", role="command_centre")
    for srid, grid in (("C1", GRID), ("C2", OTHER)):
        inc = {"category_code": "01", "item_code": "0101", "level": 1, "source": "patrol",
               "grid_code": grid, "reporter_name": "张三丰", "reporter_phone": "13812345678",
               "geometry": shapely.Point(118.78, 32.06)}
        act_on_case(store, cc, srid, "collect", time=T0, incident=inc)


def test_case_actions_are_checked_against_role_scope_and_department(store) -> None:
    _case(store)
    worker = Account("wang", role="grid_worker_full", scope_code=GRID)
    secretary = Account("zhao", role="subdistrict_secretary", scope_code=GRID[:9])
    water = Account("shui", role="department", scope_code="320106", department="water")
    housing = Account("fang", role="department", scope_code="320106", department="housing")
    before = store.read("incidents").sort_values("service_request_id").reset_index(drop=True)
    for who, srid, action, kw in [
        (worker, "C1", "whistle", {"kind": "work", "department": "water"}),  # a worker can't whistle
        (secretary, "C2", "whistle", {"kind": "tough", "department": "water"}),  # not their street
        (Account("kiosk", role="kiosk"), "C1", "assign", {"department": "water"}),
    ]:
        with pytest.raises(PermissionDenied):
            act_on_case(store, who, srid, action, time=T0 + pd.Timedelta(hours=1), **kw)
    with pytest.raises(PermissionDenied):  # collecting into someone else's grid
        act_on_case(store, worker, "C3", "collect", time=T0,
                    incident={"category_code": "01", "item_code": "0101", "level": 1,
                              "source": "patrol", "grid_code": OTHER,
                              "geometry": shapely.Point(118.78, 32.06)})
    after = store.read("incidents").sort_values("service_request_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(before, after)  # refusals changed nothing
    new, ev = act_on_case(store, secretary, "C1", "whistle", time=T0 + pd.Timedelta(hours=1),
                          kind="tough", department="water")
    assert new["stage"] == "whistled" and ev["actor"] == "zhao"
    with pytest.raises(PermissionDenied) as e:
        act_on_case(store, housing, "C1", "report_for_duty", time=T0 + pd.Timedelta(hours=2))
    assert e.value.key == "auth.decision.other_department"
    new, ev = act_on_case(store, water, "C1", "report_for_duty", time=T0 + pd.Timedelta(hours=2))
    assert new["stage"] == "dispatched" and ev["actor"] == "shui"
    with pytest.raises(IllegalTransitionError):  # allowed role, but the workflow says no
        act_on_case(store, water, "C1", "report_back", time=T0 + pd.Timedelta(hours=3))
    events = store.read("incident_events", where={"service_request_id": "C1"}, order_by="time")
    assert events["actor"].tolist() == ["setup-centre", "zhao", "shui"]
    log = store.audit_log(limit=2)
    assert set(log["actor"]) == {"shui"}


def test_exports_contacts_imports_and_plans_are_checked_and_audited(store) -> None:
    _case(store)
    analyst = Account("an", role="analyst", scope_code=GRID[:12])
    admin = Account("root", role="admin")
    masked = export_layer(store, analyst, "incidents")
    assert masked["service_request_id"].tolist() == ["C1"]  # only their community
    assert masked["reporter_name"].tolist() == ["张*"] and masked["reporter_phone"].tolist() == ["*******5678"]
    with pytest.raises(PermissionDenied):
        export_layer(store, analyst, "incidents", unmask=True)
    raw = export_layer(store, admin, "incidents", unmask=True)
    assert sorted(raw["reporter_name"]) == ["张三丰", "张三丰"]
    log = store.audit_log(limit=2)
    assert log[["action", "actor"]].values.tolist() == [["export_unmasked", "root"], ["export", "an"]]
    worker = Account("wang", role="grid_worker_full", scope_code=GRID)
    assert case_contacts(store, worker, "C1")["reporter_phone"] == "13812345678"
    with pytest.raises(PermissionDenied):
        case_contacts(store, worker, "C2")
    assert store.audit_log(limit=1)[["action", "actor", "note"]].values.tolist() == [["unmask", "wang", "C1"]]
    grids = gpd.GeoDataFrame({"code": [GRID], "name": ["一网格"], "kind": ["comprehensive"],
                              "community_code": [GRID[:12]], "households": [300],
                              "population": [800], "workers": [2]},
                             geometry=[shapely.box(118.77, 32.05, 118.78, 32.06)], crs=4326)
    with pytest.raises(PermissionDenied):
        import_layers(store, analyst, {"grids": grids})
    with pytest.raises(PermissionDenied) as e:
        import_layers(store, Account("p", role="planner"), {"incidents": store.read("incidents")})
    assert e.value.key == "auth.decision.layer_not_allowed"
    import_layers(store, Account("p", role="planner"), {"grids": grids}, note="new grids")
    assert store.audit_log(limit=1)["actor"].tolist() == ["p"]
    with pytest.raises(PermissionDenied):
        save_plan_version(store, analyst, "grids", grids, note="x")
    v = save_plan_version(store, admin, "grids", grids, note="v1")
    v2 = save_plan_version(store, Account("p", role="planner"), "grids", grids, note="v2")
    with pytest.raises(PermissionDenied):
        rollback_plan(store, worker, "grids", v)
    assert rollback_plan(store, Account("p", role="planner"), "grids", v) == v2 + 1
    assert store.versions("grids")["actor"].tolist() == ["root", "p", "p"]


def test_accounts_survive_a_whole_store_reset(tmp_path) -> None:
    """The GeoPackage rewrites the whole file on a reset (the demo refill): people stay."""
    grids = gpd.GeoDataFrame({"code": [GRID, OTHER], "name": ["一网格", "二网格"],
                              "kind": ["comprehensive", "dedicated"],
                              "community_code": [GRID[:12], OTHER[:12]], "households": [300, 0],
                              "population": [800, 0], "workers": [2, 0]},
                             geometry=[shapely.box(118.77, 32.05, 118.78, 32.06),
                                       shapely.box(118.78, 32.05, 118.79, 32.06)], crs=4326)
    with open_store(str(tmp_path / "s.gpkg")) as store:
        accounts.create_account(store, "root", "root-password", role="admin", actor="setup")
        token = accounts.sign_in(store, "root", "root-password")
        inode = (tmp_path / "s.gpkg").stat().st_ino
        store.write({"grids": grids}, reset=True, actor="demo")
        assert (tmp_path / "s.gpkg").stat().st_ino != inode  # a new file replaced the old one
        assert store.count("grids") == 2
        assert accounts.resolve_session(store, token).username == "root"
        made = accounts.create_demo_accounts(store)
        assert set(made) == set(accounts.DEMO_USERS)  # one per role
        assert accounts.get_account(store, "worker").scope_code == GRID  # a comprehensive grid
        assert accounts.get_account(store, "community").scope_code == GRID[:12]
        assert accounts.get_account(store, "dept").department == accounts.DEMO_DEPARTMENT
        assert accounts.resolve_session(store, made["kiosk"][1], kiosk=True).role == "kiosk"
        assert accounts.create_demo_accounts(store) == {}  # never twice
