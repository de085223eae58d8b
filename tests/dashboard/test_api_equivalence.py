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
from layers import accounts, analysis, proposals
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
    board = inc.board_kpis(flt, now=NOW)  # the board's KPI row, as views/incidents.py asks
    assert board == inc.kpi_row(cases[flt.mask(cases)], now=NOW, since=since, until=until)
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
    # the board drilled down to that sub-district gives the sub-district's token's numbers
    with open_store(path) as s:
        sub_grids = tuple(g for g in s.read("grids", columns=["code"])["code"].astype(str)
                          if g.startswith(sub))
    drilled = inc.board_kpis(inc.IncidentFilter(start=since, end=until, grids=sub_grids), now=NOW)
    for k in KPIS:
        assert drilled[k] == mine["rows"][0][k], k


def test_board_kpi_row_is_kpi_job_checked_and_audited(world) -> None:
    """The case board's KPI row is one audited kpi_job per view, "overdue only" included."""
    _, _, path, _ = world
    since, until = inc.window_bounds("d90", NOW)
    flt = inc.IncidentFilter(start=since, end=until)
    with open_store(path) as s:
        cases = pd.DataFrame(s.read("incidents", columns=list(inc.COLUMNS))
                             .drop(columns="geometry", errors="ignore"))
        before = len(s.audit_log(limit=1000))
    late = cases[flt.mask(cases)]
    from layers import workflow

    late = late[workflow.overdue(late, now=NOW).to_numpy()]
    got = inc.board_kpis(flt, now=NOW, overdue_only=True)
    want = inc.kpi_row(late, now=NOW, since=since, until=until)
    assert got["incidents"] == want["incidents"] == len(late) > 0
    assert got == pytest.approx(want, nan_ok=True)
    with open_store(path) as s:
        log = s.audit_log(limit=1000)
    assert len(log) == before + 1
    rows = log[log["action"] == analysis.AUDIT_KPIS]
    assert len(rows) == 1 and "overdue_only=True" in rows["note"].iloc[0]
    assert int(rows["rows"].iloc[0]) == len(late)
    # a role that may not see cases is refused by the job the board calls
    from layers.permissions import Account, PermissionDenied

    with open_store(path) as s, pytest.raises(PermissionDenied):
        analysis.kpi_job(s, Account("p", role="planner"), now=NOW)


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


# --------------------------------------------------------------------------- patrol hours

def _patrol_day() -> pd.Timestamp:
    return NOW.normalize() - pd.Timedelta(days=1)


def test_patrol_hours_are_equal_on_page_cli_and_api(world, tmp_path: Path) -> None:
    from dashboard import _patrol, state

    client, tokens, path, sub = world
    day = _patrol_day()
    # the page, as views/patrol.py calls it (whole district, one day)
    grids = _patrol.scope_grids(state.View())
    page = _patrol.compliance(grids, [day]).per_worker.set_index("worker_id")
    # the CLI
    out = tmp_path / "p.csv"
    assert main(["patrols", "--store", path, "--date", str(day.date()), "--out", str(out)]) == 0
    cli = pd.read_csv(out, encoding="utf-8-sig", dtype={"worker_id": str, "grid_code": str}
                      ).set_index("worker_id")
    # the API
    r = client.get("/api/v1/patrols", params={"date": str(day.date())}, headers=tokens["eq-admin"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["source"] == "summary"
    api = pd.DataFrame(body["workers"]).set_index("worker_id")

    assert set(api.index) == set(cli.index) == set(page.index)
    ids = sorted(api.index)
    hours = page.loc[ids, "hours_in_grid"].astype(float)
    assert (hours > 0).sum() > 10  # real patrols to agree on
    assert np.array_equal(api.loc[ids, "hours_in_grid"].astype(float).to_numpy(), hours.to_numpy(),
                          equal_nan=True)
    assert np.allclose(cli.loc[ids, "hours_in_grid"].to_numpy(float), hours.round(3).to_numpy(),
                       equal_nan=True, atol=0, rtol=0)
    for col in ("grid_code", "n_fixes", "meets_rule"):
        assert api.loc[ids, col].tolist() == page.loc[ids, col].tolist() == cli.loc[ids, col].tolist(), col
    # per grid: the page's A/B coverage is the API's
    page_g = _patrol.compliance(grids, [day]).per_grid.set_index("grid_code")
    api_g = pd.DataFrame(body["grids"]).set_index("grid_code")
    assert set(api_g.index) == set(page_g.index)
    assert np.allclose(api_g.loc[page_g.index, "covered_h"].to_numpy(float),
                       page_g["covered_h"].to_numpy(float), rtol=0, atol=0)
    # the cleaning line: the CLI's printed totals are the API's
    assert body["cleaning"]["kept"] == int(_patrol.compliance(grids, [day]).dropped
                                           .set_index("reason").loc["kept", "fixes"])

    # a sub-district's token sees its own workers only, with the same hours
    mine = client.get("/api/v1/patrols", params={"date": str(day.date())}, headers=tokens["eq-sub"])
    assert mine.status_code == 200, mine.text
    m = pd.DataFrame(mine.json()["workers"]).set_index("worker_id")
    assert 0 < len(m) < len(api)
    assert m["grid_code"].str.startswith(sub).all()
    assert set(m.index) == set(api.index[api["grid_code"].str.startswith(sub)])
    assert np.array_equal(m["hours_in_grid"].to_numpy(float),
                          api.loc[m.index, "hours_in_grid"].to_numpy(float), equal_nan=True)
    assert all(g["grid_code"].startswith(sub) for g in mine.json()["grids"])


def test_patrol_job_raw_recompute_equals_the_summary(world) -> None:
    _, _, path, sub = world
    from layers.app import os_account

    with open_store(path) as s:
        fast = analysis.patrol_job(s, os_account(), day=_patrol_day())
        raw = analysis.patrol_job(s, os_account(), day=_patrol_day(), raw=True)
    assert (fast.source, raw.source) == ("summary", "raw")
    a = fast.per_worker.set_index("worker_id").sort_index()
    b = raw.per_worker.set_index("worker_id").sort_index()
    assert a.index.equals(b.index)
    assert np.allclose(a["hours_in_grid"].to_numpy(float), b["hours_in_grid"].to_numpy(float),
                       equal_nan=True)
    assert fast.cleaning_totals().equals(raw.cleaning_totals())


def test_patrol_job_is_checked_scoped_and_audited(world) -> None:
    client, tokens, path, sub = world
    day = str(_patrol_day().date())
    with open_store(path) as s:
        grids = s.read("grids", columns=["code"])["code"].astype(str)
        before = len(s.audit_log(limit=1000))
    other = next(g for g in grids if not g.startswith(sub))
    own = next(g for g in grids if g.startswith(sub))
    # refused: a planner may not see patrols; a sub-district's centre not another's grid
    assert client.get("/api/v1/patrols", params={"date": day},
                      headers=tokens["eq-planner"]).status_code == 403
    out = client.get("/api/v1/patrols", params={"date": day, "grid": other},
                     headers=tokens["eq-sub"])
    assert out.status_code == 403 and out.json()["errors"][0]["code"] == \
        "auth.decision.out_of_scope"
    assert client.get("/api/v1/patrols", params={"date": "yesterday"},
                      headers=tokens["eq-sub"]).status_code == 422
    # the same refusal in the function, hence in the CLI
    assert main(["patrols", "--store", path, "--date", day, "--as", "eq-planner",
                 "--out", str(Path(path).with_suffix(".csv"))]) == 1
    assert not Path(path).with_suffix(".csv").exists()
    ok = client.get("/api/v1/patrols", params={"date": day, "grid": own}, headers=tokens["eq-sub"])
    assert ok.status_code == 200
    assert {w["grid_code"] for w in ok.json()["workers"]} == {own}
    with open_store(path) as s:
        log = s.audit_log(limit=1000)
    assert len(log) == before + 1  # one audit row per call, none for the refusals
    row = log[log["action"] == analysis.AUDIT_PATROLS]
    assert row["actor"].tolist() == ["eq-sub"]
    assert f"grids={own}" in row["note"].iloc[0] and f"scope={sub}" in row["note"].iloc[0]
    assert int(row["rows"].iloc[0]) == len(ok.json()["workers"])
    from layers.app import is_data_action

    assert not is_data_action(analysis.AUDIT_PATROLS)


# --------------------------------------------------------------------------- planner proposals

def _membership(codes: pd.Series) -> set[frozenset[str]]:
    """The proposal as a partition of the building ids (independent of the grids' codes)."""
    return {frozenset(ids) for ids in codes.groupby(codes.to_numpy()).groups.values()}


def test_planner_proposals_are_equal_on_page_cli_and_api(world, tmp_path: Path) -> None:
    import geopandas as gpd

    from dashboard import _planner

    client, tokens, path, sub = world
    with open_store(path) as s:
        com = sorted(s.read("communities", columns=["code"])["code"].astype(str))[0]
    seed, limit = 7, 600.0
    # the page, as views/planner.py runs it
    params = _planner.Params(seed=seed, time_limit_s=limit)
    model = _planner.run_plan(_planner.scope_inputs(f"com:{com}"), params)
    ev = _planner.evaluate(model)
    page_codes = pd.Series(model.labels[model.buildings["unit"].to_numpy()],
                           index=model.buildings["id"].astype(str).to_numpy())
    # the CLI
    out = tmp_path / "plan.geojson"
    assert main(["repartition", "--store", path, "--community", com, "--seed", str(seed),
                 "--time-limit-s", str(limit), "--out", str(out)]) == 0
    cli = gpd.read_file(out).set_index("code")
    # the API
    r = client.post("/api/v1/plans/proposals", headers=tokens["eq-planner"],
                    json={"scope": f"com:{com}", "seed": seed, "time_limit_s": limit})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["stopped_by_time"] == []
    api = gpd.GeoDataFrame.from_features(body["grids"]["features"], crs=4326).set_index("code")
    api_codes = pd.Series(body["assignment"]).dropna()

    assert len(api) > 1 and set(api.index) == set(cli.index)  # the same grids, codes included
    for col in ("households", "population"):
        assert api.loc[cli.index, col].tolist() == cli[col].tolist(), col
    assert all(a.equals_exact(c, 1e-9) for a, c in zip(api.loc[cli.index].geometry, cli.geometry,
                                                        strict=True))
    # the page's grids hold the same buildings (the page keeps current codes where it can)
    assert _membership(page_codes) == _membership(api_codes.loc[page_codes.index])
    assert sorted(ev.regions.loc[~ev.regions.get("locked", pd.Series(False, index=ev.regions.index))
                                 .fillna(False).astype(bool), "households"].astype(int)) == \
        sorted(api["households"].astype(int))
    # one comparison table
    stats = ("grids", "households_min", "households_median", "households_max",
             "within_band_share", "moved_share", "workers_needed")
    for plan in ("current", "proposed"):
        for col in stats:
            assert body["summary"][plan][col] == pytest.approx(float(ev.summary.loc[plan, col])), \
                (plan, col)


def test_proposal_job_is_checked_and_audited(world, tmp_path: Path) -> None:
    client, tokens, path, sub = world
    with open_store(path) as s:
        coms = s.read("communities", columns=["code", "subdistrict_code"])
    other = sorted(coms.loc[coms["subdistrict_code"].astype(str) != sub, "code"].astype(str))[0]
    # a command centre is no planner; the function refuses it before any work
    refused = client.post("/api/v1/plans/proposals", headers=tokens["eq-sub"],
                          json={"scope": f"com:{other}"})
    assert refused.status_code == 403
    assert main(["repartition", "--store", path, "--community", other, "--as", "eq-sub",
                 "--out", str(tmp_path / "x.geojson")]) == 1
    assert not (tmp_path / "x.geojson").exists()
    # a planner scoped to one sub-district may not propose for another's community
    with open_store(path) as s:
        accounts.create_account(s, "eq-planner-sub", "correct horse battery", role="planner",
                                scope_code=sub, actor="tests")
        from layers.app import cli_account
        from layers.permissions import PermissionDenied

        with pytest.raises(PermissionDenied) as e:
            proposals.proposal_job(s, cli_account(s, "eq-planner-sub"), scope=f"com:{other}")
        assert e.value.decision.key == "auth.decision.out_of_scope"
    bad = client.post("/api/v1/plans/proposals", headers=tokens["eq-planner"],
                      json={"scope": f"com:{other}", "band": [500, 300]})
    assert bad.status_code == 422 and bad.json()["errors"][0]["column"] == "band"
    assert client.post("/api/v1/plans/proposals", headers=tokens["eq-planner"],
                       json={"scope": "com:999999999999"}).status_code == 404
    with open_store(path) as s:
        before = len(s.audit_log(limit=1000))
    ok = client.post("/api/v1/plans/proposals", headers=tokens["eq-planner"],
                     json={"scope": f"com:{other}", "seed": 1, "max_steps": 50})
    assert ok.status_code == 200, ok.text
    with open_store(path) as s:
        log = s.audit_log(limit=1000)
        assert not s.has_layer("plan_versions") or s.count("plan_versions") == 0  # nothing saved
    assert len(log) == before + 1
    row = log[log["action"] == analysis.AUDIT_PROPOSAL]
    assert row["actor"].tolist() == ["eq-planner"]
    assert f"scope=com:{other}" in row["note"].iloc[0] and "seed=1" in row["note"].iloc[0]
    assert int(row["rows"].iloc[0]) == len(ok.json()["grids"]["features"])
