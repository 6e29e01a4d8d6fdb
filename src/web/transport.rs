//! Carrying one batch to the server: PostgREST through `fetch` (executing the core's wire plan), or the
//! caller's own `send(batch)`. Nothing here touches the engine; the shell reports what came back.

use std::cell::Cell;
use std::rc::Rc;

use gloo_timers::callback::Timeout;
use js_sys::{Function, Promise};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, Headers, Request, RequestInit, Response};

use super::js::{self, error_message};
use super::options::HttpTransport;
use super::Shared;
use crate::core::wire::{Exchange, HttpRequest, HttpResponse};
use crate::core::{Batch, ChangeOutcome, Outcome, OutgoingChange, Row};

#[wasm_bindgen]
extern "C" {
    /// The global `fetch`, looked up at each call (windows and workers alike).
    #[wasm_bindgen(js_name = fetch, catch)]
    fn fetch_request(request: &Request) -> Result<Promise, JsValue>;
}

/// The whole batch failed before any write was answered.
pub struct BatchFailure {
    pub message: String,
    pub retry_after_ms: Option<u64>,
}

impl BatchFailure {
    fn new(message: impl Into<String>) -> Self {
        BatchFailure { message: message.into(), retry_after_ms: None }
    }
}

/// The request on its way, so that `destroy()` can abort it and clear its timeout.
pub struct Pending {
    controller: AbortController,
    _timeout: Timeout,
}

impl Pending {
    pub fn abort(self) {
        self.controller.abort();
    }
}

fn destroyed(shared: &Shared) -> bool {
    shared.try_borrow().map_or(true, |s| s.destroyed)
}

/// Runs the batch through the core's [`Exchange`]: one request after another, with one token refresh per
/// request on a 401 (not reported to the engine, so it costs no attempt).
pub async fn http(shared: &Shared, http: &HttpTransport, batch: &Batch) -> Result<Vec<ChangeOutcome>, BatchFailure> {
    let mut exchange = Exchange::new(batch, &http.wire);
    let mut token = current_token(shared, http).await;
    while let Some(request) = exchange.next_request() {
        let mut refreshed = false;
        loop {
            let result = fetch_once(shared, http, &request, token.as_deref()).await;
            if destroyed(shared) {
                return Err(BatchFailure::new("destroyed"));
            }
            match result {
                Ok(response) if response.status == 401 && !refreshed && http.get_access_token.is_some() => {
                    refreshed = true;
                    match refresh_token(shared, http).await {
                        // Durable queue (H3): a fresh token of another user carries nothing of this queue.
                        Some(fresh) if super::storage::check_owner(shared, fresh.as_deref()).is_err() => {
                            exchange.on_response(response);
                            break;
                        }
                        Some(fresh) => token = fresh,
                        None => {
                            exchange.on_response(response);
                            break;
                        }
                    }
                }
                Ok(response) => {
                    exchange.on_response(response);
                    break;
                }
                Err(message) => {
                    exchange.on_network_error(&message);
                    break;
                }
            }
        }
    }
    Ok(exchange.finish())
}

/// The token set with `setAccessToken` or last obtained, else a first one from `getAccessToken`.
pub(super) async fn current_token(shared: &Shared, http: &HttpTransport) -> Option<String> {
    if let Ok(state) = shared.try_borrow() {
        if state.token.is_some() {
            return state.token.clone();
        }
    }
    if http.get_access_token.is_some() {
        refresh_token(shared, http).await.flatten()
    } else {
        None
    }
}

/// Asks `getAccessToken()` (sync or async) for a token and keeps it. `None` when it threw or rejected; `Some(None)`
/// when it answered that there is none (the API key is sent instead).
async fn refresh_token(shared: &Shared, http: &HttpTransport) -> Option<Option<String>> {
    let get = http.get_access_token.as_ref()?;
    let value = get.call0(&JsValue::UNDEFINED).ok()?;
    let value = if value.has_type::<Promise>() || js::get(&value, "then").is_function() {
        JsFuture::from(Promise::resolve(&value)).await.ok()?
    } else {
        value
    };
    let token = value.as_string().filter(|t| !t.is_empty());
    if let Ok(mut state) = shared.try_borrow_mut() {
        state.token.clone_from(&token);
    }
    Some(token)
}

async fn fetch_once(
    shared: &Shared,
    http: &HttpTransport,
    request: &HttpRequest,
    token: Option<&str>,
) -> Result<HttpResponse, String> {
    let network = |e: JsValue| format!("network error: {}", error_message(&e));
    let headers = Headers::new().map_err(network)?;
    for (name, value) in &request.headers {
        headers.append(name, value).map_err(network)?;
    }
    headers.append("apikey", &http.api_key).map_err(network)?;
    headers.append("Authorization", &format!("Bearer {}", token.unwrap_or(&http.api_key))).map_err(network)?;
    let init = RequestInit::new();
    init.set_method(request.method);
    init.set_headers(&headers);
    if let Some(body) = &request.body {
        init.set_body(&JsValue::from_str(body));
    }
    // Durable queue (H3): while the page is hidden, a request small enough for the keepalive budget outlives it.
    let hidden = shared.try_borrow().is_ok_and(|s| s.durable.hidden);
    if hidden && request.body.as_ref().map_or(0, String::len) <= super::lifecycle::KEEPALIVE_BODY_BYTES {
        let _ = js_sys::Reflect::set(&init, &"keepalive".into(), &JsValue::TRUE);
    }
    let controller = AbortController::new().map_err(network)?;
    init.set_signal(Some(&controller.signal()));
    let url = format!("{}{}", http.base_url, request.path);
    let request = Request::new_with_str_and_init(&url, &init).map_err(network)?;

    let timed_out = Rc::new(Cell::new(false));
    let timeout = {
        let (controller, timed_out) = (controller.clone(), timed_out.clone());
        Timeout::new(http.timeout_ms, move || {
            timed_out.set(true);
            controller.abort();
        })
    };
    match shared.try_borrow_mut() {
        Ok(mut state) if !state.destroyed => state.request = Some(Pending { controller, _timeout: timeout }),
        _ => return Err("destroyed".into()),
    }

    let result = async {
        let response: Response = JsFuture::from(fetch_request(&request)?).await?.dyn_into()?;
        let status = response.status();
        let retry_after = response.headers().get("Retry-After").ok().flatten();
        let body = JsFuture::from(response.text()?).await?.as_string().unwrap_or_default();
        Ok::<_, JsValue>(HttpResponse { status, retry_after, body })
    }
    .await;

    if let Ok(mut state) = shared.try_borrow_mut() {
        state.request = None; // clears the timeout
    }
    result.map_err(|e| if timed_out.get() { format!("no answer within {} ms", http.timeout_ms) } else { network(e) })
}

/// What a custom `send` receives.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsBatch<'a> {
    id: u64,
    client_id: &'a str,
    low_water: u64,
    changes: &'a [OutgoingChange],
}

/// What a custom `send` resolves to, one per change.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsResult {
    seq: u64,
    status: Status,
    #[serde(default)]
    row: Option<Row>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    transient: bool,
    #[serde(default)]
    retry_after_ms: Option<f64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Applied,
    Conflict,
    Error,
}

pub async fn custom(
    send: &Function,
    this: &JsValue,
    client_id: &str,
    batch: &Batch,
) -> Result<Vec<ChangeOutcome>, BatchFailure> {
    let payload =
        js::from_serde(&JsBatch { id: batch.id, client_id, low_water: batch.low_water, changes: &batch.changes });
    let returned = send
        .call1(this, &payload)
        .map_err(|e| BatchFailure::new(format!("transport.send threw: {}", error_message(&e))))?;
    let resolved = JsFuture::from(Promise::resolve(&returned))
        .await
        .map_err(|e| BatchFailure::new(format!("transport.send rejected: {}", error_message(&e))))?;
    let malformed = |why: String| {
        BatchFailure::new(format!(
            "transport.send must resolve to an array of {{ seq, status: \"applied\" | \"conflict\" | \"error\", ... }}: {why}"
        ))
    };
    if !js_sys::Array::is_array(&resolved) {
        return Err(malformed(format!("got {}", js::describe(&resolved))));
    }
    let json = js::json_text(&resolved).map_err(malformed)?;
    let results: Vec<JsResult> = serde_json::from_str(&json).map_err(|e| malformed(e.to_string()))?;
    Ok(results
        .into_iter()
        .map(|r| {
            let message = || r.message.clone().unwrap_or_else(|| "the transport reported an error".to_owned());
            let outcome = match r.status {
                Status::Applied => Outcome::Applied,
                Status::Conflict => Outcome::Conflict { row: r.row.clone() },
                Status::Error if r.transient => Outcome::Transient {
                    message: message(),
                    retry_after_ms: r.retry_after_ms.filter(|ms| ms.is_finite() && *ms >= 0.0).map(|ms| ms as u64),
                },
                Status::Error => Outcome::Permanent { code: r.code.clone(), message: message() },
            };
            ChangeOutcome { seq: r.seq, outcome }
        })
        .collect())
}
