import pg from "pg";
const c = new pg.Client({ connectionString: "postgres://postgres@127.0.0.1:55439/postgres" });
await c.connect();
await c.query(`create or replace function pg_temp.t(x jsonb) returns jsonb language plpgsql as $$
declare r jsonb; begin
  if not exists (select 1 from pg_prepared_statements where name = 'rs_t') then
    prepare rs_t(jsonb) as select $1 -> 0 as v;
  end if;
  execute 'execute rs_t($1)' into r using x;
  return r;
end $$`);
console.log((await c.query("select pg_temp.t('[1,2]')")).rows);
console.log((await c.query("select pg_temp.t('[3,2]')")).rows);
await c.end();
