#!/usr/bin/env bash
# Builds the wasm package: cargo (release profile, size-tuned in Cargo.toml) -> wasm-bindgen --target web ->
# wasm-opt (scripts/wasm-opt.sh). Leaves build/wasm/{record_sync.js, record_sync_bg.wasm, record_sync.d.ts} and
# prints the gzip sizes of the .wasm and of the JS glue. Needs wasm-bindgen-cli at the version pinned in
# Cargo.toml and wasm-opt (npm `binaryen`); `bash scripts/setup.sh` installs both. Never downloads anything.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PWD/node_modules/.bin:$PATH"

out=build/wasm
pinned=$(sed -n 's/^wasm-bindgen = .*"=\([0-9.]*\)".*/\1/p' Cargo.toml | head -1)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')
if [ "$have" != "$pinned" ]; then
  echo "build-wasm: wasm-bindgen-cli $pinned is needed (found: ${have:-none}); run bash scripts/setup.sh" >&2
  exit 1
fi
command -v wasm-opt >/dev/null || { echo "build-wasm: wasm-opt not found; run bash scripts/setup.sh" >&2; exit 1; }

# `cargo rustc --crate-type cdylib`: with the manifest's ["cdylib", "rlib"], cargo silently skips LTO (an
# rlib cannot take it), which costs about a tenth of the size. Symbols are kept for wasm-bindgen to read the
# target-features section; wasm-opt strips them below.
CARGO_PROFILE_RELEASE_STRIP=false \
  cargo rustc --quiet --lib --release --target wasm32-unknown-unknown --crate-type cdylib
rm -rf "$out" && mkdir -p "$out"
wasm-bindgen --target web --out-dir "$out" --out-name record_sync \
  target/wasm32-unknown-unknown/release/record_sync.wasm
bash scripts/wasm-opt.sh "$out/record_sync_bg.wasm" "$out/record_sync_bg.wasm"

# wasm-bindgen types the raw export table (InitOutput) with `any`; nothing calls it, and `unknown` keeps the
# whole .d.ts free of `any`.
sed -i -E '/^export interface InitOutput/,/^}/ s/\bany\b/unknown/g' "$out/record_sync.d.ts"
# `[Symbol.dispose]` types only under TypeScript's `esnext.disposable` lib: an app on `lib: ["es2022", "dom"]`
# with `skipLibCheck: false` failed to compile. `free()` and `destroy()` say the same; the method stays in the JS.
sed -i -E '/^\s*\[Symbol\.dispose\]\(\): void;$/d' "$out/record_sync.d.ts"
if grep -qE '(:|<|\||=>)\s*any\b|\bany\[\]' "$out/record_sync.d.ts"; then
  grep -nE '(:|<|\||=>)\s*any\b|\bany\[\]' "$out/record_sync.d.ts" >&2
  echo "build-wasm: record_sync.d.ts has an \`any\`" >&2
  exit 1
fi

gz() { gzip -9 -c "$1" | wc -c; }
wasm=$(gz "$out/record_sync_bg.wasm")
js=$(gz "$out/record_sync.js")
printf 'build/wasm/record_sync_bg.wasm  %7d bytes  %6d gzip\n' "$(wc -c <"$out/record_sync_bg.wasm")" "$wasm"
printf 'build/wasm/record_sync.js       %7d bytes  %6d gzip\n' "$(wc -c <"$out/record_sync.js")" "$js"
printf 'total gzip                                %6d (%d KB)\n' "$((wasm + js))" "$(((wasm + js + 1023) / 1024))"
