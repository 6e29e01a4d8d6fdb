// readOptions (src/web/shell.js): every bad option is a TypeError whose whole message names it, an option that
// cannot be read beats any other error, and what it hands the wasm (src/web/options.rs reads it) is what the
// app asked for. Run in Node: no IndexedDB (the default store is none) and no `location`. tests/browser.rs checks
// the same messages through the built constructor in Chromium.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readOptions, describe, errorMessage } from "../../src/web/shell.js";

const http = { url: "https://xyz.supabase.co/rest/v1", apiKey: "k" };
const custom = { send: async () => [] };

function message(options) {
  try {
    readOptions(options);
  } catch (e) {
    assert.ok(e instanceof TypeError, `${e}`);
    return e.message;
  }
  assert.fail(`accepted ${JSON.stringify(options)}`);
}

test("each bad option is named with what it must be", () => {
  const cases = [
    [null, "options must be an object, not null"],
    [[], "options must be an object, not an array"],
    [{ transport: http, batchsize: 5 }, "options.batchsize is not an option (known: transport, maxRetries, batchSize, syncIntervals, tables, user, storage, pull)"],
    [{ transport: http, maxRetries: 101 }, "options.maxRetries must be an integer from 0 to 100"],
    [{ transport: http, maxRetries: "3" }, "options.maxRetries must be an integer from 0 to 100"],
    [{ transport: http, batchSize: 0 }, "options.batchSize must be an integer from 1 to 1000"],
    [{ transport: http, batchSize: 1.5 }, "options.batchSize must be an integer from 1 to 1000"],
    [{ transport: http, syncIntervals: 5 }, "options.syncIntervals must be an object keyed by SyncPriority, not number 5"],
    [{ transport: http, syncIntervals: { high: 1 } }, 'options.syncIntervals has "high", which is not a SyncPriority (0 to 3)'],
    [{ transport: http, syncIntervals: { 2: "5" } }, "options.syncIntervals[2] must be a number of milliseconds from 0 to 86400000"],
    [{ transport: http, syncIntervals: { 0: -0.3 } }, "options.syncIntervals[0] must be a number of milliseconds from 0 to 86400000"],
    [{ transport: http, syncIntervals: { 3: 86_400_001 } }, "options.syncIntervals[3] must be a number of milliseconds from 0 to 86400000"],
    [{ transport: http, tables: [] }, "options.tables must be an object keyed by table name, not an array"],
    [{ transport: http, tables: { a: 1 } }, 'options.tables.a must be an object like { parents: ["plans"] }'],
    [{ transport: http, tables: { a: { merge: 1 } } }, "options.tables.a.merge is not an option (known: parents, onConflict)"],
    [{ transport: http, tables: { a: { onConflict: "server" } } }, 'options.tables.a.onConflict must be "lastWriterWins", "clientWins" or a function (local, server) => row | null, not the string "server"'],
    [{ transport: http, tables: { a: { parents: "b" } } }, "options.tables.a.parents must be an array of table names"],
    [{ transport: http, tables: { a: { parents: [1] } } }, "options.tables.a.parents must be an array of table names"],
    [{ transport: http, tables: { "": {} } }, "options.tables table names must be non-empty strings"],
    [{ transport: http, tables: { a: { parents: ["b"] }, b: { parents: ["c"] }, c: { parents: ["a"] } } }, 'options.tables parents of "a" form a cycle'],
    [{}, "options.transport must be { url, apiKey, ... } or { send(batch) }, not undefined"],
    [{ transport: { send: 1 } }, "options.transport.send must be a function, not number 1"],
    [{ transport: { ...custom, url: "/rest/v1" } }, "options.transport must have either send or url, not both"],
    [{ transport: { ...custom, timeoutMs: -5 } }, "options.transport.timeoutMs must be an integer from 1 to 600000"],
    [{ transport: { ...custom, primaryKeys: { a: "" } } }, "options.transport.primaryKeys.a must be a column name"],
    [{ transport: { ...http, primaryKey: {} } }, "options.transport.primaryKey is not an option (known: url, apiKey, getAccessToken, mode, primaryKeys, timeoutMs, tokenTimeoutMs, allowAnonymous, or send)"],
    [{ transport: { ...http, url: "ftp://x" } }, 'options.transport.url must be the PostgREST URL as a string such as "https://xyz.supabase.co/rest/v1", not the string "ftp://x"'],
    [{ transport: { ...http, apiKey: "a b" } }, 'options.transport.apiKey must be the project\'s API key, printable ASCII without spaces, not the string "a b"'],
    [{ transport: { ...http, apiKey: "é" } }, 'options.transport.apiKey must be the project\'s API key, printable ASCII without spaces, not the string "é"'],
    [{ transport: { ...http, getAccessToken: "t" } }, 'options.transport.getAccessToken must be a function, not the string "t"'],
    [{ transport: { ...http, primaryKeys: [] } }, "options.transport.primaryKeys must be an object mapping table to primary-key column"],
    [{ transport: { ...http, mode: "graphql" } }, 'options.transport.mode must be "rest" or "rpc", not the string "graphql"'],
    [{ transport: { ...http, tokenTimeoutMs: 600_001 } }, "options.transport.tokenTimeoutMs must be an integer from 1 to 600000"],
    [{ transport: { ...http, allowAnonymous: 1 } }, "options.transport.allowAnonymous must be a boolean, not number 1"],
    [{ transport: http, user: "" }, 'options.user must be a non-empty string (the signed-in user\'s id) or null, not the string ""'],
    [{ transport: http, user: "é".repeat(129) }, `options.user must be a non-empty string (the signed-in user's id) or null, not the string "${"é".repeat(40)}"`],
    [{ transport: http, user: "a\ud800" }, 'options.user must be a non-empty string (the signed-in user\'s id) or null, not the string "a\ud800"'],
    [{ transport: http, storage: true }, "options.storage must be a store { load, append, clear } or null, not boolean true"],
    [{ transport: http, storage: { load() {}, append: 1, clear() {} } }, "options.storage.append must be a function, not number 1"],
    [{ transport: http, pull: [] }, "options.pull must be { tables: [...], realtime?, pageSize?, intervalMs? }, not an array"],
    [{ transport: http, pull: { tables: ["a"], since: 1 } }, "options.pull.since is not an option (known: tables, realtime, pageSize, intervalMs)"],
    [{ transport: http, pull: { tables: ["a", ""] } }, "options.pull.tables must be a non-empty array of table names whose feed is enabled"],
    [{ transport: http, pull: { tables: ["a"], realtime: "yes" } }, 'options.pull.realtime must be a boolean, not the string "yes"'],
    [{ transport: http, pull: { tables: ["a"], pageSize: 1001 } }, "options.pull.pageSize must be an integer from 1 to 1000"],
    [{ transport: http, pull: { tables: ["a"], intervalMs: 999 } }, "options.pull.intervalMs must be an integer from 1000 to 86400000"],
    [{ transport: custom, pull: { tables: ["a"] } }, "options.pull.tables needs transport.url: the feed is read from PostgREST (rpc/record_sync_changes)"],
    [{ transport: { ...http, url: "https://x/api" }, pull: { tables: ["a"], realtime: true } }, "options.pull.realtime needs a transport.url that ends in /rest/v1 (the realtime service is found next to it)"],
    [{ transport: http, tables: { "a\ud800": {} } }, 'options.tables has "a\ud800", which is not well-formed text (a lone surrogate)'],
    [{ transport: http, tables: { a: { parents: ["\udc00"] } } }, "options.tables.a.parents must be an array of table names"],
    [{ transport: { ...http, primaryKeys: { "\ud800": "pk" } } }, 'options.transport.primaryKeys has "\ud800", which is not well-formed text (a lone surrogate)'],
    [{ transport: { ...http, primaryKeys: { a: "\ud800" } } }, "options.transport.primaryKeys.a must be a column name"],
    // Relative, and no `location` to resolve it against (Node, as in a worker without one).
    [{ transport: { ...http, url: "/rest/v1" }, pull: { tables: ["a"], realtime: true } }, "options.pull.realtime needs a transport.url that ends in /rest/v1 (the realtime service is found next to it)"],
  ];
  for (const [options, expected] of cases) assert.equal(message(options), `RecordSync: ${expected}`);
});

test("an option that cannot be read is named, before any other error", () => {
  const throwing = (e) => ({ get() { throw e; }, enumerable: true });
  const options = Object.defineProperties({ transport: { url: 5 } }, { maxRetries: throwing(new RangeError("late")) });
  assert.equal(message(options), "RecordSync: options.maxRetries could not be read: RangeError: late");
  const keys = { transport: http, tables: new Proxy({}, { ownKeys() { throw 1; } }) };
  assert.equal(message(keys), "RecordSync: options.tables could not be read: number 1");
  const iterator = ["a"];
  iterator[Symbol.iterator] = () => { throw Object.assign(new Error(""), { name: "" }); };
  assert.equal(message({ transport: http, pull: { tables: iterator } }), "RecordSync: options.pull.tables could not be read: an error without a message");
  // The first of two, and one found after the checks it would have changed passed.
  const two = Object.defineProperties({ transport: http }, { user: throwing("who"), pull: throwing("what") });
  assert.equal(message(two), "RecordSync: options.user could not be read: who");
  const store = Object.defineProperties({ append() {}, clear() {} }, { load: throwing(Object.assign(new Error("m"), { name: "" })) });
  assert.equal(message({ transport: http, storage: store }), "RecordSync: options.storage.load could not be read: m");
});

test("hostile values: a huge string, a long run of slashes, a throwing `location`, a thrown revoked Proxy", () => {
  // A huge string is described by its first 40 characters, without spreading the whole of it.
  const huge = "a".repeat(50_000_000);
  assert.equal(describe(huge), `the string "${"a".repeat(40)}"`);
  assert.match(message({ transport: http, user: huge }), /^RecordSync: options\.user must be/);
  // A long run of trailing slashes is trimmed in one pass (a regex `/\/+$/` was quadratic: 14 s for this one).
  const slashes = readOptions({ transport: { ...http, url: "/" + "/".repeat(200_000) + "a//" } });
  assert.equal(slashes.transport.url, "/" + "/".repeat(200_000) + "a");
  const thrower = Object.getOwnPropertyDescriptor(globalThis, "location");
  Object.defineProperty(globalThis, "location", { get() { throw new ReferenceError("no location"); }, configurable: true });
  try {
    assert.equal(
      message({ transport: { ...http, url: "/rest/v1" }, pull: { tables: ["a"], realtime: true } }),
      "RecordSync: options.pull.realtime needs a transport.url that ends in /rest/v1 (the realtime service is found next to it)",
    );
  } finally {
    if (thrower) Object.defineProperty(globalThis, "location", thrower);
    else delete globalThis.location;
  }
  // A thrown revoked Proxy is described, not rethrown: instanceof on it throws.
  const revoked = Proxy.revocable({}, {});
  revoked.revoke();
  const options = Object.defineProperty({ transport: http }, "maxRetries", { get() { throw revoked.proxy; }, enumerable: true });
  assert.equal(message(options), "RecordSync: options.maxRetries could not be read: a revoked Proxy");
});

test("what the wasm is handed", () => {
  const merge = (local) => local;
  const getAccessToken = async () => null;
  const got = readOptions({
    transport: { url: "http://h:1/rest/v1//", apiKey: "a!*'()~b", getAccessToken, mode: "rpc", primaryKeys: { plans: "plan_id" }, tokenTimeoutMs: 5 },
    syncIntervals: { 1: 2.5, 3: 0 },
    tables: { sets: { parents: ["plans"], onConflict: merge }, plans: { onConflict: "clientWins" } },
    user: "u1",
    storage: null,
    pull: { tables: ["plans"], realtime: true, intervalMs: 1000 },
  });
  assert.deepEqual(got, {
    maxRetries: undefined,
    batchSize: undefined,
    intervals: [undefined, 3, undefined, 0],
    tables: [["sets", ["plans"], merge], ["plans", [], "clientWins"]],
    transport: {
      url: "http://h:1/rest/v1", apiKey: "a!*'()~b", getAccessToken, rpc: true, primaryKeys: [["plans", "plan_id"]],
      timeoutMs: undefined, tokenTimeoutMs: 5, allowAnonymous: false,
    },
    primaryKeys: [["plans", "plan_id"]],
    user: "u1",
    store: null,
    byDefault: false,
    pull: { tables: ["plans"], realtimeUrl: "ws://h:1/realtime/v1/websocket?apikey=a%21%2A%27%28%29~b&vsn=1.0.0", pageSize: undefined, intervalMs: 1000 },
  });
  // A custom transport is called with itself as `this`; without IndexedDB the default store is none.
  const transport = { ...custom, primaryKeys: { a: "k" } };
  const plain = readOptions({ transport, user: null });
  assert.equal(plain.transport.self, transport);
  assert.deepEqual(plain.primaryKeys, [["a", "k"]]);
  assert.equal(plain.store, null);
  assert.equal(plain.byDefault, true);
  const store = { load() {}, append() {}, clear() {} };
  assert.deepEqual(readOptions({ transport: http, storage: store }).load, store.load);
});

test("describe says what a value is, and never throws", () => {
  const revoked = Proxy.revocable({}, {});
  revoked.revoke();
  class Plan {}
  const hostile = new Proxy({}, { get() { throw new Error("no"); } });
  const cases = [
    [undefined, "undefined"], [null, "null"], [revoked.proxy, "a revoked Proxy"], [[1], "an array"],
    [() => 1, "a function"], ["x".repeat(50), `the string "${"x".repeat(40)}"`], ['a"\n\u0001', 'the string "a\\"\\n\\u0001"'],
    [true, "boolean true"], [-0, "number 0"], [1e21, "number 1e+21"], [NaN, "number NaN"], [{}, "an object"],
    [Object.create(null), "an object"], [new Plan(), "a Plan"], [hostile, "an object"], [Symbol("s"), "symbol"], [1n, "bigint"],
  ];
  for (const [value, expected] of cases) assert.equal(describe(value), expected);
});

test("errorMessage gives what was thrown without its stack, and never throws", () => {
  const revoked = Proxy.revocable({}, {});
  revoked.revoke();
  const sly = new Error("m");
  Object.defineProperty(sly, "name", { get() { throw new Error("no"); } });
  const cases = [
    [new Error("no"), "no"], [new TypeError("p"), "TypeError: p"], [new RangeError(""), "RangeError"],
    [Object.assign(new Error(""), { name: "" }), "an error without a message"], [sly, "m"],
    ["plain", "plain"], [1, "number 1"], [undefined, "undefined"], [revoked.proxy, "a revoked Proxy"],
    [{ message: "not an Error" }, "an object"],
  ];
  for (const [thrown, expected] of cases) assert.equal(errorMessage(thrown), expected);
});
