//! The sync engine: a state machine the browser shell drives. It never reads a clock and never does I/O:
//! the shell passes `now` (ms) to every call, sends what [`Engine::poll_batch`] hands out, reports back with
//! [`Engine::on_batch_result`], and arms one timer for [`Engine::poll_timeout`].
//!
//! One batch is in flight at a time. That keeps every record's writes, and parents before children, in the
//! order they were queued without tracking dependencies across concurrent requests; batching makes up the
//! throughput.
//!
//! By concern, one owner per invariant: what crosses to the shell (outcome.rs), when writes go and in what
//! order (schedule.rs), what an answer does to them (settle.rs), the failed list (failed.rs), and what the
//! engine reports (report.rs). This file holds the state and taking changes in.

mod failed;
mod outcome;
mod output;
mod report;
mod schedule;
mod settle;

use std::collections::VecDeque;
use std::rc::Rc;

use super::change::Change;
use super::config::Config;
use super::error::EngineError;
use super::hash::FastMap;
use super::merge::InsertOfExisting;
use super::payload::Payload;
use super::queue::{set_for_table, Absorbed, Entry, Key, Queue, TableId};
use super::snapshot::SavedState;
use super::sort::sort_names;
use super::stats::LatencyWindow;
use super::wire::Exchange;

/// Seqs reach JS as numbers, exact up to 2^53: a stored seq or next seq past it is not one this library gave, and
/// counting on from it could overflow.
pub(crate) const MAX_SEQ: u64 = 1 << 53;

pub(crate) use outcome::FailedEntry;
pub use outcome::{
    Batch, ChangeOutcome, Conflict, ConflictReason, FailedView, Failure, Outcome, OutgoingChange, PendingView,
    Resolution,
};
pub use output::{Event, Output, Transmit};

/// A saved write that does not fit with those placed before it (two pending writes of a record that do not
/// fold, a blocked write without a failed one ahead of it, two failed writes of one record).
pub(crate) struct SavedConflict;

struct InFlight<P> {
    id: u64,
    entries: Vec<Entry<P>>,
}

#[derive(Default)]
struct Counters {
    total_changes: u64,
    merged_changes: u64,
    successful_syncs: u64,
    failed_syncs: u64,
    conflicts: u64,
    retries: u64,
    requests: u64,
}

pub struct Engine<P> {
    /// Shared with the engine that replaces this one ([`Engine::shared_config`]): it never changes.
    config: Rc<Config>,
    tables: Vec<Rc<str>>,
    table_ids: FastMap<Rc<str>, TableId>,
    /// Ancestor tables of each table the config names parents for, indexed by table id ([`set_for_table`]).
    ancestors: Vec<Option<Vec<TableId>>>,
    pending: Queue<P>,
    in_flight: Option<InFlight<P>>,
    /// The last flight's vector, empty, for the next: one allocation less per batch.
    spare: Vec<Entry<P>>,
    /// The failed writes, at most one per record, each with the write waiting behind it (`blocked`). Few, and
    /// sorted by order when listed: an ordered index would be another BTree type in the wasm.
    failed_keys: FastMap<Key, FailedEntry<P>>,
    next_seq: u64,
    /// The smallest seq of a write placed with a seq below its order (one carried from another engine behind
    /// this one's, keeping its replay identity), and the largest order of one: while a write with an order up
    /// to `kept_through` lives, `low_water` stays at or below `kept_seq` (schedule.rs).
    kept_seq: u64,
    kept_through: u64,
    next_batch: u64,
    /// No batch before this time (backoff after transient failures).
    not_before: u64,
    /// No batch before this time either, by the server's own `Retry-After`: `forceSyncAll()` and `online` skip
    /// the backoff, not a wait the server asked for.
    server_not_before: u64,
    consecutive_failures: u32,
    online: bool,
    paused: bool,
    rng: fastrand::Rng,
    counters: Counters,
    latency: LatencyWindow,
    last_error: Option<String>,
    /// `last_error` says why sending waits for a token: the first write confirmed after that clears it.
    last_error_is_auth: bool,
    /// Sending waits for an access token.
    needs_auth: bool,
    /// Conflicts not yet taken by the shell.
    conflicts: VecDeque<Conflict<P>>,
    /// Something a caller can observe changed since the last [`Event::StateChanged`] went out.
    changed: bool,
    /// The latest time the shell gave (output.rs hands out what is due by then).
    now: u64,
    /// The wire plan of the batch in flight, when the engine carries it (output.rs).
    exchange: Option<Exchange<P>>,
    /// The requests on their way, waiting for their answers.
    awaiting: Vec<u64>,
    next_request: u64,
}

impl<P: Payload> Engine<P> {
    pub fn new(config: Config) -> Result<Engine<P>, EngineError> {
        Self::with_config(Rc::new(config))
    }

    /// [`Engine::new`] with another engine's config ([`Engine::shared_config`]), which is not copied.
    pub fn with_config(config: Rc<Config>) -> Result<Engine<P>, EngineError> {
        config.validate()?;
        let mut engine = Engine {
            rng: fastrand::Rng::with_seed(config.seed),
            config,
            tables: Vec::new(),
            table_ids: FastMap::default(),
            ancestors: Vec::new(),
            pending: Queue::default(),
            in_flight: None,
            spare: Vec::new(),
            failed_keys: FastMap::default(),
            next_seq: 1,
            kept_seq: u64::MAX,
            kept_through: 0,
            next_batch: 1,
            not_before: 0,
            server_not_before: 0,
            consecutive_failures: 0,
            online: true,
            paused: false,
            counters: Counters::default(),
            latency: LatencyWindow::default(),
            last_error: None,
            last_error_is_auth: false,
            needs_auth: false,
            conflicts: VecDeque::new(),
            changed: false,
            now: 0,
            exchange: None,
            awaiting: Vec::new(),
            next_request: 1,
        };
        let mut tables: Vec<String> = engine.config.parents.keys().cloned().collect();
        sort_names(&mut tables);
        for table in tables {
            let ancestors: Vec<TableId> =
                engine.config.ancestors(&table).iter().map(|name| engine.intern(name)).collect();
            for &ancestor in &ancestors {
                engine.pending.index_table(ancestor);
            }
            let id = engine.intern(&table);
            set_for_table(&mut engine.ancestors, id, ancestors);
        }
        Ok(engine)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The config, for an engine that replaces this one ([`Engine::with_config`], [`Engine::restore_with`]).
    pub fn shared_config(&self) -> Rc<Config> {
        Rc::clone(&self.config)
    }

    fn intern(&mut self, table: &str) -> TableId {
        if let Some(&id) = self.table_ids.get(table) {
            return id;
        }
        let id = self.tables.len() as TableId;
        let name: Rc<str> = Rc::from(table);
        self.tables.push(name.clone());
        self.table_ids.insert(name, id);
        id
    }

    pub(crate) fn key_for(&mut self, table: &str, id: &str) -> Key {
        (self.intern(table), Box::from(id))
    }

    /// Queues a change and returns its seq. Fails, changing nothing, when the change cannot follow what is
    /// already queued for its record (an insert of a record the queue holds as existing).
    pub fn enqueue(&mut self, change: Change<P>, now: u64) -> Result<u64, EngineError> {
        self.enqueue_spanning(change, now, now)
    }

    /// [`Engine::enqueue`] of a change whose first edit was at `queued_at` and last at `touched_at`.
    fn enqueue_spanning(&mut self, mut change: Change<P>, queued_at: u64, touched_at: u64) -> Result<u64, EngineError> {
        self.now = self.now.max(queued_at);
        // The change's id becomes the entry's key without a copy.
        let key = (self.intern(&change.table), std::mem::take(&mut change.id).into_boxed_str());
        let seq = self.next_seq;
        let mut entry = self.new_entry(key, change, seq, seq, queued_at);
        entry.touched_at = touched_at;
        let key = &entry.key;

        // A record whose last write failed collects its new changes in `blocked`, one whose write is in flight
        // in `pending` (held there until the flight settles); either way they must be able to follow that
        // write.
        let failed = self.failed_keys.get(key).map(|f| f.entry.clone());
        let blocked = failed.is_some();
        let ahead = failed.or_else(|| self.in_flight_entry(key).cloned());
        let ahead_is_none = ahead.is_none();
        if let Some(ahead) = ahead {
            let held = if blocked { self.blocked_entry(key) } else { self.pending.get(key) };
            Self::check_behind(ahead, held.cloned(), &entry).map_err(|_| self.record_exists(key))?;
        }
        let merged =
            if blocked { self.fold_blocked(entry, ahead_is_none) } else { self.fold_pending(entry, ahead_is_none) }?;
        self.count_enqueued(merged);
        self.next_seq += 1;
        Ok(seq)
    }

    /// Folds a new write into the pending one of its record, or queues it: whether it was folded. Fails,
    /// changing nothing, when the two cannot be merged.
    fn fold_pending(&mut self, entry: Entry<P>, alone: bool) -> Result<bool, EngineError> {
        match self.pending.absorb(entry, alone) {
            Absorbed::Merged | Absorbed::Cancelled => Ok(true),
            Absorbed::Vacant(entry) => {
                self.pending.insert(entry);
                Ok(false)
            }
            Absorbed::Refused(slot) => {
                let key = self.pending.at_slot(slot).map(|held| held.key.clone()).unwrap_or_default();
                Err(self.record_exists(&key))
            }
        }
    }

    /// [`Engine::fold_pending`] for a record whose last write failed: its changes wait among the blocked ones.
    fn fold_blocked(&mut self, entry: Entry<P>, alone: bool) -> Result<bool, EngineError> {
        // `enqueue` found the failed write; without it (never) the change is queued as any other.
        let Some(slot) = self.failed_keys.get_mut(&entry.key).map(|f| &mut f.blocked) else {
            return self.fold_pending(entry, alone);
        };
        let Some(held) = slot else {
            *slot = Some(entry);
            return Ok(false);
        };
        let refused = match held.absorb(entry, alone) {
            Ok(true) => return Ok(true),
            Ok(false) => {
                *slot = None;
                return Ok(true);
            }
            // Refused before anything changed: the held write stays as it was.
            Err(InsertOfExisting) => held.key.clone(),
        };
        Err(self.record_exists(&refused))
    }

    /// Queues the row an app's merge function made of a conflict. It goes in ahead of the changes queued for
    /// the record while the conflicted write was on its way, so that those later edits still apply on top of
    /// it rather than being overwritten by it.
    pub fn enqueue_resolved(&mut self, change: Change<P>, now: u64) -> Result<u64, EngineError> {
        self.fold_beneath(change, now, now, |_| true).or_else(|change| self.enqueue(change, now))
    }

    /// Queues a change another page made (a follower's from the inbox, a page's before this one), as of when it
    /// was made: its first edit at `queued_at`, its last at `touched_at` (wall-clock times, the same clock in
    /// every tab). Where the pending write of its record here was edited later, the change goes beneath it, as
    /// if it had been queued first: the newer columns win. Elsewhere it follows what is queued, as a new change.
    pub fn enqueue_made(&mut self, change: Change<P>, queued_at: u64, touched_at: u64) -> Result<u64, EngineError> {
        self.fold_beneath(change, queued_at, touched_at, |held| held.touched_at > touched_at)
            .or_else(|change| self.enqueue_spanning(change, queued_at, touched_at))
    }

    /// Folds `change` beneath the pending write of its record, when `over` accepts that write and nothing of
    /// the record is in flight or failed. The composition is new content: it goes under a seq of its own (the
    /// held write's may be known to the server, from an attempt whose answer was lost). The change comes back
    /// where it cannot go there.
    fn fold_beneath(
        &mut self,
        change: Change<P>,
        queued_at: u64,
        touched_at: u64,
        over: impl FnOnce(&Entry<P>) -> bool,
    ) -> Result<u64, Change<P>> {
        let key = self.key_for(&change.table, &change.id);
        let quiet = !self.failed_keys.contains_key(&key) && self.in_flight_entry(&key).is_none();
        let Some(held) = self.pending.get(&key).filter(|held| quiet && over(held)).cloned() else {
            return Err(change);
        };
        let seq = self.next_seq;
        // The record keeps its place in the send order.
        let mut beneath = self.new_entry(key.clone(), change.clone(), held.order, seq, queued_at);
        beneath.touched_at = touched_at;
        let Ok(Some(folded)) = beneath.then(held, false) else { return Err(change) };
        self.now = self.now.max(queued_at);
        self.pending.remove(&key);
        self.pending.insert(Entry { seq, client: None, ..folded });
        self.count_enqueued(true);
        self.next_seq += 1;
        Ok(seq)
    }

    /// The pending write a change starts as, queued at `now`: due by its priority's interval, at `order` in the
    /// send order, sent with `seq`.
    fn new_entry(&self, key: Key, change: Change<P>, order: u64, seq: u64, now: u64) -> Entry<P> {
        Entry {
            key,
            op: change.op,
            data: change.data,
            last_changed: change.last_changed,
            priority: change.priority,
            order,
            seq,
            queued_at: now,
            touched_at: now,
            deadline: now.saturating_add(self.config.interval(change.priority)),
            attempts: 0,
            changes: 1,
            force: change.force,
            solo: false,
            client: None,
        }
    }

    /// The error for an insert the record's queued writes cannot take, naming the record.
    fn record_exists(&self, key: &Key) -> EngineError {
        EngineError::RecordExists { table: String::from(&*self.tables[key.0 as usize]), id: String::from(&*key.1) }
    }

    fn count_enqueued(&mut self, merged: bool) {
        self.counters.total_changes += 1;
        if merged {
            self.counters.merged_changes += 1;
        }
        self.changed = true;
    }

    /// When another write of the record is `ahead` (in flight, or failed and waiting for the caller), a new
    /// change must also be able to follow it and the write `held` behind it, as if none had been sent: that
    /// keeps a later retry of `ahead` mergeable with `held`.
    fn check_behind(ahead: Entry<P>, held: Option<Entry<P>>, new: &Entry<P>) -> Result<(), InsertOfExisting> {
        let effective = match held {
            None => Some(ahead),
            Some(held) => ahead.then(held, false)?,
        };
        if let Some(effective) = effective {
            effective.then(new.clone(), false)?;
        }
        Ok(())
    }

    fn in_flight_entry(&self, key: &Key) -> Option<&Entry<P>> {
        self.in_flight.as_ref()?.entries.iter().find(|e| &e.key == key)
    }

    /// `Some(reason)`: no access token to be had, nothing is sent until `None` (a token came).
    pub fn set_needs_auth(&mut self, reason: Option<&str>) {
        let needs = reason.is_some();
        if let Some(reason) = reason {
            self.last_error = Some(reason.to_owned());
            self.last_error_is_auth = true;
        }
        if self.needs_auth != needs {
            self.needs_auth = needs;
            if !needs {
                self.not_before = 0;
            }
        }
        self.changed = true;
    }

    pub fn needs_auth(&self) -> bool {
        self.needs_auth
    }

    pub fn set_online(&mut self, online: bool) {
        if self.online != online {
            self.online = online;
            if online {
                // What failed while the network was down says nothing about the server: try again at once.
                self.not_before = self.server_not_before;
                self.consecutive_failures = 0;
            }
            self.changed = true;
        }
    }

    pub fn is_online(&self) -> bool {
        self.online
    }

    pub fn set_paused(&mut self, paused: bool) {
        if self.paused != paused {
            self.paused = paused;
            self.changed = true;
        }
    }
}

/// What the snapshot module reads and writes.
impl<P: Payload> Engine<P> {
    pub(crate) fn table_name(&self, entry: &Entry<P>) -> &str {
        &self.tables[entry.key.0 as usize]
    }

    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub(crate) fn set_next_seq(&mut self, next_seq: u64) {
        self.next_seq = next_seq;
    }

    /// No write at all (pending, in flight, failed or blocked): what `export_refs().is_empty()` says, without
    /// sorting the whole queue to say it.
    pub fn holds_nothing(&self) -> bool {
        self.in_flight.is_none() && self.pending.is_empty() && self.failed_keys.is_empty()
    }

    /// How many writes there are, pending, in flight, failed or blocked (what [`Engine::export_refs`] lists).
    pub fn write_count(&self) -> usize {
        self.pending.len()
            + self.in_flight.as_ref().map_or(0, |f| f.entries.len())
            + self.failed_keys.len()
            + self.blocked_entries().count()
    }

    pub(crate) fn in_flight_entries(&self) -> impl Iterator<Item = &Entry<P>> + '_ {
        self.in_flight.iter().flat_map(|f| f.entries.iter())
    }

    pub(crate) fn queued_entries(&self) -> impl Iterator<Item = &Entry<P>> + '_ {
        self.pending.iter()
    }

    pub(crate) fn blocked_entries(&self) -> impl Iterator<Item = &Entry<P>> + '_ {
        self.failed_keys.values().filter_map(|f| f.blocked.as_ref())
    }

    pub(crate) fn table_id(&self, table: &str) -> Option<TableId> {
        self.table_ids.get(table).copied()
    }

    /// The ancestor tables of a table, none for one the config names no parent of (or none interned).
    pub(crate) fn ancestors_of(&self, table: TableId) -> &[TableId] {
        self.ancestors_entry(table).map_or(&[], Vec::as_slice)
    }

    /// The ancestors of a table the config names parents for (perhaps none), `None` for any other.
    pub(crate) fn ancestors_entry(&self, table: TableId) -> Option<&Vec<TableId>> {
        self.ancestors.get(table as usize).and_then(Option::as_ref)
    }

    // record-sync durable queue (H3): per-record lookups for `Engine::export_record`.
    pub(crate) fn existing_key(&self, table: &str, id: &str) -> Option<Key> {
        self.table_id(table).map(|t| (t, Box::from(id)))
    }

    pub(crate) fn queued_entry(&self, key: &Key) -> Option<&Entry<P>> {
        self.pending.get(key)
    }

    pub(crate) fn blocked_entry(&self, key: &Key) -> Option<&Entry<P>> {
        self.failed_keys.get(key)?.blocked.as_ref()
    }

    pub(crate) fn failed_entry(&self, key: &Key) -> Option<(&Entry<P>, &Failure, u64)> {
        let failed = self.failed_keys.get(key)?;
        Some((&failed.entry, &failed.failure, failed.failed_at))
    }

    pub(crate) fn failed_entries(&self) -> impl Iterator<Item = (&Entry<P>, &Failure, u64)> + '_ {
        self.failed_in_order().into_iter().map(|f| (&f.entry, &f.failure, f.failed_at))
    }

    /// Places a saved write; entries come in send order, so a write that was in flight arrives before the
    /// one held behind it and they merge as they would have after a transient failure.
    pub(crate) fn restore_entry(&mut self, entry: Entry<P>, state: SavedState) -> Result<(), SavedConflict> {
        let key = entry.key.clone();
        let failed = self.failed_keys.contains_key(&key);
        if entry.seq < entry.order {
            self.kept_seq = self.kept_seq.min(entry.seq);
            self.kept_through = self.kept_through.max(entry.order);
        }
        match state {
            SavedState::Pending if failed => return Err(SavedConflict),
            // Folded in place: a write the merge refuses leaves the one before it where it was.
            SavedState::Pending => match self.pending.absorb(entry, false) {
                Absorbed::Vacant(entry) => self.pending.insert(entry),
                Absorbed::Merged | Absorbed::Cancelled => {}
                Absorbed::Refused(_) => return Err(SavedConflict),
            },
            SavedState::Blocked => match self.failed_keys.get_mut(&key) {
                Some(failed) if failed.blocked.is_none() => failed.blocked = Some(entry),
                _ => return Err(SavedConflict),
            },
            SavedState::Failed { .. } if failed || self.pending.get(&key).is_some() => return Err(SavedConflict),
            SavedState::Failed { failure, failed_at } => {
                self.failed_keys.insert(key, FailedEntry { entry, failure, failed_at, blocked: None });
            }
        }
        self.changed = true;
        Ok(())
    }
}
