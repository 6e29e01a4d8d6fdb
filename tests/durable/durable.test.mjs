// The durable queue in real Chromium with real IndexedDB, against the dev server, through the built package:
// a reload, an abruptly killed browser (persistent profile), a crashed tab, a second tab taking over, leaving
// the page, a sign-out and another user's sign-in, failing and foreign storage, and the previous stored format.
// Both wire modes where the wire matters.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { CHROMIUM_ARGS, launchBrowser, startDevServer, devToken, admin, rows, tempDir, waitFor } from "../e2e/helpers.mjs";
import { crashPage, locksReleased, openPage, servePage } from "./page.mjs";

const USER_A = "aaaaaaaa-0000-4000-8000-00000000000a";
const USER_B = "bbbbbbbb-0000-4000-8000-00000000000b";
let server, site, browser, tokenA, tokenB;

before(async () => {
  server = await startDevServer();
  site = await servePage();
  browser = await launchBrowser();
  tokenA = devToken(USER_A);
  tokenB = devToken(USER_B);
});

after(async () => {
  await browser?.close();
  await site?.close();
  await server?.close();
});

const written = async () => (await admin(server, "stats")).rowsWritten.user_preferences ?? 0;
const rowsOf = (token, prefix) => rows(server, "user_preferences", token, `id=like.${prefix}*`);

/** Creates an instance in the page for `user` with `token` and waits until its stored queue is restored. */
async function create(page, { mode = "rpc", user = USER_A, token = tokenA, ...rest } = {}) {
  const durable = await page.evaluate(
    ({ url, mode, user, token, rest }) => {
      window.t.token = token;
      window.t.create({ url, mode, user, ...rest });
      return window.t.durable();
    },
    { url: server.restUrl, mode, user, token, rest },
  );
  return durable;
}

function queue(page, prefix, count, method = "queueLowChange") {
  return page.evaluate(
    ({ prefix, count, method }) => {
      for (let i = 0; i < count; i++) window.t.sync[method]("user_preferences", `${prefix}${i}`, "upsert", { id: `${prefix}${i}`, theme: `t${i}` });
      return window.t.sync.stats().pending;
    },
    { prefix, count, method },
  );
}

async function flush(page) {
  return page.evaluate(async () => {
    const s = await window.t.sync.forceSyncAll();
    return { confirmed: s.confirmed, failed: s.failed.length };
  });
}

/** A second tab that cannot follow the one holding the queue (no BroadcastChannel): it works in memory. */
async function openTabInMemory(context, options) {
  const page = await openPage(context, site.url);
  // Where a tab cannot follow the one that holds the queue, it goes alone (src/web/tabs.rs).
  await page.evaluate(() => delete window.BroadcastChannel);
  assert.equal(await create(page, options), false, "the first tab holds this user's queue");
  return page;
}

/** Another device of user A writes these user_preferences rows, straight to the server. */
async function otherDeviceWrites(records) {
  const res = await fetch(`${server.restUrl}/user_preferences?on_conflict=id`, {
    method: "POST",
    headers: {
      apikey: "dev-anon-key", authorization: `Bearer ${tokenA}`, "content-type": "application/json",
      prefer: "resolution=merge-duplicates,return=minimal",
    },
    body: JSON.stringify(records),
  });
  assert.ok(res.ok, `the other device's write: ${res.status}`);
}

/** The bodies of the page's requests that carried a delete, in order. */
const deleteBodies = (page) => page.evaluate(() => window.t.sent.filter((r) => /"op":"delete"/.test(r.body)).map((r) => r.body));
/** Each write of a request body as the server's replay log knows it. */
const identity = (body) => JSON.parse(body).changes.map((c) => [c.client_id, c.seq, c.op]);

for (const mode of ["rpc", "rest"]) {
  describe(`durable queue, ${mode} mode`, () => {
    test("1,000 low-priority changes, then a reload before they are due: all reach the server once", async () => {
      const context = await browser.newContext();
      try {
        const page = await openPage(context, site.url);
        assert.equal(await create(page, { mode, batchSize: 250 }), true, "IndexedDB is the default store");
        const before = await written();
        const prefix = `reload-${mode}-`;
        const navigated = page.waitForEvent("load");
        // Queue and reload in the same task: the write must have started by the end of it.
        await page
          .evaluate((prefix) => {
            for (let i = 0; i < 1000; i++) window.t.sync.queueLowChange("user_preferences", `${prefix}${i}`, "upsert", { id: `${prefix}${i}`, theme: `t${i}` });
            location.reload();
          }, prefix)
          .catch(() => {});
        await navigated;
        await page.waitForFunction(() => window.ready === true);
        assert.equal(await create(page, { mode, batchSize: 250 }), true);
        const restored = await page.evaluate(() => {
          const pending = window.t.sync.pendingChanges();
          return { count: pending.length, notDue: pending.every((p) => p.dueAt > Date.now()), sent: window.t.sent.length };
        });
        assert.deepEqual(restored, { count: 1000, notDue: true, sent: 0 }, "restored with their original deadlines, nothing sent yet");
        assert.deepEqual(await flush(page), { confirmed: 1000, failed: 0 });
        assert.equal((await rowsOf(tokenA, prefix)).length, 1000);
        assert.equal((await written()) - before, 1000, "the server applied each change exactly once");
        assert.equal(await page.evaluate(() => window.t.sync.stats().pending), 0);
      } finally {
        await context.close();
      }
    });

    test("changes queued in the task that constructed the instance survive a reload in that task", async () => {
      const context = await browser.newContext();
      try {
        const page = await openPage(context, site.url);
        const before = await written();
        const prefix = `early-${mode}-`;
        const navigated = page.waitForEvent("load");
        // Construct, queue and reload in one task: the restore has not even opened IndexedDB yet.
        await page
          .evaluate(({ url, mode, user, token, prefix }) => {
            window.t.token = token;
            const sync = window.t.create({ url, mode, user });
            for (let i = 0; i < 200; i++) sync.queueLowChange("user_preferences", `${prefix}${i}`, "upsert", { id: `${prefix}${i}`, theme: `e${i}` });
            sync.queueLowChange("user_preferences", `${prefix}0`, "update", { theme: "last" });
            location.reload();
          }, { url: server.restUrl, mode, user: USER_A, token: tokenA, prefix })
          .catch(() => {});
        await navigated;
        await page.waitForFunction(() => window.ready === true);
        assert.equal(await create(page, { mode }), true);
        assert.equal(await page.evaluate(() => window.t.sync.stats().pending), 200, "the dead page's changes, merged per record");
        assert.deepEqual(await flush(page), { confirmed: 200, failed: 0 });
        const rows = await rowsOf(tokenA, prefix);
        assert.equal(rows.length, 200);
        assert.equal(rows.find((r) => r.id === `${prefix}0`).theme, "last");
        assert.equal((await written()) - before, 200, "each applied once");
        // Taken in once: a third instance finds nothing left over.
        await page.reload();
        await page.waitForFunction(() => window.ready === true);
        assert.equal(await create(page, { mode }), true);
        assert.equal(await page.evaluate(() => window.t.sync.stats().pending), 0);
        assert.equal(await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("record-sync:")).length), 0, "no early entry is left");
      } finally {
        await context.close();
      }
    });

    test("a second tab closed before it follows: the tab holding the queue takes its changes in", async () => {
      const context = await browser.newContext();
      try {
        const leader = await openPage(context, site.url);
        assert.equal(await create(leader, { mode }), true);
        const before = await written();
        const prefix = `early-tab-${mode}-`;
        const second = await openPage(context, site.url);
        await second.evaluate(({ url, mode, user, token, prefix }) => {
          window.t.token = token;
          const sync = window.t.create({ url, mode, user });
          for (let i = 0; i < 50; i++) sync.queueLowChange("user_preferences", `${prefix}${i}`, "upsert", { id: `${prefix}${i}`, theme: "tab" });
        }, { url: server.restUrl, mode, user: USER_A, token: tokenA, prefix });
        // Gone well within the 100 ms it waits before it follows.
        await second.close();
        const taken = await leader.evaluate(async (prefix) => {
          for (let i = 0; i < 300; i++) {
            if (window.t.sync.pendingChanges().filter((p) => p.id.startsWith(prefix)).length === 50) return true;
            await new Promise((r) => setTimeout(r, 10));
          }
          return false;
        }, prefix);
        assert.equal(taken, true, "the leader queued the closed tab's 50 changes");
        assert.deepEqual(await flush(leader), { confirmed: 50, failed: 0 });
        assert.equal((await rowsOf(tokenA, prefix)).length, 50);
        assert.equal((await written()) - before, 50, "each applied once");
        assert.equal(await leader.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("record-sync:")).length), 0);
      } finally {
        await context.close();
      }
    });

    test("user A's changes are never sent with user B's token, and arrive when A is back", async () => {
      const context = await browser.newContext();
      try {
        const page = await openPage(context, site.url);
        await create(page, { mode });
        const prefixA = `owner-a-${mode}-`;
        // Rows without user_id: the server files them under the token's user, so the wrong token would
        // make them B's rows.
        await queue(page, prefixA, 20);
        // A signs out and B signs in, and the app forgets to switch the instance: nothing may go.
        const held = await page.evaluate(async (tokenB) => {
          window.t.token = tokenB;
          window.t.sync.setAccessToken(tokenB);
          window.t.sync.forceSyncAll().catch(() => {});
          await new Promise((r) => setTimeout(r, 300));
          const s = window.t.sync.stats();
          return { pending: s.pending, user: s.user, lastError: s.lastError, failed: s.failedSyncs };
        }, tokenB);
        assert.equal(held.pending, 20);
        assert.equal(held.user, USER_A);
        assert.equal(held.failed, 0, "waiting costs no attempt");
        assert.match(held.lastError, /waiting for user aaaaaaaa/);
        // The app switches properly: A's instance stops (its queue stays stored), B's starts.
        await page.evaluate(() => window.t.sync.destroy());
        assert.equal(await create(page, { mode, user: USER_B, token: tokenB }), true);
        assert.equal(await page.evaluate(() => window.t.sync.stats().pending), 0, "B does not see A's queue");
        await queue(page, `owner-b-${mode}-`, 5, "queueHighChange");
        assert.deepEqual(await flush(page), { confirmed: 5, failed: 0 });
        await page.evaluate(() => window.t.sync.destroy());
        // A signs in again.
        assert.equal(await create(page, { mode, user: USER_A, token: tokenA }), true);
        // The ten the held flush made due go at once; forceSyncAll sends the rest.
        assert.equal((await flush(page)).failed, 0);
        assert.equal(await page.evaluate(() => window.t.sync.stats().successfulSyncs), 20);
        const sent = await page.evaluate(() => window.t.sent);
        const leaked = sent.filter((r) => r.sub !== USER_A && r.body.includes(prefixA));
        assert.deepEqual(leaked, [], "no request carried A's changes with another token");
        assert.equal((await rowsOf(tokenA, prefixA)).length, 20, "A's rows are A's");
        assert.equal((await rowsOf(tokenB, prefixA)).length, 0);
        assert.equal((await rowsOf(tokenB, `owner-b-${mode}-`)).length, 5);
      } finally {
        await context.close();
      }
    });
  });
}

describe("another user's token while the queue waits for its owner", () => {
  test("needsAuth stays true and getAccessToken is asked with backoff, not every second", async () => {
    const context = await browser.newContext();
    try {
      const page = await openPage(context, site.url);
      const seen = await page.evaluate(async ({ url, user, tokenB }) => {
        const asks = [];
        const t0 = performance.now();
        const sync = new window.t.rs.RecordSync({
          user,
          transport: { url, apiKey: "dev-anon-key", mode: "rpc", getAccessToken: () => (asks.push(performance.now() - t0), tokenB) },
        });
        await window.t.durable(sync);
        sync.queueCriticalChange("user_preferences", "other-token-1", "upsert", { id: "other-token-1" });
        let cleared = 0;
        for (let i = 0; i < 70; i++) {
          await new Promise((r) => setTimeout(r, 50));
          if (!sync.stats().needsAuth) cleared++;
        }
        const s = sync.stats();
        sync.destroy();
        return { asks, cleared, pending: s.pending, sent: window.t.sent.length };
      }, { url: server.restUrl, user: USER_A, tokenB });
      assert.equal(seen.cleared, 0, "needsAuth never went false while only B's token was to be had");
      assert.ok(seen.asks.length >= 3, `asked ${seen.asks.length} times`);
      const gap = seen.asks[2] - seen.asks[1];
      assert.ok(gap >= 1500, `the third ask came ${Math.round(gap)} ms after the second: backoff doubles (1 s, 2 s, ...)`);
      assert.deepEqual([seen.pending, seen.sent], [1, 0], "nothing was sent with B's token");
    } finally {
      await context.close();
    }
  });
});

describe("whose queue it is without the user option (issue 9)", () => {
  /** Queues `count` inserts without user_id (the server files them under the token's user). */
  const inserts = (page, prefix, count) =>
    page.evaluate(({ prefix, count }) => {
      for (let i = 0; i < count; i++) window.t.sync.queueLowChange("user_preferences", `${prefix}${i}`, "insert", { id: `${prefix}${i}`, theme: "x" });
    }, { prefix, count });
  /** An instance with neither user nor getAccessToken (its queue is nobody's until a token comes); whether it
   *  holds the queue kept under no user once its restore has decided. */
  const nobody = (page) =>
    page.evaluate(async (url) => {
      window.t.sync = new window.t.rs.RecordSync({ transport: { url, apiKey: "dev-anon-key", mode: "rpc" } });
      for (let i = 0; i < 1000 && window.t.sync.stats().restoring; i++) await new Promise((r) => setTimeout(r, 10));
      return window.t.sync.stats().durable;
    }, server.restUrl);
  /** Switches the token, asks for a flush, and reports what the instance shows 300 ms later. */
  const switchTo = (page, token, set) =>
    page.evaluate(async ({ token, set }) => {
      window.t.token = token;
      if (set) window.t.sync.setAccessToken(token);
      window.t.sync.forceSyncAll().catch(() => {});
      await new Promise((r) => setTimeout(r, 300));
      const s = window.t.sync.stats();
      return { pending: s.pending, user: s.user, lastError: s.lastError };
    }, { token, set });

  test("the owner is fixed by the first token known: getAccessToken switching to B sends nothing of A's", async () => {
    const context = await browser.newContext();
    try {
      const page = await openPage(context, site.url);
      assert.equal(await create(page, { user: null }), true);
      await inserts(page, "gat-switch-", 3);
      // The instance may still hold A's token (then the rows go as A's) or ask again (then they wait).
      const held = await switchTo(page, tokenB, false);
      assert.equal(held.user, USER_A);
      assert.equal((await rowsOf(tokenB, "gat-switch-")).length, 0, "nothing written as B's");
      const leaked = (await page.evaluate(() => window.t.sent)).filter((r) => r.sub !== USER_A && r.body.includes("gat-switch-"));
      assert.deepEqual(leaked, [], "no request carried A's changes with another token");
      await page.evaluate((tokenA) => { window.t.token = tokenA; window.t.sync.setAccessToken(tokenA); }, tokenA);
      assert.equal((await flush(page)).failed, 0);
      assert.equal((await rowsOf(tokenA, "gat-switch-")).length, 3);
    } finally {
      await context.close();
    }
  });

  test("signed out at construction: changes wait in memory, then join the queue of the user who signs in", async () => {
    const context = await browser.newContext();
    try {
      const page = await openPage(context, site.url);
      const waiting = await page.evaluate(async (url) => {
        window.t.token = null;
        window.t.create({ url, mode: "rpc", user: null });
        for (let i = 0; i < 2; i++) window.t.sync.queueHighChange("user_preferences", `signed-out-${i}`, "insert", { id: `signed-out-${i}`, theme: "x" });
        await new Promise((r) => setTimeout(r, 100));
        const s = window.t.sync.stats();
        return { pending: s.pending, user: s.user, durable: s.durable, restoring: s.restoring, lastError: s.lastError };
      }, server.restUrl);
      assert.deepEqual({ ...waiting, lastError: undefined }, { pending: 2, user: null, durable: false, restoring: true, lastError: undefined });
      assert.match(waiting.lastError, /storage: waiting for a user's token to restore their stored queue: getAccessToken gave no token/);
      await page.evaluate((tokenA) => { window.t.token = tokenA; window.t.sync.setAccessToken(tokenA); }, tokenA);
      assert.equal(await page.evaluate(() => window.t.durable()), true);
      assert.deepEqual(await page.evaluate(() => [window.t.sync.stats().lastError, window.t.sync.stats().restoring]), [null, false]);
      assert.deepEqual(await flush(page), { confirmed: 2, failed: 0 });
      assert.equal((await rowsOf(tokenA, "signed-out-")).length, 2);
    } finally {
      await context.close();
    }
  });

  test("no getAccessToken, setAccessToken after the restore: A's queue moves to A's key, and B signing in later on the same page neither sends it nor writes B's change as A's", async () => {
    const context = await browser.newContext();
    try {
      const page = await openPage(context, site.url);
      // The app's usual order: construct at start-up, give the token once sign-in resolves. The instance has
      // restored the queue kept under no user by then.
      const session = (token, id, priority) =>
        page.evaluate(async ({ url, token, id, priority }) => {
          const sync = new window.t.rs.RecordSync({ transport: { url, apiKey: "dev-anon-key", mode: "rpc" } });
          const durable = await window.t.durable(sync);
          sync.setAccessToken(token);
          sync[`queue${priority}Change`]("user_preferences", id, "insert", { id, theme: "x" });
          const summary = priority === "Critical" ? await sync.forceSyncAll() : null;
          // The move ends once A's queue is stored under A's key: the records under "" go then.
          for (let i = 0; i < 250; i++) {
            const keys = await window.t.idb((store) => store.getAllKeys());
            if (keys.length > 0 && keys.every(([user]) => user !== "")) break;
            await new Promise((r) => setTimeout(r, 20));
          }
          const s = sync.stats();
          sync.destroy();
          return { durable, user: s.user, pending: s.pending, confirmed: summary?.confirmed };
        }, { url: server.restUrl, token, id, priority });
      assert.deepEqual(await session(tokenA, "moved-a", "Low"), { durable: true, user: USER_A, pending: 1, confirmed: undefined });
      const keys = await page.evaluate(() => window.t.idb((store) => store.getAllKeys()));
      assert.ok(keys.length > 0 && keys.every(([user]) => user === USER_A), `stored under A's key: ${JSON.stringify(keys)}`);
      assert.deepEqual(await session(tokenB, "moved-b", "Critical"), { durable: true, user: USER_B, pending: 0, confirmed: 1 });
      assert.deepEqual((await rowsOf(tokenB, "moved-")).map((r) => r.id), ["moved-b"], "B's change is B's row, and A's is not");
      const leaked = (await page.evaluate(() => window.t.sent)).filter((r) => r.body.includes("moved-a") && r.sub !== USER_A);
      assert.deepEqual(leaked, [], "A's change never went with another token");
      // A's next instance, named by the user option, finds A's change under A's key.
      assert.equal(await create(page, { user: USER_A, token: tokenA }), true);
      assert.deepEqual(await flush(page), { confirmed: 1, failed: 0 });
      assert.deepEqual((await rowsOf(tokenA, "moved-")).map((r) => r.id), ["moved-a"]);
    } finally {
      await context.close();
    }
  });

  test("a move to A's key while another tab holds A's queue: the moving tab follows it, and A's changes stay A's after it crashes", async () => {
    const context = await browser.newContext();
    try {
      const holder = await openPage(context, site.url);
      assert.equal(await create(holder, { user: USER_A, token: tokenA }), true);
      const mover = await openPage(context, site.url);
      assert.equal(await nobody(mover), true);
      await inserts(mover, "stuck-move-", 2);
      const moving = await mover.evaluate(async (token) => {
        window.t.sync.setAccessToken(token);
        await new Promise((r) => setTimeout(r, 1500));
        const s = window.t.sync.stats();
        return { leader: s.leader, user: s.user };
      }, tokenA);
      assert.deepEqual(moving, { leader: false, user: USER_A }, "one queue for A: the holder's");
      await crashPage(context, mover);

      // Nothing of A's is left under "": the next nobody's tab starts empty, and B, once signed in, sends none of it.
      const next = await openPage(context, site.url);
      assert.equal(await nobody(next), true);
      const asB = await next.evaluate(async (token) => {
        const pending = window.t.sync.stats().pending;
        window.t.sync.setAccessToken(token);
        const summary = await window.t.sync.forceSyncAll();
        return { pending, confirmed: summary.confirmed, user: window.t.sync.stats().user };
      }, tokenB);
      assert.deepEqual(asB, { pending: 0, confirmed: 0, user: USER_B });
      assert.deepEqual((await next.evaluate(() => window.t.sent)).filter((r) => r.body.includes("stuck-move-")), []);

      // The holder stored them in A's queue: A's next tab sends them as A's.
      await holder.close();
      const back = await openPage(context, site.url);
      assert.equal(await create(back, { user: USER_A, token: tokenA }), true);
      await flush(back);
      assert.equal((await rowsOf(tokenA, "stuck-move-")).length, 2);
      assert.equal((await rowsOf(tokenB, "stuck-move-")).length, 0);
    } finally {
      await context.close();
    }
  });

  test("a move whose read of A's queue fails goes on where it was: durable under \"\" with A's name, and it syncs", async () => {
    const context = await browser.newContext();
    try {
      const page = await openPage(context, site.url);
      const result = await page.evaluate(async ({ url, tokenA, userA }) => {
        const data = new Map();
        const storage = {
          load: async (user) => {
            if (user === userA) throw new Error("disk says no");
            return data.get(user) ?? [];
          },
          append: (user, record, replace) => {
            const copy = structuredClone(record);
            data.set(user, replace ? [copy] : [...(data.get(user) ?? []), copy]);
          },
          clear: async (user) => data.delete(user),
        };
        const sync = new window.t.rs.RecordSync({ transport: { url, apiKey: "dev-anon-key", mode: "rpc" }, storage });
        window.t.sync = sync;
        const before = await window.t.durable(sync);
        sync.queueLowChange("user_preferences", "failed-move-0", "insert", { id: "failed-move-0", theme: "x" });
        sync.setAccessToken(tokenA);
        await new Promise((r) => setTimeout(r, 500));
        const s = sync.stats();
        const stored = JSON.stringify(data.get("") ?? []);
        const summary = await sync.forceSyncAll();
        return { before, durable: s.durable, user: s.user, lastError: s.lastError, keys: [...data.keys()], named: stored.includes(userA), confirmed: summary.confirmed };
      }, { url: server.restUrl, tokenA, userA: USER_A });
      assert.deepEqual({ ...result, lastError: undefined }, { before: true, durable: true, user: USER_A, lastError: undefined, keys: [""], named: true, confirmed: 1 });
      assert.match(result.lastError, /disk says no/);
      assert.equal((await rowsOf(tokenA, "failed-move-")).length, 1);
    } finally {
      await context.close();
    }
  });

  test("a tab in memory under \"\" given A's token while another tab holds A's queue joins that queue as a follower", async () => {
    const context = await browser.newContext();
    try {
      const holder = await openPage(context, site.url);
      assert.equal(await create(holder, { user: USER_A, token: tokenA }), true);
      assert.equal(await nobody(await openPage(context, site.url)), true);
      const second = await openPage(context, site.url);
      assert.equal(await nobody(second), false, "the queue under \"\" is the other nobody's tab's");
      await inserts(second, "memory-move-", 2);
      // One queue for A: this tab's changes go to the holder's inbox, and the holder sends them as A's.
      const after = await second.evaluate(async (token) => {
        window.t.sync.setAccessToken(token);
        await new Promise((r) => setTimeout(r, 1500));
        const s = window.t.sync.stats();
        await window.t.sync.forceSyncAll();
        return { leader: s.leader, user: s.user };
      }, tokenA);
      assert.deepEqual(after, { leader: false, user: USER_A });
      assert.equal((await rowsOf(tokenA, "memory-move-")).length, 2);
      const sentHere = (await second.evaluate(() => window.t.sent)).filter((r) => r.body.includes("memory-move-") && r.sub !== null);
      assert.deepEqual(sentHere, [], "sent by the holder, not by this tab");
    } finally {
      await context.close();
    }
  });

  test("a change queued before any token on a page that closed at once joins the queue of the next user who signs in", async () => {
    const context = await browser.newContext();
    try {
      const gone = await openPage(context, site.url);
      await gone.evaluate((url) => {
        const sync = new window.t.rs.RecordSync({ transport: { url, apiKey: "dev-anon-key", mode: "rpc" } });
        sync.queueHighChange("user_preferences", "before-anyone-0", "insert", { id: "before-anyone-0", theme: "x" });
      }, server.restUrl);
      await gone.close();
      // A next sign-in comes once the browser has let the closed page's locks go: its early entry's (the entry is
      // then a dead page's) and the queue kept under no user's (a restore that cannot have it leaves what it holds
      // for a later one).
      const page = await openPage(context, site.url);
      await locksReleased(page, "record-sync:");
      assert.equal(await create(page, { user: USER_A, token: tokenA }), true);
      // The restore may have sent it before forceSyncAll() is called (its summary counts from the call).
      assert.equal((await flush(page)).failed, 0);
      assert.equal(await page.evaluate(() => window.t.sync.stats().pending), 0);
      assert.equal((await rowsOf(tokenA, "before-anyone-")).length, 1);
    } finally {
      await context.close();
    }
  });

  test("a change queued before sign-in goes beneath the newer edit of its record that A's closed tab stored", async () => {
    const context = await browser.newContext();
    try {
      const id = `beneath-${Date.now()}`;
      const early = await openPage(context, site.url);
      assert.equal(await nobody(early), true);
      await early.evaluate((id) => window.t.sync.queueLowChange("user_preferences", id, "upsert", { id, theme: "older", units: "lb" }), id);
      // A's tab edits the same record later, stores it, and closes before it is due.
      const holder = await openPage(context, site.url);
      assert.equal(await create(holder, { user: USER_A, token: tokenA }), true);
      await holder.evaluate(async (id) => {
        window.t.sync.queueLowChange("user_preferences", id, "update", { theme: "newer" });
        const stored = async () => JSON.stringify(await window.t.idb((store) => store.getAll())).includes('"newer"');
        for (let i = 0; i < 500 && !(await stored()); i++) await new Promise((r) => setTimeout(r, 20));
      }, id);
      await holder.close();
      await locksReleased(early, `record-sync:${USER_A}`);
      // The early tab signs in as A: its queue moves to A's, which it now holds, and its older change goes first.
      const summary = await early.evaluate(async (token) => {
        window.t.sync.setAccessToken(token);
        const s = await window.t.sync.forceSyncAll();
        return { confirmed: s.confirmed, failed: s.failed.length, user: window.t.sync.stats().user };
      }, tokenA);
      assert.deepEqual(summary, { confirmed: 1, failed: 0, user: USER_A });
      const [row] = await rowsOf(tokenA, id);
      assert.deepEqual([row.theme, row.units], ["newer", "lb"], "the older change's columns under the newer edit's");
    } finally {
      await context.close();
    }
  });

  test("a second tab without a user works in memory beside the first; its changes survive its reload and go with the first's sign-in", async () => {
    const context = await browser.newContext();
    try {
      const holder = await openPage(context, site.url);
      assert.equal(await nobody(holder), true);
      const second = await openPage(context, site.url);
      assert.equal(await nobody(second), false, "the queue kept under no user is not shared: this tab works in memory");
      await inserts(second, "nobody-second-", 3);
      await second.reload();
      await second.waitForFunction(() => window.ready === true);
      // The holder takes in what the page that went kept in localStorage, and its user's token moves it all.
      await holder.waitForFunction(() => window.t.sync.stats().pending === 3, null, { timeout: 5000 });
      const summary = await holder.evaluate(async (token) => {
        window.t.sync.setAccessToken(token);
        const s = await window.t.sync.forceSyncAll();
        return { confirmed: s.confirmed, failed: s.failed.length };
      }, tokenA);
      assert.deepEqual(summary, { confirmed: 3, failed: 0 });
      assert.equal((await rowsOf(tokenA, "nobody-second-")).length, 3);
    } finally {
      await context.close();
    }
  });

  test("without BroadcastChannel, a queue moved toward A's key stays under \"\" beside A's holder; after a reload the next instance given A's token sends it", async () => {
    const context = await browser.newContext();
    try {
      const holder = await openPage(context, site.url);
      assert.equal(await create(holder, { user: USER_A, token: tokenA }), true);
      const mover = await openPage(context, site.url);
      await mover.evaluate(() => delete window.BroadcastChannel);
      assert.equal(await nobody(mover), true);
      await inserts(mover, "stuck-under-nobody-", 2);
      // Given A's token, it cannot follow the holder: it stays durable under "" and is written there with A's name.
      await mover.evaluate((token) => window.t.sync.setAccessToken(token), tokenA);
      await mover.waitForFunction(() => window.t.sync.stats().user !== null, null, { timeout: 5000 });
      await mover.waitForTimeout(300);
      await mover.reload();
      await mover.waitForFunction(() => window.ready === true);
      await mover.evaluate(() => delete window.BroadcastChannel);
      // The next instance is nobody's until A's token comes; then it takes what "" holds and sends it.
      await nobody(mover);
      const summary = await mover.evaluate(async (token) => {
        window.t.sync.setAccessToken(token);
        await new Promise((r) => setTimeout(r, 500));
        const s = await window.t.sync.forceSyncAll();
        return { failed: s.failed.length, pending: window.t.sync.stats().pending };
      }, tokenA);
      assert.deepEqual(summary, { failed: 0, pending: 0 });
      assert.equal((await rowsOf(tokenA, "stuck-under-nobody-")).length, 2, "sent while A's holder still lives");
    } finally {
      await context.close();
    }
  });

  test("clearPersisted() while the queue moves to A's key discards it: nothing is left under \"\" or A's key, nothing is sent", async () => {
    for (const afterMs of [0, 30]) {
      const context = await browser.newContext();
      try {
        const prefix = `cleared-move-${afterMs}-`;
        const page = await openPage(context, site.url);
        assert.equal(await nobody(page), true);
        await inserts(page, prefix, 2);
        await page.evaluate(async ({ token, afterMs }) => {
          window.t.sync.setAccessToken(token);
          if (afterMs) await new Promise((r) => setTimeout(r, afterMs));
          await window.t.sync.clearPersisted();
        }, { token: tokenA, afterMs });
        const stored = await page.evaluate(() => window.t.idb((store) => store.getAll()));
        assert.equal(JSON.stringify(stored).includes(prefix), false, `${afterMs} ms: stored after clearPersisted()`);
        // Neither a nobody's tab nor A's next tab finds any of it.
        assert.equal(await nobody(page), true);
        assert.equal(await page.evaluate(() => window.t.sync.stats().pending), 0);
        const next = await openPage(context, site.url);
        assert.equal(await create(next, { user: USER_A, token: tokenA }), true);
        assert.deepEqual(await flush(next), { confirmed: 0, failed: 0 });
        const sent = [...(await page.evaluate(() => window.t.sent)), ...(await next.evaluate(() => window.t.sent))];
        assert.deepEqual(sent.filter((r) => r.body.includes(prefix)), [], `${afterMs} ms: sent`);
        assert.equal((await rowsOf(tokenA, prefix)).length, 0);
      } finally {
        await context.close();
      }
    }
  });

  test("setAccessToken(A) then setAccessToken(B), no getAccessToken: A's changes wait", async () => {
    const context = await browser.newContext();
    try {
      const page = await openPage(context, site.url);
      await page.evaluate(({ url, tokenA }) => {
        window.t.sync = new window.t.rs.RecordSync({ transport: { url, apiKey: "dev-anon-key", mode: "rpc" }, storage: null });
        window.t.sync.setAccessToken(tokenA);
      }, { url: server.restUrl, tokenA });
      await inserts(page, "set-switch-", 3);
      const held = await switchTo(page, tokenB, true);
      assert.deepEqual({ pending: held.pending, user: held.user }, { pending: 3, user: USER_A });
      assert.equal((await rowsOf(tokenB, "set-switch-")).length, 0, "nothing written as B's");
    } finally {
      await context.close();
    }
  });

  for (const mode of ["rpc", "rest"]) {
    test(`${mode}: a named user's queue, no getAccessToken: nothing goes with the API key until setAccessToken gives that user's token`, async () => {
      const context = await browser.newContext();
      try {
        const page = await openPage(context, site.url);
        const waiting = await page.evaluate(async ({ url, mode, user }) => {
          window.t.sync = new window.t.rs.RecordSync({ transport: { url, apiKey: "dev-anon-key", mode }, user, storage: null });
          for (let i = 0; i < 3; i++) window.t.sync.queueCriticalChange("user_preferences", `key-only-${i}`, "upsert", { id: `key-only-${i}`, theme: "x" });
          const timedOut = await Promise.race([
            window.t.sync.forceSyncAll().then(() => false),
            new Promise((r) => setTimeout(() => r(true), 500)),
          ]);
          const s = window.t.sync.stats();
          return { timedOut, pending: s.pending, needsAuth: s.needsAuth, lastError: s.lastError, sent: window.t.sent.length };
        }, { url: server.restUrl, mode, user: USER_A });
        assert.deepEqual({ ...waiting, lastError: undefined }, { timedOut: true, pending: 3, needsAuth: true, lastError: undefined, sent: 0 });
        assert.match(waiting.lastError, /aaaaaaaa.*setAccessToken/);
        const done = await page.evaluate(async (token) => {
          window.t.sync.setAccessToken(token);
          const s = await window.t.sync.forceSyncAll();
          return { confirmed: s.confirmed, pending: window.t.sync.stats().pending, subs: [...new Set(window.t.sent.map((r) => r.sub))] };
        }, tokenA);
        assert.deepEqual(done, { confirmed: 3, pending: 0, subs: [USER_A] });
        assert.equal((await rowsOf(tokenA, "key-only-")).length, 3);
        // Signed out again (setAccessToken(null)): the owner's next change waits as well.
        const again = await page.evaluate(async () => {
          window.t.sync.setAccessToken(null);
          window.t.sync.queueCriticalChange("user_preferences", "key-only-0", "update", { theme: "y" });
          await new Promise((r) => setTimeout(r, 300));
          const s = window.t.sync.stats();
          return { pending: s.pending, needsAuth: s.needsAuth, keyOnly: window.t.sent.filter((r) => r.sub === null).length };
        });
        assert.deepEqual(again, { pending: 1, needsAuth: true, keyOnly: 0 });
      } finally {
        await context.close();
      }
    });
  }

  test("remote changes (issue 11): setAccessToken(B) on A's instance closes its realtime channel; B's rows never reach A's listeners", async () => {
    const context = await browser.newContext();
    try {
      const page = await openPage(context, site.url);
      const live = () => page.evaluate(() => window.t.sync.stats().realtimeConnected);
      await page.evaluate(({ url, tokenA }) => {
        window.t.heard = [];
        window.t.token = tokenA;
        window.t.create({ url, mode: "rpc", user: null, storage: null, pull: { tables: ["user_preferences"], realtime: true } });
        window.t.sync.onRemoteChanges((changes) => window.t.heard.push(...changes.map((c) => c.id)));
      }, { url: server.restUrl, tokenA });
      await waitFor(live, 5000);
      // The app hands the instance user B's token (a sign-in switch without a new instance, or a mix-up).
      await page.evaluate((tokenB) => { window.t.token = tokenB; window.t.sync.setAccessToken(tokenB); }, tokenB);
      await new Promise((r) => setTimeout(r, 300));
      const writeAs = (token, id) =>
        fetch(`${server.restUrl}/user_preferences`, {
          method: "POST",
          headers: { apikey: "dev-anon-key", authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify({ id, theme: "x" }),
        }).then((r) => assert.ok(r.ok, `write as ${id}: ${r.status}`));
      await writeAs(tokenB, "rt-switch-b");
      await new Promise((r) => setTimeout(r, 700));
      assert.deepEqual(await page.evaluate(() => window.t.heard.filter((id) => id.startsWith("rt-switch-"))), [], "B's row reached A's listeners");
      assert.equal(await live(), false, "no channel on B's token");
      // A's token is back: the catch-up runs, the channel opens again and brings A's rows only.
      await page.evaluate((tokenA) => { window.t.token = tokenA; window.t.sync.setAccessToken(tokenA); }, tokenA);
      await waitFor(live, 5000);
      await writeAs(tokenA, "rt-switch-a");
      await waitFor(() => page.evaluate(() => window.t.heard.includes("rt-switch-a")), 3000);
      assert.deepEqual(await page.evaluate(() => window.t.heard.filter((id) => id.startsWith("rt-switch-"))), ["rt-switch-a"]);
    } finally {
      await context.close();
    }
  });

  test("A's stored queue is not restored by B's instance; A's next instance sends it", async () => {
    const context = await browser.newContext();
    try {
      const page = await openPage(context, site.url);
      assert.equal(await create(page, { user: null }), true);
      await inserts(page, "restore-a-", 3);
      await page.waitForTimeout(50);
      await page.evaluate(() => window.t.sync.destroy());
      assert.equal(await create(page, { user: null, token: tokenB }), true);
      assert.equal(await page.evaluate(() => window.t.sync.stats().user), USER_B);
      assert.equal(await page.evaluate(() => window.t.sync.pendingChanges().length), 0, "B does not see A's queue");
      assert.deepEqual(await flush(page), { confirmed: 0, failed: 0 });
      await page.evaluate(() => window.t.sync.destroy());
      assert.equal(await create(page, { user: null, token: tokenA }), true);
      assert.deepEqual(await flush(page), { confirmed: 3, failed: 0 });
      assert.equal((await rowsOf(tokenA, "restore-a-")).length, 3);
      assert.equal((await rowsOf(tokenB, "restore-a-")).length, 0);
    } finally {
      await context.close();
    }
  });

  test("a tab of user B does not take over user A's stored queue when A's tab crashes", async () => {
    const context = await browser.newContext();
    try {
      // No getAccessToken: each tab starts on the queue kept under no user (""), and the token, a moment after
      // construction, moves that tab's queue to its user's key: B's tab never holds A's queue, before or after
      // A's tab crashes.
      const open = (page, token) =>
        page.evaluate(async ({ url, token }) => {
          window.t.sync = new window.t.rs.RecordSync({ transport: { url, apiKey: "dev-anon-key", mode: "rpc" } });
          await new Promise((r) => setTimeout(r, 50));
          window.t.sync.setAccessToken(token);
          return window.t.durable();
        }, { url: server.restUrl, token });
      const first = await openPage(context, site.url);
      assert.equal(await open(first, tokenA), true);
      await inserts(first, "takeover-a-", 3);
      const second = await openPage(context, site.url);
      assert.equal(await open(second, tokenB), true, "B's tab holds B's queue");
      await first.waitForTimeout(100);
      await crashPage(context, first);
      await second.waitForTimeout(1500);
      const s = await second.evaluate(async () => {
        await window.t.sync.forceSyncAll();
        return { pending: window.t.sync.stats().pending, user: window.t.sync.stats().user };
      });
      assert.deepEqual(s, { pending: 0, user: USER_B });
      assert.equal((await rowsOf(tokenB, "takeover-a-")).length, 0, "A's changes were not sent as B's");
      // A's next tab sends them, as A's.
      const third = await openPage(context, site.url);
      assert.equal(await create(third, { user: USER_A, token: tokenA }), true);
      assert.deepEqual(await flush(third), { confirmed: 3, failed: 0 });
      assert.equal((await rowsOf(tokenA, "takeover-a-")).length, 3);
    } finally {
      await context.close();
    }
  });
});

describe("remote changes and the stored cursor (issue 11)", () => {
  /** Writes `user`'s rows of user_preferences over REST, as another device of theirs. */
  const otherDevice = (user) => {
    const token = devToken(user);
    const write = (method, query, body) =>
      fetch(`${server.restUrl}/user_preferences${query}`, {
        method,
        headers: { apikey: "dev-anon-key", authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: body && JSON.stringify(body),
      });
    return { token, write };
  };
  /** A page of `user`'s that pulls user_preferences in pages of two and keeps each batch of remote changes in
   *  `window.batches`: whether it came with `reset`, and the ids after `prefix`. */
  const reader = async (context, user, token, prefix) => {
    const page = await openPage(context, site.url);
    await page.evaluate(({ url, token, user, prefix }) => {
      window.t.token = token;
      window.t.create({ url, mode: "rpc", user, storage: null, pull: { tables: ["user_preferences"], pageSize: 2 } });
      window.batches = [];
      window.t.sync.onRemoteChanges((changes, info) =>
        window.batches.push({ reset: info.reset, ids: changes.filter((c) => c.id.startsWith(prefix)).map((c) => `${c.op} ${c.id.slice(prefix.length)}`) }),
      );
    }, { url: server.restUrl, token, user, prefix });
    return page;
  };

  test("the catch-up cursor is stored only after the changes before it reached the listeners", async () => {
    const context = await browser.newContext();
    try {
      const page = await openPage(context, site.url);
      const prefix = `cursor-${Date.now()}-`;
      for (let i = 0; i < 3; i++) {
        const res = await fetch(`${server.restUrl}/user_preferences`, {
          method: "POST",
          headers: { apikey: "dev-anon-key", authorization: `Bearer ${tokenA}`, "content-type": "application/json" },
          body: JSON.stringify({ id: `${prefix}${i}`, theme: "x" }),
        });
        assert.ok(res.ok, `seed: ${res.status}`);
      }
      // A store that notes, with every stored cursor, which versions the listener had been handed by then.
      const checks = await page.evaluate(async ({ url, tokenA, user, prefix }) => {
        const heard = [];
        const stored = [];
        const storage = {
          async load() { return []; },
          async append(_user, record) {
            const cursor = JSON.parse(record.m).p?.c;
            if (cursor) stored.push({ upTo: Number(cursor.split("-")[1]), heard: [...heard] });
          },
          async clear() {},
        };
        window.t.token = tokenA;
        window.t.create({ url, mode: "rpc", user, storage, pull: { tables: ["user_preferences"], pageSize: 1 } });
        window.t.sync.onRemoteChanges((changes) => heard.push(...changes.filter((c) => c.id.startsWith(prefix)).map((c) => c.version)));
        await window.t.sync.pull();
        return { heard, stored };
      }, { url: server.restUrl, tokenA, user: USER_A, prefix });
      assert.equal(checks.heard.length, 3, JSON.stringify(checks));
      for (const { upTo, heard } of checks.stored) {
        const before = checks.heard.filter((v) => v <= upTo);
        assert.deepEqual(heard.filter((v) => v <= upTo), before, `cursor ${upTo} stored before versions ${before} were handed over`);
      }
      assert.ok(checks.stored.some(({ upTo }) => upTo >= Math.max(...checks.heard)), "the last cursor is stored");
    } finally {
      await context.close();
    }
  });

  test("away longer than the feed keeps deletes: listeners hear reset first, then every current row again over several pages, and pull() says so", async () => {
    const user = "cccccccc-0000-4000-8000-0000000000cc";
    const { token, write } = otherDevice(user);
    const prefix = `reset-${Date.now()}-`;
    const context = await browser.newContext();
    try {
      for (let i = 0; i < 5; i++) assert.ok((await write("POST", "", { id: `${prefix}${i}`, theme: "x" })).ok);
      const page = await reader(context, user, token, prefix);
      const pull = () =>
        page.evaluate(async () => {
          const summary = await window.t.sync.pull();
          return { reset: summary.reset, batches: window.batches.splice(0) };
        });
      const first = await pull();
      assert.equal(first.reset, false);
      assert.deepEqual(first.batches.flatMap((b) => b.ids).sort(), ["upsert 0", "upsert 1", "upsert 2", "upsert 3", "upsert 4"]);
      assert.ok(first.batches.every((b) => !b.reset));

      // Two rows deleted, then a month and a day pass: their tombstones are pruned, past this reader's cursor.
      for (const i of [0, 1]) assert.ok((await write("DELETE", `?id=eq.${prefix}${i}`)).ok);
      await admin(server, "tombstones/age", { days: 31 });
      assert.ok((await write("POST", "", { id: `${prefix}5`, theme: "y" })).ok);

      const second = await pull();
      assert.equal(second.reset, true, "pull() says the read started over");
      assert.deepEqual(second.batches[0], { reset: true, ids: [] }, "told before any row of the read that started over");
      assert.ok(second.batches.slice(1).every((b) => !b.reset), "told once");
      assert.deepEqual(
        second.batches.flatMap((b) => b.ids).sort(),
        ["upsert 2", "upsert 3", "upsert 4", "upsert 5"],
        "every current row again, those seen before too; the deleted ones are not among them",
      );
      // The read completed: the next one is an ordinary catch-up from its cursor.
      assert.ok((await write("DELETE", `?id=eq.${prefix}2`)).ok);
      const third = await pull();
      assert.deepEqual(third, { reset: false, batches: [{ reset: false, ids: ["delete 2"] }] });
    } finally {
      await context.close();
    }
  });

  test("a read that started over and failed midway completes at the next pull; a server whose feed SQL is older is named", async () => {
    const user = "cccccccc-0000-4000-8000-0000000000cd";
    const { token, write } = otherDevice(user);
    const prefix = `reset-fail-${Date.now()}-`;
    const context = await browser.newContext();
    try {
      for (let i = 0; i < 6; i++) assert.ok((await write("POST", "", { id: `${prefix}${i}`, theme: "x" })).ok);
      const page = await reader(context, user, token, prefix);
      const pull = () =>
        page.evaluate(async () => {
          const outcome = await window.t.sync.pull().then((s) => ({ reset: s.reset }), (e) => ({ error: e.message }));
          return { ...outcome, batches: window.batches.splice(0), lastError: window.t.sync.stats().lastError };
        });
      assert.equal((await pull()).batches.flatMap((b) => b.ids).length, 6);

      assert.ok((await write("DELETE", `?id=eq.${prefix}0`)).ok);
      await admin(server, "tombstones/age", { days: 31 });
      assert.ok((await write("POST", "", { id: `${prefix}6`, theme: "y" })).ok);
      // The read starts over; its first page arrives and its second fails.
      await admin(server, "faults", { paths: "/rest/v1/rpc/record_sync_changes", failNext: { skip: 1, count: 1, status: 503 } });
      const failed = await pull();
      await admin(server, "faults", {});
      assert.match(failed.error, /catch-up failed: HTTP 503/);
      assert.deepEqual(failed.batches[0], { reset: true, ids: [] }, "told before any row");
      const resumed = await pull();
      assert.equal(resumed.error, undefined, resumed.error);
      // What the app holds: since the last reset it was told, every current row, and the deleted one never.
      const all = [...failed.batches, ...resumed.batches];
      const since = all.slice(all.findLastIndex((b) => b.reset)).flatMap((b) => b.ids);
      assert.deepEqual([...new Set(since)].sort(), ["upsert 1", "upsert 2", "upsert 3", "upsert 4", "upsert 5", "upsert 6"]);
      assert.ok(!all.flatMap((b) => b.ids).includes("upsert 0"));
      assert.ok((await write("DELETE", `?id=eq.${prefix}1`)).ok);
      const next = await pull();
      assert.deepEqual({ reset: next.reset, batches: next.batches }, { reset: false, batches: [{ reset: false, ids: ["delete 1"] }] }, "the read completed");

      // A server whose record_sync_changes predates the client's arguments: PostgREST answers PGRST202.
      await admin(server, "faults", {
        paths: "/rest/v1/rpc/record_sync_changes",
        failNext: { count: 1, status: 404, body: { code: "PGRST202", message: "Could not find the function public.record_sync_changes" } },
      });
      const old = await pull();
      await admin(server, "faults", {});
      assert.match(old.error, /HTTP 404 Could not find the function .*missing or older than this client: run sql\/record_sync_feed\.sql/);
      assert.match(old.lastError ?? "", /record_sync_feed\.sql/);
    } finally {
      await admin(server, "faults", {});
      await context.close();
    }
  });
});

describe("durable queue across crashes and storage faults", () => {
  test("a browser killed with 500 changes pending (persistent profile) sends them when reopened", async () => {
    const { chromium } = await import("playwright-core");
    const profile = tempDir("record-sync-profile-");
    const launch = () =>
      chromium.launchPersistentContext(profile.dir, {
        executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
        headless: true,
        args: CHROMIUM_ARGS,
      });
    try {
      let context = await launch();
      let page = await openPage(context, site.url);
      await create(page);
      await queue(page, "killed-", 500);
      // Let the one transaction of that tick commit, then kill the browser: no pagehide, no unload.
      await page.waitForTimeout(200);
      const pids = readdirSync("/proc").filter((p) => /^\d+$/.test(p)).filter((p) => {
        try {
          const cmd = readFileSync(`/proc/${p}/cmdline`, "utf8");
          return cmd.includes(profile.dir) && !cmd.includes("--type=");
        } catch {
          return false;
        }
      });
      assert.ok(pids.length >= 1, "found the browser process");
      for (const pid of pids) process.kill(Number(pid), "SIGKILL");
      await context.close().catch(() => {});
      const before = await written();
      context = await launch();
      page = await openPage(context, site.url);
      assert.equal(await create(page), true);
      assert.equal(await page.evaluate(() => window.t.sync.pendingChanges().length), 500);
      assert.deepEqual(await flush(page), { confirmed: 500, failed: 0 });
      assert.equal((await written()) - before, 500);
      await context.close();
    } finally {
      profile.remove();
    }
  });

  test("a crashed tab's queue is sent by another tab of the same profile", async () => {
    const context = await browser.newContext();
    try {
      const crashed = await openPage(context, site.url);
      await create(crashed);
      await queue(crashed, "crashed-", 300);
      await crashed.waitForTimeout(100);
      await crashPage(context, crashed);
      const page = await openPage(context, site.url);
      // The crashed tab's lock goes with its process; the new tab restores the queue.
      assert.equal(await create(page), true);
      assert.equal(await page.evaluate(() => window.t.sync.pendingChanges().length), 300);
      assert.deepEqual(await flush(page), { confirmed: 300, failed: 0 });
      assert.equal((await rowsOf(tokenA, "crashed-")).length, 300);
    } finally {
      await context.close();
    }
  });

  test("a second tab follows the first, and takes the queue over within a second of the first crashing", async () => {
    const context = await browser.newContext();
    try {
      const first = await openPage(context, site.url);
      assert.equal(await create(first), true);
      await queue(first, "tab-first-", 200);
      const second = await openPage(context, site.url);
      assert.equal(await create(second), true, "its changes go to the shared queue's inbox");
      assert.deepEqual(await second.evaluate(() => [window.t.sync.stats().leader, window.t.sync.stats().lastError]), [false, null]);
      await queue(second, "tab-second-", 50);
      await first.waitForTimeout(100);
      await crashPage(context, first);
      const crashedAt = Date.now();
      await second.waitForFunction(() => window.t.sync.stats().leader === true && window.t.sync.stats().durable, null, { timeout: 5000 });
      const tookOverMs = Date.now() - crashedAt;
      assert.ok(tookOverMs < 1000, `took over in ${tookOverMs} ms`);
      assert.equal(await second.evaluate(() => window.t.sync.pendingChanges().length), 250, "the first tab's queue and its own");
      assert.equal((await flush(second)).failed, 0);
      assert.equal((await rowsOf(tokenA, "tab-first-")).length, 200);
      assert.equal((await rowsOf(tokenA, "tab-second-")).length, 50);
    } finally {
      await context.close();
    }
  });

  test("without BroadcastChannel a second tab works in memory while the first holds the queue, and takes it over when the first crashes", async () => {
    const context = await browser.newContext();
    try {
      const first = await openPage(context, site.url);
      assert.equal(await create(first), true);
      await queue(first, "tab-first-", 200);
      const second = await openTabInMemory(context);
      assert.match(await second.evaluate(() => window.t.sync.stats().lastError), /another tab holds/);
      await queue(second, "tab-second-", 50);
      await first.waitForTimeout(100);
      await crashPage(context, first);
      const crashedAt = Date.now();
      await second.waitForFunction(() => window.t.sync.stats().durable === true, null, { timeout: 5000 });
      const tookOverMs = Date.now() - crashedAt;
      assert.ok(tookOverMs < 1000, `took over in ${tookOverMs} ms`);
      assert.equal(await second.evaluate(() => window.t.sync.pendingChanges().length), 250, "the first tab's queue and its own");
      assert.equal((await flush(second)).failed, 0);
      assert.equal((await rowsOf(tokenA, "tab-first-")).length, 200);
      assert.equal((await rowsOf(tokenA, "tab-second-")).length, 50);
    } finally {
      await context.close();
    }
  });

  test("without BroadcastChannel a second tab working in memory that crashes: the tab holding the queue sends its changes", async () => {
    const context = await browser.newContext();
    try {
      const first = await openPage(context, site.url);
      assert.equal(await create(first), true);
      const second = await openTabInMemory(context);
      assert.equal(await queue(second, "memory-crash-", 20), 20);
      await crashPage(context, second);
      // The holder watches for pages that die with changes kept in localStorage, and takes them in.
      await first.waitForFunction(() => window.t.sync.stats().pending === 20, null, { timeout: 5000 });
      assert.deepEqual(await flush(first), { confirmed: 20, failed: 0 });
      assert.equal((await rowsOf(tokenA, "memory-crash-")).length, 20);
    } finally {
      await context.close();
    }
  });

  test("a store write lost with the page after its change went out never lets a new change take that change's seq", async () => {
    const context = await browser.newContext();
    try {
      const page = await openPage(context, site.url);
      assert.equal(await create(page, { mode: "rpc" }), true);
      const prefix = `lost-write-${Date.now()}-`;
      // A low-priority change keeps a stored queue (and its client id) across the reload.
      await queue(page, `${prefix}kept-`, 1);
      await page.waitForTimeout(100);
      const read = (what) => page.evaluate(({ u, what }) => window.t.idb((store) => store[what](IDBKeyRange.bound([u], [u, []]))), { u: USER_A, what });
      const [keys, values] = [await read("getAllKeys"), await read("getAll")];
      assert.ok(keys.length > 0, "the queue is stored");
      // A critical change goes out and is written...
      await page.evaluate((id) => window.t.sync.queueCriticalChange("user_preferences", id, "upsert", { id, theme: "sent" }), `${prefix}sent`);
      await waitFor(async () => (await rowsOf(tokenA, `${prefix}sent`)).length === 1, 5000, () => "the critical change did not arrive");
      await page.evaluate(() => window.t.sync.destroy());
      // ...but the store write that held it is lost with the page (it had not committed): the store is as before.
      await page.evaluate(({ u, keys, values }) => window.t.idb((store) => {
        store.delete(IDBKeyRange.bound([u], [u, []]));
        return keys.map((key, i) => store.put(values[i], key)).at(-1);
      }), { u: USER_A, keys, values });
      assert.equal(await create(page, { mode: "rpc" }), true);
      await page.evaluate((id) => window.t.sync.queueCriticalChange("user_preferences", id, "upsert", { id, theme: "new" }), `${prefix}new`);
      assert.equal((await flush(page)).failed, 0);
      assert.equal((await rowsOf(tokenA, `${prefix}new`)).length, 1, "written, not answered from the replay log");
      assert.equal((await rowsOf(tokenA, `${prefix}kept-`)).length, 1);
    } finally {
      await context.close();
    }
  });

  test("a take-over waits for a rest-mode batch of two requests that was half sent, which still finishes", async () => {
    const context = await browser.newContext();
    try {
      const first = await openPage(context, site.url);
      assert.equal(await create(first), true);
      const second = await openTabInMemory(context, { mode: "rest" });
      // Every request takes 400 ms: the first tab crashes while the second tab's batch (two tables, so two
      // requests in rest mode) has its first request out, and the take-over begins before the second goes.
      await admin(server, "faults", { latencyMs: 400 });
      const prefix = `half-${Date.now()}-`;
      await second.evaluate((p) => {
        window.t.sync.queueCriticalChange("user_preferences", `${p}u`, "upsert", { id: `${p}u`, theme: "half" });
        window.t.sync.queueCriticalChange("exercises", `${p}e`, "upsert", { id: `${p}e`, name: "Half squat" });
      }, prefix);
      await second.waitForTimeout(150);
      await crashPage(context, first);
      await second.waitForFunction(() => window.t.sync.stats().durable === true, null, { timeout: 5000 });
      await admin(server, "faults", {});
      assert.equal((await flush(second)).failed, 0);
      assert.equal((await rowsOf(tokenA, prefix)).length, 1);
      assert.equal((await rows(server, "exercises", tokenA, `id=eq.${prefix}e`)).length, 1);
      const s = await second.evaluate(() => window.t.sync.stats());
      assert.deepEqual([s.pending, s.inFlight, s.isProcessing], [0, 0, false]);
    } finally {
      await admin(server, "faults", {});
      await context.close();
    }
  });

  test("a delete and an update a tab sent in memory, their answer lost, then taken over: answered from the replay log, not applied again", async () => {
    const context = await browser.newContext();
    try {
      const prefix = `carried-${Date.now()}-`;
      const [gone, edited] = [`${prefix}gone`, `${prefix}edited`];
      const first = await openPage(context, site.url);
      assert.equal(await create(first), true);
      // A low-priority change keeps a stored queue for the take-over to restore.
      await queue(first, `${prefix}kept-`, 1);
      const second = await openTabInMemory(context);
      await second.evaluate(({ gone, edited }) => {
        window.t.sync.queueCriticalChange("user_preferences", gone, "upsert", { id: gone, theme: "v0" });
        window.t.sync.queueCriticalChange("user_preferences", edited, "upsert", { id: edited, theme: "v0" });
      }, { gone, edited });
      assert.equal((await flush(second)).failed, 0);
      assert.equal((await rowsOf(tokenA, prefix)).length, 2);
      // The tab in memory sends a delete and an update; the server applies them and the answer is lost.
      // Two drops: Chromium itself resends a request once when its reused keep-alive connection closes without
      // an answer (a replay the server answers from its log), and the second drop reaches the page.
      await admin(server, "faults", { paths: "/rest/v1/rpc/", commitThenDropNext: 2 });
      const stats = await second.evaluate(async ({ gone, edited }) => {
        const sync = window.t.sync;
        const retries = sync.stats().retries;
        sync.queueCriticalChange("user_preferences", gone, "delete");
        sync.queueCriticalChange("user_preferences", edited, "update", { theme: "v1" });
        // Paused as soon as the attempt has failed, before its retry (a backoff of at least half a second).
        for (const start = Date.now(); sync.stats().retries === retries && Date.now() - start < 5000; ) {
          await new Promise((r) => setTimeout(r, 2));
        }
        sync.pause();
        return sync.stats();
      }, { gone, edited });
      assert.deepEqual([stats.pending, stats.inFlight], [2, 0]);
      await admin(server, "faults", {});
      assert.equal((await rowsOf(tokenA, gone)).length, 0, "the delete was applied");
      assert.equal((await rowsOf(tokenA, edited))[0]?.theme, "v1", "the update was applied");
      const [firstSent] = await deleteBodies(second);
      // Another device writes both records in the meantime.
      await otherDeviceWrites([{ id: gone, theme: "other" }, { id: edited, theme: "other" }]);
      await crashPage(context, first);
      await second.waitForFunction(() => window.t.sync.stats().durable === true, null, { timeout: 5000 });
      const summary = await second.evaluate(async () => {
        window.t.sync.resume();
        const s = await window.t.sync.forceSyncAll();
        return { confirmed: s.confirmed, failed: s.failed.length };
      });
      assert.deepEqual(summary, { confirmed: 3, failed: 0 }, "the kept change, and the two answered from the log");
      const again = await deleteBodies(second);
      assert.equal((await rowsOf(tokenA, gone))[0]?.theme, "other", "the delete was not applied again");
      assert.equal((await rowsOf(tokenA, edited))[0]?.theme, "other", "the update was not applied again");
      assert.deepEqual(identity(again.at(-1)), identity(firstSent), "sent again as the writes they were");
      assert.equal((await rowsOf(tokenA, `${prefix}kept-`)).length, 1);
    } finally {
      await admin(server, "faults", {});
      await context.close();
    }
  });

  test("a plan a tab in memory created, then pointed at a model it created after: taken over, the model still goes first", async () => {
    const context = await browser.newContext();
    const tables = { training_plans: { parents: ["training_models"] } };
    try {
      const prefix = `carried-parent-${Date.now()}-`;
      const [plan, model] = [`${prefix}plan`, `${prefix}model`];
      const first = await openPage(context, site.url);
      assert.equal(await create(first, { tables }), true);
      await queue(first, `${prefix}kept-`, 1);
      const second = await openTabInMemory(context, { tables });
      // Paused: the tab's writes are still queued when it takes over, each with its seq.
      await second.evaluate(({ plan, model }) => {
        const sync = window.t.sync;
        sync.pause();
        sync.queueCriticalChange("training_plans", plan, "upsert", { id: plan, name: "Plan" });
        sync.queueCriticalChange("training_models", model, "upsert", { id: model, name: "Model" });
        sync.queueCriticalChange("training_plans", plan, "update", { model_id: model });
      }, { plan, model });
      await crashPage(context, first);
      await second.waitForFunction(() => window.t.sync.stats().durable === true, null, { timeout: 5000 });
      const summary = await second.evaluate(async () => {
        window.t.sync.resume();
        const s = await window.t.sync.forceSyncAll();
        return { confirmed: s.confirmed, failed: s.failed.map((f) => `${f.table} ${f.error?.code} ${f.error?.message}`) };
      });
      // The plan first would be refused by the foreign key (23503) and land in the failed list.
      assert.deepEqual(summary, { confirmed: 3, failed: [] });
      assert.equal((await rows(server, "training_plans", tokenA, `id=eq.${plan}`))[0]?.model_id, model);
      assert.equal((await rows(server, "training_models", tokenA, `id=eq.${model}`)).length, 1);
    } finally {
      await context.close();
    }
  });

  test("a tab that took the queue over and died while its last request was out: the next tab resends that write from its early entry as the write it was", async () => {
    const context = await browser.newContext();
    try {
      const prefix = `orphan-${Date.now()}-`;
      const gone = `${prefix}gone`;
      const first = await openPage(context, site.url);
      assert.equal(await create(first), true);
      await queue(first, `${prefix}kept-`, 1);
      const second = await openTabInMemory(context);
      await second.evaluate((id) => window.t.sync.queueCriticalChange("user_preferences", id, "upsert", { id, theme: "v0" }), gone);
      assert.equal((await flush(second)).failed, 0);
      // The delete is applied and its answer lost (Chromium resends a request once by itself when its reused
      // keep-alive connection closes without an answer, hence two drops); its retry is then out for 3 s (a
      // request the server never reads: the page is gone by then) when the first tab crashes. The second takes
      // the queue over and, while it waits for that request, keeps its whole queue in its early entry
      // (localStorage) with the next change queued; then it crashes too.
      await admin(server, "faults", { paths: "/rest/v1/rpc/", commitThenDropNext: 2 });
      await second.evaluate(async (id) => {
        const sync = window.t.sync;
        const retries = sync.stats().retries;
        sync.queueCriticalChange("user_preferences", id, "delete");
        for (const start = Date.now(); sync.stats().retries === retries && Date.now() - start < 5000; ) {
          await new Promise((r) => setTimeout(r, 2));
        }
      }, gone);
      await admin(server, "faults", { paths: "/rest/v1/rpc/", latencyMs: 3000 });
      assert.equal((await rowsOf(tokenA, gone)).length, 0, "the delete was applied");
      await second.waitForFunction(() => window.t.sync.stats().inFlight === 1, null, { timeout: 5000 });
      await crashPage(context, first);
      await second.waitForFunction(() => window.t.sync.stats().restoring === true, null, { timeout: 5000 });
      await queue(second, `${prefix}later-`, 1);
      await second.waitForFunction(
        (id) => Object.keys(localStorage).some((k) => k.startsWith("record-sync:early:") && localStorage.getItem(k).includes(id)),
        gone,
        { timeout: 1000 },
      );
      const [sentFirst] = await deleteBodies(second);
      await crashPage(context, second);
      await admin(server, "faults", {});
      // Another device writes the record again.
      await otherDeviceWrites([{ id: gone, theme: "other" }]);
      const third = await openPage(context, site.url);
      assert.equal(await create(third), true);
      assert.equal((await flush(third)).failed, 0);
      assert.equal((await rowsOf(tokenA, gone))[0]?.theme, "other", "the delete was not applied again");
      assert.equal((await rowsOf(tokenA, `${prefix}kept-`)).length, 1);
      assert.equal((await rowsOf(tokenA, `${prefix}later-`)).length, 1);
      const again = await deleteBodies(third);
      assert.deepEqual(identity(again.at(-1)), identity(sentFirst), "sent again as the write it was");
    } finally {
      await admin(server, "faults", {});
      await context.close();
    }
  });

  test("leaving the page sends what is due soon with keepalive; the rest waits in storage", async () => {
    const context = await browser.newContext();
    try {
      let page = await openPage(context, site.url);
      await create(page, { mode: "rpc" });
      const before = await written();
      await queue(page, "hide-soon-", 5, "queueMediumChange");
      await queue(page, "hide-later-", 5, "queueLowChange");
      // Navigating away fires pagehide; the medium changes (due in 30 s) must not wait for that.
      await page.goto("about:blank");
      await waitFor(async () => (await rowsOf(tokenA, "hide-soon-")).length === 5, 5000, () => "the medium changes did not arrive");
      assert.equal((await rowsOf(tokenA, "hide-later-")).length, 0, "low-priority changes stay queued");
      await page.close();
      page = await openPage(context, site.url);
      await create(page, { mode: "rpc" });
      // On a loaded machine the closed page may still hold the queue for a moment: this one follows it until then,
      // and a follower's first pendingChanges() is the leader's list, asked for and not yet come.
      await page.waitForFunction(() => window.t.sync.stats().leader, null, { timeout: 10000 });
      // When the page went before the answer came, the medium writes are still stored, with their seqs, and
      // their resend is answered from the replay log; when the answer came first, they are settled.
      const pending = await page.evaluate(() => window.t.sync.pendingChanges().map((p) => p.id).sort());
      const later = [0, 1, 2, 3, 4].map((i) => `hide-later-${i}`);
      const soon = [0, 1, 2, 3, 4].map((i) => `hide-soon-${i}`);
      assert.ok([later.join(), [...later, ...soon].join()].includes(pending.join()), `pending: ${pending}`);
      assert.equal((await flush(page)).failed, 0);
      assert.equal((await written()) - before, 10, "each change applied once");
    } finally {
      await context.close();
    }
  });

  test("forceSyncAll() right after construction waits for the stored queue", async () => {
    const context = await browser.newContext();
    try {
      const page = await openPage(context, site.url);
      await create(page);
      await queue(page, "early-flush-", 3);
      await page.waitForTimeout(50);
      await page.evaluate(() => window.t.sync.destroy());
      const summary = await page.evaluate(async ({ url, token, user }) => {
        window.t.token = token;
        const sync = window.t.create({ url, mode: "rpc", user });
        const s = await sync.forceSyncAll();
        return { confirmed: s.confirmed, failed: s.failed.length, pending: sync.stats().pending };
      }, { url: server.restUrl, token: tokenA, user: USER_A });
      assert.deepEqual(summary, { confirmed: 3, failed: 0, pending: 0 });
      assert.equal((await rowsOf(tokenA, "early-flush-")).length, 3);
    } finally {
      await context.close();
    }
  });

  test("forceSyncAll() counts every confirmation since the call, those of critical batches that left while it read the inbox too", async () => {
    const context = await browser.newContext();
    try {
      const page = await openPage(context, site.url);
      // A custom transport that answers at once: critical batches leave in the next microtask and are confirmed
      // one after the other while forceSyncAll() first reads the other tabs' inbox (an IndexedDB read). Those
      // confirmations are the call's too.
      const summary = await page.evaluate(async (user) => {
        const sent = [];
        const sync = new window.t.rs.RecordSync({
          user,
          batchSize: 20,
          transport: { send: async (batch) => batch.changes.map((c) => (sent.push(c.id), { seq: c.seq, status: "applied" })) },
        });
        for (let i = 0; i < 200 && !sync.stats().durable; i++) await new Promise((r) => setTimeout(r, 10));
        for (let i = 0; i < 200; i++) sync.queueCriticalChange("user_preferences", `count-${i}`, "upsert", { id: `count-${i}`, theme: `c${i}` });
        const s = await sync.forceSyncAll();
        const result = { durable: sync.stats().durable, confirmed: s.confirmed, conflicts: s.conflicts, failed: s.failed.length, synced: sync.stats().successfulSyncs, sent: new Set(sent).size };
        await sync.clearPersisted();
        return result;
      }, USER_A);
      assert.deepEqual(summary, { durable: true, confirmed: 200, conflicts: 0, failed: 0, synced: 200, sent: 200 });
    } finally {
      await context.close();
    }
  });

  test("a store that throws: lastError says so, nothing in memory is lost, and it all syncs", async () => {
    const context = await browser.newContext();
    try {
      const page = await openPage(context, site.url);
      const result = await page.evaluate(async (args) => {
        window.t.token = args.token;
        const calls = [];
        const sync = window.t.create({
          url: args.url,
          mode: "rpc",
          user: args.user,
          storage: {
            async load() { return []; },
            append(user, text, replace) { calls.push(replace); throw new DOMException("The quota has been exceeded.", "QuotaExceededError"); },
            async clear() {},
          },
        });
        await window.t.durable();
        for (let i = 0; i < 10; i++) sync.queueLowChange("user_preferences", `faulty-${i}`, "upsert", { id: `faulty-${i}`, theme: "x" });
        await new Promise((r) => setTimeout(r, 50));
        const s = sync.stats();
        const pending = sync.pendingChanges().length;
        const summary = await sync.forceSyncAll();
        return { lastError: s.lastError, pending, calls: calls.length, confirmed: summary.confirmed };
      }, { url: server.restUrl, user: USER_A, token: tokenA });
      assert.match(result.lastError, /storage: could not save the queue \(QuotaExceededError/);
      assert.equal(result.pending, 10);
      assert.ok(result.calls >= 1);
      assert.equal(result.confirmed, 10);
    } finally {
      await context.close();
    }
  });

  test("a store whose load never settles: after 10 s the queue works in memory and says why", async () => {
    const context = await browser.newContext();
    try {
      const page = await openPage(context, site.url);
      const result = await page.evaluate(async (args) => {
        window.t.token = args.token;
        const sync = window.t.create({
          url: args.url,
          mode: "rpc",
          user: args.user,
          storage: { load: () => new Promise(() => {}), async append() {}, async clear() {} },
        });
        for (let i = 0; i < 3; i++) sync.queueHighChange("user_preferences", `stalled-${i}`, "upsert", { id: `stalled-${i}`, theme: "x" });
        const stalled = new Promise((r) => setTimeout(() => r("stalled"), 15000));
        const summary = await Promise.race([sync.forceSyncAll(), stalled]);
        return { summary: summary === "stalled" ? summary : summary.confirmed, lastError: sync.stats().lastError, durable: sync.stats().durable };
      }, { url: server.restUrl, user: USER_A, token: tokenA });
      assert.equal(result.summary, 3);
      assert.equal(result.durable, false);
      assert.match(result.lastError, /storage: storage\.load did not answer within 10 s/);
    } finally {
      await context.close();
    }
  });

  test("a corrupt stored record is set aside: the rest is restored, durability stays on, lastError names it", async () => {
    const context = await browser.newContext();
    try {
      let page = await openPage(context, site.url);
      await create(page);
      await queue(page, "corrupt-", 3);
      await page.waitForTimeout(50);
      await page.evaluate(() => window.t.sync.destroy());
      // A record after the good ones that cannot be read.
      await page.evaluate((user) => window.t.idb((store) => store.put("{not json", [user, 1000])), USER_A);
      assert.equal(await create(page), true, "durability stays on");
      const s = await page.evaluate(() => ({ ...window.t.sync.stats(), ids: window.t.sync.pendingChanges().map((p) => p.id) }));
      assert.match(s.lastError, /storage: stored record (\d+) of \1: not JSON .*set aside under the key "aaaaaaaa-0000-4000-8000-00000000000a#unreadable"/);
      assert.deepEqual(s.ids.sort(), ["corrupt-0", "corrupt-1", "corrupt-2"]);
      await queue(page, "corrupt-more-", 2);
      await page.waitForTimeout(50);
      const kept = await page.evaluate(() => window.t.idb((store) => store.getAll()));
      assert.ok(kept.includes("{not json"), "the unreadable record is kept aside");
      // Durable again: a reload restores the queue, without the unreadable record.
      await page.close();
      page = await openPage(context, site.url);
      assert.equal(await create(page), true);
      assert.equal(await page.evaluate(() => window.t.sync.stats().lastError), null);
      assert.deepEqual(await flush(page), { confirmed: 5, failed: 0 });
      // Policy: what was set aside stays until clearPersisted() (or the next restore that sets records aside).
      assert.ok((await page.evaluate(() => window.t.idb((store) => store.getAll()))).includes("{not json"));
      await page.evaluate(() => window.t.sync.clearPersisted());
      assert.ok(!(await page.evaluate(() => window.t.idb((store) => store.getAll()))).includes("{not json"), "clearPersisted() drops it");
    } finally {
      await context.close();
    }
  });

  test("a queue stored in the previous format (core snapshot v1) is restored and sent", async () => {
    const context = await browser.newContext();
    try {
      const page = await openPage(context, site.url);
      const now = Date.now();
      const v1 = JSON.stringify({
        version: 1,
        nextSeq: 3,
        entries: [1, 2].map((n) => ({
          table: "user_preferences", id: `v1-${n}`, op: "upsert", data: { id: `v1-${n}`, theme: "old" }, priority: "low",
          order: n, seq: n, queuedAt: now, deadline: now + 300000, attempts: 0, changes: 1, state: { kind: "pending" },
        })),
      });
      await page.evaluate(({ user, v1 }) => window.t.idb((store) => store.put(v1, [user, 0])), { user: USER_A, v1 });
      assert.equal(await create(page), true);
      const pending = await page.evaluate(() => window.t.sync.pendingChanges().map((p) => `${p.id}:${p.seq}`));
      assert.deepEqual(pending, ["v1-1:1", "v1-2:2"]);
      assert.deepEqual(await flush(page), { confirmed: 2, failed: 0 });
      assert.equal((await rowsOf(tokenA, "v1-")).length, 2);
    } finally {
      await context.close();
    }
  });

  test("clearPersisted() right after construction drops the early changes too: a reload restores nothing", async () => {
    const context = await browser.newContext();
    try {
      const page = await openPage(context, site.url);
      await page.evaluate(async ({ url, user, token }) => {
        window.t.token = token;
        const sync = window.t.create({ url, mode: "rpc", user });
        for (let i = 0; i < 20; i++) sync.queueLowChange("user_preferences", `cleared-early-${i}`, "upsert", { id: `cleared-early-${i}` });
        await Promise.resolve();
        if (!Object.keys(localStorage).some((k) => k.startsWith("record-sync:early:"))) throw new Error("no early entry was kept");
        await sync.clearPersisted();
      }, { url: server.restUrl, user: USER_A, token: tokenA });
      await page.reload();
      await page.waitForFunction(() => window.ready === true);
      assert.equal(await create(page), true);
      assert.equal(await page.evaluate(() => window.t.sync.stats().pending), 0);
      assert.equal(await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("record-sync:")).length), 0);
    } finally {
      await context.close();
    }
  });

  test("a follower's change still in the inbox when the queue changes hands lands under the new holder's newer one", async () => {
    const context = await browser.newContext();
    try {
      const page = await openPage(context, site.url);
      const id = `inbox-order-${Date.now()}`;
      // A change another tab left in the inbox (its leader closed before taking it in), as that tab wrote it.
      const now = Date.now();
      const m = JSON.stringify({ v: 3, c: "client-gone", n: 2, r: false, w: [{ t: "user_preferences", i: id, e: [{ o: "upsert", d: 0, p: "low", q: 1, s: 1, a: now, e: now + 300000, n: 0, c: 1 }] }] });
      await page.evaluate(({ user, record }) => window.t.idb((store) => store.put(record, [`${user}\u0000inbox`, Date.now(), "gone", 0])), { user: USER_A, record: { m, r: [{ id, theme: "older" }] } });
      // The next holder's own change to the same record, queued while it restores: the newer one.
      const sent = await page.evaluate(async ({ url, user, token, id }) => {
        window.t.token = token;
        const sync = window.t.create({ url, mode: "rpc", user });
        sync.queueLowChange("user_preferences", id, "upsert", { id, theme: "newer" });
        await window.t.durable(sync);
        const summary = await sync.forceSyncAll();
        return summary.failed.length;
      }, { url: server.restUrl, user: USER_A, token: tokenA, id });
      assert.equal(sent, 0);
      const [row] = await rowsOf(tokenA, id);
      assert.equal(row.theme, "newer", "the inbox's older change went first");
      const inbox = await page.evaluate((user) => window.t.idb((store) => store.count(IDBKeyRange.bound([`${user}\u0000inbox`], [`${user}\u0000inbox`, []]))), USER_A);
      assert.equal(inbox, 0, "the inbox record was deleted once stored in the queue");
    } finally {
      await context.close();
    }
  });

  test("a queue stored in format 2 (rows inline in the text) is restored and sent", async () => {
    const context = await browser.newContext();
    try {
      const page = await openPage(context, site.url);
      const now = Date.now();
      const entry = (n) => ({
        table: "user_preferences", id: `v2-${n}`, op: "upsert", data: { id: `v2-${n}`, theme: "two" }, priority: "low",
        order: n, seq: n, queuedAt: now, deadline: now + 300000, attempts: 0, changes: 1, state: { kind: "pending" },
      });
      const record = (r, ns) => JSON.stringify({ v: 2, c: "client-v2", n: 4, r, w: ns.map((n) => ({ t: "user_preferences", i: `v2-${n}`, e: [entry(n)] })) });
      // A replacing record, then a log record that adds a third write.
      const stored = [record(true, [1, 2]), record(false, [3])];
      await page.evaluate(({ user, stored }) => window.t.idb((store) => stored.map((text, n) => store.put(text, [user, n])).pop()), { user: USER_A, stored });
      assert.equal(await create(page), true);
      const pending = await page.evaluate(() => window.t.sync.pendingChanges().map((p) => `${p.id}:${p.seq}`));
      assert.deepEqual(pending, ["v2-1:1", "v2-2:2", "v2-3:3"]);
      assert.deepEqual(await flush(page), { confirmed: 3, failed: 0 });
      assert.deepEqual((await rowsOf(tokenA, "v2-")).map((r) => r.theme), ["two", "two", "two"]);
    } finally {
      await context.close();
    }
  });

  test("an app's store that hands back the copies it keeps never sees them changed by later edits", async () => {
    const context = await browser.newContext();
    try {
      const page = await openPage(context, site.url);
      // The default store's loads are fresh structured clones, taken as the queue's own; an app's store may
      // return the very copies it keeps (README: it copies at append), which a later patch must not change.
      const result = await page.evaluate(async () => {
        const records = [];
        const store = {
          async load() { return records.slice(); },
          append(user, record, replace) { if (replace) records.length = 0; records.push(structuredClone(record)); },
          async clear() { records.length = 0; },
        };
        const transport = { send: () => new Promise(() => {}) };
        const make = () => new window.t.rs.RecordSync({ user: "keeper", storage: store, transport, syncIntervals: { 3: 86_400_000 } });
        let sync = make();
        await window.t.durable(sync);
        sync.queueLowChange("items", "k-1", "upsert", { id: "k-1", name: "first" });
        await new Promise((r) => setTimeout(r, 50));
        sync.destroy();
        const kept = records.at(-1).r[0];
        sync = make();
        await window.t.durable(sync);
        sync.queueLowChange("items", "k-1", "update", { name: "second" });
        const pending = sync.pendingChanges().map((c) => c.data);
        sync.destroy();
        return { kept: { ...kept }, pending };
      });
      assert.deepEqual(result, { kept: { id: "k-1", name: "first" }, pending: [{ id: "k-1", name: "second" }] });
    } finally {
      await context.close();
    }
  });

  test("a row restored from storage is sent as the JSON the app queued (Dates, toJSON, nested objects)", async () => {
    const context = await browser.newContext();
    try {
      const page = await openPage(context, site.url);
      // Rows are stored by structured clone, which keeps a Date, drops a class's toJSON and throws on a nested
      // function: what the server gets after a reload must still be what JSON.stringify made of the row.
      const sent = await page.evaluate(async () => {
        class Money { constructor(c) { this.cents = c; } toJSON() { return `${this.cents / 100} EUR`; } }
        const row = { id: "j-1", at: new Date(Date.UTC(2026, 0, 2)), price: new Money(250), nested: { f() {}, list: [1, new Money(5)] }, skip: undefined };
        const expected = JSON.stringify(row);
        const batches = [];
        const make = () => new window.t.rs.RecordSync({ user: "json-user", transport: { send: async (batch) => {
          batches.push(batch.changes.map((c) => JSON.stringify(c.data)));
          return batch.changes.map((c) => ({ seq: c.seq, status: "applied" }));
        } } });
        let sync = make();
        await window.t.durable(sync);
        sync.queueLowChange("items", "j-1", "upsert", row);
        row.nested.list.push("changed later");
        await new Promise((r) => setTimeout(r, 50));
        sync.destroy();
        sync = make();
        await window.t.durable(sync);
        await sync.forceSyncAll();
        sync.destroy();
        return { expected, batches };
      });
      assert.deepEqual(sent.batches, [[sent.expected]]);
      assert.match(sent.expected, /"price":"2.5 EUR"/);
    } finally {
      await context.close();
    }
  });

  test("without IndexedDB the queue is in memory and says so; clearPersisted drops a stored queue", async () => {
    const context = await browser.newContext();
    try {
      const page = await openPage(context, site.url);
      const memory = await page.evaluate(({ url }) => {
        const sync = new window.t.rs.RecordSync({ transport: { url, apiKey: "dev-anon-key" }, storage: null });
        const s = sync.stats();
        sync.destroy();
        return { durable: s.durable, user: s.user };
      }, { url: server.restUrl });
      assert.deepEqual(memory, { durable: false, user: null });
      await create(page);
      await queue(page, "cleared-", 5);
      await page.evaluate(() => window.t.sync.clearPersisted());
      assert.equal(await create(page), true);
      assert.equal(await page.evaluate(() => window.t.sync.stats().pending), 0, "the stored queue was dropped");
    } finally {
      await context.close();
    }
  });
});
