// From committed row changes to postgres_changes messages. The feed's tables NOTIFY each change (notify.sql); for
// every channel with a matching binding the row is read again as that channel's subscriber (their role and JWT
// claims, in a read-only transaction), so row-level security and the binding's filter decide, in SQL, whether
// they get it. Notifications are handled one at a time, in commit order, so each channel sees changes in order.
import { filterSql } from "./filters.js";

export const CHANNEL = "record_sync_changes";

const ident = (n) => `"${String(n).replaceAll('"', '""')}"`;

/**
 * @typedef {{table: string, op: "INSERT"|"UPDATE"|"DELETE", id: string|number, owner: string|null, version: number|null}} Change
 * @typedef {{name: string, pk: string, columns: {name: string, type: string}[]}} TableInfo
 */

/** @param {unknown} p @returns {Change|null} */
function parseChange(p) {
  let c;
  try {
    c = JSON.parse(String(p));
  } catch {
    return null;
  }
  if (!c || typeof c.table !== "string" || !["INSERT", "UPDATE", "DELETE"].includes(c.op)) return null;
  if (typeof c.id !== "string" && typeof c.id !== "number") return null;
  return c;
}

/**
 * @param {{db: import("../db/types.js").Db}} deps
 */
export function createTables({ db }) {
  /** @type {Map<string, TableInfo|null>} */
  const cache = new Map();
  /** The feed table's key and columns (typed as realtime-js converts them), or null when it has no feed. */
  async function get(name) {
    if (cache.has(name)) return cache.get(name);
    const { rows } = await db.query(
      `select f.pk_column as pk,
              (select json_agg(json_build_object('name', a.attname, 'type', t.typname) order by a.attnum)::text
                 from pg_attribute a join pg_type t on t.oid = a.atttypid
                where a.attrelid = to_regclass(format('public.%I', f.table_name)) and a.attnum > 0 and not a.attisdropped) as columns
         from public.record_sync_feed_tables f where f.table_name = $1`,
      [name],
    );
    const info = rows[0] ? { name, pk: rows[0].pk, columns: JSON.parse(rows[0].columns ?? "[]") } : null;
    // Only found tables are kept: a table enabled later is found on the next look.
    if (info) cache.set(name, info);
    return info;
  }
  return { get };
}

/**
 * @param {{db: import("../db/types.js").Db, tables: ReturnType<typeof createTables>,
 *   channels: () => Iterable<import("./connection.js").Channel>, onLost: () => void}} deps
 */
export function createChangeSource({ db, tables, channels, onLost }) {
  let tail = Promise.resolve();
  let unlisten = null;

  /** Reads the change as the channel's subscriber; the record (INSERT/UPDATE) or true (DELETE) if visible. */
  async function readAs(channel, table, change, conditions) {
    return db.transaction(async (q) => {
      await q("set transaction read only");
      await q(
        `select set_config('role', $1, true), set_config('request.jwt.claims', $2, true),
                set_config('request.jwt.claim.sub', $3, true)`,
        [channel.auth.role, JSON.stringify(channel.auth.claims), String(channel.auth.claims.sub ?? "")],
      );
      if (change.op === "DELETE") {
        // The tombstone's policy is the owner's: as row-level security reads it, this subscriber may know.
        const r = await q(
          `select 1 from public.record_sync_tombstones t where t.table_name = $1 and t.id = $2::jsonb`,
          [change.table, JSON.stringify(change.id)],
        );
        return r.rows.length > 0;
      }
      const f = filterSql(conditions, 2);
      // Only the version notified: a newer one has a notification of its own, so nobody gets a row twice.
      const r = await q(
        `select to_jsonb(x)::text as row from public.${ident(table.name)} x
          where x.${ident(table.pk)} = $1 and x.record_sync_version = $2 and (${f.sql})`,
        [String(change.id), String(change.version), ...f.params],
      );
      return r.rows.length ? JSON.parse(r.rows[0].row) : null;
    });
  }

  async function dispatch(change) {
    const table = await tables.get(change.table);
    if (!table) return;
    const commitTimestamp = new Date().toISOString();
    const work = [];
    for (const channel of channels()) {
      const bindings = channel.bindings.filter(
        (b) => !b.error && (b.table === undefined || b.table === "*" || b.table === change.table) && (b.event === "*" || b.event === change.op),
      );
      if (!bindings.length) continue;
      // Deletes are not filtered (as in Supabase Realtime: the old row is gone); other changes once per filter.
      const groups = new Map();
      for (const b of bindings) {
        const key = change.op === "DELETE" ? "" : b.filter ?? "";
        groups.set(key, [...(groups.get(key) ?? []), b]);
      }
      for (const group of groups.values()) {
        work.push(
          readAs(channel, table, change, change.op === "DELETE" ? [] : group[0].conditions).then(
            (seen) => {
              if (!seen || !channel.open) return;
              const pk = { [table.pk]: change.id };
              const data = {
                schema: "public",
                table: change.table,
                commit_timestamp: commitTimestamp,
                type: change.op,
                columns: table.columns,
                errors: null,
                ...(change.op === "DELETE" ? { old_record: pk } : { record: seen }),
                ...(change.op === "UPDATE" ? { old_record: pk } : {}),
              };
              channel.push("postgres_changes", { ids: group.map((b) => b.id), data });
            },
            (e) => {
              // A role without the grant may not see the row: that is an answer, not a failure.
              if (e.code !== "42501") console.error(`[realtime] reading ${change.table} ${change.op} as a subscriber failed: ${e.message}`);
            },
          ),
        );
      }
    }
    await Promise.all(work);
  }

  return {
    async start() {
      unlisten = await db.listen(
        CHANNEL,
        (payload) => {
          const change = parseChange(payload);
          if (!change) return console.error(`[realtime] ignored a malformed notification on ${CHANNEL}`);
          tail = tail.then(() => dispatch(change)).catch((e) => console.error(`[realtime] ${e.message}`));
        },
        onLost,
      );
    },
    /** Resolves when every notification received so far has been handed out (tests, shutdown). */
    idle: () => tail,
    async stop() {
      await unlisten?.();
      unlisten = null;
      await tail;
    },
  };
}
