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
from layers.privacy import mask_personal
from layers.report import Report
from layers.schema import HIERARCHY, SCHEMAS

#: Layers people import (the event log and versions are written by the app itself).
IMPORTABLE: tuple[str, ...] = (
    "districts", "subdistricts", "communities", "grids", "buildings", "compounds", "gates",
    "facilities", "roads", "workers", "incidents", "patrol_points",
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
    """Personal fields masked (PIPL) by :func:`layers.privacy.mask_personal`."""
    return mask_personal(df, layer)


def is_spatial(df: pd.DataFrame | None) -> bool:
    """True for a GeoDataFrame with at least one geometry."""
    return isinstance(df, gpd.GeoDataFrame) and df.geometry.notna().any()


def column_labels(layer: str, lang: str) -> dict[str, str]:
    """Schema column -> its human name in ``lang``, from :mod:`layers.schema`.

    Chinese: the field's usual Chinese header (its first Chinese alias, the name people's
    files use), else its description; English: its description. Always unique.

    Examples
    --------
    >>> column_labels("incidents", "zh")["grid_code"], column_labels("incidents", "en")["grid_code"]
    ('网格代码', 'Grid code')
    """
    out: dict[str, str] = {}
    for f in SCHEMAS[layer].fields:
        cjk = [a for a in f.aliases if any("\u4e00" <= ch <= "\u9fff" for ch in a)]
        text = (cjk[0] if cjk else f.doc_zh) if lang == "zh" else f.doc_en
        out[f.name] = text if text not in out.values() else f"{text} ({f.name})"
    return out


def preview_table(df: pd.DataFrame, layer: str, lang: str, *, rows: int = 50) -> pd.DataFrame:
    """The first ``rows`` rows as text for a screen: human headers, blank where a value is missing.

    Datetimes are shown to the minute (seconds when present); every cell is a string, so a
    missing value is an empty cell rather than ``None``/``NaN``/``NaT``/``<NA>``.
    """
    head = pd.DataFrame(df.drop(columns="geometry", errors="ignore").head(rows))
    out = {}
    for col in head.columns:
        values = head[col]
        if pd.api.types.is_datetime64_any_dtype(values.dtype):
            has_s = bool((values.dropna().dt.second != 0).any())
            text = values.dt.strftime("%Y-%m-%d %H:%M:%S" if has_s else "%Y-%m-%d %H:%M")
        else:
            text = values.astype(object).map(str)
        out[col] = text.where(values.notna(), "").astype(str)
    table = pd.DataFrame(out, index=head.index)
    return table.rename(columns=column_labels(layer, lang))


def commit_modes(layer: str) -> list[str]:
    """The write modes offered, the layer's default first (append for cases, events, fixes)."""
    from layers.replace_check import default_mode

    first = default_mode(layer)
    return [first, "append" if first == "replace" else "replace"]


def impact_frame(impact: Any, lang: str) -> pd.DataFrame:
    """A replace's impact (:class:`layers.replace_check.ReplaceImpact`) as a two-column table."""
    from layers.replace_check import impact_table

    table = impact_table(impact, lang)
    table["rows"] = table["rows"].map(lambda n: f"{int(n):,}")
    return table.rename(columns={"what": t("cas.page.impact_what", lang),
                                 "rows": t("cas.page.impact_rows", lang)})


#: Most points drawn one by one on the preview (more are drawn as H3 hexagons).
PREVIEW_MARKERS = 5000
#: Smallest extent the preview opens at (degrees; ~500 m), so one point is not a blank screen.
_MIN_SPAN_DEG = 0.005


def preview_bounds(gdf: gpd.GeoDataFrame) -> tuple[float, float, float, float] | None:
    """WGS-84 bounds the preview opens at: the data's extent, at least ~500 m wide.

    Examples
    --------
    >>> import shapely
    >>> g = gpd.GeoDataFrame(geometry=[shapely.Point(118.78, 32.06)], crs=4326)
    >>> [round(v, 4) for v in preview_bounds(g)]
    [118.7775, 32.0575, 118.7825, 32.0625]
    """
    geoms = gdf.geometry[gdf.geometry.notna() & ~gdf.geometry.is_empty]
    if geoms.empty:
        return None
    x0, y0, x1, y1 = (float(v) for v in geoms.to_crs(4326).total_bounds)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    hw, hh = max(x1 - x0, _MIN_SPAN_DEG) / 2, max(y1 - y0, _MIN_SPAN_DEG) / 2
    return cx - hw, cy - hh, cx + hw, cy + hh


def preview_map(gdf: gpd.GeoDataFrame, cfg: Any, *, name: str, label: str) -> Any:
    """The Data page's preview: fitted to the data, points as visible dots.

    Up to :data:`PREVIEW_MARKERS` points are drawn as fixed-size circle markers (visible at
    any zoom, unlike 65 m hexagons seen from a city-wide view); more points, polygons and lines
    use :func:`dashboard.maps.preview_map`. The view is fitted to the data either way.
    """
    import folium

    from dashboard import maps

    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty].to_crs(4326)
    kinds = set(gdf.geom_type.unique())
    if gdf.empty or not kinds <= {"Point"} or len(gdf) > PREVIEW_MARKERS:
        m = maps.preview_map(gdf, cfg, name=name, label=label)
        bounds = preview_bounds(gdf)
        if bounds is not None:  # refit: the engine's own bounds may be degenerate for points
            x, y = maps.to_display_lonlat([bounds[0], bounds[2]], [bounds[1], bounds[3]], cfg)
            m.fit_bounds([[float(y[0]), float(x[0])], [float(y[1]), float(x[1])]])
        return m
    m = maps.base_map(cfg, bounds=preview_bounds(gdf))
    x, y = maps.to_display_lonlat(gdf.geometry.x.to_numpy(), gdf.geometry.y.to_numpy(), cfg)
    features = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {},
         "geometry": {"type": "Point", "coordinates": [round(float(a), 6), round(float(b), 6)]}}
        for a, b in zip(x, y, strict=True)]}
    folium.GeoJson(features, name="preview", marker=folium.CircleMarker(
        radius=5, color="#ffffff", weight=1.5, fill=True, fill_color="#d62728",
        fill_opacity=0.9)).add_to(m)
    maps.Legend([(name, [("#d62728", f"{label} {len(gdf):,}", "fill")])]).add_to(m)
    return maps.finish(m, cfg)
