"""What every page reads: the store (cached), its layers (cached), the clock, and the view.

Caching
-------
Layers are read once per *data version* and shared by every session through
``st.cache_resource`` (``st.cache_data`` would copy a large GeoDataFrame on every call). The data
version is the newest row of the store's audit log, so any write (the Data page, another
process, a later page's workflow action) makes the next run read fresh layers. Frames returned
here are shared: treat them as read-only (``.copy()`` before changing them).

The view
--------
The view a person looks at (sub-district, community, grid, layers, basemap, colouring and
language) lives in ``st.session_state`` and is mirrored into ``st.query_params`` on every run,
so the address bar is always a link to the current view; the page itself is the URL path
(``/explorer``, ``/wall``, ``/data``). Opening such a link restores the view.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import geopandas as gpd
import pandas as pd
import streamlit as st

from dashboard import maps
from geo.domain import LOCAL_TZ
from layers.config import Settings
from layers.i18n import LANGS
from layers.schema import SCHEMAS
from layers.store import Store, open_store

#: Layer toggles of the grid explorer (query-parameter values).
LAYER_KEYS: tuple[str, ...] = ("sub", "com", "comp", "ded", "inc")
DEFAULT_LAYERS: tuple[str, ...] = ("sub", "com", "comp", "ded")
#: Choropleth metrics of the grid explorer.
METRICS: tuple[str, ...] = (
    "none", "households", "population", "workers_per_1000_hh", "incidents_per_1000_res",
    "patrol_hours",
)

# One lock around the store: a GeoPackage connection is not meant for concurrent threads,
# and Streamlit runs every session in its own thread.
_LOCK = threading.RLock()


# --------------------------------------------------------------------------- settings, store


def settings() -> Settings:
    """The settings in force (``GRIDPULSE_*``)."""
    return Settings.from_env()


@st.cache_resource(show_spinner=False)
def _open(url: str) -> Store:
    return open_store(url)


def get_store() -> Store:
    """The store named by ``GRIDPULSE_STORE`` (one connection shared by all sessions)."""
    return _open(settings().store_url)


def locked(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn`` while holding the store lock."""
    with _LOCK:
        return fn(*args, **kwargs)


def data_version() -> str:
    """A token that changes whenever the store is written (its newest audit-log row).

    Called many times per script run (every cached read is keyed by it), so it first asks
    the store for the newest audit row id only (:func:`_audit_head`: one indexed ``max(fid)``
    on a connection kept open); the audit log is append-only, so while that id is unchanged
    the token is too, and the 50 newest rows are read only after a write.
    """
    store = get_store()
    url = settings().store_url
    try:
        head = _audit_head(store)
    except Exception:  # noqa: BLE001 - an empty or half-created store has no audit log yet
        return "empty"
    seen = _VERSIONS.get(url)
    if head is not None and seen is not None and seen[0] == head:
        return seen[1]
    new_rows = _rows_since(seen[0] if seen is not None else None, head)
    version = _version_of(store, new_rows, seen[1] if seen is not None else None)
    if head is not None:
        _VERSIONS[url] = (head, version)
    return version


def _rows_since(before: Any, head: Any) -> int | None:
    """How many audit rows were added between two heads of :func:`_audit_head` (``None``: unknown,
    e.g. a replaced file or the first call)."""
    def fid(h: Any) -> Any:
        return h[1] if isinstance(h, tuple) else h

    if before is None or head is None:
        return None
    if isinstance(before, tuple) != isinstance(head, tuple) or (
            isinstance(head, tuple) and before[0] != head[0]):
        return None  # another file at the same path
    try:
        n = int(fid(head)) - int(fid(before))
    except (TypeError, ValueError):
        return None
    return n if n > 0 else None


#: Audit rows read at most when looking back for the newest data change (then "all older").
_LOOK_BACK: tuple[int, ...] = (50, 1_000, 20_000)


def _version_of(store: Store, new_rows: int | None = None, previous: str | None = None) -> str:
    """The newest audit row that changed a layer, as a token.

    Reads (analyses, sign-ins, exports) are audited too but change no layer: they keep the
    caches warm. When only ``new_rows`` rows arrived since the ``previous`` token, only those
    are read (none of them a data change: the token stays); otherwise the log is searched
    back in growing steps, so any number of read rows after the last write still gives the
    same token.
    """
    from layers.app import is_data_action

    steps = (new_rows,) if new_rows is not None and previous is not None else _LOOK_BACK
    log = None
    for limit in steps:
        try:
            log = locked(store.audit_log, limit=limit)
        except Exception:  # noqa: BLE001 - an empty or half-created store has no audit log yet
            return "empty"
        if log is None or len(log) == 0:
            return previous or "empty"
        data = log[[is_data_action(a) for a in log["action"]]]
        if len(data):
            row = data.iloc[0]
            return "|".join(str(row.get(c, "")) for c in ("time", "action", "layer", "rows", "note"))
        if previous is not None and new_rows is not None:
            return previous  # only read rows since the last token
        if len(log) < limit:
            break  # the whole log read: no data change in it
    return "nodata"


#: Store URL -> (newest audit row id, data version) of the last :func:`data_version`.
_VERSIONS: dict[str, tuple[Any, str]] = {}
#: GeoPackage path -> (inode, read-only connection) used by :func:`_audit_head`.
_HEADS: dict[str, tuple[int, sqlite3.Connection]] = {}


def _audit_head(store: Store) -> Any:
    """The newest audit-log row id of ``store`` (``None`` when it has no audit log); on a
    GeoPackage with the file's inode.

    On a GeoPackage a read-only ``sqlite3`` connection is kept open (opening one costs ~10 ms
    on a 1 GB file, the query itself microseconds); it is reopened when the file is replaced
    (a new inode: the demo fill renames a new file over the store). Other engines ask through
    their own reader (:func:`layers.summaries._last_audit`).
    """
    path = getattr(store, "path", None)
    if path is None or not hasattr(store, "_connect"):
        from layers.summaries import _last_audit

        return locked(_last_audit, store)
    key = str(path)
    with _LOCK:
        ino = os.stat(key).st_ino
        have = _HEADS.get(key)
        if have is None or have[0] != ino:
            if have is not None:
                have[1].close()
            conn = sqlite3.connect(f"file:{key}?mode=ro", uri=True, check_same_thread=False,
                                   isolation_level=None)
            _HEADS[key] = have = (ino, conn)
        try:
            row = have[1].execute("SELECT max(fid) FROM audit_log").fetchone()
        except sqlite3.OperationalError:  # no audit log yet
            return None
        # a new file (same path) starts its own audit log: its ids may repeat the old file's
        return None if row is None or row[0] is None else (ino, row[0])


#: Where :func:`timed` appends its JSON lines (a path in this environment variable; unset:
#: nothing is measured). ``benchmarks/cold_start.py`` sets it to report server time per page.
TIMING_ENV = "GP_TIMING_LOG"


@contextlib.contextmanager
def timed(name: str) -> Iterator[None]:
    """Measure a section of a script run (wall and CPU seconds of this thread) into the file
    named by :data:`TIMING_ENV`, one JSON line per section: ``{"name", "s", "cpu_s", "end"}``.

    Costs nothing when the variable is unset.
    """
    path = os.environ.get(TIMING_ENV)
    if not path:
        yield
        return
    t0, c0 = time.perf_counter(), time.thread_time()
    try:
        yield
    finally:
        line = json.dumps({"name": name, "s": round(time.perf_counter() - t0, 4),
                           "cpu_s": round(time.thread_time() - c0, 4), "end": time.time()})
        with _LOCK, open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def follow_changes(every_s: float | None = None) -> None:
    """Rerun the page when the store changes (a case posted through the intake API...).

    A small fragment polls :func:`data_version` (the newest audit row: one cheap query) every
    ``every_s`` seconds (default: the wall's refresh setting) and reruns the whole page when it
    moved; the cached reads are keyed by that version, so the rerun reads the new rows. A
    rerun keeps every widget's state and does not reload a map whose content is unchanged.
    """
    seen = data_version()
    every = every_s if every_s is not None else settings().wall_refresh_s

    @st.fragment(run_every=every)
    def _watch() -> None:
        if data_version() != seen:
            st.rerun()

    _watch()


@st.cache_resource(max_entries=64, show_spinner=False)
def _read(url: str, version: str, name: str, columns: tuple[str, ...] | None) -> pd.DataFrame:
    store = _open(url)
    if name not in locked(store.layer_names):
        return _empty(name)
    cols = None if columns is None else list(columns)
    return locked(store.read, name, columns=cols)


def _empty(name: str) -> pd.DataFrame:
    schema = SCHEMAS[name]
    df = pd.DataFrame({c: pd.Series(dtype="object") for c in schema.columns})
    if schema.geometry:
        return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries([], crs=4326), crs=4326)
    return df


def layer(name: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """A layer of the store (GeoDataFrame in EPSG:4326 for spatial layers), shared read-only.

    The whole layer, whoever is signed in: computations cached for every session read it.
    What a person is shown row by row (cases, workers) goes through :func:`scoped` first.
    """
    return _read(settings().store_url, data_version(), name,
                 None if columns is None else tuple(columns))


def scope_key() -> tuple[str, str, str]:
    """``(role, scope code, department)`` of the signed-in account: part of the cache key of
    anything cached per person (``("", "", "")`` when nobody is signed in)."""
    acc = st.session_state.get("gp_account")
    if acc is None:
        return ("", "", "")
    return (acc.role, acc.scope_code, acc.department if acc.role == "department" else "")


def scoped(df: pd.DataFrame, name: str, key: tuple[str, str, str] | None = None) -> pd.DataFrame:
    """The rows of ``df`` (a ``name`` frame) inside the scope ``key`` (default: the signed-in
    account's, :func:`scope_key`); a grid worker keeps their grid, a department handler its
    department's cases. Cheap: a prefix test on one column."""
    from layers.permissions import Account, filter_frame

    role, code, dept = key if key is not None else scope_key()
    if not role or (not code and role != "department"):
        return df
    return filter_frame(Account("scope", role=role, scope_code=code, department=dept), df, name)


def has_data() -> bool:
    """True when the store holds at least one grid."""
    return len(layer("grids", ["code"])) > 0


@st.cache_resource(max_entries=8, show_spinner=False)
def _is_demo(url: str, version: str) -> bool:
    try:
        from data.demo import is_demo
    except ImportError:
        return False
    return bool(locked(is_demo, _open(url)))


def demo_loaded() -> bool:
    """True while the synthetic demo district is what the store holds."""
    return _is_demo(settings().store_url, data_version())


@st.cache_resource(max_entries=8, show_spinner=False)
def _is_filling(url: str, version: str) -> bool:
    from data.demo import is_filling

    return bool(locked(is_filling, _open(url)))


def demo_filling() -> bool:
    """True while ``gridpulse serve`` is still writing the demo's history (incidents, events,
    GPS fixes) in the background: :func:`data.demo.is_filling`."""
    return demo_loaded() and _is_filling(settings().store_url, data_version())


def now() -> pd.Timestamp:
    """The dashboard's "now": the local clock, except on the fixed, reproducible demo.

    A demo loaded live (``gridpulse serve``: its history ends at the moment it was loaded,
    :func:`data.demo.demo_anchor`) and any real store run on the real clock, so cases posted
    through the intake API appear as they arrive. The fixed demo (:data:`data.demo.DEMO_ANCHOR`,
    used by tests and reproducible screenshots) keeps its frozen anchor. Naive local time
    (Asia/Shanghai), like the store's datetimes.
    """
    if demo_loaded() and _demo_anchor(settings().store_url, data_version()) is None:
        from data.demo import DEMO_ANCHOR

        anchor = pd.Timestamp(DEMO_ANCHOR)
        return anchor.tz_convert(LOCAL_TZ).tz_localize(None) if anchor.tzinfo else anchor
    return pd.Timestamp.now(tz=LOCAL_TZ).tz_localize(None).floor("s")


@st.cache_resource(max_entries=8, show_spinner=False)
def _demo_anchor(url: str, version: str) -> pd.Timestamp | None:
    from data.demo import demo_anchor

    return locked(demo_anchor, _open(url))


@st.cache_resource(max_entries=24, show_spinner=False)
def _display(url: str, version: str, name: str, datum: str, tolerance_m: float,
             columns: tuple[str, ...]) -> gpd.GeoDataFrame:
    gdf = _read(url, version, name, None)
    keep = [c for c in columns if c in gdf.columns]
    if name == "grids" and "kind" in gdf.columns:
        # comprehensive grids tile the district (one coverage); dedicated grids overlay them
        # and are simplified as a coverage of their own
        parts = [maps.prepare_polygons(gdf.loc[gdf["kind"] == k, [*keep, gdf.geometry.name]],
                                       tolerance_m=tolerance_m, datum=datum)
                 for k in ("comprehensive", "dedicated")]
        out = pd.concat(parts)
        return out.loc[gdf.index[gdf.index.isin(out.index)]]
    return maps.prepare_polygons(gdf[[*keep, gdf.geometry.name]], tolerance_m=tolerance_m,
                                 datum=datum)


def display_layer(name: str, cfg: maps.MapConfig, *, columns: Sequence[str] = ("code", "name"),
                  tolerance_m: float = 4.0) -> gpd.GeoDataFrame:
    """A polygon layer ready for the browser (coverage-simplified, datum-converted, rounded)."""
    return _display(settings().store_url, data_version(), name, cfg.datum, tolerance_m,
                    tuple(columns))


# --------------------------------------------------------------------------- view


@dataclass(frozen=True)
class View:
    """The shareable view; each field is one query parameter (empty means the default)."""

    sub: str = ""
    com: str = ""
    grid: str = ""
    layers: tuple[str, ...] = DEFAULT_LAYERS
    basemap: str = ""
    metric: str = "none"
    lang: str = ""
    #: The explorer's date (``YYYY-MM-DD``; empty: today): the boundaries in force that day.
    asof: str = ""

    def to_params(self) -> dict[str, str]:
        """Only the fields that differ from the defaults, as strings."""
        out: dict[str, str] = {}
        default = View()
        for f in fields(self):
            v = getattr(self, f.name)
            if v == getattr(default, f.name):
                continue
            out[f.name] = ",".join(v) if isinstance(v, tuple) else str(v)
        return out

    @classmethod
    def from_params(cls, params: dict[str, str]) -> View:
        """Parse query parameters, dropping values that are not allowed."""
        kw: dict[str, Any] = {}
        for f in ("sub", "com", "grid"):
            v = params.get(f, "")
            if v.isdigit():
                kw[f] = v
        if "layers" in params:
            kw["layers"] = tuple(x for x in params["layers"].split(",") if x in LAYER_KEYS)
        if params.get("basemap") in maps.BASEMAPS:
            kw["basemap"] = params["basemap"]
        if params.get("metric") in METRICS:
            kw["metric"] = params["metric"]
        if params.get("lang") in LANGS:
            kw["lang"] = params["lang"]
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", params.get("asof", "")):
            with contextlib.suppress(ValueError):
                kw["asof"] = pd.Timestamp(params["asof"]).strftime("%Y-%m-%d")
        return cls(**kw)


_VIEW_KEY = "gp_view"


def view() -> View:
    """The session's view (read from the link on the session's first run)."""
    if _VIEW_KEY not in st.session_state:
        st.session_state[_VIEW_KEY] = View.from_params(
            {k: st.query_params.get(k, "") for k in st.query_params}
        )
    return st.session_state[_VIEW_KEY]


def set_view(**changes: Any) -> View:
    """Change the view (keeping sub-district ⊃ community ⊃ grid consistent) and the link."""
    v = replace(view(), **changes)
    if "sub" in changes and changes["sub"] != view().sub:
        v = replace(v, com=changes.get("com", ""), grid=changes.get("grid", ""))
    elif "com" in changes and changes["com"] != view().com:
        v = replace(v, grid=changes.get("grid", ""))
    st.session_state[_VIEW_KEY] = v
    sync_query_params()
    return v


def sync_query_params() -> None:
    """Write the view into ``st.query_params`` (only when it differs, to avoid churn).

    A wall kiosk's ``kiosk`` token stays in the link, so the unattended screen survives a reload.
    """
    want = view().to_params()
    if st.query_params.get("kiosk"):
        want["kiosk"] = st.query_params.get("kiosk")
    have = {k: st.query_params.get(k, "") for k in st.query_params}
    if want != have:
        st.query_params.from_dict(want)


def lang() -> str:
    """The interface language: the view's (the switch), else ``GRIDPULSE_LANG``, else Chinese."""
    return view().lang or settings().lang or "zh"


def map_config(*, dark: bool = False) -> maps.MapConfig:
    """Map settings: configuration, the view's basemap choice, and whether assets are local."""
    s = settings()
    choice = view().basemap or s.basemap
    if choice not in maps.available_basemaps(s):
        choice = "none" if s.offline else s.basemap
    try:
        static = bool(st.get_option("server.enableStaticServing"))
    except Exception:  # noqa: BLE001 - outside a server (AppTest) the option still exists
        static = False
    return maps.MapConfig.from_settings(
        s, basemap=choice, local_assets=static or s.offline, dark=dark, lang=lang()
    )


__all__ = [
    "DEFAULT_LAYERS", "LAYER_KEYS", "METRICS", "View", "data_version", "demo_loaded",
    "display_layer", "get_store", "has_data", "lang", "layer", "locked", "map_config", "now",
    "set_view", "settings", "sync_query_params", "view",
]
