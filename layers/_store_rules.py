"""What a write, a row update or an event append may do: the rules, once, for both engines.

The template methods of :mod:`layers._engine` call these before and inside their transaction;
every refusal is a :class:`~layers.errors.StoreError` with a catalogue key (``store.*``).

Examples
--------
>>> from layers.store import RowUpdate
>>> [u.changes for u in prepare_updates([RowUpdate("incidents", ["SR1"], {}, expect={"stage": "handling"})])]
[{'stage': 'handling'}]
>>> missing_keys("incidents", ["SR1", "SR2"], {"SR1"})
['SR2']
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from layers._store_api import RowUpdate
from layers._store_common import (
    EVENTS,
    prepare_layer,
    quote_ident,
    refuse_control_chars,
    scalar_param,
    schema_of,
    store_error,
)
from layers.schema import SCHEMAS, LayerSchema


def check_write(layers: Mapping[str, pd.DataFrame], mode: str, *,
                reset: bool = False) -> dict[str, pd.DataFrame]:
    """Validate the layer names and mode of a write, and prepare every frame up front.

    ``reset=True`` (drop every other layer in the same transaction) needs ``mode="replace"``.
    """
    if mode not in ("replace", "append") or (reset and mode != "replace"):
        raise store_error("bad_mode", mode=f"{mode} + reset" if reset else mode)
    if not layers:
        raise store_error("nothing_to_write")
    return {name: prepare_layer(df, name) for name, df in layers.items()}


def duplicate_keys(df: pd.DataFrame, layer: str) -> list[str]:
    """Key values that occur more than once in ``df`` (null keys are allowed to repeat)."""
    key = SCHEMAS[layer].key
    k = df[key].dropna()
    return sorted(map(str, k[k.duplicated()].unique()))[:10]


def check_no_duplicates(prepared: Mapping[str, pd.DataFrame]) -> None:
    """Refuse frames whose key column repeats a value."""
    for name, df in prepared.items():
        dups = duplicate_keys(df, name)
        if dups:
            raise store_error("duplicate_key", layer=name, column=SCHEMAS[name].key,
                              values=", ".join(dups))


@dataclass(frozen=True)
class PreparedUpdate:
    """A checked :class:`~layers.store.RowUpdate`: Python scalars, key values cast to the key type."""

    layer: str
    keys: list[Any]
    changes: dict[str, Any]
    expect: dict[str, Any]


def _update_value(layer: str, s: LayerSchema, col: str, val: Any, *, what: str) -> Any:
    if col == s.key or col not in s.columns:
        raise store_error("bad_update_column", layer=layer, column=col)
    f = s.field(col)
    v = scalar_param(val, f.dtype, lambda ts: ts.to_pydatetime())
    if what == "changes":
        if v is None and not f.nullable:
            raise store_error("null_value", layer=layer, column=col)
        if v is not None and f.allowed is not None and str(v) not in f.allowed:
            raise store_error("bad_value", layer=layer, column=col, value=v,
                              allowed=", ".join(f.allowed))
        if isinstance(v, str):
            refuse_control_chars({col: pd.Series([v], dtype="str")}, layer)
    return v


def prepare_updates(updates: Sequence[RowUpdate]) -> list[PreparedUpdate]:
    """Check row updates against the schema; values are cast to Python scalars.

    An update with ``expect`` and no ``changes`` is a pure compare-and-set check: it "sets"
    its first expected column to the expected value, so the engine still locks and counts the
    rows that match.
    """
    out = []
    for u in updates:
        s = schema_of(u.layer)
        if s.append_only:
            raise store_error("append_only", layer=u.layer)
        expect = {col: _update_value(u.layer, s, col, val, what="expect")
                  for col, val in (u.expect or {}).items()}
        changes = {col: _update_value(u.layer, s, col, val, what="changes")
                   for col, val in u.changes.items()}
        if not changes and expect:
            col = next(iter(expect))
            changes = {col: expect[col]}
        if not changes:
            raise store_error("empty_update", layer=u.layer)
        keys = [str(k) if s.field(s.key).dtype in ("str", "code") else k for k in u.keys]
        if not keys:
            raise store_error("empty_update", layer=u.layer)
        out.append(PreparedUpdate(u.layer, keys, changes, expect))
    return out


def expect_clause(layer: str, expect: Mapping[str, Any], *, placeholder: str,
                  equal: Callable[[str, str, str], str]) -> tuple[str, list[Any]]:
    """The compare-and-set condition of an update: ``col1 <eq> ? AND col2 <eq> ? ...``.

    ``equal(quoted column, logical kind, placeholder)`` is the engine's null-safe equality
    (SQLite ``IS``, PostgreSQL ``IS NOT DISTINCT FROM``). Returns ``("", [])`` for no
    expectation.
    """
    s = schema_of(layer)
    parts = [equal(quote_ident(col), s.field(col).dtype, placeholder) for col in expect]
    return " AND ".join(parts), list(expect.values())

def prepare_events(events: pd.DataFrame | None) -> pd.DataFrame | None:
    """Check and cast ``incident_events`` rows (allowed stages, no repeated ``event_id``)."""
    if events is None or len(events) == 0:
        return None
    ev = prepare_layer(events, EVENTS)
    s = SCHEMAS[EVENTS]
    for f in s.fields:
        if not f.nullable and ev[f.name].isna().any():
            raise store_error("null_value", layer=EVENTS, column=f.name)
        if f.allowed is not None:
            bad = ev[f.name].dropna()
            bad = bad[~bad.isin(f.allowed)]
            if len(bad):
                raise store_error("bad_value", layer=EVENTS, column=f.name, value=bad.iloc[0],
                                  allowed=", ".join(f.allowed))
    dups = duplicate_keys(ev, EVENTS)
    if dups:
        raise store_error("duplicate_key", layer=EVENTS, column=s.key, values=", ".join(dups))
    return ev


def check_append_only(name: str, mode: str, existing_rows: int, *, reset: bool = False) -> None:
    """An append-only layer can only be replaced while it is empty (or by a reset)."""
    if SCHEMAS[name].append_only and mode == "replace" and existing_rows > 0 and not reset:
        raise store_error("append_only", layer=name)

def check_versionable(layer: str) -> LayerSchema:
    """Every non-append-only layer can be versioned."""
    s = schema_of(layer)
    if s.append_only:
        raise store_error("append_only", layer=layer)
    return s


def missing_keys(layer: str, keys: Sequence[Any], found: Collection[Any]) -> list[str]:
    """Keys of a :class:`~layers.store.RowUpdate` the store does not hold (shown as text)."""
    return [str(k) for k in keys if k not in found]


def refuse_missing_keys(layer: str, missing: Sequence[str]) -> None:
    """Every key of a row update must exist (``store.missing_keys``; nothing changes)."""
    if missing:
        raise store_error("missing_keys", layer=layer, column=SCHEMAS[layer].key,
                          values=", ".join(missing[:10]))


def event_refs(ev: pd.DataFrame) -> list[str]:
    """The distinct ``service_request_id`` values events refer to, sorted."""
    return sorted({str(v) for v in ev["service_request_id"].dropna()})


def refuse_unknown_refs(missing: Sequence[str]) -> None:
    """Every event must refer to a stored incident (``store.unknown_ref``; nothing changes)."""
    if missing:
        raise store_error("unknown_ref", layer=EVENTS, column="service_request_id",
                          values=", ".join(missing[:10]))

