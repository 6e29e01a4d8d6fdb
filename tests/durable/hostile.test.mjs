// The app's values at their worst, through the built package in real Chromium: revoked Proxies, getters, traps
// and iterators that throw, errors whose own getters throw, calls after free(). A throw that passes through the
// wasm's frames skips Rust's cleanup and leaks the module's stack, so each case is repeated past the point where
// that used to fail the module for the whole page (about 2,700 calls, or 228 constructions), and then a change
// must still sync. The transports are custom and record what they were sent: these cases need no server.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { PKG, launchBrowser } from "../e2e/helpers.mjs";
import { servePage, openPage } from "./page.mjs";

let site, browser;

/** The methods of RecordSync whose declared type returns a promise, from the package's own .d.ts. */
function asyncMethods() {
  const types = readFileSync(join(PKG, "record_sync.d.ts"), "utf8");
  const body = types.slice(types.indexOf("export class RecordSync"));
  return [...body.slice(0, body.indexOf("\n}")).matchAll(/^ {4}(\w+)\([^)]*\): Promise</gm)].map((m) => m[1]);
}

before(async () => {
  site = await servePage();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await site?.close();
});

/** Runs `body` in a fresh page, with `rs` (the package), `sent` (the ids a custom transport was sent), `transport()`
 *  (such a transport) and `healthy()` (a fresh instance syncs a change: the module still works). */
async function inPage(body) {
  const context = await browser.newContext();
  try {
    const page = await openPage(context, site.url);
    const result = await page.evaluate(`(async () => {
      const rs = window.t.rs;
      const sent = [];
      const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
      const transport = () => ({ send: async (batch) => {
        sent.push(...batch.changes.map((c) => c.id));
        return batch.changes.map((c) => ({ seq: c.seq, status: "applied" }));
      } });
      const revoked = () => { const r = Proxy.revocable({}, {}); r.revoke(); return r.proxy; };
      const thrown = (fn) => { try { fn(); return null; } catch (e) { return { type: e.constructor.name, message: e.message }; } };
      const healthy = async () => {
        const sync = new rs.RecordSync({ transport: transport(), storage: null });
        const id = "healthy-" + Math.random().toString(36).slice(2);
        sync.queueCriticalChange("t", id, "upsert", { id });
        const summary = await sync.forceSyncAll();
        sync.destroy();
        return summary.confirmed === 1 && sent.includes(id);
      };
      ${body}
    })()`);
    assert.deepEqual(page.log.filter((l) => /panicked|unreachable|RuntimeError|pageerror/.test(l)), []);
    return result;
  } finally {
    await context.close();
  }
}

describe("the app's hostile values", () => {
  test("a revoked Proxy as any argument is a TypeError naming it, 6,000 times over, and the module still works", async () => {
    const result = await inPage(`
      const sync = new rs.RecordSync({ transport: transport(), storage: null });
      const p = revoked();
      const errors = {
        options: thrown(() => new rs.RecordSync(p)),
        table: thrown(() => sync.queueChange(p, "a", "upsert", { id: "a" })),
        id: thrown(() => sync.queueChange("t", p, "upsert", {})),
        op: thrown(() => sync.queueChange("t", "a", p, {})),
        data: thrown(() => sync.queueChange("t", "a", "upsert", p)),
        priority: thrown(() => sync.queueChange("t", "a", "upsert", { id: "a" }, p)),
        token: thrown(() => sync.setAccessToken(p)),
        subscribe: thrown(() => sync.subscribe(p)),
        seq: thrown(() => sync.retryFailed(p)),
      };
      let same = 0;
      for (let i = 0; i < 3000; i++) {
        if (thrown(() => sync.setAccessToken(p))?.message === errors.token.message) same++;
        if (thrown(() => sync.queueChange(p, "a", "upsert", {}))?.message === errors.table.message) same++;
      }
      sync.queueCriticalChange("t", "after", "upsert", { id: "after" });
      const summary = await sync.forceSyncAll();
      return { errors, same, confirmed: summary.confirmed, sent, healthy: await healthy() };
    `);
    const named = { options: "options", table: "table", id: "id", op: "op", data: "data", priority: "priority", token: "token", subscribe: "listener", seq: "seq" };
    for (const [argument, error] of Object.entries(result.errors)) {
      assert.equal(error?.type, "TypeError", `${argument}: ${JSON.stringify(error)}`);
      assert.match(error.message, /revoked/i, argument);
      assert.ok(error.message.includes(`${named[argument]} must`), `${argument}: ${error.message}`);
    }
    assert.match(result.errors.table.message, /^RecordSync\.queueChange: table must be a string, not a revoked Proxy$/);
    assert.match(result.errors.options.message, /options must be an object, not a revoked Proxy/);
    assert.equal(result.same, 6000, "every call gave the same named TypeError");
    assert.equal(result.confirmed, 1);
    assert.deepEqual(result.sent.slice(0, 1), ["after"]);
    assert.equal(result.healthy, true);
  });

  test("options a getter, trap or iterator fails to read are a TypeError naming them, 500 times over", async () => {
    const result = await inPage(`
      class Options {
        constructor() { this.transport = transport(); this.storage = null; }
        get maxRetries() { throw new Error("no retries for you"); }
      }
      class Transport {
        async send() { return []; }
        get timeoutMs() { throw new RangeError("late"); }
      }
      const throwingIterator = ["plans"];
      throwingIterator[Symbol.iterator] = () => { throw new Error("iterator"); };
      const parents = new Proxy(["plans"], { get() { throw new Error("trap get"); } });
      const cases = {
        classOptions: () => new rs.RecordSync(new Options()),
        classTransport: () => new rs.RecordSync({ transport: new Transport(), storage: null }),
        parents: () => new rs.RecordSync({ transport: transport(), storage: null, tables: { weeks: { parents } } }),
        pullTables: () => new rs.RecordSync({
          transport: { url: "/rest/v1", apiKey: "k" }, storage: null, pull: { tables: throwingIterator },
        }),
        storageLoad: () => new rs.RecordSync({
          transport: transport(),
          storage: { get load() { throw new Error("no load"); }, append() {}, clear() {} },
        }),
        user: () => new rs.RecordSync({ transport: transport(), storage: null, get user() { throw new Error("who"); } }),
      };
      const errors = Object.fromEntries(Object.entries(cases).map(([name, make]) => [name, thrown(make)]));
      let same = 0;
      for (let i = 0; i < 500; i++) if (thrown(cases.parents)?.message === errors.parents.message) same++;
      return { errors, same, healthy: await healthy() };
    `);
    const expected = {
      classOptions: "RecordSync: options.maxRetries could not be read: no retries for you",
      classTransport: "RecordSync: options.transport.timeoutMs could not be read: RangeError: late",
      parents: "RecordSync: options.tables.weeks.parents could not be read: trap get",
      pullTables: "RecordSync: options.pull.tables could not be read: iterator",
      storageLoad: "RecordSync: options.storage.load could not be read: no load",
      user: "RecordSync: options.user could not be read: who",
    };
    for (const [name, message] of Object.entries(expected)) {
      assert.deepEqual(result.errors[name], { type: "TypeError", message }, name);
    }
    assert.equal(result.same, 500);
    assert.equal(result.healthy, true);
  });

  test("a send that rejects with an Error whose getters throw, or with a revoked Proxy, is a failure retried, not a wedged batch", async () => {
    const result = await inPage(`
      let calls = 0;
      const sync = new rs.RecordSync({ storage: null, transport: { timeoutMs: 2000, async send(batch) {
        calls++;
        if (calls === 1) {
          const e = new Error("x");
          Object.defineProperty(e, "message", { get() { throw new Error("message getter"); } });
          Object.defineProperty(e, "name", { get() { throw new Error("name getter"); } });
          throw e;
        }
        if (calls === 2) throw revoked();
        sent.push(...batch.changes.map((c) => c.id));
        return batch.changes.map((c) => ({ seq: c.seq, status: "applied" }));
      } } });
      const errors = [];
      sync.subscribe((stats) => { if (stats.lastError && !errors.includes(stats.lastError)) errors.push(stats.lastError); });
      sync.queueCriticalChange("t", "a", "upsert", { id: "a" });
      const summary = await Promise.race([sync.forceSyncAll(), sleep(20000).then(() => "not settled")]);
      const stats = sync.stats();
      return { summary, calls, errors, inFlight: stats.inFlight, pending: stats.pending, sent };
    `);
    assert.deepEqual(result.summary, { confirmed: 1, conflicts: 0, failed: [] });
    assert.equal(result.calls, 3);
    assert.deepEqual(result.sent, ["a"]);
    assert.equal(result.inFlight, 0);
    assert.equal(result.pending, 0);
    assert.ok(result.errors.some((e) => e.includes("transport.send rejected: an error without a message")), result.errors.join("\n"));
    assert.ok(result.errors.some((e) => e.includes("transport.send rejected: a revoked Proxy")), result.errors.join("\n"));
  });

  test("a store whose load resolves to an array that throws when read: lastError says so, and changes sync from memory", async () => {
    const result = await inPage(`
      const records = [{ m: "x", r: [] }];
      Object.defineProperty(records, 0, { get() { throw new Error("element getter"); } });
      const sync = new rs.RecordSync({ transport: transport(), storage: { load: async () => records, append() {}, clear() {} } });
      sync.queueCriticalChange("t", "a", "upsert", { id: "a" });
      const summary = await Promise.race([sync.forceSyncAll(), sleep(15000).then(() => "not settled")]);
      const stats = sync.stats();
      return { summary, restoring: stats.restoring, durable: stats.durable, lastError: stats.lastError, sent };
    `);
    assert.deepEqual(result.summary, { confirmed: 1, conflicts: 0, failed: [] });
    assert.equal(result.restoring, false);
    assert.equal(result.durable, false);
    assert.match(result.lastError, /could not read the stored queue \(element getter\)/);
    assert.deepEqual(result.sent, ["a"]);
  });

  test("a store whose append throws a revoked Proxy does not leave the instance busy, nor the queue held from the next one", async () => {
    const result = await inPage(`
      let appends = 0;
      const store = () => ({ load: async () => [], append() { appends++; if (appends === 1) throw revoked(); }, clear() {} });
      const sync = new rs.RecordSync({ transport: transport(), storage: store() });
      for (let i = 0; i < 100 && !sync.stats().durable; i++) await sleep(10);
      sync.queueCriticalChange("t", "a", "upsert", { id: "a" });
      await sleep(300);
      const later = thrown(() => sync.queueCriticalChange("t", "b", "upsert", { id: "b" }));
      const summary = await Promise.race([sync.forceSyncAll(), sleep(15000).then(() => "not settled")]);
      sync.destroy();
      const next = new rs.RecordSync({ transport: transport(), storage: store() });
      for (let i = 0; i < 200 && !next.stats().durable; i++) await sleep(10);
      next.queueCriticalChange("t", "c", "upsert", { id: "c" });
      const nextSummary = await Promise.race([next.forceSyncAll(), sleep(15000).then(() => "not settled")]);
      return { later, summary, nextDurable: next.stats().durable, nextError: next.stats().lastError, nextSummary, sent };
    `);
    assert.equal(result.later, null, "a later call works");
    assert.deepEqual(result.summary.failed, [], JSON.stringify(result.summary));
    assert.equal(result.nextDurable, true);
    assert.equal(result.nextError, null);
    assert.equal(result.nextSummary.confirmed, 1);
    assert.deepEqual([...result.sent].sort(), ["a", "b", "c"]);
  });

  test("after free() or Symbol.dispose, calls get the destroyed instance's error, 60,000 times over", async () => {
    const result = await inPage(`
      const freed = new rs.RecordSync({ transport: transport(), storage: null });
      freed.queueLowChange("t", "kept", "upsert", { id: "kept" });
      freed.free();
      const disposed = new rs.RecordSync({ transport: transport(), storage: null });
      disposed[Symbol.dispose]();
      const errors = {
        destroyAgain: thrown(() => freed.destroy()),
        queue: thrown(() => freed.queueChange("t", "a", "upsert", { id: "a" })),
        stats: thrown(() => freed.stats()),
        disposedQueue: thrown(() => disposed.queueChange("t", "a", "upsert", { id: "a" })),
      };
      const rejected = await freed.forceSyncAll().then(() => null, (e) => e.message);
      let same = 0;
      for (let i = 0; i < 60000; i++) if (thrown(() => freed.stats())?.message === errors.stats?.message) same++;
      return { errors, rejected, same, sent, healthy: await healthy() };
    `);
    assert.equal(result.errors.destroyAgain, null, "a second destroy() does nothing");
    for (const name of ["queue", "stats", "disposedQueue"]) {
      assert.deepEqual(result.errors[name], { type: "Error", message: "RecordSync: this instance has been destroyed" }, name);
    }
    assert.equal(result.rejected, "RecordSync: this instance has been destroyed");
    assert.equal(result.same, 60000);
    assert.ok(!result.sent.includes("kept"), "a freed instance sends nothing");
    assert.equal(result.healthy, true);
  });

  test("an Error whose message is a Symbol, thrown by a row's getter or a stored record's, is still a named error", async () => {
    const result = await inPage(`
      const symbolError = () => Object.assign(new Error(), { message: Symbol("m") });
      const sync = new rs.RecordSync({ transport: transport(), storage: null });
      let same = 0, first = null;
      for (let i = 0; i < 4000; i++) {
        const error = thrown(() => sync.queueChange("t", "a", "upsert", { get x() { throw symbolError(); } }));
        first ??= error;
        if (error?.type === "TypeError" && error.message === first.message) same++;
      }
      const stored = async (record) => {
        const s = new rs.RecordSync({ transport: transport(), storage: { load: async () => [record], append() {}, clear() {} } });
        for (let i = 0; i < 100 && s.stats().restoring; i++) await sleep(10);
        const { restoring, lastError } = s.stats();
        s.destroy();
        return { restoring, lastError };
      };
      return {
        first, same,
        symbolRecord: await stored({ get m() { throw symbolError(); } }),
        plainRecord: await stored({ get m() { throw new Error("plain"); } }),
        healthy: await healthy(),
      };
    `);
    assert.equal(result.first.type, "TypeError");
    assert.match(result.first.message, /^RecordSync\.queueChange: data must be JSON-serializable: Symbol\(m\)$/);
    assert.equal(result.same, 4000);
    assert.deepEqual(result.symbolRecord.restoring, false);
    assert.match(result.symbolRecord.lastError, /stored record 1 of 1: could not be read \(Symbol\(m\)\)/);
    assert.match(result.plainRecord.lastError, /stored record 1 of 1: could not be read \(plain\)/);
    assert.equal(result.healthy, true);
  });

  test("a console.error that throws, with a listener that throws, over 1,200 ticks", async () => {
    const result = await inPage(`
      const sync = new rs.RecordSync({ transport: transport(), storage: null });
      sync.subscribe(() => { throw new Error("listener"); });
      const original = console.error;
      let calls = 0;
      console.error = () => { calls++; throw new Error("console.error throws"); };
      let broke = null;
      try {
        for (let i = 0; i < 1200 && broke === null; i++) {
          broke = thrown(() => sync.queueLowChange("t", "c" + (i % 50), "upsert", { id: "c" + (i % 50), v: i }));
          await new Promise((r) => setTimeout(r, 0));
        }
      } finally {
        console.error = original;
      }
      return { broke, calls, healthy: await healthy() };
    `);
    assert.equal(result.broke, null);
    assert.ok(result.calls >= 1000, `listener errors reported: ${result.calls}`);
    assert.equal(result.healthy, true);
  });

  test("a method called on something other than its instance is a TypeError, 30,000 times over", async () => {
    const result = await inPage(`
      const sync = new rs.RecordSync({ transport: transport(), storage: null });
      const detached = sync.stats;
      const errors = {
        detached: thrown(() => detached()),
        other: thrown(() => sync.queueChange.call({}, "t", "a", "upsert", { id: "a" })),
        prototype: thrown(() => rs.RecordSync.prototype.stats()),
      };
      // Those that return a promise reject instead, as their other errors do.
      const rejected = {};
      for (const name of ${JSON.stringify(asyncMethods())}) {
        let returned;
        const error = thrown(() => { returned = rs.RecordSync.prototype[name].call({}); });
        rejected[name] = error ?? await returned.then(() => "resolved", (e) => ({ type: e.constructor.name, message: e.message }));
      }
      let same = 0;
      for (let i = 0; i < 30000; i++) if (thrown(() => sync.stats.call({}))?.type === "TypeError") same++;
      return { errors, rejected, same, stats: typeof sync.stats().pending, healthy: await healthy() };
    `);
    assert.deepEqual(result.errors.detached, {
      type: "TypeError",
      message: "RecordSync.stats: called on undefined; pass sync.stats.bind(sync) or an arrow function",
    });
    assert.match(result.errors.other.message, /^RecordSync\.queueChange: called on something other than a RecordSync/);
    assert.match(result.errors.prototype.message, /^RecordSync\.stats: called on/);
    assert.deepEqual(Object.keys(result.rejected).sort(), ["clearPersisted", "forceSyncAll", "pull"]);
    for (const [name, error] of Object.entries(result.rejected)) {
      assert.equal(error.type, "TypeError", `${name}: ${JSON.stringify(error)}`);
      assert.match(error.message, new RegExp(`^RecordSync\\.${name}: called on something other than a RecordSync`));
    }
    assert.equal(result.same, 30000);
    assert.equal(result.stats, "number");
    assert.equal(result.healthy, true);
  });

  test("a send whose promise has a throwing then of its own is a rejection, not a timeout", async () => {
    const result = await inPage(`
      let calls = 0;
      const sync = new rs.RecordSync({ storage: null, transport: { timeoutMs: 60000, send(batch) {
        calls++;
        if (calls === 1) {
          const p = Promise.resolve([]);
          p.then = () => { throw new Error("then boom"); };
          return p;
        }
        sent.push(...batch.changes.map((c) => c.id));
        return Promise.resolve(batch.changes.map((c) => ({ seq: c.seq, status: "applied" })));
      } } });
      const errors = [];
      sync.subscribe((stats) => { if (stats.lastError && !errors.includes(stats.lastError)) errors.push(stats.lastError); });
      sync.queueCriticalChange("t", "a", "upsert", { id: "a" });
      const summary = await Promise.race([sync.forceSyncAll(), sleep(20000).then(() => "not settled")]);
      return { summary, errors, sent };
    `);
    assert.deepEqual(result.summary, { confirmed: 1, conflicts: 0, failed: [] });
    assert.ok(result.errors.some((e) => e.includes("transport.send rejected: then boom")), result.errors.join("\n"));
    assert.deepEqual(result.sent, ["a"]);
  });

  test("an API key fetch would refuse, and a table name with a lone surrogate, are TypeErrors: nothing merges, nothing is retried forever", async () => {
    const result = await inPage(`
      const keys = ["anon-key\\n", "anon\\u0000key", "ключ", "a key"];
      const apiKeys = keys.map((apiKey) => thrown(() => new rs.RecordSync({ transport: { url: "/rest/v1", apiKey }, storage: null })));
      const sync = new rs.RecordSync({ transport: transport(), storage: null });
      const tables = ["a\\uD800", "a\\uD801", "\\uDC00"].map((table) => thrown(() => sync.queueChange(table, "1", "upsert", { id: "1" })));
      const user = thrown(() => new rs.RecordSync({ transport: transport(), user: "user\\uD800" }));
      return { apiKeys, tables, user, pending: sync.stats().pending };
    `);
    for (const error of result.apiKeys) {
      assert.equal(error?.type, "TypeError");
      assert.match(error.message, /^RecordSync: options\.transport\.apiKey must be the project's API key/);
    }
    for (const error of result.tables) {
      assert.equal(error?.type, "TypeError");
      assert.match(error.message, /^RecordSync\.queueChange: table must be well-formed text/);
    }
    assert.equal(result.user?.type, "TypeError");
    assert.match(result.user.message, /^RecordSync: options\.user must be/);
    assert.equal(result.pending, 0);
  });
});
