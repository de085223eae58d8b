"""Event notes: the action's options recorded as ``[key=value ...]`` before the free text."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_NOTE_RE = re.compile(r"^\[((?:\w+=\S+ ?)+)\] ?")


def format_note(options: Mapping[str, Any], note: str) -> str:
    opts = " ".join(f"{k}={options[k]}" for k in sorted(options) if options[k] is not None)
    text = note.strip()
    return f"[{opts}] {text}".strip() if opts else text


def parse_note(note: str | None) -> tuple[dict[str, str], str]:
    """Split an event note into its ``[key=value ...]`` options and the free text.

    >>> parse_note("[department=housing kind=work] needs three departments")
    ({'department': 'housing', 'kind': 'work'}, 'needs three departments')
    """
    if not note:
        return {}, ""
    m = _NOTE_RE.match(note)
    if not m:
        return {}, note
    opts = dict(p.split("=", 1) for p in m.group(1).split())
    return opts, note[m.end():]


__all__ = ["format_note", "parse_note"]
