#!/usr/bin/env node
// `npm run server -- [--port 54321] [--data-dir dir] [--anon-key k] [--service-key k] [--jwt-secret s] [--max-body-bytes n]`
// DATABASE_URL set: a real PostgreSQL instead of the embedded PGlite. JWT_SECRET: the default for --jwt-secret.
import { parseArgs } from "node:util";
import { DEFAULT_BODY_LIMIT, DEFAULT_PORT, startServer } from "./server.js";

const usage = `usage: npm run server -- [--port ${DEFAULT_PORT}] [--data-dir DIR] [--anon-key KEY] [--service-key KEY] [--jwt-secret SECRET]
  [--max-body-bytes ${DEFAULT_BODY_LIMIT}] [--allow-origin ORIGIN]... [--allow-host NAME]... [--no-admin] [--allow-anonymous-rpc]
  --allow-origin (or RECORD_SYNC_ALLOWED_ORIGINS, comma separated): origins that get CORS headers; an entry ending
    in :* allows any port. Default: http://127.0.0.1:*, http://localhost:*, http://[::1]:*
  --allow-host (or RECORD_SYNC_ALLOWED_HOSTS): Host names answered besides the loopback ones
  --no-admin: no /__admin routes (faults, stats, settings, reset)
  --allow-anonymous-rpc: record_sync_apply accepts callers without a user (record_sync_settings.allow_anonymous)
  --host beyond loopback needs --anon-key, --service-key and --jwt-secret of your own
  storage: PGlite in memory, or in --data-dir; DATABASE_URL=postgres://... for a real PostgreSQL`;

let values;
try {
  ({ values } = parseArgs({
    options: {
      port: { type: "string", default: String(DEFAULT_PORT) },
      host: { type: "string", default: "127.0.0.1" },
      "data-dir": { type: "string" },
      "anon-key": { type: "string" },
      "service-key": { type: "string" },
      "jwt-secret": { type: "string" },
      "max-body-bytes": { type: "string", default: String(DEFAULT_BODY_LIMIT) },
      "allow-origin": { type: "string", multiple: true },
      "allow-host": { type: "string", multiple: true },
      "no-admin": { type: "boolean" },
      "allow-anonymous-rpc": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  }));
} catch (e) {
  console.error(`server: ${e.message}\n${usage}`);
  process.exit(2);
}
if (values.help) {
  console.log(usage);
  process.exit(0);
}
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`server: --port must be 0-65535\n${usage}`);
  process.exit(2);
}
const bodyLimit = Number(values["max-body-bytes"]);
if (!Number.isInteger(bodyLimit) || bodyLimit < 1) {
  console.error(`server: --max-body-bytes must be a positive integer\n${usage}`);
  process.exit(2);
}

const databaseUrl = process.env.DATABASE_URL || undefined;
/** A comma-separated environment variable as a list (empty entries dropped). */
const list = (text) => (text ?? "").split(",").map((x) => x.trim()).filter(Boolean);
let server;
try {
  server = await startServer({
    port,
    host: values.host,
    dataDir: values["data-dir"],
    databaseUrl,
    anonKey: values["anon-key"],
    serviceKey: values["service-key"],
    jwtSecret: values["jwt-secret"] ?? process.env.JWT_SECRET,
    bodyLimit,
    allowOrigins: values["allow-origin"] ?? list(process.env.RECORD_SYNC_ALLOWED_ORIGINS),
    allowHosts: values["allow-host"] ?? list(process.env.RECORD_SYNC_ALLOWED_HOSTS),
    admin: !values["no-admin"],
    allowAnonymousRpc: values["allow-anonymous-rpc"] ?? false,
  });
} catch (e) {
  console.error(`server: could not start: ${e.message}`);
  process.exit(1);
}

const storage = databaseUrl ? "PostgreSQL (DATABASE_URL)" : values["data-dir"] ? `PGlite in ${values["data-dir"]}` : "PGlite in memory";
console.log(`record-sync dev server on ${server.url} (${storage})
  REST URL:     ${server.restUrl}
  anon key:     ${server.anonKey}
  service key:  ${server.serviceKey}   (role service_role, bypasses row-level security)
  JWT secret:   ${server.jwtSecret}   (user token: npm run --silent dev-token -- <user-uuid>)
  admin:        ${server.admin ? `${server.url}/__admin/{faults,stats,reset} (apikey: the service key)` : "off (--no-admin)"}`);

const stop = async () => {
  await server.close();
  process.exit(0);
};
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
