#!/usr/bin/env bash
# The browser test drives Debian's Chromium (playwright cannot download browsers here).
# Install it when missing and we are root; otherwise the browser test says what is missing.
set -uo pipefail
[ -x /usr/bin/chromium ] && exit 0
[ "${SKIP_BROWSER_INSTALL:-}" = 1 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo ">> installing chromium for the browser test" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 \
    || echo "could not install chromium; the browser test will fail under CI=true" >&2
fi
exit 0
