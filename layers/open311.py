"""Open311 GeoReport v2 export and import, and the import of 12345 hotline exports (CSV/XLSX).

Export: :func:`to_open311` turns incidents into GeoReport v2 service requests — exactly the
fields of the specification's ``GET requests`` response (:data:`OPEN311_FIELDS`), ``null`` where
GridPulse has nothing, W3C datetimes with the +08:00 offset, ``lat``/``long`` in WGS-84. No
personal information is exported (the reporter's name and phone are not Open311 fields).
:func:`validate_open311` checks a document against that field list; :func:`read_open311` reads
one back into incidents.

Import: :func:`import_hotline` reads a hotline export through :func:`layers.io.read_file`, maps
the headers 12345 systems use (工单编号, 来电时间, 诉求内容, 问题分类, 承办单位, 办理状态, 紧急程度,
事发地址, 经度/纬度 ...) and their values (办理中 -> ``handling``, 区城管局 -> ``urban_management``,
"市容环境-暴露垃圾" -> item ``0101`` ...) to the ``incidents`` layer, fills the due time from the
time-limit table and reports every guess and gap (message keys ``incidents.import.*``).

Examples
--------
>>> import geopandas as gpd, shapely
>>> inc = gpd.GeoDataFrame({
...     "service_request_id": ["GP-1"], "stage": ["handling"], "item_code": ["0101"],
...     "category_code": ["01"], "department": ["urban_management"], "whistle": ["work"],
...     "requested_datetime": [pd.Timestamp("2025-03-03 09:00")], "description": ["垃圾"],
...     "updated_datetime": [pd.Timestamp("2025-03-03 10:30")],
...     "expected_datetime": [pd.Timestamp("2025-03-06 09:00")], "address": ["鼓楼区某路1号"]},
...     geometry=[shapely.Point(118.78, 32.06)], crs=4326)
>>> req = to_open311(inc, lang="en")[0]
>>> req["status"], req["service_code"], req["requested_datetime"], req["long"]
('open', '0101', '2025-03-03T09:00:00+08:00', 118.78)
>>> req["agency_responsible"], req["status_notes"]
('Urban management', 'handling (work whistle)')
>>> validate_open311([req]).ok
True
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.crs import DATUMS, convert_gdf
from geo.domain import LOCAL_TZ
from layers import taxonomy
from layers._validate_hotline import (
    HOTLINE_DEPARTMENTS,
    HOTLINE_LEVELS,
    HOTLINE_SOURCES,
    HOTLINE_STATUS,
)
from layers.io import read_file
from layers.report import Report
from layers.schema import DEPARTMENTS, SCHEMAS, SOURCES
from layers.workflow import CLOSED_STAGES, DEFAULT_POLICY, WorkflowPolicy, due_times, label

#: The fields of a GeoReport v2 service request (``GET requests``), in the specification's order.
OPEN311_FIELDS: tuple[str, ...] = (
    "service_request_id", "status", "status_notes", "service_name", "service_code", "description",
    "agency_responsible", "service_notice", "requested_datetime", "updated_datetime",
    "expected_datetime", "address", "address_id", "zipcode", "lat", "long", "media_url",
)
_DATETIME_FIELDS = ("requested_datetime", "updated_datetime", "expected_datetime")
_STRING_FIELDS = tuple(f for f in OPEN311_FIELDS if f not in ("service_request_id", "lat", "long", *_DATETIME_FIELDS))
_W3C = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_MSG = "incidents.open311."
_IMP = "incidents.import."


# --------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------


def _text(v: Any) -> str | None:
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return None
    s = str(v).strip()
    return s or None


def _w3c(v: Any, offset: str) -> str | None:
    if v is None or pd.isna(v):
        return None
    ts = pd.Timestamp(v)
    if ts.tzinfo is not None:
        return ts.isoformat(timespec="seconds")
    return ts.isoformat(timespec="seconds") + offset


def _lonlat(incidents: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    n = len(incidents)
    if isinstance(incidents, gpd.GeoDataFrame) and incidents.geometry.name in incidents:
        g = incidents.geometry
        if g.crs is not None and not g.crs.equals("EPSG:4326"):
            g = g.to_crs(4326)
        pts = g.to_numpy()
        ok = ~shapely.is_missing(pts) & ~shapely.is_empty(pts)
        lon, lat = np.full(n, np.nan), np.full(n, np.nan)
        cen = shapely.centroid(pts[ok])
        lon[ok], lat[ok] = shapely.get_x(cen), shapely.get_y(cen)
        return lon, lat
    lon = pd.to_numeric(incidents.get("long", incidents.get("lon", pd.Series(np.nan, index=incidents.index))),
                        errors="coerce").to_numpy(float)
    lat = pd.to_numeric(incidents.get("lat", pd.Series(np.nan, index=incidents.index)), errors="coerce")
    return lon, lat.to_numpy(float)


def to_open311(incidents: pd.DataFrame, *, lang: str | None = "zh", utc_offset: str = "+08:00") -> list[dict[str, Any]]:
    """GeoReport v2 service requests (one dict per incident, every field of :data:`OPEN311_FIELDS`).

    Parameters
    ----------
    incidents
        The ``incidents`` layer (a GeoDataFrame with points, or a table with ``lat``/``long``).
    lang
        Language of ``status_notes``, ``service_name`` (when the table has none) and
        ``agency_responsible``.
    utc_offset
        Offset appended to the naive local datetimes (China Standard Time).

    Returns
    -------
    list of dict
        JSON-ready; ``status`` is ``open`` or ``closed`` (closed, evaluated and closed without
        action are closed); ``status_notes`` names the stage and the whistle.
    """
    if "service_request_id" not in incidents.columns:
        raise KeyError("to_open311 needs the service_request_id column")
    lon, lat = _lonlat(incidents)
    out = []
    cols = incidents.columns
    for i, row in enumerate(incidents.to_dict("records")):
        stage = _text(row.get("stage"))
        status = ("closed" if stage in CLOSED_STAGES else "open") if stage else (_text(row.get("status")) or "open")
        notes = label("stage", stage, lang) if stage else None
        whistle = _text(row.get("whistle"))
        if notes and whistle and whistle != "none":
            notes = f"{notes} ({label('whistle', whistle, lang)})" if lang == "en" else \
                f"{notes}（{label('whistle', whistle, lang)}）"
        item = _text(row.get("item_code")) or _text(row.get("service_code"))
        name = _text(row.get("service_name"))
        if name is None and item in taxonomy.ITEMS:
            it = taxonomy.ITEMS[item]
            name = it.name_en if lang == "en" else it.name_zh
        dept = _text(row.get("department"))
        rec: dict[str, Any] = {
            "service_request_id": str(row["service_request_id"]),
            "status": status,
            "status_notes": notes,
            "service_name": name,
            "service_code": _text(row.get("service_code")) or item,
            "description": _text(row.get("description")),
            "agency_responsible": label("department", dept, lang) if dept else None,
            "service_notice": _text(row.get("service_notice")) if "service_notice" in cols else None,
            "address": _text(row.get("address")),
            "address_id": _text(row.get("address_id")) if "address_id" in cols else None,
            "zipcode": _text(row.get("zipcode")) if "zipcode" in cols else None,
            "lat": None if np.isnan(lat[i]) else round(float(lat[i]), 7),
            "long": None if np.isnan(lon[i]) else round(float(lon[i]), 7),
            "media_url": _text(row.get("media_url")) if "media_url" in cols else None,
        }
        for f in _DATETIME_FIELDS:
            rec[f] = _w3c(row.get(f), utc_offset)
        out.append({f: rec[f] for f in OPEN311_FIELDS})
    return out


def write_open311(incidents: pd.DataFrame, path: str | Path, *, lang: str | None = "zh") -> Path:
    """Write :func:`to_open311` as a JSON array (UTF-8, Chinese unescaped) and return the path."""
    p = Path(path)
    p.write_text(json.dumps(to_open311(incidents, lang=lang), ensure_ascii=False, indent=1), encoding="utf-8")
    return p


def validate_open311(document: Any) -> Report:
    """Check a GeoReport v2 ``requests`` document: a list of objects with exactly the specified fields.

    Checks: every field of :data:`OPEN311_FIELDS` present and no other; ``service_request_id``
    a non-empty string; ``status`` ``open`` or ``closed``; text fields strings or null;
    datetimes W3C (``2010-04-14T06:37:38-08:00``) or null (``requested_datetime`` required);
    ``lat``/``long`` numbers in range or null. Rows are 1-based positions in the array.
    """
    rep = Report()
    if not isinstance(document, list):
        rep.add("error", _MSG + "not_a_list")
        return rep
    for i, rec in enumerate(document, start=1):
        if not isinstance(rec, Mapping):
            rep.add("error", _MSG + "not_an_object", row=i)
            continue
        for f in OPEN311_FIELDS:
            if f not in rec:
                rep.add("error", _MSG + "missing_field", row=i, column=f)
        for f in rec:
            if f not in OPEN311_FIELDS:
                rep.add("error", _MSG + "unknown_field", row=i, column=f)
        rid = rec.get("service_request_id")
        if not isinstance(rid, str) or not rid:
            rep.add("error", _MSG + "bad_id", row=i, column="service_request_id", value=str(rid))
        if rec.get("status") not in ("open", "closed"):
            rep.add("error", _MSG + "bad_status", row=i, column="status", value=str(rec.get("status")))
        for f in _STRING_FIELDS:
            v = rec.get(f)
            if v is not None and not isinstance(v, str):
                rep.add("error", _MSG + "bad_type", row=i, column=f, value=repr(v), expected="string")
        for f in _DATETIME_FIELDS:
            v = rec.get(f)
            if (v is None and f == "requested_datetime") or (v is not None and not (isinstance(v, str) and _W3C.match(v))):
                rep.add("error", _MSG + "bad_datetime", row=i, column=f, value=str(v))
        for f, lim in (("lat", 90.0), ("long", 180.0)):
            v = rec.get(f)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or not -lim <= v <= lim):
                rep.add("error", _MSG + "bad_coordinate", row=i, column=f, value=repr(v))
    return rep


def read_open311(source: str | Path | Sequence[Mapping[str, Any]]) -> tuple[gpd.GeoDataFrame, Report]:
    """Read a GeoReport v2 ``requests`` document (a path or the parsed list) back into incidents.

    Returns the incidents (EPSG:4326 points; ``item_code`` and ``category_code`` from
    ``service_code`` when it is a whistle-list item; times as naive local time) and the
    validation report. The GridPulse stage is not in Open311: ``closed`` becomes ``closed``,
    ``open`` becomes ``collected``.
    """
    doc = json.loads(Path(source).read_text(encoding="utf-8")) if isinstance(source, str | Path) else list(source)
    rep = validate_open311(doc)
    recs = [r for r in doc if isinstance(r, Mapping)] if isinstance(doc, list) else []
    df = pd.DataFrame(recs, columns=list(OPEN311_FIELDS))
    for f in _DATETIME_FIELDS:
        ts = pd.to_datetime(df[f], errors="coerce", utc=True, format="ISO8601")
        df[f] = ts.dt.tz_convert(LOCAL_TZ).dt.tz_localize(None)
    code = df["service_code"].astype("string")
    is_item = code.isin(list(taxonomy.ITEMS)).fillna(False)
    df["item_code"] = code.where(is_item)
    df["category_code"] = code.where(is_item).str.slice(0, 2)
    df["stage"] = np.where(df["status"] == "closed", "closed", "collected")
    lon = pd.to_numeric(df.pop("long"), errors="coerce")
    lat = pd.to_numeric(df.pop("lat"), errors="coerce")
    geom = gpd.points_from_xy(lon, lat)
    geom[(lon.isna() | lat.isna()).to_numpy()] = None
    keep = [c for c in SCHEMAS["incidents"].columns if c in df.columns]
    return gpd.GeoDataFrame(df[keep], geometry=geom, crs=4326), rep


# --------------------------------------------------------------------------------------------
# Hotline import
# --------------------------------------------------------------------------------------------

#: Headers whose cells hold the complaint type as text (``_type``): the category/item headers of
#: the schema that are not code columns, plus a few more. Every other header is a schema alias
#: (:mod:`layers.schema`, the one place where headers are declared).
HOTLINE_HEADERS: dict[str, str] = {
    h: "_type" for h in dict.fromkeys((
        *(a for name in ("category_code", "item_code") for a in SCHEMAS["incidents"].field(name).aliases
          if "代码" not in a),
        "诉求类型", "问题分类", "问题类别", "问题类型", "事项分类", "诉求分类", "工单分类", "反映类别", "诉求类别",
        "业务类型", "type", "category"))
}
if not ({c for c, _ in HOTLINE_SOURCES} <= set(SOURCES)
        and {c for c, _ in HOTLINE_DEPARTMENTS} <= set(DEPARTMENTS)):  # pragma: no cover
    raise RuntimeError("layers.open311 hotline tables name a source or department missing from the schema")


def import_hotline(
    path: str | Path,
    *,
    datum: str = "wgs84",
    sheet: str | int | None = None,
    encoding: str | None = None,
    policy: WorkflowPolicy = DEFAULT_POLICY,
) -> tuple[gpd.GeoDataFrame, Report]:
    """Read a 12345 hotline export (CSV or XLSX) into the ``incidents`` layer's columns.

    Parameters
    ----------
    path
        The export. Headers may be Chinese (see :data:`HOTLINE_HEADERS` and the schema's aliases).
    datum
        Datum of its longitude/latitude: ``wgs84``, ``gcj02`` (AMap/Tencent) or ``bd09`` (Baidu).
    sheet, encoding
        Passed to :func:`layers.io.read_file`.
    policy
        Time limits used to fill missing due times.

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326 points (missing where the export has no coordinates), the canonical incidents
        columns present, ``source`` defaulting to ``hotline_12345``, ``level`` to 1, ``whistle`` to
        ``none``, counters to 0, ``status`` from ``stage``.
    Report
        The reader's notes plus every mapping decision; errors when ids or receipt times are
        missing.

    Raises
    ------
    layers.errors.ReaderError
        When the file cannot be read at all.
    """
    if datum not in DATUMS:
        raise ValueError(f"datum must be one of {DATUMS}, got {datum!r}")
    rr = read_file(path, encoding=encoding, sheet=sheet)
    rep = rr.report
    src = rr.source
    raw = rr.data
    aliases = {**SCHEMAS["incidents"].alias_map(), **{k.lower(): v for k, v in HOTLINE_HEADERS.items()}}
    rename: dict[str, str] = {}
    unmapped: list[str] = []
    for col in raw.columns:
        if col == getattr(raw, "_geometry_column_name", None) and isinstance(raw, gpd.GeoDataFrame):
            continue
        target = aliases.get(str(col).strip().lower())
        if target and target not in rename.values():
            rename[col] = target
        else:
            unmapped.append(str(col))
    if rename:
        rep.add("info", _IMP + "mapped_columns", file=src,
                mapping=", ".join(f"{a} → {b}" for a, b in rename.items() if a != b) or "-")
    if unmapped:
        rep.add("info", _IMP + "unmapped_columns", file=src, columns=", ".join(unmapped))
    df = pd.DataFrame({rename[c]: raw[c].to_numpy() for c in rename}, index=pd.RangeIndex(len(raw)))
    n = len(df)
    if isinstance(raw, gpd.GeoDataFrame):
        geom = gpd.GeoSeries(raw.geometry.to_numpy(), crs=raw.crs or 4326, index=df.index)
        if geom.crs is not None and not geom.crs.equals("EPSG:4326"):
            geom = geom.to_crs(4326)
        if datum != "wgs84":
            geom = convert_gdf(gpd.GeoDataFrame(geometry=geom), src=datum, dst="wgs84").geometry
            rep.add("fixed", _IMP + "datum_converted", file=src, datum=datum)
    else:
        geom = gpd.GeoSeries([None] * n, crs=4326, index=df.index)
        rep.add("warning", _IMP + "no_coordinates", file=src)

    def ids() -> pd.Series:
        s = df["service_request_id"]
        if pd.api.types.is_float_dtype(s):
            s = s.map(lambda v: None if pd.isna(v) else str(int(v)) if float(v).is_integer() else str(v))
        return s.astype("string").str.strip()

    if "service_request_id" not in df:
        rep.add("error", _IMP + "missing_column", file=src, column="service_request_id")
    else:
        df["service_request_id"] = ids()
        dup = df["service_request_id"].duplicated(keep=False) & df["service_request_id"].notna()
        if dup.any():
            rep.add("warning", _IMP + "duplicate_ids", file=src, count=int(dup.sum()),
                    examples=", ".join(df.loc[dup, "service_request_id"].unique()[:5]))
    for col in ("requested_datetime", "updated_datetime", "expected_datetime", "closed_datetime"):
        if col in df:
            parsed = pd.to_datetime(df[col], errors="coerce", format="mixed")
            bad = parsed.isna() & df[col].notna() & (df[col].astype("string").str.strip() != "")
            if bad.any():
                rep.add("warning", _IMP + "bad_time", file=src, column=col, count=int(bad.sum()),
                        row=int(np.flatnonzero(bad.to_numpy())[0]) + rr.row_offset)
            df[col] = parsed.dt.tz_localize(None) if parsed.dt.tz is not None else parsed
    if "requested_datetime" not in df:
        rep.add("error", _IMP + "missing_column", file=src, column="requested_datetime")

    _map_types(df, rep, src)
    df["stage"] = _map_values(df.get("stage"), n, tuple(HOTLINE_STATUS.items()), "collected", rep, src, "stage")
    df["department"] = _map_values(df.get("department"), n, HOTLINE_DEPARTMENTS, None, rep, src, "department")
    df["source"] = _map_values(df.get("source"), n, HOTLINE_SOURCES, "hotline_12345", rep, src, "source")
    df["level"] = _map_levels(df.get("level"), n, rep, src)
    df["whistle"] = df["whistle"] if "whistle" in df else "none"
    df["status"] = np.where(df["stage"].isin(sorted(CLOSED_STAGES)), "closed", "open")
    for c in ("reworks", "extensions"):
        df[c] = pd.to_numeric(df[c], errors="coerce").fillna(0).astype(np.int64) if c in df else 0
    if "requested_datetime" in df:
        due = due_times(df, policy=policy)
        if "expected_datetime" in df:
            filled = df["expected_datetime"].isna() & due.notna()
            df["expected_datetime"] = df["expected_datetime"].where(~filled, due)
        else:
            filled = due.notna()
            df["expected_datetime"] = due
        if filled.any():
            rep.add("info", _IMP + "due_filled", file=src, count=int(filled.sum()))
    if "service_code" not in df:
        df["service_code"] = df["item_code"]
    for col in ("grid_code",):
        if col in df:
            df[col] = df[col].astype("string").str.replace(r"\.0$", "", regex=True)
    cols = [c for c in SCHEMAS["incidents"].columns if c in df.columns]
    return gpd.GeoDataFrame(df[cols], geometry=geom.to_numpy(), crs=4326), rep


def _map_values(
    values: pd.Series | None,
    n: int,
    rules: Sequence[tuple[Any, tuple[str, ...]]],
    default: Any,
    rep: Report,
    src: str,
    column: str,
) -> pd.Series:
    """Map free-text values by keyword rules; canonical codes pass; the rest get ``default``."""
    if values is None:
        return pd.Series([default] * n, dtype=object)
    allowed = set(SCHEMAS["incidents"].field(column).allowed or ())
    out: list[Any] = []
    unknown: dict[str, int] = {}
    cache: dict[str, Any] = {}
    for v in values.tolist():
        text = _text(v)
        if text is None:
            out.append(default)
            continue
        if text not in cache:
            low = text.lower()
            hit = text if text in allowed else next(
                (code for code, words in rules if low in words), None)
            if hit is None:
                hit = next((code for code, words in rules if any(w in low for w in words)), None)
            cache[text] = hit
        hit = cache[text]
        if hit is None:
            unknown[text] = unknown.get(text, 0) + 1
            out.append(default)
        else:
            out.append(hit)
    for text, count in unknown.items():
        rep.add("warning", _IMP + f"unknown_{column}", file=src, column=column, value=text, count=count,
                default="-" if default is None else str(default))
    return pd.Series(out, dtype=object)


def _map_levels(values: pd.Series | None, n: int, rep: Report, src: str) -> pd.Series:
    if values is None:
        return pd.Series(np.ones(n, dtype=np.int64))
    num = pd.to_numeric(values, errors="coerce")
    words = _map_values(values.where(num.isna()), n, HOTLINE_LEVELS, 1, rep, src, "level")
    out = np.where(num.isin([1, 2, 3]), num.fillna(1), words.astype(float)).astype(np.int64)
    return pd.Series(out)


def _map_types(df: pd.DataFrame, rep: Report, src: str) -> None:
    """item_code / category_code from codes if present, else from the complaint-type text."""
    n = len(df)
    item = df["item_code"].astype("string") if "item_code" in df else pd.Series(pd.NA, index=df.index, dtype="string")
    cat = df["category_code"].astype("string") if "category_code" in df else pd.Series(pd.NA, index=df.index, dtype="string")
    item = item.where(item.isin(list(taxonomy.ITEMS)).fillna(False))
    cat = cat.where(cat.isin(list(taxonomy.CATEGORIES)).fillna(False))
    text = df["_type"].astype("string") if "_type" in df else pd.Series(pd.NA, index=df.index, dtype="string")
    if "service_name" in df:
        text = text.fillna(df["service_name"].astype("string"))
    text = text.fillna(df["description"].astype("string") if "description" in df else pd.NA)
    items_by_len = sorted(taxonomy.ITEMS.values(), key=lambda it: -len(it.name_zh))
    cats_by_len = sorted(taxonomy.CATEGORIES.values(), key=lambda c: -len(c.name_zh))
    cache: dict[str, tuple[str | None, str | None]] = {}
    unknown: dict[str, int] = {}
    cat_only: dict[str, int] = {}
    for i in range(n):
        if not pd.isna(item.iat[i]):
            cat.iat[i] = item.iat[i][:2]
            continue
        t = text.iat[i]
        if pd.isna(t):
            continue
        if t not in cache:
            it = next((x for x in items_by_len if x.name_zh in t), None)
            c = next((x for x in cats_by_len if x.name_zh in t), None)
            cache[t] = (it.code if it else None, it.category_code if it else c.code if c else None)
        it_code, c_code = cache[t]
        if it_code:
            item.iat[i], cat.iat[i] = it_code, c_code
        elif c_code and pd.isna(cat.iat[i]):
            cat.iat[i] = c_code
            cat_only[t] = cat_only.get(t, 0) + 1
        elif pd.isna(cat.iat[i]):
            unknown[t] = unknown.get(t, 0) + 1
    missing = item.isna() & cat.isna()
    for t, count in unknown.items():
        rep.add("warning", _IMP + "unknown_type", file=src, value=t[:40], count=count)
    for t, count in cat_only.items():
        rep.add("warning", _IMP + "category_only", file=src, value=t[:40], count=count)
    other = "1402"
    item = item.mask(missing, other)
    cat = cat.mask(missing, other[:2])
    df["item_code"] = item.astype(object).where(item.notna(), None)
    df["category_code"] = cat.astype(object).where(cat.notna(), None)
    if "service_name" not in df:
        df["service_name"] = [taxonomy.ITEMS[c].name_zh if c in taxonomy.ITEMS else None for c in df["item_code"]]
    if "_type" in df:
        del df["_type"]

