// The realtime socket (issue 11): the few Phoenix channel messages Supabase Realtime needs for postgres_changes
// (vsn 1.0.0 JSON frames: phx_join with config.postgres_changes and access_token, heartbeat, access_token,
// phx_reply, postgres_changes, system, phx_close/phx_error). Its own rather than @supabase/realtime-js: that
// client (2.109, with its Phoenix socket) bundles to 57 KB minified, 16.8 KB gzip; this file to 1.8 KB, 0.9 KB
// gzip (esbuild --minify, gzip -9), and an app on supabase-js keeps its own client either way.
// Whatever goes wrong, it says "closed" and opens again with backoff; the library catches up after each
// "subscribed", so what the socket missed comes by the feed.

const HEARTBEAT_MS = 25_000;
const TOPIC = "realtime:record-sync";

/**
 * @param {string} url the websocket URL, with apikey and vsn in the query
 * @param {string[]} tables
 * @param {string} token
 * @param {(event: {type: "subscribed"} | {type: "closed", reason: string} | {type: "change", table: string,
 *   op: string, record: object | null}) => void} onEvent
 */
export function openRealtime(url, tables, token, onEvent) {
  let ws = null;
  let ref = 0;
  let joinRef = null;
  let heartbeat = null;
  // The ref of the heartbeat not answered yet. A connection dropped without a close (a NAT timeout, a network
  // change, a laptop waking up) fires no event: an unanswered heartbeat is how it is noticed (realtime-js does
  // the same), else the channel would look live while nothing arrives.
  let unanswered = null;
  let reconnect = null;
  let failures = 0;
  let closed = false;

  const send = (topic, event, payload, join = null) => {
    if (ws && ws.readyState === 1) ws.send(JSON.stringify({ topic, event, payload, ref: String(++ref), join_ref: join }));
    return String(ref);
  };
  const drop = (reason) => {
    clearInterval(heartbeat);
    heartbeat = null;
    unanswered = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close();
      } catch {
        // Already closing.
      }
      ws = null;
    }
    joinRef = null;
    if (closed) return;
    onEvent({ type: "closed", reason });
    failures += 1;
    reconnect = setTimeout(open, Math.min(30_000, 500 * 2 ** Math.min(failures, 6)));
  };
  const open = () => {
    reconnect = null;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      ws = null;
      drop(`cannot open the realtime socket: ${e?.message ?? e}`);
      return;
    }
    ws.onopen = () => {
      heartbeat = setInterval(() => {
        if (unanswered !== null) return drop("the realtime socket did not answer its heartbeat");
        unanswered = send("phoenix", "heartbeat", {});
      }, HEARTBEAT_MS);
      const postgres_changes = tables.map((table) => ({ event: "*", schema: "public", table }));
      joinRef = String(ref + 1);
      send(TOPIC, "phx_join", { config: { postgres_changes, private: false }, access_token: token }, joinRef);
    };
    ws.onmessage = (frame) => {
      let m;
      try {
        m = JSON.parse(frame.data);
      } catch {
        return drop("a realtime frame that is not JSON");
      }
      if (m?.topic === "phoenix" && m.event === "phx_reply" && m.ref === unanswered) unanswered = null;
      if (!m || typeof m !== "object" || m.topic !== TOPIC) return;
      const payload = m.payload ?? {};
      if (m.event === "phx_reply" && m.ref === joinRef) {
        if (payload.status === "ok") {
          failures = 0;
          onEvent({ type: "subscribed" });
        } else drop(`realtime join refused: ${payload.response?.reason ?? "no reason"}`);
      } else if (m.event === "postgres_changes") {
        const data = payload.data ?? {};
        onEvent({ type: "change", table: data.table, op: data.type, record: data.record ?? null });
      } else if (m.event === "system" && payload.status === "error") {
        drop(`realtime: ${payload.message ?? "error"}`);
      } else if (m.event === "phx_close" || m.event === "phx_error") {
        drop(`realtime channel ${m.event === "phx_close" ? "closed" : "failed"}`);
      }
    };
    ws.onclose = () => drop("the realtime socket closed");
    ws.onerror = () => drop("the realtime socket failed");
  };
  open();

  return {
    /** A new token for the joined channel (Supabase checks it and closes the channel if it is not valid). */
    setToken(next) {
      token = next;
      if (joinRef !== null) send(TOPIC, "access_token", { access_token: next }, joinRef);
    },
    close() {
      closed = true;
      clearTimeout(reconnect);
      drop("closed");
    },
  };
}
