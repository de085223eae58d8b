"""Small keyed record tables beside the layers (accounts, sessions), the same on both engines.

The layers are GeoDataFrames written whole or appended; accounts and sessions are a few
rows read and changed one at a time. Each engine offers four primitives over these tables
(:meth:`layers.store.Store.records`, ``put_record``, ``update_records``, ``delete_records``)
and delegates the SQL to this module: plain ``execute(sql, params)`` on a DB-API cursor
(``sqlite3`` for the GeoPackage, psycopg for PostGIS), equality filters only, one
transaction per call with an optional ``audit_log`` row in the same transaction.

Values go in and come out as Python values: ``str``, ``int``, ``bool``, naive local
``pandas.Timestamp`` (``datetime`` columns) or ``None``.

Examples
--------
>>> sorted(RECORD_TABLES)
['gp_accounts', 'gp_api_tokens', 'gp_idempotency', 'gp_plan_snapshots', 'gp_plan_versions', 'gp_sessions']
>>> print(ddl(ACCOUNTS, "sqlite", '"gp_accounts"').splitlines()[0])
CREATE TABLE IF NOT EXISTS "gp_accounts" (
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from geo.domain import LOCAL_TZ
from layers.errors import StoreError

Dialect = Literal["sqlite", "pg"]
Execute = Callable[[str, Sequence[Any]], Any]


@dataclass(frozen=True)
class RecordTable:
    """A keyed record table: its name, key column and ``(column, kind)`` pairs.

    ``kind`` is ``str``, ``int``, ``bool`` or ``datetime``.
    """

    name: str
    key: str
    columns: tuple[tuple[str, str], ...]

    @property
    def names(self) -> list[str]:
        """Column names, in order."""
        return [c for c, _ in self.columns]

    def kind(self, column: str) -> str:
        """The kind of ``column``; :class:`StoreError` for an unknown one."""
        for c, k in self.columns:
            if c == column:
                return k
        raise StoreError("engines.records.no_column", table=self.name, column=repr(column),
                         columns=", ".join(self.names))


ACCOUNTS = RecordTable("gp_accounts", "username", (
    ("username", "str"), ("display_name", "str"), ("role", "str"), ("scope_code", "str"),
    ("department", "str"), ("password_hash", "str"), ("disabled", "bool"),
    ("failed_logins", "int"), ("locked_until", "datetime"), ("created", "datetime"),
    ("password_changed", "datetime"), ("last_login", "datetime"),
))
SESSIONS = RecordTable("gp_sessions", "token_hash", (
    ("token_hash", "str"), ("username", "str"), ("kind", "str"), ("created", "datetime"),
    ("expires", "datetime"), ("last_seen", "datetime"), ("label", "str"),
))
#: API client tokens (:mod:`layers.apitokens`): only the token's SHA-256 is kept.
API_TOKENS = RecordTable("gp_api_tokens", "token_hash", (
    ("token_hash", "str"), ("username", "str"), ("label", "str"), ("created", "datetime"),
    ("expires", "datetime"), ("revoked", "bool"),
))
#: Idempotency keys of the intake API (:mod:`layers.intake`): the key is unique, so two
#: processes racing with the same key cannot both do the work.
IDEMPOTENCY = RecordTable("gp_idempotency", "key", (
    ("key", "str"), ("username", "str"), ("fingerprint", "str"), ("state", "str"),
    ("status", "int"), ("body", "str"), ("created", "datetime"),
))
#: Whole-plan versions (:mod:`layers.plans`): one row per version of the plan (grids,
#: buildings' grid codes, workers' assignments) with its effective date and open violations.
PLAN_VERSIONS = RecordTable("gp_plan_versions", "version", (
    ("version", "int"), ("state", "str"), ("effective", "datetime"), ("saved", "datetime"),
    ("actor", "str"), ("note", "str"), ("source_version", "int"), ("snapshot", "str"),
    ("violations", "str"), ("confirmed", "bool"), ("band", "str"), ("grids", "int"),
    ("buildings", "int"), ("workers", "int"), ("live_since", "datetime"),
))
#: The plans' contents, content-addressed (SHA-256 of the stored text), shared by versions.
PLAN_SNAPSHOTS = RecordTable("gp_plan_snapshots", "digest", (
    ("digest", "str"), ("data", "str"), ("created", "datetime"),
))
RECORD_TABLES: dict[str, RecordTable] = {t.name: t for t in (ACCOUNTS, SESSIONS, API_TOKENS,
                                                             IDEMPOTENCY, PLAN_VERSIONS,
                                                             PLAN_SNAPSHOTS)}

_SQL_TYPES: dict[Dialect, dict[str, str]] = {
    "sqlite": {"str": "TEXT", "int": "INTEGER", "bool": "BOOLEAN", "datetime": "DATETIME"},
    "pg": {"str": "text", "int": "bigint", "bool": "boolean", "datetime": "timestamp"},
}


def table_of(name: str) -> RecordTable:
    """The record table called ``name``; :class:`StoreError` naming the known ones."""
    try:
        return RECORD_TABLES[name]
    except KeyError:
        raise StoreError("engines.records.unknown_table", name=repr(name),
                         known=", ".join(RECORD_TABLES)) from None


def quote(name: str) -> str:
    """A double-quoted SQL identifier (``"`` doubled)."""
    return '"' + name.replace('"', '""') + '"'


def is_missing_table(exc: BaseException) -> bool:
    """Whether ``exc`` (or an error it was raised from) says a table does not exist.

    SQLite: ``sqlite3.OperationalError("no such table: ...")``; PostgreSQL: SQLSTATE ``42P01``
    (``psycopg.errors.UndefinedTable``). The engines wrap these in :class:`StoreError`, so the
    chain of causes is followed.

    >>> import sqlite3
    >>> try:
    ...     sqlite3.connect(":memory:").execute("SELECT * FROM gone")
    ... except sqlite3.OperationalError as exc:
    ...     err = StoreError("engines.records.no_column", table="t", column="c", columns="")
    ...     err.__cause__ = exc
    >>> is_missing_table(err), is_missing_table(ValueError("no such table"))
    (True, False)
    """
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if getattr(e, "sqlstate", None) == "42P01":
            return True
        if type(e).__module__ == "sqlite3" and "no such table" in str(e):
            return True
        e = e.__cause__ or e.__context__
    return False


def ddl(table: RecordTable, dialect: Dialect, qualified: str) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for ``table`` in ``dialect``."""
    types = _SQL_TYPES[dialect]
    cols = [f"  {quote(c)} {types[k]}{' PRIMARY KEY NOT NULL' if c == table.key else ''}"
            for c, k in table.columns]
    return f"CREATE TABLE IF NOT EXISTS {qualified} (\n" + ",\n".join(cols) + "\n)"


def _to_db(value: Any, kind: str, dialect: Dialect) -> Any:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if kind == "datetime":
        ts = pd.Timestamp(value)
        if ts.tzinfo is not None:
            ts = ts.tz_convert(LOCAL_TZ).tz_localize(None)
        return ts.isoformat(sep=" ") if dialect == "sqlite" else ts.to_pydatetime()
    if kind == "bool":
        return (1 if value else 0) if dialect == "sqlite" else bool(value)
    if kind == "int":
        return int(value)
    return str(value)


def _from_db(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "datetime":
        return pd.Timestamp(value)
    if kind == "bool":
        return bool(value)
    if kind == "int":
        return int(value)
    return str(value)


def _where(table: RecordTable, where: Mapping[str, Any] | None, dialect: Dialect
           ) -> tuple[str, list[Any]]:
    if not where:
        return "", []
    mark = "?" if dialect == "sqlite" else "%s"
    parts, params = [], []
    for col, val in where.items():
        kind = table.kind(col)
        if val is None:
            parts.append(f"{quote(col)} IS NULL")
        elif isinstance(val, (list, tuple, set, frozenset)):  # col IN (...); empty: no row
            vals = list(val)
            parts.append(f"{quote(col)} IN ({', '.join([mark] * len(vals))})" if vals
                         else "1 = 0")
            params.extend(_to_db(v, kind, dialect) for v in vals)
        else:
            parts.append(f"{quote(col)} = {mark}")
            params.append(_to_db(val, kind, dialect))
    return " WHERE " + " AND ".join(parts), params


def select(execute: Execute, table: RecordTable, qualified: str, dialect: Dialect,
           where: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Rows of ``table`` matching ``where`` (column = value), as dicts, in key order."""
    clause, params = _where(table, where, dialect)
    cols = ", ".join(quote(c) for c in table.names)
    rows = execute(f"SELECT {cols} FROM {qualified}{clause} ORDER BY {quote(table.key)}",
                   params).fetchall()
    return [{c: _from_db(v, k) for (c, k), v in zip(table.columns, row, strict=True)}
            for row in rows]


def upsert(execute: Execute, table: RecordTable, qualified: str, dialect: Dialect,
           row: Mapping[str, Any]) -> None:
    """Insert ``row``, or replace the row with the same key (columns not given become NULL)."""
    unknown = set(row) - set(table.names)
    if unknown or table.key not in row or row[table.key] in (None, ""):
        raise StoreError("engines.records.bad_row", table=table.name, key=repr(table.key),
                         columns=", ".join(table.names), got=", ".join(map(str, row)))
    mark = "?" if dialect == "sqlite" else "%s"
    cols = table.names
    values = [_to_db(row.get(c), k, dialect) for c, k in table.columns]
    execute(f"DELETE FROM {qualified} WHERE {quote(table.key)} = {mark}", [values[0]]
            if cols[0] == table.key else [_to_db(row[table.key], "str", dialect)])
    execute(f"INSERT INTO {qualified} ({', '.join(quote(c) for c in cols)}) "
            f"VALUES ({', '.join([mark] * len(cols))})", values)


def insert(execute: Execute, table: RecordTable, qualified: str, dialect: Dialect,
           row: Mapping[str, Any]) -> bool:
    """Insert ``row`` unless its key exists (``ON CONFLICT DO NOTHING``); True when inserted.

    The key is the table's primary key, so of two transactions inserting the same key (two
    processes) exactly one succeeds.
    """
    unknown = set(row) - set(table.names)
    if unknown or table.key not in row or row[table.key] in (None, ""):
        raise StoreError("engines.records.bad_row", table=table.name, key=repr(table.key),
                         columns=", ".join(table.names), got=", ".join(map(str, row)))
    mark = "?" if dialect == "sqlite" else "%s"
    values = [_to_db(row.get(c), k, dialect) for c, k in table.columns]
    cur = execute(f"INSERT INTO {qualified} ({', '.join(quote(c) for c in table.names)}) "
                  f"VALUES ({', '.join([mark] * len(values))}) "
                  f"ON CONFLICT ({quote(table.key)}) DO NOTHING", values)
    return int(cur.rowcount) == 1


def update(execute: Execute, table: RecordTable, qualified: str, dialect: Dialect,
           where: Mapping[str, Any], changes: Mapping[str, Any]) -> int:
    """Set ``changes`` on the rows matching ``where``; returns how many rows changed.

    ``where`` may name any column, so a caller can compare-and-set (``{"username": u,
    "failed_logins": 2}``).
    """
    if not changes:
        return 0
    if table.key in changes:
        raise StoreError("engines.records.key_change", table=table.name, key=repr(table.key))
    mark = "?" if dialect == "sqlite" else "%s"
    sets = ", ".join(f"{quote(c)} = {mark}" for c in changes)
    vals = [_to_db(v, table.kind(c), dialect) for c, v in changes.items()]
    clause, params = _where(table, where, dialect)
    cur = execute(f"UPDATE {qualified} SET {sets}{clause}", [*vals, *params])
    return int(cur.rowcount)


def delete(execute: Execute, table: RecordTable, qualified: str, dialect: Dialect,
           where: Mapping[str, Any] | None) -> int:
    """Delete the rows matching ``where`` (every row when ``where`` is empty); returns how many."""
    clause, params = _where(table, where, dialect)
    cur = execute(f"DELETE FROM {qualified}{clause}", params)
    return int(cur.rowcount)


def insert_all(execute: Execute, table: RecordTable, qualified: str, dialect: Dialect,
               rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert ``rows`` in one statement; a key that exists fails the statement (and so the
    caller's whole transaction) with the engine's unique-violation error. Returns the count."""
    if not rows:
        return 0
    for row in rows:
        unknown = set(row) - set(table.names)
        if unknown or row.get(table.key) in (None, ""):
            raise StoreError(f"a {table.name} row needs {table.key!r} and only the columns "
                             f"{', '.join(table.names)}; got {', '.join(map(str, row))}")
    mark = "?" if dialect == "sqlite" else "%s"
    one = "(" + ", ".join([mark] * len(table.columns)) + ")"
    values = [_to_db(row.get(c), k, dialect) for row in rows for c, k in table.columns]
    execute(f"INSERT INTO {qualified} ({', '.join(quote(c) for c in table.names)}) "
            f"VALUES {', '.join([one] * len(rows))}", values)
    return len(rows)


@dataclass(frozen=True)
class RecordTx:
    """What an engine hands the record primitives inside one transaction.

    ``execute(sql, params)`` returns a cursor; ``qualified`` is the table's quoted name in
    the engine; ``audit(row)`` appends an ``audit_log`` row in the same transaction.
    """

    execute: Execute
    qualified: str
    dialect: Dialect
    audit: Callable[[Mapping[str, Any]], None]
