"""Intake basics shared by the request, fixes and idempotency modules: limits, clock,
:class:`IntakeError`, service list, grid index, distances and field parsing.

Split out of :mod:`layers.intake`, which re-exports every public name here.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import shapely

from layers import taxonomy
from layers._io_guard import CONTROL_CHARS
from layers.errors import GridPulseError
from layers.i18n import normalize_lang
from layers.report import Issue

#: A new case is flagged as a likely duplicate of an open case of the same category this
#: close (metres) ...
DUPLICATE_RADIUS_M = 150.0
#: ... received at most this long before it (hours).
DUPLICATE_HOURS = 3.0
#: At most this many fixes in one call.
MAX_FIXES = 5000
#: ``GET requests`` returns at most this many (Open311's customary page size).
MAX_REQUESTS = 1000
#: Without dates ``GET requests`` covers this many days back (as the specification suggests).
DEFAULT_DAYS = 90

_E = "api.error."
_EARTH_M = 6_371_008.8


def now_local() -> pd.Timestamp:
    """The real clock, naive local time (Asia/Shanghai) like every time in the store."""
    return pd.Timestamp.now(tz="Asia/Shanghai").tz_localize(None)


# -- errors ------------------------------------------------------------------------------------


class IntakeError(GridPulseError, ValueError):
    """A request was refused; nothing changed. ``status`` is the HTTP status to answer with."""

    def __init__(self, issues: Sequence[Issue], *, status: int = 422) -> None:
        self.issues = list(issues)
        self.status = status
        first = self.issues[0] if self.issues else None
        super().__init__(first.code if first else "engines.report", **(first.params if first else {}))

    def message(self, lang: str | None = None) -> str:
        """Every issue, in ``lang``."""
        return "; ".join(i.message(lang) for i in self.issues)

    @classmethod
    def one(cls, code: str, *, status: int = 422, row: int | None = None,
            column: str | None = None, **params: Any) -> IntakeError:
        """An error with one issue (``code`` a catalogue key; ``api.error.`` is prepended
        to a bare name)."""
        key = code if "." in code else _E + code
        return cls([Issue("error", key, None, row, column, params)], status=status)

    def to_json(self, lang: str | None = None) -> dict[str, Any]:
        """``{"errors": [{"code", "message", "row", "column", "fix"}]}`` in ``lang``."""
        return {"errors": [issue_json(i, lang) for i in self.issues]}


def issue_json(issue: Issue, lang: str | None = None) -> dict[str, Any]:
    """One issue as the API shows it (``row`` is the 0-based position in the posted list)."""
    return {"code": issue.code, "message": issue.message(lang), "row": issue.row,
            "column": issue.column, "fix": issue.fix(lang)}


def refusal_json(error: Exception, lang: str | None = None) -> dict[str, Any]:
    """A :class:`PermissionDenied` or :class:`~layers.workflow.IllegalTransitionError` (or any
    error with ``key``/``message``/``fix``) in the API's error shape."""
    if isinstance(error, GridPulseError):
        key, msg, fix = error.key, error.message(lang), error.fix(lang)
    else:
        key, msg, fix = type(error).__name__, str(error), None
    return {"errors": [{"code": key, "message": msg, "row": None, "column": None, "fix": fix}]}


# -- services ----------------------------------------------------------------------------------


def services(lang: str | None = None) -> list[dict[str, Any]]:
    """The whistle list's 45 items as Open311 GeoReport v2 services (``GET services``)."""
    zh = normalize_lang(lang) == "zh"
    out = []
    for item in taxonomy.ITEMS.values():
        cat = taxonomy.CATEGORIES[item.category_code]
        out.append({
            "service_code": item.code,
            "service_name": item.name_zh if zh else item.name_en,
            "description": f"{cat.name_zh if zh else cat.name_en} · "
                           f"{item.name_zh if zh else item.name_en}",
            "metadata": False,
            "type": "realtime",
            "keywords": ", ".join([item.name_zh, item.name_en]),
            "group": cat.name_zh if zh else cat.name_en,
        })
    return out


# -- placing points in grids -------------------------------------------------------------------


@dataclass
class GridIndex:
    """Comprehensive grids of a store, for placing a point (built once, reused per request)."""

    codes: np.ndarray
    geoms: np.ndarray
    tree: shapely.STRtree

    @classmethod
    def from_store(cls, store: Any) -> GridIndex:
        """The store's grids (comprehensive ones first, so they win where grids overlap)."""
        if not store.has_layer("grids"):
            return cls(np.array([], dtype=object), np.array([], dtype=object),
                       shapely.STRtree([]))
        g = store.read("grids", columns=["code", "kind"])
        g = g.assign(_o=(g["kind"] != "comprehensive").astype(int)).sort_values(["_o", "code"])
        geoms = g.geometry.to_numpy()
        return cls(g["code"].astype(str).to_numpy(dtype=object), geoms, shapely.STRtree(geoms))

    def locate(self, lon: float, lat: float) -> str | None:
        """The code of the grid containing ``(lon, lat)``, or ``None``."""
        hits = self.tree.query(shapely.Point(lon, lat), predicate="intersects")
        return str(self.codes[int(np.min(hits))]) if len(hits) else None


_GRID_CACHE: dict[str, tuple[float, GridIndex]] = {}
_GRID_LOCK = threading.Lock()


def grid_index(store: Any, *, max_age_s: float = 60.0) -> GridIndex:
    """:class:`GridIndex` of ``store``, rebuilt at most every ``max_age_s`` seconds."""
    import time

    with _GRID_LOCK:
        hit = _GRID_CACHE.get(store.url)
        if hit is not None and time.monotonic() - hit[0] < max_age_s:
            return hit[1]
    idx = GridIndex.from_store(store)
    with _GRID_LOCK:
        _GRID_CACHE[store.url] = (time.monotonic(), idx)
    return idx


def metres_between(lon1: Any, lat1: Any, lon2: Any, lat2: Any) -> np.ndarray:
    """Great-circle distance in metres (haversine; arrays broadcast)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * _EARTH_M * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


# -- parsing -----------------------------------------------------------------------------------


def _text(v: Any) -> str | None:
    """A request's text field, stripped, without C0 control characters (as the file readers
    drop them: a NUL breaks the store's SQL); ``None`` when nothing is left."""
    if v is None:
        return None
    s = CONTROL_CHARS.sub("", str(v)).strip()
    return s or None


def parse_time(value: Any, field_name: str, *, row: int | None = None) -> pd.Timestamp:
    """A W3C/ISO date-time (with offset, or naive local time) as naive Asia/Shanghai time."""
    try:
        ts = pd.Timestamp(str(value).strip())
    except (TypeError, ValueError):
        ts = pd.NaT
    if ts is pd.NaT or pd.isna(ts):
        raise IntakeError.one("bad_datetime", field=field_name, value=str(value)[:60],
                              row=row, column=field_name)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("Asia/Shanghai").tz_localize(None)
    return ts


def _number(payload: Mapping[str, Any], names: Sequence[str], issues: list[Issue],
            row: int | None = None) -> float | None:
    name = next((n for n in names if _text(payload.get(n)) is not None), None)
    if name is None:
        issues.append(Issue("error", _E + "missing_field", None, row, names[0],
                            {"field": names[0]}))
        return None
    try:
        x = float(str(payload[name]).strip())
    except ValueError:
        x = float("nan")
    if not np.isfinite(x):
        issues.append(Issue("error", _E + "bad_number", None, row, name,
                            {"field": name, "value": str(payload[name])[:40]}))
        return None
    return x


# -- Open311 POST requests ---------------------------------------------------------------------


@dataclass
class Created:
    """What :func:`create_request` made: the Open311 view of the case and the duplicate hint."""

    request: dict[str, Any]
    duplicate_of: str | None = None
    duplicate_m: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: The ``POST requests`` answer (:func:`created_json`), in the item's language.
    answer: list[dict[str, Any]] = field(default_factory=list)


def new_request_id(when: pd.Timestamp, seed: str | None = None) -> str:
    """``API-YYYYMMDD-xxxxxxxxxx``: random, or derived from ``seed`` (an idempotency key)."""
    tail = (uuid.uuid5(uuid.NAMESPACE_URL, f"gridpulse:{seed}") if seed else uuid.uuid4()).hex
    return f"API-{when:%Y%m%d}-{tail[:12].upper()}"
