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

// ---- Options (src/web/options.rs) ----

// `new RecordSync(options)`'s options, checked here and handed to the wasm as plain values: the checks and
// their messages were the wasm's largest function, and reading the app's values is JS's own work. The core
// checks its ranges again for native callers (Config::validate); these come first so that every message
// names the option as the app wrote it. The limits are the core's (tests/contracts.rs holds them equal).
const LIMITS = {
  maxRetries: 100, batchSize: 1000, intervalMs: 86_400_000, timeoutMs: 600_000, pageSize: 1000,
  pullIntervalMs: [1000, 86_400_000],
};
const OPTION_KEYS = ["transport", "maxRetries", "batchSize", "syncIntervals", "tables", "user", "storage", "pull"];
const HTTP_KEYS = ["url", "apiKey", "getAccessToken", "mode", "primaryKeys", "timeoutMs", "tokenTimeoutMs", "allowAnonymous"];
const TABLE_KEYS = ["parents", "onConflict"];
const PULL_KEYS = ["tables", "realtime", "pageSize", "intervalMs"];
const STRATEGIES = ["lastWriterWins", "clientWins"];

/** `Array.isArray`, or null for a revoked Proxy (which throws). */
function arrayness(value) {
  try {
    return Array.isArray(value);
  } catch {
    return null;
  }
}

/** An object that is neither null, an array nor a function (nor a revoked Proxy). */
const isObject = (value) => typeof value === "object" && value !== null && arrayness(value) === false;

/** `text` in double quotes, escaped as the core's JSON writer escapes it (src/core/json.rs). */
function quoted(text) {
  const escapes = { '"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t" };
  const escape = (c) => escapes[c] ?? `\\u00${c.charCodeAt(0).toString(16).padStart(2, "0")}`;
  return `"${text.replace(/["\\\u0000-\u001f]/g, escape)}"`;
}

/** What a value is, for error messages (the wasm's messages about the app's values use it too). */
export function describe(value) {
  try {
    if (value === undefined) return "undefined";
    if (value === null) return "null";
    const array = arrayness(value);
    if (array === null) return "a revoked Proxy";
    if (array) return "an array";
    switch (typeof value) {
      case "function": return "a function";
      // 40 characters (code points) of what may be a huge string: they are within its first 80 units.
      case "string": return `the string ${quoted([...value.slice(0, 80)].slice(0, 40).join(""))}`;
      case "boolean": return `boolean ${value}`;
      case "number": return `number ${value}`;
      case "object": {
        let name;
        try {
          name = value.constructor?.name;
        } catch {}
        return typeof name === "string" && name !== "" && name !== "Object" ? `a ${name}` : "an object";
      }
      default: return typeof value;
    }
  } catch {
    return "an unknown value";
  }
}

/** The message of a thrown value, without its stack ("TypeError: p", or "no" for `new Error("no")`), for the
 *  messages that name what the app's code threw (the wasm's too). Never throws: an error's getters may. */
export function errorMessage(e) {
  try {
    if (!(e instanceof Error)) return typeof e === "string" ? e : describe(e);
    const text = (key) => {
      try {
        const v = e[key];
        return typeof v === "string" ? v : "";
      } catch {
        return "";
      }
    };
    const [name, message] = [text("name"), text("message")];
    if (!message) return name || "an error without a message";
    return name && name !== "Error" ? `${name}: ${message}` : message;
  } catch {
    return describe(e);
  }
}

const wrong = (message) => new TypeError(`RecordSync: ${message}`);
const bad = (name, message) => wrong(`options.${name} ${message}`);

/** A finite integer within `min..=max`, or undefined. */
const integer = (value, min, max) =>
  typeof value === "number" && Number.isInteger(value) && value >= min && value <= max ? value : undefined;

/** Reads the app's options, where a getter, a Proxy trap or an iterator may throw. A throw is kept and the value
 *  taken as absent; `check` then throws a TypeError naming the first option that could not be read, whatever
 *  the checks made of the rest: read as absent, the option would silently take its default. */
class Reader {
  unreadable = null;

  failed(path, e) {
    this.unreadable ??= wrong(`${path} could not be read: ${errorMessage(e)}`);
  }

  get(object, path, key) {
    try {
      return object[key];
    } catch (e) {
      this.failed(`${path}.${key}`, e);
    }
  }

  keys(object, path) {
    try {
      return Object.keys(object);
    } catch (e) {
      this.failed(path, e);
      return [];
    }
  }

  /** A copy of an array, so that reading it again cannot throw; undefined for what is not an array. */
  items(value, path) {
    try {
      return Array.isArray(value) ? Array.from(value) : undefined;
    } catch (e) {
      this.failed(path, e);
    }
  }

  unknown(object, path, known) {
    return this.keys(object, path).find((k) => !known.includes(k));
  }

  /** Runs `parse`: its result, unless a read failed on the way. */
  check(parse) {
    let result;
    try {
      result = parse();
    } catch (e) {
      throw this.unreadable ?? e;
    }
    if (this.unreadable) throw this.unreadable;
    return result;
  }
}

/** `options`, checked (a TypeError names the first bad one), as the plain values src/web/options.rs reads. */
export function readOptions(options) {
  const read = new Reader();
  const engine = read.check(() => engineOptions(read, options));
  const durable = read.check(() => storageOptions(read, options));
  const pull = read.check(() => pullOptions(read, options, engine.transport));
  return { ...engine, ...durable, pull };
}

function engineOptions(read, options) {
  if (!isObject(options)) throw wrong(`options must be an object, not ${describe(options)}`);
  const unknown = read.unknown(options, "options", OPTION_KEYS);
  if (unknown !== undefined) throw bad(unknown, `is not an option (known: ${OPTION_KEYS.join(", ")})`);
  // Kinds first and ranges after, in the order the core checks them (Config::validate).
  const maxRetries = read.get(options, "options", "maxRetries");
  const batchSize = read.get(options, "options", "batchSize");
  const intervals = [undefined, undefined, undefined, undefined];
  const given = read.get(options, "options", "syncIntervals");
  if (given !== undefined) {
    if (!isObject(given)) throw bad("syncIntervals", `must be an object keyed by SyncPriority, not ${describe(given)}`);
    for (const key of read.keys(given, "options.syncIntervals")) {
      if (!["0", "1", "2", "3"].includes(key)) {
        throw bad("syncIntervals", `has ${quoted(key)}, which is not a SyncPriority (0 to 3)`);
      }
      intervals[key] = read.get(given, "options.syncIntervals", key);
    }
  }
  const tables = [];
  const spec = read.get(options, "options", "tables");
  if (spec !== undefined) {
    if (!isObject(spec)) throw bad("tables", `must be an object keyed by table name, not ${describe(spec)}`);
    for (const table of read.keys(spec, "options.tables")) tables.push(tableOptions(read, spec, table));
  }
  intervals.forEach((ms, p) => {
    if (ms !== undefined && !(typeof ms === "number" && ms >= 0 && Math.round(ms) <= LIMITS.intervalMs)) {
      throw wrong(`options.syncIntervals[${p}] must be a number of milliseconds from 0 to ${LIMITS.intervalMs}`);
    }
  });
  if (batchSize !== undefined && integer(batchSize, 1, LIMITS.batchSize) === undefined) {
    throw bad("batchSize", `must be an integer from 1 to ${LIMITS.batchSize}`);
  }
  if (maxRetries !== undefined && integer(maxRetries, 0, LIMITS.maxRetries) === undefined) {
    throw bad("maxRetries", `must be an integer from 0 to ${LIMITS.maxRetries}`);
  }
  if (tables.some(([table, parents]) => table === "" || parents.includes(""))) {
    throw bad("tables", "table names must be non-empty strings");
  }
  const parentsOf = new Map(tables.map(([table, parents]) => [table, parents]));
  const cyclic = tables.find(([table]) => ancestors(parentsOf, table).has(table));
  if (cyclic) throw bad("tables", `parents of ${quoted(cyclic[0])} form a cycle`);

  const givenTransport = read.get(options, "options", "transport");
  const transport = transportOptions(read, givenTransport);
  const primaryKeys = transport.primaryKeys ?? primaryKeysOf(read, givenTransport);
  return {
    maxRetries,
    batchSize,
    intervals: intervals.map((ms) => (ms === undefined ? undefined : Math.round(ms))),
    tables,
    transport,
    primaryKeys,
  };
}

/** `[table, parents, onConflict]`, onConflict a strategy's name, the app's merge function or undefined. */
function tableOptions(read, tables, table) {
  // A lone surrogate would reach the wasm as U+FFFD, where two such names would become one.
  if (!isWellFormed(table)) throw bad("tables", `has ${quoted(table)}, which is not well-formed text (a lone surrogate)`);
  const spec = read.get(tables, "options.tables", table);
  const path = `options.tables.${table}`;
  if (!isObject(spec)) throw bad(`tables.${table}`, 'must be an object like { parents: ["plans"] }');
  const unknown = read.unknown(spec, path, TABLE_KEYS);
  if (unknown !== undefined) throw bad(`tables.${table}.${unknown}`, `is not an option (known: ${TABLE_KEYS.join(", ")})`);
  const onConflict = read.get(spec, path, "onConflict");
  if (onConflict !== undefined && !STRATEGIES.includes(onConflict) && typeof onConflict !== "function") {
    throw bad(
      `tables.${table}.onConflict`,
      `must be "lastWriterWins", "clientWins" or a function (local, server) => row | null, not ${describe(onConflict)}`,
    );
  }
  const given = read.get(spec, path, "parents");
  const parents = given === undefined ? [] : read.items(given, `${path}.parents`);
  if (!parents || parents.some((p) => typeof p !== "string" || !isWellFormed(p))) {
    throw bad(`tables.${table}.parents`, "must be an array of table names");
  }
  return [table, parents, onConflict];
}

/** Every table above `table` in the parent graph; terminates on cycles, which is how they are found. */
function ancestors(parentsOf, table) {
  const found = new Set();
  const stack = [table];
  while (stack.length) {
    for (const parent of parentsOf.get(stack.pop()) ?? []) {
      if (!found.has(parent)) {
        found.add(parent);
        stack.push(parent);
      }
    }
  }
  return found;
}

function timeout(read, transport, name, fallback) {
  const value = read.get(transport, "options.transport", name);
  if (value === undefined) return fallback;
  const ms = integer(value, 1, LIMITS.timeoutMs);
  if (ms === undefined) throw bad(`transport.${name}`, `must be an integer from 1 to ${LIMITS.timeoutMs}`);
  return ms;
}

/** `[table, column]` pairs; a custom transport may name them too, for the conflict views. */
function primaryKeysOf(read, transport) {
  const value = read.get(transport, "options.transport", "primaryKeys");
  if (value === undefined) return [];
  if (!isObject(value)) throw bad("transport.primaryKeys", "must be an object mapping table to primary-key column");
  return read.keys(value, "options.transport.primaryKeys").map((table) => {
    if (!isWellFormed(table)) {
      throw bad("transport.primaryKeys", `has ${quoted(table)}, which is not well-formed text (a lone surrogate)`);
    }
    const column = read.get(value, "options.transport.primaryKeys", table);
    if (typeof column !== "string" || column === "" || !isWellFormed(column)) {
      throw bad(`transport.primaryKeys.${table}`, "must be a column name");
    }
    return [table, column];
  });
}

function transportOptions(read, transport) {
  if (!isObject(transport)) {
    throw bad("transport", `must be { url, apiKey, ... } or { send(batch) }, not ${describe(transport)}`);
  }
  const path = "options.transport";
  const send = read.get(transport, path, "send");
  if (send !== undefined) {
    if (typeof send !== "function") throw bad("transport.send", `must be a function, not ${describe(send)}`);
    if (read.get(transport, path, "url") !== undefined) throw bad("transport", "must have either send or url, not both");
    // `send` is called with the transport object as `this`, so a class instance works too.
    return { send, self: transport, timeoutMs: timeout(read, transport, "timeoutMs", undefined) };
  }
  const unknown = read.unknown(transport, path, HTTP_KEYS);
  if (unknown !== undefined) {
    throw bad(`transport.${unknown}`, `is not an option (known: ${HTTP_KEYS.join(", ")}, or send)`);
  }
  const url = read.get(transport, path, "url");
  if (typeof url !== "string" || !/^(https?:\/\/|\/)/.test(url)) {
    throw bad(
      "transport.url",
      `must be the PostgREST URL as a string such as "https://xyz.supabase.co/rest/v1", not ${describe(url)}`,
    );
  }
  const apiKey = read.get(transport, path, "apiKey");
  // It goes in headers, where a character `fetch` refuses would fail every request as if the network did.
  if (typeof apiKey !== "string" || !/^[\x21-\x7e]+$/.test(apiKey)) {
    throw bad("transport.apiKey", `must be the project's API key, printable ASCII without spaces, not ${describe(apiKey)}`);
  }
  let getAccessToken = read.get(transport, path, "getAccessToken");
  getAccessToken ??= undefined;
  if (getAccessToken !== undefined && typeof getAccessToken !== "function") {
    throw bad("transport.getAccessToken", `must be a function, not ${describe(getAccessToken)}`);
  }
  const primaryKeys = primaryKeysOf(read, transport);
  const mode = read.get(transport, path, "mode");
  if (mode !== undefined && mode !== "rest" && mode !== "rpc") {
    throw bad("transport.mode", `must be "rest" or "rpc", not ${describe(mode)}`);
  }
  const timeoutMs = timeout(read, transport, "timeoutMs", undefined);
  const tokenTimeoutMs = timeout(read, transport, "tokenTimeoutMs", undefined);
  const allowAnonymous = read.get(transport, path, "allowAnonymous");
  if (allowAnonymous !== undefined && typeof allowAnonymous !== "boolean") {
    throw bad("transport.allowAnonymous", `must be a boolean, not ${describe(allowAnonymous)}`);
  }
  return {
    url: withoutTrailingSlashes(url),
    apiKey,
    getAccessToken,
    rpc: mode === "rpc",
    primaryKeys,
    timeoutMs,
    tokenTimeoutMs,
    allowAnonymous: allowAnonymous === true,
  };
}

/** A loop, not `/\/+$/`: that regex is quadratic on a long run of slashes. */
function withoutTrailingSlashes(url) {
  let end = url.length;
  while (end > 0 && url[end - 1] === "/") end--;
  return url.slice(0, end);
}

/** UTF-8 bytes of a well-formed string. */
const utf8Length = (text) => new TextEncoder().encode(text).length;

/** `user` and `storage`: the queue's owner, and its store with the three methods read once. */
function storageOptions(read, options) {
  let user = read.get(options, "options", "user");
  user ??= null;
  if (user !== null && (typeof user !== "string" || user === "" || !isWellFormed(user) || utf8Length(user) > 256)) {
    throw bad("user", `must be a non-empty string (the signed-in user's id) or null, not ${describe(user)}`);
  }
  const storage = read.get(options, "options", "storage");
  const byDefault = storage === undefined;
  let store = null;
  if (byDefault) {
    store = indexedDbStore("record-sync");
  } else if (isObject(storage)) {
    store = storage;
  } else if (storage !== null && storage !== false) {
    throw bad("storage", `must be a store { load, append, clear } or null, not ${describe(storage)}`);
  }
  const methods = {};
  if (store !== null) {
    for (const name of ["load", "append", "clear"]) {
      const method = read.get(store, "options.storage", name);
      if (typeof method !== "function") throw bad(`storage.${name}`, `must be a function, not ${describe(method)}`);
      methods[name] = method;
    }
  }
  // The default store is IndexedDB's, which clones what it keeps; changes queued before it is read wait in
  // localStorage (src/web/early.rs) with it only.
  return { user, store, ...methods, byDefault };
}

function pullOptions(read, options, transport) {
  const pull = read.get(options, "options", "pull");
  if (pull === undefined || pull === null) return null;
  if (!isObject(pull)) {
    throw wrong(`options.pull must be { tables: [...], realtime?, pageSize?, intervalMs? }, not ${describe(pull)}`);
  }
  const path = "options.pull";
  const badPull = (name, message) => bad(`pull.${name}`, message);
  const unknown = read.unknown(pull, path, PULL_KEYS);
  if (unknown !== undefined) throw badPull(unknown, `is not an option (known: ${PULL_KEYS.join(", ")})`);
  const tables = read.items(read.get(pull, path, "tables"), "options.pull.tables");
  if (!tables?.length || !tables.every((t) => typeof t === "string" && t !== "" && isWellFormed(t))) {
    throw badPull("tables", "must be a non-empty array of table names whose feed is enabled");
  }
  const realtime = read.get(pull, path, "realtime");
  if (realtime !== undefined && typeof realtime !== "boolean") {
    throw badPull("realtime", `must be a boolean, not ${describe(realtime)}`);
  }
  let pageSize = read.get(pull, path, "pageSize");
  if (pageSize !== undefined && integer(pageSize, 1, LIMITS.pageSize) === undefined) {
    throw badPull("pageSize", `must be an integer from 1 to ${LIMITS.pageSize}`);
  }
  const intervalMs = read.get(pull, path, "intervalMs");
  const [least, most] = LIMITS.pullIntervalMs;
  if (intervalMs !== undefined && integer(intervalMs, least, most) === undefined) {
    throw badPull("intervalMs", `must be an integer from ${least} to ${most}`);
  }
  if (transport.url === undefined) {
    throw badPull("tables", "needs transport.url: the feed is read from PostgREST (rpc/record_sync_changes)");
  }
  const realtimeUrl = realtime ? socketUrl(transport.url, transport.apiKey) : null;
  if (realtimeUrl === undefined) {
    throw badPull("realtime", "needs a transport.url that ends in /rest/v1 (the realtime service is found next to it)");
  }
  return { tables, realtimeUrl, pageSize, intervalMs };
}

/** The websocket URL of the realtime service next to a PostgREST URL that ends in `/rest/v1` (Supabase's
 *  layout, and the dev server's); undefined for any other. */
function socketUrl(restUrl, apiKey) {
  if (!restUrl.endsWith("/rest/v1")) return undefined;
  let base = restUrl.slice(0, -"/rest/v1".length);
  if (base === "" || base.startsWith("/")) {
    let origin;
    try {
      origin = globalThis.location?.origin;
    } catch {}
    if (typeof origin !== "string") return undefined;
    base = origin + base;
  }
  const scheme = /^(https?):\/\//.exec(base);
  if (!scheme) return undefined;
  // Percent-encoded as the wire plan encodes names: all but RFC 3986's unreserved characters.
  const key = encodeURIComponent(apiKey).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `${scheme[1] === "https" ? "wss" : "ws"}${base.slice(scheme[1].length)}/realtime/v1/websocket?apikey=${key}&vsn=1.0.0`;
}
