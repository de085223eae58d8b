"""``gridpulse plan``: record plans from grids files (history too), list, show a date, roll back."""

from __future__ import annotations

from pathlib import Path

import pyogrio
import pytest

from gridpulse.cli import main
from layers import plans
from layers.store import open_store
from tests.layers.test_plans import A, B, grids, seed


@pytest.fixture()
def store_path(tmp_path: Path) -> str:
    path = tmp_path / "s.gpkg"
    with open_store(str(path)) as s:
        seed(s)
    return str(path)


def _file(tmp_path: Path, split: float, name: str) -> Path:
    out = tmp_path / f"{name}.geojson"
    g = grids(split)
    g["households"] = 0
    pyogrio.write_dataframe(g, out, driver="GeoJSON")
    return out


def test_plan_commands_record_history_show_dates_and_roll_back(store_path, tmp_path, capsys) -> None:
    s = ["--store", store_path]
    assert main(["--lang", "en", "plan", "versions", *s]) == 0
    assert "No plan version saved yet" in capsys.readouterr().out
    v1, v2 = _file(tmp_path, 118.775, "v1"), _file(tmp_path, 118.774, "v2")
    assert main(["--lang", "en", "plan", "save", "--grids", str(v1), "--effective", "2026-01-01",
                 "--note", "2026 plan", *s]) == 0
    assert "Saved as plan version v1 (effective 2026-01-01)" in capsys.readouterr().out
    assert main(["--lang", "en", "plan", "save", "--grids", str(v2), "--effective", "2026-06-01",
                 "--note", "moved b2", *s]) == 0
    capsys.readouterr()
    assert main(["--lang", "en", "plan", "show", "--at", "2026-03-01", *s]) == 0
    out = capsys.readouterr().out
    assert "Plan in force on 2026-03-01: v1 (since 2026-01-01, until 2026-06-01), 2 grids, 3 buildings" in out
    assert main(["--lang", "en", "plan", "versions", *s]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("v1\tsaved\t2026-01-01") and "[in force, live]" in lines[1]
    with open_store(store_path) as st:
        assert st.read("buildings").set_index("id")["grid_code"].to_dict() == {"b1": A, "b2": B, "b3": B}
    assert main(["--lang", "en", "plan", "rollback", "1", "--note", "undo", *s]) == 0
    assert "Saved v1 again as v3" in capsys.readouterr().out
    with open_store(store_path) as st:
        assert st.read("buildings").set_index("id")["grid_code"].to_dict() == {"b1": A, "b2": A, "b3": B}
        assert plans.plan_versions(st)["source_version"].tolist()[-1] == 1


def test_a_plan_breaking_a_hard_rule_needs_confirm(store_path, tmp_path, capsys) -> None:
    bad = _file(tmp_path, 118.7705, "bad")  # A without homes, B with 750 households
    s = ["--store", store_path]
    assert main(["--lang", "en", "plan", "save", "--grids", str(bad), "--note", "x", *s]) == 1
    err = capsys.readouterr().err
    assert "breaks 2 hard rule(s)" in err and "above the maximum of 500" in err and "--confirm" in err
    with open_store(store_path) as st:
        assert plans.plan_versions(st).empty
    assert main(["--lang", "en", "plan", "save", "--grids", str(bad), "--note", "x", "--confirm", *s]) == 0
    assert main(["--lang", "en", "plan", "show", *s]) == 0
    assert "below the minimum of 300" in capsys.readouterr().err
    assert main(["--lang", "en", "plan", "rollback", "7", "--note", "x", *s]) == 1
    assert "no saved plan version v7" in capsys.readouterr().err
    assert main(["--lang", "en", "plan", "show", "--at", "someday", *s]) == 1
    assert "Not a date: someday" in capsys.readouterr().err
