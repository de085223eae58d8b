"""GPS fixes batches posted through the intake API (:func:`post_fixes`).

Split out of :mod:`layers.intake`, which re-exports :func:`post_fixes`.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from layers._intake_base import (
    _E,
    MAX_FIXES,
    IntakeError,
    _number,
    _text,
    now_local,
    parse_time,
)
from layers._intake_fast import clean_fixes_frame
from layers.errors import StoreError
from layers.permissions import Account, PermissionDenied, can, require
from layers.report import Issue

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
    _check_times(t)
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
    return _write_fixes(store, account, _frame(ids, t, acc_s, fids, lon, lat))


#: The earliest fix time taken: a phone whose GPS clock was reset reports 1970 or 1980.
FIX_EARLIEST = pd.Timestamp("2000-01-01")
#: How far ahead of the server's clock a fix may be dated (clock skew).
FIX_MAX_AHEAD = pd.Timedelta(hours=1)


def _check_times(t: pd.Series) -> None:
    """Refuse a batch holding a fix dated before :data:`FIX_EARLIEST` or after now + 1 h
    (a fix from the future would stay every worker's "latest position"); names each row."""
    latest = now_local() + FIX_MAX_AHEAD
    values = t.to_numpy()
    bad = np.flatnonzero((values < FIX_EARLIEST.to_datetime64())
                         | (values > latest.to_datetime64()))
    if len(bad):
        raise IntakeError([Issue("error", _E + "fix_time_out_of_range", None, int(i), "time",
                                 {"n": int(i) + 1, "value": str(t.iloc[i])[:30],
                                  "earliest": f"{FIX_EARLIEST:%Y-%m-%d}",
                                  "latest": f"{latest:%Y-%m-%d %H:%M}"})
                           for i in bad[:20]])


def _frame(ids: Sequence[Any], t: pd.Series, acc_s: pd.Series, fids: Sequence[Any],
           lon: np.ndarray, lat: np.ndarray) -> pd.DataFrame:
    """The parsed columns as one frame; a fix without ``fix_id`` gets one derived from its
    worker and time."""
    ns = t.to_numpy().astype("datetime64[ns]").astype(np.int64).tolist()
    fix_id = [fid or uuid5_hex(f"gridpulse:fix:{w}|{n}")
              for fid, w, n in zip(fids, ids, ns, strict=True)]
    return pd.DataFrame({"fix_id": fix_id, "worker_id": ids, "time": t.to_numpy(),
                         "accuracy_m": acc_s.to_numpy(), "lon": lon, "lat": lat})


_URL_NAMESPACE = uuid.NAMESPACE_URL.bytes


def uuid5_hex(name: str) -> str:
    """``uuid.uuid5(uuid.NAMESPACE_URL, name).hex`` without building a :class:`uuid.UUID`
    (a quarter of the cost; the ids of a 500-fix batch took a tenth of its API time).

    Examples
    --------
    >>> uuid5_hex("gridpulse:fix:W1|0") == uuid.uuid5(uuid.NAMESPACE_URL, "gridpulse:fix:W1|0").hex
    True
    """
    h = bytearray(hashlib.sha1(_URL_NAMESPACE + name.encode()).digest()[:16])
    h[6] = (h[6] & 0x0F) | 0x50  # version 5
    h[8] = (h[8] & 0x3F) | 0x80  # the RFC 4122 variant
    return h.hex()


def checked_fixes(frame: pd.DataFrame, *, fast: bool = True) -> tuple[pd.DataFrame, int]:
    """The rows of ``frame`` to store (a fix resent in the same batch once), validated, and
    how many resent rows were dropped; :class:`IntakeError` naming every bad row (``row`` as
    posted).

    ``fast`` tries :func:`layers._intake_fast.clean_fixes_frame` first and validates like a
    file (:func:`layers.validate.validate`) only when that declines; ``fast=False`` always
    validates like a file. Both give the same rows or the same refusal.
    """
    from layers.validate import validate

    dup = frame["fix_id"].duplicated().to_numpy()
    kept = np.flatnonzero(~dup)
    unique = frame[~dup].reset_index(drop=True) if dup.any() else frame
    data = clean_fixes_frame(unique) if fast else None  # the common, clean batch
    if data is None:
        res = validate(unique, "patrol_points", file="fixes", row_offset=0)
        if not res.ok:  # rows as posted (a fix resent in the same batch is dropped, not an error)
            raise IntakeError([Issue(i.severity, i.code, None,
                                     None if i.row is None else int(kept[i.row]), i.column,
                                     i.params)
                               for i in res.report.errors()])
        data = res.data
    return data, int(dup.sum())


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
    data, _ = checked_fixes(frame)
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
