// The timers the shell awaits, for src/web/timeout.rs: a JS promise and setTimeout here cost less wasm than a
// Rust closure per timer and a Promise.race assembled through bindings.

// Waits for `value` (a promise, a thenable or a plain value) for at most `ms`: resolves to { ok: true, value }
// or { ok: false, value: the reason } when it settles in time, to null when it does not (a late settlement is
// ignored). Never rejects.
export function within(value, ms) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), ms);
    const settle = (ok) => (value) => {
      clearTimeout(timer);
      resolve({ ok, value });
    };
    Promise.resolve(value).then(settle(true), settle(false));
  });
}

// Resolves in a task of its own, so input and rendering get their turn first.
export const nextTask = () => new Promise((resolve) => setTimeout(resolve, 0));
