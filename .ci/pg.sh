#!/usr/bin/env bash
# Start a local PostgreSQL + PostGIS for the tests and print the URL to use as GRIDPULSE_TEST_PG.
set -euo pipefail
ver=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
bin=/usr/lib/postgresql/$ver/bin
port=${GRIDPULSE_PG_PORT:-55432}
dir=${GRIDPULSE_PG_DIR:-/tmp/gridpulse-pg}
runas() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi; }
if [ ! -f "$dir/PG_VERSION" ]; then
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
  runas "$bin/initdb -D $dir -U postgres --auth=trust -E UTF8 --locale=C.UTF-8" >/dev/null
fi
if ! runas "$bin/pg_ctl -D $dir status" >/dev/null 2>&1; then
  runas "$bin/pg_ctl -D $dir -l $dir/server.log -o '-p $port -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off' -w start" >/dev/null
fi
psql="$bin/psql -h 127.0.0.1 -p $port -U postgres -v ON_ERROR_STOP=1 -q"
$psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='gridpulse_test'" | grep -q 1 \
  || $psql -d postgres -c "CREATE DATABASE gridpulse_test"
$psql -d gridpulse_test -c "CREATE EXTENSION IF NOT EXISTS postgis" >/dev/null
echo "postgresql://postgres@127.0.0.1:$port/gridpulse_test"
