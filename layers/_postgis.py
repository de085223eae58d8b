"""The PostGIS engine (psycopg 3): shared, multi-user, city scale.

* URL: ``postgresql://user@host:port/db`` with an optional GridPulse-only
  ``?schema=NAME`` (default ``public``; created when missing) so several stores can share
  one database.
* Tables: schema columns typed from :mod:`layers.schema` (``text``, ``bigint``, ``double
  precision``, ``boolean``, ``timestamp`` without time zone = local time), ``geom``
  as ``geometry(Point, 4326)`` for point layers and ``geometry(Geometry, 4326)`` otherwise
  (Polygon and MultiPolygon in one column) with a GiST index, ``h3_<res>`` ``bigint`` columns
  with btree indexes, a unique index on the key, and a ``fid`` identity that fixes row order.
* Every write is ONE transaction. ``replace`` loads a fresh ``<t>__new`` table with COPY,
  indexes it, then drops the old table and renames the new one, so readers are blocked
  only for the final swap; ``append`` COPYs into the existing table.
* Reads stream ``COPY (SELECT ...) TO STDOUT`` as CSV into pandas; geometry travels as
  hex WKB.
"""

from __future__ import annotations

import contextlib
import io
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import shapely
from psycopg import sql

from layers import _records, summaries
from layers import _store_common as sc
from layers.errors import StoreError
from layers.i18n import t
from layers.schema import SCHEMAS
from layers.store import Between, Store, Where, WriteMode

_PG_TYPES = {"str": "text", "code": "text", "int": "bigint", "float": "double precision",
             "bool": "boolean", "datetime": "timestamp"}


#: Rows per CSV batch handed to COPY (a few MB each).
_COPY_BATCH_ROWS = 100_000
#: How ``read`` moves rows: ``"binary"`` (ADBC, binary COPY into Arrow; issue 14) or ``"csv"``
#: (text COPY parsed by pandas, the path before; kept for ``benchmarks/postgis_bulk.py``).
_COPY_FORMAT = "binary"
#: Memory for the index builds of a write (session default is 64 MB).
_INDEX_MEMORY = "256MB"


def split_url(url: str) -> tuple[str, str]:
    """``(libpq conninfo URL, schema)``: the ``schema`` query parameter is GridPulse's own.

    Examples
    --------
    >>> split_url("postgresql://u@h:5/db?schema=gp1&sslmode=disable")
    ('postgresql://u@h:5/db?sslmode=disable', 'gp1')
    >>> split_url("postgresql://u@h/db")
    ('postgresql://u@h/db', 'public')
    """
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), "public") or "public"
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


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


def _dt_param(ts: pd.Timestamp) -> Any:
    return ts.to_pydatetime()


class PostGISStore(sc.SharedApply, sc.SharedVersions, Store):
    """A PostgreSQL + PostGIS schema as the store.

    Parameters
    ----------
    url
        ``postgresql://...[?schema=NAME]``.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._conninfo, self.schema = split_url(url)
        self._lock = threading.RLock()
        self._conn: psycopg.Connection | None = None
        self._adbc_conn: Any = None
        try:
            with self._transaction() as cur:
                cur.execute("CREATE EXTENSION IF NOT EXISTS postgis")
                cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                    sql.Identifier(self.schema)))
                cur.execute(sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (fid bigint GENERATED ALWAYS AS IDENTITY "
                    "PRIMARY KEY, time timestamp NOT NULL, actor text, action text, layer text, "
                    "rows bigint, note text)").format(self._t(sc.AUDIT_TABLE)))
                cur.execute(sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (layer text NOT NULL, version integer NOT NULL,"
                    " time timestamp NOT NULL, actor text, note text, rows bigint, "
                    "current boolean NOT NULL DEFAULT false, source_version integer, data bytea, "
                    "PRIMARY KEY (layer, version))").format(self._t(sc.VERSIONS_TABLE)))
        except psycopg.OperationalError as exc:
            raise sc.store_error("cannot_connect", url=self._conninfo, error=str(exc)) from exc

    # -- plumbing ----------------------------------------------------------------------------------

    def _t(self, name: str) -> sql.Composed:
        return sql.Identifier(self.schema, name)

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._conninfo, autocommit=True)
        return self._conn

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[psycopg.Cursor]:
        with self._lock:
            conn = self._connection()
            try:
                with conn.transaction(), conn.cursor() as cur:
                    yield cur
            except psycopg.errors.UniqueViolation as exc:
                raise sc.store_error("constraint", error=str(exc).strip()) from exc
            except psycopg.errors.DatabaseError as exc:
                if conn.broken:
                    self._conn = None
                raise sc.store_error("write_failed", error=str(exc).strip()) from exc

    @contextlib.contextmanager
    def _cursor(self) -> Iterator[psycopg.Cursor]:
        with self._lock:
            conn = self._connection()
            with conn.cursor() as cur:
                yield cur

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self._close_adbc()

    def _exists(self, cur: psycopg.Cursor, name: str) -> bool:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL",
                    (sql.Identifier(self.schema, name).as_string(cur),))
        return bool(cur.fetchone()[0])

    def _rows(self, cur: psycopg.Cursor, name: str) -> int:
        if not self._exists(cur, name):
            return 0
        cur.execute(sql.SQL("SELECT count(*) FROM {}").format(self._t(name)))
        return int(cur.fetchone()[0])

    # -- DDL and loading ---------------------------------------------------------------------------

    def _create_table(self, cur: psycopg.Cursor, table: str, layer: str) -> None:
        s = SCHEMAS[layer]
        cols = [sql.SQL("fid bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")]
        cols += [sql.SQL("{} {}").format(sql.Identifier(f.name), sql.SQL(_PG_TYPES[f.dtype]))
                 for f in s.fields]
        cols += [sql.SQL("{} bigint").format(sql.Identifier(c)) for c in s.h3_columns]
        if s.geometry is not None:
            gtype = "Point" if s.geometry == "Point" else "Geometry"
            cols.append(sql.SQL(f"{sc.GEOM_COL} geometry({gtype}, 4326)"))
        cur.execute(sql.SQL("CREATE TABLE {} ({})").format(self._t(table), sql.SQL(", ").join(cols)))

    def _index_names(self, layer: str) -> list[str]:
        names = [idx for idx, _, _ in sc.index_plan(layer)]
        if SCHEMAS[layer].geometry is not None:
            names.append(f"{layer}_geom_gist")
        return names

    def _create_indexes(self, cur: psycopg.Cursor, table: str, layer: str, suffix: str) -> None:
        """Indexes of ``layer`` built on ``table``, named ``<index><suffix>``."""
        for idx, cols, unique in sc.index_plan(layer):
            cur.execute(sql.SQL("CREATE {}INDEX {} ON {} ({})").format(
                sql.SQL("UNIQUE " if unique else ""), sql.Identifier(idx + suffix),
                self._t(table), sql.SQL(", ").join(map(sql.Identifier, cols))))
        if SCHEMAS[layer].geometry is not None:
            cur.execute(sql.SQL("CREATE INDEX {} ON {} USING gist ({})").format(
                sql.Identifier(f"{layer}_geom_gist{suffix}"), self._t(table),
                sql.Identifier(sc.GEOM_COL)))

    def _copy(self, cur: psycopg.Cursor, table: str, layer: str, df: pd.DataFrame) -> None:
        """Load a prepared frame with ``COPY ... FROM STDIN``, binary (default) or CSV."""
        if _COPY_FORMAT == "binary":
            self._copy_binary(cur, table, layer, df)
        else:
            self._copy_csv(cur, table, layer, df)

    def _copy_binary(self, cur: psycopg.Cursor, table: str, layer: str, df: pd.DataFrame) -> None:
        """Load a prepared frame with ``COPY ... FROM STDIN (FORMAT binary)``.

        Every value is sent in PostgreSQL's binary wire format, encoded column by column with
        numpy by :func:`copy_binary_batches` (geometry as EWKB, SRID 4326): the server parses
        no text (no hex geometry, no timestamp or number text). Same transaction as the rest
        of the write.
        """
        s = SCHEMAS[layer]
        names = sc.stored_columns(s)
        kinds = [sc.column_kind(s, c) for c in names]
        arrays = [pa.Array.from_pandas(df[c]) for c in names]
        if s.geometry is not None:
            names = [*names, sc.GEOM_COL]
            kinds = [*kinds, "geometry"]
            arrays.append(np.asarray(df.geometry.values, dtype=object))
        cols = sql.SQL(", ").join(map(sql.Identifier, names))
        with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(
                self._t(table), cols)) as copy:
            for chunk in copy_binary_batches(arrays, kinds, batch_rows=_COPY_BATCH_ROWS):
                copy.write(chunk)

    def _copy_csv(self, cur: psycopg.Cursor, table: str, layer: str, df: pd.DataFrame) -> None:
        """Load a prepared frame with ``COPY ... FROM STDIN (FORMAT csv)``.

        The CSV is written by Arrow in C (strings quoted, so ``""`` is an empty string and an
        unquoted empty field is NULL; timestamps ISO; geometry as hex EWKB) in batches that
        psycopg streams while the next one is formatted: about 30x faster than ``write_row``.
        """
        s = SCHEMAS[layer]
        names = sc.stored_columns(s)
        arrays = [pa.Array.from_pandas(df[c]) for c in names]
        if s.geometry is not None:
            arrays.append(ewkb_hex(np.asarray(df.geometry.values, dtype=object)))
            names = [*names, sc.GEOM_COL]
        data = pa.table(arrays, names=names)
        options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
        cols = sql.SQL(", ").join(map(sql.Identifier, names))
        with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
                self._t(table), cols)) as copy:
            for batch in data.to_batches(max_chunksize=_COPY_BATCH_ROWS):
                buf = io.BytesIO()
                pacsv.write_csv(batch, buf, options)
                copy.write(buf.getbuffer())

    def _replace(self, cur: psycopg.Cursor, layer: str, df: pd.DataFrame) -> None:
        suffix = f"__new_{uuid.uuid4().hex[:8]}"
        tmp = layer + suffix
        self._create_table(cur, tmp, layer)
        self._copy(cur, tmp, layer, df)
        self._create_indexes(cur, tmp, layer, suffix)
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._t(layer)))
        cur.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(self._t(tmp),
                                                                 sql.Identifier(layer)))
        for idx in self._index_names(layer):
            cur.execute(sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                sql.Identifier(self.schema, idx + suffix), sql.Identifier(idx)))
        cur.execute(sql.SQL("ANALYZE {}").format(self._t(layer)))

    def _append(self, cur: psycopg.Cursor, layer: str, df: pd.DataFrame) -> None:
        if not self._exists(cur, layer):
            self._replace(cur, layer, df)
            return
        self._copy(cur, layer, layer, df)

    def _audit(self, cur: psycopg.Cursor, row: Mapping[str, Any]) -> None:
        cur.execute(sql.SQL("INSERT INTO {} (time, actor, action, layer, rows, note) "
                            "VALUES (%s, %s, %s, %s, %s, %s)").format(self._t(sc.AUDIT_TABLE)),
                    [row["time"].to_pydatetime(), *(row[c] for c in sc.AUDIT_COLUMNS[1:])])

    def _mark_stale(self, cur: psycopg.Cursor, layer: str) -> None:
        cur.execute(sql.SQL("UPDATE {} SET current = false WHERE layer = %s").format(
            self._t(sc.VERSIONS_TABLE)), (layer,))

    # -- the Store interface ------------------------------------------------------------------------

    def layer_names(self) -> list[str]:
        with self._cursor() as cur:
            cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                        (self.schema,))
            present = {r[0] for r in cur.fetchall()}
        return [n for n in SCHEMAS if n in present]

    def _where(self, layer: str, where: Where | None, between: Between | None,
               bbox: tuple[float, float, float, float] | None = None) -> tuple[str, list[Any]]:
        cond, params = sc.compile_filters(layer, where=where, between=between, placeholder="%s",
                                          datetime_param=_dt_param)
        if bbox is not None:
            if SCHEMAS[layer].geometry is None:
                raise sc.store_error("no_geometry", layer=layer)
            box = f"{sc.GEOM_COL} && ST_MakeEnvelope(%s, %s, %s, %s, 4326)"
            cond = f"{cond} AND {box}" if cond else box
            params = [*params, *(float(v) for v in bbox)]
        return cond, params

    def count(self, name: str, *, where: Where | None = None, between: Between | None = None) -> int:
        cond, params = self._where(name, where, between)
        with self._cursor() as cur:
            if not self._exists(cur, name):
                return 0
            q = sql.SQL("SELECT count(*) FROM {}").format(self._t(name))
            if cond:
                q = q + sql.SQL(" WHERE " + cond)
            cur.execute(q, params)
            return int(cur.fetchone()[0])

    def read(
        self,
        name: str,
        *,
        columns: Sequence[str] | None = None,
        where: Where | None = None,
        between: Between | None = None,
        bbox: tuple[float, float, float, float] | None = None,
        limit: int | None = None,
        order_by: str | None = None,
        descending: bool = False,
    ) -> pd.DataFrame:
        s = sc.schema_of(name)
        cols = sc.check_columns(name, columns)
        sc.check_order(name, order_by)
        cond, params = self._where(name, where, between, bbox)
        select = [sql.Identifier(c) for c in cols]
        if s.geometry is not None:
            wkb = f"ST_AsBinary({sc.GEOM_COL})"
            if _COPY_FORMAT != "binary":  # CSV carries the WKB as hex text
                wkb = f"encode({wkb}, 'hex')"
            select.append(sql.SQL(f"{wkb} AS {sc.GEOM_COL}"))
        inner = sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(select) if select else sql.SQL("fid"), self._t(name))
        if cond:
            inner = inner + sql.SQL(" WHERE " + cond)
        order = [sql.SQL("{} {}").format(sql.Identifier(order_by),
                                         sql.SQL("DESC" if descending else "ASC"))] if order_by else []
        inner = inner + sql.SQL(" ORDER BY ") + sql.SQL(", ").join([*order, sql.SQL("fid")])
        if limit is not None:
            inner = inner + sql.SQL(f" LIMIT {int(limit)}")
        buf = io.BytesIO()
        with self._cursor() as cur:
            if not self._exists(cur, name):
                return sc.empty_frame(name, cols)
            # COPY takes no parameters: bind them client-side into the statement first.
            stmt = psycopg.ClientCursor(cur.connection).mogrify(inner, params)
            if _COPY_FORMAT == "binary":
                return self._read_binary(stmt, name, cols)
            with cur.copy(f"COPY ({stmt}) TO STDOUT (FORMAT csv, HEADER true, NULL '\\N')") as cp:
                for chunk in cp:
                    buf.write(chunk)
        buf.seek(0)
        names = [*cols, *([sc.GEOM_COL] if s.geometry is not None else [])]
        if not names:
            names = ["fid"]
        df = pd.read_csv(buf, dtype=str, keep_default_na=False, na_values=["\\N"],
                         na_filter=True) if buf.getbuffer().nbytes else pd.DataFrame(columns=names)
        if len(df.columns) != len(names):  # pragma: no cover - header always written
            df = pd.DataFrame(columns=names)
        if s.geometry is not None:
            hexes = df.pop(sc.GEOM_COL).to_numpy(dtype=object)
            geoms = shapely.from_wkb(hexes) if len(hexes) else np.array([], dtype=object)
            df = gpd.GeoDataFrame(df[cols], geometry=gpd.GeoSeries(geoms, crs=4326), crs=4326)
        else:
            df = df[cols]
        return sc.conform(df.reset_index(drop=True), name)

    def _adbc(self) -> Any:
        """The ADBC connection of the binary reads (autocommit: no transaction is left open)."""
        import adbc_driver_postgresql.dbapi as adbc

        if self._adbc_conn is None:
            self._adbc_conn = adbc.connect(self._conninfo, autocommit=True)
        return self._adbc_conn

    def _read_binary(self, stmt: str, name: str, cols: list[str]) -> pd.DataFrame:
        """Run the ``SELECT`` ``stmt`` through ADBC: binary COPY into Arrow, in C++.

        The ADBC PostgreSQL driver fetches results with ``COPY ... TO STDOUT (FORMAT
        binary)`` and decodes them straight into Arrow columns (text, int8, float8, bool,
        timestamp keep their types; NULLs stay missing); the geometry arrives as WKB
        (``ST_AsBinary``, in the statement) and becomes shapely geometries with
        ``shapely.from_wkb``. Against the CSV text COPY this skips formatting every value as
        text on the server and parsing it back in pandas (see ``benchmarks/postgis_bulk.py``).
        """
        import pyarrow as pa

        with self._lock:
            try:
                with self._adbc().cursor() as cur:
                    cur.execute(stmt)
                    table = cur.fetch_arrow_table()
            except Exception as exc:  # the driver's errors share no base class worth naming
                self._close_adbc()
                err = StoreError(t("perf.read_failed", "en", layer=name, error=str(exc).strip()))
                err.key = "perf.read_failed"  # type: ignore[attr-defined]
                err.params = {"layer": name, "error": str(exc).strip()}  # type: ignore[attr-defined]
                raise err from exc
        s = SCHEMAS[name]
        if s.geometry is not None:
            col = table.column(sc.GEOM_COL)
            chunks = [c.storage if isinstance(c, pa.ExtensionArray) else c for c in col.chunks]
            wkb = pa.chunked_array(chunks, type=pa.binary()).to_numpy(zero_copy_only=False)
            table = table.drop_columns([sc.GEOM_COL])
        df = table.to_pandas(self_destruct=True)
        del table
        df = df[cols] if cols else pd.DataFrame(index=df.index)
        if s.geometry is not None:
            geoms = shapely.from_wkb(wkb) if len(wkb) else np.array([], dtype=object)
            df = gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geoms, crs=4326, index=df.index),
                                  crs=4326)
        return sc.conform(df.reset_index(drop=True), name)

    def _close_adbc(self) -> None:
        if self._adbc_conn is not None:
            with contextlib.suppress(Exception):
                self._adbc_conn.close()
            self._adbc_conn = None

    def write(
        self,
        layers: Mapping[str, pd.DataFrame],
        *,
        mode: WriteMode = "replace",
        actor: str = "system",
        note: str = "",
        reset: bool = False,
    ) -> None:
        prepared = sc.check_write(layers, mode, reset=reset)
        sc.check_no_duplicates(prepared)
        with self._transaction() as cur:
            cur.execute(f"SET LOCAL maintenance_work_mem = '{_INDEX_MEMORY}'")
            if reset:
                present = self.layer_names()
                removed = sum(self._rows(cur, name) for name in present)
                self._audit(cur, sc.reset_audit_row(removed, actor=actor, note=note))
                for name in present:
                    if name not in prepared:
                        cur.execute(sql.SQL("DROP TABLE {}").format(self._t(name)))
                    self._mark_stale(cur, name)
            for name, df in prepared.items():
                sc.check_append_only(name, mode, self._rows(cur, name), reset=reset)
                if mode == "replace":
                    self._replace(cur, name, df)
                else:
                    self._append(cur, name, df)
                self._mark_stale(cur, name)
                self._audit(cur, sc.audit_row(mode, name, len(df), actor=actor, note=note))
            summaries.after_write(self, cur, prepared, mode=mode, reset=reset)

    def h3_counts(
        self,
        name: str,
        *,
        res: int,
        where: Where | None = None,
        between: Between | None = None,
        by: Sequence[str] = (),
    ) -> pd.DataFrame:
        col = sc.check_h3_res(name, res)
        sc.check_columns(name, by)
        cond, params = self._where(name, where, between)
        keys = sql.SQL(", ").join([sql.Identifier(col), *map(sql.Identifier, by)])
        with self._cursor() as cur:
            if not self._exists(cur, name):
                return sc.h3_frame([], name, by)
            q = sql.SQL("SELECT {}, count(*) FROM {} WHERE {} <> 0").format(
                keys, self._t(name), sql.Identifier(col))
            if cond:
                q = q + sql.SQL(" AND " + cond)
            q = q + sql.SQL(" GROUP BY {} ORDER BY {}").format(keys, keys)
            cur.execute(q, params)
            rows = cur.fetchall()
        return sc.h3_frame(rows, name, by)

    def audit_log(self, *, limit: int | None = None) -> pd.DataFrame:
        with self._cursor() as cur:
            q = sql.SQL("SELECT time, actor, action, layer, rows, note FROM {} ORDER BY fid DESC"
                        ).format(self._t(sc.AUDIT_TABLE))
            if limit is not None:
                q = q + sql.SQL(f" LIMIT {int(limit)}")
            cur.execute(q)
            rows = cur.fetchall()
        return sc.audit_frame(rows)

    def record(self, action: str, layer: str, *, rows: int = 0, actor: str = "system",
               note: str = "") -> None:
        with self._transaction() as cur:
            self._audit(cur, sc.audit_row(action, layer, rows, actor=actor, note=note))

    # -- updates and events -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _apply_transaction(self, ev: pd.DataFrame | None) -> Iterator[psycopg.Cursor]:
        """The write transaction of :meth:`apply` (READ COMMITTED; rows locked by the UPDATE)."""
        with self._transaction() as cur:
            yield cur

    def _existing_keys(self, cur: psycopg.Cursor, layer: str, keys: list[Any]) -> set[Any]:
        key = SCHEMAS[layer].key
        if not self._exists(cur, layer):
            return set()
        cur.execute(sql.SQL("SELECT {} FROM {} WHERE {} = ANY(%s)").format(
            sql.Identifier(key), self._t(layer), sql.Identifier(key)), (keys,))
        return {r[0] for r in cur.fetchall()}

    @staticmethod
    def _equal(col: str, kind: str, p: str) -> str:
        return f"{col} IS NOT DISTINCT FROM {p}::{_PG_TYPES[kind]}"

    def _update_rows(self, cur: psycopg.Cursor, layer: str, keys: list[Any],
                     changes: Mapping[str, Any], expect: Mapping[str, Any]) -> int:
        """``UPDATE ... WHERE key = ANY(keys) AND <expected values>``: a racing second writer
        waits for the first one's row lock, then re-checks the condition on the committed row
        (READ COMMITTED), so it matches nothing and the caller refuses it."""
        key = SCHEMAS[layer].key
        cond, cond_params = sc.expect_clause(layer, expect, placeholder="%s", equal=self._equal)
        sets = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in changes)
        stmt = sql.SQL("UPDATE {} SET {} WHERE {} = ANY(%s)").format(
            self._t(layer), sets, sql.Identifier(key))
        if cond:
            stmt = stmt + sql.SQL(" AND " + cond)
        cur.execute(stmt, [*changes.values(), keys, *cond_params])
        n = cur.rowcount
        self._mark_stale(cur, layer)
        return n

    def _missing_event_refs(self, cur: psycopg.Cursor, ev: pd.DataFrame) -> list[str]:
        ids = sorted(set(ev["service_request_id"].dropna().tolist()))
        found: set[str] = set()
        if self._exists(cur, sc.INCIDENTS):
            cur.execute(sql.SQL("SELECT service_request_id FROM {} WHERE "
                                "service_request_id = ANY(%s)").format(
                                    self._t(sc.INCIDENTS)), (ids,))
            found = {r[0] for r in cur.fetchall()}
        return [i for i in ids if i not in found]

    def _append_events(self, cur: psycopg.Cursor, ev: pd.DataFrame) -> None:
        self._append(cur, sc.EVENTS, ev)

    # -- versions -------------------------------------------------------------------------------------


    def _save(self, layer: str, df: pd.DataFrame, *, actor: str, note: str, action: str,
              source: int | None) -> int:
        blob = sc.snapshot_bytes(df)
        when = sc.now_local()
        vt = self._t(sc.VERSIONS_TABLE)
        with self._transaction() as cur:
            # Serialise version numbering per store.
            cur.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(vt))
            self._replace(cur, layer, df)
            cur.execute(sql.SQL("SELECT coalesce(max(version), 0) + 1 FROM {} WHERE layer = %s"
                                ).format(vt), (layer,))
            version = int(cur.fetchone()[0])
            self._mark_stale(cur, layer)
            cur.execute(sql.SQL(
                "INSERT INTO {} (layer, version, time, actor, note, rows, current, "
                "source_version, data) VALUES (%s, %s, %s, %s, %s, %s, true, %s, %s)").format(vt),
                (layer, version, when.to_pydatetime(), actor, note, len(df), source, blob))
            self._audit(cur, sc.audit_row(action, layer, len(df), actor=actor,
                                          note=sc.version_note(version, note),
                                          time=when))
        return version

    def versions(self, layer: str) -> pd.DataFrame:
        sc.schema_of(layer)
        with self._cursor() as cur:
            cur.execute(sql.SQL("SELECT version, time, actor, note, rows, current, source_version "
                                "FROM {} WHERE layer = %s ORDER BY version").format(
                                    self._t(sc.VERSIONS_TABLE)), (layer,))
            rows = cur.fetchall()
        return sc.versions_frame(rows)

    def read_version(self, layer: str, version: int) -> pd.DataFrame:
        sc.schema_of(layer)
        with self._cursor() as cur:
            cur.execute(sql.SQL("SELECT data FROM {} WHERE layer = %s AND version = %s").format(
                self._t(sc.VERSIONS_TABLE)), (layer, int(version)))
            row = cur.fetchone()
        if row is None:
            raise sc.store_error("unknown_version", layer=layer, version=version)
        return sc.snapshot_frame(row[0], layer)

    # -- record tables (accounts, sessions) ------------------------------------------------------

    @contextlib.contextmanager
    def _records_tx(self, table: str, *, write: bool) -> Iterator[_records.RecordTx]:
        spec = _records.table_of(table)
        qualified = f"{_records.quote(self.schema)}.{_records.quote(spec.name)}"
        ctx = self._transaction() if write else self._cursor()
        with ctx as cur:
            def execute(text: str, params: Sequence[Any]) -> psycopg.Cursor:
                return cur.execute(text, params)  # type: ignore[arg-type]

            def audit(a: Mapping[str, Any]) -> None:
                self._audit(cur, sc.audit_row(a["action"], a["layer"], a.get("rows", 1),
                                              actor=a["actor"], note=a.get("note", "")))

            if write:
                cur.execute(_records.ddl(spec, "pg", qualified))  # type: ignore[arg-type]
            elif not self._exists(cur, spec.name):
                yield _records.RecordTx(None, qualified, "pg", audit)  # type: ignore[arg-type]
                return
            yield _records.RecordTx(execute, qualified, "pg", audit)
