"""``gridpulse validate / import / export / info`` through ``gridpulse.cli.main`` and a real process."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from gridpulse.cli import main
from layers.accounts import create_account
from layers.app import os_account
from layers.store import open_store

ROOT = Path(__file__).resolve().parents[2]
HEADER = ["人员编号", "姓名", "手机号", "身份证号", "岗位", "网格代码", "AB岗"]
GOOD = [["W1", "张三丰", "13812345678", "320102199001011234", "grid_leader", "320106001001001", "A"],
        ["W2", "李四", "13900001111", "", "full_time", "320106001001002", "B"]]
BAD = [["W1", "张三丰", "13812345678", "", "boss", "320106001001001", "A"]]


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="gbk") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        w.writerows(rows)
    return path


@pytest.fixture()
def store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = str(tmp_path / "store.gpkg")
    monkeypatch.setenv("GRIDPULSE_STORE", url)  # the default store of every command below
    return url


def test_validate_exit_codes_and_language(tmp_path, store_url, capsys) -> None:
    assert main(["validate", "workers", str(write_csv(tmp_path / "ok.csv", GOOD))]) == 0
    assert "校验通过" in capsys.readouterr().out
    assert main(["--lang", "en", "validate", "workers",
                 str(write_csv(tmp_path / "bad.csv", BAD))]) == 1
    out = capsys.readouterr().out
    assert "1 errors" in out and "role" in out and "How to fix" in out
    assert not Path(store_url).exists()  # validate never creates a store


def test_import_then_info_then_export_masked_and_unmasked(tmp_path, store_url, capsys) -> None:
    assert main(["import", "workers", str(write_csv(tmp_path / "w.csv", GOOD))]) == 0
    capsys.readouterr()
    assert main(["--lang", "en", "info"]) == 0
    out = capsys.readouterr().out
    assert store_url in out and "workers" in out and "import w.csv" in out

    masked = tmp_path / "out.csv"
    assert main(["export", "workers", str(masked)]) == 0
    df = pd.read_csv(masked, dtype=str)
    assert df["name"].tolist() == ["张*", "李*"]  # the surname only
    assert df["phone"].tolist() == ["*******5678", "*******1111"]  # the last 4 digits only
    assert df["id_number"].tolist()[0] == "3201**********1234"

    with open_store(store_url) as s:  # the import is recorded as the operating-system user
        assert s.audit_log(limit=1).iloc[0]["actor"] == os_account().username
        create_account(s, "zhuren", "a-long-password", role="admin", actor="tests")
        create_account(s, "fenxi", "a-long-password", role="analyst", actor="tests")
    raw = tmp_path / "raw.csv"
    # an analyst may export masked data but not unmask it: refused, nothing written
    assert main(["--lang", "en", "export", "workers", str(raw), "--unmask", "--as", "fenxi"]) == 1
    assert "may not see unmasked personal data" in capsys.readouterr().err and not raw.exists()
    assert main(["export", "workers", str(raw), "--unmask", "--as", "zhuren"]) == 0
    assert pd.read_csv(raw, dtype=str)["name"].tolist() == ["张三丰", "李四"]
    with open_store(store_url) as s:
        top = s.audit_log(limit=1).iloc[0]
    assert (top["action"], top["actor"], top["layer"]) == ("export_unmasked", "zhuren", "workers")


def test_a_failed_import_leaves_the_store_unchanged(tmp_path, store_url, capsys) -> None:
    assert main(["import", "workers", str(write_csv(tmp_path / "w.csv", GOOD))]) == 0
    before = Path(store_url).read_bytes()
    assert main(["--lang", "en", "import", "workers", str(write_csv(tmp_path / "b.csv", BAD))]) == 1
    assert "the store is unchanged" in capsys.readouterr().out
    assert Path(store_url).read_bytes() == before


def test_unknown_layer_and_missing_layer(tmp_path, store_url, capsys) -> None:
    assert main(["validate", "people", str(tmp_path / "x.csv")]) == 2
    assert main(["--lang", "en", "export", "workers", str(tmp_path / "x.csv")]) == 1
    assert "has no layer workers" in capsys.readouterr().err


def test_the_installed_command_runs_in_a_real_process(tmp_path) -> None:
    exe = ROOT / ".venv" / "bin" / "gridpulse"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "gridpulse"]
    store = tmp_path / "p.gpkg"
    f = write_csv(tmp_path / "w.csv", GOOD)
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(tmp_path)}
    run = subprocess.run([*cmd, "--lang", "en", "import", "workers", str(f), "--store", str(store)],
                         capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert "imported 2 rows into layer workers" in run.stdout
    run = subprocess.run([*cmd, "info", "--store", str(store)], capture_output=True, text=True,
                         env=env, timeout=120, cwd=ROOT)
    assert run.returncode == 0 and "网格员" in run.stdout
