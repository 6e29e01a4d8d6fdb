// The dev server: a PostgREST stand-in over PGlite or PostgreSQL, with Supabase-style auth and CORS, fault
// injection and counters. `startServer` is what the CLI, the tests and the library's browser tests start.
import http from "node:http";
import { createAdmin, isLoopback } from "./admin.js";
import { createAuth, DEFAULTS } from "./auth.js";
import { createCors, LOOPBACK_ORIGINS, originMatcher } from "./cors.js";
import { hostMatcher, isLoopbackName } from "./hosts.js";
import { loadCatalog, loadSchema } from "./db/schema.js";
import { ApiError } from "./errors.js";
import { Faults } from "./faults.js";
import { attachRealtime } from "./realtime/index.js";
import { createRest } from "./rest.js";
import { Stats } from "./stats.js";

export const DEFAULT_PORT = 54321;
export const DEFAULT_BODY_LIMIT = 1024 * 1024;

async function openDb({ dataDir, databaseUrl }) {
  if (databaseUrl) return (await import("./db/pg.js")).openPg({ databaseUrl });
  return (await import("./db/pglite.js")).openPglite({ dataDir });
}

/** Reads the body up to the limit; past it, a 413 and the rest is not read. */
function readBody(req, limit) {
  const declared = Number(req.headers["content-length"]);
  const tooLarge = () =>
    new ApiError(413, null, `Request body too large: the limit is ${limit} bytes`, { headers: { Connection: "close" } });
  if (declared > limit) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on("data", (c) => {
      size += c.length;
      if (size > limit) {
        req.pause();
        reject(tooLarge());
      } else chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

/** Whether a request carries the service key, as `apikey` or as the bearer token. */
function hasServiceKey(headers, serviceKey) {
  if (headers.apikey === serviceKey) return true;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(headers.authorization ?? "");
  return m?.[1] === serviceKey;
}

/** Which table (or `rpc/<fn>`) a /rest/v1 path names, for the per-table request counter. */
function statsKey(path) {
  const rest = path.replace(/^\/rest\/v1\/?/, "");
  try {
    return rest ? decodeURIComponent(rest) : null;
  } catch {
    return rest;
  }
}

/**
 * Starts the server; resolves once it listens.
 * @param {{port?: number, host?: string, dataDir?: string, databaseUrl?: string, anonKey?: string,
 *   serviceKey?: string, jwtSecret?: string, bodyLimit?: number, allowOrigins?: string[], allowHosts?: string[],
 *   admin?: boolean, db?: import("./db/types.js").Db, allowAnonymousRpc?: boolean, realtimeIdleMs?: number}} [opts]
 *   port 0 picks a free port; allowAnonymousRpc sets record_sync_settings.allow_anonymous at start (and on reset); allowOrigins defaults to
 *   every loopback origin; allowHosts adds Host names to the loopback ones; admin: false switches /__admin off;
 *   db: an already open database with the schema loaded (another server's), used instead of opening one;
 *   realtimeIdleMs: a realtime socket silent for this long is closed (default 60 s)
 */
export async function startServer(opts = {}) {
  const cfg = {
    port: opts.port ?? DEFAULT_PORT,
    host: opts.host ?? "127.0.0.1",
    anonKey: opts.anonKey ?? DEFAULTS.anonKey,
    serviceKey: opts.serviceKey ?? DEFAULTS.serviceKey,
    jwtSecret: opts.jwtSecret ?? DEFAULTS.jwtSecret,
    bodyLimit: opts.bodyLimit ?? DEFAULT_BODY_LIMIT,
    allowOrigins: opts.allowOrigins?.length ? opts.allowOrigins : LOOPBACK_ORIGINS,
    allowHosts: opts.allowHosts ?? [],
    admin: opts.admin ?? true,
  };
  // Anyone who can reach the server could sign tokens with the published default secret, or use the default
  // service key: only this machine may.
  if (!isLoopbackName(cfg.host)) {
    const defaults = ["anonKey", "serviceKey", "jwtSecret"].filter((k) => cfg[k] === DEFAULTS[k]);
    if (defaults.length) {
      throw new Error(
        `refusing to listen on ${cfg.host} (beyond loopback) with the default ${defaults.join(", ")}: set --anon-key, --service-key and --jwt-secret`,
      );
    }
  }
  const allowedHost = hostMatcher([cfg.host, ...cfg.allowHosts]);
  const allowedOrigin = originMatcher(cfg.allowOrigins);
  const { corsHeaders, preflightHeaders } = createCors(allowedOrigin);
  // A second server over the same open database (tests of start-up options) neither loads nor closes it.
  const ownsDb = !opts.db;
  const db = opts.db ?? (await openDb(opts));
  if (ownsDb) await loadSchema(db);
  let current = await loadCatalog(db);
  const catalog = {
    get: () => current,
    reload: async () => {
      current = await loadCatalog(db);
    },
  };
  const stats = new Stats();
  const faults = new Faults();
  const authenticate = createAuth(cfg);
  const rest = createRest({ db, catalog });
  /** @type {Awaited<ReturnType<typeof attachRealtime>>|null} set once the server listens */
  let realtime = null;
  const settings = { allowAnonymousRpc: opts.allowAnonymousRpc ?? false };
  const admin = createAdmin({ db, faults, stats, catalog, settings, realtime: () => realtime });
  if (ownsDb) await db.query("update public.record_sync_settings set allow_anonymous = $1", [settings.allowAnonymousRpc]);
  const hangs = new Set();

  async function handle(req, res) {
    const url = new URL(req.url ?? "/", "http://localhost");
    const path = url.pathname;
    const method = req.method ?? "GET";
    const send = (status, headers = {}, body = "") => {
      const buf = Buffer.from(method === "HEAD" ? "" : body);
      stats.bytesOut += buf.length;
      res.writeHead(status, { ...corsHeaders(req), ...headers, "Content-Length": buf.length });
      res.end(buf);
    };
    const sendError = (e) => {
      if (!(e instanceof ApiError)) {
        console.error(e);
        e = new ApiError(500, "XX000", e?.message ?? String(e));
      }
      send(e.status, { "Content-Type": "application/json; charset=utf-8", ...e.headers }, JSON.stringify(e.body));
    };

    // DNS rebinding: a page on evil.example whose name now points at 127.0.0.1 sends Host: evil.example.
    if (!allowedHost(req.headers.host)) {
      return sendError(new ApiError(403, null, `Host ${JSON.stringify(req.headers.host ?? "")} is not allowed`, {
        hint: "Use a loopback name (127.0.0.1, localhost, [::1]) or start the server with --allow-host",
      }));
    }

    if (method === "OPTIONS") return send(200, preflightHeaders(req));

    if (path === "/__admin" || path.startsWith("/__admin/")) {
      if (!cfg.admin) return sendError(new ApiError(404, null, "no Route matched with those values"));
      if (!isLoopback(req.socket.remoteAddress)) return sendError(new ApiError(403, null, "Admin routes are loopback-only"));
      if (!hasServiceKey(req.headers, cfg.serviceKey)) {
        return sendError(new ApiError(401, null, "Admin routes need the service key", {
          hint: "Send it as the apikey header (or Authorization: Bearer <service key>)",
        }));
      }
      try {
        const r = await admin({ method, path, body: await readBody(req, DEFAULT_BODY_LIMIT) });
        return send(r.status, { "Content-Type": "application/json; charset=utf-8" }, JSON.stringify(r.body));
      } catch (e) {
        return sendError(e);
      }
    }

    if (path !== "/rest/v1" && !path.startsWith("/rest/v1/")) {
      return sendError(new ApiError(404, null, "no Route matched with those values"));
    }
    stats.request(method, statsKey(path));

    const { latencyMs, fault } = faults.take(path);
    if (fault?.kind === "reset") return req.socket.destroy();
    if (fault?.kind === "hang") {
      const timer = setTimeout(() => {
        hangs.delete(timer);
        req.socket.destroy();
      }, fault.ms);
      hangs.add(timer);
      req.socket.once("close", () => {
        clearTimeout(timer);
        hangs.delete(timer);
      });
      return;
    }
    if (latencyMs) await new Promise((r) => setTimeout(r, latencyMs));
    // What a captive portal or a misrouted proxy answers: a 2xx that is not PostgREST's, nothing done.
    if (fault?.kind === "html") {
      return send(200, { "Content-Type": "text/html; charset=utf-8" }, "<!doctype html><title>Sign in</title><p>Sign in to the network</p>");
    }
    if (fault?.kind === "redirect") {
      return send(302, { Location: "/portal", "Content-Type": "text/html; charset=utf-8" }, "");
    }
    if (fault?.kind === "fail") {
      const body = fault.body ?? { code: null, details: null, hint: null, message: `Injected fault: HTTP ${fault.status}` };
      const headers = { "Content-Type": "application/json; charset=utf-8" };
      if (fault.retryAfter !== undefined) headers["Retry-After"] = String(fault.retryAfter);
      return send(fault.status, headers, JSON.stringify(body));
    }

    try {
      const body = await readBody(req, faults.bodyLimit(path, cfg.bodyLimit));
      stats.bytesIn += body.length;
      const auth = await authenticate(req.headers, url.searchParams);
      const { reply, rows, rpc } = await rest({ method, path, query: url.searchParams, headers: req.headers, body, auth });
      // Committed: count what was written, whether or not the answer reaches the client.
      for (const [table, n] of rows) stats.rows(table, n);
      if (rpc) stats.rpcCalls++;
      if (fault?.kind === "commitThenDrop") return req.socket.destroy();
      // A byte order mark before the answer, as some proxies and frameworks write one: Response.text() drops it.
      send(reply.status, reply.headers, (fault?.kind === "bom" ? "\uFEFF" : "") + (reply.body ?? ""));
    } catch (e) {
      sendError(e);
    }
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e) => {
      console.error(e);
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(cfg.port, cfg.host, resolve);
  });
  realtime = await attachRealtime(server, { ...cfg, db, allowedHost, allowedOrigin, idleMs: opts.realtimeIdleMs });
  const port = /** @type {import("node:net").AddressInfo} */ (server.address()).port;
  const url = `http://${cfg.host}:${port}`;

  return {
    url,
    restUrl: `${url}/rest/v1`,
    realtimeUrl: `${url.replace(/^http/, "ws")}/realtime/v1`,
    port,
    anonKey: cfg.anonKey,
    serviceKey: cfg.serviceKey,
    jwtSecret: cfg.jwtSecret,
    dbKind: db.kind,
    admin: cfg.admin,
    /** Direct database access for test fixtures: runs as the server's own (superuser) connection. */
    db,
    stats,
    faults,
    realtime,
    async close() {
      await realtime?.close();
      for (const t of hangs) clearTimeout(t);
      hangs.clear();
      server.closeAllConnections();
      await new Promise((r) => server.close(() => r()));
      if (ownsDb) await db.close();
    },
  };
}
