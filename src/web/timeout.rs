//! Waiting for a promise of user code (`getAccessToken`, a custom `send`) for a bounded time, so that one that
//! never settles never stalls the queue. A late settlement is ignored.

use gloo_timers::callback::Timeout;
use js_sys::{Array, Object, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

/// `None` when `value` (a promise, a thenable, or a plain value) did not settle within `ms`.
pub async fn within(value: &JsValue, ms: u32) -> Option<Result<JsValue, JsValue>> {
    let promise = Promise::resolve(value);
    let marker: JsValue = Object::new().into();
    let mut resolve = None;
    let timer = Promise::new(&mut |res, _| resolve = Some(res));
    let resolve = resolve?;
    let fired = marker.clone();
    // Dropped (cleared) when this returns, so an answered call leaves no timer behind.
    let _timeout = Timeout::new(ms, move || {
        let _ = resolve.call1(&JsValue::UNDEFINED, &fired);
    });
    match JsFuture::from(Promise::race(&Array::of2(&promise, &timer))).await {
        Ok(value) if Object::is(&value, &marker) => None,
        settled => Some(settled),
    }
}
