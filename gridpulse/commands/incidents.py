"""``gridpulse hotspots`` and ``gridpulse kpis``: incident analysis from the store.

    gridpulse hotspots [--from DATE] [--to DATE] [--category CODE] [--res N] [--k K]
                       [--step-days D] [--no-fdr] [--store URL] --out FILE.gpkg|FILE.geojson
    gridpulse kpis [--by subdistrict|community|grid|department] [--from DATE] [--to DATE]
                   [--now TIME] [--store URL] --out FILE.csv

``hotspots`` counts incidents per H3 cell with the engine (``Store.h3_counts`` on the ``h3_<res>``
ids stored at ingest), runs Gi* with the FDR correction on the study area, and emerging hot spots
over weekly steps ending at ``--to`` -- all through :func:`layers.analysis.hotspots`, the function
the hotspot page calls (study area: the district's cells, empty ones as zeros; emerging hot spots
skipped with a warning below :data:`layers.analysis.MIN_EHSA_STEPS` steps, as ArcGIS does).
It writes one polygon per cell: ``h3``, ``count``, ``z``, ``p``, ``gi_bin`` (-3..3), ``ehsa``
(pattern), ``ehsa_category`` (ArcGIS code), ``ehsa_label``, ``trend_z``, ``trend_p`` (and the
int64 ``cell`` in a GeoPackage; GeoJSON keeps only the ``h3`` string, as JSON numbers cannot hold
64-bit ids).

``kpis`` writes the KPI table (:mod:`geo.kpis`) per sub-district, community, grid or department
as a UTF-8 CSV with a byte-order mark (Excel opens it with Chinese intact). Sub-districts and
communities come from the ``grids``/``communities`` layers when present, else from the grid
code's prefix (DB11/T 2157: 9 and 12 digits).

``--to DATE`` is inclusive (the whole day); a full time (``2025-03-31 12:00``) is exclusive.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from layers.i18n import default_lang, t

if TYPE_CHECKING:  # heavy modules are imported by the handlers, not at start-up
    import pandas as pd

_MSG = "incidents.cli."
GEO_SUFFIXES: dict[str, str] = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON"}
BY_CHOICES: tuple[str, ...] = ("subdistrict", "community", "grid", "department")
T = TypeVar("T")


class CommandError(ValueError):
    """A bad option or an empty selection; ``key``/``params`` say which (catalogue ``incidents.cli.*``)."""

    def __init__(self, key: str, **params: Any) -> None:
        self.key = key
        self.params = params
        super().__init__(key)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``hotspots`` and ``kpis`` to the CLI."""
    lang = default_lang()

    def hp(key: str) -> str:
        return t(f"incidents.help.{key}", lang)

    store_help = t("cli.help_store", lang)
    h = sub.add_parser("hotspots", help=hp("hotspots"), description=hp("hotspots"))
    h.add_argument("--from", dest="date_from", default=None, help=hp("from"))
    h.add_argument("--to", dest="date_to", default=None, help=hp("to"))
    h.add_argument("--category", default=None, help=hp("category"))
    h.add_argument("--res", type=int, default=9, help=hp("res"))
    h.add_argument("--k", type=int, default=1, help=hp("k"))
    h.add_argument("--step-days", type=int, default=7, help=hp("step_days"))
    h.add_argument("--no-fdr", action="store_true", help=hp("no_fdr"))
    h.add_argument("--store", default=None, help=store_help)
    h.add_argument("--out", required=True, help=hp("out_geo"))
    h.set_defaults(func=run_hotspots)

    k = sub.add_parser("kpis", help=hp("kpis"), description=hp("kpis"))
    k.add_argument("--by", choices=BY_CHOICES, default="grid", help=hp("by"))
    k.add_argument("--from", dest="date_from", default=None, help=hp("from_receipt"))
    k.add_argument("--to", dest="date_to", default=None, help=hp("to_receipt"))
    k.add_argument("--now", default=None, help=hp("now"))
    k.add_argument("--store", default=None, help=store_help)
    k.add_argument("--out", required=True, help=hp("out_csv"))
    k.set_defaults(func=run_kpis)


# --------------------------------------------------------------------------------------------


def _period(date_from: str | None, date_to: str | None) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    import pandas as pd

    def parse(v: str) -> pd.Timestamp:
        try:
            ts = pd.Timestamp(v)
        except (TypeError, ValueError):
            raise CommandError(_MSG + "bad_date", value=v) from None
        if pd.isna(ts):
            raise CommandError(_MSG + "bad_date", value=v)
        return ts

    lo = parse(date_from) if date_from else None
    hi = None
    if date_to:
        hi = parse(date_to)
        if len(date_to.strip()) <= 10:  # a date: include the whole day
            hi = hi.normalize() + pd.Timedelta(days=1)
    if lo is not None and hi is not None and hi <= lo:
        raise CommandError(_MSG + "empty_period", start=str(lo), end=str(hi))
    return lo, hi


def _with_store(url: str | None, fn: Callable[[Any], T]) -> T:
    """Open the store at ``url`` (default: the setting), run ``fn(store)``, close it."""
    from layers.config import settings
    from layers.store import open_store

    store = open_store(url or settings().store_url)
    try:
        return fn(store)
    finally:
        store.close()


def _fail(e: Exception, lang: str | None) -> int:
    if isinstance(e, CommandError):
        print(t(e.key, lang, **e.params), file=sys.stderr)
        fix = f"{e.key}.fix"
        from layers.i18n import catalogue

        if fix in catalogue():
            print("  " + t(fix, lang, **e.params), file=sys.stderr)
        return 2
    print(t(_MSG + "store_failed", lang, error=str(e)), file=sys.stderr)
    return 1


def hotspot_cells(
    store: Any,
    *,
    res: int,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    category: str | None = None,
    k: int = 1,
    fdr: bool = True,
    step_days: int = 7,
    lang: str | None = None,
    account: Any = None,
) -> tuple[Any, int]:
    """The hotspot table (GeoDataFrame, EPSG:4326) for one filter, and the number of EHSA steps
    (:func:`layers.analysis.hotspot_job` as ``account``: default the operating-system user)."""
    import numpy as np

    from geo.hexes import cells_gdf, cells_to_str
    from layers import analysis, taxonomy
    from layers.schema import H3_RESOLUTIONS
    from layers.workflow import label

    if res not in H3_RESOLUTIONS:
        raise CommandError(_MSG + "bad_res", res=res, allowed=", ".join(map(str, H3_RESOLUTIONS)))
    where: dict[str, Any] = {}
    if category:
        if category in taxonomy.CATEGORIES:
            where["category_code"] = category
        elif category in taxonomy.ITEMS:
            where["item_code"] = category
        else:
            raise CommandError(_MSG + "bad_category", code=category)
    if k < 1 or step_days < 1:
        raise CommandError(_MSG + "bad_number")
    between = {"requested_datetime": (start, end)} if (start is not None or end is not None) else None
    if store.h3_counts("incidents", res=res, between=between).empty:
        raise CommandError(_MSG + "no_incidents")
    from layers.app import os_account

    table, n_steps = analysis.hotspot_job(store, account or os_account(), res=res, since=start,
                                          until=end, where=where or None, k=k, fdr=fdr,
                                          step_days=step_days)
    domain = table.index.to_numpy(np.int64)
    cols: dict[str, Any] = {
        "h3": cells_to_str(domain),
        "count": table["count"].to_numpy(np.int64),
        "z": table["z"].to_numpy(),
        "p": table["p"].to_numpy(),
        "gi_bin": table["gi_bin"].to_numpy(np.int64),
        "ehsa": table["ehsa"].to_numpy(),
        "ehsa_category": table["ehsa_category"].to_numpy(np.int64),
        "ehsa_label": [None if p is None else label("ehsa", p, lang) for p in table["ehsa"]],
        "trend_z": table["trend_z"].to_numpy(),
        "trend_p": table["trend_p"].to_numpy(),
    }
    return cells_gdf(domain, **cols), n_steps


def run_hotspots(args: argparse.Namespace) -> int:
    """Handler of ``gridpulse hotspots``."""
    lang = args.lang
    out = Path(args.out)
    try:
        driver = GEO_SUFFIXES.get(out.suffix.lower())
        if driver is None:
            raise CommandError(_MSG + "bad_suffix", suffix=out.suffix or out.name,
                               allowed=", ".join(GEO_SUFFIXES))
        start, end = _period(args.date_from, args.date_to)
        gdf, n_steps = _with_store(args.store, lambda store: hotspot_cells(
            store, res=args.res, start=start, end=end, category=args.category, k=args.k,
            fdr=not args.no_fdr, step_days=args.step_days, lang=lang))
    except (OSError, RuntimeError, ValueError) as e:  # CommandError is a ValueError
        return _fail(e, lang)
    from layers.analysis import MIN_EHSA_STEPS

    if n_steps < MIN_EHSA_STEPS:
        print(t(_MSG + "ehsa_skipped", lang, steps=n_steps, minimum=MIN_EHSA_STEPS), file=sys.stderr)
    if driver == "GeoJSON":
        gdf = gdf.drop(columns="cell")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        out.unlink()
    gdf.to_file(out, driver=driver, **({"layer": "hotspots"} if driver == "GPKG" else {}))
    print(t(_MSG + "hotspots_done", lang, file=str(out), cells=len(gdf), hot=int((gdf["gi_bin"] > 0).sum()),
            cold=int((gdf["gi_bin"] < 0).sum())), file=sys.stderr)
    return 0


# --------------------------------------------------------------------------------------------


KPI_READ_COLUMNS: tuple[str, ...] = (
    "stage", "requested_datetime", "updated_datetime", "expected_datetime", "closed_datetime",
    "reworks", "extensions", "grid_code", "department",
)


def kpi_table(
    store: Any,
    *,
    by: str = "grid",
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    now: Any = None,
    lang: str | None = None,
    account: Any = None,
) -> pd.DataFrame:
    """The KPI table from the store, one row per ``by`` group, with ``code`` and ``name`` first
    (:func:`layers.analysis.kpi_job` as ``account``: default the operating-system user)."""

    from geo.kpis import code_prefix
    from layers.analysis import kpi_job
    from layers.app import os_account
    from layers.workflow import label

    if by not in BY_CHOICES:
        raise CommandError(_MSG + "bad_by", by=by, allowed=", ".join(BY_CHOICES))
    names: dict[str, str] = {}
    grids = _table(store, "grids", ["code", "name", "community_code"])
    comms = _table(store, "communities", ["code", "name", "subdistrict_code"])
    subs = _table(store, "subdistricts", ["code", "name"])

    def group(df: pd.DataFrame) -> Any:
        if by == "department":
            names.update({d: label("department", d, lang) for d in df["department"].dropna().unique()})
            return df["department"]
        grid = df["grid_code"].astype("string")
        if by == "grid":
            names.update(zip(grids["code"], grids["name"], strict=False))
            return grid
        g2c = dict(zip(grids["code"], grids["community_code"], strict=False))
        comm = grid.map(g2c).astype("string").fillna(code_prefix(grid, 12)) if g2c else code_prefix(grid, 12)
        if by == "community":
            names.update(zip(comms["code"], comms["name"], strict=False))
            return comm
        c2s = dict(zip(comms["code"], comms["subdistrict_code"], strict=False))
        names.update(zip(subs["code"], subs["name"], strict=False))
        return comm.map(c2s).astype("string").fillna(code_prefix(grid, 9)) if c2s else code_prefix(grid, 9)

    if not store.has_layer("incidents") or not store.count("incidents", between={
            "requested_datetime": (start, end)} if (start is not None or end is not None) else None):
        raise CommandError(_MSG + "no_incidents")
    table = kpi_job(store, account or os_account(), by=group, now=now, since=start, until=end)
    table.insert(0, "name", [names.get(c) if isinstance(c, str) else None for c in table.index])
    return table.reset_index()


def _table(store: Any, layer: str, columns: list[str]) -> pd.DataFrame:
    import pandas as pd

    try:
        if not store.has_layer(layer):
            return pd.DataFrame(columns=columns)
        df = store.read(layer, columns=columns)
    except (RuntimeError, ValueError, KeyError):
        return pd.DataFrame(columns=columns)
    return pd.DataFrame(df[columns])


def run_kpis(args: argparse.Namespace) -> int:
    """Handler of ``gridpulse kpis``."""
    lang = args.lang
    out = Path(args.out)
    try:
        if out.suffix.lower() != ".csv":
            raise CommandError(_MSG + "bad_suffix", suffix=out.suffix or out.name, allowed=".csv")
        start, end = _period(args.date_from, args.date_to)
        now = _period(args.now, None)[0] if args.now else None
        table = _with_store(args.store, lambda store: kpi_table(
            store, by=args.by, start=start, end=end, now=now, lang=lang))
    except (OSError, RuntimeError, ValueError) as e:  # CommandError is a ValueError
        return _fail(e, lang)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False, encoding="utf-8-sig", float_format="%.6g")
    print(t(_MSG + "kpis_done", lang, file=str(out), rows=len(table)), file=sys.stderr)
    return 0
