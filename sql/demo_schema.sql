-- The demo app's schema: a training-plan editor, the application record-sync was designed for. Install after
-- record_sync.sql and record_sync_feed.sql (it registers its tables with both). Idempotent.
--
-- Every table has a text primary key (ids are made on the client, so offline edits need no server round trip),
-- the owner's user_id (filled from the caller's JWT), and last_changed for last-writer-wins conflict checks.

create table if not exists public.training_models (
  id text primary key,
  user_id uuid not null default auth.uid(),
  last_changed timestamptz not null default now(),
  name text not null,
  description text,
  goal text,
  created_at timestamptz not null default now()
);

create table if not exists public.training_plans (
  id text primary key,
  user_id uuid not null default auth.uid(),
  last_changed timestamptz not null default now(),
  model_id text references public.training_models (id) on delete set null,
  name text not null,
  description text,
  weeks integer not null default 4 check (weeks between 1 and 104),
  start_date date,
  is_active boolean not null default false,
  created_at timestamptz not null default now()
);

create table if not exists public.sessions (
  id text primary key,
  user_id uuid not null default auth.uid(),
  last_changed timestamptz not null default now(),
  plan_id text not null references public.training_plans (id) on delete cascade,
  name text not null,
  week integer check (week >= 1),
  day_of_week integer check (day_of_week between 0 and 6),
  position integer not null default 0,
  notes text
);

create table if not exists public.training_blocks (
  id text primary key,
  user_id uuid not null default auth.uid(),
  last_changed timestamptz not null default now(),
  session_id text not null references public.sessions (id) on delete cascade,
  name text,
  block_type text not null default 'main' check (block_type in ('warmup', 'main', 'superset', 'circuit', 'cooldown')),
  position integer not null default 0,
  rounds integer check (rounds >= 1),
  notes text
);

create table if not exists public.exercises (
  id text primary key,
  user_id uuid not null default auth.uid(),
  last_changed timestamptz not null default now(),
  name text not null,
  muscle_group text,
  equipment text,
  instructions text,
  video_url text,
  tags text[] not null default '{}'
);

create table if not exists public.selected_exercises (
  id text primary key,
  user_id uuid not null default auth.uid(),
  last_changed timestamptz not null default now(),
  block_id text not null references public.training_blocks (id) on delete cascade,
  exercise_id text not null references public.exercises (id),
  name text,
  position integer not null default 0,
  -- [{"reps": 8, "weight": 60, "rpe": 8}, ...]: edited as a whole, never queried by element.
  series jsonb not null default '[]',
  rest_seconds integer check (rest_seconds >= 0),
  notes text
);

create table if not exists public.progressions (
  id text primary key,
  user_id uuid not null default auth.uid(),
  last_changed timestamptz not null default now(),
  selected_exercise_id text not null references public.selected_exercises (id) on delete cascade,
  week integer not null check (week >= 1),
  series jsonb not null default '[]',
  notes text
);

create table if not exists public.comments (
  id text primary key,
  user_id uuid not null default auth.uid(),
  last_changed timestamptz not null default now(),
  plan_id text not null references public.training_plans (id) on delete cascade,
  body text not null,
  created_at timestamptz not null default now()
);

create table if not exists public.user_preferences (
  id text primary key,
  user_id uuid not null default auth.uid(),
  last_changed timestamptz not null default now(),
  units text not null default 'kg' check (units in ('kg', 'lb')),
  theme text not null default 'system',
  week_starts_on integer not null default 1 check (week_starts_on between 0 and 6),
  settings jsonb not null default '{}'
);

create index if not exists training_plans_model_id on public.training_plans (model_id);
create index if not exists sessions_plan_id on public.sessions (plan_id);
create index if not exists training_blocks_session_id on public.training_blocks (session_id);
create index if not exists selected_exercises_block_id on public.selected_exercises (block_id);
create index if not exists selected_exercises_exercise_id on public.selected_exercises (exercise_id);
create index if not exists progressions_selected_exercise_id on public.progressions (selected_exercise_id);
create index if not exists comments_plan_id on public.comments (plan_id);

-- The same owner-only policy on all nine: a user reads and writes only rows whose user_id is theirs; anon has no
-- policy, so it sees and writes nothing. `(select auth.uid())` is evaluated once per statement, not per row.
do $$
declare
  t text;
begin
  foreach t in array array['training_models', 'training_plans', 'sessions', 'training_blocks', 'exercises',
                           'selected_exercises', 'progressions', 'comments', 'user_preferences'] loop
    execute format('alter table public.%I enable row level security', t);
    execute format('drop policy if exists %I on public.%I', t || '_owner', t);
    execute format('create policy %I on public.%I for all to authenticated
                      using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()))', t || '_owner', t);
    execute format('grant select, insert, update, delete on public.%I to anon, authenticated', t);
    execute format('grant all on public.%I to service_role', t);
    insert into public.record_sync_tables (table_name, pk_column) values (t, 'id') on conflict (table_name) do nothing;
    -- The change feed (record_sync_feed.sql): versions, tombstones, catch-up under the same owner rule.
    perform public.record_sync_feed_enable(t, 'user_id');
  end loop;
end $$;
