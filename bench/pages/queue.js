// queueChange cost in the browser, through the built package. performance.now() is too coarse for one call
// (5 us when cross-origin isolated), so calls are timed in blocks and each block gives one sample of the mean
// cost per call in it; p50 and p99 are over those samples.
import { RecordSync, SyncPriority } from "/pkg/index.js";

const BLOCK = 20;
const DAY = 86_400_000;

// Nothing is sent while measuring: every interval is a day, and the transport answers without a network. The
// queue stays in memory (`storage: null`): each instance starts empty, and the cost of persisting is
// bench/durability.mjs's figure (with persistence on, one instance would restore the previous one's queue).
const options = () => ({
  storage: null,
  transport: { send: async (batch) => batch.changes.map((c) => ({ seq: c.seq, status: "applied" })) },
  syncIntervals: { [SyncPriority.CRITICAL]: DAY, [SyncPriority.HIGH]: DAY, [SyncPriority.MEDIUM]: DAY, [SyncPriority.LOW]: DAY },
});

/** A selected exercise as the demo writes it: ten columns. */
const row = (i) => ({
  id: `se-${i}`,
  block_id: `block-${i % 50}`,
  exercise_id: `exercise-${i % 8}`,
  name: `Back squat ${i}`,
  position: i % 7,
  series: [
    { reps: 8, weight: 60 },
    { reps: 8, weight: 62.5 },
    { reps: 6, weight: 65 },
  ],
  rest_seconds: 120,
  notes: null,
  user_id: "7f1c2a3e-0000-4000-8000-000000000001",
  last_changed: new Date(1767258000000 + i).toISOString(),
});

const tick = () => new Promise((ok) => setTimeout(ok, 0));
const microtasks = async () => {
  await null;
  await null;
};

function percentiles(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { p50: at(0.5), p99: at(0.99), mean: s.reduce((a, b) => a + b, 0) / s.length, samples: s.length };
}

/**
 * @param {{ calls: number, distinct: boolean, subscriber: boolean, perEvent: boolean }} o
 * perEvent: each call is followed by the microtask tick it schedules (what one input event costs: the call, the
 * timer re-arm and, with a subscriber, the stats snapshot and notification); otherwise calls run back to back.
 */
export async function measure({ calls, distinct, subscriber, perEvent }) {
  const sync = new RecordSync(options());
  let notified = 0;
  if (subscriber) sync.subscribe(() => notified++);
  if (!distinct) sync.queueLowChange("selected_exercises", "se-0", "upsert", row(0));
  const warm = Math.min(2_000, calls / 4);
  const samples = [];
  let i = 1;
  for (let done = -warm; done < calls; done += BLOCK) {
    const data = distinct ? Array.from({ length: BLOCK }, (_, k) => row(i + k)) : Array.from({ length: BLOCK }, (_, k) => ({ name: `Back squat ${i + k}`, last_changed: new Date(1767258000000 + i + k).toISOString() }));
    const t0 = performance.now();
    if (perEvent) {
      for (let k = 0; k < BLOCK; k++) {
        sync.queueChange("selected_exercises", distinct ? `se-${i + k}` : "se-0", distinct ? "upsert" : "update", data[k], SyncPriority.LOW);
        await microtasks();
      }
    } else {
      for (let k = 0; k < BLOCK; k++) sync.queueChange("selected_exercises", distinct ? `se-${i + k}` : "se-0", distinct ? "upsert" : "update", data[k], SyncPriority.LOW);
    }
    const t1 = performance.now();
    i += BLOCK;
    if (done >= 0) samples.push(((t1 - t0) * 1000) / BLOCK);
    if (i % 1_000 < BLOCK) await tick(); // let timers, GC and notifications run between blocks now and then
  }
  await tick();
  const pending = sync.stats().pending;
  sync.destroy();
  return { ...percentiles(samples), pending, notified, isolated: crossOriginIsolated };
}

/**
 * `count` distinct changes queued in one task (one click): how long the main thread is blocked. `stored`: with
 * the default store (IndexedDB), whose write of the whole burst is prepared and started before the next task.
 */
export async function burst(count, stored = false) {
  const sync = new RecordSync(stored ? { ...options(), storage: undefined, user: "bench-burst" } : options());
  let notified = 0;
  sync.subscribe(() => notified++); // as under a RecordSyncProvider
  const rows = Array.from({ length: count }, (_, i) => row(i));
  while (stored && !sync.stats().durable) await tick();
  await tick();
  const channel = new MessageChannel();
  const nextTask = new Promise((ok) => (channel.port1.onmessage = () => ok(performance.now())));
  const t0 = performance.now();
  channel.port2.postMessage(null); // runs as the first task after this one (and its microtasks)
  for (let i = 0; i < count; i++) sync.queueChange("selected_exercises", rows[i].id, "upsert", rows[i], SyncPriority.HIGH);
  const t1 = performance.now();
  const t2 = await nextTask;
  const pending = sync.stats().pending;
  if (stored) await sync.clearPersisted();
  else sync.destroy();
  return { loopMs: t1 - t0, blockedMs: t2 - t0, pending, notified };
}

/**
 * `count` changes queued, then sent with `forceSyncAll()` through the in-page transport above (it answers at
 * once, no network): what taking due writes out, writing each request, reading its results and settling cost
 * per change in the browser, the counterpart of the native take-due figure. Batches of the default size.
 */
export async function drain(count) {
  const sync = new RecordSync(options());
  for (let i = 0; i < count; i++) sync.queueChange("selected_exercises", `se-${i}`, "upsert", row(i), SyncPriority.LOW);
  await tick();
  const t0 = performance.now();
  const summary = await sync.forceSyncAll();
  const ms = performance.now() - t0;
  const stats = sync.stats();
  sync.destroy();
  return { ms, confirmed: summary.confirmed, failed: summary.failed.length, pending: stats.pending, requests: stats.requests };
}
