// Starts a dev server for one test file: PGlite in memory, or, when DATABASE_URL is set, a fresh database of
// that PostgreSQL (so test files can run in parallel without seeing each other's rows).
import { randomUUID } from "node:crypto";
import pg from "pg";
import { createClient } from "@supabase/supabase-js";
import { PostgrestClient } from "@supabase/postgrest-js";
import { startServer } from "../../www/server/server.js";
import { signToken } from "../../www/server/auth.js";

export const USER_A = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
export const USER_B = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb";

/** @param {Parameters<typeof startServer>[0]} [opts] more options for startServer */
export async function start(opts = {}) {
  const base = process.env.DATABASE_URL;
  if (!base) {
    const server = await startServer({ ...opts, port: 0 });
    return withHelpers(server, () => server.close());
  }
  const name = `rs_test_${process.pid}_${randomUUID().slice(0, 8)}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`create database ${name}`);
  const url = new URL(base);
  url.pathname = `/${name}`;
  const server = await startServer({ ...opts, port: 0, databaseUrl: url.toString() });
  return withHelpers({ ...server, databaseUrl: url.toString() }, async () => {
    await server.close();
    await admin.query(`drop database ${name} with (force)`);
    await admin.end();
  });
}

function withHelpers(server, close) {
  return {
    ...server,
    close,
    /** A superuser query, for fixtures and for checking what really is in the database. */
    sql: async (text, params) => (await server.db.query(text, params)).rows,
    token: (sub, opts = {}) => signToken({ sub, secret: server.jwtSecret, ...opts }),
    /** postgrest-js as an app would use it: the anon key, plus a user's token when given. */
    postgrest: (token) =>
      new PostgrestClient(server.restUrl, {
        headers: { apikey: server.anonKey, Authorization: `Bearer ${token ?? server.anonKey}` },
      }),
    /** supabase-js with a signed-in user's access token. */
    supabase: (token) =>
      createClient(server.url, server.anonKey, {
        auth: { persistSession: false, autoRefreshToken: false },
        // REST only: realtime.test.js opens its sockets with the ws package (Node 20 has no WebSocket).
        realtime: { transport: class {} },
        ...(token ? { accessToken: async () => token } : {}),
      }),
    /** fetch against /rest/v1 with the anon key (and a token): the raw wire contract. */
    rest: (path, { token, headers = {}, ...init } = {}) =>
      fetch(`${server.restUrl}/${path}`, {
        ...init,
        headers: {
          apikey: server.anonKey,
          ...(token ? { Authorization: `Bearer ${token}` } : {}),
          "Content-Type": "application/json",
          ...headers,
        },
      }),
    admin: async (path, method = "GET", body) => {
      const res = await fetch(`${server.url}/__admin/${path}`, {
        method,
        headers: { "Content-Type": "application/json", apikey: server.serviceKey },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, body: await res.json() };
    },
  };
}

/** How record-sync's core writes an `in.(...)` item: always quoted, `"` and `\` backslash-escaped. */
export const quoteItem = (v) => `"${String(v).replace(/[\\"]/g, (c) => `\\${c}`)}"`;
/** How it writes a column name in columns=/on_conflict=/filter keys: quoted when PostgREST would misread it. */
export const quoteName = (n) => (/[,.:()"\\\s]/.test(n) ? quoteItem(n) : n);
export const inList = (ids) => encodeURIComponent(`in.(${ids.map(quoteItem).join(",")})`);
