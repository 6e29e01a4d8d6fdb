//! Carrying one of the engine's requests: to PostgREST through `fetch` (under [`request::send`]'s token rule),
//! or to the caller's own `send(batch)`. Nothing here reads or plans the wire: the engine built the request and
//! decodes the answer.

use js_sys::Function;
use wasm_bindgen::prelude::*;

use super::js::{self, error_message};
use super::options::HttpTransport;
use super::request::{self, Purpose, Reply};
use super::{timeout, Shared};
use crate::core::wire::{HttpRequest, HttpResponse, MALFORMED};

/// What became of a request, for the engine.
pub enum Answer {
    Response(HttpResponse),
    /// No answer: network error, timeout, `destroy()`, or the app's `send` threw, rejected or did not settle.
    Failed(String),
    /// No token may carry it (none to be had, another user's, or refused twice); `needsAuth` says why.
    Unauthorized(String),
}

/// One request to PostgREST with the user's token (a refresh after a 401 is [`request::send`]'s: it costs the
/// writes no attempt).
pub async fn http(shared: &Shared, http: &HttpTransport, next: &HttpRequest) -> Answer {
    let mut token = match request::token(shared, http, Purpose::Writes).await {
        Ok(token) => token,
        Err(reason) => return Answer::Unauthorized(reason),
    };
    // Durable queue (H3): while the page is hidden, a request small enough for the keepalive budget outlives it.
    let hidden = shared.try_borrow().is_ok_and(|s| s.durable.hidden);
    let keepalive = hidden && next.body.as_ref().map_or(0, String::len) <= super::lifecycle::keepalive_budget(next);
    match request::send(shared, http, Purpose::Writes, &mut token, next, keepalive).await {
        Reply::Answer(response) => Answer::Response(response),
        Reply::Failed(message) => Answer::Failed(message),
        Reply::Unauthorized(reason) => Answer::Unauthorized(reason),
    }
}

/// The caller's own `send(batch)`, with the batch the engine wrote; what it resolves to goes back as the
/// answer's body. What comes before and after its one await is in plain functions: a nested async function
/// would be a state machine of its own in the wasm.
pub async fn custom(send: &Function, this: &JsValue, timeout_ms: u32, batch: Option<&str>) -> Answer {
    let batch = js::parse(batch.unwrap_or("null"));
    let returned = match send.call1(this, &batch) {
        Ok(returned) => returned,
        Err(e) => return Answer::Failed(format!("transport.send threw: {}", error_message(&e))),
    };
    let settled = timeout::within(&returned, timeout_ms).await;
    custom_answer(settled, timeout_ms)
}

/// What the custom `send`'s promise settled to (`None`: not within `timeout_ms`), as an answer.
fn custom_answer(settled: Option<Result<JsValue, JsValue>>, timeout_ms: u32) -> Answer {
    let resolved = match settled {
        None => {
            return Answer::Failed(format!(
                "transport.send did not settle within {timeout_ms} ms (transport.timeoutMs)"
            ))
        }
        Some(Err(e)) => return Answer::Failed(format!("transport.send rejected: {}", error_message(&e))),
        Some(Ok(value)) => value,
    };
    if !js::is_array(&resolved) {
        return Answer::Failed(format!("{MALFORMED}got {}", js::describe(&resolved)));
    }
    match js::json_text(&resolved) {
        Ok(body) => Answer::Response(HttpResponse { status: 200, retry_after: None, body }),
        Err(why) => Answer::Failed(format!("{MALFORMED}{why}")),
    }
}
