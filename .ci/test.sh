#!/usr/bin/env bash
# Install everything and run the whole test suite (the README's test command runs this).
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup.sh --test
export GRIDPULSE_TEST_PG=$(bash .ci/pg.sh)
echo "== PostGIS at $GRIDPULSE_TEST_PG"
.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"
