// The PostgREST routes: /rest/v1/{table} and /rest/v1/rpc/{function}. Each request is one transaction run as the
// caller's role with the caller's JWT claims, as PostgREST runs it, so grants and row-level security apply.
import { ApiError, bodyError, fromDbError, tableNotFound } from "./errors.js";
import { parsePrefer, parseQuery } from "./postgrest/parse.js";
import { countSql, deleteSql, insertSql, rpcSql, selectSql, updateSql } from "./postgrest/query.js";

const JSON_TYPE = "application/json; charset=utf-8";
const SINGLE_OBJECT = "application/vnd.pgrst.object+json";

/**
 * @typedef {{status: number, headers?: Record<string, string>, body?: string}} Reply
 * @typedef {{method: string, path: string, query: URLSearchParams, headers: import("node:http").IncomingHttpHeaders,
 *   body: Buffer, auth: {role: string, claims: Record<string, unknown>, authenticated: boolean}}} RestRequest
 * @typedef {{reply: Reply, rows: [string, number][], rpc?: string}} RestResult  rows: what was written, per table
 */

/**
 * @param {{db: import("./db/types.js").Db, catalog: {get: () => Awaited<ReturnType<typeof import("./db/schema.js").loadCatalog>>, reload: () => Promise<void>}}} deps
 */
export function createRest({ db, catalog }) {
  async function table(name) {
    let t = catalog.get().tables.get(name);
    if (!t) {
      await catalog.reload();
      t = catalog.get().tables.get(name);
    }
    if (!t) throw tableNotFound(name);
    return t;
  }

  /** Runs fn in one transaction as the request's role; database errors become PostgREST's answers. */
  async function asCaller(req, fn) {
    try {
      return await db.transaction(async (q) => {
        // As PostgREST does: GET and HEAD run read-only, so a volatile function called by GET cannot write
        // (25006, answered 405).
        if (req.method === "GET" || req.method === "HEAD") await q("set transaction read only");
        await q(
          `select set_config('role', $1, true), set_config('request.jwt.claims', $2, true),
                  set_config('request.jwt.claim.sub', $3, true), set_config('request.method', $4, true),
                  set_config('request.path', $5, true), set_config('request.headers', $6, true)`,
          [req.auth.role, JSON.stringify(req.auth.claims), String(req.auth.claims.sub ?? ""), req.method, req.path,
           JSON.stringify(req.headers)],
        );
        return fn(q);
      });
    } catch (e) {
      throw fromDbError(e, req.auth.authenticated) ?? e;
    }
  }

  function jsonBody(req, { required }) {
    const type = (req.headers["content-type"] ?? "application/json").split(";")[0].trim().toLowerCase();
    if (!/^application\/(.+\+)?json$/.test(type)) {
      throw new ApiError(415, "PGRST107", `Content-Type not acceptable: ${type}`);
    }
    if (req.body.length === 0) {
      if (required) throw bodyError();
      return {};
    }
    try {
      return JSON.parse(req.body.toString("utf8"));
    } catch {
      throw bodyError();
    }
  }

  const wantsObject = (req) => (req.headers.accept ?? "").includes(SINGLE_OBJECT);

  /** One object instead of an array (`Accept: application/vnd.pgrst.object+json`, what `.single()` sends). */
  function singular(row) {
    if (row.n !== 1) {
      throw new ApiError(406, "PGRST116", "JSON object requested, multiple (or no) rows returned", {
        details: `The result contains ${row.n} rows`,
      });
    }
    return row.one;
  }

  /** Table routes. @param {RestRequest} req @param {string} name @returns {Promise<RestResult>} */
  async function tableRoute(req, name) {
    const t = await table(name);
    const q = parseQuery(req.query);
    const prefer = parsePrefer(req.headers.prefer);
    const single = wantsObject(req);
    const headers = { "Content-Type": single ? `${SINGLE_OBJECT}; charset=utf-8` : JSON_TYPE };

    if (req.method === "GET" || req.method === "HEAD") {
      const { sql, params } = selectSql(t, q);
      return asCaller(req, async (run) => {
        const [row] = (await run(sql, params)).rows;
        const count = prefer.count && countSql(t, q);
        const total = count ? (await run(count.sql, count.params)).rows[0].n : "*";
        const start = q.offset ?? 0;
        headers["Content-Range"] = row.n ? `${start}-${start + row.n - 1}/${total}` : `*/${total}`;
        return { reply: { status: 200, headers, body: single ? singular(row) : row.body }, rows: [] };
      });
    }

    if (req.method !== "POST" && req.method !== "PATCH" && req.method !== "DELETE") {
      throw new ApiError(405, "PGRST117", `Unsupported HTTP method: ${req.method}`);
    }
    let stmt;
    if (req.method === "POST") stmt = insertSql(t, q, prefer, jsonBody(req, { required: true }));
    else if (req.method === "PATCH") stmt = updateSql(t, q, prefer, jsonBody(req, { required: true }));
    else stmt = deleteSql(t, q, prefer);
    const okStatus = req.method === "POST" ? 201 : prefer.return === "representation" ? 200 : 204;

    return asCaller(req, async (run) => {
      // An empty PATCH object changes nothing, as in PostgREST.
      const r = stmt ? await run(stmt.sql, stmt.params) : { rows: [{ n: 0, body: "[]", one: null }], rowCount: 0 };
      const written = prefer.return === "representation" ? r.rows[0].n : r.rowCount;
      const reply = { status: okStatus, headers: { "Content-Range": `*/${written}` } };
      if (prefer.return === "representation") {
        reply.headers = { ...reply.headers, ...headers };
        reply.body = single ? singular(r.rows[0]) : r.rows[0].body;
      }
      return { reply, rows: [[t.name, written]] };
    });
  }

  /** POST (or GET) /rpc/{fn} with named arguments. @param {RestRequest} req @returns {Promise<RestResult>} */
  async function rpcRoute(req, name) {
    if (req.method !== "POST" && req.method !== "GET") {
      throw new ApiError(405, "PGRST101", "Only GET and POST verbs are allowed for functions");
    }
    let args;
    if (req.method === "POST") args = jsonBody(req, { required: false });
    else args = Object.fromEntries(parseQuery(req.query).rest.filter(([k]) => k !== "apikey"));
    if (args === null || typeof args !== "object" || Array.isArray(args)) {
      throw bodyError("The function arguments must be a JSON object");
    }
    const keys = Object.keys(args);
    const match = () =>
      (catalog.get().functions.get(name) ?? []).find(
        (f) => keys.every((k) => f.args.some((a) => a.name === k)) && f.args.slice(0, f.required).every((a) => keys.includes(a.name)),
      );
    let fn = match();
    if (!fn) {
      await catalog.reload();
      fn = match();
    }
    if (!fn) {
      const sig = [...keys].sort().join(", ");
      throw new ApiError(404, "PGRST202", `Could not find the function public.${name}(${sig}) in the schema cache`, {
        details: `Searched for the function public.${name} with parameters ${sig || "(none)"}, but no matches were found in the schema cache.`,
      });
    }
    const { sql, params } = rpcSql(fn, args, { fromText: req.method === "GET" });
    return asCaller(req, async (run) => {
      const { body } = (await run(sql, params)).rows[0];
      const reply = fn.returns === "void" ? { status: 204 } : { status: 200, headers: { "Content-Type": JSON_TYPE }, body };
      return { reply, rows: name === "record_sync_apply" ? appliedRows(args.changes, body) : [], rpc: name };
    });
  }

  /**
   * @param {RestRequest} req
   * @returns {Promise<RestResult>}
   */
  return async function handle(req) {
    const rest = req.path.replace(/^\/rest\/v1\/?/, "");
    const segments = rest.split("/").map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        throw new ApiError(400, "PGRST100", `Malformed percent-encoding in path segment ${s}`);
      }
    });
    if (segments.length === 2 && segments[0] === "rpc" && segments[1]) return rpcRoute(req, segments[1]);
    if (segments.length === 1 && segments[0]) return tableRoute(req, segments[0]);
    throw new ApiError(404, "PGRST125", `Invalid path specified in request URL: ${req.path}`);
  };
}

/**
 * Rows written by a record_sync_apply call, from its per-change results: each change applied now (not a replay)
 * wrote its row once.
 */
function appliedRows(changes, body) {
  let results;
  try {
    results = JSON.parse(body);
  } catch {
    return [];
  }
  if (!Array.isArray(changes) || !Array.isArray(results)) return [];
  return results.flatMap((r, i) =>
    r?.status === "applied" && !r.replayed && typeof changes[i]?.table === "string" ? [[changes[i].table, 1]] : [],
  );
}
