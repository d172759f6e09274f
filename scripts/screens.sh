#!/usr/bin/env bash
# Regenerate docs/screens/*.png: each role's main page and the phone scan flow, taken by
# chromium (Playwright) from the demo data (tests/browser/test_screens.py).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh
mkdir -p docs/screens
PORTAL_SCREENS_DIR="$PWD/docs/screens" PORTAL_TEST_DB=sqlite \
  .venv/bin/python -m pytest -q -p no:cacheprovider tests/browser/test_screens.py "$@"
ls -1 docs/screens
