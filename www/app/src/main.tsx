import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { RecordSyncProvider } from "record-sync/react";
import type { RecordSyncOptions } from "record-sync";
import { App } from "./App";
import { loadConfig } from "./config";
import { openDb, PARENTS, TABLES } from "./db";
import { AppDataProvider } from "./sync/AppData";
import { RemoteChangesToLocal } from "./sync/RemoteChanges";
import "./styles.css";

const config = await loadConfig();
const db = openDb(config.dbName);

// The queue is stored per user (and only ever sent with that user's token): name the user, here from the JWT.
function userOf(token: string | null): string | null {
  try {
    return token ? (JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).sub ?? null) : null;
  } catch {
    return null;
  }
}

const options: RecordSyncOptions = {
  user: userOf(config.accessToken),
  transport: {
    url: config.url,
    apiKey: config.anonKey,
    getAccessToken: () => config.accessToken,
    mode: config.mode,
  },
  // Parents go first, so foreign keys hold (a session before its blocks, a block before its exercises).
  tables: Object.fromEntries(Object.entries(PARENTS).map(([table, parents]) => [table, { parents }])),
  ...(config.syncIntervals ? { syncIntervals: config.syncIntervals } : {}),
  // Other devices' edits come in: catch-up from the server's change feed, and realtime (issue 11).
  pull: { tables: TABLES, realtime: true },
};

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <AppDataProvider db={db} config={config}>
      <RecordSyncProvider options={options}>
        <RemoteChangesToLocal />
        <App />
      </RecordSyncProvider>
    </AppDataProvider>
  </StrictMode>,
);
