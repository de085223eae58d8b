"""The import pipeline: file -> read -> validate (against the store) -> write, all or nothing.

:func:`import_file` reads a file with :func:`layers.io.read_file`, validates it with
:func:`layers.validate.validate` against the layers it refers to that are already in the
store (parent codes, nesting, distance from the district), and writes it with
:meth:`layers.store.Store.write` only when the report has no error. A failed import leaves the
store unchanged; the :class:`~layers.report.Report` says why, row by row, in either language.

Examples
--------
>>> reference_layers_for("grids")
['communities', 'districts']
>>> reference_layers_for("incident_events")
['incidents', 'districts']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from layers._validate_hotline import fill_due_times, prepare_incidents
from layers.errors import ReaderError, StoreError
from layers.io import ReadResult, read_file
from layers.replace_check import OrphanPolicy, default_mode, write_checked
from layers.report import Report
from layers.schema import HIERARCHY, SCHEMAS
from layers.store import Store, WriteMode
from layers.validate import validate


@dataclass
class CheckResult:
    """What :func:`check_file` found: the cleaned data (``None`` if unreadable) and the report."""

    data: pd.DataFrame | None
    report: Report
    source: str

    @property
    def ok(self) -> bool:
        """True when the data can be written (read, and no validation error)."""
        return self.data is not None and self.report.ok


def reference_layers_for(layer: str) -> list[str]:
    """Layers a file of ``layer`` is checked against: what it refers to, and the district."""
    s = SCHEMAS[layer]
    names = [f.ref[0] for f in s.fields if f.ref and f.ref[0] != layer]
    names += [parent for child, _, parent in HIERARCHY if child == layer]
    if layer != "districts":
        names.append("districts")
    return list(dict.fromkeys(names))


def reference_from(store: Store | None, layer: str) -> dict[str, pd.DataFrame]:
    """The reference layers present in ``store`` (only the columns validation looks at)."""
    if store is None:
        return {}
    present = set(store.layer_names())
    out: dict[str, pd.DataFrame] = {}
    for name in reference_layers_for(layer):
        if name not in present:
            continue
        s = SCHEMAS[name]
        cols = [f.name for f in s.fields if f.dtype in ("code", "str")
                and (f.name in (s.key, "kind") or f.ref or f.dtype == "code")]
        out[name] = store.read(name, columns=cols)
    return out


def check_file(
    path: str | Path,
    layer: str,
    *,
    datum: str = "wgs84",
    store: Store | None = None,
    lang: str | None = None,
    encoding: str | None = None,
    sheet: str | int | None = None,
) -> CheckResult:
    """Read and validate a file of ``layer`` (against ``store``'s layers when given).

    Never raises for a bad file: an unreadable file gives ``data=None`` and the reader's
    report.
    """
    if layer not in SCHEMAS:
        raise ValueError(f"unknown layer {layer!r}; expected one of {', '.join(SCHEMAS)}")
    report = Report()
    try:
        rr = read_file(path, layer=layer, encoding=encoding, sheet=sheet)
    except ReaderError as exc:
        report.extend(exc.report)
        return CheckResult(None, report, Path(path).name)
    data, report = validate_read(rr, layer, datum=datum, reference=reference_from(store, layer),
                                 lang=lang)
    if store is not None and data is not None:
        report.extend(ids_already_stored(store, layer, data, file=rr.source, row_offset=rr.row_offset))
    return CheckResult(data, report, rr.source)


def ids_already_stored(store: Store, layer: str, data: pd.DataFrame, *, file: str | None,
                       row_offset: int) -> Report:
    """One warning naming the rows whose id is already in ``store`` (a re-sent export).

    Appending them is refused by the store; replacing overwrites them. Saying which rows
    before the write turns the store's bare uniqueness error into something one can act on.
    """
    report = Report()
    key = SCHEMAS[layer].key
    if key not in data.columns or SCHEMAS[layer].append_only or not store.has_layer(layer):
        return report
    stored = pd.Index(store.read(layer, columns=[key])[key].dropna().astype(str))
    ids = data[key]
    pos = np.flatnonzero((ids.notna() & ids.astype(str).isin(stored)).to_numpy())
    if len(pos):
        report.add("warning", "hotline.ids_in_store", file=file, column=key, layer=layer,
                   count=int(len(pos)), rows=", ".join(str(int(p) + row_offset) for p in pos[:10])
                   + (" …" if len(pos) > 10 else ""),
                   example=str(ids.iloc[int(pos[0])]))
    return report


#: Generic validation messages dropped for a cell that the hotline step already refused.
_SUPERSEDED = frozenset({"validation.not_allowed", "validation.empty_value",
                         "validation.item_category_mismatch"})


def validate_read(
    rr: ReadResult,
    layer: str,
    *,
    datum: str = "wgs84",
    reference: Mapping[str, pd.DataFrame] | None = None,
    lang: str | None = None,
) -> tuple[pd.DataFrame, Report]:
    """Validate what :func:`layers.io.read_file` returned, hotline exports included.

    For ``incidents``, the values a 12345 export writes (category names, status words,
    channels, urgency, department names) are first mapped to the schema and missing
    GridPulse columns get their defaults (:func:`layers._validate_hotline.prepare_incidents`);
    every assumption is reported once per column. Then :func:`layers.validate.validate`
    checks the layer against ``reference``. The CLI (via :func:`check_file`) and the Data
    page call this one function.

    Returns
    -------
    (data, report)
        The cleaned layer, and the reader's notes followed by the hotline and validation
        issues (a reader or CRS warning that swapped longitude/latitude explain is dropped:
        the swapped rows are reported one by one instead).
    """
    report = Report()
    report.extend(rr.report)
    data = rr.data
    handled: set[tuple[int | None, str]] = set()
    if layer == "incidents":
        prep = prepare_incidents(data, file=rr.source, row_offset=rr.row_offset,
                                 headers=_original_headers(rr.report))
        data, handled = prep.data, prep.handled
        report.extend(prep.report)
    res = validate(data, layer, file=rr.source, row_offset=rr.row_offset, datum=datum,  # type: ignore[arg-type]
                   reference=reference, lang=lang)
    report.issues.extend(i for i in res.report
                         if not (i.code in _SUPERSEDED and (i.row, i.column) in handled))
    data = res.data
    if layer == "incidents" and report.ok:
        data, due = fill_due_times(data, file=rr.source)
        report.extend(due)
    return data, _drop_explained_by_swaps(report)


def _original_headers(report: Report) -> dict[str, str]:
    """Canonical column -> the header as written in the file, from the reader's mapping note."""
    out: dict[str, str] = {}
    for issue in report:
        if issue.code != "io.header_mapped":
            continue
        for pair in str(issue.params.get("mapping", "")).split(", "):
            original, sep, canon = pair.partition(" → ")
            if sep:
                out[canon.strip()] = original.strip()
    return out


def _drop_explained_by_swaps(report: Report) -> Report:
    """Drop "not degrees" / "CRS assumed" warnings when swapped lon/lat rows are their only cause.

    A table whose latitude column holds a longitude (118.78) in some rows looks projected to
    the reader and CRS-less to validation; once every such row was swapped back (and no row is
    outside China), those two warnings only mislead.
    """
    codes = {i.code for i in report}
    if "validation.lonlat_swapped" not in codes or codes & {"validation.outside_china",
                                                            "validation.crs_missing"}:
        return report
    drop = {"io.lonlat_not_degrees", "validation.crs_assumed"}
    return Report([i for i in report if i.code not in drop])


def import_file(
    store: Store,
    layer: str,
    path: str | Path,
    *,
    datum: str = "wgs84",
    actor: str = "cli",
    lang: str | None = None,
    mode: WriteMode | None = None,
    encoding: str | None = None,
    sheet: str | int | None = None,
    on_orphans: OrphanPolicy = "refuse",
) -> Report:
    """Import a file into ``layer`` of ``store``; write only when validation finds no error.

    Parameters
    ----------
    store
        The store to write to (its layers are the validation reference).
    layer
        Canonical layer name.
    path
        The file (any format :func:`layers.io.read_file` reads).
    datum
        Datum of longitude/latitude in the file: ``wgs84``, ``gcj02`` or ``bd09``.
    actor
        Who imports (recorded in the audit log).
    lang
        Language the caller will render the report in.
    mode
        ``replace`` or ``append``; default :func:`layers.replace_check.default_mode` (append
        for the event log, cases and patrol fixes, replace for the others).
    encoding, sheet
        Passed to :func:`layers.io.read_file`.
    on_orphans
        What a replace does to rows of other layers pointing at rows it removes: ``refuse``
        (default), ``keep`` or ``delete`` (:func:`layers.replace_check.write_checked`).

    Returns
    -------
    Report
        Reader and validation issues, then ``store.imported`` (info) on success or the
        store's refusal (error). ``report.ok`` tells whether the store was written.
    """
    checked = check_file(path, layer, datum=datum, store=store, lang=lang, encoding=encoding,
                         sheet=sheet)
    report = checked.report
    if not checked.ok:
        return report
    data = checked.data
    assert data is not None
    keep = [c for c in data.columns if c in SCHEMAS[layer].columns or c == "geometry"]
    data = data[keep]
    mode = mode or default_mode(layer)
    try:
        write_checked(store, layer, data, mode=mode, on_orphans=on_orphans, actor=actor,
                      note=f"import {checked.source}")
    except StoreError as exc:
        report.add("error", exc.key, file=checked.source, **exc.params)
        return report
    report.add("info", "store.imported", file=checked.source, rows=len(data), layer=layer,
               mode=mode)
    return report
