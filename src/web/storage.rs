//! The durable queue in the browser: where it is stored (IndexedDB by default, a custom store, or memory),
//! restoring it at construction, writing what each tick touched, the tab lock, and whose queue it is.
//!
//! Every change is stored by the end of the task that queued it: queuing schedules a microtask tick, and the
//! tick starts one write (one IndexedDB transaction) holding the records the engine touched since the last
//! one ([`Journal`]). Restoring is asynchronous; until it is done nothing is sent, and changes queued
//! meanwhile are queued again behind the restored ones when it is.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use js_sys::{Array, Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{spawn_local, JsFuture};

use super::js::{self, describe, error_message, get};
use super::options::Transport;
use super::row::JsRow;
use super::Engine;
use super::{auth, schedule, timeout, Shared, State};
use crate::core::journal::{self, Journal, RecordError, Stored, StoredRecord, Written};
use crate::core::json::quoted;
use crate::core::owner::jwt_subject;
use crate::core::remote::SavedCursor;
use crate::core::{Change, Op, Snapshot};

type SavedEntry = crate::core::SavedEntry<JsRow>;

#[wasm_bindgen(module = "/src/web/shell.js")]
extern "C" {
    #[wasm_bindgen(js_name = holdLock)]
    fn hold_lock(name: &str, wait_ms: u32) -> Promise;
    /// The default store's keys of the queue kept under no user.
    #[wasm_bindgen(js_name = nobodysKeys)]
    fn nobody_range() -> JsValue;
    fn sleep(ms: u32) -> Promise;
    fn record(text: &str, rows: Vec<JsValue>) -> JsValue;
    fn unpack(value: &JsValue) -> Array;
    #[wasm_bindgen(js_name = unpackCloned)]
    fn unpack_cloned(value: &JsValue) -> Array;
}

/// The record to store for what the journal wrote.
pub fn stored_value(written: &Written<'_, JsRow>) -> JsValue {
    record(&written.text, written.rows.iter().map(|row| row.to_store()).collect())
}

/// A stored value as the journal reads it. A row that is not a plain object is `None`: the record naming it is
/// then left out as unreadable. `clones`: the value is one the default store loaded, whose rows are IndexedDB's
/// fresh clones, taken without another copy (a fifth of restoring 20,000 rows was copying them again).
pub fn stored_record(value: &JsValue, clones: bool) -> StoredRecord<JsRow> {
    let parts = if clones { unpack_cloned(value) } else { unpack(value) };
    // `unpack` made the array; an entry that reading threw on is `[null, [], why]`.
    let row = |row: JsValue| match clones {
        true => (!row.is_null()).then(|| JsRow::cloned(row)),
        false => JsRow::from_js(&row).ok(),
    };
    StoredRecord {
        text: parts.get(0).as_string().ok_or_else(|| parts.get(2).as_string().unwrap_or_default()),
        rows: Array::from(&parts.get(1)).iter().map(row).collect(),
    }
}

/// How long a new instance waits for the queue's tab lock before it keeps its changes in memory only.
const LOCK_WAIT_MS: u32 = 1_000;
/// The same where it can follow the tab that holds the lock (src/web/tabs.rs): long enough for a reload's
/// hand-over, short because a follower's changes are stored at once while a restoring tab's are not.
const FOLLOW_WAIT_MS: u32 = 100;
/// `lastError` while the restore waits for a token to know whose stored queue it is.
const WAITING: &str = "storage: waiting for a user's token to restore their stored queue";
/// How long the stored queue may take to load before the instance works in memory.
const LOAD_TIMEOUT_MS: u32 = 10_000;
/// The lock of the queue kept under no user, and how long a restore under a user's key waits for it (a tab that
/// holds it keeps it: it is no one's to take in then).
const NOBODY_LOCK: &str = "record-sync:";
const NOBODY_LOCK_WAIT_MS: u32 = 50;

/// A queue store: the default IndexedDB one or the app's (`storage` option), called with the store as `this`.
struct Store {
    this: JsValue,
    load: Function,
    append: Function,
    clear: Function,
    /// The default IndexedDB store, whose loads are structured clones: an app's store may hand back the objects
    /// it was given, which the queue must not change in place.
    clones: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading the stored queue; nothing is sent.
    Restoring,
    Durable,
    /// Another tab holds the queue: changes go to its inbox, and this tab shows its state (src/web/tabs.rs).
    Follower,
    /// No store, or it failed to load: the queue lives in memory only.
    Memory,
}

pub struct Durable {
    store: Option<Rc<Store>>,
    phase: Phase,
    journal: Journal,
    /// The queue's key in the store: the `user` option, else its owner once known ([`identify`]); "" where
    /// no token is ever known (API key only). `None` until then: nothing is read or written.
    key: Option<String>,
    /// Whose changes these are: the `user` option, else the subject of the first token known (asked at
    /// construction, or given to `setAccessToken`), or the stored owner where no token is known.
    owner: Option<String>,
    /// Stored records the restore left out, shown as `lastError` when there is no storage problem: the queue
    /// is durable, but some changes could not be read.
    notice: Option<String>,
    /// A storage problem, shown as `lastError` until a later write succeeds.
    error: Option<(u64, String)>,
    writes: u64,
    /// Bumped when anything `stats()` shows from here changes.
    pub version: u64,
    release: Option<Function>,
    /// A queue kept under no user ("") whose owner a token named waits for the owner's key's lock, still
    /// stored under "" (with its owner's name) meanwhile ([`owner_known`]).
    moving_to: Option<String>,
    /// The user whose name the queue under "" bore when this instance, whose owner was not known yet, refused it.
    refused_for: Option<String>,
    /// Then it has moved: the "" records are deleted, and their lock let go, once a write has stored it under
    /// the owner's key.
    moved_from: Option<MovedFrom>,
    clearing: bool,
    /// The page is hidden: requests go with `keepalive`.
    pub hidden: bool,
    lifecycle: Option<super::lifecycle::Listeners>,
    /// The shared queue of live tabs: channel, inbox, mirror of the leader's state.
    pub tabs: super::tabs::Tabs,
    /// Failed writes in a row, and whether a retry is on its way ([`retry_later`]).
    failures: u32,
    retrying: bool,
    /// Ends [`identify`]'s wait between two asks as soon as a token is known.
    wake: Option<Function>,
    /// Changes queued before the restore decided, in localStorage (default store only).
    early: Option<super::early::Early>,
    /// In memory: the early entry is saved again no sooner than this ([`save_memory_early`]), and whether a save
    /// waits for it.
    early_after: u64,
    early_waits: bool,
}

/// Where a queue moved from: the "" key's lock.
struct MovedFrom {
    release: Option<Function>,
}

impl Durable {
    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn store_object(&self) -> Option<JsValue> {
        self.store.as_ref().map(|store| store.this.clone())
    }

    pub fn key(&self) -> Option<String> {
        self.key.clone()
    }

    pub fn owner(&self) -> Option<String> {
        self.owner.clone()
    }

    /// The next write is made even if no record was touched (it deletes inbox records that held nothing).
    pub fn write_anyway(&mut self) {
        if self.journal.is_empty() {
            self.journal.touch_all();
        }
    }

    /// Adds to what `lastError` says of unreadable records.
    pub fn notice_unreadable(&mut self, why: String) {
        self.notice = Some(match self.notice.take() {
            Some(before) => format!("{before}; {why}"),
            None => why,
        });
        self.version += 1;
    }
}

pub fn phase(s: &State) -> Phase {
    s.durable.phase
}

pub fn set_phase(s: &mut State, phase: Phase) {
    let d = &mut s.durable;
    d.phase = phase;
    d.error = None;
    d.version += 1;
    // A follower's first write holds what it queued so far.
    d.journal.touch_all();
}

/// A storage problem that is not a write's, as `lastError`.
pub fn report(shared: &Shared, why: String) {
    if let Ok(mut s) = shared.try_borrow_mut() {
        s.durable.error = Some((u64::MAX, why));
        s.durable.version += 1;
    }
    super::notify(shared);
}

/// The `user` and `storage` options, as [`super::options::check`] gave them.
pub fn from_options(checked: &JsValue) -> Durable {
    let user = js::get(checked, "user").as_string();
    let by_default = js::get(checked, "byDefault").is_truthy();
    let early = by_default.then(super::early::Early::new);
    let this = js::get(checked, "store");
    let method = |name| js::get(checked, name).unchecked_into::<Function>();
    let store = (!this.is_null() && !this.is_undefined()).then(|| {
        Rc::new(Store {
            load: method("load"),
            append: method("append"),
            clear: method("clear"),
            this,
            clones: by_default,
        })
    });
    Durable {
        phase: if store.is_some() { Phase::Restoring } else { Phase::Memory },
        store,
        journal: Journal::default(),
        key: user.clone(),
        owner: user,
        notice: None,
        error: None,
        writes: 0,
        version: 0,
        release: None,
        moving_to: None,
        refused_for: None,
        moved_from: None,
        clearing: false,
        hidden: false,
        lifecycle: None,
        tabs: super::tabs::Tabs::default(),
        failures: 0,
        retrying: false,
        early_after: 0,
        early_waits: false,
        wake: None,
        early,
    }
}

/// Starts restoring the stored queue (when there is a store) and watching the page's lifecycle.
pub fn start(shared: &Shared) {
    let listeners = super::lifecycle::listen(shared);
    if let Ok(mut s) = shared.try_borrow_mut() {
        s.durable.lifecycle = listeners;
    }
    let weak = Rc::downgrade(shared);
    if shared.try_borrow().is_ok_and(|s| s.durable.phase == Phase::Restoring) {
        spawn_local(restore(weak));
    } else if shared.try_borrow().is_ok_and(|s| s.durable.key.is_none()) {
        spawn_local(async move {
            identify(&weak).await;
        });
    }
}

/// Fixes the queue's owner as soon as a token is known, and with it the stored queue's key: a change queued
/// while user A is signed in is never sent with user B's token, whatever the app does. Asks `getAccessToken`
/// at once, then with backoff until it gives a token or `setAccessToken` does ([`token_known`]). Returns the
/// key, or `None` when the instance is gone.
async fn identify(weak: &Weak<RefCell<State>>) -> Option<String> {
    let (mut failures, mut next_ask) = (0u32, 0u64);
    loop {
        let ask = {
            let shared = weak.upgrade()?;
            let mut s = shared.try_borrow_mut().ok()?;
            if s.destroyed {
                return None;
            }
            if let Some(key) = &s.durable.key {
                return Some(key.clone());
            }
            // A token is held (`setAccessToken`, a send's ask): its user's queue; a token without `sub` is not a
            // user's, and the queue is nobody's, as with the API key.
            if let Some(token) = s.token.clone() {
                token_known(&mut s, &token);
            }
            if s.durable.owner.is_some() || s.token.is_some() {
                let key = s.durable.owner.clone().unwrap_or_default();
                s.durable.key = Some(key.clone());
                if s.durable.error.as_ref().is_some_and(|(_, why)| why.starts_with(WAITING)) {
                    s.durable.error = None;
                    s.durable.version += 1;
                }
                // Changes queued before the key was known were kept nowhere: now they have an early entry.
                save_early(&mut s);
                return Some(key);
            }
            match &*s.transport {
                Transport::Http(http) => http.get_access_token.clone().map(|get| (get, http.token_timeout_ms)),
                Transport::Custom { .. } => None,
            }
        };
        let Some((get, timeout_ms)) = ask else {
            // No token source: the API key is sent, and the queue is nobody's until `setAccessToken`.
            let shared = weak.upgrade()?;
            let mut s = shared.try_borrow_mut().ok()?;
            s.durable.key = Some(String::new());
            save_early(&mut s);
            return Some(String::new());
        };
        if js::now() >= next_ask {
            auth::ask_began(&mut *weak.upgrade()?.try_borrow_mut().ok()?);
            let asked = auth::ask(&get, timeout_ms).await;
            let shared = weak.upgrade()?;
            let mut s = shared.try_borrow_mut().ok()?;
            auth::ask_ended(&mut s, asked.as_ref().err());
            match asked {
                Ok(token) => {
                    token_known(&mut s, &token);
                    if s.token.is_none() {
                        s.token = Some(token);
                    }
                    continue;
                }
                Err(why) => {
                    if s.durable.phase == Phase::Restoring {
                        s.durable.error = Some((u64::MAX, format!("{WAITING}: {why}")));
                        s.durable.version += 1;
                        drop(s);
                        super::notify(&shared);
                    }
                    failures = failures.saturating_add(1);
                    next_ask = js::now() + u64::from(auth::delay_ms(failures));
                }
            }
        }
        // Until the next ask, or a token from `setAccessToken` ([`token_known`]), whichever comes first.
        let mut wake = None;
        let woken = Promise::new(&mut |resolve, _| wake = Some(resolve));
        weak.upgrade()?.try_borrow_mut().ok()?.durable.wake = wake;
        let wait = next_ask.saturating_sub(js::now()).min(60_000) as u32;
        let _ = timeout::within(&woken, wait).await;
    }
}

/// A token is known (`setAccessToken`, or the ask at construction): a queue without an owner takes its
/// subject (call [`owner_known`] next). The token itself is not kept here.
pub fn token_known(s: &mut State, token: &str) {
    if let Some(wake) = s.durable.wake.take() {
        let _ = wake.call0(&JsValue::UNDEFINED);
    }
    if s.durable.owner.is_some() {
        return;
    }
    if let Some(subject) = jwt_subject(token) {
        s.durable.owner = Some(subject);
        s.durable.version += 1;
        touch_all(s);
    }
}

/// The owner may just have been named for a queue kept under no user (""), which holds only changes queued before
/// any token: it moves to the owner's key, as if restored under it from the start. Left under "", another user
/// signing in later would restore it and send it (its owner written in it, or not) with the wrong token.
pub fn owner_known(shared: &Shared) {
    let Ok(mut s) = shared.try_borrow_mut() else { return };
    let destroyed = s.destroyed;
    let d = &mut s.durable;
    let (Some(owner), Some("")) = (d.owner.clone(), d.key.as_deref()) else { return };
    if destroyed || d.clearing || d.store.is_none() || d.moving_to.is_some() {
        return;
    }
    if d.phase == Phase::Durable {
        // It stays durable under "" until it holds the owner's lock, written again now with its owner's name (and
        // so at every write after): if the move never ends (the page dies first), no instance that is nobody's
        // sends it, and the owner's next restore takes it in.
        d.journal.touch_all();
        d.moving_to = Some(owner);
        drop(s);
        write(shared);
    } else if d.phase == Phase::Memory && d.refused_for.as_deref() == Some(owner.as_str()) {
        // What "" holds was refused for bearing this owner's name while the owner was not known (a page of theirs
        // began to move it and went): restored again now, it moves on from here as a queue durable under "" does.
        // Left there, nothing would send it before the owner's next restore under their own key.
        d.refused_for = None;
        set_phase(&mut s, Phase::Restoring);
        drop(s);
    } else {
        // A restore under "" that had not adopted the stored queue (or gave up on it): it stays for whoever is
        // nobody next.
        let_go(d.release.take());
        restore_as(&mut s, owner);
        drop(s);
    }
    spawn_local(restore(Rc::downgrade(shared)));
}

/// A restore under `key` goes on only while that is still the queue's key, or the key it moves to (see
/// [`owner_known`]).
fn current(shared: &Shared, key: &str) -> bool {
    shared.try_borrow().is_ok_and(|s| {
        let d = &s.durable;
        !s.destroyed && (d.key.as_deref() == Some(key) || d.moving_to.as_deref() == Some(key))
    })
}

/// The queue under "" has its owner's lock: it is restored under the owner's key from here, and what it moved
/// from goes once it is stored there.
fn move_now(shared: &Shared) -> bool {
    let Ok(mut s) = shared.try_borrow_mut() else { return false };
    let d = &mut s.durable;
    // `clearPersisted()` meanwhile: nothing is stored any more, here or there.
    let Some(owner) = d.moving_to.take().filter(|_| !d.clearing) else { return false };
    d.moved_from = Some(MovedFrom { release: d.release.take() });
    if let Some(early) = &mut d.early {
        early.stop_watching();
    }
    restore_as(&mut s, owner);
    true
}

/// The queue is restored again under its owner's key: nothing more is sent until the owner's stored writes are
/// ahead of it, and the next tick keeps its early entry under that key.
fn restore_as(s: &mut State, owner: String) {
    if let Some(early) = &mut s.durable.early {
        early.drop_own();
    }
    s.durable.key = Some(owner);
    set_phase(s, Phase::Restoring);
}

async fn restore(weak: Weak<RefCell<State>>) {
    let moving_to = weak.upgrade().and_then(|shared| shared.try_borrow().ok()?.durable.moving_to.clone());
    let moving = moving_to.is_some();
    let key = match moving_to {
        Some(key) => key,
        None => match identify(&weak).await {
            Some(key) => key,
            None => return,
        },
    };
    let Some(store) = weak.upgrade().and_then(|shared| shared.try_borrow().ok()?.durable.store.clone()) else {
        return;
    };
    // One tab at a time owns a user's stored queue (it alone writes it and sends it). A tab that cannot have it
    // within a second works in memory and keeps waiting: when the holder closes or crashes, it takes over.
    let name = format!("record-sync:{key}");
    let follows = super::tabs::may_follow(&store.this);
    let mut wait_ms = if follows { FOLLOW_WAIT_MS } else { LOCK_WAIT_MS };
    let (shared, release) = loop {
        let lock = JsFuture::from(hold_lock(&name, wait_ms)).await.unwrap_or(JsValue::NULL);
        // `holdLock` answers null when another tab kept the lock, undefined where there are no Web Locks (this
        // tab then goes ahead alone).
        let locked_out = lock.is_null();
        let release = lock.dyn_into::<Function>().ok();
        let shared = weak.upgrade().filter(|shared| current(shared, &key));
        let Some(shared) = shared else {
            let_go(release);
            return;
        };
        // A moving queue that cannot follow the tab holding its owner's queue (an app's store, no
        // BroadcastChannel) stays durable under "", with its owner's name, and sends from there, as such a tab
        // works alone; the owner's next restore takes it in.
        if locked_out && moving && !follows {
            if let Ok(mut s) = shared.try_borrow_mut() {
                s.durable.moving_to = None;
            }
            schedule(&shared);
            return;
        }
        if moving && !move_now(&shared) {
            let_go(release);
            return;
        }
        // One queue per user where tabs can share it: a moving queue joins the owner's as a follower, as a new
        // tab does.
        let joins = locked_out && follows;
        if !locked_out && wait_ms == 0 && !moving {
            take_over(&shared);
        }
        // Nothing is sent from here on (`move_now` and `take_over` stop it); a request on its way settles its
        // writes before the engine is replaced or the queue goes to the inbox. Awaited here rather than in an
        // async function, which would be a state machine of its own.
        while (!locked_out || joins) && shared.try_borrow().is_ok_and(|s| s.engine.is_sending() && !s.destroyed) {
            let _ = JsFuture::from(sleep(20)).await;
        }
        if locked_out {
            if !joins || !super::tabs::follow(&shared, &key) {
                let why = "another tab holds this user's stored queue; this tab keeps its changes in memory, and in \
                           localStorage for that tab to take in if this one goes first";
                give_up(&shared, why.into());
            }
            wait_ms = 0;
            continue;
        }
        break (shared, release);
    };
    match shared.try_borrow_mut() {
        Ok(mut s) if !s.destroyed && s.durable.key.as_deref() == Some(&key) => s.durable.release = release,
        _ => {
            let_go(release);
            return;
        }
    }
    // Changes queued elsewhere before this instance's own are queued behind the stored queue and before them:
    // the inbox (a follower's changes the last holder had not taken in yet: taken in after this instance's,
    // an older write of a record would land on top of a newer one) and dead pages' early entries
    // (src/web/early.rs).
    let owner = shared.try_borrow().ok().and_then(|s| s.durable.owner());
    // Awaited here, each read of a JS promise: nested async functions would be state machines of their own.
    let read = match inbox_read(&store, &key) {
        Some(read) => JsFuture::from(read).await.unwrap_or(JsValue::NULL),
        None => JsValue::NULL,
    };
    let (inbox_keys, mut earlier) = inbox_entries(&read, owner.as_deref());
    let inbox = earlier.len();
    let found = match shared.try_borrow().is_ok_and(|s| s.durable.early.is_some()) {
        true => JsFuture::from(super::early::orphans(&key)).await.unwrap_or(JsValue::NULL),
        false => JsValue::NULL,
    };
    let (orphan_keys, orphans) = super::early::orphan_records(&found);
    earlier.extend(orphans.iter().filter_map(|record| own_entries(record, owner.as_deref())).flatten());
    // What is kept under "" goes on from here (its writes as they were, as a dead page's early entry's do): a
    // queue a page began to move to this user's key and did not finish moving (it died first), one an earlier
    // build kept there with this user's name in it, or nobody's changes, which join the queue of the first user
    // whose token comes, as a move does. Read along with the user's own queue, and only waited for once that
    // has come.
    // Only with the "" lock: a tab that holds it (a nobody's, or one moving to this key) keeps it to itself.
    let nobody_lock = match (owner.is_some(), key.is_empty() || moving) {
        (true, false) => {
            JsFuture::from(hold_lock(NOBODY_LOCK, NOBODY_LOCK_WAIT_MS)).await.ok().filter(|lock| !lock.is_null())
        }
        _ => None,
    };
    let nobody_load = nobody_lock.as_ref().and_then(|_| call(&store, &store.load, &[JsValue::from_str("")]).ok());
    // Dead nobody's pages' early entries too: changes queued before any token on a page that went before its
    // restore ended.
    let mut orphan_keys = orphan_keys;
    if nobody_lock.is_some() && shared.try_borrow().is_ok_and(|s| s.durable.early.is_some()) {
        let found = JsFuture::from(super::early::orphans("")).await.unwrap_or(JsValue::NULL);
        let (keys, records) = super::early::orphan_records(&found);
        let entries: Vec<_> = records.iter().filter_map(|record| own_entries(record, owner.as_deref())).collect();
        if !entries.is_empty() {
            orphan_keys.extend(keys);
            earlier.extend(entries.into_iter().flatten());
        }
    }
    let unreadable = |e: &JsValue| format!("could not read the stored queue ({})", error_message(e));
    let loaded = match call(&store, &store.load, &[JsValue::from_str(&key)]) {
        Err(e) => Err(unreadable(&e)),
        // A store that never answers would hold the queue back for good (nothing is sent while restoring).
        Ok(promise) => match timeout::within(&promise, LOAD_TIMEOUT_MS).await {
            None => Err(format!("storage.load did not answer within {} s", LOAD_TIMEOUT_MS / 1_000)),
            Some(Err(e)) => Err(unreadable(&e)),
            Some(Ok(value)) => Ok(value),
        },
    };
    let values: Result<Array, String> = match loaded {
        Err(why) => Err(why),
        Ok(value) => match js::items(&value) {
            Ok(Some(values)) => Ok(values),
            Ok(None) => Err(format!("storage.load must resolve to an array of records, not {}", describe(&value))),
            Err(e) => Err(unreadable(&e)),
        },
    };
    let stored = values.and_then(|values| {
        let stored =
            journal::replay(values.iter().map(|v| stored_record(&v, store.clones)).collect()).map_err(String::from)?;
        Ok((values, stored))
    });
    let from_nobody = match (&nobody_load, owner.as_deref()) {
        // Awaited even where the user's own queue could not be read, so that a rejection is handled.
        (Some(promise), Some(owner)) => {
            let wait = if stored.is_ok() { LOAD_TIMEOUT_MS } else { 0 };
            match timeout::within(promise, wait).await {
                Some(Ok(value)) if stored.is_ok() => nobodys(&value, store.clones, owner),
                _ => None,
            }
        }
        _ => None,
    };
    // Kept until the first write here has stored what it held (then deleted there), else let go now.
    // Where there are no Web Locks, `holdLock` answers undefined: the tab goes ahead alone, and what it took in
    // from "" is still deleted there after its first write.
    let nobody_lock = nobody_lock.map(|lock| MovedFrom { release: lock.dyn_into::<Function>().ok() });
    let nobody_lock = match from_nobody.is_some() && stored.is_ok() {
        true => nobody_lock,
        false => {
            unlock(nobody_lock);
            None
        }
    };
    earlier.extend(from_nobody.into_iter().flatten());
    // Moved to its owner's key meanwhile ([`owner_known`]): the restore under that key has the queue.
    if !current(&shared, &key) {
        return unlock(nobody_lock);
    }
    match stored {
        Err(why) => give_up(&shared, format!("{why}; it is left as it is and this session keeps changes in memory")),
        Ok((values, mut stored)) => {
            let skipped = stored.as_mut().map(|stored| std::mem::take(&mut stored.skipped)).unwrap_or_default();
            if let Ok(mut s) = shared.try_borrow_mut() {
                if s.destroyed {
                    return unlock(nobody_lock);
                }
                if let Err(why) = adopt(&mut s, stored, earlier, inbox) {
                    drop(s);
                    give_up(&shared, why);
                    return unlock(nobody_lock);
                }
                if nobody_lock.is_some() {
                    s.durable.moved_from = nobody_lock;
                }
                if !skipped.is_empty() {
                    s.durable.notice = Some(set_aside(&store, &key, &values, &skipped));
                    s.durable.version += 1;
                }
                // Deleted by the next write, which stores them in the queue; the inbox reader skips them meanwhile.
                for key in inbox_keys {
                    let text = js::json_text(&key).unwrap_or_default();
                    s.durable.tabs.undeleted.push((text, key));
                }
                if let Some(early) = &mut s.durable.early {
                    early.taken_in(orphan_keys);
                    let (weak, user) = (Rc::downgrade(&shared), key.clone());
                    early.watch(
                        &key,
                        Closure::new(move || {
                            let (weak, user) = (weak.clone(), user.clone());
                            spawn_local(async move { take_orphans(weak, user).await });
                        }),
                    );
                }
            }
            super::tabs::lead(&shared, &key);
            // The tick that follows a restore rewrites the whole queue (its journal was touched whole): in a task
            // of its own, the page gets a turn between the replay and that write (20,000 stored writes: one task of
            // 230-300 ms before, docs/measurements.md, Stop 20).
            let _ = JsFuture::from(sleep(0)).await;
            schedule(&shared);
            // Restored under "" with its owner known (see `owner_known`): the move begins.
            if key.is_empty() {
                owner_known(&shared);
            }
        }
    }
}

/// The writes stored under "" when they are `owner`'s or nobody's (see `restore`).
fn nobodys(loaded: &JsValue, clones: bool, owner: &str) -> Option<Vec<SavedEntry>> {
    let values = js::items(loaded).ok()??;
    ours(journal::replay(values.iter().map(|v| stored_record(&v, clones)).collect()).ok()??, Some(owner))
}

/// The writes of a record from elsewhere (an inbox record, a dead page's early entry) to queue again, or `None`
/// when it cannot be read or holds another user's changes.
fn own_entries(record: &JsValue, owner: Option<&str>) -> Option<Vec<SavedEntry>> {
    ours(journal::replay(vec![stored_record(record, false)]).ok()??, owner)
}

/// The writes of what was stored elsewhere, when all of them could be read and none is another user's.
fn ours(stored: Stored<JsRow>, owner: Option<&str>) -> Option<Vec<SavedEntry>> {
    let foreign = stored.owner.is_some_and(|theirs| owner.is_some_and(|mine| mine != theirs));
    (!foreign && stored.skipped.is_empty()).then_some(stored.snapshot.entries)
}

/// The store's read of the user's inbox (`readInbox`), or `None` where the store has no inbox. Nothing is
/// taken in where it cannot be read: the inbox reader takes those records in later.
fn inbox_read(store: &Store, key: &str) -> Option<Promise> {
    let read = get(&store.this, "readInbox").dyn_into::<Function>().ok()?;
    read.call1(&store.this, &JsValue::from_str(key)).ok().map(|promise| js::promised(&promise))
}

/// What the inbox read resolved to: the keys of the records of the user's own changes, and their writes
/// (another user's stay for a tab of theirs; an unreadable one is left to the inbox reader, which says so).
fn inbox_entries(read: &JsValue, owner: Option<&str>) -> (Vec<JsValue>, Vec<SavedEntry>) {
    let (mut keys, mut entries) = (Vec::new(), Vec::new());
    let (found_keys, found) = (js::items(&get(read, "keys")), js::items(&get(read, "records")));
    let (Ok(Some(found_keys)), Ok(Some(found))) = (found_keys, found) else {
        return (keys, entries);
    };
    for (index, record) in found.iter().enumerate() {
        if let Some(own) = own_entries(&record, owner) {
            keys.push(found_keys.get(index as u32));
            entries.extend(own);
        }
    }
    (keys, entries)
}

/// A page that kept early changes (src/web/early.rs) died while this tab holds the queue: its changes are
/// queued behind the queue's own, as another tab's inbox is.
async fn take_orphans(weak: Weak<RefCell<State>>, key: String) {
    let found = JsFuture::from(super::early::orphans(&key)).await.unwrap_or(JsValue::NULL);
    let (keys, records) = super::early::orphan_records(&found);
    let Some(shared) = weak.upgrade() else { return };
    let Ok(mut s) = shared.try_borrow_mut() else { return };
    if s.destroyed || s.durable.phase != Phase::Durable || keys.is_empty() {
        return;
    }
    let owner = s.durable.owner();
    for entries in records.iter().filter_map(|record| own_entries(record, owner.as_deref())) {
        for saved in &entries {
            touch(&mut s, &saved.table, &saved.id);
        }
        also_own(&mut s, &entries);
        carry(&mut s.engine, entries);
    }
    if let Some(early) = &mut s.durable.early {
        early.taken_in(keys);
    }
    drop(s);
    schedule(&shared);
}

/// The key the records a restore could not read are set aside under.
fn aside_key(key: &str) -> String {
    format!("{key}#unreadable")
}

/// Stores the records the restore could not read under a key of their own, before the next write replaces the
/// queue's records, so that they can still be looked at. Policy: they replace those an earlier restore set
/// aside (storage stays bounded whatever goes wrong, and the latest are the ones to look at), and
/// `clearPersisted()` deletes them with the queue. Returns the `lastError` naming them.
fn set_aside(store: &Store, key: &str, values: &Array, skipped: &[RecordError]) -> String {
    let aside = aside_key(key);
    for (n, index) in skipped.iter().map(|e| e.index).enumerate() {
        let value = values.get(u32::try_from(index).unwrap_or(u32::MAX));
        let args = [JsValue::from_str(&aside), value, JsValue::from_bool(n == 0)];
        // A failure here is left to the store's next write to report: the queue itself is not at stake.
        if let Ok(promise) = call(store, &store.append, &args) {
            spawn_local(async move {
                let _ = JsFuture::from(promise).await;
            });
        }
    }
    let whys: Vec<String> = skipped.iter().map(String::from).collect();
    format!(
        "storage: {}; left out of the restored queue and set aside under the key {}",
        whys.join("; "),
        quoted(&aside)
    )
}

/// The tab that held the stored queue is gone: stop sending (the restore then lets the request on its way settle),
/// then restore the stored queue with this tab's memory queue behind it (as for changes queued while restoring).
fn take_over(shared: &Shared) {
    if let Ok(mut s) = shared.try_borrow_mut() {
        s.durable.phase = Phase::Restoring;
        s.durable.error = None;
        s.durable.version += 1;
    }
}

/// The queue stays in memory for this instance; the stored one is not touched.
fn give_up(shared: &Shared, why: String) {
    if let Ok(mut s) = shared.try_borrow_mut() {
        let d = &mut s.durable;
        if let Some(from) = d.moved_from.take() {
            // The owner's queue could not be read: this one goes on where it was, durable under "" with its
            // owner's name, for the owner's next restore to take in.
            let_go(d.release.take());
            if let Some(early) = &mut d.early {
                early.drop_own();
            }
            d.key = Some(String::new());
            d.release = from.release;
            d.phase = Phase::Durable;
            d.journal.touch_all();
            // Durable all the same: said as a notice, not as a storage problem.
            d.notice = Some(format!("storage: {why}; the queue stays stored under no user, with its owner's name"));
            d.version += 1;
            drop(s);
            schedule(shared);
            return;
        }
        // Its early entry stays, and the ticks save it again ([`save_memory_early`]): if this page goes first, the
        // tab that holds the queue (watching for dead pages' entries), or the next restore, takes its changes in.
        d.phase = Phase::Memory;
        d.error = Some((u64::MAX, format!("storage: {why}")));
        d.version += 1;
        let_go(d.release.take());
    }
    schedule(shared);
}

/// Replaces the engine by the restored queue, with the writes queued elsewhere before (`earlier`: the first
/// `inbox` from the inbox, then dead pages' early entries) and then the changes queued meanwhile behind it.
fn adopt(
    s: &mut State,
    stored: Option<Stored<JsRow>>,
    mut earlier: Vec<SavedEntry>,
    inbox: usize,
) -> Result<(), String> {
    s.durable.phase = Phase::Durable;
    s.durable.version += 1;
    s.durable.journal.touch_all();
    if stored.is_none() && earlier.is_empty() {
        return Ok(());
    }
    let had_stored = stored.is_some();
    let stored = match stored {
        Some(stored) => stored,
        // Nothing stored, but writes from elsewhere: an empty queue to queue them in.
        None => Stored {
            snapshot: Snapshot::empty(1),
            client_id: None,
            owner: None,
            skipped: Vec::new(),
            remote_cursor: None,
        },
    };
    match (&s.durable.owner, &stored.owner) {
        (Some(mine), Some(theirs)) if mine != theirs => {
            return Err(format!(
                "the stored queue holds user {theirs}'s changes and this instance is user {mine}'s; it is left as it is"
            ))
        }
        // A queue under no user that bears a user's name (a page of theirs began to move it to their key and went,
        // or a version that kept a signed-in user's queue there wrote it): whoever signs in here may be someone
        // else, who must not take it over. Taken up again if this instance's owner turns out to be that user.
        (None, Some(theirs)) if s.durable.key.as_deref() == Some("") => {
            s.durable.refused_for = Some(theirs.clone());
            return Err(format!(
                "the queue stored under no user holds user {theirs}'s changes; it is left for that user's next \
                 sign-in"
            ));
        }
        _ => {}
    }
    let config = s.engine.shared_config();
    // The stored writes go again under the client ids they were queued under (each keeps its own: the server
    // knows replays by it); this instance's changes go under its own id, which no earlier page used, so a seq
    // sent before a store write was lost can never be given to another change under the same id.
    // The page that wrote last is one of them even when none of its writes is left (its rows come back too).
    let mut earlier_ids: Vec<String> = stored.client_id.iter().cloned().collect();
    for id in stored.snapshot.entries.iter().filter_map(|e| e.client_id.as_ref()) {
        if !earlier_ids.contains(id) {
            earlier_ids.push(id.clone());
        }
    }
    let mut engine =
        Engine::restore_with(config, stored.snapshot).map_err(|e| format!("the stored queue is refused: {e}"))?;
    // Past the stored queue's seqs and past those this instance used while it worked in memory (and may have
    // sent, under its own id).
    engine.set_next_seq(engine.next_seq().max(s.engine.next_seq()));
    engine.set_online(s.engine.is_online());
    engine.set_paused(s.engine.stats().is_paused);
    let orphans = earlier.split_off(inbox.min(earlier.len()));
    // A follower's changes in the inbox were never sent (a follower sends nothing): new changes, merged.
    for saved in &earlier {
        enqueue_again(&mut engine, saved);
    }
    // A dead page's early entry may hold writes it sent: one that took the queue over keeps its whole queue
    // there while it waits for its last request, and may die then.
    also_own(s, &orphans);
    carry(&mut engine, orphans);
    // This instance's own writes may have been sent already: by a tab that worked in memory before it took
    // the queue over, or by a request on its way when the restore began (its answer lost, or dropped by
    // `follow`).
    carry(&mut engine, s.engine.export().entries);
    if s.durable.owner.is_none() {
        s.durable.owner = stored.owner;
    }
    // Issue 11: catch-up goes on from where the stored cursor says.
    if had_stored {
        s.durable.journal.set_remote_cursor(stored.remote_cursor.clone());
        super::pull::restored(s, stored.remote_cursor, &earlier_ids);
    }
    // `forceSyncAll()` calls made while restoring wait for the restored queue too, numbered anew.
    if !s.waiters.is_empty() {
        let watermark = engine.flush_all(js::now());
        for waiter in &mut s.waiters {
            waiter.watermark = watermark;
            waiter.confirmed_before = 0;
            waiter.conflicts_before = 0;
        }
    }
    engine.follow(&s.engine);
    s.engine = engine;
    // Another engine: what it holds is a change, whatever events it has to give.
    s.engine_changes += 1;
    s.stats = None;
    s.notified_version = u64::MAX;
    Ok(())
}

/// Places writes that may have reached the server (sent, their answer lost) behind the queue, each keeping
/// its seq, client id and state, so that `rpc` mode's replay log answers a resend instead of applying it
/// again; those of a record the queue already writes are queued as new changes, merged into its write (their
/// composition under a new seq).
fn carry(engine: &mut Engine, entries: Vec<SavedEntry>) {
    for saved in engine.carry(entries) {
        enqueue_again(engine, &saved);
    }
}

/// Rows that come back with the client id of one of `entries` (carried under it) are this client's own.
fn also_own(s: &mut State, entries: &[SavedEntry]) {
    if let Some(pull) = s.pull.as_mut() {
        for id in entries.iter().filter_map(|e| e.client_id.as_deref()) {
            pull.remote.also_own(id);
        }
    }
}

/// Queues a saved write again, as a new change made when it was (a restored queue, another tab's inbox): behind
/// the queue's own write of its record, or beneath it where that write was edited later.
fn enqueue_again(engine: &mut Engine, saved: &SavedEntry) {
    let again = |op: Op| Change::new(&saved.table, &saved.id, op, saved.data.clone(), saved.priority);
    let mut enqueue = |c| engine.enqueue_made(c, saved.queued_at, saved.touched_at).ok();
    let queued = again(saved.op).ok().and_then(&mut enqueue);
    // An insert of a record the queue already writes becomes an upsert of the new row.
    if queued.is_none() && saved.op != Op::Delete {
        let _ = again(Op::Upsert).ok().and_then(enqueue);
    }
}

/// Empties the queue (keeping the replay identity: the seqs go on), and the next write stores it empty.
pub fn drop_queue(s: &mut State) {
    let snapshot = Snapshot::empty(s.engine.next_seq());
    let Ok(mut empty) = Engine::restore_with(s.engine.shared_config(), snapshot) else { return };
    empty.set_online(s.engine.is_online());
    empty.set_paused(s.engine.stats().is_paused);
    empty.follow(&s.engine);
    s.engine = empty;
    s.engine_changes += 1;
    s.stats = None;
    s.notified_version = u64::MAX;
    touch_all(s);
}

/// Another tab's change, taken in from the inbox by the tab that holds the queue.
pub fn requeue(s: &mut State, saved: &SavedEntry) {
    enqueue_again(&mut s.engine, saved);
    touch(s, &saved.table, &saved.id);
}

fn call(store: &Store, f: &Function, args: &[JsValue]) -> Result<Promise, JsValue> {
    let returned = f.apply(&store.this, &args.iter().collect::<Array>())?;
    Ok(js::promised(&returned))
}

/// Whether the engine may hand out a batch: not before the stored queue is restored, nor while a queue moves to
/// its owner's (the owner's stored writes go first: sent before them, a new change would be overwritten by an
/// older one).
pub fn may_send(s: &State) -> bool {
    matches!(s.durable.phase, Phase::Durable | Phase::Memory)
        && !s.durable.tabs.holding
        && s.durable.moving_to.is_none()
}

/// Whether catch-up may run: once the stored queue (and its cursor) is read, or in a tab that follows another.
/// A follower reads other devices' changes for its own listeners, from its own cursor, which it does not store
/// (the cursor stored with the queue is the leader's).
pub fn may_pull(s: &State) -> bool {
    matches!(s.durable.phase, Phase::Durable | Phase::Memory | Phase::Follower) && !s.durable.tabs.holding
}

/// The journal stores what becomes of the records of the batch in flight. The engine and the journal are
/// borrowed apart, so nothing is copied.
pub fn touch_flight(s: &mut State) {
    let State { engine, durable, .. } = s;
    if durable.phase != Phase::Memory {
        for change in engine.in_flight_batch().into_iter().flat_map(|batch| &batch.changes) {
            durable.journal.touch(&change.table, &change.id);
        }
    }
}

pub fn touch(s: &mut State, table: &str, id: &str) {
    if s.durable.phase != Phase::Memory {
        s.durable.journal.touch(table, id);
    }
}

/// The remote feed's cursor moved (issue 11): it is stored with the queue.
pub fn remote_cursor(s: &mut State, cursor: Option<SavedCursor>) {
    if s.durable.phase == Phase::Durable {
        s.durable.journal.set_remote_cursor(cursor);
    }
}

pub fn touch_all(s: &mut State) {
    if s.durable.phase != Phase::Memory {
        s.durable.journal.touch_all();
    }
}

/// Writes what the engine touched since the last write: one store call (one IndexedDB transaction).
pub fn persist(shared: &Shared) {
    write(shared);
}

/// [`persist`], returning the write. The leader's write also deletes the inbox records it took in (src/web/tabs.rs),
/// in the same transaction.
pub fn write(shared: &Shared) -> Option<Promise> {
    if shared.try_borrow().is_ok_and(|s| s.durable.phase == Phase::Follower) {
        return write_inbox(shared);
    }
    if let Ok(mut s) = shared.try_borrow_mut() {
        match s.durable.phase {
            Phase::Restoring => {
                save_early(&mut s);
                return None;
            }
            // In memory after a restore that could not have the stored queue.
            Phase::Memory if s.durable.store.is_some() => {
                save_memory_early(shared, &mut s);
                return None;
            }
            _ => {}
        }
    }
    let (store, key, written, number, drained, epoch, moving) = {
        let mut s = shared.try_borrow_mut().ok()?;
        let s = &mut *s;
        if s.durable.phase != Phase::Durable || s.durable.clearing {
            return None;
        }
        let epoch = s.durable.early.as_ref().map(super::early::Early::epoch);
        let store = s.durable.store.clone()?;
        let owner = s.durable.owner.clone();
        let written = s.durable.journal.take(&s.engine, &s.client_id, owner.as_deref())?;
        let (value, replace) = (stored_value(&written), written.replace);
        s.durable.writes += 1;
        let key = s.durable.key.clone()?;
        let drained: Array = s.durable.tabs.undeleted.iter().map(|(_, key)| key.clone()).collect();
        // The first write since a move ends it: it holds the whole queue. The write owns the end, so that a
        // `destroy()` before it commits still deletes what it moved from.
        let moving = s.durable.moved_from.take();
        (store, key, (value, replace), s.durable.writes, drained, epoch, moving)
    };
    let deleting = drained.length() as usize;
    // What a move leaves under "" goes in the transaction that stores the queue where it moved (the default
    // store; an app's store is asked to clear it once the write has committed).
    if moving.is_some() && store.clones {
        drained.push(&nobody_range());
    }
    let (value, replace) = written;
    let mut args = vec![JsValue::from_str(&key), value, JsValue::from_bool(replace)];
    if drained.length() > 0 {
        args.push(drained.into());
    }
    let result = call(&store, &store.append, &args);
    let returned = result.as_ref().ok().cloned();
    let weak = Rc::downgrade(shared);
    spawn_local(async move {
        let result = match result {
            Ok(promise) => JsFuture::from(promise).await.map(|_| ()),
            Err(e) => Err(e),
        };
        let mut moving = moving;
        if result.is_ok() {
            moved(&store, moving.take());
        }
        let alive = weak.upgrade().filter(|shared| shared.try_borrow().is_ok_and(|s| !s.destroyed));
        let Some(shared) = alive else { return unlock(moving) };
        let Ok(mut s) = shared.try_borrow_mut() else { return unlock(moving) };
        let failed = result.is_err();
        let d = &mut s.durable;
        match result {
            Ok(()) => {
                d.failures = 0;
                if let (Some(early), Some(epoch)) = (&mut d.early, epoch) {
                    early.stored(epoch);
                }
                // The inbox records this write deleted (those taken in since are still to delete).
                let deleted = deleting.min(d.tabs.undeleted.len());
                d.tabs.undeleted.drain(..deleted);
                if d.error.as_ref().is_some_and(|(at, _)| *at < number) {
                    d.error = None;
                    d.version += 1;
                }
            }
            Err(e) => {
                // The queue is whole in memory; the next write stores all of it again, and ends the move.
                if d.moved_from.is_none() {
                    d.moved_from = moving;
                }
                d.error = Some((
                    number,
                    format!("storage: could not save the queue ({}); it is kept in memory", error_message(&e)),
                ));
                d.journal.touch_all();
                d.version += 1;
            }
        }
        drop(s);
        super::notify(&shared);
        if failed {
            retry_later(&shared);
        }
    });
    returned
}

/// The queue is stored under its owner's key: the records it moved from go, and then their lock.
fn moved(store: &Store, from: Option<MovedFrom>) {
    let Some(from) = from else { return };
    let deleted = call(store, &store.clear, &[JsValue::from_str("")]);
    let Some(release) = from.release else { return };
    spawn_local(async move {
        if let Ok(deleted) = deleted {
            let _ = JsFuture::from(deleted).await;
        }
        let _ = release.call0(&JsValue::UNDEFINED);
    });
}

/// A move that did not end (its write failed after `destroy()`): the records under "" stay, for whoever is
/// nobody next, and so does nothing else of it.
fn unlock(from: Option<MovedFrom>) {
    let_go(from.and_then(|from| from.release));
}

/// Lets a Web Lock go (`None`: none was held, or there are no Web Locks).
fn let_go(lock: Option<Function>) {
    if let Some(release) = lock {
        let _ = release.call0(&JsValue::UNDEFINED);
    }
}

/// After a failed write, the whole queue is written again after a backoff (250 ms, doubling up to 30 s), not
/// only with the next change: until then the store holds records the failed write should have replaced (writes
/// since settled), which a reload would restore and send again.
fn retry_later(shared: &Shared) {
    let delay = {
        let Ok(mut s) = shared.try_borrow_mut() else { return };
        let destroyed = s.destroyed;
        let d = &mut s.durable;
        d.failures = d.failures.saturating_add(1);
        if d.retrying || destroyed {
            return;
        }
        d.retrying = true;
        250u32.saturating_mul(1 << d.failures.saturating_sub(1).min(7)).min(30_000)
    };
    tick_after(shared, delay, |d| &mut d.retrying);
}

/// A tick (and so a write) in `delay_ms`, which lowers the flag `waiting` that says one is on its way.
fn tick_after(shared: &Shared, delay_ms: u32, waiting: fn(&mut Durable) -> &mut bool) {
    let weak = Rc::downgrade(shared);
    spawn_local(async move {
        let _ = JsFuture::from(sleep(delay_ms)).await;
        let Some(shared) = weak.upgrade() else { return };
        if let Ok(mut s) = shared.try_borrow_mut() {
            *waiting(&mut s.durable) = false;
        }
        schedule(&shared);
    });
}

/// A tab in memory keeps its whole queue in the early entry too, and each save writes all of it: a long queue's
/// saves are paced to take a tenth of the time at most (the changes meanwhile wait for the next), except when the
/// page is hidden, which may be its last chance. (3,000 pending writes of 200-byte rows: 12 ms a save.)
fn save_memory_early(shared: &Shared, s: &mut State) {
    let now = js::now();
    if !s.durable.hidden && now < s.durable.early_after {
        if !std::mem::replace(&mut s.durable.early_waits, true) {
            let delay = (s.durable.early_after - now).min(10_000) as u32;
            tick_after(shared, delay, |d| &mut d.early_waits);
        }
        return;
    }
    save_early(s);
    let done = js::now();
    s.durable.early_after = done.saturating_add(done.saturating_sub(now).saturating_mul(9));
}

/// While the restore decides, the tick keeps the whole queue in the early entry (src/web/early.rs): nothing
/// else can be stored by the end of the task. So does a tab that works in memory because it could not have the
/// stored queue (another tab holds it, or it could not be read or taken).
fn save_early(s: &mut State) {
    let (Some(key), false) = (s.durable.key.clone(), s.durable.clearing) else { return };
    let version = super::engine_changes(s);
    if !s.durable.early.as_ref().is_some_and(|early| early.changed(version)) {
        return;
    }
    s.durable.journal.touch_all();
    let owner = s.durable.owner.clone();
    let value = if s.engine.holds_nothing() {
        None
    } else {
        s.durable.journal.take(&s.engine, &s.client_id, owner.as_deref()).map(|w| stored_value(&w))
    };
    // The restore's adoption writes the whole queue again (`adopt` touches everything).
    s.durable.journal.touch_all();
    let d = &mut s.durable;
    let kept = d.early.as_mut().is_none_or(|early| early.save(&key, version, value.as_ref()));
    if !kept && d.error.is_none() {
        // Cleared by the first write that stores the queue, as other storage errors are.
        let why = "storage: the changes queued while the stored queue is read could not be kept in localStorage \
                   (full, or not to be had); until the restore ends, a reload loses them";
        d.error = Some((d.writes, why.to_owned()));
        d.version += 1;
    }
}

/// A follower's write: the changes it queued since its last one go to the inbox, and leave its engine (the
/// leader's state is what it shows). A failed write puts them back, to be tried again with the next tick.
fn write_inbox(shared: &Shared) -> Option<Promise> {
    let (store, key, value, due, epoch, moving) = {
        let mut s = shared.try_borrow_mut().ok()?;
        let s = &mut *s;
        if s.durable.clearing || s.durable.journal.is_empty() || s.engine.holds_nothing() {
            // A queue that moved here with nothing in it: nothing to hand over, and nothing under "" to keep.
            if let (Some(store), true) = (s.durable.store.clone(), s.engine.holds_nothing()) {
                moved(&store, s.durable.moved_from.take());
            }
            return None;
        }
        let epoch = s.durable.early.as_ref().map(super::early::Early::epoch);
        s.durable.journal.touch_all();
        let owner = s.durable.owner.clone();
        let value = stored_value(&s.durable.journal.take(&s.engine, &s.client_id, owner.as_deref())?);
        let records =
            s.engine.export_refs().iter().map(|e| ((e.table.to_owned(), e.id.to_owned()), 0)).collect::<Vec<_>>();
        s.durable.tabs.inboxed.extend(records);
        let due = s.engine.poll_timeout();
        // Emptied, with the seqs going on (a follower's seqs are its own, like those queued while restoring).
        drop_queue(s);
        let moving = s.durable.moved_from.take();
        (s.durable.store.clone()?, s.durable.key.clone()?, value, due, epoch, moving)
    };
    if let Some(due) = due {
        super::tabs::wake_leader_at(shared, due);
    }
    let inbox = get(&store.this, "inbox").dyn_into::<Function>().ok()?;
    let mut args = vec![JsValue::from_str(&key), value.clone()];
    // A moved queue's records under "" go in the transaction that puts it in the inbox.
    if moving.is_some() {
        args.push(Array::of1(&nobody_range()).into());
    }
    let result = call(&store, &inbox, &args);
    let promise = match result {
        Ok(promise) => promise,
        Err(e) => Promise::reject(&e),
    };
    super::tabs::inboxed(shared, &promise);
    let weak = Rc::downgrade(shared);
    let written = promise.clone();
    spawn_local(async move {
        let result = JsFuture::from(written).await;
        let mut moving = moving;
        if result.is_ok() {
            moved(&store, moving.take());
        }
        let Some(shared) = weak.upgrade() else { return unlock(moving) };
        let Ok(mut s) = shared.try_borrow_mut() else { return unlock(moving) };
        let failed = result.is_err();
        if s.durable.moved_from.is_none() {
            // The next write to the inbox ends the move.
            s.durable.moved_from = moving;
        }
        match result {
            Ok(_) => {
                s.durable.failures = 0;
                if let (Some(early), Some(epoch)) = (&mut s.durable.early, epoch) {
                    early.stored(epoch);
                }
                if s.durable.error.take().is_some() {
                    s.durable.version += 1;
                }
            }
            Err(e) => {
                if let Ok(Some(stored)) = journal::replay(vec![stored_record(&value, false)]) {
                    for saved in &stored.snapshot.entries {
                        enqueue_again(&mut s.engine, saved);
                    }
                }
                s.durable.journal.touch_all();
                s.durable.error = Some((
                    u64::MAX,
                    format!("storage: could not save the queue ({}); it is kept in memory", error_message(&e)),
                ));
                s.durable.version += 1;
            }
        }
        drop(s);
        super::notify(&shared);
        if failed {
            retry_later(&shared);
        }
    });
    Some(promise)
}

/// Whether `token` is the queue owner's, or no owner is known yet ([`check_owner`] without fixing the owner).
pub fn is_owners(s: &State, token: &str) -> bool {
    s.durable.owner.as_ref().is_none_or(|owner| jwt_subject(token).as_ref() == Some(owner))
}

/// Checks the token a batch is about to be sent with against the queue's owner. A queue without an owner
/// takes the token's subject as its owner.
pub fn check_owner(shared: &Shared, token: Option<&str>) -> Result<(), String> {
    let Some(token) = token else { return Ok(()) };
    let Ok(mut s) = shared.try_borrow_mut() else { return Ok(()) };
    let subject = jwt_subject(token);
    match (&s.durable.owner, subject) {
        (Some(owner), Some(subject)) if *owner == subject => Ok(()),
        (None, Some(subject)) => {
            s.durable.owner = Some(subject);
            s.durable.version += 1;
            touch_all(&mut s);
            drop(s);
            owner_known(shared);
            Ok(())
        }
        (None, None) => Ok(()),
        (Some(owner), subject) => Err(format!(
            "waiting for user {owner}'s sign-in: the queue holds that user's changes and the access token is {}",
            subject.map_or_else(|| "not a user's".to_owned(), |s| format!("user {s}'s"))
        )),
    }
}

/// `stats()`: the engine's figures with `durable`, `restoring`, `user`, and the storage or owner problem as `lastError`.
pub fn stats(s: &State) -> JsValue {
    // A follower shows the shared queue: the leader's figures, with its own storage fields.
    let value = super::tabs::mirrored_stats(s).unwrap_or_else(|| {
        let stats = s.engine.stats();
        js::view(|out| stats.write_json(out))
    });
    let d = &s.durable;
    let set = |key: &str, v: JsValue| {
        let _ = js_sys::Reflect::set(&value, &JsValue::from_str(key), &v);
    };
    let durable = matches!(d.phase, Phase::Durable | Phase::Follower) && d.error.is_none();
    set("durable", JsValue::from_bool(durable));
    set("restoring", JsValue::from_bool(d.phase == Phase::Restoring));
    set("user", d.owner.as_deref().map_or(JsValue::NULL, JsValue::from_str));
    // Not while restoring: another tab may hold the queue, and this one sends nothing before it knows.
    set("leader", JsValue::from_bool(!matches!(d.phase, Phase::Follower | Phase::Restoring)));
    if let Some((_, why)) = &d.error {
        set("lastError", JsValue::from_str(why));
    } else if let Some(why) = d.notice.as_ref().filter(|_| js::get(&value, "lastError").is_null()) {
        set("lastError", JsValue::from_str(why));
    }
    value
}

/// Lets the tab lock go (after the last write was started, so the next holder reads it).
pub fn release(s: &mut State) {
    if let Some(listeners) = s.durable.lifecycle.take() {
        listeners.remove();
    }
    if let Some(early) = &mut s.durable.early {
        early.release();
    }
    s.durable.tabs.close();
    unlock(s.durable.moved_from.take());
    let_go(s.durable.release.take());
}

/// Stops persisting and deletes the stored queue of this instance's user; resolves when it is gone.
pub fn clear(shared: &Shared) -> Promise {
    let Ok(mut s) = shared.try_borrow_mut() else {
        return Promise::reject(&js::error("RecordSync: re-entrant call while the instance is busy"));
    };
    s.durable.clearing = true;
    let key = s.durable.key.clone();
    if let Some(early) = &mut s.durable.early {
        match &key {
            Some(key) => early.clear(key),
            None => early.drop_own(),
        }
    }
    let (Some(store), Some(key)) = (s.durable.store.clone(), s.durable.key.clone()) else {
        return Promise::resolve(&JsValue::UNDEFINED);
    };
    let release = s.durable.release.take();
    let moved_from = s.durable.moved_from.take();
    drop(s);
    // A queue on its way from no user's key to its owner's is stored under both until the move ends.
    moved(&store, moved_from);
    let result = call(&store, &store.clear, &[JsValue::from_str(&key)]);
    let cleared = match result {
        Ok(promise) => promise,
        Err(e) => Promise::reject(&e),
    };
    super::tabs::cleared(shared);
    // What a restore set aside goes too (the queue's own delete decides the answer).
    if let Ok(promise) = call(&store, &store.clear, &[JsValue::from_str(&aside_key(&key))]) {
        spawn_local(async move {
            let _ = JsFuture::from(promise).await;
        });
    }
    let Some(release) = release else { return cleared };
    // Held until the delete is committed, so no other tab reads the queue in between.
    wasm_bindgen_futures::future_to_promise(async move {
        let result = JsFuture::from(cleared).await;
        let _ = release.call0(&JsValue::UNDEFINED);
        result.map(|_| JsValue::UNDEFINED)
    })
}
