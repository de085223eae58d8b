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

Layout: the basics (limits, clock, :class:`IntakeError`, grid index, parsing) live in
:mod:`layers._intake_base`, GPS fixes batches in :mod:`layers._intake_fixes`, idempotency
keys in :mod:`layers._intake_idem` and the KPI / hotspot reads in :mod:`layers._intake_reads`;
every public name is re-exported here.

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

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from layers import taxonomy
from layers._intake_base import (
    _E,
    DEFAULT_DAYS,
    DUPLICATE_HOURS,
    DUPLICATE_RADIUS_M,
    MAX_FIXES,
    MAX_REQUESTS,
    Created,
    GridIndex,
    IntakeError,
    _number,
    _text,
    grid_index,
    issue_json,
    metres_between,
    new_request_id,
    now_local,
    parse_time,
    refusal_json,
    services,
)
from layers._intake_fixes import (
    post_fixes,
)
from layers._intake_idem import (
    Outcome,
    _idem_key,
    claim,
    complete,
    fingerprint,
    idempotent,
    release,
)
from layers._intake_reads import (
    KPI_BY,
    hotspots,
    kpis,
)
from layers._records import IDEMPOTENCY
from layers._store_common import WGS84
from layers.errors import StoreError
from layers.i18n import normalize_lang
from layers.permissions import Account, PermissionDenied, can, filter_frame, require
from layers.report import Issue
from layers.schema import SOURCES

#: How far back a POSTed ``requested_datetime`` may lie (a platform forwarding a backlog after an
#: outage); older cases come in as files (:mod:`layers.ingest`), with their whole history.
REQUESTED_MAX_AGE = pd.Timedelta(days=366)
#: How far ahead of the server's clock it may lie (clock skew between two systems).
REQUESTED_MAX_AHEAD = pd.Timedelta(hours=1)
#: The longest description of a request, and note of a case action, that is kept.
TEXT_MAX_CHARS = 2000


def _outside_window(when: pd.Timestamp, now: pd.Timestamp, field: str) -> Issue | None:
    """The issue when ``when`` lies outside [``now`` - :data:`REQUESTED_MAX_AGE`, ``now`` +
    :data:`REQUESTED_MAX_AHEAD`] (a year 9999 would also overflow the sums made of it)."""
    earliest, latest = now - REQUESTED_MAX_AGE, now + REQUESTED_MAX_AHEAD
    if earliest <= when <= latest:
        return None
    return Issue("error", _E + "time_out_of_range", None, None, field,
                 {"field": field, "value": str(when)[:30],
                  "earliest": f"{earliest:%Y-%m-%d %H:%M}", "latest": f"{latest:%Y-%m-%d %H:%M}"})


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
        else:
            bad = _outside_window(when, now, "requested_datetime")
            if bad is not None:
                issues.append(bad)
                when = now
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
        "description": (_text(payload.get("description")) or "")[:TEXT_MAX_CHARS] or None,
        "requested_datetime": when, "address": (_text(payload.get("address_string"))
                                                or _text(payload.get("address")) or "")[:200]
        or None,
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
    cases stored and with the rows before it in the batch (``ids`` name those).

    The read asks the store only for open cases whose (category, H3 cell) pair is one the
    batch can match (:func:`near_cells`), so its cost follows the cases near the batch, not
    every open case of the district (with 12,000 open cases in the window, reading them all
    cost 42 ms per batch of 8 on PostGIS).
    """
    from layers.workflow import OPEN_STAGES

    if not rows:
        return []
    times = [pd.Timestamp(r["requested_datetime"]) for r in rows]
    c_id: list[str] = []
    c_x = c_y = np.empty(0, dtype=float)
    c_ns = np.empty(0, dtype=np.int64)
    c_cat_a = np.empty(0, dtype=object)
    if store.has_layer("incidents"):
        cells = near_cells([r["geometry"].x for r in rows], [r["geometry"].y for r in rows],
                           radius_m)
        pairs = [(str(r["category_code"]), int(c)) for r, disk in zip(rows, cells, strict=True)
                 for c in disk]
        h3col = f"h3_{DUPLICATE_H3_RES}"
        near = store.read("incidents", columns=["service_request_id", "category_code",
                                                "requested_datetime"],
                          where={("category_code", h3col): pairs,
                                 "stage": sorted(OPEN_STAGES)},
                          between={"requested_datetime": (min(times) - pd.Timedelta(hours=hours),
                                                          max(times) + pd.Timedelta(seconds=1))})
        if len(near):
            pts = near.geometry.to_numpy()
            c_id = near["service_request_id"].astype(str).tolist()
            c_cat_a = near["category_code"].astype(str).to_numpy(dtype=object)
            c_ns = pd.to_datetime(near["requested_datetime"]).to_numpy(
                dtype="datetime64[ns]").astype(np.int64)
            c_x, c_y = shapely.get_x(pts).astype(float), shapely.get_y(pts).astype(float)
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


#: The stored H3 resolution (``h3_<res>`` column) the duplicate search filters on.
DUPLICATE_H3_RES = 10


def near_cells(lon: Sequence[float], lat: Sequence[float], radius_m: float,
               *, res: int = DUPLICATE_H3_RES) -> list[NDArray[np.int64]]:
    """For each point, the ``h3_<res>`` values a stored point within ``radius_m`` can have.

    Points are stored with their cell at the finest resolution and its parents at the coarser
    ones (:func:`layers._store_common.h3_columns`); the point's own cell is taken the same way
    and widened by a ``grid_disk`` of ``k`` rings. Each ring adds at least a hexagon's width
    (``sqrt(3)`` edges), counted here at 70 % of the average edge for H3's distortion; below
    the finest resolution, a parent's region strays from its hexagon by up to a finer cell,
    which is added to the radius. A property test checks points at up to ``radius_m`` fall
    inside (``tests/layers/test_intake_duplicates.py``).

    Examples
    --------
    >>> [len(c) for c in near_cells([118.78], [32.06], 150.0)]  # res 10: two rings
    [19]
    """
    import h3
    import h3.api.basic_int as h3i

    from geo.hexes import cells_to_parents, lonlat_to_cells
    from layers.schema import H3_RESOLUTIONS

    finest = max(H3_RESOLUTIONS)
    base = lonlat_to_cells(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float), res=finest)
    own = base if res == finest else cells_to_parents(base, res)
    slack = 0.0 if res == finest else 2 * h3.average_hexagon_edge_length(res + 1, "m")
    width = 0.7 * np.sqrt(3) * h3.average_hexagon_edge_length(res, "m")
    k = max(1, int(np.ceil((radius_m + slack) / width)))
    return [np.asarray(h3i.grid_disk(int(c), k), dtype=np.int64) for c in own]


def due_times_of(rows: Sequence[Mapping[str, Any]], *, policy: Any = None
                 ) -> list[pd.Timestamp | None]:
    """:func:`layers.workflow.due_times` of parsed requests (``requested_datetime``,
    ``category_code``, ``item_code``, ``level``) without building frames: the limit of each
    distinct (category, item, level) once, then the policy's calendar once per level."""
    from layers.workflow import DEFAULT_POLICY

    pol = policy if policy is not None else DEFAULT_POLICY
    limit: dict[tuple[Any, Any, int], float] = {}
    by_level: dict[int, list[int]] = {}
    hours: list[float] = [np.nan] * len(rows)
    for i, r in enumerate(rows):
        try:
            lvl = int(r["level"])
        except (TypeError, ValueError):
            continue
        if lvl not in (1, 2, 3) or pd.isna(r["requested_datetime"]):
            continue
        cat = None if pd.isna(r.get("category_code")) else r.get("category_code")
        item = None if pd.isna(r.get("item_code")) else r.get("item_code")
        k = (cat, item, lvl)
        if k not in limit:
            limit[k] = pol.limits.hours(cat, lvl, item_code=item)
        hours[i] = limit[k]
        if not np.isnan(hours[i]):
            by_level.setdefault(lvl, []).append(i)
    out: list[pd.Timestamp | None] = [None] * len(rows)
    for lvl, idx in by_level.items():
        start = pd.to_datetime(pd.Series([rows[i]["requested_datetime"] for i in idx]))
        due = pol.add_hours(start.to_numpy(), np.array([hours[i] for i in idx]), level=lvl)
        for i, d in zip(idx, due, strict=True):
            out[i] = None if pd.isna(d) else pd.Timestamp(d)
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
        due = due_times_of([r for _, _, r, _ in ok])
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
    frame = gpd.GeoDataFrame({**{c: [g[2].get(c) for g in group] for c in cols},
                              "geometry": gpd.array.from_shapely(
                                  np.array([g[1]["geometry"] for g in group], dtype=object),
                                  crs=WGS84)}, geometry="geometry")
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
    from layers.workflow.transitions import refuse_unknown_options

    action = _text(payload.get("action"))
    if action is None:
        raise IntakeError.one("bad_action", column="action")
    if action == "collect":
        raise IntakeError.one("bad_field", field="action", value=action, column="action")
    if not store.has_layer("incidents") or not store.count(
            "incidents", where={"service_request_id": str(service_request_id)}):
        raise IntakeError.one("not_found", status=404, id=str(service_request_id)[:60])
    clock = now if now is not None else now_local()
    when = clock
    if _text(payload.get("time")):
        when = parse_time(payload["time"], "time")
        bad = _outside_window(when, clock, "time")
        if bad is not None:
            raise IntakeError([bad])
    options = {k: v for k, v in payload.items() if k not in ("action", "note", "time")}
    refuse_unknown_options(action, options)  # never actor, role, policy... as arguments
    note = (_text(payload.get("note")) or "")[:TEXT_MAX_CHARS]
    new, event = act_on_case(store, account, str(service_request_id), action, time=when,
                             note=note, **options)
    df = store.read("incidents", columns=_READ_COLS,
                    where={"service_request_id": str(service_request_id)})
    ev = {k: (v.isoformat() if isinstance(v, pd.Timestamp) else v) for k, v in event.items()
          if k != "actor"}
    return {"request": open311_view(df, lang)[0], "event": ev}



def store_error_json(error: StoreError, lang: str | None = None) -> dict[str, Any]:
    """A store failure in the API's error shape (503)."""
    return IntakeError.one("store", status=503, error=str(error)[:300]).to_json(lang)


__all__ = [
    "KPI_BY", "DUPLICATE_HOURS", "DUPLICATE_RADIUS_M", "MAX_FIXES", "Created", "GridIndex", "IntakeError",
    "Keyed", "Outcome", "case_action", "claim", "complete", "release", "create_request", "create_requests", "created_json",
    "due_times_of", "find_duplicate", "find_duplicates", "fingerprint",
    "get_request", "grid_index", "hotspots", "kpis", "idempotent", "issue_json", "list_requests", "metres_between",
    "new_request_id", "parse_request", "parse_time", "post_fixes", "refusal_json", "services",
    "store_error_json",
]
