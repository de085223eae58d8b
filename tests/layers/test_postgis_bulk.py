"""PostGIS bulk paths (issue 14): binary COPY and the CSV text COPY give the same rows, both ways.

On the real PostGIS server (``GRIDPULSE_TEST_PG``): every value type the schema has (text
with Chinese, quotes, commas, newlines and backslashes; NULLs; timestamps given with a time
zone, stored as Shanghai wall-clock time; int64 H3 ids above 2**53; NaN floats; points,
polygons and multipolygons) is written and read back through both transfer formats of
:mod:`layers._postgis` (writes: psycopg ``COPY FROM STDIN (FORMAT binary)``; reads: ADBC);
every combination gives the same frame, equal to what the GeoPackage engine returns.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from layers import _postgis
from layers.errors import StoreError
from layers.store import Store, open_store

pytestmark = pytest.mark.postgis

NASTY = ["井盖缺失，\"引号\"", "a,b;c\nd", "back\\slash \\N", "", "  空格  ", "😀 emoji", "\\."]


@pytest.fixture()
def pg(pg_url: str) -> Iterator[Store]:
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with open_store(f"{pg_url}?schema={schema}") as s:
        yield s
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _read_as(store: Store, fmt: str, *args, **kwargs) -> pd.DataFrame:
    default = _postgis._COPY_FORMAT
    _postgis._COPY_FORMAT = fmt
    try:
        return store.read(*args, **kwargs)
    finally:
        _postgis._COPY_FORMAT = default


def _write_as(store: Store, fmt: str, layers: dict[str, pd.DataFrame], **kwargs) -> None:
    default = _postgis._COPY_FORMAT
    _postgis._COPY_FORMAT = fmt
    try:
        store.write(layers, **kwargs)
    finally:
        _postgis._COPY_FORMAT = default


def incidents(texts: list[str | None]) -> gpd.GeoDataFrame:
    n = len(texts)
    when = pd.Series(pd.to_datetime(["2024-05-01T08:00:00+08:00", "2024-05-01T00:30:00Z",
                                     "2024-12-31T23:59:59.123456+08:00"] * n, format="ISO8601",
                                    utc=True)[:n])
    return gpd.GeoDataFrame({
        "service_request_id": [f"SR{i:03d}" for i in range(n)],
        "status": "open",
        "description": texts,
        "requested_datetime": when,
        "updated_datetime": [None if i % 2 else when[i] for i in range(n)],
        "category_code": "01", "item_code": "0101",
        "level": np.arange(n) % 3 + 1,
        "source": "hotline_12345", "stage": "collected",
        "grid_code": [None if i % 3 == 0 else "320106001001001" for i in range(n)],
        "reporter_name": ["张三" if i % 2 else None for i in range(n)],
        "reworks": np.arange(n, dtype=np.int64),
    }, geometry=shapely.points(118.770 + np.arange(n) * 1e-4, 32.060 + np.arange(n) * 1e-4), crs=4326)


def test_both_formats_read_every_type_exactly(pg: Store, tmp_path: Path) -> None:
    df = incidents([*NASTY, None, "普通"])
    pg.write({"incidents": df})
    binary = _read_as(pg, "binary", "incidents")
    csv = _read_as(pg, "csv", "incidents")
    pd.testing.assert_frame_equal(binary, csv)
    with open_store(str(tmp_path / "ref.gpkg")) as ref:  # GeoPackage keeps milliseconds only
        ref.write({"incidents": df})
        ms = binary.copy()
        for col in ("requested_datetime", "updated_datetime"):
            ms[col] = ms[col].dt.floor("ms")
        pd.testing.assert_frame_equal(ms, ref.read("incidents"))
    assert binary["description"].tolist()[: len(NASTY)] == NASTY
    assert binary["description"].isna().tolist()[len(NASTY)]
    # 08:00+08:00 is 08:00 in Shanghai; 00:30Z is 08:30; microseconds survive
    assert binary["requested_datetime"].tolist()[:3] == [
        pd.Timestamp("2024-05-01 08:00:00"), pd.Timestamp("2024-05-01 08:30:00"),
        pd.Timestamp("2024-12-31 23:59:59.123456")]
    assert binary["requested_datetime"].dtype == "datetime64[us]"
    assert binary["updated_datetime"].isna().tolist()[:4] == [False, True, False, True]
    assert binary["grid_code"].isna().tolist()[:3] == [True, False, False]
    assert (binary["h3_10"] > 2**53).all() and binary["h3_10"].dtype == "int64"
    assert binary["reworks"].tolist() == list(range(len(df)))
    assert shapely.equals(binary.geometry.values, df.geometry.values).all()
    assert binary.crs.to_epsg() == 4326


def test_nan_floats_filters_order_limit_and_empty_results(pg: Store) -> None:
    fixes = gpd.GeoDataFrame({
        "fix_id": ["F1", "F2", "F3", "F4"], "worker_id": ["W1", "W2", "W1", "W2"],
        "time": pd.to_datetime(["2024-05-01 08:00", "2024-05-01 09:00", "2024-05-02 08:00",
                                "2024-05-02 09:00"]),
        "accuracy_m": [5.0, np.nan, 12.5, np.nan],
    }, geometry=shapely.points([(118.77, 32.06), (118.78, 32.07), (118.79, 32.08), (118.80, 32.09)]),
        crs=4326)
    pg.write({"patrol_points": fixes})
    queries = [
        {},
        {"columns": ["worker_id", "accuracy_m"], "between": {"time": (pd.Timestamp("2024-05-01 08:30"), None)}},
        {"where": {"worker_id": "W2"}, "order_by": "time", "descending": True, "limit": 1},
        {"where": {"worker_id": "nobody"}},
        {"columns": [], "bbox": (118.775, 32.065, 118.785, 32.075)},
    ]
    for q in queries:
        b, c = _read_as(pg, "binary", "patrol_points", **q), _read_as(pg, "csv", "patrol_points", **q)
        pd.testing.assert_frame_equal(b, c)
    full = _read_as(pg, "binary", "patrol_points")
    assert full["accuracy_m"].isna().tolist() == [False, True, False, True]
    assert _read_as(pg, "binary", "patrol_points", where={"worker_id": "W2"}, order_by="time",
                    descending=True, limit=1)["fix_id"].tolist() == ["F4"]
    assert len(_read_as(pg, "binary", "patrol_points", where={"worker_id": "nobody"})) == 0


@pytest.fixture()
def pg2(pg_url: str) -> Iterator[Store]:
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with open_store(f"{pg_url}?schema={schema}") as s:
        yield s
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def grids() -> gpd.GeoDataFrame:
    square = shapely.box(118.770, 32.060, 118.775, 32.065)
    two = shapely.MultiPolygon([shapely.box(118.775, 32.060, 118.777, 32.062),
                                shapely.box(118.778, 32.063, 118.780, 32.065)])
    return gpd.GeoDataFrame({
        "code": ["320106001001001", "320106001001002"], "name": ["宁海路第一网格", "第二网格, \"东\""],
        "kind": ["comprehensive", "dedicated"], "dedicated_type": [None, "school"],
        "community_code": ["320106001001", "320106001001"], "leader": ["张三", None],
        "workers": [2, 3], "households": [420, 0], "population": [1130, 2500],
    }, geometry=[square, two], crs=4326)


def test_binary_and_csv_writes_store_the_same_rows(pg: Store, pg2: Store) -> None:
    layers = {"grids": grids(), "incidents": incidents([*NASTY, None, "普通"])}
    _write_as(pg, "binary", layers)
    _write_as(pg2, "csv", layers)
    for name in layers:
        for fmt in ("binary", "csv"):
            pd.testing.assert_frame_equal(_read_as(pg, fmt, name), _read_as(pg2, fmt, name))
    got = _read_as(pg, "binary", "grids")
    assert got.geom_type.tolist() == ["Polygon", "MultiPolygon"]
    assert shapely.equals(got.geometry.values, grids().geometry.values).all()
    # appends go through the same COPY; an empty frame is a valid (empty) COPY stream
    more = incidents(["追加"]).assign(service_request_id=["SR900"])
    _write_as(pg, "binary", {"incidents": more}, mode="append")
    _write_as(pg2, "csv", {"incidents": more}, mode="append")
    pd.testing.assert_frame_equal(_read_as(pg, "binary", "incidents"), _read_as(pg2, "binary", "incidents"))
    _write_as(pg, "binary", {"incidents": incidents([]).iloc[:0]}, mode="append")
    assert pg.count("incidents") == len(layers["incidents"]) + 1


def test_binary_batches_split_rows_exactly(pg: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_postgis, "_COPY_BATCH_ROWS", 2)  # 9 rows: batches of 2, 2, 2, 2, 1
    df = incidents([*NASTY, None, "普通"])
    _write_as(pg, "binary", {"incidents": df})
    got = _read_as(pg, "binary", "incidents")
    assert got["service_request_id"].tolist() == df["service_request_id"].tolist()
    assert got["description"].tolist()[: len(NASTY)] == NASTY


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.one_of(st.none(), st.text(
    # control characters other than tab and newlines are refused by the store (readers strip them)
    alphabet=st.characters(blacklist_categories=("Cs",),
                           blacklist_characters="".join(map(chr, [*range(9), 11, 12, *range(14, 32)]))),
    max_size=12)),
    min_size=1, max_size=6))
def test_any_text_round_trips_identically_in_both_formats(pg: Store, texts: list[str | None]) -> None:
    for write_fmt in ("binary", "csv"):
        _write_as(pg, write_fmt, {"incidents": incidents(texts)})
        b = _read_as(pg, "binary", "incidents", columns=["description"])
        c = _read_as(pg, "csv", "incidents", columns=["description"])
        pd.testing.assert_frame_equal(b, c)
        assert [None if pd.isna(v) else v for v in b["description"]] == texts


def test_a_lost_connection_is_a_store_error_and_the_next_read_reconnects(pg: Store) -> None:
    pg.write({"incidents": incidents(["甲"])})
    assert len(_read_as(pg, "binary", "incidents")) == 1
    conn = pg._adbc()
    with conn.cursor() as cur:  # end this session from the server side
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]
    import psycopg

    with psycopg.connect(_postgis.split_url(pg.url)[0], autocommit=True) as killer:
        killer.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(StoreError, match="reading layer incidents from PostGIS failed"):
        _read_as(pg, "binary", "incidents")
    assert len(_read_as(pg, "binary", "incidents")) == 1
