// The realtime endpoint, /realtime/v1/websocket?apikey=...&vsn=1.0.0|2.0.0: the part of Supabase Realtime that
// realtime-js needs for postgres_changes, over the `ws` package (Node 20 has no WebSocket server). Upgrades get
// the HTTP routes' Host check, plus an Origin check (a browser lets any page open a WebSocket to loopback).
import { WebSocketServer } from "ws";
import { createChangeSource, createTables } from "./changes.js";
import { Connection } from "./connection.js";
import { VERSIONS } from "./protocol.js";
import { createTokenCheck } from "./tokens.js";

export const REALTIME_PATH = "/realtime/v1/websocket";
const MAX_MESSAGE_BYTES = 1024 * 1024;

/** Answers an upgrade request with an HTTP error and closes it. */
function refuse(socket, status, message) {
  const body = JSON.stringify({ message });
  socket.end(
    `HTTP/1.1 ${status} ${status === 400 ? "Bad Request" : status === 401 ? "Unauthorized" : status === 403 ? "Forbidden" : "Not Found"}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/**
 * @param {import("node:http").Server} server
 * @param {{db: import("../db/types.js").Db, anonKey: string, serviceKey: string, jwtSecret: string,
 *   allowedHost: (host: string|undefined) => boolean, allowedOrigin: (origin: string) => boolean, idleMs?: number}} cfg
 *   idleMs: a socket that sends nothing for this long is closed (Phoenix's default: 60 s)
 */
export async function attachRealtime(server, cfg) {
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });
  /** @type {Set<Connection>} */
  const connections = new Set();
  const tables = createTables({ db: cfg.db });
  const checkToken = createTokenCheck(cfg);
  const idleMs = cfg.idleMs ?? 60_000;

  function* channels() {
    for (const c of connections) yield* c.channels.values();
  }
  const dropAll = () => {
    const n = connections.size;
    for (const c of [...connections]) c.drop();
    return n;
  };
  const source = createChangeSource({
    db: cfg.db,
    tables,
    channels,
    // Changes were missed: every client must reconnect, and catch up by the feed.
    onLost: () => {
      dropAll();
      source.start().catch((e) => console.error(`[realtime] LISTEN again failed: ${e.message}`));
    },
  });
  await source.start();

  function onUpgrade(req, socket, head) {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname.replace(/\/+$/, "") !== REALTIME_PATH) return refuse(socket, 404, "no Route matched with those values");
    if (!cfg.allowedHost(req.headers.host)) return refuse(socket, 403, `Host ${JSON.stringify(req.headers.host ?? "")} is not allowed`);
    const origin = req.headers.origin;
    if (origin !== undefined && !cfg.allowedOrigin(origin)) return refuse(socket, 403, `Origin ${origin} is not allowed`);
    const apikey = url.searchParams.get("apikey") ?? req.headers.apikey;
    const apikeyRole = apikey === cfg.anonKey ? "anon" : apikey === cfg.serviceKey ? "service_role" : null;
    if (!apikeyRole) return refuse(socket, 401, apikey ? "Invalid API key" : "No API key found in request");
    const vsn = url.searchParams.get("vsn") ?? "1.0.0";
    if (!VERSIONS.has(vsn)) return refuse(socket, 400, `Unsupported vsn ${vsn}: 1.0.0 or 2.0.0`);
    wss.handleUpgrade(req, socket, head, (ws) => {
      const conn = new Connection(ws, { vsn, apikeyRole, checkToken, tables, idleMs });
      connections.add(conn);
      ws.on("close", () => connections.delete(conn));
    });
  }
  server.on("upgrade", onUpgrade);

  return {
    /** Open sockets. */
    get connections() {
      return connections.size;
    },
    /** Drops every socket without a close handshake, as a network failure would; returns how many. */
    dropAll,
    /** Resolves once every change notified so far has been handed to the sockets. */
    idle: () => source.idle(),
    async close() {
      server.off("upgrade", onUpgrade);
      dropAll();
      await source.stop();
      wss.close();
    },
  };
}
