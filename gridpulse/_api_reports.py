"""The API's report routes: patrol hours and re-partition proposals (an :class:`APIRouter`).

Thin callers of the same :mod:`layers.analysis` jobs as the CLI and the pages, as the account
of the request's token (its role and scope are checked there, and the job is audited):

* ``GET  /api/v1/patrols?date=YYYY-MM-DD[&grid=CODE[,CODE]][&min_hours=4][&raw=false]`` --
  :func:`layers.analysis.patrol_job`: per worker the columns of ``gridpulse patrols``, per grid
  the A/B post coverage, and the cleaning counts;
* ``POST /api/v1/plans/proposals`` -- :func:`layers.proposals.proposal_job` (nothing is saved):
  ``{"scope": "com:<code>"|"sub:<code>"|"district", "level", "balance", "band": [min, max],
  "radius_m", "seed", "weights": {"compactness", "disruption", "street"}, "locked": [...],
  "walls", "time_limit_s", "max_steps"}`` gives the proposed grids as a GeoJSON
  ``FeatureCollection``, each unit's (building's) new grid, the comparison table and the
  violations.

:func:`make_router` is included by :func:`gridpulse.api.create_app` with its own token
resolution and per-thread stores, so errors, tokens and scope work as on every other route.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

#: Body keys of a proposal (anything else is refused, so a typo never goes unnoticed).
PROPOSAL_KEYS: frozenset[str] = frozenset({
    "scope", "level", "balance", "band", "radius_m", "seed", "weights", "locked", "walls",
    "time_limit_s", "max_steps",
})
WEIGHT_KEYS: frozenset[str] = frozenset({"compactness", "disruption", "street"})


def jsonable(v: Any) -> Any:
    """``v`` as plain JSON: numpy scalars as Python numbers, NaN/NaT/inf as ``null``,
    timestamps as ISO text; lists and dicts converted through.

    Examples
    --------
    >>> import numpy as np
    >>> jsonable({"a": np.int64(3), "b": [np.float64("nan"), 1.5]})
    {'a': 3, 'b': [None, 1.5]}
    """
    import numpy as np
    import pandas as pd

    if isinstance(v, Mapping):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple | np.ndarray):
        return [jsonable(x) for x in v]
    if v is None or v is pd.NaT:
        return None
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if isinstance(v, int | np.integer):
        return int(v)
    if isinstance(v, float | np.floating):
        f = float(v)
        return None if math.isnan(f) or math.isinf(f) else f
    if isinstance(v, pd.Timestamp | np.datetime64):
        ts = pd.Timestamp(v)
        return None if pd.isna(ts) else ts.isoformat()
    return v


def _bad(field: str, value: Any) -> Exception:
    from layers.intake import IntakeError

    return IntakeError.one("reports.api.bad_body", field=field, value=str(value)[:60],
                           column=field)


def _refusal(exc: Exception) -> Exception:
    """An :class:`~layers.analysis.AnalysisError` as the API's error (404 for a missing layer
    or code, 422 for a bad option)."""
    from layers.intake import IntakeError
    from layers.report import Issue

    key, params = exc.key, exc.params  # type: ignore[attr-defined]
    status = 422 if key.startswith(("reports.api.", "planner.cli.community")) else 404
    column = params.get("field") if key.startswith("reports.api.") else None
    return IntakeError([Issue("error", key, None, None, column, params)], status=status)


def patrols(store: Any, account: Any, params: Mapping[str, Any]) -> dict[str, Any]:
    """``GET /api/v1/patrols``: :func:`layers.analysis.patrol_job` as JSON."""
    import pandas as pd

    from layers.analysis import AnalysisError, patrol_job

    raw_day = str(params.get("date") or "").strip()
    try:
        day = pd.Timestamp(raw_day).normalize() if raw_day else None
    except ValueError:
        day = None
    if day is None or pd.isna(day):
        raise _bad("date", raw_day or "—")
    grids = [g.strip() for g in str(params.get("grid") or "").split(",") if g.strip()] or None
    try:
        min_hours = float(params.get("min_hours") or 4.0)
    except ValueError:
        raise _bad("min_hours", params.get("min_hours")) from None
    if not 0 <= min_hours <= 24:
        raise _bad("min_hours", min_hours)
    raw = str(params.get("raw", "false")).lower() in ("1", "true", "yes")
    try:
        hours = patrol_job(store, account, day=day, grids=grids, min_hours=min_hours, raw=raw)
    except AnalysisError as exc:
        raise _refusal(exc) from None
    from layers.analysis import PATROL_COLUMNS

    pw = hours.per_worker
    workers = [{c: jsonable(r[c]) for c in PATROL_COLUMNS}
               for r in pw.to_dict("records")]
    grid_cols = ["grid_code", "workers", "workers_seen", "covered_h", "a_h", "b_h",
                 "hours_with_presence"]
    pg = hours.per_grid
    grid_rows = [{c: jsonable(r.get(c)) for c in grid_cols} for r in pg.to_dict("records")]
    return {"date": day.date().isoformat(), "source": hours.source,
            "min_hours": min_hours, "workers": workers, "grids": grid_rows,
            "cleaning": {str(k): int(v) for k, v in hours.cleaning_totals().items()}}


def proposal_options(body: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword options of :func:`layers.proposals.proposal_job` from a request body;
    raises the API's 422 error naming the first bad field."""
    unknown = sorted(set(body) - PROPOSAL_KEYS)
    if unknown:
        raise _bad(unknown[0], body[unknown[0]])
    if not isinstance(body.get("scope"), str):
        raise _bad("scope", body.get("scope"))
    opts: dict[str, Any] = {"scope": body["scope"]}
    level = body.get("level", "grid")
    if level not in ("grid", "community"):
        raise _bad("level", level)
    opts["level"] = level
    balance = body.get("balance", "households")
    if balance not in ("households", "population"):
        raise _bad("balance", balance)
    opts["balance"] = balance
    band = body.get("band")
    if band is not None:
        if not (isinstance(band, list) and len(band) == 2
                and all(isinstance(x, int | float) and not isinstance(x, bool) for x in band)
                and 0 <= band[0] <= band[1]):
            raise _bad("band", band)
        opts["band"] = (float(band[0]), float(band[1]))

    def number(key: str, *, positive: bool = True, integer: bool = False) -> None:
        v = body.get(key)
        if v is None:
            return
        ok = isinstance(v, int) if integer else isinstance(v, int | float)
        if not ok or isinstance(v, bool) or (v <= 0 if positive else v < 0):
            raise _bad(key, v)
        opts[key] = v

    number("radius_m")
    number("seed", positive=False, integer=True)
    number("time_limit_s")
    number("max_steps", integer=True)
    weights = body.get("weights") or {}
    if not isinstance(weights, dict) or set(weights) - WEIGHT_KEYS:
        raise _bad("weights", weights)
    for k, v in weights.items():
        if not isinstance(v, int | float) or isinstance(v, bool) or v < 0:
            raise _bad(f"weights.{k}", v)
        opts[f"{k}_weight"] = float(v)
    locked = body.get("locked") or []
    if not isinstance(locked, list) or not all(isinstance(c, str) for c in locked):
        raise _bad("locked", locked)
    opts["locked"] = locked
    walls = body.get("walls", False)
    if not isinstance(walls, bool):
        raise _bad("walls", walls)
    opts["walls"] = walls
    return opts


def proposal(store: Any, account: Any, body: Mapping[str, Any]) -> dict[str, Any]:
    """``POST /api/v1/plans/proposals``: :func:`layers.proposals.proposal_job` as JSON."""
    from geo.partition import PartitionInputError
    from layers.analysis import AnalysisError
    from layers.proposals import proposal_job

    opts = proposal_options(body)
    try:
        res = proposal_job(store, account, **opts)
    except AnalysisError as exc:
        raise _refusal(exc) from None
    except PartitionInputError as exc:
        raise _bad("scope", exc) from None
    regions = res.regions
    if regions.crs is not None and regions.crs.to_epsg() != 4326:
        regions = regions.to_crs(4326)
    props = regions.drop(columns=regions.geometry.name)
    geoms = json.loads(regions.geometry.to_json(drop_id=True))["features"]
    features = [{"type": "Feature", "properties": jsonable(p), "geometry": g["geometry"]}
                for p, g in zip(props.to_dict("records"), geoms, strict=True)]
    units = res.assignment
    ids = units.index
    level = opts["level"]
    return {
        "scope": opts["scope"], "level": level, "seed": opts.get("seed", 0),
        "grids": {"type": "FeatureCollection", "features": features},
        "assignment": {str(i): (None if c is None else str(c))
                       for i, c in zip(ids, units.to_numpy(), strict=True)},
        "summary": {str(plan): jsonable(row) for plan, row in
                    res.summary.to_dict("index").items()},
        "violations": jsonable(list(res.violations)),
        "stopped_by_time": list(res.search.get("stopped_by_time") or []),
    }


def make_router(account_async: Callable[[Request], Awaitable[Any]],
                with_store: Callable[..., Awaitable[Any]]) -> APIRouter:
    """The report routes, resolving the token with ``account_async(request)`` and running each
    job with ``with_store(fn, *args)`` (the app's per-thread store)."""
    router = APIRouter(tags=["analysis"])

    @router.get("/api/v1/patrols",
                summary="Patrol hours per worker and A/B coverage per grid of one day in the "
                        "token's scope (`gridpulse patrols`' and the patrol page's numbers): "
                        "?date=&grid=&min_hours=&raw=")
    async def get_patrols(request: Request) -> JSONResponse:
        acc = await account_async(request)
        return JSONResponse(await with_store(patrols, acc, dict(request.query_params)))

    @router.post("/api/v1/plans/proposals",
                 summary="A re-partition proposal (not saved): the proposed grids as GeoJSON, "
                         "each building's grid and the comparison table (`gridpulse "
                         "repartition`'s and the planner page's run)",
                 openapi_extra={"requestBody": {"content": {"application/json": {"schema": {
                     "type": "object", "required": ["scope"], "properties": {
                         "scope": {"type": "string", "example": "com:320106001001"},
                         "level": {"type": "string", "enum": ["grid", "community"]},
                         "balance": {"type": "string", "enum": ["households", "population"]},
                         "band": {"type": "array", "items": {"type": "number"},
                                  "example": [300, 500]},
                         "radius_m": {"type": "number"}, "seed": {"type": "integer"},
                         "weights": {"type": "object", "properties": {
                             k: {"type": "number"} for k in sorted(WEIGHT_KEYS)}},
                         "locked": {"type": "array", "items": {"type": "string"}},
                         "walls": {"type": "boolean"}, "time_limit_s": {"type": "number"},
                         "max_steps": {"type": "integer"}}}}}}})
    async def post_proposal(request: Request) -> JSONResponse:
        acc = await account_async(request)
        raw = await request.body()
        try:
            body = json.loads(raw.decode("utf-8")) if raw.strip() else {}
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            from layers.intake import IntakeError

            raise IntakeError.one("bad_json", status=400, error=str(e)[:120]) from None
        if not isinstance(body, dict):
            raise _bad("body", type(body).__name__)
        return JSONResponse(await with_store(proposal, acc, body))

    return router


__all__ = ["PROPOSAL_KEYS", "jsonable", "make_router", "patrols", "proposal",
           "proposal_options"]
