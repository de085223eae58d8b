"""The Store interface and the values it takes: a leaf module (imports no other store module).

:mod:`layers.store` re-exports everything here with :func:`~layers.store.open_store`; the
engines (:mod:`layers._gpkg`, :mod:`layers._postgis`) implement :class:`Store` through the
template in :mod:`layers._engine`. See :mod:`layers.store` for the contract every engine keeps.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

WriteMode = Literal["replace", "append"]
#: Column filters: ``{"stage": "handling"}``, ``{"category_code": ["01", "02"]}``, or on
#: several columns together ``{("category_code", "h3_9"): [("01", cell), ...]}``.
Where = Mapping[str | tuple[str, ...], Any]
#: Half-open time ranges: ``{"requested_datetime": (start, end)}`` (either end may be ``None``).
Between = Mapping[str, tuple[Any, Any]]


@dataclass(frozen=True)
class RowUpdate:
    """Set ``changes`` on the rows of ``layer`` whose key is in ``keys``.

    Parameters
    ----------
    layer
        A canonical layer name (not an append-only one).
    keys
        Values of the layer's key column (``SCHEMAS[layer].key``); every one must exist,
        otherwise the whole :meth:`Store.apply` fails and nothing changes.
    changes
        ``{column: new value}``; schema columns only, never the key, geometry or ``h3_*``.
        May be empty when ``expect`` is given (a pure check that still locks the rows).
    expect
        Compare-and-set: ``{column: value read before}``. The update is made only on rows
        that still hold these values (``None`` matches an empty cell; datetimes compare to
        the millisecond), in the same transaction as the rest of :meth:`Store.apply`. If any
        of ``keys`` no longer matches, :class:`~layers.errors.ConcurrentChangeError` is
        raised and nothing at all changes.

    Examples
    --------
    >>> RowUpdate("incidents", ["SR1"], {"stage": "dispatched"}).layer
    'incidents'
    >>> RowUpdate("incidents", ["SR1"], {"stage": "dispatched"}, expect={"stage": "collected"}).expect
    {'stage': 'collected'}
    """

    layer: str
    keys: Sequence[Any]
    changes: Mapping[str, Any]
    expect: Mapping[str, Any] = field(default_factory=dict)


class Store(ABC):
    """What every storage engine offers."""

    url: str

    @abstractmethod
    def layer_names(self) -> list[str]:
        """Names of the layers present (canonical layer names only, no internal tables)."""

    def has_layer(self, name: str) -> bool:
        """True when the layer exists (possibly empty)."""
        return name in self.layer_names()

    @abstractmethod
    def count(self, name: str, *, where: Where | None = None, between: Between | None = None) -> int:
        """Number of rows of a layer matching the filters (0 if the layer is absent)."""

    @abstractmethod
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
        """Read a layer: a GeoDataFrame (EPSG:4326) for spatial layers, a DataFrame otherwise.

        Columns have the schema's dtypes; datetimes are timezone-naive local time (Asia/Shanghai).
        """

    @abstractmethod
    def write(
        self,
        layers: Mapping[str, pd.DataFrame],
        *,
        mode: WriteMode = "replace",
        actor: str = "system",
        note: str = "",
        reset: bool = False,
        records: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    ) -> None:
        """Write several layers in one transaction (all or nothing), computing H3 columns.

        ``records`` (``{record table: [rows]}``, :mod:`layers._records`) are inserted in the
        same transaction; a key that exists already fails the whole write with
        :class:`~layers.errors.StoreError` (``constraint``) -- the intake API's idempotency
        keys are written with the cases they created this way.

        ``reset=True`` (only with ``mode="replace"``) makes the written layers the store's
        whole content: every other layer is dropped and append-only layers may be replaced,
        in the same transaction, audited as one ``reset`` row (layer ``*``) before the
        per-layer rows. Meant for refilling a store that holds only demo data.
        """

    @abstractmethod
    def h3_counts(
        self,
        name: str,
        *,
        res: int,
        where: Where | None = None,
        between: Between | None = None,
        by: Sequence[str] = (),
    ) -> pd.DataFrame:
        """``SELECT h3_<res> AS cell, <by...>, count(*) AS count ... GROUP BY`` in the engine."""

    @abstractmethod
    def audit_log(self, *, limit: int | None = None) -> pd.DataFrame:
        """The audit trail, newest first: ``time, actor, action, layer, rows, note``."""

    # -- row updates and the event log (workflow transitions) ------------------------------

    @abstractmethod
    def apply(
        self,
        updates: Sequence[RowUpdate] = (),
        *,
        events: pd.DataFrame | None = None,
        actor: str = "system",
        note: str = "",
    ) -> int:
        """Apply row updates and append ``incident_events`` rows in ONE transaction.

        A workflow transition is ``apply([RowUpdate("incidents", [id], {"stage": "dispatched",
        "updated_datetime": now})], events=<one event row>)``: the stage changes and its event is
        logged together, or neither happens. Every key must exist, every event id must be new and
        every event's ``service_request_id`` must exist in ``incidents``; otherwise
        :class:`~layers.errors.StoreError` is raised and nothing changes. One ``audit_log`` row is
        appended per updated layer and one for the events. Returns the number of rows updated.

        A :class:`RowUpdate` with ``expect`` is a compare-and-set: when another writer changed
        one of its rows since it was read, :class:`~layers.errors.ConcurrentChangeError` (a
        ``StoreError``) is raised and nothing changes — not the other updates, not the events.
        """

    def update_rows(
        self,
        layer: str,
        key_values: Sequence[Any],
        changes: Mapping[str, Any],
        *,
        events: pd.DataFrame | None = None,
        actor: str = "system",
        note: str = "",
    ) -> int:
        """Set ``changes`` on the rows whose key is in ``key_values`` (see :meth:`apply`)."""
        return self.apply([RowUpdate(layer, list(key_values), dict(changes))],
                          events=events, actor=actor, note=note)

    def append_events(self, events: pd.DataFrame, *, actor: str = "system", note: str = "") -> int:
        """Append rows to the append-only ``incident_events`` log; returns the number appended."""
        self.apply((), events=events, actor=actor, note=note)
        return len(events)

    @abstractmethod
    def record(self, action: str, layer: str, *, rows: int = 0, actor: str = "system",
               note: str = "") -> None:
        """Append an ``audit_log`` row for an action outside the store's own writes.

        For example an export of unmasked personal data (``action="export_unmasked"``).
        """

    # -- versions of a layer (the re-partition planner) --------------------------------------

    @abstractmethod
    def save_version(self, layer: str, data: pd.DataFrame, *, actor: str = "system",
                     note: str = "") -> int:
        """Store ``data`` as a new version of ``layer`` AND make it the live layer (atomically).

        Returns the new version number (1, 2, ...).
        """

    @abstractmethod
    def versions(self, layer: str) -> pd.DataFrame:
        """Saved versions, oldest first: ``version, time, actor, note, rows, current, source_version``.

        ``current`` is True for the version that is live (False for all once a plain
        :meth:`write` replaced the layer); ``source_version`` is set on versions made by
        :meth:`rollback`.
        """

    @abstractmethod
    def read_version(self, layer: str, version: int) -> pd.DataFrame:
        """The snapshot stored as ``version`` of ``layer`` (same dtypes as :meth:`read`)."""

    @abstractmethod
    def rollback(self, layer: str, version: int, *, actor: str = "system", note: str = "") -> int:
        """Make ``version`` live again by saving a copy of it as a new version; returns that number."""

    # -- keyed record tables beside the layers (accounts, sessions) --------------------------

    @abstractmethod
    def records(self, table: str, *, where: Where | None = None) -> list[dict[str, Any]]:
        """Rows of a record table (:data:`layers._records.RECORD_TABLES`) matching ``where``.

        ``where`` is ``{column: value}`` (equality; ``None`` matches NULL). Rows come back
        as dicts of Python values, in key order; an absent table has no rows.
        """

    @abstractmethod
    def put_record(self, table: str, row: Mapping[str, Any], *,
                   audit: Mapping[str, Any] | None = None) -> None:
        """Insert ``row`` into a record table, replacing the row with the same key.

        ``audit`` (``action, layer, rows, actor, note``) is appended to ``audit_log`` in the
        same transaction.
        """

    @abstractmethod
    def insert_record(self, table: str, row: Mapping[str, Any]) -> bool:
        """Insert ``row`` into a record table unless a row with its key exists.

        Returns True when inserted, False when the key was taken (nothing changed): a
        claim that two processes cannot both win (idempotency keys of the intake API).
        """

    @abstractmethod
    def update_records(self, table: str, where: Where, changes: Mapping[str, Any], *,
                       audit: Mapping[str, Any] | None = None) -> int:
        """Set ``changes`` on the rows matching ``where`` (a compare-and-set when ``where``
        names the old values); returns the number of rows changed."""

    @abstractmethod
    def delete_records(self, table: str, where: Where | None = None, *,
                       audit: Mapping[str, Any] | None = None) -> int:
        """Delete the rows matching ``where``; returns how many were deleted."""

    def close(self) -> None:  # noqa: B027 - optional for engines
        """Release connections."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
