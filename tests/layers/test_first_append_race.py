"""Two processes appending to a layer that does not exist yet: no accepted row is lost.

The first append of a layer creates its table. On PostgreSQL that was a new table renamed
into place after ``DROP TABLE IF EXISTS``: when one writer committed just before the other
reached its ``DROP``, the second dropped the first one's table, rows and all, and both
answered "written" (seen as two API processes both accepting the same 5 fixes). Now the
creation is serialised: the second writer waits, finds the table and appends to it.

Known answer per store: every write that returned stored its rows (3 fixes from side 0,
4 from side 1), and nothing else is in the table.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from layers.store import open_store
from tests.layers import _races

ROUNDS = 25


@pytest.fixture(params=["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)])
def store_urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[str]]:
    if request.param == "gpkg":
        yield [str(tmp_path / f"round{i}.gpkg") for i in range(ROUNDS)]
        return
    import psycopg

    base = request.getfixturevalue("pg_url")
    schemas = [f"t_{uuid.uuid4().hex[:12]}" for _ in range(ROUNDS)]
    yield [f"{base}?schema={s}" for s in schemas]
    with psycopg.connect(base, autocommit=True) as conn:
        for s in schemas:
            conn.execute(f'DROP SCHEMA IF EXISTS "{s}" CASCADE')


def test_two_first_appends_keep_every_accepted_row(store_urls: list[str]) -> None:
    for url in store_urls:  # each store exists, without the layer
        with open_store(url) as s:
            assert not s.has_layer("patrol_points")
    try:  # side 1 starts 4 ms later in each store than in the one before
        results = _races.run_sides(_races.first_append_worker, (store_urls, 0.004),
                                   timeout_s=300)
    except TimeoutError as exc:  # pragma: no cover - a hung worker
        pytest.fail(str(exc))
    errors = [r for res in results.values() for r in res if r[1] == "error"]
    assert not errors, errors
    for i, url in enumerate(store_urls):
        with open_store(url) as s:
            stored = set(s.read("patrol_points", columns=["fix_id"])["fix_id"])
        want: set[str] = set()
        for side in (0, 1):
            assert results[side][i][0] == url
            if results[side][i][1] == "ok":
                want |= set(_races.fixes_of(side, 3 + side)["fix_id"])
        assert want, f"round {i}: neither write went through"
        assert stored == want, f"round {i}: {results[0][i][1]} / {results[1][i][1]}"
