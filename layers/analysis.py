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
    table = case_kpi_table(cases, now=now, since=since, until=until)
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


def kpi_job(store: Any, account: Any, *, now: Any, since: pd.Timestamp | None = None,
            until: pd.Timestamp | None = None, where: Mapping[str, Any] | None = None,
            by: str | Callable[[pd.DataFrame], Any] | None = None) -> pd.DataFrame:
    """:func:`case_kpi_table` of the cases in the account's scope, as a job of ``account``:
    checked (``view.incidents``), audited (:data:`AUDIT_KPIS`).

    ``where``: column filters as ``Store.read`` (category, stage...); ``by``: a column of the
    incidents to group on, or a function of the cases giving each one's group code (the CLI's
    sub-district and community), in column ``code``; ``None``: one row, index ``"all"``. The
    case board's KPI row, ``gridpulse kpis`` and ``GET /api/v1/kpis`` are this function.
    """
    from layers.permissions import require

    require(account, "view.incidents")
    flt = dict(where or {}) | _scope_filter(store, account)
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
    if callable(by):
        cases = cases.assign(code=by(cases))
        by = "code"
    table = case_kpi_table(cases, now=now, since=since, until=until, by=by)
    store.record(AUDIT_KPIS, "incidents", rows=int(table["incidents"].sum()) if len(table) else 0,
                 actor=account.username,
                 note=_describe(now=now, since=since, until=until, where=dict(where or {}),
                                by=by if isinstance(by, str) else "code",
                                scope=account.scope_code))
    return table
