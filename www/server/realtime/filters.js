// postgres_changes filters, `column=op.value` joined by commas (all must hold), as realtime-js sends them:
// eq, neq, lt, lte, gt, gte, in.(a,b), each optionally negated with `not.`. A value holding `,`, `(` or `)` is
// double-quoted. They are checked in SQL, with the column's own type, when a change is read as the subscriber.

const OPS = { eq: "=", neq: "<>", lt: "<", lte: "<=", gt: ">", gte: ">=" };

/** Splits on commas outside double quotes and parentheses. */
function splitTop(s) {
  const parts = [];
  let depth = 0;
  let quoted = false;
  let cur = "";
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quoted && c === "\\" && i + 1 < s.length) {
      cur += c + s[++i];
      continue;
    }
    if (c === '"') quoted = !quoted;
    else if (!quoted && c === "(") depth++;
    else if (!quoted && c === ")") depth--;
    if (c === "," && !quoted && depth === 0) {
      parts.push(cur);
      cur = "";
    } else cur += c;
  }
  if (quoted || depth !== 0) throw new Error("unbalanced quotes or parentheses");
  parts.push(cur);
  return parts;
}

const unquote = (v) => (v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1).replace(/\\(.)/g, "$1") : v);

/**
 * @typedef {{column: string, op: string, values: string[], negate: boolean}} Condition
 * @param {string} filter
 * @returns {Condition[]} throws an Error naming what is wrong
 */
export function parseFilter(filter) {
  if (typeof filter !== "string" || filter === "") throw new Error("filter must be a non-empty string");
  return splitTop(filter).map((part) => {
    const m = /^([^=]+)=(not\.)?(eq|neq|lt|lte|gt|gte|in)\.(.*)$/s.exec(part);
    if (!m) throw new Error(`unsupported filter ${JSON.stringify(part)}: use column=op.value with eq, neq, lt, lte, gt, gte or in`);
    const [, column, not, op, raw] = m;
    let values;
    if (op === "in") {
      if (!raw.startsWith("(") || !raw.endsWith(")")) throw new Error(`in needs a list in parentheses: ${JSON.stringify(part)}`);
      values = raw.length === 2 ? [] : splitTop(raw.slice(1, -1)).map(unquote);
    } else values = [unquote(raw)];
    return { column, op, values, negate: Boolean(not) };
  });
}

/**
 * The SQL condition on `x` for parsed conditions; values become bind parameters after the first `offset`.
 * @param {Condition[]} conditions
 * @param {number} offset
 */
export function filterSql(conditions, offset) {
  const params = [];
  const add = (v) => {
    params.push(v);
    return `$${offset + params.length}`;
  };
  const col = (c) => `x."${c.replaceAll('"', '""')}"`;
  const sql = conditions.map((c) => {
    const cond = c.op === "in"
      ? (c.values.length ? `${col(c.column)} in (${c.values.map(add).join(", ")})` : "false")
      : `${col(c.column)} ${OPS[c.op]} ${add(c.values[0])}`;
    return c.negate ? `not (${cond})` : cond;
  });
  return { sql: sql.length ? sql.join(" and ") : "true", params };
}
