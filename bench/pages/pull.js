// Catch-up in the browser, through the built package (issue 11): a new instance pages every remote row in from
// the dev server's change feed and hands it to an onRemoteChanges listener. A probe task every few ms measures
// how long the main thread was held at a time (the largest gap between probes, less the probe's own delay).
import { RecordSync } from "/pkg/index.js";

export async function measure({ url, token, expected, pageSize }) {
  let received = 0;
  let longest = 0;
  let last = performance.now();
  let probing = true;
  const probe = () => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
    if (probing) setTimeout(probe, 0);
  };
  setTimeout(probe, 0);
  const started = performance.now();
  const sync = new RecordSync({
    storage: null,
    transport: { url, apiKey: "dev-anon-key", getAccessToken: () => token, mode: "rpc" },
    pull: { tables: ["exercises"], pageSize },
  });
  const done = new Promise((resolve) => {
    sync.onRemoteChanges((changes) => {
      received += changes.length;
      if (received >= expected) resolve();
    });
  });
  await done;
  const totalMs = performance.now() - started;
  probing = false;
  const stats = sync.stats();
  sync.destroy();
  return { totalMs, longestBlockMs: longest, received, requests: stats.remoteChangesReceived };
}
