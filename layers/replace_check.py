"""Replacing a layer without losing history: what a replace deletes, and who would be orphaned.

``store.write({layer: data}, mode="replace")`` swaps the whole layer. When other layers point
at its rows (``incident_events.service_request_id`` -> ``incidents``, ``buildings.grid_code``
-> ``grids``, ``patrol_points.worker_id`` -> ``workers``, see ``Field.ref`` in
:mod:`layers.schema`), rows whose key is missing from the new data leave those references
pointing at nothing. :func:`write_checked` is the write both the Data page and
``gridpulse import`` go through: it measures the replace first (:func:`replace_impact`) and
refuses it while it would orphan referencing rows, unless the caller names what happens to
them (``on_orphans="keep"``: leave them, dangling, and say so in the audit log;
``"delete"``: delete them in the same transaction, refused for append-only layers such as the
event log).

Record layers (append-only ones and those that grow over time: cases, patrol fixes) are
appended by default (:func:`default_mode`).

Examples
--------
>>> default_mode("incidents"), default_mode("incident_events"), default_mode("grids")
('append', 'append', 'replace')
>>> [(r.layer, r.column) for r in referencing("grids")]
[('buildings', 'grid_code'), ('workers', 'grid_code'), ('incidents', 'grid_code')]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from layers.errors import StoreError
from layers.i18n import normalize_lang, t
from layers.schema import SCHEMAS
from layers.store import Store, WriteMode

OrphanPolicy = Literal["refuse", "keep", "delete"]
ORPHAN_POLICIES: tuple[str, ...] = ("refuse", "keep", "delete")
#: Layers appended to unless replacing is asked for: append-only logs, and record layers whose
#: rows accumulate over time (a file of new cases or fixes adds to them).
APPEND_BY_DEFAULT: frozenset[str] = frozenset(
    name for name, s in SCHEMAS.items()
    if s.append_only or name in ("incidents", "patrol_points")
)
#: Most missing values quoted per referencing layer.
_SAMPLE = 5


class OrphanError(StoreError):
    """A replace would leave rows of other layers pointing at nothing; nothing was written.

    ``key``/``params`` render it in any language (``cas.orphans``); ``impact`` has the counts.
    """

    def __init__(self, key: str, impact: ReplaceImpact, **params: Any) -> None:
        self.impact = impact
        super().__init__(key, **params)


@dataclass(frozen=True)
class Reference:
    """``layer.column`` holds values of ``target.target_column``."""

    layer: str
    column: str
    target: str
    target_column: str


@dataclass(frozen=True)
class Orphans:
    """Rows of ``layer`` whose ``column`` points at a row the replace removes."""

    layer: str
    column: str
    rows: int
    values: tuple[str, ...]
    deletable: bool


@dataclass(frozen=True)
class ReplaceImpact:
    """What writing ``new_rows`` rows into ``layer`` in ``mode`` does to the stored layer.

    ``removed_rows`` existing rows disappear (their key is not in the new data) and
    ``replaced_rows`` are rewritten; ``orphans`` lists the referencing rows left pointing at
    removed ones. An append removes nothing.
    """

    layer: str
    mode: str
    existing_rows: int
    new_rows: int
    removed_rows: int
    replaced_rows: int
    orphans: tuple[Orphans, ...] = ()

    @property
    def orphaned_rows(self) -> int:
        """Referencing rows (all layers) the replace would orphan."""
        return sum(o.rows for o in self.orphans)

    def orphan_text(self, lang: str | None = None, *, values: bool = True) -> str:
        """``事件流转记录 incident_events.service_request_id：50,733 行（如 A1, A2）`` per layer.

        ``values=False`` leaves out the sample ids (text from files: for places that render
        markdown, show the ids in a table instead).
        """
        sep = "；" if normalize_lang(lang) == "zh" else "; "
        key = "cas.orphan_item" if values else "cas.orphan_count"
        return sep.join(t(key, lang, layer=_title(o.layer, lang), column=o.column,
                          rows=f"{o.rows:,}", values=", ".join(o.values)) for o in self.orphans)


def _title(layer: str, lang: str | None) -> str:
    s = SCHEMAS[layer]
    return f"{s.title_zh} {layer}" if normalize_lang(lang) == "zh" else layer


def default_mode(layer: str) -> WriteMode:
    """``append`` for log and record layers (:data:`APPEND_BY_DEFAULT`), else ``replace``."""
    return "append" if layer in APPEND_BY_DEFAULT else "replace"


def referencing(layer: str) -> list[Reference]:
    """Columns of other layers that refer to ``layer`` (from ``Field.ref``), in schema order."""
    return [Reference(name, f.name, layer, f.ref[1])
            for name, s in SCHEMAS.items() if name != layer
            for f in s.fields if f.ref is not None and f.ref[0] == layer]


def _values(data: pd.DataFrame, column: str) -> set[str]:
    if column not in data.columns:
        return set()
    return {str(v) for v in data[column].dropna().tolist()}


def replace_impact(store: Store, layer: str, data: pd.DataFrame, *,
                   mode: WriteMode = "replace") -> ReplaceImpact:
    """Measure a write of ``data`` into ``layer`` before doing it (nothing is written).

    Reads only key and reference columns. Rows of a referencing layer that already pointed at
    nothing before the replace are not counted.
    """
    s = SCHEMAS[layer]
    present = set(store.layer_names())
    existing = store.count(layer) if layer in present else 0
    if mode != "replace" or existing == 0:
        return ReplaceImpact(layer, mode, existing, len(data), 0, 0)
    old_keys = _values(store.read(layer, columns=[s.key]), s.key)
    new_keys = _values(data, s.key)
    orphans = []
    for ref in referencing(layer):
        if ref.layer not in present:
            continue
        if ref.target_column == s.key:
            old, new = old_keys, new_keys
        else:
            old = _values(store.read(layer, columns=[ref.target_column]), ref.target_column)
            new = _values(data, ref.target_column)
        gone = old - new
        if not gone:
            continue
        child = store.read(ref.layer, columns=[ref.column])[ref.column].dropna().astype(str)
        hit = child[child.isin(gone)]
        if len(hit):
            orphans.append(Orphans(ref.layer, ref.column, int(len(hit)),
                                   tuple(sorted(hit.unique())[:_SAMPLE]),
                                   not SCHEMAS[ref.layer].append_only))
    return ReplaceImpact(layer, mode, existing, len(data), len(old_keys - new_keys),
                         len(old_keys & new_keys), tuple(orphans))


def _without_orphans(store: Store, impact: ReplaceImpact, data: pd.DataFrame
                     ) -> dict[str, pd.DataFrame]:
    """The referencing layers with their orphaned rows removed (for ``on_orphans="delete"``)."""
    out: dict[str, pd.DataFrame] = {}
    for o in impact.orphans:
        target = next(r.target_column for r in referencing(impact.layer)
                      if (r.layer, r.column) == (o.layer, o.column))
        gone_values = (_values(store.read(impact.layer, columns=[target]), target)
                       - _values(data, target))
        frame = out.get(o.layer)
        if frame is None:
            frame = store.read(o.layer)
        col = frame[o.column]
        out[o.layer] = frame[~(col.notna() & col.astype(str).isin(gone_values))]
    return out


def _delete_cascade(store: Store, impact: ReplaceImpact, data: pd.DataFrame,
                    layers: dict[str, pd.DataFrame]) -> None:
    """Add the referencing layers minus their orphans to ``layers``, and theirs in turn."""
    locked = [o.layer for o in impact.orphans if not o.deletable]
    if locked:
        raise OrphanError("cas.orphans_append_only", impact, layer=impact.layer,
                          removed=f"{impact.removed_rows:,}", orphans=impact.orphan_text("en"),
                          layers=", ".join(locked))
    for child, frame in _without_orphans(store, impact, data).items():
        layers[child] = frame
        sub = replace_impact(store, child, frame)
        if sub.orphans:
            _delete_cascade(store, sub, frame, layers)


def write_checked(
    store: Store,
    layer: str,
    data: pd.DataFrame,
    *,
    mode: WriteMode | None = None,
    on_orphans: OrphanPolicy = "refuse",
    actor: str = "system",
    note: str = "",
) -> ReplaceImpact:
    """Write one layer the safe way: append by default for record layers, no silent orphans.

    Parameters
    ----------
    store, layer, data
        Where and what (``data`` already validated).
    mode
        ``replace`` or ``append``; ``None`` takes :func:`default_mode`.
    on_orphans
        What happens to rows of other layers that point at rows the replace removes:
        ``refuse`` (default: raise :class:`OrphanError`, write nothing), ``keep`` (leave them;
        the audit note says how many now point at nothing) or ``delete`` (remove them in the
        same transaction; refused when one of those layers is append-only, like the event log).

    Returns
    -------
    ReplaceImpact
        What the write did.
    """
    if on_orphans not in ORPHAN_POLICIES:
        raise ValueError(f"on_orphans must be one of {ORPHAN_POLICIES}, not {on_orphans!r}")
    mode = mode or default_mode(layer)
    impact = replace_impact(store, layer, data, mode=mode)
    layers: dict[str, pd.DataFrame] = {layer: data}
    if impact.orphans:
        params = {"layer": layer, "removed": f"{impact.removed_rows:,}",
                  "orphans": impact.orphan_text("en")}
        if on_orphans == "refuse":
            raise OrphanError("cas.orphans", impact, **params)
        if on_orphans == "delete":
            _delete_cascade(store, impact, data, layers)
        extra = t("cas.audit_orphans", "en", policy=on_orphans, rows=impact.orphaned_rows,
                  orphans=impact.orphan_text("en"))
        note = f"{note} ({extra})" if note else extra
    store.write(layers, mode=mode, actor=actor, note=note)
    return impact


def impact_table(impact: ReplaceImpact, lang: str | None = None) -> pd.DataFrame:
    """The impact as rows ``what | rows`` for a screen: kept, removed, each orphaned layer."""
    rows: list[Mapping[str, Any]] = [
        {"what": t("cas.impact_existing", lang, layer=_title(impact.layer, lang)),
         "rows": impact.existing_rows},
        {"what": t("cas.impact_new", lang), "rows": impact.new_rows},
        {"what": t("cas.impact_removed", lang), "rows": impact.removed_rows},
    ]
    rows += [{"what": t("cas.impact_orphans", lang, layer=_title(o.layer, lang), column=o.column,
                        values=", ".join(o.values)), "rows": o.rows} for o in impact.orphans]
    return pd.DataFrame(rows, columns=["what", "rows"])
