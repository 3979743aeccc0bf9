#!/usr/bin/env bash
# Runs pytest against a throwaway PostgreSQL server on 127.0.0.1 (`make test` calls this after the
# SQLite run). Usage: tests/with_postgres.sh PYTHON [pytest args...]
# The server runs in a time zone west of UTC, so anything that leans on the server's own zone fails.
set -euo pipefail
PY=$1; shift
exec "$PY" "$(dirname "$0")/pg_server.py" "$PY" -m pytest "$@"
