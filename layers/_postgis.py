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
* Reads go through ADBC (binary COPY decoded into Arrow in C++; geometry as WKB), or, with
  :data:`_COPY_FORMAT` ``"csv"``, stream ``COPY (SELECT ...) TO STDOUT`` as CSV into pandas.
* The operations (write, apply, versions, record tables) are the template methods of
  :class:`layers._engine.SqlStore`; this module gives them the primitives (a transaction, a
  table load by COPY, plain SQL) and keeps its own read path. The binary COPY encoders are in
  :mod:`layers._pg_copy`.
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

from layers import _records
from layers import _store_common as sc
from layers._engine import ReadQuery, SqlStore
from layers._pg_copy import copy_binary_batches, ewkb_bytes, ewkb_hex
from layers._store_api import Between, Where
from layers.errors import StoreError
from layers.schema import SCHEMAS

__all__ = ["PostGISStore", "copy_binary_batches", "ewkb_bytes", "ewkb_hex", "split_url"]

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


class PostGISStore(SqlStore):
    """A PostgreSQL + PostGIS schema as the store.

    Parameters
    ----------
    url
        ``postgresql://...[?schema=NAME]``.
    """

    PH = "%s"
    DIALECT = "pg"

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
        # the catalog read with the statement's own snapshot: ``to_regclass`` goes through the
        # session's cache, which may still miss a table another transaction has just
        # committed (seen after waiting for :meth:`_lock_creation`)
        cur.execute("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN "
                    "pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = %s AND c.relname = %s)", (self.schema, name))
        return bool(cur.fetchone()[0])

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
        self._copy(cur, layer, layer, df)

    def _lock_creation(self, cur: psycopg.Cursor, layer: str) -> None:
        """A transaction-level advisory lock on ``schema.layer``: a second creator waits for
        the first one's COMMIT, and its next look (READ COMMITTED) finds the table."""
        cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                    (f"gridpulse-create:{self.schema}.{layer}",))

    # -- primitives of the template (:class:`layers._engine.SqlStore`) ------------------------------

    def _read_tx(self) -> contextlib.AbstractContextManager[psycopg.Cursor]:
        return self._cursor()

    @contextlib.contextmanager
    def _write_tx(self, frames: Mapping[str, pd.DataFrame] | None = None, *,
                  bulk: bool = False) -> Iterator[psycopg.Cursor]:
        """One transaction (READ COMMITTED; the rows an update touches are locked by it)."""
        with self._transaction() as cur:
            if bulk:
                cur.execute(f"SET LOCAL maintenance_work_mem = '{_INDEX_MEMORY}'")
            yield cur

    def has_layer(self, name: str) -> bool:
        """One catalog lookup (``layer_names`` lists the schema's tables through
        ``information_schema``, which costs about 0.7 ms: the intake API asks this per batch)."""
        if name not in SCHEMAS:
            return False
        with self._cursor() as cur:
            return self._exists(cur, name)

    def _layers_in(self, cur: psycopg.Cursor) -> list[str]:
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                    (self.schema,))
        present = {r[0] for r in cur.fetchall()}
        return [n for n in SCHEMAS if n in present]

    def _drop(self, cur: psycopg.Cursor, layer: str) -> None:
        cur.execute(sql.SQL("DROP TABLE {}").format(self._t(layer)))

    def _execute(self, cur: psycopg.Cursor, text: str, params: Sequence[Any] = ()) -> Any:
        return cur.execute(text.encode(), params)  # bytes: psycopg takes them as a query as-is

    def _fetch(self, cur: psycopg.Cursor, text: str,
               params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return cur.execute(text.encode(), params).fetchall()

    def _table(self, name: str) -> str:
        return f"{sc.quote_ident(self.schema)}.{sc.quote_ident(name)}"

    def _param(self, value: Any) -> Any:
        return value.to_pydatetime() if isinstance(value, pd.Timestamp) else value

    def _dt_param(self, ts: pd.Timestamp) -> Any:
        return ts.to_pydatetime()

    def _null_safe_equal(self, column: str, kind: str, placeholder: str) -> str:
        return f"{column} IS NOT DISTINCT FROM {placeholder}::{_PG_TYPES[kind]}"

    def _create_record_table(self, cur: psycopg.Cursor, spec: _records.RecordTable,
                             qualified: str) -> None:
        cur.execute(_records.ddl(spec, "pg", qualified).encode())

    def _lock_versions(self, cur: psycopg.Cursor) -> None:
        """Serialise version numbering per store."""
        cur.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(
            self._t(sc.VERSIONS_TABLE)))

    # -- reads ---------------------------------------------------------------------------------------

    def _where(self, layer: str, where: Where | None, between: Between | None,
               bbox: tuple[float, float, float, float] | None = None) -> tuple[str, list[Any]]:
        cond, params = sc.compile_filters(layer, where=where, between=between, placeholder="%s",
                                          datetime_param=self._dt_param)
        if bbox is not None:
            if SCHEMAS[layer].geometry is None:
                raise sc.store_error("no_geometry", layer=layer)
            box = f"{sc.GEOM_COL} && ST_MakeEnvelope(%s, %s, %s, %s, 4326)"
            cond = f"{cond} AND {box}" if cond else box
            params = [*params, *(float(v) for v in bbox)]
        return cond, params

    def _read(self, name: str, cols: list[str], rq: ReadQuery) -> pd.DataFrame:
        s = SCHEMAS[name]
        where, between, bbox, limit = rq.where, rq.between, rq.bbox, rq.limit
        order_by, descending = rq.order_by, rq.descending
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
                raise StoreError("perf.read_failed", layer=name, error=str(exc).strip()) from exc
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
