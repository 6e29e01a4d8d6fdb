//! Waiting for a promise of user code (`getAccessToken`, a custom `send`, a custom store) for a bounded time, so
//! that one that never settles never stalls the queue (a late settlement is ignored); and yielding to the
//! browser between pieces of work. The timers are in src/web/shell.js.

use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen(module = "/src/web/shell.js")]
extern "C" {
    #[wasm_bindgen(js_name = within)]
    fn settle_within(value: &JsValue, ms: u32) -> Promise;
    #[wasm_bindgen(js_name = nextTask)]
    fn next_task() -> Promise;

    /// `{ ok, value }`: how a promise settled.
    type Settled;
    #[wasm_bindgen(method, getter)]
    fn ok(this: &Settled) -> bool;
    #[wasm_bindgen(method, getter)]
    fn value(this: &Settled) -> JsValue;
}

/// `None` when `value` (a promise, a thenable, or a plain value) did not settle within `ms`.
pub async fn within(value: &JsValue, ms: u32) -> Option<Result<JsValue, JsValue>> {
    let settled = JsFuture::from(settle_within(value, ms)).await.ok().filter(|s| !s.is_null())?;
    let settled: Settled = settled.unchecked_into();
    Some(if settled.ok() { Ok(settled.value()) } else { Err(settled.value()) })
}

/// Lets the browser run (a macrotask, so input and rendering get their turn).
pub async fn yield_to_browser() {
    let _ = JsFuture::from(next_task()).await;
}
