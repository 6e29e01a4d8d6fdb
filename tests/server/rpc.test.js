// record_sync_apply, the `rpc` mode's batch function (sql/record_sync.sql), through POST /rest/v1/rpc.
import { after, before, beforeEach, test } from "node:test";
import assert from "node:assert/strict";
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
const T0 = "2026-11-24T10:00:00.000Z";
const T1 = "2026-11-24T11:00:00.000Z";
const T2 = "2026-11-24T12:00:00.000Z";
const change = (table, id, op, data, extra = {}) => ({ client_id: "c-test", seq: ++seq, table, id, op, data, last_changed: T0, ...extra });

async function apply(changes, { token = tokenA, low_water } = {}) {
  const res = await s.rest("rpc/record_sync_apply", {
    method: "POST",
    token,
    body: JSON.stringify(low_water === undefined ? { changes } : { changes, low_water }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  return res.json();
}
const statuses = (results) => results.map((r) => r.status);

test("parents and children in one batch apply in order, foreign keys hold", async () => {
  const batch = [
    change("training_models", "m1", "insert", { name: "Strength" }),
    change("training_plans", "p1", "upsert", { model_id: "m1", name: "Plan", weeks: 8 }),
    change("sessions", "s1", "upsert", { plan_id: "p1", name: "Leg day", position: 1 }),
    change("training_blocks", "b1", "insert", { session_id: "s1", name: "Main" }),
    change("exercises", "e1", "upsert", { name: "Squat", tags: ["legs", "barbell"] }),
    change("selected_exercises", "se1", "upsert", { block_id: "b1", exercise_id: "e1", series: [{ reps: 5, weight: 100 }] }),
    change("progressions", "pr1", "upsert", { selected_exercise_id: "se1", week: 2, series: [{ reps: 5, weight: 102.5 }] }),
    change("comments", "c1", "insert", { plan_id: "p1", body: "Deload in week 4" }),
    change("user_preferences", "u1", "upsert", { units: "lb", settings: { show_monitor: true } }),
  ];
  const results = await apply(batch);
  assert.deepEqual(results, batch.map((c) => ({ seq: c.seq, status: "applied" })));
  const [se] = await s.sql("select * from selected_exercises");
  assert.deepEqual(se.series, [{ reps: 5, weight: 100 }]);
  assert.equal(se.user_id, USER_A);
  assert.equal(new Date(se.last_changed).toISOString(), T0);
  assert.deepEqual((await s.sql("select tags from exercises"))[0].tags, ["legs", "barbell"]);
  assert.equal((await s.sql("select weeks from training_plans"))[0].weeks, 8);

  // A child before its parent fails alone; the rest of the batch still applies.
  const wrongOrder = [
    change("sessions", "s2", "insert", { plan_id: "p2", name: "Orphan" }),
    change("training_plans", "p2", "insert", { name: "Late parent" }),
  ];
  const r = await apply(wrongOrder);
  assert.deepEqual(statuses(r), ["error", "applied"]);
  assert.equal(r[0].code, "23503");
  assert.match(r[0].message, /foreign key/);

  // A delete cascades as the schema says.
  assert.deepEqual(statuses(await apply([change("training_plans", "p1", "delete", null, { last_changed: T1 })])), ["applied"]);
  assert.equal((await s.sql("select count(*)::int as n from selected_exercises"))[0].n, 0);
});

test("update patches only the given columns; an update of an absent row is missing, a delete of one applied", async () => {
  await apply([change("training_plans", "p1", "insert", { name: "Plan", description: "keep me", weeks: 4 })]);
  const r = await apply([
    change("training_plans", "p1", "update", { weeks: 6 }),
    change("training_plans", "nope", "update", { weeks: 6 }),
    change("training_plans", "nope", "delete", null),
    change("training_plans", "nope2", "update", { weeks: 6 }, { last_changed: null }),
  ]);
  assert.deepEqual(statuses(r), ["applied", "missing", "applied", "missing"]);
  assert.equal(r[1].row, undefined, "missing carries no row");
  assert.equal((await s.sql("select count(*)::int as n from training_plans where id like 'nope%'"))[0].n, 0);
  const [p] = await s.sql("select name, description, weeks from training_plans");
  assert.deepEqual({ ...p }, { name: "Plan", description: "keep me", weeks: 6 });
});

test("insert of an existing row is a 23505 error result; upsert replaces the row", async () => {
  await apply([change("training_plans", "p1", "insert", { name: "Plan" })]);
  const r = await apply([
    change("training_plans", "p1", "insert", { name: "Again" }),
    change("training_plans", "p1", "upsert", { name: "Replaced", weeks: 12 }),
  ]);
  assert.equal(r[0].status, "error");
  assert.equal(r[0].code, "23505");
  assert.equal(r[1].status, "applied");
  assert.deepEqual({ ...(await s.sql("select name, weeks from training_plans"))[0] }, { name: "Replaced", weeks: 12 });
});

test("last-writer-wins: an older change is a conflict carrying the stored row, and writes nothing", async () => {
  await apply([change("training_plans", "p1", "upsert", { name: "Newer" }, { last_changed: T2 })]);
  for (const op of ["update", "upsert", "delete"]) {
    const [r] = await apply([change("training_plans", "p1", op, op === "delete" ? null : { name: `Older ${op}` }, { last_changed: T1 })]);
    assert.equal(r.status, "conflict", op);
    assert.equal(r.row.id, "p1");
    assert.equal(r.row.name, "Newer");
    assert.equal(new Date(r.row.last_changed).toISOString(), T2);
  }
  const [row] = await s.sql("select name, last_changed from training_plans");
  assert.equal(row.name, "Newer");
  // Equal timestamps are not older: applied. So are changes without a timestamp.
  assert.equal((await apply([change("training_plans", "p1", "update", { name: "Same time" }, { last_changed: T2 })]))[0].status, "applied");
  assert.equal((await apply([change("training_plans", "p1", "update", { name: "No time" }, { last_changed: null })]))[0].status, "applied");
  // A newer change wins and its timestamp becomes the row's.
  const [n] = await apply([change("training_plans", "p1", "update", { name: "Newest" }, { last_changed: "2026-11-25T00:00:00.000Z" })]);
  assert.equal(n.status, "applied");
  const [after] = await s.sql("select name, last_changed from training_plans");
  assert.equal(after.name, "Newest");
  assert.equal(new Date(after.last_changed).toISOString(), "2026-11-25T00:00:00.000Z");
});

test("force: true skips the last-writer-wins check (client wins), for update, upsert and delete", async () => {
  await apply([change("training_plans", "p1", "upsert", { name: "Newer" }, { last_changed: T2 })]);
  const [u] = await apply([change("training_plans", "p1", "update", { name: "Forced" }, { last_changed: T1, force: true })]);
  assert.equal(u.status, "applied");
  assert.equal((await s.sql("select name from training_plans"))[0].name, "Forced");
  await apply([change("training_plans", "p1", "upsert", { name: "Newer" }, { last_changed: T2 })]);
  const [up] = await apply([change("training_plans", "p1", "upsert", { name: "Forced up" }, { last_changed: T0, force: true })]);
  assert.equal(up.status, "applied");
  const [row] = await s.sql("select name, last_changed from training_plans");
  assert.equal(row.name, "Forced up");
  assert.equal(new Date(row.last_changed).toISOString(), T0, "the forced change's timestamp is the row's");
  // force must be the JSON true: anything else keeps the check.
  const [notForced] = await apply([change("training_plans", "p1", "update", { name: "x" }, { last_changed: "2026-01-01T00:00:00Z", force: "yes" })]);
  assert.equal(notForced.status, "conflict");
  const [d] = await apply([change("training_plans", "p1", "delete", null, { last_changed: "2026-01-01T00:00:00Z", force: true })]);
  assert.equal(d.status, "applied");
  assert.equal((await s.sql("select count(*)::int as n from training_plans"))[0].n, 0);
  // A forced update of an absent row is still missing.
  const [m] = await apply([change("training_plans", "p1", "update", { name: "x" }, { force: true })]);
  assert.equal(m.status, "missing");
});

test("a replayed missing answers missing again, even after the row appeared", async () => {
  const upd = change("training_plans", "late", "update", { name: "x" });
  assert.deepEqual(await apply([upd]), [{ seq: upd.seq, status: "missing" }]);
  await apply([change("training_plans", "late", "insert", { name: "now here" })]);
  assert.deepEqual(await apply([upd]), [{ seq: upd.seq, status: "missing", replayed: true }]);
  assert.equal((await s.sql("select name from training_plans"))[0].name, "now here");
});

test("a bad change in the middle leaves the rest applied", async () => {
  const r = await apply([
    change("training_plans", "p1", "insert", { name: "One" }),
    change("training_plans", "p2", "insert", { name: "Two", weeks: 0 }), // check constraint
    change("training_plans", "p3", "insert", { name: "Three", no_such_column: 1 }),
    change("training_plans", "p4", "frobnicate", {}),
    change("training_plans", "p5", "insert", { name: "Five", weeks: "many" }),
    change("training_plans", "p6", "upsert", { name: "Six" }),
  ]);
  assert.deepEqual(statuses(r), ["applied", "error", "error", "error", "error", "applied"]);
  assert.deepEqual(r.slice(1, 5).map((x) => x.code), ["23514", "42703", "22023", "22P02"]);
  assert.deepEqual((await s.sql("select id from training_plans order by id")).map((x) => x.id), ["p1", "p6"]);
});

test("exactly once: a replayed batch answers from the record, re-applies nothing, and never fails on duplicates", async () => {
  const batch = [
    change("training_plans", "p1", "insert", { name: "First" }, { last_changed: T1 }),
    change("training_plans", "p1", "update", { name: "Second" }, { last_changed: T1 }),
    change("sessions", "s1", "insert", { plan_id: "p1", name: "S" }, { last_changed: T1 }),
    change("training_plans", "p1", "update", { name: "Too old" }, { last_changed: T0 }),
  ];
  const first = await apply(batch);
  assert.deepEqual(statuses(first), ["applied", "applied", "applied", "conflict"]);
  // Meanwhile another device writes a newer value; a replay must not put the older "Second" back.
  await apply([change("training_plans", "p1", "update", { name: "From elsewhere" }, { client_id: "c-other", last_changed: T2 })]);

  const again = await apply(batch);
  assert.deepEqual(again.map(({ seq, status, replayed }) => ({ seq, status, replayed })), [
    { seq: batch[0].seq, status: "applied", replayed: true },
    { seq: batch[1].seq, status: "applied", replayed: true },
    { seq: batch[2].seq, status: "applied", replayed: true },
    { seq: batch[3].seq, status: "conflict", replayed: true },
  ]);
  assert.equal(again[3].row.name, "From elsewhere");
  assert.equal((await s.sql("select name from training_plans"))[0].name, "From elsewhere");
  assert.equal((await s.sql("select count(*)::int as n from sessions"))[0].n, 1);

  // Errors are not recorded: the same change can be retried once it can succeed.
  const orphan = change("sessions", "s2", "insert", { plan_id: "p9", name: "Orphan" });
  assert.equal((await apply([orphan]))[0].status, "error");
  await apply([change("training_plans", "p9", "insert", { name: "Parent" })]);
  assert.deepEqual(await apply([orphan]), [{ seq: orphan.seq, status: "applied" }]);
});

test("low_water prunes that client's older records; replay state of other clients is kept", async () => {
  const a = [1, 2, 3].map((i) => change("training_plans", `p${i}`, "upsert", { name: `P${i}` }, { client_id: "c-low", seq: i }));
  await apply(a);
  await apply([change("training_plans", "q1", "upsert", { name: "Q" }, { client_id: "c-keep", seq: 1 })]);
  await apply([change("training_plans", "p4", "upsert", { name: "P4" }, { client_id: "c-low", seq: 4 })], { low_water: 3 });
  const rows = await s.sql("select client_id, seq from record_sync_applied order by client_id, seq");
  assert.deepEqual(rows.map((r) => `${r.client_id}:${r.seq}`), ["c-keep:1", "c-low:3", "c-low:4"]);
});

test("a table outside record_sync_tables is refused with 42501 and named", async () => {
  const r = await apply([
    change("record_sync_applied", "x", "delete", null),
    change("pg_authid", "x", "delete", null),
    change('sessions"; drop table sessions; --', "x", "delete", null),
    change("training_plans", "ok", "upsert", { name: "Allowed" }),
  ]);
  assert.deepEqual(statuses(r), ["error", "error", "error", "applied"]);
  for (const e of r.slice(0, 3)) assert.equal(e.code, "42501");
  assert.match(r[0].message, /record_sync_applied/);
  assert.equal((await s.sql("select count(*)::int as n from sessions"))[0].n, 0);
});

test("row-level security: user B can neither read nor overwrite user A's rows through rpc or REST", async () => {
  await apply([
    change("training_plans", "pa", "upsert", { name: "A's plan" }),
    change("sessions", "sa", "upsert", { plan_id: "pa", name: "A's session" }),
  ]);
  const r = await apply(
    [
      change("training_plans", "pa", "upsert", { name: "B was here" }, { client_id: "c-b", last_changed: T2 }),
      change("training_plans", "pa", "update", { name: "B was here" }, { client_id: "c-b", last_changed: T2 }),
      change("training_plans", "pa", "delete", null, { client_id: "c-b", last_changed: T2 }),
      change("training_plans", "pb", "upsert", { name: "B's own", user_id: USER_A }, { client_id: "c-b" }),
    ],
    { token: tokenB },
  );
  assert.equal(r[0].status, "error");
  assert.equal(r[0].code, "42501");
  // Invisible rows behave as absent ones: an update is missing, a delete is the idempotent no-op.
  assert.deepEqual(statuses(r.slice(1, 3)), ["missing", "applied"]);
  assert.equal(r[3].code, "42501", "B cannot write a row in A's name");
  assert.deepEqual((await s.sql("select id, name, user_id from training_plans")).map((x) => ({ ...x })), [
    { id: "pa", name: "A's plan", user_id: USER_A },
  ]);

  const readB = await s.rest("training_plans?select=*", { token: tokenB });
  assert.deepEqual(await readB.json(), []);
  const readAnon = await s.rest("training_plans?select=*");
  assert.deepEqual(await readAnon.json(), []);
  const readA = await (await s.rest("training_plans?select=id", { token: tokenA })).json();
  assert.deepEqual(readA, [{ id: "pa" }]);

  const patchB = await s.rest("training_plans?id=eq.pa", { method: "PATCH", token: tokenB, body: JSON.stringify({ name: "B" }) });
  assert.equal(patchB.status, 204);
  const upsertB = await s.rest("training_plans?on_conflict=id&columns=id,name", {
    method: "POST",
    token: tokenB,
    headers: { Prefer: "resolution=merge-duplicates,return=minimal" },
    body: JSON.stringify([{ id: "pa", name: "B" }]),
  });
  assert.equal(upsertB.status, 403);
  assert.equal((await upsertB.json()).code, "42501");
  const deleteB = await s.rest("sessions?id=in.(%22sa%22)", { method: "DELETE", token: tokenB });
  assert.equal(deleteB.status, 204);
  const anonInsert = await s.rest("training_plans", { method: "POST", body: JSON.stringify({ id: "anon", name: "x" }) });
  assert.equal(anonInsert.status, 401, "42501 for anon is 401");
  assert.equal((await s.sql("select name from training_plans where id = 'pa'"))[0].name, "A's plan");
  assert.equal((await s.sql("select count(*)::int as n from sessions"))[0].n, 1);

  // B's replay log is B's alone.
  const logB = await (await s.rest("record_sync_applied?select=client_id", { token: tokenB })).json();
  assert.ok(logB.every((x) => x.client_id === "c-b"));
});

test("stats count the rows record_sync_apply wrote, not replays or errors", async () => {
  const batch = [
    change("training_plans", "p1", "upsert", { name: "P" }),
    change("sessions", "s1", "upsert", { plan_id: "p1", name: "S" }),
    change("sessions", "s2", "upsert", { plan_id: "nope", name: "S" }),
  ];
  await apply(batch);
  await apply(batch);
  const { body } = await s.admin("stats");
  assert.deepEqual(body.rowsWritten, { training_plans: 1, sessions: 1 });
  assert.equal(body.rpcCalls, 2);
  assert.equal(body.requests.byTable["rpc/record_sync_apply"], 2);
});

test("bad calls: changes not an array is a 400 from the function; unknown function is PGRST202", async () => {
  const notArray = await s.rest("rpc/record_sync_apply", { method: "POST", token: tokenA, body: JSON.stringify({ changes: {} }) });
  assert.equal(notArray.status, 400);
  assert.equal((await notArray.json()).code, "22023");
  const missing = await s.rest("rpc/no_such_fn", { method: "POST", token: tokenA, body: "{}" });
  assert.equal(missing.status, 404);
  assert.equal((await missing.json()).code, "PGRST202");
  const extraArg = await s.rest("rpc/record_sync_apply", { method: "POST", token: tokenA, body: JSON.stringify({ changes: [], bogus: 1 }) });
  assert.equal(extraArg.status, 404);
});
