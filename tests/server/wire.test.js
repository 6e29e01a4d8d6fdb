// The exact requests of record-sync's `rest` mode, sent with plain fetch, with ids and names that PostgREST's
// grammar treats specially: every one must reach the database exactly as written.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { inList, quoteName, start, USER_A } from "./helpers.js";

const TABLE = "odd.table (1)";
const PK = "key,part";
const COLS = [PK, "val:ue", 'with "quote"', "back\\slash", "ünï"];
const IDS = ["a,b", "x.y", "(p)", 'he said "hi"', "back\\slash", "ünï ✓ 日本", "%20", "plus+sign", " spaced ", "semi;colon&x=1", "it's", "in.(1)"];

let s;
before(async () => {
  s = await start();
  await s.sql(`create table public."odd.table (1)" (
      "key,part" text primary key, "val:ue" text, "with ""quote""" text, "back\\slash" integer, "ünï" jsonb)`);
  await s.sql(`grant all on public."odd.table (1)" to anon, authenticated, service_role`);
});
after(() => s.close());

const path = (query) => `${encodeURIComponent(TABLE)}?${query}`;
const columnsParam = (cols) => encodeURIComponent(cols.map(quoteName).join(","));
const pkFilter = encodeURIComponent(quoteName(PK));
const stored = async () =>
  (await s.sql(`select * from public."odd.table (1)" order by "key,part"`)).map((r) => ({ ...r }));

test("bulk upsert with on_conflict and columns: 201, empty body, every odd id stored as sent", async () => {
  const rows = IDS.map((id, i) => ({ [PK]: id, "val:ue": `v${i}`, 'with "quote"': 'q"', "back\\slash": i, "ünï": { i, s: id } }));
  const res = await s.rest(path(`on_conflict=${encodeURIComponent(quoteName(PK))}&columns=${columnsParam(COLS)}`), {
    method: "POST",
    headers: { Prefer: "resolution=merge-duplicates,return=minimal" },
    body: JSON.stringify(rows),
  });
  assert.equal(res.status, 201);
  assert.equal(await res.text(), "");
  const got = await stored();
  assert.deepEqual(got.map((r) => r[PK]).sort(), [...IDS].sort());
  const ab = got.find((r) => r[PK] === "a,b");
  assert.deepEqual(ab, { [PK]: "a,b", "val:ue": "v0", 'with "quote"': 'q"', "back\\slash": 0, "ünï": { i: 0, s: "a,b" } });

  // The same request again with new values merges instead of failing on the duplicate keys.
  const again = await s.rest(path(`on_conflict=${encodeURIComponent(quoteName(PK))}&columns=${columnsParam(COLS)}`), {
    method: "POST",
    headers: { Prefer: "resolution=merge-duplicates,return=minimal" },
    body: JSON.stringify(rows.map((r) => ({ ...r, "val:ue": "merged" }))),
  });
  assert.equal(again.status, 201);
  const merged = await stored();
  assert.equal(merged.length, IDS.length);
  assert.ok(merged.every((r) => r["val:ue"] === "merged"));
});

test("GET with an in-list of quoted odd ids finds each exactly", async () => {
  for (const id of IDS) {
    const res = await s.rest(path(`select=*&${pkFilter}=${inList([id])}`));
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.deepEqual(body.map((r) => r[PK]), [id], `id ${JSON.stringify(id)}`);
  }
  const all = await (await s.rest(path(`select=${columnsParam([PK])}&${pkFilter}=${inList(IDS)}`))).json();
  assert.deepEqual(all.map((r) => r[PK]).sort(), [...IDS].sort());
});

test("PATCH ?pk=in.(\"id\"): 204, only that row changes", async () => {
  for (const id of IDS) {
    const res = await s.rest(path(`${pkFilter}=${inList([id])}`), {
      method: "PATCH",
      headers: { Prefer: "return=minimal" },
      body: JSON.stringify({ "val:ue": `patched ${id}` }),
    });
    assert.equal(res.status, 204);
    assert.equal(await res.text(), "");
  }
  for (const r of await stored()) assert.equal(r["val:ue"], `patched ${r[PK]}`);
});

test("DELETE ?pk=in.(...): 204, exactly the listed rows go", async () => {
  const gone = IDS.slice(0, 7);
  const res = await s.rest(path(`${pkFilter}=${inList(gone)}`), { method: "DELETE", headers: { Prefer: "return=minimal" } });
  assert.equal(res.status, 204);
  assert.deepEqual((await stored()).map((r) => r[PK]).sort(), IDS.slice(7).sort());
});

test("PostgREST's unquoted in-list items and eq values are read literally", async () => {
  await s.sql(`insert into public."odd.table (1)" ("key,part") values ('plain'), ('"q"'), ('a"b')`);
  const get = async (q) => (await (await s.rest(path(q))).json()).map((r) => r[PK]).sort();
  assert.deepEqual(await get(`${pkFilter}=in.(plain,nothing)`), ["plain"]);
  // A quoted item needs a `,` or `)` right after its closing quote; otherwise the quotes are part of the value.
  assert.deepEqual(await get(`${pkFilter}=${encodeURIComponent('in.("q"x,plain)')}`), ["plain"]);
  assert.deepEqual(await get(`${pkFilter}=${encodeURIComponent('in.(a"b)')}`), ['a"b']);
  // eq takes everything after the operator, quotes and all.
  assert.deepEqual(await get(`${pkFilter}=${encodeURIComponent('eq."q"')}`), ['"q"']);
  assert.deepEqual(await get(`${pkFilter}=eq.plain`), ["plain"]);
  assert.deepEqual(await get(`${pkFilter}=${encodeURIComponent("eq.it's")}`), ["it's"]);
  assert.deepEqual(await get(`${pkFilter}=in.()`), []);
});

test("the demo contract on sessions: upsert, patch, delete as a signed-in user", async () => {
  const token = await s.token(USER_A);
  const plan = await s.rest("training_plans?on_conflict=id&columns=id,name", {
    method: "POST",
    token,
    headers: { Prefer: "resolution=merge-duplicates,return=minimal" },
    body: JSON.stringify([{ id: "p1", name: "Plan" }]),
  });
  assert.equal(plan.status, 201);
  const up = await s.rest("sessions?on_conflict=id&columns=id,plan_id,name,last_changed", {
    method: "POST",
    token,
    headers: { Prefer: "resolution=merge-duplicates,return=minimal" },
    body: JSON.stringify([
      { id: "s1", plan_id: "p1", name: "Leg day", last_changed: "2026-11-24T10:00:00.000Z" },
      { id: "s 2", plan_id: "p1", name: "Push", last_changed: "2026-11-24T10:00:00.000Z" },
    ]),
  });
  assert.equal(up.status, 201);
  const patch = await s.rest(`sessions?id=${inList(["s1"])}`, {
    method: "PATCH",
    token,
    headers: { Prefer: "return=minimal" },
    body: JSON.stringify({ name: "Leg day 2", position: 3 }),
  });
  assert.equal(patch.status, 204);
  const del = await s.rest(`sessions?id=${inList(["s 2", "missing"])}`, { method: "DELETE", token, headers: { Prefer: "return=minimal" } });
  assert.equal(del.status, 204);
  const rows = await s.sql("select id, name, position, user_id, last_changed from sessions");
  assert.equal(rows.length, 1);
  assert.equal(rows[0].name, "Leg day 2");
  assert.equal(rows[0].position, 3);
  assert.equal(rows[0].user_id, USER_A);
  assert.equal(new Date(rows[0].last_changed).toISOString(), "2026-11-24T10:00:00.000Z");
});
