import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

const here = (p) => fileURLToPath(new URL(p, import.meta.url));

/** What a Supabase project runs, in order: Supabase's pieces where missing, then the project's SQL. */
export const SCHEMA_FILES = [
  here("../supabase_shim.sql"),
  here("../../../sql/record_sync.sql"),
  here("../../../sql/record_sync_feed.sql"),
  here("../../../sql/demo_schema.sql"),
];

/** Loaded at start: the above, then the dev server's own NOTIFY from the feed's tables, for its realtime endpoint. */
export const DEV_SCHEMA_FILES = [...SCHEMA_FILES, here("../realtime/notify.sql")];

/** @param {import("./types.js").Db} db */
export async function loadSchema(db) {
  for (const file of DEV_SCHEMA_FILES) await db.exec(await readFile(file, "utf8"));
}

/**
 * @typedef {{name: string, type: string, default: string|null}} Column
 * @typedef {{name: string, columns: Map<string, Column>, pk: string[]}} Table
 * @typedef {{name: string, type: string}} Arg
 * @typedef {{name: string, args: Arg[], required: number, returns: "void"|"scalar"|"rows"}} Fn
 */

// Everything is aggregated to JSON text in SQL so that PGlite and node-postgres hand back the same thing.
const TABLES_SQL = `
select coalesce(json_agg(json_build_object(
  'name', c.relname,
  'columns', (select json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod),
                                                'default', pg_get_expr(d.adbin, d.adrelid)) order by a.attnum)
                from pg_attribute a left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
               where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped),
  'pk', (select json_agg(a.attname order by array_position(i.indkey::int2[], a.attnum))
           from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
          where i.indrelid = c.oid and i.indisprimary)
)), '[]')::text as j
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = 'public' and c.relkind in ('r', 'v', 'm', 'p', 'f')`;

const FUNCTIONS_SQL = `
select coalesce(json_agg(json_build_object(
  'name', p.proname,
  'names', p.proargnames,
  'modes', p.proargmodes::text[],
  'types', array(select format_type(t, null)
                   from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) with ordinality u(t, i) order by i),
  'ndefaults', p.pronargdefaults,
  'retset', p.proretset,
  'rettype', p.prorettype::regtype::text,
  'composite', rt.typtype = 'c' or p.prorettype = 'record'::regtype
)), '[]')::text as j
from pg_proc p join pg_namespace n on n.oid = p.pronamespace join pg_type rt on rt.oid = p.prorettype
where n.nspname = 'public' and p.prokind = 'f'`;

/**
 * The schema cache, as PostgREST keeps one: what tables, columns and functions exist in `public`. Requests are
 * checked against it before any SQL is built, and it is reloaded when a request names something it lacks, so
 * tables created after start are found.
 * @param {import("./types.js").Db} db
 */
export async function loadCatalog(db) {
  const [t, f] = [await db.query(TABLES_SQL), await db.query(FUNCTIONS_SQL)];
  /** @type {Map<string, Table>} */
  const tables = new Map();
  for (const r of JSON.parse(t.rows[0].j)) {
    tables.set(r.name, { name: r.name, columns: new Map((r.columns ?? []).map((c) => [c.name, c])), pk: r.pk ?? [] });
  }
  /** @type {Map<string, Fn[]>} */
  const functions = new Map();
  for (const r of JSON.parse(f.rows[0].j)) {
    const modes = r.modes ?? r.types.map(() => "i");
    const args = [];
    r.types.forEach((type, i) => {
      if (["i", "b", "v"].includes(modes[i])) args.push({ name: r.names?.[i] ?? "", type });
    });
    const returns = r.rettype === "void" ? "void" : r.retset || r.composite ? "rows" : "scalar";
    const fn = { name: r.name, args, required: args.length - r.ndefaults, returns };
    functions.set(r.name, [...(functions.get(r.name) ?? []), fn]);
  }
  return { tables, functions };
}
