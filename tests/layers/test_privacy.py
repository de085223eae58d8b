from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from hypothesis import given
from hypothesis import strategies as st

from layers.privacy import mask_id_number, mask_name, mask_personal, mask_phone
from layers.schema import SCHEMAS


def test_the_three_shapes_of_masking() -> None:
    assert mask_name("张三丰") == "张*"
    assert mask_phone("13812345678") == "*******5678"
    assert mask_id_number("32010219900101123X") == "3201**********123X"


def test_mask_personal_masks_only_personal_fields_and_keeps_the_rest() -> None:
    inc = gpd.GeoDataFrame(
        {"service_request_id": ["A1", "A2"], "reporter_name": ["王小明", None],
         "reporter_phone": ["13900001111", None], "stage": ["collected", "closed"]},
        geometry=[shapely.Point(118.78, 32.06), shapely.Point(118.79, 32.07)], crs=4326,
        index=[10, 11])
    out = mask_personal(inc, "incidents")
    assert out["reporter_name"].tolist()[0] == "王*" and pd.isna(out["reporter_name"].iloc[1])
    assert out["reporter_phone"].iloc[0] == "*******1111"
    assert out["stage"].tolist() == ["collected", "closed"]
    assert list(out.index) == [10, 11] and out.crs == inc.crs
    assert inc["reporter_name"].iloc[0] == "王小明"  # input untouched


def test_unknown_layer_is_refused() -> None:
    with pytest.raises(KeyError):
        mask_personal(pd.DataFrame(), "people")


# real names, phones and ID numbers never contain the mask character itself
@given(st.lists(st.text(st.characters(blacklist_characters="*", blacklist_categories=("Cs",)), min_size=2, max_size=20)
                .filter(lambda s: s.strip() == s), min_size=1))
def test_no_personal_value_survives_masking(values: list[str]) -> None:
    df = pd.DataFrame({f: values for f in ("name", "phone", "id_number")})
    out = mask_personal(df, "workers")
    for f in ("name", "phone", "id_number"):
        for before, after in zip(df[f], out[f], strict=True):
            # names keep the surname and one "*" (the length is not told); the rest keep length
            assert len(after) == (min(len(before), 2) if f == "name" else len(before))
            assert "*" in after
            assert after != before


def test_masks_keep_less_surname_only_and_last_four_digits() -> None:
    # a name keeps its surname only, whatever its length; a phone its last 4 digits
    assert [mask_name(n) for n in ("张三", "张三丰", "欧阳娜娜", "李")] == ["张*", "张*", "欧*", "*"]
    assert mask_phone("13900001111") == "*******1111"
    assert mask_phone("025-83123456")[-4:] == "3456" and "025" not in mask_phone("025-83123456")


def test_every_personal_field_has_a_masker() -> None:
    with_personal = [s for s in SCHEMAS.values() if s.personal_fields()]
    assert {s.name for s in with_personal} >= {"workers", "incidents"}  # the layers that hold people
    for s in with_personal:
        df = pd.DataFrame({f.name: ["13812345678"] for f in s.personal_fields()})
        out = mask_personal(df, s.name)
        assert list(out.columns) == list(df.columns)
        for field, value in out.iloc[0].items():
            assert "*" in value and value != "13812345678", (s.name, field, value)
