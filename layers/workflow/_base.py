"""Shared pieces of the workflow package: the refusal error, labels, and value helpers.

:class:`IllegalTransitionError` carries a catalogue key (``incidents.workflow.*``) and its
parameters; :func:`label` names a stage / action / role / whistle / reason code in a language.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from geo.domain import LOCAL_TZ
from layers.errors import GridPulseError
from layers.i18n import catalogue, normalize_lang, t

_MSG = "incidents.workflow."


class IllegalTransitionError(GridPulseError, ValueError):
    """A transition was refused; nothing changed.

    ``key`` is the catalogue key (``incidents.workflow.*``), ``params`` its placeholders.
    ``str(error)`` is the English text; :meth:`message` and :meth:`fix` render any language.
    """

    def _rendered(self, lang: str | None) -> dict[str, Any]:
        out = dict(self.params)
        for name, area in (("action", "action"), ("stage", "stage"), ("role", "role"),
                           ("target", "stage"), ("previous", "stage"),
                           ("kind", "whistle"), ("current", "whistle")):
            if isinstance(out.get(name), str):
                out[name] = label(area, out[name], lang)
        for name, area in (("roles", "role"), ("stages", "stage"), ("actions", "action")):
            if isinstance(out.get(name), str):
                sep = "、" if normalize_lang(lang) == "zh" else ", "
                out[name] = sep.join(label(area, x.strip(), lang) for x in out[name].split(","))
        return out


def label(area: str, code: str, lang: str | None = None) -> str:
    """Human name of a stage / action / role / whistle / reason code, e.g. ``label("stage", "closed")``."""
    key = f"incidents.{area}.{code}"
    return t(key, lang) if key in catalogue() else code



def to_local(x: Any) -> pd.Timestamp:
    """A timestamp as naive local time (aware values are converted to :data:`geo.domain.LOCAL_TZ`)."""
    ts = pd.Timestamp(x)
    if ts.tzinfo is not None:
        ts = ts.tz_convert(LOCAL_TZ).tz_localize(None)
    return ts


def isna(v: Any) -> bool:
    """True for ``None``, NaN, NaT and ``pd.NA`` (never for a string)."""
    return v is None or (not isinstance(v, str) and bool(pd.isna(v)))


def stage_of(inc: Mapping[str, Any]) -> str | None:
    """The case's stage, ``None`` for a new incident."""
    s = inc.get("stage")
    return None if isna(s) else str(s)


def whistle_of(inc: Mapping[str, Any]) -> str:
    """The case's whistle level (``none`` when missing)."""
    w = inc.get("whistle")
    return "none" if isna(w) else str(w)
