"""The store's operations, written once, as template methods over a few engine primitives.

:class:`SqlStore` implements every :class:`~layers.store.Store` operation (of ``read`` the
checks; each engine keeps its own measured fast read path, ``_read``): ``write``, ``apply``, ``count``,
``h3_counts``, ``audit_log``, ``record``, the versions (``save_version``, ``rollback``,
``versions``, ``read_version``) and the record tables. The rules (what is refused, which audit
rows are written, the compare-and-set count) live here and in :mod:`layers._store_rules`;
an engine only moves bytes. It provides:

========================  ===================================================================
``_read(n, cols, rq)``    the engine's own (measured) read path of :meth:`~SqlStore.read`
``_read_tx()``            a context manager yielding a read handle ``tx``
``_write_tx(frames,       ONE write transaction (committed on exit, rolled back on any error);
bulk=)``                  ``frames`` are the prepared layers it may be asked to load
``_exists(tx, name)``     whether a table exists
``_layers_in(tx)``        the canonical layers present
``_replace(tx, l, df)``   create/replace a layer with a prepared frame (bulk load, indexes)
``_append(tx, l, df)``    append a prepared frame to an existing layer
``_drop(tx, l)``          drop a layer
``_execute(tx, sql, p)``  run SQL with parameters, return a DB-API cursor (``rowcount``)
``_fetch(tx, sql, p)``    run SQL, return its rows
``_table(name)``          a table's quoted, qualified name; ``PH`` is the placeholder
``_param(v)``             a Python value as the driver takes it (datetimes above all)
``_dt_param(ts)``         a filter's timestamp as the driver takes it
``_null_safe_equal``      the engine's ``IS NOT DISTINCT FROM`` (compare-and-set)
``_create_record_table``  create a record table (:mod:`layers._records`) when missing
========================  ===================================================================

and may override the optional hooks ``_write_whole`` (a faster path for a write that
replaces everything), ``_changed`` (bookkeeping after rows of a layer changed),
``_lock_versions`` and -- the one place for work that must commit with every write --
:meth:`SqlStore._after_write` / :meth:`SqlStore._after_apply`.
"""

from __future__ import annotations

import contextlib
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import pandas as pd

from layers import _records, summaries
from layers import _store_common as sc
from layers import _store_rules as rules
from layers._store_api import Between, RowUpdate, Store, Where, WriteMode
from layers.schema import SCHEMAS

_T = TypeVar("_T")

#: Key values per ``IN (...)`` list (SQLite allows 999 parameters per statement).
KEY_CHUNK = 900

q = sc.quote_ident


@dataclass(frozen=True)
class ReadQuery:
    """The row filters, order and limit of a :meth:`~layers.store.Store.read` (checked)."""

    where: Where | None = None
    between: Between | None = None
    bbox: tuple[float, float, float, float] | None = None
    limit: int | None = None
    order_by: str | None = None
    descending: bool = False


class SqlStore(Store):
    """A :class:`~layers.store.Store` over SQL engine primitives (see the module docstring)."""

    #: The engine's parameter placeholder (``?`` or ``%s``).
    PH: ClassVar[str]
    #: The record tables' SQL dialect (:data:`layers._records.Dialect`).
    DIALECT: ClassVar[_records.Dialect]

    # -- engine primitives ---------------------------------------------------------------------

    @abstractmethod
    def _read(self, name: str, cols: list[str], rq: ReadQuery) -> pd.DataFrame:
        """The engine's own read path: columns ``cols`` of ``name`` (checked) as :meth:`read`."""

    @abstractmethod
    def _read_tx(self) -> contextlib.AbstractContextManager[Any]:
        """A read handle (connection or cursor) for a few statements."""

    @abstractmethod
    def _write_tx(self, frames: Mapping[str, pd.DataFrame] | None = None, *,
                  bulk: bool = False) -> contextlib.AbstractContextManager[Any]:
        """One write transaction; ``frames`` may be loaded in it (``bulk``: a layer write)."""

    @abstractmethod
    def _exists(self, tx: Any, name: str) -> bool:
        """True when table ``name`` exists."""

    @abstractmethod
    def _layers_in(self, tx: Any) -> list[str]:
        """The canonical layers present, in schema order."""

    @abstractmethod
    def _replace(self, tx: Any, layer: str, df: pd.DataFrame) -> None:
        """Make the prepared ``df`` the whole of ``layer`` (created when missing)."""

    @abstractmethod
    def _append(self, tx: Any, layer: str, df: pd.DataFrame) -> None:
        """Append the prepared ``df`` to the existing ``layer``."""

    @abstractmethod
    def _drop(self, tx: Any, layer: str) -> None:
        """Drop ``layer`` and everything that belongs to it."""

    @abstractmethod
    def _execute(self, tx: Any, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; returns a DB-API cursor."""

    @abstractmethod
    def _fetch(self, tx: Any, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one query; returns its rows."""

    @abstractmethod
    def _table(self, name: str) -> str:
        """The quoted, qualified name of table ``name``."""

    @abstractmethod
    def _param(self, value: Any) -> Any:
        """A Python value (timestamps included) as the driver takes it."""

    @abstractmethod
    def _dt_param(self, ts: pd.Timestamp) -> Any:
        """A naive local timestamp of a filter as the driver compares it."""

    @abstractmethod
    def _null_safe_equal(self, column: str, kind: str, placeholder: str) -> str:
        """SQL of ``column`` equal to ``placeholder``, NULL equal to NULL."""

    @abstractmethod
    def _create_record_table(self, tx: Any, spec: _records.RecordTable, qualified: str) -> None:
        """Create a record table when it does not exist yet."""

    # -- optional hooks --------------------------------------------------------------------------

    def _write_whole(self, prepared: Mapping[str, pd.DataFrame], *, actor: str, note: str,
                     reset: bool) -> bool:
        """An engine's faster path for a ``replace`` write; False (nothing done) to decline.

        A path taken must keep the template's rules: refuse what :meth:`write` refuses, call
        :meth:`_layer_written` for every layer, all in one transaction.
        """
        return False

    def _changed(self, tx: Any, layer: str) -> None:
        """Bookkeeping after rows of ``layer`` were updated in place (default: none)."""

    def _lock_versions(self, tx: Any) -> None:
        """Serialise version numbering for the rest of ``tx`` (default: the tx already does)."""

    def _after_write(self, tx: Any, layer: str, frame: pd.DataFrame) -> None:
        """Called once per layer written, inside the write's transaction, after its audit row.

        ``frame`` is the prepared layer (schema dtypes, H3 columns); for an append it holds
        the appended rows only. The place for derived tables (e.g. summaries) that must
        commit or roll back with the layer. Runs for :meth:`write` (both paths) and
        :meth:`save_version`/:meth:`rollback`. SQL goes through :meth:`_execute`/:meth:`_fetch`
        and :meth:`_table`, so one hook serves both engines; on the GeoPackage's whole-file
        path (:meth:`_write_whole`) ``tx`` is the connection to the new file, before it
        replaces the store.
        """

    def _after_layers(self, tx: Any, prepared: Mapping[str, pd.DataFrame], *, mode: str,
                      reset: bool) -> None:
        """Once per :meth:`write`, inside its transaction after every layer: the write-time
        summaries (:mod:`layers.summaries`) follow the layers they summarise."""
        summaries.after_write(self, tx, prepared, mode=mode, reset=reset)

    def _after_apply(self, tx: Any, updates: Sequence[rules.PreparedUpdate],
                     events: pd.DataFrame | None) -> None:
        """Called once per :meth:`apply`, inside its transaction, after every update and event."""

    # -- shared SQL --------------------------------------------------------------------------------

    def _rows(self, tx: Any, name: str) -> int:
        if not self._exists(tx, name):
            return 0
        return int(self._fetch(tx, f"SELECT count(*) FROM {self._table(name)}")[0][0])

    def _audit(self, tx: Any, row: Mapping[str, Any]) -> None:
        marks = ", ".join([self.PH] * len(sc.AUDIT_COLUMNS))
        self._execute(tx, f"INSERT INTO {self._table(sc.AUDIT_TABLE)} "
                          f"({', '.join(sc.AUDIT_COLUMNS)}) VALUES ({marks})",
                      [self._param(row[c]) for c in sc.AUDIT_COLUMNS])

    def _mark_stale(self, tx: Any, layer: str) -> None:
        self._execute(tx, f"UPDATE {self._table(sc.VERSIONS_TABLE)} SET current = {self.PH} "
                          f"WHERE layer = {self.PH}", [False, layer])

    def _put(self, tx: Any, layer: str, df: pd.DataFrame, *, append: bool) -> None:
        exists = append and self._exists(tx, layer)
        if append and not exists:
            # the first append creates the table: wait for any other creator, then look again
            # (two creators would each put their own table in place, the later one dropping
            # the first one's rows)
            self._lock_creation(tx, layer)
            exists = self._exists(tx, layer)
        if exists:
            self._append(tx, layer, df)
        else:
            self._replace(tx, layer, df)

    def _lock_creation(self, tx: Any, layer: str) -> None:
        """Serialise the creation of ``layer`` with other writers until ``tx`` ends (a no-op
        where writers are serialised whole, as on a GeoPackage)."""

    def _layer_written(self, tx: Any, layer: str, df: pd.DataFrame, *, action: str, actor: str,
                       note: str) -> None:
        """After a layer was loaded: its versions are no longer live, its audit row, the hook."""
        self._mark_stale(tx, layer)
        self._audit(tx, sc.audit_row(action, layer, len(df), actor=actor, note=note))
        self._after_write(tx, layer, df)

    def _existing_keys(self, tx: Any, layer: str, keys: Sequence[Any]) -> set[Any]:
        if not self._exists(tx, layer):
            return set()
        key = q(SCHEMAS[layer].key)
        found: set[Any] = set()
        for i in range(0, len(keys), KEY_CHUNK):
            chunk = list(keys[i:i + KEY_CHUNK])
            found.update(r[0] for r in self._fetch(
                tx, f"SELECT {key} FROM {self._table(layer)} WHERE {key} IN "
                    f"({', '.join([self.PH] * len(chunk))})", chunk))
        return found

    def _update_rows(self, tx: Any, u: rules.PreparedUpdate) -> int:
        """``UPDATE ... WHERE key IN keys AND <expected values>``: the rows it matched.

        On PostgreSQL a racing second writer waits for the first one's row lock, then
        re-checks the condition on the committed row (READ COMMITTED), so it matches nothing
        and :meth:`apply` refuses it; the GeoPackage's write lock serialises writers whole.
        """
        key = q(SCHEMAS[u.layer].key)
        cond, cond_params = rules.expect_clause(u.layer, u.expect, placeholder=self.PH,
                                                equal=self._null_safe_equal)
        sets = ", ".join(f"{q(c)} = {self.PH}" for c in u.changes)
        values = [self._param(v) for v in u.changes.values()]
        extra = [self._param(v) for v in cond_params]
        n = 0
        for i in range(0, len(u.keys), KEY_CHUNK):
            chunk = u.keys[i:i + KEY_CHUNK]
            n += self._execute(
                tx, f"UPDATE {self._table(u.layer)} SET {sets} WHERE {key} IN "
                    f"({', '.join([self.PH] * len(chunk))})" + (f" AND {cond}" if cond else ""),
                [*values, *chunk, *extra]).rowcount
        self._changed(tx, u.layer)
        self._mark_stale(tx, u.layer)
        return n

    # -- reads shared by both engines ------------------------------------------------------------

    def read(self, name: str, *, columns: Sequence[str] | None = None, where: Where | None = None,
             between: Between | None = None, bbox: tuple[float, float, float, float] | None = None,
             limit: int | None = None, order_by: str | None = None,
             descending: bool = False) -> pd.DataFrame:
        sc.schema_of(name)
        cols = sc.check_columns(name, columns)
        sc.check_order(name, order_by)
        return self._read(name, cols, ReadQuery(where, between, bbox, limit, order_by, descending))

    def layer_names(self) -> list[str]:
        with self._read_tx() as tx:
            return self._layers_in(tx)

    def count(self, name: str, *, where: Where | None = None, between: Between | None = None) -> int:
        cond, params = sc.compile_filters(name, where=where, between=between, placeholder=self.PH,
                                          datetime_param=self._dt_param)
        with self._read_tx() as tx:
            if not self._exists(tx, name):
                return 0
            sql = f"SELECT count(*) FROM {self._table(name)}" + (f" WHERE {cond}" if cond else "")
            return int(self._fetch(tx, sql, params)[0][0])

    def h3_counts(self, name: str, *, res: int, where: Where | None = None,
                  between: Between | None = None, by: Sequence[str] = ()) -> pd.DataFrame:
        col = sc.check_h3_res(name, res)
        sc.check_columns(name, by)
        cond, params = sc.compile_filters(name, where=where, between=between, placeholder=self.PH,
                                          datetime_param=self._dt_param)
        keys = ", ".join([q(col), *(q(b) for b in by)])
        with self._read_tx() as tx:
            if not self._exists(tx, name):
                return sc.h3_frame([], name, by)
            rows = self._fetch(tx, f"SELECT {keys}, count(*) FROM {self._table(name)} "
                                   f"WHERE {q(col)} <> 0" + (f" AND {cond}" if cond else "")
                                   + f" GROUP BY {keys} ORDER BY {keys}", params)
        return sc.h3_frame(rows, name, by)

    def audit_log(self, *, limit: int | None = None) -> pd.DataFrame:
        with self._read_tx() as tx:
            rows = self._fetch(tx, f"SELECT {', '.join(q(c) for c in sc.AUDIT_COLUMNS)} FROM "
                                   f"{self._table(sc.AUDIT_TABLE)} ORDER BY fid DESC"
                                   + (f" LIMIT {int(limit)}" if limit is not None else ""))
        return sc.audit_frame(rows)

    # -- writes --------------------------------------------------------------------------------

    def write(self, layers: Mapping[str, pd.DataFrame], *, mode: WriteMode = "replace",
              actor: str = "system", note: str = "", reset: bool = False,
              records: Mapping[str, Sequence[Mapping[str, Any]]] | None = None) -> None:
        prepared = rules.check_write(layers, mode, reset=reset)
        rules.check_no_duplicates(prepared)
        if not records and mode == "replace" and self._write_whole(prepared, actor=actor,
                                                                   note=note, reset=reset):
            return
        self._retry_missing_record_table(
            [_records.table_of(t).name for t in records or {}],
            lambda: self._write_tx_body(prepared, mode=mode, actor=actor, note=note, reset=reset,
                                        records=records))

    def _write_tx_body(self, prepared: Mapping[str, pd.DataFrame], *, mode: WriteMode, actor: str,
                       note: str, reset: bool,
                       records: Mapping[str, Sequence[Mapping[str, Any]]] | None) -> None:
        """:meth:`write` in one transaction (the layers, then the record rows)."""
        with self._write_tx(prepared, bulk=True) as tx:
            if reset:
                present = self._layers_in(tx)
                removed = sum(self._rows(tx, name) for name in present)
                self._audit(tx, sc.reset_audit_row(removed, actor=actor, note=note))
                for name in present:
                    if name not in prepared:
                        self._drop(tx, name)
                    self._mark_stale(tx, name)
            for name, df in prepared.items():
                if mode == "replace":  # an append never needs the (full-scan) row count
                    rules.check_append_only(name, mode, self._rows(tx, name), reset=reset)
                self._put(tx, name, df, append=mode == "append")
                self._layer_written(tx, name, df, action=mode, actor=actor, note=note)
            self._after_layers(tx, prepared, mode=mode, reset=reset)
            created = []
            for table, rows in (records or {}).items():
                spec = _records.table_of(table)
                created += self._ensure_record_table(tx, spec)
                h = self._record_handle(tx, spec)
                _records.insert_all(h.execute, spec, h.qualified, h.dialect, rows)
        self._records_ready.update(created if records else ())

    def record(self, action: str, layer: str, *, rows: int = 0, actor: str = "system",
               note: str = "") -> None:
        with self._write_tx() as tx:
            self._audit(tx, sc.audit_row(action, layer, rows, actor=actor, note=note))

    def apply(self, updates: Sequence[RowUpdate] = (), *, events: pd.DataFrame | None = None,
              actor: str = "system", note: str = "") -> int:
        plan = rules.prepare_updates(updates)
        ev = rules.prepare_events(events)
        if not plan and ev is None:
            return 0
        total = 0
        with self._write_tx({sc.EVENTS: ev} if ev is not None else None) as tx:
            summaries.before_apply(self, tx, plan)  # reads the rows as they were
            for u in plan:
                found = self._existing_keys(tx, u.layer, u.keys)
                rules.refuse_missing_keys(u.layer, rules.missing_keys(u.layer, u.keys, found))
                n = self._update_rows(tx, u)
                if u.expect and n != len(set(u.keys)):
                    raise sc.conflict_error(u.layer, u.keys)
                total += n
                self._audit(tx, sc.audit_row("update", u.layer, len(u.keys), actor=actor,
                                             note=note))
            if ev is not None:
                refs = rules.event_refs(ev)
                found = self._existing_keys(tx, sc.INCIDENTS, refs)
                rules.refuse_unknown_refs(rules.missing_keys(sc.INCIDENTS, refs, found))
                self._put(tx, sc.EVENTS, ev, append=True)
                self._audit(tx, sc.audit_row("append", sc.EVENTS, len(ev), actor=actor,
                                             note=note))
            self._after_apply(tx, plan, ev)
        return total

    # -- versions --------------------------------------------------------------------------------

    def save_version(self, layer: str, data: pd.DataFrame, *, actor: str = "system",
                     note: str = "") -> int:
        rules.check_versionable(layer)
        df = sc.prepare_layer(data, layer)
        rules.check_no_duplicates({layer: df})
        return self._save(layer, df, actor=actor, note=note, action="save_version", source=None)

    def rollback(self, layer: str, version: int, *, actor: str = "system", note: str = "") -> int:
        rules.check_versionable(layer)
        df = sc.prepare_layer(self.read_version(layer, version), layer)
        return self._save(layer, df, actor=actor, note=note, action="rollback",
                          source=int(version))

    def _save(self, layer: str, df: pd.DataFrame, *, actor: str, note: str, action: str,
              source: int | None) -> int:
        """Replace the live layer and store its snapshot as the next version, in one transaction."""
        blob = sc.snapshot_bytes(df)
        when = sc.now_local()
        vt, ph = self._table(sc.VERSIONS_TABLE), self.PH
        with self._write_tx({layer: df}, bulk=True) as tx:
            self._lock_versions(tx)
            self._replace(tx, layer, df)
            version = int(self._fetch(tx, f"SELECT coalesce(max(version), 0) + 1 FROM {vt} "
                                          f"WHERE layer = {ph}", [layer])[0][0])
            self._mark_stale(tx, layer)
            self._execute(tx, f"INSERT INTO {vt} (layer, version, time, actor, note, rows, "
                              f"current, source_version, data) VALUES ({', '.join([ph] * 9)})",
                          [layer, version, self._param(when), actor, note, len(df), True, source,
                           blob])
            self._audit(tx, sc.audit_row(action, layer, len(df), actor=actor,
                                         note=sc.version_note(version, note), time=when))
            self._after_write(tx, layer, df)
        return version

    def versions(self, layer: str) -> pd.DataFrame:
        sc.schema_of(layer)
        with self._read_tx() as tx:
            rows = self._fetch(tx, "SELECT version, time, actor, note, rows, current, "
                                   f"source_version FROM {self._table(sc.VERSIONS_TABLE)} "
                                   f"WHERE layer = {self.PH} ORDER BY version", [layer])
        return sc.versions_frame(rows)

    def read_version(self, layer: str, version: int) -> pd.DataFrame:
        sc.schema_of(layer)
        with self._read_tx() as tx:
            rows = self._fetch(tx, f"SELECT data FROM {self._table(sc.VERSIONS_TABLE)} "
                                   f"WHERE layer = {self.PH} AND version = {self.PH}",
                               [layer, int(version)])
        if not rows:
            raise sc.store_error("unknown_version", layer=layer, version=version)
        return sc.snapshot_frame(rows[0][0], layer)

    # -- keyed record tables (accounts, sessions) ------------------------------------------------

    def _record_handle(self, tx: Any, spec: _records.RecordTable) -> _records.RecordTx:
        def execute(text: str, params: Sequence[Any]) -> Any:
            return self._execute(tx, text, params)

        def audit(a: Mapping[str, Any]) -> None:
            self._audit(tx, sc.audit_row(a["action"], a["layer"], a.get("rows", 1),
                                         actor=a["actor"], note=a.get("note", "")))

        return _records.RecordTx(execute, self._table(spec.name), self.DIALECT, audit)

    def _records_write(self, table: str, body: Callable[[_records.RecordTx], _T]) -> _T:
        """Run ``body`` in one write transaction on a record table (created when missing).

        A table this store object saw created may have been dropped since by another process
        (a reset load replacing the GeoPackage, a restore): the transaction then fails on the
        missing table, is rolled back whole, and runs once more after creating it again
        (:meth:`_retry_missing_record_table`).
        """
        spec = _records.table_of(table)

        def once() -> _T:
            with self._write_tx() as tx:
                created = self._ensure_record_table(tx, spec)
                out = body(self._record_handle(tx, spec))
            self._records_ready.update(created)
            return out

        return self._retry_missing_record_table([spec.name], once)

    def _retry_missing_record_table(self, names: Sequence[str], run: Callable[[], _T]) -> _T:
        """``run()``; when it fails because a record table of ``names`` that this store object
        believed created is gone (dropped by another process), forget the belief and run it once
        more (``run`` is one transaction: its failure changed nothing)."""
        try:
            return run()
        except Exception as exc:
            stale = [n for n in names if n in self._records_ready]
            if not stale or not _records.is_missing_table(exc):
                raise
            self._records_ready.difference_update(stale)
            return run()

    @property
    def _records_ready(self) -> set[str]:
        """Record tables known to exist (committed): their DDL runs once per store object.

        A per-process belief: another process may drop a table after it was created here, so
        every write that relies on it recovers (:meth:`_retry_missing_record_table`).
        """
        return self.__dict__.setdefault("_records_ready_set", set())

    def _ensure_record_table(self, tx: Any, spec: _records.RecordTable) -> list[str]:
        """Create a record table unless this store object saw it committed; the names to mark
        ready once ``tx`` commits (a rolled-back CREATE must not be remembered)."""
        if spec.name in self._records_ready:
            return []
        self._create_record_table(tx, spec, self._table(spec.name))
        return [spec.name]

    def records(self, table: str, *, where: Where | None = None) -> list[dict[str, Any]]:
        spec = _records.table_of(table)
        with self._read_tx() as tx:
            if not self._exists(tx, spec.name):
                return []
            h = self._record_handle(tx, spec)
            return _records.select(h.execute, spec, h.qualified, h.dialect, where)

    def put_record(self, table: str, row: Mapping[str, Any], *,
                   audit: Mapping[str, Any] | None = None) -> None:
        def body(tx: _records.RecordTx) -> None:
            _records.upsert(tx.execute, _records.table_of(table), tx.qualified, tx.dialect, row)
            if audit is not None:
                tx.audit(audit)

        self._records_write(table, body)

    def insert_record(self, table: str, row: Mapping[str, Any]) -> bool:
        return self._records_write(table, lambda tx: _records.insert(
            tx.execute, _records.table_of(table), tx.qualified, tx.dialect, row))

    def update_records(self, table: str, where: Where, changes: Mapping[str, Any], *,
                       audit: Mapping[str, Any] | None = None) -> int:
        def body(tx: _records.RecordTx) -> int:
            n = _records.update(tx.execute, _records.table_of(table), tx.qualified, tx.dialect,
                                where, changes)
            if audit is not None and n:
                tx.audit(audit)
            return n

        return self._records_write(table, body)

    def delete_records(self, table: str, where: Where | None = None, *,
                       audit: Mapping[str, Any] | None = None) -> int:
        def body(tx: _records.RecordTx) -> int:
            n = _records.delete(tx.execute, _records.table_of(table), tx.qualified, tx.dialect,
                                where)
            if audit is not None:
                tx.audit(audit)
            return n

        return self._records_write(table, body)
