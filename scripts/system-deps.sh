#!/usr/bin/env bash
# Install the Debian packages the portal and the tests need, when missing:
#   fonts-dejavu-core (the fonts of every PDF: the portal refuses to print without them),
#   poppler-utils (pdftoppm: PDF checks), chromium (browser tests, driven by
#   Playwright with executable_path=/usr/bin/chromium — never `playwright install`).
#   `system-deps.sh --runtime` (make run): only what the portal itself needs, the fonts.
set -euo pipefail
packages=(poppler-utils chromium)
commands=(pdftoppm chromium)
if [ "${1:-}" = "--runtime" ]; then packages=(); commands=(); fi
missing=()
for i in "${!commands[@]}"; do
  command -v "${commands[$i]}" >/dev/null 2>&1 || missing+=("${packages[$i]}")
done
for font in DejaVuSans.ttf DejaVuSans-Bold.ttf; do
  if [ ! -f "/usr/share/fonts/truetype/dejavu/$font" ]; then
    missing+=(fonts-dejavu-core); break
  fi
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: missing ${missing[*]} and not root: install them with apt-get (tests needing them will fail or be skipped)." >&2
  exit 0
fi
echo "system-deps: installing ${missing[*]}"
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
