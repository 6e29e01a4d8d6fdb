// PostgREST's query-string grammar as www/server/postgrest/parse.js reads it (no server needed).
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseColumns, parseFilter, parseOrder, parseQuery, parseSelect } from "../../www/server/postgrest/parse.js";

test("in-lists: quoted items unescape \\\" and \\\\; unquoted items are literal", () => {
  const f = (v) => parseFilter("id", v).values;
  assert.deepEqual(f('in.("a,b","x.y","(p)","he said \\"hi\\"","back\\\\slash")'), ["a,b", "x.y", "(p)", 'he said "hi"', "back\\slash"]);
  assert.deepEqual(f("in.(1,2,three)"), ["1", "2", "three"]);
  assert.deepEqual(f('in.("q"x,y)'), ['"q"x', "y"]);
  assert.deepEqual(f("in.()"), []);
  assert.deepEqual(f('in.("")'), [""]);
  assert.deepEqual(f('in.(" spaced ")'), [" spaced "]);
  assert.deepEqual(f("in.(ünï,日本)"), ["ünï", "日本"]);
  assert.throws(() => f('in.("a"'), /PGRST100|failed to parse/);
});

test("eq and friends take the rest of the value literally; not. negates; is. takes a trilean", () => {
  assert.deepEqual(parseFilter("id", 'eq."quoted"'), { column: "id", negate: false, op: "eq", value: '"quoted"' });
  assert.deepEqual(parseFilter("id", "eq.a.b,c"), { column: "id", negate: false, op: "eq", value: "a.b,c" });
  assert.deepEqual(parseFilter("n", "not.gte.5"), { column: "n", negate: true, op: "gte", value: "5" });
  assert.deepEqual(parseFilter("d", "is.NULL"), { column: "d", negate: false, op: "is", value: "null" });
  assert.throws(() => parseFilter("d", "is.maybe"));
  assert.throws(() => parseFilter("d", "nope.1"), (e) => e.body.code === "PGRST100");
});

test("field names: quoted names keep reserved characters; identifiers are trimmed and may hold dashes", () => {
  assert.deepEqual(parseColumns('"key,part","val:ue","with \\"quote\\"", plain , a-b', "columns"), [
    "key,part", "val:ue", 'with "quote"', "plain", "a-b",
  ]);
  assert.equal(parseFilter('"a.b"', "eq.1").column, "a.b");
  assert.throws(() => parseFilter("a.b", "eq.1"), /embedded/);
});

test("select, order and the split of a query string", () => {
  assert.deepEqual(parseSelect("*"), [{ column: "*" }]);
  assert.deepEqual(parseSelect('id, p:position,"odd,name"'), [{ column: "id" }, { column: "position", alias: "p" }, { column: "odd,name" }]);
  assert.deepEqual(parseOrder("a.desc.nullslast,b,c.asc"), [
    { column: "a", dir: "desc", nulls: "last" }, { column: "b" }, { column: "c", dir: "asc" },
  ]);
  const q = parseQuery(new URLSearchParams("select=id&id=in.(1,2)&limit=5&offset=10&on_conflict=id&columns=id,name&apikey=k&x=plain"));
  assert.deepEqual(q.filters, [{ column: "id", negate: false, op: "in", values: ["1", "2"] }]);
  assert.equal(q.limit, 5);
  assert.equal(q.offset, 10);
  assert.deepEqual(q.onConflict, ["id"]);
  assert.deepEqual(q.columns, ["id", "name"]);
  assert.deepEqual(q.rest, [["apikey", "k"], ["x", "plain"]]);
});
