//! One authorised request to PostgREST, for writes and catch-up alike: the token rule has one owner here.
//!
//! - The token is the one held, else a fresh one from `getAccessToken`, and it must be the queue owner's: a
//!   queue is never sent (nor its feed read) with another user's token.
//! - A 401 to a user's token asks `getAccessToken` once more, checks the owner again, and sends again.
//! - No token to be had, another user's, a second 401, or a 401 to the API key: nothing (more) is sent; a
//!   refused token is dropped, `needsAuth` says why, and `getAccessToken` is asked again with backoff.
//!
//! The API key stands in for a user's token only for writes, and only where the transport allows it: no
//! `getAccessToken` and a queue that is nobody's yet, or `allowAnonymous`. The feed is read with a user's token
//! only.

use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::auth::{self, Token};
use super::js::error_message;
use super::options::HttpTransport;
use super::{storage, Shared, State};
use crate::core::wire::{failure_message, HttpRequest, HttpResponse, WireMode};

#[wasm_bindgen(module = "/src/web/shell.js")]
extern "C" {
    /// The request on its way: a promise of its [`Answer`] that never rejects, and `abort()` for `destroy()`.
    #[derive(Clone)]
    #[wasm_bindgen(extends = Promise)]
    pub type InFlight;
    #[wasm_bindgen(method)]
    pub fn abort(this: &InFlight);
    /// `fetch` with a timeout: `headers` holds names and values, alternating.
    #[wasm_bindgen(js_name = request)]
    fn start(
        url: &str,
        method: &str,
        headers: Vec<String>,
        body: Option<&str>,
        keepalive: bool,
        timeout_ms: u32,
    ) -> InFlight;

    /// `{ status, retryAfter, body }`, or `{ error }` (null: the timeout).
    type Answer;
    #[wasm_bindgen(method, getter)]
    fn status(this: &Answer) -> Option<u16>;
    #[wasm_bindgen(method, getter, js_name = retryAfter)]
    fn retry_after(this: &Answer) -> Option<String>;
    /// The body's bytes, as they came ([`text`] makes them the text `Response.text()` would give).
    #[wasm_bindgen(method, getter)]
    fn body(this: &Answer) -> Option<Vec<u8>>;
    /// The body decoded as `Response.text()` does.
    #[wasm_bindgen(method)]
    fn text(this: &Answer) -> String;
    #[wasm_bindgen(method, getter)]
    fn error(this: &Answer) -> JsValue;
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
    /// The server's answer, never a 401.
    Answer(HttpResponse),
    /// No token may carry it, and why; nothing (more) went out. `needsAuth` says so, except for a catch-up
    /// where only the API key is to be had (writes go on with it).
    Unauthorized(String),
    /// No answer: a network error, the timeout, or `destroy()`.
    Failed(String),
}

/// The token to send with (the one held, else a fresh one from [`auth::refresh`]), checked against the queue's
/// owner. `Err` says why nothing may be sent.
pub async fn token(shared: &Shared, http: &HttpTransport, purpose: Purpose) -> Result<Token, String> {
    let held = shared.try_borrow().ok().and_then(|s| s.token.clone());
    let token = match held {
        Some(token) => Ok(Token::Bearer(token)),
        None => auth::refresh(shared, http).await,
    };
    accept(shared, http, purpose, token)
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
        // A 401 is answered once with another token, then by a wait for one (`needsAuth`).
        let next = match answer {
            Ok(answer) if answer.status != 401 => {
                if let Ok(mut s) = shared.try_borrow_mut() {
                    s.auth.answered();
                }
                return Reply::Answer(answer);
            }
            Err(message) => return Reply::Failed(message),
            // The server wants a user: waiting for one is the truth, where retrying would spend the writes'
            // attempts on a refusal that no retry changes. A token set while the request was out
            // (`setAccessToken` ended no wait then) is sent with once.
            Ok(refused) if matches!(token, Token::ApiKey) => {
                match shared.try_borrow().ok().and_then(|s| s.token.clone()).filter(|_| !refreshed) {
                    Some(held) => Ok(Token::Bearer(held)),
                    None => {
                        let why = format!(
                            "{}the server refused the API key ({}): it takes a user's access token; sign in, then \
                             call setAccessToken or pass transport.getAccessToken",
                            purpose.prefix(),
                            failure_message(&refused)
                        );
                        return Reply::Unauthorized(deny(shared, why));
                    }
                }
            }
            // A request out beside this one may have brought a new token since this one went.
            Ok(_) if !refreshed && http.get_access_token.is_some() => match newer_than(shared, token) {
                Some(newer) => Ok(Token::Bearer(newer)),
                None => auth::refresh(shared, http).await,
            },
            Ok(_) => {
                if let Ok(mut s) = shared.try_borrow_mut() {
                    s.token = None;
                }
                let why = format!(
                    "{}the server refused the access token (HTTP 401): sign in again, or call setAccessToken",
                    purpose.prefix()
                );
                return Reply::Unauthorized(deny(shared, why));
            }
        };
        refreshed = true;
        match accept(shared, http, purpose, next) {
            Ok(fresh) => *token = fresh,
            Err(why) => return Reply::Unauthorized(why),
        }
    }
}

/// The token held, if it is not the one `sent`.
fn newer_than(shared: &Shared, sent: &Token) -> Option<String> {
    let held = shared.try_borrow().ok()?.token.clone()?;
    (!matches!(sent, Token::Bearer(token) if *token == held)).then_some(held)
}

/// A token from [`auth`], or why there is none: only the owner's token goes out, and the realtime channel
/// gets it too.
fn accept(
    shared: &Shared,
    http: &HttpTransport,
    purpose: Purpose,
    token: Result<Token, String>,
) -> Result<Token, String> {
    match token {
        Ok(Token::Bearer(bearer)) => {
            storage::check_owner(shared, Some(&bearer)).map_err(|why| deny(shared, why))?;
            super::realtime::sync_token(shared);
            Ok(Token::Bearer(bearer))
        }
        Ok(Token::ApiKey) if purpose == Purpose::CatchUp => {
            Err("catch-up needs a user's access token (getAccessToken or setAccessToken)".into())
        }
        Ok(Token::ApiKey) => match key_stands_in(shared, http) {
            Ok(()) => Ok(Token::ApiKey),
            Err(why) => Err(deny(shared, why)),
        },
        Err(why) => Err(deny(shared, why)),
    }
}

/// The API key sends a user's queue only where `allowAnonymous` says so: without it, a queue that belongs to a user
/// (the `user` option, or the first token's `sub`) waits for that user's token, as after a failed `getAccessToken`.
fn key_stands_in(shared: &Shared, http: &HttpTransport) -> Result<(), String> {
    if http.allow_anonymous {
        return Ok(());
    }
    // Fails closed: a state that cannot be read now may name an owner.
    let owner = shared.try_borrow().map_err(|_| "waiting to read whose queue this is".to_string())?.durable.owner();
    match owner {
        Some(owner) => Err(format!(
            "waiting for user {owner}'s access token: the queue is that user's; pass transport.getAccessToken or call \
             setAccessToken (transport.allowAnonymous: true sends it with the API key)"
        )),
        None => Ok(()),
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

/// Keeps a request on its way for `destroy()` to abort: the writes may have several out, and the catch-up one.
fn keep(s: &mut State, purpose: Purpose, in_flight: &InFlight) {
    match purpose {
        Purpose::Writes => s.requests.push(in_flight.clone()),
        Purpose::CatchUp => {
            if let Some(pull) = s.pull.as_mut() {
                pull.request = Some(in_flight.clone());
            }
        }
    }
}

fn forget(s: &mut State, purpose: Purpose, in_flight: &InFlight) {
    match purpose {
        Purpose::Writes => {
            s.requests.retain(|kept| AsRef::<JsValue>::as_ref(kept) != AsRef::<JsValue>::as_ref(in_flight))
        }
        Purpose::CatchUp => {
            if let Some(pull) = s.pull.as_mut() {
                pull.request = None;
            }
        }
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
    let bearer = match token {
        Token::Bearer(token) => token,
        Token::ApiKey => &http.api_key,
    };
    let mut headers = Vec::with_capacity(2 * request.headers.len() + 6);
    for (name, value) in &request.headers {
        headers.extend([(*name).to_owned(), value.clone()]);
    }
    headers.extend(["apikey".to_owned(), http.api_key.clone(), "Authorization".to_owned(), format!("Bearer {bearer}")]);
    // The change feed records who wrote a row (issue 11): rpc mode says it in the body, rest mode here.
    if purpose == Purpose::Writes && matches!(http.wire.mode, WireMode::Rest { .. }) {
        headers.extend(["X-Record-Sync-Origin".to_owned(), http.wire.client_id.clone()]);
    }
    let url = format!("{}{}", http.base_url, request.path);
    if destroyed(shared) {
        return Err("destroyed".into());
    }
    // No borrow is held: a fetch the page patched is user code, and may call back into the instance.
    let in_flight = start(&url, request.method, headers, request.body.as_deref(), keepalive, http.timeout_ms);
    match shared.try_borrow_mut() {
        Ok(mut s) if !s.destroyed => keep(&mut s, purpose, &in_flight),
        _ => in_flight.abort(),
    }
    let answer = JsFuture::from(Promise::from(in_flight.clone())).await;
    if let Ok(mut s) = shared.try_borrow_mut() {
        forget(&mut s, purpose, &in_flight);
    }
    let network = |error: JsValue| format!("{}network error: {}", purpose.prefix(), error_message(&error));
    let answer: Answer = answer.map_err(network)?.unchecked_into();
    match answer.status() {
        Some(status) => Ok(HttpResponse { status, retry_after: answer.retry_after(), body: text(&answer) }),
        None => match answer.error() {
            error if error.is_null() => Err(format!("{}no answer within {} ms", purpose.prefix(), http.timeout_ms)),
            error => Err(network(error)),
        },
    }
}

/// The body as `Response.text()` reads it. Valid UTF-8 without a byte order mark, PostgREST's answers among
/// it, is taken as it is; anything else is decoded in JS, which knows the rule, rather than with a lossy
/// decoder linked into the wasm for a body no server of ours sends.
fn text(answer: &Answer) -> String {
    match String::from_utf8(answer.body().unwrap_or_default()) {
        Ok(text) if !text.starts_with('\u{feff}') => text,
        _ => answer.text(),
    }
}
