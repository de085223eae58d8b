"""Peak memory and time of the readers on small hostile files, before and after the limits.

    PYTHONPATH=. python benchmarks/readers_bombs.py [--before REV] [--cap-gb 3]

Each case is read by :func:`layers.io.read_file` in a fresh child process, once with this
tree and once with the tree at ``REV`` (default: main before issue 10 §3), extracted with
``git archive``. The child's address space is capped at its start-up size plus ``--cap-gb``
so that the old readers fail with a MemoryError instead of taking the machine down. Prints
JSON: per case the file size, and for each tree the outcome (message code or exception),
peak RSS (``ru_maxrss``) and seconds.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "20c83dc"


def _cases(folder: Path) -> dict[str, tuple[Path, str | None]]:
    sys.path.insert(0, str(ROOT))
    from layers.io import write_file
    from tests.layers import _fuzz
    from tests.layers.test_store import GRIDS

    out: dict[str, tuple[Path, str | None]] = {}
    p = folder / "bomb_1gb.zip"  # 1 MB zip, one CSV member of 1 GB of zeros
    p.write_bytes(_fuzz.zip_bomb("data.csv", 1024))
    out["zip_1mb_to_1gb"] = (p, None)
    shp = write_file(GRIDS, folder / "grids.zip")
    members = _fuzz._zip_members(shp.read_bytes())
    dbf = next(k for k in members if k.endswith(".dbf"))
    p = folder / "shp_dbf_bomb.zip"  # a Shapefile whose .dbf expands to 512 MB
    p.write_bytes(_fuzz.zip_bomb(dbf, 512, {k: v for k, v in members.items() if k != dbf}))
    out["shapefile_dbf_512mb"] = (p, "grids")
    p = folder / "declared.xlsx"  # the 4.6 KB workbook whose sheet declares A1:XFD1048576
    p.write_bytes(_fuzz._zip(_fuzz._xlsx_parts(_fuzz.sheet_xml(
        _fuzz._XLSX_HEAD, dimension="A1:XFD1048576"))))
    out["xlsx_declares_A1_XFD1048576"] = (p, "incidents")
    p = folder / "declared_last_row.xlsx"  # the same, plus one value on the sheet's last row
    p.write_bytes(_fuzz._zip(_fuzz._xlsx_parts(_fuzz.sheet_xml(
        _fuzz._XLSX_HEAD + '<row r="1048576"><c r="A1048576"><v>1</v></c></row>',
        dimension="A1:XFD1048576"))))
    out["xlsx_declares_A1_XFD1048576_value_on_last_row"] = (p, "incidents")
    p = folder / "sheet_bomb.xlsx"  # a sheet part of 256 MB of repeated rows
    row = '<row r="{r}"><c r="A{r}"><v>118.7</v></c><c r="B{r}"><v>32.0</v></c></row>'
    body = "".join(row.format(r=r) for r in range(3, 2_000_000)).encode()
    parts = _fuzz._xlsx_parts(_fuzz.sheet_xml(_fuzz._XLSX_HEAD))
    parts["xl/worksheets/sheet1.xml"] = parts["xl/worksheets/sheet1.xml"].replace(
        b"</sheetData>", body + b"</sheetData>")
    p.write_bytes(_fuzz._zip(parts))
    out["xlsx_2m_rows_sheet"] = (p, "incidents")
    return out


def _child(path: str, layer: str, cap_gb: float) -> None:
    """Read one file; print outcome, peak RSS and seconds as JSON."""
    import traceback

    from layers.errors import ReaderError
    from layers.io import read_file

    vm = int(Path("/proc/self/statm").read_text().split()[0]) * resource.getpagesize()
    cap = vm + int(cap_gb * 1024**3)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    t0 = time.perf_counter()
    try:
        res = read_file(path, layer=layer or None)
        outcome = f"ok: {len(res.data)} rows"
    except ReaderError as e:
        outcome = ", ".join(i.code for i in e.report.errors())
    except MemoryError:
        outcome = "MemoryError (address-space cap reached)"
    except Exception as e:  # the old readers' tracebacks
        outcome = f"{type(e).__name__}: {str(e)[:120]}"
        traceback.print_exc(file=sys.stderr)
    print(json.dumps({"outcome": outcome, "seconds": round(time.perf_counter() - t0, 2),
                      "peak_rss_mb": round(peak_rss_mb())}))


def peak_rss_mb() -> float:
    """This process's peak resident set (``VmHWM``; ``ru_maxrss`` would include the parent's
    resident set at fork time, which Linux carries across ``exec``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run(tree: Path, path: Path, layer: str | None, cap_gb: float) -> dict:
    env = {"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, __file__, "--child", str(path), layer or "", str(cap_gb)],
                          env=env, cwd=tree, capture_output=True, text=True, timeout=900)
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"outcome": f"child died (exit {proc.returncode})", "stderr": proc.stderr[-300:]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", default=BEFORE)
    ap.add_argument("--cap-gb", type=float, default=3.0)
    ap.add_argument("--only", default="", help="run only the cases whose name contains this")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="gridpulse-bombs-") as d:
        folder = Path(d)
        before = folder / "before"
        before.mkdir()
        archive = subprocess.run(["git", "archive", args.before, "layers", "geo"], cwd=ROOT,
                                 capture_output=True, check=True).stdout
        with tarfile.open(fileobj=__import__("io").BytesIO(archive)) as tar:
            tar.extractall(before, filter="data")
        out = {"before": args.before, "address_space_cap_gb": args.cap_gb, "cases": {}}
        for name, (path, layer) in _cases(folder).items():
            if args.only not in name:
                continue
            out["cases"][name] = {
                "file_kb": round(path.stat().st_size / 1024, 1),
                "after": _run(ROOT, path, layer, args.cap_gb),
                "before": _run(before, path, layer, args.cap_gb),
            }
            print(json.dumps({name: out["cases"][name]}), file=sys.stderr)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    else:
        main()
