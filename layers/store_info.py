"""A light summary of a GeoPackage store for ``gridpulse info``: layers, row counts, audit log.

:mod:`layers.store` and its engines import pandas, pyogrio and shapely (about a second
before anything happens). ``info`` only needs a few SQL counts, so for a GeoPackage file
that already exists it reads them here with :mod:`sqlite3` alone, opened read-only (the
file is neither created nor changed). Anything this module cannot read the simple way
(a PostGIS URL, a missing file, a file that is not a GridPulse GeoPackage) returns
``None`` and the caller uses :func:`layers.store.open_store`, which reports the problem.

The figures are the ones the :class:`layers.store.Store` methods give: ``layer_names``,
``count`` and ``audit_log`` (times as naive Asia/Shanghai wall-clock time).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from geo.domain import LOCAL_TZ
from layers.schema import SCHEMAS

_AUDIT_TABLE = "audit_log"
_LOCAL_TZ = ZoneInfo(LOCAL_TZ)


@dataclass(frozen=True)
class AuditEntry:
    """One ``audit_log`` row (``time`` naive local time, like ``Store.audit_log``)."""

    time: datetime
    actor: str
    action: str
    layer: str
    rows: int
    note: str


@dataclass(frozen=True)
class StoreSummary:
    """What ``gridpulse info`` prints: the store, its layers with row counts, recent audit rows."""

    url: str
    layers: tuple[tuple[str, int], ...]
    recent: tuple[AuditEntry, ...]


def _local_naive(value: object) -> datetime:
    ts = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if ts.tzinfo is not None:
        ts = ts.astimezone(_LOCAL_TZ).replace(tzinfo=None)
    return ts


def gpkg_summary(url: str, *, limit: int = 10) -> StoreSummary | None:
    """Summarise the GeoPackage at ``url`` without pandas, or ``None`` to use the full store.

    Parameters
    ----------
    url
        A GeoPackage path (``gpkg://`` and ``file://`` prefixes allowed).
    limit
        Audit rows returned, newest first.

    Returns
    -------
    StoreSummary or None
        ``None`` for PostGIS URLs, missing files and files that are not a GridPulse
        GeoPackage (no ``gpkg_contents`` or ``audit_log`` table).
    """
    if url.startswith(("postgresql://", "postgres://")):
        return None
    text = url
    for prefix in ("gpkg://", "file://"):
        text = text.removeprefix(prefix)
    path = Path(text).expanduser().resolve()
    if not path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=60.0)
    except sqlite3.Error:
        return None
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"gpkg_contents", _AUDIT_TABLE} <= tables:
            return None
        contents = {r[0] for r in conn.execute("SELECT table_name FROM gpkg_contents")}
        layers = tuple(
            (name, int(conn.execute(f'SELECT count(*) FROM main."{name}"').fetchone()[0])
             if name in tables else 0)
            for name in SCHEMAS if name in contents
        )
        rows = conn.execute(
            f"SELECT time, actor, action, layer, rows, note FROM {_AUDIT_TABLE} "
            f"ORDER BY fid DESC LIMIT {int(limit)}").fetchall()
    except (sqlite3.Error, ValueError):
        return None
    finally:
        conn.close()
    recent = tuple(
        AuditEntry(_local_naive(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4] or 0), str(r[5] or ""))
        for r in rows
    )
    return StoreSummary(str(path), layers, recent)
