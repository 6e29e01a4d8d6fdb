// A static server for the benchmark pages, on a free loopback port: bench/pages/ at `/`, pkg/ at `/pkg/` (the
// package as an app loads it). Cross-origin isolated (COOP/COEP), so that performance.now() has its finest
// resolution in Chromium (5 us rather than 100 us).
import { createServer } from "node:http";
import { existsSync, readFileSync, statSync } from "node:fs";
import { extname, join, normalize } from "node:path";

const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8", ".json": "application/json", ".wasm": "application/wasm" };

export async function serveBenchSite(root, extra = {}) {
  const mounts = [["/pkg/", join(root, "pkg")], ...Object.entries(extra), ["/", join(root, "bench/pages")]];
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
    const [prefix, dir] = mounts.find(([p]) => path.startsWith(p));
    const file = normalize(join(dir, path.slice(prefix.length) || "index.html"));
    if (!file.startsWith(normalize(dir)) || !existsSync(file) || statSync(file).isDirectory()) {
      res.writeHead(404).end("not found");
      return;
    }
    res.writeHead(200, {
      "content-type": TYPES[extname(file)] ?? "application/octet-stream",
      "cache-control": "no-store",
      "cross-origin-opener-policy": "same-origin",
      "cross-origin-embedder-policy": "require-corp",
    });
    res.end(readFileSync(file));
  });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  const { port } = server.address();
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((ok) => server.close(() => ok())) };
}

/** Opens the benchmark page in `context` and waits until it says it is ready. `errors` collects the page's
 *  uncaught errors, which a section checks once it has measured. */
export async function openBenchPage(context, site) {
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`${site.url}/index.html`);
  await page.waitForFunction(() => window.benchReady === true, null, { timeout: 30_000 });
  return { page, errors };
}
