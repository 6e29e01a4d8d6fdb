import pg from "pg";
const c = new pg.Client({ connectionString: "postgres://postgres@127.0.0.1:55439/postgres" });
await c.connect();
const uid = "00000000-0000-4000-8000-000000000001";
const claims = JSON.stringify({ sub: uid, role: "authenticated" });
let K = Math.floor(Date.now()/1000) % 100000;
const rows = (k) => JSON.stringify(Array.from({ length: 50 }, (_, i) => ({ n: i+1, data: { id: `r${i}`, name: `n${k}`, weeks: 2, description: "x".repeat(40), last_changed: new Date(Date.UTC(2026,0,1,0,0,0) + k*1000).toISOString() } })));
async function time(label, fn) {
  const t = performance.now();
  for (let i = 0; i < 300; i++) { const k = ++K; await c.query("begin"); await c.query("select set_config('role','authenticated',true), set_config('request.jwt.claims',$1,true), set_config('request.jwt.claim.sub',$2,true)", [claims, uid]); await fn(k); await c.query("commit"); }
  console.log(label, ((performance.now() - t) / 300).toFixed(3), "ms/batch");
}
const src = `select (e ->> 'n')::int as rs_n__, r.* from jsonb_array_elements($1) e, lateral jsonb_populate_record(null::public.training_plans, e -> 'data') r`;
const CTE = `with s as materialized (${src}), done as (insert into public.training_plans as t (description, id, last_changed, name, weeks) select description, id, last_changed, name, weeks from s on conflict (id) do update set description = excluded.description, last_changed = excluded.last_changed, name = excluded.name, weeks = excluded.weeks where t.last_changed is null or t.last_changed <= excluded.last_changed returning t.id as k__)
 select jsonb_agg(case when d.k__ is not null then jsonb_build_object('n', s.rs_n__, 'status', 'applied') else jsonb_build_object('n', s.rs_n__) || coalesce((select case when c.last_changed > s.last_changed then jsonb_build_object('status','conflict','row',to_jsonb(c)) else jsonb_build_object('status','missing') end from public.training_plans c where c.id = s.id), jsonb_build_object('status','missing')) end) from s left join done d on d.k__ = s.id`;
const PLAIN = `insert into public.training_plans as t (description, id, last_changed, name, weeks) select description, id, last_changed, name, weeks from (${src}) s on conflict (id) do update set description = excluded.description, last_changed = excluded.last_changed, name = excluded.name, weeks = excluded.weeks where t.last_changed is null or t.last_changed <= excluded.last_changed`;
for (let rep = 0; rep < 2; rep++) {
  await time("plain-src", (k) => c.query(PLAIN, [rows(k)]));
  await time("cte      ", (k) => c.query(CTE, [rows(k)]));
  await time("group fn ", (k) => c.query("select record_sync_apply_group('training_plans','upsert',true,$2,$1::jsonb)", [rows(k), ["description","id","last_changed","name","weeks"]]));
  await time("noop     ", (k) => c.query("select 1"));
}
await c.end();
