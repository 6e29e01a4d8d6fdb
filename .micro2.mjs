import pg from "pg";
import { readFileSync } from "node:fs";
import { SCHEMA_FILES } from "./www/server/db/schema.js";
const c = new pg.Client({ connectionString: "postgres://postgres@127.0.0.1:55439/postgres" });
await c.connect();
for (const f of SCHEMA_FILES) await c.query(readFileSync(f, "utf8"));
const uid = "00000000-0000-4000-8000-000000000001";
const claims = JSON.stringify({ sub: uid, role: "authenticated" });
let seq = Date.now() * 100;
const batch = (k) => Array.from({ length: 50 }, (_, i) => ({ client_id: "c", seq: ++seq, table: "training_plans", id: `r${i}`, op: "upsert", data: { name: `n${k}`, weeks: 2, description: "x".repeat(40) }, last_changed: new Date(Date.UTC(2026,0,1,0,0,k)).toISOString() }));
const notes = [];
c.on("notice", (n) => notes.push(n.message));
for (let k = 0; k < 50; k++) { await c.query("begin"); await c.query("select set_config('role','authenticated',true), set_config('request.jwt.claims',$1,true), set_config('request.jwt.claim.sub',$2,true)", [claims, uid]); await c.query("select record_sync_apply($1::jsonb)", [JSON.stringify(batch(k))]); await c.query("commit"); }
console.log(notes.slice(-10).join("\n"));
await c.end();
