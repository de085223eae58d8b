"""The Data page's pieces: read + validate an upload, the report table, commit, export.

Reading and validation are :mod:`layers.io` and :mod:`layers.validate`; writing is the store's
all-or-nothing ``write`` (which appends to the audit log). Nothing here knows a file format.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from layers.errors import ReaderError
from layers.i18n import t
from layers.report import Report
from layers.schema import HIERARCHY, SCHEMAS

#: Layers people import (the event log and versions are written by the app itself).
IMPORTABLE: tuple[str, ...] = (
    "districts", "subdistricts", "communities", "grids", "buildings", "facilities", "roads",
    "workers", "incidents", "patrol_points",
)
#: Export formats: suffix → label.
EXPORT_FORMATS: dict[str, str] = {
    ".gpkg": "GeoPackage (.gpkg)",
    ".geojson": "GeoJSON (.geojson)",
    ".zip": "Shapefile (.zip)",
    ".parquet": "GeoParquet (.parquet)",
    ".csv": "CSV (.csv, UTF-8 BOM)",
    ".xlsx": "Excel (.xlsx)",
}


@dataclass
class Checked:
    """An uploaded file, read and validated."""

    file: str
    layer: str
    data: pd.DataFrame | None
    report: Report
    ok: bool
    digest: str


def references(layer: str) -> list[str]:
    """Store layers :func:`layers.validate.validate` needs to check ``layer``'s links."""
    schema = SCHEMAS[layer]
    refs = {f.ref[0] for f in schema.fields if f.ref}
    refs |= {parent for child, _field, parent in HIERARCHY if child == layer}
    if schema.geometry is not None and layer != "districts":
        refs.add("districts")
    refs.discard(layer)
    return sorted(refs)


def check_upload(content: bytes, file_name: str, *, layer: str, datum: str,
                 reference: dict[str, pd.DataFrame], lang: str) -> Checked:
    """Read ``content`` (named ``file_name``) as ``layer`` and validate it against ``reference``."""
    from layers.ingest import validate_read
    from layers.io import read_file

    digest = hashlib.sha256(content).hexdigest()[:16]
    with tempfile.TemporaryDirectory(prefix="gridpulse-upload-") as d:
        path = Path(d) / Path(file_name).name
        path.write_bytes(content)
        try:
            res = read_file(path, layer=layer)
        except ReaderError as e:
            return Checked(file_name, layer, None, e.report, False, digest)
    data, report = validate_read(res, layer, datum=datum, reference=reference, lang=lang)
    return Checked(file_name, layer, data, report, report.ok, digest)


def report_table(report: Report, lang: str) -> pd.DataFrame:
    """The report as a table in ``lang``: severity, where, problem, how to fix."""
    rows = []
    for issue in report:
        d = issue.to_dict(lang)
        rows.append({
            t("dashboard.data.severity", lang): t(f"common.{issue.severity}", lang),
            t("dashboard.data.where", lang): issue.where(lang),
            t("dashboard.data.message", lang): d["message"],
            t("dashboard.data.fix", lang): d["fix"] or "",
        })
    cols = [t(f"dashboard.data.{k}", lang) for k in ("severity", "where", "message", "fix")]
    return pd.DataFrame(rows, columns=cols)


def layer_title(name: str, lang: str) -> str:
    """``网格 grids`` / ``Grids``."""
    s = SCHEMAS.get(name)
    if s is None:
        return name
    return f"{s.title_zh}（{name}）" if lang == "zh" else f"{s.title_en} ({name})"


def export_bytes(df: pd.DataFrame, layer: str, suffix: str) -> bytes:
    """The layer written in the format of ``suffix`` (personal fields masked when possible)."""
    from layers.io import write_file

    data = mask(df, layer)
    with tempfile.TemporaryDirectory(prefix="gridpulse-export-") as d:
        path = Path(d) / f"{layer}{suffix}"
        kw: dict[str, Any] = {"layer": layer}
        if suffix == ".csv":
            kw["encoding"] = "utf-8-sig"  # Excel opens it with Chinese intact
        out = write_file(data, path, **kw)
        return Path(out).read_bytes()


def mask(df: pd.DataFrame, layer: str) -> pd.DataFrame:
    """Personal fields masked (PIPL) by :mod:`layers.privacy` once it exists."""
    try:
        from layers.privacy import mask_personal
    except ImportError:
        return df
    return mask_personal(df, layer)


def is_spatial(df: pd.DataFrame | None) -> bool:
    """True for a GeoDataFrame with at least one geometry."""
    return isinstance(df, gpd.GeoDataFrame) and df.geometry.notna().any()
