//! Live tabs of one user share one queue. The tab holding the user's Web Lock (storage.rs) leads: it alone
//! stores and sends the queue. Every other tab follows:
//! - a change it queues is stored by the end of the task that queued it, in an IndexedDB inbox (one record per
//!   tick, in the journal's format), and a BroadcastChannel message tells the leader;
//! - the leader reads the inbox, queues those changes in its engine (merging them with the other tabs' changes
//!   to the same records) and stores the result in the same IndexedDB transaction that deletes the inbox
//!   records, before it sends any of them: a change is stored once, in one place or the other, so a takeover
//!   neither loses it nor sends it under two seqs;
//! - the leader publishes its `stats()` on the channel after each tick that changed them, and followers show
//!   them; the `pendingChanges()` and `failedChanges()` lists go along while a follower reads them (serializing
//!   a long queue's list every tick would cost the leader's main thread for nothing); `forceSyncAll()`,
//!   `retryFailed()` and `discardFailed()` are forwarded to the leader.
//!
//! When the leader closes or crashes, its lock goes and one follower takes over (storage.rs `restore`), then
//! takes in the inbox. Without BroadcastChannel, with a custom store (no inbox), or for the queue kept under no
//! user (`follow`), a tab that cannot have the lock keeps its changes in memory and sends them itself, as before.

use std::cell::RefCell;

use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{spawn_local, JsFuture};

use super::js::{self, error_message, get};
use super::storage::{self, Phase};
use super::Engine;
use super::{Counted, Shared};
use crate::core::journal;
use crate::core::json::write_array;
use crate::core::remote::LocalChanges;

#[wasm_bindgen(module = "/src/web/shell.js")]
extern "C" {
    #[wasm_bindgen(js_name = channel)]
    fn open_channel(name: &str, on_message: &Function) -> JsValue;
}

/// A `forceSyncAll()` waiting for the inbox to be read: a follower's (its id), or the leader's own.
/// A `forceSyncAll()` answered after the inbox is read, with the counts at the time it was asked.
enum Request {
    Follower(JsValue, Option<Counted>),
    Own(Function, Function, Option<Counted>),
}

/// How long the leader keeps publishing the lists of a long queue after a follower asked for them.
const LISTS_FOR_MS: u64 = 5_000;

/// A queue of at most this many writes publishes its lists with every state, so that a follower's first
/// `pendingChanges()` shows the shared queue; a longer one's go only while a follower reads them, as its list is
/// not worth serializing every tick for nobody.
const LISTS_ALWAYS_UP_TO: usize = 250;

/// What the leader last published: its stats, and the lists when a follower reads them (of the same version as
/// the stats, or older).
struct Mirror {
    stats: JsValue,
    version: f64,
    lists: Option<(f64, JsValue, JsValue)>,
}

#[derive(Default)]
pub struct Tabs {
    channel: Option<JsValue>,
    on_message: Option<Closure<dyn FnMut(JsValue)>>,
    /// Leader: a follower said hello, so ticks publish the queue's state.
    followers: bool,
    published: Option<u64>,
    /// Leader: until when the lists go along with the stats.
    lists_until: u64,
    /// Leader: states published so far (the number followers compare their lists' age by).
    publishes: u64,
    /// Follower: asked the leader for the lists of the current version.
    wanted: Option<f64>,
    /// Leader: took in inbox records since the last publish.
    took_in: bool,
    /// Leader: inbox records taken in whose deletion is not committed yet (their key as JSON, and the key): every
    /// write deletes them until one succeeds, and a later read of the inbox skips them, so that a failed write
    /// does not queue them twice.
    pub undeleted: Vec<(String, JsValue)>,
    /// Follower: records written to the inbox that the leader has not said it took in yet.
    /// A map whose values go unread, not a set: it is the type of the core's `Remote::known`, so that the wasm
    /// holds one hash table's code for both (1 KB gzip less than a `BTreeSet`, 0.5 KB less than a `HashSet`).
    pub inboxed: crate::core::FastMap<(String, String), u64>,
    /// Follower: wakes the leader at the earliest deadline of the changes this tab queued.
    alarm: Option<(u64, gloo_timers::callback::Timeout)>,
    /// Leader: reading the inbox; `again`: a message came meanwhile.
    draining: bool,
    again: bool,
    /// Leader: changes taken from the inbox are not sent until the write that stores them (and deletes the
    /// inbox records) has committed.
    pub holding: bool,
    /// Leader: `forceSyncAll()` calls (followers' and its own) that the next read of the inbox covers.
    requests: Vec<Request>,
    /// Follower: the leader's last published state.
    mirror: Option<Mirror>,
    /// Follower: `forceSyncAll()` calls waiting for the leader's answer.
    asked: Vec<(String, Function, Function)>,
    next_ask: u32,
    /// Follower: the last inbox write, which a `forceSyncAll()` waits for before it asks the leader.
    last_write: Option<Promise>,
}

impl Tabs {
    fn post(&self, message: &JsValue) {
        if let Some(channel) = &self.channel {
            if let Ok(post) = get(channel, "postMessage").dyn_into::<Function>() {
                let _ = post.call1(channel, message);
            }
        }
    }

    /// Closes the channel; follower `forceSyncAll()` calls still waiting are rejected.
    pub fn close(&mut self) {
        if let Some(channel) = self.channel.take() {
            if let Ok(close) = get(&channel, "close").dyn_into::<Function>() {
                let _ = close.call0(&channel);
            }
        }
        self.on_message = None;
        self.alarm = None;
        let destroyed = js::error("RecordSync: destroyed before everything was synced");
        for (_, _, reject) in self.asked.drain(..) {
            let _ = reject.call1(&JsValue::UNDEFINED, &destroyed);
        }
        for request in self.requests.drain(..) {
            if let Request::Own(_, reject, _) = request {
                let _ = reject.call1(&JsValue::UNDEFINED, &destroyed);
            }
        }
    }
}

fn message(fields: &[(&str, JsValue)]) -> JsValue {
    let object = Object::new();
    for (key, value) in fields {
        let _ = Reflect::set(&object, &JsValue::from_str(key), value);
    }
    object.into()
}

/// `value` as an array of its own; an empty one for anything else (a message from another script on the channel,
/// an app's store's inbox that cannot be read).
fn array(value: &JsValue) -> Array {
    js::items(value).ok().flatten().unwrap_or_default()
}

fn kind(t: &str) -> (&'static str, JsValue) {
    ("t", JsValue::from_str(t))
}

/// Whether the store can carry a shared queue (the default IndexedDB store can; a custom store has no inbox).
fn shares(store: &JsValue) -> bool {
    ["inbox", "readInbox", "warm"].iter().all(|m| get(store, m).is_function())
}

/// Whether a tab locked out of the queue could follow the one that holds it.
pub fn may_follow(store: &JsValue) -> bool {
    shares(store) && get(&js_sys::global(), "BroadcastChannel").is_function()
}

/// Opens the user's channel once. False where there is none (no BroadcastChannel, a custom store).
fn open(shared: &Shared, key: &str) -> bool {
    let Ok(mut s) = shared.try_borrow_mut() else { return false };
    if s.durable.tabs.channel.is_some() {
        return true;
    }
    let Some(store) = s.durable.store_object().filter(shares) else { return false };
    let weak = std::rc::Rc::downgrade(shared);
    let on_message = Closure::<dyn FnMut(JsValue)>::new(move |data: JsValue| {
        if let Some(shared) = weak.upgrade() {
            received(&shared, &data);
        }
    });
    let channel = open_channel(&format!("record-sync:{key}"), on_message.as_ref().unchecked_ref());
    if channel.is_null() || channel.is_undefined() {
        return false;
    }
    if let Ok(warm) = get(&store, "warm").dyn_into::<Function>() {
        let _ = warm.call0(&store);
    }
    s.durable.tabs.channel = Some(channel);
    s.durable.tabs.on_message = Some(on_message);
    true
}

/// Another tab holds the queue: this one follows it, when it can. What it queued so far goes to the inbox.
/// Only a queue named by its user is shared: the queue kept under no user ("", API key only) takes its owner
/// from a token, so two tabs holding it may be two users.
pub fn follow(shared: &Shared, key: &str) -> bool {
    if key.is_empty() || !open(shared, key) {
        return false;
    }
    let waiting = match shared.try_borrow_mut() {
        Ok(mut s) => {
            storage::set_phase(&mut s, Phase::Follower);
            s.durable.tabs.post(&message(&[kind("hello")]));
            std::mem::take(&mut s.waiters)
        }
        Err(_) => Vec::new(),
    };
    // `forceSyncAll()` calls made while this tab restored wait for the shared queue: its changes go to the
    // inbox now, and the leader answers them (this tab's own engine sends nothing while it follows).
    if !waiting.is_empty() {
        storage::persist(shared);
        for waiter in waiting {
            ask(shared, waiter.resolve, waiter.reject);
        }
    }
    super::schedule(shared);
    true
}

/// This tab now holds the queue (restored): it takes in the inbox, answers the followers, and its own
/// `forceSyncAll()` calls that waited for a leader become its own.
pub fn lead(shared: &Shared, key: &str) {
    // The queue under no user is not shared (see `follow`), and moves to its owner's key when a token names one.
    if key.is_empty() || !open(shared, key) {
        return;
    }
    let asked = match shared.try_borrow_mut() {
        Ok(mut s) => {
            let tabs = &mut s.durable.tabs;
            tabs.mirror = None;
            tabs.published = None;
            tabs.last_write = None;
            tabs.post(&message(&[kind("leader")]));
            std::mem::take(&mut tabs.asked)
        }
        Err(_) => return,
    };
    drain_soon(shared);
    for (_, resolve, reject) in asked {
        settle(shared, resolve, reject, None);
    }
}

/// The leader's counts in stats it published (a follower's mirror), if they are there.
fn counts(stats: &JsValue) -> Option<Counted> {
    let count = |name| get(stats, name).as_f64().filter(|n| n.is_finite() && *n >= 0.0).map(|n| n as u64);
    Some(Counted { confirmed: count("successfulSyncs")?, conflicts: count("conflicts")? })
}

/// Settles a `forceSyncAll()` promise made earlier as this instance's own flush settles.
fn settle(shared: &Shared, resolve: Function, reject: Function, since: Option<Counted>) {
    let promise = super::flush_all(shared, since);
    spawn_local(async move {
        let _ = match JsFuture::from(promise).await {
            Ok(summary) => resolve.call1(&JsValue::UNDEFINED, &summary),
            Err(e) => reject.call1(&JsValue::UNDEFINED, &e),
        };
    });
}

fn received(shared: &Shared, data: &JsValue) {
    let t = get(data, "t").as_string().unwrap_or_default();
    let phase = match shared.try_borrow() {
        Ok(s) if !s.destroyed => storage::phase(&s),
        _ => return,
    };
    if phase == Phase::Follower {
        let Ok(mut s) = shared.try_borrow_mut() else { return };
        match t.as_str() {
            "state" => {
                let version = get(data, "version").as_f64().unwrap_or(0.0);
                let lists = get(data, "pending");
                let lists = if lists.is_undefined() {
                    s.durable.tabs.mirror.take().and_then(|m| m.lists)
                } else {
                    Some((version, lists, get(data, "failed")))
                };
                s.durable.tabs.mirror = Some(Mirror { stats: get(data, "stats"), version, lists });
                if get(data, "tookIn").is_truthy() {
                    s.durable.tabs.inboxed.clear();
                }
                if let Some(pull) = s.pull.as_mut() {
                    for id in array(&get(data, "own")).iter().filter_map(|id| id.as_string()) {
                        pull.remote.also_own(&id);
                    }
                }
                s.durable.version += 1;
                drop(s);
                super::notify(shared);
                // The leader may have settled this tab's changes: remote changes held for them can go on.
                super::pull::after_tick(shared);
            }
            // A new leader (a takeover) numbers its states from the start.
            "leader" => {
                let tabs = &mut s.durable.tabs;
                tabs.mirror = None;
                tabs.wanted = None;
                tabs.post(&message(&[kind("hello")]));
            }
            "flushed" => {
                let id = get(data, "id").as_string().unwrap_or_default();
                let tabs = &mut s.durable.tabs;
                let Some(at) = tabs.asked.iter().position(|(asked, _, _)| *asked == id) else { return };
                let (_, resolve, reject) = tabs.asked.remove(at);
                drop(s);
                let error = get(data, "error");
                if let Some(why) = error.as_string() {
                    let _ = reject.call1(&JsValue::UNDEFINED, &js::error(why));
                } else {
                    let _ = resolve.call1(&JsValue::UNDEFINED, &get(data, "summary"));
                }
            }
            _ => {}
        }
        return;
    }
    match t.as_str() {
        "hello" => {
            if let Ok(mut s) = shared.try_borrow_mut() {
                s.durable.tabs.followers = true;
                s.durable.tabs.published = None;
            }
            // A follower that reloads or crashes may have written before it could say so.
            drain_soon(shared);
            super::schedule(shared);
        }
        "inbox" => drain_soon(shared),
        "wake" => super::schedule(shared),
        "lists" => {
            if let Ok(mut s) = shared.try_borrow_mut() {
                s.durable.tabs.lists_until = js::now() + LISTS_FOR_MS;
                s.durable.tabs.published = None;
            }
            super::schedule(shared);
        }
        "flush" => {
            // Counted from what the follower saw of this queue when it was asked, so that batches confirmed
            // while its request was on its way are in its summary too.
            let since = super::counted(shared).map(|now| now.at_most(counts(&get(data, "seen"))));
            if let Ok(mut s) = shared.try_borrow_mut() {
                s.durable.tabs.requests.push(Request::Follower(get(data, "id"), since));
            }
            drain_soon(shared);
        }
        // A follower's clearPersisted(): the user's unsent changes are dropped in every tab, not only stored ones.
        "cleared" => {
            if let Ok(mut s) = shared.try_borrow_mut() {
                storage::drop_queue(&mut s);
            }
            super::schedule(shared);
        }
        "retry" | "discard" => {
            let only = get(data, "seq").as_f64().map(|n| n as u64);
            if let Ok(mut s) = shared.try_borrow_mut() {
                storage::touch_all(&mut s);
                if t == "retry" {
                    s.engine.retry_failed(only, js::now());
                } else {
                    s.engine.discard_failed(only);
                }
            }
            super::schedule(shared);
        }
        _ => {}
    }
}

fn drain_soon(shared: &Shared) {
    let Ok(mut s) = shared.try_borrow_mut() else { return };
    if storage::phase(&s) != Phase::Durable || s.durable.tabs.channel.is_none() || s.durable.tabs.draining {
        s.durable.tabs.again = true;
        return;
    }
    s.durable.tabs.draining = true;
    drop(s);
    spawn_local(drain(std::rc::Rc::downgrade(shared)));
}

/// Takes the inbox in, as often as messages came meanwhile.
async fn drain(weak: std::rc::Weak<std::cell::RefCell<super::State>>) {
    loop {
        let Some(shared) = weak.upgrade() else { return };
        let (store, key, requests) = {
            let Ok(mut s) = shared.try_borrow_mut() else { return };
            s.durable.tabs.again = false;
            match (s.durable.store_object(), s.durable.key()) {
                (Some(store), Some(key)) if !s.destroyed => (store, key, std::mem::take(&mut s.durable.tabs.requests)),
                _ => {
                    s.durable.tabs.draining = false;
                    return;
                }
            }
        };
        let read = match get(&store, "readInbox").dyn_into::<Function>() {
            Ok(read) => read.call1(&store, &JsValue::from_str(&key)).map(|p| js::promised(&p)),
            Err(v) => Err(v),
        };
        let read = match read {
            Ok(promise) => JsFuture::from(promise).await,
            Err(e) => Err(e),
        };
        drop(shared);
        let Some(shared) = weak.upgrade() else { return };
        let write = match read {
            Err(e) => {
                storage::report(
                    &shared,
                    format!("storage: could not read the other tabs' changes ({})", error_message(&e)),
                );
                None
            }
            Ok(read) => take_in(&shared, &get(&read, "keys"), &get(&read, "records")),
        };
        // Answered once what they asked to flush is in the queue.
        for request in requests {
            match request {
                Request::Follower(id, since) => answer(&shared, id, since),
                Request::Own(resolve, reject, since) => settle(&shared, resolve, reject, since),
            }
        }
        if let Some(write) = write {
            let _ = JsFuture::from(write).await;
        }
        let again = match shared.try_borrow_mut() {
            Ok(mut s) => {
                s.durable.tabs.holding = false;
                s.durable.tabs.draining = s.durable.tabs.again && !s.destroyed;
                s.durable.tabs.draining
            }
            Err(_) => false,
        };
        super::schedule(&shared);
        if !again {
            return;
        }
    }
}

/// Queues the inbox's changes behind the queue's own and starts the write that stores them and deletes the
/// inbox records. Returns that write.
fn take_in(shared: &Shared, keys: &JsValue, records: &JsValue) -> Option<Promise> {
    let (keys, records) = (array(keys), array(records));
    if records.length() == 0 {
        return None;
    }
    {
        let mut s = shared.try_borrow_mut().ok()?;
        let mut unreadable = Vec::new();
        for (index, record) in records.iter().enumerate() {
            let key = keys.get(index as u32);
            let key_text = js::json_text(&key).unwrap_or_default();
            if s.durable.tabs.undeleted.iter().any(|(k, _)| *k == key_text) {
                continue;
            }
            let read = journal::replay(vec![storage::stored_record(&record, false)]);
            // Never another user's changes (they stay in the inbox for a tab of theirs).
            if let (Ok(Some(stored)), Some(mine)) = (&read, &s.durable.owner()) {
                if stored.owner.as_ref().is_some_and(|theirs| theirs != mine) {
                    continue;
                }
            }
            s.durable.tabs.undeleted.push((key_text, key));
            match read {
                Ok(Some(stored)) => {
                    for saved in &stored.snapshot.entries {
                        storage::requeue(&mut s, saved);
                    }
                    unreadable.extend(stored.skipped.iter().map(String::from));
                }
                Ok(None) => {}
                Err(why) => unreadable.push(format!("{why} (inbox record {})", index + 1)),
            }
        }
        if !unreadable.is_empty() {
            // Deleted with the rest: a record no version of this library can read would otherwise stay forever.
            s.durable.notice_unreadable(format!(
                "storage: another tab's change could not be read and was dropped: {}",
                unreadable.join("; ")
            ));
        }
        s.durable.tabs.holding = true;
        s.durable.tabs.took_in = true;
        s.durable.write_anyway();
    }
    let write = storage::write(shared);
    if write.is_none() {
        if let Ok(mut s) = shared.try_borrow_mut() {
            s.durable.tabs.holding = false;
        }
    }
    write
}

/// A follower's `forceSyncAll()`: resolves with the leader's summary once the leader's queue has settled it.
fn answer(shared: &Shared, id: JsValue, since: Option<Counted>) {
    let promise = super::flush_all(shared, since);
    let weak = std::rc::Rc::downgrade(shared);
    spawn_local(async move {
        let result = JsFuture::from(promise).await;
        let Some(shared) = weak.upgrade() else { return };
        let Ok(s) = shared.try_borrow() else { return };
        let reply = match result {
            Ok(summary) => message(&[kind("flushed"), ("id", id), ("summary", summary)]),
            Err(e) => message(&[kind("flushed"), ("id", id), ("error", JsValue::from_str(&error_message(&e)))]),
        };
        s.durable.tabs.post(&reply);
    });
}

/// Leader: after a tick, the queue's state for the followers, when it changed and someone listens.
pub fn publish(shared: &Shared) {
    let Ok(mut s) = shared.try_borrow_mut() else { return };
    let version = super::observed_version(&mut s);
    let tabs = &s.durable.tabs;
    if s.destroyed || !tabs.followers || tabs.published == Some(version) || storage::phase(&s) != Phase::Durable {
        return;
    }
    s.durable.tabs.publishes += 1;
    let number = JsValue::from_f64(s.durable.tabs.publishes as f64);
    let mut fields = vec![kind("state"), ("stats", super::stats_value(&mut s)), ("version", number)];
    // The ids the shared queue's writes go under, so that a follower's listeners see them come back as `own`.
    if let Some(pull) = s.pull.as_ref() {
        fields.push(("own", pull.remote.own_ids().map(JsValue::from_str).collect::<Array>().into()));
    }
    if s.engine.write_count() <= LISTS_ALWAYS_UP_TO || js::now() < s.durable.tabs.lists_until {
        let (pending, failed) = (s.engine.pending_changes(), s.engine.failed_changes());
        fields.push(("pending", js::view(|out| write_array(out, &pending, |v, out| v.write_json(out)))));
        fields.push(("failed", js::view(|out| write_array(out, &failed, |v, out| v.write_json(out)))));
    }
    if std::mem::take(&mut s.durable.tabs.took_in) {
        fields.push(("tookIn", JsValue::TRUE));
    }
    s.durable.tabs.published = Some(version);
    s.durable.tabs.post(&message(&fields));
}

/// What this tab knows of unsettled local changes: the one place issue 11's hold-and-rebase rule asks whether a
/// change of this tab's user to a record is pending or in flight in the queue this tab shows. In a follower:
/// its changes not yet written to the inbox, those the leader has not yet said it took in (cleared by the first
/// state the leader publishes after a read of the inbox, which may be a read that began a few milliseconds
/// before this tab's last write), and the leader's last published pending list (asked for on the first call).
pub struct LocalView<'a> {
    engine: &'a Engine,
    durable: RefCell<&'a mut storage::Durable>,
}

impl<'a> LocalView<'a> {
    pub fn new(engine: &'a Engine, durable: &'a mut storage::Durable) -> Self {
        LocalView { engine, durable: RefCell::new(durable) }
    }
}

impl LocalChanges for LocalView<'_> {
    fn has_local_change(&self, table: &str, id: &str) -> bool {
        if self.engine.has_local_change(table, id) {
            return true;
        }
        let Ok(mut durable) = self.durable.try_borrow_mut() else { return false };
        if durable.phase() != Phase::Follower {
            return false;
        }
        if durable.tabs.inboxed.contains_key(&(table.to_owned(), id.to_owned())) {
            return true;
        }
        let list = mirrored_list(&mut durable.tabs, false);
        array(&list).iter().any(|c| {
            get(&c, "table").as_string().as_deref() == Some(table) && get(&c, "id").as_string().as_deref() == Some(id)
        })
    }
}

/// `forceSyncAll()` where tabs share the queue. The leader reads the inbox first (a follower may have closed
/// or crashed before it said that it wrote there); a follower asks the leader once its changes are in the
/// inbox. `None`: a lone tab, which flushes its own queue.
pub fn flush(shared: &Shared) -> Option<Promise> {
    let phase = shared.try_borrow().ok().filter(|s| s.durable.tabs.channel.is_some()).map(|s| storage::phase(&s))?;
    if phase != Phase::Durable && phase != Phase::Follower {
        return None;
    }
    let mut slot = None;
    let promise = Promise::new(&mut |resolve, reject| slot = Some((resolve, reject)));
    let (resolve, reject) = slot?;
    if phase == Phase::Durable {
        let since = super::counted(shared);
        shared.try_borrow_mut().ok()?.durable.tabs.requests.push(Request::Own(resolve, reject, since));
        drain_soon(shared);
    } else {
        storage::persist(shared);
        ask(shared, resolve, reject);
    }
    Some(promise)
}

/// Follower: asks the leader to flush the shared queue once this tab's changes are in the inbox (the last
/// write to it has committed), and settles `resolve` or `reject` with the leader's answer.
fn ask(shared: &Shared, resolve: Function, reject: Function) {
    let Ok(mut s) = shared.try_borrow_mut() else { return };
    let id = format!("{}:{}", s.client_id, s.durable.tabs.next_ask);
    s.durable.tabs.next_ask += 1;
    let seen = s.durable.tabs.mirror.as_ref().map_or(JsValue::UNDEFINED, |m| m.stats.clone());
    s.durable.tabs.asked.push((id.clone(), resolve, reject));
    let written = s.durable.tabs.last_write.clone();
    drop(s);
    let weak = std::rc::Rc::downgrade(shared);
    spawn_local(async move {
        if let Some(written) = written {
            let _ = JsFuture::from(written).await;
        }
        let Some(shared) = weak.upgrade() else { return };
        let Ok(s) = shared.try_borrow() else { return };
        s.durable.tabs.post(&message(&[kind("flush"), ("id", JsValue::from_str(&id)), ("seen", seen)]));
    });
}

/// `clearPersisted()` deleted the stored queue in a follower, or in a tab still restoring: the leader drops the one
/// it holds.
pub fn cleared(shared: &Shared) {
    let Ok((phase, key)) = shared.try_borrow().map(|s| (storage::phase(&s), s.durable.key())) else { return };
    // A tab still restoring may be one that would follow: the tab that holds the queue drops it too.
    if let (Phase::Restoring, Some(key)) = (phase, key.filter(|k| !k.is_empty())) {
        open(shared, &key);
    }
    if matches!(phase, Phase::Follower | Phase::Restoring) {
        if let Ok(s) = shared.try_borrow() {
            s.durable.tabs.post(&message(&[kind("cleared")]));
        }
    }
}

/// Follower: the changes just written to the inbox are due at `deadline`. The leader's timer may be throttled (a
/// hidden tab's timers run once a minute in Chromium after a while), so this tab, where the user is, wakes it then.
pub fn wake_leader_at(shared: &Shared, deadline: u64) {
    let Ok(mut s) = shared.try_borrow_mut() else { return };
    let now = js::now();
    if let Some((at, _)) = &s.durable.tabs.alarm {
        if *at <= deadline && *at > now {
            return;
        }
    }
    let weak = std::rc::Rc::downgrade(shared);
    let delay = deadline.saturating_sub(now).min(i32::MAX as u64) as u32;
    let timeout = gloo_timers::callback::Timeout::new(delay, move || {
        if let Some(shared) = weak.upgrade() {
            if let Ok(mut s) = shared.try_borrow_mut() {
                s.durable.tabs.alarm = None;
                s.durable.tabs.post(&message(&[kind("wake")]));
            }
        }
    });
    s.durable.tabs.alarm = Some((deadline, timeout));
}

/// Follower: an inbox write started; tells the leader once it is committed.
pub fn inboxed(shared: &Shared, write: &Promise) {
    if let Ok(mut s) = shared.try_borrow_mut() {
        s.durable.tabs.last_write = Some(write.clone());
    }
    let weak = std::rc::Rc::downgrade(shared);
    let write = write.clone();
    spawn_local(async move {
        if JsFuture::from(write).await.is_ok() {
            if let Some(shared) = weak.upgrade() {
                if let Ok(s) = shared.try_borrow() {
                    s.durable.tabs.post(&message(&[kind("inbox")]));
                }
            }
        }
    });
}

/// Follower: `retryFailed()` / `discardFailed()` go to the leader; the count is that of the published list.
pub fn forward(shared: &Shared, what: &str, only: Option<u64>) -> Option<u32> {
    let s = shared.try_borrow().ok()?;
    if s.destroyed || storage::phase(&s) != Phase::Follower {
        return None;
    }
    let seq = only.map_or(JsValue::UNDEFINED, |n| JsValue::from_f64(n as f64));
    s.durable.tabs.post(&message(&[kind(what), ("seq", seq)]));
    let failed = s.durable.tabs.mirror.as_ref().and_then(|m| m.lists.as_ref()).map(|l| array(&l.2)).unwrap_or_default();
    let count = failed.iter().filter(|f| only.is_none_or(|n| get(f, "seq").as_f64() == Some(n as f64))).count();
    Some(count as u32)
}

/// Follower: the leader's list (`pendingChanges()` / `failedChanges()`), the last one published (empty before
/// any). When it is older than the stats (a long queue's), the leader is asked for fresh ones, and sends them
/// with its stats for the next [`LISTS_FOR_MS`].
pub fn mirrored(s: &mut super::State, failed: bool) -> Option<JsValue> {
    if storage::phase(s) != Phase::Follower {
        return None;
    }
    Some(mirrored_list(&mut s.durable.tabs, failed))
}

fn mirrored_list(tabs: &mut Tabs, failed: bool) -> JsValue {
    let (version, lists) = match &tabs.mirror {
        Some(mirror) => (mirror.version, mirror.lists.as_ref()),
        None => (-1.0, None),
    };
    let list = lists.map(|(_, pending, failed_list)| if failed { failed_list } else { pending }.clone());
    if lists.is_none_or(|(at, _, _)| *at < version) && tabs.wanted != Some(version) {
        tabs.wanted = Some(version);
        tabs.post(&message(&[kind("lists")]));
    }
    list.unwrap_or_else(|| Array::new().into())
}

/// Follower: a copy of the leader's stats, for `stats()` to set this tab's own fields on.
pub fn mirrored_stats(s: &super::State) -> Option<JsValue> {
    if storage::phase(s) != Phase::Follower {
        return None;
    }
    let stats = &s.durable.tabs.mirror.as_ref()?.stats;
    Some(Object::assign(&Object::new(), stats.unchecked_ref()).into())
}
