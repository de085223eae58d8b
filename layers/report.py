"""Validation reports: every problem at once, with where it is and how to fix it.

An :class:`Issue` stores a message *key* and its parameters, never rendered text, so
the same report renders in Chinese or English. The catalogue holds ``<key>`` (what is
wrong) and ``<key>.fix`` (how to fix it).

Examples
--------
>>> r = Report()
>>> r.add("error", "validation.missing_column", file="a.csv", column="code")
>>> r.ok
False
>>> r.counts()
{'error': 1, 'warning': 0, 'fixed': 0, 'info': 0}
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from layers.i18n import catalogue, t

Severity = Literal["error", "warning", "fixed", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "fixed", "info")


@dataclass(frozen=True)
class Issue:
    """One problem (or one repair) found in an input.

    Parameters
    ----------
    severity
        ``error`` blocks the import; ``warning`` does not; ``fixed`` records a safe
        automatic repair (reprojection, geometry repair, datum conversion); ``info`` is a note.
    code
        Catalogue key, e.g. ``"validation.missing_column"``.
    file
        File name the problem is in, if any.
    row
        1-based row number as the user sees it (spreadsheet row, or feature number).
    column
        Column (canonical or as written in the file).
    params
        Values for the message placeholders.
    """

    severity: Severity
    code: str
    file: str | None = None
    row: int | None = None
    column: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def _params(self) -> dict[str, Any]:
        return {"file": self.file, "row": self.row, "column": self.column, **self.params}

    def message(self, lang: str | None = None) -> str:
        """What is wrong, in ``lang``."""
        return t(self.code, lang, **self._params())

    def fix(self, lang: str | None = None) -> str | None:
        """How to fix it, in ``lang`` (``None`` if the catalogue has no fix text)."""
        key = f"{self.code}.fix"
        return t(key, lang, **self._params()) if key in catalogue() else None

    def where(self, lang: str | None = None) -> str:
        """``file, row N, column C`` in ``lang``."""
        parts = []
        if self.file:
            parts.append(f"{t('common.file', lang)} {self.file}")
        if self.row is not None:
            parts.append(f"{t('common.row', lang)} {self.row}")
        if self.column:
            parts.append(f"{t('common.column', lang)} {self.column}")
        return ", ".join(parts)

    def to_dict(self, lang: str | None = None) -> dict[str, Any]:
        """A flat, JSON-ready dict (for tables and the CLI)."""
        return {
            "severity": self.severity,
            "code": self.code,
            "file": self.file,
            "row": self.row,
            "column": self.column,
            "message": self.message(lang),
            "fix": self.fix(lang),
        }


@dataclass
class Report:
    """An ordered collection of :class:`Issue`."""

    issues: list[Issue] = field(default_factory=list)

    def add(
        self,
        severity: Severity,
        code: str,
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
        **params: Any,
    ) -> None:
        """Append an issue."""
        self.issues.append(Issue(severity, code, file, row, column, params))

    def extend(self, other: Report) -> None:
        """Append every issue of ``other``."""
        self.issues.extend(other.issues)

    def __iter__(self) -> Iterator[Issue]:
        return iter(self.issues)

    def __len__(self) -> int:
        return len(self.issues)

    @property
    def ok(self) -> bool:
        """True when there is no ``error``."""
        return not any(i.severity == "error" for i in self.issues)

    def errors(self) -> list[Issue]:
        """Only the errors."""
        return [i for i in self.issues if i.severity == "error"]

    def counts(self) -> dict[str, int]:
        """Number of issues by severity."""
        return {s: sum(i.severity == s for i in self.issues) for s in SEVERITIES}

    def render(self, lang: str | None = None, *, limit: int | None = None) -> str:
        """Plain-text report, one issue per line with its fix indented below it."""
        lines: list[str] = []
        shown = self.issues if limit is None else self.issues[:limit]
        for i in shown:
            head = f"[{t('common.' + i.severity, lang)}]"
            where = i.where(lang)
            lines.append(f"{head} {where + ': ' if where else ''}{i.message(lang)}")
            fx = i.fix(lang)
            if fx:
                lines.append(f"    {t('common.fix', lang)}: {fx}")
        if limit is not None and len(self.issues) > limit:
            lines.append(f"... (+{len(self.issues) - limit})")
        return "\n".join(lines)
