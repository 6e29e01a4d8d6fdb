// `npm run bench` (node bench/run.mjs): builds what the figures are measured on (pkg/ through scripts/build.sh;
// each section builds the rest it needs, e.g. the release native bench), runs every benchmark section and prints
// each figure next to its target, in one run. A benchmark, not a test: slow figures never fail it; it exits
// non-zero only when something broke (a build, a section that threw).
//
//   npm run bench                  # everything (a few minutes on 2 cores)
//   npm run bench -- --quick       # fewer samples, smallest sizes only (`npm run bench --quick` works too)
//   npm run bench -- --no-build    # measure the pkg/ already built
//   npm run bench -- --only=size,queue   # some sections (file names without .mjs)
//
// Sections. Every bench/*.mjs other than this file is a section when it exports
//
//   export const title = "What it measures";        // optional; the file name otherwise
//   export const order = 50;                        // optional; lower runs first (default 100), then by name
//   export async function bench(ctx) { ... }        // `export default async function (ctx)` works too
//
// and is skipped (with a note) when its source shows neither (it is then not even imported, so a standalone
// script's top level never runs here). Importing a section must have no side effect: a file that can also run
// alone guards its own main with `if (process.argv[1] === fileURLToPath(import.meta.url))`.
// `ctx` gives:
//
//   ctx.quick                          true with --quick: take fewer samples, stay well under a minute
//   ctx.root                           the repository root
//   ctx.figure(label, value, { unit?, target?, note?, digits? })
//                                      one row of the section's table; `target` (text like "<= 40 KB") puts the
//                                      row in the closing "figures against targets" table too
//   ctx.note(text)                     a line printed under the section's table
//   ctx.log(text)                      progress, on stderr
//   await ctx.browser()                a shared headless Chromium (playwright-core, /usr/bin/chromium), closed at
//                                      the end; make your own contexts and close them
//   await ctx.devServer()              a shared dev server (www/server, PGlite) on a free loopback port:
//                                      { origin, restUrl, admin(path, body?), token() }; stopped at the end
//   ctx.shared                         a Map sections use to hand figures to later ones
//   ctx.run(cmd, args, options?)       runs a command, resolving with its output (rejects on a non-zero exit)
//
// Sections that are not there yet (bench/pg-load.mjs for PostgreSQL load, bench/durability.mjs for IndexedDB)
// are simply not run.
import { readFileSync, readdirSync } from "node:fs";
import { basename, join } from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT, admin, devToken, launchBrowser, run, startDevServer } from "../tests/e2e/helpers.mjs";

const args = process.argv.slice(2);
// `npm run bench --quick` (without `--`) hands the flag to npm, which passes it on as npm_config_quick.
const flag = (name) => args.includes(`--${name}`) || process.env[`npm_config_${name.replace("-", "_")}`] === "true";
const quick = flag("quick");
const noBuild = flag("no-build") || ["", "false"].includes(process.env.npm_config_build ?? "-");
const only = args.find((a) => a.startsWith("--only="))?.slice("--only=".length).split(",");

const SECTION = /export\s+(async\s+)?function\s+bench\b|export\s+default\b|export\s*\{[^}]*\bbench\b/;

const log = (text) => process.stderr.write(`[bench] ${text}\n`);

async function main() {
  const started = Date.now();
  if (!noBuild) {
    log("build: pkg/ (scripts/build.sh)");
    await run("bash", ["scripts/build.sh"], { cwd: ROOT });
  }

  const sections = [];
  for (const file of readdirSync(join(ROOT, "bench")).filter((f) => f.endsWith(".mjs") && f !== "run.mjs").sort()) {
    const name = basename(file, ".mjs");
    if (only && !only.includes(name)) continue;
    // Only files that say they are sections are imported: a standalone script's top level never runs here.
    if (!SECTION.test(readFileSync(join(ROOT, "bench", file), "utf8"))) {
      sections.push({ name, title: name, order: 100, fn: null });
      continue;
    }
    const mod = await import(pathToFileURL(join(ROOT, "bench", file)).href);
    const fn = typeof mod.bench === "function" ? mod.bench : typeof mod.default === "function" ? mod.default : null;
    sections.push({ name, title: mod.title ?? name, order: mod.order ?? 100, fn });
  }
  sections.sort((a, b) => a.order - b.order || a.name.localeCompare(b.name));

  let browser = null;
  let server = null;
  const shared = new Map();
  const targets = [];
  let broken = 0;
  console.log(`record-sync benchmarks${quick ? " (--quick)" : ""}, ${new Date().toISOString()}`);
  console.log("The machine may be shared: absolute times are noisy, ratios between rows carry over.\n");
  try {
    for (const section of sections) {
      if (section.fn === null) {
        console.log(`== ${section.title}: skipped (exports no bench function)\n`);
        continue;
      }
      const rows = [];
      const notes = [];
      const ctx = {
        quick,
        root: ROOT,
        shared,
        log: (text) => log(`${section.name}: ${text}`),
        note: (text) => notes.push(text),
        figure(label, value, { unit = "", target, note, digits } = {}) {
          const row = { label, value: format(value, digits), unit, target: target ?? "", note: note ?? "" };
          rows.push(row);
          if (target) targets.push({ section: section.title, ...row });
        },
        browser: async () => (browser ??= await launchBrowser()),
        devServer: async () => {
          if (server === null) {
            const s = await startDevServer();
            let token = null;
            server = { ...s, admin: (path, body) => admin(s, path, body), token: () => (token ??= devToken()) };
          }
          return server;
        },
        run: (cmd, cmdArgs, options = {}) => run(cmd, cmdArgs, { cwd: ROOT, ...options }),
      };
      const t0 = Date.now();
      log(`${section.name}: ${section.title}`);
      try {
        await section.fn(ctx);
      } catch (error) {
        broken++;
        notes.push(`BROKEN: ${error?.stack ?? error}`);
      }
      console.log(`== ${section.title} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
      printTable(["figure", "measured", "unit", "target", "note"], rows.map((r) => [r.label, r.value, r.unit, r.target, r.note]));
      for (const n of notes) console.log(`   ${n}`);
      console.log("");
    }
  } finally {
    await browser?.close().catch(() => {});
    await server?.close().catch(() => {});
  }
  if (targets.length) {
    console.log("== Figures against targets (issue 10)");
    printTable(["figure", "measured", "unit", "target"], targets.map((r) => [r.label, r.value, r.unit, r.target]));
  }
  console.log(`\n${sections.length} sections in ${((Date.now() - started) / 1000).toFixed(0)} s${broken ? `, ${broken} BROKEN` : ""}`);
  process.exitCode = broken ? 1 : 0;
}

function format(value, digits) {
  if (typeof value !== "number") return String(value);
  if (!Number.isFinite(value)) return String(value);
  const d = digits ?? (Math.abs(value) >= 100 || Number.isInteger(value) ? 0 : Math.abs(value) >= 10 ? 1 : 2);
  return value.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
}

function printTable(header, rows) {
  if (!rows.length) return;
  const cols = header.map((h, i) => [h, ...rows.map((r) => String(r[i]))]);
  const used = cols.map((c, i) => i < 2 || c.slice(1).some((v) => v !== ""));
  const widths = cols.map((c) => Math.max(...c.map((v) => v.length)));
  const line = (cells) =>
    "   " +
    cells
      .map((v, i) => (used[i] ? (i === 1 ? String(v).padStart(widths[i]) : String(v).padEnd(widths[i])) : null))
      .filter((v) => v !== null)
      .join("  ")
      .trimEnd();
  console.log(line(header));
  console.log(line(widths.map((w) => "-".repeat(w))));
  for (const r of rows) console.log(line(r));
}

main().catch((error) => {
  console.error(error?.stack ?? error);
  process.exit(1);
});
