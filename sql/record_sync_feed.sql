-- record-sync: the change feed, the second direction. Install after record_sync.sql, as-is in a Supabase project
-- (SQL editor or a migration); every statement is idempotent. Then enable it per table:
--   select public.record_sync_feed_enable('sessions');             -- owner column defaults to user_id
--
-- Each enabled table gets three columns, set by a trigger and never by the client:
--   record_sync_version  bigint  grows with every write of the row (one sequence for all tables)
--   record_sync_xid      xid8    the writing transaction, so that readers never skip a row (see below)
--   record_sync_origin   text    the record-sync client that wrote it (record_sync_apply's client_id, or the
--                                 X-Record-Sync-Origin request header), or null
-- Deletes leave tombstones in record_sync_tombstones, pruned after record_sync_feed_state.retention (30 days).
--
-- POST /rest/v1/rpc/record_sync_changes {"since": <cursor>|null, "tables": [...]|null, "page_size": 500} answers
-- {"changes": [{"table","id","op","row","version","origin"}], "cursor", "more"} in cursor order, the caller's own
-- rows only. See sql/README.md for the contract and the reasoning.

create sequence if not exists public.record_sync_version_seq;

-- Which tables have the feed, and how to find a row's key and owner. Filled by record_sync_feed_enable.
create table if not exists public.record_sync_feed_tables (
  table_name text primary key,
  pk_column text not null,
  owner_column text not null,
  owner_type text not null
);
alter table public.record_sync_feed_tables enable row level security;
drop policy if exists record_sync_feed_tables_read on public.record_sync_feed_tables;
create policy record_sync_feed_tables_read on public.record_sync_feed_tables for select using (true);
grant select on public.record_sync_feed_tables to anon, authenticated, service_role;

-- One row per deleted record and owner it was deleted for. Written only by the feed's triggers (security
-- definer); read by its owner through record_sync_changes.
create table if not exists public.record_sync_tombstones (
  table_name text not null,
  id jsonb not null,
  owner text not null,
  version bigint not null,
  xid xid8 not null,
  origin text,
  deleted_at timestamptz not null default now(),
  primary key (table_name, owner, id)
);
create index if not exists record_sync_tombstones_feed on public.record_sync_tombstones (owner, xid, version);
create index if not exists record_sync_tombstones_deleted_at on public.record_sync_tombstones (deleted_at);
alter table public.record_sync_tombstones enable row level security;
drop policy if exists record_sync_tombstones_own on public.record_sync_tombstones;
create policy record_sync_tombstones_own on public.record_sync_tombstones for select
  using (owner = (select auth.uid())::text);
revoke all on public.record_sync_tombstones from anon, authenticated;
grant select on public.record_sync_tombstones to authenticated, service_role;

-- How long tombstones are kept, and the newest cursor position pruned so far: a reader whose cursor is older
-- may have missed a delete and is told to start over ("reset": true).
create table if not exists public.record_sync_feed_state (
  singleton boolean primary key default true check (singleton),
  retention interval not null default interval '30 days',
  pruned_xid xid8 not null default '0'::xid8,
  pruned_version bigint not null default 0
);
insert into public.record_sync_feed_state default values on conflict do nothing;
alter table public.record_sync_feed_state enable row level security;
drop policy if exists record_sync_feed_state_read on public.record_sync_feed_state;
create policy record_sync_feed_state_read on public.record_sync_feed_state for select using (true);
grant select on public.record_sync_feed_state to anon, authenticated, service_role;

-- Who writes, for the rows of this transaction: record_sync_apply's client_id (it sets record_sync.origin), else
-- the request's X-Record-Sync-Origin header (PostgREST puts the headers in request.headers: record-sync's rest
-- mode sends it), else nobody. The header is read once per transaction; the marker setting holds the transaction
-- it was read in, since a custom setting left by an earlier transaction on a pooled connection reads as ''.
create or replace function public.record_sync_feed_origin()
returns text
language plpgsql
set search_path = pg_catalog
as $fn$
declare
  v_origin text := nullif(current_setting('record_sync.origin', true), '');
  v_xid text;
begin
  if v_origin is not null then
    return v_origin;
  end if;
  v_xid := pg_current_xact_id()::text;
  if current_setting('record_sync.origin_checked', true) is distinct from v_xid then
    perform set_config('record_sync.origin_checked', v_xid, true);
    v_origin := nullif(left(nullif(current_setting('request.headers', true), '')::json ->> 'x-record-sync-origin', 200), '');
    perform set_config('record_sync.origin', coalesce(v_origin, ''), true);
  end if;
  return v_origin;
end
$fn$;
revoke all on function public.record_sync_feed_origin() from public;

-- BEFORE INSERT OR UPDATE, each row (arguments: the primary key and owner columns): the server's version, the
-- writing transaction and the origin. An update that changes nothing keeps the row's stamps, so a replayed or
-- echoed write makes no feed entry. A row that moves to another key or owner leaves a tombstone for the old one;
-- a row that appears where a tombstone is clears it. Row-level with static SQL (plans cached per table):
-- statement-level triggers with transition tables and dynamic SQL cost record_sync_apply a fifth of its
-- throughput (bench:pg), this about a tenth (sql/README.md).
create or replace function public.record_sync_feed_stamp()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, public
as $fn$
declare
  v_pk text := tg_argv[0];
  v_owner text := tg_argv[1];
  v_origin text := public.record_sync_feed_origin();
  v_old jsonb;
  v_new jsonb;
  v_arrives boolean := tg_op = 'INSERT';
begin
  if tg_op = 'UPDATE' then
    new.record_sync_version := old.record_sync_version;
    new.record_sync_xid := old.record_sync_xid;
    new.record_sync_origin := old.record_sync_origin;
    if new::text = old::text then
      return new;
    end if;
    v_old := to_jsonb(old);
    v_new := to_jsonb(new);
    if v_old -> v_pk is distinct from v_new -> v_pk or v_old -> v_owner is distinct from v_new -> v_owner then
      v_arrives := true;
      if v_old ->> v_owner is not null then
        insert into public.record_sync_tombstones as t (table_name, id, owner, version, xid, origin, deleted_at)
        values (tg_table_name, v_old -> v_pk, v_old ->> v_owner, nextval('public.record_sync_version_seq'),
                pg_current_xact_id(), v_origin, now())
        on conflict (table_name, owner, id) do update
          set version = excluded.version, xid = excluded.xid, origin = excluded.origin, deleted_at = excluded.deleted_at;
      end if;
    end if;
  end if;
  new.record_sync_version := nextval('public.record_sync_version_seq');
  new.record_sync_xid := pg_current_xact_id();
  new.record_sync_origin := v_origin;
  if v_arrives and exists (select 1 from public.record_sync_tombstones t where t.table_name = tg_table_name) then
    v_new := coalesce(v_new, to_jsonb(new));
    delete from public.record_sync_tombstones t
     where t.table_name = tg_table_name and t.owner = v_new ->> v_owner and t.id = v_new -> v_pk;
  end if;
  return new;
end
$fn$;
revoke all on function public.record_sync_feed_stamp() from public;

-- Deletes the tombstones older than the retention and moves the pruned horizon past them.
create or replace function public.record_sync_feed_prune()
returns integer
language plpgsql
security definer
set search_path = pg_catalog, public
as $fn$
declare
  v_n integer;
  v_xid xid8;
  v_version bigint;
begin
  with gone as (
    delete from public.record_sync_tombstones t
     where t.deleted_at < now() - (select s.retention from public.record_sync_feed_state s)
    returning t.xid, t.version
  )
  select count(*)::int, (array_agg(g.xid order by g.xid desc, g.version desc))[1],
         (array_agg(g.version order by g.xid desc, g.version desc))[1]
    into v_n, v_xid, v_version
    from gone g;
  if v_n > 0 then
    update public.record_sync_feed_state s
       set pruned_xid = v_xid, pruned_version = v_version
     where (s.pruned_xid, s.pruned_version) < (v_xid, v_version);
  end if;
  return v_n;
end
$fn$;
revoke all on function public.record_sync_feed_prune() from public;
grant execute on function public.record_sync_feed_prune() to service_role;

-- AFTER DELETE, each statement, set-based over the deleted rows: a tombstone per row for its owner; then the
-- tombstones past the retention, if any, are pruned.
create or replace function public.record_sync_feed_after()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, public
as $fn$
begin
  execute format(
    $q$
    insert into public.record_sync_tombstones as t (table_name, id, owner, version, xid, origin, deleted_at)
    select $1, to_jsonb(o.%1$I), o.%2$I::text, nextval('public.record_sync_version_seq'), pg_current_xact_id(), $2, now()
      from old_rows o
     where o.%2$I is not null
    on conflict (table_name, owner, id) do update
      set version = excluded.version, xid = excluded.xid, origin = excluded.origin, deleted_at = excluded.deleted_at
    $q$, tg_argv[0], tg_argv[1])
    using tg_table_name, public.record_sync_feed_origin();
  if exists (select 1 from public.record_sync_tombstones t
              where t.deleted_at < now() - (select s.retention from public.record_sync_feed_state s)) then
    perform public.record_sync_feed_prune();
  end if;
  return null;
end
$fn$;
revoke all on function public.record_sync_feed_after() from public;

-- Enables the feed on public.<p_table>: adds the three columns (existing rows get a version now), the index the
-- feed reads by, the triggers, and registers the table. The table needs a single-column primary key and an
-- owner column (the user id the row belongs to, compared with auth.uid()). Re-running it is harmless.
create or replace function public.record_sync_feed_enable(p_table text, p_owner_column text default 'user_id')
returns void
language plpgsql
set search_path = pg_catalog, public
as $fn$
declare
  v_rel regclass := to_regclass(format('public.%I', p_table));
  v_pk text;
  v_owner_type text;
begin
  if v_rel is null then
    raise exception using errcode = '42P01', message = format('record_sync_feed_enable: relation public.%I does not exist', p_table);
  end if;
  select min(a.attname) into v_pk
    from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
   where i.indrelid = v_rel and i.indisprimary and i.indnatts = 1;
  if v_pk is null then
    raise exception using errcode = '42P16',
      message = format('record_sync_feed_enable: public.%I needs a single-column primary key', p_table);
  end if;
  select format_type(a.atttypid, a.atttypmod) into v_owner_type
    from pg_attribute a where a.attrelid = v_rel and a.attname = p_owner_column and a.attnum > 0 and not a.attisdropped;
  if v_owner_type is null then
    raise exception using errcode = '42703',
      message = format('record_sync_feed_enable: public.%I has no owner column %I', p_table, p_owner_column);
  end if;

  execute format('alter table %s add column if not exists record_sync_version bigint,
                                add column if not exists record_sync_xid xid8,
                                add column if not exists record_sync_origin text', v_rel);
  execute format('update %s set record_sync_version = nextval(''public.record_sync_version_seq''),
                                record_sync_xid = pg_current_xact_id() where record_sync_version is null', v_rel);
  if exists (select 1 from pg_attribute a where a.attrelid = v_rel and a.attname = 'record_sync_version' and not a.attnotnull) then
    execute format('alter table %s alter column record_sync_version set not null, alter column record_sync_xid set not null', v_rel);
  end if;
  execute format('create index if not exists %I on %s (%I, record_sync_xid, record_sync_version)',
                 left(p_table, 40) || '_record_sync_feed', v_rel, p_owner_column);

  execute format('drop trigger if exists record_sync_stamp on %s', v_rel);
  execute format('create trigger record_sync_stamp before insert or update on %s
                    for each row execute function public.record_sync_feed_stamp(%L, %L)', v_rel, v_pk, p_owner_column);
  execute format('drop trigger if exists record_sync_feed_delete on %s', v_rel);
  execute format('create trigger record_sync_feed_delete after delete on %s referencing old table as old_rows
                    for each statement execute function public.record_sync_feed_after(%L, %L)', v_rel, v_pk, p_owner_column);

  insert into public.record_sync_feed_tables (table_name, pk_column, owner_column, owner_type)
  values (p_table, v_pk, p_owner_column, v_owner_type)
  on conflict (table_name) do update
    set pk_column = excluded.pk_column, owner_column = excluded.owner_column, owner_type = excluded.owner_type;
end
$fn$;
revoke all on function public.record_sync_feed_enable(text, text) from public;

-- Takes the triggers off and unregisters the table; the columns and tombstones stay.
create or replace function public.record_sync_feed_disable(p_table text)
returns void
language plpgsql
set search_path = pg_catalog, public
as $fn$
declare
  v_rel regclass := to_regclass(format('public.%I', p_table));
  t text;
begin
  if v_rel is not null then
    foreach t in array array['record_sync_stamp', 'record_sync_feed_delete'] loop
      execute format('drop trigger if exists %I on %s', t, v_rel);
    end loop;
  end if;
  delete from public.record_sync_feed_tables where table_name = p_table;
end
$fn$;
revoke all on function public.record_sync_feed_disable(text) from public;

-- The catch-up read. Cursor order is (writing transaction, version). A row is handed out only once every
-- transaction that could still commit below it has finished: rows whose transaction is at or above the
-- snapshot's xmin wait for a later call. So a cursor never passes a row that commits later (sql/README.md).
-- `restarted`: the reader is on a read that started over from null after a reset. That read pages the oldest rows
-- first, so its cursor is behind the pruned horizon for a while; checked against it, it would be reset again at
-- every page and never finish. It needs no pruned tombstone: it reads current rows, not history.
drop function if exists public.record_sync_changes(text, text[], integer);
create or replace function public.record_sync_changes(since text default null, tables text[] default null,
                                                      page_size integer default 500, restarted boolean default false)
returns jsonb
language plpgsql
stable
security invoker
set search_path = pg_catalog, public
as $fn$
declare
  max_page constant int := 1000;
  v_uid uuid := auth.uid();
  v_horizon xid8 := pg_snapshot_xmin(pg_current_snapshot());
  v_cx xid8 := '0'::xid8;
  v_cv bigint := 0;
  v_state public.record_sync_feed_state;
  v_unknown text;
  v_sql text;
  v_tables text[];
  v_rows jsonb;
  v_n int;
  v_last jsonb;
begin
  if page_size is null or page_size < 1 or page_size > max_page then
    raise exception using errcode = '22023',
      message = format('record_sync_changes: page_size must be from 1 to %s', max_page);
  end if;
  if since is not null and since <> '' then
    if since !~ '^[0-9]{1,20}-[0-9]{1,19}$' then
      raise exception using errcode = '22023',
        message = 'record_sync_changes: since must be null or a cursor from an earlier answer';
    end if;
    v_cx := split_part(since, '-', 1)::xid8;
    v_cv := split_part(since, '-', 2)::bigint;
  end if;
  if v_uid is null then
    raise exception using errcode = '42501', message = 'record_sync_changes: anonymous callers are refused: sign in';
  end if;
  select u.t into v_unknown
    from unnest(tables) u(t)
   where not exists (select 1 from public.record_sync_feed_tables f where f.table_name = u.t)
   limit 1;
  if tables is not null and (v_unknown is not null or array_position(tables, null) is not null) then
    raise exception using errcode = '22023',
      message = format('record_sync_changes: table %s has no change feed (record_sync_feed_enable)', coalesce(quote_ident(v_unknown), 'null'));
  end if;

  select * into v_state from public.record_sync_feed_state;
  if since is not null and since <> '' and not coalesce(restarted, false)
     and (v_cx, v_cv) < (v_state.pruned_xid, v_state.pruned_version) then
    -- Tombstones past this cursor were pruned: the reader may have missed deletes and must start over.
    return jsonb_build_object('changes', '[]'::jsonb, 'cursor', null, 'more', true, 'reset', true);
  end if;

  select array_agg(f.table_name order by f.table_name),
         string_agg(format(
           $q$(select %1$L as t, to_jsonb(x.%2$I) as id, 'upsert' as op, to_jsonb(x) as row,
                      x.record_sync_version as v, x.record_sync_xid as xid, x.record_sync_origin as origin
                 from public.%3$I x
                where x.%4$I = $1::%5$s and (x.record_sync_xid, x.record_sync_version) > ($2, $3)
                  and x.record_sync_xid < $4
                order by x.record_sync_xid, x.record_sync_version limit $5)$q$,
           f.table_name, f.pk_column, f.table_name, f.owner_column, f.owner_type), ' union all ' order by f.table_name)
    into v_tables, v_sql
    from public.record_sync_feed_tables f
   where tables is null or f.table_name = any(tables);
  if v_sql is null then
    return jsonb_build_object('changes', '[]'::jsonb, 'cursor', nullif(since, ''), 'more', false);
  end if;
  v_sql := v_sql || $q$ union all
    (select t.table_name, t.id, 'delete', null, t.version, t.xid, t.origin
       from public.record_sync_tombstones t
      where t.owner = $1 and t.table_name = any($6) and (t.xid, t.version) > ($2, $3) and t.xid < $4
      order by t.xid, t.version limit $5)$q$;

  execute format(
    $q$select coalesce(jsonb_agg(jsonb_build_object('table', c.t, 'id', c.id, 'op', c.op, 'row', c.row, 'version', c.v,
                                                     'origin', c.origin, 'xid', c.xid::text) order by c.xid, c.v), '[]'),
              count(*)::int
         from (select * from (%s) u order by u.xid, u.v limit $5) c$q$, v_sql)
    into v_rows, v_n
    using v_uid::text, v_cx, v_cv, v_horizon, page_size + 1, v_tables;

  if v_n = 0 then
    -- A first read that finds nothing answers the pruned horizon as its cursor: a reader without one could not
    -- be told to start over, and would keep a row it then heard of by realtime after its tombstone was pruned.
    return jsonb_build_object('changes', '[]'::jsonb, 'more', false, 'cursor',
      coalesce(nullif(since, ''), v_state.pruned_xid::text || '-' || v_state.pruned_version::text));
  end if;
  if v_n > page_size then
    v_rows := v_rows - page_size;
  end if;
  v_last := v_rows -> -1;
  select coalesce(jsonb_agg(e - 'xid'), '[]') into v_rows from jsonb_array_elements(v_rows) e;
  return jsonb_build_object('changes', v_rows,
                            'cursor', (v_last ->> 'xid') || '-' || (v_last ->> 'version'),
                            'more', v_n > page_size);
end
$fn$;
revoke all on function public.record_sync_changes(text, text[], integer, boolean) from public;
grant execute on function public.record_sync_changes(text, text[], integer, boolean) to anon, authenticated, service_role;
