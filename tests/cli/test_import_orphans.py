"""``gridpulse import``: cases append by default; a replace that orphans rows needs --orphans."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from gridpulse.cli import main
from layers.store import open_store
from tests.layers.test_replace_check import GRIDS, PATROL, WORKERS


def store_with_patrols(tmp_path: Path) -> str:
    path = str(tmp_path / "store.gpkg")
    with open_store(path) as s:
        s.write({"grids": GRIDS, "workers": WORKERS, "patrol_points": PATROL}, actor="setup")
    return path


def test_a_replace_that_orphans_patrol_fixes_needs_a_choice(tmp_path: Path, capsys) -> None:
    store = store_with_patrols(tmp_path)
    csv = tmp_path / "人员.csv"
    pd.DataFrame({"人员编号": ["W1"], "姓名": ["李四"], "岗位": ["grid_leader"],
                  "网格代码": [WORKERS["grid_code"].iloc[0]]}).to_csv(csv, index=False)
    args = ["--lang", "en", "import", "workers", str(csv), "--store", store]
    assert main(args) == 1  # workers are replaced by default, and W2 has patrol fixes
    out = capsys.readouterr().out
    assert "leaves rows of other layers pointing at nothing" in out
    assert "patrol_points.worker_id: 2 rows (e.g. W2)" in out and "--orphans keep" in out
    with open_store(store) as s:
        assert s.count("workers") == 2 and s.count("patrol_points") == 3
    assert main([*args, "--orphans", "delete"]) == 0
    with open_store(store) as s:
        assert list(s.read("workers")["id"]) == ["W1"]
        assert list(s.read("patrol_points")["fix_id"]) == ["p1"]
        assert "referencing rows delete: 2" in s.audit_log(limit=1)["note"].iloc[0]


def test_append_and_replace_flags_exclude_each_other(tmp_path: Path, capsys) -> None:
    store = store_with_patrols(tmp_path)
    try:
        main(["import", "workers", "x.csv", "--append", "--replace", "--store", store])
    except SystemExit as exc:
        assert exc.code == 2
    else:  # pragma: no cover
        raise AssertionError("argparse should refuse --append with --replace")
