"""The store: one interface, two engines (GeoPackage file, PostGIS), chosen by one setting.

``open_store(url)`` returns a :class:`Store`. ``url`` is ``GRIDPULSE_STORE``: a file path
(GeoPackage, the embedded default that QGIS opens) or a ``postgresql://`` URL (PostGIS).

Contract every engine keeps
---------------------------
* Layers are stored under their canonical names (:data:`layers.schema.SCHEMAS`), geometry in
  EPSG:4326. Point layers get ``h3_7`` .. ``h3_10`` int64 columns computed at write time.
* :meth:`Store.write` is atomic across all the layers it is given: if anything fails part-way,
  the store is exactly as it was before the call.
* Every write appends a row to the ``audit_log`` table (who, when, what, why).
* ``incident_events`` is append-only.
* :meth:`Store.apply` updates rows and appends events in ONE transaction (workflow transitions);
  a :class:`RowUpdate` with ``expect`` is a compare-and-set, refused with
  :class:`~layers.errors.ConcurrentChangeError` when another writer changed the row first.
* Versioned layers (the planner's grid drafts): :meth:`Store.save_version` stores a snapshot
  and makes it the live layer in one transaction; :meth:`Store.rollback` makes an old snapshot
  live again by saving it as a new version (history is never rewritten).
* Keyed record tables beside the layers (``gp_accounts``, ``gp_sessions``;
  :mod:`layers._records`): :meth:`Store.records`, :meth:`Store.put_record`,
  :meth:`Store.update_records`, :meth:`Store.delete_records`, each one transaction with an
  optional audit row. They survive a ``reset`` write (people outlive the demo data).

Where things live (arrows run one way: ``store`` -> engines -> ``_engine`` -> ``_store_api``)
---------------------------------------------------------------------------------------------
* :mod:`layers._store_api` -- :class:`Store`, :class:`RowUpdate`, ``Where``, ``Between``,
  ``WriteMode`` (a leaf; re-exported here).
* :mod:`layers._engine` -- write / apply / versions / records ONCE, as template methods over
  a handful of engine primitives (transaction, exists, replace/append a layer, execute, fetch).
* :mod:`layers._store_common` -- what is stored: schema coercion, H3 columns, filters, audit
  rows, snapshots; :mod:`layers._store_rules` -- what a write or update may do.
* :mod:`layers._gpkg` (GeoPackage file) and :mod:`layers._postgis` (PostGIS): the primitives
  and each engine's own fast read path.
"""

from __future__ import annotations

from layers._store_api import Between, RowUpdate, Store, Where, WriteMode

__all__ = ["Between", "RowUpdate", "Store", "Where", "WriteMode", "open_store"]

def open_store(url: str | None = None) -> Store:
    """Open the store at ``url`` (default: the ``GRIDPULSE_STORE`` setting)."""
    from layers.config import settings

    url = url or settings().store_url
    if url.startswith(("postgresql://", "postgres://")):
        from layers._postgis import PostGISStore

        return PostGISStore(url)
    from layers._gpkg import GeoPackageStore

    return GeoPackageStore(url)
