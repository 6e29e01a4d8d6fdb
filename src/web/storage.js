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
    inbox(user, record) {
      const put = (db) => {
        const tx = db.transaction(STORE, "readwrite");
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
  if (typeof value === "string") return [value, []];
  if (value !== null && typeof value === "object" && typeof value.m === "string" && Array.isArray(value.r)) return [value.m, value.r];
  try {
    return [JSON.stringify(value) ?? String(value), []];
  } catch {
    return [String(value), []];
  }
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
