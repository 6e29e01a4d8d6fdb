//! The pending writes and their indexes: one entry per record, found by record key, by send order, by due
//! time, and (for parent tables) by table. Enqueue and removal are O(log n); taking k due entries is
//! O(k log n).

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use super::change::{Op, Priority};
use super::hash::FastMap;
use super::merge::{self, InsertOfExisting, Merged};
use super::payload::Payload;

/// Interned table name: a million pending rows of one table share one string.
pub(crate) type TableId = u32;
/// A record: its table and its id. The id is shared between the indexes instead of copied.
pub(crate) type Key = (TableId, Rc<str>);

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
}

impl<P: Payload> Entry<P> {
    /// Folds a later entry of the same record into this one (see [`merge::merge`]). `Ok(None)`: they cancel,
    /// which an insert and a delete only do when `alone`: no earlier write of the record is in flight or
    /// failed. Otherwise that write may leave a row behind (a failed delete, say), so the pair becomes a
    /// delete.
    pub fn then(self, later: Entry<P>, alone: bool) -> Result<Option<Entry<P>>, InsertOfExisting> {
        let merged = match merge::merge(self.op, self.data, later.op, later.data)? {
            Merged::Cancelled if !alone => Merged::Into(Op::Delete, None),
            merged => merged,
        };
        match merged {
            Merged::Cancelled => Ok(None),
            Merged::Into(op, data) => Ok(Some(Entry {
                key: self.key,
                op,
                data,
                last_changed: merge::newer_stamp(self.last_changed, later.last_changed),
                priority: self.priority.min(later.priority),
                order: self.order,
                seq: later.seq,
                queued_at: self.queued_at,
                touched_at: self.touched_at.max(later.touched_at),
                deadline: self.deadline.min(later.deadline),
                attempts: self.attempts.max(later.attempts),
                changes: self.changes.saturating_add(later.changes),
                // A forced write stays forced when the caller edits the record again: the later edit is
                // newer still, and dropping the force would bring the same conflict back.
                force: self.force || later.force,
                solo: self.solo || later.solo,
            })),
        }
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

#[derive(Default)]
pub(crate) struct Queue<P> {
    entries: FastMap<Key, Entry<P>>,
    by_order: BTreeMap<u64, Key>,
    /// (deadline, order) of every entry.
    due: BTreeSet<(u64, u64)>,
    /// Orders of the entries of each table that is some table's parent; other tables are not indexed.
    /// `(order, 0)`: the same set type as `due`, so the wasm holds one copy of its code, not two.
    by_table: FastMap<TableId, BTreeSet<(u64, u64)>>,
    per_priority: [u64; 4],
}

impl<P> Queue<P> {
    /// Only the tables marked here are indexed by table (parents, which children pull along).
    pub fn index_table(&mut self, table: TableId) {
        // Inserted one by one: collecting into a BTreeSet links a stable sort.
        let mut orders = BTreeSet::new();
        for entry in self.entries.values().filter(|e| e.key.0 == table) {
            orders.insert((entry.order, 0));
        }
        self.by_table.insert(table, orders);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn get(&self, key: &Key) -> Option<&Entry<P>> {
        self.entries.get(key)
    }

    pub fn key_at(&self, order: u64) -> Option<&Key> {
        self.by_order.get(&order)
    }

    /// Adds an entry for a record that has none here.
    pub fn insert(&mut self, entry: Entry<P>) {
        debug_assert!(!self.entries.contains_key(&entry.key));
        self.by_order.insert(entry.order, entry.key.clone());
        self.due.insert((entry.deadline, entry.order));
        if let Some(orders) = self.by_table.get_mut(&entry.key.0) {
            orders.insert((entry.order, 0));
        }
        self.per_priority[entry.priority.index()] += 1;
        self.entries.insert(entry.key.clone(), entry);
    }

    pub fn remove(&mut self, key: &Key) -> Option<Entry<P>> {
        let entry = self.entries.remove(key)?;
        self.by_order.remove(&entry.order);
        self.due.remove(&(entry.deadline, entry.order));
        if let Some(orders) = self.by_table.get_mut(&entry.key.0) {
            orders.remove(&(entry.order, 0));
        }
        self.per_priority[entry.priority.index()] -= 1;
        Some(entry)
    }

    pub fn remove_order(&mut self, order: u64) -> Option<Entry<P>> {
        let key = self.by_order.get(&order)?.clone();
        self.remove(&key)
    }

    pub fn min_order(&self) -> Option<u64> {
        self.by_order.keys().next().copied()
    }

    pub fn next_deadline(&self) -> Option<u64> {
        self.due.iter().next().map(|&(deadline, _)| deadline)
    }

    /// (deadline, order) from the most urgent on.
    pub fn by_deadline(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.due.iter().copied()
    }

    /// Up to `limit` orders of `table`'s entries that come before `before`, earliest first.
    pub fn earlier_in_table(&self, table: TableId, before: u64, limit: usize) -> impl Iterator<Item = u64> + '_ {
        let orders = self.by_table.get(&table).into_iter();
        orders.flat_map(move |orders| orders.range(..(before, 0)).take(limit).map(|&(order, _)| order))
    }

    /// Every entry in send order.
    pub fn iter(&self) -> impl Iterator<Item = &Entry<P>> + '_ {
        self.by_order.values().filter_map(|key| self.entries.get(key))
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
            self.due.range((now + 1, 0)..).take_while(|(deadline, _)| *deadline <= horizon).copied().collect();
        for (deadline, order) in late {
            self.due.remove(&(deadline, order));
            self.due.insert((now, order));
            if let Some(entry) = self.by_order.get(&order).and_then(|key| self.entries.get_mut(key)) {
                entry.deadline = now;
            }
        }
    }
}
