// The dev server's realtime endpoint, driven by the official client (@supabase/realtime-js, and supabase-js on
// top of it) over the `ws` package, since Node 20 has no WebSocket client of its own.
import { after, afterEach, before, beforeEach, test } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { RealtimeClient } from "@supabase/realtime-js";
import { createClient } from "@supabase/supabase-js";
import { signToken } from "../../www/server/auth.js";
import { start, USER_A, USER_B } from "./helpers.js";

// Short, so that a socket that stops sending is seen to be closed; every client below heartbeats well within it.
const IDLE_MS = 1000;
const HEARTBEAT_MS = 200;
const PUSH_TIMEOUT_MS = 1000;

let s, tokenA, tokenB;
before(async () => {
  s = await start({ realtimeIdleMs: IDLE_MS });
  tokenA = await s.token(USER_A);
  tokenB = await s.token(USER_B);
});
beforeEach(async () => {
  assert.equal((await s.admin("reset", "POST")).status, 200);
});
/** @type {RealtimeClient[]} */
let clients = [];
afterEach(async () => {
  // The Phoenix socket's own disconnect: RealtimeClient.disconnect() leaves a 10 s timer behind, which would
  // keep this file's process alive that long after its last test.
  for (const c of clients) c.socketAdapter.getSocket().disconnect();
  clients = [];
});
after(() => s.close());

async function waitFor(what, predicate, ms = 3000) {
  const until = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function realtime(opts = {}) {
  const rt = new RealtimeClient(s.realtimeUrl, {
    params: { apikey: s.anonKey },
    transport: WebSocket,
    heartbeatIntervalMs: HEARTBEAT_MS,
    reconnectAfterMs: () => 50,
    // Pushes the server never answers (access_token, as in Supabase) hold a timer this long after the test.
    timeout: PUSH_TIMEOUT_MS,
    ...opts,
  });
  clients.push(rt);
  // A channel never subscribed: when the server closes a test's channel, realtime-js would disconnect a socket
  // left with none, and its disconnect() leaves a 10 s timer behind that keeps this file's process alive.
  rt.channel("keep-socket");
  return rt;
}

let channels = 0;
/**
 * Subscribes to postgres_changes with the token set first (so the join carries it); resolves at the first
 * SUBSCRIBED or error, with what arrives collected.
 */
async function subscribe(rt, token, bindings = [{ event: "*", schema: "public", table: "exercises" }]) {
  if (token) await rt.setAuth(token);
  const got = { events: [], system: [], statuses: [] };
  const ch = rt.channel(`test-${++channels}`);
  for (const b of bindings) ch.on("postgres_changes", b, (p) => got.events.push(p));
  ch.on("system", {}, (p) => got.system.push(p));
  await new Promise((resolve) =>
    ch.subscribe((status, err) => {
      got.statuses.push([status, err?.message]);
      if (got.statuses.length === 1) resolve();
    }),
  );
  return { ch, ...got };
}

let seq = 0;
async function apply(changes, token = tokenA, client_id = "c-a") {
  const res = await s.rest("rpc/record_sync_apply", {
    method: "POST",
    token,
    body: JSON.stringify({ changes: changes.map((c) => ({ client_id, seq: ++seq, ...c })) }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  assert.ok((await res.json()).every((r) => r.status === "applied"));
}

test("join, then an insert, an update and a delete arrive in order, as realtime-js presents them", async () => {
  const sub = await subscribe(realtime(), tokenA);
  assert.deepEqual(sub.statuses, [["SUBSCRIBED", undefined]]);
  await waitFor("the subscribed message", () => sub.system.length === 1);
  assert.equal(sub.system[0].status, "ok");

  await apply([{ table: "exercises", id: "e1", op: "upsert", data: { name: "Squat", tags: ["legs", "barbell"] } }]);
  await waitFor("the insert", () => sub.events.length === 1);
  await apply([{ table: "exercises", id: "e1", op: "update", data: { name: "Front squat" } }], tokenA, "c-b");
  await waitFor("the update", () => sub.events.length === 2);
  await apply([{ table: "exercises", id: "e1", op: "delete" }]);
  await waitFor("the delete", () => sub.events.length === 3);

  const [ins, upd, del] = sub.events;
  assert.deepEqual(sub.events.map((e) => [e.schema, e.table, e.eventType]), [
    ["public", "exercises", "INSERT"],
    ["public", "exercises", "UPDATE"],
    ["public", "exercises", "DELETE"],
  ]);
  assert.equal(ins.new.name, "Squat");
  assert.deepEqual(ins.new.tags, ["legs", "barbell"]);
  assert.equal(ins.new.user_id, USER_A);
  assert.equal(ins.new.record_sync_origin, "c-a");
  assert.equal(upd.new.name, "Front squat");
  assert.equal(upd.new.record_sync_origin, "c-b");
  assert.ok(upd.new.record_sync_version > ins.new.record_sync_version);
  assert.deepEqual(upd.old, { id: "e1" });
  // As Supabase Realtime sends a delete under row-level security: the key only.
  assert.deepEqual(del.old, { id: "e1" });
  assert.deepEqual(del.new, {});
  assert.ok(!Number.isNaN(Date.parse(del.commit_timestamp)));
});

test("protocol 1.0.0 (JSON objects) works as well as the default 2.0.0 (arrays)", async () => {
  const sub = await subscribe(realtime({ vsn: "1.0.0" }), tokenA, [{ event: "INSERT", schema: "public", table: "exercises" }]);
  assert.deepEqual(sub.statuses, [["SUBSCRIBED", undefined]]);
  await apply([{ table: "exercises", id: "e1", op: "upsert", data: { name: "Row" } }]);
  await waitFor("the insert", () => sub.events.length === 1);
  assert.equal(sub.events[0].new.name, "Row");
});

test("row-level security: user B never receives user A's rows, nor does an anonymous subscriber", async () => {
  const a = await subscribe(realtime(), tokenA);
  const b = await subscribe(realtime(), tokenB);
  const anon = await subscribe(realtime(), null);
  await apply([{ table: "exercises", id: "x-a", op: "upsert", data: { name: "A's" } }]);
  await apply([{ table: "exercises", id: "x-b", op: "upsert", data: { name: "B's" } }], tokenB);
  await apply([{ table: "exercises", id: "x-a", op: "delete" }]);
  await waitFor("A's two changes", () => a.events.length === 2);
  await waitFor("B's change", () => b.events.length === 1);
  await s.realtime.idle();
  assert.deepEqual(a.events.map((e) => [e.eventType, e.new.id ?? e.old.id]), [["INSERT", "x-a"], ["DELETE", "x-a"]]);
  assert.deepEqual(b.events.map((e) => [e.eventType, e.new.id]), [["INSERT", "x-b"]]);
  assert.deepEqual(anon.events, []);
});

test("a binding's filter is applied, with the column's type", async () => {
  const sub = await subscribe(realtime(), tokenA, [{ event: "*", schema: "public", table: "training_plans", filter: "weeks=gte.8" }]);
  await apply([
    { table: "training_plans", id: "p4", op: "upsert", data: { name: "Short", weeks: 4 } },
    { table: "training_plans", id: "p12", op: "upsert", data: { name: "Long", weeks: 12 } },
  ]);
  await waitFor("the long plan", () => sub.events.length === 1);
  await s.realtime.idle();
  assert.deepEqual(sub.events.map((e) => e.new.id), ["p12"]);

  const bad = await subscribe(realtime(), tokenA, [{ event: "*", schema: "public", table: "training_plans", filter: "nope=eq.1" }]);
  await waitFor("the binding's error", () => bad.system.length === 1);
  assert.equal(bad.system[0].status, "error");
  assert.match(bad.system[0].message, /no column "nope"/);
});

test("heartbeats are answered, and a socket that sends nothing is closed", async () => {
  const beats = [];
  const rt = realtime({ heartbeatCallback: (status) => beats.push(status) });
  await subscribe(rt, tokenA);
  await waitFor("three answered heartbeats", () => beats.filter((b) => b === "ok").length >= 3);
  assert.ok(!beats.includes("timeout"));

  const silent = new WebSocket(`${s.realtimeUrl}/websocket?apikey=${s.anonKey}&vsn=2.0.0`);
  const t0 = Date.now();
  const code = await new Promise((resolve) => silent.on("close", (c) => resolve(c)));
  assert.equal(code, 1000);
  assert.ok(Date.now() - t0 >= IDLE_MS - 50, "closed for silence, not at once");
  assert.equal(rt.isConnected(), true, "the heartbeating client is still connected");
});

test("after the server drops the socket, the client reconnects, rejoins and receives again", async () => {
  const sub = await subscribe(realtime(), tokenA);
  assert.equal((await s.admin("realtime/drop", "POST")).body.dropped >= 1, true);
  await waitFor("the rejoin", () => sub.statuses.filter(([st]) => st === "SUBSCRIBED").length === 2);
  await apply([{ table: "exercises", id: "e-after", op: "upsert", data: { name: "After the drop" } }]);
  await waitFor("the insert after the drop", () => sub.events.length === 1);
  assert.equal(sub.events[0].new.id, "e-after");
});

test("a bad token is refused on join, with Supabase's reasons", async () => {
  const cases = [
    [await signToken({ sub: USER_A, secret: "not-the-secret" }), /^JwtSignatureError/],
    [await s.token(USER_A, { expiresIn: -10 }), /^InvalidJWTToken: Token has expired \d+ seconds ago/],
    ["not.a-jwt", /^MalformedJWT/],
  ];
  for (const [token, reason] of cases) {
    const rt = realtime();
    const sub = await subscribe(rt, token);
    assert.equal(sub.statuses[0][0], "CHANNEL_ERROR");
    assert.match(sub.statuses[0][1], reason);
    rt.socketAdapter.getSocket().disconnect();
  }
  // Nothing reaches a refused channel.
  await apply([{ table: "exercises", id: "e1", op: "upsert", data: { name: "Squat" } }]);
  await s.realtime.idle();
});

test("access_token: a new valid token keeps the channel; a bad one closes it with a system error", async () => {
  const rt = realtime();
  const sub = await subscribe(rt, tokenA);
  await rt.setAuth(await s.token(USER_A, { expiresIn: 3600 }));
  await apply([{ table: "exercises", id: "e1", op: "upsert", data: { name: "Squat" } }]);
  await waitFor("the insert under the new token", () => sub.events.length === 1);

  await rt.setAuth(await signToken({ sub: USER_A, secret: "not-the-secret" }));
  await waitFor("the channel's close", () => sub.statuses.some(([st]) => st === "CLOSED"));
  const error = sub.system.find((m) => m.status === "error");
  assert.equal(error.extension, "system");
  assert.match(error.message, /^JwtSignatureError/);
  await apply([{ table: "exercises", id: "e2", op: "upsert", data: { name: "Row" } }]);
  await s.realtime.idle();
  assert.equal(sub.events.length, 1, "nothing after the close");
});

test("a channel is closed when its token expires", async () => {
  // Three seconds of life: under load the join alone has taken most of a second, and a token that expires
  // before the join is refused instead of closed.
  const sub = await subscribe(realtime(), await s.token(USER_A, { expiresIn: 3 }));
  assert.deepEqual(sub.statuses, [["SUBSCRIBED", undefined]]);
  await waitFor("the expiry", () => sub.statuses.some(([st]) => st === "CLOSED"), 10000);
  assert.match(sub.system.find((m) => m.status === "error").message, /^InvalidJWTToken: Token has expired/);
});

test("the socket needs the API key, a loopback Host and an allowed Origin", async () => {
  const refused = (url, headers = {}) =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers });
      ws.on("unexpected-response", (_req, res) => resolve(res.statusCode));
      ws.on("open", () => reject(new Error("opened")));
      ws.on("error", () => {});
    });
  const base = `${s.realtimeUrl}/websocket`;
  assert.equal(await refused(`${base}?vsn=2.0.0`), 401);
  assert.equal(await refused(`${base}?apikey=wrong&vsn=2.0.0`), 401);
  assert.equal(await refused(`${base}?apikey=${s.anonKey}&vsn=2.0.0`, { Origin: "https://evil.example" }), 403);
  assert.equal(await refused(`${base}?apikey=${s.anonKey}&vsn=2.0.0`, { Host: "evil.example" }), 403);
  assert.equal(await refused(`${base}?apikey=${s.anonKey}&vsn=3.0.0`), 400);
});

test("supabase-js, as an app uses it (accessToken option), receives its user's changes", async () => {
  const supabase = createClient(s.url, s.anonKey, {
    auth: { persistSession: false, autoRefreshToken: false },
    realtime: { transport: WebSocket, heartbeatIntervalMs: HEARTBEAT_MS, timeout: PUSH_TIMEOUT_MS },
    accessToken: async () => tokenA,
  });
  clients.push(supabase.realtime);
  // supabase-js fetches the token asynchronously: a channel subscribed in the same tick joins without it (as
  // anon, so row-level security shows it nothing). Waiting for it is what the library must do too.
  await supabase.realtime.setAuth();
  const events = [];
  const status = await new Promise((resolve) =>
    supabase
      .channel("app")
      .on("postgres_changes", { event: "*", schema: "public", table: "sessions" }, (p) => events.push(p))
      .subscribe((st) => resolve(st)),
  );
  assert.equal(status, "SUBSCRIBED");
  await apply([
    { table: "training_plans", id: "p1", op: "upsert", data: { name: "Plan" } },
    { table: "sessions", id: "s1", op: "upsert", data: { plan_id: "p1", name: "Legs" } },
  ]);
  await waitFor("the session", () => events.length === 1);
  assert.equal(events[0].new.name, "Legs");
});
