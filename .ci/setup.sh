#!/usr/bin/env bash
# Install everything GridPulse and its tests need on a fresh Debian machine.
#   bash .ci/setup.sh          # Python packages only (enough to run the dashboard)
#   bash .ci/setup.sh --test   # plus PostgreSQL/PostGIS, Chromium and a CJK font for the tests
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

if [ "$want_test" = 1 ]; then
  need=()
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
  ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1 || need+=(postgis postgresql-postgis)
  fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || need+=(fonts-noto-cjk)
  if [ "${#need[@]}" -gt 0 ]; then
    echo "== apt-get install ${need[*]}"
    $SUDO apt-get update -qq
    # with recommends: the postgis package only *recommends* the server extension (postgresql-postgis)
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
if [ "$want_test" = 1 ]; then
  .venv/bin/python -m pip install -q -e ".[test,bench]" 2>&1 | grep -v -E "^WARNING: Location|^$" || true
else
  .venv/bin/python -m pip install -q -e . 2>&1 | grep -v -E "^WARNING: Location|^$" || true
fi
.venv/bin/python -c "import gridpulse, layers, geo, dashboard, data" 
echo "== python environment ready (.venv)"
