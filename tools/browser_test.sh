#!/usr/bin/env bash
# The browser tests: Debian's Chromium driven by npm's playwright-core (never a downloaded
# browser). Installs what is missing; without a Chromium that can be installed it says so and
# fails, since the page's tests cannot run without one.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/chromium ]; then
  echo "installing Debian's chromium for the browser tests"
  if [ "$(id -u)" = 0 ]; then
    apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >/dev/null
  else
    sudo apt-get update >/dev/null && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >/dev/null
  fi
fi
if [ ! -d tests/web/node_modules/playwright-core ]; then
  (cd tests/web && npm install --no-save --no-audit --no-fund playwright-core >/dev/null)
fi
node tests/web/browser_smoke.mjs
