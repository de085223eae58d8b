"""Fast string columns for millions of rows, built in Arrow instead of Python objects.

pandas 3 keeps ``str`` columns in Arrow; building them from integer codes and a small
dictionary, or by joining Arrow arrays, avoids creating millions of Python strings.

Examples
--------
>>> list(codes_to_str([1, 0, 2], ["a", "b", None]))
['b', 'a', nan]
>>> list(to_pandas(join("W", pad([7, 12], 3))))
['W007', 'W012']
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import ArrayLike


def to_pandas(arr: pa.Array | pa.ChunkedArray) -> pd.api.extensions.ExtensionArray:
    """An Arrow string array as a pandas ``str`` array (nulls become missing values)."""
    return pd.array(arr, dtype="str")


def dictionary(codes: ArrayLike, categories: Sequence[str | None]) -> pa.Array:
    """Arrow strings ``categories[codes]`` (a ``None`` category gives a null)."""
    idx = pa.array(np.asarray(codes, dtype=np.int32))
    cats = pa.array([None if c is None else str(c) for c in categories], pa.string())
    return pa.DictionaryArray.from_arrays(idx, cats).cast(pa.string())


def codes_to_str(codes: ArrayLike, categories: Sequence[str | None]) -> pd.api.extensions.ExtensionArray:
    """A pandas ``str`` array of ``categories[codes]``."""
    return to_pandas(dictionary(codes, categories))


def pad(numbers: ArrayLike, width: int) -> pa.Array:
    """Non-negative integers as zero-padded decimal strings."""
    s = pc.cast(pa.array(np.asarray(numbers, dtype=np.int64)), pa.string())
    return pc.utf8_lpad(s, width, "0")


def join(*parts: pa.Array | str) -> pa.Array:
    """Concatenate Arrow string arrays and literal strings element-wise (nulls propagate)."""
    return pc.binary_join_element_wise(*parts, "")


def take(arr: pa.Array, idx: ArrayLike) -> pa.Array:
    """``arr[idx]`` for an Arrow array."""
    return arr.take(pa.array(np.asarray(idx, dtype=np.int64)))


def strings(values: Sequence[str | None] | np.ndarray) -> pa.Array:
    """A small sequence of Python strings (or ``None``) as an Arrow string array."""
    return pa.array([None if v is None else str(v) for v in values], pa.string())
