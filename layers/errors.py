"""The exception family of ``layers``: one base, one way to carry a catalogue key.

Every GridPulse error is a :class:`GridPulseError` (each also subclasses a built-in, so
``except ValueError`` keeps working). It carries a catalogue ``key``
(``layers/messages/*.toml``) and the ``params`` of its placeholders, and renders them in
any language: :meth:`~GridPulseError.message` and :meth:`~GridPulseError.fix` (the
``<key>.fix`` text, ``None`` when the catalogue has none). ``str(error)`` is the English
message. A subclass that shows a value in the reader's language (a role's name, a stage's
label) overrides :meth:`~GridPulseError._rendered`; one that carries a whole
:class:`~layers.report.Report` of problems renders the report (:class:`ReportError`).

Examples
--------
>>> err = StoreError("store.unknown_version", layer="grids", version=7)
>>> err.key, err.params["version"], isinstance(err, RuntimeError)
('store.unknown_version', 7, True)
>>> err.message("en") == str(err)
True
>>> error_text(ValueError("plain"), "zh")
'plain'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from layers.i18n import catalogue, t

if TYPE_CHECKING:
    from layers.report import Report


class GridPulseError(Exception):
    """Base of every GridPulse error: a catalogue ``key`` and its ``params``.

    Parameters
    ----------
    key
        A catalogue key, e.g. ``"store.missing_keys"``.
    **params
        The values of its placeholders.
    """

    key: str
    params: dict[str, Any]

    def __init__(self, key: str, /, **params: Any) -> None:
        self.key = key
        self.params = dict(params)
        super().__init__(self.message("en"))

    def _rendered(self, lang: str | None) -> Mapping[str, Any]:
        """The params as shown in ``lang`` (as they are, unless a subclass translates some)."""
        return self.params

    def message(self, lang: str | None = None) -> str:
        """What went wrong, in ``lang``."""
        return t(self.key, lang, **self._rendered(lang))

    def fix(self, lang: str | None = None) -> str | None:
        """What to do, in ``lang`` (``None`` when the catalogue has no advice)."""
        key = f"{self.key}.fix"
        return t(key, lang, **self._rendered(lang)) if key in catalogue() else None


class ReportError(GridPulseError):
    """An error about a whole :class:`~layers.report.Report` of problems (all found at once).

    ``key``/``params`` are those of its first error; :meth:`message` renders every problem.
    """

    def __init__(self, report: Report) -> None:
        self.report = report
        first = next((i for i in report.issues if i.severity == "error"),
                     report.issues[0] if report.issues else None)
        self._first = first
        super().__init__(first.code if first else "errors.report", **(first.params if first else {}))

    def message(self, lang: str | None = None) -> str:
        """Every problem of the report, in ``lang``."""
        return self.report.render(lang)

    def fix(self, lang: str | None = None) -> str | None:
        """How to fix the first error, in ``lang``."""
        return self._first.fix(lang) if self._first is not None else None


class ReaderError(ReportError, ValueError):
    """A file could not be read at all (unknown format, corrupt, empty).

    ``report`` carries the problem as a translatable :class:`~layers.report.Issue`.
    """


class LayerValidationError(ReportError, ValueError):
    """A layer failed validation; ``report`` lists every problem found at once."""


class StoreError(GridPulseError, RuntimeError):
    """The store could not complete an operation; nothing was changed."""


class ConcurrentChangeError(StoreError):
    """A compare-and-set update found its row changed by someone else; nothing was changed.

    Raised by :meth:`layers.store.Store.apply` for a :class:`~layers.store.RowUpdate` with
    ``expect`` (a workflow transition racing another one on the same case).
    """


class ConfigError(GridPulseError, ValueError):
    """An unknown or invalid configuration key or value."""


def error_text(err: BaseException, lang: str | None) -> str:
    """The message of any exception in ``lang``: a GridPulse error's catalogue text, else ``str``."""
    if isinstance(err, GridPulseError):
        return err.message(lang)
    return str(err)
