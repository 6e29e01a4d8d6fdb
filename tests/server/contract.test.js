// The rest-mode wire contract (CONTRACT.md §2): writes that say what they touched (`select=` with
// return=representation), inserts that skip existing rows, updates and deletes conditional on last_changed through
// `or=(...)` trees, values quoted and percent-encoded as record-sync's core writes them; and the faults that stand
// for answers PostgREST would never give (an HTML 2xx, a redirect, a body over the limit).
import { after, before, beforeEach, test } from "node:test";
import assert from "node:assert/strict";
import { quoteItem, start, USER_A, USER_B } from "./helpers.js";

let s, tokenA, tokenB;
before(async () => {
  s = await start();
  tokenA = await s.token(USER_A);
  tokenB = await s.token(USER_B);
});
beforeEach(() => s.admin("reset", "POST"));
after(() => s.close());

const T0 = "2026-11-24T10:00:00.000Z";
const T1 = "2026-11-24T11:00:00.000Z";
const T2 = "2026-11-24T12:00:00.000Z";
/** A filter value as the core encodes it: double-quoted, then percent-encoded whole. */
const v = (x) => encodeURIComponent(quoteItem(x));
const olderOrNull = (ts) => `or=(last_changed.is.null,last_changed.lte.${v(ts)})`;

async function seed(rows, token = tokenA) {
  const res = await s.rest("training_plans", { method: "POST", token, body: JSON.stringify(rows) });
  assert.equal(res.status, 201, await res.text());
}
const stored = async () =>
  (await s.sql("select id, name, last_changed from training_plans order by id")).map((r) => ({
    id: r.id,
    name: r.name,
    last_changed: new Date(r.last_changed).toISOString(),
  }));

test("POST ignore-duplicates with select=pk returns exactly the rows it inserted, and leaves the others", async () => {
  await seed([{ id: "old", name: "kept", last_changed: T2 }]);
  const res = await s.rest("training_plans?on_conflict=id&columns=id,name,last_changed&select=id", {
    method: "POST",
    token: tokenA,
    headers: { Prefer: "resolution=ignore-duplicates,return=representation" },
    body: JSON.stringify([
      { id: "old", name: "overwrite?", last_changed: T0 },
      { id: "new", name: "fresh", last_changed: T0 },
    ]),
  });
  assert.equal(res.status, 201);
  assert.deepEqual(await res.json(), [{ id: "new" }]);
  assert.deepEqual(await stored(), [
    { id: "new", name: "fresh", last_changed: T0 },
    { id: "old", name: "kept", last_changed: T2 },
  ]);

  // The official client asks the same way.
  const { data, error } = await s
    .postgrest(tokenA)
    .from("training_plans")
    .upsert([{ id: "new", name: "x" }, { id: "n2", name: "y" }], { onConflict: "id", ignoreDuplicates: true })
    .select("id");
  assert.equal(error, null);
  assert.deepEqual(data, [{ id: "n2" }]);
});

test("conditional PATCH: applies over an older or NULL-less row, returns [] over a newer one", async () => {
  await seed([{ id: "p1", name: "a", last_changed: T1 }]);
  const patch = (ts, name) =>
    s.rest(`training_plans?id=in.(${v("p1")})&${olderOrNull(ts)}&select=id`, {
      method: "PATCH",
      token: tokenA,
      headers: { Prefer: "return=representation" },
      body: JSON.stringify({ name, last_changed: ts }),
    });
  const stale = await patch(T0, "stale");
  assert.equal(stale.status, 200);
  assert.deepEqual(await stale.json(), []);
  assert.equal((await stored())[0].name, "a", "an older patch never lands");

  const equal = await patch(T1, "same instant");
  assert.deepEqual(await equal.json(), [{ id: "p1" }], "equal timestamps apply");
  const newer = await patch(T2, "newer");
  assert.deepEqual(await newer.json(), [{ id: "p1" }]);
  assert.deepEqual(await stored(), [{ id: "p1", name: "newer", last_changed: T2 }]);

  // Unquoted values and an eq filter, through postgrest-js.
  const { data, error } = await s
    .postgrest(tokenA)
    .from("training_plans")
    .update({ name: "js" })
    .eq("id", "p1")
    .or(`last_changed.is.null,last_changed.lte.${T1}`)
    .select("id");
  assert.equal(error, null);
  assert.deepEqual(data, [], "the stored row (T2) is newer than T1");
});

test("a PATCH of an absent row, or of another user's row hidden by row-level security, returns []", async () => {
  await seed([{ id: "theirs", name: "B's", last_changed: T0 }], tokenB);
  for (const id of ["absent", "theirs"]) {
    const res = await s.rest(`training_plans?id=in.(${v(id)})&${olderOrNull(T2)}&select=id`, {
      method: "PATCH",
      token: tokenA,
      headers: { Prefer: "return=representation" },
      body: JSON.stringify({ name: "A was here" }),
    });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), [], id);
  }
  assert.equal((await s.sql("select name from training_plans where id = 'theirs'"))[0].name, "B's");
});

test("or trees: nested and(), eq/lt/gt/gte, not., and quoted values holding grammar characters", async () => {
  await seed([
    { id: "a,b", name: "n(1)", last_changed: T0 },
    { id: "x.y", name: 'say "hi"', last_changed: T1 },
    { id: "z", name: "plain", last_changed: T2 },
  ]);
  const ids = async (query) => {
    const res = await s.rest(`training_plans?select=id&order=id&${query}`, { token: tokenA });
    assert.equal(res.status, 200, await res.clone().text());
    return (await res.json()).map((r) => r.id);
  };
  assert.deepEqual(await ids(`or=(id.eq.${v("a,b")},name.eq.${v('say "hi"')})`), ["a,b", "x.y"]);
  assert.deepEqual(await ids(`or=(last_changed.gt.${v(T1)},and(last_changed.gte.${v(T0)},last_changed.lt.${v(T1)}))`), ["a,b", "z"]);
  assert.deepEqual(await ids(`and=(last_changed.gte.${v(T0)},or(name.eq.${v("n(1)")},id.eq.z))`), ["a,b", "z"]);
  assert.deepEqual(await ids(`not.or=(id.eq.z,id.eq.${v("x.y")})`), ["a,b"]);
  assert.deepEqual(await ids(`or=(id.in.(${v("a,b")},z),name.is.null)`), ["a,b", "z"]);
  assert.deepEqual(await ids(`or=(last_changed.is.null,last_changed.lte.${v(T0)})`), ["a,b"]);
  // An or tree combines with the other filters by and.
  assert.deepEqual(await ids(`id=eq.z&or=(last_changed.lte.${v(T0)},last_changed.gte.${v(T2)})`), ["z"]);

  const bad = await s.rest(`training_plans?or=(id.eq.a`, { token: tokenA });
  assert.equal(bad.status, 400);
  assert.equal((await bad.json()).code, "PGRST100");
});

test("conditional DELETE with select=pk returns what it deleted; newer rows stay", async () => {
  await seed([
    { id: "d1", name: "old", last_changed: T0 },
    { id: "d2", name: "newer", last_changed: T2 },
  ]);
  const res = await s.rest(`training_plans?id=in.(${v("d1")},${v("d2")},${v("absent")})&${olderOrNull(T1)}&select=id`, {
    method: "DELETE",
    token: tokenA,
    headers: { Prefer: "return=representation" },
  });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), [{ id: "d1" }]);
  assert.deepEqual((await stored()).map((r) => r.id), ["d2"]);
});

test("body limit: 413 with a PostgREST-style JSON error; the fault plan lowers it, clearing restores it", async () => {
  const big = JSON.stringify({ id: "big", name: "x".repeat(5000) });
  const post = () => s.rest("training_plans", { method: "POST", token: tokenA, body: big });
  assert.equal((await post()).status, 201);
  await s.sql("delete from training_plans");

  assert.equal((await s.admin("faults", "POST", { maxBodyBytes: 2048 })).status, 200);
  const res = await post();
  assert.equal(res.status, 413);
  const body = await res.json();
  assert.deepEqual(Object.keys(body).sort(), ["code", "details", "hint", "message"]);
  assert.match(body.message, /2048 bytes/);
  assert.equal((await s.sql("select count(*)::int as n from training_plans"))[0].n, 0, "nothing written");
  const small = await s.rest("training_plans", { method: "POST", token: tokenA, body: JSON.stringify({ id: "s", name: "s" }) });
  assert.equal(small.status, 201, "bodies under the limit still go through");

  await s.admin("faults", "DELETE");
  assert.equal((await post()).status, 201);
});

test("--max-body-bytes (startServer bodyLimit) sets the server's limit", async () => {
  const { startServer } = await import("../../www/server/server.js");
  const small = await startServer({ port: 0, db: s.db, bodyLimit: 100 });
  try {
    const res = await fetch(`${small.restUrl}/rpc/record_sync_apply`, {
      method: "POST",
      headers: { apikey: small.anonKey, "Content-Type": "application/json" },
      body: JSON.stringify({ changes: [], pad: "x".repeat(200) }),
    });
    assert.equal(res.status, 413);
    assert.match((await res.json()).message, /100 bytes/);
  } finally {
    await small.close();
  }
});

test("html fault: a 200 with an HTML page, nothing written; redirect fault: a 302, nothing written", async () => {
  await s.admin("faults", "POST", { htmlNext: 1, redirectNext: 1 });
  const write = (id) =>
    s.rest("training_plans?select=id", {
      method: "POST",
      token: tokenA,
      headers: { Prefer: "return=representation" },
      body: JSON.stringify({ id, name: id }),
      redirect: "manual",
    });
  const html = await write("h");
  assert.equal(html.status, 200);
  assert.match(html.headers.get("content-type"), /text\/html/);
  assert.match(await html.text(), /<html|<!doctype/i);
  const redirect = await write("r");
  assert.equal(redirect.status, 302);
  assert.ok(redirect.headers.get("location"));
  // What record-sync's fetch does with a redirect: a network error, never a followed request.
  await s.admin("faults", "POST", { redirectNext: 1 });
  await assert.rejects(
    fetch(`${s.restUrl}/training_plans`, { headers: { apikey: s.anonKey }, redirect: "error" }),
    TypeError,
  );
  assert.equal((await s.sql("select count(*)::int as n from training_plans"))[0].n, 0);
  const after = await write("ok");
  assert.equal(after.status, 201, "the faults were used up");
  assert.deepEqual(await after.json(), [{ id: "ok" }]);
});
