//! The sync engine: a state machine the browser shell drives. It never reads a clock and never does I/O:
//! the shell passes `now` (ms) to every call, sends what [`Engine::poll_batch`] hands out, reports back with
//! [`Engine::on_batch_result`], and arms one timer for [`Engine::poll_timeout`].
//!
//! One batch is in flight at a time. That keeps every record's writes, and parents before children, in the
//! order they were queued without tracking dependencies across concurrent requests; batching makes up the
//! throughput.

use std::rc::Rc;

use serde::Serialize;

use super::change::{Change, Op, Priority};
use super::config::{Config, ConflictStrategy, Fill, FILL_SCAN_FACTOR};
use super::error::EngineError;
use super::hash::FastMap;
use super::merge::InsertOfExisting;
use super::payload::Payload;
use super::queue::{Entry, Key, Queue, TableId};
use super::snapshot::SavedState;
use super::sort::{sort_by_key, sort_names};
use super::stats::{LatencyWindow, PendingByPriority, Stats};

/// A write on its way to the server.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutgoingChange<P> {
    /// Unique per client; the server recognises a replay by it.
    pub seq: u64,
    pub table: String,
    pub id: String,
    pub op: Op,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<P>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_changed: Option<String>,
    pub priority: Priority,
    /// Skip the last-writer-wins condition (the client won a conflict).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
}

/// Writes to send in one request, in the order they must be applied.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Batch<P> {
    pub id: u64,
    pub changes: Vec<OutgoingChange<P>>,
    /// Every seq below this will never be sent again, so the server may forget it.
    pub low_water: u64,
}

/// What the server did with one write.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum Outcome<P> {
    Applied,
    /// The server's row is newer; nothing was written.
    Conflict {
        row: Option<P>,
    },
    /// The write touched no row: the row is absent or hidden from the user (row-level security). Nothing was
    /// written.
    Missing,
    /// The server refused the write and will again (validation, constraint, permission).
    Permanent {
        code: Option<String>,
        message: String,
    },
    /// It may work later (network, timeout, 408, 429, 5xx); `retry_after_ms` from `Retry-After`.
    Transient {
        message: String,
        retry_after_ms: Option<u64>,
    },
    /// The server refused a request carrying this write alone as too large (413): it goes to the failed list
    /// and is only ever sent alone again.
    TooLarge {
        message: String,
    },
}

/// The failure code of a write refused as too large.
pub const TOO_LARGE: &str = "413";
/// The failure code of a write the client won a conflict for, but whose row is gone or hidden.
pub const MISSING: &str = "missing";

/// A write the server did not take, as the app hears of it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Conflict<P> {
    pub seq: u64,
    pub table: String,
    pub id: String,
    pub op: Op,
    pub data: Option<P>,
    pub last_changed: Option<String>,
    /// The server's row (`None` when it is missing).
    pub server_row: Option<P>,
    pub reason: ConflictReason,
    pub resolution: Resolution,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ConflictReason {
    /// The server's row is newer.
    Newer,
    /// The row is absent or hidden from the user.
    Missing,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Resolution {
    /// The server's row stands (last writer wins); the write is dropped.
    ServerWins,
    /// The write was queued again, forced.
    Resent,
    /// The client was to win but there is no row to write over: the write is on the failed list.
    Failed,
    /// Left to the app's merge function (run by the shell); the write is dropped.
    Merge,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ChangeOutcome<P> {
    pub seq: u64,
    pub outcome: Outcome<P>,
}

/// A pending write as the caller sees it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingView<P> {
    #[serde(flatten)]
    pub write: OutgoingChange<P>,
    pub queued_at: u64,
    pub due_at: u64,
    pub attempts: u32,
    pub in_flight: bool,
    /// Waiting behind a failed write of the same record until that one is retried or discarded.
    pub blocked: bool,
}

/// A write on the failed list.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedView<P> {
    #[serde(flatten)]
    pub write: OutgoingChange<P>,
    /// Seq of the first change this write stands for: it covers its record's changes from here to `seq`.
    pub first_seq: u64,
    pub attempts: u32,
    pub error: Failure,
    pub failed_at: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    pub message: String,
    /// False when it failed by running out of retries: it may have been written, and retrying is safe.
    pub permanent: bool,
}

pub(crate) struct FailedEntry<P> {
    pub entry: Entry<P>,
    pub failure: Failure,
    pub failed_at: u64,
}

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
    config: Config,
    tables: Vec<Rc<str>>,
    table_ids: FastMap<Rc<str>, TableId>,
    /// Ancestor tables of each table that has any, by id.
    ancestors: FastMap<TableId, Vec<TableId>>,
    pending: Queue<P>,
    in_flight: Option<InFlight<P>>,
    /// The last flight's vector, empty, for the next: one allocation less per batch.
    spare: Vec<Entry<P>>,
    /// Writes waiting behind a failed write of the same record.
    blocked: FastMap<Key, Entry<P>>,
    /// The failed writes, at most one per record. Few, and sorted by order when listed: an ordered index
    /// would be another BTree type in the wasm.
    failed_keys: FastMap<Key, FailedEntry<P>>,
    next_seq: u64,
    next_batch: u64,
    /// No batch before this time (backoff after transient failures).
    not_before: u64,
    consecutive_failures: u32,
    online: bool,
    paused: bool,
    rng: fastrand::Rng,
    counters: Counters,
    latency: LatencyWindow,
    last_error: Option<String>,
    /// Sending waits for an access token.
    needs_auth: bool,
    /// Conflicts not yet taken by the shell.
    conflicts: Vec<Conflict<P>>,
    version: u64,
}

impl<P: Payload> Engine<P> {
    pub fn new(config: Config) -> Result<Engine<P>, EngineError> {
        config.validate()?;
        let mut engine = Engine {
            rng: fastrand::Rng::with_seed(config.seed),
            config,
            tables: Vec::new(),
            table_ids: FastMap::default(),
            ancestors: FastMap::default(),
            pending: Queue::default(),
            in_flight: None,
            spare: Vec::new(),
            blocked: FastMap::default(),
            failed_keys: FastMap::default(),
            next_seq: 1,
            next_batch: 1,
            not_before: 0,
            consecutive_failures: 0,
            online: true,
            paused: false,
            counters: Counters::default(),
            latency: LatencyWindow::default(),
            last_error: None,
            needs_auth: false,
            conflicts: Vec::new(),
            version: 0,
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
            engine.ancestors.insert(id, ancestors);
        }
        Ok(engine)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Changes whenever anything a caller can observe changes, so the shell can cache what it shows.
    pub fn version(&self) -> u64 {
        self.version
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
    pub fn enqueue(&mut self, mut change: Change<P>, now: u64) -> Result<u64, EngineError> {
        // The change's id becomes the entry's key without a copy.
        let key = (self.intern(&change.table), std::mem::take(&mut change.id).into_boxed_str());
        let seq = self.next_seq;
        let entry = self.new_entry(key, change, seq, seq, now);
        let key = &entry.key;

        // A record whose last write failed collects its new changes in `blocked`, one whose write is in flight
        // in `pending` (held there until the flight settles); either way they must be able to follow that
        // write.
        let failed = self.failed_keys.get(key).map(|f| f.entry.clone());
        let blocked = failed.is_some();
        let ahead = failed.or_else(|| self.in_flight_entry(key).cloned());
        let ahead_is_none = ahead.is_none();
        if let Some(ahead) = ahead {
            let held = if blocked { self.blocked.get(key) } else { self.pending.get(key) };
            Self::check_behind(ahead, held.cloned(), &entry).map_err(|_| self.record_exists(key))?;
        }
        let held = if blocked { self.blocked.remove(key) } else { self.pending.remove(key) };
        let merged = held.is_some();
        let folded = match held {
            None => Some(entry),
            Some(mut held) => match held.absorb(entry, ahead_is_none) {
                Ok(kept) => kept.then_some(held),
                Err(InsertOfExisting) => {
                    // Refused before anything changed: the held write goes back as it was.
                    let error = self.record_exists(&held.key);
                    self.hold(blocked, held);
                    return Err(error);
                }
            },
        };
        self.count_enqueued(merged);
        if let Some(folded) = folded {
            self.hold(blocked, folded);
        }
        self.next_seq += 1;
        Ok(seq)
    }

    /// Puts a write in the queue, or among the blocked ones.
    fn hold(&mut self, blocked: bool, entry: Entry<P>) {
        if blocked {
            self.blocked.insert(entry.key.clone(), entry);
        } else {
            self.pending.insert(entry);
        }
    }

    /// Queues the row an app's merge function made of a conflict. It goes in ahead of the changes queued for
    /// the record while the conflicted write was on its way, so that those later edits still apply on top of
    /// it rather than being overwritten by it.
    pub fn enqueue_resolved(&mut self, change: Change<P>, now: u64) -> Result<u64, EngineError> {
        let key = self.key_for(&change.table, &change.id);
        let quiet = !self.failed_keys.contains_key(&key) && self.in_flight_entry(&key).is_none();
        let Some(held) = self.pending.get(&key).filter(|_| quiet).cloned() else {
            return self.enqueue(change, now);
        };
        let seq = self.next_seq;
        // The held changes were queued first: the record keeps its place in the send order.
        let resolved = self.new_entry(key.clone(), change.clone(), held.order, seq, now);
        let Ok(Some(folded)) = resolved.then(held, false) else { return self.enqueue(change, now) };
        self.pending.remove(&key);
        // The held changes never left (their record was in flight), so their seq is unused, but the folded
        // write is new content: it gets a seq of its own.
        self.pending.insert(Entry { seq, ..folded });
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
        self.version += 1;
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

    /// When the shell should call [`Engine::poll_batch`] next (absolute ms), or `None` when nothing will be
    /// due until something happens (new change, result, going online, resuming).
    pub fn poll_timeout(&self) -> Option<u64> {
        if !self.online || self.paused || self.needs_auth || self.in_flight.is_some() {
            return None;
        }
        self.pending.next_deadline().map(|due| due.max(self.not_before))
    }

    /// The next batch to send, if one is due at `now`.
    pub fn poll_batch(&mut self, now: u64) -> Option<Batch<P>> {
        if !self.online || self.paused || self.needs_auth || self.in_flight.is_some() || now < self.not_before {
            return None;
        }
        let chosen = self.choose(now);
        if chosen.is_empty() {
            return None;
        }
        // Sized up front: collected from a filter the vector would grow (and move its entries) step by step.
        let mut entries = std::mem::take(&mut self.spare);
        entries.reserve(chosen.len());
        entries.extend(chosen.into_iter().filter_map(|slot| self.pending.remove_slot(slot)));
        let id = self.next_batch;
        self.next_batch += 1;
        let changes = entries.iter().map(|e| self.outgoing(e)).collect();
        self.in_flight = Some(InFlight { id, entries });
        let low_water = self.low_water();
        self.counters.requests += 1;
        self.version += 1;
        Some(Batch { id, changes, low_water })
    }

    /// Slots of the entries of the next batch, in send order: due entries by deadline, each with the earlier
    /// entries of its ancestor tables, up to `batch_size`.
    fn choose(&self, now: u64) -> Vec<u32> {
        let limit = self.config.batch_size;
        // (order, slot)
        let mut chosen: Vec<(u64, u32)> = Vec::with_capacity(limit);
        let mut scan = limit.saturating_mul(FILL_SCAN_FACTOR);
        for (deadline, order) in self.pending.by_deadline() {
            let due = deadline <= now;
            if !due {
                // Not-yet-due writes only ride along with a batch that goes out anyway.
                if chosen.is_empty() || scan == 0 || self.config.fill == Fill::DueOnly {
                    break;
                }
                scan -= 1;
            }
            let Some((slot, entry)) = self.pending.slot_at(order).and_then(|s| Some((s, self.pending.at_slot(s)?)))
            else {
                continue;
            };
            if !due && !self.carries(entry, now) {
                continue;
            }
            if chosen.iter().any(|&(o, _)| o == order) {
                continue;
            }
            if entry.solo {
                // Refused as too large in company before: it travels alone, so no batch it joins is refused
                // (after its parents' earlier writes, which go in batches of their own).
                if chosen.is_empty() && self.earlier_parents(entry, 1).is_empty() {
                    return vec![slot];
                }
                continue;
            }
            // Empty, without allocating, for a table without parents.
            let mut group = self.earlier_parents(entry, limit);
            group.retain(|o| !chosen.contains(o));
            if chosen.len() + group.len() < limit {
                chosen.extend(group);
                chosen.push((order, slot));
            } else if chosen.is_empty() {
                // The parents alone fill a batch: send the earliest of them; the child follows in the next.
                group.push((order, slot));
                group.truncate(limit);
                chosen.extend(group);
            } else if due {
                break;
            } else {
                continue;
            }
            if chosen.len() >= limit {
                break;
            }
        }
        self.send_order(chosen)
    }

    /// Whether the not-yet-due write `entry` rides along (see [`Fill`]).
    fn carries(&self, entry: &Entry<P>, now: u64) -> bool {
        match self.config.fill {
            Fill::DueOnly => false,
            Fill::All => true,
            Fill::Idle { idle_ms } => now.saturating_sub(entry.touched_at) >= idle_ms,
        }
    }

    /// Queue order, except that a write follows the writes of its ancestor tables that it was queued after
    /// (a child updated to point at a parent created after the child began goes after that parent), and a
    /// parent goes before its child when the two tie. Takes and gives slots.
    fn send_order(&self, mut chosen: Vec<(u64, u32)>) -> Vec<u32> {
        let has_ancestors = |&(_, slot): &(u64, u32)| {
            self.pending.at_slot(slot).is_some_and(|entry| self.ancestors.contains_key(&entry.key.0))
        };
        if self.ancestors.is_empty() || !chosen.iter().any(has_ancestors) {
            // No parent to go first: queue order alone.
            sort_by_key(&mut chosen, |&(order, _)| [order, 0, 0]);
            return chosen.into_iter().map(|(_, slot)| slot).collect();
        }
        let no_ancestors = Vec::new();
        let mut items: Vec<(u32, &Entry<P>, &Vec<TableId>)> = chosen
            .iter()
            .filter_map(|&(_, slot)| Some((slot, self.pending.at_slot(slot)?)))
            .map(|(slot, entry)| (slot, entry, self.ancestors.get(&entry.key.0).unwrap_or(&no_ancestors)))
            .collect();
        // A table has strictly more ancestors than any of its ancestors: a topological order.
        sort_by_key(&mut items, |(_, entry, ancestors)| [ancestors.len() as u64, entry.order, 0]);
        let mut rank: FastMap<u64, u64> = FastMap::default();
        for (_, entry, ancestors) in &items {
            let after = items
                .iter()
                .filter(|(_, p, _)| ancestors.contains(&p.key.0) && p.order < entry.seq)
                .filter_map(|(_, p, _)| rank.get(&p.order).copied())
                .max();
            rank.insert(entry.order, after.unwrap_or(0).max(entry.order));
        }
        sort_by_key(&mut items, |(_, entry, ancestors)| {
            [rank.get(&entry.order).copied().unwrap_or(entry.order), ancestors.len() as u64, entry.order]
        });
        items.into_iter().map(|(slot, _, _)| slot).collect()
    }

    /// (order, slot) of pending entries of the ancestor tables of `entry` that were queued before its latest
    /// change (which may point at a parent created after the entry began), ascending, at most `limit`.
    fn earlier_parents(&self, entry: &Entry<P>, limit: usize) -> Vec<(u64, u32)> {
        let Some(ancestors) = self.ancestors.get(&entry.key.0) else { return Vec::new() };
        let mut orders: Vec<(u64, u32)> =
            ancestors.iter().flat_map(|&table| self.pending.earlier_in_table(table, entry.seq, limit)).collect();
        sort_by_key(&mut orders, |&(order, _)| [order, 0, 0]);
        orders.truncate(limit);
        orders
    }

    fn outgoing(&self, entry: &Entry<P>) -> OutgoingChange<P> {
        OutgoingChange {
            seq: entry.seq,
            table: String::from(&*self.tables[entry.key.0 as usize]),
            id: String::from(&*entry.key.1),
            op: entry.op,
            data: entry.data.clone(),
            last_changed: entry.last_changed.clone(),
            priority: entry.priority,
            force: entry.force,
        }
    }

    /// The smallest seq any live write may still be sent with. A write is sent with its latest seq, which is
    /// at least its order, so the smallest order is a safe bound.
    fn low_water(&self) -> u64 {
        let in_flight = self.in_flight.iter().flat_map(|f| f.entries.iter().map(|e| e.order));
        let blocked = self.blocked.values().map(|e| e.order);
        let failed = self.failed_keys.values().map(|f| f.entry.order);
        self.pending
            .min_order()
            .into_iter()
            .chain(in_flight)
            .chain(blocked)
            .chain(failed)
            .min()
            .unwrap_or(self.next_seq)
    }

    /// The server's answer for every write of the batch (a write without an answer counts as a transient
    /// failure). Returns what became of each.
    pub fn on_batch_result(
        &mut self,
        batch_id: u64,
        outcomes: Vec<ChangeOutcome<P>>,
        now: u64,
    ) -> Result<(), EngineError> {
        self.settle_batch(batch_id, outcomes, None, now)
    }

    /// The batch could not be sent (or was refused with 401) for want of an access token: writes with an
    /// outcome settle as usual, the others go back to the queue as they were, without costing an attempt, and
    /// nothing more is sent until [`Engine::set_needs_auth`]`(None)`.
    pub fn on_batch_unauthorized(
        &mut self,
        batch_id: u64,
        outcomes: Vec<ChangeOutcome<P>>,
        reason: &str,
        now: u64,
    ) -> Result<(), EngineError> {
        self.settle_batch(batch_id, outcomes, Some(reason), now)
    }

    /// Nothing of the batch was sent for want of an access token: as [`Engine::on_batch_unauthorized`], and
    /// the batch does not count as a request.
    pub fn on_batch_unsent(&mut self, batch_id: u64, reason: &str, now: u64) -> Result<(), EngineError> {
        self.settle_batch(batch_id, Vec::new(), Some(reason), now)?;
        self.counters.requests = self.counters.requests.saturating_sub(1);
        Ok(())
    }

    fn settle_batch(
        &mut self,
        batch_id: u64,
        outcomes: Vec<ChangeOutcome<P>>,
        unauthorized: Option<&str>,
        now: u64,
    ) -> Result<(), EngineError> {
        let Some(mut flight) = self.in_flight.take_if(|f| f.id == batch_id) else {
            return Err(EngineError::UnknownBatch(batch_id));
        };
        let mut by_seq: FastMap<u64, Outcome<P>> = outcomes.into_iter().map(|o| (o.seq, o.outcome)).collect();
        let mut transient_failures = 0;
        let mut retry_after: Option<u64> = None;
        for entry in flight.entries.drain(..) {
            let outcome = match (by_seq.remove(&entry.seq), unauthorized) {
                (Some(outcome), _) => outcome,
                (None, Some(_)) => {
                    self.return_to_pending(entry, now);
                    continue;
                }
                (None, None) => Outcome::Transient {
                    message: "the server gave no result for this change".into(),
                    retry_after_ms: None,
                },
            };
            match outcome {
                Outcome::Applied => {
                    self.counters.successful_syncs += 1;
                    self.latency.record(now.saturating_sub(entry.queued_at));
                }
                Outcome::Conflict { row } => self.conflict(entry, row, ConflictReason::Newer, now),
                Outcome::Missing => self.conflict(entry, None, ConflictReason::Missing, now),
                Outcome::Permanent { code, message } => {
                    self.fail(entry, Failure { code, message, permanent: true }, now);
                }
                Outcome::TooLarge { message } => {
                    let entry = Entry { solo: true, ..entry };
                    self.fail(entry, Failure { code: Some(TOO_LARGE.into()), message, permanent: true }, now);
                }
                Outcome::Transient { message, retry_after_ms } => {
                    transient_failures += 1;
                    retry_after = retry_after.max(retry_after_ms);
                    self.last_error = Some(message.clone());
                    self.retry_later(entry, message, now);
                }
            }
        }
        self.spare = flight.entries;
        if let Some(reason) = unauthorized {
            self.set_needs_auth(Some(reason));
        }
        if transient_failures == 0 {
            self.consecutive_failures = 0;
            self.not_before = 0;
        } else if self.online {
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
            let delay = self.config.backoff.delay(self.consecutive_failures, retry_after, &mut self.rng);
            self.not_before = now.saturating_add(delay);
        }
        self.version += 1;
        Ok(())
    }

    /// A write the server did not take: the table's strategy decides what becomes of it, and the app hears
    /// of it through [`Engine::take_conflicts`].
    fn conflict(&mut self, entry: Entry<P>, server_row: Option<P>, reason: ConflictReason, now: u64) {
        self.counters.conflicts += 1;
        let table = String::from(&*self.tables[entry.key.0 as usize]);
        let resolution = match self.config.strategy(&table) {
            // Already resolved once (a client-wins resend or a merge function's row) and still refused, e.g. a
            // row hidden by row-level security: resolving it again would loop, so the caller decides.
            _ if entry.force => Resolution::Failed,
            ConflictStrategy::LastWriterWins => Resolution::ServerWins,
            ConflictStrategy::Merge => Resolution::Merge,
            // A patch cannot recreate a row that is gone.
            ConflictStrategy::ClientWins if reason == ConflictReason::Missing => Resolution::Failed,
            ConflictStrategy::ClientWins => Resolution::Resent,
        };
        self.conflicts.push(Conflict {
            seq: entry.seq,
            table,
            id: String::from(&*entry.key.1),
            op: entry.op,
            data: entry.data.clone(),
            last_changed: entry.last_changed.clone(),
            server_row,
            reason,
            resolution,
        });
        match resolution {
            Resolution::Resent => {
                // A new seq: a server that remembers the first answer for replays must not take the resend
                // for one.
                let seq = self.next_seq;
                self.next_seq += 1;
                self.return_to_pending(Entry { force: true, deadline: now, seq, ..entry }, now);
            }
            Resolution::Failed => {
                let (code, message) = match reason {
                    ConflictReason::Missing => (MISSING, "the row is gone or not visible to this user"),
                    ConflictReason::Newer => ("conflict", "the server kept a newer row though the write was forced"),
                };
                self.fail(entry, Failure { code: Some(code.into()), message: message.into(), permanent: true }, now);
            }
            Resolution::ServerWins | Resolution::Merge => {}
        }
    }

    /// Conflicts since the last call, oldest first, for the shell to report (and, under
    /// [`ConflictStrategy::Merge`], to resolve with the app's function).
    pub fn take_conflicts(&mut self) -> Vec<Conflict<P>> {
        std::mem::take(&mut self.conflicts)
    }

    /// `Some(reason)`: no access token to be had, nothing is sent until `None` (a token came).
    pub fn set_needs_auth(&mut self, reason: Option<&str>) {
        let needs = reason.is_some();
        if let Some(reason) = reason {
            self.last_error = Some(reason.to_owned());
        }
        if self.needs_auth != needs {
            self.needs_auth = needs;
            if !needs {
                self.not_before = 0;
            }
        }
        self.version += 1;
    }

    pub fn needs_auth(&self) -> bool {
        self.needs_auth
    }

    /// The whole batch failed before any write could be answered (network error, timeout, 5xx, 429).
    pub fn on_batch_failed(
        &mut self,
        batch_id: u64,
        message: &str,
        retry_after_ms: Option<u64>,
        now: u64,
    ) -> Result<(), EngineError> {
        let outcomes = match &self.in_flight {
            Some(flight) if flight.id == batch_id => flight
                .entries
                .iter()
                .map(|e| ChangeOutcome {
                    seq: e.seq,
                    outcome: Outcome::Transient { message: message.to_owned(), retry_after_ms },
                })
                .collect(),
            _ => return Err(EngineError::UnknownBatch(batch_id)),
        };
        self.on_batch_result(batch_id, outcomes, now)
    }

    /// A transient failure: another attempt, unless the write has used them all. Offline failures are free.
    fn retry_later(&mut self, entry: Entry<P>, message: String, now: u64) {
        let mut entry = entry.after_uncertain_attempt();
        if self.online {
            entry.attempts = entry.attempts.saturating_add(1);
            if entry.attempts > self.config.max_retries {
                let message = format!("gave up after {} attempts: {message}", entry.attempts);
                self.fail(entry, Failure { code: None, message, permanent: false }, now);
                return;
            }
            self.counters.retries += 1;
        }
        self.return_to_pending(entry, now);
    }

    /// Puts a write back in the queue ahead of whatever was held behind it.
    fn return_to_pending(&mut self, entry: Entry<P>, now: u64) {
        match self.pending.remove(&entry.key) {
            None => self.pending.insert(entry),
            Some(held) => match entry.clone().then(held.clone(), false) {
                Ok(Some(folded)) => self.pending.insert(folded),
                Ok(None) => {}
                Err(InsertOfExisting) => {
                    // Unreachable by the check in `enqueue`; kept total so no input can lose a write.
                    self.pending.insert(held);
                    let message = "could not be merged with a newer change of the same record".to_owned();
                    self.fail(entry, Failure { code: None, message, permanent: true }, now);
                }
            },
        }
    }

    /// Moves a write to the failed list; later writes of its record wait until it is retried or discarded.
    fn fail(&mut self, entry: Entry<P>, failure: Failure, now: u64) {
        self.counters.failed_syncs += 1;
        self.last_error = Some(failure.message.clone());
        if let Some(held) = self.pending.remove(&entry.key) {
            self.blocked.insert(held.key.clone(), held);
        }
        self.failed_keys.insert(entry.key.clone(), FailedEntry { entry, failure, failed_at: now });
    }

    pub fn set_online(&mut self, online: bool) {
        if self.online != online {
            self.online = online;
            if online {
                // What failed while the network was down says nothing about the server: try again at once.
                self.not_before = 0;
                self.consecutive_failures = 0;
            }
            self.version += 1;
        }
    }

    pub fn is_online(&self) -> bool {
        self.online
    }

    pub fn set_paused(&mut self, paused: bool) {
        if self.paused != paused {
            self.paused = paused;
            self.version += 1;
        }
    }

    /// Makes everything queued so far due at once, backoff or not, and returns the seq to wait for with
    /// [`Engine::is_settled_through`].
    pub fn flush_all(&mut self, now: u64) -> u64 {
        self.pending.make_all_due(now);
        self.not_before = 0;
        self.version += 1;
        self.next_seq - 1
    }

    /// Whether every write holding a change with seq up to `seq` has been confirmed, answered with a conflict,
    /// moved to the failed list, or is blocked behind a failed one: nothing more will happen to them without
    /// the caller.
    pub fn is_settled_through(&self, seq: u64) -> bool {
        let in_flight = self.in_flight.iter().flat_map(|f| f.entries.iter().map(|e| e.order)).min();
        [self.pending.min_order(), in_flight].into_iter().flatten().all(|order| order > seq)
    }

    /// Puts failed writes back in the queue, due now, with fresh attempts: all of them, or the one with
    /// `only` as its seq. A write blocked behind one merges into it. Returns how many were retried.
    pub fn retry_failed(&mut self, only: Option<u64>, now: u64) -> usize {
        let keys = self.failed_keys_in_order(only);
        let mut retried = 0;
        for key in keys {
            let Some(failed) = self.failed_keys.get(&key) else { continue };
            let entry = Entry { attempts: 0, deadline: now, ..failed.entry.clone() };
            let folded = match self.blocked.get(&key) {
                None => Some(entry),
                // Refused only when the blocked write is an insert after a failed insert or update; both stay
                // as they are until the caller discards one.
                Some(blocked) => match entry.then(blocked.clone(), false) {
                    Ok(folded) => folded,
                    Err(InsertOfExisting) => continue,
                },
            };
            self.failed_keys.remove(&key);
            self.blocked.remove(&key);
            if let Some(folded) = folded {
                self.pending.insert(folded);
            }
            retried += 1;
        }
        self.version += 1;
        retried
    }

    /// Drops failed writes (all, or the one with `only` as its seq); writes blocked behind them go ahead.
    /// Returns how many were dropped.
    pub fn discard_failed(&mut self, only: Option<u64>) -> usize {
        let keys = self.failed_keys_in_order(only);
        for key in &keys {
            if self.failed_keys.remove(key).is_some() {
                if let Some(blocked) = self.blocked.remove(key) {
                    self.pending.insert(blocked);
                }
            }
        }
        self.version += 1;
        keys.len()
    }

    /// The failed writes in send order.
    fn failed_in_order(&self) -> Vec<&FailedEntry<P>> {
        let mut failed: Vec<&FailedEntry<P>> = self.failed_keys.values().collect();
        sort_by_key(&mut failed, |f| [f.entry.order, 0, 0]);
        failed
    }

    fn failed_keys_in_order(&self, only: Option<u64>) -> Vec<Key> {
        let failed = self.failed_in_order().into_iter();
        failed.filter(|f| only.is_none_or(|seq| f.entry.seq == seq)).map(|f| f.entry.key.clone()).collect()
    }

    pub fn stats(&self) -> Stats {
        let mut by_priority = self.pending.per_priority();
        for entry in self.blocked.values() {
            by_priority[entry.priority.index()] += 1;
        }
        let c = &self.counters;
        let in_flight = self.in_flight.as_ref().map_or(0, |f| f.entries.len() as u64);
        Stats {
            total_changes: c.total_changes,
            merged_changes: c.merged_changes,
            successful_syncs: c.successful_syncs,
            failed_syncs: c.failed_syncs,
            conflicts: c.conflicts,
            retries: c.retries,
            requests: c.requests,
            pending: (self.pending.len() + self.blocked.len()) as u64,
            pending_by_priority: PendingByPriority::from_counts(by_priority),
            in_flight,
            is_online: self.online,
            is_processing: self.in_flight.is_some(),
            is_paused: self.paused,
            needs_auth: self.needs_auth,
            last_error: self.last_error.clone(),
            latency_ms: self.latency.summary(),
        }
    }

    /// Every write not yet confirmed or failed, in send order: in flight first, then queued, then blocked.
    pub fn pending_changes(&self) -> Vec<PendingView<P>> {
        let in_flight = self.in_flight.iter().flat_map(|f| f.entries.iter()).map(|e| self.view(e, true, false));
        let queued = self.pending.iter().map(|e| self.view(e, false, false));
        let mut blocked: Vec<&Entry<P>> = self.blocked.values().collect();
        sort_by_key(&mut blocked, |e| [e.order, 0, 0]);
        in_flight.chain(queued).chain(blocked.into_iter().map(|e| self.view(e, false, true))).collect()
    }

    fn view(&self, e: &Entry<P>, in_flight: bool, blocked: bool) -> PendingView<P> {
        PendingView {
            write: self.outgoing(e),
            queued_at: e.queued_at,
            due_at: e.deadline,
            attempts: e.attempts,
            in_flight,
            blocked,
        }
    }

    pub fn failed_changes(&self) -> Vec<FailedView<P>> {
        self.failed_in_order()
            .into_iter()
            .map(|f| FailedView {
                write: self.outgoing(&f.entry),
                first_seq: f.entry.order,
                attempts: f.entry.attempts,
                error: f.failure.clone(),
                failed_at: f.failed_at,
            })
            .collect()
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

    pub(crate) fn in_flight_entries(&self) -> impl Iterator<Item = &Entry<P>> + '_ {
        self.in_flight.iter().flat_map(|f| f.entries.iter())
    }

    pub(crate) fn queued_entries(&self) -> impl Iterator<Item = &Entry<P>> + '_ {
        self.pending.iter()
    }

    pub(crate) fn blocked_entries(&self) -> impl Iterator<Item = &Entry<P>> + '_ {
        self.blocked.values()
    }

    /// The page is going away (durable queue, H3): what is due within `within_ms` goes now, so it reaches
    /// the server before the page is gone; the rest is stored and goes when its deadline comes.
    pub fn flush_soon(&mut self, within_ms: u64, now: u64) {
        self.pending.make_due_by(now.saturating_add(within_ms), now);
        self.version += 1;
    }

    // record-sync durable queue (H3): per-record lookups for `Engine::export_record`.
    pub(crate) fn existing_key(&self, table: &str, id: &str) -> Option<Key> {
        self.table_ids.get(table).map(|&t| (t, Box::from(id)))
    }

    pub(crate) fn queued_entry(&self, key: &Key) -> Option<&Entry<P>> {
        self.pending.get(key)
    }

    pub(crate) fn blocked_entry(&self, key: &Key) -> Option<&Entry<P>> {
        self.blocked.get(key)
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
    pub(crate) fn restore_entry(&mut self, entry: Entry<P>, state: SavedState) -> Result<(), ()> {
        let key = entry.key.clone();
        let failed = self.failed_keys.contains_key(&key);
        match state {
            SavedState::Pending if failed => return Err(()),
            SavedState::Pending => match self.pending.remove(&key) {
                None => self.pending.insert(entry),
                Some(earlier) => {
                    if let Some(folded) = earlier.then(entry, false).map_err(|_| ())? {
                        self.pending.insert(folded);
                    }
                }
            },
            SavedState::Blocked if !failed || self.blocked.contains_key(&key) => return Err(()),
            SavedState::Blocked => {
                self.blocked.insert(key, entry);
            }
            SavedState::Failed { .. } if failed || self.pending.get(&key).is_some() => return Err(()),
            SavedState::Failed { failure, failed_at } => {
                self.failed_keys.insert(key, FailedEntry { entry, failure, failed_at });
            }
        }
        self.version += 1;
        Ok(())
    }
}
