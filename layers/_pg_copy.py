"""PostgreSQL's binary ``COPY`` format and EWKB, encoded column by column with numpy.

The encoders of :mod:`layers._postgis`'s bulk load (``COPY ... FROM STDIN (FORMAT binary)``)
and of its CSV fallback (hex EWKB).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import shapely

_HEX = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)
#: EWKB header of a little-endian 2-D point with SRID 4326: order, type | SRID flag, SRID.
_POINT_4326 = np.frombuffer(b"\x01\x01\x00\x00\x20\xe6\x10\x00\x00", dtype=np.uint8)


def ewkb_hex(geoms: np.ndarray) -> pa.Array:
    """Geometries as hex EWKB with SRID 4326 (PostGIS's text input), as an Arrow string array.

    Points are encoded with numpy (25 bytes each; ~40x faster than shapely, which has to copy
    every geometry to set its SRID); other or missing geometries go through shapely.

    Examples
    --------
    >>> import shapely
    >>> a = ewkb_hex(np.array([shapely.Point(1, 2)], dtype=object))
    >>> a[0].as_py() == shapely.to_wkb(shapely.set_srid(shapely.Point(1, 2), 4326), hex=True,
    ...                                include_srid=True)
    True
    """
    n = len(geoms)
    if n and (shapely.get_type_id(geoms) == 0).all() and not shapely.is_empty(geoms).any():
        raw = np.empty((n, 25), dtype=np.uint8)
        raw[:, :9] = _POINT_4326
        xy = np.column_stack([shapely.get_x(geoms), shapely.get_y(geoms)]).astype("<f8")
        raw[:, 9:] = xy.view(np.uint8).reshape(n, 16)
        hexed = np.empty((n, 50), dtype=np.uint8)
        hexed[:, 0::2] = _HEX[raw >> 4]
        hexed[:, 1::2] = _HEX[raw & 0x0F]
        offsets = np.arange(0, 50 * n + 1, 50, dtype=np.int64)
        return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(hexed))
    return pa.array(shapely.to_wkb(shapely.set_srid(geoms, 4326), hex=True, include_srid=True),
                    type=pa.string())


#: Microseconds from the Unix epoch to PostgreSQL's (2000-01-01), for binary timestamps.
_PG_EPOCH_US = 946_684_800_000_000
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_COPY_TRAILER = b"\xff\xff"


def ewkb_bytes(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Geometries as EWKB with SRID 4326: ``(lengths, concatenated bytes)``, -1 for missing.

    Points are encoded with numpy (25 bytes each), like :func:`ewkb_hex`; others by shapely.

    Examples
    --------
    >>> import shapely
    >>> lens, data = ewkb_bytes(np.array([shapely.Point(1, 2), None], dtype=object))
    >>> lens.tolist(), bytes(data) == shapely.to_wkb(shapely.set_srid(shapely.Point(1, 2), 4326),
    ...                                               include_srid=True)
    ([25, -1], True)
    """
    n = len(geoms)
    missing = shapely.is_missing(geoms)
    present = geoms[~missing]
    if len(present) and (shapely.get_type_id(present) == 0).all() and not shapely.is_empty(present).any():
        raw = np.empty((len(present), 25), dtype=np.uint8)
        raw[:, :9] = _POINT_4326
        xy = np.column_stack([shapely.get_x(present), shapely.get_y(present)]).astype("<f8")
        raw[:, 9:] = xy.view(np.uint8).reshape(len(present), 16)
        lens = np.where(missing, -1, 25).astype(np.int64)
        return lens, raw.reshape(-1)
    wkb = shapely.to_wkb(shapely.set_srid(present, 4326), include_srid=True)
    lens = np.full(n, -1, dtype=np.int64)
    lens[~missing] = [len(b) for b in wkb]
    return lens, np.frombuffer(b"".join(wkb), dtype=np.uint8)


def _binary_field(values: Any, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """One column as ``(lengths, bytes)`` in PostgreSQL's binary format; length -1 is NULL."""
    if kind == "geometry":
        return ewkb_bytes(values)
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    valid = (np.ones(len(arr), dtype=bool) if arr.null_count == 0
             else arr.is_valid().to_numpy(zero_copy_only=False))
    if kind in ("str", "code"):
        arr = arr.cast(pa.large_binary())
        offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset:arr.offset + len(arr) + 1]
        data = (np.frombuffer(arr.buffers()[2], dtype=np.uint8) if arr.buffers()[2] is not None
                else np.zeros(0, dtype=np.uint8))[offsets[0]:offsets[-1]]
        lens = np.diff(offsets)
        return np.where(valid, lens, -1), data
    if kind == "bool":
        raw = arr.fill_null(False).to_numpy(zero_copy_only=False).astype(np.uint8).reshape(-1, 1)
    elif kind == "datetime":
        us = arr.cast(pa.timestamp("us")).cast(pa.int64()).fill_null(0).to_numpy()
        raw = (us - _PG_EPOCH_US).astype(">i8").view(np.uint8).reshape(-1, 8)
    elif kind == "float":
        raw = arr.cast(pa.float64()).fill_null(0.0).to_numpy().astype(">f8").view(np.uint8).reshape(-1, 8)
    else:  # int and H3 ids: bigint
        raw = arr.cast(pa.int64()).fill_null(0).to_numpy().astype(">i8").view(np.uint8).reshape(-1, 8)
    raw = raw[valid]
    return np.where(valid, raw.shape[1], -1).astype(np.int64), raw.reshape(-1)


def copy_binary_batches(columns: Sequence[Any], kinds: Sequence[str], *,
                        batch_rows: int = 100_000) -> Iterator[bytes]:
    r"""Rows of ``columns`` as a ``COPY ... (FORMAT binary)`` stream, in chunks of ``batch_rows``.

    Each column (an Arrow array, or an object array of geometries for ``kind ==
    "geometry"``) is encoded whole with numpy; the rows are then assembled by scattering
    every field (4-byte big-endian length, then its bytes) into one buffer per batch. The
    first chunk starts with the COPY header, the last ends with the trailer.

    Examples
    --------
    >>> chunks = list(copy_binary_batches([pa.array([7, None])], ["int"]))
    >>> b"".join(chunks)[19:]  # after the 19-byte header: 1 field, 8 bytes, 7; 1 field, NULL; end
    b'\x00\x01\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x07\x00\x01\xff\xff\xff\xff\xff\xff'
    """
    n = len(columns[0]) if columns else 0
    k = len(columns)
    yield _COPY_HEADER
    for start in range(0, n, batch_rows):
        stop = min(start + batch_rows, n)
        fields = [_binary_field(col[start:stop], kind) for col, kind in zip(columns, kinds, strict=True)]
        m = stop - start
        sizes = np.stack([np.maximum(lens, 0) + 4 for lens, _ in fields], axis=1)  # m x k
        row_size = 2 + sizes.sum(axis=1)
        row_start = np.zeros(m, dtype=np.int64)
        np.cumsum(row_size[:-1], out=row_start[1:])
        out = np.empty(int(row_size.sum()), dtype=np.uint8)
        out[row_start[:, None] + np.arange(2)] = np.array([k], dtype=">i2").view(np.uint8)
        field_start = row_start[:, None] + 2 + np.concatenate(
            [np.zeros((m, 1), dtype=np.int64), np.cumsum(sizes[:, :-1], axis=1)], axis=1)
        for j, (lens, data) in enumerate(fields):
            pos = field_start[:, j]
            out[pos[:, None] + np.arange(4)] = lens.astype(">i4").view(np.uint8).reshape(m, 4)
            dlen = np.maximum(lens, 0)
            if data.size:
                first = np.zeros(m, dtype=np.int64)
                np.cumsum(dlen[:-1], out=first[1:])
                dest = np.repeat(pos + 4 - first, dlen) + np.arange(data.size, dtype=np.int64)
                out[dest] = data
        yield out.tobytes() if stop < n else out.tobytes() + _COPY_TRAILER
    if n == 0:
        yield _COPY_TRAILER
