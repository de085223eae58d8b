"""The case board refuses an action on a case someone else changed since the page showed it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from layers.store import open_store
from layers.workflow import transition

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def own_store(env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A private copy of the small demo (this test changes a case behind the page's back)."""
    path = tmp_path / "demo.gpkg"
    shutil.copy(env, path)
    monkeypatch.setenv("GRIDPULSE_STORE", str(path))
    return str(path)


def test_an_action_on_a_case_changed_meanwhile_asks_to_reload(own_store: str) -> None:
    from streamlit.testing.v1 import AppTest

    with open_store(own_store) as s:
        df = s.read("incidents", columns=["service_request_id", "updated_datetime",
                                          "requested_datetime"],
                    where={"stage": "handling", "extensions": 0},
                    order_by="requested_datetime", descending=True, limit=1)  # in the list
        n_events = s.count("incident_events")
    srid = str(df["service_request_id"].iloc[0])
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=90)
    at.run()
    at.switch_page("views/incidents.py").run()
    at.sidebar.selectbox(key="inc_window").set_value("all").run()
    at.selectbox(key="inc_case").set_value(srid).run()
    at.selectbox(key="inc_action").set_value("grant_extension").run()
    assert not at.exception

    # another operator grants an extension while this page still shows none granted: the
    # action stays legal (one more is allowed), but it was decided on a stale case
    last = df[["updated_datetime", "requested_datetime"]].iloc[0].dropna().max()
    with open_store(own_store) as s:
        transition(s, srid, "grant_extension", actor="李四", role="subdistrict_leader",
                   time=pd.Timestamp(last) + pd.Timedelta(seconds=1), hours=24)

    at.button(key="inc_submit").click().run()
    assert not at.exception
    err = " ".join(e.value for e in at.error)
    assert "这条案件刚刚被他人修改，请刷新后重试" in err
    assert not at.warning  # the refusal says it; the page now shows the current case
    with open_store(own_store) as s:
        assert s.count("incident_events") == n_events + 1  # only the other operator's event
        row = s.read("incidents", columns=["extensions"], where={"service_request_id": srid})
        assert row["extensions"].iloc[0] == 1
    # the page now shows the current case; acting again on it is accepted, with no warning
    at.button(key="inc_submit").click().run()
    assert not at.exception and not at.error and not at.warning
    with open_store(own_store) as s:
        row = s.read("incidents", columns=["extensions"], where={"service_request_id": srid})
        assert s.count("incident_events") == n_events + 2  # the other's, then the retry
        assert row["extensions"].iloc[0] == 2


def test_a_case_changed_while_shown_is_flagged_on_the_next_run(own_store: str) -> None:
    from streamlit.testing.v1 import AppTest

    with open_store(own_store) as s:
        df = s.read("incidents", columns=["service_request_id", "updated_datetime",
                                          "requested_datetime"], where={"stage": "collected"},
                    order_by="requested_datetime", descending=True, limit=1)
    srid = str(df["service_request_id"].iloc[0])
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=90)
    at.run()
    at.switch_page("views/incidents.py").run()
    at.sidebar.selectbox(key="inc_window").set_value("all").run()
    at.selectbox(key="inc_case").set_value(srid).run()
    assert not at.warning
    last = df[["updated_datetime", "requested_datetime"]].iloc[0].dropna().max()
    with open_store(own_store) as s:  # closed elsewhere: no action is left to click here
        transition(s, srid, "close_no_action", actor="李四", role="command_centre",
                   time=pd.Timestamp(last) + pd.Timedelta(seconds=1), reason="duplicate")
    at.checkbox(key="inc_show_all").check().run()  # any rerun
    assert [w.value for w in at.warning] == ["这条案件刚刚被他人修改，下方已是最新状态，请核对后再操作"]
    at.checkbox(key="inc_show_all").uncheck().run()
    assert not at.warning  # said once
