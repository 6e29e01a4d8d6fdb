// The shell's JavaScript: every call the wasm makes into the browser that is plain JS, in one module.
//
// One module, not one per concern, for two reasons. Unbundled (an import map, a dev server without a bundler)
// each module is a request of its own. And the wasm-bindgen test runner's server (tiny_http) loses the wake-up
// of a connection that arrives in a burst: with five modules fetched in parallel, one of them waited until
// Chromium closed an idle connection, five minutes later, and the browser suite hung at "Loading scripts".
// Each section below holds one concept and names the Rust module that calls it.

// ---- Rows (src/web/row.rs) ----

// Rows as the queue holds them in the browser: plain JS objects, copied once when queued and serialized once
// when sent. Pure JS work stays here, in one call per row, instead of a property-by-property walk from wasm.

// Postgres keeps 63 bytes of a name; a JS string of at most 21 UTF-16 units is at most 63 UTF-8 bytes.
function nameBytes(name) {
  if (name.length <= 21) return name.length;
  let bytes = 0;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    bytes += c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c < 0xdc00 ? 4 : c >= 0xdc00 && c < 0xe000 ? 0 : 3;
  }
  return bytes;
}

/** `false` for anything but a plain object; otherwise a copy of the row's JSON-visible columns (values
 *  `JSON.stringify` would drop are left out), so that the app changing its object later cannot change the
 *  queued change; or a string saying what is wrong: a column name, or a value `JSON.stringify` would throw on
 *  (a cycle, a BigInt) or a getter that throws. Never throws itself: a call that may throw costs more to
 *  make from wasm.
 *
 *  An object value (a nested object, an array, a Date) is kept as the JSON value it is sent as: the durable
 *  queue stores rows by structured clone, which would keep a Date but drop a class's `toJSON` and throw on a
 *  nested function, where JSON does what the request will do. It also makes the copy deep. */
export function copyRow(data) {
  try {
    // Only plain objects (`{...}`, `Object.create(null)`): not an array, a Date, a Map, a class instance.
    if (typeof data !== "object" || data === null || Array.isArray(data)) return false;
    const proto = Object.getPrototypeOf(data);
    if (proto !== null && proto !== Object.prototype) return false;
    // Spread copies in one step, and a loop then mends the few values JSON sends otherwise: a property added
    // one at a time was most of the copy's cost. (Symbol-keyed properties ride along; JSON, structured clone
    // and the core never read them.)
    const copy = { ...data };
    const keys = Object.keys(copy);
    const values = Object.values(copy);
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i];
      const value = values[i];
      const kind = typeof value;
      if (value === undefined || kind === "function" || kind === "symbol") {
        delete copy[key];
        continue;
      }
      if (key === "" || key.includes("\0") || nameBytes(key) > 63) return "has an invalid column name " + JSON.stringify(key);
      // Throws on a BigInt, a cycle, or a throwing toJSON: the complaint below.
      if (kind === "bigint" || (kind === "object" && value !== null)) put(copy, key, copyJson(value, 0));
    }
    return copy;
  } catch (e) {
    return "must be JSON-serializable: " + describeError(e);
  }
}

/** Sets an own property of `out` as JSON.parse makes it (an own `__proto__` too, where `=` would set the
 *  prototype), or removes it for `undefined`, which JSON leaves out. */
function put(out, key, value) {
  if (value === undefined) delete out[key];
  else if (key === "__proto__") Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  else out[key] = value;
}

/** What `JSON.parse(JSON.stringify(value))` gives, made directly where the value is plain (arrays, plain
 *  objects, strings, numbers, booleans, null): the round trip through text was most of `queueChange` for a row
 *  with a nested array (2 us of it in V8, 0.3 us this way). What is not plain (a Date, a class instance, a
 *  `toJSON`, a BigInt), and what is nested deeper than JSON data has reason to be (a cycle), goes through
 *  JSON itself, which gives the same value or throws the same error. `undefined` where JSON leaves it out. */
function copyJson(value, depth) {
  const kind = typeof value;
  if (value === null || kind === "string" || kind === "boolean") return value;
  if (kind === "number") return Number.isFinite(value) ? value + 0 : null;
  if (kind === "undefined" || kind === "function" || kind === "symbol") return undefined;
  if (kind === "object" && depth < 32 && typeof value.toJSON !== "function") {
    const proto = Object.getPrototypeOf(value);
    // A sparse array of billions of holes is refused by JSON at once; a loop would run out of memory first.
    if (proto === Array.prototype && Array.isArray(value) && value.length <= 1e6) {
      const out = new Array(value.length);
      for (let i = 0; i < value.length; i++) out[i] = copyJson(value[i], depth + 1) ?? null;
      return out;
    }
    if ((proto === Object.prototype || proto === null) && !Array.isArray(value)) {
      // As in copyRow: copied in one step, then each value JSON would send otherwise mended.
      const out = { ...value };
      const keys = Object.keys(out);
      const values = Object.values(out);
      for (let i = 0; i < keys.length; i++) {
        const v = values[i];
        const k = typeof v;
        const plain = v === null || k === "string" || k === "boolean" || (k === "number" && Number.isFinite(v) && !Object.is(v, -0));
        if (!plain) put(out, keys[i], copyJson(v, depth + 1));
      }
      return out;
    }
  }
  const json = JSON.stringify(value);
  return json === undefined ? undefined : JSON.parse(json);
}

/** Always a string: its callers build messages from it outside a `try`, and a message that is a Symbol or an
 *  object whose `toString` throws must not throw there. */
function describeError(e) {
  try {
    if (!(e instanceof Error)) return String(e);
    const [name, message] = [String(e.name), String(e.message)];
    return name && name !== "Error" ? `${name}: ${message}` : message;
  } catch {
    return "it threw";
  }
}

// Spread and defineProperty, not `=` or Object.assign: those set a column named like a property of a frozen
// Object.prototype (`constructor`, `toString`; a hardened page freezes it) by walking up to it, and throw.

export function cloneRow(row) {
  return { ...row };
}

/** A later change's columns over a queued row's. */
export function patchRow(row, changes) {
  try {
    Object.assign(row, changes);
  } catch {
    for (const key of Object.keys(changes)) Object.defineProperty(row, key, { value: changes[key], enumerable: true, writable: true, configurable: true });
  }
}

export function isEmptyRow(row) {
  for (const _ in row) return false;
  return true;
}

/** A column as the core reads it: undefined (absent), null, a string, or any other value's JSON text.
 *  `name` is a JS string the wasm keeps, so that no text is decoded per call. */
export function rowColumn(row, name) {
  if (!Object.prototype.hasOwnProperty.call(row, name)) return undefined;
  const value = row[name];
  if (value === null || typeof value === "string") return value;
  // As it will be sent: a Date (or anything whose toJSON gives a string) is the string it becomes.
  const json = JSON.stringify(value) ?? "null";
  return json.startsWith('"') ? JSON.parse(json) : { json };
}

/** The row's JSON text; a value whose `toJSON` throws at send time (a Date made invalid later) is sent as
 *  `null` rather than stopping the whole batch. */
export function rowJson(row) {
  try {
    return JSON.stringify(row);
  } catch {
    const safe = {};
    for (const key of Object.keys(row)) {
      try {
        safe[key] = JSON.parse(JSON.stringify(row[key]) ?? "null");
      } catch {
        safe[key] = null;
      }
    }
    return JSON.stringify(safe);
  }
}

/** A row from JSON text, or null if the text is not a JSON object. */
export function parseRow(text) {
  try {
    const value = JSON.parse(text);
    return value !== null && typeof value === "object" && !Array.isArray(value) ? value : null;
  } catch {
    return null;
  }
}

// ---- Remote changes (src/web/pull.rs) ----

/** The `onRemoteChanges` listeners' array: `json` as the wasm wrote it, each `row` null, and `rows[i]` (the row
 *  objects themselves) put in; the array frozen. */
export function remoteChanges(json, rows) {
  const changes = JSON.parse(json);
  for (let i = 0; i < changes.length; i++) if (rows[i] !== undefined) changes[i].row = rows[i];
  return Object.freeze(changes);
}

// ---- JS values (src/web/js.rs) ----

/** Whether `text` holds no lone surrogate. */
export function isWellFormed(text) {
  if (typeof text.isWellFormed === "function") return text.isWellFormed();
  return !/[\ud800-\udbff](?![\udc00-\udfff])|(?:^|[^\ud800-\udbff])[\udc00-\udfff]/.test(text);
}

// ---- The queue store: IndexedDB and the tab lock (src/web/storage.rs) ----

// record-sync's default queue store and the tab lock, in plain IndexedDB and Web Locks: about 1 KB, where a
// wrapper (idb, idb-keyval) would add its own promise layer for the four calls used here.
//
// Layout: one database, one object store; a queue's records are keyed [user, n], n growing, so that a queue
// reads back in one getAll over the range [user] .. [user, []]. A replacing record deletes the range first,
// in the same transaction.

const DB_VERSION = 1;
const STORE = "queue";

function requested(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function committed(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new Error("IndexedDB transaction aborted"));
  });
}

const range = (user) => IDBKeyRange.bound([user], [user, []]);
// Changes a follower tab queued, waiting for the tab that holds the queue to take them in: keys
// [inbox(user), time, tab, n], so that they read back in the order they were queued, whichever tab queued them.
const inboxOf = (user) => `${user}\u0000inbox`;
/** The keys of the queue kept under no user, for a write that stores it under its owner's (src/web/storage.rs). */
export const nobodysKeys = () => range("");

/** The IndexedDB store named `name`, or null where there is no IndexedDB (server-side rendering, workers
 *  without it). Opening is lazy; a refused open rejects `load`. */
export function indexedDbStore(name) {
  if (typeof indexedDB === "undefined" || indexedDB === null) return null;
  let db = null;
  let opening = null;
  const next = new Map();
  const open = () =>
    (opening ??= new Promise((resolve, reject) => {
      const request = indexedDB.open(name, DB_VERSION);
      request.onupgradeneeded = () => {
        if (!request.result.objectStoreNames.contains(STORE)) request.result.createObjectStore(STORE);
      };
      request.onblocked = () => reject(new Error("IndexedDB upgrade blocked: another tab holds an older version open"));
      request.onerror = () => reject(request.error);
      request.onsuccess = () => {
        db = request.result;
        // A newer version elsewhere wants the database: step aside; the next write opens it again.
        db.onversionchange = () => {
          db.close();
          db = null;
          opening = null;
        };
        resolve(db);
      };
    }).catch((e) => {
      opening = null;
      throw e;
    }));
  const tab = Math.random().toString(36).slice(2);
  let inboxed = 0;
  const write = (db, user, record, replace, drained) => {
    const tx = db.transaction(STORE, "readwrite");
    const store = tx.objectStore(STORE);
    try {
      if (replace) store.delete(range(user));
      // The inbox records the queue took in go in the same transaction: stored once, in one place or the other.
      for (const key of drained ?? []) store.delete(key);
      const n = next.get(user) ?? 0;
      next.set(user, n + 1);
      store.put(record, [user, n]);
    } catch (e) {
      // A put that throws must not leave the deletes to commit on their own.
      tx.abort();
      throw e;
    }
    const done = committed(tx);
    // Commit now rather than after the request's callbacks: the page may be on its way out (a reload in the
    // same task).
    tx.commit?.();
    return done;
  };
  return {
    async load(user) {
      const db = await open();
      const tx = db.transaction(STORE, "readonly");
      const store = tx.objectStore(STORE);
      const [keys, records] = await Promise.all([requested(store.getAllKeys(range(user))), requested(store.getAll(range(user)))]);
      const last = keys.length ? keys[keys.length - 1][1] : -1;
      next.set(user, (typeof last === "number" ? last : 0) + 1);
      return records;
    },
    // Synchronous while the database is open, so the transaction starts in the task that queued the changes.
    append(user, record, replace, drained) {
      if (db !== null) return write(db, user, record, replace, drained);
      return open().then((db) => write(db, user, record, replace, drained));
    },
    async clear(user) {
      const db = await open();
      const tx = db.transaction(STORE, "readwrite");
      tx.objectStore(STORE).delete(range(user));
      tx.objectStore(STORE).delete(range(inboxOf(user)));
      await committed(tx);
    },
    // The shared queue of live tabs (src/web/tabs.rs). Opens the database ahead, so that a follower's first
    // change is stored in the task that queued it.
    warm() {
      open().catch(() => {});
    },
    inbox(user, record, drained) {
      const put = (db) => {
        const tx = db.transaction(STORE, "readwrite");
        // What a queue that moved here leaves under "" goes in the same transaction (src/web/storage.rs).
        for (const key of drained ?? []) tx.objectStore(STORE).delete(key);
        tx.objectStore(STORE).put(record, [inboxOf(user), Date.now(), tab, inboxed++]);
        const done = committed(tx);
        tx.commit?.();
        return done;
      };
      return db !== null ? put(db) : open().then(put);
    },
    async readInbox(user) {
      const db = await open();
      const store = db.transaction(STORE, "readonly").objectStore(STORE);
      const r = range(inboxOf(user));
      const [keys, records] = await Promise.all([requested(store.getAllKeys(r)), requested(store.getAll(r))]);
      return { keys, records };
    },
  };
}

/** Holds the Web Lock `name` until the returned function is called. Resolves to that function, to null when
 *  another holder kept it for `waitMs` (0: wait as long as it takes), or to undefined where there are no Web
 *  Locks. */
export function holdLock(name, waitMs) {
  const locks = globalThis.navigator?.locks;
  if (!locks || typeof AbortController === "undefined") return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const controller = new AbortController();
    const timer = waitMs > 0 ? setTimeout(() => controller.abort(), waitMs) : undefined;
    locks
      .request(name, { signal: controller.signal }, () => {
        clearTimeout(timer);
        return new Promise((release) => resolve(release));
      })
      .catch(() => resolve(null));
  });
}

/** A record to store (journal format 3): the journal's text, and beside it the rows its entries name, as the
 *  objects the queue holds. The store copies them (IndexedDB's structured clone, or JSON) before it returns:
 *  copyRow left only values that both copy alike. */
export function record(text, rows) {
  return { m: text, r: rows };
}

/** A stored value as the journal reads it: [text, rows]. Earlier formats were strings (no rows); anything else
 *  becomes a text the journal refuses with a reason. */
export function unpack(value) {
  try {
    if (typeof value === "string") return [value, []];
    if (value !== null && typeof value === "object") {
      // Each read once, and the rows' array copied: an app's store may hand back getters, or an array whose
      // elements or iterator throw.
      const [text, rows] = [value.m, value.r];
      if (typeof text === "string" && Array.isArray(rows)) return [text, Array.from(rows)];
    }
    return [JSON.stringify(value) ?? String(value), []];
  } catch (e) {
    return [null, [], describeError(e)];
  }
}

/** `unpack` for the default store, whose `load` hands back IndexedDB's structured clones: its rows are fresh
 *  objects no one else holds, made from rows `copyRow` made, so they are taken as they are instead of copied
 *  again. One that is not a plain object comes back as null (the record naming it is unreadable). */
export function unpackCloned(value) {
  const [text, rows] = unpack(value);
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i];
    const proto = typeof row === "object" && row !== null ? Object.getPrototypeOf(row) : undefined;
    if (proto !== null && proto !== Object.prototype) rows[i] = null;
  }
  return [text, rows];
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---- The channel between live tabs (src/web/tabs.rs) ----

// The channel between live tabs of one user's queue (src/web/tabs.rs). Null where there is no BroadcastChannel:
// each tab then goes alone.
export function channel(name, onMessage) {
  if (typeof BroadcastChannel === "undefined") return null;
  const channel = new BroadcastChannel(name);
  channel.onmessage = (event) => onMessage(event.data);
  return channel;
}

// ---- The realtime socket (src/web/realtime.rs) ----

// The realtime socket (issue 11): the few Phoenix channel messages Supabase Realtime needs for postgres_changes
// (vsn 1.0.0 JSON frames: phx_join with config.postgres_changes and access_token, heartbeat, access_token,
// phx_reply, postgres_changes, system, phx_close/phx_error). Its own rather than @supabase/realtime-js: that
// client (2.109, with its Phoenix socket) bundles to 57 KB minified, 16.8 KB gzip; this file to 1.8 KB, 0.9 KB
// gzip (esbuild --minify, gzip -9), and an app on supabase-js keeps its own client either way.
// Whatever goes wrong, it says "closed" and opens again with backoff; the library catches up after each
// "subscribed", so what the socket missed comes by the feed.

const HEARTBEAT_MS = 25_000;
const TOPIC = "realtime:record-sync";

/**
 * @param {string} url the websocket URL, with apikey and vsn in the query
 * @param {string[]} tables
 * @param {string} token
 * @param {(event: {type: "subscribed"} | {type: "closed", reason: string} | {type: "change", table: string,
 *   op: string, record: object | null}) => void} onEvent
 */
export function openRealtime(url, tables, token, onEvent) {
  let ws = null;
  let ref = 0;
  let joinRef = null;
  let heartbeat = null;
  // The ref of the heartbeat not answered yet. A connection dropped without a close (a NAT timeout, a network
  // change, a laptop waking up) fires no event: an unanswered heartbeat is how it is noticed (realtime-js does
  // the same), else the channel would look live while nothing arrives.
  let unanswered = null;
  let reconnect = null;
  let failures = 0;
  let closed = false;

  const send = (topic, event, payload, join = null) => {
    if (ws && ws.readyState === 1) ws.send(JSON.stringify({ topic, event, payload, ref: String(++ref), join_ref: join }));
    return String(ref);
  };
  const drop = (reason) => {
    clearInterval(heartbeat);
    heartbeat = null;
    unanswered = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close();
      } catch {
        // Already closing.
      }
      ws = null;
    }
    joinRef = null;
    if (closed) return;
    onEvent({ type: "closed", reason });
    failures += 1;
    reconnect = setTimeout(open, Math.min(30_000, 500 * 2 ** Math.min(failures, 6)));
  };
  const open = () => {
    reconnect = null;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      ws = null;
      drop(`cannot open the realtime socket: ${e?.message ?? e}`);
      return;
    }
    ws.onopen = () => {
      heartbeat = setInterval(() => {
        if (unanswered !== null) return drop("the realtime socket did not answer its heartbeat");
        unanswered = send("phoenix", "heartbeat", {});
      }, HEARTBEAT_MS);
      const postgres_changes = tables.map((table) => ({ event: "*", schema: "public", table }));
      joinRef = String(ref + 1);
      send(TOPIC, "phx_join", { config: { postgres_changes, private: false }, access_token: token }, joinRef);
    };
    ws.onmessage = (frame) => {
      let m;
      try {
        m = JSON.parse(frame.data);
      } catch {
        return drop("a realtime frame that is not JSON");
      }
      if (m?.topic === "phoenix" && m.event === "phx_reply" && m.ref === unanswered) unanswered = null;
      if (!m || typeof m !== "object" || m.topic !== TOPIC) return;
      const payload = m.payload ?? {};
      if (m.event === "phx_reply" && m.ref === joinRef) {
        if (payload.status === "ok") {
          failures = 0;
          onEvent({ type: "subscribed" });
        } else drop(`realtime join refused: ${payload.response?.reason ?? "no reason"}`);
      } else if (m.event === "postgres_changes") {
        const data = payload.data ?? {};
        onEvent({ type: "change", table: data.table, op: data.type, record: data.record ?? null });
      } else if (m.event === "system" && payload.status === "error") {
        drop(`realtime: ${payload.message ?? "error"}`);
      } else if (m.event === "phx_close" || m.event === "phx_error") {
        drop(`realtime channel ${m.event === "phx_close" ? "closed" : "failed"}`);
      }
    };
    ws.onclose = () => drop("the realtime socket closed");
    ws.onerror = () => drop("the realtime socket failed");
  };
  open();

  return {
    /** A new token for the joined channel (Supabase checks it and closes the channel if it is not valid). */
    setToken(next) {
      token = next;
      if (joinRef !== null) send(TOPIC, "access_token", { access_token: next }, joinRef);
    },
    close() {
      closed = true;
      clearTimeout(reconnect);
      drop("closed");
    },
  };
}


// ---- One HTTP request (src/web/request.rs) ----

// One HTTP request for src/web/request.rs: fetch with a timeout, the answer read as text. In JS rather than
// through web-sys and wasm-bindgen-futures: each await on the Rust side is a state machine in the wasm, and
// the Request/Headers/Response bindings are code of their own.
//
// Neither the call nor its promise throws: the promise resolves to { status, retryAfter, body } (retryAfter:
// the Retry-After header or null), or to { error } (what was thrown: a network error, a redirect, an invalid
// header; null when the timeout aborted the request). Its abort() aborts the request (destroy()). The global
// fetch is looked up at each call, so a fetch the page patches later is the one used.

/**
 * @param {string} url
 * @param {string} method
 * @param {string[]} headers names and values, alternating
 * @param {string | undefined} body
 * @param {boolean} keepalive
 * @param {number} timeoutMs
 */
export function request(url, method, headers, body, keepalive, timeoutMs) {
  let controller = null;
  // An async function runs up to its first await at once: the controller is there when this returns.
  const answer = (async () => {
    let timedOut = false;
    let timer;
    try {
      controller = new AbortController();
      timer = setTimeout(() => {
        timedOut = true;
        controller.abort();
      }, timeoutMs);
      const init = new Headers();
      for (let i = 0; i < headers.length; i += 2) init.append(headers[i], headers[i + 1]);
      // A redirect is never PostgREST's answer (a captive portal, a login page): it fails as a network error.
      const response = await fetch(url, {
        method,
        headers: init,
        body,
        keepalive,
        redirect: "error",
        signal: controller.signal,
      });
      const retryAfter = response.headers.get("Retry-After");
      // Bytes, not text(): the wasm takes them with one copy and checks the UTF-8 itself, where a string is
      // decoded here and then encoded again into the wasm's memory a character at a time.
      const bytes = new Uint8Array(await response.arrayBuffer());
      return { status: response.status, retryAfter, body: bytes, text: () => new TextDecoder().decode(bytes) };
    } catch (error) {
      return { error: timedOut ? null : error };
    } finally {
      clearTimeout(timer);
    }
  })();
  answer.abort = () => controller?.abort();
  return answer;
}

// ---- Timers the shell awaits (src/web/timeout.rs) ----

// The timers the shell awaits, for src/web/timeout.rs: a JS promise and setTimeout here cost less wasm than a
// Rust closure per timer and a Promise.race assembled through bindings.

// Waits for `value` (a promise, a thenable or a plain value) for at most `ms`: resolves to { ok: true, value }
// or { ok: false, value: the reason } when it settles in time, to null when it does not (a late settlement is
// ignored). Never rejects.
export function within(value, ms) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), ms);
    const settle = (ok) => (value) => {
      clearTimeout(timer);
      resolve({ ok, value });
    };
    // Not Promise.resolve(value): that hands back the app's own promise, whose `then` may throw.
    promised(value).then(settle(true), settle(false));
  });
}

// A fresh promise of `value`, for src/web/js.rs: Promise.resolve would hand back the app's own promise, whose
// `then` may throw when the wasm calls it.
export const promised = (value) => new Promise((resolve) => resolve(value));

// Resolves in a task of its own, so input and rendering get their turn first.
export const nextTask = () => new Promise((resolve) => setTimeout(resolve, 0));

// ---- Changes queued before the restore decides (src/web/early.rs) ----

// A change queued in the first moments of an instance, before its restore knows whether this tab holds the
// stored queue, cannot wait for IndexedDB: opening it takes longer than a reload right after construction
// leaves. Until then the instance's queue is kept here, in localStorage, synchronously. An entry is dropped once
// its changes are in IndexedDB; the entries of pages that died first, or of instances destroyed before their
// restore ended, are taken in by the next restore of that user's queue. A page holds a Web Lock for as long as
// it lives, so that another page can tell a dead page's entry from a live one's.

const EARLY = "record-sync:early:";
const earlyPage = Math.random().toString(36).slice(2);
const earlyLive = new Set();
let earlyLocked = false;

const earlyPrefix = (user) => `${EARLY}${user}\u0000`;

function earlyKey(user, instance) {
  return `${earlyPrefix(user)}${earlyPage}\u0000${instance}`;
}

/** The keys of `user`'s early entries, of every page. Throws where localStorage does. */
function earlyKeys(user) {
  const prefix = earlyPrefix(user);
  const keys = [];
  for (let i = 0; i < localStorage.length; i++) {
    const key = localStorage.key(i);
    if (key?.startsWith(prefix)) keys.push(key);
  }
  return keys;
}

/** Keeps `record` (a stored record, see `record`) as the early queue of `instance`; false where localStorage is
 *  not to be had (a sandboxed frame, a full quota). */
export function earlySave(user, instance, record) {
  try {
    if (!earlyLocked && globalThis.navigator?.locks) {
      earlyLocked = true;
      navigator.locks.request(`${EARLY}${earlyPage}`, () => new Promise(() => {})).catch(() => {});
    }
    earlyLive.add(instance);
    localStorage.setItem(earlyKey(user, instance), JSON.stringify(record));
    return true;
  } catch {
    return false;
  }
}

export function earlyDrop(user, instance) {
  try {
    localStorage.removeItem(earlyKey(user, instance));
  } catch {}
}

/** The instance is gone: an entry it left is another restore's to take in. */
export function earlyRelease(instance) {
  earlyLive.delete(instance);
}

/** The entries of `user` whose page is gone or whose instance was destroyed: [[key, record], ...]. Without Web
 *  Locks only this page's are known to be dead. */
export async function earlyOrphans(user) {
  try {
    const prefix = earlyPrefix(user);
    const keys = earlyKeys(user);
    if (keys.length === 0) return [];
    // A lock asked for and not granted yet is a live page's too.
    const held = new Set();
    if (globalThis.navigator?.locks) {
      const { held: locks = [], pending = [] } = await navigator.locks.query();
      for (const lock of [...locks, ...pending]) held.add(lock.name);
    }
    const orphans = [];
    for (const key of keys) {
      const [page, instance] = key.slice(prefix.length).split("\u0000");
      const dead = page === earlyPage ? !earlyLive.has(Number(instance)) : globalThis.navigator?.locks && !held.has(`${EARLY}${page}`);
      if (!dead) continue;
      const text = localStorage.getItem(key);
      if (text === null) continue;
      let record;
      try {
        record = JSON.parse(text);
      } catch {
        record = text;
      }
      orphans.push([key, record]);
    }
    return orphans;
  } catch {
    return [];
  }
}

/** For the tab that holds `user`'s queue: once a second, if another page has an early entry for `user`, calls
 *  `onOrphan()` (which checks whether that page is gone). A page's entry lives for its first 100 ms or so,
 *  so this finds nothing almost always, at the cost of a scan of localStorage's keys. Returns a function
 *  that stops watching. */
export function earlyWatch(user, onOrphan) {
  const own = `${earlyPrefix(user)}${earlyPage}\u0000`;
  const timer = setInterval(() => {
    try {
      if (earlyKeys(user).some((key) => !key.startsWith(own))) onOrphan();
    } catch {}
  }, 1000);
  return () => clearInterval(timer);
}

/** clearPersisted(): every early entry of `user` goes, as the stored queue and the inbox do. */
export function earlyClear(user) {
  try {
    earlyRemove(earlyKeys(user));
  } catch {}
}

export function earlyRemove(keys) {
  try {
    for (const key of keys) localStorage.removeItem(key);
  } catch {}
}
