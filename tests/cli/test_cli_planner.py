"""End to end: ``gridpulse repartition`` and ``gridpulse accessibility`` on the small demo
district written into a real GeoPackage store."""

from __future__ import annotations

import json
import re
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
import shapely

from data import demo
from gridpulse.cli import main
from layers.store import open_store

LAYERS = ("districts", "subdistricts", "communities", "grids", "buildings", "roads", "facilities",
          "workers", "compounds", "gates")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[Path, dict]:
    layers = demo.generate("small", seed=0)
    path = tmp_path_factory.mktemp("planner") / "demo.gpkg"
    with open_store(str(path)) as s:
        s.write({k: layers[k] for k in LAYERS}, actor="test")
    return path, layers


def test_repartition_one_community_to_geopackage(store, tmp_path, capsys) -> None:
    path, layers = store
    code = layers["communities"]["code"].iloc[0]
    out = tmp_path / "grids.gpkg"
    rc = main(["--lang", "en", "repartition", "--community", code, "--store", str(path),
               "--out", str(out), "--seed", "1"])
    text = capsys.readouterr().out
    assert rc == 0
    assert "Share within band" in text and "Workers needed" in text and "wrote" in text
    assert "Grids short of 2 A/B-post workers" in text and "Households per full-time worker" in text
    assert set(pyogrio.list_layers(out)[:, 0]) >= {"grids", "service_points"}
    grids = gpd.read_file(out, layer="grids")
    assert grids.crs.to_epsg() == 4326
    assert grids["code"].str.len().eq(15).all() and grids["code"].str[:12].eq(code).all()
    assert grids["community_code"].eq(code).all() and grids["kind"].eq("comprehensive").all()
    for col in ("households", "population", "workers", "max_walk_m", "p95_walk_m", "polsby_popper",
                "moved_share", "violations"):
        assert col in grids.columns
    assert all(isinstance(json.loads(v), list) for v in grids["violations"])
    # the proposal tiles the community
    comm = layers["communities"].set_index("code").loc[[code]].to_crs(32650).geometry.iloc[0]
    union = shapely.union_all(grids.to_crs(32650).geometry.to_numpy())
    assert union.symmetric_difference(comm).area < 1e-4 * comm.area
    b = layers["buildings"]
    inside = b[b["grid_code"].str[:12] == code]
    assert grids["households"].sum() == inside["households"].sum()


def test_repartition_all_in_chinese_to_geojson(store, tmp_path, capsys) -> None:
    path, layers = store
    out = tmp_path / "all.geojson"
    assert main(["--lang", "zh", "repartition", "--all", "--store", str(path), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "区间内占比" in text and "已写出" in text
    grids = gpd.read_file(out)
    assert set(grids["community_code"]) == set(layers["communities"]["code"])
    # one valid coverage across community edges (what coverage_simplify on the map needs)
    assert shapely.coverage_is_valid(grids.geometry.to_numpy())


def test_repartition_communities_in_a_subdistrict(store, tmp_path) -> None:
    path, layers = store
    sub = layers["subdistricts"]["code"].iloc[0]
    out = tmp_path / "communities.gpkg"
    rc = main(["repartition", "--subdistrict", sub, "--level", "community", "--min-households", "1000",
               "--max-households", "4000", "--store", str(path), "--out", str(out)])
    assert rc == 0
    comms = gpd.read_file(out, layer="communities")
    assert comms["code"].str.len().eq(12).all() and comms["subdistrict_code"].eq(sub).all()


def test_an_impossible_band_is_reported_not_raised(store, tmp_path, capsys) -> None:
    path, layers = store
    code = layers["communities"]["code"].iloc[0]
    out = tmp_path / "tight.gpkg"
    rc = main(["--lang", "en", "repartition", "--community", code, "--min-households", "10",
               "--max-households", "20", "--radius-m", "50", "--store", str(path), "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "constraints not met" in text and "above the maximum" in text
    v = gpd.read_file(out, layer="violations")
    assert {"over_band", "beyond_radius"} <= set(v["code"])


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["repartition", "--out", "x.gpkg"], 2),  # no scope
        (["repartition", "--all", "--out", "x.csv"], 2),  # bad suffix
        (["repartition", "--community", "320106001001", "--level", "community", "--out", "x.gpkg"], 2),
        (["repartition", "--all", "--min-households", "600", "--max-households", "300",
          "--out", "x.gpkg"], 2),
        (["repartition", "--community", "999999999999", "--out", "x.gpkg"], 1),  # unknown code
        (["accessibility", "--speed-kmh", "40", "--out", "x.gpkg"], 2),
        (["accessibility", "--kind", "no_such_kind", "--out", "x.gpkg"], 1),
    ],
)
def test_bad_arguments_give_exit_codes(store, tmp_path, argv, code, capsys) -> None:
    path, _ = store
    argv = [a if a not in ("x.gpkg", "x.csv") else str(tmp_path / a) for a in argv]
    assert main(["--lang", "en", *argv, "--store", str(path)]) == code
    assert capsys.readouterr().err.strip()


def test_accessibility_writes_isochrones_coverage_and_sites(store, tmp_path, capsys) -> None:
    path, layers = store
    out = tmp_path / "access.gpkg"
    rc = main(["--lang", "en", "accessibility", "--minutes", "5,10,15", "--speed-kmh", "4",
               "--sites", "1", "--kind", "clinic", "--kind", "community_service_centre",
               "--store", str(path), "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "Share" in text and "isochrones" in text
    assert "Share, elderly (3 km/h)" in text and "Covered, elderly (3 km/h)" in text
    # residents leave their compounds through the demo's gates, and the open blocks are named
    m = re.search(r"Gates: residents of (\d+) compound\(s\) leave through (\d+) gate", text)
    assert m and 0 < int(m[1]) <= layers["gates"]["compound_id"].nunique()
    assert int(m[1]) <= int(m[2]) <= len(layers["gates"])
    iso = gpd.read_file(out, layer="isochrones")
    fac = layers["facilities"]
    n = int(fac["kind"].isin(["clinic", "community_service_centre"]).sum())
    assert len(iso) == 3 * n and set(iso["minutes"]) == {5, 10, 15}
    cov = pyogrio.read_dataframe(out, layer="coverage")
    assert set(cov["kind"]) == {"clinic", "community_service_centre"}
    assert ((cov["share"] >= 0) & (cov["share"] <= 1)).all()
    assert (cov["elderly_share"] <= cov["share"]).all() and cov["elderly_kmh"].eq(3.0).all()


def test_accessibility_geojson_gets_a_coverage_csv(store, tmp_path) -> None:
    path, _ = store
    out = tmp_path / "iso.geojson"
    assert main(["accessibility", "--sites", "0", "--store", str(path), "--out", str(out)]) == 0
    assert out.exists() and out.with_suffix(".coverage.csv").exists()


def test_a_time_limit_that_stops_the_search_is_reported(store, tmp_path, capsys) -> None:
    path, layers = store
    code = layers["communities"]["code"].iloc[0]
    out = tmp_path / "plan.gpkg"
    rc = main(["--lang", "en", "repartition", "--community", code, "--store", str(path),
               "--time-limit-s", "0.000001", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 0 and out.exists()
    assert "stopped by the time limit" in err and code in err


def test_repartition_keeps_a_locked_grid(store, tmp_path, capsys) -> None:
    path, layers = store
    code = layers["communities"]["code"].iloc[0]
    with open_store(str(path)) as s:
        stored = s.read("grids")
    mine = stored[(stored["community_code"] == code) & (stored["kind"] == "comprehensive")]
    frozen = str(mine["code"].iloc[0])
    out = tmp_path / "locked.gpkg"
    rc = main(["--lang", "en", "repartition", "--community", code, "--store", str(path),
               "--out", str(out), "--seed", "1", "--lock", frozen])
    assert rc == 0, capsys.readouterr().err
    grids = gpd.read_file(out, layer="grids")
    row = grids[grids["code"] == frozen]
    assert len(row) == 1 and bool(row["locked"].iloc[0])
    assert row.geometry.iloc[0].equals_exact(mine[mine["code"] == frozen].geometry.iloc[0], 1e-9)
    assert grids["code"].is_unique and grids["locked"].sum() == 1
    b = layers["buildings"]
    assert row["households"].iloc[0] == b.loc[b["grid_code"] == frozen, "households"].sum()
    rc = main(["--lang", "en", "repartition", "--community", code, "--store", str(path),
               "--out", str(out), "--lock", f"{frozen},NOPE"])
    err = capsys.readouterr().err
    assert rc == 1 and "NOPE" in err and "cannot lock" in err


@pytest.mark.parametrize("scope", ["one", "all"])
def test_repartition_with_walls_keeps_every_compound_inside_one_grid(store, tmp_path, scope) -> None:
    """``--walls``: the compounds layer's wall polygons are the units' outlines, so each
    compound with homes lies inside exactly one proposed grid and no grid line crosses it; the
    grids still tile the community (the demo's compounds cover it whole) and count every home."""
    path, layers = store
    codes = layers["communities"]["code"].astype(str).tolist()
    codes = codes[:1] if scope == "one" else codes
    out = tmp_path / "walls.gpkg"
    where = ["--community", codes[0]] if scope == "one" else ["--all"]
    rc = main(["--lang", "en", "repartition", *where, "--store", str(path),
               "--out", str(out), "--seed", "1", "--walls"])
    assert rc == 0
    grids = gpd.read_file(out, layer="grids").to_crs(32650)
    b = layers["buildings"]
    mine = b["grid_code"].str[:12].isin(codes)
    homes = b[mine & (b["households"] > 0)]
    walls = layers["compounds"].set_index("id").loc[sorted(set(homes["compound_id"].dropna()))]
    walls = walls.set_crs(4326, allow_override=True).to_crs(32650) if walls.crs is None else walls.to_crs(32650)
    assert len(walls) > 0
    comms = layers["communities"].set_index("code").loc[codes].to_crs(32650).geometry
    comm = shapely.union_all(comms.to_numpy())
    for wall in walls.geometry:
        part = wall.intersection(comm)  # a wall crossing the community line is cut there
        if part.area < 1.0:
            continue
        shares = [g.intersection(part).area / part.area for g in grids.geometry]
        assert max(shares) > 0.999, shares
    assert grids["households"].sum() == b[mine]["households"].sum()
    # the grids tile the communities: no overlaps, no gaps
    assert grids.area.sum() == pytest.approx(comms.area.sum(), rel=1e-6)
    assert shapely.union_all(grids.geometry.to_numpy()).symmetric_difference(comm).area < 1.0


def test_planner_page_follows_the_same_walls(store) -> None:
    """The planner page's run (a thin caller of the same ``repartition``): with "follow compound
    walls" on, each compound with homes is one unit whose cell is its wall (clipped to the
    community); off, the cells are Voronoi pieces and some differ from the walls. The roads are
    left out: the demo's streets and paths run along the walls, so with them the blocks alone
    already draw the walls."""
    from dataclasses import replace

    from dashboard import _planner as pl

    _, layers = store
    code = layers["communities"]["code"].iloc[0]
    inputs = pl.inputs_from_layers(f"com:{code}", layers["communities"], layers["grids"],
                                   layers["buildings"], layers["roads"])
    inputs = replace(inputs, compounds=pl.scope_compounds(inputs.containers, layers["compounds"]), roads=None)
    assert inputs.compounds is not None and len(inputs.compounds) > 0
    assert pl.scope_compounds(inputs.containers, layers["compounds"].iloc[:0]) is None
    comm = inputs.containers.geometry.iloc[0]

    def wall_gaps(params: pl.Params) -> list[float]:
        model = pl.run_plan(inputs, params)
        assert model.buildings["households"].sum() == inputs.units["households"].sum()
        walls = inputs.compounds.set_index("id")
        out = []
        for cid, rows in model.buildings.groupby("compound_id"):
            if rows["households"].sum() == 0 or cid not in walls.index:
                continue
            units = rows["unit"].unique()
            assert len(units) == 1, cid  # a compound is one unit either way
            wall = gpd.GeoSeries([walls.geometry[cid].intersection(comm)], crs=4326).to_crs(model.metric).iloc[0]
            if wall.area < 1.0:
                continue
            c, cell = model.units[int(units[0])]
            out.append(model.cells[c][cell].symmetric_difference(wall).area / wall.area)
        return out

    on = wall_gaps(pl.Params(walls=True, time_limit_s=0.5))
    assert on and max(on) < 1e-3
    off = wall_gaps(pl.Params(walls=False, time_limit_s=0.5))
    assert max(off) > 0.05
