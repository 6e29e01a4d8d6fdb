// /__admin/faults: each scripted failure behaves as described, and /__admin/stats counts what happened.
import { after, before, beforeEach, test } from "node:test";
import assert from "node:assert/strict";
import { start, USER_A } from "./helpers.js";

let s, token;
before(async () => {
  s = await start();
  token = await s.token(USER_A);
});
beforeEach(() => s.admin("reset", "POST"));
after(() => s.close());

const insertPlan = (id, init = {}) =>
  s.rest("training_plans", { method: "POST", token, body: JSON.stringify({ id, name: id }), ...init });
const planIds = async () => (await s.sql("select id from training_plans order by id")).map((r) => r.id);

test("failNext: the next N requests get the status, Retry-After and body; then requests go through", async () => {
  const set = await s.admin("faults", "POST", { failNext: { count: 2, status: 503, retryAfter: 1, body: { code: "X", message: "busy" } } });
  assert.equal(set.status, 200);
  for (let i = 0; i < 2; i++) {
    const res = await insertPlan(`p${i}`);
    assert.equal(res.status, 503);
    assert.equal(res.headers.get("retry-after"), "1");
    assert.deepEqual(await res.json(), { code: "X", message: "busy" });
  }
  assert.equal((await insertPlan("p2")).status, 201);
  assert.deepEqual(await planIds(), ["p2"], "failed requests wrote nothing");
  const defaults = await s.admin("faults", "POST", { failNext: { count: 1, status: 429 } });
  assert.equal(defaults.status, 200);
  const res = await s.rest("training_plans");
  assert.equal(res.status, 429);
  assert.equal(res.headers.get("retry-after"), null);
  assert.match((await res.json()).message, /Injected fault/);
});

test("failNext.skip: that many requests go through first, then the next N fail", async () => {
  assert.equal((await s.admin("faults", "POST", { failNext: { skip: 2, count: 1, status: 500 } })).status, 200);
  const statuses = [];
  for (let i = 0; i < 4; i++) statuses.push((await insertPlan(`s${i}`)).status);
  assert.deepEqual(statuses, [201, 201, 500, 201]);
  assert.deepEqual(await planIds(), ["s0", "s1", "s3"]);
});

test("failRate: with a seed, the same requests fail every time, at about the rate asked", async () => {
  const outcome = async () => {
    await s.admin("faults", "POST", { failRate: { p: 0.3, status: 500, seed: 42 } });
    const statuses = [];
    for (let i = 0; i < 40; i++) statuses.push((await s.rest("sessions")).status);
    return statuses;
  };
  const first = await outcome();
  const second = await outcome();
  assert.deepEqual(first, second);
  const failures = first.filter((x) => x === 500).length;
  assert.ok(failures >= 4 && failures <= 24, `${failures} of 40 failed`);
  assert.ok(first.every((x) => x === 500 || x === 200));
});

test("latencyMs delays every matching request; paths limits faults to a prefix", async () => {
  await s.admin("faults", "POST", { latencyMs: 250, paths: "/rest/v1/rpc/" });
  let t = performance.now();
  assert.equal((await s.rest("sessions")).status, 200);
  assert.ok(performance.now() - t < 200, "a table request is outside the rpc prefix");
  t = performance.now();
  const res = await s.rest("rpc/record_sync_apply", { method: "POST", token, body: JSON.stringify({ changes: [] }) });
  assert.equal(res.status, 200);
  assert.ok(performance.now() - t >= 240, "the rpc request waited");
  t = performance.now();
  await s.admin("stats");
  assert.ok(performance.now() - t < 200, "admin routes are never faulted");
});

test("hangNext: no answer until the client gives up; the next request is served", async () => {
  await s.admin("faults", "POST", { hangNext: 1 });
  await assert.rejects(insertPlan("hung", { signal: AbortSignal.timeout(300) }), (e) => e.name === "TimeoutError");
  assert.equal((await insertPlan("after")).status, 201);
  assert.deepEqual(await planIds(), ["after"]);
  // hangMs bounds the hold: the server closes the connection itself.
  await s.admin("faults", "POST", { hangNext: 1, hangMs: 200 });
  await assert.rejects(s.rest("sessions", { signal: AbortSignal.timeout(5000) }), (e) => e.name === "TypeError");
});

test("resetNext: the connection drops before anything is done", async () => {
  await s.admin("faults", "POST", { resetNext: 1 });
  await assert.rejects(insertPlan("reset"), (e) => e.name === "TypeError" && /fetch failed/.test(e.message));
  assert.deepEqual(await planIds(), []);
  assert.equal((await insertPlan("ok")).status, 201);
});

test("commitThenDropNext: the write is committed, yet the client sees a network error", async () => {
  await s.admin("faults", "POST", { commitThenDropNext: 1 });
  const batch = { changes: [{ client_id: "c", seq: 1, table: "training_plans", id: "dropped", op: "upsert", data: { name: "D" } }] };
  await assert.rejects(
    s.rest("rpc/record_sync_apply", { method: "POST", token, body: JSON.stringify(batch) }),
    (e) => e.name === "TypeError",
  );
  assert.deepEqual(await planIds(), ["dropped"], "the row IS in the database");
  // The client's retry of the same batch is answered as a replay, not applied twice.
  const retry = await s.rest("rpc/record_sync_apply", { method: "POST", token, body: JSON.stringify(batch) });
  assert.deepEqual(await retry.json(), [{ seq: 1, status: "applied", replayed: true }]);
  assert.deepEqual((await s.admin("stats")).body.rowsWritten, { training_plans: 1 });
});

test("a malformed plan is refused and the old plan kept; DELETE clears it", async () => {
  await s.admin("faults", "POST", { latencyMs: 1 });
  for (const bad of [{ nope: 1 }, { failNext: { status: 200 } }, { failRate: { p: 2 } }, { hangNext: -1 }, [1]]) {
    const r = await s.admin("faults", "POST", bad);
    assert.equal(r.status, 400, JSON.stringify(bad));
  }
  assert.equal((await s.admin("faults")).body.faults.latencyMs, 1);
  assert.equal((await s.admin("faults", "DELETE")).status, 200);
  assert.equal((await s.admin("faults")).body.faults, null);
});

test("stats: requests by method and table, bytes in and out, rows written", async () => {
  await s.rest("training_plans?on_conflict=id&columns=id,name", {
    method: "POST",
    token,
    headers: { Prefer: "resolution=merge-duplicates,return=minimal" },
    body: JSON.stringify([{ id: "a", name: "A" }, { id: "b", name: "B" }]),
  });
  await s.rest("training_plans?id=in.(%22a%22)", { method: "PATCH", token, body: JSON.stringify({ weeks: 5 }) });
  await s.rest("training_plans?id=in.(%22a%22,%22b%22,%22c%22)", { method: "DELETE", token });
  await s.rest("training_plans?select=*", { token });
  const { body } = await s.admin("stats");
  assert.equal(body.requests.total, 4);
  assert.deepEqual(body.requests.byMethod, { POST: 1, PATCH: 1, DELETE: 1, GET: 1 });
  assert.deepEqual(body.requests.byTable, { training_plans: 4 });
  assert.deepEqual(body.rowsWritten, { training_plans: 5 });
  assert.ok(body.bytesIn > 50 && body.bytesOut >= 2);
  assert.equal(body.rpcCalls, 0);
});
