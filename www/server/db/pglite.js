import { PGlite } from "@electric-sql/pglite";

/**
 * Embedded PostgreSQL (PGlite). It is a single connection, so every use goes through one queue: a request's
 * transaction never interleaves with another's.
 * @param {{dataDir?: string}} opts in memory unless dataDir is given
 * @returns {Promise<import("./types.js").Db>}
 */
export async function openPglite({ dataDir } = {}) {
  const pg = await PGlite.create(dataDir ? { dataDir } : {});
  let tail = Promise.resolve();
  const serialised = (fn) => {
    const run = tail.then(fn, fn);
    tail = run.catch(() => {});
    return run;
  };
  const q = (runner) => async (sql, params = []) => {
    const r = await runner.query(sql, params);
    return { rows: r.rows, rowCount: r.affectedRows ?? r.rows.length };
  };
  return {
    kind: "pglite",
    query: (sql, params) => serialised(() => q(pg)(sql, params)),
    exec: (sql) => serialised(() => pg.exec(sql)),
    transaction: (fn) => serialised(() => pg.transaction((tx) => fn(q(tx)))),
    // Notifications arrive once the notifying transaction commits, as on PostgreSQL.
    listen: (channel, onPayload) => serialised(() => pg.listen(channel, onPayload)),
    close: () => serialised(() => pg.close()),
  };
}
