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
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import pandas as pd

WriteMode = Literal["replace", "append"]
#: Column filters: ``{"stage": "handling"}`` or ``{"category_code": ["01", "02"]}``.
Where = Mapping[str, Any]
#: Half-open time ranges: ``{"requested_datetime": (start, end)}`` (either end may be ``None``).
Between = Mapping[str, tuple[Any, Any]]


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
    ) -> None:
        """Write several layers in one transaction (all or nothing), computing H3 columns."""

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

    def close(self) -> None:  # noqa: B027 - optional for engines
        """Release connections."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_store(url: str | None = None) -> Store:
    """Open the store at ``url`` (default: the ``GRIDPULSE_STORE`` setting)."""
    from layers.config import settings

    url = url or settings().store_url
    if url.startswith(("postgresql://", "postgres://")):
        from layers._postgis import PostGISStore

        return PostGISStore(url)
    from layers._gpkg import GeoPackageStore

    return GeoPackageStore(url)
