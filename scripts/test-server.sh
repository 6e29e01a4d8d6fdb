#!/usr/bin/env bash
# The dev server and SQL contract suite (tests/server), twice: on PGlite (embedded, in memory), then on a real
# PostgreSQL from Debian's packages, started here in a temporary directory on a free loopback port and stopped on
# exit. `npm run test:server`; also a stage of `npm test`. Exits non-zero if either run fails.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[test-server] %s\n' "$*" >&2; }

if [ ! -d node_modules/@electric-sql/pglite ] || [ ! -d node_modules/pg ]; then
  say "npm install"
  npm install --no-audit --no-fund --loglevel=error >/dev/null
fi

run_suite() {
  node --test --test-concurrency=2 tests/server/*.test.js
}

status=0
say "suite on PGlite"
run_suite || status=1

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/postgres" ]; then
  say "installing Debian's postgresql"
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi

# postgres refuses to run as root: as root, run it as the postgres user the package created.
as_pg=()
if [ "$(id -u)" = 0 ]; then as_pg=(runuser -u postgres --); fi

tmp=$(mktemp -d /tmp/record-sync-pg.XXXXXX)
chmod 755 "$tmp"
[ "$(id -u)" = 0 ] && chown postgres: "$tmp"
stop_pg() {
  "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$tmp/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap stop_pg EXIT

port=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')
say "PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
"${as_pg[@]}" "$pg_bin/initdb" -D "$tmp/data" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
# Durability settings off: this cluster lives for one test run.
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$tmp/data" -l "$tmp/postgres.log" -w -o \
  "-p $port -k $tmp -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
  start >/dev/null || { cat "$tmp/postgres.log" >&2; exit 1; }

say "suite on PostgreSQL"
DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres" run_suite || status=1

if [ $status = 0 ]; then say "both runs passed"; else say "FAILED"; fi
exit $status
