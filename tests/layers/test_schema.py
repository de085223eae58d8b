from __future__ import annotations

from pathlib import Path

import pytest

from layers import taxonomy
from layers.schema import H3_RESOLUTIONS, HIERARCHY, SCHEMAS, render_markdown

ROOT = Path(__file__).resolve().parents[2]

ARCHITECTURE_LAYERS = {
    "districts", "subdistricts", "communities", "grids", "buildings", "facilities", "roads",
    "workers", "incidents", "incident_events", "patrol_points", "compounds", "gates",
}


def test_every_architecture_layer_has_a_schema() -> None:
    assert set(SCHEMAS) == ARCHITECTURE_LAYERS


def test_docs_layers_md_is_generated_from_the_schemas() -> None:
    committed = (ROOT / "docs" / "layers.md").read_text(encoding="utf-8")
    assert committed == render_markdown(), "run `make docs` (python -m layers.schema)"


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_schema_is_consistent(name: str) -> None:
    s = SCHEMAS[name]
    names = s.columns
    assert len(names) == len(set(names)), "duplicate column"
    assert s.key in names
    for f in s.fields:
        if f.dtype == "code":
            assert f.digits in (6, 9, 12, 15)
        if f.ref:
            layer, col = f.ref
            assert layer in SCHEMAS and col in SCHEMAS[layer].columns
        assert f.doc_zh and f.doc_en


def test_code_lengths_follow_the_ladder() -> None:
    digits = {n: SCHEMAS[n].field("code").digits for n in ("districts", "subdistricts", "communities", "grids")}
    assert digits == {"districts": 6, "subdistricts": 9, "communities": 12, "grids": 15}
    for child, col, parent in HIERARCHY:
        assert SCHEMAS[child].field(col).ref == (parent, "code")


def test_point_layers_carry_h3_columns() -> None:
    assert SCHEMAS["incidents"].h3_columns == [f"h3_{r}" for r in H3_RESOLUTIONS]
    assert SCHEMAS["grids"].h3_columns == []
    assert {7, 8, 9, 10} <= set(H3_RESOLUTIONS)


def test_personal_fields_are_marked() -> None:
    assert {f.name for f in SCHEMAS["workers"].personal_fields()} == {"name", "phone", "id_number"}
    assert {"reporter_name", "reporter_phone"} <= {f.name for f in SCHEMAS["incidents"].personal_fields()}


def test_chinese_headers_are_recognised() -> None:
    amap = SCHEMAS["buildings"].alias_map()
    assert amap["户数"] == "households"
    assert SCHEMAS["grids"].alias_map()["名称"] == "name"


def test_taxonomy_has_14_categories_45_items_and_known_departments() -> None:
    assert len(taxonomy.CATEGORIES) == 14
    assert len(taxonomy.ITEMS) == 45
    depts = set(SCHEMAS["incidents"].field("department").allowed or ())
    for item in taxonomy.ITEMS.values():
        assert item.category_code in taxonomy.CATEGORIES
        assert item.code.startswith(item.category_code)
        assert item.department in depts
