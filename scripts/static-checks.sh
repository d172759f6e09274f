#!/usr/bin/env bash
# Static checks run by `make test` before the test legs: ruff (lint, whole tree),
# mypy (portal/domain/), pip-audit against requirements.lock.
set -uo pipefail
cd "$(dirname "$0")/.."
rc=0
echo "==================== static checks ===================="
.venv/bin/ruff check . && echo "ruff: passed" || { echo "ruff: FAILED"; rc=1; }
.venv/bin/mypy portal/domain/ && echo "mypy portal/domain: passed" || { echo "mypy: FAILED"; rc=1; }
bash scripts/audit.sh || rc=1
exit $rc
