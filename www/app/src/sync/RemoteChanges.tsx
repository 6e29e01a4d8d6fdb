// The second direction (issue 11): other devices' changes, as record-sync hands them over (catch-up and
// realtime), written to the local database, so that every screen built on it (useLiveQuery) shows them. A
// record with an edit of this device's still on its way is held by the library until that edit settles, so
// nothing here can overwrite what the person is typing. The device's own writes come back marked `own`; they
// are applied too: they are the server's row (the same, unless another device's write was merged in between).
// After a month away the feed starts this device over (`reset`): every current row comes again, deletes made
// meanwhile do not, so the local tables are emptied first, but for records with an edit still on its way.
import type { RemoteChange } from "record-sync";
import { useRecordSyncInstance, useRemoteChanges } from "record-sync/react";
import { TABLES, type Db, type TableName } from "../db";
import { useDb } from "./AppData";

const KNOWN = new Set<string>(TABLES);

/** Applies one batch in one transaction, in the order given (the library's order per record). `keep`, on a
 *  reset: the records (`table id`) with a local change still pending, which stay while the rest is dropped. */
export async function applyRemoteChanges(db: Db, changes: readonly RemoteChange[], keep?: ReadonlySet<string>): Promise<void> {
  const relevant = changes.filter((c) => KNOWN.has(c.table));
  if (relevant.length === 0 && keep === undefined) return;
  const tables = keep === undefined ? [...new Set(relevant.map((c) => c.table as TableName))] : [...TABLES];
  await db.transaction("rw", tables.map((t) => db[t]), async () => {
    if (keep !== undefined) {
      for (const name of TABLES) {
        const table = db.table(name);
        const gone = (await table.toCollection().primaryKeys()).filter((id) => !keep.has(`${name} ${String(id)}`));
        await table.bulkDelete(gone);
      }
    }
    for (const change of relevant) {
      const table = db.table(change.table);
      if (change.op === "delete" || change.row === null) await table.delete(change.id);
      else {
        // The local database keeps no owner column (pull.ts strips it the same way).
        const { user_id: _owner, ...row } = change.row;
        await table.put(row);
      }
    }
  });
}

export function RemoteChangesToLocal() {
  const db = useDb();
  const instance = useRecordSyncInstance();
  useRemoteChanges((changes, { reset }) => {
    const keep = reset ? new Set(instance().pendingChanges().map((c) => `${c.table} ${c.id}`)) : undefined;
    applyRemoteChanges(db, changes, keep).catch((e: unknown) => console.error("applying remote changes failed", e));
  });
  return null;
}
