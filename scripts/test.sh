#!/usr/bin/env bash
# The whole test suite: `npm test`. Sets up what is missing, then runs every stage in order and stops at the
# first failing one, naming it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PWD/node_modules/.bin:$PATH"

bash scripts/setup.sh

stage() { printf '\n==> %s\n' "$1"; }

stage "rust: format and lints (native and wasm32)"
cargo fmt --all --check
cargo clippy --quiet --all-targets -- -D warnings
cargo clippy --quiet --target wasm32-unknown-unknown --lib --test browser -- -D warnings
# The size benchmark's core-only wasm (bench/core-floor), so that it keeps building as the core's API moves.
cargo fmt --manifest-path bench/core-floor/Cargo.toml --check
CARGO_TARGET_DIR=target/core-floor cargo clippy --quiet --manifest-path bench/core-floor/Cargo.toml --release \
  --target wasm32-unknown-unknown -- -D warnings

stage "rust: core unit, integration and property tests"
cargo test --quiet

stage "dev server and SQL contract (PGlite, then PostgreSQL)"
bash scripts/test-server.sh

stage "RecordSync in headless Chromium against the dev server"
bash scripts/test-browser.sh

stage "npm package, React bindings and the demo, end to end in Chromium"
bash scripts/test-e2e.sh

printf '\nall test stages passed\n'
