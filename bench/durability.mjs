// `npm run bench:durability` (needs `npm run build` first): what durability costs, in headless Chromium with
// real IndexedDB, through the built package, persistence on and off in the same run.
//   - commit time of the one IndexedDB transaction that stores 1,000 changes queued in one tick
//     (creation of the readwrite transaction to its `complete` event);
//   - main-thread cost of queueChange: 1,000 calls plus the tick that follows them (where the write is
//     prepared and started), per change, with the default IndexedDB store, with `storage: null`, and with a
//     custom store that keeps nothing (the library's own share of the cost);
//   - the floor under "on": the same 1,000 rows made and put into IndexedDB in one transaction by plain JS,
//     without record-sync, less making them alone. Whatever stores the rows pays this structured clone;
//     what "on" costs beyond "off" plus this floor is record-sync's own.
//   - two tabs sharing one queue (src/web/tabs.rs): the follower's queueChange + tick cost next to the
//     leader's, and the time from a follower's queueChange until its own stats() show the shared queue with it
//     (inbox write, BroadcastChannel, the leader's read of the inbox and its write, the leader's published state).
import { launchBrowser } from "../tests/e2e/helpers.mjs";
import { servePage, openPage } from "../tests/durable/page.mjs";

const ROUNDS = Number(process.env.ROUNDS || 15);
const site = await servePage();
const browser = await launchBrowser();
try {
  const context = await browser.newContext();
  const page = await openPage(context, site.url);
  const result = await page.evaluate(async (rounds) => {
    const { RecordSync } = window.t.rs;
    // Times every readwrite transaction from creation to `complete`.
    const commits = [];
    const transaction = IDBDatabase.prototype.transaction;
    IDBDatabase.prototype.transaction = function (...args) {
      const tx = transaction.apply(this, args);
      if (args[1] === "readwrite") {
        const start = performance.now();
        tx.addEventListener("complete", () => commits.push(performance.now() - start));
      }
      return tx;
    };
    // Times the main thread's share of the store's put (the structured clone of the record's text).
    let putMs = 0;
    const put = IDBObjectStore.prototype.put;
    IDBObjectStore.prototype.put = function (...args) {
      const start = performance.now();
      try {
        return put.apply(this, args);
      } finally {
        putMs += performance.now() - start;
      }
    };
    const macrotask = () => new Promise((r) => { const c = new MessageChannel(); c.port1.onmessage = r; c.port2.postMessage(0); });
    const transport = { send: async (batch) => batch.changes.map((c) => ({ seq: c.seq, status: "applied" })) };
    const make = async (storage, user) => {
      const sync = new RecordSync({ transport, user, ...(storage === undefined ? {} : { storage }) });
      if (storage !== null) while (!sync.stats().durable) await new Promise((r) => setTimeout(r, 5));
      return sync;
    };
    const on = await make(undefined, "bench-on");
    const off = await make(null, "bench-off");
    // A store that keeps nothing: the part of the cost that is the library's own (journal and JSON).
    const noop = await make({ async load() { return []; }, append() {}, async clear() {} }, "bench-noop");
    await macrotask();
    const cost = { on: [], off: [], noop: [], idb: [], rows: [] };
    const db = await new Promise((resolve, reject) => {
      const open = indexedDB.open("bench-floor", 1);
      open.onupgradeneeded = () => open.result.createObjectStore("s");
      open.onsuccess = () => resolve(open.result);
      open.onerror = () => reject(open.error);
    });
    // The floor: the rows alone, put as one record (no record-sync), and the rows made but not stored.
    const idb = {
      queueLowChange(_t, _id, _op, row) { (this.rows ??= []).push(row); },
      tick() {
        const tx = db.transaction("s", "readwrite");
        tx.objectStore("s").put({ r: this.rows }, 0);
        tx.commit();
        this.rows = [];
      },
    };
    const rows = { queueLowChange() {}, tick() {} };
    const puts = [];
    const commit = [];
    const row = (i, r) => ({ id: `r${r}-${i}`, name: `exercise ${i}`, series: 3, reps: 10, weight: 42.5, notes: "x".repeat(200), last_changed: new Date().toISOString() });
    for (let r = 0; r < rounds; r++) {
      const order = [["on", on], ["off", off], ["noop", noop], ["idb", idb], ["rows", rows]];
      for (const [name, sync] of r % 2 ? order.reverse() : order) {
        await macrotask();
        const before = commits.length;
        const putBefore = putMs;
        const t0 = performance.now();
        for (let i = 0; i < 1000; i++) sync.queueLowChange("selected_exercises", `r${r}-${i}`, "upsert", row(i, r));
        sync.tick?.();
        await macrotask(); // the tick (a microtask) has run
        cost[name].push((performance.now() - t0) / 1000);
        if (name === "on") puts.push((putMs - putBefore) / 1000);
        if (name === "on") {
          while (commits.length === before) await new Promise((res) => setTimeout(res, 1));
          commit.push(commits[before]);
        }
      }
    }
    on.destroy();
    off.destroy();
    noop.destroy();
    const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const max = (xs) => Math.max(...xs);
    return {
      rounds,
      commitMs: { median: median(commit), max: max(commit) },
      queueChangeUs: {
        on: median(cost.on) * 1000,
        off: median(cost.off) * 1000,
        noop: median(cost.noop) * 1000,
        put: median(puts) * 1000,
        floor: (median(cost.idb) - median(cost.rows)) * 1000,
      },
    };
  }, ROUNDS);
  const tabs = await sharedQueue(context);
  const ratio = result.queueChangeUs.on / result.queueChangeUs.off;
  console.log(`durability (headless Chromium, ${result.rounds} rounds of 1,000 changes of ~300 bytes queued in one tick)`);
  console.log(`  IndexedDB commit of the tick's one transaction: median ${result.commitMs.median.toFixed(1)} ms, max ${result.commitMs.max.toFixed(1)} ms`);
  const q = result.queueChangeUs;
  const own = q.on - q.off - q.floor;
  console.log(`  queueChange + its tick, per change: persistence on ${q.on.toFixed(2)} us, off ${q.off.toFixed(2)} us (on/off ${ratio.toFixed(2)}); with a store that keeps nothing ${q.noop.toFixed(2)} us; of "on", IndexedDB's put ${q.put.toFixed(2)} us`);
  console.log(`  the floor: the same rows put into IndexedDB by plain JS, no record-sync: ${q.floor.toFixed(2)} us per change (${((100 * q.floor) / q.off).toFixed(0)} % of off)`);
  console.log(`  record-sync's own cost of persistence (on - off - floor): ${own.toFixed(2)} us per change, ${((100 * own) / q.off).toFixed(0)} % of off (target <= 20 %)`);
  console.log(`two tabs, one queue (${tabs.rounds} rounds)`);
  console.log(`  queueChange + its tick, per change (1,000 in one tick): leader ${tabs.leaderUs.toFixed(2)} us, follower ${tabs.followerUs.toFixed(2)} us`);
  console.log(`  a follower's change until its own stats() show it in the shared queue: median ${tabs.oneMs.median.toFixed(1)} ms, max ${tabs.oneMs.max.toFixed(1)} ms (one change); median ${tabs.thousandMs.median.toFixed(1)} ms (1,000 in one tick)`);
} finally {
  await browser.close();
  await site.close();
}

/** Two pages of one context on one user's queue: the second follows the first. */
async function sharedQueue(context) {
  const [leader, follower] = [await openPage(context, site.url), await openPage(context, site.url)];
  const make = (page) =>
    page.evaluate(async () => {
      const transport = { send: async (batch) => batch.changes.map((c) => ({ seq: c.seq, status: "applied" })) };
      window.sync = new window.t.rs.RecordSync({ transport, user: "bench-tabs" });
      while (!window.sync.stats().durable) await new Promise((r) => setTimeout(r, 5));
      return window.sync.stats().leader;
    });
  if ((await make(leader)) !== true || (await make(follower)) !== false) throw new Error("expected a leader and a follower");
  const cost = (page, tag, rounds) =>
    page.evaluate(
      async ({ tag, rounds }) => {
        const macrotask = () => new Promise((r) => { const c = new MessageChannel(); c.port1.onmessage = r; c.port2.postMessage(0); });
        const row = (id) => ({ id, name: "exercise", series: 3, reps: 10, weight: 42.5, notes: "x".repeat(200), last_changed: new Date().toISOString() });
        const xs = [];
        for (let r = 0; r < rounds; r++) {
          await macrotask();
          const t0 = performance.now();
          for (let i = 0; i < 1000; i++) window.sync.queueLowChange("selected_exercises", `${tag}${r}-${i}`, "upsert", row(`${tag}${r}-${i}`));
          await macrotask();
          xs.push(((performance.now() - t0) / 1000) * 1000);
          await new Promise((res) => setTimeout(res, 50));
        }
        return xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
      },
      { tag, rounds },
    );
  const rounds = Math.max(3, Math.round(ROUNDS / 3));
  const leaderUs = await cost(leader, "L", rounds);
  const followerUs = await cost(follower, "F", rounds);
  // Until the follower's stats() count the change(s) it just queued.
  const latency = (count, rounds) =>
    follower.evaluate(
      async ({ count, rounds }) => {
        const xs = [];
        for (let r = 0; r < rounds; r++) {
          await new Promise((res) => setTimeout(res, 20));
          const want = window.sync.stats().pending + count;
          const t0 = performance.now();
          const seen = new Promise((res) => {
            const off = window.sync.subscribe((s) => { if (s.pending >= want) { off(); res(); } });
          });
          for (let i = 0; i < count; i++) window.sync.queueLowChange("selected_exercises", `lat${count}-${r}-${i}`, "upsert", { id: `lat${count}-${r}-${i}`, n: i });
          await seen;
          xs.push(performance.now() - t0);
        }
        xs.sort((a, b) => a - b);
        return { median: xs[Math.floor(xs.length / 2)], max: xs[xs.length - 1] };
      },
      { count, rounds },
    );
  const oneMs = await latency(1, 20);
  const thousandMs = await latency(1000, rounds);
  await leader.evaluate(() => window.sync.clearPersisted());
  return { rounds, leaderUs, followerUs, oneMs, thousandMs };
}
