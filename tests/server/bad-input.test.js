// Malformed and hostile requests get a PostgREST-style error and change nothing.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { start, USER_A } from "./helpers.js";

let s, token;
before(async () => {
  s = await start();
  token = await s.token(USER_A);
  await s.rest("training_plans", { method: "POST", token, body: JSON.stringify({ id: "p1", name: "Keep" }) });
});
after(() => s.close());

const snapshot = async () =>
  JSON.stringify(await s.sql("select id, name, weeks from training_plans order by id")) +
  JSON.stringify(await s.sql("select count(*)::int as n from record_sync_applied")) +
  JSON.stringify(await s.sql("select count(*)::int as n from pg_class where relname = 'training_plans'"));

async function expectError(path, init, status, code) {
  const res = await s.rest(path, { token, ...init });
  assert.equal(res.status, status, `${init?.method ?? "GET"} ${path}`);
  const body = await res.json();
  assert.deepEqual(Object.keys(body).sort(), ["code", "details", "hint", "message"]);
  if (code) assert.equal(body.code, code, `${path}: ${body.message}`);
  return body;
}

test("malformed bodies: PGRST102, nothing written", async () => {
  const before = await snapshot();
  await expectError("training_plans", { method: "POST", body: "{not json" }, 400, "PGRST102");
  await expectError("training_plans", { method: "POST", body: "" }, 400, "PGRST102");
  await expectError("training_plans", { method: "POST", body: "42" }, 400, "PGRST102");
  await expectError("training_plans", { method: "POST", body: JSON.stringify([{ id: "a", name: "A" }, { id: "b" }]) }, 400, "PGRST102");
  await expectError("training_plans?id=eq.p1", { method: "PATCH", body: "[1]" }, 400, "PGRST102");
  await expectError("rpc/record_sync_apply", { method: "POST", body: "[]" }, 400, "PGRST102");
  await expectError("training_plans", { method: "POST", body: "id=1", headers: { "Content-Type": "text/plain" } }, 415, "PGRST107");
  assert.equal(await snapshot(), before);
});

test("unknown tables, columns and functions: 404 / 400 as PostgREST answers them", async () => {
  const before = await snapshot();
  await expectError("no_such_table", {}, 404, "PGRST205");
  await expectError("training_plans?select=id,nope", {}, 400, "42703");
  await expectError("training_plans?nope=eq.1", {}, 400, "42703");
  await expectError("training_plans?order=nope.desc", {}, 400, "42703");
  await expectError("training_plans", { method: "POST", body: JSON.stringify({ id: "x", nope: 1 }) }, 400, "PGRST204");
  await expectError("training_plans?id=eq.p1", { method: "PATCH", body: JSON.stringify({ nope: 1 }) }, 400, "PGRST204");
  await expectError("training_plans?on_conflict=nope", {
    method: "POST",
    headers: { Prefer: "resolution=merge-duplicates" },
    body: JSON.stringify({ id: "x", name: "x" }),
  }, 400, "42703");
  await expectError("rpc/pg_sleep", { method: "POST", body: JSON.stringify({ seconds: 1 }) }, 404, "PGRST202");
  await expectError("training_plans", { method: "PUT", body: "{}" }, 405, "PGRST117");
  assert.equal(await snapshot(), before);
});

test("parse errors: PGRST100", async () => {
  // `id=zz.1` is not a filter to PostgREST (zz is no operator) and is ignored; after `not.` it must be one.
  assert.equal((await s.rest("training_plans?id=zz.1", { token })).status, 200);
  await expectError("training_plans?id=not.zz.1", {}, 400, "PGRST100");
  await expectError("training_plans?id=in.(a", {}, 400, "PGRST100");
  await expectError("training_plans?id=is.maybe", {}, 400, "PGRST100");
  await expectError("training_plans?order=id.sideways", {}, 400, "PGRST100");
  await expectError("training_plans?limit=ten", {}, 400, "PGRST100");
  await expectError("training_plans?select=id,sessions(*)", {}, 400, "PGRST100");
  await expectError("training_plans?select=%22unterminated", {}, 400, "PGRST100");
});

test("injection attempts in names, filters and values are data, never SQL", async () => {
  const before = await snapshot();
  const evil = [
    `training_plans?id=eq.${encodeURIComponent("p1'; drop table training_plans; --")}`,
    `training_plans?id=in.(${encodeURIComponent(`"p1\\"); drop table training_plans; --"`)})`,
    `training_plans?${encodeURIComponent('"id"" = id or 1=1 --"')}=eq.x`,
    `training_plans?select=${encodeURIComponent('"*"" from pg_authid --"')}`,
    `training_plans?order=${encodeURIComponent('"id"" desc; drop table x --".asc')}`,
    `${encodeURIComponent('training_plans"; drop table training_plans; --')}?select=*`,
    `training_plans?id=like.${encodeURIComponent("%' or '1'='1")}`,
    `training_plans?weeks=eq.${encodeURIComponent("1 or 1=1")}`,
  ];
  for (const path of evil) {
    const res = await s.rest(path, { token });
    const text = await res.text();
    if (res.status === 200) assert.equal(text, "[]", path);
    else assert.ok(res.status >= 400 && res.status < 500, `${path}: ${res.status} ${text}`);
  }
  await expectError("training_plans", {
    method: "POST",
    body: JSON.stringify({ id: "x", 'name" ) values (1); drop table training_plans; --': "v" }),
  }, 400, "PGRST204");
  await expectError(`training_plans?columns=${encodeURIComponent('id,"name"") values (1);--"')}`, {
    method: "POST",
    body: JSON.stringify([{ id: "x" }]),
  }, 400, "PGRST100");
  await expectError(`training_plans?columns=${encodeURIComponent('id,"name\\") values (1);--"')}`, {
    method: "POST",
    body: JSON.stringify([{ id: "x" }]),
  }, 400, "PGRST204");
  const rpc = await s.rest("rpc/record_sync_apply", {
    method: "POST",
    token,
    body: JSON.stringify({
      changes: [
        { client_id: "c", seq: 1, table: "training_plans", id: "p1", op: "update", data: { "name\" = 'x'; --": "v" } },
        { client_id: "c", seq: 2, table: "training_plans", id: "p1'; delete from training_plans; --", op: "delete" },
      ],
    }),
  });
  const results = await rpc.json();
  assert.equal(results[0].status, "error");
  assert.equal(results[0].code, "42703");
  assert.equal(results[1].status, "applied", "an odd id is just an id that matches nothing");
  const stored = await s.sql("select id, name, weeks from training_plans order by id");
  assert.deepEqual(stored.map((r) => r.name), ["Keep"]);
  await s.sql("delete from record_sync_applied");
  assert.equal(await snapshot(), before);
});

test("oversized bodies are refused with 413 before they are read", async () => {
  const before = await snapshot();
  const huge = JSON.stringify([{ id: "big", name: "x".repeat(1024 * 1024 + 10) }]);
  const res = await s.rest("training_plans", { method: "POST", token, body: huge });
  assert.equal(res.status, 413);
  assert.match((await res.json()).message, /too large/);
  assert.equal(await snapshot(), before);
  assert.equal((await s.rest("training_plans?select=id", { token })).status, 200, "the server is still fine");
});

test("admin routes take no arbitrary SQL", async () => {
  for (const path of ["sql", "query", "exec"]) {
    const res = await fetch(`${s.url}/__admin/${path}`, {
      method: "POST",
      headers: { apikey: s.serviceKey },
      body: JSON.stringify({ sql: "drop table training_plans" }),
    });
    assert.equal(res.status, 404);
  }
  assert.equal((await s.sql("select count(*)::int as n from pg_class where relname = 'training_plans'"))[0].n, 1);
});
