// The official clients against the dev server: every request shape of record-sync's wire plan through
// @supabase/postgrest-js, and auth through @supabase/supabase-js, checked in the database.
import { after, before, beforeEach, test } from "node:test";
import assert from "node:assert/strict";
import { start, USER_A, USER_B } from "./helpers.js";

let s, tokenA, db;
before(async () => {
  s = await start();
  tokenA = await s.token(USER_A);
  db = s.postgrest(tokenA);
});
beforeEach(() => s.admin("reset", "POST"));
after(() => s.close());

async function seedPlan(id = "p1") {
  const { error, status } = await db.from("training_plans").insert({ id, name: "Plan" });
  assert.equal(error, null);
  assert.equal(status, 201);
}

test("bulk upsert with onConflict sends on_conflict + columns and merges", async () => {
  await seedPlan();
  const rows = [
    { id: "s1", plan_id: "p1", name: "A", position: 1 },
    { id: "s2", plan_id: "p1", name: "B", position: 2, notes: "n" },
  ];
  const first = await db.from("sessions").upsert(rows, { onConflict: "id" });
  assert.equal(first.error, null);
  assert.equal(first.status, 201);
  const second = await db.from("sessions").upsert([{ id: "s1", plan_id: "p1", name: "A2", position: 5 }], { onConflict: "id" });
  assert.equal(second.error, null);
  const got = await s.sql("select id, name, position, notes from sessions order by id");
  assert.deepEqual(got.map((r) => ({ ...r })), [
    { id: "s1", name: "A2", position: 5, notes: null },
    { id: "s2", name: "B", position: 2, notes: "n" },
  ]);
});

test("missing keys: null by default, the column default with defaultToNull: false", async () => {
  await seedPlan();
  const withNull = await db.from("sessions").upsert(
    [{ id: "s1", plan_id: "p1", name: "A", position: 2 }, { id: "s2", plan_id: "p1", name: "B" }],
    { onConflict: "id" },
  );
  assert.equal(withNull.status, 400);
  assert.equal(withNull.error.code, "23502");
  const withDefault = await db.from("sessions").upsert(
    [{ id: "s1", plan_id: "p1", name: "A", position: 2 }, { id: "s2", plan_id: "p1", name: "B" }],
    { onConflict: "id", defaultToNull: false },
  );
  assert.equal(withDefault.error, null);
  assert.deepEqual((await s.sql("select id, position from sessions order by id")).map((r) => r.position), [2, 0]);
});

test("ignoreDuplicates keeps the stored row; return=representation gives the rows back", async () => {
  await seedPlan();
  const ins = await db.from("training_plans").insert([{ id: "p2", name: "Two", weeks: 6 }]).select("id, name, weeks");
  assert.equal(ins.status, 201);
  assert.deepEqual(ins.data, [{ id: "p2", name: "Two", weeks: 6 }]);
  const ign = await db.from("training_plans").upsert({ id: "p2", name: "Ignored" }, { onConflict: "id", ignoreDuplicates: true }).select();
  assert.equal(ign.error, null);
  assert.deepEqual(ign.data, []);
  assert.equal((await s.sql("select name from training_plans where id = 'p2'"))[0].name, "Two");
  const single = await db.from("training_plans").upsert({ id: "p3", name: "Three" }).select("id,weeks").single();
  assert.deepEqual(single.data, { id: "p3", weeks: 4 });
});

test("patch with an in-filter and delete with an in-list", async () => {
  await seedPlan();
  await db.from("sessions").insert([
    { id: "a,b", plan_id: "p1", name: "one" },
    { id: "x.y", plan_id: "p1", name: "two" },
    { id: "(z)", plan_id: "p1", name: "three" },
  ]);
  const patch = await db.from("sessions").update({ name: "patched", position: 9 }).in("id", ["a,b"]);
  assert.equal(patch.error, null);
  assert.equal(patch.status, 204);
  const rep = await db.from("sessions").update({ notes: "n" }).in("id", ["x.y", "(z)"]).select("id");
  assert.deepEqual(rep.data.map((r) => r.id).sort(), ["(z)", "x.y"]);
  assert.deepEqual((await s.sql("select id, name, position from sessions where id = 'a,b'")).map((r) => ({ ...r })), [
    { id: "a,b", name: "patched", position: 9 },
  ]);
  const empty = await db.from("sessions").update({}).in("id", ["x.y"]).select();
  assert.equal(empty.error, null, "an empty patch changes nothing");
  assert.deepEqual(empty.data, []);
  const del = await db.from("sessions").delete().in("id", ["a,b", "(z)"]);
  assert.equal(del.error, null);
  assert.equal(del.status, 204);
  assert.deepEqual((await s.sql("select id from sessions")).map((r) => r.id), ["x.y"]);
});

test("select with filters, order, limit, offset, count and single", async () => {
  await seedPlan();
  await db.from("sessions").insert(
    [1, 2, 3, 4, 5].map((i) => ({ id: `s${i}`, plan_id: "p1", name: `S${i}`, position: i, week: i % 2 ? 1 : null })),
  );
  const page = await db.from("sessions").select("id, pos:position", { count: "exact" }).gte("position", 2).order("position", { ascending: false }).range(1, 2);
  assert.equal(page.error, null);
  assert.deepEqual(page.data, [{ id: "s4", pos: 4 }, { id: "s3", pos: 3 }]);
  assert.equal(page.count, 4);
  const eq = await db.from("sessions").select("id").eq("name", "S2");
  assert.deepEqual(eq.data, [{ id: "s2" }]);
  const lt = await db.from("sessions").select("id").lt("position", 3).neq("id", "s1");
  assert.deepEqual(lt.data, [{ id: "s2" }]);
  const isNull = await db.from("sessions").select("id").is("week", null).order("id");
  assert.deepEqual(isNull.data, [{ id: "s2" }, { id: "s4" }]);
  const notIn = await db.from("sessions").select("id").not("id", "in", "(s1,s2,s3)").order("id");
  assert.deepEqual(notIn.data, [{ id: "s4" }, { id: "s5" }]);
  const one = await db.from("sessions").select("name").eq("id", "s5").single();
  assert.deepEqual(one.data, { name: "S5" });
  const none = await db.from("sessions").select("name").eq("id", "zzz").single();
  assert.equal(none.status, 406);
  assert.equal(none.error.code, "PGRST116");
  const gt = await db.from("sessions").select("id").gt("position", 4).lte("position", 5);
  assert.deepEqual(gt.data, [{ id: "s5" }]);
});

test("rpc: record_sync_apply and errors with PostgREST's codes and statuses", async () => {
  const { data, error, status } = await db.rpc("record_sync_apply", {
    changes: [{ client_id: "c", seq: 1, table: "training_plans", id: "p1", op: "upsert", data: { name: "Via rpc" } }],
  });
  assert.equal(error, null);
  assert.equal(status, 200);
  assert.deepEqual(data, [{ seq: 1, status: "applied" }]);
  const dup = await db.from("training_plans").insert({ id: "p1", name: "dup" });
  assert.equal(dup.status, 409);
  assert.equal(dup.error.code, "23505");
  const fk = await db.from("sessions").insert({ id: "s", plan_id: "none", name: "x" });
  assert.equal(fk.status, 409);
  assert.equal(fk.error.code, "23503");
  const nn = await db.from("sessions").insert({ id: "s", plan_id: "p1" });
  assert.equal(nn.status, 400);
  assert.equal(nn.error.code, "23502");
  const badType = await db.from("training_plans").select().eq("weeks", "many");
  assert.equal(badType.status, 400);
  assert.equal(badType.error.code, "22P02");
  const noTable = await db.from("nope").select();
  assert.equal(noTable.status, 404);
  assert.equal(noTable.error.code, "PGRST205");
  const noColumn = await db.from("sessions").select("nope");
  assert.equal(noColumn.status, 400);
  assert.equal(noColumn.error.code, "42703");
});

test("supabase-js: a signed-in user reads and writes own rows only; the service key sees all", async () => {
  const a = s.supabase(tokenA);
  const b = s.supabase(await s.token(USER_B));
  const ins = await a.from("training_plans").insert({ id: "pa", name: "A" }).select().single();
  assert.equal(ins.error, null);
  assert.equal(ins.data.user_id, USER_A);
  assert.deepEqual((await b.from("training_plans").select()).data, []);
  assert.deepEqual((await s.supabase().from("training_plans").select()).data, [], "anon sees nothing");
  const upd = await b.from("training_plans").update({ name: "B" }).eq("id", "pa").select();
  assert.deepEqual(upd.data, []);
  const rpc = await b.rpc("record_sync_apply", {
    changes: [{ client_id: "cb", seq: 1, table: "training_plans", id: "pa", op: "upsert", data: { name: "B" } }],
  });
  assert.equal(rpc.data[0].status, "error");
  assert.equal(rpc.data[0].code, "42501");
  const service = new (await import("@supabase/supabase-js")).SupabaseClient(s.url, s.serviceKey, {
    auth: { persistSession: false, autoRefreshToken: false },
    realtime: { transport: class {} },
  });
  const all = await service.from("training_plans").select("id, name");
  assert.deepEqual(all.data, [{ id: "pa", name: "A" }]);
});
