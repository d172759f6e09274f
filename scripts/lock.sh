#!/usr/bin/env bash
# Regenerate requirements.lock (every dependency pinned, with hashes, from PyPI)
# from pyproject.toml: run after adding or changing a dependency (`make lock`).
# --upgrade-package NAME (or --upgrade) may be passed to move pinned versions.
set -euo pipefail
cd "$(dirname "$0")/.."
UV=.venv/bin/uv
[ -x "$UV" ] || { python3 -m venv .venv && .venv/bin/pip install --quiet uv; }
"$UV" pip compile pyproject.toml --all-extras --universal --python-version 3.11 \
  --generate-hashes --no-emit-package setuptools --custom-compile-command "make lock" \
  --quiet -o requirements.lock "$@"
echo "requirements.lock regenerated ($(grep -c '==' requirements.lock) packages)."
