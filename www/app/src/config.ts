// Where the app syncs to. `npm start` (scripts/start.sh) passes the dev server's URL, the anon key and a dev
// JWT of the demo user as Vite env variables; a deployment (or a test) can instead serve a `config.json` next
// to index.html with the same fields.
export interface DemoConfig {
  /** PostgREST base URL, e.g. https://xyz.supabase.co/rest/v1 */
  url: string;
  /** The project's anon key. */
  anonKey: string;
  /** A user's JWT (row-level security), or null to send the anon key only. */
  accessToken: string | null;
  /** "rpc" (one record_sync_apply call per batch, needs sql/record_sync.sql) or "rest" (plain PostgREST). */
  mode: "rpc" | "rest";
  /** IndexedDB database name (one per user). */
  dbName: string;
  /** Sync intervals per priority in ms, when not the defaults. */
  syncIntervals?: Partial<Record<0 | 1 | 2 | 3, number>>;
}

export async function loadConfig(): Promise<DemoConfig> {
  const env = import.meta.env;
  const fromEnv: Partial<DemoConfig> = {
    url: env.VITE_RECORD_SYNC_URL,
    anonKey: env.VITE_RECORD_SYNC_ANON_KEY,
    accessToken: env.VITE_RECORD_SYNC_TOKEN || null,
    mode: env.VITE_RECORD_SYNC_MODE === "rest" ? "rest" : env.VITE_RECORD_SYNC_MODE === "rpc" ? "rpc" : undefined,
  };
  let fromFile: Partial<DemoConfig> = {};
  try {
    const res = await fetch(new URL("config.json", document.baseURI), { cache: "no-store" });
    if (res.ok && (res.headers.get("content-type") ?? "").includes("json")) fromFile = await res.json();
  } catch {
    /* no config.json: env only */
  }
  const mode = new URLSearchParams(location.search).get("mode");
  const config: DemoConfig = {
    url: "http://127.0.0.1:54321/rest/v1",
    anonKey: "dev-anon-key",
    accessToken: null,
    mode: "rpc",
    dbName: "training-plans",
    ...definedOnly(fromEnv),
    ...definedOnly(fromFile),
    ...(mode === "rest" || mode === "rpc" ? { mode: mode as DemoConfig["mode"] } : {}),
  };
  return config;
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined && v !== "")) as Partial<T>;
}
