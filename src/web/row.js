// Rows as the queue holds them in the browser: plain JS objects, copied once when queued and serialized once
// when sent. Pure JS work stays here, in one call per row, instead of a property-by-property walk from wasm.

// Postgres keeps 63 bytes of a name; a JS string of at most 21 UTF-16 units is at most 63 UTF-8 bytes.
function nameBytes(name) {
  if (name.length <= 21) return name.length;
  let bytes = 0;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    bytes += c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c < 0xdc00 ? 4 : c >= 0xdc00 && c < 0xe000 ? 0 : 3;
  }
  return bytes;
}

/** `false` for anything but a plain object; otherwise a copy of the row's JSON-visible columns (values
 *  `JSON.stringify` would drop are left out), so that the app changing its object later cannot change the
 *  queued change; or a string saying what is wrong: a column name, or a value `JSON.stringify` would throw on
 *  (a cycle, a BigInt) or a getter that throws. Never throws itself: a call that may throw costs more to
 *  make from wasm.
 *
 *  An object value (a nested object, an array, a Date) is kept as the JSON value it is sent as: the durable
 *  queue stores rows by structured clone, which would keep a Date but drop a class's `toJSON` and throw on a
 *  nested function, where JSON does what the request will do. It also makes the copy deep. */
export function copyRow(data) {
  try {
    // Only plain objects (`{...}`, `Object.create(null)`): not an array, a Date, a Map, a class instance.
    if (typeof data !== "object" || data === null || Array.isArray(data)) return false;
    const proto = Object.getPrototypeOf(data);
    if (proto !== null && proto !== Object.prototype) return false;
    const copy = {};
    for (const key of Object.keys(data)) {
      const value = data[key];
      const kind = typeof value;
      if (value === undefined || kind === "function" || kind === "symbol") continue;
      if (key === "" || key.includes("\0") || nameBytes(key) > 63) return "has an invalid column name " + JSON.stringify(key);
      if (kind === "bigint" || (kind === "object" && value !== null)) {
        // Throws on a BigInt, a cycle, or a throwing toJSON: the complaint below.
        const json = JSON.stringify(value);
        if (json === undefined) continue;
        copy[key] = JSON.parse(json);
      } else {
        copy[key] = value;
      }
    }
    return copy;
  } catch (e) {
    return "must be JSON-serializable: " + describeError(e);
  }
}

function describeError(e) {
  try {
    if (e instanceof Error) return e.name && e.name !== "Error" ? `${e.name}: ${e.message}` : e.message;
    return String(e);
  } catch {
    return "it threw";
  }
}

export function cloneRow(row) {
  return Object.assign({}, row);
}

export function isEmptyRow(row) {
  for (const _ in row) return false;
  return true;
}

/** A column as the core reads it: undefined (absent), null, a string, or any other value's JSON text.
 *  `name` is a JS string the wasm keeps, so that no text is decoded per call. */
export function rowColumn(row, name) {
  if (!Object.prototype.hasOwnProperty.call(row, name)) return undefined;
  const value = row[name];
  if (value === null || typeof value === "string") return value;
  // As it will be sent: a Date (or anything whose toJSON gives a string) is the string it becomes.
  const json = JSON.stringify(value) ?? "null";
  return json.startsWith('"') ? JSON.parse(json) : { json };
}

/** The row's JSON text; a value whose `toJSON` throws at send time (a Date made invalid later) is sent as
 *  `null` rather than stopping the whole batch. */
export function rowJson(row) {
  try {
    return JSON.stringify(row);
  } catch {
    const safe = {};
    for (const key of Object.keys(row)) {
      try {
        safe[key] = JSON.parse(JSON.stringify(row[key]) ?? "null");
      } catch {
        safe[key] = null;
      }
    }
    return JSON.stringify(safe);
  }
}

/** A row from JSON text, or null if the text is not a JSON object. */
export function parseRow(text) {
  try {
    const value = JSON.parse(text);
    return value !== null && typeof value === "object" && !Array.isArray(value) ? value : null;
  } catch {
    return null;
  }
}
