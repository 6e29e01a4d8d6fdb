// Flushing updates through the built package: one instance queues an update of each row, then
// `forceSyncAll()`; the time is from the first change to the promise settling.
import { RecordSync } from "/pkg/index.js";

export async function measure({ url, token, mode, ids, name }) {
  const sync = new RecordSync({
    storage: null,
    transport: { url, apiKey: "dev-anon-key", getAccessToken: () => token, mode },
  });
  const started = performance.now();
  for (const id of ids) sync.queueChange("exercises", id, "update", { name }, 3);
  const summary = await sync.forceSyncAll();
  const ms = performance.now() - started;
  const { requests } = sync.stats();
  sync.destroy();
  return { ms, confirmed: summary.confirmed, conflicts: summary.conflicts, failed: summary.failed.length, requests };
}
