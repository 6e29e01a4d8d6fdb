export * from "./record_sync.js";

/** True where the WebAssembly module is loaded (browsers and web workers); false during server-side rendering. */
export declare const isSupported: boolean;

/** Resolves once the WebAssembly module is ready (already the case when `import` resolves in a browser). */
export declare const ready: Promise<void>;
