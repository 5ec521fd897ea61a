#!/bin/sh
# Prerequisites of tests/interop: Debian's chromium, node + npm, and the pinned node packages
# (npm ci from package-lock.json). Needs root (or sudo) for apt. Idempotent.
# Never `npx playwright install`: playwright-core drives /usr/bin/chromium.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
missing=""
[ -x /usr/bin/chromium ] || missing="$missing chromium"
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
if [ -n "$missing" ]; then
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
echo "interop: $(/usr/bin/chromium --version 2>/dev/null | tail -1), node $(node --version)"
cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
