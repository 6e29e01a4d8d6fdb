//! Changes queued before the restore decides whether this tab holds the stored queue (the restore's first
//! milliseconds; a second tab's wait before it follows): they are kept in localStorage by the end of their
//! task, because IndexedDB cannot be opened before a reload right after construction takes the page away. A tab
//! that then works in memory (another tab holds the queue and it cannot follow; the queue could not be read or
//! taken) keeps its whole queue there the same way. Only with the default IndexedDB store. See the section of
//! shell.js for how a dead page's entry is told from a live one's.
//!
//! An entry is dropped after the first successful IndexedDB write that holds its changes (the queue's, or the
//! inbox's for a follower) and that started after the entry's last save; the entries of dead pages and
//! destroyed instances are queued again by the next restore of the same user's queue, and dropped likewise.

use std::cell::Cell;

use super::js;
use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen(module = "/src/web/shell.js")]
extern "C" {
    #[wasm_bindgen(js_name = earlySave)]
    fn early_save(user: &str, instance: u32, record: &JsValue) -> bool;
    #[wasm_bindgen(js_name = earlyDrop)]
    fn early_drop(user: &str, instance: u32);
    #[wasm_bindgen(js_name = earlyRelease)]
    fn early_release(instance: u32);
    #[wasm_bindgen(js_name = earlyOrphans)]
    fn early_orphans(user: &str) -> Promise;
    #[wasm_bindgen(js_name = earlyRemove)]
    fn early_remove(keys: Vec<String>);
    #[wasm_bindgen(js_name = earlyClear)]
    fn early_clear(user: &str);
    #[wasm_bindgen(js_name = earlyWatch)]
    fn early_watch(user: &str, on_orphan: &js_sys::Function) -> js_sys::Function;
}

thread_local! {
    static NEXT_INSTANCE: Cell<u32> = const { Cell::new(1) };
}

/// This instance's early entry.
pub struct Early {
    instance: u32,
    /// The user key the entry is saved under, while there is one.
    saved: Option<String>,
    /// Bumped at every save: a write that started before the last save does not hold all of it.
    epoch: u64,
    /// The engine's version at the last save: a tick that changed nothing saves nothing.
    version: Option<u64>,
    /// Dead pages' entries queued again, each with the epoch from which a write holds it: dropped after a
    /// successful write that started there or later.
    orphans: Vec<(String, u64)>,
    /// While this tab holds the queue: stops watching for pages that die with early changes.
    unwatch: Option<js_sys::Function>,
    _on_orphan: Option<Closure<dyn FnMut()>>,
}

impl Early {
    pub fn new() -> Early {
        let instance = NEXT_INSTANCE.with(|n| n.replace(n.get().wrapping_add(1)));
        Early { instance, saved: None, epoch: 0, version: None, orphans: Vec::new(), unwatch: None, _on_orphan: None }
    }

    /// Whether the queue changed since the last save.
    pub fn changed(&self, version: u64) -> bool {
        self.version != Some(version)
    }

    /// Keeps the instance's whole queue as its entry (`record`: what the journal wrote for it), or drops the
    /// entry when the queue is empty.
    /// Whether it is kept (false: localStorage is full or not to be had, and a reload now loses the changes).
    pub fn save(&mut self, user: &str, version: u64, record: Option<&JsValue>) -> bool {
        self.epoch += 1;
        self.version = Some(version);
        match record {
            Some(record) if early_save(user, self.instance, record) => {
                self.saved = Some(user.to_owned());
                true
            }
            Some(_) => {
                self.drop_own();
                false
            }
            None => {
                self.drop_own();
                true
            }
        }
    }

    /// What a write starting now will have stored when it succeeds.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// A write that started at `epoch` succeeded: the entries it holds the changes of are not needed.
    pub fn stored(&mut self, epoch: u64) {
        if epoch == self.epoch {
            self.drop_own();
        }
        let (done, left): (Vec<_>, Vec<_>) = std::mem::take(&mut self.orphans).into_iter().partition(|o| o.1 <= epoch);
        self.orphans = left;
        if !done.is_empty() {
            early_remove(done.into_iter().map(|(key, _)| key).collect());
        }
    }

    /// The instance keeps its changes in memory from now on, or they were cleared: its entry goes.
    pub fn drop_own(&mut self) {
        if let Some(user) = self.saved.take() {
            early_drop(&user, self.instance);
        }
    }

    /// `clearPersisted()`: every early entry of `user` goes with the stored queue.
    pub fn clear(&mut self, user: &str) {
        self.saved = None;
        self.orphans.clear();
        early_clear(user);
    }

    /// The instance is destroyed: its entry, if any, is the next restore's.
    pub fn release(&mut self) {
        early_release(self.instance);
        self.stop_watching();
    }

    /// While this tab holds `user`'s queue, `on_orphan` runs each time a page that kept early changes dies.
    pub fn watch(&mut self, user: &str, on_orphan: Closure<dyn FnMut()>) {
        self.stop_watching();
        self.unwatch = Some(early_watch(user, on_orphan.as_ref().unchecked_ref()));
        self._on_orphan = Some(on_orphan);
    }

    pub fn stop_watching(&mut self) {
        if let Some(unwatch) = self.unwatch.take() {
            let _ = unwatch.call0(&JsValue::UNDEFINED);
        }
        self._on_orphan = None;
    }

    /// These entries were queued again: they go after the next successful write that holds them.
    pub fn taken_in(&mut self, keys: Vec<String>) {
        self.epoch += 1;
        let epoch = self.epoch;
        self.orphans.extend(keys.into_iter().map(|key| (key, epoch)));
    }
}

/// The entries for `user` left by dead pages and destroyed instances, as a promise of `[key, record]` pairs
/// ([`orphan_records`] reads them). The caller awaits it: a nested async function would be a state machine of
/// its own in the wasm.
pub fn orphans(user: &str) -> Promise {
    early_orphans(user)
}

/// What [`orphans`] resolved to, as the entries' keys and records.
pub fn orphan_records(found: &JsValue) -> (Vec<String>, Vec<JsValue>) {
    let (mut keys, mut records) = (Vec::new(), Vec::new());
    let Ok(Some(found)) = js::items(found) else {
        return (keys, records);
    };
    for pair in found.iter() {
        let Ok(Some(pair)) = js::items(&pair) else { continue };
        if let Some(key) = pair.get(0).as_string() {
            keys.push(key);
            records.push(pair.get(1));
        }
    }
    (keys, records)
}
