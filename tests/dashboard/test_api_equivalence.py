"""One question, one answer in every front end: the page's own data functions, the CLI and the
intake API give identical hot spot classes and case KPIs on the small demo.

All three call the same :mod:`layers.analysis` jobs (permission, scope, audit): the API is
served by FastAPI's TestClient over the real app and a real store file (a copy of the demo).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import argon2
import numpy as np
import pandas as pd
import pyogrio
import pytest
from fastapi.testclient import TestClient

from dashboard import _hotspots as hot
from dashboard import _incidents as inc
from data.demo import DEMO_ANCHOR
from gridpulse.cli import main
from layers import accounts, analysis
from layers.store import open_store

NOW = pd.Timestamp(DEMO_ANCHOR).tz_localize(None) if pd.Timestamp(DEMO_ANCHOR).tzinfo \
    else pd.Timestamp(DEMO_ANCHOR)
KPIS = ("incidents", "accepted", "closed", "open", "due", "closed_on_time", "overdue_open")


@pytest.fixture()
def world(env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A copy of the demo with API tokens: district admin, one sub-district's centre, a planner."""
    from gridpulse.api import create_app
    from layers.apitokens import issue_api_token

    path = tmp_path / "demo.gpkg"
    shutil.copy(env, path)
    monkeypatch.setenv("GRIDPULSE_STORE", str(path))
    monkeypatch.setattr(accounts, "HASHER", argon2.PasswordHasher(time_cost=1, memory_cost=1024,
                                                                  parallelism=1))
    with open_store(str(path)) as s:
        sub = sorted(s.read("subdistricts", columns=["code"])["code"].astype(str))[0]
        tokens = {}
        for user, role, scope in (("eq-admin", "admin", ""), ("eq-sub", "command_centre", sub),
                                  ("eq-planner", "planner", "")):
            accounts.create_account(s, user, "correct horse battery", role=role,
                                    scope_code=scope, actor="tests")
            tokens[user] = {"Authorization": f"Bearer {issue_api_token(s, user, actor='tests')}"}
    with TestClient(create_app(str(path))) as client:
        yield client, tokens, str(path), sub


def test_hotspot_classes_are_equal_on_page_cli_and_api(world, tmp_path: Path) -> None:
    client, tokens, path, _ = world
    since, until = inc.window_bounds("d90", NOW)
    flt = inc.IncidentFilter(start=since, end=until)
    page_gi = hot.gi_table(9, flt)
    page_em, _ = hot.emerging_table(9, flt, now=NOW)
    end = until.ceil("D")
    out = tmp_path / "hot.gpkg"
    assert main(["hotspots", "--store", path, "--out", str(out), "--res", "9",
                 "--from", str(since), "--to", str(end)]) == 0
    cli = pyogrio.read_dataframe(out, layer="hotspots")
    cli.index = pd.Index(cli["cell"].astype(np.int64), name="cell")
    q = {"res": 9, "from": str(since), "to": str(until), "emerging": "false"}
    api_gi = client.get("/api/v1/hotspots", params=q, headers=tokens["eq-admin"])
    api_em = client.get("/api/v1/hotspots", params={**q, "to": str(end), "emerging": "true"},
                        headers=tokens["eq-admin"])
    assert api_gi.status_code == api_em.status_code == 200, api_gi.text
    import h3.api.basic_int as h3i

    gi = pd.DataFrame(api_gi.json()["cells"])
    gi.index = pd.Index([h3i.str_to_int(c) for c in gi["cell"]], name="cell")
    em = pd.DataFrame(api_em.json()["cells"])
    em.index = pd.Index([h3i.str_to_int(c) for c in em["cell"]], name="cell")

    assert set(gi.index) == set(page_gi.index) == set(cli.index)  # one study area
    order = page_gi.index
    assert (gi.loc[order, "gi_bin"].to_numpy() == page_gi["gi_bin"].to_numpy()).all()
    assert (cli.loc[order, "gi_bin"].to_numpy() == page_gi["gi_bin"].to_numpy()).all()
    assert (gi.loc[order, "count"].to_numpy() == page_gi["count"].to_numpy()).all()
    assert (page_gi["gi_bin"] != 0).any()  # something to agree on ...
    assert np.allclose(gi.loc[order, "z"].to_numpy(float), page_gi["z"].to_numpy(float))  # ... to the z
    assert api_em.json()["n_steps"] >= analysis.MIN_EHSA_STEPS
    assert em.loc[page_em.index, "ehsa"].tolist() == page_em["pattern"].tolist() == \
        cli.loc[page_em.index, "ehsa"].tolist()


def test_case_kpis_are_equal_on_board_cli_and_api(world, tmp_path: Path) -> None:
    client, tokens, path, sub = world
    since, until = inc.window_bounds("d90", NOW)
    with open_store(path) as s:
        cases = pd.DataFrame(s.read("incidents", columns=list(inc.COLUMNS))
                             .drop(columns="geometry", errors="ignore"))
    flt = inc.IncidentFilter(start=since, end=until)
    board = inc.kpi_row(cases[flt.mask(cases)], now=NOW, since=since, until=until)
    out = tmp_path / "k.csv"
    assert main(["kpis", "--store", path, "--by", "department", "--out", str(out),
                 "--now", str(NOW), "--from", str(since), "--to", str(until)]) == 0
    cli = pd.read_csv(out, encoding="utf-8-sig")[list(KPIS)].sum()
    r = client.get("/api/v1/kpis", params={"from": str(since), "to": str(until), "now": str(NOW)},
                   headers=tokens["eq-admin"])
    assert r.status_code == 200, r.text
    api = r.json()["rows"]
    assert [a["group"] for a in api] == ["all"]
    api = api[0]
    assert board["open"] > 0 and board["closed"] > 0
    for k in KPIS:
        assert board[k] == api[k] == cli[k], k
    for k in ("closure_rate", "on_time_rate", "rework_rate", "extension_rate"):
        assert api[k] == pytest.approx(board[k]), k
    # a sub-district's token counts its own cases: the board's numbers for that scope
    mine = client.get("/api/v1/kpis", params={"from": str(since), "to": str(until),
                                              "now": str(NOW)}, headers=tokens["eq-sub"]).json()
    scoped = cases[flt.mask(cases) & cases["grid_code"].astype(str).str.startswith(sub).to_numpy()]
    board_sub = inc.kpi_row(scoped, now=NOW, since=since, until=until)
    assert 0 < mine["rows"][0]["incidents"] == board_sub["incidents"] < board["incidents"]
    assert mine["rows"][0]["open"] == board_sub["open"]


def test_analysis_jobs_are_checked_and_audited(world) -> None:
    client, tokens, path, sub = world
    refused = client.get("/api/v1/kpis", headers=tokens["eq-planner"])  # planners see no cases
    assert refused.status_code == 403
    assert client.get("/api/v1/hotspots", params={"res": 6},
                      headers=tokens["eq-admin"]).status_code == 422
    ok = client.get("/api/v1/hotspots", params={"res": 8, "emerging": "false"},
                    headers=tokens["eq-sub"])
    assert ok.status_code == 200
    with open_store(path) as s:
        log = s.audit_log(limit=20)
        cases_in_sub = s.count("incidents", where={"grid_code": [
            g for g in s.read("grids", columns=["code"])["code"].astype(str) if g.startswith(sub)]})
    mine = log[(log["actor"] == "eq-sub") & (log["action"] == analysis.AUDIT_HOTSPOTS)]
    assert len(mine) == 1 and f"scope={sub}" in mine["note"].iloc[0]
    assert int(mine["rows"].iloc[0]) == cases_in_sub == sum(c["count"] for c in ok.json()["cells"])
    assert not ((log["actor"] == "eq-planner") & log["action"].str.startswith("analysis")).any()
    from layers.app import is_data_action

    assert not is_data_action(analysis.AUDIT_KPIS)  # reads keep the pages' caches warm
