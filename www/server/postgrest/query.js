// Turns a parsed request into SQL. Every identifier has been checked against the schema cache and is quoted;
// every value is a bind parameter. Results are built as JSON by PostgreSQL itself, as PostgREST does, so values
// keep PostgreSQL's JSON rendering (timestamps, numerics) whichever driver carries them.
import { ApiError, columnNotFound, bodyError } from "../errors.js";
import { sqlOperator } from "./parse.js";

/** @typedef {import("../db/schema.js").Table} Table */

export const ident = (name) => `"${String(name).replaceAll('"', '""')}"`;

class Params {
  list = [];
  add(v) {
    this.list.push(v);
    return `$${this.list.length}`;
  }
}

/** @param {Table} table */
function column(table, name) {
  if (!table.columns.has(name)) throw columnNotFound(table.name, name);
  return `${ident(table.name)}.${ident(name)}`;
}

/** @param {Table} table @param {import("./parse.js").SelectItem[]} select */
function selectList(table, select) {
  return select
    .map((s) => {
      if (s.column === "*") return "*";
      if (!table.columns.has(s.column)) throw columnNotFound(table.name, s.column);
      return s.alias === undefined ? ident(s.column) : `${ident(s.column)} as ${ident(s.alias)}`;
    })
    .join(", ");
}

/** @param {Table} table @param {import("./parse.js").Filter[]} filters @param {Params} p */
function where(table, filters, p) {
  if (filters.length === 0) return "";
  return ` where ${filters.map((f) => condition(table, f, p)).join(" and ")}`;
}

/** One filter, or a logic tree of them. @param {Table} table @param {Params} p */
function condition(table, f, p) {
  if (f.op === "tree") {
    const inner = f.children.map((c) => condition(table, c, p)).join(` ${f.logic} `);
    return f.negate ? `not (${inner})` : `(${inner})`;
  }
  const col = column(table, f.column);
  let cond;
  if (f.op === "in") cond = f.values.length ? `${col} in (${f.values.map((v) => p.add(v)).join(", ")})` : "false";
  else if (f.op === "is") cond = `${col} is ${f.value}`;
  else if (f.op === "like" || f.op === "ilike") cond = `${col} ${f.op} ${p.add(f.value.replaceAll("*", "%"))}`;
  else cond = `${col} ${sqlOperator(f.op)} ${p.add(f.value)}`;
  return f.negate ? `not (${cond})` : cond;
}

/** @param {Table} table @param {import("./parse.js").OrderTerm[]} order */
function orderBy(table, order) {
  if (order.length === 0) return "";
  const terms = order.map((o) => {
    let t = column(table, o.column);
    if (o.dir) t += ` ${o.dir}`;
    if (o.nulls) t += ` nulls ${o.nulls}`;
    return t;
  });
  return ` order by ${terms.join(", ")}`;
}

const rel = (table) => `public.${ident(table.name)}`;

// The body comes back as text (json_agg ... ::text), the row count as an int, whatever the driver.
const wrapJson = (inner) =>
  `select coalesce(json_agg(_r), '[]')::text as body, (json_agg(_r) -> 0)::text as one, count(*)::int as n
     from (${inner}) _r`;

/**
 * GET: rows as a JSON array.
 * @param {Table} table
 * @param {ReturnType<import("./parse.js").parseQuery>} q
 */
export function selectSql(table, q) {
  const p = new Params();
  let sql = `select ${selectList(table, q.select)} from ${rel(table)}${where(table, q.filters, p)}${orderBy(table, q.order)}`;
  if (q.limit !== undefined) sql += ` limit ${q.limit}`;
  if (q.offset !== undefined) sql += ` offset ${q.offset}`;
  return { sql: wrapJson(sql), params: p.list };
}

/** The exact count that `Prefer: count=exact` asks for, over the same filters. */
export function countSql(table, q) {
  const p = new Params();
  return { sql: `select count(*)::int as n from ${rel(table)}${where(table, q.filters, p)}`, params: p.list };
}

/** Wraps a write so that it returns its rows as JSON (return=representation), or runs it bare (minimal). */
function returning(table, sql, q, representation) {
  if (!representation) return sql;
  return `with pgrst_source as (${sql} returning ${ident(table.name)}.*)
          ${wrapJson(`select ${selectList(table, q.select)} from pgrst_source`)}`;
}

/**
 * POST: insert or upsert of one object or an array of objects.
 * @param {Table} table
 * @param {ReturnType<import("./parse.js").parseQuery>} q
 * @param {ReturnType<import("./parse.js").parsePrefer>} prefer
 * @param {unknown} body
 */
export function insertSql(table, q, prefer, body) {
  const rows = Array.isArray(body) ? body : [body];
  if (!rows.every((r) => r !== null && typeof r === "object" && !Array.isArray(r))) {
    throw bodyError("The request body must be a JSON object or an array of JSON objects");
  }
  let cols = q.columns;
  if (!cols) {
    cols = rows.length ? Object.keys(rows[0]) : [];
    const key = JSON.stringify([...cols].sort());
    if (rows.some((r) => JSON.stringify(Object.keys(r).sort()) !== key)) throw bodyError("All object keys must match");
  }
  for (const c of cols) {
    if (!table.columns.has(c)) {
      throw new ApiError(400, "PGRST204", `Could not find the '${c}' column of '${table.name}' in the schema cache`);
    }
  }
  // Keys outside `columns` are ignored, as PostgREST does; dropping them here keeps `?` below meaning "given".
  const picked = rows.map((r) => Object.fromEntries(cols.filter((c) => Object.hasOwn(r, c)).map((c) => [c, r[c]])));
  const p = new Params();
  const bodyParam = p.add(JSON.stringify(picked));
  const values = cols.map((c) => {
    const given = `_r.${ident(c)}`;
    if (prefer.missing !== "default") return given;
    // The default's SQL text comes from the catalog (pg_get_expr), never from the request.
    const dflt = table.columns.get(c).default ?? "null";
    return `case when _e.j ? ${p.add(c)} then ${given} else ${dflt} end`;
  });
  let sql = `insert into ${rel(table)} as ${ident(table.name)} (${cols.map(ident).join(", ")})
             select ${values.join(", ")}
               from jsonb_array_elements(${bodyParam}::jsonb) with ordinality as _e(j, n),
                    lateral jsonb_populate_record(null::${rel(table)}, _e.j) as _r
              order by _e.n`;
  if (cols.length === 0) {
    // `{}` inserts a row of defaults; PostgreSQL has no empty column list, so say so.
    sql = `insert into ${rel(table)} as ${ident(table.name)} select from jsonb_array_elements(${bodyParam}::jsonb)`;
  }
  if (prefer.resolution) {
    const target = q.onConflict ?? table.pk;
    if (target.length === 0) {
      throw new ApiError(400, "42P10", "there is no unique or exclusion constraint matching the ON CONFLICT specification");
    }
    for (const c of target) if (!table.columns.has(c)) throw columnNotFound(table.name, c);
    const sets = cols.map((c) => `${ident(c)} = excluded.${ident(c)}`);
    sql +=
      prefer.resolution === "ignore-duplicates" || sets.length === 0
        ? ` on conflict (${target.map(ident).join(", ")}) do nothing`
        : ` on conflict (${target.map(ident).join(", ")}) do update set ${sets.join(", ")}`;
  }
  return { sql: returning(table, sql, q, prefer.return === "representation"), params: p.list };
}

/**
 * PATCH: the body's columns set on every row the filters match.
 * @param {Table} table
 */
export function updateSql(table, q, prefer, body) {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw bodyError("The request body must be a JSON object");
  }
  const cols = Object.keys(body);
  for (const c of cols) {
    if (!table.columns.has(c)) {
      throw new ApiError(400, "PGRST204", `Could not find the '${c}' column of '${table.name}' in the schema cache`);
    }
  }
  if (cols.length === 0) return null;
  const p = new Params();
  const bodyParam = p.add(JSON.stringify(body));
  const sets = cols.map((c) => `${ident(c)} = _r.${ident(c)}`);
  const sql = `update ${rel(table)} as ${ident(table.name)} set ${sets.join(", ")}
                 from jsonb_populate_record(null::${rel(table)}, ${bodyParam}::jsonb) as _r${where(table, q.filters, p)}`;
  return { sql: returning(table, sql, q, prefer.return === "representation"), params: p.list };
}

/** DELETE: every row the filters match. @param {Table} table */
export function deleteSql(table, q, prefer) {
  const p = new Params();
  const sql = `delete from ${rel(table)} as ${ident(table.name)}${where(table, q.filters, p)}`;
  return { sql: returning(table, sql, q, prefer.return === "representation"), params: p.list };
}

/**
 * POST /rpc/fn: named arguments from a JSON object, converted by json_to_record to the declared types (arrays,
 * jsonb, numbers alike), as PostgREST does.
 * @param {import("../db/schema.js").Fn} fn
 * @param {Record<string, unknown>} args
 */
export function rpcSql(fn, args, { fromText = false } = {}) {
  const p = new Params();
  if (fromText) {
    // GET: each argument is query-string text, cast to its declared type, as PostgREST does.
    const given = fn.args.filter((a) => Object.hasOwn(args, a.name));
    const call = `public.${ident(fn.name)}(${given.map((a) => `${ident(a.name)} := ${p.add(String(args[a.name]))}::${a.type}`).join(", ")})`;
    if (fn.returns === "rows") return { sql: `select coalesce(json_agg(_f), '[]')::text as body from ${call} as _f`, params: p.list };
    return { sql: `select to_json(${call})::text as body`, params: p.list };
  }
  const given = fn.args.filter((a) => Object.hasOwn(args, a.name));
  const call = `public.${ident(fn.name)}(${given.map((a) => `${ident(a.name)} := _a.${ident(a.name)}`).join(", ")})`;
  const record = given.length
    ? `json_to_record(${p.add(JSON.stringify(args))}::json) as _a(${given.map((a) => `${ident(a.name)} ${a.type}`).join(", ")})`
    : null;
  if (fn.returns === "rows") {
    const from = record ? `${record}, lateral ${call} as _f` : `${call} as _f`;
    return { sql: `select coalesce(json_agg(_f), '[]')::text as body from ${from}`, params: p.list };
  }
  return { sql: `select to_json(${call})::text as body${record ? ` from ${record}` : ""}`, params: p.list };
}
