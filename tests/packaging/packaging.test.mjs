// The package as users get it: `npm pack` of pkg/, installed from the tarball into a fresh Vite React app and a
// fresh webpack 5 app that this test writes in a temp dir (no plugins, no wasm configuration, no init() call),
// each built, served and loaded in Chromium, queuing a change that must reach the dev server. Also: the Vite
// dev server (which pre-bundles dependencies), and a plain Node import of both entries (server-side rendering).
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, writeFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { spawn } from "node:child_process";
import {
  ANON_KEY,
  DEMO_USER,
  PKG,
  devToken,
  freePort,
  launchBrowser,
  newPage,
  requirePkg,
  rows,
  run,
  serveStatic,
  startDevServer,
  tempDir,
  waitFor,
} from "../e2e/helpers.mjs";

const NPM = process.platform === "win32" ? "npm.cmd" : "npm";
const VERSIONS = {
  react: "^19.0.0",
  "react-dom": "^19.0.0",
  vite: readVersion("vite"),
  webpack: readVersion("webpack"),
  "webpack-cli": readVersion("webpack-cli"),
  typescript: readVersion("typescript"),
  "@types/react": readVersion("@types/react"),
};
let tmp, tarball, server, token, browser;

function readVersion(name) {
  try {
    return "^" + JSON.parse(readFileSync(new URL(`../../node_modules/${name}/package.json`, import.meta.url), "utf8")).version;
  } catch {
    return "latest";
  }
}

before(async () => {
  requirePkg();
  tmp = tempDir("record-sync-packaging-");
  await run(NPM, ["pack", PKG, "--pack-destination", tmp.dir, "--silent"], { cwd: tmp.dir });
  tarball = join(tmp.dir, readdirSync(tmp.dir).find((f) => f.endsWith(".tgz")));
  server = await startDevServer();
  token = devToken(DEMO_USER);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.close();
  tmp?.remove();
});

/** The app code both bundlers build: the provider, the hook, the monitor, one queued change on a click. */
function appSource({ jsx, id }) {
  const options = JSON.stringify({ transport: { url: server.restUrl, apiKey: ANON_KEY, mode: "rest" } });
  const body = `
const options = ${options};
options.transport.getAccessToken = () => ${JSON.stringify(token)};
export function Editor() {
  const { queueCriticalChange, syncStats } = useRecordSync();
  return h("div", null,
    h("button", { onClick: () => queueCriticalChange("training_models", ${JSON.stringify(id)}, "upsert", { id: ${JSON.stringify(id)}, name: "from " + ${JSON.stringify(id)}, last_changed: new Date().toISOString() }) }, "Queue"),
    h("p", { "data-testid": "stats" }, "synced " + syncStats.successfulSyncs + ", pending " + syncStats.pending),
    h("p", { "data-testid": "enum" }, "critical=" + SyncPriority.CRITICAL + " ready=" + isSupported));
}
const root = createRoot(document.getElementById("root"));
root.render(h(RecordSyncProvider, { options }, h(Editor), h(SyncMonitor, { defaultOpen: true })));
`;
  return `import ${jsx ? "React, " : ""}{ createElement as h } from "react";
import { createRoot } from "react-dom/client";
import { SyncPriority, isSupported } from "record-sync";
import { RecordSyncProvider, useRecordSync, SyncMonitor } from "record-sync/react";
${body}`;
}

async function install(dir, deps) {
  writeFileSync(
    join(dir, "package.json"),
    JSON.stringify({ name: "fresh-app", private: true, version: "0.0.0", type: "module", dependencies: { "record-sync": `file:${tarball}`, ...deps } }, null, 2),
  );
  await run(NPM, ["install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: dir });
}

/** Loads the app, clicks "Queue", and waits for the row on the server. */
async function loadAndSync(url, id) {
  const context = await browser.newContext();
  const page = await newPage(context);
  try {
    await page.goto(url);
    await page.getByRole("button", { name: "Queue" }).waitFor({ timeout: 30_000 });
    assert.equal(await page.getByTestId("enum").textContent(), "critical=0 ready=true");
    await page.getByRole("button", { name: "Queue" }).click();
    await waitFor(async () => (await page.getByTestId("stats").textContent()) === "synced 1, pending 0", 20_000, () => page.log.join("\n"));
    const serverRows = await rows(server, "training_models", token, `id=eq.${encodeURIComponent(id)}`);
    assert.equal(serverRows.length, 1, `the change reached the server: ${JSON.stringify(serverRows)}`);
    assert.equal(serverRows[0].name, `from ${id}`);
    assert.ok(await page.getByRole("region", { name: "Sync monitor" }).isVisible());
    assert.deepEqual(page.log.filter((l) => l.startsWith("[pageerror]")), []);
  } finally {
    await context.close();
  }
}

describe("the packed package", () => {
  test("the tarball holds the entries, the wasm, the types and the server's SQL, and no sources", async () => {
    const list = await run("tar", ["-tzf", tarball]);
    for (const f of ["package/package.json", "package/index.js", "package/index.d.ts", "package/record_sync_bg.wasm", "package/record_sync.js", "package/record_sync.d.ts", "package/react/index.js", "package/react/index.d.ts", "package/react/SyncMonitor.js", "package/sql/record_sync.sql", "package/sql/record_sync_feed.sql", "package/sql/README.md"]) {
      assert.ok(list.includes(f), `${f} in the tarball`);
    }
    assert.ok(!/\.tsx?\n/.test(list.replace(/\.d\.ts\n/g, "\n")), "no TypeScript sources");
  });

  test("Node (server-side rendering) imports both entries without a browser", async () => {
    const dir = join(tmp.dir, "ssr");
    mkdirSync(dir);
    await install(dir, { react: VERSIONS.react, "react-dom": VERSIONS["react-dom"] });
    const out = await run(process.execPath, [
      "--input-type=module",
      "-e",
      `const m = await import("record-sync"); const r = await import("record-sync/react");
       const React = await import("react"); const { renderToString } = await import("react-dom/server");
       const html = renderToString(React.createElement(r.RecordSyncProvider, { options: { transport: { url: "http://127.0.0.1:9/rest/v1", apiKey: "k" } } }, React.createElement(r.SyncMonitor)));
       console.log(typeof m.RecordSync, m.isSupported, typeof r.useRecordSync, html.includes("Sync monitor"));`,
    ], { cwd: dir });
    assert.equal(out.trim(), "function false function true");
  });

  test("the package README's quick start type-checks against the installed package (tsc --strict)", async () => {
    const dir = join(tmp.dir, "typed-app");
    mkdirSync(dir);
    await install(dir, { react: VERSIONS.react, typescript: VERSIONS.typescript, "@types/react": VERSIONS["@types/react"] });
    const readme = readFileSync(join(dir, "node_modules/record-sync/README.md"), "utf8");
    const example = readme.match(/```tsx\n([\s\S]*?)```/)?.[1];
    assert.ok(example, "the README has a tsx example");
    // What the example takes from the app around it.
    const app = `declare const SUPABASE_URL: string;
declare const SUPABASE_ANON_KEY: string;
declare const supabase: { auth: { getSession(): Promise<{ data: { session: { access_token: string } | null } }> } };
declare function App(): null;
`;
    writeFileSync(join(dir, "quick-start.tsx"), app + example);
    writeFileSync(
      join(dir, "tsconfig.json"),
      JSON.stringify({ compilerOptions: { strict: true, noEmit: true, jsx: "react-jsx", module: "esnext", moduleResolution: "bundler", target: "es2022", lib: ["es2022", "dom"] }, files: ["quick-start.tsx"] }),
    );
    await run(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "."], { cwd: dir });
  });

  test("a fresh Vite React app (no plugins, no config): vite build, loaded in Chromium, syncs a change", async () => {
    const dir = join(tmp.dir, "vite-app");
    mkdirSync(join(dir, "src"), { recursive: true });
    await install(dir, { react: VERSIONS.react, "react-dom": VERSIONS["react-dom"], vite: VERSIONS.vite });
    writeFileSync(join(dir, "index.html"), `<!doctype html><html><head><meta charset="utf-8"><title>vite app</title></head><body><div id="root"></div><script type="module" src="/src/main.jsx"></script></body></html>`);
    writeFileSync(join(dir, "src/main.jsx"), appSource({ jsx: true, id: "pkg-vite-build" }));
    await run(process.execPath, ["node_modules/vite/bin/vite.js", "build", "--logLevel", "warn"], { cwd: dir });
    const assets = readdirSync(join(dir, "dist/assets"));
    assert.ok(assets.some((f) => f.endsWith(".wasm")), `vite emitted the wasm as an asset: ${assets}`);
    const site = await serveStatic(join(dir, "dist"));
    try {
      await loadAndSync(site.url, "pkg-vite-build");
    } finally {
      await site.close();
    }

    // The Vite dev server too: it pre-bundles dependencies, which is where wasm packages usually break.
    writeFileSync(join(dir, "src/main.jsx"), appSource({ jsx: true, id: "pkg-vite-dev" }));
    const port = await freePort();
    const dev = spawn(process.execPath, ["node_modules/vite/bin/vite.js", "--port", String(port), "--strictPort", "--host", "127.0.0.1"], { cwd: dir, stdio: "ignore" });
    try {
      await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/`)).ok, 30_000);
      await loadAndSync(`http://127.0.0.1:${port}/`, "pkg-vite-dev");
    } finally {
      dev.kill("SIGTERM");
    }
  });

  test("a fresh webpack 5 app (no loaders, no plugins, no experiments): built, loaded in Chromium, syncs a change", async () => {
    const dir = join(tmp.dir, "webpack-app");
    mkdirSync(join(dir, "src"), { recursive: true });
    mkdirSync(join(dir, "dist"), { recursive: true });
    await install(dir, { react: VERSIONS.react, "react-dom": VERSIONS["react-dom"], webpack: VERSIONS.webpack, "webpack-cli": VERSIONS["webpack-cli"] });
    writeFileSync(join(dir, "src/index.js"), appSource({ jsx: false, id: "pkg-webpack" }));
    writeFileSync(
      join(dir, "webpack.config.js"),
      `export default { mode: "production", entry: "./src/index.js", output: { path: new URL("./dist", import.meta.url).pathname, filename: "main.js", clean: false } };\n`,
    );
    writeFileSync(join(dir, "dist/index.html"), `<!doctype html><html><head><meta charset="utf-8"><title>webpack app</title></head><body><div id="root"></div><script src="main.js"></script></body></html>`);
    await run(process.execPath, ["node_modules/webpack-cli/bin/cli.js", "--no-color"], { cwd: dir });
    const files = readdirSync(join(dir, "dist"));
    assert.ok(files.some((f) => f.endsWith(".wasm")), `webpack emitted the wasm as an asset: ${files}`);
    const site = await serveStatic(join(dir, "dist"));
    try {
      await loadAndSync(site.url, "pkg-webpack");
    } finally {
      await site.close();
    }
  });
});
