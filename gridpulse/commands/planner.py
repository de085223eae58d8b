"""Planner commands: ``repartition`` and ``accessibility``.

* ``gridpulse repartition (--community CODE | --subdistrict CODE | --all) [--level grid|community]
  [--min-households 300] [--max-households 500] [--radius-m 1000] [--seed N] --out FILE``
  redraws the comprehensive grids inside each community (or, with ``--level community``, the
  communities inside each sub-district), writes the proposal (the grid schema's columns plus
  per-region metrics and violations; a GeoPackage also gets ``service_points`` and
  ``violations`` layers) and prints the comparison table and every unmet constraint.
* ``gridpulse accessibility [--kind KIND] [--minutes 5,10,15] [--speed-kmh 4] [--sites 3]
  --out FILE`` writes the walking isochrones (a GeoPackage also gets ``coverage``, ``gaps``
  and ``sites``; a GeoJSON gets ``FILE.coverage.csv`` beside it) and prints the coverage table.

Both read the store (``--store`` or ``GRIDPULSE_STORE``). Exit codes: 0 done (a proposal that
breaks constraints that cannot all hold is still a result), 1 the store or data cannot be
used, 2 a bad argument.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geo.planner_defaults import DEFAULTS
from layers.i18n import default_lang, t

if TYPE_CHECKING:  # heavy modules are imported by the handlers, not at start-up
    import pandas as pd

SUFFIXES = (".gpkg", ".geojson", ".json")
_TABLE_COLS = ("grids", "households_min", "households_median", "households_max",
               "within_band_share", "contiguous_share", "max_walk_m", "p95_walk_m",
               "polsby_popper_median", "moved_share", "workers_needed",
               "households_per_full_time_median", "households_per_full_time_max", "ab_posts_short")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``repartition`` and ``accessibility``."""
    lang = default_lang()

    def h(key: str) -> str:
        return t(f"planner.cli.{key}", lang)

    p = subparsers.add_parser("repartition", help=h("repartition_help"),
                              description=h("repartition_help"))
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("--community", metavar="CODE", help=h("help_community"))
    scope.add_argument("--subdistrict", metavar="CODE", help=h("help_subdistrict"))
    scope.add_argument("--all", action="store_true", help=h("help_all"))
    p.add_argument("--level", choices=("grid", "community"), default="grid", help=h("help_level"))
    p.add_argument("--min-households", type=float, default=None, help=h("help_min"))
    p.add_argument("--max-households", type=float, default=None, help=h("help_max"))
    p.add_argument("--min-population", type=float, default=None, help=h("help_min_pop"))
    p.add_argument("--max-population", type=float, default=None, help=h("help_max_pop"))
    p.add_argument("--radius-m", type=float, default=DEFAULTS.radius_m, help=h("help_radius"))
    p.add_argument("--seed", type=int, default=0, help=h("help_seed"))
    p.add_argument("--time-limit-s", type=float, default=None, help=h("help_time"))
    p.add_argument("--max-steps", type=int, default=None, help=h("help_steps"))
    p.add_argument("--walls", action="store_true", help=t("planner2.cli.help_walls", lang))
    p.add_argument("--lock", action="append", default=None, metavar="CODE[,CODE]",
                   help=t("planner2.cli.help_lock", lang))
    p.add_argument("--compactness-weight", type=float, default=1.0,
                   help=t("reports.cli.help_compactness", lang))
    p.add_argument("--disruption-weight", type=float, default=1.0,
                   help=t("reports.cli.help_disruption", lang))
    p.add_argument("--street-weight", type=float, default=0.5, help=t("reports.cli.help_street", lang))
    p.add_argument("--as", dest="as_account", default=None, metavar="ACCOUNT",
                   help=t("reports.cli.help_as", lang))
    p.add_argument("--store", default=None, help=t("cli.help_store", lang))
    p.add_argument("--out", required=True, type=Path, metavar="FILE", help=h("help_out"))
    p.set_defaults(func=cmd_repartition)

    p = subparsers.add_parser("accessibility", help=h("accessibility_help"),
                              description=h("accessibility_help"))
    p.add_argument("--kind", action="append", default=None, metavar="KIND", help=h("help_kind"))
    p.add_argument("--minutes", default="5,10,15", help=h("help_minutes"))
    p.add_argument("--speed-kmh", type=float, default=3.6, help=h("help_speed"))
    p.add_argument("--sites", type=int, default=3, help=h("help_sites"))
    p.add_argument("--store", default=None, help=t("cli.help_store", lang))
    p.add_argument("--out", required=True, type=Path, metavar="FILE", help=h("help_out"))
    p.set_defaults(func=cmd_accessibility)


class _Stop(Exception):
    """A message was printed; leave with this exit code."""

    def __init__(self, code: int) -> None:
        self.code = code


def _say(key: str, lang: str | None, *, err: bool = False, **params: Any) -> None:
    stream = sys.stderr if err else sys.stdout
    print(t(key, lang, **params), file=stream)
    fix = t(f"{key}.fix", lang, **params)
    if fix != f"{key}.fix":
        print(f"    {t('common.fix', lang)}: {fix}", file=stream)


def _check_out(path: Path, lang: str | None) -> None:
    if path.suffix.lower() not in SUFFIXES:
        _say("planner.cli.bad_suffix", lang, err=True, suffix=path.suffix or "''")
        raise _Stop(2)


def _read(store: Any, layer: str, lang: str | None, **kw: Any) -> pd.DataFrame:
    if not store.has_layer(layer):
        _say("planner.cli.missing_layer", lang, err=True, layer=layer)
        raise _Stop(1)
    return store.read(layer, **kw)


def _open(url: str | None, lang: str | None):
    from layers.config import settings
    from layers.store import open_store

    try:
        return open_store(url or settings().store_url)
    except Exception as exc:  # the store's own errors carry their message
        _say("planner.cli.failed", lang, err=True, error=exc)
        raise _Stop(1) from exc


# ------------------------------------------------------------------------------ repartition
def cmd_repartition(args: argparse.Namespace) -> int:
    """Run ``gridpulse repartition``."""
    lang = getattr(args, "lang", None)
    try:
        return _repartition(args, lang)
    except _Stop as stop:
        return stop.code


def _band(args: argparse.Namespace, lang: str | None) -> tuple[str, tuple[float, float] | None]:
    pop = (args.min_population, args.max_population)
    hh = (args.min_households, args.max_households)
    if any(v is not None for v in pop):
        if None in pop or any(v is not None for v in hh):
            _say("planner.cli.bad_option", lang, err=True,
                 error="--min-population and --max-population go together, without the household band")
            raise _Stop(2)
        band = pop
        balance = "population"
    else:
        balance = "households"
        default = DEFAULTS.band(args.level)
        band = (hh[0] if hh[0] is not None else default[0], hh[1] if hh[1] is not None else default[1])
    if not 0 <= band[0] <= band[1]:
        _say("planner.cli.bad_option", lang, err=True, error=f"band {band[0]:g}..{band[1]:g}")
        raise _Stop(2)
    return balance, (float(band[0]), float(band[1]))


def _repartition(args: argparse.Namespace, lang: str | None) -> int:
    """``gridpulse repartition``: :func:`layers.proposals.proposal_job` as ``--as ACCOUNT`` (else
    the operating-system user), written to ``--out`` and printed."""
    from geo.partition import PartitionInputError
    from layers.accounts import AccountError
    from layers.analysis import AnalysisError
    from layers.app import cli_account
    from layers.permissions import PermissionDenied
    from layers.proposals import proposal_job

    t0 = time.perf_counter()
    _check_out(args.out, lang)
    if not (args.community or args.subdistrict or args.all):
        _say("planner.cli.scope_required", lang, err=True)
        return 2
    if args.community and args.level == "community":
        _say("planner.cli.community_level", lang, err=True)
        return 2
    if (args.radius_m <= 0 or (args.time_limit_s is not None and args.time_limit_s <= 0)
            or (args.max_steps is not None and args.max_steps <= 0) or args.seed < 0):
        _say("planner.cli.bad_option", lang, err=True,
             error="--radius-m and --time-limit-s must be positive, --seed >= 0")
        return 2
    balance, band = _band(args, lang)
    scope = (f"com:{args.community}" if args.community else
             f"sub:{args.subdistrict}" if args.subdistrict else "district")
    locked = sorted({c.strip() for arg in (getattr(args, "lock", None) or [])
                     for c in arg.split(",") if c.strip()})
    with _open(args.store, lang) as store:
        try:
            account = cli_account(store, getattr(args, "as_account", None))
            res = proposal_job(
                store, account, scope=scope, level=args.level, balance=balance, band=band,
                radius_m=args.radius_m, compactness_weight=args.compactness_weight,
                disruption_weight=args.disruption_weight, street_weight=args.street_weight,
                seed=args.seed, time_limit_s=args.time_limit_s, max_steps=args.max_steps,
                locked=locked, walls=bool(getattr(args, "walls", False)))
        except AnalysisError as exc:
            _say(exc.key, lang, err=True, **exc.params)
            return 1
        except (PermissionDenied, AccountError) as exc:
            print(exc.message(lang), file=sys.stderr)
            return 1
        except PartitionInputError as exc:
            _say("planner.cli.failed", lang, err=True, error=exc)
            return 1
    _write_regions(res, args.out, args.level)
    _print_table(res.summary, lang)
    _print_violations(res.violations, lang)
    if res.search.get("stopped_by_time"):
        _say("planner.cli.stopped_by_time", lang, err=True, codes=", ".join(res.search["stopped_by_time"]))
    _say("planner.cli.wrote", lang, n=len(res.regions), path=args.out,
         seconds=f"{time.perf_counter() - t0:.1f}")
    return 0


def _write_regions(res: Any, path: Path, level: str) -> None:
    import geopandas as gpd
    import pandas as pd

    regions = res.regions.copy()
    regions["violations"] = regions["violations"].map(lambda v: json.dumps(v, ensure_ascii=False))
    layer = "grids" if level == "grid" else "communities"
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    if path.suffix.lower() == ".gpkg":
        regions.to_file(path, layer=layer, driver="GPKG")
        if len(res.service_points):
            res.service_points.to_file(path, layer="service_points", driver="GPKG")
        if res.violations:
            v = pd.DataFrame([{k: (json.dumps(x, ensure_ascii=False) if isinstance(x, list | dict) else x)
                               for k, x in rec.items()} for rec in res.violations])
            gpd.GeoDataFrame(v.astype(str).where(v.notna(), None)).to_file(
                path, layer="violations", driver="GPKG")
    else:
        regions.to_file(path, driver="GeoJSON")


def _print_table(summary: pd.DataFrame, lang: str | None) -> None:
    from layers.planner_text import fmt_value

    if summary.empty:
        return
    plans = list(summary.index)
    head = [t("planner.table.plan", lang)] + [t(f"planner.table.{p}", lang) for p in plans]
    # plain ASCII cells for a terminal table
    rows = [[t(f"planner.table.{c}", lang)]
            + [fmt_value(c, summary.loc[p, c], missing="-", infinite="inf", polsby_digits=2)
               for p in plans]
            for c in _TABLE_COLS if c in summary.columns]
    _print_grid(head, rows)


def _width(s: str) -> int:
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in s)


def _print_grid(head: list[str], rows: list[list[str]]) -> None:
    cols = list(zip(head, *rows, strict=True))
    widths = [max(_width(x) for x in col) for col in cols]

    def line(cells: list[str]) -> str:
        out = []
        for k, (c, w) in enumerate(zip(cells, widths, strict=True)):
            pad = " " * (w - _width(c))
            out.append(c + pad if k == 0 else pad + c)
        return "  ".join(out)

    print(line(head))
    for r in rows:
        print(line(r))


def _print_violations(viol: list[dict[str, Any]], lang: str | None, *, limit: int = 20) -> None:
    from layers.planner_text import violation_text

    if not viol:
        _say("planner.cli.all_met", lang)
        return
    errors = sum(v.get("severity") == "error" for v in viol)
    _say("planner.cli.violations", lang, n=len(viol), errors=errors, warnings=len(viol) - errors)
    for v in sorted(viol, key=lambda r: r.get("severity") != "error")[:limit]:
        head = t(f"common.{v.get('severity', 'warning')}", lang)
        print(f"  [{head}] {violation_text(v, lang)}")
    if len(viol) > limit:
        _say("planner.cli.more", lang, n=len(viol) - limit)


# ---------------------------------------------------------------------------- accessibility
def cmd_accessibility(args: argparse.Namespace) -> int:
    """Run ``gridpulse accessibility``."""
    lang = getattr(args, "lang", None)
    try:
        return _accessibility(args, lang)
    except _Stop as stop:
        return stop.code


def _accessibility(args: argparse.Namespace, lang: str | None) -> int:
    import geopandas as gpd
    import numpy as np

    from geo.accessibility import accessibility

    t0 = time.perf_counter()
    _check_out(args.out, lang)
    try:
        minutes = [float(x) for x in str(args.minutes).split(",") if x.strip()]
        if not minutes or any(m <= 0 for m in minutes) or not 1 <= args.speed_kmh <= 8 or args.sites < 0:
            raise ValueError(args.minutes)
    except ValueError:
        _say("planner.cli.bad_option", lang, err=True,
             error=f"--minutes {args.minutes} --speed-kmh {args.speed_kmh} --sites {args.sites}")
        return 2
    with _open(args.store, lang) as store:
        roads = _read(store, "roads", lang)
        buildings = _read(store, "buildings", lang)
        facilities = _read(store, "facilities", lang)
        # residents leave gated compounds through their gates (when the store has them)
        gates = store.read("gates") if store.has_layer("gates") else None
        compounds = store.read("compounds", columns=["id"]) if store.has_layer("compounds") else None
    if args.kind:
        unknown = sorted(set(args.kind) - set(facilities["kind"].astype(str)))
        if unknown:
            _say("planner.cli.unknown_code", lang, err=True, code=", ".join(unknown))
            return 1
    try:
        res = accessibility(roads, buildings, facilities, kinds=args.kind, minutes=minutes,
                            speed_kmh=args.speed_kmh, n_sites=args.sites,
                            gates=gates if gates is not None and len(gates) else None,
                            compounds=compounds if compounds is not None and len(compounds) else None)
    except ValueError as exc:
        _say("planner.cli.failed", lang, err=True, error=exc)
        return 1
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        out.unlink()
    iso = res.isochrones.copy()
    iso["facility"] = iso["facility"].astype(str)
    if out.suffix.lower() == ".gpkg":
        iso.to_file(out, layer="isochrones", driver="GPKG")
        gpd.GeoDataFrame(res.coverage).to_file(out, layer="coverage", driver="GPKG")
        if len(res.gaps):
            gaps = res.gaps.copy()
            gaps["resident"] = gaps["resident"].astype(str)
            gaps["nearest_m"] = gaps["nearest_m"].replace(np.inf, np.nan)
            gaps.to_file(out, layer="gaps", driver="GPKG")
        if len(res.sites):
            res.sites.to_file(out, layer="sites", driver="GPKG")
    else:
        iso.to_file(out, driver="GeoJSON")
        res.coverage.to_csv(out.with_suffix(".coverage.csv"), index=False)
    _print_coverage(res.coverage, lang)
    for kind, part in res.sites.groupby("kind") if len(res.sites) else []:
        _say("planner.access.sites", lang, kind=kind, n=len(part),
             covered=int(part["added_covered"].sum()), method=part["method"].iloc[0])
    for note in res.notes:
        _say(note["code"], lang, **note)
    _say("planner.cli.wrote_access", lang, n=len(iso), path=out,
         seconds=f"{time.perf_counter() - t0:.1f}")
    return 0


def _print_coverage(cov: pd.DataFrame, lang: str | None) -> None:
    if cov.empty:
        return
    cols = ["kind", "minutes", "residents", "covered", "share", "meets_85", "meets_99"]
    head = [t(f"planner.access.{c}", lang) for c in cols]
    elderly = "elderly_share" in cov.columns
    if elderly:  # the elderly walking speed beside the planning one
        kmh = f"{float(cov['elderly_kmh'].iloc[0]):g}"
        head += [t("planner2.access.elderly_covered", lang, kmh=kmh),
                 t("planner2.access.elderly_share", lang, kmh=kmh)]
    yes, no = t("common.yes", lang), t("common.no", lang)
    rows = []
    for _, r in cov.iterrows():
        rows.append([str(r["kind"]), f"{r['minutes']:g}", f"{int(r['residents']):,}",
                     f"{int(r['covered']):,}", f"{100 * r['share']:.1f}%",
                     yes if r["meets_85"] else no, yes if r["meets_99"] else no]
                    + ([f"{int(r['elderly_covered']):,}", f"{100 * r['elderly_share']:.1f}%"]
                       if elderly else []))
    _print_grid(head, rows)
