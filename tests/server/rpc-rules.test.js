// record_sync_apply's rules beyond the basics (rpc.test.js): who may call it and whose replay log it is, what
// last_changed values mean, the batch cap, set-based groups that still fail one change at a time, and racing
// batches that never deadlock.
import { after, before, beforeEach, test } from "node:test";
import assert from "node:assert/strict";
import { start, USER_A, USER_B } from "./helpers.js";

let s, tokenA, tokenB;
before(async () => {
  s = await start();
  tokenA = await s.token(USER_A);
  tokenB = await s.token(USER_B);
});
beforeEach(() => s.admin("reset", "POST"));
after(() => s.close());

let seq = 1000;
const T1 = "2026-11-24T11:00:00.000Z";
const T2 = "2026-11-24T12:00:00.000Z";
const change = (id, op, data, extra = {}) => ({ client_id: "c-rules", seq: ++seq, table: "training_plans", id, op, data, ...extra });

async function call(changes, { token = tokenA, status = 200 } = {}) {
  const res = await s.rest("rpc/record_sync_apply", { method: "POST", token, body: JSON.stringify({ changes }) });
  const body = await res.json();
  assert.equal(res.status, status, JSON.stringify(body));
  return body;
}
const statuses = (results) => results.map((r) => r.status);
const lcOf = async (id) => {
  const [r] = await s.sql("select last_changed from training_plans where id = $1", [id]);
  return r && (r.last_changed === null ? null : new Date(r.last_changed).toISOString());
};

test("anonymous callers are refused with 42501 (401) unless the installer opts in; then no replay log is kept", async () => {
  const refused = await call([change("anon1", "upsert", { name: "x" })], { token: null, status: 401 });
  assert.equal(refused.code, "42501");
  assert.match(refused.hint, /allow_anonymous/);

  // The opt-in, through the dev server's admin route (what --allow-anonymous-rpc sets at start).
  assert.deepEqual((await s.admin("settings")).body, { allowAnonymousRpc: false });
  assert.deepEqual((await s.admin("settings", "POST", { allowAnonymousRpc: true })).body, { allowAnonymousRpc: true });
  assert.deepEqual((await s.sql("select allow_anonymous from record_sync_settings")).map((r) => r.allow_anonymous), [true]);
  assert.equal((await s.admin("settings", "POST", { allowAnonymousRpc: "yes" })).status, 400);
  // The demo schema lets anon write nothing, so the change itself is refused by the table's policy, as a result.
  const [r] = await call([change("anon1", "upsert", { name: "x" })], { token: null });
  assert.equal(r.status, "error");
  assert.equal(r.code, "42501");
  assert.equal((await s.sql("select count(*)::int as n from record_sync_applied"))[0].n, 0);

  // A table anon may write, to see an anonymous change applied, and applied again on a replay (no log).
  await s.sql("create table if not exists public.rs_open (id text primary key, v int)");
  await s.sql("grant all on public.rs_open to anon");
  await s.sql("insert into record_sync_tables values ('rs_open', 'id') on conflict do nothing");
  const c = { client_id: "c-anon", seq: 1, table: "rs_open", id: "o1", op: "insert", data: { v: 1 } };
  assert.deepEqual(await call([c], { token: null }), [{ seq: 1, status: "applied" }]);
  const again = await call([c], { token: null });
  assert.equal(again[0].code, "23505", "no replay protection without a user: the insert runs again");
  assert.equal((await s.sql("select count(*)::int as n from record_sync_applied"))[0].n, 0);

  // Reset restores what the server started with.
  await s.admin("reset", "POST");
  assert.equal((await call([c], { token: null, status: 401 })).code, "42501");
});

test("the replay log is per user: the same client_id and seq from two users are two changes; anon reads none", async () => {
  const same = { client_id: "shared-client", seq: 1, table: "training_plans", op: "upsert" };
  assert.deepEqual(await call([{ ...same, id: "a", data: { name: "A" } }], { token: tokenA }), [{ seq: 1, status: "applied" }]);
  assert.deepEqual(await call([{ ...same, id: "b", data: { name: "B" } }], { token: tokenB }), [{ seq: 1, status: "applied" }]);
  assert.deepEqual((await s.sql("select id from training_plans order by id")).map((r) => r.id), ["a", "b"]);
  const log = await s.sql("select user_id, client_id, seq from record_sync_applied order by user_id");
  assert.deepEqual(log.map((r) => r.user_id), [USER_A, USER_B]);

  const anonRead = await s.rest("record_sync_applied?select=*");
  assert.equal(anonRead.status, 401, "anon has no grant on the log");
  const anonWrite = await s.rest("record_sync_applied", { method: "POST", body: JSON.stringify({ client_id: "x", seq: 1, status: "applied" }) });
  assert.equal(anonWrite.status, 401);
  const readA = await (await s.rest("record_sync_applied?select=user_id", { token: tokenA })).json();
  assert.deepEqual(readA, [{ user_id: USER_A }]);
  // A user cannot plant a row in another user's log.
  const plant = await s.rest("record_sync_applied", {
    method: "POST",
    token: tokenB,
    body: JSON.stringify({ user_id: USER_A, client_id: "shared-client", seq: 2, status: "applied" }),
  });
  assert.equal(plant.status, 403);
});

test("last_changed: offset-less strings are UTC, infinity and non-strings are 22007, NULL stored rows lose", async () => {
  // No offset: read as UTC (the function sets its own time zone).
  const [a] = await call([change("p1", "upsert", { name: "x" }, { last_changed: "2026-11-24 11:00:00" })]);
  assert.equal(a.status, "applied");
  assert.equal(await lcOf("p1"), T1);
  // Same instant with an offset: equal is not older.
  const [b] = await call([change("p1", "update", { name: "y" }, { last_changed: "2026-11-24T06:00:00-05:00" })]);
  assert.equal(b.status, "applied");
  const [c] = await call([change("p1", "update", { name: "z" }, { last_changed: "2026-11-24T10:59:59.999" })]);
  assert.equal(c.status, "conflict");
  assert.equal(c.row.name, "y");
  assert.equal(new Date(c.row.last_changed).toISOString(), T1);

  for (const bad of ["infinity", "-infinity", " Infinity ", 1764000000000, true, { t: 1 }]) {
    const [r] = await call([change("p1", "upsert", { name: "bad" }, { last_changed: bad })]);
    assert.equal(r.status, "error", JSON.stringify(bad));
    assert.equal(r.code, "22007", JSON.stringify(bad));
  }
  const [garbage] = await call([change("p1", "upsert", { name: "bad" }, { last_changed: "yesterday-ish" })]);
  assert.equal(garbage.code, "22007");
  // In data too, when the change carries none.
  const [inData] = await call([change("p1", "update", { name: "bad", last_changed: "infinity" })]);
  assert.equal(inData.code, "22007");
  assert.equal((await s.sql("select name from training_plans"))[0].name, "y");

  // A stored NULL last_changed is older than any time.
  await s.sql("alter table training_plans alter column last_changed drop not null");
  try {
    await s.sql("update training_plans set last_changed = null");
    const [n] = await call([change("p1", "update", { name: "over null" }, { last_changed: "2000-01-01T00:00:00Z" })]);
    assert.equal(n.status, "applied");
    assert.equal(await lcOf("p1"), "2000-01-01T00:00:00.000Z");
  } finally {
    await s.sql("update training_plans set last_changed = now() where last_changed is null");
    await s.sql("alter table training_plans alter column last_changed set not null");
  }
});

test("last_changed: a change without one is applied unconditionally; data's is used when the change has none", async () => {
  await call([change("p1", "upsert", { name: "newest" }, { last_changed: T2 })]);
  const [noTime] = await call([change("p1", "update", { name: "no time" })]);
  assert.equal(noTime.status, "applied");
  assert.equal((await s.sql("select name from training_plans"))[0].name, "no time");
  assert.equal(await lcOf("p1"), T2, "the row keeps its time");

  const [fromData] = await call([change("p1", "update", { name: "older in data", last_changed: T1 })]);
  assert.equal(fromData.status, "conflict", "data's last_changed is checked when the change has none");
  // The change's time wins over data's: it is what was compared, so it is what is stored.
  const [both] = await call([change("p1", "update", { name: "both", last_changed: T1 }, { last_changed: T2 })]);
  assert.equal(both.status, "applied");
  assert.equal(await lcOf("p1"), T2);
});

test("batch cap: 1000 changes apply, 1001 are refused with 22023 (400) naming the cap", async () => {
  const many = Array.from({ length: 1000 }, (_, i) => change(`m${i}`, "upsert", { name: `n${i}` }, { last_changed: T1 }));
  const r = await call(many);
  assert.equal(r.length, 1000);
  assert.ok(r.every((x, i) => x.status === "applied" && x.seq === many[i].seq));
  const tooMany = [...many, change("m1000", "upsert", { name: "x" })];
  const refused = await call(tooMany, { status: 400 });
  assert.equal(refused.code, "22023");
  assert.match(refused.message, /at most 1000/);
});

test("a group of one table and op with one bad change: that one fails alone, in order, the rest apply", async () => {
  await call([change("c0", "upsert", { name: "newer", weeks: 4 }, { last_changed: T2 })]);
  const batch = Array.from({ length: 30 }, (_, i) => change(`c${i}`, "upsert", { name: `n${i}`, weeks: i === 17 ? 0 : 4 }, { last_changed: T1 }));
  const r = await call(batch);
  assert.deepEqual(r.map((x) => x.seq), batch.map((c) => c.seq));
  assert.equal(r[0].status, "conflict");
  assert.equal(r[17].status, "error");
  assert.equal(r[17].code, "23514");
  assert.equal(r.filter((x) => x.status === "applied").length, 28);
  assert.equal((await s.sql("select count(*)::int as n from training_plans"))[0].n, 29);

  // Updates: applied, conflict and missing side by side in one statement.
  const mixed = await call([
    change("c1", "update", { weeks: 5 }, { last_changed: T2 }),
    change("c0", "update", { weeks: 5 }, { last_changed: T1 }),
    change("gone", "update", { weeks: 5 }, { last_changed: T2 }),
    change("c2", "delete", null, { last_changed: T2 }),
    change("c0", "delete", null, { last_changed: T1 }),
    change("gone", "delete", null, { last_changed: T2 }),
  ]);
  assert.deepEqual(statuses(mixed), ["applied", "conflict", "missing", "applied", "conflict", "applied"]);
  assert.equal(mixed[1].row.name, "newer");
});

test("the same (client_id, seq) twice in a batch: the first counts, the second is an error", async () => {
  const c = change("d1", "upsert", { name: "first" });
  const r = await call([c, { ...c, id: "d2", data: { name: "second" } }]);
  assert.deepEqual(statuses(r), ["applied", "error"]);
  assert.equal(r[1].code, "23505");
  assert.deepEqual((await s.sql("select id from training_plans")).map((x) => x.id), ["d1"]);
});

test("two devices of one user racing over the same records in opposite orders: no deadlock, newest wins", async () => {
  const ids = Array.from({ length: 20 }, (_, i) => `r${String(i).padStart(2, "0")}`);
  await call(ids.map((id) => change(id, "upsert", { name: "seed" }, { last_changed: "2026-01-01T00:00:00Z" })));
  const rounds = 8;
  const calls = [];
  for (let k = 0; k < rounds; k++) {
    const t = (dev) => new Date(Date.UTC(2026, 0, 2, 0, 0, k * 2 + dev)).toISOString();
    const fwd = ids.map((id) => change(id, "upsert", { name: `dev0-${k}` }, { client_id: "dev0", last_changed: t(0) }));
    const rev = [...ids].reverse().map((id) => change(id, "update", { name: `dev1-${k}` }, { client_id: "dev1", last_changed: t(1) }));
    calls.push(call(fwd), call(rev));
  }
  const results = (await Promise.all(calls)).flat();
  assert.ok(results.every((r) => r.status === "applied" || r.status === "conflict"), JSON.stringify(results.find((r) => r.status === "error")));
  const rows = await s.sql("select name, last_changed from training_plans order by id");
  const last = new Date(Date.UTC(2026, 0, 2, 0, 0, (rounds - 1) * 2 + 1)).toISOString();
  for (const r of rows) {
    assert.equal(r.name, `dev1-${rounds - 1}`);
    assert.equal(new Date(r.last_changed).toISOString(), last);
  }
});

test("a retry racing its own first attempt waits for it, then answers replayed (PostgreSQL only)", { skip: !process.env.DATABASE_URL && "PGlite is one connection: nothing can race" }, async () => {
  const batch = [change("race1", "upsert", { name: "once" }, { last_changed: T1 }), change("race2", "upsert", { name: "once" }, { last_changed: T1 })];
  let retry;
  await s.db.transaction(async (q) => {
    await q("select set_config('role', 'authenticated', true), set_config('request.jwt.claim.sub', $1, true)", [USER_A]);
    const [first] = (await q("select public.record_sync_apply($1::jsonb)::text as r", [JSON.stringify(batch)])).rows;
    assert.deepEqual(JSON.parse(first.r).map((r) => r.status), ["applied", "applied"]);
    // The first attempt has not committed: the retry must wait on the records' locks, not apply again.
    retry = call(batch);
    await new Promise((r) => setTimeout(r, 300));
  });
  const again = await retry;
  assert.deepEqual(again.map((r) => [r.status, r.replayed]), [["applied", true], ["applied", true]]);
  assert.equal((await s.sql("select count(*)::int as n from record_sync_applied where client_id = 'c-rules'"))[0].n, 2);
});
