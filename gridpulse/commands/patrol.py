"""Patrol commands for nightly jobs: ``patrols`` and ``coverage``.

* ``gridpulse patrols --date DATE --out FILE.csv``: one row per grid worker for the day:
  ``worker_id, grid_code, post, hours_in_grid, meets_rule, distance_km, first_fix, last_fix``
  (then ``hours_tracked, n_fixes``). With the default cleaning rules the figures come from the
  patrol summary kept at write time (:mod:`layers.summaries`; the cleaning line counts the
  day's fixes); other rules, or ``--raw``, recompute them from the fixes of an hour before to
  an hour after the day, so that intervals across midnight count.
* ``gridpulse coverage --from DATE --to DATE --out FILE``: per-grid coverage of buildings and
  area (fine H3 cells) over the days ``from`` .. ``to`` (both included), with the buildings not
  visited for ``--stale-days``; ``--level community|subdistrict`` rolls it up.

Both read the store (``--store`` or ``GRIDPULSE_STORE``), write the format named by the
file's suffix (CSV, XLSX; GeoPackage/GeoJSON add the grid polygons to ``coverage``), print a
short summary and exit 0; 1 when the store or the data cannot be used; 2 for a bad argument.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from layers.i18n import default_lang, normalize_lang, t

if TYPE_CHECKING:  # heavy modules are imported by the handlers, not at start-up
    import pandas as pd

#: Fixes read around the day, so that intervals across midnight and jumps at its edges count.
MARGIN = timedelta(hours=1)
#: ``--max-gap-s`` by default: :class:`geo.patrol.CleaningRules`' own (the patrol summary's).
DEFAULT_MAX_GAP_S = 600.0
SPATIAL_SUFFIXES = (".gpkg", ".geojson", ".json", ".zip", ".shp")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``patrols`` and ``coverage``."""
    lang = default_lang()

    def h(key: str) -> str:
        return t(f"patrol.cli.{key}", lang)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--out", required=True, type=Path, metavar="FILE", help=h("help_out"))
        p.add_argument("--store", default=None, help=t("cli.help_store", lang))
        p.add_argument("--max-speed-kmh", type=float, default=None, help=h("help_max_speed"))
        p.add_argument("--walking", action="store_true", help=h("help_walking"))
        p.add_argument("--max-gap-s", type=float, default=DEFAULT_MAX_GAP_S, help=h("help_max_gap"))
        p.add_argument("--encoding", default="utf-8", help=h("help_encoding"))

    p = subparsers.add_parser("patrols", help=h("patrols_help"), description=h("patrols_help"))
    p.add_argument("--date", required=True, metavar="DATE", help=h("help_date"))
    p.add_argument("--min-hours", type=float, default=4.0, help=h("help_min_hours"))
    p.add_argument("--raw", action="store_true", help=t("summaries.cli.help_raw", lang))
    p.add_argument("--as", dest="as_account", default=None, metavar="ACCOUNT",
                   help=t("reports.cli.help_as", lang))
    common(p)
    p.set_defaults(func=cmd_patrols)

    p = subparsers.add_parser("coverage", help=h("coverage_help"), description=h("coverage_help"))
    p.add_argument("--from", dest="start", required=True, metavar="DATE", help=h("help_from"))
    p.add_argument("--to", dest="end", required=True, metavar="DATE", help=h("help_to"))
    p.add_argument("--res", type=int, default=11, help=h("help_res"))
    p.add_argument("--radius-m", type=float, default=30.0, help=h("help_radius"))
    p.add_argument("--stale-days", type=float, default=7.0, help=h("help_stale_days"))
    p.add_argument("--level", choices=("grid", "community", "subdistrict"), default="grid",
                   help=h("help_level"))
    common(p)
    p.set_defaults(func=cmd_coverage)


class _Stop(Exception):
    """A message was printed; leave with this exit code."""

    def __init__(self, code: int) -> None:
        self.code = code


def _say(key: str, lang: str | None, *, err: bool = False, **params: Any) -> None:
    print(t(key, lang, **params), file=sys.stderr if err else sys.stdout)
    fix = t(f"{key}.fix", lang, **params)
    if fix != f"{key}.fix":
        print(f"    {t('common.fix', lang)}: {fix}", file=sys.stderr if err else sys.stdout)


def _date(value: str, lang: str | None) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        _say("patrol.cli.bad_date", lang, err=True, value=value)
        raise _Stop(2) from None


def _rules(args: argparse.Namespace) -> Any:
    """The cleaning rules of the options; ``None`` for the defaults (the patrol summary's)."""
    if args.max_speed_kmh is None and not args.walking and args.max_gap_s == DEFAULT_MAX_GAP_S:
        return None  # the summary's rules: no need to import the engine to compare
    from geo.patrol import CleaningRules

    changes: dict[str, float] = {"max_gap_s": args.max_gap_s}
    if args.max_speed_kmh is not None:
        changes["max_speed_kmh"] = args.max_speed_kmh
    return CleaningRules.walking(**changes) if args.walking else CleaningRules(**changes)


def _need(store: Any, name: str, lang: str | None) -> None:
    if not store.has_layer(name):
        _say("patrol.cli.no_layer", lang, err=True, layer=name, store=store.url)
        raise _Stop(1)


def _read(store: Any, name: str, lang: str | None, **kw: Any) -> pd.DataFrame:
    _need(store, name, lang)
    return store.read(name, **kw)


def _run(args: argparse.Namespace, body: Any) -> int:
    """Open the store, run ``body(store)``, and turn every failure into a message and a code."""
    from geo.patrol import PatrolInputError
    from layers.config import settings
    from layers.errors import GridPulseError
    from layers.store import open_store

    lang = args.lang
    try:
        with open_store(args.store or settings().store_url) as store:
            return body(store)
    except _Stop as stop:
        return stop.code
    except PatrolInputError as exc:
        print(t("patrol.cli.invalid_input", lang), file=sys.stderr)
        for key, params in exc.problems:
            _say(key, lang, err=True, **params)
        usage = {"patrol.input.bad_rule", "patrol.input.bad_option", "patrol.input.bad_window"}
        return 2 if all(k in usage for k, _p in exc.problems) else 1
    except GridPulseError as exc:
        from layers._store_common import error_text

        _say("patrol.cli.store_error", lang, err=True, detail=error_text(exc, lang))
        return 1


def _write(df: pd.DataFrame, path: Path, args: argparse.Namespace) -> Path:
    from layers.io import write_file

    try:
        return write_file(df, path, layer=path.stem, encoding=args.encoding)
    except (OSError, ValueError) as exc:
        _say("patrol.cli.bad_out", args.lang, err=True, out=path, detail=exc)
        raise _Stop(1) from None


def _cleaned_line(clean: Any, lang: str | None) -> None:
    _counts_line(clean.summary.set_index("reason")["fixes"], lang)


def _counts_line(s: pd.Series, lang: str | None) -> None:
    """``Fixes: kept …, dropped … (reasons)`` from fixes per reason (``kept`` included)."""
    dropped = s.drop("kept")
    sep = "、" if normalize_lang(lang) == "zh" else ", "
    reasons = sep.join(f"{t('patrol.reason.' + r, lang)} {int(n)}" for r, n in dropped.items() if n)
    print(t("patrol.cli.cleaned", lang, kept=int(s["kept"]), dropped=int(dropped.sum()),
            reasons=reasons or "-"))


def cmd_patrols(args: argparse.Namespace) -> int:
    """``gridpulse patrols``: hours in own grid per worker for one day
    (:func:`layers.analysis.patrol_job` as ``--as ACCOUNT``, else the operating-system user)."""
    lang = args.lang
    try:
        day = _date(args.date, lang)
    except _Stop as stop:
        return stop.code

    def body(store: Any) -> int:
        from layers.analysis import AnalysisError, patrol_job
        from layers.app import cli_account
        from layers.permissions import PermissionDenied

        try:
            account = cli_account(store, getattr(args, "as_account", None))
            hours = patrol_job(store, account, day=day, min_hours=args.min_hours,
                               rules=_rules(args), raw=args.raw)
        except AnalysisError as exc:
            _say(exc.key, lang, err=True, **exc.params)
            raise _Stop(1) from None
        except PermissionDenied as exc:
            print(exc.message(lang), file=sys.stderr)
            raise _Stop(1) from None
        return _patrols_out(hours.per_worker, hours.cleaning_totals(), day, args)

    return _run(args, body)


def _patrols_out(out: pd.DataFrame, counts: pd.Series, day: date, args: argparse.Namespace) -> int:
    """Write the ``patrols`` table and print its summary lines."""
    lang = args.lang
    table = out[["worker_id", "grid_code", "post", "hours_in_grid", "meets_rule", "distance_km",
                 "first_fix", "last_fix", "hours_tracked", "n_fixes"]].copy()
    for col in ("hours_in_grid", "hours_tracked", "distance_km"):
        table[col] = table[col].round(3)
    if args.out.suffix.lower() == ".csv":  # one fixed format, even for a fix at midnight
        for col in ("first_fix", "last_fix"):
            table[col] = table[col].dt.strftime("%Y-%m-%d %H:%M:%S")
    path = _write(table.reset_index(drop=True), args.out, args)
    _counts_line(counts, lang)
    print(t("patrol.cli.patrols_done", lang, date=day.isoformat(), workers=len(table),
            meeting=int(table["meets_rule"].sum()), min_hours=f"{args.min_hours:g}", out=path))
    return 0


def cmd_coverage(args: argparse.Namespace) -> int:
    """``gridpulse coverage``: per-grid coverage over a range of days."""
    import pandas as pd

    from geo.patrol import clean_fixes, coverage, rollup

    lang = args.lang
    try:
        first, last = _date(args.start, lang), _date(args.end, lang)
    except _Stop as stop:
        return stop.code

    def body(store: Any) -> int:
        rules = _rules(args)
        start = pd.Timestamp(first)
        end = pd.Timestamp(last) + timedelta(days=1)
        history = min(start, end - pd.Timedelta(days=args.stale_days)) - MARGIN
        grids = _read(store, "grids", lang, columns=["code", "name", "community_code"])
        buildings = _read(store, "buildings", lang, columns=["id", "grid_code"])
        fixes = _read(store, "patrol_points", lang, columns=["worker_id", "time", "accuracy_m"],
                      between={"time": (history.to_pydatetime(), end.to_pydatetime())})
        clean = clean_fixes(fixes, rules=rules)
        res = coverage(clean, grids, buildings, start=start, end=end, res=args.res,
                       visit_radius_m=args.radius_m, stale_days=args.stale_days, rules=rules)
        per = res.per_grid
        if args.level == "grid":
            table = per.assign(name=grids["name"].to_numpy())
            table = table[["grid_code", "name", *[c for c in per.columns if c != "grid_code"]]]
            if args.out.suffix.lower() in SPATIAL_SUFFIXES:
                import geopandas as gpd

                table = gpd.GeoDataFrame(table, geometry=grids.geometry.to_numpy(), crs=grids.crs)
        else:
            communities = _read(store, "communities", lang, columns=["code", "name", "subdistrict_code"])
            subs = (store.read("subdistricts", columns=["code", "name", "district_code"])
                    if store.has_layer("subdistricts") else None)
            table = rollup(per, grids, communities, subdistricts=subs)
            table = table[table["level"] == args.level]
        for col in ("building_share", "area_share"):
            table[col] = table[col].round(4)
        path = _write(table.reset_index(drop=True), args.out, args)
        _cleaned_line(clean, lang)
        share_b = per["buildings_visited"].sum() / max(int(per["buildings"].sum()), 1)
        share_a = per["cells_visited"].sum() / max(int(per["cells"].sum()), 1)
        print(t("patrol.cli.coverage_done", lang, start=first.isoformat(), end=last.isoformat(),
                grids=len(per), building_share=f"{share_b:.1%}", area_share=f"{share_a:.1%}",
                stale=len(res.stale_buildings), stale_days=f"{args.stale_days:g}", out=path))
        return 0

    return _run(args, body)
