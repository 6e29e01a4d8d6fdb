-- record-sync: the server side of `rpc` mode. Install as-is in a Supabase project (SQL editor or a migration);
-- every statement is idempotent, so re-running it upgrades in place. Needs Supabase's roles and auth.uid().
--
-- POST /rest/v1/rpc/record_sync_apply {"changes": [...], "low_water": n} applies a batch of record changes as
-- the calling user (row-level security applies), exactly once per (user, client_id, seq), set-based per table,
-- and answers one result per change. See sql/README.md for the contract.

-- Which tables record_sync_apply may write, and each one's primary key column. A table not listed here is
-- refused with an error result (42501), whatever the caller's grants.
create table if not exists public.record_sync_tables (
  table_name text primary key,
  pk_column text not null default 'id'
);

alter table public.record_sync_tables enable row level security;
drop policy if exists record_sync_tables_read on public.record_sync_tables;
create policy record_sync_tables_read on public.record_sync_tables for select using (true);
grant select on public.record_sync_tables to anon, authenticated, service_role;

-- The installer's switches: one row. `allow_anonymous`: callers without a user id (the anon key, or the service
-- key without a user) may call record_sync_apply; their changes are applied without replay protection, since the
-- replay log belongs to users. Off by default: such a call is refused with 42501.
create table if not exists public.record_sync_settings (
  singleton boolean primary key default true check (singleton),
  allow_anonymous boolean not null default false
);
insert into public.record_sync_settings default values on conflict do nothing;
alter table public.record_sync_settings enable row level security;
drop policy if exists record_sync_settings_read on public.record_sync_settings;
create policy record_sync_settings_read on public.record_sync_settings for select using (true);
grant select on public.record_sync_settings to anon, authenticated, service_role;

-- What has been applied, so that a batch retried after its response was lost is answered from here instead of
-- being applied twice. Keyed per user: a user's (client_id, seq) can never collide with, or reveal, another
-- user's, and row-level security keeps each user to their own rows. Anonymous callers can neither read nor write
-- it. Kept bounded two ways: a client's low_water (every seq below it will never be sent again) deletes that
-- client's older rows, and the caller's rows older than 30 days are pruned on every call, long after any client
-- could still be retrying them.
create table if not exists public.record_sync_applied (
  user_id uuid not null default auth.uid(),
  client_id text not null,
  seq bigint not null,
  status text not null,
  applied_at timestamptz not null default now(),
  primary key (user_id, client_id, seq)
);
-- Upgrade from the first layout, keyed by (client_id, seq) with a nullable user_id: anonymous rows go (anonymous
-- calls no longer use the log), the key gains the user.
do $$
begin
  if exists (select 1 from pg_constraint
              where conrelid = 'public.record_sync_applied'::regclass and contype = 'p'
                and pg_get_constraintdef(oid) = 'PRIMARY KEY (client_id, seq)') then
    delete from public.record_sync_applied where user_id is null;
    alter table public.record_sync_applied drop constraint record_sync_applied_pkey,
      alter column user_id set not null,
      add primary key (user_id, client_id, seq);
  end if;
end $$;
-- Re-created so that an installed copy learns each new status.
alter table public.record_sync_applied drop constraint if exists record_sync_applied_status_check;
alter table public.record_sync_applied
  add constraint record_sync_applied_status_check check (status in ('applied', 'conflict', 'missing'));
drop index if exists public.record_sync_applied_applied_at;
create index if not exists record_sync_applied_user_applied_at on public.record_sync_applied (user_id, applied_at);

alter table public.record_sync_applied enable row level security;
drop policy if exists record_sync_applied_own on public.record_sync_applied;
create policy record_sync_applied_own on public.record_sync_applied for all
  using (user_id = (select auth.uid()))
  with check (user_id = (select auth.uid()));
revoke all on public.record_sync_applied from anon;
grant select, insert, delete on public.record_sync_applied to authenticated, service_role;

-- The one statement that applies a group of changes (one table, one op, the same columns, the same check) and
-- answers [{n, status, row?}] for each change it did not apply (null when it applied them all), n numbering the
-- group's changes from 1, given $1 = [data, ...], each holding the primary key (and last_changed when checked;
-- for a delete, only those two). Builds text only: it reads no table. For an update, upsert or delete, the
-- data-modifying CTE writes and the outer query reads the table as it was before, which is the stored row for
-- every change that was not written. (A table column named ordinality, rs_n__ or k__ would clash with these.)
create or replace function public.record_sync_group_sql(p_table text, p_pk text, p_op text, p_check boolean, p_keys text[])
returns text
language plpgsql
immutable
set search_path = pg_catalog
as $fn$
declare
  v_rel text := format('public.%I', p_table);
  v_src text;
  v_cols text;
  v_sets text;
  v_sets_ex text;
  v_guard text := case when p_check then 't.last_changed is null or t.last_changed <= s.last_changed' else 'true' end;
  v_write text;
begin
  v_src := format('select r.ordinality::int as rs_n__, r.* from rows from (jsonb_populate_recordset(null::%s, $1)) with ordinality r',
                  v_rel);
  select string_agg(format('%I', k), ', ' order by k) into v_cols from unnest(p_keys) k;
  if p_op = 'insert' then
    -- An existing row fails the statement (23505), and then that change alone, in the one-by-one retry.
    return format('with s as materialized (%1$s), done as (insert into %2$s (%3$s) select %3$s from s)
                   select null::jsonb', v_src, v_rel, v_cols);
  end if;
  select string_agg(format('%1$I = s.%1$I', k), ', ' order by k), string_agg(format('%1$I = excluded.%1$I', k), ', ' order by k)
    into v_sets, v_sets_ex from unnest(p_keys) k where k <> p_pk;
  v_sets := coalesce(v_sets, format('%1$I = s.%1$I', p_pk));
  v_sets_ex := coalesce(v_sets_ex, format('%1$I = excluded.%1$I', p_pk));
  v_write := case p_op
    when 'update' then format('update %1$s as t set %2$s from s where t.%3$I = s.%3$I and (%4$s) returning t.%3$I as k__',
                              v_rel, v_sets, p_pk, v_guard)
    when 'upsert' then format('insert into %1$s as t (%2$s) select %2$s from s on conflict (%3$I) do update set %4$s
                                 where %5$s returning t.%3$I as k__',
                              v_rel, v_cols, p_pk, v_sets_ex,
                              case when p_check then 't.last_changed is null or t.last_changed <= excluded.last_changed'
                                   else 'true' end)
    else format('delete from %1$s as t using s where t.%2$I = s.%2$I and (%3$s) returning t.%2$I as k__', v_rel, p_pk, v_guard)
  end;
  return format(
    $q$
    with s as materialized (%1$s),
    done as (%2$s)
    -- Only what was not written is looked at again: the stored row decides between conflict and missing.
    select jsonb_agg(jsonb_build_object('n', s.rs_n__) || coalesce(
               (select case when %4$s then jsonb_build_object('status', 'conflict', 'row', to_jsonb(c))
                            else jsonb_build_object('status', 'missing') end
                  from %6$s c where c.%3$I = s.%3$I),
               jsonb_build_object('status', %5$L)))
      from s left join done d on d.k__ = s.%3$I
     where d.k__ is null
    $q$,
    v_src, v_write, p_pk,
    case when p_check then 'c.last_changed > s.last_changed' else 'false' end,
    case when p_op = 'delete' then 'applied' else 'missing' end,
    v_rel);
end
$fn$;

create or replace function public.record_sync_apply(changes jsonb, low_water bigint default null)
returns jsonb
language plpgsql
security invoker
set search_path = pg_catalog, public
-- Timestamps without an offset are read as UTC, and rows come back in UTC, whatever the session's zone.
set timezone = 'UTC'
-- The prepared group statements take their plan once, not once per call.
set plan_cache_mode = force_generic_plan
as $fn$
declare
  max_changes constant int := 1000;
  v_uid uuid := auth.uid();
  v_n int;
  results jsonb[];
  v_seq bigint[];
  v_client text[];
  v_tables jsonb;
  -- Per valid change, by position (null for an invalid one): table, key column, op, check, id as text, data.
  v_tbl text[];
  v_pk text[];
  v_op text[];
  v_chk boolean[];
  v_idt text[];
  v_data jsonb[];
  g record;
  e jsonb;
  r jsonb;
  v_stored jsonb;
  v_sql text;
  v_ok boolean;
  v_name text;
  v_prepared boolean;
  v_j int;
  v_k int;
begin
  if changes is null or jsonb_typeof(changes) <> 'array' then
    raise exception using errcode = '22023', message = 'record_sync_apply: changes must be a JSON array';
  end if;
  v_n := jsonb_array_length(changes);
  if v_n > max_changes then
    raise exception using errcode = '22023',
      message = format('record_sync_apply: a batch holds at most %s changes, this one has %s', max_changes, v_n),
      hint = 'Send smaller batches (record-sync''s batchSize is at most 1000).';
  end if;
  if v_uid is null and not coalesce((select s.allow_anonymous from public.record_sync_settings s), false) then
    raise exception using errcode = '42501', message = 'record_sync_apply: anonymous callers are refused: sign in',
      hint = 'An installer may allow them: update public.record_sync_settings set allow_anonymous = true';
  end if;
  results := '{}';
  v_seq := '{}';
  v_client := '{}';
  v_tbl := '{}';

  -- Each listed table once: its primary key and whether it has a last_changed column.
  select jsonb_object_agg(t.table_name, jsonb_build_object('pk', t.pk_column, 'lc', exists (
           select 1 from pg_attribute a
            where a.attrelid = to_regclass(format('public.%I', t.table_name)) and a.attname = 'last_changed'
              and a.attnum > 0 and not a.attisdropped)))
    into v_tables
    from public.record_sync_tables t
   where t.table_name in (select distinct x ->> 'table' from jsonb_array_elements(changes) x where jsonb_typeof(x) = 'object');

  -- Validate every change in one query, without touching any table: what passes becomes work (indexed by the
  -- change's position), what fails its error result.
  if v_n > 0 then
    select array_agg(y.err order by y.n), array_agg(y.seq order by y.n), array_agg(y.client order by y.n),
           array_agg(y.tbl order by y.n), array_agg(y.pk order by y.n), array_agg(y.op order by y.n),
           array_agg(y.chk order by y.n), array_agg(y.idt order by y.n), array_agg(y.data order by y.n)
      into results, v_seq, v_client, v_tbl, v_pk, v_op, v_chk, v_idt, v_data
      from (
        select x.n, x.seq, x.client,
               case when x.err is not null
                    then jsonb_build_object('seq', x.seq, 'status', 'error', 'code', x.err[1], 'message', x.err[2]) end as err,
               case when x.err is null then x.tbl end as tbl,
               case when x.err is null then x.pk end as pk,
               case when x.err is null then x.op end as op,
               -- force: the client-wins resend, written whatever the stored row's age.
               case when x.err is null then x.lc is not null and x.c -> 'force' is distinct from 'true'::jsonb end as chk,
               case when x.err is null then x.id #>> '{}' end as idt,
               -- id is authoritative for the key; the change's time is the row's.
               case when x.err is null then
                 case when x.op = 'delete' then jsonb_strip_nulls(jsonb_build_object(x.pk, x.id, 'last_changed', x.lc))
                      else x.data || jsonb_build_object(x.pk, x.id)
                           || case when x.lc is not null then jsonb_build_object('last_changed', x.lc) else '{}' end
                 end end as data
          from (
            select v.*,
                   case
                     when jsonb_typeof(v.c) is distinct from 'object' then
                       array['22023', 'record_sync_apply: each change must be a JSON object']
                     when v.pk is null then
                       array['42501', format('record_sync_apply: table %s is not listed in record_sync_tables', coalesce(quote_ident(v.tbl), 'null'))]
                     when v.op is null or v.op not in ('insert', 'update', 'upsert', 'delete') then
                       array['22023', format('record_sync_apply: op must be insert, update, upsert or delete, not %s', coalesce(v.op, 'null'))]
                     when jsonb_typeof(v.id) is null or jsonb_typeof(v.id) not in ('string', 'number') then
                       array['22023', 'record_sync_apply: id must be a string or a number']
                     when v.op <> 'delete' and jsonb_typeof(v.data) is distinct from 'object' then
                       array['22023', format('record_sync_apply: %s needs data, a JSON object', v.op)]
                     when v.lc is not null and (jsonb_typeof(v.lc) <> 'string'
                                                or lower(btrim(v.lc #>> '{}')) in ('infinity', '+infinity', '-infinity')) then
                       array['22007', 'record_sync_apply: last_changed must be a finite timestamp string (ISO 8601; without an offset it is UTC)']
                   end as err
              from (
                select u.n::int as n, u.c, u.c ->> 'table' as tbl, u.c ->> 'op' as op, u.c -> 'id' as id, u.c -> 'data' as data,
                       case when jsonb_typeof(u.c -> 'seq') = 'number' and (u.c ->> 'seq') ~ '^-?\d{1,18}$'
                            then (u.c ->> 'seq')::bigint end as seq,
                       case when jsonb_typeof(u.c -> 'client_id') = 'string' then u.c ->> 'client_id' end as client,
                       t.info ->> 'pk' as pk,
                       -- The change's last_changed, else the one in its data, is the change's time: what the
                       -- check compares and what the row gets. None when the table has no such column.
                       case when (t.info ->> 'lc')::boolean
                            then coalesce(nullif(u.c -> 'last_changed', 'null'::jsonb),
                                          nullif(case when jsonb_typeof(u.c -> 'data') = 'object' then u.c -> 'data' -> 'last_changed' end, 'null'::jsonb))
                       end as lc
                  from jsonb_array_elements(changes) with ordinality u(c, n)
                  left join lateral (select v_tables -> (u.c ->> 'table') as info) t on jsonb_typeof(u.c) = 'object'
                offset 0
              ) v
            -- offset 0 keeps each level a separate step, so err and lc are computed once per change rather than
            -- once per reference.
            offset 0
          ) x
      ) y;
  end if;

  -- Every record this batch writes is locked before anything is applied, in one order (the lock key's), so two
  -- batches of one user racing over the same records in different orders wait for each other, never deadlock.
  -- Advisory locks also cover rows that do not exist yet.
  perform pg_advisory_xact_lock(k)
     from (select distinct hashtextextended(length(u.t) || ':' || u.t || u.i, 0) as k
             from unnest(v_tbl, v_idt) u(t, i) where u.t is not null order by 1) l;

  -- The change feed (record_sync_feed.sql) marks each row this batch writes with its client, so that the client
  -- recognises its own writes. A batch of several clients (record-sync never sends one) marks nothing.
  perform set_config('record_sync.origin',
                     coalesce((select min(c) from unnest(v_client) c having count(distinct c) = 1), ''), true);

  -- Replays, looked up under the locks: a retry racing its own first attempt waits for it, then finds it here.
  if v_uid is not null then
    if low_water is not null then
      delete from public.record_sync_applied a
       where a.user_id = v_uid and a.client_id = any (array(select distinct c from unnest(v_client) c where c is not null))
         and a.seq < low_water;
    end if;
    -- The 30-day bound (see the table's comment), on about one call in 32: its range scan passes every row
    -- low_water deleted since the last vacuum, too dear for each call, and a month has no need of it.
    if random() < 1.0 / 32 then
      delete from public.record_sync_applied a where a.user_id = v_uid and a.applied_at < now() - interval '30 days';
    end if;

    -- One index probe per change (a join could pick a scan of every user's log).
    for g in
      select * from (
        select u.n::int as n,
               (select a.status from public.record_sync_applied a
                 where a.user_id = v_uid and a.client_id = u.client_id and a.seq = u.seq) as status
          from unnest(v_client, v_seq) with ordinality u(client_id, seq, n)
         where v_tbl[u.n] is not null and u.client_id is not null and u.seq is not null) x
       where x.status is not null
    loop
      results[g.n] := jsonb_build_object('seq', v_seq[g.n], 'status', g.status, 'replayed', true);
      if g.status = 'conflict' then
        -- The client never saw the first answer, so it still needs the row that won.
        execute format('select to_jsonb(t) from public.%1$I t where t.%2$I = (jsonb_populate_record(null::public.%1$I, $1)).%2$I',
                       v_tbl[g.n], v_pk[g.n])
          into v_stored using v_data[g.n];
        results[g.n] := results[g.n] || jsonb_build_object('row', v_stored);
      end if;
    end loop;
    -- The same (client_id, seq) twice in one batch: the first one counts.
    for g in
      select d.n from (select u.n::int as n, row_number() over (partition by u.client_id, u.seq order by u.n) as k
                         from unnest(v_client, v_seq) with ordinality u(client_id, seq, n)
                        where u.client_id is not null and u.seq is not null and v_tbl[u.n] is not null) d
       where d.k > 1 and results[d.n] is null
    loop
      results[g.n] := jsonb_build_object('seq', v_seq[g.n], 'status', 'error', 'code', '23505',
                                         'message', 'record_sync_apply: the same client_id and seq twice in one batch');
    end loop;
  end if;

  -- Set-based: one statement per table, op, column set and check, tables in the order the batch first names
  -- them (parents before children), groups within a table likewise.
  for g in
    select x.tbl, min(x.pk) as pk, x.op, x.chk, x.keys, count(distinct x.idt) < count(*) as dup,
           jsonb_agg(x.data order by x.n) as rows, array_agg(x.n order by x.n) as ns
      from (select u.tbl, u.pk, u.op, u.chk, array(select jsonb_object_keys(u.data) order by 1) as keys, u.n::int as n,
                   u.data, u.idt
              from unnest(v_tbl, v_pk, v_op, v_chk, v_data, v_idt) with ordinality u(tbl, pk, op, chk, data, idt, n)
             where u.tbl is not null and results[u.n] is null) x
     group by x.tbl, x.op, x.chk, x.keys
     order by min(min(x.n)) over (partition by x.tbl), min(x.n)
  loop
    v_sql := public.record_sync_group_sql(g.tbl, g.pk, g.op, g.chk, g.keys);
    -- Planning this statement costs more than running it on a batch, so each connection prepares each shape
    -- once (named by a hash of its text; a bounded number) and runs it by name. Prepared statements outlive a
    -- rolled-back transaction and are re-planned by PostgreSQL when a table they use changes.
    v_name := 'record_sync_' || left(encode(sha256(convert_to(v_sql, 'UTF8')), 'hex'), 40);
    v_prepared := exists (select 1 from pg_prepared_statements p where p.name = v_name);
    if not v_prepared and (select count(*) from pg_prepared_statements p where p.name like 'record\_sync\_%') < 100 then
      begin
        execute format('prepare %I(jsonb) as %s', v_name, v_sql);
        v_prepared := true;
      exception when others then
        -- A statement that cannot be prepared (a column that does not exist) fails each change alone, below.
        v_prepared := false;
      end;
    end if;

    r := null;
    v_ok := false;
    -- The same record twice in a group (never sent by record-sync) goes one by one: a statement touches a row
    -- once, and results map back by key.
    if not g.dup then
      begin
        if v_prepared then
          -- EXECUTE takes no bind parameters: the rows go in as a literal.
          execute format('execute %I(%L)', v_name, g.rows) into r;
        else
          execute v_sql into r using g.rows;
        end if;
        v_ok := true;
      exception when others then
        -- Which change failed is not known: retry one by one, each in its own savepoint, so it fails alone.
        v_ok := false;
      end;
    end if;
    -- The statement numbers the group's changes 1, 2, ...; g.ns maps them back to the batch.
    if v_ok then
      for e in select x from jsonb_array_elements(r) x loop
        v_k := g.ns[(e ->> 'n')::int];
        results[v_k] := jsonb_build_object('seq', v_seq[v_k]) || (e - 'n');
      end loop;
    else
      for v_j in 1 .. cardinality(g.ns) loop
        v_k := g.ns[v_j];
        begin
          if v_prepared then
            execute format('execute %I(%L)', v_name, jsonb_build_array(g.rows -> (v_j - 1))) into r;
          else
            execute v_sql into r using jsonb_build_array(g.rows -> (v_j - 1));
          end if;
          results[v_k] := jsonb_build_object('seq', v_seq[v_k]) || coalesce((r -> 0) - 'n', jsonb_build_object('status', 'applied'));
        exception when others then
          results[v_k] := jsonb_build_object('seq', v_seq[v_k], 'status', 'error', 'code', sqlstate, 'message', sqlerrm);
        end;
      end loop;
    end if;
  end loop;

  -- Record what was decided now (not replays, not errors) in one statement; it commits with the writes.
  if v_uid is not null then
    -- No conflict is possible: replays and repeats were answered above, under the records' locks.
    insert into public.record_sync_applied (user_id, client_id, seq, status)
    select v_uid, u.client_id, u.seq, coalesce(u.r ->> 'status', 'applied')
      from unnest(v_tbl, v_client, v_seq, results) u(tbl, client_id, seq, r)
     where u.tbl is not null and u.client_id is not null and u.seq is not null
       and (u.r is null or (u.r ->> 'status' in ('applied', 'conflict', 'missing') and not u.r ? 'replayed'));
  end if;

  -- A valid change with no result yet was written by its group's statement: applied.
  return coalesce((select jsonb_agg(coalesce(results[k], jsonb_build_object('seq', v_seq[k], 'status', 'applied')) order by k)
                     from generate_series(1, v_n) k), '[]'::jsonb);
end
$fn$;

revoke all on function public.record_sync_apply(jsonb, bigint) from public;
grant execute on function public.record_sync_apply(jsonb, bigint) to anon, authenticated, service_role;
