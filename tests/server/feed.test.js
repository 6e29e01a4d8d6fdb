// The change feed (sql/record_sync_feed.sql): server-assigned versions, tombstones, the record_sync_changes
// catch-up under row-level security, paging, origin marking, and (on PostgreSQL) transactions committing out of
// the order they took their versions in.
import { after, before, beforeEach, test } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import { start, USER_A, USER_B } from "./helpers.js";

let s, tokenA, tokenB;
before(async () => {
  s = await start();
  tokenA = await s.token(USER_A);
  tokenB = await s.token(USER_B);
});
beforeEach(async () => {
  assert.equal((await s.admin("reset", "POST")).status, 200);
});
after(() => s.close());

let seq = 0;
const change = (table, id, op, data, client_id = "c-a") => ({ client_id, seq: ++seq, table, id, op, data });

async function apply(changes, token = tokenA) {
  const res = await s.rest("rpc/record_sync_apply", { method: "POST", token, body: JSON.stringify({ changes }) });
  assert.equal(res.status, 200, await res.clone().text());
  const results = await res.json();
  assert.ok(results.every((r) => r.status === "applied"), JSON.stringify(results));
}

/**
 * Waits until every transaction that had started by now has ended (or only `except` is still open). The feed
 * hands out rows below the oldest transaction still running anywhere in the cluster, and on PostgreSQL other
 * test files run transactions of their own meanwhile.
 */
async function caughtUp(except = null) {
  const [{ x }] = await s.sql("select pg_snapshot_xmax(pg_current_snapshot())::text as x");
  for (const until = Date.now() + 10_000; Date.now() < until; await new Promise((r) => setTimeout(r, 10))) {
    const [{ xmin }] = await s.sql("select pg_snapshot_xmin(pg_current_snapshot())::text as xmin");
    if (BigInt(xmin) >= BigInt(x) || (except !== null && xmin === except)) return;
  }
  throw new Error("another transaction stayed open for 10 s");
}

async function feed(args = {}, token = tokenA, { wait = true } = {}) {
  if (wait) await caughtUp();
  const res = await s.rest("rpc/record_sync_changes", { method: "POST", token, body: JSON.stringify(args) });
  assert.equal(res.status, 200, await res.clone().text());
  return res.json();
}

/** Every page from `since` on, as a client would pull them. */
async function pullAll(since = null, pageSize = 500, token = tokenA) {
  const changes = [];
  let cursor = since;
  for (;;) {
    const page = await feed({ since: cursor, page_size: pageSize }, token);
    changes.push(...page.changes);
    cursor = page.cursor;
    if (!page.more) return { changes, cursor };
  }
}

test("versions come from the server and only grow; an update that changes nothing keeps its version", async () => {
  // A client cannot choose its version, transaction or origin: the trigger overwrites whatever it sends.
  await apply([change("exercises", "e1", "upsert", { name: "Squat", record_sync_version: 999999999, record_sync_origin: "forged" })]);
  const [v1] = await s.sql("select record_sync_version, record_sync_origin from exercises where id = 'e1'");
  assert.ok(Number(v1.record_sync_version) < 999999999);
  assert.equal(v1.record_sync_origin, "c-a");

  const versions = [Number(v1.record_sync_version)];
  for (const name of ["Front squat", "Box squat", "Pause squat"]) {
    await apply([change("exercises", "e1", "update", { name })]);
    const [r] = await s.sql("select record_sync_version from exercises where id = 'e1'");
    versions.push(Number(r.record_sync_version));
  }
  assert.deepEqual(versions, [...versions].sort((a, b) => a - b));
  assert.equal(new Set(versions).size, versions.length, "each write takes a new version");

  // The same values again: no new version, so nothing new in the feed.
  const before = (await feed()).cursor;
  await apply([change("exercises", "e1", "update", { name: "Pause squat" })]);
  const [same] = await s.sql("select record_sync_version from exercises where id = 'e1'");
  assert.equal(Number(same.record_sync_version), versions.at(-1));
  assert.deepEqual((await feed({ since: before })).changes, []);

  // Plain REST writes (not record_sync_apply) are versioned too, with no origin.
  const res = await s.rest("exercises", { method: "POST", token: tokenA, body: JSON.stringify({ id: "e2", name: "Lunge" }) });
  assert.equal(res.status, 201);
  const { changes } = await feed({ since: before });
  assert.deepEqual(changes.map((c) => [c.id, c.op, c.origin]), [["e2", "upsert", null]]);
  assert.ok(changes[0].version > versions.at(-1));
});

test("a delete leaves a tombstone with a newer version; re-creating the row clears it", async () => {
  await apply([change("exercises", "e1", "upsert", { name: "Squat" }), change("exercises", "e2", "upsert", { name: "Row" })]);
  const first = await feed();
  const upserted = first.changes.find((c) => c.id === "e1");
  assert.equal(upserted.op, "upsert");
  assert.equal(upserted.row.name, "Squat");

  await apply([change("exercises", "e1", "delete", undefined, "c-b")]);
  const { changes } = await feed({ since: first.cursor });
  assert.deepEqual(changes.map((c) => ({ table: c.table, id: c.id, op: c.op, row: c.row, origin: c.origin })), [
    { table: "exercises", id: "e1", op: "delete", row: null, origin: "c-b" },
  ]);
  assert.ok(changes[0].version > upserted.version);
  assert.deepEqual(await s.sql("select table_name, owner from record_sync_tombstones"), [{ table_name: "exercises", owner: USER_A }]);

  await apply([change("exercises", "e1", "upsert", { name: "Squat again" })]);
  assert.deepEqual(await s.sql("select * from record_sync_tombstones"), []);
  const all = await pullAll();
  assert.deepEqual(all.changes.map((c) => [c.id, c.op]).sort(), [["e1", "upsert"], ["e2", "upsert"]]);

  // A row handed to another owner is gone for the first one: a tombstone in their feed.
  const cursor = all.cursor;
  await s.sql(`update exercises set user_id = '${USER_B}' where id = 'e2'`);
  const moved = await feed({ since: cursor });
  assert.deepEqual(moved.changes.map((c) => [c.id, c.op]), [["e2", "delete"]]);
  assert.deepEqual((await feed({}, tokenB)).changes.map((c) => [c.id, c.op]), [["e2", "upsert"]]);
});

test("tombstones older than the retention are pruned, and a cursor older than them is told to start over", async () => {
  await apply([change("exercises", "e1", "upsert", { name: "Squat" }), change("exercises", "e2", "upsert", { name: "Row" })]);
  const old = (await feed()).cursor;
  await apply([change("exercises", "e1", "delete")]);
  const current = (await feed({ since: old })).cursor;
  await s.sql("update record_sync_tombstones set deleted_at = now() - interval '31 days'");
  // The next delete prunes what is past the retention (30 days by default).
  await apply([change("exercises", "e2", "delete")]);
  assert.deepEqual((await s.sql("select id from record_sync_tombstones")).map((r) => r.id), ["e2"]);

  assert.deepEqual(await feed({ since: old }), { changes: [], cursor: null, more: true, reset: true });
  // A reader that had already seen the pruned tombstone is not reset.
  const next = await feed({ since: current });
  assert.deepEqual(next.changes.map((c) => [c.id, c.op]), [["e2", "delete"]]);
  assert.equal(next.reset, undefined);
});

test("a first read that finds nothing gets the pruned horizon as its cursor: a later prune past it tells that reader to start over", async () => {
  const prune = async () => {
    await s.sql("update record_sync_tombstones set deleted_at = now() - interval '31 days'");
    await apply([change("exercises", `p${seq}`, "upsert", { name: "x" })]);
    await apply([change("exercises", `p${seq - 1}`, "delete")]);
  };
  await apply([change("exercises", "e1", "upsert", { name: "Squat" })]);
  await apply([change("exercises", "e1", "delete")]);
  await prune();
  const [state] = await s.sql("select pruned_xid::text as x, pruned_version::text as v from record_sync_feed_state");
  assert.notEqual(state.v, "0", "something was pruned");
  // B has nothing: a null cursor here left B no way to be told of a later prune (README, "Remote changes").
  const empty = await feed({}, tokenB);
  assert.deepEqual(empty, { changes: [], cursor: `${state.x}-${state.v}`, more: false });
  assert.equal((await feed({ since: empty.cursor }, tokenB)).reset, undefined, "not behind the horizon it was given");
  await prune();
  assert.deepEqual(await feed({ since: empty.cursor }, tokenB), { changes: [], cursor: null, more: true, reset: true });
});

test("row-level security: each user reads only their own changes, anonymous callers none", async () => {
  await apply([change("training_models", "m-a", "upsert", { name: "A's model" }), change("exercises", "x-a", "upsert", { name: "A" })]);
  await apply([change("exercises", "x-b", "upsert", { name: "B" }, "c-b")], tokenB);
  await apply([change("exercises", "x-a", "delete")]);

  const a = await pullAll();
  const b = await pullAll(null, 500, tokenB);
  assert.deepEqual(a.changes.map((c) => [c.table, c.id, c.op]).sort(), [["exercises", "x-a", "delete"], ["training_models", "m-a", "upsert"]]);
  assert.deepEqual(b.changes.map((c) => [c.table, c.id, c.op]), [["exercises", "x-b", "upsert"]]);
  assert.ok(b.changes.every((c) => c.row.user_id === USER_B));

  const anon = await s.rest("rpc/record_sync_changes", { method: "POST", body: "{}" });
  assert.equal(anon.status, 401);
  assert.equal((await anon.json()).code, "42501");
});

test("paging: every change exactly once, in cursor order, over several pages; GET works too", async () => {
  const batch = [];
  for (let i = 0; i < 25; i++) batch.push(change("exercises", `e${String(i).padStart(2, "0")}`, "upsert", { name: `E${i}` }));
  await apply(batch.slice(0, 10));
  await apply(batch.slice(10));
  await apply([change("exercises", "e03", "update", { name: "E3 again" }), change("exercises", "e04", "delete")]);

  const pages = [];
  let cursor = null;
  for (;;) {
    const page = await feed({ since: cursor, page_size: 10, tables: ["exercises"] });
    pages.push(page);
    if (page.more) assert.notEqual(page.cursor, cursor);
    cursor = page.cursor;
    if (!page.more) break;
  }
  assert.deepEqual(pages.map((p) => p.changes.length), [10, 10, 5]);
  const all = pages.flatMap((p) => p.changes);
  assert.equal(new Set(all.map((c) => c.id)).size, 25, "each record once, in its latest state");
  assert.equal(all.find((c) => c.id === "e03").row.name, "E3 again");
  assert.equal(all.find((c) => c.id === "e04").op, "delete");
  assert.deepEqual((await feed({ since: cursor })).changes, [], "nothing after the last cursor");

  const get = await s.rest(`rpc/record_sync_changes?page_size=3&tables=${encodeURIComponent("{exercises}")}`, { token: tokenA });
  assert.equal(get.status, 200);
  const page = await get.json();
  assert.deepEqual(page.changes.map((c) => c.id), all.slice(0, 3).map((c) => c.id));
  assert.equal(page.more, true);
});

test("bad arguments are refused with 22023 naming them", async () => {
  for (const [args, pattern] of [
    [{ since: "not-a-cursor" }, /since/],
    [{ page_size: 0 }, /page_size/],
    [{ page_size: 1001 }, /page_size/],
    [{ tables: ["record_sync_applied"] }, /record_sync_applied/],
  ]) {
    const res = await s.rest("rpc/record_sync_changes", { method: "POST", token: tokenA, body: JSON.stringify(args) });
    assert.equal(res.status, 400, JSON.stringify(args));
    const body = await res.json();
    assert.equal(body.code, "22023");
    assert.match(body.message, pattern);
  }
});

test("origin: rows written by record_sync_apply carry the batch's client_id, in the row and in the feed", async () => {
  await apply([change("training_plans", "p1", "upsert", { name: "Plan" }, "tab-1"), change("sessions", "s1", "upsert", { plan_id: "p1", name: "Legs" }, "tab-1")]);
  const first = await feed();
  assert.deepEqual(first.changes.map((c) => [c.table, c.origin, c.row.record_sync_origin]), [
    ["training_plans", "tab-1", "tab-1"],
    ["sessions", "tab-1", "tab-1"],
  ]);
  await apply([change("sessions", "s1", "update", { name: "Legs, heavier" }, "phone-7")]);
  const second = await feed({ since: first.cursor });
  assert.deepEqual(second.changes.map((c) => [c.id, c.origin]), [["s1", "phone-7"]]);
  // The setting lives for one transaction: a later write by someone else is not marked with it.
  await s.sql("update sessions set notes = 'by hand' where id = 's1'");
  const third = await feed({ since: second.cursor });
  assert.deepEqual(third.changes.map((c) => c.origin), [null]);

  // Plain PostgREST writes (record-sync's rest mode) name their client in a header; without it, no origin.
  const patch = (name, headers) =>
    s.rest("sessions?id=eq.s1", { method: "PATCH", token: tokenA, headers, body: JSON.stringify({ name }) });
  assert.equal((await patch("Legs (rest)", { "X-Record-Sync-Origin": "rest-tab" })).status, 204);
  const fourth = await feed({ since: third.cursor });
  assert.deepEqual(fourth.changes.map((c) => [c.id, c.origin, c.row.name]), [["s1", "rest-tab", "Legs (rest)"]]);
  // Several requests, so that pooled connections that served a header before serve one without it.
  for (let i = 0; i < 4; i++) {
    assert.equal((await patch(`Legs ${i}`)).status, 204);
    const [r] = await s.sql("select record_sync_origin from sessions where id = 's1'");
    assert.equal(r.record_sync_origin, null);
  }
  const del = await s.rest("sessions?id=eq.s1", { method: "DELETE", token: tokenA, headers: { "X-Record-Sync-Origin": "rest-tab" } });
  assert.equal(del.status, 204);
  const fifth = await feed({ since: fourth.cursor });
  assert.deepEqual(fifth.changes.map((c) => [c.op, c.origin]), [["delete", "rest-tab"]]);
});

test("PostgreSQL: a transaction that commits after a later one is never skipped by a cursor", { skip: !process.env.DATABASE_URL && "PGlite has one connection: no concurrent transactions" }, async () => {
  const connect = async () => {
    const c = new pg.Client({ connectionString: s.databaseUrl });
    await c.connect();
    return c;
  };
  const t1 = await connect();
  const t2 = await connect();
  const asUserA = async (c) => {
    await c.query("begin");
    await c.query("select set_config('role', 'authenticated', true), set_config('request.jwt.claims', $1, true)", [
      JSON.stringify({ sub: USER_A, role: "authenticated" }),
    ]);
  };
  const insert = (c, id) => c.query("insert into exercises (id, name) values ($1, $1)", [id]);
  try {
    await apply([change("exercises", "before", "upsert", { name: "before" })]);
    const start = (await feed()).cursor;

    await asUserA(t1);
    await insert(t1, "t1-first"); // T1 takes its transaction id and version v1
    await asUserA(t2);
    await insert(t2, "t2"); // T2: a later transaction id, version v2 > v1
    await insert(t1, "t1-second"); // T1 again: version v3 > v2, T1's (earlier) transaction id
    await t1.query("commit");

    // T2 is still open: T1's rows are handed out, T2's cannot be passed yet.
    const [{ xid: t2xid }] = (await t2.query("select pg_current_xact_id()::text as xid")).rows;
    await caughtUp(t2xid);
    const whileOpen = await feed({ since: start }, tokenA, { wait: false });
    assert.deepEqual(whileOpen.changes.map((c) => c.id), ["t1-first", "t1-second"]);
    const v = Object.fromEntries(whileOpen.changes.map((c) => [c.id, c.version]));

    await t2.query("commit");
    const afterCommit = await feed({ since: whileOpen.cursor });
    // A cursor by version alone (v3) would have skipped t2 (v2 < v3).
    assert.deepEqual(afterCommit.changes.map((c) => c.id), ["t2"]);
    assert.ok(afterCommit.changes[0].version < v["t1-second"] && afterCommit.changes[0].version > v["t1-first"]);

    // Rows of a transaction still open are held back even when they are the only ones.
    await asUserA(t2);
    await insert(t2, "t2-late");
    assert.deepEqual((await feed({ since: afterCommit.cursor }, tokenA, { wait: false })).changes, []);
    await t2.query("rollback");
    assert.deepEqual((await feed({ since: afterCommit.cursor })).changes, []);
  } finally {
    await t1.end();
    await t2.end();
  }
});
