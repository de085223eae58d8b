"""The one base of the errors :mod:`geo` raises about its inputs.

Every input error of ``geo/`` subclasses :class:`GeoError`, itself a :class:`ValueError`, so
callers may catch the family (``except GeoError``), one member by name, or ``ValueError`` as
before.

``geo/`` holds no user-facing text of its own. An error that carries catalogue keys
(``problems``: a list of ``(key, params)``) renders them through the function given to
:func:`set_renderer`; :mod:`layers.i18n` installs the catalogue's English there when it is
imported (``geo/`` never imports ``layers/``), and callers that speak to users render each
``(key, params)`` in zh or en themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Renderer = Callable[[str, Mapping[str, Any]], str]
_renderer: Renderer | None = None


def set_renderer(renderer: Renderer | None) -> None:
    """Make ``renderer(key, params)`` the text of keyed errors (``None``: show keys and values)."""
    global _renderer
    _renderer = renderer


def render(key: str, params: Mapping[str, Any]) -> str:
    """The text of one ``(key, params)`` problem: the catalogue's, or the key and its values."""
    if _renderer is not None:
        return _renderer(key, params)
    values = ", ".join(f"{k}={v}" for k, v in params.items())
    return f"{key} ({values})" if values else key


class GeoError(ValueError):
    """Base of the input errors of ``geo/`` (a :class:`ValueError`)."""
