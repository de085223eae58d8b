#!/usr/bin/env bash
# Install everything and run the whole test suite (the README's test command runs this).
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup.sh --test
export GRIDPULSE_TEST_PG=$(bash .ci/pg.sh)
echo "== PostGIS at $GRIDPULSE_TEST_PG"
.venv/bin/ruff check .
# two workers: the machines have 2 cores and the browser tests mostly wait on the server
.venv/bin/python -m pytest -n "${GRIDPULSE_TEST_WORKERS:-2}" "$@"
