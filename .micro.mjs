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
async function time(label, fn) {
  const t = performance.now();
  for (let k = 0; k < 200; k++) { await c.query("begin"); await c.query("select set_config('role','authenticated',true), set_config('request.jwt.claims',$1,true), set_config('request.jwt.claim.sub',$2,true)", [claims, uid]); await fn(k); await c.query("commit"); }
  console.log(label, ((performance.now() - t) / 200).toFixed(2), "ms/batch");
}
const UPSERT = `insert into public.training_plans as t (id, name, weeks, description, last_changed) select r.id, r.name, r.weeks, r.description, r.last_changed from jsonb_populate_recordset(null::public.training_plans, $1::jsonb) r order by r.id on conflict (id) do update set name = excluded.name, weeks = excluded.weeks, description = excluded.description, last_changed = excluded.last_changed where t.last_changed is null or t.last_changed <= excluded.last_changed`;
for (let rep = 0; rep < 2; rep++) {
await time("upsert", (k) => c.query(UPSERT, [JSON.stringify(batch(k).map((x) => ({ ...x.data, id: x.id, last_changed: x.last_changed })))]));
await time("rpc   ", (k) => c.query("select record_sync_apply($1::jsonb)", [JSON.stringify(batch(k))]));

}
await c.end();
