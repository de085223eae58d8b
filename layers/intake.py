"""Intake: the application functions behind the HTTP intake API (Open311, GPS fixes, actions).

Each job takes the store, the acting :class:`~layers.permissions.Account` (the API token's
account) and explicit options, checks permission, does the work through the existing
modules and is audited with the account as actor -- the HTTP layer (:mod:`gridpulse.api`)
only parses requests and renders answers.

* :func:`services` -- the whistle list (:mod:`layers.taxonomy`) as Open311 services.
* :func:`create_request` -- an Open311 ``POST requests``: the point is placed in its grid,
  the case is collected through :func:`layers.app.act_on_case` (``collect``; refused outside
  the account's scope), and a likely duplicate (same category, open, within
  :data:`DUPLICATE_RADIUS_M` and :data:`DUPLICATE_HOURS`) is returned as ``duplicate_of`` and
  kept in the collect event's note (``[duplicate_of=...]``, :func:`layers.workflow.parse_note`).
* :func:`list_requests` / :func:`get_request` -- scope-filtered Open311 views (Open311 has no
  personal fields; the reporter's name and phone never leave).
* :func:`post_fixes` -- a batch of GPS fixes, validated like an imported file
  (:func:`layers.validate.validate`), appended to ``patrol_points``; a grid worker's account
  posts only fixes whose ``worker_id`` is its user name.
* :func:`case_action` -- a department system's step on a case (report for duty, report back).
* :func:`idempotent` -- runs a job once per ``Idempotency-Key``: the key is claimed in the
  ``gp_idempotency`` record table (a primary key, so two processes cannot both claim it) and
  the answer stored with it; a retry gets the stored answer.

Errors are :class:`IntakeError` (an HTTP status and :class:`~layers.report.Issue` s with
catalogue keys), rendered by :meth:`IntakeError.to_json` as
``{"errors": [{"code", "message", "row", "column", "fix"}]}`` in zh or en.

Examples
--------
>>> [s["service_code"] for s in services("en")][:3]
['0101', '0102', '0103']
>>> services("en")[0]["group"]
'City appearance'
>>> round(float(metres_between(118.78, 32.06, 118.78, 32.061)), 1)
111.2
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from layers import taxonomy
from layers._records import IDEMPOTENCY
from layers.errors import GridPulseError, StoreError
from layers.i18n import normalize_lang
from layers.permissions import Account, PermissionDenied, can, filter_frame, require
from layers.report import Issue
from layers.schema import SOURCES

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
    if v is None:
        return None
    s = str(v).strip()
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


def parse_request(payload: Mapping[str, Any], *, grids: GridIndex, now: pd.Timestamp
                  ) -> dict[str, Any]:
    """An Open311 ``POST requests`` body as an ``incidents`` row (geometry included), or
    :class:`IntakeError` listing every problem at once."""
    issues: list[Issue] = []
    code = _text(payload.get("service_code"))
    item = taxonomy.ITEMS.get(code or "")
    if code is None:
        issues.append(Issue("error", _E + "missing_field", None, None, "service_code",
                            {"field": "service_code"}))
    elif item is None:
        issues.append(Issue("error", _E + "unknown_service", None, None, "service_code",
                            {"value": code[:20]}))
    lat = _number(payload, ("lat",), issues)
    lon = _number(payload, ("long", "lon", "lng"), issues)
    if lat is not None and lon is not None and not (-90 <= lat <= 90 and -180 <= lon <= 180):
        issues.append(Issue("error", _E + "outside_grids", None, None, "lat",
                            {"lat": lat, "long": lon}))
        lat = lon = None
    level_raw = payload.get("level", 1)
    try:
        level = int(str(level_raw).strip())
    except ValueError:
        level = -1
    if level not in (1, 2, 3):
        issues.append(Issue("error", _E + "bad_level", None, None, "level",
                            {"value": str(level_raw)[:10]}))
    source = _text(payload.get("source")) or "hotline_12345"
    if source not in SOURCES:
        issues.append(Issue("error", _E + "bad_field", None, None, "source",
                            {"field": "source", "value": source[:30]}))
    when = now
    if _text(payload.get("requested_datetime")):
        try:
            when = parse_time(payload["requested_datetime"], "requested_datetime")
        except IntakeError as e:
            issues.extend(e.issues)
    grid = None
    if lat is not None and lon is not None:
        grid = grids.locate(lon, lat)
        if grid is None:
            issues.append(Issue("error", _E + "outside_grids", None, None, "lat",
                                {"lat": lat, "long": lon}))
    if issues:
        raise IntakeError(issues)
    assert item is not None and lat is not None and lon is not None
    name = " ".join(x for x in (_text(payload.get("last_name")), _text(payload.get("first_name")))
                    if x) or _text(payload.get("name"))
    return {
        "service_code": item.code, "service_name": item.name_zh,
        "description": (_text(payload.get("description")) or "")[:2000] or None,
        "requested_datetime": when, "address": (_text(payload.get("address_string"))
                                                or _text(payload.get("address")) or None),
        "category_code": item.category_code, "item_code": item.code, "level": level,
        "source": source, "grid_code": grid,
        "reporter_name": name[:60] if name else None,
        "reporter_phone": (_text(payload.get("phone")) or "")[:30] or None,
        "geometry": shapely.Point(lon, lat),
    }


def find_duplicate(store: Any, row: Mapping[str, Any], *,
                   radius_m: float = DUPLICATE_RADIUS_M, hours: float = DUPLICATE_HOURS
                   ) -> tuple[str, float, float] | None:
    """The nearest open case of the same category within ``radius_m`` received at most
    ``hours`` before ``row``: ``(id, metres, minutes)``, or ``None``."""
    return find_duplicates(store, [row], radius_m=radius_m, hours=hours)[0]


def find_duplicates(store: Any, rows: Sequence[Mapping[str, Any]], *,
                    ids: Sequence[str] | None = None, radius_m: float = DUPLICATE_RADIUS_M,
                    hours: float = DUPLICATE_HOURS) -> list[tuple[str, float, float] | None]:
    """:func:`find_duplicate` for a batch with one read: each row is compared with the open
    cases stored and with the rows before it in the batch (``ids`` name those)."""
    from layers.workflow import OPEN_STAGES

    if not rows:
        return []
    times = [pd.Timestamp(r["requested_datetime"]) for r in rows]
    cats = sorted({str(r["category_code"]) for r in rows})
    if store.has_layer("incidents"):
        near = store.read("incidents", columns=["service_request_id", "category_code",
                                                "requested_datetime"],
                          where={"category_code": cats, "stage": sorted(OPEN_STAGES)},
                          between={"requested_datetime": (min(times) - pd.Timedelta(hours=hours),
                                                          max(times) + pd.Timedelta(seconds=1))})
        pts = near.geometry.to_numpy()
        c_id = near["service_request_id"].astype(str).tolist()
        c_cat = near["category_code"].astype(str).tolist()
        c_t = list(pd.to_datetime(near["requested_datetime"]))
        c_x, c_y = list(shapely.get_x(pts)), list(shapely.get_y(pts))
    else:
        c_id, c_cat, c_t, c_x, c_y = [], [], [], [], []
    c_x, c_y = np.asarray(c_x, dtype=float), np.asarray(c_y, dtype=float)
    c_ns = np.asarray([pd.Timestamp(x).value for x in c_t], dtype=np.int64)
    c_cat_a = np.asarray(c_cat, dtype=object)
    n0 = len(c_id)
    r_x = np.array([r["geometry"].x for r in rows], dtype=float)
    r_y = np.array([r["geometry"].y for r in rows], dtype=float)
    r_ns = np.array([t.value for t in times], dtype=np.int64)
    r_cat = np.array([str(r["category_code"]) for r in rows], dtype=object)
    if ids is not None:  # later rows of the batch may duplicate earlier ones
        c_id = c_id + [str(x) for x in ids]
        c_x, c_y = np.concatenate([c_x, r_x]), np.concatenate([c_y, r_y])
        c_ns, c_cat_a = np.concatenate([c_ns, r_ns]), np.concatenate([c_cat_a, r_cat])
    span = int(hours * 3_600e9)
    out: list[tuple[str, float, float] | None] = []
    for i in range(len(rows)):
        usable = n0 + i if ids is not None else n0  # stored cases + earlier rows of the batch
        cand = np.flatnonzero((c_cat_a[:usable] == r_cat[i]) & (c_ns[:usable] <= r_ns[i])
                              & (c_ns[:usable] >= r_ns[i] - span))
        hit = None
        if cand.size:
            d = metres_between(r_x[i], r_y[i], c_x[cand], c_y[cand])
            k = int(np.argmin(d))
            if d[k] <= radius_m:
                j = int(cand[k])
                hit = (c_id[j], float(d[k]), (r_ns[i] - c_ns[j]) / 60e9)
        out.append(hit)
    return out


def create_request(store: Any, account: Account, payload: Mapping[str, Any], *,
                   now: pd.Timestamp | None = None, request_id: str | None = None,
                   lang: str | None = None, grids: GridIndex | None = None) -> Created:
    """Receive one Open311 service request as a new case (``collect``), checked and audited.

    Parameters
    ----------
    store, account
        Where, and who (the case's grid must lie in the account's scope).
    payload
        Open311 ``POST requests`` fields: ``service_code`` (a whistle-list item), ``lat``,
        ``long`` (WGS-84), optional ``description``, ``address_string``,
        ``requested_datetime``, ``first_name``/``last_name``, ``phone``, and GridPulse's
        ``level`` (1-3, default 1) and ``source`` (default ``hotline_12345``).
    now
        Receiving time (default: the real clock).
    request_id
        The new case's id (default: :func:`new_request_id`).

    Raises
    ------
    IntakeError
        Bad or missing fields (all of them listed), or a point in no grid.
    PermissionDenied
        The account may not collect cases there.
    """
    out = create_requests(store, [(account, payload, request_id, lang)], now=now, grids=grids)[0]
    if isinstance(out, Exception):
        raise out
    return out


@dataclass(frozen=True)
class Keyed:
    """An ``Idempotency-Key`` sent with a request, and the request's :func:`fingerprint`."""

    key: str
    fingerprint: str


Item = tuple[Account, Mapping[str, Any], "str | None", "str | None"] | tuple[
    Account, Mapping[str, Any], "str | None", "str | None", "Keyed | None"]


def create_requests(store: Any, items: Sequence[Item], *, now: pd.Timestamp | None = None,
                    grids: GridIndex | None = None) -> list[Created | Outcome | Exception]:
    """:func:`create_request` for a batch of ``(account, payload, request id, lang[, keyed])``.

    Each item is parsed and permission-checked on its own (its error is returned in its
    place); the accepted ones are collected with :func:`layers.workflow.apply_transition` and
    written in ONE store transaction per account -- cases, their ``collect`` events, the
    audit rows and the idempotency keys of keyed items (:class:`Keyed`) with their answers
    -- which is what lets the API take hundreds of cases a second.

    A keyed item whose key was used before gets the stored answer back (an
    :class:`Outcome` with ``replayed``), or :class:`IntakeError` 422 when the key came with
    another request. Should the batch's write fail (another process wrote the same key
    meanwhile), each case is written alone and a key taken meanwhile is answered as above.
    A refused item stores no key: its retry is judged afresh.
    """
    from layers import workflow

    when = now if now is not None else now_local()
    grids = grids or grid_index(store)
    results: list[Created | Outcome | Exception | None] = [None] * len(items)
    keyed: dict[int, tuple[str, Keyed]] = {}
    first_of: dict[str, int] = {}
    later: dict[int, int] = {}  # the same key twice in one batch: answer as the first
    for i, it in enumerate(items):
        kd = it[4] if len(it) > 4 else None  # type: ignore[misc]
        if kd is None:
            continue
        k = _idem_key(it[0], kd.key)
        if k in first_of:
            later[i] = first_of[k]
            continue
        first_of[k] = i
        keyed[i] = (k, kd)
    if keyed:
        old = {r["key"]: r for r in store.records(
            IDEMPOTENCY.name, where={"key": [k for k, _ in keyed.values()]})}
        for i, (k, kd) in list(keyed.items()):
            if k in old:
                results[i] = _replay(old[k], kd)
                del keyed[i]
    ok: list[tuple[int, Account, dict[str, Any], str]] = []
    for i, it in enumerate(items):
        if results[i] is not None or i in later:
            continue
        acc, payload, rid = it[0], it[1], it[2]
        try:
            row = parse_request(payload, grids=grids, now=when)
            require(acc, "case.collect", scope_code=row["grid_code"])
            seed = keyed[i][0] if i in keyed else None
            ok.append((i, acc, row, rid or new_request_id(when, seed)))
        except (IntakeError, PermissionDenied) as e:
            results[i] = e
    dups = find_duplicates(store, [r for _, _, r, _ in ok], ids=[s for *_, s in ok])
    if ok:  # due times for the whole batch at once (collect would compute them one by one)
        due = workflow.due_times(pd.DataFrame([{c: r[c] for c in (
            "requested_datetime", "category_code", "item_code", "level")} for _, _, r, _ in ok]))
        for (_, _, row, _), d in zip(ok, due, strict=True):
            row["expected_datetime"] = None if pd.isna(d) else pd.Timestamp(d)
    groups: dict[str, list[tuple[int, dict[str, Any], dict[str, Any], dict[str, Any]]]] = {}
    for (i, acc, row, srid), dup in zip(ok, dups, strict=True):
        note = "open311" if dup is None else \
            f"[duplicate_of={dup[0]}] open311 possible duplicate ({dup[1]:.0f} m)"
        at = max(when, row["requested_datetime"])
        try:
            new, event = workflow.apply_transition(
                {**{k: v for k, v in row.items() if k != "geometry"}, "service_request_id": srid},
                "collect", actor=acc.username, role=str(acc.workflow_role), time=at, note=note)
        except workflow.IllegalTransitionError as e:
            results[i] = e
            continue
        groups.setdefault(acc.username, []).append((i, row, new, event))
        results[i] = Created({}, None if dup is None else dup[0], None if dup is None else dup[1])
    _views(items, results, {i: (new, row["geometry"]) for g in groups.values()
                            for i, row, new, _ in g})
    for user, group in groups.items():
        try:
            _write_cases(store, user, group, items, results, keyed, when)
        except StoreError:
            for one in group:  # alone, so one taken key or bad row spoils only itself
                try:
                    _write_cases(store, user, [one], items, results, keyed, when)
                except StoreError as e:
                    i = one[0]
                    taken = store.records(IDEMPOTENCY.name, where={"key": keyed[i][0]}) \
                        if i in keyed else []
                    results[i] = _replay(taken[0], keyed[i][1]) if taken else e
    for i, j in later.items():
        kd = items[i][4]  # type: ignore[misc]
        first = results[j]
        if items[j][4].fingerprint != kd.fingerprint:  # type: ignore[misc]
            results[i] = IntakeError.one("idempotency_reused", key=kd.key[:60])
        elif isinstance(first, Created):
            results[i] = Outcome(201, first.answer, replayed=True)
        else:
            results[i] = first
    return [r if r is not None else IntakeError.one("store", status=503, error="not written")
            for r in results]


def _replay(row: Mapping[str, Any], kd: Keyed) -> Outcome | IntakeError:
    """The stored answer of a used key, or the refusal (another request; still running)."""
    if row["fingerprint"] != kd.fingerprint:
        return IntakeError.one("idempotency_reused", key=kd.key[:60])
    if row["state"] != "done":
        return IntakeError.one("idempotency_pending", status=409, key=kd.key[:60])
    return Outcome(int(row["status"]), json.loads(row["body"]), replayed=True)


def _views(items: Sequence[Item], results: list[Any],
           made: Mapping[int, tuple[dict[str, Any], Any]]) -> None:
    """Fill each new case's Open311 view and answer (one frame per language)."""
    by_lang: dict[str | None, list[int]] = {}
    for i in made:
        by_lang.setdefault(items[i][3], []).append(i)
    for lang, idx in by_lang.items():
        frame = pd.DataFrame([{**made[i][0], "long": made[i][1].x, "lat": made[i][1].y}
                              for i in idx])  # plain lat/long: no GeoDataFrame per batch
        for i, req in zip(idx, open311_view(frame, lang), strict=True):
            res = results[i]
            assert isinstance(res, Created)
            res.request = req
            res.answer = created_json(res, lang)


def _write_cases(store: Any, user: str, group: Sequence[tuple[int, dict[str, Any],
                                                               dict[str, Any], dict[str, Any]]],
                 items: Sequence[Item], results: list[Any],
                 keyed: Mapping[int, tuple[str, Keyed]], when: pd.Timestamp) -> None:
    """One transaction: the group's cases, their collect events, and their keys + answers."""
    from layers.schema import SCHEMAS

    cols = SCHEMAS["incidents"].columns
    frame = gpd.GeoDataFrame({c: [g[2].get(c) for g in group] for c in cols},
                             geometry=[g[1]["geometry"] for g in group], crs=4326)
    events = pd.DataFrame([g[3] for g in group])
    keys = [{"key": keyed[i][0], "username": user, "fingerprint": keyed[i][1].fingerprint,
             "state": "done", "status": 201, "created": when,
             "body": json.dumps(results[i].answer, ensure_ascii=False, default=str)}
            for i, *_ in group if i in keyed]
    store.write({"incidents": frame, "incident_events": events}, mode="append", actor=user,
                note="collect", records={IDEMPOTENCY.name: keys} if keys else None)


def created_json(c: Created, lang: str | None = None) -> list[dict[str, Any]]:
    """The Open311 ``POST requests`` answer: ``[{service_request_id, service_notice,
    account_id}]`` plus GridPulse's ``duplicate_of`` hint and the case itself."""
    from layers.i18n import t

    notice = t("api.received", lang, id=c.request["service_request_id"])
    if c.duplicate_of:
        notice += "；" if normalize_lang(lang) == "zh" else "; "
        notice += t("api.duplicate_hint", lang, id=c.duplicate_of,
                    metres=f"{c.duplicate_m or 0:.0f}", minutes="≤180")
    return [{"service_request_id": c.request["service_request_id"], "service_notice": notice,
             "account_id": None, "duplicate_of": c.duplicate_of, "request": c.request}]


# -- Open311 GET requests ----------------------------------------------------------------------

def open311_view(df: pd.DataFrame, lang: str | None) -> list[dict[str, Any]]:
    """Open311 requests with GridPulse's ``extended_attributes`` (stage, whistle, grid,
    department, item and category codes) -- the extension field Open311 servers use."""
    from layers.open311 import to_open311

    out = to_open311(df, lang=lang)
    for rec, row in zip(out, df.to_dict("records"), strict=True):
        rec["extended_attributes"] = {
            k: (None if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v))
            for k, v in ((c, row.get(c)) for c in ("stage", "whistle", "grid_code",
                                                   "department", "category_code", "item_code"))}
    return out


_READ_COLS = ["service_request_id", "stage", "whistle", "service_code", "service_name",
              "description", "requested_datetime", "updated_datetime", "expected_datetime",
              "address", "category_code", "item_code", "department", "grid_code"]


def _require_read(account: Account) -> None:
    d = can(account, "view.incidents")
    if not d:
        raise PermissionDenied(d)


def list_requests(store: Any, account: Account, *, service_code: str | None = None,
                  status: str | None = None, start_date: Any = None, end_date: Any = None,
                  ids: Sequence[str] | None = None, limit: int = MAX_REQUESTS,
                  lang: str | None = None, now: pd.Timestamp | None = None
                  ) -> list[dict[str, Any]]:
    """Open311 ``GET requests``: the cases in the account's scope matching the filters.

    ``ids`` (``service_request_id``) ignores the other filters, as the specification says.
    Without dates, the last :data:`DEFAULT_DAYS` days; newest first; at most ``limit``.
    """
    from layers.workflow import CLOSED_STAGES, OPEN_STAGES

    _require_read(account)
    if not store.has_layer("incidents"):
        return []
    where: dict[str, Any] = {}
    between: dict[str, tuple[Any, Any]] = {}
    if ids:
        where["service_request_id"] = [str(i) for i in ids][:limit]
    else:
        if service_code:
            codes = [c.strip() for c in str(service_code).split(",") if c.strip()]
            bad = [c for c in codes if c not in taxonomy.ITEMS]
            if bad:
                raise IntakeError.one("unknown_service", value=bad[0][:20], column="service_code")
            where["item_code"] = codes
        if status:
            if status not in ("open", "closed"):
                raise IntakeError.one("bad_field", field="status", value=status[:20],
                                      column="status")
            where["stage"] = sorted(OPEN_STAGES if status == "open" else CLOSED_STAGES)
        end = parse_time(end_date, "end_date") if end_date else None
        start = parse_time(start_date, "start_date") if start_date else None
        if start is None and end is None:
            start = (now if now is not None else now_local()) - pd.Timedelta(days=DEFAULT_DAYS)
        between["requested_datetime"] = (start, end)
    df = store.read("incidents", columns=_READ_COLS, where=where or None,
                    between=between or None, order_by="requested_datetime", descending=True)
    df = filter_frame(account, df, "incidents")
    return open311_view(df.head(int(limit)), lang)


def get_request(store: Any, account: Account, service_request_id: str, *,
                lang: str | None = None) -> list[dict[str, Any]]:
    """Open311 ``GET requests/{id}``: a one-element list; 404 when absent, 403 outside scope."""

    _require_read(account)
    df = store.read("incidents", columns=_READ_COLS,
                    where={"service_request_id": str(service_request_id)}) \
        if store.has_layer("incidents") else pd.DataFrame()
    if not len(df):
        raise IntakeError.one("not_found", status=404, id=str(service_request_id)[:60])
    row = df.iloc[0]
    require(account, "view.incidents", scope_code=str(row["grid_code"]))
    if account.role == "department" and row.get("department") != account.department:
        raise PermissionDenied(can(account, "case.report_back", scope_code=str(row["grid_code"]),
                                   department=row.get("department")))
    return open311_view(df, lang)


# -- GPS fixes ---------------------------------------------------------------------------------

_WORKERS_CACHE: dict[str, tuple[float, pd.DataFrame]] = {}


def _workers(store: Any, max_age_s: float = 30.0) -> pd.DataFrame:
    import time

    hit = _WORKERS_CACHE.get(store.url)
    if hit is not None and time.monotonic() - hit[0] < max_age_s:
        return hit[1]
    w = store.read("workers", columns=["id", "grid_code"]) if store.has_layer("workers") \
        else pd.DataFrame({"id": pd.Series([], dtype=str), "grid_code": pd.Series([], dtype=str)})
    _WORKERS_CACHE[store.url] = (time.monotonic(), w)
    return w


def post_fixes(store: Any, account: Account, fixes: Sequence[Mapping[str, Any]], *,
               lang: str | None = None) -> dict[str, Any]:
    """Append a batch of GPS fixes to ``patrol_points``; all or nothing.

    Each fix: ``worker_id``, ``time`` (W3C/ISO), ``lat``, ``long`` (WGS-84), optional
    ``accuracy_m`` and ``fix_id`` (default: derived from worker and time, so a phone resending
    a fix stores it once; resent fixes count as ``duplicates``). A grid worker's account posts only fixes with its
    own user name as ``worker_id``; other accounts need the right to import patrol fixes and
    every worker must lie in their scope.

    Returns ``{"accepted": n, "duplicates": k}``. Raises :class:`IntakeError` listing every
    bad row (``row`` = position in the list), or :class:`PermissionDenied`.
    """

    if len(fixes) > MAX_FIXES:
        raise IntakeError.one("too_many", status=413, n=len(fixes), limit=MAX_FIXES)
    worker_role = account.role in ("grid_worker_full", "grid_worker_part", "grid_leader")
    if not worker_role:
        require(account, "import", layer="patrol_points")
    if not fixes:
        return {"accepted": 0, "duplicates": 0}
    fast = _clean_fixes(fixes, account.username if worker_role else None)
    if fast is not None:
        ids, t, acc_s, fids, lon, lat = fast
    else:
        ids, t, acc_s, fids, lon, lat = _fixes_or_errors(fixes, account, worker_role)
    workers = _workers(store)
    known = dict(zip(workers["id"].astype(str), workers["grid_code"].astype(str), strict=False))
    issues: list[Issue] = []
    for i, wid in enumerate(ids):
        if wid not in known:
            issues.append(Issue("error", _E + "unknown_worker", None, i, "worker_id",
                                {"value": str(wid)[:30]}))
        elif not account.covers(known[wid]):
            raise PermissionDenied(can(account, "import", scope_code=known[wid]))
    if issues:
        raise IntakeError(issues)
    ns = t.to_numpy().astype("datetime64[ns]").astype(np.int64)
    fix_id = [fid or uuid.uuid5(uuid.NAMESPACE_URL, f"gridpulse:fix:{w}|{n}").hex
              for fid, w, n in zip(fids, ids, ns, strict=True)]
    frame = pd.DataFrame({"fix_id": fix_id, "worker_id": ids, "time": t.to_numpy(),
                          "accuracy_m": acc_s.to_numpy(), "lon": lon, "lat": lat})
    return _write_fixes(store, account, frame)


def _clean_fixes(fixes: Sequence[Any], own: str | None) -> tuple[Any, ...] | None:
    """The columns of a batch parsed vectorised, or ``None`` when anything is off (the slow
    path then names every bad row)."""
    try:
        if not all(isinstance(f, dict) for f in fixes):
            return None
        df = pd.DataFrame.from_records(fixes)
        lon_col = next((c for c in ("long", "lon", "lng") if c in df.columns), None)
        if lon_col is None or not {"worker_id", "time", "lat"} <= set(df.columns):
            return None
        lat = pd.to_numeric(df["lat"], errors="coerce").to_numpy(float)
        lon = pd.to_numeric(df[lon_col], errors="coerce").to_numpy(float)
        if not (np.isfinite(lat).all() and np.isfinite(lon).all()):
            return None
        wid = df["worker_id"]
        if not all(isinstance(w, str) and w.strip() for w in wid):
            return None
        ids = [w.strip() for w in wid]
        if own is not None and any(w != own for w in ids):
            return None
        t = pd.to_datetime(df["time"], format="ISO8601", errors="coerce")
        if t.isna().any() or not all(isinstance(x, str) for x in df["time"]):
            return None
        if t.dt.tz is not None:
            t = t.dt.tz_convert("Asia/Shanghai").dt.tz_localize(None)
        acc = pd.to_numeric(df["accuracy_m"], errors="coerce") if "accuracy_m" in df else \
            pd.Series(np.nan, index=df.index)
        fids = [None if not isinstance(x, str) or not x.strip() else x.strip()
                for x in df["fix_id"]] if "fix_id" in df else [None] * len(df)
        return ids, t.reset_index(drop=True), acc.reset_index(drop=True), fids, lon, lat
    except (TypeError, ValueError):
        return None


def _fixes_or_errors(fixes: Sequence[Any], account: Account, worker_role: bool
                     ) -> tuple[Any, ...]:
    issues: list[Issue] = []
    lon = np.full(len(fixes), np.nan)
    lat = np.full(len(fixes), np.nan)
    ids, times, acc, fids = [], [], [], []
    for i, f in enumerate(fixes):
        if not isinstance(f, Mapping):
            issues.append(Issue("error", _E + "bad_field", None, i, None,
                                {"field": "fixes", "value": str(f)[:30]}))
            ids.append(None), times.append(None), acc.append(None), fids.append(None)
            continue
        la = _number(f, ("lat",), issues, row=i)
        lo = _number(f, ("long", "lon", "lng"), issues, row=i)
        lat[i] = np.nan if la is None else la
        lon[i] = np.nan if lo is None else lo
        wid = _text(f.get("worker_id"))
        if wid is None:
            issues.append(Issue("error", _E + "missing_field", None, i, "worker_id",
                                {"field": "worker_id"}))
        elif worker_role and wid != account.username:
            issues.append(Issue("error", _E + "not_own_fix", None, i, "worker_id",
                                {"value": wid[:30], "mine": account.username}))
        ids.append(wid)
        ts = None
        if _text(f.get("time")) is None:
            issues.append(Issue("error", _E + "missing_field", None, i, "time", {"field": "time"}))
        else:
            try:
                ts = parse_time(f["time"], "time", row=i)
            except IntakeError as e:
                issues.extend(e.issues)
        times.append(ts)
        acc.append(f.get("accuracy_m"))
        fids.append(_text(f.get("fix_id")))
    if issues:
        raise IntakeError(issues)
    t = pd.to_datetime(pd.Series(times, dtype="object"))
    acc_s = pd.to_numeric(pd.Series(acc, dtype="object"), errors="coerce")
    return ids, t, acc_s, fids, lon, lat


def _write_fixes(store: Any, account: Account, frame: pd.DataFrame) -> dict[str, Any]:
    from layers.validate import validate

    dup = frame["fix_id"].duplicated().to_numpy()
    kept = np.flatnonzero(~dup)
    res = validate(frame[~dup].reset_index(drop=True), "patrol_points", file="fixes",
                   row_offset=0)
    if not res.ok:  # rows as posted (a fix resent in the same batch is dropped, not an error)
        raise IntakeError([Issue(i.severity, i.code, None,
                                 None if i.row is None else int(kept[i.row]), i.column, i.params)
                           for i in res.report.errors()])
    data = res.data
    before = len(frame)
    try:
        store.write({"patrol_points": data}, mode="append", actor=account.username,
                    note="api fixes")
    except StoreError:  # fixes stored before (a phone resending): keep the new ones only
        old = store.read("patrol_points", columns=["fix_id"],
                         where={"fix_id": data["fix_id"].astype(str).tolist()})
        data = data[~data["fix_id"].isin(set(old["fix_id"].astype(str)))]
        if len(data):
            store.write({"patrol_points": data}, mode="append", actor=account.username,
                        note="api fixes")
    return {"accepted": int(len(data)), "duplicates": int(before - len(data))}


# -- case actions ------------------------------------------------------------------------------


def case_action(store: Any, account: Account, service_request_id: str,
                payload: Mapping[str, Any], *, now: pd.Timestamp | None = None,
                lang: str | None = None) -> dict[str, Any]:
    """A department system's step on a case (``{"action": "report_for_duty", "note": "...",
    "time": optional, <options>}``) through :func:`layers.app.act_on_case`.

    Returns ``{"request": <Open311 view>, "event": {...}}``. Raises
    :class:`PermissionDenied`, :class:`~layers.workflow.IllegalTransitionError` or
    :class:`IntakeError` (404 for an unknown case, 422 for a missing action).
    """
    from layers.app import act_on_case

    action = _text(payload.get("action"))
    if action is None:
        raise IntakeError.one("bad_action", column="action")
    if action == "collect":
        raise IntakeError.one("bad_field", field="action", value=action, column="action")
    if not store.has_layer("incidents") or not store.count(
            "incidents", where={"service_request_id": str(service_request_id)}):
        raise IntakeError.one("not_found", status=404, id=str(service_request_id)[:60])
    when = parse_time(payload["time"], "time") if _text(payload.get("time")) else \
        (now if now is not None else now_local())
    options = {k: v for k, v in payload.items() if k not in ("action", "note", "time")}
    new, event = act_on_case(store, account, str(service_request_id), action, time=when,
                             note=str(payload.get("note") or ""), **options)
    df = store.read("incidents", columns=_READ_COLS,
                    where={"service_request_id": str(service_request_id)})
    ev = {k: (v.isoformat() if isinstance(v, pd.Timestamp) else v) for k, v in event.items()
          if k != "actor"}
    return {"request": open311_view(df, lang)[0], "event": ev}


# -- analysis reads (the same jobs as the CLI and the pages) -------------------------------------


def _json_value(v: Any) -> Any:
    if v is None or (not isinstance(v, str) and pd.api.types.is_scalar(v) and pd.isna(v)):
        return None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    return v


def _window(params: Mapping[str, Any]) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    since = parse_time(params["from"], "from") if _text(params.get("from")) else None
    until = parse_time(params["to"], "to") if _text(params.get("to")) else None
    return since, until


#: ``by`` values of ``GET /api/v1/kpis`` (incidents columns).
KPI_BY: tuple[str, ...] = ("grid_code", "department", "category_code", "source")


def kpis(store: Any, account: Account, params: Mapping[str, Any]) -> dict[str, Any]:
    """``GET /api/v1/kpis``: :func:`layers.analysis.kpi_job` (the case board's and
    ``gridpulse kpis``' numbers) for ``from``/``to`` (receipt window), ``now`` (default: the real
    clock) and optional ``by``; ``{"now", "from", "to", "rows": [{group, <kpis>}]}``."""
    from layers.analysis import kpi_job

    since, until = _window(params)
    now = parse_time(params["now"], "now") if _text(params.get("now")) else now_local()
    by = _text(params.get("by"))
    if by is not None and by not in KPI_BY:
        raise IntakeError.one("bad_field", field="by", value=by[:30], column="by")
    table = kpi_job(store, account, now=now, since=since, until=until, by=by)
    rows = [{"group": _json_value(idx), **{k: _json_value(v) for k, v in rec.items()}}
            for idx, rec in zip(table.index, table.to_dict("records"), strict=True)]
    return {"now": now.isoformat(), "from": _json_value(since), "to": _json_value(until),
            "rows": rows}


def hotspots(store: Any, account: Account, params: Mapping[str, Any]) -> dict[str, Any]:
    """``GET /api/v1/hotspots``: :func:`layers.analysis.hotspot_job` (the hotspot page's and
    ``gridpulse hotspots``' classes) for ``res`` (default 9), ``from``/``to``, ``category`` (a
    category or item code) and ``emerging`` (``false`` for Gi* only); one row per cell of the
    study area: ``cell`` (H3 text), ``count``, ``z``, ``p``, ``gi_bin``, ``ehsa``."""
    from geo.hexes import cells_to_str
    from layers.analysis import hotspot_job
    from layers.schema import H3_RESOLUTIONS

    try:
        res = int(str(params.get("res") or 9))
    except ValueError:
        res = -1
    if res not in H3_RESOLUTIONS:
        raise IntakeError.one("bad_field", field="res", value=str(params.get("res"))[:10],
                              column="res")
    since, until = _window(params)
    where: dict[str, Any] = {}
    cat = _text(params.get("category"))
    if cat is not None:
        if cat in taxonomy.CATEGORIES:
            where["category_code"] = cat
        elif cat in taxonomy.ITEMS:
            where["item_code"] = cat
        else:
            raise IntakeError.one("unknown_service", value=cat[:20], column="category")
    emerging = str(params.get("emerging", "true")).lower() not in ("0", "false", "no")
    table, n_steps = hotspot_job(store, account, res=res, since=since, until=until,
                                 where=where or None, emerging=emerging)
    cells = cells_to_str(table.index.to_numpy(np.int64))
    rows = [{"cell": c, "count": int(n), "z": _json_value(z), "p": _json_value(p),
             "gi_bin": int(b), "ehsa": e}
            for c, n, z, p, b, e in zip(cells, table["count"], table["z"], table["p"],
                                        table["gi_bin"], table["ehsa"], strict=True)]
    return {"res": res, "from": _json_value(since), "to": _json_value(until),
            "n_steps": n_steps, "cells": rows}


# -- idempotency -------------------------------------------------------------------------------


@dataclass
class Outcome:
    """An answer to replay: HTTP status and JSON body; ``replayed`` when it came from a
    stored earlier attempt."""

    status: int
    body: Any
    replayed: bool = False


def fingerprint(method: str, path: str, body: bytes) -> str:
    """SHA-256 of what makes two requests the same request."""
    h = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), body):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def _idem_key(account: Account, key: str) -> str:
    return hashlib.sha256(f"{account.username}\n{key.strip()[:200]}".encode()).hexdigest()


def claim(store: Any, account: Account, key: str, print_: str) -> Outcome | None:
    """Claim ``key`` for a new attempt (``None``), or return the stored answer of an earlier
    one (an :class:`Outcome` with ``replayed``).

    The claim is an insert only one process can win (the key is the primary key of
    ``gp_idempotency``). Raises :class:`IntakeError`: 422 when the key was used for another
    request, 409 while the first attempt is still running.
    """
    k = _idem_key(account, key)
    row = {"key": k, "username": account.username, "fingerprint": print_, "state": "pending",
           "status": None, "body": None, "created": now_local()}
    for _ in range(3):
        try:
            if store.insert_record(IDEMPOTENCY.name, row):
                return None
        except StoreError:  # two processes creating the table at once (PostgreSQL): again
            continue
        rows = store.records(IDEMPOTENCY.name, where={"key": k})
        if not rows:  # released meanwhile: claim again
            continue
        old = rows[0]
        if old["fingerprint"] != print_:
            raise IntakeError.one("idempotency_reused", key=key[:60])
        if old["state"] != "done":
            raise IntakeError.one("idempotency_pending", status=409, key=key[:60])
        return Outcome(int(old["status"]), json.loads(old["body"]), replayed=True)
    raise IntakeError.one("idempotency_pending", status=409, key=key[:60])


def complete(store: Any, account: Account, key: str, outcome: Outcome) -> None:
    """Store the answer of a claimed key (a 5xx answer releases the key instead)."""
    if outcome.status >= 500:
        release(store, account, key)
        return
    store.update_records(IDEMPOTENCY.name, {"key": _idem_key(account, key)},
                         {"state": "done", "status": int(outcome.status),
                          "body": json.dumps(outcome.body, ensure_ascii=False, default=str)})


def release(store: Any, account: Account, key: str) -> None:
    """Give a claimed key up (the attempt failed): a retry will do the work."""
    store.delete_records(IDEMPOTENCY.name, {"key": _idem_key(account, key)})


def idempotent(store: Any, account: Account, key: str | None, print_: str,
               work: Callable[[str | None], Outcome]) -> Outcome:
    """Run ``work`` once per ``(account, key)``; a retry gets the first answer back.

    ``work`` receives a seed derived from the key (for deterministic ids) and returns an
    :class:`Outcome`. Without a key ``work`` just runs. See :func:`claim`: a failed attempt
    (an exception, or a 5xx answer) releases the key so the client can retry; the same key
    with a different request is refused (422); a key whose first attempt is still running
    answers 409.
    """
    if not key:
        return work(None)
    replay = claim(store, account, key, print_)
    if replay is not None:
        return replay
    try:
        out = work(_idem_key(account, key))
    except BaseException:
        release(store, account, key)
        raise
    complete(store, account, key, out)
    return out


def store_error_json(error: StoreError, lang: str | None = None) -> dict[str, Any]:
    """A store failure in the API's error shape (503)."""
    return IntakeError.one("store", status=503, error=str(error)[:300]).to_json(lang)


__all__ = [
    "DUPLICATE_HOURS", "DUPLICATE_RADIUS_M", "MAX_FIXES", "Created", "GridIndex", "IntakeError",
    "Keyed", "Outcome", "case_action", "claim", "complete", "release", "create_request", "create_requests", "created_json",
    "find_duplicate", "find_duplicates", "fingerprint",
    "get_request", "grid_index", "hotspots", "kpis", "idempotent", "issue_json", "list_requests", "metres_between",
    "new_request_id", "parse_request", "parse_time", "post_fixes", "refusal_json", "services",
    "store_error_json",
]
