//! Carrying one batch to the server: PostgREST through `fetch` (executing the core's wire plan), or the
//! caller's own `send(batch)`. Nothing here touches the engine; the shell reports what came back.

use std::cell::Cell;
use std::rc::Rc;

use gloo_timers::callback::Timeout;
use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, Headers, Request, RequestInit, RequestRedirect, Response};

use super::auth::{self, Token};
use super::js::{self, error_message};
use super::options::HttpTransport;
use super::row::JsRow;
use super::storage;
use super::Batch;
use super::{timeout, Shared};
use crate::core::json::{write_array, Json, ObjectWriter};
use crate::core::wire::{decode_result, Exchange, HttpRequest, HttpResponse, WireMode};

type ChangeOutcome = crate::core::ChangeOutcome<JsRow>;

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

/// A queue is only ever sent with its owner's token (durable queue): another user's token is no token for it,
/// so the batch waits unsent, as it does while there is none.
fn owned_by_queue(shared: &Shared, token: Token) -> Result<Token, String> {
    match &token {
        Token::Bearer(bearer) => storage::check_owner(shared, Some(bearer)).map(|()| token),
        Token::ApiKey => Ok(token),
    }
}

fn destroyed(shared: &Shared) -> bool {
    shared.try_borrow().map_or(true, |s| s.destroyed)
}

/// What became of a batch.
pub enum Sent {
    Answered(Vec<ChangeOutcome>),
    /// The whole batch failed before any write was answered.
    Failed(BatchFailure),
    /// No token to send with (or the server refused it): the writes without an outcome go back unsent.
    Unauthorized {
        outcomes: Vec<ChangeOutcome>,
        reason: String,
    },
    /// No token to send with: nothing went out.
    Unsent {
        reason: String,
    },
}

/// Runs the batch through the core's [`Exchange`]: one request after another, with one token refresh per
/// request on a 401 (not reported to the engine, so it costs no attempt).
pub async fn http(shared: &Shared, http: &HttpTransport, batch: &Batch) -> Sent {
    let mut token = match auth::token(shared, http).await.and_then(|token| owned_by_queue(shared, token)) {
        Ok(token) => token,
        Err(reason) => return Sent::Unsent { reason },
    };
    let mut exchange = Exchange::new(batch, &http.wire);
    while let Some(request) = exchange.next_request() {
        let mut refreshed = false;
        loop {
            let result = fetch_once(shared, http, &request, &token).await;
            if destroyed(shared) {
                return Sent::Failed(BatchFailure::new("destroyed"));
            }
            match result {
                Ok(response) if response.status == 401 && matches!(token, Token::Bearer(_)) => {
                    if !refreshed && http.get_access_token.is_some() {
                        refreshed = true;
                        match auth::refresh(shared, http).await.and_then(|token| owned_by_queue(shared, token)) {
                            Ok(fresh) => {
                                token = fresh;
                                continue;
                            }
                            Err(reason) => return Sent::Unauthorized { outcomes: exchange.finish(), reason },
                        }
                    }
                    if let Ok(mut s) = shared.try_borrow_mut() {
                        s.token = None;
                    }
                    let reason =
                        "the server refused the access token (HTTP 401): sign in again, or call setAccessToken";
                    return Sent::Unauthorized { outcomes: exchange.finish(), reason: reason.into() };
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
    Sent::Answered(exchange.finish())
}

async fn fetch_once(
    shared: &Shared,
    http: &HttpTransport,
    request: &HttpRequest,
    token: &Token,
) -> Result<HttpResponse, String> {
    let network = |e: JsValue| format!("network error: {}", error_message(&e));
    let headers = Headers::new().map_err(network)?;
    for (name, value) in &request.headers {
        headers.append(name, value).map_err(network)?;
    }
    headers.append("apikey", &http.api_key).map_err(network)?;
    let bearer = match token {
        Token::Bearer(token) => token,
        Token::ApiKey => &http.api_key,
    };
    headers.append("Authorization", &format!("Bearer {bearer}")).map_err(network)?;
    // The change feed records who wrote a row (issue 11): rpc mode says it in the body, rest mode here.
    if matches!(http.wire.mode, WireMode::Rest { .. }) {
        headers.append("X-Record-Sync-Origin", &http.wire.client_id).map_err(network)?;
    }
    let init = RequestInit::new();
    init.set_method(request.method);
    // A redirect is never PostgREST's answer (a captive portal, a login page): it fails as a network error.
    init.set_redirect(RequestRedirect::Error);
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

pub async fn custom(send: &Function, this: &JsValue, timeout_ms: u32, client_id: &str, batch: &Batch) -> Sent {
    match custom_results(send, this, timeout_ms, client_id, batch).await {
        Ok(outcomes) => Sent::Answered(outcomes),
        Err(failure) => Sent::Failed(failure),
    }
}

async fn custom_results(
    send: &Function,
    this: &JsValue,
    timeout_ms: u32,
    client_id: &str,
    batch: &Batch,
) -> Result<Vec<ChangeOutcome>, BatchFailure> {
    // What a custom `send` receives: `{ id, clientId, lowWater, changes }`.
    let payload = js::view(|out| {
        let mut o = ObjectWriter::new(out);
        o.u64("id", batch.id).str("clientId", client_id).u64("lowWater", batch.low_water);
        write_array(o.key("changes"), &batch.changes, |c, out| c.write_json(out));
        o.end();
    });
    let returned = send
        .call1(this, &payload)
        .map_err(|e| BatchFailure::new(format!("transport.send threw: {}", error_message(&e))))?;
    let resolved = match timeout::within(&returned, timeout_ms).await {
        None => {
            return Err(BatchFailure::new(format!(
                "transport.send did not settle within {timeout_ms} ms (transport.timeoutMs)"
            )))
        }
        Some(Err(e)) => return Err(BatchFailure::new(format!("transport.send rejected: {}", error_message(&e)))),
        Some(Ok(value)) => value,
    };
    let malformed = |why: String| {
        BatchFailure::new(format!(
            "transport.send must resolve to an array of {{ seq, status: \"applied\" | \"conflict\" | \"missing\" | \"error\", ... }}: {why}"
        ))
    };
    if !js_sys::Array::is_array(&resolved) {
        return Err(malformed(format!("got {}", js::describe(&resolved))));
    }
    let json = js::json_text(&resolved).map_err(malformed)?;
    let Ok(Json::Array(results)) = Json::parse(&json) else {
        return Err(malformed("not a JSON array".into()));
    };
    results.iter().map(decode_result).collect::<Result<_, _>>().map_err(malformed)
}
