#!/usr/bin/env bash
# Runs pytest against a throwaway PostgreSQL server on 127.0.0.1 (`make test` calls this after the
# SQLite run). Usage: tests/with_postgres.sh PYTHON [pytest args...]
# The server runs in a time zone west of UTC, so anything that leans on the server's own zone fails.
set -euo pipefail
PY=$1; shift
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$BIN" ]; then
  echo "The PostgreSQL test run needs a PostgreSQL server: apt-get install postgresql" >&2
  exit 1
fi
DATA=$(mktemp -d)
PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_pg() {  # initdb refuses to run as root
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
[ "$(id -u)" = 0 ] && chown postgres "$DATA"
as_pg "$BIN/initdb" -D "$DATA/db" -A trust -U postgres >/dev/null
as_pg "$BIN/pg_ctl" -D "$DATA/db" -o "-p $PORT -k $DATA -c listen_addresses=127.0.0.1 -c fsync=off -c timezone=America/New_York" \
  -l "$DATA/server.log" -w start >/dev/null
trap 'as_pg "$BIN/pg_ctl" -D "$DATA/db" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$DATA"' EXIT
echo "PostgreSQL $("$BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT"
TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres" "$PY" -m pytest "$@"
