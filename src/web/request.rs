//! One authorised request to PostgREST, for writes and catch-up alike: the token rule has one owner here.
//!
//! - The token is the one held, else a fresh one from `getAccessToken`, and it must be the queue owner's: a
//!   queue is never sent (nor its feed read) with another user's token.
//! - A 401 to a user's token asks `getAccessToken` once more, checks the owner again, and sends again.
//! - No token to be had, another user's, or a second 401: nothing (more) is sent; a refused token is dropped,
//!   `needsAuth` says why, and `getAccessToken` is asked again with backoff.
//!
//! The API key stands in for a user's token only for writes, and only where the transport allows it (no
//! `getAccessToken`, or `allowAnonymous`); the feed is read with a user's token only.

use std::cell::Cell;
use std::rc::Rc;

use gloo_timers::callback::Timeout;
use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, Headers, Request, RequestInit, RequestRedirect, Response};

use super::auth::{self, Token};
use super::js::error_message;
use super::options::HttpTransport;
use super::{storage, Shared, State};
use crate::core::wire::{HttpRequest, HttpResponse, WireMode};

#[wasm_bindgen]
extern "C" {
    /// The global `fetch`, looked up at each call (windows and workers alike).
    #[wasm_bindgen(js_name = fetch, catch)]
    fn fetch_request(request: &Request) -> Result<Promise, JsValue>;
}

/// What the request is for: it decides whether the API key may stand in, and how failures read.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A batch of writes.
    Writes,
    /// A page of the change feed.
    CatchUp,
}

impl Purpose {
    fn prefix(self) -> &'static str {
        match self {
            Purpose::Writes => "",
            Purpose::CatchUp => "catch-up: ",
        }
    }
}

/// What became of a request.
pub enum Reply {
    /// The server's answer (a 401 only to the API key).
    Answer(HttpResponse),
    /// No token may carry it, and why; nothing (more) went out. `needsAuth` says so, except for a catch-up
    /// where only the API key is to be had (writes go on with it).
    Unauthorized(String),
    /// No answer: a network error, the timeout, or `destroy()`.
    Failed(String),
}

/// The request on its way, so that `destroy()` can abort it and clear its timeout.
pub struct InFlight {
    controller: AbortController,
    _timeout: Timeout,
}

impl InFlight {
    pub fn abort(self) {
        self.controller.abort();
    }
}

/// The token to send with, checked against the queue's owner. `Err` says why nothing may be sent.
pub async fn token(shared: &Shared, http: &HttpTransport, purpose: Purpose) -> Result<Token, String> {
    let token = auth::token(shared, http).await;
    accept(shared, purpose, token)
}

/// Sends `request` with `token` (replaced by a fresh one after a 401, for the requests that follow).
pub async fn send(
    shared: &Shared,
    http: &HttpTransport,
    purpose: Purpose,
    token: &mut Token,
    request: &HttpRequest,
    keepalive: bool,
) -> Reply {
    let mut refreshed = false;
    loop {
        let answer = fetch(shared, http, purpose, token, request, keepalive).await;
        if destroyed(shared) {
            return Reply::Failed("destroyed".into());
        }
        match answer {
            Ok(answer) if answer.status != 401 || matches!(token, Token::ApiKey) => return Reply::Answer(answer),
            Ok(_refused) => {}
            Err(message) => return Reply::Failed(message),
        }
        if !refreshed && http.get_access_token.is_some() {
            refreshed = true;
            match accept(shared, purpose, auth::refresh(shared, http).await) {
                Ok(fresh) => {
                    *token = fresh;
                    continue;
                }
                Err(why) => return Reply::Unauthorized(why),
            }
        }
        if let Ok(mut s) = shared.try_borrow_mut() {
            s.token = None;
        }
        let why = format!(
            "{}the server refused the access token (HTTP 401): sign in again, or call setAccessToken",
            purpose.prefix()
        );
        return Reply::Unauthorized(deny(shared, why));
    }
}

/// A token from [`auth`], or why there is none: only the owner's token goes out, and the realtime channel
/// gets it too.
fn accept(shared: &Shared, purpose: Purpose, token: Result<Token, String>) -> Result<Token, String> {
    match token {
        Ok(Token::Bearer(bearer)) => {
            storage::check_owner(shared, Some(&bearer)).map_err(|why| deny(shared, why))?;
            super::realtime::sync_token(shared);
            Ok(Token::Bearer(bearer))
        }
        Ok(Token::ApiKey) if purpose == Purpose::CatchUp => {
            Err("catch-up needs a user's access token (getAccessToken or setAccessToken)".into())
        }
        Ok(Token::ApiKey) => Ok(Token::ApiKey),
        Err(why) => Err(deny(shared, why)),
    }
}

/// No token to send with: `needsAuth` says why, and `getAccessToken` is asked again with backoff (a token that
/// works clears it).
fn deny(shared: &Shared, why: String) -> String {
    if let Ok(mut s) = shared.try_borrow_mut() {
        s.engine.set_needs_auth(Some(&why));
    }
    auth::ask_later(shared);
    why
}

fn destroyed(shared: &Shared) -> bool {
    shared.try_borrow().map_or(true, |s| s.destroyed)
}

/// Where the request on its way is kept for `destroy()`: writes and catch-up may be on their way at once.
fn slot(s: &mut State, purpose: Purpose) -> Option<&mut Option<InFlight>> {
    match purpose {
        Purpose::Writes => Some(&mut s.request),
        Purpose::CatchUp => s.pull.as_mut().map(|pull| &mut pull.request),
    }
}

async fn fetch(
    shared: &Shared,
    http: &HttpTransport,
    purpose: Purpose,
    token: &Token,
    request: &HttpRequest,
    keepalive: bool,
) -> Result<HttpResponse, String> {
    let network = |e: JsValue| format!("{}network error: {}", purpose.prefix(), error_message(&e));
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
    if purpose == Purpose::Writes && matches!(http.wire.mode, WireMode::Rest { .. }) {
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
    if keepalive {
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
    {
        let Ok(mut s) = shared.try_borrow_mut() else { return Err("destroyed".into()) };
        if s.destroyed {
            return Err("destroyed".into());
        }
        if let Some(slot) = slot(&mut s, purpose) {
            *slot = Some(InFlight { controller, _timeout: timeout });
        }
    }

    let result = async {
        let response: Response = JsFuture::from(fetch_request(&request)?).await?.dyn_into()?;
        let status = response.status();
        let retry_after = response.headers().get("Retry-After").ok().flatten();
        let body = JsFuture::from(response.text()?).await?.as_string().unwrap_or_default();
        Ok::<_, JsValue>(HttpResponse { status, retry_after, body })
    }
    .await;

    if let Some(slot) = shared.try_borrow_mut().ok().as_mut().and_then(|s| slot(s, purpose)) {
        *slot = None; // clears the timeout
    }
    result.map_err(|e| {
        if timed_out.get() {
            format!("{}no answer within {} ms", purpose.prefix(), http.timeout_ms)
        } else {
            network(e)
        }
    })
}
