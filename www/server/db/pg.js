import pg from "pg";

/**
 * A real PostgreSQL through a connection pool, for DATABASE_URL.
 * @param {{databaseUrl: string}} opts
 * @returns {Promise<import("./types.js").Db>}
 */
export async function openPg({ databaseUrl }) {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 8 });
  /** @type {Set<pg.Client>} */
  const listeners = new Set();
  // An idle client that loses its connection must not crash the server; the next checkout gets a fresh one.
  pool.on("error", () => {});
  const q = (client) => async (sql, params = []) => {
    const r = await client.query(sql, params);
    return { rows: r.rows, rowCount: r.rowCount ?? 0 };
  };
  return {
    kind: "postgres",
    query: (sql, params) => q(pool)(sql, params),
    exec: async (sql) => {
      await pool.query(sql);
    },
    transaction: async (fn) => {
      const client = await pool.connect();
      try {
        await client.query("begin");
        const out = await fn(q(client));
        await client.query("commit");
        return out;
      } catch (e) {
        await client.query("rollback").catch(() => {});
        throw e;
      } finally {
        client.release();
      }
    },
    listen: async (channel, onPayload, onLost) => {
      // A connection of its own: LISTEN holds its session, which a pooled client would hand to others.
      const client = new pg.Client({ connectionString: databaseUrl });
      client.on("error", (e) => console.error(`[db] LISTEN ${channel} connection failed: ${e.message}`));
      client.on("notification", (m) => {
        if (m.channel === channel) onPayload(m.payload ?? "");
      });
      // Notifications sent while no session listens are gone: whoever relies on them must hear of the gap.
      client.on("end", () => {
        if (listeners.delete(client)) onLost?.();
      });
      await client.connect();
      await client.query(`listen ${channel}`);
      listeners.add(client);
      return async () => {
        listeners.delete(client);
        await client.end().catch(() => {});
      };
    },
    close: async () => {
      await Promise.all([...listeners].map((c) => c.end().catch(() => {})));
      await pool.end();
    },
  };
}
