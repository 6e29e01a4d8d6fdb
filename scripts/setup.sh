#!/usr/bin/env bash
# Installs every toolchain piece the build and the tests need, idempotently: each step checks first and is
# silent when its piece is already there. Called by `npm test` and `npm start`; safe to run by hand.
set -euo pipefail
cd "$(dirname "$0")/.."

WASM_BINDGEN_VERSION=0.2.130   # must equal the wasm-bindgen "=..." pin in Cargo.toml
export PATH="$HOME/.cargo/bin:$PATH"

say() { printf '[setup] %s\n' "$*" >&2; }
fail() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null || fail "cargo not found: install Rust with rustup first"
command -v node >/dev/null || fail "node not found: install Node.js 20 or newer"
node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' \
  || fail "Node.js $(node --version) is too old: 20 or newer is needed"

apt_updated=0
apt_install() {
  command -v apt-get >/dev/null || fail "apt-get not found: install $* with your package manager"
  local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  if [ $apt_updated = 0 ]; then
    say "apt-get update"
    $sudo apt-get update -qq >/dev/null || fail "apt-get update failed"
    apt_updated=1
  fi
  say "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null || fail "apt-get install $* failed"
}

if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || fail "rustup target add wasm32-unknown-unknown failed"
fi

if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (compiles from source, a few minutes)"
  cargo install -q wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force \
    || fail "cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION failed"
fi

if ! command -v wasm-pack >/dev/null; then
  say "installing wasm-pack (compiles from source, a few minutes)"
  cargo install -q wasm-pack || fail "cargo install wasm-pack failed"
fi

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  apt_install chromium chromium-driver
fi

# PostgreSQL 15 server binaries, for the dev-server suite on a real PostgreSQL (PGlite needs nothing).
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  apt_install postgresql
fi

# npm packages (wasm-opt comes from the npm `binaryen` package: Debian's is too old for current rustc output).
if [ ! -d node_modules ] || [ package.json -nt node_modules/.package-lock.json ] \
   || { [ -f package-lock.json ] && [ package-lock.json -nt node_modules/.package-lock.json ]; }; then
  say "npm install"
  npm install --no-audit --no-fund --loglevel=error >/dev/null || fail "npm install failed"
fi
