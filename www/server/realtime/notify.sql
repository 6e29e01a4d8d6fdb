-- The dev server's realtime source, loaded after sql/: every table with the change feed NOTIFYs its committed row
-- changes on the channel record_sync_changes, and the server's realtime endpoint fans them out. Not part of a
-- Supabase install: there, Supabase Realtime reads the WAL instead, and a NOTIFY in every write transaction would
-- serialise their commits on the notification queue's lock for nothing. Idempotent.
--
-- Payload (well under NOTIFY's 8000 bytes): {"table","op":"INSERT"|"UPDATE"|"DELETE","id","owner","version"}.
-- The row itself is read afterwards, as each subscriber, so row-level security decides who gets it.

create or replace function public.record_sync_notify()
returns trigger
language plpgsql
set search_path = pg_catalog, public
as $fn$
declare
  v_pk text := tg_argv[0];
  v_owner text := tg_argv[1];
  v_row jsonb;
begin
  if tg_op = 'DELETE' then
    v_row := to_jsonb(old);
  else
    -- An update that changed nothing kept its version (record_sync_feed_stamp): nothing to tell.
    if tg_op = 'UPDATE' and new.record_sync_version = old.record_sync_version then
      return null;
    end if;
    v_row := to_jsonb(new);
  end if;
  perform pg_notify('record_sync_changes', jsonb_build_object(
    'table', tg_table_name, 'op', tg_op, 'id', v_row -> v_pk, 'owner', v_row ->> v_owner,
    'version', case when tg_op = 'DELETE' then null else v_row -> 'record_sync_version' end)::text);
  return null;
end
$fn$;

create or replace function public.record_sync_notify_attach(p_table text, p_pk text, p_owner text)
returns void
language plpgsql
set search_path = pg_catalog, public
as $fn$
begin
  execute format('drop trigger if exists record_sync_notify on public.%I', p_table);
  execute format('create trigger record_sync_notify after insert or update or delete on public.%I
                    for each row execute function public.record_sync_notify(%L, %L)', p_table, p_pk, p_owner);
end
$fn$;

revoke all on function public.record_sync_notify_attach(text, text, text) from public;

-- Tables enabled later (record_sync_feed_enable) notify too.
create or replace function public.record_sync_notify_on_enable()
returns trigger
language plpgsql
set search_path = pg_catalog, public
as $fn$
begin
  perform public.record_sync_notify_attach(new.table_name, new.pk_column, new.owner_column);
  return null;
end
$fn$;
drop trigger if exists record_sync_notify_on_enable on public.record_sync_feed_tables;
create trigger record_sync_notify_on_enable after insert or update on public.record_sync_feed_tables
  for each row execute function public.record_sync_notify_on_enable();

select public.record_sync_notify_attach(f.table_name, f.pk_column, f.owner_column)
  from public.record_sync_feed_tables f;
