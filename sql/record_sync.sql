-- record-sync: the server side of `rpc` mode. Install as-is in a Supabase project (SQL editor or a migration);
-- every statement is idempotent, so re-running it upgrades in place. Needs Supabase's roles and auth.uid().
--
-- POST /rest/v1/rpc/record_sync_apply {"changes": [...], "low_water": n} applies a batch of record changes in
-- order, each in its own savepoint, as the calling user (row-level security applies), exactly once per
-- (client_id, seq), and answers one result per change. See sql/README.md for the contract.

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

-- What has been applied, so that a batch retried after its response was lost is answered from here instead of
-- being applied twice. Kept bounded two ways: a client's low_water (every seq below it will never be sent again)
-- deletes that client's older rows, and rows older than 30 days are pruned on every call, long after any client
-- could still be retrying them.
-- user_id ties a row to the user who wrote it: with row-level security a user only sees and writes their own
-- rows, so nobody can read another user's sync history. A row planted under another client's (client_id, seq)
-- stays invisible to that client, whose own record then fails with 23505 and its change is reported as an error,
-- never silently taken for a replay; client ids are random per device in any case.
create table if not exists public.record_sync_applied (
  client_id text not null,
  seq bigint not null,
  status text not null,
  user_id uuid default auth.uid(),
  applied_at timestamptz not null default now(),
  primary key (client_id, seq)
);
-- Re-created so that an installed copy learns each new status.
alter table public.record_sync_applied drop constraint if exists record_sync_applied_status_check;
alter table public.record_sync_applied
  add constraint record_sync_applied_status_check check (status in ('applied', 'conflict', 'missing'));
create index if not exists record_sync_applied_applied_at on public.record_sync_applied (applied_at);

alter table public.record_sync_applied enable row level security;
drop policy if exists record_sync_applied_own on public.record_sync_applied;
create policy record_sync_applied_own on public.record_sync_applied for all
  using (user_id is not distinct from (select auth.uid()))
  with check (user_id is not distinct from (select auth.uid()));
grant select, insert, delete on public.record_sync_applied to anon, authenticated, service_role;

create or replace function public.record_sync_apply(changes jsonb, low_water bigint default null)
returns jsonb
language plpgsql
security invoker
set search_path = pg_catalog, public
as $fn$
declare
  change jsonb;
  results jsonb := '[]'::jsonb;
  v_client text;
  v_seq bigint;
  v_op text;
  v_table text;
  v_pk text;
  v_rel text;
  v_id jsonb;
  v_data jsonb;
  v_key jsonb;
  v_has_lc boolean;
  v_check_lc boolean;
  v_stored jsonb;
  v_newer boolean;
  v_prev text;
  v_cols text;
  v_vals text;
  v_sets text;
  v_n bigint;
  v_result jsonb;
begin
  if changes is null or jsonb_typeof(changes) <> 'array' then
    raise exception using errcode = '22023', message = 'record_sync_apply: changes must be a JSON array';
  end if;

  if low_water is not null then
    delete from public.record_sync_applied a
     where a.seq < low_water
       and a.client_id in (select distinct e ->> 'client_id' from jsonb_array_elements(changes) e);
  end if;
  -- The 30-day bound: see the table's comment.
  delete from public.record_sync_applied a where a.applied_at < now() - interval '30 days';

  for change in select e.value from jsonb_array_elements(changes) with ordinality e(value, n) order by e.n loop
    v_seq := null;
    v_result := null;
    -- One savepoint per change: an error undoes this change and its bookkeeping only.
    begin
      if jsonb_typeof(change) <> 'object' then
        raise exception using errcode = '22023', message = 'record_sync_apply: each change must be a JSON object';
      end if;
      v_seq := (change ->> 'seq')::bigint;
      v_client := change ->> 'client_id';
      v_table := change ->> 'table';
      v_op := change ->> 'op';
      v_id := change -> 'id';

      select t.pk_column into v_pk from public.record_sync_tables t where t.table_name = v_table;
      if not found then
        raise exception using errcode = '42501',
          message = format('record_sync_apply: table %s is not listed in record_sync_tables', coalesce(quote_ident(v_table), 'null'));
      end if;
      v_rel := format('public.%I', v_table);
      if to_regclass(v_rel) is null then
        raise exception using errcode = '42P01', message = format('relation %s does not exist', v_rel);
      end if;
      if v_id is null or jsonb_typeof(v_id) not in ('string', 'number') then
        raise exception using errcode = '22023', message = 'record_sync_apply: id must be a string or a number';
      end if;
      v_key := jsonb_build_object(v_pk, v_id);

      if v_client is not null and v_seq is not null then
        select a.status into v_prev from public.record_sync_applied a where a.client_id = v_client and a.seq = v_seq;
        if found then
          v_result := jsonb_build_object('seq', v_seq, 'status', v_prev, 'replayed', true);
          if v_prev = 'conflict' then
            -- The client never saw the first answer, so it still needs the row that won.
            execute format('select to_jsonb(t) from %1$s t where t.%2$I = (jsonb_populate_record(null::%1$s, $1)).%2$I',
                           v_rel, v_pk) into v_stored using v_key;
            v_result := v_result || jsonb_build_object('row', v_stored);
          end if;
          results := results || jsonb_build_array(v_result);
          continue;
        end if;
      end if;

      if v_op is null or v_op not in ('insert', 'update', 'upsert', 'delete') then
        raise exception using errcode = '22023',
          message = format('record_sync_apply: op must be insert, update, upsert or delete, not %s', coalesce(v_op, 'null'));
      end if;

      v_has_lc := coalesce(jsonb_typeof(change -> 'last_changed'), 'null') <> 'null'
        and exists (select 1 from pg_attribute
                     where attrelid = v_rel::regclass and attname = 'last_changed' and attnum > 0 and not attisdropped);
      -- force: the client-wins resend, written whatever the stored row's age.
      v_check_lc := v_has_lc and change -> 'force' is distinct from 'true'::jsonb;
      if v_check_lc then
        v_key := v_key || jsonb_build_object('last_changed', change -> 'last_changed');
      end if;

      if v_op <> 'delete' then
        v_data := change -> 'data';
        if v_data is null or jsonb_typeof(v_data) <> 'object' then
          raise exception using errcode = '22023', message = format('record_sync_apply: %s needs data, a JSON object', v_op);
        end if;
        -- id is authoritative for the key; the change's timestamp becomes the row's when data does not carry one.
        v_data := v_data || jsonb_build_object(v_pk, v_id);
        if v_has_lc and not v_data ? 'last_changed' then
          v_data := v_data || jsonb_build_object('last_changed', change -> 'last_changed');
        end if;
        select string_agg(format('%I', k), ', '), string_agg(format('r.%I', k), ', '),
               string_agg(format('%1$I = excluded.%1$I', k), ', ')
          into v_cols, v_vals, v_sets
          from jsonb_object_keys(v_data) k;
      end if;

      v_stored := null;
      v_newer := false;
      if v_check_lc and v_op <> 'insert' then
        -- Lock first, so no other writer can slip in between this comparison and the write.
        execute format(
          'select to_jsonb(t), t.last_changed > (jsonb_populate_record(null::%1$s, $1)).last_changed
             from %1$s t where t.%2$I = (jsonb_populate_record(null::%1$s, $1)).%2$I for update',
          v_rel, v_pk) into v_stored, v_newer using v_key;
      end if;

      if coalesce(v_newer, false) then
        v_result := jsonb_build_object('seq', v_seq, 'status', 'conflict', 'row', v_stored);
      else
        if v_op = 'insert' then
          execute format('insert into %1$s (%2$s) select %3$s from jsonb_populate_record(null::%1$s, $1) r',
                         v_rel, v_cols, v_vals) using v_data;
        elsif v_op = 'update' then
          execute format('update %1$s t set (%2$s) = (select %3$s from jsonb_populate_record(null::%1$s, $1) r)
                           where t.%4$I = (jsonb_populate_record(null::%1$s, $1)).%4$I',
                         v_rel, v_cols, v_vals, v_pk) using v_data;
          get diagnostics v_n = row_count;
          if v_n = 0 then
            -- Absent, or hidden by row-level security: nothing was written, and the client must hear so.
            v_result := jsonb_build_object('seq', v_seq, 'status', 'missing');
          end if;
        elsif v_op = 'upsert' then
          -- The WHERE guards the one race the lock cannot: a newer row inserted after we found none.
          execute format('insert into %1$s as t (%2$s) select %3$s from jsonb_populate_record(null::%1$s, $1) r
                           on conflict (%4$I) do update set %5$s %6$s',
                         v_rel, v_cols, v_vals, v_pk, v_sets,
                         case when v_check_lc
                              then format('where t.last_changed <= (jsonb_populate_record(null::%s, $2)).last_changed', v_rel)
                              else '' end)
            using v_data, v_key;
          get diagnostics v_n = row_count;
          if v_n = 0 then
            execute format('select to_jsonb(t) from %1$s t where t.%2$I = (jsonb_populate_record(null::%1$s, $1)).%2$I',
                           v_rel, v_pk) into v_stored using v_key;
            v_result := case when v_stored is null then jsonb_build_object('seq', v_seq, 'status', 'missing')
                             else jsonb_build_object('seq', v_seq, 'status', 'conflict', 'row', v_stored) end;
          end if;
        else
          execute format('delete from %1$s t where t.%2$I = (jsonb_populate_record(null::%1$s, $1)).%2$I',
                         v_rel, v_pk) using v_key;
        end if;
        v_result := coalesce(v_result, jsonb_build_object('seq', v_seq, 'status', 'applied'));
      end if;

      if v_client is not null and v_seq is not null then
        insert into public.record_sync_applied (client_id, seq, status) values (v_client, v_seq, v_result ->> 'status');
      end if;
      results := results || jsonb_build_array(v_result);
    exception when others then
      results := results || jsonb_build_array(
        jsonb_build_object('seq', v_seq, 'status', 'error', 'code', sqlstate, 'message', sqlerrm));
    end;
  end loop;
  return results;
end
$fn$;

revoke all on function public.record_sync_apply(jsonb, bigint) from public;
grant execute on function public.record_sync_apply(jsonb, bigint) to anon, authenticated, service_role;
