#!/bin/sh
# Install headless Chromium for tests/test_atlas_browser.py (Debian's package: /usr/bin/chromium).
# CI calls this before the slow tests; the test itself installs nothing and skips when Chromium is absent.
# Needs root and apt-get; anywhere else it says what to do and exits 0, so a CI step does not fail on it.
set -eu
if [ -x /usr/bin/chromium ]; then
    echo "chromium already installed: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install_chromium.sh: needs root and apt-get (Debian/Ubuntu); install a Chromium at /usr/bin/chromium" \
         "by hand, or the browser test skips" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q chromium
/usr/bin/chromium --version 2>/dev/null || true
