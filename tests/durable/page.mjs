// The page the durable-queue tests drive: the built package from pkg/, plus helpers to create instances with
// a switchable token, read and write IndexedDB directly, and record every request the page sends.
import { cpSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before } from "node:test";
import { ROOT, PKG, launchBrowser, requirePkg, serveStatic, startDevServer } from "../e2e/helpers.mjs";

const HTML = `<!doctype html><meta charset="utf-8"><title>durable queue</title>
<script type="module">
import * as rs from "/pkg/index.js";
const sent = [];
const realFetch = window.fetch.bind(window);
// Every request: which user's token it carried and its body, to check whose changes went with whose token.
window.fetch = (input, init) => {
  const headers = input instanceof Request ? input.headers : new Headers(init?.headers);
  const auth = headers.get("authorization") || "";
  let sub = null;
  try { sub = JSON.parse(atob(auth.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).sub; } catch {}
  const body = input instanceof Request ? input.clone().text() : Promise.resolve(String(init?.body ?? ""));
  body.then((b) => sent.push({ sub, url: input instanceof Request ? input.url : String(input), body: b }));
  return realFetch(input, init);
};
window.t = {
  rs, sent, token: null, sync: null,
  create(options) {
    const { mode, url, ...rest } = options;
    this.sync = new rs.RecordSync({
      transport: { url, apiKey: "dev-anon-key", mode, getAccessToken: () => this.token },
      ...rest,
    });
    return this.sync;
  },
  // Up to 10 s: a loaded machine took longer than 2 to open IndexedDB and take the lock.
  async durable(sync = this.sync) {
    for (let i = 0; i < 1000 && !sync.stats().durable; i++) await new Promise((r) => setTimeout(r, 10));
    return sync.stats().durable;
  },
  idb(fn) {
    return new Promise((resolve, reject) => {
      const open = indexedDB.open("record-sync", 1);
      open.onupgradeneeded = () => open.result.createObjectStore("queue");
      open.onerror = () => reject(open.error);
      open.onsuccess = () => {
        const db = open.result;
        const tx = db.transaction("queue", "readwrite");
        const result = fn(tx.objectStore("queue"));
        tx.oncomplete = () => { db.close(); resolve(result.result); };
        tx.onerror = () => reject(tx.error);
      };
    });
  },
};
window.ready = true;
</script>`;

/** Serves the page and a copy of pkg/ from build/durable-test; resolves to { url, close }. */
export async function servePage() {
  requirePkg();
  const dir = join(ROOT, "build/durable-test");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  cpSync(PKG, join(dir, "pkg"), { recursive: true });
  writeFileSync(join(dir, "index.html"), HTML);
  return serveStatic(dir);
}

/** For a test file: the dev server (on PGlite, or with DATABASE_URL set on that PostgreSQL), the page and a
 *  Chromium, started before its tests and stopped after them; `ready({ server, site, browser })` gets them. */
export function withServerAndBrowser(ready) {
  const started = {};
  before(async () => {
    started.server = await startDevServer({ databaseUrl: process.env.DATABASE_URL });
    started.site = await servePage();
    started.browser = await launchBrowser();
    ready(started);
  });
  after(async () => {
    await started.browser?.close();
    await started.site?.close();
    await started.server?.close();
  });
}

export async function openPage(context, url) {
  const page = await context.newPage();
  page.log = [];
  page.on("console", (m) => page.log.push(`[${m.type()}] ${m.text()}`));
  page.on("pageerror", (e) => page.log.push(`[pageerror] ${e.message}`));
  await page.goto(url);
  await page.waitForFunction(() => window.ready === true);
  return page;
}

/** Crashes the page's renderer with the DevTools protocol's `Page.crash` (no pagehide, no unload) and resolves
 *  once Playwright has seen the crash. */
export async function crashPage(context, page) {
  const cdp = await context.newCDPSession(page);
  const gone = new Promise((ok) => page.once("crash", ok));
  cdp.send("Page.crash").catch(() => {});
  await gone;
}

/** Resolves once the origin holds no Web Lock whose name starts with `prefix`: a closed page's locks are let go
 *  some time after it (on a loaded machine, more than half a second). */
export function locksReleased(page, prefix) {
  const free = async (prefix) => (await navigator.locks.query()).held.every((lock) => !lock.name.startsWith(prefix));
  return page.waitForFunction(free, prefix, { timeout: 10000, polling: 50 });
}
