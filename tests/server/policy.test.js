// The dev server's own safety: which origins get CORS, which Host headers are answered (DNS rebinding), who may
// use the admin routes, GET on a volatile function, binding beyond loopback, and tokens without exp.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { SignJWT } from "jose";
import { start, USER_A } from "./helpers.js";
import { startServer } from "../../www/server/server.js";

let s;
before(async () => {
  s = await start();
});
after(() => s.close());

/** A raw request, for headers fetch will not let a caller set (Host). */
function raw(url, { method = "GET", headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

test("CORS: every loopback origin by default; any other origin gets no CORS headers at all", async () => {
  for (const origin of ["http://127.0.0.1:5173", "http://localhost:8080", "http://[::1]:3000"]) {
    const res = await s.rest("sessions", { headers: { Origin: origin } });
    assert.equal(res.headers.get("access-control-allow-origin"), origin, origin);
  }
  for (const origin of ["http://evil.example", "http://127.0.0.1.evil.example:80", "https://localhost:443", "null", "http://localhost:80x"]) {
    const pre = await fetch(`${s.restUrl}/sessions`, {
      method: "OPTIONS",
      headers: { Origin: origin, "Access-Control-Request-Method": "PATCH", "Access-Control-Request-Headers": "apikey" },
    });
    assert.equal(pre.headers.get("access-control-allow-origin"), null, origin);
    assert.equal(pre.headers.get("access-control-allow-methods"), null, origin);
    const get = await s.rest("sessions", { headers: { Origin: origin } });
    assert.equal(get.headers.get("access-control-allow-origin"), null, origin);
  }
});

test("CORS: allowOrigins (--allow-origin) replaces the default; :* allows any port", async () => {
  const other = await startServer({ port: 0, db: s.db, allowOrigins: ["http://app.test:5173", "http://dev.test:*"] });
  try {
    const origin = (o) => fetch(`${other.restUrl}/training_plans`, { headers: { apikey: other.anonKey, Origin: o } });
    assert.equal((await origin("http://app.test:5173")).headers.get("access-control-allow-origin"), "http://app.test:5173");
    assert.equal((await origin("http://dev.test:9")).headers.get("access-control-allow-origin"), "http://dev.test:9");
    assert.equal((await origin("http://app.test:5174")).headers.get("access-control-allow-origin"), null);
    assert.equal((await origin("http://127.0.0.1:5173")).headers.get("access-control-allow-origin"), null);
  } finally {
    await other.close();
  }
});

test("Host: loopback names on any port are answered; another name is 403 (DNS rebinding); allowHosts adds names", async () => {
  const url = `${s.restUrl}/training_plans`;
  for (const host of [`127.0.0.1:${s.port}`, `localhost:${s.port}`, `[::1]:${s.port}`, "localhost"]) {
    assert.equal((await raw(url, { headers: { Host: host, apikey: s.anonKey } })).status, 200, host);
  }
  for (const host of [`evil.example:${s.port}`, "127.0.0.1.evil.example", "localhost:99999", "localhost:80:80"]) {
    const res = await raw(url, { headers: { Host: host, apikey: s.anonKey } });
    assert.equal(res.status, 403, host);
    assert.match(JSON.parse(res.body).message, /not allowed/);
  }
  // Even preflights and admin routes are refused for a foreign Host.
  assert.equal((await raw(`${s.url}/__admin/stats`, { headers: { Host: "evil.example", apikey: s.serviceKey } })).status, 403);
  assert.equal((await raw(url, { method: "OPTIONS", headers: { Host: "evil.example", Origin: "http://127.0.0.1:1" } })).status, 403);

  const other = await startServer({ port: 0, db: s.db, allowHosts: ["sync.test"] });
  try {
    const res = await raw(`${other.restUrl}/training_plans`, { headers: { Host: `sync.test:${other.port}`, apikey: other.anonKey } });
    assert.equal(res.status, 200);
  } finally {
    await other.close();
  }
});

test("admin routes need the service key (apikey or bearer); the anon key or a user's token is 401", async () => {
  const stats = (headers) => fetch(`${s.url}/__admin/stats`, { headers });
  assert.equal((await stats({})).status, 401);
  assert.equal((await stats({ apikey: s.anonKey })).status, 401);
  assert.equal((await stats({ apikey: s.anonKey, Authorization: `Bearer ${await s.token(USER_A)}` })).status, 401);
  const res = await fetch(`${s.url}/__admin/faults`, { method: "POST", headers: { apikey: s.anonKey }, body: JSON.stringify({ failNext: { count: 1 } }) });
  assert.equal(res.status, 401);
  assert.match((await res.json()).message, /service key/);
  assert.equal((await s.rest("training_plans")).status, 200, "the refused fault plan was not installed");
  const reset = await fetch(`${s.url}/__admin/reset`, { method: "POST", headers: { apikey: "wrong" } });
  assert.equal(reset.status, 401);
  assert.equal((await stats({ apikey: s.serviceKey })).status, 200);
  assert.equal((await stats({ Authorization: `Bearer ${s.serviceKey}` })).status, 200);
});

test("admin: false (--no-admin) switches the admin routes off", async () => {
  const other = await startServer({ port: 0, db: s.db, admin: false });
  try {
    for (const path of ["stats", "faults", "reset"]) {
      const res = await fetch(`${other.url}/__admin/${path}`, { method: path === "stats" ? "GET" : "POST", headers: { apikey: other.serviceKey }, body: path === "stats" ? undefined : "{}" });
      assert.equal(res.status, 404, path);
    }
  } finally {
    await other.close();
  }
});

test("GET /rpc/record_sync_apply is refused as PostgREST refuses it: a read-only transaction, 405 25006", async () => {
  const token = await s.token(USER_A);
  const changes = encodeURIComponent(JSON.stringify([{ client_id: "g", seq: 1, table: "training_plans", id: "g1", op: "upsert", data: { name: "via GET" } }]));
  const res = await s.rest(`rpc/record_sync_apply?changes=${changes}`, { token });
  assert.equal(res.status, 405);
  assert.equal((await res.json()).code, "25006");
  const empty = await s.rest(`rpc/record_sync_apply?changes=${encodeURIComponent("[]")}`, { token });
  assert.equal(empty.status, 405, "even an empty batch: the call itself writes (the log's pruning)");
  assert.equal((await s.sql("select count(*)::int as n from training_plans"))[0].n, 0);
  // POST still works.
  const post = await s.rest("rpc/record_sync_apply", { method: "POST", token, body: JSON.stringify({ changes: [] }) });
  assert.equal(post.status, 200);
});

test("binding beyond loopback with any default key or secret is refused; with keys of one's own it starts", async () => {
  await assert.rejects(startServer({ port: 0, db: s.db, host: "0.0.0.0" }), /refusing to listen on 0\.0\.0\.0.*default/);
  await assert.rejects(startServer({ port: 0, db: s.db, host: "0.0.0.0", anonKey: "a", serviceKey: "s" }), /jwtSecret/);
  const own = await startServer({ port: 0, db: s.db, host: "0.0.0.0", anonKey: "a-key", serviceKey: "s-key", jwtSecret: "a-secret-of-my-own" });
  try {
    const res = await fetch(`http://127.0.0.1:${own.port}/rest/v1/training_plans`, { headers: { apikey: "a-key" } });
    assert.equal(res.status, 200);
  } finally {
    await own.close();
  }
});

test("a JWT without exp is refused (401 PGRST301), even well signed", async () => {
  const forever = await new SignJWT({ sub: USER_A, role: "authenticated" })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .sign(new TextEncoder().encode(s.jwtSecret));
  const res = await s.rest("training_plans", { token: forever });
  assert.equal(res.status, 401);
  const body = await res.json();
  assert.equal(body.code, "PGRST301");
  assert.match(body.message, /exp/);
});
