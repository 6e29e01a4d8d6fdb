// record-sync: the package's main entry. It initialises the WebAssembly module itself, once, when first
// imported, so that `import { RecordSync } from "record-sync"` is all an app writes: no init() call and no
// bundler plugin. The wasm file is referenced with `new URL(..., import.meta.url)`, the pattern Vite, webpack 5,
// Rollup/Rolldown, esbuild (with the file loader) and browsers all understand, and is fetched and compiled in
// streaming mode.
//
// Where there is no browser (server-side rendering in Node, Deno, Bun) nothing is loaded and importing is
// harmless: the exports exist, `isSupported` is false, and RecordSync instances are meant to be created on the
// client only (RecordSyncProvider from "record-sync/react" does exactly that).
import init, { RecordSync } from "./record_sync.js";

export * from "./record_sync.js";

// `free()` and `using` stop the instance as `destroy()` does, and leave the memory to the garbage collector
// (wasm-bindgen's FinalizationRegistry frees it once the object is unreachable). Freed at once, every later
// call would pass a null pointer into the module, whose error thrown from inside the wasm leaks a little of its
// stack each time until the module fails for the whole page; destroyed, a later call gets the destroyed
// instance's error.
RecordSync.prototype.free = RecordSync.prototype.destroy;

// A method called on something else (`setTimeout(sync.forceSyncAll)`, `addEventListener("online", sync.resume)`)
// would pass no instance into the module, with the same leak: it is a TypeError here instead, thrown, or for the
// methods that return a promise (their declared types say which) a rejection, as their other errors are.
const ASYNC = new Set(["forceSyncAll", "pull", "clearPersisted"]);
for (const name of Object.getOwnPropertyNames(RecordSync.prototype)) {
  const method = Object.getOwnPropertyDescriptor(RecordSync.prototype, name).value;
  if (name === "constructor" || name.startsWith("__") || typeof method !== "function") continue;
  RecordSync.prototype[name] = {
    [name](...args) {
      if (!(this instanceof RecordSync) || !this.__wbg_ptr) {
        const error = new TypeError(`RecordSync.${name}: called on ${this === undefined ? "undefined" : "something other than a RecordSync"}; pass sync.${name}.bind(sync) or an arrow function`);
        if (ASYNC.has(name)) return Promise.reject(error);
        throw error;
      }
      return method.apply(this, args);
    },
  }[name];
}
if (typeof Symbol.dispose === "symbol") RecordSync.prototype[Symbol.dispose] = RecordSync.prototype.destroy;

const inBrowser =
  (typeof window !== "undefined" && typeof window.document !== "undefined") ||
  (typeof self !== "undefined" && typeof self.importScripts === "function");

/** True where the WebAssembly module is loaded (browsers and web workers); false during server-side rendering. */
export const isSupported = inBrowser;

/** Resolves once the WebAssembly module is ready (already the case when `import` resolves in a browser). */
export const ready = inBrowser
  ? init({ module_or_path: new URL("./record_sync_bg.wasm", import.meta.url) }).then(() => undefined)
  : Promise.resolve(undefined);

if (inBrowser) await ready;
