"""Summary tables kept up to date at write time, so pages and the wall read small tables.

Five tables beside the layers, the same on both engines (GeoPackage and PostGIS), written in
the SAME transaction as the rows they summarise by :meth:`layers.store.Store.write`
(:meth:`layers._engine.SqlStore._after_layers` calls :func:`after_write`) and
:meth:`layers.store.Store.apply` (the template calls :func:`before_apply` before its updates):

``gp_sum_patrol_worker`` (``day, worker_id``)
    Per worker and local day: the :func:`geo.patrol.time_in_grid` figures (``hours_in_grid``,
    ``hours_tracked``, ``distance_km``, ``first_fix``, ``last_fix`` (int64 ns), ``n_fixes``)
    and what cleaning did to the day's fixes (``n_<reason>``, ``n_kept``).
``gp_sum_patrol_grid`` (``day, grid_code``)
    Per grid and day: :func:`geo.patrol.post_coverage` (``workers, workers_seen, covered_h,
    a_h, b_h, hours_with_presence, h00..h23``).
``gp_sum_patrol_dirty`` (``day, worker_id``)
    The dirty marks: ``(day, worker)`` pairs whose two patrol tables above are behind the
    fixes (``seq`` counts the appends that touched the pair); see below.
``gp_sum_incident_cells`` (``week, cell, category_code``)
    Incidents per H3 cell at :data:`CELL_RES` (the hotspot page's default), category and
    ISO week (``week`` = the Monday, ``YYYY-MM-DD``, of ``requested_datetime``): ``n``.
``gp_sum_grid_open`` (``grid_code, due``)
    Open cases (stage in :data:`geo.domain.OPEN_STAGES`) per grid and due time
    (``expected_datetime`` as int64 microseconds of naive local time; :data:`NO_DUE` when
    none): ``n``. **The overdue rule**: at ``now``, a grid's overdue open cases are
    ``sum(n) where due < now`` -- exactly :func:`layers.workflow.overdue` for open cases
    (a case without a due time is never overdue), for any ``now``, with one indexed range sum.

Why one module of this size: the five tables share one engine adapter (``_Tx``), one notion of
"built from which basis" (the meta table) and one compare-and-set rule for catching up; split
apart, each piece would need the others' private state. The natural cut, if it grows, is
patrol (worker/grid/dirty tables) versus incidents (cells/open), along the section markers.

How each stays exact
--------------------
* Incident counts are sums: an append adds the counts of the new rows (``INSERT ... ON
  CONFLICT ... DO UPDATE SET n = s.n + excluded.n``, the same SQL on SQLite and PostgreSQL); a
  case action (:meth:`Store.apply`) that changes ``stage``, ``expected_datetime``,
  ``grid_code``, ``category_code`` or ``requested_datetime`` reads the rows it is about to
  change (``FOR UPDATE`` on PostgreSQL), and adds the new contribution minus the old one.
* Patrol figures are NOT sums: cleaning (jumps, stays, trips) and time in grid need the whole
  day's track, and A/B post coverage needs every worker of the grid. So an append of fixes does
  not re-summarise: it only marks, in the same transaction, the ``(day, worker)`` pairs whose
  read window (``[day - MARGIN, day + 1 day + MARGIN)``, the window ``gridpulse patrols``
  always read) holds a new fix, in :data:`PATROL_DIRTY` (an upsert bumping ``seq``). Every
  reader of the patrol summary first calls :func:`settle` for the days it needs: the fixes of
  each marked worker and its grid-mates in that window are run through
  :func:`compute_patrol_day` (the one definition the raw path :func:`raw_patrol_day` uses too)
  and written in a short transaction that removes each mark only at the ``seq`` it saw
  (compare-and-set), so a mark that arrives meanwhile is never lost. A failed append leaves no
  mark (it rolls back with the fixes).
* Patrol figures depend on ``grids`` (polygons) and ``workers`` (grid, post) too. The summary
  stores a digest of both (``gp_sum_meta.basis``); a write or row update that changes them
  marks the patrol summary stale, and a read that finds it stale or missing rebuilds it once
  (as for a store written before summaries existed). ``gridpulse summaries rebuild`` does it
  on purpose.
* A replace (or a reset) of ``incidents`` rebuilds its summaries from the whole layer; a
  replace (or a reset) of ``patrol_points`` only marks the patrol summary unbuilt: the next
  read rebuilds it once, outside the write.

Any failure raises inside the engine's transaction, so rows and summaries roll back together.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo import patrol
from geo.domain import OPEN_STAGES

#: H3 resolution of the incident cell counts (the hotspot page's default).
CELL_RES = 9
#: Fixes read around a day (both sides): intervals across midnight and jumps at its edges count.
MARGIN = pd.Timedelta(hours=1)
#: The cleaning rules of every summarised figure (the engine's defaults: e-bike speeds).
RULES = patrol.CleaningRules()
#: ``due`` of an open case without a due time (never overdue).
NO_DUE = 2**62
#: The daily rule (4小时网格工作制), hours.
MIN_HOURS = 4.0

PATROL_WORKER = "gp_sum_patrol_worker"
PATROL_GRID = "gp_sum_patrol_grid"
INCIDENT_CELLS = "gp_sum_incident_cells"
GRID_OPEN = "gp_sum_grid_open"
META = "gp_sum_meta"
#: ``(day, worker_id)`` pairs whose patrol rows are behind their fixes (``seq``: bumped by each
#: append that touches the pair; a reader removes a mark only when ``seq`` is still the one it saw).
PATROL_DIRTY = "gp_sum_patrol_dirty"
#: Every summary table (the GeoPackage engine leaves them out of its whole-file carry-over).
TABLES: tuple[str, ...] = (PATROL_WORKER, PATROL_GRID, INCIDENT_CELLS, GRID_OPEN, META, PATROL_DIRTY)
#: The summaries, by name: which tables each one fills.
SUMMARIES: dict[str, tuple[str, ...]] = {
    "patrol": (PATROL_WORKER, PATROL_GRID),
    "incidents": (INCIDENT_CELLS, GRID_OPEN),
}
_REASON_COLS = tuple(f"n_{r}" for r in (*patrol.REASONS, "kept"))
_HOURS = tuple(f"h{h:02d}" for h in range(24))
#: ``(column, kind)`` of each table (kinds: text, int, float); the key comes first.
_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    PATROL_WORKER: (("day", "text"), ("worker_id", "text"), ("grid_code", "text"), ("post", "text"),
                    ("hours_in_grid", "float"), ("hours_tracked", "float"), ("distance_km", "float"),
                    ("first_fix", "int"), ("last_fix", "int"), ("n_fixes", "int"),
                    *((c, "int") for c in _REASON_COLS)),
    PATROL_GRID: (("day", "text"), ("grid_code", "text"), ("workers", "int"), ("workers_seen", "int"),
                  ("covered_h", "float"), ("a_h", "float"), ("b_h", "float"),
                  ("hours_with_presence", "int"), *((h, "float") for h in _HOURS)),
    INCIDENT_CELLS: (("cell", "int"), ("category_code", "text"), ("week", "text"), ("n", "int")),
    GRID_OPEN: (("grid_code", "text"), ("due", "int"), ("n", "int")),
    META: (("name", "text"), ("basis", "text"), ("built", "text")),
    PATROL_DIRTY: (("day", "text"), ("worker_id", "text"), ("seq", "int")),
}
_KEYS: dict[str, tuple[str, ...]] = {
    PATROL_WORKER: ("day", "worker_id"), PATROL_GRID: ("day", "grid_code"),
    INCIDENT_CELLS: ("week", "cell", "category_code"), GRID_OPEN: ("grid_code", "due"),
    META: ("name",), PATROL_DIRTY: ("day", "worker_id"),
}
_TYPES = {"sqlite": {"text": "TEXT", "int": "INTEGER", "float": "REAL"},
          "pg": {"text": "text", "int": "bigint", "float": "double precision"}}
#: Incident columns a summary depends on.
_INCIDENT_COLS = ("service_request_id", f"h3_{CELL_RES}", "category_code", "requested_datetime",
                  "stage", "grid_code", "expected_datetime")
_RELEVANT = {"incidents": set(_INCIDENT_COLS) - {"service_request_id"},
             "patrol_points": {"worker_id", "time", "accuracy_m"},
             "workers": {"grid_code", "post"}, "grids": set()}
_GPKG_ENVELOPE = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --------------------------------------------------------------------------- engine adapter


class _Tx:
    """Plain SQL on an engine's connection (``sqlite3``) or cursor (psycopg), one dialect."""

    def __init__(self, store: Any, raw: Any) -> None:
        self.raw = raw
        if isinstance(raw, sqlite3.Connection):
            self.dialect = "sqlite"
            self._prefix = "main."
        else:
            self.dialect = "pg"
            self._schema = str(store.schema)
            self._prefix = _q(store.schema) + "."
        #: Tables seen to exist in this transaction (summaries never drop a table, so a
        #: positive answer holds until the transaction ends): one round trip, not one each.
        self._seen: set[str] = set()

    def t(self, name: str) -> str:
        return self._prefix + _q(name)

    def run(self, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if self.dialect == "sqlite":
            return self.raw.execute(text, list(params)).fetchall()
        self.raw.execute(text.replace("?", "%s"), list(params))
        return self.raw.fetchall() if self.raw.description else []

    def many(self, text: str, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if self.dialect == "sqlite":
            self.raw.executemany(text, rows)
        else:
            self.raw.executemany(text.replace("?", "%s"), rows)

    def exists(self, name: str) -> bool:
        if name in self._seen:
            return True
        if self.dialect == "sqlite":
            found = bool(self.run("SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND "
                                  "name = ?", (name,)))
        else:
            found = bool(self.run("SELECT to_regclass(?) IS NOT NULL", (self.t(name),))[0][0])
        if found:
            self._seen.add(name)
        return found

    def _existing(self, names: Sequence[str]) -> None:
        """Note which of ``names`` exist, in one query."""
        if self.dialect == "sqlite":
            marks = ", ".join("?" * len(names))
            rows = self.run(f"SELECT name FROM main.sqlite_master WHERE type = 'table' AND "
                            f"name IN ({marks})", list(names))
        else:
            rows = self.run("SELECT c.relname FROM pg_catalog.pg_class c JOIN "
                            "pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                            "WHERE n.nspname = ? AND c.relname = ANY(?)",
                            (self._schema, list(names)))
        self._seen.update(str(r[0]) for r in rows)

    def dt(self, ts: pd.Timestamp) -> Any:
        """A naive datetime as this engine compares it (GeoPackage: GDAL's text)."""
        if self.dialect == "pg":
            return ts.to_pydatetime()
        text = ts.strftime("%Y-%m-%dT%H:%M:%S")
        ms = ts.microsecond // 1000
        return f"{text}.{ms:03d}" if ms else text

    def ensure_tables(self) -> None:
        types = _TYPES[self.dialect]
        self._existing(list(_COLUMNS))
        for table, cols in _COLUMNS.items():
            if self.exists(table):
                continue
            body = ", ".join(f"{_q(c)} {types[k]}" for c, k in cols)
            self.run(f"CREATE TABLE IF NOT EXISTS {self.t(table)} ({body}, "
                     f"PRIMARY KEY ({', '.join(map(_q, _KEYS[table]))}))")
            if self.dialect == "sqlite":
                self.run("INSERT OR IGNORE INTO main.gpkg_contents (table_name, data_type, "
                         "identifier, description, last_change) VALUES (?, 'attributes', ?, ?, "
                         "strftime('%Y-%m-%dT%H:%M:%fZ','now'))",
                         (table, table, "GridPulse summary " + table))

    # -- meta ------------------------------------------------------------------------------

    def basis(self, name: str) -> str | None:
        """The stored basis of summary ``name`` (``None``: not built or stale)."""
        if not self.exists(META):
            return None
        rows = self.run(f"SELECT basis FROM {self.t(META)} WHERE name = ?", (name,))
        return rows[0][0] if rows else None

    def set_built(self, name: str, basis: str) -> None:
        self.run(f"DELETE FROM {self.t(META)} WHERE name = ?", (name,))
        self.run(f"INSERT INTO {self.t(META)} (name, basis, built) VALUES (?, ?, ?)",
                 (name, basis, pd.Timestamp.now().isoformat()))

    def unbuild(self, name: str) -> None:
        """Mark ``name`` stale and empty its tables (a read rebuilds it)."""
        if self.exists(META):
            self.run(f"DELETE FROM {self.t(META)} WHERE name = ?", (name,))
        for table in SUMMARIES[name]:
            if self.exists(table):
                self.run(f"DELETE FROM {self.t(table)}")

    # -- bulk rows ---------------------------------------------------------------------------

    def insert(self, table: str, df: pd.DataFrame) -> None:
        cols = [c for c, _ in _COLUMNS[table]]
        if df.empty:
            return
        rows = _rows(df, table)
        if self.dialect == "pg" and len(rows) > 1000:
            with self.raw.copy(f"COPY {self.t(table)} ({', '.join(map(_q, cols))}) FROM STDIN") as cp:
                for r in rows:
                    cp.write_row(r)
            return
        self.many(f"INSERT INTO {self.t(table)} ({', '.join(map(_q, cols))}) "
                  f"VALUES ({', '.join('?' * len(cols))})", rows)

    def add(self, table: str, delta: pd.DataFrame) -> None:
        """Add ``delta``'s ``n`` to the rows with the same key (upsert), dropping rows at 0."""
        key = _KEYS[table]
        delta = delta[delta["n"] != 0]
        if delta.empty:
            return
        delta = delta.sort_values(list(key))  # one lock order for concurrent writers (PostgreSQL)
        cols = [*key, "n"]
        self._upsert(table, key, _rows(delta[cols], table, cols))

    def add_counts(self, table: str, counts: Mapping[tuple[Any, ...], int]) -> None:
        """:meth:`add` for a few deltas given as ``{key tuple (in _KEYS order): n}``."""
        key = _KEYS[table]
        kinds = dict(_COLUMNS[table])
        cast = [int if kinds[k] == "int" else str for k in key]
        rows = [(*(None if v is None else f(v) for f, v in zip(cast, k, strict=True)), int(n))
                for k, n in sorted(counts.items()) if n]  # one lock order (PostgreSQL)
        if rows:
            self._upsert(table, key, rows)

    def _upsert(self, table: str, key: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        """Add each row's ``n`` to its key's count (new keys inserted); drop counts that reach 0."""
        cols = [*key, "n"]
        self.many(f"INSERT INTO {self.t(table)} AS s ({', '.join(map(_q, cols))}) VALUES "
                  f"({', '.join('?' * len(cols))}) ON CONFLICT ({', '.join(map(_q, key))}) "
                  "DO UPDATE SET n = s.n + excluded.n", rows)
        cond = " AND ".join(f"{_q(k)} = ?" for k in key)
        self.many(f"DELETE FROM {self.t(table)} WHERE {cond} AND n = 0",
                  [r[:-1] for r in rows])

    # -- source rows -------------------------------------------------------------------------

    def geoms(self) -> str:
        """The geometry expression of a select (WKB on PostGIS, GeoPackage blob on SQLite)."""
        return "geom" if self.dialect == "sqlite" else "ST_AsBinary(geom)"

    def wkb(self, blobs: Iterable[Any]) -> np.ndarray:
        """Shapely geometries from what :meth:`geoms` selected."""
        if self.dialect == "pg":
            data = [None if b is None else bytes(b) for b in blobs]
        else:
            data = [None if b is None or len(b) < 8 else
                    bytes(b[8 + _GPKG_ENVELOPE.get((b[3] >> 1) & 7, 0):]) for b in blobs]
        return shapely.from_wkb(np.array(data, dtype=object))

    def layer_rows(self, layer: str, cols: Sequence[str], *, geometry: bool = False,
                   where: str = "", params: Sequence[Any] = (), lock: bool = False) -> pd.DataFrame:
        """Columns of a layer as seen inside this transaction (no rows when it is absent)."""
        if not self.exists(layer):
            out = pd.DataFrame({c: pd.Series([], dtype=object) for c in cols})
            return gpd.GeoDataFrame(out, geometry=gpd.GeoSeries([], crs=4326)) if geometry else out
        sel = ", ".join(map(_q, cols)) + (f", {self.geoms()}" if geometry else "")
        text = f"SELECT {sel} FROM {self.t(layer)}" + (f" WHERE {where}" if where else "")
        if lock and self.dialect == "pg":
            text += " FOR UPDATE"
        rows = self.run(text, params)
        n = len(cols)
        out = pd.DataFrame({c: pd.Series([r[i] for r in rows], dtype=object)
                            for i, c in enumerate(cols)})
        if geometry:
            return gpd.GeoDataFrame(out, geometry=gpd.GeoSeries(self.wkb(r[n] for r in rows), crs=4326),
                                    crs=4326)
        return out

    def in_list(self, col: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """``col IN (...)`` / ``col = ANY(...)`` with its parameters."""
        if self.dialect == "pg":
            return f"{_q(col)} = ANY(?)", [list(values)]
        return f"{_q(col)} IN ({', '.join('?' * len(values))})", list(values)


def _rows(df: pd.DataFrame, table: str, cols: Sequence[str] | None = None) -> list[tuple[Any, ...]]:
    kinds = dict(_COLUMNS[table])
    cols = list(cols) if cols is not None else [c for c, _ in _COLUMNS[table]]
    out: list[list[Any]] = []
    for c in cols:
        v = df[c]
        if kinds[c] == "int":
            out.append([None if pd.isna(x) else int(x) for x in v.to_numpy(dtype=object)])
        elif kinds[c] == "float":
            arr = v.to_numpy(dtype=float)
            out.append([None if x != x else float(x) for x in arr])
        else:
            out.append([None if (x is None or x is pd.NA or (isinstance(x, float) and x != x))
                        else str(x) for x in v.to_numpy(dtype=object)])
    return list(zip(*out, strict=True))


# --------------------------------------------------------------------------- incidents


def _datetimes(values: pd.Series) -> pd.Series:
    """Naive datetimes from what an engine returned (text on SQLite, datetimes on PostGIS)."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return values.astype("datetime64[us]")
    return pd.to_datetime(values, format="ISO8601").astype("datetime64[us]")


def week_of(times: pd.Series) -> pd.Series:
    """The Monday (``YYYY-MM-DD``) of each time's ISO week; ``""`` for a missing time.

    Examples
    --------
    >>> week_of(pd.Series(pd.to_datetime(["2026-11-20 16:00", "2026-11-16 00:00", None]))).tolist()
    ['2026-11-16', '2026-11-16', '']
    """
    d = _datetimes(times).dt.normalize()
    monday = d - pd.to_timedelta(d.dt.day_of_week, unit="D")
    return monday.dt.strftime("%Y-%m-%d").fillna("").astype(object)


def incident_contributions(inc: pd.DataFrame, sign: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What ``inc``'s rows add to the two incident summaries (times ``sign``).

    Returns ``(cells, open)``: ``cell, category_code, week, n`` and ``grid_code, due, n``.
    """
    cell = pd.to_numeric(inc[f"h3_{CELL_RES}"]).fillna(0).astype("int64").to_numpy()
    cat = inc["category_code"].astype(object).where(inc["category_code"].notna(), "").astype(str)
    cells = pd.DataFrame({"cell": cell, "category_code": cat.to_numpy(),
                          "week": week_of(inc["requested_datetime"]).to_numpy()})
    cells = cells.groupby(["cell", "category_code", "week"], sort=True).size().rename("n").reset_index()
    cells["n"] *= sign
    is_open = inc["stage"].isin(OPEN_STAGES).to_numpy()
    due = _datetimes(inc["expected_datetime"])
    due_us = np.where(due.isna().to_numpy(), NO_DUE, due.to_numpy().view("int64"))
    grid = inc["grid_code"].astype(object).where(inc["grid_code"].notna(), "").astype(str)
    opened = pd.DataFrame({"grid_code": grid.to_numpy()[is_open], "due": due_us[is_open]})
    opened = opened.groupby(["grid_code", "due"], sort=True).size().rename("n").reset_index()
    opened["n"] *= sign
    return cells, opened


#: Up to this many appended cases the summary deltas are counted in plain Python
#: (:func:`incident_contributions_few`): a pandas group-by costs milliseconds even for one row.
FEW_ROWS = 256


def contribution_counts(inc: pd.DataFrame) -> tuple[dict[tuple[Any, ...], int],
                                                     dict[tuple[Any, ...], int]]:
    """What ``inc``'s rows add to the two incident summaries, counted row by row with
    :func:`_contribution`: ``{(week, cell, category): n}`` and ``{(grid, due): n}``."""
    cols = {c: inc[c].tolist() for c in _INCIDENT_COLS if c in inc.columns}
    cells: dict[tuple[Any, ...], int] = {}
    opened: dict[tuple[Any, ...], int] = {}
    for values in zip(*cols.values(), strict=True):
        r = {k: (None if v is pd.NaT or v is pd.NA or (isinstance(v, float) and v != v) else v)
             for k, v in zip(cols, values, strict=True)}
        ck, ok = _contribution(r)
        cells[ck] = cells.get(ck, 0) + 1
        if ok is not None:
            opened[ok] = opened.get(ok, 0) + 1
    return cells, opened


def incident_contributions_few(inc: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`incident_contributions` (``sign=1``) from :func:`contribution_counts`: the same
    rows, sorted by key."""
    cells, opened = contribution_counts(inc)
    c = _delta_frame(dict(sorted(cells.items())), _KEYS[INCIDENT_CELLS])
    o = _delta_frame(dict(sorted(opened.items())), _KEYS[GRID_OPEN])
    return (c[["cell", "category_code", "week", "n"]].astype({"cell": "int64", "n": "int64"}),
            o.astype({"due": "int64", "n": "int64"}))


def _sum_deltas(frames: Sequence[pd.DataFrame], key: Sequence[str]) -> pd.DataFrame:
    df = pd.concat(frames, ignore_index=True)
    if df.empty:
        return df
    return df.groupby(list(key), sort=True)["n"].sum().reset_index()


def _rebuild_incidents(tx: _Tx, inc: pd.DataFrame | None = None, *, stored: bool = False) -> None:
    """Rebuild the incident summaries from ``inc`` (default: the layer as this transaction sees
    it); ``stored``: ``inc`` was read back from the store (not a frame being written)."""
    if inc is None:
        inc = tx.layer_rows("incidents", _INCIDENT_COLS)
    elif tx.dialect == "sqlite" and not stored:  # the GeoPackage keeps datetimes to the ms
        inc = inc.assign(expected_datetime=_datetimes(inc["expected_datetime"]).dt.round("ms"))
    cells, opened = incident_contributions(inc)
    for table, df in ((INCIDENT_CELLS, cells), (GRID_OPEN, opened)):
        tx.run(f"DELETE FROM {tx.t(table)}")
        tx.insert(table, df)
    tx.set_built("incidents", "")


def _incident_updates(tx: _Tx, plan: Sequence[Any]) -> None:
    """Deltas of row updates on ``incidents``: new contribution minus old, before the UPDATEs.

    Plain Python on the few rows a case action touches (no frame): a transition stays at a
    few milliseconds.
    """
    ups = [u for u in plan if u.layer == "incidents" and set(u.changes) & _RELEVANT["incidents"]]
    if not ups:
        return
    keys = sorted({str(k) for u in ups for k in u.keys})
    old: dict[str, dict[str, Any]] = {}
    for i in range(0, len(keys), 900):
        cond, params = tx.in_list("service_request_id", keys[i:i + 900])
        text = (f"SELECT {', '.join(map(_q, _INCIDENT_COLS))} FROM {tx.t('incidents')} WHERE {cond}"
                + (" FOR UPDATE" if tx.dialect == "pg" else ""))
        for row in tx.run(text, params):
            old[str(row[0])] = dict(zip(_INCIDENT_COLS, row, strict=True))
    new = {k: dict(v) for k, v in old.items()}
    for u in ups:  # in order: a later update of the same case sees the earlier one
        for k in u.keys:
            if str(k) in new:
                new[str(k)].update({c: v for c, v in u.changes.items() if c in _INCIDENT_COLS})
    cells: dict[tuple[Any, ...], int] = {}
    opened: dict[tuple[Any, ...], int] = {}
    for rows, sign in ((old, -1), (new, 1)):
        for r in rows.values():
            ck, ok = _contribution(r)
            cells[ck] = cells.get(ck, 0) + sign
            if ok is not None:
                opened[ok] = opened.get(ok, 0) + sign
    tx.add(INCIDENT_CELLS, _delta_frame(cells, _KEYS[INCIDENT_CELLS]))
    tx.add(GRID_OPEN, _delta_frame(opened, _KEYS[GRID_OPEN]))


_EPOCH = datetime(1970, 1, 1)


def _naive(v: Any) -> datetime | None:
    """A naive local datetime from an engine value (text, datetime, Timestamp) or ``None``."""
    if v is None or v is pd.NaT or (isinstance(v, float) and v != v):
        return None
    ts = pd.Timestamp(v)
    if ts is pd.NaT:
        return None
    if ts.tzinfo is not None:
        ts = ts.tz_convert("Asia/Shanghai").tz_localize(None)
    return ts.to_pydatetime()


def _contribution(r: Mapping[str, Any]) -> tuple[tuple[Any, ...], tuple[Any, ...] | None]:
    """One case's ``(week, cell, category)`` key and, when open, ``(grid, due)`` key: the
    scalar form of :func:`incident_contributions`."""
    req = _naive(r["requested_datetime"])
    week = "" if req is None else (req.date() - timedelta(days=req.weekday())).isoformat()
    cell = r[f"h3_{CELL_RES}"]
    cat = r["category_code"]
    ck = (week, 0 if cell is None else int(cell), "" if cat is None else str(cat))
    if r["stage"] not in OPEN_STAGES:
        return ck, None
    due = _naive(r["expected_datetime"])
    due_us = NO_DUE if due is None else (due - _EPOCH) // timedelta(microseconds=1)
    grid = r["grid_code"]
    return ck, ("" if grid is None else str(grid), due_us)


def _delta_frame(counts: Mapping[tuple[Any, ...], int], key: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame([(*k, n) for k, n in counts.items() if n], columns=[*key, "n"])


# --------------------------------------------------------------------------- patrol


def basis_of(grids: pd.DataFrame, workers: pd.DataFrame) -> str:
    """A digest of what patrol figures depend on besides the fixes: grid codes and polygons,
    workers' grids and posts."""
    h = hashlib.sha1()
    g = grids.assign(_c=grids["code"].astype(str)).sort_values("_c")
    h.update("\x1f".join(g["_c"]).encode())
    wkb = shapely.to_wkb(np.asarray(g.geometry.values, dtype=object), output_dimension=2,
                         byte_order=1)
    for b in wkb:
        h.update(b if b is not None else b"-")
    w = workers.assign(_i=workers["id"].astype(str)).sort_values("_i")
    for col in ("_i", "grid_code", "post"):
        h.update("\x1f".join(w[col].astype("str").fillna("").tolist()).encode())
    return h.hexdigest()


def day_window(day: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The fixes read for ``day``: ``[day - MARGIN, day + 1 day + MARGIN)``."""
    day = pd.Timestamp(day).normalize()
    return day - MARGIN, day + pd.Timedelta(days=1) + MARGIN


def days_touched(times: pd.Series) -> list[pd.Timestamp]:
    """Days whose read window (:func:`day_window`) holds any of ``times``.

    Examples
    --------
    >>> [str(d.date()) for d in days_touched(pd.Series(pd.to_datetime(["2026-11-19 23:30"])))]
    ['2026-11-19', '2026-11-20']
    """
    t = _datetimes(times).dropna()
    if t.empty:
        return []
    v = t.to_numpy().astype("datetime64[us]")
    m = np.timedelta64(int(MARGIN.total_seconds() * 1e6), "us")
    days = np.unique(np.concatenate([(v - m).astype("datetime64[D]"), v.astype("datetime64[D]"),
                                     (v + m).astype("datetime64[D]")]))
    return [pd.Timestamp(d) for d in days]


def compute_patrol_day(fixes: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, workers: pd.DataFrame,
                       day: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame]:
    """THE patrol figures of ``day`` from the fixes of its window, as summary rows.

    Parameters
    ----------
    fixes
        ``worker_id, time, accuracy_m`` points (EPSG:4326) in :func:`day_window` of ``day``.
    grids, workers
        ``code`` + polygons; ``id, grid_code, post``.
    day
        The local day.

    Returns
    -------
    (per_worker, per_grid)
        Rows of :data:`PATROL_WORKER` for the workers with any fix in ``fixes``, and of
        :data:`PATROL_GRID` for the grids of those workers.
    """
    day = pd.Timestamp(day).normalize()
    wid = workers["id"].astype(str)
    present = wid.isin(pd.unique(fixes["worker_id"].dropna())).to_numpy()
    key = day.strftime("%Y-%m-%d")
    if not present.any():
        return (pd.DataFrame(columns=[c for c, _ in _COLUMNS[PATROL_WORKER]]),
                pd.DataFrame(columns=[c for c, _ in _COLUMNS[PATROL_GRID]]))
    clean = patrol.clean_fixes(fixes, rules=RULES)
    pw = patrol.time_in_grid(clean, grids, workers, day=day, min_hours=MIN_HOURS)
    pw = pw[present].copy()
    lo, hi = day, day + pd.Timedelta(days=1)
    kt = pd.to_datetime(clean.fixes["time"])
    kept = clean.fixes.loc[((kt >= lo) & (kt < hi)).to_numpy(), "worker_id"].astype(str)
    dt_ = _datetimes(clean.dropped["time"]) if len(clean.dropped) else pd.Series([], dtype="datetime64[us]")
    on = ((dt_ >= lo) & (dt_ < hi)).to_numpy()
    dropped = pd.DataFrame({"w": clean.dropped["worker_id"].astype(str).to_numpy()[on],
                            "r": clean.dropped["reason"].to_numpy()[on]})
    who = pw["worker_id"].astype(str)
    counts = dropped.groupby(["w", "r"]).size().unstack(fill_value=0)
    counts = counts.reindex(index=who, columns=list(patrol.REASONS)).fillna(0)
    counts["kept"] = kept.value_counts().reindex(who).fillna(0).to_numpy()
    counts = counts.astype("int64")
    out = pd.DataFrame({
        "day": key, "worker_id": pw["worker_id"].astype(str).to_numpy(),
        "grid_code": pw["grid_code"].to_numpy(), "post": pw["post"].to_numpy(),
        "hours_in_grid": pw["hours_in_grid"].to_numpy(float),
        "hours_tracked": pw["hours_tracked"].to_numpy(float),
        "distance_km": pw["distance_km"].to_numpy(float),
        "first_fix": _ns(pw["first_fix"]), "last_fix": _ns(pw["last_fix"]),
        "n_fixes": pw["n_fixes"].to_numpy("int64"),
    })
    for r, col in zip((*patrol.REASONS, "kept"), _REASON_COLS, strict=True):
        out[col] = counts[r].to_numpy() if r in counts.columns else 0
    mine = set(pw["grid_code"].dropna().astype(str))
    g = grids[grids["code"].astype(str).isin(mine)]
    pg = patrol.post_coverage(clean, g, workers, day=day)
    pg = pg.drop(columns="grid_code").assign(grid_code=pg["grid_code"].astype(str).to_numpy(), day=key)
    return out, pg[[c for c, _ in _COLUMNS[PATROL_GRID]]].reset_index(drop=True)


def _ns(values: pd.Series) -> np.ndarray:
    v = pd.to_datetime(values).astype("datetime64[ns]")
    return np.where(v.isna().to_numpy(), None, v.to_numpy().view("int64")).astype(object)


def _tx_fixes(tx: _Tx, lo: pd.Timestamp, hi: pd.Timestamp,
              workers: Sequence[str] | None) -> gpd.GeoDataFrame:
    cond = f"{_q('time')} >= ? AND {_q('time')} < ?"
    params: list[Any] = [tx.dt(lo), tx.dt(hi)]
    cols = ("worker_id", "time", "accuracy_m")
    if workers is None:
        df = tx.layer_rows("patrol_points", cols, geometry=True, where=cond, params=params)
    else:
        ws = sorted(set(workers))
        parts = []
        for i in range(0, max(len(ws), 1), 900):
            c, p = tx.in_list("worker_id", ws[i:i + 900] or ["\x00"])
            parts.append(tx.layer_rows("patrol_points", cols, geometry=True,
                                       where=f"{cond} AND {c}", params=[*params, *p]))
        df = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry", crs=4326)
    return _fix_frame(df)


def _fix_frame(df: pd.DataFrame) -> gpd.GeoDataFrame:
    ids = df["worker_id"]
    out = gpd.GeoDataFrame({
        "worker_id": ids if ids.dtype == "str" else ids.astype(object).where(ids.notna(), None).astype("str"),
        "time": _datetimes(df["time"]) if len(df) else pd.Series([], dtype="datetime64[us]"),
        "accuracy_m": pd.to_numeric(df["accuracy_m"]).astype("float64"),
    }, geometry=gpd.GeoSeries(np.asarray(df.geometry.values, dtype=object), crs=4326), crs=4326)
    return out


def _patrol_inputs(tx: _Tx) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    grids = tx.layer_rows("grids", ("code",), geometry=True)
    grids["code"] = grids["code"].astype("str")
    workers = tx.layer_rows("workers", ("id", "grid_code", "post"))
    return grids, workers


def _resummarise(tx: _Tx, grids: gpd.GeoDataFrame, workers: pd.DataFrame,
                 days: Iterable[pd.Timestamp], touched: set[str] | None,
                 fixes: gpd.GeoDataFrame | None = None) -> None:
    """Recompute the patrol rows of ``days`` for ``touched`` workers (None: everyone).

    The fixes of each day's window are read in the transaction, or sliced from ``fixes``
    (every fix of the layer, in stored order) when given.
    """
    _store_rows(tx, _compute_rows(tx, grids, workers, days, touched, fixes))


#: One day's recomputed rows: ``(day key, workers replaced (None: all), grids replaced,
#: per_worker, per_grid)``.
_DayRows = tuple[str, "list[str] | None", list[str], pd.DataFrame, pd.DataFrame]


def _compute_rows(tx: _Tx, grids: gpd.GeoDataFrame, workers: pd.DataFrame,
                  days: Iterable[pd.Timestamp], touched: set[str] | None,
                  fixes: gpd.GeoDataFrame | None = None) -> list[_DayRows]:
    """The rows :func:`_resummarise` writes, reading the fixes through ``tx`` (no write)."""
    if fixes is not None:
        order = np.argsort(fixes["time"].to_numpy(), kind="stable")
        fixes = fixes.iloc[order]
        times = fixes["time"].to_numpy()
    if touched is None:
        scope = None
        wmask = np.ones(len(workers), dtype=bool)
    else:
        wid = workers["id"].astype(str)
        their = set(workers.loc[wid.isin(touched), "grid_code"].dropna().astype(str))
        wmask = (wid.isin(touched) | workers["grid_code"].astype(str).isin(their)).to_numpy()
        scope = sorted(set(wid[wmask]) | touched)
        grids = grids[grids["code"].astype(str).isin(their)]  # only the polygons needed
    ws = workers[wmask]
    codes = sorted(set(ws["grid_code"].dropna().astype(str)))
    out: list[_DayRows] = []
    for day in days:
        lo, hi = day_window(day)
        if fixes is None:
            window = _tx_fixes(tx, lo, hi, scope)
        else:
            a, b = np.searchsorted(times, [np.datetime64(lo), np.datetime64(hi)])
            window = fixes.iloc[a:b].sort_index()  # back to stored order
        per_w, per_g = compute_patrol_day(window, grids, ws, day)
        out.append((day.strftime("%Y-%m-%d"), scope, codes, per_w, per_g))
    return out


def _store_rows(tx: _Tx, rows: Sequence[_DayRows]) -> None:
    """Replace the patrol rows that :func:`_compute_rows` recomputed."""
    for key, scope, codes, per_w, per_g in rows:
        if scope is None:
            tx.run(f"DELETE FROM {tx.t(PATROL_WORKER)} WHERE day = ?", (key,))
            tx.run(f"DELETE FROM {tx.t(PATROL_GRID)} WHERE day = ?", (key,))
        else:
            tx.many(f"DELETE FROM {tx.t(PATROL_WORKER)} WHERE day = ? AND worker_id = ?",
                    [(key, w) for w in scope])
            tx.many(f"DELETE FROM {tx.t(PATROL_GRID)} WHERE day = ? AND grid_code = ?",
                    [(key, c) for c in codes])
        tx.insert(PATROL_WORKER, per_w)
        tx.insert(PATROL_GRID, per_g)


def _rebuild_patrol(tx: _Tx, fixes: pd.DataFrame | None = None, *, stored: bool = False) -> None:
    """Rebuild the patrol summary from every fix: ``fixes`` (the whole layer: the frame a
    replace writes, or read back from the store when ``stored``) or, by default, the layer as
    this transaction sees it."""
    grids, workers = _patrol_inputs(tx)
    for table in SUMMARIES["patrol"]:
        tx.run(f"DELETE FROM {tx.t(table)}")
    if fixes is not None:
        fx = _fix_frame(fixes.reset_index(drop=True))
        if tx.dialect == "sqlite" and not stored:  # the GeoPackage keeps datetimes to the ms
            fx["time"] = fx["time"].dt.round("ms")
        _resummarise(tx, grids, workers, days_touched(fx["time"]), None, fx)
    elif tx.exists("patrol_points"):
        rows = tx.run(f"SELECT min({_q('time')}), max({_q('time')}) FROM {tx.t('patrol_points')}")
        if rows and rows[0][0] is not None:
            lo, hi = _datetimes(pd.Series([rows[0][0], rows[0][1]]))
            days = pd.date_range(lo.normalize() - pd.Timedelta(days=1), hi.normalize() + pd.Timedelta(days=1))
            present = _present_days(tx, days)
            _resummarise(tx, grids, workers, present, None)
    tx.set_built("patrol", basis_of(grids, workers))


def _present_days(tx: _Tx, days: Iterable[pd.Timestamp]) -> list[pd.Timestamp]:
    """The days whose read window holds at least one fix."""
    out = []
    for d in days:
        lo, hi = day_window(d)
        if tx.run(f"SELECT 1 FROM {tx.t('patrol_points')} WHERE {_q('time')} >= ? AND "
                  f"{_q('time')} < ? LIMIT 1", (tx.dt(lo), tx.dt(hi))):
            out.append(pd.Timestamp(d))
    return out


#: ``(store url, basis) -> (grids, workers)``: the inputs the patrol summary was built on, kept
#: per process so that settling a few dirty marks does not re-read and re-hash every grid.
_INPUTS: dict[tuple[str, str], tuple[gpd.GeoDataFrame, pd.DataFrame]] = {}

_Marks = dict[tuple[str, str], int]


def dirty_keys(times: pd.Series, workers: pd.Series, *, sqlite: bool = False
               ) -> list[tuple[str, str]]:
    """The ``(day, worker_id)`` pairs whose day window (:func:`day_window`) holds a fix, sorted.

    A time ``x`` lies in the window of day ``d`` exactly when ``d`` is the day of ``x - MARGIN``,
    of ``x`` or of ``x + MARGIN`` (the margin is under a day), so no window is tested. The
    GeoPackage keeps times to the ms: ``sqlite`` marks the days of both the given and the
    stored time.

    Examples
    --------
    >>> t = pd.Series(pd.to_datetime(["2026-11-19 23:30", "2026-11-19 12:00"]))
    >>> dirty_keys(t, pd.Series(["W1", "W2"]))
    [('2026-11-19', 'W1'), ('2026-11-19', 'W2'), ('2026-11-20', 'W1')]
    """
    t = _datetimes(times).to_numpy(dtype="datetime64[us]")
    ids = workers.astype(object).to_numpy()
    ok = ~np.isnat(t) & pd.notna(ids)
    t, ids = t[ok], ids[ok]
    variants = [t, pd.Series(t).dt.round("ms").to_numpy(dtype="datetime64[us]")] if sqlite \
        else [t]
    m = np.timedelta64(int(MARGIN.total_seconds() * 1e6), "us")
    keys: set[tuple[str, str]] = set()
    w = [str(x) for x in ids]
    for tv in variants:
        for shifted in (tv - m, tv, tv + m):
            days = np.datetime_as_string(shifted.astype("datetime64[D]"), unit="D").tolist()
            keys.update(zip(days, w, strict=True))
    return sorted(keys)


def _mark_dirty(tx: _Tx, new: pd.DataFrame) -> None:
    """Mark the ``(day, worker)`` pairs an append of fixes touches (one upsert, no re-summary).

    The marks are written in the append's transaction: they commit or roll back with the fixes;
    sorted, for one lock order among concurrent appends (PostgreSQL), and as multi-row
    statements (a 500-fix batch from 100 workers was 100 statements).
    """
    keys = dirty_keys(new["time"], new["worker_id"], sqlite=tx.dialect == "sqlite")
    for i in range(0, len(keys), 500):
        chunk = keys[i:i + 500]
        tx.run(f"INSERT INTO {tx.t(PATROL_DIRTY)} AS s (day, worker_id, seq) VALUES "
               + ", ".join(["(?, ?, 1)"] * len(chunk))
               + " ON CONFLICT (day, worker_id) DO UPDATE SET seq = s.seq + 1",
               [v for k in chunk for v in k])


def _marks(tx: _Tx, days: Sequence[str] | None) -> _Marks:
    """The dirty marks of ``days`` (``None``: every day)."""
    if not tx.exists(PATROL_DIRTY):
        return {}
    text = f"SELECT day, worker_id, seq FROM {tx.t(PATROL_DIRTY)}"
    params: list[Any] = []
    if days is not None:
        if not days:
            return {}
        cond, params = tx.in_list("day", sorted(set(days)))
        text += f" WHERE {cond}"
    return {(str(d), str(w)): int(n) for d, w, n in tx.run(text, params)}


def _clear_marks(tx: _Tx, marks: _Marks) -> None:
    """Remove the marks still at the ``seq`` seen (compare-and-set: newer marks stay)."""
    tx.many(f"DELETE FROM {tx.t(PATROL_DIRTY)} WHERE day = ? AND worker_id = ? AND seq = ?",
            [(d, w, n) for (d, w), n in sorted(marks.items())])


def _inputs(tx: _Tx, store: Any, basis: str) -> tuple[gpd.GeoDataFrame, pd.DataFrame] | None:
    """The grids and workers the stored ``basis`` was computed from (``None``: they changed)."""
    key = (str(getattr(store, "url", "")), basis)
    if key not in _INPUTS:
        grids, workers = _patrol_inputs(tx)
        if basis != basis_of(grids, workers):
            return None
        if len(_INPUTS) > 8:
            _INPUTS.clear()
        _INPUTS[key] = (grids, workers)
    return _INPUTS[key]


def _settle_rows(tx: _Tx, store: Any, marks: _Marks, basis: str) -> list[_DayRows] | None:
    inputs = _inputs(tx, store, basis)
    if inputs is None:
        return None
    grids, workers = inputs
    rows: list[_DayRows] = []
    for day in sorted({d for d, _ in marks}):
        touched = {w for d, w in marks if d == day}
        rows += _compute_rows(tx, grids, workers, [pd.Timestamp(day)], touched)
    return rows


def settle(store: Any, days: Sequence[Any] | None = None) -> int:
    """Re-summarise the dirty ``(day, worker)`` marks of ``days`` (``None``: all); marks settled.

    Every reader of the patrol summary calls this first, so an answer is never behind the
    fixes. The marks and the fixes are read outside any write lock and recomputed; then, in a
    short write transaction, the rows are written only when the marks of those days are still
    exactly the ones read (otherwise a write came in between: read again), and each mark is
    removed only at the ``seq`` seen, so a mark an append adds meanwhile is never lost. On a
    GeoPackage nothing is read through GDAL while the write lock is held (only ``sqlite3``); on
    PostgreSQL an advisory lock serialises re-summaries (appends do not take it). After three
    lost races the work is done inside the transaction.
    """
    keys = None if days is None else [pd.Timestamp(d).strftime("%Y-%m-%d") for d in days]
    for attempt in range(4):
        rows: list[_DayRows] | None = None
        if attempt < 3:
            with _reading(store) as tx:
                marks = _marks(tx, keys)
                if not marks:
                    return 0
                basis = tx.basis("patrol")
                if basis is None:
                    return 0  # not built: the next read rebuilds it (and clears the marks)
                rows = _settle_rows(tx, store, marks, basis)
            if rows is None:
                rebuild(store, ["patrol"])
                return len(marks)
        with _writing(store) as tx:
            if tx.dialect == "pg":
                tx.run("SELECT pg_advisory_xact_lock(hashtext(?))", ("gridpulse.patrol_summary",))
            if rows is not None:
                if tx.basis("patrol") != basis or _marks(tx, sorted({d for d, _ in marks})) != marks:
                    continue  # written meanwhile: read again
            else:
                marks = _marks(tx, keys)
                basis = tx.basis("patrol")
                if not marks or basis is None:
                    return 0
                rows = _settle_rows(tx, store, marks, basis)
                if rows is None:
                    tx.unbuild("patrol")
                    return len(marks)
            _store_rows(tx, rows)
            _clear_marks(tx, marks)
            return len(marks)
    raise AssertionError("unreachable")  # pragma: no cover


# --------------------------------------------------------------------------- the two hooks


def after_write(store: Any, raw: Any, prepared: Mapping[str, pd.DataFrame], *, mode: str,
                reset: bool = False) -> None:
    """Bring the summaries up to date with a write, inside its transaction.

    Called by each engine once per write, after the layers are written and before COMMIT,
    with the engine's transaction (``sqlite3`` connection or psycopg cursor).
    """
    tx = _Tx(store, raw)
    tx.ensure_tables()
    names = set(prepared)
    if "incidents" in names or reset:
        if mode == "replace":
            _rebuild_incidents(tx, prepared.get("incidents"))
        elif tx.basis("incidents") is not None:
            inc = prepared["incidents"]
            if len(inc) <= FEW_ROWS:  # an API batch: no frames at all
                for table, counts in zip((INCIDENT_CELLS, GRID_OPEN), contribution_counts(inc),
                                         strict=True):
                    tx.add_counts(table, counts)
            else:
                cells, opened = incident_contributions(inc)
                tx.add(INCIDENT_CELLS, cells)
                tx.add(GRID_OPEN, opened)
    if reset or ("patrol_points" in names and mode == "replace"):
        tx.unbuild("patrol")  # rebuilt once by the next read, outside this write
    elif names & {"grids", "workers"}:
        if tx.exists("patrol_points") and tx.run(f"SELECT 1 FROM {tx.t('patrol_points')} LIMIT 1"):
            tx.unbuild("patrol")  # re-summarising every day is left to the next read
        else:
            _rebuild_patrol(tx)  # nothing to summarise yet: built (empty) on these grids/workers
    if "patrol_points" in names and mode != "replace" and not reset:
        _mark_dirty(tx, prepared["patrol_points"])  # re-summarised by the next read


def before_apply(store: Any, raw: Any, plan: Sequence[Any]) -> None:
    """Bring the summaries up to date with row updates about to be made in this transaction.

    Called once by :meth:`layers._store_common.SharedApply.apply` before its UPDATEs (it reads
    the rows as they are, locked on PostgreSQL); events change no summary.
    """
    relevant = [u for u in plan if u.layer in _RELEVANT
                and (u.layer == "grids" or set(u.changes) & _RELEVANT[u.layer])]
    if not relevant:
        return
    tx = _Tx(store, raw)
    tx.ensure_tables()
    if tx.basis("incidents") is not None:
        _incident_updates(tx, relevant)
    if any(u.layer != "incidents" for u in relevant):
        tx.unbuild("patrol")


# --------------------------------------------------------------------------- maintenance and reads


@contextlib.contextmanager
def _writing(store: Any) -> Iterator[_Tx]:
    with store._transaction() as raw:
        tx = _Tx(store, raw)
        tx.ensure_tables()
        yield tx


@contextlib.contextmanager
def _reading(store: Any) -> Iterator[_Tx]:
    if hasattr(store, "_connect"):  # GeoPackage
        conn = store._connect()
        try:
            yield _Tx(store, conn)
        finally:
            conn.close()
    else:
        with store._cursor() as cur:
            yield _Tx(store, cur)


def rebuild(store: Any, names: Sequence[str] = tuple(SUMMARIES)) -> dict[str, int]:
    """Rebuild summaries from the whole layers (one transaction); rows per table after.

    The layers are read first with the engine's fast reader, outside the write transaction
    (on a GeoPackage, GDAL must not open the file while this process holds its write lock:
    POSIX locks are per process). Inside the transaction the newest audit row is compared
    with the one seen before the read; when a write came in between, the read is retried, and
    after three tries the rows are read inside the transaction instead.
    """
    unknown = [n for n in names if n not in SUMMARIES]
    if unknown:
        raise ValueError(f"unknown summaries: {', '.join(unknown)}; known: {', '.join(SUMMARIES)}")
    for attempt in range(4):
        before = _last_audit(store)
        marks: _Marks = {}
        if "patrol" in names and attempt < 3:
            with _reading(store) as rt:  # before the fixes: a mark added after them stays
                marks = _marks(rt, None)
        inc = fixes = None
        if attempt < 3:
            inc = _layer(store, "incidents", list(_INCIDENT_COLS)) if "incidents" in names else None
            fixes = (_layer(store, "patrol_points", ["worker_id", "time", "accuracy_m"])
                     if "patrol" in names else None)
        with _writing(store) as tx:
            if tx.dialect == "pg":  # patrol appends wait; incident writes wait (reads go on)
                tx.run("SELECT pg_advisory_xact_lock(hashtext(?))", ("gridpulse.patrol_summary",))
                if "incidents" in names and tx.exists("incidents"):
                    tx.run(f"LOCK TABLE {tx.t('incidents')} IN SHARE MODE")
            if attempt < 3 and _last_audit(store, tx) != before:
                continue  # written meanwhile: read again
            if "patrol" in names and attempt == 3:
                marks = _marks(tx, None)
            if "incidents" in names:
                _rebuild_incidents(tx, inc, stored=True)
            if "patrol" in names:
                _rebuild_patrol(tx, fixes, stored=True)
                _clear_marks(tx, marks)
            return {t: int(tx.run(f"SELECT count(*) FROM {tx.t(t)}")[0][0])
                    for n in names for t in SUMMARIES[n]}
    raise AssertionError("unreachable")  # pragma: no cover


def _last_audit(store: Any, tx: _Tx | None = None) -> Any:
    """The newest ``audit_log`` row id (every write adds one)."""
    ctx = contextlib.nullcontext(tx) if tx is not None else _reading(store)
    with ctx as t:
        if not t.exists("audit_log"):
            return None
        return t.run(f"SELECT max(fid) FROM {t.t('audit_log')}")[0][0]


def _layer(store: Any, name: str, columns: list[str]) -> pd.DataFrame | None:
    if not store.has_layer(name):
        return None
    return store.read(name, columns=columns)


def _fresh(store: Any, name: str, basis: str | None = None,
           days: Sequence[Any] | None = None) -> None:
    """Rebuild ``name`` once when it is missing or (patrol) built on other grids/workers; then
    (patrol) settle the dirty marks of ``days`` (``None``: all)."""
    with _reading(store) as tx:
        have = tx.basis(name)
    if have is None or (basis is not None and have != basis):
        rebuild(store, [name])
    if name == "patrol":
        settle(store, days)


def _select(store: Any, table: str, where: str = "", params: Sequence[Any] = (), *,
            fresh: bool = True) -> pd.DataFrame:
    """Rows of a summary table; a patrol table is brought up to date first (``fresh``)."""
    if fresh and table in SUMMARIES["patrol"]:
        _fresh(store, "patrol")
    cols = [c for c, _ in _COLUMNS[table]]
    with _reading(store) as tx:
        if not tx.exists(table):
            return pd.DataFrame({c: [] for c in cols})
        rows = tx.run(f"SELECT {', '.join(map(_q, cols))} FROM {tx.t(table)}"
                      + (f" WHERE {where}" if where else ""), params)
    df = pd.DataFrame(rows, columns=cols)
    for c, k in _COLUMNS[table]:
        if k == "float":
            df[c] = pd.to_numeric(df[c]).astype("float64")
        elif k == "int" and c not in ("first_fix", "last_fix"):
            df[c] = pd.to_numeric(df[c]).fillna(0).astype("int64")
    return df


@dataclass(frozen=True)
class PatrolFigures:
    """Patrol figures of some days, shaped as :func:`geo.patrol.time_in_grid` and
    :func:`geo.patrol.post_coverage` give them (plus ``day``), for every worker and grid."""

    per_worker: pd.DataFrame
    per_grid: pd.DataFrame
    #: ``day, worker_id, reason, fixes`` (reasons of :data:`geo.patrol.REASONS` and ``kept``).
    cleaning: pd.DataFrame


def patrol_figures(store: Any, days: Sequence[Any], *, grids: gpd.GeoDataFrame,
                   workers: pd.DataFrame, min_hours: float = MIN_HOURS,
                   check: bool = True) -> PatrolFigures:
    """Read the patrol summary for ``days`` and expand it to every worker and grid.

    ``grids`` (``code`` + polygons) and ``workers`` (``id, grid_code, post``) are the current
    layers: when they differ from those the summary was built on (or it was never built), it
    is rebuilt first (``check=False`` skips that test for a caller that just checked). The
    dirty marks of ``days`` are settled first (:func:`settle`), so the figures equal the raw
    computation.
    """
    keys = [pd.Timestamp(d).strftime("%Y-%m-%d") for d in days]
    _fresh(store, "patrol", basis_of(grids, workers) if check else None, days=keys)
    if not keys:
        keys = ["-"]
    marks = ", ".join("?" * len(keys))
    sw = _select(store, PATROL_WORKER, f"day IN ({marks})", keys, fresh=False)
    sg = _select(store, PATROL_GRID, f"day IN ({marks})", keys, fresh=False)
    pw, pg, cl = [], [], []
    for key in keys:
        if key == "-":
            continue
        pw.append(_expand_workers(sw[sw["day"] == key], grids, workers, key, min_hours))
        pg.append(_expand_grids(sg[sg["day"] == key], grids, workers, key))
        s = sw[sw["day"] == key]
        long = s.melt(id_vars=["worker_id"], value_vars=list(_REASON_COLS), var_name="reason",
                      value_name="fixes")
        long["reason"] = long["reason"].str.removeprefix("n_")
        cl.append(long.assign(day=pd.Timestamp(key))[["day", "worker_id", "reason", "fixes"]])
    def cat(frames: list[pd.DataFrame], cols: list[str]) -> pd.DataFrame:
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)

    return PatrolFigures(cat(pw, ["day", "worker_id"]), cat(pg, ["day", "grid_code"]),
                         cat(cl, ["day", "worker_id", "reason", "fixes"]))


def _expand_workers(s: pd.DataFrame, grids: pd.DataFrame, workers: pd.DataFrame, key: str,
                    min_hours: float) -> pd.DataFrame:
    wid = workers["id"].astype(str).to_numpy()
    s = s.set_index("worker_id").reindex(wid)
    has = ~s["day"].isna().to_numpy()
    has_grid = workers["grid_code"].astype(str).isin(set(grids["code"].astype(str))).to_numpy()
    hours = np.where(has, s["hours_in_grid"].to_numpy(float), np.where(has_grid, 0.0, np.nan))
    post = workers["post"] if "post" in workers.columns else pd.Series(None, index=workers.index)

    def times(col: str) -> np.ndarray:
        v = pd.to_numeric(s[col]).to_numpy(dtype="float64")
        out = np.full(len(v), np.iinfo(np.int64).min, dtype=np.int64)
        ok = ~np.isnan(v)
        out[ok] = s[col].to_numpy(dtype=object)[ok].astype(np.int64)
        return out.view("datetime64[ns]")

    return pd.DataFrame({
        "worker_id": wid,
        "grid_code": workers["grid_code"].astype(str).to_numpy(),
        "post": post.to_numpy(),
        "hours_in_grid": hours,
        "hours_tracked": np.where(has, s["hours_tracked"].to_numpy(float), 0.0),
        "meets_rule": has_grid & (np.nan_to_num(hours) >= min_hours - 1e-9),
        "distance_km": np.where(has, s["distance_km"].to_numpy(float), 0.0),
        "first_fix": times("first_fix"),
        "last_fix": times("last_fix"),
        "n_fixes": np.where(has, pd.to_numeric(s["n_fixes"]).fillna(0).to_numpy(), 0).astype(np.int64),
        "day": pd.Timestamp(key),
    }, index=workers.index)


def _expand_grids(s: pd.DataFrame, grids: pd.DataFrame, workers: pd.DataFrame,
                  key: str) -> pd.DataFrame:
    codes = grids["code"].astype(str).to_numpy()
    s = s.set_index("grid_code").reindex(codes)
    assigned = workers["grid_code"].astype(str).value_counts().reindex(codes).fillna(0)
    cols: dict[str, Any] = {"grid_code": codes, "workers": assigned.to_numpy().astype(np.int64),
                            "workers_seen": s["workers_seen"].fillna(0).to_numpy().astype(np.int64)}
    for c in ("covered_h", "a_h", "b_h"):
        cols[c] = s[c].fillna(0.0).to_numpy(float)
    cols["hours_with_presence"] = s["hours_with_presence"].fillna(0).to_numpy().astype(np.int64)
    for h in _HOURS:  # one frame built at once (not 24 column inserts)
        cols[h] = s[h].fillna(0.0).to_numpy(float)
    cols["day"] = pd.Timestamp(key)
    return pd.DataFrame(cols, index=grids.index)


def raw_patrol_day(store: Any, day: Any, *, grids: gpd.GeoDataFrame,
                   workers: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The same rows as the summary holds for ``day``, recomputed from the raw fixes
    (one ``between`` read of the day's window): the reference the summary must equal."""
    lo, hi = day_window(pd.Timestamp(day))
    if not store.has_layer("patrol_points"):
        return compute_patrol_day(_fix_frame(pd.DataFrame({"worker_id": [], "time": [],
                                                           "accuracy_m": [], "geometry": []})),
                                  grids, workers, pd.Timestamp(day))
    fixes = store.read("patrol_points", columns=["worker_id", "time", "accuracy_m"],
                       between={"time": (lo.to_pydatetime(), hi.to_pydatetime())})
    return compute_patrol_day(_fix_frame(fixes), grids, workers, pd.Timestamp(day))


def patrol_days(store: Any) -> list[pd.Timestamp]:
    """Days the patrol summary has rows for (newest last)."""
    _fresh(store, "patrol")
    with _reading(store) as tx:
        rows = tx.run(f"SELECT DISTINCT day FROM {tx.t(PATROL_WORKER)} ORDER BY day")
    return [pd.Timestamp(r[0]) for r in rows]


def incident_cells(store: Any, *, weeks: Sequence[str] | None = None) -> pd.DataFrame:
    """``cell, category_code, week, n`` (cells at :data:`CELL_RES`), optionally some weeks."""
    _fresh(store, "incidents")
    if weeks is None:
        return _select(store, INCIDENT_CELLS)
    weeks = list(weeks) or ["-"]
    return _select(store, INCIDENT_CELLS, f"week IN ({', '.join('?' * len(weeks))})", weeks)


def cell_counts(store: Any, *, weeks: tuple[str | None, str | None] | None = None,
                categories: Sequence[str] = ()) -> pd.DataFrame:
    """Incidents per H3 cell at :data:`CELL_RES` (``cell, count``, by cell), summed in the engine.

    ``weeks=(first, last)`` keeps the ISO weeks whose Monday (``YYYY-MM-DD``) is in
    ``[first, last]`` (either ``None``: open), i.e. the cases received in
    ``[first, last + 7 days)``; ``None`` keeps every row, cases without a receipt time too.
    ``categories`` keeps those category codes (empty: all). Cell ``0`` (no location) is left
    out, as :meth:`layers.store.Store.h3_counts` leaves it out.
    """
    _fresh(store, "incidents")
    cond, params = ["cell <> 0"], []
    if weeks is not None:
        cond.append("week <> ''")
        if weeks[0] is not None:
            cond.append("week >= ?")
            params.append(weeks[0])
        if weeks[1] is not None:
            cond.append("week <= ?")
            params.append(weeks[1])
    if categories:
        cond.append(f"category_code IN ({', '.join('?' * len(categories))})")
        params.extend(categories)
    with _reading(store) as tx:
        if not tx.exists(INCIDENT_CELLS):
            rows = []
        else:
            rows = tx.run(f"SELECT cell, sum(n) FROM {tx.t(INCIDENT_CELLS)} WHERE {' AND '.join(cond)} "
                          "GROUP BY cell HAVING sum(n) <> 0 ORDER BY cell", tuple(params))
    df = pd.DataFrame(rows, columns=["cell", "count"])
    return df.astype({"cell": "int64", "count": "int64"})


def grid_open(store: Any, *, now: Any) -> pd.DataFrame:
    """Per grid: ``open`` cases and ``overdue`` ones at ``now`` (due before ``now``)."""
    _fresh(store, "incidents")
    ts = pd.Timestamp(now)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("Asia/Shanghai").tz_localize(None)
    now_us = int(ts.value // 1000)  # Timestamp.value is nanoseconds
    with _reading(store) as tx:
        rows = tx.run(f"SELECT grid_code, sum(n), sum(CASE WHEN due < ? THEN n ELSE 0 END) "
                      f"FROM {tx.t(GRID_OPEN)} GROUP BY grid_code ORDER BY grid_code", (now_us,))
    df = pd.DataFrame(rows, columns=["grid_code", "open", "overdue"])
    df["open"] = pd.to_numeric(df["open"]).astype("int64")
    df["overdue"] = pd.to_numeric(df["overdue"]).astype("int64")
    return df


__all__ = [
    "CELL_RES", "GRID_OPEN", "INCIDENT_CELLS", "MARGIN", "META", "NO_DUE", "PATROL_GRID",
    "PATROL_DIRTY", "PATROL_WORKER", "PatrolFigures", "RULES", "SUMMARIES", "TABLES", "after_write", "basis_of",
    "before_apply", "cell_counts", "compute_patrol_day", "day_window", "days_touched", "grid_open",
    "incident_cells", "incident_contributions", "patrol_days", "patrol_figures",
    "raw_patrol_day", "rebuild", "settle", "week_of",
]
