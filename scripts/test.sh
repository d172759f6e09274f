#!/usr/bin/env bash
# The test command behind `make test` (and .ci/run): SQLite leg always,
# PostgreSQL leg whenever 127.0.0.1:5432 answers. Says which legs ran.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
PG_URL=${PORTAL_TEST_PG_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/postgres}
export PORTAL_TEST_PG_URL=$PG_URL
args=("$@")

run_leg() {
  local leg=$1
  echo "==================== test leg: $leg ===================="
  PORTAL_TEST_DB=$leg $PY -m pytest -q -p no:cacheprovider "${args[@]}"
}

bash scripts/static-checks.sh
static_rc=$?

run_leg sqlite
sqlite_rc=$?

if $PY - <<PYEOF 2>/dev/null
import sqlalchemy as sa, sys
try:
    sa.create_engine("$PG_URL", connect_args={"connect_timeout": 3}).connect().close()
except Exception:
    sys.exit(1)
PYEOF
then
  run_leg postgresql
  pg_rc=$?
  pg_status=$([ $pg_rc -eq 0 ] && echo passed || echo FAILED)
else
  pg_rc=0
  pg_status="SKIPPED (PostgreSQL not reachable at $PG_URL)"
fi

echo "==================== legs ===================="
echo "Static checks:  $([ $static_rc -eq 0 ] && echo passed || echo FAILED)"
echo "SQLite leg:     $([ $sqlite_rc -eq 0 ] && echo passed || echo FAILED)"
echo "PostgreSQL leg: $pg_status"
[ $static_rc -eq 0 ] && [ $sqlite_rc -eq 0 ] && [ $pg_rc -eq 0 ]
