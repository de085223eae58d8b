"""What a reader works with: the file's limits (:class:`ReadLimits`) and its context
(:class:`ReadContext`: path, user-facing name, layer schema, report).

A leaf of the readers (:mod:`layers._io_guard` checks limits against a context,
:mod:`layers._io_common` and the format readers fill it), so that the guard and the common
helpers need not import each other.

Examples
--------
>>> ReadLimits().max_file_bytes // MB
200
>>> ReadContext("a.csv", "a.csv", None).layer is None
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

from layers.errors import ReaderError
from layers.report import Report, Severity
from layers.schema import LayerSchema

if TYPE_CHECKING:
    from layers.config import Settings

__all__ = ["MB", "ReadContext", "ReadLimits"]

MB = 1024 * 1024


@dataclass(frozen=True)
class ReadLimits:
    """The most one file may hold before a reader refuses it (sizes in bytes).

    Build it from the settings with :meth:`from_settings`; tests pass small limits to
    :func:`layers.io.read_file` directly.
    """

    max_file_bytes: int = 200 * MB
    max_rows: int = 1_000_000
    max_columns: int = 1_000
    max_cells: int = 20_000_000
    zip_max_members: int = 1_000
    zip_max_member_bytes: int = 400 * MB
    zip_max_total_bytes: int = 600 * MB
    zip_max_ratio: float = 200.0
    zip_ratio_grace_bytes: int = 10 * MB

    @classmethod
    def from_settings(cls, s: Settings | None = None) -> ReadLimits:
        """Limits from ``GRIDPULSE_MAX_UPLOAD_MB`` and ``GRIDPULSE_MAX_ROWS``."""
        from layers.config import settings

        s = s or settings()
        file_bytes = s.max_upload_mb * MB
        return cls(max_file_bytes=file_bytes, max_rows=s.max_rows,
                   zip_max_member_bytes=2 * file_bytes, zip_max_total_bytes=3 * file_bytes)



@dataclass
class ReadContext:
    """What every reader needs: where the file is, what the user calls it, the layer, the report."""

    path: Any
    source: str
    schema: LayerSchema | None
    encoding: str | None = None
    sheet: str | int | None = None
    report: Report = field(default_factory=Report)
    #: Tables only: type text cells that are numbers as numbers (CSV yes; XLSX cells carry types).
    numbers_from_text: bool = True
    #: What one file may hold (size, rows, zip members...).
    limits: ReadLimits = field(default_factory=ReadLimits)

    @property
    def layer(self) -> str | None:
        return self.schema.name if self.schema is not None else None

    def note(self, severity: Severity, code: str, *, row: int | None = None,
             column: str | None = None, **params: Any) -> None:
        """Add an issue about this file to the report."""
        self.report.add(severity, code, file=self.source, row=row, column=column, **params)

    def fail(self, code: str, *, column: str | None = None, **params: Any) -> NoReturn:
        """Raise :class:`ReaderError` with one error about this file (plus the notes so far)."""
        self.report.add("error", code, file=self.source, column=column, **params)
        raise ReaderError(self.report)
