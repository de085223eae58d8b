"""The 网格调整 re-partition page: the editable plan model, and AppTest runs of the page.

The model tests run on the small demo district straight from the store (no Streamlit); the
AppTest tests run the real shell and switch to the page (``dashboard/app.py`` lists it).
Saving and rolling back run on a private copy of the demo GeoPackage.
"""

from __future__ import annotations

import shutil
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely

from dashboard import _planner as pl
from layers.permissions import Account
from layers.planner import grid_staff, repartition
from layers.store import open_store

ROOT = Path(__file__).resolve().parents[2]
COMMUNITY = "320106001001"  # 兰石社区 of the small demo


@pytest.fixture(scope="module")
def layers(demo_store: str) -> dict[str, pd.DataFrame]:
    s = open_store(demo_store)
    try:
        return {n: s.read(n) for n in ("communities", "grids", "buildings", "roads", "workers")}
    finally:
        s.close()


def _inputs(layers, scope: str) -> pl.Inputs:
    return pl.inputs_from_layers(scope, layers["communities"], layers["grids"], layers["buildings"],
                                 layers["roads"])


@pytest.fixture(scope="module")
def model(layers) -> pl.PlanModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pl.run_plan(_inputs(layers, f"com:{COMMUNITY}"), pl.Params())


# ------------------------------------------------------------------------------ the model


@pytest.mark.parametrize("scope", [f"com:{COMMUNITY}", "sub:320106002", "district"])
def test_the_page_model_reproduces_the_engines_comparison_row(layers, scope) -> None:
    inputs = replace(_inputs(layers, scope), staff=grid_staff(layers["workers"]))
    p = pl.Params()
    res = repartition(inputs.units, inputs.containers, roads=inputs.roads, band=(p.lo, p.hi),
                      current_workers=inputs.workers, staff=inputs.staff, report_outside=False,
                      rng=np.random.default_rng(0))
    ev = pl.evaluate(pl.build_model(inputs, p, res))
    got, want = ev.summary.loc["proposed"], res.summary.loc["proposed"]
    for col in pl.TABLE_COLS:
        assert got[col] == pytest.approx(want[col], rel=1e-9, abs=1e-9), col
    assert list(ev.summary.index) == ["current", "proposed"]


def test_grids_are_unions_of_cells_and_codes_continue_the_current_grids(model, layers) -> None:
    ev = pl.evaluate(model)
    metric = ev.regions.to_crs(model.metric)
    labels = model.labels
    for r, geom in enumerate(metric.geometry):
        cells = [pl.unit_cell(model, u) for u in np.flatnonzero(labels == r)]
        assert shapely.union_all(cells).difference(geom).area < 1.0  # fillers may add land
    current = set(layers["grids"].loc[layers["grids"]["community_code"] == COMMUNITY, "code"])
    assert len(set(model.all_codes)) == len(model.all_codes)
    assert set(model.all_codes) <= current  # 5 grids continue the 5 current ones
    assert list(ev.regions["code"]) == model.all_codes
    assert ev.regions["households"].sum() == model.buildings["households"].sum()


def test_a_move_changes_assignment_polygons_and_metrics_fast(model) -> None:
    before = pl.evaluate(model)
    unit = pl.movable_units(model)[0]
    src, dst = model.region(unit), pl.neighbours(model, unit)[0]
    t0 = time.perf_counter()
    moved = pl.move(model, unit, dst)
    after = pl.evaluate(moved)
    assert time.perf_counter() - t0 < 1.0  # one community: well under a second
    hh = pl.unit_households(model)[unit]
    assert after.regions["households"][src] == before.regions["households"][src] - hh
    assert after.regions["households"][dst] == before.regions["households"][dst] + hh
    cell = pl.unit_cell(model, unit)
    geoms = after.regions.to_crs(model.metric).geometry
    assert geoms.iloc[dst].buffer(0.01).covers(cell)
    assert geoms.iloc[src].intersection(cell).area < 1.0
    assert after.summary.loc["proposed", "moved_share"] != before.summary.loc["proposed", "moved_share"]
    assert after.summary.loc["current"].equals(before.summary.loc["current"])
    assert pl.undo(moved).labels.tolist() == model.labels.tolist()
    assert moved.moves[-1] == (model.unit_ids[unit], model.all_codes[src], model.all_codes[dst])
    assert moved.region(unit) == dst and model.region(unit) == src  # the model is immutable


def test_moves_stay_in_the_community_and_never_empty_a_grid(layers) -> None:
    m = pl.run_plan(_inputs(layers, "sub:320106001"), pl.Params())
    assert len(m.plans) == 2
    for u in range(m.n_units):
        c = m.units[u][0]
        first, k = m.offsets[c], m.partitions[c].k
        assert all(first <= r < first + k for r in pl.neighbours(m, u))
    for u in range(m.n_units):
        if not pl.can_move(m, u):
            c, cell = m.units[u]
            part = m.partitions[c]
            assert np.count_nonzero(part.assignment[: m.plans[c].n_units] == part.assignment[cell]) == 1
    with pytest.raises(ValueError, match="does not border"):
        pl.move(m, 0, m.region(0))


def test_violations_are_named_in_both_languages(layers) -> None:
    # a band no grid can meet: every grid is out of band, with a reason
    m = pl.run_plan(_inputs(layers, f"com:{COMMUNITY}"), pl.Params(lo=900, hi=950))
    ev = pl.evaluate(m)
    assert ev.violations and all(v["code"] in ("under_band", "over_band") for v in ev.violations)
    assert {v["reason"] for v in ev.violations} == {"indivisible_total"}
    assert {v["grid"] for v in ev.violations} <= set(m.all_codes)
    names = dict(zip(m.all_codes, m.all_names, strict=True))
    zh = pl.violation_rows(ev.violations, names, "zh")
    en = pl.violation_rows(ev.violations, names, "en")
    assert [zh.index.name, *zh.columns] == ["级别", "网格", "问题及原因", "修改方法"]
    assert [en.index.name, *en.columns] == ["Severity", "Grid", "Problem and reason", "How to fix"]
    assert zh["问题及原因"].str.contains("户数.*无法整分成若干个都在区间内的网格").all()
    assert not zh["问题及原因"].str.contains(r"planner\.").any()
    assert en["Problem and reason"].str.contains("households, (?:below|above) the").all()
    assert (zh.index == "错误").all() and zh["修改方法"].str.len().gt(0).all()


def test_unit_at_finds_the_clicked_building(model) -> None:
    b = model.buildings.iloc[7]
    assert pl.unit_at(model, b.geometry.x, b.geometry.y) == int(b["unit"])
    assert pl.unit_at(model, 0.0, 0.0) is None


def test_the_saved_layer_replaces_only_the_communitys_comprehensive_grids(model, layers) -> None:
    ev = pl.evaluate(model)
    full = pl.full_layer(layers["grids"], pl.plan_layer(ev.regions), [COMMUNITY])
    others = layers["grids"][(layers["grids"]["community_code"] != COMMUNITY)
                             | (layers["grids"]["kind"] == "dedicated")]
    assert len(full) == len(others) + len(ev.regions)
    assert full["code"].is_unique
    data = pl.export_bytes(model, ev, ".geojson")
    assert b'"320106001001' in data and "网格".encode() in data


# ------------------------------------------------------------------------------ the page


def _open(app, **params: str):
    for k, v in params.items():
        app.query_params[k] = v
    app.run()
    app.switch_page("views/planner.py").run()
    assert not app.exception, app.exception
    return app


def test_page_runs_a_community_and_shows_maps_table_and_checks(app) -> None:
    at = _open(app, sub="320106001", com=COMMUNITY)
    assert "## 网格调整（重新划分网格）" in [m.value for m in at.markdown]
    assert at.info[0].value.startswith("在左侧设置参数")
    at.button(key="pl_run").click().run()
    assert not at.exception, at.exception
    assert len(at.get("component_instance")) == 2  # current and proposed maps, side by side
    table = at.table[0].value
    assert list(table.columns) == ["现状", "调整方案"]
    assert table.loc["网格数", "调整方案"] == "5" and table.loc["区间内占比", "现状"] == "60.0%"
    assert any(c.value.startswith("用时") for c in at.caption)
    assert at.success[0].value == "所有约束均已满足"
    assert list(at.dataframe[0].value.columns)[:3] == ["网格代码", "网格", "户数"]


def test_page_locks_a_grid_and_shows_staff_rows(app) -> None:
    at = _open(app, sub="320106001", com=COMMUNITY)
    frozen = f"{COMMUNITY}002"
    at.multiselect(key="pl_locked").set_value([frozen]).run()
    at.button(key="pl_run").click().run()
    assert not at.exception, at.exception
    m = at.session_state["pl_model"]
    assert m.params.locked == (frozen,) and frozen not in m.all_codes
    grids = at.dataframe[0].value
    assert frozen in set(grids["网格代码"]) and grids["网格代码"].is_unique
    table = at.table[0].value
    assert "AB岗不足 2 人的网格数" in table.index and "专职网格员人均户数中位" in table.index


def test_page_moves_a_compound_and_undoes_it(app) -> None:
    at = _open(app, sub="320106001", com=COMMUNITY)
    at.button(key="pl_run").click().run()
    at.session_state["pl_pick"] = pl.movable_units(at.session_state["pl_model"])[0]
    at.run()
    before = at.table[0].value["调整方案"].tolist()
    assert any("已选：小区" in x.value for x in at.markdown)
    at.button(key="pl_move").click().run()
    assert not at.exception, at.exception
    assert at.success[0].value.startswith("已把")
    assert at.table[0].value["调整方案"].tolist() != before
    at.button(key="pl_undo").click().run()
    assert at.table[0].value["调整方案"].tolist() == before


def test_page_in_english_shows_the_15_minute_circle(app) -> None:
    at = _open(app, sub="320106001", com=COMMUNITY, lang="en")
    at.segmented_control(key="pl_section").set_value("circle").run()
    assert not at.exception, at.exception
    assert "#### The 15-minute circle (5/10/15-minute walks)" in [m.value for m in at.markdown]
    cov = at.table[0].value
    assert list(cov["Minutes"]) == [5, 10, 15]
    assert set(cov["Meets 85%"]) <= {"✓", "✗"}
    # the elderly walking speed beside the default one, never covering more
    share = cov["Share"].str.rstrip("%").astype(float)
    elderly = cov["Share, elderly (3 km/h)"].str.rstrip("%").astype(float)
    assert (elderly <= share).all()
    assert any(m.value.startswith("**Within 15 minutes:") for m in at.markdown)
    assert len(at.get("component_instance")) == 1


@pytest.fixture()
def private_store(env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    path = tmp_path / "demo.gpkg"
    shutil.copy(env, path)
    monkeypatch.setenv("GRIDPULSE_STORE", str(path))
    return str(path)


def test_page_saves_versions_and_rolls_back_with_confirmation(private_store) -> None:
    from streamlit.testing.v1 import AppTest

    from layers import plans
    from tests._signin import ADMIN

    s = open_store(private_store)
    try:
        before = s.read("buildings", columns=["id", "grid_code"]).set_index("id")["grid_code"]
    finally:
        s.close()
    at = _open(AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120),
               sub="320106001", com=COMMUNITY)
    at.number_input(key="pl_hi_households").set_value(420).run()  # a plan that differs
    at.button(key="pl_run").click().run()
    at.segmented_control(key="pl_section").set_value("versions").run()
    at.button(key="pl_save").click().run()
    assert at.warning[-1].value.startswith("请填写")  # why is required; who is the account
    at.text_input(key="pl_note").input("兰石社区户数均衡").run()
    # the demo district has grids out of the band elsewhere: the whole plan breaks hard rules,
    # and saving is refused until the planner confirms (the rule lives in layers.plans)
    at.button(key="pl_save").click().run()
    assert any(w.value.startswith("本方案有") for w in at.warning)
    s = open_store(private_store)
    try:
        assert plans.plan_versions(s).empty  # nothing saved
    finally:
        s.close()
    at.checkbox(key="pl_confirm_violations").check().run()
    at.button(key="pl_save").click().run()
    assert not at.exception, at.exception
    today = plans.today_local()
    assert at.success[0].value == f"已保存为方案版本 v2（生效日期 {today:%Y-%m-%d}）"  # v1: the baseline
    s = open_store(private_store)
    try:
        vers = plans.plan_versions(s)
        live = s.read("grids")
        now = s.read("buildings", columns=["id", "grid_code"]).set_index("id")["grid_code"]
        log = s.audit_log(limit=8)
    finally:
        s.close()
    assert vers["version"].tolist() == [1, 2] and vers["live"].tolist() == [False, True]
    assert vers["effective"].tolist() == [today - pd.Timedelta(days=1), today]
    assert vers["n_errors"].iloc[1] > 0 and vers["confirmed"].iloc[1]
    assert (log["actor"] == ADMIN).sum() >= 2 and log["note"].str.contains("兰石社区户数均衡").any()
    assert {"grids", "buildings", "workers", "plan"} <= set(log["layer"])  # one plan, three layers
    com = live[(live["community_code"] == COMMUNITY) & (live["kind"] == "comprehensive")]
    assert com["households"].max() <= 420
    assert (now != before.reindex(now.index)).any()  # buildings moved with their grids
    # the history lists the recorded violations
    history = at.dataframe[-1].value
    assert history.iloc[0]["版本"] == "v2" and history.iloc[0]["状态"] == "现行"
    assert history.iloc[0]["记录的未满足规则"].startswith("未满足的硬性规则")
    # roll back to the baseline: asks first (its recorded violations too), then saves v3
    assert at.selectbox(key="pl_rb_version").value == 1
    at.button(key="pl_rollback").click().run()
    assert any("确定把网格图层回滚到 v1" in w.value for w in at.warning)
    at.checkbox(key="pl_rb_confirm_viol").check().run()
    at.button(key="pl_confirm_yes").click().run()
    assert not at.exception, at.exception
    assert any(x.value == "已回滚：v1 的方案另存为 v3" for x in at.success)
    s = open_store(private_store)
    try:
        vers = plans.plan_versions(s)
        back = s.read("buildings", columns=["id", "grid_code"]).set_index("id")["grid_code"]
        grids_back = s.read("grids")
        v1 = plans.read_plan(s, 1)
    finally:
        s.close()
    assert vers["source_version"].tolist()[-1] == 1 and vers["live"].tolist() == [False, False, True]
    assert back.sort_index().to_dict() == before.sort_index().to_dict()
    assert sorted(grids_back["code"]) == sorted(v1.grids["code"])


def test_a_plan_breaking_a_hard_rule_is_saved_only_when_confirmed(private_store, layers) -> None:
    from layers import plans

    m = pl.run_plan(_inputs(layers, f"com:{COMMUNITY}"), pl.Params())
    # move the heaviest movable unit out of its grid until a grid leaves the band
    ev = pl.evaluate(m)
    hh = pl.unit_households(m)
    for _ in range(6):
        if pl.open_errors(ev):
            break
        unit = max(pl.movable_units(m), key=lambda u: hh[u])
        m = pl.move(m, unit, pl.neighbours(m, unit)[0])
        ev = pl.evaluate(m)
    errors = pl.open_errors(ev)
    assert errors
    # what the manual moves broke is blamed on them, not on the engine
    assert all(v["reason"] == "manual_move" and v["moved_units"] for v in errors)
    planner = Account("zhang-planner", role="planner", display_name="张规划")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(pl.OpenViolationsError):
            pl.save_plan(m, ev, actor=planner, note="手工调整")
        written = pl.save_plan(m, ev, actor=planner, note="手工调整", confirm_violations=True)
    s = open_store(private_store)
    try:
        row = plans.plan_versions(s).set_index("version").loc[written]
    finally:
        s.close()
    # the version records the open violations; those the manual moves broke are named as such
    manual = [v for v in row["violations"] if v.get("reason") == "manual_move"]
    assert {(v["code"], v["grid"]) for v in errors} <= {(v["code"], v.get("grid")) for v in row["violations"]}
    assert manual and all(v["moved_units"] for v in manual)
    assert row["confirmed"] and row["note"] == "手工调整"


def test_a_locked_grid_is_kept_in_the_plan_and_the_saved_layer(layers) -> None:
    grids = layers["grids"]
    mine = grids[(grids["community_code"] == COMMUNITY) & (grids["kind"] == "comprehensive")]
    frozen = str(mine["code"].iloc[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = pl.run_plan(_inputs(layers, f"com:{COMMUNITY}"), pl.Params(locked=(frozen,)))
    ev = pl.evaluate(m)
    assert frozen not in m.all_codes  # not among the editable grids
    row = ev.regions[ev.regions["code"] == frozen]
    assert len(row) == 1 and ev.regions.index[ev.regions["code"] == frozen][0] >= len(m.all_codes)
    live = mine[mine["code"] == frozen]
    assert shapely.to_wkb(row.geometry.iloc[0]) == shapely.to_wkb(live.geometry.iloc[0])
    assert row["name"].iloc[0] == live["name"].iloc[0]
    b = layers["buildings"]
    assert row["households"].iloc[0] == b.loc[b["grid_code"] == frozen, "households"].sum()
    # its buildings are in no editable unit
    kept = set(b.loc[b["grid_code"] == frozen, "id"].astype(str))
    assert kept.isdisjoint(set(m.buildings["id"]))
    full = pl.full_layer(grids, pl.plan_layer(ev.regions), [COMMUNITY])
    assert full["code"].is_unique and (full["code"] == frozen).sum() == 1
    saved = full[full["code"] == frozen]
    assert shapely.to_wkb(saved.geometry.iloc[0]) == shapely.to_wkb(live.geometry.iloc[0])
    assert pl.grid_rows(ev.regions, "zh").shape[0] == len(ev.regions)
    # the comparison covers the redrawn grids only
    assert ev.summary.loc["current", "grids"] == len(mine) - 1
    others = pd.to_numeric(mine.loc[mine["code"] != frozen, "workers"]).sum()
    assert ev.summary.loc["current", "workers_needed"] == others
    # every grid locked: nothing to redraw, the grids are shown as they are
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = pl.run_plan(_inputs(layers, f"com:{COMMUNITY}"), pl.Params(locked=tuple(mine["code"])))
    ev = pl.evaluate(m)
    assert sorted(ev.regions["code"]) == sorted(mine["code"]) and m.n_units == 0
    assert pl.grid_rows(ev.regions, "en").shape[0] == len(mine)
