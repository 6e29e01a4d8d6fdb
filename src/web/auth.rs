//! "No token, no send": where the bearer token comes from, and what happens while there is none.
//!
//! With `getAccessToken` configured, a batch goes out only with the token it gives (or one set with
//! `setAccessToken`). When it throws, rejects, takes longer than `tokenTimeoutMs` or gives null/"", nothing is
//! sent: the engine takes the batch back without counting an attempt and reports `needsAuth`, and the shell
//! asks again with backoff (at once on `forceSyncAll()` and `online`) until a token comes or
//! `setAccessToken` gives one. `allowAnonymous: true` sends with the API key instead. The token is kept in
//! memory only; it is never logged, persisted or put in a message.

use gloo_timers::callback::Timeout;
use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;

use super::js::{self, error_message};
use super::options::{HttpTransport, Transport};
use super::{schedule, storage, timeout, Shared, State};

/// The token to send with, or why there is none.
pub enum Token {
    /// A user's token.
    Bearer(String),
    /// The API key stands in (no `getAccessToken`, or `allowAnonymous`); `request` decides whether it may.
    ApiKey,
}

/// Asks `getAccessToken()` (sync or async) once, within `tokenTimeoutMs`. The error says why there is no
/// token, without the token.
pub async fn ask(get: &Function, timeout_ms: u32) -> Result<String, String> {
    let value = get.call0(&JsValue::UNDEFINED).map_err(|e| format!("getAccessToken threw: {}", error_message(&e)))?;
    let value = match timeout::within(&value, timeout_ms).await {
        None => return Err(format!("getAccessToken did not answer within {timeout_ms} ms (tokenTimeoutMs)")),
        Some(Err(e)) => return Err(format!("getAccessToken rejected: {}", error_message(&e))),
        Some(Ok(value)) => value,
    };
    match value.as_string() {
        Some(token) if is_sendable(&token) => Ok(token),
        // Not the token itself in the message: it may be a real one with a stray newline.
        Some(token) if !token.is_empty() => Err(format!("getAccessToken gave a token {NOT_SENDABLE}")),
        _ => Err(format!("getAccessToken gave no token ({}): sign in, or call setAccessToken", js::describe(&value))),
    }
}

pub const NOT_SENDABLE: &str = "that cannot go in an Authorization header (a space or control character in it)";

/// Whether a token can be sent as `Bearer <token>`: printable ASCII without spaces, a superset of the bearer
/// token syntax. Anything else makes `fetch` throw, which would look like a network error retried forever.
pub fn is_sendable(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// Asks `getAccessToken` for a new token and keeps it; without one, the API key only where allowed. Requests
/// out together (`rest` mode's PATCHes) share one ask: one that finds another under way waits for it and takes
/// the token it brought, so that a token source whose refresh tokens are good once is not asked four times.
pub async fn refresh(shared: &Shared, http: &HttpTransport) -> Result<Token, String> {
    let (epoch, asked) = shared.try_borrow().map_or((0, 0), |s| (s.auth.epoch, s.auth.asked));
    loop {
        let ended = {
            let Ok(mut s) = shared.try_borrow_mut() else { break };
            if !s.auth.refreshing || s.destroyed {
                break;
            }
            let mut slot = None;
            let ended = Promise::new(&mut |resolve, _| slot = Some(resolve));
            s.auth.waiting.extend(slot);
            ended
        };
        // An ask ends within tokenTimeoutMs; the bound only guards against one whose end went unrecorded.
        if timeout::within(&ended, http.token_timeout_ms.saturating_add(1_000)).await.is_none() {
            break;
        }
    }
    if let Ok(s) = shared.try_borrow() {
        // Another request's ask ended while this one waited: its answer is this one's.
        if s.auth.asked != asked {
            return match (&s.token, &s.auth.refused) {
                (Some(token), _) => Ok(Token::Bearer(token.clone())),
                (None, Some(why)) if !http.allow_anonymous => Err(why.clone()),
                (None, _) => Ok(Token::ApiKey),
            };
        }
    }
    if let Ok(mut s) = shared.try_borrow_mut() {
        ask_began(&mut s);
    }
    let token = refresh_since(shared, http, epoch).await;
    if let Ok(mut s) = shared.try_borrow_mut() {
        ask_ended(&mut s, token.as_ref().err());
    }
    token
}

/// An ask of `getAccessToken` began elsewhere (the queue's first, `storage::identify`): a request that needs a
/// token meanwhile waits for it ([`refresh`]).
pub fn ask_began(s: &mut State) {
    s.auth.refreshing = true;
}

/// The ask under way ended, with the token it brought held, or `refused` why not.
pub fn ask_ended(s: &mut State, refused: Option<&String>) {
    s.auth.refreshing = false;
    s.auth.asked += 1;
    s.auth.refused = refused.cloned();
    for resolve in std::mem::take(&mut s.auth.waiting) {
        let _ = resolve.call0(&JsValue::UNDEFINED);
    }
}

/// [`refresh`] for an ask decided at `epoch`: a token set since, even before the ask went out, wins.
async fn refresh_since(shared: &Shared, http: &HttpTransport, epoch: u64) -> Result<Token, String> {
    let Some(get) = &http.get_access_token else { return Ok(Token::ApiKey) };
    let answer = ask(get, http.token_timeout_ms).await;
    // A token set with setAccessToken while the ask was out wins over its answer, late or failed.
    if let Ok(s) = shared.try_borrow() {
        if let Some(token) = s.token.clone().filter(|_| s.auth.epoch != epoch) {
            return Ok(Token::Bearer(token));
        }
    }
    match answer {
        Ok(token) => {
            if let Ok(mut s) = shared.try_borrow_mut() {
                s.token = Some(token.clone());
            }
            Ok(Token::Bearer(token))
        }
        Err(_) if http.allow_anonymous => Ok(Token::ApiKey),
        Err(why) => {
            if let Ok(mut s) = shared.try_borrow_mut() {
                s.token = None;
            }
            Err(why)
        }
    }
}

/// Asking again while sending waits for a token.
#[derive(Default)]
pub struct Retry {
    failures: u32,
    timer: Option<Timeout>,
    asking: bool,
    /// Counts `setAccessToken` tokens, so that an ask that was out meanwhile does not undo one.
    epoch: u64,
    /// A request's ask ([`refresh`]) is under way.
    refreshing: bool,
    /// Counts the requests' asks that ended.
    asked: u64,
    /// Why the last of them brought no token.
    refused: Option<String>,
    /// Resolves the requests waiting for the ask under way.
    waiting: Vec<Function>,
}

impl Retry {
    /// The server answered a request with something other than a 401: the token (or the API key) works.
    pub fn answered(&mut self) {
        self.failures = 0;
    }
}

/// Asks again after 1 s, 2 s, 4 s ... up to a minute: one user, one token source, nothing to spread out.
pub fn delay_ms(failures: u32) -> u32 {
    1_000u32.saturating_mul(1 << failures.saturating_sub(1).min(6)).min(60_000)
}

/// Arms the next ask after a failed one (nothing to ask without `getAccessToken`: `setAccessToken` resumes).
pub fn ask_later(shared: &Shared) {
    let Ok(mut s) = shared.try_borrow_mut() else { return };
    let asks = matches!(&*s.transport, Transport::Http(http) if http.get_access_token.is_some());
    if s.destroyed || !asks || s.auth.asking {
        return;
    }
    s.auth.failures = s.auth.failures.saturating_add(1);
    let weak = std::rc::Rc::downgrade(shared);
    s.auth.timer = Some(Timeout::new(delay_ms(s.auth.failures), move || {
        if let Some(shared) = weak.upgrade() {
            ask_now(&shared);
        }
    }));
}

/// Asks at once if sending waits for a token (`forceSyncAll()`, `online`, the retry timer).
pub fn ask_now(shared: &Shared) {
    let (http, epoch) = {
        let Ok(mut s) = shared.try_borrow_mut() else { return };
        let asks = matches!(&*s.transport, Transport::Http(http) if http.get_access_token.is_some());
        // Without getAccessToken only setAccessToken can end the wait (never a silent fall back to the API key).
        if s.destroyed || s.auth.asking || !asks || !s.engine.needs_auth() {
            return;
        }
        s.auth.timer = None;
        s.auth.asking = true;
        (s.transport.clone(), s.auth.epoch)
    };
    let shared = shared.clone();
    spawn_local(async move {
        let Transport::Http(http) = &*http else { return };
        let result = refresh_since(&shared, http, epoch).await;
        let failed = {
            let Ok(mut s) = shared.try_borrow_mut() else { return };
            s.auth.asking = false;
            if s.destroyed {
                return;
            }
            match result {
                // Another user's token is no token for this queue: the wait (and its `needsAuth`) goes on, with
                // backoff, instead of ending here and starting again when the send path refuses it.
                Ok(Token::Bearer(bearer)) if !storage::is_owners(&s, &bearer) => true,
                // The backoff goes on until the server takes the token (`Retry::answered`): a token it keeps
                // refusing is asked for at the backoff's pace, not every second.
                Ok(_) => {
                    s.engine.set_needs_auth(None);
                    false
                }
                Err(why) => {
                    s.engine.set_needs_auth(Some(&why));
                    true
                }
            }
        };
        if failed {
            ask_later(&shared);
        }
        schedule(&shared);
    });
}

/// A token came from `setAccessToken`: sending resumes.
pub fn resume(shared: &Shared) {
    if let Ok(mut s) = shared.try_borrow_mut() {
        s.auth.epoch += 1;
        s.auth.failures = 0;
        s.auth.timer = None;
        if s.engine.needs_auth() {
            s.engine.set_needs_auth(None);
        }
    }
}
