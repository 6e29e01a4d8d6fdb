#!/usr/bin/env bash
# End-to-end tests in Chromium (playwright-core driving /usr/bin/chromium), run by node's test runner:
#   tests/react      the React bindings (record-sync/react from pkg/) in a real browser, and SSR in Node
#   tests/e2e        the training-plan demo against the dev server: editing, merging, offline, errors, screenshot
#   tests/durable    the durable queue: reload, killed browser, crashed tab, sign-out and another user, storage faults,
#                    and all of it at once with server faults (chaos.test.mjs; DATABASE_URL runs it on that PostgreSQL)
#   tests/packaging  `npm pack` of pkg/ installed into fresh Vite and webpack 5 apps, built and loaded
# Builds pkg/ and the demo first. Screenshots go to build/screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PWD/node_modules/.bin:$PATH"

say() { printf '[e2e] %s\n' "$*" >&2; }

say "build: pkg/"
bash scripts/build.sh

if [ ! -e www/app/node_modules/record-sync ] || [ www/app/package.json -nt www/app/node_modules/.package-lock.json ]; then
  say "npm install (www/app)"
  (cd www/app && npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi
say "typecheck: www/app (tsc --noEmit)"
(cd www/app && node node_modules/typescript/bin/tsc --noEmit -p .)

mkdir -p build/screenshots
files=(tests/shell/*.test.mjs tests/react/*.test.mjs tests/e2e/*.test.mjs tests/durable/*.test.mjs)
if [ "${SKIP_PACKAGING:-0}" != 1 ]; then files+=(tests/packaging/*.test.mjs); fi
say "node --test ${files[*]}"
node --test --test-concurrency=1 "${files[@]}"
