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


class ConfigError(GridPulseError, ValueError):
    """An unknown or invalid configuration key or value."""
