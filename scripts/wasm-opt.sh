#!/usr/bin/env bash
# wasm-opt IN OUT, as the package's wasm is optimized (scripts/build-wasm.sh), and the core's alone for the size
# benchmark (bench/size.mjs), so that the two are measured alike.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
command -v wasm-opt >/dev/null || { echo "wasm-opt not found; run bash scripts/setup.sh" >&2; exit 1; }
# Features current rustc emits by default (bulk memory, sign extension, mutable globals, ...) must be
# enabled for wasm-opt to read the module; every browser the package supports has them.
# -Os, not -Oz: 0.4 KB more raw, 0.4 KB less gzip (what ships is gzip'd). --low-memory-unused lets wasm-opt fold a
# small constant added to a pointer into the access's offset, assuming nothing lives below address 1024: Rust
# puts its 1 MB stack first, growing down, so only a stack overflow would reach there (0.5 KB gzip less).
# --converge repeats the passes until the module stops shrinking: 0.3 KB gzip less for 4 s more.
wasm-opt -Os --converge --low-memory-unused --enable-bulk-memory --enable-sign-ext --enable-mutable-globals --enable-nontrapping-float-to-int \
  --enable-reference-types --enable-multivalue --strip-debug --strip-producers \
  -o "$2" "$1"
