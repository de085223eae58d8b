"""Shared plumbing of :mod:`layers.validate`: where issues go, row numbers, masking.

Private: use :func:`layers.validate.validate`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from layers.report import Report, Severity
from layers.schema import Field

#: At most this many rows are listed one by one per rule and column; the rest are counted.
ROW_CAP: int = 50
#: Longest value echoed in a message (longer values are cut with "…").
VALUE_CHARS: int = 40


@dataclass
class Ctx:
    """Where issues of one layer go: the report, the file name and the row offset."""

    report: Report
    layer: str
    file: str | None
    row_offset: int
    cap: int = ROW_CAP

    def row(self, pos: int) -> int:
        """Row number the user sees for 0-based position ``pos``."""
        return int(pos) + self.row_offset

    def add(self, severity: Severity, code: str, *, row_pos: int | None = None,
            column: str | None = None, **params: Any) -> None:
        """Add one issue (``row_pos`` is a 0-based position, or ``None`` for the whole layer)."""
        self.report.add(
            severity, code, file=self.file,
            row=None if row_pos is None else self.row(row_pos), column=column,
            layer=self.layer, **params,
        )

    def per_row(
        self,
        severity: Severity,
        code: str,
        positions: Iterable[int] | np.ndarray,
        *,
        column: str | None = None,
        params: Callable[[int], dict[str, Any]] | dict[str, Any] | None = None,
    ) -> int:
        """One issue per row for the first :attr:`cap` positions, then one summary.

        Returns the number of rows affected.
        """
        pos = np.unique(np.asarray(list(positions) if not isinstance(positions, np.ndarray)
                                   else positions, dtype=np.int64))
        for p in pos[: self.cap]:
            extra = params(int(p)) if callable(params) else (params or {})
            self.add(severity, code, row_pos=int(p), column=column, **extra)
        if len(pos) > self.cap:
            self.add(severity, "validation.more_rows", column=column, count=int(len(pos) - self.cap),
                     rule=code, last_row=self.row(int(pos[-1])))
        return int(len(pos))


def shown(value: Any, field: Field | None = None) -> str:
    """A value as echoed in a message: cut to :data:`VALUE_CHARS`, masked if personal.

    Examples
    --------
    >>> from layers.schema import SCHEMAS
    >>> shown("13812345678", SCHEMAS["workers"].field("phone"))
    '1*********8'
    >>> shown("320106")
    '320106'
    """
    text = str(value)
    if field is not None and field.personal:
        return mask(text)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"


def mask(text: str) -> str:
    """Keep the first and last character, star the rest (``张三`` -> ``张*``)."""
    if len(text) <= 2:
        return text[:1] + "*"
    return text[0] + "*" * (len(text) - 2) + text[-1]


def header(field: Field) -> str:
    """The header people write in files for ``field``: its first Chinese alias, else its name."""
    for a in field.aliases:
        if any("\u4e00" <= ch <= "\u9fff" for ch in a):
            return a
    return field.name
