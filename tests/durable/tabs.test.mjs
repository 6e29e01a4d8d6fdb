// Live tabs of one user share one queue (src/web/tabs.rs), in real Chromium with real IndexedDB against the dev
// server: two pages of one browser context. One tab sends; the other's changes go through the IndexedDB inbox;
// both show the shared queue; the sending tab closes and the other finishes; a follower's change survives its
// reload and its crash.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { admin, launchBrowser, startDevServer, devToken, rows } from "../e2e/helpers.mjs";
import { crashPage, openPage, servePage } from "./page.mjs";

const USER = "cccccccc-0000-4000-8000-00000000000c";
let server, site, browser, token;

before(async () => {
  server = await startDevServer();
  site = await servePage();
  browser = await launchBrowser();
  token = devToken(USER);
});

after(async () => {
  await browser?.close();
  await site?.close();
  await server?.close();
});

async function create(page, options = {}) {
  return page.evaluate(
    async ({ url, user, token, options }) => {
      window.t.token = token;
      const sync = window.t.create({ url, mode: "rpc", user, ...options });
      await window.t.durable(sync);
      return { durable: sync.stats().durable, leader: sync.stats().leader };
    },
    { url: server.restUrl, user: USER, token, options },
  );
}

/** Records when each request to the dev server starts and ends in `page`. */
function recordRequests(page) {
  const log = [];
  const open = new Map();
  page.on("request", (r) => {
    if (!r.url().startsWith(server.restUrl)) return;
    const entry = { start: Date.now(), end: Infinity };
    open.set(r, entry);
    log.push(entry);
  });
  const end = (r) => {
    const entry = open.get(r);
    if (entry) entry.end = Date.now();
  };
  page.on("requestfinished", end);
  page.on("requestfailed", end);
  return log;
}

const seeded = (prefix, n) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

for (const mode of ["rpc", "rest"]) {
  describe(`tabs share one queue, ${mode} mode`, () => {
    test("two tabs, 500 interleaved changes each over 50 shared records; then the sending tab closes midway", async () => {
      const context = await browser.newContext();
      try {
        const options = { mode, syncIntervals: { 1: 20 }, batchSize: 25 };
        const a = await openPage(context, site.url);
        const b = await openPage(context, site.url);
        assert.deepEqual(await create(a, options), { durable: true, leader: true });
        assert.deepEqual(await create(b, options), { durable: true, leader: false }, "the second tab follows");
        const prefix = `tabs-${mode}-${Date.now()}-`;
        const ids = seeded(prefix, 50);
        // Each tab writes its own column of the shared records, so the model does not depend on how the two
        // tabs' changes interleave, only on each tab's own order.
        await a.evaluate((ids) => {
          for (const id of ids) window.t.sync.queueHighChange("user_preferences", id, "upsert", { id, theme: "seed", settings: {} });
          return window.t.sync.forceSyncAll();
        }, ids);
        const logA = recordRequests(a);
        const logB = recordRequests(b);
        const model = new Map(ids.map((id) => [id, { theme: "seed", b: null }]));
        let seed = 7;
        const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648);
        const round = async (page, tab, n) => {
          const changes = Array.from({ length: 10 }, (_, k) => ({ id: ids[next() % 50], v: n * 10 + k }));
          await page.evaluate(
            ({ changes, tab }) => {
              for (const { id, v } of changes) {
                const data = tab === "a" ? { theme: `a${v}` } : { settings: { b: v } };
                window.t.sync.queueHighChange("user_preferences", id, "update", data);
              }
            },
            { changes, tab },
          );
          for (const { id, v } of changes) {
            if (tab === "a") model.get(id).theme = `a${v}`;
            else model.get(id).b = v;
          }
        };
        for (let n = 0; n < 25; n++) {
          await round(a, "a", n);
          await round(b, "b", n);
        }
        // Both tabs show the shared queue (and the follower's figures are the leader's).
        await b.waitForFunction(() => window.t.sync.stats().totalChanges > 0, null, { timeout: 5000 });
        const closedAt = Date.now();
        await a.close();
        const closeDone = Date.now();
        for (let n = 25; n < 50; n++) await round(b, "b", n);
        await b.waitForFunction(() => window.t.sync.stats().leader === true, null, { timeout: 5000 });
        const summary = await b.evaluate(() => window.t.sync.forceSyncAll().then((s) => ({ failed: s.failed.length })));
        assert.equal(summary.failed, 0);

        const stored = await rows(server, "user_preferences", token, `id=like.${prefix}*`);
        assert.equal(stored.length, 50);
        for (const row of stored) {
          const want = model.get(row.id);
          assert.equal(row.theme, want.theme, `${row.id}: theme`);
          assert.equal(row.settings?.b ?? null, want.b, `${row.id}: settings.b`);
        }
        // One sender at a time: the follower sent nothing while the leader was open, the leader nothing after.
        assert.ok(logA.length > 0, "the leader sent while both were open");
        assert.ok(logB.length > 0, "the follower sent after it took over");
        for (const r of logB) assert.ok(r.start >= closedAt, "the follower sent nothing while the leader was open");
        // (While it closes, the leader sends what is due soon with keepalive, and the follower takes over only
        // once the closing tab's lock is gone.)
        for (const r of logA) assert.ok(r.start <= closeDone, "the closed tab sent nothing after");
      } finally {
        await context.close();
      }
    });
  });
}

describe("tabs share one queue", () => {
  test("a follower's stats, pendingChanges and failedChanges are the shared queue's", async () => {
    const context = await browser.newContext();
    try {
      const a = await openPage(context, site.url);
      const b = await openPage(context, site.url);
      await create(a);
      assert.deepEqual(await create(b), { durable: true, leader: false });
      const prefix = `mirror-${Date.now()}-`;
      // What a SyncMonitor in the follower hears: its subscribe() listeners.
      await b.evaluate(() => {
        window.heard = [];
        window.t.sync.subscribe((s) => window.heard.push({ pending: s.pending, leader: s.leader }));
      });
      await a.evaluate((prefix) => {
        for (let i = 0; i < 30; i++) window.t.sync.queueLowChange("user_preferences", `${prefix}a${i}`, "upsert", { id: `${prefix}a${i}`, theme: "x" });
      }, prefix);
      await b.evaluate((prefix) => {
        for (let i = 0; i < 10; i++) window.t.sync.queueLowChange("user_preferences", `${prefix}b${i}`, "upsert", { id: `${prefix}b${i}`, theme: "y" });
        // The same record as the other tab's: merged into one pending write.
        window.t.sync.queueLowChange("user_preferences", `${prefix}a0`, "update", { theme: "from-b" });
      }, prefix);
      await b.waitForFunction(() => window.t.sync.stats().pending === 40, null, { timeout: 2000 });
      assert.deepEqual(await b.evaluate(() => window.heard.at(-1)), { pending: 40, leader: false }, "subscribers hear the shared queue");
      // A short queue's lists come with the stats: the follower's first read shows them.
      assert.equal(await b.evaluate((prefix) => window.t.sync.pendingChanges().filter((c) => c.id.startsWith(prefix)).length, prefix), 40);
      for (const page of [a, b]) {
        const seen = await page.evaluate((prefix) => {
          const s = window.t.sync.stats();
          const pending = window.t.sync.pendingChanges();
          return {
            pending: s.pending,
            low: s.pendingByPriority.low,
            ids: pending.map((c) => c.id).filter((id) => id.startsWith(prefix)).sort(),
            a0: pending.find((c) => c.id === `${prefix}a0`)?.data?.theme,
            failed: window.t.sync.failedChanges().length,
          };
        }, prefix);
        assert.equal(seen.pending, 40);
        assert.equal(seen.low, 40);
        assert.equal(seen.ids.length, 40);
        assert.equal(seen.a0, "from-b", "the follower's change merged with the leader's");
        assert.equal(seen.failed, 0);
      }
      // The follower's forceSyncAll() resolves once the leader has synced the shared queue.
      const summary = await b.evaluate(() => window.t.sync.forceSyncAll().then((s) => ({ confirmed: s.confirmed, failed: s.failed.length })));
      assert.equal(summary.failed, 0);
      assert.equal(summary.confirmed, 40);
      assert.equal(await b.evaluate(() => window.t.sync.stats().pending), 0);
      const stored = await rows(server, "user_preferences", token, `id=like.${prefix}*`);
      assert.equal(stored.length, 40);
      assert.equal(stored.find((r) => r.id === `${prefix}a0`).theme, "from-b");
    } finally {
      await context.close();
    }
  });

  test("a long queue's lists reach a follower once it reads them", async () => {
    const context = await browser.newContext();
    try {
      const a = await openPage(context, site.url);
      const b = await openPage(context, site.url);
      await create(a);
      assert.deepEqual(await create(b), { durable: true, leader: false });
      const prefix = `long-mirror-${Date.now()}-`;
      await a.evaluate((prefix) => {
        for (let i = 0; i < 300; i++) window.t.sync.queueLowChange("user_preferences", `${prefix}${i}`, "upsert", { id: `${prefix}${i}`, theme: "x" });
      }, prefix);
      await b.waitForFunction(() => window.t.sync.stats().pending === 300, null, { timeout: 2000 });
      // Asked for on the first read, then sent with the stats while the follower reads them.
      await b.waitForFunction((prefix) => window.t.sync.pendingChanges().filter((c) => c.id.startsWith(prefix)).length === 300, prefix, { timeout: 2000 });
      await a.evaluate(() => window.t.sync.clearPersisted());
    } finally {
      await context.close();
    }
  });

  // Two instances of one user in one page (two providers, say) share the queue as two tabs do: one leads, one
  // follows. The transport answers after 3 ms, so critical batches are confirmed one after the other while a
  // follower's request goes through the inbox and the channel.
  const twoInstances = (page, user, { followerReady }) =>
    page.evaluate(
      async ({ user, followerReady }) => {
        const sent = [];
        const transport = {
          send: async (batch) => {
            for (const c of batch.changes) sent.push(c.id);
            await new Promise((ok) => setTimeout(ok, 3));
            return batch.changes.map((c) => ({ seq: c.seq, status: "applied" }));
          },
        };
        const a = new window.t.rs.RecordSync({ user, batchSize: 20, transport });
        await window.t.durable(a);
        const b = new window.t.rs.RecordSync({ user, batchSize: 20, transport });
        const restoring = b.stats().restoring;
        if (followerReady) {
          await window.t.durable(b);
          await new Promise((ok) => setTimeout(ok, 200)); // the leader's published stats reach b
        }
        for (let i = 0; i < 100; i++) {
          a.queueCriticalChange("user_preferences", `a${i}`, "upsert", { id: `a${i}` });
          b.queueCriticalChange("user_preferences", `b${i}`, "upsert", { id: `b${i}` });
        }
        const late = (p) => Promise.race([p, new Promise((ok) => setTimeout(() => ok(null), 5000))]);
        const [sa, sb] = await Promise.all([late(a.forceSyncAll()), late(b.forceSyncAll())]);
        const out = { restoring, leader: [a.stats().leader, b.stats().leader], confirmed: [sa?.confirmed, sb?.confirmed], sent: sent.length, once: new Set(sent).size };
        await a.clearPersisted();
        b.destroy();
        return out;
      },
      { user, followerReady },
    );

  test("forceSyncAll() called while a second instance still restores resolves once the leader has synced its changes", async () => {
    const context = await browser.newContext();
    try {
      const page = await openPage(context, site.url);
      const r = await twoInstances(page, `${USER}-early-flush`, { followerReady: false });
      assert.equal(r.restoring, true, "b was asked before it knew it follows");
      assert.deepEqual(r.leader, [true, false]);
      assert.notEqual(r.confirmed[1], undefined, "b's forceSyncAll() resolved");
      assert.deepEqual([r.sent, r.once], [200, 200]);
    } finally {
      await context.close();
    }
  });

  test("a follower's forceSyncAll() counts the batches confirmed while its request was on its way", async () => {
    const context = await browser.newContext();
    try {
      const page = await openPage(context, site.url);
      const r = await twoInstances(page, `${USER}-counts`, { followerReady: true });
      assert.deepEqual(r.leader, [true, false]);
      assert.equal(r.confirmed[1], 200, "everything the shared queue confirmed since b's call");
      assert.deepEqual([r.sent, r.once], [200, 200]);
    } finally {
      await context.close();
    }
  });

  test("a follower hears other devices' changes, by catch-up and by realtime, its pull() resolves, and its own come back as own", async () => {
    const tabs = await browser.newContext();
    const device = await browser.newContext();
    try {
      const user = "eeeeeeee-0000-4000-8000-00000000000e";
      const userToken = devToken(user);
      const start = (page, pull) =>
        page.evaluate(
          async ({ url, user, token, pull }) => {
            window.t.token = token;
            const sync = window.t.create({ url, mode: "rpc", user, ...(pull ? { pull: { tables: ["user_preferences"], realtime: true } } : {}) });
            window.heard = [];
            window.own = {};
            if (pull) {
              sync.onRemoteChanges((changes) => {
                for (const c of changes) {
                  window.heard.push(c.id);
                  window.own[c.id] = c.own === true;
                }
              });
            }
            await window.t.durable(sync);
            return sync.stats().leader;
          },
          { url: server.restUrl, user, token: userToken, pull },
        );
      const a = await openPage(tabs, site.url);
      const b = await openPage(tabs, site.url);
      assert.equal(await start(a, true), true);
      assert.equal(await start(b, true), false, "b follows a");
      // b's first catch-up and its realtime channel, before the other device writes.
      await b.waitForFunction(() => window.t.sync.stats().realtimeConnected === true, null, { timeout: 5000 });
      const other = await openPage(device, site.url);
      await start(other, false);
      await other.evaluate(async () => {
        window.t.sync.queueCriticalChange("user_preferences", "from-other-device", "upsert", { id: "from-other-device", theme: "dark" });
        await window.t.sync.forceSyncAll();
      });
      for (const page of [a, b]) {
        await page.waitForFunction(() => window.heard.includes("from-other-device"), null, { timeout: 5000 });
      }
      const pulled = await b.evaluate(() => Promise.race([window.t.sync.pull().then((s) => typeof s.changes), new Promise((ok) => setTimeout(() => ok("pending"), 5000))]));
      assert.equal(pulled, "number", "a follower's pull() resolves");
      assert.notEqual(await b.evaluate(() => window.t.sync.stats().lastPullAt), null);
      assert.equal(await b.evaluate(() => window.own["from-other-device"]), false);
      // The shared queue's writes, the follower's and the leader's, come back to the follower as its own.
      await b.evaluate(async () => {
        window.t.sync.queueCriticalChange("user_preferences", "from-follower", "upsert", { id: "from-follower", theme: "b" });
        await window.t.sync.forceSyncAll();
      });
      await a.evaluate(async () => {
        window.t.sync.queueCriticalChange("user_preferences", "from-leader", "upsert", { id: "from-leader", theme: "a" });
        await window.t.sync.forceSyncAll();
      });
      await b.waitForFunction(() => window.heard.includes("from-follower") && window.heard.includes("from-leader"), null, { timeout: 5000 });
      assert.deepEqual(await b.evaluate(() => [window.own["from-follower"], window.own["from-leader"]]), [true, true]);
    } finally {
      await tabs.close();
      await device.close();
    }
  });

  test("a follower's changes survive its reload and its crash", async () => {
    const context = await browser.newContext();
    try {
      const a = await openPage(context, site.url);
      const b = await openPage(context, site.url);
      await create(a);
      assert.deepEqual(await create(b), { durable: true, leader: false });
      const prefix = `follower-${Date.now()}-`;
      const navigated = b.waitForEvent("load");
      // Queued and reloaded in the same task: the inbox write must have started by the end of it.
      await b
        .evaluate((prefix) => {
          for (let i = 0; i < 20; i++) window.t.sync.queueLowChange("user_preferences", `${prefix}r${i}`, "upsert", { id: `${prefix}r${i}`, theme: "r" });
          location.reload();
        }, prefix)
        .catch(() => {});
      await navigated;
      await b.waitForFunction(() => window.ready === true);
      assert.deepEqual(await create(b), { durable: true, leader: false });
      await b.evaluate((prefix) => {
        for (let i = 0; i < 20; i++) window.t.sync.queueLowChange("user_preferences", `${prefix}c${i}`, "upsert", { id: `${prefix}c${i}`, theme: "c" });
      }, prefix);
      await crashPage(context, b);
      const summary = await a.evaluate(() => window.t.sync.forceSyncAll().then((s) => ({ failed: s.failed.length })));
      assert.equal(summary.failed, 0);
      const stored = await rows(server, "user_preferences", token, `id=like.${prefix}*`);
      assert.equal(stored.filter((r) => r.theme === "r").length, 20, "queued just before the follower's reload");
      assert.equal(stored.filter((r) => r.theme === "c").length, 20, "queued just before the follower's crash");
    } finally {
      await context.close();
    }
  });

  test("clearPersisted() in a follower drops the user's unsent changes in every tab", async () => {
    const context = await browser.newContext();
    try {
      const a = await openPage(context, site.url);
      const b = await openPage(context, site.url);
      await create(a);
      assert.deepEqual(await create(b), { durable: true, leader: false });
      const prefix = `cleared-${Date.now()}-`;
      await a.evaluate((prefix) => {
        for (let i = 0; i < 5; i++) window.t.sync.queueLowChange("user_preferences", `${prefix}a${i}`, "upsert", { id: `${prefix}a${i}`, theme: "z" });
      }, prefix);
      await b.evaluate((prefix) => {
        for (let i = 0; i < 5; i++) window.t.sync.queueLowChange("user_preferences", `${prefix}b${i}`, "upsert", { id: `${prefix}b${i}`, theme: "z" });
      }, prefix);
      await a.waitForFunction(() => window.t.sync.stats().pending === 10, null, { timeout: 2000 });
      await b.evaluate(() => window.t.sync.clearPersisted());
      await a.waitForFunction(() => window.t.sync.stats().pending === 0, null, { timeout: 2000 });
      await a.reload();
      await a.waitForFunction(() => window.ready === true);
      await create(a);
      assert.equal(await a.evaluate(() => window.t.sync.pendingChanges().length), 0, "nothing stored either");
    } finally {
      await context.close();
    }
  });

  test("clearPersisted() in a tab that has not started to follow yet drops the leader's unsent changes too", async () => {
    const context = await browser.newContext();
    try {
      const a = await openPage(context, site.url);
      const b = await openPage(context, site.url);
      await create(a);
      const prefix = `cleared-early-${Date.now()}-`;
      await a.evaluate((prefix) => {
        for (let i = 0; i < 5; i++) window.t.sync.queueLowChange("user_preferences", `${prefix}a${i}`, "upsert", { id: `${prefix}a${i}`, theme: "z" });
      }, prefix);
      await a.waitForFunction(() => window.t.sync.stats().pending === 5, null, { timeout: 2000 });
      // A sign-out in a tab opened a moment ago: its instance is still restoring (it does not know yet that it
      // follows).
      const restoring = await b.evaluate(async ({ url, user, token }) => {
        window.t.token = token;
        const sync = window.t.create({ url, mode: "rpc", user });
        const restoring = sync.stats().restoring;
        await sync.clearPersisted();
        return restoring;
      }, { url: server.restUrl, user: USER, token });
      assert.equal(restoring, true);
      await a.waitForFunction(() => window.t.sync.stats().pending === 0, null, { timeout: 2000 });
      await a.reload();
      await a.waitForFunction(() => window.ready === true);
      await create(a);
      assert.equal(await a.evaluate(() => window.t.sync.pendingChanges().length), 0, "nothing stored either");
      assert.equal((await rows(server, "user_preferences", token, `id=like.${prefix}*`)).length, 0, "nothing sent");
    } finally {
      await context.close();
    }
  });

  test("clearPersisted() in a follower while the leader's request is out: its answer confirms nothing queued after (rest mode)", async () => {
    const context = await browser.newContext();
    try {
      const a = await openPage(context, site.url);
      const b = await openPage(context, site.url);
      await create(a, { mode: "rest" });
      assert.deepEqual(await create(b, { mode: "rest" }), { durable: true, leader: false });
      const id = `follow-${Date.now()}`;
      // Every request takes 1.5 s: the leader's upsert is still out when the follower clears the queue, and
      // the leader's engine is replaced by an empty one (src/web/storage.rs drop_queue).
      await admin(server, "faults", { latencyMs: 1500 });
      await a.evaluate((id) => window.t.sync.queueCriticalChange("user_preferences", id, "upsert", { id, theme: "old" }), id);
      await a.waitForFunction(() => window.t.sync.stats().inFlight === 1, null, { timeout: 2000 });
      await b.evaluate(() => window.t.sync.clearPersisted());
      await a.waitForFunction(() => window.t.sync.stats().inFlight === 0, null, { timeout: 2000 });
      // A new write of the same record, queued while the old request is out: the old answer names this record,
      // and must not be taken for the new write's (Engine::follow: the new engine waits for it and drops it).
      const summary = await a.evaluate(async (id) => {
        window.t.sync.queueCriticalChange("user_preferences", id, "upsert", { id, theme: "new" });
        const s = await window.t.sync.forceSyncAll();
        return { confirmed: s.confirmed, failed: s.failed.length };
      }, id);
      const [row] = await rows(server, "user_preferences", token, `id=eq.${id}`);
      assert.equal(row?.theme, "new", "confirmed only once the new write is on the server");
      assert.deepEqual(summary, { confirmed: 1, failed: 0 });
    } finally {
      await admin(server, "faults", {});
      await context.close();
    }
  });

  test("a follower wakes the leader when its changes are due (the leader's timers may be throttled in a hidden tab)", async () => {
    const context = await browser.newContext();
    try {
      const a = await openPage(context, site.url);
      const b = await openPage(context, site.url);
      // The leader's long timers never fire, as in a hidden tab under Chromium's intensive throttling.
      await a.evaluate(() => {
        const real = window.setTimeout;
        window.setTimeout = (fn, ms, ...rest) => (ms > 200 ? 0 : real(fn, ms, ...rest));
      });
      await create(a, { syncIntervals: { 1: 400 } });
      assert.deepEqual(await create(b, { syncIntervals: { 1: 400 } }), { durable: true, leader: false });
      const id = `wake-${Date.now()}`;
      await b.evaluate((id) => window.t.sync.queueHighChange("user_preferences", id, "upsert", { id, theme: "w" }), id);
      await b.waitForTimeout(2000);
      assert.equal((await rows(server, "user_preferences", token, `id=eq.${id}`)).length, 1, "sent at its deadline");
    } finally {
      await context.close();
    }
  });

  test("a follower shows the failed list, and its retryFailed and discardFailed act on the shared queue", async () => {
    const context = await browser.newContext();
    try {
      const a = await openPage(context, site.url);
      const b = await openPage(context, site.url);
      await create(a);
      assert.deepEqual(await create(b), { durable: true, leader: false });
      const id = `refused-${Date.now()}`;
      // The schema refuses the unit: a permanent failure, on the failed list.
      const summary = await b.evaluate((id) => {
        window.t.sync.queueCriticalChange("user_preferences", id, "upsert", { id, units: "stone" });
        return window.t.sync.forceSyncAll().then((s) => ({ failed: s.failed.map((f) => f.id) }));
      }, id);
      assert.deepEqual(summary.failed, [id]);
      await b.waitForFunction((id) => window.t.sync.failedChanges().some((f) => f.id === id), id, { timeout: 2000 });
      assert.equal(await b.evaluate(() => window.t.sync.stats().failedSyncs), 1);
      assert.equal(await b.evaluate(() => window.t.sync.retryFailed()), 1);
      await a.waitForFunction(() => window.t.sync.stats().failedSyncs === 2, null, { timeout: 2000 });
      await b.waitForFunction((id) => window.t.sync.failedChanges().some((f) => f.id === id), id, { timeout: 2000 });
      assert.equal(await b.evaluate(() => window.t.sync.discardFailed()), 1);
      await a.waitForFunction(() => window.t.sync.failedChanges().length === 0, null, { timeout: 2000 });
      await b.waitForFunction(() => window.t.sync.failedChanges().length === 0, null, { timeout: 2000 });
    } finally {
      await context.close();
    }
  });

  test("a leader whose write fails while it takes in a follower's change queues it once and deletes it later", async () => {
    const context = await browser.newContext();
    try {
      const a = await openPage(context, site.url);
      const b = await openPage(context, site.url);
      // The leader tab's own puts fail while `failPuts` is set. (A stand-in for a full disk: Chromium's quota
      // override applies to a whole origin, so it cannot fail one tab's writes and not the other's.)
      await a.evaluate(() => {
        const put = IDBObjectStore.prototype.put;
        IDBObjectStore.prototype.put = function (...args) {
          if (window.failPuts) throw new DOMException("disk full (test)", "QuotaExceededError");
          return put.apply(this, args);
        };
      });
      await create(a);
      assert.deepEqual(await create(b), { durable: true, leader: false });
      const prefix = `undeleted-${Date.now()}-`;
      await a.evaluate(() => (window.failPuts = true));
      const queueIn = (n) =>
        b.evaluate(({ prefix, n }) => window.t.sync.queueLowChange("user_preferences", `${prefix}${n}`, "upsert", { id: `${prefix}${n}`, theme: "u" }), { prefix, n });
      await queueIn(0);
      await a.waitForFunction(() => window.t.sync.stats().pending === 1 && /disk full/.test(window.t.sync.stats().lastError ?? ""), null, { timeout: 3000 });
      // Another change makes the leader read the inbox again: the first one is not taken in twice.
      await queueIn(1);
      await a.waitForFunction(() => window.t.sync.stats().pending === 2, null, { timeout: 3000 });
      await a.evaluate(() => (window.failPuts = false));
      await a.waitForFunction(() => window.t.sync.stats().lastError === null, null, { timeout: 5000 });
      assert.equal(await a.evaluate(() => window.t.sync.stats().mergedChanges), 0, "no change queued twice");
      const inbox = await a.evaluate((user) => window.t.idb((store) => store.count(IDBKeyRange.bound([`${user}\u0000inbox`], [`${user}\u0000inbox`, []]))), USER);
      assert.equal(inbox, 0, "the inbox records are deleted once a write succeeds");
      assert.equal((await a.evaluate(() => window.t.sync.forceSyncAll())).failed.length, 0);
      assert.equal((await rows(server, "user_preferences", token, `id=like.${prefix}*`)).length, 2);
    } finally {
      await context.close();
    }
  });
});
