// Renders of the demo's editor per 1,000 changes, with the demo's domain hook (useTrainingPlanSync) on
// useRecordSyncActions (now) and on useRecordSync (before: every stats change re-rendered App and with it the
// whole editor). The demo's own sources are bundled twice with esbuild; the "before" bundle only swaps that one
// hook call, and both get a render counter in App and PlanEditor. Runs against the dev server, in Chromium.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ANON_KEY, serveStatic, waitFor } from "../tests/e2e/helpers.mjs";

export const title = "React renders in the demo's editor";
export const order = 50;

/** Source edits for one variant; each must match, so that a change in the demo fails loudly here. */
function edits(before) {
  return [
    [/sync[/\\]useTrainingPlanSync\.ts$/, [[/useRecordSyncActions/g, before ? "useRecordSync" : "useRecordSyncActions"]]],
    [/[/\\]App\.tsx$/, [[/export function App\(\) \{/, "$& globalThis.__benchRenders.app++;"]]],
    [/components[/\\]PlanEditor\.tsx$/, [[/export function PlanEditor\(.*\) \{/, "$& globalThis.__benchRenders.editor++;"]]],
  ];
}

async function bundle(ctx, dir, before) {
  const esbuild = await import("esbuild");
  const app = join(ctx.root, "www/app");
  const plugin = {
    name: "bench-variant",
    setup(build) {
      build.onLoad({ filter: /www[/\\]app[/\\]src[/\\].*\.tsx?$/ }, (args) => {
        let text = readFileSync(args.path, "utf8");
        for (const [file, replacements] of edits(before)) {
          if (!file.test(args.path)) continue;
          for (const [pattern, by] of replacements) {
            if (!pattern.test(text)) throw new Error(`bench/renders.mjs: ${pattern} not found in ${args.path}; update the bench to the demo`);
            text = text.replace(pattern, by);
          }
        }
        return { contents: text, loader: args.path.endsWith(".tsx") ? "tsx" : "ts" };
      });
    },
  };
  mkdirSync(dir, { recursive: true });
  await esbuild.build({
    entryPoints: [join(ctx.root, "bench/pages/demo-renders.jsx")],
    bundle: true,
    format: "esm",
    target: "es2022",
    jsx: "automatic",
    outfile: join(dir, "app.js"),
    // One React for the app and the bindings, as the demo's Vite config dedupes it.
    alias: { "record-sync": join(ctx.root, "pkg"), react: join(app, "node_modules/react"), "react-dom": join(app, "node_modules/react-dom") },
    nodePaths: [join(app, "node_modules")],
    define: { "process.env.NODE_ENV": '"production"', "import.meta.env": "{}" },
    plugins: [plugin],
    logLevel: "error",
  });
  writeFileSync(join(dir, "record_sync_bg.wasm"), readFileSync(join(ctx.root, "pkg/record_sync_bg.wasm")));
  writeFileSync(join(dir, "index.html"), `<!doctype html><meta charset="utf-8"><title>demo renders</title><div id="root"></div><script type="module" src="/app.js"></script>`);
}

async function measure(ctx, server, dir, keystrokes) {
  const site = await serveStatic(dir);
  const browser = await ctx.browser();
  const context = await browser.newContext();
  try {
    await server.admin("reset", {});
    writeFileSync(join(dir, "config.json"), JSON.stringify({ url: server.restUrl, anonKey: ANON_KEY, accessToken: server.token(), mode: "rpc", dbName: "bench-renders" }));
    const page = await context.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(site.url);
    await page.getByRole("button", { name: "Create plan" }).waitFor();
    // The first start seeds the catalog (3 models, 8 exercises); then a plan with three sessions.
    await waitFor(() => page.evaluate(() => window.benchSync.stats().successfulSyncs >= 11), 30_000);
    await page.getByLabel("New plan name").fill("Bench plan");
    await page.getByRole("button", { name: "Create plan" }).click();
    await page.getByRole("heading", { name: "Bench plan" }).waitFor();
    for (let i = 0; i < 3; i++) await page.getByRole("button", { name: "Add session" }).click();
    await page.getByRole("textbox", { name: "Session name" }).nth(2).waitFor();
    const settle = () =>
      page.evaluate(async () => {
        await window.benchSync.forceSyncAll();
        await new Promise((ok) => setTimeout(ok, 300));
        return { ...globalThis.__benchRenders };
      });
    const r0 = await settle();

    // 1,000 changes queued from outside the editor (100 per task, high priority, then a flush): the editor's own
    // data does not change, so every render here is a sync tick's.
    await page.evaluate(async () => {
      const sync = window.benchSync;
      for (let task = 0; task < 10; task++) {
        for (let i = 0; i < 100; i++) {
          sync.queueHighChange("exercises", `bench-${i}`, "upsert", { id: `bench-${i}`, name: `Exercise ${i}.${task}`, muscle_group: null, last_changed: new Date().toISOString() });
        }
        await new Promise((ok) => setTimeout(ok, 0));
      }
    });
    const r1 = await settle();

    // Typing into a session's name in the editor: one change per keystroke, each written locally first (the
    // editor re-renders for its own data) and queued.
    const field = page.getByRole("textbox", { name: "Session name" }).first();
    await field.click();
    await field.press("ControlOrMeta+a");
    await field.pressSequentially("x".repeat(keystrokes));
    await waitFor(async () => (await field.inputValue()) === "x".repeat(keystrokes), 10_000);
    await page.waitForTimeout(200);
    const r2 = await settle();
    const stats = await page.evaluate(() => window.benchSync.stats());
    if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
    return {
      outside: { app: r1.app - r0.app, editor: r1.editor - r0.editor },
      typing: { app: r2.app - r1.app, editor: r2.editor - r1.editor },
      failed: stats.failedSyncs,
    };
  } finally {
    await context.close();
    await site.close();
  }
}

export async function bench(ctx) {
  const server = await ctx.devServer();
  const keystrokes = ctx.quick ? 40 : 100;
  const results = {};
  for (const variant of ["before", "after"]) {
    const dir = join(ctx.root, "build/bench", `demo-${variant}`);
    await bundle(ctx, dir, variant === "before");
    results[variant] = await measure(ctx, server, dir, keystrokes);
  }
  for (const variant of ["before", "after"]) {
    const r = results[variant];
    const hook = variant === "before" ? "useRecordSync (before)" : "useRecordSyncActions (now)";
    ctx.figure(`1,000 changes queued outside the editor, ${hook}: editor renders`, r.outside.editor, { note: `App ${r.outside.app}` });
  }
  for (const variant of ["before", "after"]) {
    const r = results[variant];
    const hook = variant === "before" ? "useRecordSync (before)" : "useRecordSyncActions (now)";
    ctx.figure(`typing in the editor, ${hook}: editor renders per 1,000 changes`, (1000 * r.typing.editor) / keystrokes, { note: `${r.typing.editor} for ${keystrokes} keystrokes, App ${r.typing.app}` });
  }
  ctx.note("While typing, the field keeps its own state; the editor renders for its data (Dexie live queries, which coalesce) and, before, for every sync tick.");
}
