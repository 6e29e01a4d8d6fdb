// copyRow (src/web/shell.js) against what it stands for: each object-valued column as `JSON.parse(JSON.stringify(v))`
// gives it (the row is sent as JSON, and stored as that JSON value), other columns as they are. Run in Node (V8, as Chromium): a seeded
// generator of values, plain and not (Dates, toJSON, class instances, holes, -0, NaN, lone surrogates,
// __proto__ keys, cycles, BigInts), each checked against the JSON round trip.
import { execFileSync } from "node:child_process";
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyRow } from "../../src/web/shell.js";
import { seeded } from "../../www/server/faults.js";

class Point {
  constructor(x) {
    this.x = x;
    this.hidden = undefined;
  }
}

function value(rnd, depth) {
  const pick = (xs) => xs[Math.floor(rnd() * xs.length)];
  const leaf = () =>
    pick([
      () => null, () => undefined, () => true, () => "text", () => "k\ud800", () => "",
      () => 0, () => -0, () => 1.5, () => 1e21, () => NaN, () => Infinity, () => -Infinity,
      () => () => 1, () => Symbol("s"), () => new Date(1767258000000), () => new Date(NaN),
      () => ({ toJSON: () => "as json" }), () => ({ toJSON: () => undefined }), () => new Point(2),
      () => new Number(7), () => new String("boxed"), () => new Map([[1, 2]]),
    ])();
  if (depth > 3 || rnd() < 0.4) return leaf();
  if (rnd() < 0.5) {
    const array = Array.from({ length: Math.floor(rnd() * 4) }, () => value(rnd, depth + 1));
    if (rnd() < 0.2) array.length += 2; // holes
    // Still an array to JSON, its prototype taken away or not.
    if (rnd() < 0.1) Object.setPrototypeOf(array, null);
    return array;
  }
  const object = rnd() < 0.2 ? Object.create(null) : {};
  for (let i = Math.floor(rnd() * 4); i > 0; i--) object[pick(["a", "b", "c", "d"])] = value(rnd, depth + 1);
  if (rnd() < 0.1) Object.defineProperty(object, "__proto__", { value: value(rnd, depth + 1), enumerable: true, writable: true, configurable: true });
  return object;
}

test("copyRow copies each column value as the JSON round trip gives it", () => {
  const rnd = seeded(20261204);
  for (let n = 0; n < 20_000; n++) {
    const row = { id: `r${n}`, v: value(rnd, 0), w: value(rnd, 0) };
    // A column named __proto__ is a column like any other to JSON (and must not become the copy's prototype).
    if (rnd() < 0.1) Object.defineProperty(row, "__proto__", { value: value(rnd, 0), enumerable: true, writable: true, configurable: true });
    const copy = copyRow(row);
    const expected = JSON.parse(JSON.stringify(row));
    assert.deepStrictEqual(Object.keys(copy), Object.keys(expected), `row ${n}: ${JSON.stringify(row)}`);
    for (const key of Object.keys(expected)) {
      // A top-level number or string is kept as it is (NaN is sent as null all the same); an object value is
      // the JSON value it is sent as.
      if (typeof row[key] === "object" && row[key] !== null) assert.deepStrictEqual(copy[key], expected[key], `row ${n}.${key}`);
      else assert.equal(JSON.stringify(copy[key]), JSON.stringify(row[key]), `row ${n}.${key}`);
    }
  }
});

test("the copy shares nothing with the app's object", () => {
  const row = { id: "r", nested: { list: [{ a: 1 }] } };
  const copy = copyRow(row);
  row.nested.list[0].a = 2;
  row.nested.list.push(3);
  assert.deepStrictEqual(copy.nested, { list: [{ a: 1 }] });
});

test("a cycle, a BigInt or a throwing toJSON or getter is refused with what JSON says, however deep", () => {
  const cyclic = { a: {} };
  cyclic.a.back = cyclic;
  let deep = {};
  const root = deep;
  for (let i = 0; i < 100; i++) deep = deep.next = {};
  deep.loop = root;
  for (const [row, says] of [
    [{ id: "r", c: cyclic }, /circular/i],
    [{ id: "r", c: root }, /circular/i],
    [{ id: "r", c: { b: [1n] } }, /BigInt/],
    [{ id: "r", c: { toJSON() { throw new Error("no"); } } }, /no/],
    [{ id: "r", c: { get x() { throw new Error("getter"); } } }, /getter/],
  ]) {
    const refused = copyRow(row);
    assert.equal(typeof refused, "string");
    assert.match(refused, /^must be JSON-serializable: /);
    assert.match(refused, says);
  }
});

test("a nested value deeper than the direct copy goes is still copied whole", () => {
  let deep = { leaf: [1, { x: "y" }] };
  for (let i = 0; i < 100; i++) deep = { next: deep };
  const row = { id: "r", deep };
  assert.deepStrictEqual(copyRow(row), JSON.parse(JSON.stringify(row)));
});

test("a sparse array too long to copy element by element is refused as JSON refuses it", () => {
  const refused = copyRow({ id: "r", huge: new Array(4e9) });
  assert.match(refused, /^must be JSON-serializable: /);
  const long = copyRow({ id: "r", long: Array.from({ length: 2e6 }, (_, i) => i) });
  assert.equal(long.long.length, 2e6);
});

test("symbol-keyed properties are no columns", () => {
  const copy = copyRow({ id: "r", [Symbol("s")]: { a: 1 } });
  assert.deepStrictEqual(Object.keys(copy), ["id"]);
  assert.equal(JSON.stringify(copy), '{"id":"r"}');
});

test("a page that froze Object.prototype can still queue, merge and show a column named like one of its properties", () => {
  // In a process of its own: freezing the prototype here would reach node:test itself.
  const script = `
    Object.freeze(Object.prototype);
    const { copyRow, cloneRow, patchRow } = await import(${JSON.stringify(new URL("../../src/web/shell.js", import.meta.url).href)});
    const queued = copyRow({ id: "r", constructor: "c", toString: { nested: [{ valueOf: 1 }] } });
    const merged = copyRow({ id: "s" });
    patchRow(merged, copyRow({ valueOf: "v", name: "n" }));
    process.stdout.write(JSON.stringify([queued, cloneRow(queued), merged]));
  `;
  const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
  const queued = { id: "r", constructor: "c", toString: { nested: [{ valueOf: 1 }] } };
  assert.deepStrictEqual(JSON.parse(out), [queued, queued, { id: "s", valueOf: "v", name: "n" }]);
});
