#!/bin/sh
# Prerequisites of tests/interop: Debian's chromium and the pinned node packages.
# Needs root (or sudo) for apt; node/npm must be on PATH. Idempotent.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -x /usr/bin/chromium ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends chromium
fi
# exact versions from package-lock.json; never `npx playwright install` (Debian's chromium is used)
cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
