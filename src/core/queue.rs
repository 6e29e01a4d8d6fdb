//! The pending writes and their indexes: one entry per record, found by record key, by send order, by due
//! time, and (for parent tables) by table. Enqueue and removal are O(log n); taking k due entries is
//! O(k log n).
//!
//! The entries live in a slab, each once, addressed by slot number; the indexes hold numbers only: the key
//! index slot numbers (`SlotIndex`), the send order a sorted log of (order, slot) (`OrderLog`), the due and
//! table indexes `(u64, u64)` pairs in a [`PairSet`] of our own, where a `BTreeSet` was 7 KB of wasm. The log's
//! O(log n) is amortized: its holes are squeezed out in one pass once they are half of it. A `PairSet` update
//! is O(log n) searching plus a move of at most one run (256 pairs), and of the list of runs (n / 128 words at
//! most) once per split or emptied run: a constant per write up to millions of writes, measured at 1M.

use std::cell::Cell;
use std::rc::Rc;

use super::change::{Op, Priority};
use super::hash::{record_hash, SlotIndex};
use super::merge::{self, InsertOfExisting, Merged};
use super::payload::Payload;

/// Interned table name: a million pending rows of one table share one string.
pub(crate) type TableId = u32;
/// A record: its table and its id. The queue stores it once, in the entry (the indexes hold slot numbers).
pub(crate) type Key = (TableId, Box<str>);

/// Sets what `slots`, per-table data indexed by the dense table ids, holds for `table`, growing it as needed:
/// a vector, not a map, is no hashing on the way and one hash table's code less in the wasm.
pub(crate) fn set_for_table<T>(slots: &mut Vec<Option<T>>, table: TableId, value: T) {
    let at = table as usize;
    if slots.len() <= at {
        slots.resize_with(at + 1, || None);
    }
    if let Some(slot) = slots.get_mut(at) {
        *slot = Some(value);
    }
}

/// One pending write, standing for one or more changes the caller queued for the same record.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Entry<P> {
    pub key: Key,
    pub op: Op,
    pub data: Option<P>,
    pub last_changed: Option<String>,
    pub priority: Priority,
    /// Seq of the first change folded in: the entry's place in the send order, kept across merges so that a
    /// row created before its children is still sent before them.
    pub order: u64,
    /// Seq of the latest change folded in: the id the server uses to recognise a replayed write.
    pub seq: u64,
    /// When the first change was queued, for latency.
    pub queued_at: u64,
    /// When the latest change was folded in (how long the record has been idle, see [`crate::core::Fill`]).
    pub touched_at: u64,
    /// When the entry must be on its way: the earliest deadline of the changes folded in.
    pub deadline: u64,
    /// Transient failures so far.
    pub attempts: u32,
    /// Caller changes this entry stands for.
    pub changes: u32,
    /// Sent without the last-writer-wins condition (see [`crate::core::Change::force`]).
    pub force: bool,
    /// Refused as too large in company: sent in a batch of its own from now on.
    pub solo: bool,
    /// The client id `seq` was given under, when it is not this engine's: a restored write keeps the one it
    /// was first queued under, so that the server recognises its resend, while the new changes of this
    /// engine (a new page) go under its own id and can never be taken for writes of the page before.
    pub client: Option<Rc<str>>,
}

impl<P: Payload> Entry<P> {
    /// Where its latest change stands in this engine's send order: its seq, except for a write carried from
    /// another engine ([`crate::core::Engine::carry`]), whose seq counts there and which stands at its order here.
    pub fn latest(&self) -> u64 {
        self.seq.max(self.order)
    }

    /// Folds a later entry of the same record into this one (see [`merge::merge`]). `Ok(None)`: they cancel,
    /// which an insert and a delete only do when `alone`: no earlier write of the record is in flight or
    /// failed. Otherwise that write may leave a row behind (a failed delete, say), so the pair becomes a
    /// delete.
    pub fn then(mut self, later: Entry<P>, alone: bool) -> Result<Option<Entry<P>>, InsertOfExisting> {
        Ok(self.absorb(later, alone)?.then_some(self))
    }

    /// [`Entry::then`] in place: `Ok(false)` when the two cancel. Refused, this entry is left as it was.
    pub fn absorb(&mut self, later: Entry<P>, alone: bool) -> Result<bool, InsertOfExisting> {
        if merge::refuses(self.op, later.op) {
            return Err(InsertOfExisting);
        }
        // Not refused, so `merge` cannot fail.
        let (op, data) = match merge::merge(self.op, self.data.take(), later.op, later.data)? {
            Merged::Cancelled if alone => return Ok(false),
            Merged::Cancelled => (Op::Delete, None),
            Merged::Into(op, data) => (op, data),
        };
        self.op = op;
        self.data = data;
        self.last_changed = merge::newer_stamp(self.last_changed.take(), later.last_changed);
        self.priority = self.priority.min(later.priority);
        self.seq = later.seq;
        self.client = later.client;
        self.touched_at = self.touched_at.max(later.touched_at);
        self.deadline = self.deadline.min(later.deadline);
        self.attempts = self.attempts.max(later.attempts);
        self.changes = self.changes.saturating_add(later.changes);
        // A forced write stays forced when the caller edits the record again: the later edit is newer still,
        // and dropping the force would bring the same conflict back.
        self.force |= later.force;
        self.solo |= later.solo;
        Ok(true)
    }

    /// After a request that may or may not have reached the server, an insert is resent as an upsert: if the
    /// row was written, a second insert would fail on the duplicate key.
    pub fn after_uncertain_attempt(mut self) -> Entry<P> {
        if self.op == Op::Insert {
            self.op = Op::Upsert;
        }
        self
    }
}

/// What became of a change folded into the queue by [`Queue::absorb`].
pub(crate) enum Absorbed<P> {
    /// Into the record's entry.
    Merged,
    /// With the record's entry: neither is left.
    Cancelled,
    /// Refused (see [`InsertOfExisting`]); the entry at this slot is as it was.
    Refused(u32),
    /// The record has no entry here: the change comes back.
    Vacant(Entry<P>),
}

/// Entries by slot number, in chunks of a fixed size: a full chunk is never copied to grow, and at most one
/// chunk is partly empty (a `Vec` that doubles may leave half its room unused). Freed slots are reused.
struct Slab<T> {
    chunks: Vec<Vec<Option<T>>>,
    free: Vec<u32>,
}

const CHUNK: usize = 1024;

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab { chunks: Vec::new(), free: Vec::new() }
    }
}

impl<T> Slab<T> {
    fn get(&self, slot: u32) -> Option<&T> {
        self.chunks.get(slot as usize / CHUNK)?.get(slot as usize % CHUNK)?.as_ref()
    }

    fn cell(&mut self, slot: u32) -> Option<&mut Option<T>> {
        self.chunks.get_mut(slot as usize / CHUNK)?.get_mut(slot as usize % CHUNK)
    }

    fn put(&mut self, value: T) -> u32 {
        if let Some(slot) = self.free.pop() {
            if let Some(cell) = self.cell(slot) {
                *cell = Some(value);
                return slot;
            }
        }
        if self.chunks.last().is_none_or(|chunk| chunk.len() == CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        let full = (self.chunks.len() - 1) * CHUNK;
        let chunk = self.chunks.last_mut().map_or(0, |chunk| {
            chunk.push(Some(value));
            chunk.len()
        });
        (full + chunk - 1) as u32
    }

    fn take(&mut self, slot: u32) -> Option<T> {
        let value = self.cell(slot)?.take()?;
        self.free.push(slot);
        Some(value)
    }
}

/// A sorted set of `(u64, u64)`: the queue's ordered indexes. Sorted runs of at most `RUN` pairs, in order:
/// a lookup is two binary searches; an insert or removal moves at most a run's pairs (4 KB), and the list of
/// runs (24 bytes a run) only when a run splits or empties. The due index takes most writes at its end and
/// gives them from its start, where a split or an emptied run moves little. 1.5 KB of wasm where the
/// standard `BTreeSet` was 7 KB (docs/measurements.md, h22-size).
#[derive(Default)]
pub(crate) struct PairSet {
    /// Each run sorted and not empty; every pair of a run is below every pair of the next.
    runs: Vec<Vec<(u64, u64)>>,
}

const RUN: usize = 256;

impl PairSet {
    /// The run where `pair` is or would go: the first whose last pair is not below it, else the last.
    fn run_of(&self, pair: (u64, u64)) -> usize {
        let at = self.runs.partition_point(|run| run.last().is_some_and(|&last| last < pair));
        at.min(self.runs.len().saturating_sub(1))
    }

    pub fn insert(&mut self, pair: (u64, u64)) {
        // New writes mostly come last (a later seq; a later deadline for the same priority): they go on the end
        // without a search, and fill the last run before a new one starts, where a split would leave it half
        // empty.
        if let Some(run) = self.runs.last_mut().filter(|run| run.last().is_some_and(|&end| end < pair)) {
            if run.len() < RUN {
                run.push(pair);
            } else {
                let mut run = Vec::with_capacity(RUN);
                run.push(pair);
                self.runs.push(run);
            }
            return;
        }
        let at = self.run_of(pair);
        let Some(run) = self.runs.get_mut(at) else {
            self.runs.push(vec![pair]);
            return;
        };
        let Err(place) = run.binary_search(&pair) else { return };
        run.insert(place, pair);
        if run.len() > RUN {
            let upper = run.split_off(RUN / 2);
            self.runs.insert(at + 1, upper);
        }
    }

    pub fn remove(&mut self, pair: &(u64, u64)) {
        let at = self.run_of(*pair);
        let Some(run) = self.runs.get_mut(at) else { return };
        let Ok(place) = run.binary_search(pair) else { return };
        run.remove(place);
        if run.is_empty() {
            self.runs.remove(at);
        }
    }

    pub fn first(&self) -> Option<&(u64, u64)> {
        self.runs.first()?.first()
    }

    /// The pairs from `from` on, ascending.
    pub fn from(&self, from: (u64, u64)) -> impl Iterator<Item = (u64, u64)> + '_ {
        let at = self.run_of(from);
        let first = self.runs.get(at).map_or(&[][..], |run| &run[run.partition_point(|&pair| pair < from)..]);
        let rest = self.runs.get(at + 1..).unwrap_or_default();
        first.iter().chain(rest.iter().flatten()).copied()
    }

    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.from((0, 0))
    }
}

/// (order, slot) of every entry, for the send order. Orders are seqs, so a new record's entry comes last:
/// `log` takes it with a push, where a BTree would walk down from its root. `log` is sorted; a removed entry
/// leaves a hole (slot `HOLE`) that the same order may fill again (a record whose entry is taken out and put
/// back, merged or after a failed attempt), and the holes are squeezed out once they are as many as the
/// entries. An order that finds neither the end nor its hole goes to `late`.
///
/// Each place also holds its entry's [`record_hash`], in what was the padding of `(u64, u32)`: a write found
/// by its order (a due one) has its index bucket prefetched and removed without reading its key.
#[derive(Default)]
struct OrderLog {
    log: Vec<Place>,
    /// Holes in `log`.
    holes: usize,
    /// Everything before this in `log` is a hole (the earliest writes leave first).
    head: usize,
    /// (order, hash << 32 | slot)
    late: PairSet,
    /// The last place [`OrderLog::position`] found, where it starts the next search.
    finger: Cell<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Place {
    order: u64,
    slot: u32,
    hash: u32,
}

const HOLE: u32 = u32::MAX;

fn packed(slot: u32, hash: u32) -> u64 {
    u64::from(hash) << 32 | u64::from(slot)
}

impl OrderLog {
    /// Where `order` is in `log` (or would go). The search starts at the last place found and gallops out from
    /// it: a batch takes writes in order, each next to the one before, where a binary search over a million
    /// places read a dozen cold cache lines for every write taken.
    fn position(&self, order: u64) -> Result<usize, usize> {
        let len = self.log.len();
        let finger = self.finger.get().min(len);
        let before = |at: usize| self.log.get(at).is_some_and(|p| p.order < order);
        // The answer is in low..=high: the first place not before `order`.
        let (mut low, mut high);
        let mut step = 1;
        if before(finger) {
            low = finger + 1;
            loop {
                high = finger.saturating_add(step).min(len);
                if high == len || !before(high) {
                    break;
                }
                low = high + 1;
                step *= 2;
            }
        } else {
            high = finger;
            loop {
                low = finger.saturating_sub(step);
                if before(low) {
                    low += 1;
                    break;
                }
                if low == 0 {
                    high = 0;
                    break;
                }
                high = low;
                step *= 2;
            }
        }
        let at = low + self.log.get(low..high).unwrap_or_default().partition_point(|p| p.order < order);
        self.finger.set(at);
        if self.log.get(at).is_some_and(|p| p.order == order) {
            Ok(at)
        } else {
            Err(at)
        }
    }

    fn insert(&mut self, order: u64, slot: u32, hash: u32) {
        let place = Place { order, slot, hash };
        if self.log.last().is_none_or(|last| last.order < order) {
            self.log.push(place);
            return;
        }
        match self.position(order) {
            Ok(at) if self.log.get(at).is_some_and(|p| p.slot == HOLE) => {
                if let Some(cell) = self.log.get_mut(at) {
                    *cell = place;
                }
                self.holes -= 1;
                self.head = self.head.min(at);
            }
            _ => self.late.insert((order, packed(slot, hash))),
        }
    }

    /// Takes out the place of `slot` at `order`, and gives its hash.
    fn remove(&mut self, order: u64, slot: u32) -> Option<u32> {
        // An order is one entry's: the first place at or after it is the only one it can have in `late`.
        let late = self.late.from((order, 0)).next();
        if let Some(late) = late.filter(|&(at, packed)| at == order && packed as u32 == slot) {
            self.late.remove(&late);
            return Some((late.1 >> 32) as u32);
        }
        let cell = self.position(order).ok().and_then(|at| self.log.get_mut(at)).filter(|p| p.slot == slot)?;
        cell.slot = HOLE;
        let hash = cell.hash;
        self.holes += 1;
        if self.holes * 2 > self.log.len() {
            self.log.retain(|p| p.slot != HOLE);
            (self.holes, self.head) = (0, 0);
        }
        while self.log.get(self.head).is_some_and(|p| p.slot == HOLE) {
            self.head += 1;
        }
        Some(hash)
    }

    /// The slot at `order`, and its entry's hash.
    fn slot_at(&self, order: u64) -> Option<(u32, u32)> {
        match self.position(order).ok().and_then(|at| self.log.get(at)) {
            Some(p) if p.slot != HOLE => Some((p.slot, p.hash)),
            _ => {
                let (at, packed) = self.late.from((order, 0)).next()?;
                (at == order).then_some((packed as u32, (packed >> 32) as u32))
            }
        }
    }

    /// (order, slot) in send order.
    fn iter(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        let log = self.log.get(self.head..).unwrap_or_default().iter();
        let mut log = log.filter(|p| p.slot != HOLE).map(|p| (p.order, p.slot)).peekable();
        let mut late = self.late.iter().map(|(order, packed)| (order, packed as u32)).peekable();
        std::iter::from_fn(move || match (log.peek(), late.peek()) {
            (Some(a), Some(b)) if b.0 < a.0 => late.next(),
            (Some(_), _) => log.next(),
            (None, _) => late.next(),
        })
    }

    fn min_order(&self) -> Option<u64> {
        self.iter().next().map(|(order, _)| order)
    }
}

#[derive(Default)]
pub(crate) struct Queue<P> {
    entries: Slab<Entry<P>>,
    /// Record key to slot.
    slots: SlotIndex,
    by_order: OrderLog,
    len: usize,
    /// (deadline, order) of every entry.
    due: PairSet,
    /// (order, slot) of the entries of each table that is some table's parent, indexed by table id
    /// ([`set_for_table`]); other tables are not indexed (`None`).
    by_table: Vec<Option<PairSet>>,
    per_priority: [u64; 4],
}

impl<P> Queue<P> {
    /// Only the tables marked here are indexed by table (parents, which children pull along).
    pub fn index_table(&mut self, table: TableId) {
        let mut orders = PairSet::default();
        for (order, slot) in self.by_order.iter() {
            if self.entries.get(slot).is_some_and(|e| e.key.0 == table) {
                orders.insert((order, slot.into()));
            }
        }
        set_for_table(&mut self.by_table, table, orders);
    }

    fn table_index(&mut self, table: TableId) -> Option<&mut PairSet> {
        self.by_table.get_mut(table as usize).and_then(Option::as_mut)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn slot(&self, key: &Key) -> Option<u32> {
        self.slots.find(record_hash(key.0, &key.1), |slot| self.entries.get(slot).is_some_and(|e| e.key == *key))
    }

    pub fn get(&self, key: &Key) -> Option<&Entry<P>> {
        self.entries.get(self.slot(key)?)
    }

    /// The entry at `slot` (from [`Queue::slot_at`] or [`Queue::earlier_in_table`]).
    pub fn at_slot(&self, slot: u32) -> Option<&Entry<P>> {
        self.entries.get(slot)
    }

    /// The slot of the entry at `order` in the send order. Its index bucket is prefetched: the caller is
    /// choosing what to send, and will take it out soon.
    pub fn slot_at(&self, order: u64) -> Option<u32> {
        let (slot, hash) = self.by_order.slot_at(order)?;
        self.slots.prefetch(hash);
        Some(slot)
    }

    /// Adds an entry for a record that has none here.
    pub fn insert(&mut self, entry: Entry<P>) {
        debug_assert!(self.slot(&entry.key).is_none());
        let (hash, table, order, deadline, priority) =
            (record_hash(entry.key.0, &entry.key.1), entry.key.0, entry.order, entry.deadline, entry.priority);
        let slot = self.entries.put(entry);
        self.slots.insert(hash, slot);
        self.by_order.insert(order, slot, hash);
        self.len += 1;
        self.due.insert((deadline, order));
        if let Some(orders) = self.table_index(table) {
            orders.insert((order, slot.into()));
        }
        self.per_priority[priority.index()] += 1;
    }

    pub fn remove(&mut self, key: &Key) -> Option<Entry<P>> {
        self.remove_slot(self.slot(key)?)
    }

    pub fn remove_slot(&mut self, slot: u32) -> Option<Entry<P>> {
        let entry = self.entries.take(slot)?;
        let hash = self.by_order.remove(entry.order, slot).unwrap_or_else(|| record_hash(entry.key.0, &entry.key.1));
        self.slots.remove(hash, slot);
        self.len -= 1;
        self.due.remove(&(entry.deadline, entry.order));
        if let Some(orders) = self.table_index(entry.key.0) {
            orders.remove(&(entry.order, slot.into()));
        }
        self.per_priority[entry.priority.index()] -= 1;
        Some(entry)
    }

    pub fn min_order(&self) -> Option<u64> {
        self.by_order.min_order()
    }

    pub fn next_deadline(&self) -> Option<u64> {
        self.due.first().map(|&(deadline, _)| deadline)
    }

    /// (deadline, order) from the most urgent on.
    pub fn by_deadline(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.due.iter()
    }

    /// Up to `limit` (order, slot) of `table`'s entries that come before `before`, earliest first.
    pub fn earlier_in_table(&self, table: TableId, before: u64, limit: usize) -> impl Iterator<Item = (u64, u32)> + '_ {
        let orders = self.by_table.get(table as usize).and_then(Option::as_ref).into_iter();
        orders.flat_map(move |orders| {
            orders
                .iter()
                .take_while(move |&pair| pair < (before, 0))
                .take(limit)
                .map(|(order, slot)| (order, slot as u32))
        })
    }

    /// Every entry in send order.
    pub fn iter(&self) -> impl Iterator<Item = &Entry<P>> + '_ {
        self.by_order.iter().filter_map(|(_, slot)| self.entries.get(slot))
    }

    pub fn per_priority(&self) -> [u64; 4] {
        self.per_priority
    }

    /// Makes every entry due by `now` (a forced flush); later deadlines are pulled in, earlier ones kept.
    pub fn make_all_due(&mut self, now: u64) {
        self.make_due_by(u64::MAX, now);
    }

    /// Makes the entries due by `horizon` due at `now`.
    pub fn make_due_by(&mut self, horizon: u64, now: u64) {
        let late: Vec<(u64, u64)> =
            self.due.from((now.saturating_add(1), 0)).take_while(|(deadline, _)| *deadline <= horizon).collect();
        for (deadline, order) in late {
            self.due.remove(&(deadline, order));
            self.due.insert((now, order));
            if let Some(Some(entry)) = self.by_order.slot_at(order).and_then(|(slot, _)| self.entries.cell(slot)) {
                entry.deadline = now;
            }
        }
    }
}

impl<P: Payload> Queue<P> {
    /// Folds `later` into the entry of its record where that entry is (see [`Entry::absorb`]): it keeps its slot
    /// and its place in the send order, and only the indexes the merge moved are updated, where taking the
    /// entry out and putting it back redid every index for each change of a record.
    pub fn absorb(&mut self, later: Entry<P>, alone: bool) -> Absorbed<P> {
        let Some(slot) = self.slot(&later.key) else { return Absorbed::Vacant(later) };
        let Some(Some(held)) = self.entries.cell(slot) else { return Absorbed::Vacant(later) };
        let (deadline, priority, order) = (held.deadline, held.priority, held.order);
        match held.absorb(later, alone) {
            Err(InsertOfExisting) => Absorbed::Refused(slot),
            Ok(true) => {
                if held.deadline != deadline {
                    self.due.remove(&(deadline, order));
                    self.due.insert((held.deadline, order));
                }
                if held.priority != priority {
                    self.per_priority[priority.index()] -= 1;
                    self.per_priority[held.priority.index()] += 1;
                }
                Absorbed::Merged
            }
            Ok(false) => {
                // They cancel: the entry goes, as it was indexed (a cancelling merge changes no indexed field).
                self.remove_slot(slot);
                Absorbed::Cancelled
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::{OrderLog, PairSet, RUN};

    /// Against a BTreeSet: inserts at the end (new writes), anywhere (retries, merges), removals from the
    /// start (taken when due) and anywhere, over several splits and emptied runs.
    #[test]
    fn pair_set_is_a_sorted_set() {
        let mut set = PairSet::default();
        let mut model: BTreeSet<(u64, u64)> = BTreeSet::new();
        let mut rng = fastrand::Rng::with_seed(9);
        let mut next = 0;
        for step in 0..40_000u32 {
            match rng.u8(..10) {
                0..=3 => {
                    next += rng.u64(..3);
                    let pair = (next, rng.u64(..4));
                    set.insert(pair);
                    model.insert(pair);
                }
                4 | 5 => {
                    let pair = (rng.u64(..next + 1), rng.u64(..4));
                    set.insert(pair);
                    model.insert(pair);
                }
                6 | 7 => {
                    if let Some(&first) = model.first() {
                        set.remove(&first);
                        model.remove(&first);
                    }
                }
                _ => {
                    let pair = (rng.u64(..next + 1), rng.u64(..4));
                    set.remove(&pair);
                    model.remove(&pair);
                }
            }
            assert_eq!(set.first(), model.first(), "step {step}");
            let from = (rng.u64(..next + 2), rng.u64(..5));
            let got: Vec<_> = set.from(from).take(3).collect();
            let want: Vec<_> = model.range(from..).take(3).copied().collect();
            assert_eq!(got, want, "step {step}");
            assert!(set.runs.iter().all(|run| !run.is_empty() && run.len() <= RUN), "step {step}");
        }
        assert_eq!(set.iter().collect::<Vec<_>>(), model.iter().copied().collect::<Vec<_>>());
        assert!(set.runs.len() > 4, "runs were split");
    }

    /// Against a BTreeMap, with orders put back after they left (the log's holes, and `late` once the holes
    /// are squeezed out).
    #[test]
    fn order_log_keeps_the_send_order() {
        let mut log = OrderLog::default();
        let mut model: BTreeMap<u64, u32> = BTreeMap::new();
        let mut gone: Vec<u64> = Vec::new();
        let mut rng = fastrand::Rng::with_seed(5);
        let mut probes = fastrand::Rng::with_seed(6);
        let mut next = 1;
        for step in 0..20_000u32 {
            match rng.u8(..10) {
                0..=3 => {
                    log.insert(next, step, step ^ 7);
                    model.insert(next, step);
                    next += 1 + rng.u64(..3);
                }
                4..=6 if !model.is_empty() => {
                    let order = *model.keys().nth(rng.usize(..model.len())).unwrap();
                    let slot = model.remove(&order).unwrap();
                    assert_eq!(log.remove(order, slot), Some(slot ^ 7));
                    gone.push(order);
                }
                _ if !gone.is_empty() => {
                    let order = gone.swap_remove(rng.usize(..gone.len()));
                    log.insert(order, step, step ^ 7);
                    model.insert(order, step);
                }
                _ => {}
            }
            assert_eq!(log.min_order(), model.keys().next().copied(), "step {step}");
            let probe = rng.u64(..next + 1);
            assert_eq!(log.slot_at(probe), model.get(&probe).map(|&slot| (slot, slot ^ 7)), "step {step}");
            // The galloping search from wherever the last one ended agrees with a plain binary search.
            let probe = probes.u64(..next + 2);
            assert_eq!(log.position(probe), log.log.binary_search_by_key(&probe, |p| p.order), "step {step}");
        }
        assert_eq!(log.iter().collect::<Vec<_>>(), model.into_iter().collect::<Vec<_>>());
        assert!(log.late.first().is_some(), "the late path was taken");
    }
}
