// Helpers for the browser tests (tests/browser.rs): talking to the dev server as an admin, building option
// objects with functions in them, a recording custom transport, and instrumenting timers and fetch.

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const SERVICE_KEY = "dev-service-key";
const serviceHeaders = { apikey: SERVICE_KEY, Authorization: `Bearer ${SERVICE_KEY}` };

async function call(url, init) {
  const response = await fetch(url, init);
  const text = await response.text();
  if (!response.ok) throw new Error(`${init?.method ?? "GET"} ${url}: HTTP ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

export function admin(server, method, path, body) {
  return call(server + path, {
    method,
    headers: { ...serviceHeaders, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** Rows of `table` matching a PostgREST query, read with the service key (bypasses RLS), ordered by id. */
export function rows(server, table, query) {
  return call(`${server}/rest/v1/${table}?${query}&order=id`, { headers: serviceHeaders });
}

/** A `getAccessToken` that counts its calls in `.calls`. */
export function tokenSource(token) {
  const get = () => {
    get.calls += 1;
    return Promise.resolve(token);
  };
  get.calls = 0;
  return get;
}

/**
 * A custom transport that records every batch. `script` lists what to do per call in order, then "apply":
 * "apply" answers applied for all; "reject" rejects; "malformed" resolves to garbage; "error:<id>" answers a
 * permanent error for the change with that id and applied for the rest; "missing:<id>" answers missing for it.
 */
export function recordingTransport(script) {
  const transport = {
    batches: [],
    async send(batch) {
      this.batches.push(JSON.parse(JSON.stringify(batch)));
      const step = script.shift() ?? "apply";
      if (step === "reject") throw new Error("backend unreachable");
      if (step === "malformed") return [{ seq: "one", status: 7 }];
      const bad = step.startsWith("error:") ? step.slice(6) : null;
      const gone = step.startsWith("missing:") ? step.slice(8) : null;
      return batch.changes.map((c) =>
        c.id === bad
          ? { seq: c.seq, status: "error", code: "23514", message: "check constraint violated" }
          : c.id === gone
            ? { seq: c.seq, status: "missing" }
            : { seq: c.seq, status: "applied" },
      );
    },
  };
  return transport;
}

/**
 * Wraps setTimeout/clearTimeout and fetch to see what an instance leaves behind: `liveTimers()` counts
 * timers set since `install` that neither fired nor were cleared; `requests` holds each fetch's signal.
 */
export function instrument() {
  const { setTimeout: set, clearTimeout: clear, fetch: realFetch } = globalThis;
  const live = new Set();
  const requests = [];
  globalThis.setTimeout = (f, ms, ...args) => {
    const id = set(() => {
      live.delete(id);
      f(...args);
    }, ms);
    live.add(id);
    return id;
  };
  globalThis.clearTimeout = (id) => {
    live.delete(id);
    clear(id);
  };
  globalThis.fetch = (input, init) => {
    const entry = { signal: input?.signal ?? init?.signal, settled: false };
    requests.push(entry);
    return realFetch(input, init).finally(() => {
      entry.settled = true;
    });
  };
  return {
    requests,
    liveTimers: () => live.size,
    aborted: () => requests.filter((r) => r.signal?.aborted).length,
    restore() {
      globalThis.setTimeout = set;
      globalThis.clearTimeout = clear;
      globalThis.fetch = realFetch;
    },
  };
}

export function dispatch(name) {
  window.dispatchEvent(new Event(name));
}

export function uid() {
  return Math.random().toString(36).slice(2, 10);
}

export function stringify(value) {
  return JSON.stringify(value);
}

/** A REST call with the service key (bypasses RLS): how "another device" or "another user" changes rows. */
export function serviceRest(server, method, path, body) {
  return call(`${server}/rest/v1${path}`, {
    method,
    headers: { ...serviceHeaders, "Content-Type": "application/json", Prefer: "return=representation" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** A `getAccessToken` that fails the given way: "throws", "rejects", "null", "empty", "newline" (a token no
 *  header can carry) or "never" (settles never). */
export function failingToken(kind) {
  const get = () => {
    get.calls += 1;
    if (kind === "throws") throw new Error("session expired");
    if (kind === "rejects") return Promise.reject(new Error("refresh failed"));
    if (kind === "null") return Promise.resolve(null);
    if (kind === "empty") return "";
    if (kind === "newline") return "eyJhbGciOiJIUzI1NiJ9.e30.sig\n";
    return new Promise(() => {});
  };
  get.calls = 0;
  return get;
}

/** A custom transport whose first send never settles; later sends apply everything. */
export function hangingTransport() {
  return {
    sends: 0,
    send(batch) {
      this.sends += 1;
      if (this.sends === 1) return new Promise(() => {});
      return Promise.resolve(batch.changes.map((c) => ({ seq: c.seq, status: "applied" })));
    },
  };
}

/** A conflict listener that keeps what it hears in `.heard`. */
export function conflictRecorder() {
  const listener = (conflict) => listener.heard.push(JSON.parse(JSON.stringify(conflict)));
  listener.heard = [];
  return listener;
}

/** A merge strategy: the server row with the local name appended, or null (drop) when `drop` is set. */
export function mergeFunction(drop) {
  const merge = (local, server) => {
    merge.calls.push([local, server]);
    return drop ? null : { ...server, name: `${server.name}+${local.name}` };
  };
  merge.calls = [];
  return merge;
}
