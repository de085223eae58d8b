"""CLI start-up stays light: building the parser, ``--help`` and ``info`` import no data stack.

Each check runs a fresh interpreter (``sys.modules`` of this test process already holds
pandas), with this tree first on the path.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gridpulse.cli import main
from layers.store import open_store
from layers.store_info import gpkg_summary

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("pandas", "geopandas", "numpy", "shapely", "pyogrio", "pyarrow", "streamlit", "folium",
         "psycopg", "h3", "data")


def _fresh(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=60, check=False)


def _heavy_after(statement: str) -> list[str]:
    code = (f"import sys\n{statement}\n"
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r}))")
    proc = _fresh(code)
    assert proc.returncode == 0, proc.stderr
    return eval(proc.stdout.strip().splitlines()[-1])  # a printed list of str


def test_building_the_parser_imports_no_heavy_module() -> None:
    assert _heavy_after("from gridpulse.cli import build_parser; build_parser()") == []


def test_help_lists_every_command_without_heavy_imports() -> None:
    stmt = ("from gridpulse.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0")
    assert _heavy_after(stmt) == []
    proc = _fresh("from gridpulse.cli import main; main(['--help'])")
    for command in ("validate", "import", "export", "info", "demo", "patrols", "coverage",
                    "hotspots", "kpis", "serve"):
        assert command in proc.stdout


def test_importtime_of_help_names_no_heavy_module() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "gridpulse", "--help"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0]
                for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "gridpulse" in imported  # the report is really there
    assert not imported & {"pandas", "geopandas", "streamlit"}


def test_demo_presets_spelled_in_the_cli_match_the_generator() -> None:
    from data.demo import PRESETS
    from gridpulse.commands import demo

    assert demo.PRESETS == PRESETS


def _store_with_workers(tmp_path: Path) -> str:
    url = str(tmp_path / "store.gpkg")
    src = tmp_path / "w.csv"
    with src.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["人员编号", "姓名", "手机号", "岗位", "网格代码", "AB岗"])
        w.writerow(["W1", "张三丰", "13812345678", "grid_leader", "320106001001001", "A"])
        w.writerow(["W2", "李四", "13900001111", "full_time", "320106001001002", "B"])
    assert main(["import", "workers", str(src), "--store", url]) == 0  # as the OS user
    with open_store(url) as store:
        store.record("export", "workers", rows=2, actor="李四", note="导出 w.xlsx")
    return url


def test_info_summary_equals_the_store_api(tmp_path: Path) -> None:
    url = _store_with_workers(tmp_path)
    summary = gpkg_summary(url, limit=10)
    assert summary is not None
    with open_store(url) as store:
        assert summary.url == store.url
        assert summary.layers == tuple((n, store.count(n)) for n in store.layer_names())
        assert dict(summary.layers)["workers"] == 2
        log = store.audit_log(limit=10)
    assert [(e.time, e.actor, e.action, e.layer, e.rows, e.note) for e in summary.recent] == [
        (r.time.to_pydatetime(), r.actor, r.action, r.layer, r.rows, r.note)
        for r in log.itertuples(index=False)]
    assert summary.recent[0].actor == "李四" and summary.recent[0].note == "导出 w.xlsx"


def test_info_on_an_existing_store_imports_no_pandas_and_prints_counts(tmp_path: Path) -> None:
    url = _store_with_workers(tmp_path)
    before = Path(url).stat().st_mtime_ns
    code = (f"import sys\nfrom gridpulse.cli import main\nrc = main(['--lang', 'en', 'info', '--store', {url!r}])\n"
            "print('HEAVY', sorted({m.split('.')[0] for m in sys.modules} & {'pandas', 'geopandas', 'pyogrio'}))\n"
            "sys.exit(rc)")
    proc = _fresh(code)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout
    assert "workers" in proc.stdout and " 2 rows" in proc.stdout and "李四" in proc.stdout
    assert Path(url).stat().st_mtime_ns == before  # read-only


@pytest.mark.parametrize("content", [None, b"not a database at all " * 100])
def test_info_falls_back_to_the_store_for_missing_or_foreign_files(tmp_path: Path, content, capsys) -> None:
    path = tmp_path / "x.gpkg"
    if content is not None:
        path.write_bytes(content)
    assert gpkg_summary(str(path)) is None
    rc = main(["--lang", "en", "info", "--store", str(path)])
    out, err = capsys.readouterr()
    if content is None:  # the store's own behaviour: an empty store is created and shown
        assert rc == 0 and "(empty: no layers yet)" in out
        assert path.exists()
    else:  # the store's own clear error
        assert rc == 1 and err.strip()


def test_info_summary_is_none_for_postgis_urls() -> None:
    assert gpkg_summary("postgresql://postgres@127.0.0.1:1/none") is None
