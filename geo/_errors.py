"""The one base of the errors :mod:`geo` raises about its inputs.

Every input error of ``geo/`` subclasses :class:`GeoError`, itself a :class:`ValueError`, so
callers may catch the family (``except GeoError``), one member by name, or ``ValueError`` as
before. ``geo/`` holds no user-facing text of its own: an error that carries catalogue keys
(``problems``, a list of ``(key, params)``) is rendered in zh or en by :mod:`layers.i18n`.
"""

from __future__ import annotations


class GeoError(ValueError):
    """Base of the input errors of ``geo/`` (a :class:`ValueError`)."""
