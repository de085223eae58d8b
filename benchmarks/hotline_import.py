"""A 12345 hotline export checked for import: what the hotline step costs on top of validation.

    .venv/bin/python benchmarks/hotline_import.py [--rows 100000] [--seed 0]

Writes two GBK CSVs with the same incidents: the hotline's own wording (工单号, 问题类型 names such as
``违法停车`` and ``市容环境-暴露垃圾``, 状态 words, 来源 words, no level/stage columns) and GridPulse's
canonical columns (codes). Prints JSON with the wall and CPU seconds of ``layers.ingest.check_file``
on each (read -> hotline mapping -> validate), the hotline mapping alone
(``prepare_incidents``), and the ratio hotline / canonical: the peer is the same pipeline on data
that needs no mapping.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from layers._validate_hotline import prepare_incidents  # noqa: E402
from layers.ingest import check_file  # noqa: E402
from layers.io import read_file  # noqa: E402

TYPES = [("市容环境", "01", "0101"), ("占道经营", "01", "0103"), ("违法停车", "05", "0501"),
         ("城市管理-市容环境-暴露垃圾", "01", "0101"), ("电梯故障", "03", "0302"), ("群租房", "11", "1101"),
         ("噪声扰民", "07", "0701"), ("油烟污染", "08", "0801")]
STATUS = [("已受理", "collected"), ("办理中", "handling"), ("已办结", "closed"), ("待核实", "verifying")]


def write(path: Path, rows: list[list[object]], header: list[str]) -> Path:
    with path.open("w", newline="", encoding="gbk") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def timed(fn):  # noqa: ANN001, ANN201
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, round(time.perf_counter() - w, 2), round(time.process_time() - c, 2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    hot, canon = [], []
    for i in range(args.rows):
        name, cat, item = rng.choice(TYPES)
        word, stage = rng.choice(STATUS)
        lon, lat = f"{118.75 + rng.random() * 0.05:.6f}", f"{32.03 + rng.random() * 0.05:.6f}"
        hot.append([f"T{i:07d}", name, word, "12345热线", "中山北路1号", lon, lat, "2025-03-01 09:00"])
        canon.append([f"T{i:07d}", cat, item, stage, 1, "hotline_12345", "中山北路1号", lon, lat,
                      "2025-03-01 09:00"])
    with tempfile.TemporaryDirectory() as d:
        hp = write(Path(d) / "12345导出.csv", hot, ["工单号", "问题类型", "状态", "来源", "地址", "经度", "纬度", "受理时间"])
        cp = write(Path(d) / "incidents.csv", canon, ["service_request_id", "category_code", "item_code", "stage",
                                                      "level", "source", "address", "lon", "lat",
                                                      "requested_datetime"])
        res_h, wall_h, cpu_h = timed(lambda: check_file(hp, "incidents"))
        res_c, wall_c, cpu_c = timed(lambda: check_file(cp, "incidents"))
        rr = read_file(hp, layer="incidents")
        _, wall_p, cpu_p = timed(lambda: prepare_incidents(rr.data, file=rr.source, row_offset=rr.row_offset))
    print(json.dumps({
        "rows": args.rows,
        "hotline_check_file": {"wall_s": wall_h, "cpu_s": cpu_h, "ok": res_h.ok},
        "canonical_check_file": {"wall_s": wall_c, "cpu_s": cpu_c, "ok": res_c.ok},
        "hotline_mapping_only": {"wall_s": wall_p, "cpu_s": cpu_p},
        "ratio_hotline_vs_canonical_wall": round(wall_h / wall_c, 2) if wall_c else None,
        "assumption_lines": sum(i.code.startswith("hotline.") for i in res_h.report),
    }, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
