"""The swap of the GeoPackage engine: staged tables into the store, inside its write transaction.

Each function works on one ``sqlite3`` connection to the store (``main``) with the staging
GeoPackage ATTACHed as ``stg`` (or, for a whole-file write, the old store as ``old``); the
caller holds the transaction. See :mod:`layers._gpkg` for the protocol.
"""

from __future__ import annotations

import sqlite3

from layers import _store_common as sc

STG = "stg"
OLD = "old"
META_TABLES: tuple[str, ...] = (
    "gpkg_contents", "gpkg_geometry_columns", "gpkg_extensions", "gpkg_ogr_contents",
    "gpkg_data_columns",
)
#: A ``between`` read scans the rowid range of its matches when the range holds at most this

q = sc.quote_ident


def exists(conn: sqlite3.Connection, table: str, db: str = "main") -> bool:
    """True when ``db`` holds table ``table``."""
    row = conn.execute(
        f"SELECT 1 FROM {db}.sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()
    return row is not None


def geom_col(conn: sqlite3.Connection, table: str, db: str = "main") -> str | None:
    """The geometry column of ``table`` (``None`` for an attributes table)."""
    if not exists(conn, "gpkg_geometry_columns", db):
        return None
    row = conn.execute(
        f"SELECT column_name FROM {db}.gpkg_geometry_columns "
        "WHERE lower(table_name) = lower(?)", (table,)).fetchone()
    return row[0] if row else None


def drop(conn: sqlite3.Connection, name: str) -> None:
    """Drop table ``name`` with its R*Tree, triggers and GeoPackage metadata rows."""
    geom = geom_col(conn, name)
    for (trig,) in conn.execute(
        "SELECT name FROM main.sqlite_master WHERE type = 'trigger' AND tbl_name = ?", (name,)
    ).fetchall():
        conn.execute(f"DROP TRIGGER main.{q(trig)}")
    if geom:
        conn.execute(f"DROP TABLE IF EXISTS main.{q(f'rtree_{name}_{geom}')}")
    conn.execute(f"DROP TABLE IF EXISTS main.{q(name)}")
    for meta in reversed(META_TABLES):
        if exists(conn, meta):
            conn.execute(f"DELETE FROM main.{meta} WHERE lower(table_name) = lower(?)", (name,))

def copy_meta(conn: sqlite3.Connection, name: str, src: str = STG) -> None:
    """Copy the GeoPackage metadata rows of ``name`` (and its SRS) from ``src`` into ``main``."""
    conn.execute("INSERT OR IGNORE INTO main.gpkg_spatial_ref_sys "
                 f"SELECT * FROM {src}.gpkg_spatial_ref_sys")
    for meta in META_TABLES:
        if not exists(conn, meta, src):
            continue
        if not exists(conn, meta):
            (ddl,) = conn.execute(f"SELECT sql FROM {src}.sqlite_master WHERE name = ?",
                                  (meta,)).fetchone()
            conn.execute(ddl)
        conn.execute(f"DELETE FROM main.{meta} WHERE lower(table_name) = lower(?)", (name,))
        conn.execute(f"INSERT INTO main.{meta} SELECT * FROM {src}.{meta} "
                     "WHERE lower(table_name) = lower(?)", (name,))

def stg_objects(conn: sqlite3.Connection, name: str) -> tuple[str, list[str]]:
    """The staged table's DDL and its triggers' DDL."""
    rows = conn.execute(
        f"SELECT type, sql FROM {STG}.sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL",
        (name,)).fetchall()
    table = next(sql for typ, sql in rows if typ == "table")
    triggers = [sql for typ, sql in rows if typ == "trigger"]
    return table, triggers

def copy_rtree(conn: sqlite3.Connection, name: str, *, create: bool) -> None:
    """Copy the staged R*Tree of ``name`` (its shadow tables) into ``main``."""
    geom = geom_col(conn, name, STG)
    if not geom:
        return
    rtree = f"rtree_{name}_{geom}"
    if not exists(conn, rtree, STG):
        return
    if create:
        (ddl,) = conn.execute(f"SELECT sql FROM {STG}.sqlite_master WHERE name = ?",
                              (rtree,)).fetchone()
        conn.execute(ddl)
        # Copy the bulk-loaded R*Tree as it is (its shadow tables): re-inserting a million
        # entries one by one would take ~20 s.
        for shadow in ("node", "rowid", "parent"):
            t = q(f"{rtree}_{shadow}")
            conn.execute(f"DELETE FROM main.{t}")
            conn.execute(f"INSERT INTO main.{t} SELECT * FROM {STG}.{t}")

def replace_from_staging(conn: sqlite3.Connection, name: str) -> None:
    """Replace ``name`` in ``main`` by the staged table: DDL, rows, R*Tree, triggers, metadata, indexes."""
    table_sql, trigger_sqls = stg_objects(conn, name)
    drop(conn, name)
    conn.execute(table_sql)
    conn.execute(f"INSERT INTO main.{q(name)} SELECT * FROM {STG}.{q(name)}")
    copy_rtree(conn, name, create=True)
    for sql in trigger_sqls:
        conn.execute(sql)
    copy_meta(conn, name)
    ensure_indexes(conn, name)

def append_from_staging(conn: sqlite3.Connection, name: str) -> None:
    """Append the staged rows of ``name`` (fids shifted past the existing ones) with their R*Tree entries."""
    main_cols = [r[1] for r in conn.execute(f"PRAGMA main.table_info({q(name)})")]
    stg_cols = [r[1] for r in conn.execute(f"PRAGMA {STG}.table_info({q(name)})")]
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
        f"SELECT fid + {int(offset)}, {collist} FROM {STG}.{q(name)} ORDER BY fid")
    added = cur.rowcount
    geom = geom_col(conn, name)
    if geom and exists(conn, f"rtree_{name}_{geom}") and exists(
            conn, f"rtree_{name}_{geom}", STG):
        rt = q(f"rtree_{name}_{geom}")
        conn.execute(f"INSERT INTO main.{rt} SELECT id + {int(offset)}, minx, maxx, miny, maxy "
                     f"FROM {STG}.{rt}")
        conn.execute(
            "UPDATE main.gpkg_contents SET "
            "min_x = min(coalesce(min_x, s.a), s.a), min_y = min(coalesce(min_y, s.b), s.b), "
            "max_x = max(coalesce(max_x, s.c), s.c), max_y = max(coalesce(max_y, s.d), s.d) "
            f"FROM (SELECT min_x AS a, min_y AS b, max_x AS c, max_y AS d "
            f"FROM {STG}.gpkg_contents WHERE lower(table_name) = lower(?)) AS s "
            "WHERE lower(gpkg_contents.table_name) = lower(?) AND s.a IS NOT NULL",
            (name, name))
    if exists(conn, "gpkg_ogr_contents"):
        conn.execute("UPDATE main.gpkg_ogr_contents SET feature_count = feature_count + ? "
                     "WHERE lower(table_name) = lower(?) AND feature_count IS NOT NULL",
                     (added, name))
    for _, sql in triggers:
        conn.execute(sql)
    touch(conn, name)

def touch(conn: sqlite3.Connection, name: str) -> None:
    """Set ``gpkg_contents.last_change`` of ``name`` to now."""
    conn.execute("UPDATE main.gpkg_contents SET last_change = "
                 "strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE lower(table_name) = lower(?)",
                 (name,))

def ensure_indexes(conn: sqlite3.Connection, name: str) -> None:
    """Create the attribute indexes of :func:`layers._store_common.index_plan` when missing."""
    for idx, cols, unique in sc.index_plan(name):
        conn.execute(f"CREATE {'UNIQUE ' if unique else ''}INDEX IF NOT EXISTS "
                     f"main.{q(idx)} ON {q(name)} ({', '.join(q(c) for c in cols)})")


def carry_over(conn: sqlite3.Connection, table: str) -> None:
    """Copy an internal table (DDL, rows, indexes, triggers, metadata) from the old file."""
    if not exists(conn, table, OLD):
        return
    objs = conn.execute(f"SELECT type, sql FROM {OLD}.sqlite_master WHERE tbl_name = ? "
                        "AND sql IS NOT NULL", (table,)).fetchall()
    order = {"table": 0, "index": 1, "trigger": 2}
    objs.sort(key=lambda o: order.get(o[0], 3))
    for typ, ddl in objs:  # rows before triggers: the feature count is copied as it is
        conn.execute(ddl)
        if typ == "table":
            conn.execute(f"INSERT INTO main.{q(table)} SELECT * FROM {OLD}.{q(table)}")
    copy_meta(conn, table, OLD)

