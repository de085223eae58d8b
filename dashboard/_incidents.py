"""What the two incident pages share: filters, labels and the filtered, cached case table.

The case board (:mod:`dashboard.views.incidents`, code in :mod:`dashboard._cases`) and the
hotspot page (:mod:`dashboard.views.hotspots`, code in :mod:`dashboard._hotspots`) only wire
these together. Everything heavy is cached per data version (the store's newest audit row,
:func:`dashboard.state.data_version`), so a workflow action anywhere refreshes both pages:
the incident table is read once through :func:`dashboard.state.layer` (shared, read-only)
and filtered per :class:`IncidentFilter` and scope.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import state, widgets
from layers import analysis, taxonomy, workflow
from layers.i18n import t
from layers.schema import SOURCES

#: Columns of the incidents layer both pages read (no personal fields, no free text).
COLUMNS: tuple[str, ...] = (
    "service_request_id", "requested_datetime", "updated_datetime", "expected_datetime",
    "closed_datetime", "stage", "whistle", "department", "category_code", "item_code", "level",
    "source", "grid_code", "reworks", "extensions", "h3_8", "h3_9", "h3_10",
)


#: Time-window presets (days back from "now"; ``None``: everything).
WINDOWS: dict[str, int | None] = {"d7": 7, "d30": 30, "d90": 90, "d365": 365, "all": None}


#: A label of these pages (``incident_pages.<key>``) in the session's language.
tp = widgets.translator("incident_pages")


def item_label(code: Any, lang: str) -> str:
    """Whistle-list item name (事项) in ``lang``."""
    item = taxonomy.ITEMS.get(str(code))
    return str(code) if item is None else (item.name_zh if lang == "zh" else item.name_en)


def category_label(code: Any, lang: str) -> str:
    """Whistle-list category name (大类) in ``lang``."""
    cat = taxonomy.CATEGORIES.get(str(code))
    return str(code) if cat is None else (cat.name_zh if lang == "zh" else cat.name_en)


def source_label(code: Any, lang: str) -> str:
    """Case source (12345 hotline, patrol, ...) in ``lang``."""
    return t(f"incident_pages.source.{code}", lang) if code in (*SOURCES, "other") else str(code)


def department_label(code: Any, lang: str) -> str:
    """Department name in ``lang`` (``—`` when unassigned)."""
    if not isinstance(code, str) or not code:
        return "—"
    return workflow.label("department", code, lang)


@dataclass(frozen=True)
class IncidentFilter:
    """What the pages filter on; an empty tuple means "all".

    ``start``/``end`` bound ``requested_datetime`` half-open, ``[start, end)``; ``grids`` holds
    grid codes (the drill-down's scope), empty for the whole district.
    """

    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    stages: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    items: tuple[str, ...] = ()
    levels: tuple[int, ...] = ()
    sources: tuple[str, ...] = ()
    grids: tuple[str, ...] = ()

    def where(self) -> dict[str, list[Any]]:
        """The filter as ``Store.read``/``Store.h3_counts`` ``where``."""
        pairs = (("stage", self.stages), ("department", self.departments),
                 ("category_code", self.categories), ("item_code", self.items),
                 ("level", self.levels), ("source", self.sources), ("grid_code", self.grids))
        return {col: list(vals) for col, vals in pairs if vals}

    def between(self) -> dict[str, tuple[Any, Any]]:
        """The time window as ``between``."""
        if self.start is None and self.end is None:
            return {}
        return {"requested_datetime": (self.start, self.end)}

    def mask(self, df: pd.DataFrame) -> np.ndarray:
        """Rows of ``df`` (the incidents layer) that pass, as a boolean array."""
        ok = np.ones(len(df), dtype=bool)
        for col, vals in self.where().items():
            ok &= df[col].isin(vals).fillna(False).to_numpy(bool)
        req = pd.to_datetime(df["requested_datetime"])
        if self.start is not None:
            ok &= (req >= self.start).fillna(False).to_numpy(bool)
        if self.end is not None:
            ok &= (req < self.end).fillna(False).to_numpy(bool)
        return ok

    def key(self) -> tuple[Any, ...]:
        """A hashable, cache-friendly form (``IncidentFilter(*f.key()) == f``)."""
        return (self.start, self.end, self.stages, self.departments, self.categories, self.items,
                self.levels, self.sources, self.grids)


def window_bounds(choice: str, now: pd.Timestamp, dates: Sequence[Any] = ()) -> tuple[
        pd.Timestamp | None, pd.Timestamp | None]:
    """``[start, end)`` of a time-window preset ending at ``now`` (or a custom date range).

    Examples
    --------
    >>> window_bounds("d7", pd.Timestamp("2026-11-20 16:00"))
    (Timestamp('2026-11-13 16:00:00'), Timestamp('2026-11-20 16:00:01'))
    >>> window_bounds("custom", pd.Timestamp("2026-11-20"), ["2026-01-01", "2026-01-31"])
    (Timestamp('2026-01-01 00:00:00'), Timestamp('2026-02-01 00:00:00'))
    """
    if choice in WINDOWS:  # the presets are the KPI windows of layers.analysis
        return analysis.kpi_window(now, WINDOWS[choice]) if WINDOWS[choice] is not None else (None, None)
    end = now + pd.Timedelta(seconds=1)
    if choice == "custom":
        picked = [pd.Timestamp(d) for d in dates if d is not None]
        if not picked:
            return None, end
        return min(picked).normalize(), max(picked).normalize() + pd.Timedelta(days=1)
    return None, None


def time_window(prefix: str, *, default: str = "d90", container: Any = st.sidebar) -> tuple[
        pd.Timestamp | None, pd.Timestamp | None, str]:
    """The time-window widget (presets plus a custom date range); returns start, end and a label."""
    now = state.now()
    options = [*WINDOWS, "custom"]
    names = {k: tp(f"window.{k}") for k in options}  # bound now: AppTest formats outside the run
    choice = container.selectbox(tp("filter.window"), options, index=options.index(default),
                                 key=f"{prefix}_window", format_func=names.__getitem__)
    dates: Sequence[Any] = ()
    if choice == "custom":
        picked = container.date_input(tp("filter.dates"),
                                      value=((now - pd.Timedelta(days=30)).date(), now.date()),
                                      key=f"{prefix}_dates")
        dates = picked if isinstance(picked, list | tuple) else [picked]
    start, end = window_bounds(choice, now, dates)
    if choice != "custom":
        return start, end, names[choice]
    text = tp("window.range", start=start.date() if start is not None else "…",
              end=(end - pd.Timedelta(days=1)).date() if end is not None else "…")
    return start, end, text


def multiselect(label: str, options: Sequence[Any], *, key: str, fmt: Any,
                container: Any = st.sidebar) -> tuple[Any, ...]:
    """A multiselect where nothing picked means "all"."""
    return tuple(container.multiselect(label, list(options), key=key, format_func=fmt,
                                       placeholder=tp("filter.all_hint"), select_all=False))


def category_filters(prefix: str, *, container: Any = st.sidebar) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Category then item (items narrowed to the chosen categories)."""
    lang = state.lang()
    cats = multiselect(tp("filter.category"), taxonomy.CATEGORY_CODES, key=f"{prefix}_cat",
                       fmt=lambda c: f"{c} {category_label(c, lang)}", container=container)
    items = [i for i, it in taxonomy.ITEMS.items() if not cats or it.category_code in cats]
    st.session_state[f"{prefix}_item"] = [i for i in st.session_state.get(f"{prefix}_item", []) if i in items]
    its = multiselect(tp("filter.item"), items, key=f"{prefix}_item",
                      fmt=lambda c: f"{c} {item_label(c, lang)}", container=container)
    return cats, its


def level_filter(prefix: str, *, container: Any = st.sidebar) -> tuple[int, ...]:
    """Levels 1–3."""
    names = {v: tp("filter.level_value", level=v) for v in (1, 2, 3)}
    return multiselect(tp("filter.level"), (1, 2, 3), key=f"{prefix}_level", fmt=names.__getitem__,
                       container=container)


def scope_grids(v: state.View) -> tuple[str, ...]:
    """Grid codes inside the view's sub-district / community / grid (empty: the whole district)."""
    if not (v.sub or v.com or v.grid):
        return ()
    if v.grid:
        return (v.grid,)
    grids = state.layer("grids", ["code", "community_code"])
    if v.com:
        return tuple(sorted(grids.loc[grids["community_code"] == v.com, "code"].astype(str)))
    coms = state.layer("communities", ["code", "subdistrict_code"])
    in_sub = set(coms.loc[coms["subdistrict_code"] == v.sub, "code"].astype(str))
    return tuple(sorted(grids.loc[grids["community_code"].isin(in_sub), "code"].astype(str)))


def incidents() -> pd.DataFrame:
    """The incidents layer's :data:`COLUMNS` (cached per data version; shared, read-only)."""
    return state.layer("incidents", COLUMNS)


def filtered(flt: IncidentFilter) -> pd.DataFrame:
    """The incidents passing ``flt`` inside the signed-in account's scope (shared; do not modify)."""
    return _filtered(state.settings().store_url, state.data_version(), flt.key(), state.scope_key())


@st.cache_resource(max_entries=16, show_spinner=False)
def _filtered(url: str, version: str, key: tuple[Any, ...], scope: tuple[str, str, str] = ("", "", "")
              ) -> pd.DataFrame:
    df = state.scoped(incidents(), "incidents", scope)
    return df[IncidentFilter(*key).mask(df)]


def kpi_row(df: pd.DataFrame, *, now: pd.Timestamp, since: pd.Timestamp | None = None,
            until: pd.Timestamp | None = None) -> dict[str, float]:
    """The closed-loop KPIs of the filtered cases in ``[since, until)`` (:func:`layers.analysis.case_kpis`)."""
    return analysis.case_kpis(df, now=now, since=since, until=until)


def board_kpis(flt: IncidentFilter, *, now: pd.Timestamp, overdue_only: bool = False
               ) -> dict[str, float]:
    """The case board's KPI row: :func:`layers.analysis.kpi_job` (the one KPI definition of
    ``gridpulse kpis`` and ``GET /api/v1/kpis``) over the cases passing ``flt`` in the signed-in
    account's scope, as that account (checked, audited per view)."""
    from dashboard import _auth
    from layers.app import os_account

    table = state.locked(analysis.kpi_job, state.get_store(), _auth.account() or os_account(),
                         now=now, since=flt.start, until=flt.end, where=flt.where() or None,
                         overdue_only=overdue_only)
    return analysis.kpi_dict(table)


def grid_names() -> dict[str, str]:
    """Grid code → grid name (the demo's names already carry the community's)."""
    return widgets.admin_names()


def district_bounds() -> np.ndarray:
    """WGS-84 bounds of the district (or of whatever admin layer exists)."""
    for name in ("districts", "subdistricts", "grids"):
        df = state.layer(name)
        if len(df):
            return df.total_bounds
    return np.array([118.7, 32.0, 118.8, 32.1])
