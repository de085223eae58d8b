"""Shared fixtures.

``pg_url``: a PostgreSQL + PostGIS database for the store tests, from ``GRIDPULSE_TEST_PG``
(``make test`` starts one with ``.ci/pg.sh``). Without it the PostGIS tests skip locally,
but under CI (``CI=true``) a missing server is a failure, never a silent skip.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def pg_url() -> str:
    url = os.environ.get("GRIDPULSE_TEST_PG", "")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CI must run the PostGIS tests: GRIDPULSE_TEST_PG is not set")
        pytest.skip("GRIDPULSE_TEST_PG not set (make test starts PostGIS with .ci/pg.sh)")
    return url


@pytest.fixture()
def artifacts_dir() -> Path:
    """Where tests save screenshots and other artifacts for people to look at."""
    d = ROOT / "test-artifacts"
    d.mkdir(exist_ok=True)
    return d


#: Lines of a re-run test's first failure shown in the summary.
RERUN_TAIL_LINES = 40


def pytest_terminal_summary(terminalreporter) -> None:
    """Show why each re-run test failed the first time (the tail of its traceback).

    The e2e tests keep one re-run as a safety net (``tests/e2e/conftest.py``); ``-rR`` names a
    re-run test, but without its first failure a flaky test cannot be diagnosed from CI's log.
    """
    reports = terminalreporter.stats.get("rerun", [])
    if not reports:
        return
    terminalreporter.section("first failures of re-run tests")
    for rep in reports:
        text = getattr(rep, "longreprtext", "") or str(getattr(rep, "longrepr", ""))
        tail = text.splitlines()[-RERUN_TAIL_LINES:]
        terminalreporter.write_line(f"--- {rep.nodeid} ({rep.when})")
        for line in tail:
            terminalreporter.write_line(line)
