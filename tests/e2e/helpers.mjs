// Shared by the end-to-end, React-binding and packaging tests: Chromium through playwright-core, a static file
// server, the dev server, and small HTTP helpers. Everything listens on 127.0.0.1 only.
import { spawn, execFileSync } from "node:child_process";
import { createServer } from "node:http";
import { existsSync, readFileSync, statSync } from "node:fs";
import { extname, join, normalize, resolve, dirname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { seeded } from "../../www/server/faults.js";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const PKG = join(ROOT, "pkg");
export const DEMO_USER = "7f1c2a3e-0000-4000-8000-000000000001";
export const ANON_KEY = "dev-anon-key";
/** The dev server's admin endpoints (/__admin/*) want its service key. */
export const SERVICE_KEY = "dev-service-key";

export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
];

/** Chromium with a fresh profile (playwright's launch() always makes one in a temp dir). */
export async function launchBrowser() {
  const { chromium } = await import("playwright-core");
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
    headless: true,
    args: CHROMIUM_ARGS,
  });
}

/** A page that fails the test on uncaught errors and keeps the console for diagnostics. */
export async function newPage(context) {
  const page = await context.newPage();
  const log = [];
  page.on("console", (m) => log.push(`[${m.type()}] ${m.text()}`));
  page.on("pageerror", (e) => log.push(`[pageerror] ${e.message}`));
  page.log = log;
  return page;
}

export function requirePkg() {
  if (!existsSync(join(PKG, "package.json")) || !existsSync(join(PKG, "record_sync_bg.wasm"))) {
    throw new Error("pkg/ is not built: run `npm run build` (scripts/test-e2e.sh does)");
  }
}

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".wasm": "application/wasm",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".map": "application/json",
};

/** Serves a directory (index.html for `/` and unknown paths without an extension). */
export async function serveStatic(dir) {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
    let file = normalize(join(dir, path));
    if (!file.startsWith(normalize(dir))) {
      res.writeHead(403).end();
      return;
    }
    if (!existsSync(file) || statSync(file).isDirectory()) {
      const index = join(file, "index.html");
      if (existsSync(index)) file = index;
      else if (!extname(path)) file = join(dir, "index.html");
    }
    if (!existsSync(file)) {
      res.writeHead(404).end("not found");
      return;
    }
    res.writeHead(200, { "content-type": TYPES[extname(file)] || "application/octet-stream", "cache-control": "no-store" });
    res.end(readFileSync(file));
  });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  const { port } = server.address();
  return { url: `http://127.0.0.1:${port}`, port, close: () => new Promise((ok) => server.close(() => ok())) };
}

/** Whole numbers below `n`, drawn from the dev server's seeded generator: a seed makes the same choices every run. */
export function seededPick(seed) {
  const next = seeded(seed);
  return (n) => (next() * 2 ** 32) % n;
}

/**
 * The dev server (PGlite, or the PostgreSQL at `databaseUrl`), in this process when www/server exports startServer,
 * else as a child process (which reads DATABASE_URL itself). Returns { origin, restUrl, close() }.
 */
export async function startDevServer({ databaseUrl } = {}) {
  for (const candidate of ["www/server/app.js", "www/server/index.js", "www/server/server.js"]) {
    const file = join(ROOT, candidate);
    if (!existsSync(file)) continue;
    const mod = await import(pathToFileURL(file).href);
    if (typeof mod.startServer !== "function") continue;
    const server = await mod.startServer({ port: 0, host: "127.0.0.1", quiet: true, log: false, databaseUrl });
    const origin = new URL(server.url).origin;
    return { origin, restUrl: `${origin}/rest/v1`, close: () => server.close() };
  }
  if (!existsSync(join(ROOT, "www/server/cli.js"))) throw new Error("the dev server (www/server) is missing");
  const port = await freePort();
  const child = spawn(process.execPath, [join(ROOT, "www/server/cli.js"), "--port", String(port)], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const origin = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await fetch(`${origin}/__admin/stats`, { headers: { apikey: SERVICE_KEY } }).catch(() => null))?.ok, 60_000, () => out);
  return {
    origin,
    restUrl: `${origin}/rest/v1`,
    close: () =>
      new Promise((ok) => {
        child.once("exit", ok);
        child.kill("SIGTERM");
      }),
  };
}

export async function freePort() {
  const s = createServer();
  await new Promise((ok) => s.listen(0, "127.0.0.1", ok));
  const { port } = s.address();
  await new Promise((ok) => s.close(ok));
  return port;
}

export async function waitFor(check, timeoutMs = 30_000, describe = () => "") {
  const start = Date.now();
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      /* not yet */
    }
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms ${describe()}`);
    await new Promise((ok) => setTimeout(ok, 100));
  }
}

/** A dev JWT for a user, from the dev server's own script. */
export function devToken(user = DEMO_USER) {
  return execFileSync(process.execPath, [join(ROOT, "www/server/dev-token.js"), user], { cwd: ROOT, encoding: "utf8" }).trim();
}

export async function admin(server, path, body) {
  const res = await fetch(`${server.origin}/__admin/${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { "content-type": "application/json", apikey: SERVICE_KEY },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`admin ${path}: ${res.status} ${await res.text()}`);
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

/** Rows of a table as the demo user sees them (through RLS), ordered by id. */
export async function rows(server, table, token, query = "") {
  const res = await fetch(`${server.restUrl}/${table}?select=*&order=id${query ? "&" + query : ""}`, {
    headers: { apikey: ANON_KEY, authorization: `Bearer ${token}` },
  });
  if (!res.ok) throw new Error(`GET ${table}: ${res.status} ${await res.text()}`);
  return res.json();
}

export function tempDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Runs a command, resolving with its output; rejects with the output on a non-zero exit. */
export function run(cmd, args, options = {}) {
  return new Promise((ok, fail) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], ...options });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("error", fail);
    child.on("exit", (code) => (code === 0 ? ok(out) : fail(new Error(`${cmd} ${args.join(" ")} exited ${code}\n${out.slice(-4000)}`))));
  });
}

/** Builds the demo app (www/app) with its own Vite into `outDir`, against the pkg/ it links to. */
export function buildDemo(outDir) {
  return run(process.execPath, [join(ROOT, "www/app/node_modules/vite/bin/vite.js"), "build", "--logLevel", "warn"], {
    cwd: join(ROOT, "www/app"),
    env: { ...process.env, DEMO_OUT_DIR: outDir },
  });
}
