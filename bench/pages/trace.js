// Replays an editing trace through the built package against the dev server, on a virtual clock: Date.now and
// the timers the library arms are replaced, time jumps from one change (or library timer) to the next, and stands
// still while a request is on its way (the server answers in no virtual time). Every request the library makes
// is recorded with its virtual time, for deadline checks.
import { RecordSync } from "/pkg/index.js";

const real = {
  setTimeout: globalThis.setTimeout.bind(globalThis),
  clearTimeout: globalThis.clearTimeout.bind(globalThis),
  now: Date.now,
  fetch: globalThis.fetch.bind(globalThis),
};

/** A task boundary without the 4 ms clamp nested timers get. */
const nextTask = () =>
  new Promise((ok) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => ok();
    channel.port2.postMessage(null);
  });

export async function replay(trace, { url, apiKey, token, mode, batchSize, start }) {
  let vnow = start;
  const timers = new Map();
  let nextId = 1;
  const inflight = new Set();
  const sends = [];
  globalThis.setTimeout = (fn, ms = 0, ...args) => {
    const id = nextId++;
    timers.set(id, { at: vnow + Math.max(0, Number(ms) || 0), fn, args });
    return id;
  };
  globalThis.clearTimeout = (id) => void timers.delete(id);
  Date.now = () => vnow;
  globalThis.fetch = (input, init) => {
    const request = new Request(input, init);
    const record = { at: vnow, method: request.method, url: request.url, body: null };
    sends.push(record);
    const body = request.method === "GET" ? Promise.resolve(null) : request.clone().text();
    const p = Promise.all([real.fetch(request), body]).then(([response, text]) => {
      record.body = text;
      record.status = response.status;
      return response;
    });
    const done = p.catch(() => {}).finally(() => inflight.delete(done));
    inflight.add(done);
    return p;
  };

  const tables = Object.fromEntries(Object.entries(trace.parents).map(([t, parents]) => [t, { parents }]));
  // In memory (`storage: null`): the replay measures requests and deadlines, and a stored queue would be restored
  // by the next replay in the same browser (the cost of persisting is bench/durability.mjs's figure).
  const sync = new RecordSync({
    transport: { url, apiKey, getAccessToken: () => token, mode },
    batchSize,
    tables,
    storage: null,
  });
  let notified = 0;
  sync.subscribe(() => notified++);

  /** Until no request is on its way and the library has taken in every answer. */
  async function settle() {
    for (let quiet = 0; quiet < 3; ) {
      if (inflight.size) await Promise.all([...inflight]);
      await nextTask();
      quiet = inflight.size === 0 && sync.stats().inFlight === 0 ? quiet + 1 : 0;
    }
  }
  /** Runs the library's timers due up to `t`, in order, each at its own time. */
  async function advanceTo(t) {
    await settle();
    for (;;) {
      let next = null;
      for (const [id, timer] of timers) if (timer.at <= t && (next === null || timer.at < next[1].at)) next = [id, timer];
      if (next === null) break;
      timers.delete(next[0]);
      vnow = Math.max(vnow, next[1].at);
      if (typeof next[1].fn === "function") next[1].fn(...next[1].args);
      await settle();
    }
    vnow = Math.max(vnow, t);
  }

  const wall0 = performance.now();
  const queued = [];
  let last = -1;
  const flushes = [];
  try {
    for (const action of trace.actions) {
      for (const c of action.changes) {
        // Changes of one moment (a delete with its children) are queued in one task, as the demo does.
        if (c.t !== last) await advanceTo(start + c.t);
        last = c.t;
        const after = sends.length;
        sync.queueChange(c.table, c.id, c.op, c.data, c.priority);
        queued.push({ after, at: vnow });
      }
      if (action.flush) flushes.push(sync.forceSyncAll()); // the demo's "Save plan"
    }
    // The person stops: whatever is still queued leaves by its deadline.
    await advanceTo(start + trace.durationMs + 24 * 3_600_000);
    await settle();
    await Promise.all(flushes);
    return { sends, stats: sync.stats(), failed: sync.failedChanges(), notified, wallMs: performance.now() - wall0, queued };
  } finally {
    sync.destroy();
    globalThis.setTimeout = real.setTimeout;
    globalThis.clearTimeout = real.clearTimeout;
    Date.now = real.now;
    globalThis.fetch = real.fetch;
  }
}
