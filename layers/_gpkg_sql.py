"""SQL helpers of the GeoPackage engine: the SQL functions GDAL's triggers call, values as
SQLite takes them, SQLite errors as store errors, and the Arrow read of a layer or query.
"""

from __future__ import annotations

import contextlib
import sqlite3
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyogrio
import shapely

from layers import _store_common as sc

_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}


def envelope(blob: bytes | None) -> tuple[float, float, float, float] | None:
    """``(minx, maxx, miny, maxy)`` of a GeoPackage geometry blob (``None`` if empty)."""
    if blob is None or len(blob) < 8 or blob[:2] != b"GP":
        return None
    flags = blob[3]
    if flags & 0x10:
        return None
    env = (flags >> 1) & 0x07
    if env:
        order = "<" if flags & 1 else ">"
        return struct.unpack_from(order + "dddd", blob, 8)
    geom = shapely.from_wkb(bytes(blob[8 + _ENVELOPE_BYTES.get(env, 0):]))
    if geom is None or geom.is_empty:
        return None
    minx, miny, maxx, maxy = geom.bounds
    return minx, maxx, miny, maxy


def register_functions(conn: sqlite3.Connection) -> None:
    def is_empty(b: bytes | None) -> int | None:
        return None if b is None else int(envelope(b) is None)

    def part(i: int):
        def f(b: bytes | None) -> float | None:
            e = envelope(b)
            return None if e is None else e[i]
        return f

    conn.create_function("ST_IsEmpty", 1, is_empty, deterministic=True)
    for i, name in enumerate(("ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY")):
        conn.create_function(name, 1, part(i), deterministic=True)


@contextlib.contextmanager
def store_errors() -> Iterator[None]:
    """SQLite errors of a write as :class:`StoreError` (the store was left unchanged)."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        raise sc.store_error("constraint", error=str(exc)) from exc
    except sqlite3.OperationalError as exc:
        raise sc.store_error("write_failed", error=str(exc)) from exc



def dt_text(ts: pd.Timestamp) -> str:
    """A naive timestamp as GDAL writes GeoPackage DATETIME (milliseconds only when not 0)."""
    text = ts.strftime("%Y-%m-%dT%H:%M:%S")
    ms = ts.microsecond // 1000
    return f"{text}.{ms:03d}" if ms else text


def sql_value(v: Any) -> Any:
    if isinstance(v, pd.Timestamp):
        return dt_text(v)
    if hasattr(v, "isoformat") and hasattr(v, "hour"):
        return dt_text(pd.Timestamp(v))
    if isinstance(v, bool):
        return int(v)
    return v


def literal(v: Any) -> str:
    """A SQLite literal (for SQL handed to GDAL, which takes no parameters)."""
    v = sql_value(v)
    if v is None:
        return "NULL"
    if isinstance(v, int | float):
        if v != v or v in (float("inf"), float("-inf")):
            raise sc.store_error("bad_filter_value", value=v)
        return repr(v)
    return "'" + str(v).replace("'", "''") + "'"


def inline(sql: str, params: Sequence[Any]) -> str:
    parts = sql.split("?")
    if len(parts) != len(params) + 1:  # pragma: no cover - guarded by compile_filters
        raise ValueError("placeholder count mismatch")
    out = [parts[0]]
    for p, rest in zip(params, parts[1:], strict=True):
        out += [literal(p), rest]
    return "".join(out)


def read_frame(path: Path, **kwargs: Any) -> pd.DataFrame:
    """``pyogrio.read_dataframe(path, use_arrow=True, **kwargs)``, with faster datetimes.

    pyogrio reads datetimes as text and parses them with ``pandas.to_datetime`` (about a
    quarter of a million-row read). The naive ISO 8601 text this store writes is cast by
    Arrow instead (~10x faster); any other text (offsets, ``Z``, other layouts) goes through
    pyogrio's own parser, so the frame is the same as ``read_dataframe`` gives.
    """
    import geopandas as gpd
    import pyarrow as pa
    import pyarrow.compute as pc

    meta, table = pyogrio.read_arrow(path, datetime_as_string=True, **kwargs)
    geom_name = meta["geometry_name"] or "wkb_geometry"
    datetimes = [f for f, d in zip(meta["fields"], meta["dtypes"], strict=True)
                 if d is not None and d.startswith("datetime") and d != "datetime64[D]"]
    for name in datetimes:
        i = table.schema.get_field_index(name)
        if pa.types.is_string(table.schema.field(i).type) or pa.types.is_large_string(table.schema.field(i).type):
            with contextlib.suppress(pa.ArrowInvalid):
                table = table.set_column(i, name, pc.cast(table.column(i), pa.timestamp("us")))
    wkb = None
    if geom_name in table.column_names:
        col = table.column(geom_name)
        chunks = [c.storage if isinstance(c, pa.ExtensionArray) else c for c in col.chunks]
        wkb = (pa.chunked_array(chunks, type=chunks[0].type) if chunks else pa.array([], pa.binary())
               ).to_numpy(zero_copy_only=False)
        table = table.drop_columns([geom_name])
    df = table.to_pandas(self_destruct=True)
    del table
    from pyogrio.geopandas import _try_parse_datetime

    for name in datetimes:
        if not pd.api.types.is_datetime64_any_dtype(df[name].dtype):
            df[name] = _try_parse_datetime(df[name], False, True)
    if wkb is None:
        return df
    df["geometry"] = shapely.from_wkb(wkb)
    return gpd.GeoDataFrame(df, geometry="geometry", crs=meta["crs"])




def gpkg_geometries(blobs: Sequence[bytes | None]) -> Any:
    """Shapely geometries of GeoPackage geometry blobs, or ``None`` when one is not plain.

    A plain blob is ``GP``, the standard (not extended) type, not flagged empty: its WKB
    follows the 8-byte header and the envelope. Anything else (an empty geometry, an
    extended type, a foreign blob) returns ``None``: the caller reads through GDAL instead,
    which decodes every kind the same way it always did.
    """
    import numpy as np

    data: list[bytes | None] = []
    for b in blobs:
        if b is None:
            data.append(None)
            continue
        if len(b) < 8 or b[:2] != b"GP" or b[3] & 0x30:  # 0x10 empty, 0x20 extended type
            return None
        data.append(bytes(b[8 + _ENVELOPE_BYTES.get((b[3] >> 1) & 0x07, 0):]))
    return shapely.from_wkb(np.array(data, dtype=object))
