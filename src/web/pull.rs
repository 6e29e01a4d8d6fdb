//! Catch-up (issue 11): `pull: { tables, realtime, pageSize, intervalMs }`, `pull()`, `onRemoteChanges`. Pages
//! `POST {url}/rpc/record_sync_changes` from the cursor, hands each page to the core's [`Remote`] (which holds
//! records with unsettled local changes and refuses bad pages), and delivers what is ready to the listeners.
//!
//! When: at start, on `online`, after a local change of a held record settles (the core asks), every
//! `intervalMs`, after a failure with backoff, and on `pull()`. Only with a user's token, as writes: without
//! one nothing is sent and `needsAuth` says so. Between pages the task yields to the browser, so a long
//! catch-up never holds the main thread longer than one page's delivery.

use std::rc::Rc;

use gloo_timers::callback::{Interval, Timeout};
use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;

use super::auth;
use super::js::{self, error_message};
use super::options::{HttpTransport, Transport};
use super::request::{self, InFlight, Purpose, Reply};
use super::row::JsRow;
use super::{notify, storage, Shared, State};
use crate::core::json::{write_array, Json, ObjectWriter};
use crate::core::remote::{PullOptions, Remote, RemoteChange, SavedCursor, DEFAULT_PAGE_SIZE};
use crate::core::wire::HttpRequest;

#[wasm_bindgen(module = "/src/web/shell.js")]
extern "C" {
    #[wasm_bindgen(js_name = remoteChanges)]
    fn with_rows(json: &str, rows: Vec<JsValue>) -> JsValue;
}

const FEED_FUNCTION: &str = "record_sync_changes";

/// A `pull()` promise: settled by the first catch-up that begins after it was asked for.
struct Waiter {
    after: u64,
    received_before: u64,
    resets_before: u64,
    resolve: Function,
    reject: Function,
}

pub struct Pull {
    pub remote: Remote<JsRow>,
    pub tables: Vec<String>,
    /// With `realtime: true`: where the socket connects.
    pub realtime_url: Option<String>,
    pub socket: Option<super::realtime::Socket>,
    pub realtime_connected: bool,
    interval_ms: Option<u32>,
    pub listeners: Vec<(u32, Function)>,
    waiters: Vec<Waiter>,
    /// The catch-up task is running.
    running: bool,
    started: u64,
    failures: u32,
    retry: Option<Timeout>,
    interval: Option<Interval>,
    /// The page request on its way ([`request`] keeps it here for `destroy()`).
    pub request: Option<InFlight>,
    /// The last listener error, until a delivery reaches every listener.
    listener_error: Option<String>,
    version: u64,
    /// A delivery of realtime rows is due ([`deliver_soon`]).
    delivery: Option<Timeout>,
}

/// The `pull` option, as [`super::options::check`] gave it; `None` without it.
pub fn from_options(
    checked: &JsValue,
    primary_keys: &crate::core::FastMap<String, String>,
    client_id: &str,
) -> Option<Pull> {
    let pull = js::get(checked, "pull");
    if pull.is_null() || pull.is_undefined() {
        return None;
    }
    let tables = super::options::strings(&super::options::array(&pull, "tables"));
    let realtime_url = js::get(&pull, "realtimeUrl").as_string();
    let page_size = super::options::number(&pull, "pageSize").map_or(DEFAULT_PAGE_SIZE, |n| n as u32);
    let interval_ms = super::options::number(&pull, "intervalMs").map(|n| n as u32);
    let options = PullOptions { tables: tables.clone(), page_size, primary_keys: primary_keys.clone() };
    Some(Pull {
        remote: Remote::new(client_id, options),
        tables,
        realtime_url,
        socket: None,
        realtime_connected: false,
        interval_ms,
        listeners: Vec::new(),
        waiters: Vec::new(),
        running: false,
        started: 0,
        failures: 0,
        retry: None,
        interval: None,
        request: None,
        listener_error: None,
        version: 0,
        delivery: None,
    })
}

/// Starts the first catch-up and the interval, if any.
pub fn start(shared: &Shared) {
    if let Ok(mut s) = shared.try_borrow_mut() {
        let weak = Rc::downgrade(shared);
        if let Some(pull) = s.pull.as_mut() {
            pull.interval = pull.interval_ms.map(|ms| {
                Interval::new(ms, move || {
                    if let Some(shared) = weak.upgrade() {
                        request(&shared);
                    }
                })
            });
        }
    }
    kick(shared);
}

/// A new token from `setAccessToken`: the realtime channel gets it too.
pub fn token_changed(shared: &Shared) {
    super::realtime::sync_token(shared);
    request(shared);
}

/// Asks for a catch-up (`online`, the interval, `pull()`).
pub fn request(shared: &Shared) {
    if let Ok(mut s) = shared.try_borrow_mut() {
        if let Some(pull) = s.pull.as_mut() {
            pull.remote.request_pull();
        }
    }
    kick(shared);
}

/// After every tick of the engine: held records whose local change settled wait for a catch-up, which
/// starts here; what is ready goes to the listeners.
pub fn after_tick(shared: &Shared) {
    {
        let Ok(mut s) = shared.try_borrow_mut() else { return };
        let s = &mut *s;
        let Some(pull) = s.pull.as_mut() else { return };
        pull.remote.settle(&super::tabs::LocalView::new(&s.engine, &mut s.durable));
    }
    kick(shared);
    deliver(shared);
}

/// Starts the catch-up task if one is wanted and none runs.
pub fn kick(shared: &Shared) {
    {
        let Ok(mut s) = shared.try_borrow_mut() else { return };
        // Not before the stored queue (and its cursor) is read.
        let ready = s.engine.is_online() && !s.destroyed && storage::may_pull(&s);
        let Some(pull) = s.pull.as_mut().filter(|_| ready) else { return };
        if pull.running || !pull.remote.wants_pull() {
            return;
        }
        pull.running = true;
    }
    spawn_local(run(shared.clone()));
}

async fn run(shared: Shared) {
    loop {
        let (number, transport) = {
            let Ok(mut s) = shared.try_borrow_mut() else { return };
            let transport = s.transport.clone();
            let destroyed = s.destroyed;
            let Some(pull) = s.pull.as_mut() else { return };
            match pull.remote.begin_pull().filter(|_| !destroyed) {
                Some(number) => {
                    pull.started = number;
                    (number, transport)
                }
                _ => {
                    pull.running = false;
                    return;
                }
            }
        };
        let Transport::Http(http) = &*transport else { return };
        let result = pages(&shared, http).await;
        let pulled = result.is_ok();
        finish(&shared, number, result);
        if pulled {
            super::realtime::ensure(&shared);
        }
        deliver(&shared);
        notify(&shared);
        let again = shared.try_borrow().is_ok_and(|s| {
            !s.destroyed && s.engine.is_online() && s.pull.as_ref().is_some_and(|p| p.remote.wants_pull())
        });
        if !again {
            if let Ok(mut s) = shared.try_borrow_mut() {
                if let Some(pull) = s.pull.as_mut() {
                    pull.running = false;
                }
            }
            return;
        }
    }
}

/// Every page from the cursor on. `Err` says why the catch-up stopped; the cursor stays at the last good page.
async fn pages(shared: &Shared, http: &HttpTransport) -> Result<(), String> {
    loop {
        let body = {
            let s = shared.try_borrow().map_err(|_| "busy".to_owned())?;
            let pull = s.pull.as_ref().ok_or("destroyed")?;
            pull.remote.page_request()
        };
        // A user's token only, under the writes' rule (src/web/request.rs).
        let mut token = request::token(shared, http, Purpose::CatchUp).await?;
        let page = HttpRequest {
            method: "POST",
            path: format!("/rpc/{FEED_FUNCTION}"),
            headers: vec![("Content-Type", "application/json".into())],
            body: Some(body),
        };
        let (status, text) = match request::send(shared, http, Purpose::CatchUp, &mut token, &page, false).await {
            Reply::Answer(answer) => (answer.status, answer.body),
            Reply::Unauthorized(why) | Reply::Failed(why) => return Err(why),
        };
        if !(200..300).contains(&status) {
            let answer = Json::parse(&text).ok();
            let field = |key| answer.as_ref().and_then(|v| v.get(key).and_then(Json::as_str)).unwrap_or_default();
            // PostgREST's "no function with these arguments": the feed SQL is not installed, or older than this client.
            let hint = match field("code") {
                "PGRST202" => {
                    " (the server's record_sync_changes is missing or older than this client: run sql/record_sync_feed.sql)"
                }
                _ => "",
            };
            return Err(format!("catch-up failed: HTTP {status} {}{hint}", field("message")));
        }
        let more = {
            let mut s = shared.try_borrow_mut().map_err(|_| "busy".to_owned())?;
            let s = &mut *s;
            if s.destroyed {
                return Err("destroyed".into());
            }
            let Some(pull) = s.pull.as_mut() else { return Err("destroyed".into()) };
            pull.remote.on_page(&text, &super::tabs::LocalView::new(&s.engine, &mut s.durable), js::now())?
        };
        // Reading a page and handing it over are two tasks, so neither holds the main thread for both.
        super::timeout::yield_to_browser().await;
        deliver(shared);
        store_cursor(shared);
        if !more {
            return Ok(());
        }
        super::timeout::yield_to_browser().await;
    }
}

/// Stores the cursor once the changes before it were handed to the listeners (or are held, which the core's
/// cursor accounts for): a page closed before then reads those pages again rather than never handing them over.
fn store_cursor(shared: &Shared) {
    {
        let Ok(mut s) = shared.try_borrow_mut() else { return };
        let s = &mut *s;
        let Some(cursor) = s.pull.as_mut().filter(|_| !s.destroyed).and_then(|p| p.remote.take_moved_cursor()) else {
            return;
        };
        storage::remote_cursor(s, cursor);
    }
    storage::persist(shared);
}

/// Ends catch-up `number`: settles the `pull()` promises it answers; a failure is retried with backoff.
fn finish(shared: &Shared, number: u64, result: Result<(), String>) {
    let settled: Vec<(Waiter, Result<JsValue, JsValue>)> = {
        let Ok(mut s) = shared.try_borrow_mut() else { return };
        let Some(pull) = s.pull.as_mut() else { return };
        let received = pull.remote.received();
        let resets = pull.remote.resets();
        if let Err(why) = &result {
            if pull.remote.is_pulling() {
                pull.remote.pull_failed(why);
            }
            pull.failures = pull.failures.saturating_add(1);
            let weak = Rc::downgrade(shared);
            pull.retry = Some(Timeout::new(auth::delay_ms(pull.failures), move || {
                if let Some(shared) = weak.upgrade() {
                    request(&shared);
                }
            }));
        } else {
            pull.failures = 0;
            pull.retry = None;
        }
        let (done, waiting): (Vec<Waiter>, Vec<Waiter>) =
            std::mem::take(&mut pull.waiters).into_iter().partition(|w| number > w.after);
        pull.waiters = waiting;
        done.into_iter()
            .map(|w| {
                let outcome = match &result {
                    Ok(()) => Ok(js::view(|out| {
                        ObjectWriter::new(out)
                            .u64("changes", received.saturating_sub(w.received_before))
                            .bool("reset", resets > w.resets_before)
                            .end()
                    })),
                    Err(why) => Err(js::error(format!("RecordSync.pull: {why}"))),
                };
                (w, outcome)
            })
            .collect()
    };
    for (waiter, outcome) in settled {
        let _ = match outcome {
            Ok(summary) => waiter.resolve.call1(&JsValue::UNDEFINED, &summary),
            Err(error) => waiter.reject.call1(&JsValue::UNDEFINED, &error),
        };
    }
}

/// Hands what is ready to the `onRemoteChanges` listeners, with no borrow held. A listener that throws does
/// not stop the others; its error lands in `lastError`. A start-over is told even without changes: the rows
/// that follow are every current row, and the app may first drop its copy (README, "Remote changes").
pub fn deliver(shared: &Shared) {
    let (changes, info, listeners) = {
        let Ok(mut s) = shared.try_borrow_mut() else { return };
        let Some(pull) = s.pull.as_mut() else { return };
        let ready = pull.remote.take_ready();
        let reset = pull.remote.take_reset();
        if ready.is_empty() && !reset {
            return;
        }
        let info = js::freeze(js::view(|out| ObjectWriter::new(out).bool("reset", reset).end()));
        (remote_changes(ready), info, pull.listeners.clone())
    };
    let mut error = None;
    for (id, listener) in listeners {
        let subscribed = shared
            .try_borrow()
            .is_ok_and(|s| s.pull.as_ref().is_some_and(|p| p.listeners.iter().any(|(i, _)| *i == id)));
        if !subscribed {
            continue;
        }
        if let Err(e) = listener.call2(&JsValue::UNDEFINED, &changes, &info) {
            js::console_error("RecordSync: an onRemoteChanges listener threw:", &e);
            error = Some(format!("an onRemoteChanges listener threw: {}", error_message(&e)));
        }
    }
    if let Ok(mut s) = shared.try_borrow_mut() {
        if let Some(pull) = s.pull.as_mut().filter(|p| p.listener_error.is_some() || error.is_some()) {
            pull.listener_error = error;
            pull.version += 1;
        }
    }
    notify(shared);
}

/// The listeners' frozen array. Each row goes in as the object it is ([`JsRow::into_app`]), not written as JSON
/// text and parsed again: that round trip was an eighth of a catch-up's main-thread time.
fn remote_changes(ready: Vec<RemoteChange<JsRow>>) -> JsValue {
    let mut json = String::new();
    write_array(&mut json, &ready, |c, out| c.write_json(out, false));
    let rows = ready.into_iter().map(|c| c.row.map_or(JsValue::UNDEFINED, JsRow::into_app)).collect();
    with_rows(&json, rows)
}

/// How long realtime rows gather before they reach the listeners: one frame, so a burst costs one render per
/// frame, and far below the second within which another device's edit is on screen.
const FRAME_MS: u32 = 16;

/// Hands what is ready to the listeners a frame later: realtime rows come one socket message per task, and a
/// burst (another device writing 3,000 rows) reaches the listeners in batches, as catch-up pages do, instead
/// of one call per row.
pub fn deliver_soon(shared: &Shared) {
    let Ok(mut s) = shared.try_borrow_mut() else { return };
    let Some(pull) = s.pull.as_mut().filter(|p| p.delivery.is_none()) else { return };
    let weak = Rc::downgrade(shared);
    pull.delivery = Some(Timeout::new(FRAME_MS, move || {
        let Some(shared) = weak.upgrade() else { return };
        if let Some(pull) = shared.try_borrow_mut().ok().as_mut().and_then(|s| s.pull.as_mut()) {
            pull.delivery = None;
        }
        deliver(&shared);
    }));
}

/// `pull()`: a promise settled by the next complete catch-up.
pub fn pull_now(shared: &Shared) -> Promise {
    let mut slot = None;
    let promise = Promise::new(&mut |resolve, reject| slot = Some((resolve, reject)));
    {
        let Ok(mut s) = shared.try_borrow_mut() else {
            return Promise::reject(&js::error("RecordSync: re-entrant call while the instance is busy"));
        };
        let Some(pull) = s.pull.as_mut() else {
            return Promise::reject(&js::error("RecordSync.pull: needs the pull option (pull: { tables: [...] })"));
        };
        if let Some((resolve, reject)) = slot {
            let (received_before, resets_before) = (pull.remote.received(), pull.remote.resets());
            pull.waiters.push(Waiter { after: pull.started, received_before, resets_before, resolve, reject });
        }
        pull.remote.request_pull();
    }
    auth::ask_now(shared);
    kick(shared);
    promise
}

/// The stored queue was read: catch-up starts from its cursor.
pub fn restored(s: &mut State, cursor: Option<SavedCursor>, earlier_ids: &[String]) {
    if let Some(pull) = s.pull.as_mut() {
        // The restored writes go under the ids of the pages that queued them: they come back with those.
        for client_id in earlier_ids {
            pull.remote.also_own(client_id);
        }
        pull.remote.restore_cursor(cursor);
    }
}

pub fn add_listener(s: &mut State, id: u32, listener: Function) -> Result<(), JsValue> {
    let pull = s
        .pull
        .as_mut()
        .ok_or_else(|| js::error("RecordSync.onRemoteChanges: needs the pull option (pull: { tables: [...] })"))?;
    pull.listeners.push((id, listener));
    Ok(())
}

pub fn remove_listener(s: &mut State, id: u32) {
    if let Some(pull) = s.pull.as_mut() {
        pull.listeners.retain(|(i, _)| *i != id);
    }
}

/// Changes whenever the remote side's stats do.
pub fn version(s: &State) -> u64 {
    s.pull.as_ref().map_or(0, |p| (p.remote.version() + p.version) ^ u64::from(p.realtime_connected) << 63)
}

/// `lastPullAt`, `realtimeConnected`, `remoteChangesReceived`; a catch-up's error in `lastError`.
pub fn add_stats(s: &State, value: &JsValue) {
    let set = |key: &str, v: JsValue| {
        let _ = js_sys::Reflect::set(value, &JsValue::from_str(key), &v);
    };
    let pull = s.pull.as_ref();
    let last = pull.and_then(|p| p.remote.last_pull_at());
    set("lastPullAt", last.map_or(JsValue::NULL, |at| JsValue::from_f64(at as f64)));
    set("realtimeConnected", JsValue::from_bool(pull.is_some_and(|p| p.realtime_connected)));
    set("remoteChangesReceived", JsValue::from_f64(pull.map_or(0, |p| p.remote.received()) as f64));
    if let Some(why) = pull.and_then(|p| p.remote.last_error().or(p.listener_error.as_deref())) {
        set("lastError", JsValue::from_str(why));
    }
}

/// `destroy()`: no more catch-ups; promises waiting for one are rejected.
pub fn stop(s: &mut State) -> Vec<Function> {
    let Some(pull) = s.pull.as_mut() else { return Vec::new() };
    pull.interval = None;
    pull.retry = None;
    pull.delivery = None;
    if let Some(socket) = pull.socket.take() {
        socket.close();
    }
    pull.realtime_connected = false;
    pull.listeners.clear();
    if let Some(request) = pull.request.take() {
        request.abort();
    }
    std::mem::take(&mut pull.waiters).into_iter().map(|w| w.reject).collect()
}
