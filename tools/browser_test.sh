#!/usr/bin/env bash
# The browser tests: the system's Chromium (tests/web/chromium.mjs finds it) driven by npm's
# playwright-core, pinned in tests/web/package-lock.json (never a downloaded browser). Installs
# what is missing; without a Chromium that can be installed it says so and fails, since the
# page's tests cannot run without one.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${T2I_CHROMIUM:-}" ] && ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
  echo "installing Debian's chromium for the browser tests"
  if [ "$(id -u)" = 0 ]; then
    apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >/dev/null
  else
    sudo apt-get update >/dev/null && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >/dev/null
  fi
fi
pinned=$(node -p 'require("./tests/web/package-lock.json").packages["node_modules/playwright-core"].version')
installed=$(node -p 'try { require("./tests/web/node_modules/playwright-core/package.json").version } catch { "" }')
if [ "$installed" != "$pinned" ]; then
  (cd tests/web && npm ci --no-audit --no-fund >/dev/null)
fi
echo "playwright-core $pinned, $("${T2I_CHROMIUM:-$(command -v chromium || command -v chromium-browser)}" --version)"
node tests/web/browser_smoke.mjs
node tests/web/page_faults.mjs
