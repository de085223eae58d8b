"""The ``city`` preset: several districts recoded and placed side by side, loaded into PostGIS.

The reduced city (two small districts) runs end to end on the real PostGIS server: generated
district by district, written by binary COPY, read back, aggregated in SQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from data.city import CITY_DISTRICTS, FULL, _recode, city_spec, generate_district, load_city
from data.demo import generate
from layers.schema import SCHEMAS

SPEC = city_spec(districts=2, size="small", incidents_per_household=0.5)


def test_full_city_is_city_sized() -> None:
    """The full preset's sizes meet the issue: >= 5,000 grids, 10 M incidents, 10 M fixes a day
    (the Gulou-size district has 1,517 grids, ~320,000 households and ~1.3 M fixes a day)."""
    assert len(FULL.districts) == 8 and FULL.district.box_m is None
    assert len(FULL.districts) * 1_517 >= 5_000
    assert FULL.district.incidents_per_household * 320_000 * len(FULL.districts) >= 10_000_000


def test_city_spec_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="districts"):
        city_spec(districts=0)
    with pytest.raises(ValueError, match="size"):
        city_spec(size="huge")


def test_recode_hand_drawn() -> None:
    """Codes keep their tail under the new district code; text ids and references get the
    code as a prefix; geometry moves by the offset."""
    grids = gpd.GeoDataFrame({
        "code": ["320106001001001"], "name": ["甲"], "kind": ["comprehensive"],
        "dedicated_type": [None], "community_code": ["320106001001"], "leader": ["王"],
        "workers": [2], "households": [300], "population": [900],
    }, geometry=[shapely.box(0, 0, 1, 1)], crs=4326)
    out = _recode(grids, "grids", "320102", "玄武区", 10.0, 5.0)
    assert out["code"].tolist() == ["320102001001001"]
    assert out["community_code"].tolist() == ["320102001001"]
    assert out.geometry.iloc[0].bounds == (10.0, 5.0, 11.0, 6.0)
    fixes = pd.DataFrame({"fix_id": ["F1"], "worker_id": ["W000001"],
                          "time": pd.to_datetime(["2026-11-19 08:00"]), "accuracy_m": [5.0]})
    out = _recode(fixes, "patrol_points", "320104", "秦淮区", 0.0, 0.0)
    assert out[["fix_id", "worker_id"]].values.tolist() == [["320104-F1", "320104-W000001"]]
    assert grids["code"].iloc[0] == "320106001001001"  # the input is not changed


def test_second_district_is_the_demo_recoded_and_moved() -> None:
    """District 2 is the demo generated with seed 1, recoded and moved east of district 1."""
    one = generate_district(SPEC, 0)
    two = generate_district(SPEC, 1)
    plain = generate(SPEC.district, seed=1)
    for layer in SCHEMAS:
        assert len(two[layer]) == len(plain[layer]), layer
    assert two["grids"]["code"].str.startswith("320104").all()
    assert (two["grids"]["code"].str.slice(6) == plain["grids"]["code"].str.slice(6)).all()
    assert two["incidents"]["service_request_id"].str.startswith("320104-").all()
    a, b = one["districts"].geometry.iloc[0], two["districts"].geometry.iloc[0]
    assert not a.intersects(b) and b.bounds[0] > a.bounds[2]


@pytest.fixture()
def pg_store(pg_url: str) -> Iterator[object]:
    import psycopg

    from layers.store import open_store

    schema = f"city_{uuid.uuid4().hex[:10]}"
    with open_store(f"{pg_url}?schema={schema}") as s:
        yield s
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.mark.postgis
def test_reduced_city_end_to_end_on_postgis(pg_store) -> None:
    """Generate and load two districts into PostGIS; the store holds every row once, keys are
    unique across the city, references resolve, and SQL aggregation sums to the counts."""
    progress: list[int] = []
    result = load_city(pg_store, SPEC, progress=lambda i, n, rows: progress.append(i))
    assert progress == [1, 2]
    for layer in SCHEMAS:
        assert pg_store.count(layer) == result[f"rows_{layer}"], layer
    assert result["rows"] == sum(result[f"rows_{k}"] for k in SCHEMAS) and result["rows_per_s"] > 0
    d = pg_store.read("districts", columns=["code", "name"])
    assert sorted(d["code"]) == [c for c, _ in CITY_DISTRICTS[:2]]
    grids = pg_store.read("grids", columns=["code", "community_code"])
    assert grids["code"].is_unique
    assert (grids["code"].str.slice(0, 12) == grids["community_code"]).all()
    workers = pg_store.read("workers", columns=["id", "grid_code"])
    assert set(workers["grid_code"]) <= set(grids["code"])
    incidents = pg_store.read("incidents", columns=["service_request_id", "grid_code"])
    assert (incidents["service_request_id"].str.slice(0, 6) == incidents["grid_code"].str.slice(0, 6)).all()
    # the pages' aggregation, in SQL on the server: per-cell counts sum to the layer's count
    cells = pg_store.h3_counts("incidents", res=8)
    assert int(cells["count"].sum()) == result["rows_incidents"]
