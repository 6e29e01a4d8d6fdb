// The editing trace's baselines and checks, computed from the trace itself: the rows the server should hold at
// the end, what table-level sync and naive per-change requests would send, which records a request carries, and
// deadline misses.
import { readFileSync } from "node:fs";
import { join } from "node:path";

export const TABLES = ["training_models", "training_plans", "sessions", "training_blocks", "exercises", "selected_exercises", "progressions", "comments", "user_preferences"];

export function loadTrace(root) {
  return JSON.parse(readFileSync(join(root, "bench/traces/editing.json"), "utf8"));
}

const changesOf = (trace) => trace.actions.flatMap((a) => a.changes);

/** Applies one change to a model of the server's tables (Map per table, id -> row). */
function apply(model, c) {
  const rows = (model[c.table] ??= new Map());
  if (c.op === "delete") rows.delete(c.id);
  else if (c.op === "update") {
    if (rows.has(c.id)) rows.set(c.id, { ...rows.get(c.id), ...c.data });
  } else rows.set(c.id, { ...c.data });
}

/** What the server holds after the whole trace, if every change is applied in order. */
export function finalModel(trace) {
  const model = {};
  for (const c of changesOf(trace)) apply(model, c);
  return model;
}

/**
 * Table-level sync: after every user action, the app re-sends all nine tables' rows (one bulk upsert per table).
 * Naive: one request per change, one row each.
 */
export function baselines(trace) {
  const model = {};
  let tableRequests = 0;
  let tableRows = 0;
  for (const action of trace.actions) {
    for (const c of action.changes) apply(model, c);
    tableRequests += TABLES.length;
    tableRows += Object.values(model).reduce((n, rows) => n + rows.size, 0);
  }
  const changes = changesOf(trace).length;
  return { actions: trace.actions.length, changes, table: { requests: tableRequests, rows: tableRows }, naive: { requests: changes, rows: changes } };
}

const unquote = (v) => v.replace(/^"(.*)"$/, "$1");

/** The records (`table\0id`) a write request carries, in rpc or rest mode; none for reads. */
export function keysOf(send) {
  if (send.method === "GET") return [];
  const url = new URL(send.url);
  const path = decodeURIComponent(url.pathname.replace(/^\/rest\/v1\//, ""));
  const body = send.body ? JSON.parse(send.body) : null;
  if (path.startsWith("rpc/")) return (body?.changes ?? []).map((c) => `${c.table}\0${c.id}`);
  const filter = url.searchParams.get("id");
  if (filter?.startsWith("eq.")) return [`${path}\0${unquote(filter.slice(3))}`];
  if (filter?.startsWith("in.(")) return filter.slice(4, -1).split(",").map((v) => `${path}\0${unquote(v)}`);
  return (Array.isArray(body) ? body : body ? [body] : []).map((row) => `${path}\0${row.id}`);
}

/**
 * For each queued change, the first write request after it that carries its record: late if it left after the
 * change's deadline. Changes that no request carries were cancelled by a later change (an insert then a delete).
 */
export function deadlines(trace, replay) {
  const changes = changesOf(trace);
  const keys = replay.sends.map(keysOf);
  let misses = 0;
  let maxLate = 0;
  let cancelled = 0;
  changes.forEach((c, i) => {
    const { after, at } = replay.queued[i];
    const key = `${c.table}\0${c.id}`;
    let s = after;
    while (s < keys.length && !keys[s].includes(key)) s++;
    if (s === keys.length) {
      cancelled++;
      return;
    }
    const late = replay.sends[s].at - (at + trace.intervalsMs[c.priority]);
    if (late > 0) {
      misses++;
      maxLate = Math.max(maxLate, late);
    }
  });
  return { misses, maxLate, cancelled };
}

/** Differences between the server's rows and the model's (ids, and every column the trace wrote). */
export function compare(model, serverRows) {
  const problems = [];
  for (const table of TABLES) {
    const want = model[table] ?? new Map();
    const have = new Map((serverRows[table] ?? []).map((r) => [r.id, r]));
    for (const id of want.keys()) if (!have.has(id)) problems.push(`${table} ${id}: missing on the server`);
    for (const id of have.keys()) if (!want.has(id)) problems.push(`${table} ${id}: on the server, deleted in the trace`);
    for (const [id, row] of want) {
      const got = have.get(id);
      if (!got) continue;
      for (const [column, value] of Object.entries(row)) {
        const same = column === "last_changed" || column === "created_at" ? Date.parse(got[column]) === Date.parse(value) : JSON.stringify(got[column]) === JSON.stringify(value);
        if (!same) problems.push(`${table} ${id}.${column}: server ${JSON.stringify(got[column])}, trace ${JSON.stringify(value)}`);
      }
    }
  }
  return problems;
}
