#!/usr/bin/env bash
# The browser suite (tests/browser.rs): starts the dev server on a free port (PGlite, in memory), mints a
# user's token with its dev-token tool, and runs the wasm-bindgen tests in headless Chromium against it. The server's address, the token and the user's id reach the tests at compile time
# (option_env!). Stops the server on the way out, whatever happens.
#
# Needs what scripts/setup.sh installs: the wasm32 target, wasm-bindgen-cli at the pinned version,
# chromium and chromedriver. CHROMIUM / CHROMEDRIVER override the browser and driver paths.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PWD/node_modules/.bin:$PATH"

say() { printf '[test-browser] %s\n' "$*" >&2; }
fail() { say "ERROR: $*"; exit 1; }

[ -f www/server/cli.js ] || fail "www/server/cli.js not found: the dev server is needed"
chromedriver=${CHROMEDRIVER:-$(command -v chromedriver || true)}
[ -x "$chromedriver" ] || fail "chromedriver not found: run bash scripts/setup.sh"
command -v wasm-bindgen-test-runner >/dev/null || fail "wasm-bindgen-test-runner not found: run bash scripts/setup.sh"

port=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')
server="http://127.0.0.1:$port"
log=$(mktemp -t record-sync-server.XXXXXX.log)
webdriver=$(mktemp -t record-sync-webdriver.XXXXXX.json)
node www/server/cli.js --port "$port" >"$log" 2>&1 &
server_pid=$!
cleanup() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  rm -f "$webdriver"
}
trap cleanup EXIT

for _ in $(seq 1 600); do
  if curl -fsS -o /dev/null -H 'apikey: dev-service-key' "$server/__admin/stats" 2>/dev/null; then break; fi
  kill -0 "$server_pid" 2>/dev/null || { cat "$log" >&2; fail "the dev server exited"; }
  sleep 0.1
done
curl -fsS -o /dev/null -H 'apikey: dev-service-key' "$server/__admin/stats" || { cat "$log" >&2; fail "the dev server did not come up on $server"; }
say "dev server on $server"

user=$(node -e 'console.log(crypto.randomUUID())')
token=$(node www/server/dev-token.js "$user")
[ -n "$token" ] || fail "www/server/dev-token.js printed no token"

# The browser binary and flags (root needs --no-sandbox; nothing may phone home on this network).
sed "s#/usr/bin/chromium#${CHROMIUM:-/usr/bin/chromium}#" tests/web/webdriver.json >"$webdriver"

export RECORD_SYNC_TEST_SERVER="$server" RECORD_SYNC_TEST_TOKEN="$token" RECORD_SYNC_TEST_USER="$user"
export CHROMEDRIVER="$chromedriver" WASM_BINDGEN_TEST_WEBDRIVER_JSON="$webdriver"
export WASM_BINDGEN_TEST_TIMEOUT=${WASM_BINDGEN_TEST_TIMEOUT:-300}
wasm-pack test --headless --chrome --chromedriver "$chromedriver" . --test browser
