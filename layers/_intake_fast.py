"""A vectorised check of a GPS fixes batch posted through the API (typed JSON, known shape).

:func:`layers.validate.validate` is written for files: any header, aliases, text numbers,
Excel serial dates, CRS detection, lat/lon swaps, reports of every kind. A batch from the
API reaches :func:`layers._intake_fixes._write_fixes` already parsed into one known shape
(``fix_id``, ``worker_id`` text, ``time`` datetimes, ``accuracy_m`` floats, ``lon``/``lat``
floats), and for that shape most of those steps cannot apply. :func:`clean_fixes_frame`
decides, with a handful of array operations, whether the file validation would pass the
batch unchanged; only then it returns the very frame ``validate(...).data`` would return.
Whenever any rule could fire (a blank spelling, whitespace, a missing value, a negative or
infinite accuracy, a point outside China's box, an unexpected dtype ...) it returns ``None``
and the caller runs the full validation, which names every bad row with the readers'
zh/en messages. So the fast path accepts a subset of what the file path accepts, never
anything more, and stores the same values (``tests/layers/test_intake_fast.py`` compares
both on random good and bad batches).

Examples
--------
>>> import pandas as pd
>>> f = pd.DataFrame({"fix_id": ["a"], "worker_id": ["W1"],
...                   "time": pd.to_datetime(["2026-12-03 08:00:00.123456789"]),
...                   "accuracy_m": [5.0], "lon": [118.78], "lat": [32.06]})
>>> out = clean_fixes_frame(f)
>>> str(out["time"].iloc[0]), out.crs.to_epsg()
('2026-12-03 08:00:00.123456', 4326)
>>> clean_fixes_frame(f.assign(accuracy_m=[-1.0])) is None  # the file path reports it
True
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from layers._store_common import WGS84
from layers._validate_geo import LAT_RANGE, LON_RANGE
from layers._validate_values import _BLANKS
from layers.schema import SCHEMAS

#: The columns (in order) of the frame :func:`layers._intake_fixes.post_fixes` builds.
FRAME_COLUMNS = ("fix_id", "worker_id", "time", "accuracy_m", "lon", "lat")


def _clean_text(values: pd.Series) -> pd.Series | None:
    """``values`` as the file path's ``str`` column, or ``None`` when it would change or
    report anything (not text, missing, a blank spelling, surrounding whitespace)."""
    items = values.tolist()
    if not all(type(v) is str for v in items):
        return None
    if any(v != v.strip() or v.lower() in _BLANKS for v in items):
        return None
    return pd.Series(items, index=values.index, dtype="str")


def clean_fixes_frame(frame: pd.DataFrame) -> gpd.GeoDataFrame | None:
    """The validated ``patrol_points`` frame of an API batch, or ``None`` to validate fully.

    Parameters
    ----------
    frame
        Columns :data:`FRAME_COLUMNS` (no repeated ``fix_id``: the caller drops resent
        fixes first), a default ``RangeIndex``.

    Returns
    -------
    geopandas.GeoDataFrame or None
        Equal to ``validate(frame, "patrol_points").data`` when that validation has no
        error and changes nothing but dtypes; ``None`` otherwise (and when unsure).
    """
    if tuple(frame.columns) != FRAME_COLUMNS or not isinstance(frame.index, pd.RangeIndex) \
            or frame.index.start != 0 or frame.index.step != 1 or not len(frame):
        return None
    if frame["fix_id"].duplicated().any():
        return None
    fix_id = _clean_text(frame["fix_id"])
    worker = _clean_text(frame["worker_id"])
    if fix_id is None or worker is None:
        return None
    t = frame["time"]
    if not pd.api.types.is_datetime64_dtype(t.dtype) or isinstance(t.dtype, pd.DatetimeTZDtype) \
            or t.isna().any():
        return None
    acc = frame["accuracy_m"]
    if not pd.api.types.is_float_dtype(acc.dtype):
        return None
    a = acc.to_numpy(dtype="float64", na_value=np.nan)
    lo = SCHEMAS["patrol_points"].field("accuracy_m").min
    with np.errstate(invalid="ignore"):
        if np.isinf(a).any() or (lo is not None and (a < lo).any()):
            return None
    x, y = (frame[c] for c in ("lon", "lat"))
    if not (pd.api.types.is_float_dtype(x.dtype) and pd.api.types.is_float_dtype(y.dtype)):
        return None
    x, y = x.to_numpy(dtype="float64"), y.to_numpy(dtype="float64")
    inside = (x >= LON_RANGE[0]) & (x <= LON_RANGE[1]) & (y >= LAT_RANGE[0]) & (y <= LAT_RANGE[1])
    if not inside.all():  # NaN is outside too: missing, swapped or foreign points go the long way
        return None
    cols = {"fix_id": fix_id, "worker_id": worker, "time": t.astype("datetime64[us]"),
            "accuracy_m": pd.Series(a, index=frame.index, dtype="float64"),
            "geometry": gpd.array.from_shapely(shapely.points(x, y), crs=WGS84)}
    return gpd.GeoDataFrame(pd.DataFrame(cols, index=frame.index, copy=False),
                            geometry="geometry")
