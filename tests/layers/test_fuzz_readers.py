"""Fuzz corpus: every reader over hostile and damaged files (issue 10 §3).

For each format a seeded generator (``tests/layers/_fuzz.py``) writes 50-80 files into
``tmp_path``: valid seeds from the real writers, random truncations, byte flips, spliced
garbage, wrong suffixes, empty files and noise, and attacks aimed at the format (unclosed
rings, deeply nested JSON, NUL bytes, zip bombs, a sheet declaring ``A1:XFD1048576``,
billion-laughs XML...). A child process reads them one by one with
:func:`layers.io.read_file`; the parent kills it if one file takes over 60 s.

For every file: either a result or the readers' :class:`~layers.errors.ReaderError`, never
another exception, never a hang, never a crash; the child's peak RSS stays under 1 GB (it is
measured after each file, so no single file pushed it over); no control character survives in
a result; and no file was refused for running out of memory (limits come first).
One test per format, so ``pytest -n 2`` spreads them.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.layers._fuzz import FORMATS, complete_lines, generate, run_corpus

RSS_CEILING_MB = 1024
HANG_S = 60.0
#: Files per format the generator must make (10 formats, so at least 500 in all).
MIN_FILES = 50


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_reader_survives_its_fuzz_corpus(fmt: str, tmp_path) -> None:
    cases = generate(fmt, tmp_path, seed=sum(map(ord, fmt)))
    assert len(cases) >= MIN_FILES
    results = run_corpus(cases, tmp_path, timeout_s=HANG_S)
    outcomes = Counter(r["outcome"] for r in results)
    bad = [r for r in results if r["outcome"] not in ("ok", "reader_error")]
    assert not bad, "\n".join(json.dumps(r, ensure_ascii=False)[:1500] for r in bad)
    peak = max(r["rss_mb"] for r in results)
    assert peak < RSS_CEILING_MB, peak
    leaks = [r for r in results if r.get("control_char_columns")]
    assert not leaks, leaks
    oom = [r for r in results if "readers.out_of_memory" in r.get("codes", [])]
    assert not oom, oom
    # the corpus is not trivially rejected: seeds read, attacks refused
    assert outcomes["ok"] >= 2 and outcomes["reader_error"] >= 20, outcomes
    by_kind = {r["kind"]: r for r in results}
    assert all(by_kind[k]["outcome"] == "ok" for k in by_kind if k.startswith("seed_")), fmt
    print(json.dumps({"format": fmt, "files": len(results), **outcomes, "max_rss_mb": peak,
                      "max_seconds": max(r["seconds"] for r in results)}))


def test_the_attacks_get_the_answers_they_should(tmp_path) -> None:
    """The hand-made attacks of the zip and XLSX corpora end where the limits say."""
    want = {
        ("shpzip", "bomb_1000x"): ("reader_error", "readers.zip_ratio"),
        ("shpzip", "bomb_in_shapefile"): ("reader_error", "readers.zip_ratio"),
        ("shpzip", "many_members"): ("reader_error", "readers.zip_too_many_members"),
        ("shpzip", "lying_size"): ("reader_error", "io.corrupt_zip"),
        ("xlsx", "declared_XFD1048576"): ("ok", None),
        ("xlsx", "blank_styled_row_1048576"): ("ok", None),
        ("xlsx", "row_1048576"): ("reader_error", "readers.too_many_rows"),
        ("xlsx", "declared_XFD1048576_value_on_last_row"): ("reader_error", "readers.too_many_rows"),
        ("xlsx", "cell_at_XFD"): ("reader_error", "readers.too_many_columns"),
        ("xlsx", "zip_bomb_member"): ("reader_error", "readers.zip_ratio"),
        ("xlsx", "billion_laughs"): ("reader_error", "io.corrupt"),
        ("geojson", "unclosed_ring"): ("reader_error", "io.corrupt"),
        ("geojson", "nul_escape_value"): ("ok", "readers.control_chars_json"),
        ("csv_utf8", "nul_in_value"): ("ok", "readers.control_chars"),
    }
    cases = []
    for fmt in ("shpzip", "xlsx", "geojson", "csv_utf8"):
        folder = tmp_path / fmt
        folder.mkdir()
        cases += [c for c in generate(fmt, folder, seed=1, mutants=0)
                  if (fmt, c.kind) in want]
    results = run_corpus(cases, tmp_path, timeout_s=HANG_S)
    assert len(results) == len(want)
    for case, r in zip(cases, results, strict=True):
        fmt = case.path.name.split("_0")[0]
        outcome, code = want[(fmt, case.kind)]
        assert r["outcome"] == outcome, (case.kind, r)
        if code is not None:
            assert code in r["codes"], (case.kind, r)


@settings(max_examples=200, deadline=None)
@given(records=st.lists(st.dictionaries(st.sampled_from(["path", "message", "event"]),
                                        st.text(min_size=0, max_size=40)), min_size=1, max_size=8),
       cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=6))
def test_the_harness_reads_a_growing_file_cut_anywhere(records: list[dict], cuts: list[int]) -> None:
    """The child's output read at any byte, even inside a character, yields its records once each.

    CI once failed here: the parent read the file while the child was part-way through a
    line ending in a Chinese character, and decoded the cut bytes.
    """
    stream = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
    seen: list[dict] = []
    pos = 0
    for cut in sorted(c % (len(stream) + 1) for c in cuts) + [len(stream)]:
        lines, pos = complete_lines(stream[:cut], pos)
        seen.extend(json.loads(x) for x in lines)
    assert seen == records
    assert pos == len(stream)
