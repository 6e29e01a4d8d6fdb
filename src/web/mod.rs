//! The browser shell around the sans-IO engine: the `RecordSync` class JS sees. It owns everything the
//! browser provides (the clock, one timer, `fetch`, online/offline events, listeners) and drives the engine
//! the quinn-proto way: after every call, one timer is re-armed to [`Engine::poll_timeout`].
//!
//! Re-entrancy: user code (listeners, `getAccessToken`, a custom `send`, `toJSON` of queued data, a patched
//! `fetch`) is only ever called while no borrow of the state is held, so it may call back into the instance.
//! A borrow that still fails becomes a JS error, never a panic (a panic would poison the module).

mod auth;
mod conflicts;
mod early;
mod js;
mod lifecycle;
mod options;
mod pull;
mod realtime;
mod request;
mod row;
mod storage;
mod tabs;
mod timeout;
mod transport;
mod types;

use std::cell::{Cell, RefCell, RefMut};
use std::rc::{Rc, Weak};

use gloo_timers::callback::Timeout;
use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::spawn_local;
use web_sys::EventTarget;

use crate::core::json::quoted;
use crate::core::json::{write_array, ObjectWriter};
use crate::core::{Change, Column, Conflict, EngineError, Event, Op, Output, Payload, Priority, Transmit};
use options::Transport;
use row::JsRow;
use transport::Answer;

/// How urgently a change must reach the server (deadlines set by `syncIntervals`).
#[wasm_bindgen]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncPriority {
    CRITICAL = 0,
    HIGH = 1,
    MEDIUM = 2,
    LOW = 3,
}

type Shared = Rc<RefCell<State>>;
/// The core's engine with rows as JS objects.
type Engine = crate::core::Engine<JsRow>;

struct State {
    engine: Engine,
    transport: Rc<Transport>,
    client_id: String,
    /// From `setAccessToken` or the last `getAccessToken()`. Kept in memory only; never logged or stored.
    token: Option<String>,
    auth: auth::Retry,
    conflicts: conflicts::Conflicts,
    merges: conflicts::Merges,
    /// Primary-key column per table where it is not `id`.
    primary_keys: crate::core::FastMap<String, String>,
    destroyed: bool,
    timer: Option<Timer>,
    /// A microtask tick is queued.
    tick_queued: bool,
    /// The writes' requests on their way (several in a run of `rest` PATCHes), for `destroy()` to abort.
    requests: Vec<request::InFlight>,
    listeners: Vec<(u32, Function)>,
    next_listener: u32,
    notified_version: u64,
    /// One per [`Event::StateChanged`] the engine gave: the stats are rebuilt when it moves.
    engine_changes: u64,
    /// Conflicts the engine gave between ticks (while the stats were read), for the next tick to report.
    unreported: Vec<Conflict<JsRow>>,
    stats: Option<(u64, JsValue)>,
    waiters: Vec<Waiter>,
    /// Durable queue (H3): store, journal, owner, tab lock.
    durable: storage::Durable,
    /// Remote changes coming in (issue 11), with the `pull` option.
    pull: Option<pull::Pull>,
}

/// The one engine timer, armed for `deadline`.
struct Timer {
    deadline: u64,
    fired: Rc<Cell<bool>>,
    _timeout: Timeout,
}

/// A `forceSyncAll()` promise waiting for everything up to `watermark` to settle.
struct Waiter {
    watermark: u64,
    confirmed_before: u64,
    conflicts_before: u64,
    resolve: Function,
    reject: Function,
}

/// Window listeners, removed by `destroy()`.
struct Hooks {
    target: Option<EventTarget>,
    online: Closure<dyn FnMut()>,
    offline: Closure<dyn FnMut()>,
}

/// Queues record changes and syncs them to the server in the background.
#[wasm_bindgen]
pub struct RecordSync {
    shared: Shared,
    hooks: RefCell<Option<Hooks>>,
    /// Bound to a listener id for each `subscribe()`. Holds only a weak reference, and is leaked rather than
    /// dropped when the object is freed, so an unsubscribe function called later (a React cleanup after the
    /// instance was garbage-collected) is a no-op instead of a "closure invoked after being dropped" error.
    unsubscribe: std::mem::ManuallyDrop<Closure<dyn FnMut(u32)>>,
}

const DESTROYED: &str = "RecordSync: this instance has been destroyed";

fn state(shared: &Shared) -> Result<RefMut<'_, State>, JsValue> {
    let state =
        shared.try_borrow_mut().map_err(|_| js::error("RecordSync: re-entrant call while the instance is busy"))?;
    if state.destroyed {
        return Err(js::error(DESTROYED));
    }
    Ok(state)
}

/// Queues a tick for the next microtask, once: critical changes queued in the same tick leave together,
/// and subscribers hear about a burst of calls once.
fn schedule(shared: &Shared) {
    let Ok(mut s) = shared.try_borrow_mut() else { return };
    if s.tick_queued || s.destroyed {
        return;
    }
    s.tick_queued = true;
    drop(s);
    let weak = Rc::downgrade(shared);
    spawn_local(async move {
        if let Some(shared) = weak.upgrade() {
            tick(&shared);
        }
    });
}

/// Sends what is due, re-arms the timer, settles `forceSyncAll` promises, notifies subscribers.
fn tick(shared: &Shared) {
    let (transmits, conflicts) = {
        let Ok(mut s) = shared.try_borrow_mut() else { return };
        s.tick_queued = false;
        if s.destroyed {
            return;
        }
        // Durable queue (H3): nothing goes out before the stored queue is restored or while it waits for
        // its owner's token; what the request takes out of the queue is journaled.
        if !storage::may_send(&s) {
            s.timer = None;
            // A batch already begun is finished (several requests in rest mode): a take-over waits for it.
            let transmits: Vec<Transmit> = std::iter::from_fn(|| s.engine.poll_flight()).collect();
            if !transmits.is_empty() {
                storage::touch_flight(&mut s);
            }
            (transmits, Vec::new())
        } else {
            let now = js::now();
            s.engine.handle_timeout(now);
            let mut transmits = Vec::new();
            loop {
                match s.engine.poll_output() {
                    Output::Transmit(next) => transmits.push(next),
                    Output::Event(event) => on_event(&mut s, event),
                    Output::Timeout(at) => {
                        arm_timer(&mut s, shared, at, now);
                        break;
                    }
                }
            }
            if !transmits.is_empty() {
                storage::touch_flight(&mut s);
            }
            (transmits, std::mem::take(&mut s.unreported))
        }
    };
    if !conflicts.is_empty() {
        conflicts::report(shared, conflicts);
        // A merge function's row is queued now, after this tick's poll: the next tick sends it.
        schedule(shared);
    }
    storage::persist(shared);
    for transmit in transmits {
        spawn_local(send(shared.clone(), transmit));
    }
    settle_waiters(shared);
    notify(shared);
    pull::after_tick(shared);
    tabs::publish(shared);
}

fn arm_timer(s: &mut State, shared: &Shared, deadline: Option<u64>, now: u64) {
    let Some(deadline) = deadline else {
        s.timer = None;
        return;
    };
    if let Some(timer) = &s.timer {
        if timer.deadline == deadline && !timer.fired.get() {
            return;
        }
    }
    let delay = deadline.saturating_sub(now).min(i32::MAX as u64) as u32;
    let fired = Rc::new(Cell::new(false));
    let weak: Weak<RefCell<State>> = Rc::downgrade(shared);
    let flag = fired.clone();
    let timeout = Timeout::new(delay, move || {
        flag.set(true);
        if let Some(shared) = weak.upgrade() {
            schedule(&shared);
        }
    });
    s.timer = Some(Timer { deadline, fired, _timeout: timeout });
}

/// Carries one of the engine's requests and hands back what became of it.
async fn send(shared: Shared, transmit: Transmit) {
    let Some(transport) = shared.try_borrow().ok().map(|s| s.transport.clone()) else { return };
    let answer = match &*transport {
        Transport::Http(http) => transport::http(&shared, http, &transmit.request).await,
        Transport::Custom { send, this, timeout_ms } => {
            transport::custom(send, this, *timeout_ms, transmit.request.body.as_deref()).await
        }
    };
    {
        let Ok(mut s) = shared.try_borrow_mut() else { return };
        if s.destroyed {
            return;
        }
        let now = js::now();
        // The journal stores what became of the batch's records, whatever the answer.
        storage::touch_flight(&mut s);
        // Refused (UnknownRequest) only for a request of an engine since replaced (storage::drop_queue): the
        // new engine waited for it, and its writes are not the new engine's.
        let _ = match answer {
            Answer::Response(response) => s.engine.handle_response(transmit.id, response, now),
            Answer::Failed(message) => s.engine.handle_failure(transmit.id, &message, now),
            Answer::Unauthorized(reason) => s.engine.handle_unauthorized(transmit.id, &reason, now),
        };
    }
    schedule(&shared);
}

fn settle_waiters(shared: &Shared) {
    let settled: Vec<(Waiter, JsValue)> = {
        let Ok(mut s) = shared.try_borrow_mut() else { return };
        // Until the stored queue is restored, an empty queue is not settled: it is not all there yet.
        if s.waiters.is_empty() || !storage::may_send(&s) {
            return;
        }
        let (done, waiting): (Vec<Waiter>, Vec<Waiter>) =
            std::mem::take(&mut s.waiters).into_iter().partition(|w| s.engine.is_settled_through(w.watermark));
        s.waiters = waiting;
        if done.is_empty() {
            return;
        }
        let stats = s.engine.stats();
        let failed = s.engine.failed_changes();
        done.into_iter()
            .map(|w| {
                let summary = js::view(|out| {
                    let mut o = ObjectWriter::new(out);
                    o.u64("confirmed", stats.successful_syncs.saturating_sub(w.confirmed_before));
                    o.u64("conflicts", stats.conflicts.saturating_sub(w.conflicts_before));
                    write_array(o.key("failed"), &failed, |f, out| f.write_json(out));
                    o.end();
                });
                (w, summary)
            })
            .collect()
    };
    for (waiter, summary) in settled {
        let _ = waiter.resolve.call1(&JsValue::UNDEFINED, &summary);
    }
}

/// What a `forceSyncAll()` summary counts from: the confirmations and conflicts so far.
#[derive(Clone, Copy)]
struct Counted {
    confirmed: u64,
    conflicts: u64,
}

impl Counted {
    fn now(s: &State) -> Counted {
        let stats = s.engine.stats();
        Counted { confirmed: stats.successful_syncs, conflicts: stats.conflicts }
    }

    /// The earlier of these counts and `seen` (what another tab saw of them before), each on its own.
    fn at_most(self, seen: Option<Counted>) -> Counted {
        let Some(seen) = seen else { return self };
        Counted { confirmed: self.confirmed.min(seen.confirmed), conflicts: self.conflicts.min(seen.conflicts) }
    }
}

/// The counts as they are at a `forceSyncAll()` call that settles later (after the other tabs' inbox is read):
/// confirmations that arrive meanwhile belong to its summary.
fn counted(shared: &Shared) -> Option<Counted> {
    shared.try_borrow().ok().map(|s| Counted::now(&s))
}

/// `forceSyncAll()` of this instance's own queue, its summary counted from `since` (the call) or from now.
fn flush_all(shared: &Shared, since: Option<Counted>) -> Promise {
    let mut s = match state(shared) {
        Ok(s) => s,
        Err(e) => return Promise::reject(&e),
    };
    let watermark = s.engine.flush_all(js::now());
    let since = since.unwrap_or_else(|| Counted::now(&s));
    let (confirmed_before, conflicts_before) = (since.confirmed, since.conflicts);
    let mut slot = None;
    let promise = Promise::new(&mut |resolve, reject| slot = Some((resolve, reject)));
    if let Some((resolve, reject)) = slot {
        s.waiters.push(Waiter { watermark, confirmed_before, conflicts_before, resolve, reject });
    }
    drop(s);
    auth::ask_now(shared);
    schedule(shared);
    promise
}

fn on_event(s: &mut State, event: Event<JsRow>) {
    match event {
        Event::StateChanged => s.engine_changes += 1,
        Event::Conflict(conflict) => s.unreported.push(conflict),
    }
}

/// The engine's events since the last tick: `stats()` called right after `queueChange`, in the same task,
/// sees the change before any tick has polled.
fn take_events(s: &mut State) {
    while let Some(event) = s.engine.poll_event() {
        on_event(s, event);
    }
}

/// The stats object, rebuilt only when something observable changed (so React sees the same object until
/// then).
fn stats_value(s: &mut State) -> JsValue {
    let version = observed_version(s);
    if let Some((cached, value)) = &s.stats {
        if *cached == version {
            return value.clone();
        }
    }
    let value = storage::stats(s);
    pull::add_stats(s, &value);
    let value = js::freeze(value);
    s.stats = Some((version, value.clone()));
    value
}

/// Moves with every state change the engine reported; the early entry is saved again only when it moved.
fn engine_changes(s: &mut State) -> u64 {
    take_events(s);
    s.engine_changes
}

/// The engine's changes and the durable queue's together (H3).
fn observed_version(s: &mut State) -> u64 {
    engine_changes(s) ^ (s.durable.version << 40) ^ pull::version(s).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

fn notify(shared: &Shared) {
    let (listeners, stats) = {
        let Ok(mut s) = shared.try_borrow_mut() else { return };
        let version = observed_version(&mut s);
        if s.destroyed || s.listeners.is_empty() || version == s.notified_version {
            return;
        }
        s.notified_version = version;
        (s.listeners.clone(), stats_value(&mut s))
    };
    for (id, listener) in listeners {
        let subscribed = shared.try_borrow().is_ok_and(|s| s.listeners.iter().any(|(i, _)| *i == id));
        if subscribed {
            if let Err(e) = listener.call1(&JsValue::UNDEFINED, &stats) {
                js::console_error("RecordSync: a subscribe() listener threw:", &e);
            }
        }
    }
}

fn online_hooks(shared: &Shared) -> Hooks {
    let listener = |online: bool| {
        let weak = Rc::downgrade(shared);
        Closure::<dyn FnMut()>::new(move || {
            if let Some(shared) = weak.upgrade() {
                if let Ok(mut s) = shared.try_borrow_mut() {
                    s.engine.set_online(online);
                }
                if online {
                    auth::ask_now(&shared);
                    pull::request(&shared);
                }
                schedule(&shared);
            }
        })
    };
    let (online, offline) = (listener(true), listener(false));
    let target = js_sys::global().dyn_into::<EventTarget>().ok();
    if let Some(target) = &target {
        let _ = target.add_event_listener_with_callback("online", online.as_ref().unchecked_ref());
        let _ = target.add_event_listener_with_callback("offline", offline.as_ref().unchecked_ref());
    }
    Hooks { target, online, offline }
}

fn parse_priority(value: &JsValue, method: &str) -> Result<Priority, JsValue> {
    if value.is_undefined() {
        return Ok(Priority::Medium);
    }
    js::as_integer(value, 3.0).and_then(|n| Priority::from_index(n as u32)).ok_or_else(|| {
        js::type_error(format!(
            "RecordSync.{method}: priority must be a SyncPriority (0 CRITICAL, 1 HIGH, 2 MEDIUM, 3 LOW), not {}",
            js::describe(value)
        ))
    })
}

fn parse_seq(value: &JsValue, method: &str) -> Result<Option<u64>, JsValue> {
    if value.is_undefined() {
        return Ok(None);
    }
    js::as_integer(value, 9_007_199_254_740_991.0).map(Some).ok_or_else(|| {
        js::type_error(format!("RecordSync.{method}: seq must be a change number, not {}", js::describe(value)))
    })
}

impl RecordSync {
    fn shared(&self) -> Result<RefMut<'_, State>, JsValue> {
        state(&self.shared)
    }

    /// Validates everything before touching the engine, so a bad argument leaves the queue as it was.
    fn queue(
        &self,
        method: &str,
        table: &JsValue,
        id: &JsValue,
        op: &JsValue,
        data: &JsValue,
        priority: Priority,
    ) -> Result<f64, JsValue> {
        let bad = |what: String| js::type_error(format!("RecordSync.{method}: {what}"));
        if self.shared.try_borrow().is_ok_and(|s| s.destroyed) {
            return Err(js::error(DESTROYED));
        }
        let table_name =
            table.as_string().ok_or_else(|| bad(format!("table must be a string, not {}", js::describe(table))))?;
        // Two ids or tables would become one record, and a delete would go to another row.
        if !js::is_whole(table, &table_name) {
            return Err(bad(format!(
                "table must be well-formed text, not {} (it holds a lone surrogate)",
                js::describe(table)
            )));
        }
        let id = if let Some(text) = id.as_string() {
            if !js::is_whole(id, &text) {
                return Err(bad(format!(
                    "id must be well-formed text, not {} (it holds a lone surrogate)",
                    js::describe(id)
                )));
            }
            text
        } else if id.as_f64().is_some_and(f64::is_finite) {
            js::number_to_string(id)
        } else {
            return Err(bad(format!("id must be a string or a finite number, not {}", js::describe(id))));
        };
        let op_name = op.as_string();
        let op = op_name.as_deref().and_then(Op::parse).ok_or_else(|| {
            bad(format!("op must be \"insert\", \"update\", \"upsert\" or \"delete\", not {}", js::describe(op)))
        })?;
        let row = if data.is_undefined() || data.is_null() {
            None
        } else {
            match JsRow::from_js(data) {
                Ok(row) => Some(row),
                Err(row::Refused::NotPlain) => {
                    let what = js::describe(data);
                    return Err(bad(format!("data must be a plain object of column values, not {what}")));
                }
                Err(row::Refused::Bad(why)) => return Err(bad(format!("data {why}"))),
            }
        };
        let change = Change::owning(table_name, id, op, row, priority)
            .map_err(|e| bad(format!("{} {}", e.argument, e.message)))?;
        let seq = {
            let mut s = self.shared()?;
            // The row would be written under another key than the one the queue tracks it by.
            let pk = s.primary_keys.get(&change.table).map_or("id", String::as_str);
            let key = change.data.as_ref().map_or(Column::Absent, |row| row.column(pk));
            if key.id_text().is_some_and(|key| key != change.id) {
                let shown = match key {
                    Column::Text(text) => quoted(&text),
                    other => other.id_text().unwrap_or_default().to_owned(),
                };
                return Err(bad(format!("data.{pk} ({shown}) differs from id ({})", quoted(&change.id))));
            }
            // Before the engine takes the change's strings. Should the engine refuse it, the journal stores the
            // record as the engine holds it, unchanged: a touch only says which records to write.
            storage::touch(&mut s, &change.table, &change.id);
            s.engine.enqueue(change, js::now()).map_err(|e| match e {
                EngineError::Argument(e) => bad(format!("{} {}", e.argument, e.message)),
                other => js::error(format!("RecordSync.{method}: {other}")),
            })?
        };
        schedule(&self.shared);
        Ok(seq as f64)
    }

    /// Everything `destroy()` does; also run when JS frees the object.
    fn teardown(&self) {
        // Durable queue (H3): what this task queued is written before the instance stops.
        storage::persist(&self.shared);
        let (requests, waiters, pulls) = {
            let Ok(mut s) = self.shared.try_borrow_mut() else { return };
            if s.destroyed {
                return;
            }
            s.destroyed = true;
            s.timer = None;
            s.auth = auth::Retry::default();
            s.listeners.clear();
            s.conflicts = conflicts::Conflicts::default();
            s.stats = None;
            storage::release(&mut s);
            let pulls = pull::stop(&mut s);
            (std::mem::take(&mut s.requests), std::mem::take(&mut s.waiters), pulls)
        };
        for request in requests {
            request.abort();
        }
        if let Some(hooks) = self.hooks.borrow_mut().take() {
            if let Some(target) = &hooks.target {
                let _ = target.remove_event_listener_with_callback("online", hooks.online.as_ref().unchecked_ref());
                let _ = target.remove_event_listener_with_callback("offline", hooks.offline.as_ref().unchecked_ref());
            }
        }
        for waiter in waiters {
            let _ = waiter
                .reject
                .call1(&JsValue::UNDEFINED, &js::error("RecordSync: destroyed before everything was synced"));
        }
        for reject in pulls {
            let _ = reject.call1(&JsValue::UNDEFINED, &js::error("RecordSync: destroyed before the catch-up ended"));
        }
    }
}

#[wasm_bindgen]
impl RecordSync {
    /// Checks every option (a `TypeError` names the bad one) and starts watching online/offline.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "RecordSyncOptions")] options: JsValue,
    ) -> Result<RecordSync, JsValue> {
        let id_bytes: [u8; 16] = js::random_bytes();
        let client_id: String = id_bytes.iter().map(|b| format!("{b:02x}")).collect();
        let seed = u64::from_le_bytes(js::random_bytes());
        let checked = options::check(&options)?;
        let options::Options { config, transport, merges, primary_keys } =
            options::read(&checked, client_id.clone(), seed);
        let durable = storage::from_options(&checked);
        let pull = pull::from_options(&checked, &primary_keys, &client_id);
        let mut engine = Engine::new(config).map_err(|e| match e {
            EngineError::Argument(e) => options::from_core(e),
            other => js::type_error(format!("RecordSync: {other}")),
        })?;
        let navigator = js::get(&js_sys::global(), "navigator");
        if js::get(&navigator, "onLine").as_bool() == Some(false) {
            engine.set_online(false);
        }
        // The state it starts in is what the first `stats()` shows, not a change to notify.
        let _ = engine.poll_event();
        let shared: Shared = Rc::new(RefCell::new(State {
            engine,
            transport: Rc::new(transport),
            client_id,
            token: None,
            auth: auth::Retry::default(),
            conflicts: conflicts::Conflicts::default(),
            merges: Rc::new(merges),
            primary_keys,
            destroyed: false,
            timer: None,
            tick_queued: false,
            requests: Vec::new(),
            listeners: Vec::new(),
            next_listener: 1,
            notified_version: 0,
            engine_changes: 0,
            unreported: Vec::new(),
            stats: None,
            waiters: Vec::new(),
            durable,
            pull,
        }));
        storage::start(&shared);
        pull::start(&shared);
        let hooks = online_hooks(&shared);
        let weak = Rc::downgrade(&shared);
        let unsubscribe = Closure::<dyn FnMut(u32)>::new(move |id: u32| {
            if let Some(shared) = weak.upgrade() {
                if let Ok(mut s) = shared.try_borrow_mut() {
                    s.listeners.retain(|(i, _)| *i != id);
                    s.conflicts.listeners.retain(|(i, _)| *i != id);
                    pull::remove_listener(&mut s, id);
                }
            }
        });
        let unsubscribe = std::mem::ManuallyDrop::new(unsubscribe);
        Ok(RecordSync { shared, hooks: RefCell::new(Some(hooks)), unsubscribe })
    }

    /// Queues a change and returns its number (seq). Synchronous: nothing waits on the network.
    #[wasm_bindgen(js_name = queueChange)]
    pub fn queue_change(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] table: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string | number")] id: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Op")] op: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "RowData")] data: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "SyncPriority")] priority: JsValue,
    ) -> Result<f64, JsValue> {
        let priority = parse_priority(&priority, "queueChange")?;
        self.queue("queueChange", &table, &id, &op, &data, priority)
    }

    #[wasm_bindgen(js_name = queueCriticalChange)]
    pub fn queue_critical_change(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] table: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string | number")] id: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Op")] op: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "RowData")] data: JsValue,
    ) -> Result<f64, JsValue> {
        self.queue("queueCriticalChange", &table, &id, &op, &data, Priority::Critical)
    }

    #[wasm_bindgen(js_name = queueHighChange)]
    pub fn queue_high_change(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] table: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string | number")] id: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Op")] op: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "RowData")] data: JsValue,
    ) -> Result<f64, JsValue> {
        self.queue("queueHighChange", &table, &id, &op, &data, Priority::High)
    }

    #[wasm_bindgen(js_name = queueMediumChange)]
    pub fn queue_medium_change(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] table: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string | number")] id: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Op")] op: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "RowData")] data: JsValue,
    ) -> Result<f64, JsValue> {
        self.queue("queueMediumChange", &table, &id, &op, &data, Priority::Medium)
    }

    #[wasm_bindgen(js_name = queueLowChange)]
    pub fn queue_low_change(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] table: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string | number")] id: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Op")] op: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "RowData")] data: JsValue,
    ) -> Result<f64, JsValue> {
        self.queue("queueLowChange", &table, &id, &op, &data, Priority::Low)
    }

    /// Sends everything queued so far now (backoff or not) and resolves once all of it is confirmed,
    /// answered with a conflict, or on the failed list. Waits while offline, paused, without a token
    /// (`needsAuth`), and while the stored queue is restored or waits for its owner's token. Rejects if the
    /// instance is destroyed first.
    #[wasm_bindgen(js_name = forceSyncAll, unchecked_return_type = "Promise<SyncSummary>")]
    pub fn force_sync_all(&self) -> Promise {
        if let Err(e) = self.shared() {
            return Promise::reject(&e);
        }
        // A tab that follows another asks the one that sends the shared queue.
        tabs::flush(&self.shared).unwrap_or_else(|| flush_all(&self.shared, None))
    }

    /// The current figures: the same (frozen) object until something changes.
    #[wasm_bindgen(unchecked_return_type = "SyncStats")]
    pub fn stats(&self) -> Result<JsValue, JsValue> {
        Ok(stats_value(&mut *self.shared()?))
    }

    /// Calls `listener(stats)` after changes, at most once per tick. Returns the function that unsubscribes.
    #[wasm_bindgen(unchecked_return_type = "() => void")]
    pub fn subscribe(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(stats: SyncStats) => void")] listener: JsValue,
    ) -> Result<JsValue, JsValue> {
        let listener = listener.dyn_into::<Function>().map_err(|v| {
            js::type_error(format!("RecordSync.subscribe: listener must be a function, not {}", js::describe(&v)))
        })?;
        let id = {
            let mut s = self.shared()?;
            let id = s.next_listener;
            s.next_listener += 1;
            s.listeners.push((id, listener));
            id
        };
        let unsubscribe: &Function = (*self.unsubscribe).as_ref().unchecked_ref();
        Ok(unsubscribe.bind1(&JsValue::NULL, &JsValue::from(id)).into())
    }

    /// Every write not yet confirmed or failed, in send order (in flight, queued, blocked).
    #[wasm_bindgen(js_name = pendingChanges, unchecked_return_type = "PendingChange[]")]
    pub fn pending_changes(&self) -> Result<JsValue, JsValue> {
        let mut s = self.shared()?;
        Ok(tabs::mirrored(&mut s, false).unwrap_or_else(|| {
            let pending = s.engine.pending_changes();
            js::view(|out| write_array(out, &pending, |v, out| v.write_json(out)))
        }))
    }

    #[wasm_bindgen(js_name = failedChanges, unchecked_return_type = "FailedChange[]")]
    pub fn failed_changes(&self) -> Result<JsValue, JsValue> {
        let mut s = self.shared()?;
        Ok(tabs::mirrored(&mut s, true).unwrap_or_else(|| {
            let failed = s.engine.failed_changes();
            js::view(|out| write_array(out, &failed, |v, out| v.write_json(out)))
        }))
    }

    /// Puts failed writes (all, or the one numbered `seq`) back in the queue, due now. Returns how many.
    #[wasm_bindgen(js_name = retryFailed)]
    pub fn retry_failed(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "number")] seq: JsValue,
    ) -> Result<u32, JsValue> {
        let only = parse_seq(&seq, "retryFailed")?;
        if let Some(count) = tabs::forward(&self.shared, "retry", only) {
            return Ok(count);
        }
        let count = {
            let mut s = self.shared()?;
            storage::touch_all(&mut s);
            s.engine.retry_failed(only, js::now())
        };
        schedule(&self.shared);
        Ok(count as u32)
    }

    /// Drops failed writes (all, or the one numbered `seq`). Returns how many.
    #[wasm_bindgen(js_name = discardFailed)]
    pub fn discard_failed(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "number")] seq: JsValue,
    ) -> Result<u32, JsValue> {
        let only = parse_seq(&seq, "discardFailed")?;
        if let Some(count) = tabs::forward(&self.shared, "discard", only) {
            return Ok(count);
        }
        let count = {
            let mut s = self.shared()?;
            storage::touch_all(&mut s);
            s.engine.discard_failed(only)
        };
        schedule(&self.shared);
        Ok(count as u32)
    }

    /// Stops sending (queuing goes on) until `resume()`.
    pub fn pause(&self) -> Result<(), JsValue> {
        self.shared()?.engine.set_paused(true);
        schedule(&self.shared);
        Ok(())
    }

    pub fn resume(&self) -> Result<(), JsValue> {
        self.shared()?.engine.set_paused(false);
        schedule(&self.shared);
        Ok(())
    }

    /// The bearer token for the next requests (`null`: ask `getAccessToken`; without it, a queue that is
    /// nobody's goes with the API key, a user's waits unless `allowAnonymous`). A token must be printable ASCII
    /// without spaces, as a `Bearer` header carries it.
    #[wasm_bindgen(js_name = setAccessToken)]
    pub fn set_access_token(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | null")] token: JsValue,
    ) -> Result<(), JsValue> {
        let token = if token.is_null() || token.is_undefined() {
            None
        } else {
            let t = token.as_string().filter(|t| !t.is_empty()).ok_or_else(|| {
                js::type_error(format!(
                    "RecordSync.setAccessToken: token must be a non-empty string or null, not {}",
                    js::describe(&token)
                ))
            })?;
            if !auth::is_sendable(&t) {
                return Err(js::type_error(format!(
                    "RecordSync.setAccessToken: token is a string {}",
                    auth::NOT_SENDABLE
                )));
            }
            Some(t)
        };
        let resumes = token.is_some();
        {
            let mut s = self.shared()?;
            if let Some(token) = &token {
                storage::token_known(&mut s, token);
            }
            s.token = token;
        }
        if resumes {
            storage::owner_known(&self.shared);
            auth::resume(&self.shared);
            pull::token_changed(&self.shared);
            schedule(&self.shared);
        }
        Ok(())
    }

    /// Calls `listener(conflict)` for each write the server did not take: its row is newer (`reason:
    /// "newer"`, with `serverRow`) or missing (`reason: "missing"`, `serverRow: null`). Returns the function
    /// that unsubscribes.
    #[wasm_bindgen(js_name = onConflict, unchecked_return_type = "() => void")]
    pub fn on_conflict(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(conflict: ConflictRecord) => void")] listener: JsValue,
    ) -> Result<JsValue, JsValue> {
        let listener = listener.dyn_into::<Function>().map_err(|v| {
            js::type_error(format!("RecordSync.onConflict: listener must be a function, not {}", js::describe(&v)))
        })?;
        let id = {
            let mut s = self.shared()?;
            let id = s.next_listener;
            s.next_listener += 1;
            s.conflicts.listeners.push((id, listener));
            id
        };
        let unsubscribe: &Function = (*self.unsubscribe).as_ref().unchecked_ref();
        Ok(unsubscribe.bind1(&JsValue::NULL, &JsValue::from(id)).into())
    }

    /// The latest conflicts, most recent first (at most 100).
    #[wasm_bindgen(unchecked_return_type = "ConflictRecord[]")]
    pub fn conflicts(&self) -> Result<JsValue, JsValue> {
        Ok(self.shared()?.conflicts.list().into())
    }

    #[wasm_bindgen(js_name = clearConflicts)]
    pub fn clear_conflicts(&self) -> Result<(), JsValue> {
        self.shared()?.conflicts.clear();
        Ok(())
    }

    /// Reads the remote feed from the cursor now (issue 11); resolves with `{ changes }` (how many reached the
    /// `onRemoteChanges` listeners meanwhile) once a catch-up begun after this call is complete. It takes no
    /// argument: one given (say, a table to pull) is refused rather than silently ignored. After `destroy()` it
    /// rejects, as `forceSyncAll()` does.
    #[wasm_bindgen(unchecked_return_type = "Promise<PullSummary>")]
    pub fn pull(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "never")] unexpected: Option<JsValue>,
    ) -> Result<Promise, JsValue> {
        if let Some(v) = unexpected.filter(|v| !v.is_undefined()) {
            return Err(js::type_error(format!(
                "RecordSync.pull: takes no argument (it reads every table in options.pull.tables), not {}",
                js::describe(&v)
            )));
        }
        if self.shared.try_borrow().is_ok_and(|s| s.destroyed) {
            return Ok(Promise::reject(&js::error(DESTROYED)));
        }
        Ok(pull::pull_now(&self.shared))
    }

    /// Calls `listener(changes)` with each batch of other devices' changes, in order per record; a record
    /// with an unsettled local change gets its remote change after that change settles. Returns the function
    /// that unsubscribes.
    #[wasm_bindgen(js_name = onRemoteChanges, unchecked_return_type = "() => void")]
    pub fn on_remote_changes(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(changes: RemoteChange[], info: RemoteChangesInfo) => void")]
        listener: JsValue,
    ) -> Result<JsValue, JsValue> {
        let listener = listener.dyn_into::<Function>().map_err(|v| {
            js::type_error(format!("RecordSync.onRemoteChanges: listener must be a function, not {}", js::describe(&v)))
        })?;
        {
            let mut s = self.shared()?;
            let id = s.next_listener;
            pull::add_listener(&mut s, id, listener)?;
            s.next_listener += 1;
            drop(s);
            let unsubscribe: &Function = (*self.unsubscribe).as_ref().unchecked_ref();
            Ok(unsubscribe.bind1(&JsValue::NULL, &JsValue::from(id)).into())
        }
    }

    /// Stops the timer, aborts the request on its way, removes the window listeners and subscribers, and
    /// rejects pending `forceSyncAll()` promises. Later calls throw; calling it again does nothing.
    pub fn destroy(&self) {
        self.teardown();
    }

    /// Stops this instance like `destroy()` and deletes its user's stored queue (for a sign-out that must
    /// discard unsent changes). Resolves once the stored queue is gone.
    #[wasm_bindgen(js_name = clearPersisted, unchecked_return_type = "Promise<void>")]
    pub fn clear_persisted(&self) -> Promise {
        if self.shared.try_borrow().is_ok_and(|s| s.destroyed) {
            return Promise::reject(&js::error(DESTROYED));
        }
        let cleared = storage::clear(&self.shared);
        self.teardown();
        cleared
    }
}

impl Drop for RecordSync {
    fn drop(&mut self) {
        self.teardown();
    }
}
