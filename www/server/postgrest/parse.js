// PostgREST's query-string grammar (its QueryParams parser), for the subset the dev server serves. Names and
// values are parsed exactly as PostgREST parses them, so a URL that works here works against Supabase.
import { ApiError, parseError } from "../errors.js";

/** @typedef {{column: string, negate: boolean, op: string, value?: string, values?: string[]}} Filter */
/** @typedef {{column: string, alias?: string}} SelectItem  column "*" for all */
/** @typedef {{column: string, dir?: "asc"|"desc", nulls?: "first"|"last"}} OrderTerm */

const SIMPLE_OPS = new Map([
  ["eq", "="], ["neq", "<>"], ["gt", ">"], ["gte", ">="], ["lt", "<"], ["lte", "<="], ["like", "like"], ["ilike", "ilike"],
]);
// Operators PostgREST knows that this stand-in does not serve: refused plainly rather than misread as unknown.
const UNSERVED_OPS = new Set([
  "cs", "cd", "ov", "sl", "sr", "nxr", "nxl", "adj", "match", "imatch", "fts", "plfts", "phfts", "wfts", "isdistinct",
]);
const TRI_VALUES = new Set(["null", "unknown", "true", "false"]);
// Parsec's `letter <|> digit <|> oneOf "_ $"`: letters are any Unicode letter, digits ASCII only.
const IDENT_CHAR = /[\p{L}0-9_ $]/u;

const unserved = (what) =>
  new ApiError(400, "PGRST100", `${what} is not supported by the record-sync dev server`, {
    hint: "It serves the PostgREST subset record-sync uses: see www/server/README.md",
  });

class Scanner {
  /** @param {string} text @param {string} what names the parameter in errors */
  constructor(text, what) {
    this.s = text;
    this.i = 0;
    this.what = what;
  }
  get eof() {
    return this.i >= this.s.length;
  }
  peek(n = 1) {
    return this.s.slice(this.i, this.i + n);
  }
  ws() {
    while (this.s[this.i] === " " || this.s[this.i] === "\t") this.i++;
  }
  eat(str) {
    if (this.s.startsWith(str, this.i)) {
      this.i += str.length;
      return true;
    }
    return false;
  }
  fail(expected) {
    const found = this.eof ? "end of input" : `"${this.s[this.i]}"`;
    return parseError(this.what, this.s, `unexpected ${found} expecting ${expected}`);
  }

  /** pQuotedValue: `"` ... `"`, a backslash escapes the character after it. Null if not at a complete one. */
  quoted() {
    if (this.s[this.i] !== '"') return null;
    let out = "";
    for (let j = this.i + 1; j < this.s.length; j++) {
      const c = this.s[j];
      if (c === "\\") {
        if (j + 1 >= this.s.length) return null;
        out += this.s[++j];
      } else if (c === '"') {
        this.i = j + 1;
        return out;
      } else out += c;
    }
    return null;
  }

  /** pFieldName: a quoted name, or identifiers (letters, digits, `_`, space, `$`, trimmed) joined by `-`. */
  fieldName() {
    const start = this.i;
    const q = this.quoted();
    if (q !== null) return q;
    this.i = start;
    const parts = [];
    for (;;) {
      let j = this.i;
      while (j < this.s.length && IDENT_CHAR.test(this.s[j])) j++;
      if (j === this.i) {
        this.i = start;
        throw this.fail("field name (* or [a..z0..9_$])");
      }
      parts.push(this.s.slice(this.i, j).trim());
      this.i = j;
      if (this.s[this.i] === "-" && this.s[this.i + 1] !== ">") this.i++;
      else break;
    }
    return parts.join("-");
  }

  /** Refuses JSON paths (`->`, `->>`), which PostgREST accepts after a field name but this server does not. */
  noJsonPath() {
    if (this.peek(2) === "->") throw unserved("JSON path operators (-> and ->>)");
  }

  end() {
    this.ws();
    if (!this.eof) throw this.fail('"," or end of input');
  }
}

/** pColumns, for `columns=` and `on_conflict=`: field names separated by commas. */
export function parseColumns(text, what) {
  const sc = new Scanner(text, `${what} parameter`);
  const cols = [];
  do {
    sc.ws();
    cols.push(sc.fieldName());
    sc.ws();
  } while (sc.eat(","));
  sc.end();
  return cols;
}

/** @returns {SelectItem[]} */
export function parseSelect(text) {
  const sc = new Scanner(text, "select parameter");
  const items = [];
  do {
    sc.ws();
    if (sc.eat("*")) items.push({ column: "*" });
    else {
      let alias;
      let column = sc.fieldName();
      if (sc.peek() === ":" && sc.peek(2) !== "::") {
        sc.eat(":");
        alias = column;
        column = sc.fieldName();
      }
      sc.noJsonPath();
      if (sc.peek() === "(" || sc.peek() === "!") throw unserved("Resource embedding");
      if (sc.peek(2) === "::") throw unserved("Casting in select");
      items.push(alias === undefined ? { column } : { column, alias });
    }
    sc.ws();
  } while (sc.eat(","));
  sc.end();
  return items;
}

/** @returns {OrderTerm[]} */
export function parseOrder(text) {
  const sc = new Scanner(text, "order");
  const terms = [];
  do {
    sc.ws();
    const term = { column: sc.fieldName() };
    sc.noJsonPath();
    if (sc.peek() === "(") throw unserved("Ordering by a related table");
    if (sc.eat(".asc")) term.dir = "asc";
    else if (sc.eat(".desc")) term.dir = "desc";
    if (sc.eat(".nullsfirst")) term.nulls = "first";
    else if (sc.eat(".nullslast")) term.nulls = "last";
    sc.ws();
    if (!sc.eof && sc.peek() !== ",") throw sc.fail('"asc", "desc", "nullsfirst" or "nullslast"');
    terms.push(term);
  } while (sc.eat(","));
  return terms;
}

/** pListVal: `(a,"b,c",d)`; a quoted item counts as quoted only when `,` or `)` follows its closing quote. */
function parseList(sc) {
  sc.ws();
  if (!sc.eat("(")) throw sc.fail('"("');
  sc.ws();
  const items = [];
  let onlyEmpty = true;
  do {
    const start = sc.i;
    const q = sc.quoted();
    if (q !== null && (sc.eof || sc.peek() === "," || sc.peek() === ")")) {
      items.push(q);
      onlyEmpty = false;
      continue;
    }
    sc.i = start;
    while (!sc.eof && sc.peek() !== "," && sc.peek() !== ")") sc.i++;
    const raw = sc.s.slice(start, sc.i);
    if (raw !== "") onlyEmpty = false;
    items.push(raw);
  } while (sc.eat(","));
  if (!sc.eat(")")) throw sc.fail('")"');
  sc.end();
  // `in.()` is the empty list (matches nothing), not a list holding one empty string: that is `in.("")`.
  return items.length === 1 && onlyEmpty ? [] : items;
}

/**
 * One filter `key=value`, e.g. `id=in.("a","b")`, `name=not.eq.x`, `deleted_at=is.null`.
 * @returns {Filter}
 */
export function parseFilter(key, value) {
  const ksc = new Scanner(key, "tree path");
  ksc.ws();
  const column = ksc.fieldName();
  ksc.noJsonPath();
  if (ksc.peek() === ".") throw unserved("Filtering on an embedded resource");
  ksc.end();

  const sc = new Scanner(value, "filter");
  const negate = sc.eat("not.");
  if (sc.eat("in.")) return { column, negate, op: "in", values: parseList(sc) };
  if (sc.eat("is.")) {
    const v = sc.s.slice(sc.i).toLowerCase();
    if (!TRI_VALUES.has(v)) throw sc.fail("null or trilean value (unknown, true, false)");
    return { column, negate, op: "is", value: v };
  }
  const dot = value.indexOf(".", sc.i);
  const op = dot < 0 ? value.slice(sc.i) : value.slice(sc.i, dot);
  if (UNSERVED_OPS.has(op.replace(/\(.*$/, ""))) throw unserved(`The ${op} operator`);
  if (dot < 0 || !SIMPLE_OPS.has(op)) {
    throw parseError("filter", value, `unknown single value operator ${op}`);
  }
  // pSingleVal: everything after the operator, taken literally (no unquoting).
  return { column, negate, op, value: value.slice(dot + 1) };
}

export const sqlOperator = (op) => SIMPLE_OPS.get(op);

/**
 * @typedef {{op: "tree", logic: "and"|"or", negate: boolean, children: (Filter|LogicTree)[]}} LogicTree
 */

/** pLogicSingleVal: a quoted value when `,` or `)` follows its closing quote, else everything up to `,` or `)`. */
function logicValue(sc) {
  const start = sc.i;
  const q = sc.quoted();
  if (q !== null && (sc.eof || sc.peek() === "," || sc.peek() === ")")) return q;
  sc.i = start;
  while (!sc.eof && sc.peek() !== "," && sc.peek() !== ")") sc.i++;
  return sc.s.slice(start, sc.i);
}

/** pLogicTree: `or(a.eq.1,and(b.is.null,c.lte."x"))`, each leaf a filter whose values may be quoted. */
function logicTree(sc) {
  sc.ws();
  const negate = sc.eat("not.");
  const logic = sc.eat("and") ? "and" : sc.eat("or") ? "or" : null;
  if (!logic) throw sc.fail('"and" or "or"');
  sc.ws();
  if (!sc.eat("(")) throw sc.fail('"("');
  const children = [];
  do {
    sc.ws();
    const nested = /^(not\.)?(and|or)\(/.test(sc.s.slice(sc.i));
    children.push(nested ? logicTree(sc) : logicFilter(sc));
    sc.ws();
  } while (sc.eat(","));
  if (!sc.eat(")")) throw sc.fail('")"');
  return { op: "tree", logic, negate, children };
}

/** pLogicFilter: `column.op.value` inside a tree. @returns {Filter} */
function logicFilter(sc) {
  const column = sc.fieldName();
  sc.noJsonPath();
  if (!sc.eat(".")) throw sc.fail('"."');
  const negate = sc.eat("not.");
  if (sc.eat("in.")) {
    // The list ends at its own `)`: parse it on a copy that stops there.
    const start = sc.i;
    let depth = 0;
    let j = start;
    let inQuote = false;
    for (; j < sc.s.length; j++) {
      const c = sc.s[j];
      if (inQuote) {
        if (c === "\\") j++;
        else if (c === '"') inQuote = false;
      } else if (c === '"') inQuote = true;
      else if (c === "(") depth++;
      else if (c === ")" && --depth === 0) break;
    }
    const values = parseList(new Scanner(sc.s.slice(start, j + 1), sc.what));
    sc.i = j + 1;
    return { column, negate, op: "in", values };
  }
  if (sc.eat("is.")) {
    const start = sc.i;
    while (!sc.eof && sc.peek() !== "," && sc.peek() !== ")") sc.i++;
    const v = sc.s.slice(start, sc.i).toLowerCase();
    if (!TRI_VALUES.has(v)) throw sc.fail("null or trilean value (unknown, true, false)");
    return { column, negate, op: "is", value: v };
  }
  const dot = sc.s.indexOf(".", sc.i);
  const op = dot < 0 ? sc.s.slice(sc.i) : sc.s.slice(sc.i, dot);
  if (UNSERVED_OPS.has(op.replace(/\(.*$/, ""))) throw unserved(`The ${op} operator`);
  if (dot < 0 || !SIMPLE_OPS.has(op)) throw parseError("logic tree", sc.s, `unknown single value operator ${op}`);
  sc.i = dot + 1;
  return { column, negate, op, value: logicValue(sc) };
}

/**
 * A logic-tree parameter: key `or`, `and`, `not.or` or `not.and`, value `(filter,filter,...)`.
 * @returns {LogicTree}
 */
export function parseLogicTree(key, value) {
  const sc = new Scanner(`${key}${value}`, "logic tree");
  const tree = logicTree(sc);
  sc.end();
  return tree;
}

/** Whether a query parameter's value reads as a filter, by PostgREST's own test (hasOperator). */
function looksLikeFilter(value) {
  const [first, second] = value.split(".");
  if (first === "not") return second !== undefined;
  return first === "is" || first === "in" || SIMPLE_OPS.has(first) || UNSERVED_OPS.has(first.replace(/\(.*$/, ""));
}

function nonNegativeInt(name, text) {
  if (!/^\d+$/.test(text)) throw parseError(name, text, "expecting a non-negative integer");
  return Number(text);
}

/**
 * A table request's query string, split as PostgREST splits it: reserved parameters, filters, and the rest
 * (left to the caller, e.g. a function's arguments for GET /rpc).
 * @param {URLSearchParams} params parsed with `+` as a space, as PostgREST does
 */
export function parseQuery(params) {
  /** @type {{select: SelectItem[], filters: Filter[], order: OrderTerm[], limit?: number, offset?: number, columns?: string[], onConflict?: string[], rest: [string, string][]}} */
  const q = { select: [{ column: "*" }], filters: [], order: [], rest: [] };
  for (const [key, value] of params) {
    if (key === "select") q.select = parseSelect(value);
    else if (key === "columns") q.columns = parseColumns(value, "columns");
    else if (key === "on_conflict") q.onConflict = parseColumns(value, "on_conflict");
    else if (key === "order") q.order = parseOrder(value);
    else if (key === "limit") q.limit = nonNegativeInt("limit", value);
    else if (key === "offset") q.offset = nonNegativeInt("offset", value);
    else if (/^(not\.)?(or|and)$/.test(key)) q.filters.push(parseLogicTree(key, value));
    else if (/\.(or|and|order|limit|offset)$/.test(key)) {
      throw unserved(`The ${key} parameter`);
    } else if (value !== "" && looksLikeFilter(value)) q.filters.push(parseFilter(key, value));
    else q.rest.push([key, value]);
  }
  return q;
}

/**
 * The Prefer header's preferences this server honours.
 * @param {string|undefined} header
 */
export function parsePrefer(header) {
  const prefs = { return: "minimal", resolution: null, missing: null, count: null, single: false };
  for (const part of (header ?? "").split(",")) {
    const [k, v] = part.trim().split("=").map((x) => x?.trim());
    if (k === "return" && ["minimal", "representation", "headers-only"].includes(v)) prefs.return = v;
    else if (k === "resolution" && ["merge-duplicates", "ignore-duplicates"].includes(v)) prefs.resolution = v;
    else if (k === "missing" && v === "default") prefs.missing = v;
    else if (k === "count" && ["exact", "planned", "estimated"].includes(v)) prefs.count = v;
    else if (k === "params" && v === "single-object") throw unserved("Prefer: params=single-object");
  }
  return prefs;
}
