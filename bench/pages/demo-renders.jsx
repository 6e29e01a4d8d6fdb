// The training-plan demo (www/app/src: App, its editor, its domain hook) mounted as main.tsx mounts it, bundled
// for production, with a RecordSync the page holds (window.benchSync) so that the benchmark can queue changes
// from outside the editor. bench/renders.mjs counts the renders of App and PlanEditor (counters it injects).
import { createRoot } from "react-dom/client";
import { RecordSync } from "record-sync";
import { RecordSyncProvider } from "record-sync/react";
import { App } from "../../www/app/src/App";
import { openDb, PARENTS } from "../../www/app/src/db";
import { AppDataProvider } from "../../www/app/src/sync/AppData";

globalThis.__benchRenders = { app: 0, editor: 0 };
const config = await (await fetch("/config.json")).json();
const db = openDb(config.dbName);
const sync = new RecordSync({
  transport: { url: config.url, apiKey: config.anonKey, getAccessToken: () => config.accessToken, mode: config.mode },
  tables: Object.fromEntries(Object.entries(PARENTS).map(([table, parents]) => [table, { parents }])),
});
window.benchSync = sync;
createRoot(document.getElementById("root")).render(
  <AppDataProvider db={db} config={config}>
    <RecordSyncProvider instance={sync}>
      <App />
    </RecordSyncProvider>
  </AppDataProvider>,
);
