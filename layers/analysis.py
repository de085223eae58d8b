"""Incident analysis as application functions: one definition each, shared by every front end.

``gridpulse hotspots`` and the hotspot page (热点) both call :func:`hotspots`, so the same
question gets the same answer wherever it is asked:

* the **study area** is :func:`study_area`: the H3 cells at ``res`` whose centre lies in the
  district (``districts`` layer; else the sub-districts, else the grids), plus any cell holding a
  case. Cells without cases are part of it, with count 0 (Gi* compares each neighbourhood with
  the whole area, so dropping empty cells inflates the mean and weakens real hot spots);
* emerging hot spots need at least :data:`MIN_EHSA_STEPS` time steps (ArcGIS's minimum of 10);
  below that the emerging columns are empty and ``n_steps`` says why.

Examples
--------
>>> MIN_EHSA_STEPS
10
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

#: Fewest time steps for emerging hot spot analysis (ArcGIS Pro's Emerging Hot Spot Analysis).
MIN_EHSA_STEPS = 10
#: Layers whose polygons define the district, first present and non-empty wins.
AREA_LAYERS: tuple[str, ...] = ("districts", "subdistricts", "grids")


def _area_cells(store: Any, res: int) -> np.ndarray:
    import h3.api.basic_int as h3i

    for layer in AREA_LAYERS:
        if not store.has_layer(layer):
            continue
        area = store.read(layer, columns=["geometry"])
        if len(area) == 0:
            continue
        geoms = area.geometry
        if area.crs is not None and area.crs.to_epsg() != 4326:
            geoms = geoms.to_crs(4326)
        cells: set[int] = set()
        for geom in geoms.values:
            if geom is None or geom.is_empty:
                continue
            for part in getattr(geom, "geoms", [geom]):
                if part.geom_type == "Polygon":
                    cells.update(int(c) for c in h3i.geo_to_cells(part, res))
        if cells:
            return np.fromiter(cells, dtype=np.int64, count=len(cells))
    return np.zeros(0, dtype=np.int64)


def study_area(store: Any, res: int) -> np.ndarray:
    """The Gi* study area at ``res``: district cells (zeros included) plus every cell with a case.

    Sorted int64 H3 ids; see the module docstring for which layer defines the district.
    """
    occupied = store.h3_counts("incidents", res=res)["cell"].to_numpy(dtype=np.int64)
    out = np.union1d(_area_cells(store, res), occupied)
    return out[out != 0].astype(np.int64)


def hotspots(
    store: Any,
    account: Any = None,
    *,
    res: int,
    since: pd.Timestamp | None = None,
    until: pd.Timestamp | None = None,
    where: Mapping[str, Any] | None = None,
    k: int = 1,
    fdr: bool = True,
    step_days: int = 7,
    domain: np.ndarray | None = None,
    emerging: bool = True,
) -> tuple[pd.DataFrame, int]:
    """Gi* hot spots and emerging hot spots of the cases passing one filter.

    Parameters
    ----------
    store
        An open :class:`layers.store.Store` with an ``incidents`` layer.
    account
        The acting :class:`layers.permissions.Account`; its scope narrows the cases counted
        (the study area stays the district). ``None``: no narrowing (the CLI's own user).
    res
        H3 resolution (one of the stored ``h3_<res>`` columns).
    since, until
        ``requested_datetime`` window ``[since, until)``; ``None``: open-ended. Emerging hot
        spots use weekly (``step_days``) bins ending at ``until`` (or the day after the last case).
    where
        Column filters as ``Store.h3_counts(where=...)`` (category, stage, department...).
    k, fdr
        Neighbourhood rings and the FDR correction of :func:`geo.hotspots.hotspots`.
    domain
        A study area already computed with :func:`study_area` (a cache); ``None``: compute it.
    emerging
        ``False``: Gi* only (the emerging columns empty, ``n_steps`` still counted).

    Returns
    -------
    (table, n_steps)
        ``table`` indexed by ``cell`` (int64, every cell of the study area) with ``count``,
        ``z``, ``p``, ``gi_bin`` and, when ``n_steps >= MIN_EHSA_STEPS``, ``ehsa`` (pattern),
        ``ehsa_category``, ``trend_z``, ``trend_p`` (else ``None``/0/NaN).
    """
    from geo.emerging import emerging_hotspots, space_time_cube
    from geo.hotspots import hex_weights
    from geo.hotspots import hotspots as gi_star

    flt: dict[str, Any] = dict(where or {})
    if account is not None:
        from layers.permissions import scope_where

        codes = None
        if account.scope_code and store.has_layer("grids"):
            codes = store.read("grids", columns=["code"])["code"].astype(str).tolist()
        flt.update(scope_where(account, "incidents", grid_codes=codes))
    between = {"requested_datetime": (since, until)} if (since is not None or until is not None) else None
    if domain is None:
        domain = study_area(store, res)
    sel = store.h3_counts("incidents", res=res, where=flt or None, between=between)
    counts = sel.groupby("cell")["count"].sum().reindex(domain, fill_value=0)
    counts.index = pd.Index(domain, name="cell")
    w = hex_weights(domain, k=k)
    table = gi_star(counts, weights=w, fdr=fdr)

    col = f"h3_{res}"
    read = [col, "requested_datetime"]
    pts = store.read("incidents", columns=read, where=flt or None, between=between) if emerging else (
        pd.DataFrame({col: pd.Series([], dtype="int64"), "requested_datetime": pd.Series([], dtype="M8[ns]")}))
    times = pd.to_datetime(pts["requested_datetime"])
    step = pd.Timedelta(days=step_days)
    t_end = until if until is not None else (
        (times.max() + pd.Timedelta(1, "ns")).ceil("D") if len(pts) else None)
    t_start = since if since is not None else (times.min() if len(pts) else None)
    n_steps = int((t_end - t_start) // step) if t_end is not None and t_start is not None else 0
    n = domain.size
    if n_steps >= MIN_EHSA_STEPS and len(pts):
        cube = space_time_cube(pts[col].to_numpy(dtype=np.int64), times.to_numpy(), step=step, end=t_end,
                               n_steps=n_steps, domain=domain)
        ehsa = emerging_hotspots(cube, k=k, fdr=fdr, weights=w)
        table["ehsa"] = ehsa["pattern"].to_numpy()
        table["ehsa_category"] = ehsa["category"].to_numpy(np.int64)
        table["trend_z"] = ehsa["trend_z"].to_numpy()
        table["trend_p"] = ehsa["trend_p"].to_numpy()
        table.attrs["ehsa_starts"] = cube.starts
    else:
        table["ehsa"] = [None] * n
        table["ehsa_category"] = np.zeros(n, np.int64)
        table["trend_z"] = np.full(n, np.nan)
        table["trend_p"] = np.full(n, np.nan)
    return table, n_steps


# --------------------------------------------------------------------------- case KPIs

#: The window of the headline case KPIs (在办, 超期, 结案率, 按期结案率...) on the wall and the
#: case board's default: cases received in the last this many days up to ``now``.
KPI_WINDOW_DAYS = 90


def kpi_window(now: pd.Timestamp, days: int | None = KPI_WINDOW_DAYS) -> tuple[
        pd.Timestamp | None, pd.Timestamp]:
    """``[since, until)`` of the cases received in the last ``days`` days up to ``now`` (inclusive).

    ``days=None``: everything received up to ``now``.

    Examples
    --------
    >>> kpi_window(pd.Timestamp("2026-11-20 16:00"), 7)
    (Timestamp('2026-11-13 16:00:00'), Timestamp('2026-11-20 16:00:01'))
    """
    now = pd.Timestamp(now)
    until = now + pd.Timedelta(seconds=1)
    return (None if days is None else now - pd.Timedelta(days=days)), until


def case_kpi_table(cases: pd.DataFrame, *, now: Any = None, since: pd.Timestamp | None = None,
                   until: pd.Timestamp | None = None, by: str | None = None) -> pd.DataFrame:
    """The one definition of every case KPI: :func:`geo.kpis.kpis` of the cases received in the window.

    The window is ``[since, until)`` on ``requested_datetime``, and never after ``now`` (cases
    stamped later are not yet received); stocks (``open``, ``overdue_open``) are taken at
    ``now``, rates over the cases of the window. ``by``: a column to group on (one row per
    value); ``None``: one row, index ``"all"``.
    """
    from geo.kpis import kpis

    req = pd.to_datetime(cases["requested_datetime"])
    ok = pd.Series(True, index=cases.index)
    if since is not None:
        ok &= req >= pd.Timestamp(since)
    if until is not None:
        ok &= req < pd.Timestamp(until)
    if now is not None:
        ok &= req <= pd.Timestamp(now)
    sel = cases[ok.fillna(False).to_numpy(bool)]
    if by is None:
        sel = sel.assign(_all="all")
        return kpis(sel, by="_all", now=now).rename_axis(None)
    return kpis(sel, by=by, now=now)


def case_kpis(cases: pd.DataFrame, *, now: Any, since: pd.Timestamp | None = None,
              until: pd.Timestamp | None = None) -> dict[str, float]:
    """The case KPIs of all ``cases`` in the window as one dict (``{}`` when the window is empty).

    What the wall and the case board show; ``gridpulse kpis`` writes the same numbers per group
    (:func:`case_kpi_table`).
    """
    return kpi_dict(case_kpi_table(cases, now=now, since=since, until=until))


def kpi_dict(table: pd.DataFrame) -> dict[str, float]:
    """The first row of a KPI table (:func:`case_kpi_table`, :func:`kpi_job`) as one dict of
    floats (``{}`` when it counts no case): what the wall and the case board show."""
    if table.empty or int(table.iloc[0]["incidents"]) == 0:
        return {}
    return {k: (float(v) if v is not None else float("nan")) for k, v in table.iloc[0].to_dict().items()}


# --------------------------------------------------------------------------- jobs (checked, audited)

#: Audit action of an analysis job (a read: :data:`layers.app.NON_DATA_ACTIONS` skips it).
AUDIT_HOTSPOTS = "analysis_hotspots"
AUDIT_KPIS = "analysis_kpis"
#: Columns :func:`kpi_job` reads (what :func:`geo.kpis.kpis` needs, plus the grouping codes).
KPI_COLUMNS: tuple[str, ...] = (
    "service_request_id", "requested_datetime", "expected_datetime", "closed_datetime",
    "updated_datetime", "stage", "whistle", "department", "category_code", "item_code", "level",
    "source", "grid_code", "reworks", "extensions",
)


def _scope_filter(store: Any, account: Any) -> dict[str, Any]:
    from layers.permissions import scope_where

    codes = None
    if account.scope_code and store.has_layer("grids"):
        codes = store.read("grids", columns=["code"])["code"].astype(str).tolist()
    return scope_where(account, "incidents", grid_codes=codes)


def _describe(**params: Any) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items() if v not in (None, {}, (), ""))


def hotspot_job(store: Any, account: Any, *, res: int, since: pd.Timestamp | None = None,
                until: pd.Timestamp | None = None, where: Mapping[str, Any] | None = None,
                k: int = 1, fdr: bool = True, step_days: int = 7,
                domain: np.ndarray | None = None, emerging: bool = True
                ) -> tuple[pd.DataFrame, int]:
    """:func:`hotspots` as a job of ``account``: checked (``view.hotspots``), counted over the
    cases in the account's scope (the study area stays the district), audited
    (:data:`AUDIT_HOTSPOTS`, with the options in the note).

    The CLI (``gridpulse hotspots``), the hotspot page and ``GET /api/v1/hotspots`` call this.
    Raises :class:`~layers.permissions.PermissionDenied` (nothing computed, nothing audited).
    """
    from layers.permissions import require

    require(account, "view.hotspots")
    table, n_steps = hotspots(store, account, res=res, since=since, until=until, where=where,
                              k=k, fdr=fdr, step_days=step_days, domain=domain,
                              emerging=emerging)
    store.record(AUDIT_HOTSPOTS, "incidents", rows=int(table["count"].sum()),
                 actor=account.username,
                 note=_describe(res=res, since=since, until=until, where=dict(where or {}), k=k,
                                fdr=fdr, emerging=emerging, scope=account.scope_code))
    return table, n_steps


def _merge_where(where: Mapping[str, Any] | None, scope: Mapping[str, Any]) -> dict[str, Any]:
    """``where`` narrowed by the scope's filters: a column both filter keeps the values in both
    (a drill-down inside the scope stays the drill-down).

    Examples
    --------
    >>> _merge_where({"grid_code": ["a", "b"], "stage": ["x"]}, {"grid_code": ["b", "c"]})
    {'grid_code': ['b'], 'stage': ['x']}
    """
    out = dict(where or {})
    for col, vals in scope.items():
        if col in out:
            mine = vals if isinstance(vals, list | tuple | set) else [vals]
            theirs = out[col] if isinstance(out[col], list | tuple | set) else [out[col]]
            keep = set(map(str, mine))
            out[col] = [v for v in theirs if str(v) in keep]
        else:
            out[col] = vals
    return out


def kpi_job(store: Any, account: Any, *, now: Any, since: pd.Timestamp | None = None,
            until: pd.Timestamp | None = None, where: Mapping[str, Any] | None = None,
            by: str | Callable[[pd.DataFrame], Any] | None = None,
            overdue_only: bool = False) -> pd.DataFrame:
    """:func:`case_kpi_table` of the cases in the account's scope, as a job of ``account``:
    checked (``view.incidents``), audited (:data:`AUDIT_KPIS`).

    ``where``: column filters as ``Store.read`` (category, stage...); ``by``: a column of the
    incidents to group on, or a function of the cases giving each one's group code (the CLI's
    sub-district and community), in column ``code``; ``None``: one row, index ``"all"``;
    ``overdue_only``: only the cases overdue at ``now`` (the case board's filter). The
    case board's KPI row, ``gridpulse kpis`` and ``GET /api/v1/kpis`` are this function.
    """
    from layers.permissions import require

    require(account, "view.incidents")
    flt = _merge_where(where, _scope_filter(store, account))
    cols = list(dict.fromkeys([*KPI_COLUMNS, *([by] if isinstance(by, str) else [])]))
    between = {"requested_datetime": (since, until)} if (since is not None or until is not None) \
        else None
    cases = store.read("incidents", columns=cols, where=flt or None, between=between) \
        if store.has_layer("incidents") else pd.DataFrame(columns=cols)
    if len(cases) and "geometry" in cases.columns and "grid_code" in cases.columns:
        from layers.plans import grid_codes_at, has_versions

        if has_versions(store):  # each case in the grid of its day (plan versions)
            import geopandas as gpd

            then = grid_codes_at(store, gpd.GeoSeries(cases["geometry"], crs=4326),
                                 cases["requested_datetime"])
            cases["grid_code"] = then.where(then.notna(), cases["grid_code"].astype(object))
    cases = pd.DataFrame(cases.drop(columns="geometry", errors="ignore"))
    if overdue_only and len(cases):  # the case board's "overdue only": past due at ``now``
        from layers.workflow import overdue

        cases = cases[overdue(cases, now=now).to_numpy(bool)]
    if callable(by):
        cases = cases.assign(code=by(cases))
        by = "code"
    table = case_kpi_table(cases, now=now, since=since, until=until, by=by)
    store.record(AUDIT_KPIS, "incidents", rows=int(table["incidents"].sum()) if len(table) else 0,
                 actor=account.username,
                 note=_describe(now=now, since=since, until=until, where=dict(where or {}),
                                by=by if isinstance(by, str) or by is None else "code",
                                overdue_only=overdue_only or None, scope=account.scope_code))
    return table


# --------------------------------------------------------------------------- patrol hours

#: Audit action of a patrol-hours read and of a re-partition proposal (reads: no layer changes).
AUDIT_PATROLS = "analysis_patrols"
AUDIT_PROPOSAL = "analysis_plan_proposal"
#: Hours inside the own grid a worker needs per day (the 4-hour rule, 4小时网格工作制).
PATROL_MIN_HOURS = 4.0
#: Columns of a worker's day, as ``gridpulse patrols`` writes them (then ``day``).
PATROL_COLUMNS: tuple[str, ...] = (
    "worker_id", "grid_code", "post", "hours_in_grid", "meets_rule", "distance_km",
    "first_fix", "last_fix", "hours_tracked", "n_fixes",
)
#: Fixes read around the day by the raw recompute (intervals across midnight count).
PATROL_MARGIN = pd.Timedelta(hours=1)


class AnalysisError(ValueError):
    """A job was asked something the store cannot answer (a missing layer, an unknown code);
    nothing was computed. ``key``/``params`` are a catalogue message (:meth:`message`)."""

    def __init__(self, key: str, /, **params: Any) -> None:
        from layers.i18n import t

        self.key = key
        self.params = dict(params)
        super().__init__(t(key, "en", **params))

    def message(self, lang: str | None = None) -> str:
        """What went wrong, in ``lang``."""
        from layers.i18n import t

        return t(self.key, lang, **self.params)

    def fix(self, lang: str | None = None) -> str | None:
        """What to do, in ``lang`` (``None`` when the catalogue has no advice)."""
        from layers.i18n import catalogue, t

        key = f"{self.key}.fix"
        return t(key, lang, **self.params) if key in catalogue() else None


@dataclass(frozen=True)
class PatrolHours:
    """The patrol figures of one day inside an account's scope (:func:`patrol_job`).

    ``per_worker``: :data:`PATROL_COLUMNS` and ``day``, one row per worker of the scope;
    ``per_grid``: :func:`geo.patrol.post_coverage` per grid of the scope plus ``day``;
    ``cleaning``: ``day, worker_id, reason, fixes`` (what cleaning did to each worker's fixes of the
    day; reasons of :data:`geo.patrol.REASONS` and ``kept``);
    ``source``: ``"summary"`` (the write-time summary) or ``"raw"`` (recomputed from the fixes).
    """

    per_worker: pd.DataFrame
    per_grid: pd.DataFrame
    cleaning: pd.DataFrame
    source: str

    def cleaning_totals(self, workers: Any = None) -> pd.Series:
        """Fixes per reason (``kept`` last) over every worker, or over the ids ``workers``."""
        from geo.patrol import REASONS

        cl = self.cleaning
        if workers is not None:
            cl = cl[cl["worker_id"].astype(str).isin({str(w) for w in workers}).to_numpy(bool)]
        order = [*REASONS, "kept"]
        return cl.groupby("reason")["fixes"].sum().reindex(order, fill_value=0).astype(np.int64)


def _cleaning_long(clean: Any) -> pd.DataFrame:
    """``worker_id, reason, fixes`` of a :class:`geo.patrol.CleanResult`."""
    kept = clean.fixes.groupby("worker_id").size().rename("fixes").reset_index().assign(
        reason="kept")
    dropped = clean.dropped.groupby(["worker_id", "reason"]).size().rename("fixes").reset_index()
    out = pd.concat([dropped, kept], ignore_index=True)[["worker_id", "reason", "fixes"]]
    return out.astype({"worker_id": str, "reason": str, "fixes": np.int64})


def _need_layers(store: Any, *names: str) -> None:
    for name in names:
        if not store.has_layer(name):
            raise AnalysisError("patrol.cli.no_layer", layer=name, store=store.url)


def _check_codes(account: Any, action: str, codes: Any) -> None:
    from layers.permissions import require

    for code in codes:
        require(account, action, scope_code=str(code))


def patrol_job(store: Any, account: Any, *, day: Any, grids: Any = None,
               min_hours: float = PATROL_MIN_HOURS, rules: Any = None, raw: bool = False,
               current: tuple[Any, Any] | None = None) -> PatrolHours:
    """Hours in the own grid per worker, A/B post coverage per grid and the cleaning counts of
    ``day``, as a job of ``account``: checked (``view.patrol``), restricted to the account's
    scope, audited (:data:`AUDIT_PATROLS`).

    ``gridpulse patrols``, the patrol page and ``GET /api/v1/patrols`` are this function.

    Parameters
    ----------
    store
        An open store with ``grids``, ``workers`` and ``patrol_points``.
    account
        The acting :class:`~layers.permissions.Account`.
    day
        The local day (a date, or anything :class:`pandas.Timestamp` reads).
    grids
        Grid codes to narrow to (each must lie in the account's scope: one outside it is
        refused); ``None``: every grid of the scope.
    min_hours
        Hours a worker needs inside the own grid (the 4-hour rule).
    rules
        :class:`geo.patrol.CleaningRules`; ``None``: the defaults, which the write-time summary
        (:mod:`layers.summaries`) holds. Other rules, ``raw=True``, or a day on which another
        plan version was in force recompute from the fixes of the day (with an hour either side).
    current
        ``(grids, workers)`` layers the caller already holds (``code`` + polygons;
        ``id, grid_code, post``): a cache; ``None``: read them.

    Raises
    ------
    layers.permissions.PermissionDenied
        The role may not see patrols, or a grid asked for is outside the scope (nothing read,
        nothing audited).
    AnalysisError
        A layer is missing.
    """
    from layers import summaries
    from layers.permissions import filter_frame, require

    require(account, "view.patrol")
    wanted = None if grids is None else sorted({str(g) for g in grids})
    if wanted:
        _check_codes(account, "view.patrol", wanted)
    _need_layers(store, "grids", "workers")
    ts = pd.Timestamp(day).normalize()
    if current is None:
        g_all = store.read("grids", columns=["code"])
        w_all = store.read("workers", columns=["id", "grid_code", "post"])
    else:
        g_all, w_all = current
    rules_default = rules is None or rules == summaries.RULES
    from layers import plans

    past_plan = plans.has_versions(store) and (
        plans.in_force_version(store, ts) != plans.in_force_version(store, plans.today_local()))
    scoped = bool(account.scope_code) or wanted is not None

    def in_scope_workers(workers: pd.DataFrame) -> set[str]:
        w = filter_frame(account, workers, "workers")
        if wanted is not None:
            w = w[w["grid_code"].astype(str).isin(set(wanted)).to_numpy(bool)]
        return set(w["id"].astype(str))

    def in_scope_grids(codes: pd.Series) -> np.ndarray:
        c = codes.astype(str)
        ok = c.str.startswith(account.scope_code) if account.scope_code else pd.Series(True, index=c.index)
        if wanted is not None:
            ok &= c.isin(set(wanted))
        return ok.to_numpy(bool)

    if rules_default and not raw and not past_plan:  # kept at write time
        # no fixes layer yet (a demo still filling in): the summary answers with no hours
        fig = summaries.patrol_figures(store, [ts], grids=g_all, workers=w_all,
                                       min_hours=min_hours)
        pw, pg, cl = fig.per_worker, fig.per_grid, fig.cleaning
        if scoped:
            ids = in_scope_workers(w_all)
            pw = pw[pw["worker_id"].astype(str).isin(ids).to_numpy(bool)]
            pg = pg[in_scope_grids(pg["grid_code"])]
            cl = cl[cl["worker_id"].astype(str).isin(ids).to_numpy(bool)]
        cleaning = cl[["day", "worker_id", "reason", "fixes"]].astype(
            {"worker_id": str, "reason": str, "fixes": np.int64})
        source = "summary"
    else:  # recompute; the grids and assignments in force that day
        from geo.patrol import CleaningRules, clean_fixes, post_coverage, time_in_grid

        _need_layers(store, "patrol_points")
        rules = rules if rules is not None else CleaningRules()
        g_day, w_day = plans.assignments_at(store, ts, g_all, w_all)
        lo, hi = ts - PATROL_MARGIN, ts + pd.Timedelta(days=1) + PATROL_MARGIN
        fixes = store.read("patrol_points", columns=["worker_id", "time", "accuracy_m"],
                           between={"time": (lo.to_pydatetime(), hi.to_pydatetime())})
        if scoped:
            ids = in_scope_workers(w_day)
            fixes = fixes[fixes["worker_id"].astype(str).isin(ids).to_numpy(bool)]
            w_day = w_day[w_day["id"].astype(str).isin(ids).to_numpy(bool)]
            g_day = g_day[in_scope_grids(g_day["code"])]
        clean = clean_fixes(fixes, rules=rules)
        pw = time_in_grid(clean, g_day, w_day, day=ts.date(), rules=rules, min_hours=min_hours)
        pw = pw.assign(day=ts)
        pg = post_coverage(clean, g_day, w_day, day=ts.date(), rules=rules).assign(day=ts)
        cleaning = _cleaning_long(clean).assign(day=ts)[["day", "worker_id", "reason", "fixes"]]
        source = "raw"
    pw = pw.reset_index(drop=True)
    store.record(AUDIT_PATROLS, "patrol_points", rows=len(pw), actor=account.username,
                 note=_describe(day=ts.date().isoformat(), grids=",".join(wanted or []),
                                min_hours=f"{min_hours:g}", source=source,
                                scope=account.scope_code))
    return PatrolHours(pw, pg.reset_index(drop=True), cleaning.reset_index(drop=True), source)
