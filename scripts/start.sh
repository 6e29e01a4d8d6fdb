#!/usr/bin/env bash
# `npm start`: the training-plan demo syncing to the embedded dev server. Installs what is missing, builds the
# package, starts the dev server (PGlite) and the app (Vite), prints the URL, and stops both on Ctrl-C.
#   RECORD_SYNC_MODE=rest npm start        plain PostgREST writes instead of the rpc batch function
#   SERVER_PORT=54321 APP_PORT=5173        the ports (defaults shown)
#   DEMO_DATA_DIR=build/dev-data           where the dev server keeps its database between runs
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PWD/node_modules/.bin:$PATH"

SERVER_PORT=${SERVER_PORT:-54321}
APP_PORT=${APP_PORT:-5173}
MODE=${RECORD_SYNC_MODE:-rpc}
DATA_DIR=${DEMO_DATA_DIR:-build/dev-data}
DEMO_USER=7f1c2a3e-0000-4000-8000-000000000001   # the demo's fixed user (row-level security)

say() { printf '[start] %s\n' "$*" >&2; }
fail() { printf '[start] ERROR: %s\n' "$*" >&2; exit 1; }

bash scripts/setup.sh
bash scripts/build.sh

if [ ! -e www/app/node_modules/record-sync ] || [ www/app/package.json -nt www/app/node_modules/.package-lock.json ]; then
  say "npm install (www/app)"
  (cd www/app && npm install --no-audit --no-fund --loglevel=error >/dev/null) || fail "npm install in www/app failed"
fi

http_ok() { node -e 'fetch(process.argv[1]).then((r) => process.exit(r.status < 500 ? 0 : 1), () => process.exit(1))' "$1"; }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port_busy "$SERVER_PORT" && fail "port $SERVER_PORT is in use (set SERVER_PORT=...)"
port_busy "$APP_PORT" && fail "port $APP_PORT is in use (set APP_PORT=...)"

pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  say "stopped"
}
trap cleanup INT TERM EXIT

mkdir -p "$DATA_DIR"
server_args=(--port "$SERVER_PORT" --data-dir "$DATA_DIR")
say "dev server: node www/server/cli.js ${server_args[*]}"
node www/server/cli.js "${server_args[@]}" &
pids+=($!)

for _ in $(seq 1 300); do
  http_ok "http://127.0.0.1:$SERVER_PORT/__admin/stats" && break
  kill -0 "${pids[0]}" 2>/dev/null || fail "the dev server exited"
  sleep 0.2
done
token=$(node www/server/dev-token.js "$DEMO_USER") || fail "could not mint a dev token"

say "app: vite (www/app), mode $MODE"
(
  cd www/app
  VITE_RECORD_SYNC_URL="http://127.0.0.1:$SERVER_PORT/rest/v1" \
  VITE_RECORD_SYNC_ANON_KEY=dev-anon-key \
  VITE_RECORD_SYNC_TOKEN="$token" \
  VITE_RECORD_SYNC_MODE="$MODE" \
    exec node node_modules/vite/bin/vite.js --port "$APP_PORT" --strictPort --clearScreen false --logLevel warn
) &
pids+=($!)

for _ in $(seq 1 300); do
  http_ok "http://127.0.0.1:$APP_PORT/" && break
  kill -0 "${pids[1]}" 2>/dev/null || fail "the app server exited"
  sleep 0.2
done

cat >&2 <<MSG

  Training-plan editor:  http://127.0.0.1:$APP_PORT/
  Dev server (PostgREST): http://127.0.0.1:$SERVER_PORT/rest/v1   (mode: $MODE, user $DEMO_USER)

  Edit a plan and watch the Sync monitor in the bottom-right corner. Ctrl-C stops both servers.

MSG
# Stop both as soon as either exits (or on Ctrl-C).
wait -n "${pids[@]}" || true
