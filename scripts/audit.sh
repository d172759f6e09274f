#!/usr/bin/env bash
# pip-audit against requirements.lock (part of `make test`).
# Says clearly whether the advisory source answered: a package it could not look up
# is NOT audited. Exit 1 only when known vulnerabilities are found in audited packages.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
out=$(mktemp)
trap 'rm -f "$out"' EXIT
timeout 180 .venv/bin/pip-audit -r requirements.lock --require-hashes --disable-pip \
  --progress-spinner off --format json --output "$out" >/dev/null 2>"$out.err"
rc=$?
$PY - "$out" "$rc" "$out.err" <<'PYEOF'
import json, sys
path, rc, err = sys.argv[1], int(sys.argv[2]), sys.argv[3]
try:
    data = json.load(open(path))
except Exception:
    tail = open(err).read().strip().splitlines()[-1:] or ["no output"]
    print(f"pip-audit: advisory source UNREACHABLE — dependencies NOT audited ({tail[0][:200]})")
    sys.exit(0)
deps = data.get("dependencies", [])
skipped = [d for d in deps if d.get("skip_reason")]
audited = [d for d in deps if not d.get("skip_reason")]
vulns = [(d["name"], d["version"], v["id"]) for d in audited for v in d.get("vulns", [])]
if not audited:
    print(f"pip-audit: advisory source did not answer for any of the {len(deps)} locked "
          "packages — dependencies NOT audited.")
    sys.exit(0)
print(f"pip-audit: {len(audited)} package(s) audited, {len(skipped)} not audited "
      f"({', '.join(d['name'] for d in skipped) or 'none'}), {len(vulns)} known vulnerability(ies).")
for name, version, vid in vulns:
    print(f"  VULNERABLE {name} {version}: {vid}")
sys.exit(1 if vulns else 0)
PYEOF
status=$?
rm -f "$out.err"
exit $status
