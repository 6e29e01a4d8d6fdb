/** An error answered as PostgREST's JSON body: {code, message, details, hint}. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string|null} code
   * @param {string} message
   * @param {{details?: string|null, hint?: string|null, headers?: Record<string,string>}} [extra]
   */
  constructor(status, code, message, { details = null, hint = null, headers = {} } = {}) {
    super(message);
    this.status = status;
    this.body = { code, details, hint, message };
    this.headers = headers;
  }
}

/** PGRST100: a query string PostgREST's parser would reject. */
export const parseError = (what, input, details) =>
  new ApiError(400, "PGRST100", `"failed to parse ${what} (${input})" (line 1, column 1)`, { details });

/** PGRST102: a body that is not the JSON expected. */
export const bodyError = (message = "Empty or invalid json") => new ApiError(400, "PGRST102", message);

export const tableNotFound = (table) =>
  new ApiError(404, "PGRST205", `Could not find the table 'public.${table}' in the schema cache`);

export const columnNotFound = (table, column) =>
  new ApiError(400, "42703", `column ${table}.${column} does not exist`);

// PostgREST's SQLSTATE -> HTTP status table (docs: references/errors, "HTTP Status Codes"); first match wins.
const STATUS_BY_SQLSTATE = [
  ["08", 503], ["09", 500], ["0L", 403], ["0P", 403], ["23503", 409], ["23505", 409], ["25006", 405], ["25", 500],
  ["28", 403], ["2D", 500], ["38", 500], ["39", 500], ["3B", 500], ["40", 500], ["53400", 500], ["53", 503],
  ["54", 500], ["55", 500], ["57", 500], ["58", 500], ["F0", 500], ["HV", 500], ["P0001", 400], ["P0", 500],
  ["XX", 500], ["42883", 404], ["42P01", 404], ["42P17", 500],
];

/**
 * The HTTP status PostgREST gives a PostgreSQL error.
 * @param {string} sqlstate
 * @param {boolean} authenticated 42501 is 403 for a user who sent a JWT, 401 for anon
 */
export function statusForSqlstate(sqlstate, authenticated) {
  if (sqlstate === "42501") return authenticated ? 403 : 401;
  for (const [prefix, status] of STATUS_BY_SQLSTATE) if (sqlstate.startsWith(prefix)) return status;
  return 400;
}

/** A driver error (PGlite and node-postgres both carry code/detail/hint) as PostgREST would answer it. */
export function fromDbError(e, authenticated) {
  if (typeof e?.code !== "string" || !/^[0-9A-Z]{5}$/.test(e.code)) return null;
  return new ApiError(statusForSqlstate(e.code, authenticated), e.code, e.message, {
    details: e.detail ?? null,
    hint: e.hint ?? null,
  });
}
