"""AppTests of the sign-in gate: the form, wrong passwords, signing in and out, contacts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from layers import accounts
from layers.store import open_store

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def private_store(env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    path = tmp_path / "demo.gpkg"
    shutil.copy(env, path)
    monkeypatch.setenv("GRIDPULSE_STORE", str(path))
    with open_store(str(path)) as s:
        accounts.create_account(s, "li", "li-password-1", role="analyst", actor="tests")
    return str(path)


def _anonymous():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=90)
    at.session_state["gp_token"] = ""  # nobody signed in
    return at.run()


def _md(at) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_an_anonymous_run_shows_the_form_and_nothing_else(private_store) -> None:
    at = _anonymous()
    assert not at.exception
    assert "## 登录 GridPulse 网格脉搏" in _md(at)
    assert "合成演示数据" not in _md(at) and not at.metric and not at.dataframe
    assert {t.label for t in at.text_input} == {"用户名", "密码"}
    at.text_input(key="gp_user").input("li")
    at.text_input(key="gp_password").input("wrong-password")
    at.button[0].click().run()
    assert [e.value for e in at.error] == ["用户名或密码不正确"]
    at.text_input(key="gp_password").input("li-password-1")
    at.button[0].click().run()
    assert not at.exception
    assert any("当前用户：li（分析人员（只读））" in c.value for c in at.sidebar.caption)
    assert "合成演示数据" in _md(at)
    assert at.session_state["gp_auth_ms"] >= 0
    at.button(key="gp_sign_out").click().run()
    assert "## 登录 GridPulse 网格脉搏" in _md(at)
    with open_store(private_store) as s:
        assert s.records("gp_sessions", where={"username": "li"}) == []


def test_a_grid_worker_unmasks_a_contact_of_their_own_case_and_it_is_audited(private_store) -> None:
    from streamlit.testing.v1 import AppTest

    from tests._signin import session_token

    with open_store(private_store) as s:
        inc = s.read("incidents", columns=["service_request_id", "grid_code", "reporter_phone",
                                           "requested_datetime"])
    case = inc.dropna(subset=["reporter_phone"]).sort_values("requested_datetime").iloc[-1]
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=90)
    at.session_state["gp_token"] = session_token(private_store, "w-contacts",
                                                 role="grid_worker_full",
                                                 scope_code=str(case["grid_code"]))
    at.run()
    at.switch_page("views/incidents.py").run()
    at.sidebar.selectbox(key="inc_window").set_value("all").run()
    at.selectbox(key="inc_case").set_value(case["service_request_id"]).run()
    assert not at.exception
    assert case["reporter_phone"] not in " ".join(m.value for m in at.markdown)  # masked first
    at.button(key="inc_unmask").click().run()
    assert any(case["reporter_phone"] in x.value for x in at.text)
    with open_store(private_store) as s:
        log = s.audit_log(limit=20)
    # the newest unmask row (the board also audits each view of its KPI row, as the account)
    unmasks = log[log["action"] == "unmask"]
    assert len(unmasks) == 1
    top = unmasks.iloc[0]
    assert (top["action"], top["actor"], top["note"]) == ("unmask", "w-contacts",
                                                         case["service_request_id"])
    views = log[log["action"].astype(str).str.startswith("analysis_kpi")]
    assert len(views) >= 1 and set(views["actor"]) == {"w-contacts"}, views
