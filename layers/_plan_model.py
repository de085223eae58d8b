"""The whole plan's data model: :class:`Plan`, :class:`Boundaries`, errors, dates, and
:func:`make_plan` (a plan completed from the live layers).

Private to :mod:`layers.plans` (import from there): the leaf the rules
(:mod:`layers._plan_rules`) and the version store (:mod:`layers.plans`) share.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.domain import LOCAL_TZ
from geo.planner_defaults import DEFAULTS

VERSIONS = "gp_plan_versions"
SNAPSHOTS = "gp_plan_snapshots"
#: The households band of a comprehensive grid (the planner's one default: ``geo.planner_defaults``).
DEFAULT_BAND: tuple[float, float] = DEFAULTS.grid_band
#: Violation codes that are hard rules (severity ``error``): saving needs a confirmation.
HARD_RULES: frozenset[str] = frozenset({"over_band", "under_band", "fragmented",
                                        "unassigned_buildings"})
#: A ``pending`` version older than this is settled by comparing it with the live layers.
PENDING_TIMEOUT = pd.Timedelta(minutes=15)
#: Ids listed in a violation record (the rest are counted).
MAX_IDS = 10


class PlanError(ValueError):
    """A plan cannot be saved as given (bad date, unknown version...); nothing changed.

    ``key`` and ``params`` render it in any language: ``t(err.key, lang, **err.params)``.
    """

    def __init__(self, key: str, **params: Any) -> None:
        from layers.i18n import t

        self.key = key
        self.params = params
        super().__init__(t(key, "en", **params))

    def message(self, lang: str | None = None) -> str:
        """The error in ``lang``."""
        from layers.i18n import t

        return t(self.key, lang, **self.params)


class UnconfirmedViolationsError(PlanError):
    """The plan breaks a hard rule and ``confirm=True`` was not given; nothing changed.

    ``violations`` lists every violation found (errors and warnings).
    """

    def __init__(self, violations: Sequence[Mapping[str, Any]]) -> None:
        self.violations = [dict(v) for v in violations]
        errors = [v for v in self.violations if v.get("severity") == "error"]
        super().__init__("versions.error.unconfirmed", n=len(errors),
                         codes=", ".join(sorted({str(v["code"]) for v in errors})))


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Plan:
    """A whole plan: every grid, every building's grid code, every worker's grid and post.

    ``grids`` is the ``grids`` layer (EPSG:4326); ``buildings`` maps building id -> grid code
    (``None``: in no grid); ``workers`` has ``id``, ``grid_code``, ``post``.
    """

    grids: gpd.GeoDataFrame
    buildings: pd.Series
    workers: pd.DataFrame


@dataclass(frozen=True)
class Boundaries:
    """The boundaries in force at a moment (:func:`boundaries_at`).

    ``version`` is ``None`` when no plan version is stored (the live layers);
    ``effective``/``until`` bound the period the version is in force (``until`` ``None``: still
    in force). ``before_first`` is True when the moment precedes every stored version (the
    oldest version is used: the earliest boundaries known).
    """

    grids: gpd.GeoDataFrame
    buildings: pd.Series
    workers: pd.DataFrame
    version: int | None = None
    effective: pd.Timestamp | None = None
    until: pd.Timestamp | None = None
    before_first: bool = False
    violations: list[dict[str, Any]] = field(default_factory=list)


def today_local() -> pd.Timestamp:
    """Today's date (midnight, naive) in the store's local time zone (Asia/Shanghai)."""
    return pd.Timestamp.now(tz=LOCAL_TZ).tz_localize(None).normalize()


def now_local() -> pd.Timestamp:
    """The current time, naive, in Asia/Shanghai."""
    return pd.Timestamp.now(tz=LOCAL_TZ).tz_localize(None).as_unit("us")


def effective_day(value: Any) -> pd.Timestamp:
    """``value`` (a date, datetime or ISO text) as a day at local midnight.

    Raises :class:`PlanError` (``versions.error.bad_date``) for text that is not a date.
    """
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise PlanError("versions.error.bad_date", value=str(value)) from None
    if ts is pd.NaT:
        raise PlanError("versions.error.bad_date", value=str(value))
    if ts.tzinfo is not None:
        ts = ts.tz_convert(LOCAL_TZ).tz_localize(None)
    return ts.normalize().as_unit("us")


def _rep_points(gdf: gpd.GeoDataFrame) -> np.ndarray:
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    pts = shapely.point_on_surface(geoms)
    return np.asarray(pts, dtype=object)


def _locate(points: np.ndarray, grids: gpd.GeoDataFrame) -> np.ndarray:
    """Grid code (comprehensive first, then any kind) of each point; ``None`` outside all."""
    out = np.full(len(points), None, dtype=object)
    if not len(points) or not len(grids):
        return out
    codes = grids["code"].astype(str).to_numpy()
    kinds = (grids["kind"].astype(str).to_numpy() if "kind" in grids.columns
             else np.full(len(grids), "comprehensive"))
    tree = shapely.STRtree(np.asarray(grids.geometry.values, dtype=object))
    valid = ~shapely.is_missing(points)
    idx = np.flatnonzero(valid)
    pairs = tree.query(points[idx], predicate="intersects")
    rank = np.where(kinds[pairs[1]] == "comprehensive", 0, 1)
    order = np.lexsort((pairs[1], rank, pairs[0]))  # per point: comprehensive first, then row order
    p, g = pairs[0][order], pairs[1][order]
    first = np.unique(p, return_index=True)[1]
    out[idx[p[first]]] = codes[g[first]]
    return out


def make_plan(store: Any, grids: gpd.GeoDataFrame, *, buildings: Mapping[str, Any] | None = None,
              workers: Mapping[str, Any] | None = None) -> Plan:
    """A whole plan from new grids, completed from the store's live buildings and workers.

    Parameters
    ----------
    store
        An open :class:`~layers.store.Store`.
    grids
        The whole ``grids`` layer of the plan (EPSG:4326, the schema's columns).
    buildings
        ``{building id: grid code}`` decided by the planner (the page's proposal). Every other
        live building keeps its grid when that grid is still in the plan and holds the
        building's representative point; otherwise it gets the grid that holds the point
        (comprehensive grids first); otherwise it is in no grid (``None``).
    workers
        ``{worker id: grid code}`` or ``{worker id: (grid code, post)}``. Workers not named
        keep their grid and post.

    Returns
    -------
    Plan
    """
    grids = _as_grids(grids)
    given = {str(k): (None if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v))
             for k, v in (buildings or {}).items()}
    codes: pd.Series = pd.Series(dtype=object)
    if store.has_layer("buildings"):
        live = store.read("buildings", columns=["id", "grid_code"])
        ids = live["id"].astype(str).to_numpy()
        current = live["grid_code"].astype(object).where(live["grid_code"].notna(), None).to_numpy()
        pts = _rep_points(live)
        spatial = _locate(pts, grids)
        by_code = dict(zip(grids["code"].astype(str), grids.geometry.values, strict=True))
        keep = np.array([c is not None and str(c) in by_code and p is not None
                         and shapely.intersects(by_code[str(c)], p)
                         for c, p in zip(current, pts, strict=True)], dtype=bool)
        values = np.where(keep, current, spatial)
        codes = pd.Series(values, index=pd.Index(ids, name="id"), dtype=object)
    for k, v in given.items():
        codes.loc[k] = v
    codes = codes[~codes.index.duplicated(keep="last")].sort_index()
    w = pd.DataFrame({"id": pd.Series([], dtype=str), "grid_code": pd.Series([], dtype=object),
                      "post": pd.Series([], dtype=object)})
    if store.has_layer("workers"):
        cols = ["id", "grid_code", "post"]
        live_w = store.read("workers")
        w = pd.DataFrame({c: (live_w[c] if c in live_w.columns else None) for c in cols})
        w["id"] = w["id"].astype(str)
        w = w.astype({"grid_code": object, "post": object})
    for wid, val in (workers or {}).items():
        code, post = (val if isinstance(val, tuple) else (val, None))
        hit = w["id"] == str(wid)
        if hit.any():
            w.loc[hit, "grid_code"] = code
            if post is not None:
                w.loc[hit, "post"] = post
        else:
            w = pd.concat([w, pd.DataFrame({"id": [str(wid)], "grid_code": [code], "post": [post]})],
                          ignore_index=True)
    w = w.where(w.notna(), None).sort_values("id").reset_index(drop=True)
    return Plan(grids, codes.rename("grid_code"), w)


def _as_grids(grids: pd.DataFrame) -> gpd.GeoDataFrame:
    from layers.schema import SCHEMAS

    if not isinstance(grids, gpd.GeoDataFrame) or grids.crs is None:
        raise PlanError("versions.error.bad_grids")
    g = grids.to_crs(4326) if grids.crs.to_epsg() != 4326 else grids
    if g.geometry.name != "geometry":
        g = g.rename_geometry("geometry")
    cols = [c for c in SCHEMAS["grids"].columns if c in g.columns]
    if "code" not in cols:
        raise PlanError("versions.error.bad_grids")
    out = gpd.GeoDataFrame(pd.DataFrame(g[cols]).reset_index(drop=True),
                           geometry=np.asarray(g.geometry.values, dtype=object), crs=4326)
    return out

