#!/usr/bin/env bash
# `npm run build`: builds the wasm (scripts/build-wasm.sh -> build/wasm/) and assembles pkg/, the publishable npm
# package `record-sync`: the wasm-bindgen output, the auto-init entry and package.json from pkg-template/, and the
# React bindings compiled from TypeScript (JS + .d.ts). Prints the gzip sizes of what an app ships.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PWD/node_modules/.bin:$PATH"

say() { printf '[build] %s\n' "$*" >&2; }
fail() { printf '[build] ERROR: %s\n' "$*" >&2; exit 1; }

[ -f scripts/build-wasm.sh ] || fail "scripts/build-wasm.sh is missing"
[ -x node_modules/.bin/tsc ] || fail "node_modules is missing: run 'npm run setup' (or 'npm install') first"

if [ "${SKIP_WASM_BUILD:-0}" != 1 ]; then
  say "wasm: scripts/build-wasm.sh"
  bash scripts/build-wasm.sh
fi
for f in record_sync.js record_sync.d.ts record_sync_bg.wasm; do
  [ -f "build/wasm/$f" ] || fail "build/wasm/$f is missing after scripts/build-wasm.sh"
done

stage=build/pkg-stage
rm -rf "$stage" pkg
mkdir -p "$stage" pkg/react

# The wasm-bindgen output and the template side by side, so that the React sources' `../index.js` resolves to
# the real generated types while they are compiled.
cp build/wasm/record_sync.js build/wasm/record_sync.d.ts build/wasm/record_sync_bg.wasm "$stage/"
[ -f build/wasm/record_sync_bg.wasm.d.ts ] && cp build/wasm/record_sync_bg.wasm.d.ts "$stage/"
# The JS snippet the wasm imports (src/web/shell.js), referenced by record_sync.js as ./snippets/...
[ -d build/wasm/snippets ] && cp -r build/wasm/snippets "$stage/snippets"
cp pkg-template/package.json pkg-template/index.js pkg-template/index.d.ts pkg-template/README.md "$stage/"
cp -r pkg-template/react "$stage/react"

# The package's version is the crate's.
version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -1)
node -e '
  const fs = require("fs"); const [file, version] = process.argv.slice(1);
  const pkg = JSON.parse(fs.readFileSync(file, "utf8")); pkg.version = version;
  fs.writeFileSync(file, JSON.stringify(pkg, null, 2) + "\n");
' "$stage/package.json" "$version"

say "react: tsc (type-check, emit JS and .d.ts)"
tsc -p "$stage/react/tsconfig.json" --outDir pkg/react

for f in "$stage"/*; do
  [ -f "$f" ] && cp "$f" pkg/
done
[ -d "$stage/snippets" ] && cp -r "$stage/snippets" pkg/snippets
# The server side ships with the package, so that an app installed from npm can run it (psql -f
# node_modules/record-sync/sql/record_sync.sql); it is never imported, so it adds nothing to a bundle.
mkdir -p pkg/sql
cp sql/record_sync.sql sql/record_sync_feed.sql sql/README.md pkg/sql/

# A quick self-check: every file package.json names exists, and importing the package in Node (as server-side
# rendering does) works.
node -e '
  const fs = require("fs"); const pkg = JSON.parse(fs.readFileSync("pkg/package.json", "utf8"));
  const walk = (v) => typeof v === "string" ? [v] : Object.values(v).flatMap(walk);
  for (const f of walk(pkg.exports)) if (!fs.existsSync("pkg/" + f)) { console.error("missing " + f); process.exit(1); }
'
node --input-type=module -e '
  const m = await import(process.cwd() + "/pkg/index.js");
  if (typeof m.RecordSync !== "function" || m.isSupported !== false) throw new Error("bad SSR import");
' || fail "importing pkg/index.js in Node (SSR) failed"

gz() { gzip -9 -c "$1" | wc -c; }
report() {
  local total_raw=0 total_gz=0
  printf '[build] pkg/ sizes (bytes, raw / gzip -9):\n' >&2
  for f in "$@"; do
    local raw gzb; raw=$(wc -c <"$f"); gzb=$(gz "$f")
    total_raw=$((total_raw + raw)); total_gz=$((total_gz + gzb))
    printf '[build]   %-32s %8d / %7d\n' "${f#pkg/}" "$raw" "$gzb" >&2
  done
  printf '[build]   %-32s %8d / %7d\n' "total" "$total_raw" "$total_gz" >&2
}
report pkg/index.js pkg/record_sync.js pkg/record_sync_bg.wasm $(find pkg/snippets -name "*.js" 2>/dev/null) pkg/react/*.js
say "pkg/ ready: record-sync@$version"
