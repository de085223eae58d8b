"""Versions of the whole plan: grids, buildings' grid codes and workers' grid assignments.

A **plan** is what a re-partition changes: the ``grids`` layer, the grid code of every
building and the grid (and A/B post) of every worker. A **plan version** keeps all three
together with an **effective date** (生效日期): a plan can be saved today to take effect on a
future date, or recorded with a past date when history is imported. The version **in force**
at a moment is the saved version with the latest effective date not after it (the higher
version number wins a tie), so analyses of the past (:func:`boundaries_at`,
:func:`grid_codes_at`) use the boundaries of their time.

Saving, rolling back and activating are application functions: they check the account
(:func:`layers.permissions.require`, ``plan.save`` / ``plan.rollback``), check the plan's hard
rules (:func:`check_plan`: grids out of the households band, grids in pieces on the map,
buildings in no grid), refuse a plan that breaks one unless ``confirm=True``
(:class:`UnconfirmedViolationsError`), record the open violations in the version, and write
the audit log.

How it is stored (over the existing :class:`~layers.store.Store` primitives, both engines)
------------------------------------------------------------------------------------------
* ``gp_plan_snapshots`` (record table): the plan's contents, content-addressed (SHA-256), so
  a roll-back shares its source's snapshot. Written first; an unreferenced snapshot is inert.
* ``gp_plan_versions`` (record table): one row per version (effective date, actor, note,
  violations, band, state ``pending`` / ``saved`` / ``failed``, ``live_since``).
* The live layers: when the version is in force today it is written with ONE
  ``Store.write({"grids", "buildings", "workers"}, mode="replace")`` call, which both engines
  run in one transaction (all or nothing). The version row is claimed ``pending`` before that
  write and marked ``saved`` (with its ``plan_save`` audit row, same transaction) after it;
  when the write fails the row is marked ``failed`` and the three layers are as they were.
  A process killed between the two steps leaves a ``pending`` row that :func:`plan_versions`
  settles later by comparing its snapshot with the live layers.

The module is split along its sections (issue 16); this one is the public face (import every
name from here) and keeps the version store:

=========================  ================================================================
``layers._plan_model``     :class:`Plan`, :class:`Boundaries`, errors, dates, :func:`make_plan`
``layers._plan_rules``     the hard rules (:func:`check_plan`) and how violations read
``layers.plans`` (here)    snapshots, the version list and the readers of the past
                           (:func:`boundaries_at`, :func:`grid_codes_at`), saving, roll-back
                           and activation: everything that reads or writes the two record
                           tables under one state machine
=========================  ================================================================

Examples
--------
>>> effective_day("2026-12-01 15:30")
Timestamp('2026-12-01 00:00:00')
>>> sorted(HARD_RULES)
['fragmented', 'over_band', 'unassigned_buildings', 'under_band']
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from layers._plan_model import (
    DEFAULT_BAND,
    HARD_RULES,
    MAX_IDS,
    PENDING_TIMEOUT,
    SNAPSHOTS,
    VERSIONS,
    Boundaries,
    Plan,
    PlanError,
    UnconfirmedViolationsError,
    _as_grids,
    _locate,
    effective_day,
    make_plan,
    now_local,
    today_local,
)
from layers._plan_rules import (
    check_permission,
    check_plan,
    merge_reasons,
    open_errors,
    violation_text,
    violations_summary,
)
from layers.permissions import Account, require

# --------------------------------------------------------------------------- snapshots


def _frame_text(df: pd.DataFrame) -> str:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def snapshot_text(plan: Plan) -> str:
    """The stored form of a plan: JSON of three base64 (Geo)Parquet tables."""
    grids = plan.grids.copy()
    b = pd.DataFrame({"id": plan.buildings.index.astype(str),
                      "grid_code": plan.buildings.astype(object).to_numpy()})
    w = pd.DataFrame({"id": plan.workers["id"].astype(str),
                      "grid_code": plan.workers["grid_code"].astype(object),
                      "post": plan.workers["post"].astype(object)})
    return json.dumps({"grids": _frame_text(grids), "buildings": _frame_text(b),
                       "workers": _frame_text(w)}, sort_keys=True)


def _read_b64(text: str, *, geo: bool) -> pd.DataFrame:
    raw = io.BytesIO(base64.b64decode(text))
    return gpd.read_parquet(raw) if geo else pd.read_parquet(raw)


def plan_from_text(text: str) -> Plan:
    """The plan stored by :func:`snapshot_text`."""
    d = json.loads(text)
    grids = _read_b64(d["grids"], geo=True)
    b = _read_b64(d["buildings"], geo=False)
    w = _read_b64(d["workers"], geo=False)
    codes = pd.Series(b["grid_code"].astype(object).where(b["grid_code"].notna(), None).to_numpy(),
                      index=pd.Index(b["id"].astype(str), name="id"), name="grid_code", dtype=object)
    w = w.astype(object).where(w.notna(), None)
    return Plan(grids, codes, w)


_CACHE: dict[str, Plan] = {}


def _snapshot(store: Any, digest: str) -> Plan:
    if digest in _CACHE:  # content-addressed: a digest always names the same plan
        return _CACHE[digest]
    rows = store.records(SNAPSHOTS, where={"digest": digest})
    if not rows:
        raise PlanError("versions.error.missing_snapshot", digest=digest[:12])
    plan = plan_from_text(rows[0]["data"])
    if len(_CACHE) >= 8:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[digest] = plan
    return plan


def _put_snapshot(store: Any, plan: Plan) -> str:
    text = snapshot_text(plan)
    digest = hashlib.sha256(text.encode("ascii")).hexdigest()
    if not store.records(SNAPSHOTS, where={"digest": digest}):
        store.insert_record(SNAPSHOTS, {"digest": digest, "data": text, "created": now_local()})
    return digest


# --------------------------------------------------------------------------- the version list


def _rows(store: Any) -> list[dict[str, Any]]:
    return store.records(VERSIONS)


def plan_versions(store: Any, *, settle: bool = True) -> pd.DataFrame:
    """Every plan version, oldest first.

    Columns: ``version, state, effective, saved, actor, note, source_version, violations``
    (a list of records), ``n_errors``, ``confirmed``, ``band``, ``grids``, ``buildings``,
    ``workers``, ``live_since``, ``in_force`` (the version in force today) and ``live`` (the
    version whose contents are in the live layers). ``settle=True`` first settles ``pending``
    rows older than :data:`PENDING_TIMEOUT` (a save whose process died).
    """
    if settle:
        _settle(store)
    rows = _rows(store)
    cols = ["version", "state", "effective", "saved", "actor", "note", "source_version",
            "violations", "n_errors", "confirmed", "band", "grids", "buildings", "workers",
            "live_since", "in_force", "live"]
    if not rows:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in cols})
    df = pd.DataFrame(rows)
    df["violations"] = [json.loads(v) if v else [] for v in df["violations"]]
    df["n_errors"] = [len(open_errors(v)) for v in df["violations"]]
    df["band"] = [json.loads(v) if v else None for v in df["band"]]
    df["in_force"] = False
    df["live"] = False
    saved = df[df["state"] == "saved"]
    now = in_force_version(store, now_local(), rows=rows)
    if now is not None:
        df.loc[df["version"] == now, "in_force"] = True
    if saved["live_since"].notna().any():
        live = saved.loc[pd.to_datetime(saved["live_since"]).idxmax(), "version"]
        df.loc[df["version"] == live, "live"] = True
    return df[cols].sort_values("version").reset_index(drop=True)


def _saved(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted((r for r in rows if r["state"] == "saved"),
                  key=lambda r: (pd.Timestamp(r["effective"]), int(r["version"])))


def in_force_version(store: Any, when: Any, *, rows: Sequence[Mapping[str, Any]] | None = None
                     ) -> int | None:
    """The version in force at ``when`` (``None``: no saved version takes effect by then)."""
    when = pd.Timestamp(when)
    best = None
    for r in _saved(_rows(store) if rows is None else rows):
        if pd.Timestamp(r["effective"]) <= when:
            best = int(r["version"])
    return best


def _periods(rows: Sequence[Mapping[str, Any]]) -> list[tuple[pd.Timestamp, int]]:
    """``(effective, version)`` of the versions that are ever in force, in time order."""
    out: list[tuple[pd.Timestamp, int]] = []
    for r in _saved(rows):
        eff = pd.Timestamp(r["effective"])
        if out and out[-1][0] == eff:
            out[-1] = (eff, int(r["version"]))  # the later save on the same day supersedes
        else:
            out.append((eff, int(r["version"])))
    return out


def read_plan(store: Any, version: int) -> Plan:
    """The plan stored as ``version``."""
    rows = store.records(VERSIONS, where={"version": int(version)})
    if not rows or rows[0]["state"] != "saved":
        raise PlanError("versions.error.unknown_version", version=version)
    return _snapshot(store, rows[0]["snapshot"])


def _live_boundaries(store: Any) -> Boundaries:
    grids = (store.read("grids") if store.has_layer("grids")
             else gpd.GeoDataFrame({"code": pd.Series([], dtype=str)}, geometry=[], crs=4326))
    b = pd.Series(dtype=object, name="grid_code")
    if store.has_layer("buildings"):
        live = store.read("buildings", columns=["id", "grid_code"])
        b = pd.Series(live["grid_code"].astype(object).to_numpy(),
                      index=pd.Index(live["id"].astype(str), name="id"), name="grid_code")
    w = pd.DataFrame(columns=["id", "grid_code", "post"])
    if store.has_layer("workers"):
        lw = store.read("workers")
        w = pd.DataFrame({c: (lw[c] if c in lw.columns else None) for c in ("id", "grid_code", "post")})
    return Boundaries(grids, b, w)


def boundaries_at(store: Any, when: Any) -> Boundaries:
    """The grids, building→grid map and workers' assignments in force at ``when``.

    ``when`` is a date or datetime (naive local time). Without any saved plan version the live
    layers are returned (``version=None``). Before the first version's effective date the
    oldest version is used (``before_first=True``): the earliest boundaries on record.
    """
    rows = _rows(store)
    periods = _periods(rows)
    if not periods:
        return _live_boundaries(store)
    when = pd.Timestamp(when)
    effs = [p[0] for p in periods]
    i = int(np.searchsorted(np.asarray(effs, dtype="datetime64[us]"),
                            np.datetime64(when.as_unit("us").to_datetime64()), side="right")) - 1
    before = i < 0
    i = max(i, 0)
    version = periods[i][1]
    row = next(r for r in rows if int(r["version"]) == version)
    plan = _snapshot(store, row["snapshot"])
    until = effs[i + 1] if i + 1 < len(effs) else None
    return Boundaries(plan.grids, plan.buildings, plan.workers, version=version,
                      effective=effs[i], until=until, before_first=before,
                      violations=json.loads(row["violations"] or "[]"))


def grid_codes_at(store: Any, points: gpd.GeoDataFrame | gpd.GeoSeries, times: Any) -> pd.Series:
    """The grid holding each point at its time, under the boundaries in force then.

    Parameters
    ----------
    store
        An open store.
    points
        Points (EPSG:4326), e.g. cases or GPS fixes.
    times
        One time per point (aligned), e.g. ``requested_datetime``.

    Returns
    -------
    pandas.Series
        Grid codes (comprehensive grids first), ``None`` outside every grid, on the points'
        index. Without any saved plan version: the live grids for every point.
    """
    geoms = points.geometry if isinstance(points, gpd.GeoDataFrame) else points
    if geoms.crs is not None and geoms.crs.to_epsg() != 4326:
        geoms = geoms.to_crs(4326)
    arr = np.asarray(geoms.values, dtype=object)
    out = np.full(len(arr), None, dtype=object)
    periods = _periods(_rows(store))
    if not periods:
        b = _live_boundaries(store)
        return pd.Series(_locate(arr, b.grids), index=geoms.index, name="grid_code", dtype=object)
    ts = pd.Series(times, index=geoms.index)
    ts = (pd.to_datetime(ts) if pd.api.types.is_datetime64_any_dtype(ts)
          else pd.to_datetime(ts, format="mixed"))
    t = ts.to_numpy(dtype="datetime64[us]")
    effs = np.asarray([p[0].as_unit("us").to_datetime64() for p in periods], dtype="datetime64[us]")
    seg = np.maximum(np.searchsorted(effs, t, side="right") - 1, 0)
    seg[pd.isna(t)] = len(periods) - 1  # no time: today's boundaries
    rows = _rows(store)
    for s in np.unique(seg):
        sel = np.flatnonzero(seg == s)
        row = next(r for r in rows if int(r["version"]) == periods[s][1])
        out[sel] = _locate(arr[sel], _snapshot(store, row["snapshot"]).grids)
    return pd.Series(out, index=geoms.index, name="grid_code", dtype=object)


def has_versions(store: Any) -> bool:
    """True when at least one plan version is saved (boundaries may differ over time)."""
    return any(r["state"] == "saved" for r in _rows(store))


def assignments_at(store: Any, day: Any, grids: gpd.GeoDataFrame, workers: pd.DataFrame
                   ) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """``grids`` and ``workers`` (read from the live layers) as they were on ``day``.

    For patrol hours of a past day: the grids in force that day (the columns of ``grids``
    that the version has) and each worker's grid and post of that day (workers the version
    does not know keep theirs). Without plan versions, the frames come back unchanged.
    """
    if not has_versions(store):
        return grids, workers
    b = boundaries_at(store, day)
    cols = [c for c in grids.columns if c in b.grids.columns and c != grids.geometry.name]
    g = gpd.GeoDataFrame(pd.DataFrame(b.grids[cols]), geometry=b.grids.geometry.to_numpy(),
                         crs=b.grids.crs)
    if grids.geometry.name != "geometry":
        g = g.rename_geometry(grids.geometry.name)
    by_id = b.workers.set_index(b.workers["id"].astype(str))
    ids = workers["id"].astype(str)
    w = workers.copy()
    for col in ("grid_code", "post"):
        if col in w.columns and col in by_id.columns:
            then = ids.map(by_id[col])
            w[col] = then.where(ids.isin(by_id.index), w[col]).to_numpy()
    return g, w


def count_by_grid_at(store: Any, cases: gpd.GeoDataFrame, *, time_col: str = "requested_datetime",
                     recorded_col: str = "grid_code") -> pd.Series:
    """Cases per grid, each counted for the grid holding it under the boundaries of its day.

    A case outside every grid keeps its recorded ``grid_code``. Index: grid code; name ``count``.
    """
    if not len(cases):
        return pd.Series([], dtype="int64", name="count", index=pd.Index([], name="grid_code"))
    codes = grid_codes_at(store, cases, cases[time_col])
    if recorded_col in cases.columns:
        codes = codes.where(codes.notna(), cases[recorded_col].astype(object))
    out = codes.dropna().astype(str).value_counts().rename("count")
    out.index.name = "grid_code"
    return out


# --------------------------------------------------------------------------- saving


def _claim(store: Any, row: dict[str, Any]) -> int:
    """Insert ``row`` under the next free version number (two savers never share one)."""
    for _ in range(50):
        rows = _rows(store)
        version = 1 + max((int(r["version"]) for r in rows), default=0)
        if store.insert_record(VERSIONS, {**row, "version": version}):
            return version
    raise PlanError("versions.error.busy")


def _write_live(store: Any, plan: Plan, *, actor: str, note: str) -> None:
    """Write the plan's grids, buildings' codes and workers' assignments in ONE transaction."""
    layers: dict[str, pd.DataFrame] = {"grids": plan.grids}
    if store.has_layer("buildings"):
        b = store.read("buildings")
        new = b["id"].astype(str).map(plan.buildings)
        # a building in no grid keeps its old code: the saved version records it as a violation
        b["grid_code"] = new.where(new.notna(), b["grid_code"]).to_numpy()
        layers["buildings"] = b
    if store.has_layer("workers"):
        w = store.read("workers")
        by_id = plan.workers.set_index(plan.workers["id"].astype(str))
        ids = w["id"].astype(str)
        code = ids.map(by_id["grid_code"])
        post = ids.map(by_id["post"])
        w["grid_code"] = code.where(code.notna(), w["grid_code"]).to_numpy()
        if "post" in w.columns:
            w["post"] = post.where(ids.isin(by_id.index), w["post"]).to_numpy()
        layers["workers"] = w
    store.write(layers, mode="replace", actor=actor, note=note)


def _audit_note(version: int, effective: pd.Timestamp, note: str,
                violations: Sequence[Mapping[str, Any]]) -> str:
    extra = violations_summary(violations, "zh")
    text = f"v{version} 生效 {effective:%Y-%m-%d}" + (f": {note}" if note else "")
    return text + (f" · {extra}" if extra else "")


def _store_version(store: Any, account: Account, plan: Plan, *, effective: Any, note: str,
                   confirm: bool, band: tuple[float, float], balance: str,
                   source: int | None, action: str, today: Any,
                   reasons: Sequence[Mapping[str, Any]] = (), already_live: bool = False) -> int:
    day = effective_day(today_local() if today is None else today)
    eff = day if effective is None else effective_day(effective)
    violations = merge_reasons(check_plan(store, plan, band=band, balance=balance), reasons)
    if open_errors(violations) and not confirm:
        raise UnconfirmedViolationsError(violations)
    digest = _put_snapshot(store, plan)
    rows = _rows(store)
    later = [r for r in _saved(rows) if day >= pd.Timestamp(r["effective"]) > eff]
    goes_live = eff <= day and not later
    row = {"state": "pending", "effective": eff, "saved": now_local(), "actor": account.username,
           "note": note, "source_version": source, "snapshot": digest,
           "violations": json.dumps(violations, ensure_ascii=False, default=_json_default),
           "confirmed": bool(confirm and open_errors(violations)),
           "band": json.dumps({"lo": band[0], "hi": band[1], "balance": balance}),
           "grids": len(plan.grids), "buildings": len(plan.buildings),
           "workers": len(plan.workers), "live_since": None}
    version = _claim(store, row)
    audit_note = _audit_note(version, eff, note, violations)
    if goes_live and not already_live:
        try:
            _write_live(store, plan, actor=account.username, note=audit_note)
        except BaseException:
            store.update_records(VERSIONS, {"version": version, "state": "pending"},
                                 {"state": "failed"})
            raise
    store.update_records(
        VERSIONS, {"version": version, "state": "pending"},
        {"state": "saved", "live_since": now_local() if goes_live else None},
        audit={"action": action, "layer": "plan", "rows": len(plan.grids),
               "actor": account.username, "note": audit_note})
    return version


def _json_default(v: Any) -> Any:
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return str(v)


def save_plan(store: Any, account: Account, plan: Plan, *, effective: Any = None, note: str = "",
              confirm: bool = False, band: tuple[float, float] = DEFAULT_BAND,
              balance: str = "households", today: Any = None,
              reasons: Sequence[Mapping[str, Any]] = ()) -> int:
    """Save ``plan`` as a new version taking effect on ``effective`` (default: today).

    ``reasons``: an engine's violation records (:mod:`geo.partition`), whose explanations
    (manual move, which constraint blocked...) are recorded with the rules found here
    (:func:`merge_reasons`); the hard-rule check itself is always :func:`check_plan`.

    When the version is in force today (its effective date is today or earlier and no later
    saved version has taken effect since), the live ``grids``, ``buildings`` and ``workers``
    layers are replaced in one transaction; a future version waits for :func:`activate_due`;
    a past version superseded by a later one only enters the history.

    Raises
    ------
    PermissionDenied
        ``account`` may not save plans (``plan.save``). Nothing changed.
    UnconfirmedViolationsError
        The plan breaks a hard rule (:func:`check_plan`) and ``confirm`` is False.
    layers.errors.StoreError
        The write failed; the live layers are as they were and the version is ``failed``.
    """
    require(account, "plan.save")
    return _store_version(store, account, plan, effective=effective, note=note, confirm=confirm,
                          band=band, balance=balance, source=None, action="plan_save", today=today,
                          reasons=reasons)


def ensure_baseline(store: Any, account: Account, *, before: Any = None, note: str = "",
                    today: Any = None) -> int | None:
    """Before the first plan version, record the live boundaries as a baseline version.

    The baseline takes effect the day before ``before`` (or before today, whichever is
    earlier), so that analyses of any earlier date use the boundaries that were live until the
    first saved plan. It records whatever rules the live boundaries break (confirmed: it is
    the record of what is, not a new plan). Returns its version, or ``None`` when versions
    exist already.
    """
    require(account, "plan.save")
    if _rows(store) or not store.has_layer("grids"):
        return None
    day = effective_day(today_local() if today is None else today)
    first = day if before is None else min(day, effective_day(before))
    live = _live_boundaries(store)
    plan = Plan(_as_grids(live.grids), live.buildings.astype(object).where(live.buildings.notna(), None),
                live.workers.astype(object).where(live.workers.notna(), None))
    return _store_version(store, account, plan, effective=first - pd.Timedelta(days=1), note=note,
                          confirm=True, band=DEFAULT_BAND, balance="households", source=None,
                          action="plan_save", today=today, already_live=True)


def rollback_plan(store: Any, account: Account, version: int, *, effective: Any = None,
                  note: str = "", confirm: bool = False, today: Any = None) -> int:
    """Save the plan of ``version`` again as a new version (history is never rewritten).

    Buildings added since ``version`` are placed by location (:func:`make_plan`); the hard
    rules are checked again with the band ``version`` was saved with.
    """
    require(account, "plan.rollback")
    rows = store.records(VERSIONS, where={"version": int(version)})
    if not rows or rows[0]["state"] != "saved":
        raise PlanError("versions.error.unknown_version", version=version)
    old = _snapshot(store, rows[0]["snapshot"])
    band_rec = json.loads(rows[0]["band"] or "{}")
    band = (float(band_rec.get("lo", DEFAULT_BAND[0])), float(band_rec.get("hi", DEFAULT_BAND[1])))
    workers = {str(i): (c, p) for i, c, p in zip(old.workers["id"], old.workers["grid_code"],
                                                 old.workers["post"], strict=True)}
    plan = make_plan(store, old.grids, buildings=old.buildings.to_dict(), workers=workers)
    return _store_version(store, account, plan, effective=effective, note=note, confirm=confirm,
                          band=band, balance=str(band_rec.get("balance", "households")),
                          source=int(version), action="plan_rollback", today=today)


def activate_due(store: Any, account: Account, *, today: Any = None) -> int | None:
    """Write the version in force today into the live layers if it is not there yet.

    A version saved with a future effective date becomes live this way on (or after) that
    date: the CLI (``gridpulse plan activate``) and the planner page call it. Returns the
    version made live, or ``None`` when the live layers already hold the version in force.
    """
    day = effective_day(today_local() if today is None else today)
    rows = _rows(store)
    due = in_force_version(store, day, rows=rows)
    if due is None:
        return None
    saved = [r for r in rows if r["state"] == "saved" and r["live_since"] is not None]
    live = max(saved, key=lambda r: pd.Timestamp(r["live_since"]))["version"] if saved else None
    if live == due:
        return None
    require(account, "plan.save")
    row = next(r for r in rows if int(r["version"]) == due)
    plan = _snapshot(store, row["snapshot"])
    note = f"v{due} 生效 {pd.Timestamp(row['effective']):%Y-%m-%d}"
    _write_live(store, plan, actor=account.username, note=note)
    store.update_records(VERSIONS, {"version": due}, {"live_since": now_local()},
                         audit={"action": "plan_activate", "layer": "plan",
                                "rows": len(plan.grids), "actor": account.username, "note": note})
    return int(due)


def _same_as_live(store: Any, plan: Plan) -> bool:
    if not store.has_layer("grids"):
        return False
    live = store.read("grids", columns=["code"])
    a = sorted(zip(live["code"].astype(str),
                   shapely.to_wkb(np.asarray(live.geometry.values, dtype=object)), strict=True))
    b = sorted(zip(plan.grids["code"].astype(str),
                   shapely.to_wkb(np.asarray(plan.grids.geometry.values, dtype=object)), strict=True))
    return a == b


def _settle(store: Any) -> None:
    """Settle ``pending`` versions older than :data:`PENDING_TIMEOUT` (a save that died)."""
    limit = now_local() - PENDING_TIMEOUT
    for r in _rows(store):
        if r["state"] != "pending" or pd.Timestamp(r["saved"]) > limit:
            continue
        if pd.Timestamp(r["effective"]) > pd.Timestamp(r["saved"]).normalize():
            store.update_records(VERSIONS, {"version": r["version"], "state": "pending"},
                                 {"state": "saved"})  # a future version: nothing was to be written
            continue
        try:
            ok = _same_as_live(store, _snapshot(store, r["snapshot"]))
        except PlanError:
            ok = False
        store.update_records(VERSIONS, {"version": r["version"], "state": "pending"},
                             {"state": "saved" if ok else "failed",
                              "live_since": r["saved"] if ok else None})


__all__ = [
    "DEFAULT_BAND", "HARD_RULES", "MAX_IDS", "PENDING_TIMEOUT", "SNAPSHOTS", "VERSIONS",
    "check_permission", "now_local", "today_local", "Boundaries", "Plan", "PlanError", "UnconfirmedViolationsError",
    "activate_due", "assignments_at", "boundaries_at", "check_plan", "count_by_grid_at",
    "effective_day", "ensure_baseline", "grid_codes_at", "has_versions", "merge_reasons",
    "in_force_version", "make_plan", "open_errors", "plan_versions", "read_plan",
    "rollback_plan", "save_plan", "violation_text", "violations_summary",
]
