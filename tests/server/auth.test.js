// Supabase-style auth (apikey, JWT), the dev-token CLI, and CORS for pages on another port.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { SignJWT } from "jose";
import { start, USER_A } from "./helpers.js";

const run = promisify(execFile);
let s;
before(async () => {
  s = await start();
});
after(() => s.close());

test("apikey: missing or wrong is 401; the anon and service keys are accepted", async () => {
  const none = await fetch(`${s.restUrl}/training_plans`);
  assert.equal(none.status, 401);
  assert.equal((await none.json()).message, "No API key found in request");
  const wrong = await s.rest("training_plans", { headers: { apikey: "nope" } });
  assert.equal(wrong.status, 401);
  assert.equal((await wrong.json()).message, "Invalid API key");
  assert.equal((await s.rest("training_plans")).status, 200);
  assert.equal((await s.rest("training_plans", { headers: { apikey: s.serviceKey } })).status, 200);
  assert.equal((await fetch(`${s.restUrl}/training_plans?apikey=${s.anonKey}`)).status, 200);
});

test("JWT: expired, badly signed, malformed and foreign-role tokens are 401 PGRST301", async () => {
  const expired = await s.token(USER_A, { expiresIn: -10 });
  const forged = await s.token(USER_A, { secret: "not-the-secret" });
  const superuser = await new SignJWT({ sub: USER_A, role: "postgres" })
    .setProtectedHeader({ alg: "HS256" })
    .setExpirationTime("1h")
    .sign(new TextEncoder().encode(s.jwtSecret));
  for (const [token, message] of [
    [expired, /JWT expired/],
    [forged, /JWSInvalidSignature/],
    ["abc.def", /Expected 3 parts/],
    [superuser, /not one of/],
  ]) {
    const res = await s.rest("training_plans", { token });
    assert.equal(res.status, 401);
    const body = await res.json();
    assert.equal(body.code, "PGRST301");
    assert.match(body.message, message);
    assert.match(res.headers.get("www-authenticate"), /invalid_token/);
  }
});

test("the JWT's claims reach SQL as PostgREST passes them (auth.uid(), auth.jwt())", async () => {
  await s.sql(`create or replace function public.whoami() returns jsonb language sql stable as $$
    select jsonb_build_object('uid', auth.uid(), 'role', current_user, 'claims_role', auth.jwt() ->> 'role') $$`);
  await s.sql("grant execute on function public.whoami() to anon, authenticated, service_role");
  const asUser = await (await s.rest("rpc/whoami", { method: "POST", token: await s.token(USER_A), body: "{}" })).json();
  assert.deepEqual(asUser, { uid: USER_A, role: "authenticated", claims_role: "authenticated" });
  const asAnon = await (await s.rest("rpc/whoami", { method: "POST", body: "{}" })).json();
  assert.deepEqual(asAnon, { uid: null, role: "anon", claims_role: "anon" });
  const asService = await (await s.rest("rpc/whoami", { method: "GET", headers: { apikey: s.serviceKey } })).json();
  assert.equal(asService.role, "service_role");
});

test("dev-token prints a token the server accepts, and refuses a non-uuid clearly", async () => {
  const { stdout } = await run(process.execPath, ["www/server/dev-token.js", USER_A], { cwd: new URL("../..", import.meta.url) });
  const token = stdout.trim();
  assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
  const res = await s.rest("rpc/record_sync_apply", { method: "POST", token, body: JSON.stringify({ changes: [] }) });
  assert.equal(res.status, 200);
  await assert.rejects(
    run(process.execPath, ["www/server/dev-token.js", "alice"], { cwd: new URL("../..", import.meta.url) }),
    (e) => e.code === 2 && /"alice" is not a UUID/.test(e.stderr),
  );
});

test("CORS: preflight and responses answer another localhost origin as Supabase does", async () => {
  const origin = "http://127.0.0.1:5173";
  const pre = await fetch(`${s.restUrl}/sessions`, {
    method: "OPTIONS",
    headers: { Origin: origin, "Access-Control-Request-Method": "PATCH", "Access-Control-Request-Headers": "apikey, prefer, content-type" },
  });
  assert.ok(pre.status === 200 || pre.status === 204);
  assert.equal(pre.headers.get("access-control-allow-origin"), origin);
  for (const m of ["GET", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"]) assert.match(pre.headers.get("access-control-allow-methods"), new RegExp(m));
  for (const h of ["authorization", "apikey", "content-type", "prefer", "x-client-info", "accept-profile", "content-profile", "range"]) {
    assert.match(pre.headers.get("access-control-allow-headers"), new RegExp(h));
  }
  const get = await s.rest("sessions", { headers: { Origin: origin } });
  assert.equal(get.headers.get("access-control-allow-origin"), origin);
  assert.match(get.headers.get("access-control-expose-headers"), /Content-Range/);
  const err = await fetch(`${s.restUrl}/sessions`, { headers: { Origin: origin } });
  assert.equal(err.status, 401);
  assert.equal(err.headers.get("access-control-allow-origin"), origin, "errors carry CORS headers too");
});
