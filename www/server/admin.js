// /__admin: test and benchmark controls, answered only to loopback clients and never faulted. There is
// deliberately no way to run arbitrary SQL here.
import { ApiError, bodyError } from "./errors.js";
import { ident } from "./postgrest/query.js";

export const isLoopback = (addr = "") =>
  addr === "::1" || addr.startsWith("127.") || addr.startsWith("::ffff:127.");

/**
 * @param {{db: import("./db/types.js").Db, faults: import("./faults.js").Faults, stats: import("./stats.js").Stats,
 *   catalog: {get: Function, reload: () => Promise<void>}, settings: {allowAnonymousRpc: boolean},
 *   realtime: () => {dropAll: () => number}|null}} deps
 *   settings: what the server started with, restored by reset
 */
/** A route's JSON body, or the 400 PostgREST gives for one that is not JSON. */
function jsonBody(body) {
  try {
    return JSON.parse(body.toString("utf8"));
  } catch {
    throw bodyError();
  }
}

export function createAdmin({ db, faults, stats, catalog, settings, realtime }) {
  /** record_sync_settings as the admin routes show it. */
  async function readSettings() {
    const { rows } = await db.query("select allow_anonymous from public.record_sync_settings");
    return { allowAnonymousRpc: rows[0]?.allow_anonymous === true };
  }
  async function writeSettings(raw) {
    if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw bodyError("Settings must be a JSON object");
    for (const k of Object.keys(raw)) {
      if (k !== "allowAnonymousRpc") throw bodyError(`Unknown setting ${k}: only allowAnonymousRpc`);
    }
    if (raw.allowAnonymousRpc !== undefined) {
      if (typeof raw.allowAnonymousRpc !== "boolean") throw bodyError("allowAnonymousRpc must be true or false");
      await db.query("update public.record_sync_settings set allow_anonymous = $1", [raw.allowAnonymousRpc]);
    }
  }

  /** Empties every table record_sync may write (the demo tables, plus any registered since) and its replay log. */
  async function reset() {
    await catalog.reload();
    const { rows } = await db.query("select table_name from public.record_sync_tables order by table_name");
    const tables = rows.map((r) => r.table_name).filter((n) => catalog.get().tables.has(n));
    const logs = ["public.record_sync_applied", "public.record_sync_tombstones"];
    await db.query(`truncate ${[...tables.map((n) => `public.${ident(n)}`), ...logs].join(", ")}`);
    await db.query("update public.record_sync_feed_state set pruned_xid = '0', pruned_version = 0");
    stats.reset();
    faults.clear();
    await writeSettings(settings);
  }

  /**
   * @param {{method: string, path: string, body: Buffer}} req
   * @returns {Promise<{status: number, body?: unknown}>}
   */
  return async function handle({ method, path, body }) {
    const route = `${method} ${path.replace(/\/+$/, "")}`;
    switch (route) {
      case "POST /__admin/faults":
        faults.set(jsonBody(body));
        return { status: 200, body: { faults: faults.toJSON() } };
      case "GET /__admin/faults":
        return { status: 200, body: { faults: faults.toJSON() } };
      case "DELETE /__admin/faults":
        faults.clear();
        return { status: 200, body: { faults: null } };
      case "GET /__admin/stats":
        return { status: 200, body: stats };
      // Every realtime socket is cut, as a network failure would: clients reconnect and catch up.
      case "POST /__admin/realtime/drop":
        return { status: 200, body: { dropped: realtime()?.dropAll() ?? 0 } };
      case "GET /__admin/settings":
        return { status: 200, body: await readSettings() };
      case "POST /__admin/settings":
        await writeSettings(jsonBody(body));
        return { status: 200, body: await readSettings() };
      case "POST /__admin/reset":
        await reset();
        return { status: 200, body: { reset: true } };
      // The change feed as it would be `days` later: every tombstone that much older, and those past the retention
      // pruned (a reader whose cursor is behind them is then told to start over).
      case "POST /__admin/tombstones/age": {
        const days = jsonBody(body)?.days;
        if (!Number.isInteger(days) || days < 1 || days > 3650) throw bodyError("days must be an integer from 1 to 3650");
        await db.query("update public.record_sync_tombstones set deleted_at = deleted_at - make_interval(days => $1)", [days]);
        await db.query("select public.record_sync_feed_prune()");
        const { rows } = await db.query("select pruned_xid::text as xid, pruned_version::text as version from public.record_sync_feed_state");
        return { status: 200, body: { pruned: rows[0] ?? null } };
      }
      default:
        throw new ApiError(404, null, `No admin route ${route}`, {
          hint: "POST|GET|DELETE /__admin/faults, GET /__admin/stats, GET|POST /__admin/settings, POST /__admin/reset, POST /__admin/realtime/drop, POST /__admin/tombstones/age",
        });
    }
  };
}
