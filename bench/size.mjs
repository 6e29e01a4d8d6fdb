// Bundle sizes: what an app ships, raw, gzip (level 9) and brotli (quality 11), from node's zlib. Once as the
// files of pkg/, and once as an app's production build ships the JS (esbuild, minified, React left external).
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";

export const title = "Bundle size (pkg/)";
export const order = 10;

const KB = 1024;

function sizes(buffers) {
  const sum = (f) => buffers.reduce((n, b) => n + f(b), 0);
  return {
    raw: sum((b) => b.length),
    gzip: sum((b) => gzipSync(b, { level: 9 }).length),
    brotli: sum((b) => brotliCompressSync(b, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length),
  };
}

export async function bench(ctx) {
  const pkg = join(ctx.root, "pkg");
  const read = (f) => readFileSync(join(pkg, f));
  const reactFiles = readdirSync(join(pkg, "react")).filter((f) => f.endsWith(".js")).map((f) => `react/${f}`);
  const groups = [
    ["wasm (record_sync_bg.wasm)", ["record_sync_bg.wasm"]],
    ["JS entry (index.js + glue)", ["index.js", "record_sync.js"]],
    ["React entry (react/*.js)", reactFiles],
  ];
  const measured = {};
  for (const [label, files] of groups) {
    const s = sizes(files.map(read));
    measured[label] = s;
    ctx.figure(label, `${kb(s.raw)} / ${kb(s.gzip)} / ${kb(s.brotli)}`, { unit: "KB raw / gzip / br" });
  }
  // The files as pkg/ holds them, unminified: index.js and the glue, not the glue's snippet (src/web/shell.js).
  const core = sizes(["record_sync_bg.wasm", "index.js", "record_sync.js"].map(read));
  ctx.figure("wasm + JS entry (pkg/ files), gzip", core.gzip / KB, { unit: "KB", digits: 1 });

  // What a production build of an app ships: the entries bundled and minified (the wasm is a separate file).
  const esbuild = await import("esbuild");
  const bundle = async (contents) => {
    const out = await esbuild.build({
      stdin: { contents, resolveDir: ctx.root, loader: "js" },
      bundle: true,
      minify: true,
      format: "esm",
      target: "es2022",
      write: false,
      external: ["react", "react-dom", "react/jsx-runtime", "*.wasm"],
      alias: { "record-sync": pkg },
      logLevel: "silent",
    });
    return Buffer.from(out.outputFiles[0].contents);
  };
  const js = sizes([await bundle(`export * from "record-sync";`)]);
  // The headline: what an app ships, as issue 10 measured Replicache (esbuild, minified, gzip): the wasm and the
  // minified JS entry, which holds the glue and its snippet. The pkg/ files above leave the snippet out, so JS
  // moved from the wasm into src/web/shell.js would not count there.
  const wasm = measured["wasm (record_sync_bg.wasm)"];
  ctx.figure("wasm + JS entry, gzip", (wasm.gzip + js.gzip) / KB, { unit: "KB", target: "<= 40 (stretch 30)", digits: 1 });
  ctx.figure("wasm + JS entry, brotli", (wasm.brotli + js.brotli) / KB, { unit: "KB", digits: 1 });
  const react = sizes([await bundle(`export * from "record-sync/react";`)]);
  ctx.figure("JS entry, minified bundle", `${kb(js.raw)} / ${kb(js.gzip)} / ${kb(js.brotli)}`, { unit: "KB raw / gzip / br" });
  ctx.figure("React + JS entry, minified bundle", `${kb(react.raw)} / ${kb(react.gzip)} / ${kb(react.brotli)}`, {
    unit: "KB raw / gzip / br",
    note: "React itself external",
  });
  ctx.note("For comparison (issue 10, esbuild on minimal entries): Replicache 15.3 ships 39.0 KB gzip, TanStack DB offline 35.7 KB.");

  // The floor under any shell: the core's wasm alone (bench/core-floor drives every core path the shell uses),
  // built and optimized as the package's wasm is. Whatever the shell becomes, Rust or JS, it adds to this.
  const floorTarget = join(ctx.root, "target", "core-floor");
  await ctx.run("cargo", ["build", "--quiet", "--release", "--target", "wasm32-unknown-unknown"], {
    cwd: join(ctx.root, "bench", "core-floor"),
    env: { ...process.env, CARGO_TARGET_DIR: floorTarget },
  });
  const built = join(floorTarget, "wasm32-unknown-unknown", "release", "record_sync_core_floor.wasm");
  const optimized = join(floorTarget, "core-floor.wasm");
  await ctx.run("bash", ["scripts/wasm-opt.sh", built, optimized]);
  const floor = sizes([readFileSync(optimized)]);
  ctx.figure("core alone, wasm (no shell)", `${kb(floor.raw)} / ${kb(floor.gzip)} / ${kb(floor.brotli)}`, {
    unit: "KB raw / gzip / br",
    note: `${((100 * floor.gzip) / wasm.gzip).toFixed(0)} % of the package's wasm, gzip`,
  });
}

const kb = (bytes) => (bytes / KB).toFixed(1);
