"""Readers of feature files: GeoJSON, GeoPackage, zipped Shapefile, GeoParquet, GPX.

Private to :mod:`layers.io`. GDAL (through pyogrio) does the reading; this module picks
the layer, works out the .dbf encoding when a Shapefile has no .cpg, restores the long
column names and dtypes GridPulse wrote beside a Shapefile, and tidies the result.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import geopandas as gpd
import pandas as pd
import pyogrio
import pyogrio.errors

from layers._io_common import (
    SIDECAR_SUFFIX,
    SUPPORTED_READ,
    ReadContext,
    listing,
    map_headers,
    normalise_header,
    rows_text,
    table_to_frame,
    tidy_dtypes,
    type_table,
)
from layers._io_guard import (
    CONTROL_CHARS,
    check_file_size,
    check_zip,
    corrupt_detail,
    extract_member,
    too_many_columns,
    too_many_rows,
)

_SHP_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx", ".qmd")
_GDAL_ERRORS = (
    pyogrio.errors.DataSourceError,
    pyogrio.errors.DataLayerError,
    pyogrio.errors.FieldError,
    pyogrio.errors.GeometryError,
    pyogrio.errors.FeatureError,
    pyogrio.errors.CRSError,
    OSError,
    RuntimeError,
    ValueError,
)


def _detail(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:200]


def ogr_read(ctx: ReadContext, path: str | Path, *, fmt: str, layer_name: str | None = None,
             encoding: str | None = None) -> pd.DataFrame:
    """Read one layer with GDAL, refusing more than ``ctx.limits.max_rows`` features.

    Any GDAL failure becomes ``io.corrupt``. GeoPackage and Shapefile know their feature
    count cheaply, so they are refused before reading; the other formats (whose size the
    file limit bounds) after. pyogrio's ``max_features`` is not used: it preallocates that
    many rows when the count is unknown (GPX), which costs more than the read.
    """
    limit = ctx.limits.max_rows
    count = 0
    try:
        if fmt in ("GeoPackage", "Shapefile"):
            count = pyogrio.read_info(path, layer=layer_name, encoding=encoding)["features"]
    except _GDAL_ERRORS as e:
        ctx.fail("io.corrupt", format=fmt, detail=_detail(e))
    if count > limit:
        too_many_rows(ctx, row=limit + 1)
    try:
        df = pyogrio.read_dataframe(path, layer=layer_name, encoding=encoding)
    except _GDAL_ERRORS as e:
        ctx.fail("io.corrupt", format=fmt, detail=_detail(e))
    if len(df) > limit:
        too_many_rows(ctx, row=limit + 1)
    return df


def finish_features(df: pd.DataFrame, ctx: ReadContext, *, truncated: bool = False) -> pd.DataFrame:
    """Tidy a feature table: index, dtypes, geometry-less tables, CRS note, header mapping."""
    df = df.reset_index(drop=True)
    if isinstance(df, gpd.GeoDataFrame):
        geo_less = ctx.schema is not None and ctx.schema.geometry is None
        if geo_less or (ctx.schema is None and len(df) and df.geometry.isna().all()):
            df = pd.DataFrame(df.drop(columns=df.geometry.name))
        elif df.crs is None:
            ctx.note("info", "io.no_crs")
    return map_headers(tidy_dtypes(df), ctx, truncated=truncated)


def choose_layer(names: list[str], ctx: ReadContext) -> str:
    """The layer named like ``ctx.layer``, else the only one; else ``io.choose_layer``."""
    if not names:
        ctx.fail("io.no_layers")
    pick: str | None = None
    if ctx.schema is not None:
        wanted = {normalise_header(x) for x in (ctx.schema.name, ctx.schema.title_zh,
                                                 ctx.schema.title_en)}
        exact = [n for n in names if normalise_header(n) in wanted]
        loose = [n for n in names if any(w in normalise_header(n) for w in wanted)]
        pick = exact[0] if len(exact) == 1 else loose[0] if len(loose) == 1 else None
    if pick is None and len(names) == 1:
        pick = names[0]
    if pick is None:
        ctx.fail("io.choose_layer", layer=ctx.layer or "-", layers=listing(names))
    if len(names) > 1:
        ctx.note("info", "io.layer_chosen", layer_name=pick, layers=listing(names))
    return pick


# --------------------------------------------------------------------------- GeoJSON, GPKG


#: A JSON ``\\u0000``-style escape of a C0 control character (not tab, LF, CR) that is not
#: itself escaped, or such a character written raw (invalid JSON that GDAL accepts).
_JSON_CONTROL = re.compile(
    rb"(?<!\\)((?:\\\\)*)\\u00(?:0[0-8bBcCeEfF]|1[0-9a-fA-F])|[\x00-\x08\x0b\x0c\x0e-\x1f]")


def read_geojson(ctx: ReadContext) -> pd.DataFrame:
    """Read a GeoJSON file.

    GDAL cuts a string at a NUL (``"G\\u0000 1"`` would arrive as ``"G"``), so control
    characters are removed from the text before GDAL sees it, with a warning.
    """
    data = Path(ctx.path).read_bytes()
    found = len(_JSON_CONTROL.findall(data))
    if not found:
        del data
        return finish_features(ogr_read(ctx, ctx.path, fmt="GeoJSON"), ctx)
    ctx.note("warning", "readers.control_chars_json", count=found)
    with tempfile.TemporaryDirectory(prefix="gridpulse-json-") as tmp:
        clean = Path(tmp) / "clean.geojson"
        clean.write_bytes(_JSON_CONTROL.sub(rb"\1", data))
        del data
        return finish_features(ogr_read(ctx, clean, fmt="GeoJSON"), ctx)


def read_gpkg(ctx: ReadContext) -> pd.DataFrame:
    """Read the wanted layer of a GeoPackage."""
    try:
        names = [str(n) for n in pyogrio.list_layers(ctx.path)[:, 0]]
    except _GDAL_ERRORS as e:
        ctx.fail("io.corrupt", format="GeoPackage", detail=_detail(e))
    name = choose_layer(names, ctx)
    cut = _gpkg_nul_text(ctx, name)
    df = ogr_read(ctx, ctx.path, fmt="GeoPackage", layer_name=name)
    if cut:  # GDAL stops a text at its first NUL: put the whole text back, NUL removed
        fids = pyogrio.read_dataframe(ctx.path, layer=name, columns=[], read_geometry=False,
                                      fid_as_index=True).index
        pos = pd.Series(range(len(fids)), index=fids)
        for column, values in cut.items():
            if column not in df.columns:
                continue
            at = pos.reindex(list(values)).dropna().astype(int).to_numpy()
            df.loc[df.index[at], column] = [values[f] for f in fids[at]]
            count, rows = rows_text(sorted(at), 1)
            ctx.note("warning", "readers.control_chars", column=column, count=count, rows=rows)
    return finish_features(df, ctx)


def _gpkg_nul_text(ctx: ReadContext, table: str) -> dict[str, dict[int, str]]:
    """Text cells of ``table`` holding a NUL: ``{column: {fid: text without control characters}}``.

    Read with sqlite3 as bytes, since GDAL (a C string) cuts such a text at the NUL.
    Returns ``{}`` when the file cannot be opened this way (GDAL then reports the problem).
    """
    import sqlite3

    out: dict[str, dict[int, str]] = {}
    try:
        con = sqlite3.connect(Path(ctx.path).resolve().as_uri() + "?mode=ro", uri=True)
    except sqlite3.Error:
        return out
    try:
        quoted = '"' + table.replace('"', '""') + '"'
        for _, column, ctype, *_ in con.execute(f"PRAGMA table_info({quoted})").fetchall():
            if not str(ctype).upper().startswith("TEXT"):
                continue
            col = '"' + str(column).replace('"', '""') + '"'
            found = con.execute(f"SELECT rowid, CAST({col} AS BLOB) FROM {quoted} "
                                f"WHERE instr(CAST({col} AS BLOB), x'00') > 0").fetchall()
            if found:
                out[str(column)] = {
                    int(fid): CONTROL_CHARS.sub("", bytes(raw).decode("utf-8", "replace"))
                    for fid, raw in found}
    except sqlite3.Error:
        return {}
    finally:
        con.close()
    return out


# --------------------------------------------------------------------------- GeoParquet


def read_parquet(ctx: ReadContext) -> pd.DataFrame:
    """Read GeoParquet; plain Parquet goes through the table path (lon/lat or WKT columns)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        footer = pq.ParquetFile(ctx.path).metadata
    except (pa.ArrowException, OSError, ValueError) as e:
        ctx.fail("io.corrupt", format="Parquet", detail=_detail(e))
    _check_parquet(ctx, footer)
    try:
        meta = pq.read_schema(ctx.path).metadata or {}
        if b"geo" in meta:
            return finish_features(gpd.read_parquet(ctx.path), ctx)
        table = pd.read_parquet(ctx.path)
    except (pa.ArrowException, OSError, ValueError) as e:
        ctx.fail("io.corrupt", format="Parquet", detail=_detail(e))
    ctx.numbers_from_text = False
    return table_to_frame(tidy_dtypes(table.reset_index(drop=True)), ctx, row_offset=1)


def _check_parquet(ctx: ReadContext, meta: object) -> None:
    """Refuse Parquet whose footer declares more rows, columns or expanded bytes than the limits.

    Run-length and dictionary encoding can make a tiny file expand to gigabytes, so the
    uncompressed size the footer declares counts like a zip member's.
    """
    lim = ctx.limits
    if meta.num_rows > lim.max_rows:  # type: ignore[attr-defined]
        too_many_rows(ctx, row=lim.max_rows + 1)
    if meta.num_columns > lim.max_columns:  # type: ignore[attr-defined]
        too_many_columns(ctx, row=1, columns=meta.num_columns)  # type: ignore[attr-defined]
    expanded = sum(meta.row_group(i).total_byte_size  # type: ignore[attr-defined]
                   for i in range(meta.num_row_groups))  # type: ignore[attr-defined]
    if expanded > lim.zip_max_member_bytes:
        from layers._io_guard import size_mb

        ctx.fail("readers.zip_member_too_large", member=ctx.source, size_mb=size_mb(expanded),
                 limit_mb=size_mb(lim.zip_max_member_bytes))


# --------------------------------------------------------------------------- GPX


def read_gpx(ctx: ReadContext) -> pd.DataFrame:
    """Read GPX track points (else waypoints): ``track``, ``segment``, ``time``, ``elevation_m``..."""
    pts = ogr_read(ctx, ctx.path, fmt="GPX", layer_name="track_points")
    if len(pts):
        tracks = ogr_read(ctx, ctx.path, fmt="GPX", layer_name="tracks")
        names = dict(enumerate(tracks["name"])) if "name" in tracks else {}
        pts.insert(0, "track", pts["track_fid"].map(names).astype("str"))
        pts = pts.rename(columns={"track_seg_id": "segment", "ele": "elevation_m"})
        pts = pts.drop(columns=["track_fid", "track_seg_point_id"])
        ctx.note("info", "io.gpx_read", tracks=len(tracks), points=len(pts))
    else:
        pts = ogr_read(ctx, ctx.path, fmt="GPX", layer_name="waypoints")
        pts = pts.rename(columns={"ele": "elevation_m"})
        ctx.note("info", "io.gpx_waypoints", points=len(pts))
    empty = [c for c in pts.columns if c != "geometry" and pts[c].isna().all()]
    return finish_features(pts.drop(columns=empty), ctx)


# --------------------------------------------------------------------------- zipped Shapefile


def _member_name(info: zipfile.ZipInfo) -> str:
    """A member's real name: zips made on Chinese Windows store GBK names without the UTF-8 flag."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("gbk")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


def read_zip(ctx: ReadContext, read_member: Callable[[Path], tuple[pd.DataFrame, int]]
             ) -> tuple[pd.DataFrame, int]:
    """Read a .zip: a Shapefile (one layer chosen like a GeoPackage's) or one other data file.

    ``read_member(path)`` reads a non-Shapefile member through the main dispatcher.
    """
    try:
        zf = zipfile.ZipFile(ctx.path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        ctx.fail("io.corrupt_zip", detail=corrupt_detail(e))
    with zf, tempfile.TemporaryDirectory(prefix="gridpulse-zip-") as tmp:
        check_zip(ctx, zf)
        members: dict[str, zipfile.ZipInfo] = {}
        for info in zf.infolist():
            name = _member_name(info)
            p = PurePosixPath(name)
            if info.is_dir() or "__MACOSX" in p.parts or p.name.startswith("."):
                continue
            members[name] = info
        groups: dict[str, dict[str, str]] = {}
        for name in members:
            p = PurePosixPath(name)
            low = p.name.lower()
            if low.endswith(SIDECAR_SUFFIX):
                groups.setdefault(str(p.parent / p.name[: -len(SIDECAR_SUFFIX)]), {})[SIDECAR_SUFFIX] = name
            elif p.suffix.lower() in _SHP_PARTS:
                groups.setdefault(str(p.with_suffix("")), {})[p.suffix.lower()] = name
        layers = {k: v for k, v in groups.items() if ".shp" in v or ".dbf" in v}
        contents = listing(sorted(members))
        if not layers:
            data = [n for n in members if PurePosixPath(n).suffix.lower() in SUPPORTED_READ
                    and PurePosixPath(n).suffix.lower() != ".zip"]
            if len(data) != 1:
                ctx.fail("io.zip_no_data", members=contents)
            target = Path(tmp) / ("member" + PurePosixPath(data[0]).suffix.lower())
            extract_member(ctx, zf, members[data[0]], target)
            return read_member(target)
        by_name = {PurePosixPath(k).name: k for k in layers}
        key = by_name[choose_layer(sorted(by_name), ctx)]
        parts = layers[key]
        layer_name = PurePosixPath(key).name
        needed = (".shp", ".shx", ".dbf") if ".shp" in parts else (".dbf",)
        missing = [s for s in needed if s not in parts]
        if missing:
            ctx.fail("io.shapefile_missing_part", layer_name=layer_name, parts=listing(missing))
        for suffix, name in parts.items():
            extract_member(ctx, zf, members[name], Path(tmp) / ("layer" + suffix))
        return _read_shapefile(ctx, Path(tmp) / "layer", set(parts)), 1


def read_bare_shapefile(ctx: ReadContext) -> pd.DataFrame:
    """Read a ``.shp`` given directly, with its parts beside it (same name, any case)."""
    shp = Path(ctx.path)
    siblings = {f.name.lower(): f for f in shp.parent.iterdir()}
    stem = shp.name[: -len(shp.suffix)].lower()
    parts = {s for s in (*_SHP_PARTS, SIDECAR_SUFFIX) if stem + s in siblings}
    missing = [s for s in (".shx", ".dbf") if s not in parts]
    if missing:
        ctx.fail("io.shapefile_missing_part", layer_name=shp.stem, parts=listing(missing))
    check_file_size(ctx, sum(siblings[stem + s].stat().st_size for s in parts))
    with tempfile.TemporaryDirectory(prefix="gridpulse-shp-") as tmp:
        for s in parts:
            shutil.copyfile(siblings[stem + s], Path(tmp) / ("layer" + s))
        return _read_shapefile(ctx, Path(tmp) / "layer", parts)


def _read_shapefile(ctx: ReadContext, base: Path, parts: set[str]) -> pd.DataFrame:
    """Read the Shapefile ``<base>.shp`` (or the table ``<base>.dbf``) whose parts are ``parts``."""
    def part(suffix: str) -> Path:
        return Path(str(base) + suffix)

    encoding = _gdal_codec(ctx.encoding) if ctx.encoding else None
    if encoding is None and ".cpg" not in parts:
        encoding = guess_dbf_encoding(part(".dbf").read_bytes())
        if encoding is not None:
            ctx.note("info", "io.dbf_encoding_guessed", encoding=encoding)
    codec = encoding or (_cpg_codec(part(".cpg").read_text("ascii", "replace")) if ".cpg" in parts
                         else None)
    if codec is not None:
        repair_dbf_field_names(part(".dbf"), codec)
    target = part(".shp" if ".shp" in parts else ".dbf")
    df = ogr_read(ctx, target, fmt="Shapefile", encoding=encoding)
    if SIDECAR_SUFFIX in parts:
        df = _apply_sidecar(df, part(SIDECAR_SUFFIX))
    df = finish_features(df, ctx, truncated=True)
    ctx.numbers_from_text = False
    geometry = df.geometry.name if isinstance(df, gpd.GeoDataFrame) else None
    attrs = type_table(pd.DataFrame(df.drop(columns=[geometry]) if geometry else df), ctx)
    for c in attrs.columns:
        df[c] = attrs[c]
    return df


def _apply_sidecar(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Restore long names and dtypes written by :func:`layers._io_write.write_shapefile_zip`."""
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
        cols = spec["columns"]
    except (ValueError, KeyError, TypeError):
        return df
    rename = {c["field"]: c["name"] for c in cols if c.get("field") in df.columns}
    for c in cols:
        field, dtype = c.get("field"), str(c.get("dtype", ""))
        if field not in df.columns:
            continue
        if dtype.startswith("datetime64"):
            tz = dtype.split(",", 1)[1].rstrip("]").strip() if "," in dtype else None
            try:
                s = pd.to_datetime(df[field], format="ISO8601", utc=tz is not None)
                df[field] = s.dt.tz_convert(tz) if tz else s
            except (ValueError, TypeError):
                pass  # edited by hand since: leave the text as it is
        elif dtype == "bool" and df[field].notna().all():
            df[field] = df[field].astype(bool)
        elif dtype in ("Int64", "int64") and pd.api.types.is_float_dtype(df[field].dtype):
            df[field] = df[field].astype("Int64")
    return df.rename(columns=rename)


def _gdal_codec(name: str) -> str:
    """A Python codec name as GDAL (iconv) spells it: ``latin-1`` -> ``ISO8859-1``."""
    import codecs

    return codecs.lookup(name).name.upper()


def _cpg_codec(text: str) -> str | None:
    """The Python codec for the text of a .cpg file, if it names one."""
    import codecs

    name = text.strip().upper()
    name = {"65001": "UTF-8", "936": "GBK", "CP936": "GBK", "ANSI 936": "GBK"}.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def repair_dbf_field_names(path: Path, codec: str) -> None:
    """Trim .dbf field names whose last character was cut by the 10-byte limit, in place.

    GDAL cuts long names at 10 bytes, which can split a multi-byte character (3 bytes a
    Chinese character in UTF-8, 2 in GBK) and leaves names that cannot be decoded.
    """
    data = bytearray(path.read_bytes())
    if len(data) < 32:
        return
    header_len = struct.unpack("<H", data[8:10])[0]
    used: set[bytes] = set()
    off, changed = 32, False
    while off + 32 <= min(header_len, len(data)) and data[off] != 0x0D:
        raw = bytes(data[off:off + 11]).split(b"\x00", 1)[0]
        name = raw
        try:
            name.decode(codec)
        except UnicodeDecodeError as e:
            name = name[: e.start] if e.end >= len(name) or "end" in e.reason else name
        base, k = name, 1
        while name.lower() in used:
            suffix = str(k).encode()
            name, k = base[: 10 - len(suffix)] + suffix, k + 1
            try:
                name.decode(codec)
            except UnicodeDecodeError as e:
                name = name[: e.start] + suffix
        used.add(name.lower())
        if name != raw:
            data[off:off + 11] = name.ljust(11, b"\x00")
            changed = True
        off += 32
    if changed:
        path.write_bytes(bytes(data))


def guess_dbf_encoding(data: bytes, *, max_records: int = 5000) -> str | None:
    """The encoding of a .dbf with no .cpg, from its language byte or its text: UTF-8, GBK, GB18030.

    Returns ``None`` when GDAL can decide by itself (a language driver id is set) or the
    text is plain ASCII.

    >>> guess_dbf_encoding(b"")
    """
    if len(data) < 32 or data[29] != 0:
        return None
    header_len, record_len = struct.unpack("<HH", data[8:12])
    fields: list[tuple[int, int, bytes]] = []
    off, pos = 32, 1
    while off + 32 <= min(header_len, len(data)) and data[off] != 0x0D:
        name = data[off:off + 11].split(b"\x00", 1)[0]
        ftype, flen = data[off + 11:off + 12], data[off + 16]
        if ftype == b"C":
            fields.append((pos, flen, name))
        else:
            fields.append((pos, 0, name))
        pos += flen
        off += 32
    chunks = [name for _, _, name in fields]
    for r in range(min(max_records, max(0, (len(data) - header_len) // max(record_len, 1)))):
        rec = data[header_len + r * record_len: header_len + (r + 1) * record_len]
        chunks.extend(rec[p:p + n].rstrip(b" \x00") for p, n, _ in fields if n)
    text = [c for c in chunks if any(b > 0x7F for b in c)]
    if not text:
        return None
    for codec, label in (("utf-8", "UTF-8"), ("gbk", "GBK"), ("gb18030", "GB18030")):
        try:
            for c in text:
                c.decode(codec)
        except UnicodeDecodeError:
            if codec == "utf-8" and _only_cut_at_end(text):
                return label
            continue
        return label
    return None


def _only_cut_at_end(chunks: list[bytes]) -> bool:
    """UTF-8 text whose only errors are multi-byte characters cut by the field width."""
    for c in chunks:
        try:
            c.decode("utf-8")
        except UnicodeDecodeError as e:
            if e.reason != "unexpected end of data":
                return False
    return True

