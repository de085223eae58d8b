"""The exception family of ``layers``: each also subclasses a built-in."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from layers.report import Report


class GridPulseError(Exception):
    """Base of every GridPulse error."""


class ReaderError(GridPulseError, ValueError):
    """A file could not be read at all (unknown format, corrupt, empty).

    ``report`` carries the problem as a translatable :class:`~layers.report.Issue`.
    """

    def __init__(self, report: Report) -> None:
        self.report = report
        super().__init__(report.render("en"))


class LayerValidationError(GridPulseError, ValueError):
    """A layer failed validation; ``report`` lists every problem found at once."""

    def __init__(self, report: Report) -> None:
        self.report = report
        super().__init__(report.render("en"))


class StoreError(GridPulseError, RuntimeError):
    """The store could not complete an operation; nothing was changed."""


class ConcurrentChangeError(StoreError):
    """A compare-and-set update found its row changed by someone else; nothing was changed.

    Raised by :meth:`layers.store.Store.apply` for a :class:`~layers.store.RowUpdate` with
    ``expect`` (a workflow transition racing another one on the same case). ``key`` and
    ``params`` render it in any language: ``t(err.key, lang, **err.params)``.
    """

    def __init__(self, key: str, **params: object) -> None:
        from layers.i18n import t

        self.key = key
        self.params = params
        super().__init__(t(key, "en", **params))


class ConfigError(GridPulseError, ValueError):
    """An unknown or invalid configuration key or value."""
