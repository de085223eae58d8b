"""The GeoPackage engine: one file, opened by QGIS, written all-or-nothing.

How a write stays atomic
------------------------
GDAL (through pyogrio) writes one layer per call on its own connection, so it cannot
write several layers in one transaction. Every write therefore goes in two steps:

1. **Stage.** Each new layer is written by pyogrio (Arrow path) into a *staging*
   GeoPackage beside the store (``.<store>.staging-<uuid>.gpkg``). GDAL builds the
   table, the ``gpkg_contents`` / ``gpkg_geometry_columns`` / ``gpkg_extensions`` /
   ``gpkg_ogr_contents`` rows and the R*Tree spatial index (bulk-loaded) there.
   The store itself is not touched; a failure here leaves it as it was.
2. **Swap.** One ``sqlite3`` connection ATTACHes the staging file and, inside ONE
   ``BEGIN IMMEDIATE`` transaction on the store, drops the old tables (and their
   R*Tree and triggers), recreates them from the staging DDL, copies the rows, copies
   the R*Tree's shadow tables (``rtree_<t>_geom_node/_rowid/_parent``, so the index is
   not rebuilt row by row), recreates GDAL's triggers, copies the metadata rows, builds
   the attribute indexes (:func:`layers._store_common.index_plan`) and appends the
   ``audit_log`` rows. Any error rolls the whole transaction back: the file is
   byte-for-byte what it was.

Appends copy the new rows (fids shifted past the existing ones) and insert their R*Tree
entries; GDAL's triggers are dropped and recreated around the copy inside the same
transaction. Row updates (:meth:`GeoPackageStore.apply`) run plain SQL in one
transaction; the GeoPackage R*Tree triggers call ``ST_IsEmpty``/``ST_MinX``... which
this module registers on its own connections.

Reads go through pyogrio with ``use_arrow=True``; filters, bbox (through the R*Tree),
column lists, order and limit are pushed down as SQLite SQL; a filtered read of at most
:data:`SMALL_READ_ROWS` rows (a drill-down: one worker's day, one case's events) is fetched
by ``sqlite3`` instead, sparing GDAL's open of the whole file (``docs/read_path.md``). Counts, ``h3_counts``,
the audit log and versions are plain SQL on ``sqlite3``.

Side files (staging and whole-file ``new`` GeoPackages) carry a ``.lock`` companion that the
writer holds with ``flock``; a writer killed mid-write (SIGKILL, power loss) leaves them
behind, and the next :class:`GeoPackageStore` opened on the store deletes those whose lock
nobody holds (:func:`clean_side_files`).

The write, update, version and record-table operations themselves are the template methods of
:class:`layers._engine.SqlStore`; this module gives them the primitives (a write transaction
with staged layers, the swap in :mod:`layers._gpkg_swap`, plain SQL) and keeps the
GeoPackage's own paths: the whole-file write and the range-scan reads. Side files:
:mod:`layers._gpkg_files`; SQL helpers and the Arrow read: :mod:`layers._gpkg_sql`.

Internal tables: ``audit_log`` (an attributes table, visible in QGIS) and
``layer_versions`` (snapshots as GeoParquet blobs, also registered as attributes).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyogrio

from layers import _gpkg_swap as swap
from layers import _records, summaries
from layers import _store_common as sc
from layers import _store_rules as rules
from layers._engine import ReadQuery, SqlStore
from layers._gpkg_files import (
    LEGACY_STALE_AFTER_S,
    clean_side_files,
    fsync,
    hold_side_lock,
    unlink_db,
)
from layers._gpkg_sql import (
    dt_text,
    gpkg_geometries,
    inline,
    register_functions,
    sql_value,
    store_errors,
)
from layers._gpkg_sql import read_frame as _read_frame
from layers._store_api import Between
from layers.schema import SCHEMAS

__all__ = ["LEGACY_STALE_AFTER_S", "SCAN_FACTOR", "GeoPackageStore", "_read_frame", "clean_side_files"]

_STG, _OLD = swap.STG, swap.OLD
#: GeoPackage tables GDAL creates in every new file (a whole-file write may drop the old ones).
_GPKG_BOOKKEEPING = frozenset({
    "gpkg_spatial_ref_sys", "gpkg_contents", "gpkg_geometry_columns", "gpkg_extensions",
    "gpkg_ogr_contents", "gpkg_tile_matrix_set", "gpkg_tile_matrix",
})
#: A ``between`` read scans the rowid range of its matches when the range holds at most this
#: many rows per match, else it follows the column's index (:meth:`GeoPackageStore._range_access`).
SCAN_FACTOR = 8.0
#: A filtered read (``where``, ``bbox``, ``limit``, ``order_by``: a drill-down) whose result has
#: at most this many rows is fetched with ``sqlite3`` and decoded here; a bigger one, when the
#: first ``SMALL_READ_ROWS + 1`` rows show it, goes through GDAL's Arrow read as before. GDAL
#: opens the whole GeoPackage (every layer's metadata) on each read: ~60-150 ms on the full
#: demo for a case's 6 events or one worker's day, against a few ms by ``sqlite3``
#: (``benchmarks/store_read.py --layouts``, ``docs/read_path.md``). ``0`` turns it off.
SMALL_READ_ROWS = 5000
_GEOMETRY_TYPES = {"Point": "Point", "Polygon": "Polygon", "LineString": "LineString",
                   "Point|Polygon": "Unknown"}

_VERSIONS_DDL = f"""CREATE TABLE IF NOT EXISTS "{sc.VERSIONS_TABLE}" (
  "fid" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, "layer" TEXT NOT NULL,
  "version" INTEGER NOT NULL, "time" DATETIME NOT NULL, "actor" TEXT, "note" TEXT,
  "rows" INTEGER, "current" BOOLEAN, "source_version" INTEGER, "data" BLOB,
  CONSTRAINT "{sc.VERSIONS_TABLE}_uq" UNIQUE ("layer", "version"))"""

#: GDAL settings for throw-away staging files and not-yet-published new files only.
_FAST_SQLITE = {"OGR_SQLITE_SYNCHRONOUS": "OFF", "OGR_SQLITE_JOURNAL": "OFF",
                "OGR_SQLITE_CACHE": "256"}
#: Internal tables a whole-file write carries over from the old file.
_INTERNAL = (sc.AUDIT_TABLE, sc.VERSIONS_TABLE, *_records.RECORD_TABLES)
_STAGING_LOCK = threading.Lock()

q = sc.quote_ident


class GeoPackageStore(SqlStore):
    """A GeoPackage file as the store (see the module docstring for the write protocol).

    Parameters
    ----------
    url
        Path of the ``.gpkg`` file (created, with its directory, when missing).
    timeout_s
        How long to wait for another writer's lock before failing.
    """

    def __init__(self, url: str | os.PathLike[str], *, timeout_s: float = 60.0) -> None:
        text = str(url)
        for prefix in ("gpkg://", "file://"):
            text = text.removeprefix(prefix)
        self.path = Path(text).expanduser().resolve()
        self.url = str(self.path)
        self.timeout_s = timeout_s
        if not self.path.exists():
            self._create()
        #: Staging files of writers killed mid-write, removed when the store was opened.
        self.cleaned = clean_side_files(self.path)
        self._ensure_internal()

    PH = "?"
    DIALECT = "sqlite"

    # -- connection plumbing -------------------------------------------------------------------

    def _create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.new-{uuid.uuid4().hex}.gpkg")
        audit = pd.DataFrame({
            "time": pd.Series([], dtype="datetime64[ms]"), "actor": pd.Series([], dtype="str"),
            "action": pd.Series([], dtype="str"), "layer": pd.Series([], dtype="str"),
            "rows": pd.Series([], dtype="int64"), "note": pd.Series([], dtype="str"),
        })
        try:
            pyogrio.write_dataframe(audit, tmp, layer=sc.AUDIT_TABLE, driver="GPKG")
            try:
                os.link(tmp, self.path)  # fails if another process created it meanwhile
            except FileExistsError:
                pass
        finally:
            tmp.unlink(missing_ok=True)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None,
                               check_same_thread=False)
        register_functions(conn)
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute("PRAGMA cache_size = -131072")  # 128 MiB: index builds sort in memory
        conn.execute("PRAGMA threads = 2")  # helper threads for the sorts of CREATE INDEX
        return conn

    def _ensure_internal(self) -> None:
        conn = None
        try:
            conn = self._connect()
            if not self._exists(conn, sc.VERSIONS_TABLE):
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(_VERSIONS_DDL)
                conn.execute(
                    "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, "
                    "description, last_change) VALUES (?, 'attributes', ?, ?, "
                    "strftime('%Y-%m-%dT%H:%M:%fZ','now'))",
                    (sc.VERSIONS_TABLE, sc.VERSIONS_TABLE, "GridPulse layer versions"))
                conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise sc.store_error("not_a_geopackage", path=self.url, error=str(exc)) from exc
        finally:
            if conn is not None:
                conn.close()

    @staticmethod
    @staticmethod
    def _exists(conn: sqlite3.Connection, table: str, db: str = "main") -> bool:
        return swap.exists(conn, table, db)

    def _inode(self) -> tuple[int, int]:
        st = os.stat(self.path)
        return st.st_dev, st.st_ino

    def _locked(self, attach: Path | None = None) -> sqlite3.Connection:
        """A connection holding the store's write lock (``BEGIN IMMEDIATE``).

        A whole-file write (:meth:`_rebuild`) replaces the file while holding this lock on
        the old one; a writer that opened the old file and waited for the lock would then
        write into a file nobody sees. So after taking the lock the path must still be the
        file that was opened; otherwise the lock is dropped and the new file opened.
        """
        for _ in range(10):
            before = self._inode()
            conn = self._connect()
            try:
                if attach is not None:
                    conn.execute(f"ATTACH DATABASE ? AS {_STG}", (str(attach),))
                conn.execute("BEGIN IMMEDIATE")
                if self._inode() == before:
                    return conn
                conn.execute("ROLLBACK")
            except BaseException:
                conn.close()
                raise
            conn.close()
        raise sc.store_error("write_failed", error="the store file keeps being replaced")

    @contextlib.contextmanager
    def _transaction(self, staged: Mapping[str, pd.DataFrame] | None = None
                     ) -> Iterator[sqlite3.Connection]:
        """One write transaction on the store, with the staged layers ATTACHed as ``stg``."""
        staging: Path | None = None
        conn: sqlite3.Connection | None = None
        try:
            with store_errors():
                if staged:
                    staging = self._side_file("staging")
                    for name, df in staged.items():
                        self._stage(df, staging, name)
                conn = self._locked(staging)
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
        finally:
            if conn is not None:
                conn.close()
            if staging is not None:
                unlink_db(staging)

    def _side_file(self, kind: str) -> Path:
        """A hidden file beside the store (same directory, so ``os.replace`` is a rename).

        Its ``.lock`` companion is held (``flock``) until :func:`~layers._gpkg_files.unlink_db` removes it, so a
        store opened meanwhile knows it is in use (:func:`clean_side_files`).
        """
        side = self.path.with_name(f".{self.path.name}.{kind}-{uuid.uuid4().hex}.gpkg")
        hold_side_lock(side)
        return side

    @staticmethod
    def _stage(df: pd.DataFrame, staging: Path, name: str) -> None:
        """Write one prepared layer into the staging GeoPackage with pyogrio.

        The staging file is thrown away on any failure, so SQLite's journal and fsyncs are
        switched off while GDAL writes it (about 40% faster on a million points).
        """
        kw: dict[str, Any] = {"layer": name, "driver": "GPKG", "use_arrow": True}
        geom = SCHEMAS[name].geometry
        if geom is not None and len(df) == 0:
            kw["geometry_type"] = _GEOMETRY_TYPES[geom]
        with _STAGING_LOCK:
            before = {k: pyogrio.get_gdal_config_option(k) for k in _FAST_SQLITE}
            pyogrio.set_gdal_config_options(_FAST_SQLITE)
            try:
                pyogrio.write_dataframe(df, staging, **kw)
            finally:
                pyogrio.set_gdal_config_options(before)

    # -- primitives of the template (:class:`layers._engine.SqlStore`) ----------------------------

    @contextlib.contextmanager
    def _read_tx(self) -> Iterator[sqlite3.Connection]:
        conn = self._connect()
        try:
            yield conn
        finally:
            conn.close()

    def _write_tx(self, frames: Mapping[str, pd.DataFrame] | None = None, *,
                  bulk: bool = False) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """:meth:`_transaction`, staging ``frames`` first (the store locked ``BEGIN IMMEDIATE``).

        Outside a layer write (``bulk=False``: the events of :meth:`apply`) a frame is staged
        through GDAL only when its table does not exist yet; into an existing one (every
        workflow transition) rows are inserted with plain SQL (:meth:`_append`): the table has
        no geometry, and GDAL's feature-count triggers stay in place. That keeps a case action
        at a few milliseconds instead of building a staging GeoPackage each time.
        """
        if frames and not bulk:
            frames = {n: f for n, f in frames.items() if not self._has_table(n)}
        return self._transaction(frames)

    def _has_table(self, name: str) -> bool:
        with self._read_tx() as conn:
            return self._exists(conn, name)

    def _staged(self, conn: sqlite3.Connection, name: str) -> bool:
        attached = any(r[1] == _STG for r in conn.execute("PRAGMA database_list"))
        return attached and self._exists(conn, name, _STG)

    def _layers_in(self, conn: sqlite3.Connection) -> list[str]:
        names = {r[0] for r in conn.execute("SELECT table_name FROM main.gpkg_contents")}
        return [n for n in SCHEMAS if n in names]

    def _replace(self, conn: sqlite3.Connection, layer: str, df: pd.DataFrame) -> None:
        if not self._staged(conn, layer):  # dropped by a reset since the write looked
            raise sc.store_error("write_failed", error=f"{layer} was just removed; retry")
        swap.replace_from_staging(conn, layer)

    def _append(self, conn: sqlite3.Connection, layer: str, df: pd.DataFrame) -> None:
        if self._staged(conn, layer):
            swap.append_from_staging(conn, layer)
            return
        if SCHEMAS[layer].geometry is not None:  # pragma: no cover - spatial layers are staged
            raise sc.store_error("write_failed", error=f"{layer} was not staged")
        cols = sc.stored_columns(SCHEMAS[layer])
        rows = [tuple(None if v is None or v is pd.NaT or (isinstance(v, float) and v != v)
                      else sql_value(v) for v in rec)
                for rec in df[cols].astype(object).itertuples(index=False, name=None)]
        conn.executemany(f"INSERT INTO main.{q(layer)} ({', '.join(q(c) for c in cols)}) "
                         f"VALUES ({', '.join('?' * len(cols))})", rows)
        swap.touch(conn, layer)

    def _drop(self, conn: sqlite3.Connection, layer: str) -> None:
        swap.drop(conn, layer)

    def _execute(self, conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> Any:
        return conn.execute(sql, params)

    def _fetch(self, conn: sqlite3.Connection, sql: str,
               params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return conn.execute(sql, params).fetchall()

    def _table(self, name: str) -> str:
        return f"main.{q(name)}"

    def _param(self, value: Any) -> Any:
        return sql_value(value)

    def _dt_param(self, ts: pd.Timestamp) -> Any:
        return dt_text(ts)

    def _null_safe_equal(self, column: str, kind: str, placeholder: str) -> str:
        """Null-safe equality; datetimes compared as text normalised to milliseconds."""
        if kind == "datetime":
            return (f"strftime('%Y-%m-%dT%H:%M:%f', {column}) IS "
                    f"strftime('%Y-%m-%dT%H:%M:%f', {placeholder})")
        return f"{column} IS {placeholder}"

    def _create_record_table(self, conn: sqlite3.Connection, spec: _records.RecordTable,
                             qualified: str) -> None:
        if not self._exists(conn, spec.name):
            conn.execute(_records.ddl(spec, "sqlite", qualified))
            conn.execute(
                "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, "
                "description, last_change) VALUES (?, 'attributes', ?, ?, "
                "strftime('%Y-%m-%dT%H:%M:%fZ','now'))",
                (spec.name, spec.name, "GridPulse " + spec.name.removeprefix("gp_")))

    def _changed(self, conn: sqlite3.Connection, layer: str) -> None:
        swap.touch(conn, layer)

    # -- whole-file writes -------------------------------------------------------------------------

    def _present_rows(self, conn: sqlite3.Connection) -> int:
        return sum(self._rows(conn, name) for name in self._layers_in(conn))

    def _rebuildable(self, conn: sqlite3.Connection, prepared: Mapping[str, pd.DataFrame], *,
                     reset: bool) -> bool:
        """True when the write replaces everything the file holds (so a new file can).

        Everything means: every table and view of the file is a written layer, an internal
        table, a layer a ``reset`` drops, or GeoPackage/R*Tree bookkeeping GDAL writes anew.
        Refuses (``append_only``) to replace a non-empty append-only layer without ``reset``.
        """
        allowed = {*prepared, *_INTERNAL, *summaries.TABLES, *(SCHEMAS if reset else ())}
        for typ, name in conn.execute("SELECT type, name FROM main.sqlite_master "
                                      "WHERE type IN ('table', 'view')").fetchall():
            if name.startswith("sqlite_") or (typ == "table" and name in _GPKG_BOOKKEEPING):
                continue
            if typ == "table" and name.startswith("rtree_") and any(
                    name.startswith(f"rtree_{layer}_") for layer in allowed):
                continue
            if typ == "view" or name not in allowed:
                return False
        for name in prepared:
            rules.check_append_only(name, "replace", self._rows(conn, name), reset=reset)
        return True

    def _write_whole(self, prepared: Mapping[str, pd.DataFrame], *, actor: str, note: str,
                     reset: bool) -> bool:
        """Write by building a whole new file beside the store and renaming it into place.

        Taken when the write replaces everything the file holds (:meth:`_rebuildable`): an
        empty store, a store of the demo, any ``reset``. GDAL writes every layer into the new
        file (no journal, no fsync: nobody sees it yet), the attribute indexes are built
        there, then -- holding the store's write lock -- its internal tables (audit log,
        versions) are copied in with the new audit rows, the new file is fsynced and
        ``os.replace``-d over the store. Readers see the old file or the new one, never a mix;
        a failure or crash before the rename leaves the store byte for byte as it was (a
        crash can leave a hidden ``.<store>.new-*.gpkg`` beside it, safe to delete).
        Returns False, having changed nothing, when the write does not qualify.
        """
        conn = self._connect()
        try:
            if not self._rebuildable(conn, prepared, reset=reset):
                return False
        finally:
            conn.close()
        new = self._side_file("new")
        conn = None
        try:
            with store_errors():
                for name, df in prepared.items():
                    self._stage(df, new, name)
                conn = sqlite3.connect(new, isolation_level=None, check_same_thread=False)
                register_functions(conn)
                for pragma in ("journal_mode = OFF", "synchronous = OFF", "temp_store = MEMORY",
                               "cache_size = -262144", "threads = 2"):
                    conn.execute(f"PRAGMA {pragma}")
                for name in prepared:
                    swap.ensure_indexes(conn, name)
                old = self._locked()
                try:
                    if not self._rebuildable(old, prepared, reset=reset):
                        return False  # the store changed meanwhile: the caller takes the slow path
                    removed = self._present_rows(old) if reset else 0
                    conn.execute(f"ATTACH DATABASE ? AS {_OLD}", (str(self.path),))
                    conn.execute("BEGIN")
                    for table in _INTERNAL:
                        swap.carry_over(conn, table)
                    if reset:
                        self._audit(conn, sc.reset_audit_row(removed, actor=actor, note=note))
                    for name in SCHEMAS if reset else ():
                        if name not in prepared:
                            self._mark_stale(conn, name)
                    for name, df in prepared.items():
                        self._layer_written(conn, name, df, action="replace", actor=actor,
                                            note=note)
                    self._after_layers(conn, prepared, mode="replace", reset=reset)
                    conn.execute("COMMIT")
                    conn.execute(f"DETACH DATABASE {_OLD}")
                    conn.close()
                    fsync(new)
                    os.replace(new, self.path)
                    fsync(self.path.parent)
                finally:
                    old.execute("ROLLBACK")
                    old.close()
        finally:
            if conn is not None:
                conn.close()
            unlink_db(new)
        return True

    # -- reads -----------------------------------------------------------------------------------

    def _read(self, name: str, cols: list[str], rq: ReadQuery) -> pd.DataFrame:
        s = SCHEMAS[name]
        where, between, bbox, limit = rq.where, rq.between, rq.bbox, rq.limit
        order_by, descending = rq.order_by, rq.descending
        cond, params = sc.compile_filters(name, where=where, between=between, placeholder="?",
                                          datetime_param=dt_text)
        conn = self._connect()
        try:
            if not self._exists(conn, name):
                return sc.empty_frame(name, cols)
            geom = swap.geom_col(conn, name)
            has_rtree = bool(geom) and self._exists(conn, f"rtree_{name}_{geom}")
            access = None
            if between and not (where or bbox or limit is not None or order_by):
                access = self._range_access(conn, name, between)
        finally:
            conn.close()
        if access is not None and access[0] == 0:
            return sc.empty_frame(name, cols)
        if access is not None and access[1]:
            # a plain scan of the rowid range holding the matches (no index, no sort)
            select = ", ".join(([q(geom)] if geom else []) + [q(c) for c in cols]) or "fid"
            sql = (f"SELECT {select} FROM {q(name)} NOT INDEXED "
                   f"WHERE fid BETWEEN {access[2]} AND {access[3]} AND {cond} ORDER BY fid")
            df = _read_frame(self.path, sql=inline(sql, params))
        elif not (cond or bbox or limit is not None or order_by):
            df = _read_frame(self.path, layer=name, columns=cols)
        else:
            clauses = [cond] if cond else []
            if bbox is not None:
                if geom is None:
                    raise sc.store_error("no_geometry", layer=name)
                minx, miny, maxx, maxy = (float(v) for v in bbox)
                if has_rtree:
                    clauses.append(f"fid IN (SELECT id FROM {q(f'rtree_{name}_{geom}')} "
                                   "WHERE maxx >= ? AND minx <= ? AND maxy >= ? AND miny <= ?)")
                else:  # pragma: no cover - GDAL always builds the index
                    clauses.append(f"ST_MaxX({q(geom)}) >= ? AND ST_MinX({q(geom)}) <= ? "
                                   f"AND ST_MaxY({q(geom)}) >= ? AND ST_MinY({q(geom)}) <= ?")
                params = [*params, minx, maxx, miny, maxy]
            select = ", ".join(([q(geom)] if geom else []) + [q(c) for c in cols]) or "fid"
            sql = f"SELECT {select} FROM {q(name)}"
            if clauses:
                sql += " WHERE " + " AND ".join(clauses)
            order = [f"{q(order_by)} {'DESC' if descending else 'ASC'}"] if order_by else []
            sql += " ORDER BY " + ", ".join([*order, "fid"])
            if limit is not None:
                sql += f" LIMIT {int(limit)}"
            small = self._read_small(sql, params, cols, geom) if SMALL_READ_ROWS > 0 else None
            df = small if small is not None else _read_frame(self.path, sql=inline(sql, params))
        df = df[[*cols, "geometry"]] if s.geometry is not None else df[cols]
        if s.geometry is not None and df.crs is None:
            df = df.set_crs(4326)
        return sc.conform(df, name)

    def _read_small(self, sql: str, params: Sequence[Any], cols: list[str],
                    geom: str | None) -> pd.DataFrame | None:
        """The rows of ``sql`` fetched by ``sqlite3`` when there are at most
        :data:`SMALL_READ_ROWS` of them (else ``None``: the caller reads through GDAL).

        ``sql`` selects the geometry column first when ``geom`` is set, then ``cols``; the
        frame has the columns GDAL's read gives (``_read`` conforms both the same way).
        """
        conn = self._connect()
        try:
            conn.execute("PRAGMA query_only = ON")
            rows = conn.execute(sql, [sql_value(p) for p in params]).fetchmany(SMALL_READ_ROWS + 1)
        finally:
            conn.close()
        if len(rows) > SMALL_READ_ROWS:
            return None
        names = [geom, *cols] if geom else list(cols)
        if not names:  # ``SELECT fid``: no columns asked for
            names = ["fid"]
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
        df = pd.DataFrame({n: pd.Series(list(v), dtype=object) for n, v in zip(names, columns, strict=True)})
        if not geom:
            return df[cols]
        geoms = gpkg_geometries(df.pop(geom).tolist())
        if geoms is None:
            return None
        import geopandas as gpd

        return gpd.GeoDataFrame(df[cols], geometry=gpd.GeoSeries(geoms, crs=4326, index=df.index),
                                crs=4326)

    def _range_access(self, conn: sqlite3.Connection, name: str,
                      between: Between) -> tuple[int, bool, int, int] | None:
        """How to read the rows of a ``between`` filter: ``(matches, scan, first fid, last fid)``.

        The matches are counted, and their first and last ``fid`` found, on the column's index
        alone (a covering index scan, ~0.2 s per million matches). Following the index to the
        rows costs a random page read per row unless the table is in the column's order; a
        plain scan of the rowid range ``first..last`` reads each page once, in order. The scan
        is chosen when that range holds at most :data:`SCAN_FACTOR` rows per match (see
        ``benchmarks/store_read.py`` for the measurements behind the factor). ``None`` when
        the filter is on several columns or on a column without an index (the query planner
        decides, as before).
        """
        if len(between) != 1:
            return None
        col = next(iter(between))
        indexed = conn.execute(
            "SELECT 1 FROM pragma_index_list(?) AS il JOIN pragma_index_info(il.name) AS ii "
            "WHERE ii.seqno = 0 AND ii.name = ?", (name, col)).fetchone()
        if indexed is None:
            return None
        cond, params = sc.compile_filters(name, where=None, between=between, placeholder="?",
                                          datetime_param=dt_text)
        if not cond:
            return None
        n, first, last = conn.execute(
            f"SELECT count(*), min(fid), max(fid) FROM main.{q(name)} WHERE {cond}", params).fetchone()
        if not n:
            return (0, False, 0, 0)
        return (int(n), (last - first + 1) <= SCAN_FACTOR * n, int(first), int(last))

