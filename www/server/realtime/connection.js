// One realtime WebSocket: the Phoenix channel protocol as Supabase Realtime serves it to realtime-js (heartbeat,
// phx_join with config.postgres_changes, access_token, phx_leave), postgres_changes only. A channel's JWT is
// checked on join and on every new access_token; an invalid one, or its expiry, closes the channel with a
// `system` error, as Supabase does.
import { decode, encode } from "./protocol.js";
import { parseFilter } from "./filters.js";

// setTimeout's limit is about 24.8 days; a token's expiry is re-armed in steps of at most an hour.
const MAX_TIMER_MS = 60 * 60 * 1000;
const EVENTS = new Set(["*", "INSERT", "UPDATE", "DELETE"]);

let bindingIds = 0;

/**
 * @typedef {{role: string, claims: Record<string, any>, token: string, exp: number|null}} ChannelAuth
 * @typedef {{id: number, event: string, schema: string, table?: string, filter?: string,
 *   conditions: import("./filters.js").Condition[], error?: string}} Binding
 */

export class Channel {
  /** @param {Connection} conn @param {string} topic @param {string|null} joinRef @param {ChannelAuth} auth */
  constructor(conn, topic, joinRef, auth) {
    this.conn = conn;
    this.topic = topic;
    this.joinRef = joinRef;
    this.auth = auth;
    /** @type {Binding[]} */
    this.bindings = [];
    this.open = true;
    this.expiry = null;
  }

  push(event, payload, ref = null) {
    if (this.open) this.conn.send({ joinRef: this.joinRef, ref, topic: this.topic, event, payload });
  }

  /** Arms the close at the token's expiry (a timer per channel, as Supabase's confirm_token). */
  armExpiry() {
    clearTimeout(this.expiry);
    if (this.auth.exp === null) return;
    const ms = this.auth.exp * 1000 - Date.now();
    this.expiry = setTimeout(() => {
      if (this.auth.exp * 1000 <= Date.now()) this.shutdown("InvalidJWTToken: Token has expired 0 seconds ago");
      else this.armExpiry();
    }, Math.max(0, Math.min(ms, MAX_TIMER_MS)));
  }

  /** Ends the channel from the server's side: a system error, then phx_close. */
  shutdown(message) {
    this.push("system", { extension: "system", status: "error", message, channel: this.topic.replace(/^realtime:/, "") });
    this.push("phx_close", {}, this.joinRef);
    this.dispose();
  }

  dispose() {
    this.open = false;
    clearTimeout(this.expiry);
    if (this.conn.channels.get(this.topic) === this) this.conn.channels.delete(this.topic);
  }
}

export class Connection {
  /**
   * @param {import("ws").WebSocket} ws
   * @param {{vsn: string, apikeyRole: string, checkToken: (t: string) => Promise<import("./tokens.js").Verdict>,
   *   tables: ReturnType<typeof import("./changes.js").createTables>, idleMs: number}} opts
   */
  constructor(ws, opts) {
    this.ws = ws;
    this.opts = opts;
    /** @type {Map<string, Channel>} */
    this.channels = new Map();
    // Messages are handled one at a time, in order: a join's checks finish before the next message is read.
    this.tail = Promise.resolve();
    this.idle = null;
    this.touch();
    ws.on("message", (data, isBinary) => {
      this.touch();
      this.tail = this.tail.then(() => this.receive(data, isBinary)).catch((e) => {
        console.error(`[realtime] ${e.message}`);
      });
    });
    ws.on("close", () => this.dispose());
    ws.on("error", () => this.dispose());
  }

  /** Phoenix's rule: a client that sends nothing (not even heartbeats) for the timeout is gone. */
  touch() {
    clearTimeout(this.idle);
    this.idle = setTimeout(() => this.ws.close(1000, "heartbeat timeout"), this.opts.idleMs);
  }

  send(message) {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(encode(this.opts.vsn, message));
  }

  reply(msg, status, response = {}) {
    this.send({ joinRef: msg.joinRef, ref: msg.ref, topic: msg.topic, event: "phx_reply", payload: { status, response } });
  }

  async receive(data, isBinary) {
    if (isBinary) return this.ws.close(1003, "binary frames are not served (postgres_changes only)");
    const msg = decode(this.opts.vsn, data.toString("utf8"));
    if (!msg) return this.ws.close(1007, "not a Phoenix message");
    if (msg.topic === "phoenix" && msg.event === "heartbeat") return this.reply(msg, "ok");
    if (msg.event === "phx_join") return this.join(msg);
    const channel = this.channels.get(msg.topic);
    if (!channel || (msg.joinRef !== null && msg.joinRef !== channel.joinRef)) {
      return this.reply(msg, "error", { reason: "unmatched topic" });
    }
    if (msg.event === "phx_leave") {
      channel.dispose();
      return this.reply(msg, "ok");
    }
    if (msg.event === "access_token") return this.refresh(channel, msg.payload.access_token);
    // broadcast and presence are not served; like Supabase, other events are ignored without a reply.
  }

  /** The token a join or refresh carries: a JWT, else the API key the socket connected with. */
  async authorize(token) {
    if (token === undefined || token === null || (typeof token === "string" && token.startsWith("sb_"))) {
      return { ok: true, role: this.opts.apikeyRole, claims: { role: this.opts.apikeyRole }, exp: null, token: null };
    }
    const verdict = await this.opts.checkToken(token);
    if (!verdict.ok) return verdict;
    if (verdict.exp !== null && verdict.exp * 1000 <= Date.now()) {
      return { ok: false, reason: "InvalidJWTToken: Token has expired 0 seconds ago" };
    }
    return { ...verdict, token };
  }

  async join(msg) {
    const { topic, payload } = msg;
    if (!topic.startsWith("realtime:")) return this.reply(msg, "error", { reason: "unmatched topic" });
    if (topic === "realtime:") return this.reply(msg, "error", { reason: "TopicNameRequired: You must provide a topic name" });
    const config = payload.config ?? {};
    if (config.private === true) {
      return this.reply(msg, "error", {
        reason: "PrivateChannelsUnsupported: the dev server serves public channels with postgres_changes only",
      });
    }
    const auth = await this.authorize(payload.access_token ?? payload.user_token);
    if (!auth.ok) return this.reply(msg, "error", { reason: auth.reason });

    const wanted = Array.isArray(config.postgres_changes) ? config.postgres_changes.filter((p) => p) : [];
    /** @type {Binding[]} */
    const bindings = [];
    const errors = [];
    for (const p of wanted) {
      const b = { id: ++bindingIds, event: p.event, schema: p.schema, table: p.table, filter: p.filter, conditions: [] };
      b.error = await this.bindingError(p, b);
      if (b.error) errors.push(b.error);
      bindings.push(b);
    }
    // A join on a topic already joined replaces it (the client rejoining after an error).
    this.channels.get(topic)?.dispose();
    const channel = new Channel(this, topic, msg.joinRef, auth);
    channel.bindings = bindings;
    this.channels.set(topic, channel);
    channel.armExpiry();
    this.reply(msg, "ok", {
      postgres_changes: wanted.map((p, i) => ({ ...p, id: bindings[i].id })),
    });
    if (wanted.length) {
      const sub = topic.slice("realtime:".length);
      for (const message of errors) channel.push("system", { extension: "postgres_changes", status: "error", message, channel: sub });
      if (!errors.length) {
        channel.push("system", { extension: "postgres_changes", status: "ok", message: "Subscribed to PostgreSQL", channel: sub });
      }
    }
  }

  /** Why a binding can never deliver, or undefined when it can. */
  async bindingError(p, b) {
    if (typeof p !== "object") return "postgres_changes: each binding must be an object";
    if (!EVENTS.has(p.event)) return `postgres_changes: event must be *, INSERT, UPDATE or DELETE, not ${JSON.stringify(p.event)}`;
    if (p.schema !== "public") return `postgres_changes: only the public schema is served, not ${JSON.stringify(p.schema)}`;
    if (p.table !== undefined && p.table !== "*") {
      const info = typeof p.table === "string" ? await this.opts.tables.get(p.table) : null;
      if (!info) return `postgres_changes: table ${JSON.stringify(p.table)} has no change feed (record_sync_feed_enable)`;
      if (p.filter !== undefined && p.filter !== null) {
        try {
          b.conditions = parseFilter(p.filter);
        } catch (e) {
          return `postgres_changes: ${e.message}`;
        }
        const unknown = b.conditions.find((c) => !info.columns.some((col) => col.name === c.column));
        if (unknown) return `postgres_changes: table ${p.table} has no column ${JSON.stringify(unknown.column)}`;
      }
    } else if (p.filter !== undefined && p.filter !== null) {
      return "postgres_changes: a filter needs a table";
    }
    return undefined;
  }

  async refresh(channel, token) {
    // Supabase's rules: the same token, none, or an API key changes nothing.
    if (token === undefined || token === null || token === channel.auth.token) return;
    if (typeof token === "string" && token.startsWith("sb_")) return;
    const auth = await this.authorize(token);
    if (!auth.ok) return channel.shutdown(auth.reason);
    channel.auth = auth;
    channel.armExpiry();
  }

  /** Closes the socket from the server's side (tests: a dropped connection). */
  drop() {
    this.ws.terminate();
    this.dispose();
  }

  dispose() {
    clearTimeout(this.idle);
    for (const c of [...this.channels.values()]) c.dispose();
  }
}
