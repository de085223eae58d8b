"""The API's fast check of GPS fixes batches against the readers' file validation.

The fast path (:func:`layers._intake_fast.clean_fixes_frame`, used by
:func:`layers._intake_fixes.checked_fixes`) may only shortcut batches the file validation
passes unchanged: on random good and bad batches both paths refuse the same rows with the
same issues, or store the same frame. Hand-drawn cases pin each refusal.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from layers import _intake_fixes as fx
from layers._intake_base import IntakeError
from layers._intake_fast import clean_fixes_frame
from layers.validate import validate

LON, LAT = 118.78, 32.06
_TEXT = st.one_of(
    st.sampled_from(["W1", "W2", "f-1", "f-2", "网格员3", "NULL", "nan", "-", "", " W1", "W1 ",
                     "N/A", "—"]),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=6),
)
_FLOAT = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64),
                   st.floats(min_value=-5, max_value=50))


@st.composite
def _fix(draw: st.DrawFn) -> dict:
    good = draw(st.booleans())
    if good:
        return {"fix_id": f"F{draw(st.integers(0, 30))}", "worker_id": draw(st.sampled_from(["W1", "W2"])),
                "time": pd.Timestamp("2026-12-03 08:00") + pd.Timedelta(
                    microseconds=draw(st.integers(0, 10**10)), nanoseconds=draw(st.integers(0, 999))),
                "accuracy_m": draw(st.one_of(st.just(math.nan), st.floats(0, 100))),
                "lon": LON + draw(st.floats(-0.1, 0.1)), "lat": LAT + draw(st.floats(-0.1, 0.1))}
    lon, lat = draw(st.sampled_from([(LON, LAT), (LAT, LON), (2.35, 48.85), (200.0, 95.0),
                                     (math.nan, LAT), (LON, math.inf), (73.0, 3.0),
                                     (136.0, 54.0), (136.0001, 30.0)]))
    return {"fix_id": draw(_TEXT), "worker_id": draw(_TEXT),
            "time": draw(st.sampled_from([pd.Timestamp("2026-12-03 08:00"), pd.NaT,
                                          pd.Timestamp("1990-01-01 00:00:00.5")])),
            "accuracy_m": draw(_FLOAT), "lon": lon, "lat": lat}


def _frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame({"fix_id": [r["fix_id"] for r in rows],
                         "worker_id": [r["worker_id"] for r in rows],
                         "time": pd.to_datetime(pd.Series([r["time"] for r in rows],
                                                          dtype="object")).to_numpy(),
                         "accuracy_m": np.array([r["accuracy_m"] for r in rows], dtype=float),
                         "lon": np.array([r["lon"] for r in rows], dtype=float),
                         "lat": np.array([r["lat"] for r in rows], dtype=float)})


def _outcome(frame: pd.DataFrame, fast: bool) -> tuple[str, object]:
    try:
        data, dropped = fx.checked_fixes(frame, fast=fast)
    except IntakeError as e:
        return "refused", [(i.code, i.row, i.column, i.params) for i in e.issues]
    return "stored", (data, dropped)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_fix(), min_size=1, max_size=12))
def test_fast_path_refuses_and_stores_exactly_what_the_file_path_does(rows: list[dict]) -> None:
    frame = _frame(rows)
    fast, slow = _outcome(frame, True), _outcome(frame, False)
    assert fast[0] == slow[0]
    if fast[0] == "refused":
        assert fast[1] == slow[1]
    else:
        (a, na), (b, nb) = fast[1], slow[1]  # type: ignore[misc]
        assert na == nb
        pd.testing.assert_frame_equal(pd.DataFrame(a), pd.DataFrame(b))
        assert a.crs == b.crs
    # the shortcut itself never passes what the file validation would refuse or change
    unique = frame.drop_duplicates("fix_id").reset_index(drop=True)
    short = clean_fixes_frame(unique)
    if short is not None:
        res = validate(unique, "patrol_points", file="fixes", row_offset=0)
        assert res.ok
        pd.testing.assert_frame_equal(pd.DataFrame(short), pd.DataFrame(res.data))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**6), st.floats(0, 50), st.floats(-0.2, 0.2)),
                min_size=1, max_size=50, unique_by=lambda t: t[0]))
def test_clean_batches_take_the_fast_path(fixes: list[tuple[int, float, float]]) -> None:
    frame = _frame([{"fix_id": f"F{i}", "worker_id": "W1",
                     "time": pd.Timestamp("2026-12-03") + pd.Timedelta(seconds=i),
                     "accuracy_m": a, "lon": LON + d, "lat": LAT - d} for i, a, d in fixes])
    out = clean_fixes_frame(frame)
    assert isinstance(out, gpd.GeoDataFrame) and len(out) == len(fixes)
    assert list(out.columns) == ["fix_id", "worker_id", "time", "accuracy_m", "geometry"]


@pytest.mark.parametrize(("change", "code", "column"), [
    ({"fix_id": "NULL"}, "validation.empty_value", "fix_id"),
    ({"worker_id": ""}, "validation.empty_value", "worker_id"),
    ({"accuracy_m": -1.0}, "validation.out_of_range", "accuracy_m"),
    ({"accuracy_m": math.inf}, "validation.not_a_number", "accuracy_m"),
    ({"lon": 2.35, "lat": 48.85}, "validation.outside_china", "geometry"),
    ({"time": pd.NaT}, "validation.empty_value", "time"),
])
def test_each_bad_value_is_refused_on_its_row_as_a_file_would_be(change, code, column) -> None:
    good = {"fix_id": "F1", "worker_id": "W1", "time": pd.Timestamp("2026-12-03 08:00"),
            "accuracy_m": 5.0, "lon": LON, "lat": LAT}
    frame = _frame([good, {**good, "fix_id": "F2", **change}])
    assert clean_fixes_frame(frame) is None
    with pytest.raises(IntakeError) as e:
        fx.checked_fixes(frame)
    assert (code, 1, column) in [(i.code, i.row, i.column) for i in e.value.issues]


def test_a_fix_resent_in_the_batch_is_dropped_and_rows_keep_their_posted_numbers() -> None:
    good = {"fix_id": "F1", "worker_id": "W1", "time": pd.Timestamp("2026-12-03 08:00"),
            "accuracy_m": 5.0, "lon": LON, "lat": LAT}
    frame = _frame([good, good, {**good, "fix_id": "F3", "accuracy_m": -2.0}])
    with pytest.raises(IntakeError) as e:
        fx.checked_fixes(frame)
    assert [(i.code, i.row) for i in e.value.issues] == [("validation.out_of_range", 2)]
    data, dropped = fx.checked_fixes(frame.iloc[:2])
    assert (len(data), dropped) == (1, 1)


_STAGES = ["collected", "handling", "verifying", "closed", None]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(
    st.one_of(st.none(), st.integers(0, 3)), st.sampled_from(["01", "02", None]),
    st.one_of(st.none(), st.integers(0, 10**7)), st.sampled_from(_STAGES),
    st.sampled_from(["G1", "G2", None]), st.one_of(st.none(), st.integers(0, 10**7))),
    min_size=0, max_size=20))
def test_summary_deltas_of_a_few_cases_equal_the_vectorised_ones(rows) -> None:
    from layers import summaries

    t0 = pd.Timestamp("2026-11-30 08:00")
    inc = pd.DataFrame({
        "service_request_id": [f"SR{i}" for i in range(len(rows))],
        f"h3_{summaries.CELL_RES}": pd.Series([None if c is None else 613_000_000_000 + c
                                                for c, *_ in rows], dtype="float64")
        .fillna(0).astype("int64"),
        "category_code": pd.Series([r[1] for r in rows], dtype="str"),
        "requested_datetime": pd.Series([None if r[2] is None else t0 + pd.Timedelta(seconds=r[2])
                                         for r in rows], dtype="datetime64[us]"),
        "stage": pd.Series([r[3] for r in rows], dtype="str"),
        "grid_code": pd.Series([r[4] for r in rows], dtype="str"),
        "expected_datetime": pd.Series([None if r[5] is None else t0 + pd.Timedelta(
            microseconds=r[5] * 1001) for r in rows], dtype="datetime64[us]")})
    few = summaries.incident_contributions_few(inc)
    full = summaries.incident_contributions(inc)
    for a, b in zip(few, full, strict=True):
        key = [c for c in a.columns if c != "n"]
        assert list(a.columns) == list(b.columns)
        assert sorted(map(tuple, a[[*key, "n"]].astype(object).values.tolist())) == \
            sorted(map(tuple, b[[*key, "n"]].astype(object).values.tolist()))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 60 * 24 * 400), st.sampled_from(["0101", "0401", "0701",
                                                                          "1101", "1301"]),
                          st.sampled_from([1, 2, 3])), min_size=1, max_size=12))
def test_due_times_of_a_batch_equal_the_workflow_ones(rows) -> None:
    from layers import intake, workflow

    t0 = pd.Timestamp("2026-01-01 00:00")
    reqs = [{"requested_datetime": t0 + pd.Timedelta(minutes=m), "category_code": item[:2],
             "item_code": item, "level": lvl} for m, item, lvl in rows]
    got = intake.due_times_of(reqs)
    want = workflow.due_times(pd.DataFrame(reqs))
    assert got == [None if pd.isna(d) else pd.Timestamp(d) for d in want]
    assert all(isinstance(d, pd.Timestamp) for d in got)  # every whistle-list item has a limit


@settings(max_examples=300, deadline=None)
@given(name=st.text(max_size=80))
def test_derived_fix_ids_are_the_uuid5_of_their_name(name) -> None:
    import uuid

    assert fx.uuid5_hex(name) == uuid.uuid5(uuid.NAMESPACE_URL, name).hex
