"""Analysis reads of the intake API (KPIs and hotspots): the same jobs as the CLI and the pages.

Split out of :mod:`layers.intake`, which re-exports every public name here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from layers import taxonomy
from layers._intake_base import (
    IntakeError,
    _text,
    now_local,
    parse_time,
)
from layers.permissions import Account

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
