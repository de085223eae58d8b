"""The one translation catalogue: Chinese (zh-CN) first, English second.

Messages live in ``layers/messages/*.toml``, one file per area, merged here into a
single catalogue; a key defined twice is an error. Each entry has ``zh`` and ``en``
strings with the same ``{placeholders}``.

Examples
--------
>>> t("common.yes", "zh"), t("common.yes", "en")
('是', 'yes')
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from geo import _errors as _geo_errors

LANGS: tuple[str, ...] = ("zh", "en")
_DIR = Path(__file__).resolve().parent / "messages"


@cache
def catalogue() -> dict[str, dict[str, str]]:
    """Return the merged catalogue ``{key: {"zh": ..., "en": ...}}``."""
    merged: dict[str, dict[str, str]] = {}
    origin: dict[str, str] = {}
    for path in sorted(_DIR.glob("*.toml")):
        with path.open("rb") as fh:
            data = tomllib.load(fh)
        for key, entry in _flatten(data):
            if key in merged:
                raise RuntimeError(f"message key {key!r} defined in {origin[key]} and {path.name}")
            merged[key] = entry
            origin[key] = path.name
    return merged


def _flatten(data: dict, prefix: str = "") -> list[tuple[str, dict[str, str]]]:
    out: list[tuple[str, dict[str, str]]] = []
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and "zh" in v and isinstance(v["zh"], str):
            out.append((key, v))
        elif isinstance(v, dict):
            out.extend(_flatten(v, key + "."))
    return out


def default_lang() -> str:
    """The user's language from the environment: ``GRIDPULSE_LANG``, else the locale; zh when unset."""
    explicit = os.environ.get("GRIDPULSE_LANG", "").strip().lower()
    if explicit:
        return normalize_lang(explicit)
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        val = os.environ.get(var, "").lower()
        if val.startswith("en"):
            return "en"
        if val.startswith("zh"):
            return "zh"
    return "zh"


def normalize_lang(lang: str | None) -> str:
    """Map ``zh-CN``, ``zh_CN.UTF-8``, ``en-US``... to ``zh`` or ``en`` (``zh`` if unknown)."""
    if not lang:
        return default_lang()
    return "en" if lang.lower().startswith("en") else "zh"


def t(key: str, lang: str | None = None, /, **params: object) -> str:
    """Translate ``key`` into ``lang`` (default: the environment's), filling ``params``.

    An unknown key returns the key itself, so a missing message is visible, not fatal.
    """
    entry = catalogue().get(key)
    if entry is None:
        return key
    text = entry.get(normalize_lang(lang)) or entry["zh"]
    try:
        return text.format(**params)
    except (KeyError, IndexError, ValueError):
        return text


def _geo_error_text(key: str, params: Mapping[str, Any]) -> str:
    """English text of a ``geo/`` error's problem (its ``str``; users get zh or en from ``t``)."""
    return t(key, "en", **params)


_geo_errors.set_renderer(_geo_error_text)
