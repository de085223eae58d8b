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
column lists, order and limit are pushed down as SQLite SQL. Counts, ``h3_counts``,
the audit log and versions are plain SQL on ``sqlite3``.

Side files (staging and whole-file ``new`` GeoPackages) carry a ``.lock`` companion that the
writer holds with ``flock``; a writer killed mid-write (SIGKILL, power loss) leaves them
behind, and the next :class:`GeoPackageStore` opened on the store deletes those whose lock
nobody holds (:func:`clean_side_files`).

Internal tables: ``audit_log`` (an attributes table, visible in QGIS) and
``layer_versions`` (snapshots as GeoParquet blobs, also registered as attributes).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import struct
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyogrio
import shapely

from layers import _records, summaries
from layers import _store_common as sc
from layers.schema import SCHEMAS
from layers.store import Between, Store, Where, WriteMode

_STG = "stg"
_OLD = "old"
#: GeoPackage tables GDAL creates in every new file (a whole-file write may drop the old ones).
_GPKG_BOOKKEEPING = frozenset({
    "gpkg_spatial_ref_sys", "gpkg_contents", "gpkg_geometry_columns", "gpkg_extensions",
    "gpkg_ogr_contents", "gpkg_tile_matrix_set", "gpkg_tile_matrix",
})
_META_TABLES: tuple[str, ...] = (
    "gpkg_contents", "gpkg_geometry_columns", "gpkg_extensions", "gpkg_ogr_contents",
    "gpkg_data_columns",
)
#: A ``between`` read scans the rowid range of its matches when the range holds at most this
#: many rows per match, else it follows the column's index (:meth:`GeoPackageStore._range_access`).
SCAN_FACTOR = 8.0
_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}
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


# -- SQL functions GeoPackage triggers need ----------------------------------------------------


def _envelope(blob: bytes | None) -> tuple[float, float, float, float] | None:
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


def _register_functions(conn: sqlite3.Connection) -> None:
    def is_empty(b: bytes | None) -> int | None:
        return None if b is None else int(_envelope(b) is None)

    def part(i: int):
        def f(b: bytes | None) -> float | None:
            e = _envelope(b)
            return None if e is None else e[i]
        return f

    conn.create_function("ST_IsEmpty", 1, is_empty, deterministic=True)
    for i, name in enumerate(("ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY")):
        conn.create_function(name, 1, part(i), deterministic=True)


@contextlib.contextmanager
def _store_errors() -> Iterator[None]:
    """SQLite errors of a write as :class:`StoreError` (the store was left unchanged)."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        raise sc.store_error("constraint", error=str(exc)) from exc
    except sqlite3.OperationalError as exc:
        raise sc.store_error("write_failed", error=str(exc)) from exc


def _unlink_db(path: Path) -> None:
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    _release_side_lock(path)


# -- side files (staging / new) and their clean-up ------------------------------------------------

#: ``flock``-ed lock files of the side files this process is writing (path -> fd).
_SIDE_LOCKS: dict[str, int] = {}
_SIDE_LOCKS_GUARD = threading.Lock()
#: A side file without a lock file (written by an older GridPulse) counts as abandoned after this.
LEGACY_STALE_AFTER_S = 3600.0
_SIDE_KINDS = ("staging", "new")


def _lock_path(side: Path) -> Path:
    return side.with_name(side.name + ".lock")


def _hold_side_lock(side: Path) -> None:
    """Create ``<side>.lock`` already ``flock``-ed (made under a temporary name, then renamed),
    so a cleaner never sees the lock file of a live writer unlocked. The kernel drops the lock
    when the process dies, even by SIGKILL: that is how an abandoned side file is recognised."""
    import fcntl

    lock = _lock_path(side)
    tmp = lock.with_name(f"{lock.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.replace(tmp, lock)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    with _SIDE_LOCKS_GUARD:
        _SIDE_LOCKS[str(side)] = fd


def _release_side_lock(side: Path) -> None:
    with _SIDE_LOCKS_GUARD:
        fd = _SIDE_LOCKS.pop(str(side), None)
    if fd is not None:
        _lock_path(side).unlink(missing_ok=True)
        os.close(fd)


def _is_abandoned(side: Path, now: float) -> bool:
    """True when no live writer holds ``side``: its lock file can be locked, or (no lock
    file) it is older than :data:`LEGACY_STALE_AFTER_S`."""
    import fcntl

    lock = _lock_path(side)
    try:
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        try:
            return now - side.stat().st_mtime > LEGACY_STALE_AFTER_S
        except FileNotFoundError:
            return False  # finished meanwhile
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # a live writer holds it
    finally:
        os.close(fd)
    return True


def clean_side_files(store_path: Path) -> list[Path]:
    """Delete the staging / new files a killed writer left beside ``store_path``.

    Side files are named ``.<store>.<staging|new>-<hex>.gpkg`` (plus SQLite's ``-journal``,
    ``-wal``, ``-shm``, GDAL's ``.tmp_rtree_<layer>.db`` and GridPulse's ``.lock``). Only abandoned ones go (:func:`_is_abandoned`):
    a writer still running holds its lock. Returns the side files removed (without companions).
    """
    import time

    now = time.time()
    removed: list[Path] = []
    prefix = f".{store_path.name}."
    for side in sorted(store_path.parent.glob(f"{glob_escape(prefix)}*-*.gpkg")):
        kind = side.name[len(prefix):].split("-", 1)[0]
        if kind not in _SIDE_KINDS or not _is_abandoned(side, now):
            continue
        # the file, SQLite's journals, GDAL's ``.tmp_rtree_*.db`` and the lock file
        for companion in side.parent.glob(glob_escape(side.name) + "*"):
            companion.unlink(missing_ok=True)
        removed.append(side)
    return removed


def glob_escape(text: str) -> str:
    """``text`` with glob wildcards escaped (store names may contain ``[``)."""
    import glob

    return glob.escape(text)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _dt_text(ts: pd.Timestamp) -> str:
    """A naive timestamp as GDAL writes GeoPackage DATETIME (milliseconds only when not 0)."""
    text = ts.strftime("%Y-%m-%dT%H:%M:%S")
    ms = ts.microsecond // 1000
    return f"{text}.{ms:03d}" if ms else text


def _sql_value(v: Any) -> Any:
    if isinstance(v, pd.Timestamp):
        return _dt_text(v)
    if hasattr(v, "isoformat") and hasattr(v, "hour"):
        return _dt_text(pd.Timestamp(v))
    if isinstance(v, bool):
        return int(v)
    return v


def _literal(v: Any) -> str:
    """A SQLite literal (for SQL handed to GDAL, which takes no parameters)."""
    v = _sql_value(v)
    if v is None:
        return "NULL"
    if isinstance(v, int | float):
        if v != v or v in (float("inf"), float("-inf")):
            raise sc.store_error("bad_filter_value", value=v)
        return repr(v)
    return "'" + str(v).replace("'", "''") + "'"


def _inline(sql: str, params: Sequence[Any]) -> str:
    parts = sql.split("?")
    if len(parts) != len(params) + 1:  # pragma: no cover - guarded by compile_filters
        raise ValueError("placeholder count mismatch")
    out = [parts[0]]
    for p, rest in zip(params, parts[1:], strict=True):
        out += [_literal(p), rest]
    return "".join(out)


def _read_frame(path: Path, **kwargs: Any) -> pd.DataFrame:
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


class GeoPackageStore(sc.SharedApply, sc.SharedVersions, Store):
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
        _register_functions(conn)
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
    def _exists(conn: sqlite3.Connection, table: str, db: str = "main") -> bool:
        row = conn.execute(
            f"SELECT 1 FROM {db}.sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()
        return row is not None

    @staticmethod
    def _geom_col(conn: sqlite3.Connection, table: str, db: str = "main") -> str | None:
        if not GeoPackageStore._exists(conn, "gpkg_geometry_columns", db):
            return None
        row = conn.execute(
            f"SELECT column_name FROM {db}.gpkg_geometry_columns "
            "WHERE lower(table_name) = lower(?)", (table,)).fetchone()
        return row[0] if row else None

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
            with _store_errors():
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
                _unlink_db(staging)

    def _side_file(self, kind: str) -> Path:
        """A hidden file beside the store (same directory, so ``os.replace`` is a rename).

        Its ``.lock`` companion is held (``flock``) until :func:`_unlink_db` removes it, so a
        store opened meanwhile knows it is in use (:func:`clean_side_files`).
        """
        side = self.path.with_name(f".{self.path.name}.{kind}-{uuid.uuid4().hex}.gpkg")
        _hold_side_lock(side)
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

    # -- the swap ------------------------------------------------------------------------------

    def _drop(self, conn: sqlite3.Connection, name: str) -> None:
        geom = self._geom_col(conn, name)
        for (trig,) in conn.execute(
            "SELECT name FROM main.sqlite_master WHERE type = 'trigger' AND tbl_name = ?", (name,)
        ).fetchall():
            conn.execute(f"DROP TRIGGER main.{q(trig)}")
        if geom:
            conn.execute(f"DROP TABLE IF EXISTS main.{q(f'rtree_{name}_{geom}')}")
        conn.execute(f"DROP TABLE IF EXISTS main.{q(name)}")
        for meta in reversed(_META_TABLES):
            if self._exists(conn, meta):
                conn.execute(f"DELETE FROM main.{meta} WHERE lower(table_name) = lower(?)", (name,))

    def _copy_meta(self, conn: sqlite3.Connection, name: str, src: str = _STG) -> None:
        conn.execute("INSERT OR IGNORE INTO main.gpkg_spatial_ref_sys "
                     f"SELECT * FROM {src}.gpkg_spatial_ref_sys")
        for meta in _META_TABLES:
            if not self._exists(conn, meta, src):
                continue
            if not self._exists(conn, meta):
                (ddl,) = conn.execute(f"SELECT sql FROM {src}.sqlite_master WHERE name = ?",
                                      (meta,)).fetchone()
                conn.execute(ddl)
            conn.execute(f"DELETE FROM main.{meta} WHERE lower(table_name) = lower(?)", (name,))
            conn.execute(f"INSERT INTO main.{meta} SELECT * FROM {src}.{meta} "
                         "WHERE lower(table_name) = lower(?)", (name,))

    def _stg_objects(self, conn: sqlite3.Connection, name: str) -> tuple[str, list[str]]:
        rows = conn.execute(
            f"SELECT type, sql FROM {_STG}.sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL",
            (name,)).fetchall()
        table = next(sql for typ, sql in rows if typ == "table")
        triggers = [sql for typ, sql in rows if typ == "trigger"]
        return table, triggers

    def _copy_rtree(self, conn: sqlite3.Connection, name: str, *, create: bool) -> None:
        geom = self._geom_col(conn, name, _STG)
        if not geom:
            return
        rtree = f"rtree_{name}_{geom}"
        if not self._exists(conn, rtree, _STG):
            return
        if create:
            (ddl,) = conn.execute(f"SELECT sql FROM {_STG}.sqlite_master WHERE name = ?",
                                  (rtree,)).fetchone()
            conn.execute(ddl)
            # Copy the bulk-loaded R*Tree as it is (its shadow tables): re-inserting a million
            # entries one by one would take ~20 s.
            for shadow in ("node", "rowid", "parent"):
                t = q(f"{rtree}_{shadow}")
                conn.execute(f"DELETE FROM main.{t}")
                conn.execute(f"INSERT INTO main.{t} SELECT * FROM {_STG}.{t}")

    def _replace_from_staging(self, conn: sqlite3.Connection, name: str) -> None:
        table_sql, trigger_sqls = self._stg_objects(conn, name)
        self._drop(conn, name)
        conn.execute(table_sql)
        conn.execute(f"INSERT INTO main.{q(name)} SELECT * FROM {_STG}.{q(name)}")
        self._copy_rtree(conn, name, create=True)
        for sql in trigger_sqls:
            conn.execute(sql)
        self._copy_meta(conn, name)
        self._ensure_indexes(conn, name)

    def _append_from_staging(self, conn: sqlite3.Connection, name: str) -> None:
        main_cols = [r[1] for r in conn.execute(f"PRAGMA main.table_info({q(name)})")]
        stg_cols = [r[1] for r in conn.execute(f"PRAGMA {_STG}.table_info({q(name)})")]
        missing = [c for c in stg_cols if c not in main_cols]
        if missing:
            raise sc.store_error("schema_changed", layer=name, columns=", ".join(missing))
        (offset,) = conn.execute(f"SELECT coalesce(max(fid), 0) FROM main.{q(name)}").fetchone()
        (seq,) = conn.execute("SELECT coalesce(max(seq), 0) FROM main.sqlite_sequence "
                              "WHERE name = ?", (name,)).fetchone()
        offset = max(offset, seq)
        triggers = conn.execute(
            "SELECT name, sql FROM main.sqlite_master WHERE type = 'trigger' AND tbl_name = ?",
            (name,)).fetchall()
        for trig, _ in triggers:
            conn.execute(f"DROP TRIGGER main.{q(trig)}")
        cols = [c for c in stg_cols if c != "fid"]
        collist = ", ".join(q(c) for c in cols)
        cur = conn.execute(
            f"INSERT INTO main.{q(name)} (fid, {collist}) "
            f"SELECT fid + {int(offset)}, {collist} FROM {_STG}.{q(name)} ORDER BY fid")
        added = cur.rowcount
        geom = self._geom_col(conn, name)
        if geom and self._exists(conn, f"rtree_{name}_{geom}") and self._exists(
                conn, f"rtree_{name}_{geom}", _STG):
            rt = q(f"rtree_{name}_{geom}")
            conn.execute(f"INSERT INTO main.{rt} SELECT id + {int(offset)}, minx, maxx, miny, maxy "
                         f"FROM {_STG}.{rt}")
            conn.execute(
                "UPDATE main.gpkg_contents SET "
                "min_x = min(coalesce(min_x, s.a), s.a), min_y = min(coalesce(min_y, s.b), s.b), "
                "max_x = max(coalesce(max_x, s.c), s.c), max_y = max(coalesce(max_y, s.d), s.d) "
                f"FROM (SELECT min_x AS a, min_y AS b, max_x AS c, max_y AS d "
                f"FROM {_STG}.gpkg_contents WHERE lower(table_name) = lower(?)) AS s "
                "WHERE lower(gpkg_contents.table_name) = lower(?) AND s.a IS NOT NULL",
                (name, name))
        if self._exists(conn, "gpkg_ogr_contents"):
            conn.execute("UPDATE main.gpkg_ogr_contents SET feature_count = feature_count + ? "
                         "WHERE lower(table_name) = lower(?) AND feature_count IS NOT NULL",
                         (added, name))
        for _, sql in triggers:
            conn.execute(sql)
        self._touch(conn, name)

    @staticmethod
    def _touch(conn: sqlite3.Connection, name: str) -> None:
        conn.execute("UPDATE main.gpkg_contents SET last_change = "
                     "strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE lower(table_name) = lower(?)",
                     (name,))

    @staticmethod
    def _ensure_indexes(conn: sqlite3.Connection, name: str) -> None:
        for idx, cols, unique in sc.index_plan(name):
            conn.execute(f"CREATE {'UNIQUE ' if unique else ''}INDEX IF NOT EXISTS "
                         f"main.{q(idx)} ON {q(name)} ({', '.join(q(c) for c in cols)})")

    @staticmethod
    def _audit(conn: sqlite3.Connection, row: Mapping[str, Any]) -> None:
        conn.execute(
            f"INSERT INTO main.{sc.AUDIT_TABLE} (time, actor, action, layer, rows, note) "
            "VALUES (?, ?, ?, ?, ?, ?)", [_sql_value(row[c]) for c in sc.AUDIT_COLUMNS])

    def _rows(self, conn: sqlite3.Connection, name: str) -> int:
        if not self._exists(conn, name):
            return 0
        return conn.execute(f"SELECT count(*) FROM main.{q(name)}").fetchone()[0]

    @staticmethod
    def _mark_stale(conn: sqlite3.Connection, name: str) -> None:
        conn.execute(f"UPDATE main.{sc.VERSIONS_TABLE} SET current = 0 WHERE layer = ?", (name,))

    # -- whole-file writes -------------------------------------------------------------------------

    def _present(self, conn: sqlite3.Connection, db: str = "main") -> list[str]:
        names = {r[0] for r in conn.execute(f"SELECT table_name FROM {db}.gpkg_contents")}
        return [n for n in SCHEMAS if n in names]

    def _present_rows(self, conn: sqlite3.Connection) -> int:
        return sum(self._rows(conn, name) for name in self._present(conn))

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
            sc.check_append_only(name, "replace", self._rows(conn, name), reset=reset)
        return True

    def _rebuild(self, prepared: Mapping[str, pd.DataFrame], *, actor: str, note: str,
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
            with _store_errors():
                for name, df in prepared.items():
                    self._stage(df, new, name)
                conn = sqlite3.connect(new, isolation_level=None, check_same_thread=False)
                _register_functions(conn)
                for pragma in ("journal_mode = OFF", "synchronous = OFF", "temp_store = MEMORY",
                               "cache_size = -262144", "threads = 2"):
                    conn.execute(f"PRAGMA {pragma}")
                for name in prepared:
                    self._ensure_indexes(conn, name)
                old = self._locked()
                try:
                    if not self._rebuildable(old, prepared, reset=reset):
                        return False  # the store changed meanwhile: the caller takes the slow path
                    removed = self._present_rows(old) if reset else 0
                    conn.execute(f"ATTACH DATABASE ? AS {_OLD}", (str(self.path),))
                    conn.execute("BEGIN")
                    for table in _INTERNAL:
                        self._carry_over(conn, table)
                    if reset:
                        self._audit(conn, sc.reset_audit_row(removed, actor=actor, note=note))
                    for name in (SCHEMAS if reset else prepared):
                        self._mark_stale(conn, name)
                    for name, df in prepared.items():
                        self._audit(conn, sc.audit_row("replace", name, len(df), actor=actor,
                                                       note=note))
                    summaries.after_write(self, conn, prepared, mode="replace", reset=reset)
                    conn.execute("COMMIT")
                    conn.execute(f"DETACH DATABASE {_OLD}")
                    conn.close()
                    _fsync(new)
                    os.replace(new, self.path)
                    _fsync(self.path.parent)
                finally:
                    old.execute("ROLLBACK")
                    old.close()
        finally:
            if conn is not None:
                conn.close()
            _unlink_db(new)
        return True

    def _carry_over(self, conn: sqlite3.Connection, table: str) -> None:
        """Copy an internal table (DDL, rows, indexes, triggers, metadata) from the old file."""
        if not self._exists(conn, table, _OLD):
            return
        objs = conn.execute(f"SELECT type, sql FROM {_OLD}.sqlite_master WHERE tbl_name = ? "
                            "AND sql IS NOT NULL", (table,)).fetchall()
        order = {"table": 0, "index": 1, "trigger": 2}
        objs.sort(key=lambda o: order.get(o[0], 3))
        for typ, ddl in objs:  # rows before triggers: the feature count is copied as it is
            conn.execute(ddl)
            if typ == "table":
                conn.execute(f"INSERT INTO main.{q(table)} SELECT * FROM {_OLD}.{q(table)}")
        self._copy_meta(conn, table, _OLD)

    # -- the Store interface ---------------------------------------------------------------------

    def layer_names(self) -> list[str]:
        conn = self._connect()
        try:
            names = {r[0] for r in conn.execute("SELECT table_name FROM gpkg_contents")}
        finally:
            conn.close()
        return [n for n in SCHEMAS if n in names]

    def count(self, name: str, *, where: Where | None = None, between: Between | None = None) -> int:
        cond, params = sc.compile_filters(name, where=where, between=between, placeholder="?",
                                          datetime_param=_dt_text)
        conn = self._connect()
        try:
            if not self._exists(conn, name):
                return 0
            sql = f"SELECT count(*) FROM main.{q(name)}" + (f" WHERE {cond}" if cond else "")
            return int(conn.execute(sql, params).fetchone()[0])
        finally:
            conn.close()

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
        cond, params = sc.compile_filters(name, where=where, between=between, placeholder="?",
                                          datetime_param=_dt_text)
        conn = self._connect()
        try:
            if not self._exists(conn, name):
                return sc.empty_frame(name, cols)
            geom = self._geom_col(conn, name)
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
            df = _read_frame(self.path, sql=_inline(sql, params))
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
            df = _read_frame(self.path, sql=_inline(sql, params))
        df = df[[*cols, "geometry"]] if s.geometry is not None else df[cols]
        if s.geometry is not None and df.crs is None:
            df = df.set_crs(4326)
        return sc.conform(df, name)

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
                                          datetime_param=_dt_text)
        if not cond:
            return None
        n, first, last = conn.execute(
            f"SELECT count(*), min(fid), max(fid) FROM main.{q(name)} WHERE {cond}", params).fetchone()
        if not n:
            return (0, False, 0, 0)
        return (int(n), (last - first + 1) <= SCAN_FACTOR * n, int(first), int(last))

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
        if mode == "replace" and self._rebuild(prepared, actor=actor, note=note, reset=reset):
            return
        with self._transaction(prepared) as conn:
            if reset:
                self._audit(conn, sc.reset_audit_row(self._present_rows(conn), actor=actor,
                                                     note=note))
                for name in self._present(conn):
                    if name not in prepared:
                        self._drop(conn, name)
                    self._mark_stale(conn, name)
            for name, df in prepared.items():
                exists = self._exists(conn, name)
                sc.check_append_only(name, mode, self._rows(conn, name), reset=reset)
                if mode == "replace" or not exists:
                    self._replace_from_staging(conn, name)
                else:
                    self._append_from_staging(conn, name)
                self._mark_stale(conn, name)
                self._audit(conn, sc.audit_row(mode, name, len(df), actor=actor, note=note))
            summaries.after_write(self, conn, prepared, mode=mode, reset=reset)

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
        cond, params = sc.compile_filters(name, where=where, between=between, placeholder="?",
                                          datetime_param=_dt_text)
        conn = self._connect()
        try:
            if not self._exists(conn, name):
                return sc.h3_frame([], name, by)
            keys = ", ".join([q(col), *(q(b) for b in by)])
            sql = (f"SELECT {keys}, count(*) FROM main.{q(name)} WHERE {q(col)} != 0"
                   + (f" AND {cond}" if cond else "")
                   + f" GROUP BY {keys} ORDER BY {keys}")
            rows = conn.execute(sql, params).fetchall()
        finally:
            conn.close()
        return sc.h3_frame(rows, name, by)

    def audit_log(self, *, limit: int | None = None) -> pd.DataFrame:
        conn = self._connect()
        try:
            sql = (f"SELECT {', '.join(q(c) for c in sc.AUDIT_COLUMNS)} FROM {sc.AUDIT_TABLE} "
                   "ORDER BY fid DESC" + (f" LIMIT {int(limit)}" if limit is not None else ""))
            rows = conn.execute(sql).fetchall()
        finally:
            conn.close()
        return sc.audit_frame(rows)

    def record(self, action: str, layer: str, *, rows: int = 0, actor: str = "system",
               note: str = "") -> None:
        with self._transaction() as conn:
            self._audit(conn, sc.audit_row(action, layer, rows, actor=actor, note=note))

    # -- updates and events ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _apply_transaction(self, ev: pd.DataFrame | None) -> Iterator[sqlite3.Connection]:
        """The write transaction of :meth:`apply` (store locked ``BEGIN IMMEDIATE``).

        Events are staged through GDAL only when the event table does not exist yet; into an
        existing one (every workflow transition) they are inserted with plain SQL: the table
        has no geometry, and GDAL's feature-count triggers stay in place. That keeps a case
        action at a few milliseconds instead of building a staging GeoPackage each time.
        """
        stage = ev is not None and not self._has_table(sc.EVENTS)
        with self._transaction({sc.EVENTS: ev} if stage else None) as conn:
            yield conn

    def _has_table(self, name: str) -> bool:
        conn = self._connect()
        try:
            return self._exists(conn, name)
        finally:
            conn.close()

    @staticmethod
    def _staged(conn: sqlite3.Connection) -> bool:
        return any(r[1] == _STG for r in conn.execute("PRAGMA database_list"))

    def _existing_keys(self, conn: sqlite3.Connection, layer: str, keys: list[Any]) -> set[Any]:
        key = SCHEMAS[layer].key
        found: set[Any] = set()
        if self._exists(conn, layer):
            for i in range(0, len(keys), 900):
                chunk = keys[i:i + 900]
                found.update(r[0] for r in conn.execute(
                    f"SELECT {q(key)} FROM main.{q(layer)} WHERE {q(key)} IN "
                    f"({', '.join('?' * len(chunk))})", chunk))
        return found

    @staticmethod
    def _equal(col: str, kind: str, p: str) -> str:
        """Null-safe equality; datetimes compared as text normalised to milliseconds."""
        if kind == "datetime":
            return f"strftime('%Y-%m-%dT%H:%M:%f', {col}) IS strftime('%Y-%m-%dT%H:%M:%f', {p})"
        return f"{col} IS {p}"

    def _update_rows(self, conn: sqlite3.Connection, layer: str, keys: list[Any],
                     changes: Mapping[str, Any], expect: Mapping[str, Any]) -> int:
        key = SCHEMAS[layer].key
        cond, cond_params = sc.expect_clause(layer, expect, placeholder="?", equal=self._equal)
        sets = ", ".join(f"{q(c)} = ?" for c in changes)
        values = [_sql_value(v) for v in changes.values()]
        extra = [_sql_value(v) for v in cond_params]
        n = 0
        for i in range(0, len(keys), 900):
            chunk = keys[i:i + 900]
            n += conn.execute(
                f"UPDATE main.{q(layer)} SET {sets} WHERE {q(key)} IN "
                f"({', '.join('?' * len(chunk))})" + (f" AND {cond}" if cond else ""),
                [*values, *chunk, *extra]).rowcount
        self._touch(conn, layer)
        self._mark_stale(conn, layer)
        return n

    def _missing_event_refs(self, conn: sqlite3.Connection, ev: pd.DataFrame) -> list[str]:
        if self._staged(conn):
            return self._missing_refs(conn)
        ids = sorted({str(v) for v in ev["service_request_id"].dropna()})
        found = self._existing_keys(conn, sc.INCIDENTS, ids)
        return [i for i in ids if i not in found]

    def _append_events(self, conn: sqlite3.Connection, ev: pd.DataFrame) -> None:
        if self._staged(conn):
            if self._exists(conn, sc.EVENTS):
                self._append_from_staging(conn, sc.EVENTS)
            else:
                self._replace_from_staging(conn, sc.EVENTS)
            return
        if not self._exists(conn, sc.EVENTS):  # dropped by a reset since apply() looked
            raise sc.store_error("write_failed", error="incident_events was just removed; retry")
        cols = sc.stored_columns(SCHEMAS[sc.EVENTS])
        rows = [tuple(None if v is None or v is pd.NaT or (isinstance(v, float) and v != v)
                      else _sql_value(v) for v in rec)
                for rec in ev[cols].astype(object).itertuples(index=False, name=None)]
        conn.executemany(f"INSERT INTO main.{q(sc.EVENTS)} ({', '.join(q(c) for c in cols)}) "
                         f"VALUES ({', '.join('?' * len(cols))})", rows)
        self._touch(conn, sc.EVENTS)

    def _missing_refs(self, conn: sqlite3.Connection) -> list[str]:
        ev, inc = q(sc.EVENTS), q(sc.INCIDENTS)
        if not self._exists(conn, sc.INCIDENTS):
            rows = conn.execute(f"SELECT DISTINCT service_request_id FROM {_STG}.{ev} LIMIT 10")
        else:
            rows = conn.execute(
                f"SELECT DISTINCT s.service_request_id FROM {_STG}.{ev} AS s "
                f"WHERE NOT EXISTS (SELECT 1 FROM main.{inc} AS i "
                "WHERE i.service_request_id = s.service_request_id) LIMIT 10")
        return [str(r[0]) for r in rows]

    # -- versions ---------------------------------------------------------------------------------


    def _save(self, layer: str, df: pd.DataFrame, *, actor: str, note: str, action: str,
              source: int | None) -> int:
        blob = sc.snapshot_bytes(df)
        when = sc.now_local()
        with self._transaction({layer: df}) as conn:
            self._replace_from_staging(conn, layer)
            vt = sc.VERSIONS_TABLE
            (version,) = conn.execute(f"SELECT coalesce(max(version), 0) + 1 FROM main.{vt} "
                                      "WHERE layer = ?", (layer,)).fetchone()
            self._mark_stale(conn, layer)
            conn.execute(
                f"INSERT INTO main.{vt} (layer, version, time, actor, note, rows, current, "
                "source_version, data) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)",
                (layer, version, _dt_text(when), actor, note, len(df), source, blob))
            self._audit(conn, sc.audit_row(action, layer, len(df), actor=actor,
                                           note=sc.version_note(version, note),
                                           time=when))
        return int(version)

    def versions(self, layer: str) -> pd.DataFrame:
        sc.schema_of(layer)
        conn = self._connect()
        try:
            rows = conn.execute(
                "SELECT version, time, actor, note, rows, current, source_version "
                f"FROM {sc.VERSIONS_TABLE} WHERE layer = ? ORDER BY version", (layer,)).fetchall()
        finally:
            conn.close()
        return sc.versions_frame(rows)

    def read_version(self, layer: str, version: int) -> pd.DataFrame:
        sc.schema_of(layer)
        conn = self._connect()
        try:
            row = conn.execute(f"SELECT data FROM {sc.VERSIONS_TABLE} WHERE layer = ? "
                               "AND version = ?", (layer, int(version))).fetchone()
        finally:
            conn.close()
        if row is None:
            raise sc.store_error("unknown_version", layer=layer, version=version)
        return sc.snapshot_frame(row[0], layer)

    # -- record tables (accounts, sessions) ------------------------------------------------------

    @contextlib.contextmanager
    def _records_tx(self, table: str, *, write: bool) -> Iterator[_records.RecordTx]:
        spec = _records.table_of(table)

        def audit(a: Mapping[str, Any]) -> None:
            self._audit(conn, sc.audit_row(a["action"], a["layer"], a.get("rows", 1),
                                           actor=a["actor"], note=a.get("note", "")))

        if not write:
            conn = self._connect()
            try:
                ok = self._exists(conn, spec.name)
                yield _records.RecordTx(conn.execute if ok else None, q(spec.name),  # type: ignore[arg-type]
                                        "sqlite", audit)
            finally:
                conn.close()
            return
        with self._transaction() as conn:
            if not self._exists(conn, spec.name):
                conn.execute(_records.ddl(spec, "sqlite", q(spec.name)))
                conn.execute(
                    "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, "
                    "description, last_change) VALUES (?, 'attributes', ?, ?, "
                    "strftime('%Y-%m-%dT%H:%M:%fZ','now'))",
                    (spec.name, spec.name, "GridPulse " + spec.name.removeprefix("gp_")))
            yield _records.RecordTx(conn.execute, q(spec.name), "sqlite", audit)
