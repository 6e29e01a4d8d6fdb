//! When writes go, and in what order: the next deadline, the batch that is due, parents before children,
//! and flushing on demand.

use super::{Batch, Engine, InFlight, OutgoingChange};
use crate::core::config::{Fill, FILL_SCAN_FACTOR};
use crate::core::hash::FastMap;
use crate::core::payload::Payload;
use crate::core::queue::{Entry, TableId};
use crate::core::sort::sort_by_key;

impl<P: Payload> Engine<P> {
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
        self.changed = true;
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
            // One client id per batch (a restored write keeps the id of the page that queued it): the server's
            // replay log, the change feed's origin and a custom send's batch each take one id per call.
            let client_of = |slot: u32| self.pending.at_slot(slot).and_then(|e| e.client.as_deref());
            let first = chosen.first().or(group.first()).map_or(slot, |&(_, s)| s);
            let batch_client = client_of(first);
            let other = group
                .iter()
                .position(|&(_, s)| client_of(s) != batch_client)
                .or((entry.client.as_deref() != batch_client).then_some(group.len()));
            if let Some(other) = other {
                if !chosen.is_empty() {
                    continue;
                }
                // The batch is the earliest parents of one id (at least the first); the rest follow in the next.
                group.truncate(other.min(limit));
                chosen.extend(group);
                break;
            }
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
            self.pending.at_slot(slot).is_some_and(|entry| self.ancestors_entry(entry.key.0).is_some())
        };
        if self.config.parents.is_empty() || !chosen.iter().any(has_ancestors) {
            // No parent to go first: queue order alone.
            sort_by_key(&mut chosen, |&(order, _)| [order, 0, 0]);
            return chosen.into_iter().map(|(_, slot)| slot).collect();
        }
        let no_ancestors = Vec::new();
        let mut items: Vec<(u32, &Entry<P>, &Vec<TableId>)> = chosen
            .iter()
            .filter_map(|&(_, slot)| Some((slot, self.pending.at_slot(slot)?)))
            .map(|(slot, entry)| (slot, entry, self.ancestors_entry(entry.key.0).unwrap_or(&no_ancestors)))
            .collect();
        // A table has strictly more ancestors than any of its ancestors: a topological order.
        sort_by_key(&mut items, |(_, entry, ancestors)| [ancestors.len() as u64, entry.order, 0]);
        let mut rank: FastMap<u64, u64> = FastMap::default();
        for (_, entry, ancestors) in &items {
            let after = items
                .iter()
                .filter(|(_, p, _)| ancestors.contains(&p.key.0) && p.order < entry.latest())
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
        let Some(ancestors) = self.ancestors_entry(entry.key.0) else { return Vec::new() };
        let mut orders: Vec<(u64, u32)> =
            ancestors.iter().flat_map(|&table| self.pending.earlier_in_table(table, entry.latest(), limit)).collect();
        sort_by_key(&mut orders, |&(order, _)| [order, 0, 0]);
        orders.truncate(limit);
        orders
    }

    pub(super) fn outgoing(&self, entry: &Entry<P>) -> OutgoingChange<P> {
        OutgoingChange {
            seq: entry.seq,
            table: String::from(&*self.tables[entry.key.0 as usize]),
            id: String::from(&*entry.key.1),
            op: entry.op,
            data: entry.data.clone(),
            last_changed: entry.last_changed.clone(),
            priority: entry.priority,
            force: entry.force,
            client: entry.client.clone(),
        }
    }

    /// The smallest seq any live write may still be sent with. A write is sent with its latest seq, which is
    /// at least its order, so the smallest order is a safe bound; but for a write placed behind the queue with
    /// the seq it had in another engine (`kept_seq`), whose order is newer than its seq: until every write up to
    /// the last of those has left, the bound is that seq.
    fn low_water(&self) -> u64 {
        let in_flight = self.in_flight.iter().flat_map(|f| f.entries.iter().map(|e| e.order));
        let blocked = self.blocked_entries().map(|e| e.order);
        let failed = self.failed_keys.values().map(|f| f.entry.order);
        self.pending
            .min_order()
            .into_iter()
            .chain(in_flight)
            .chain(blocked)
            .chain(failed)
            .min()
            .map_or(self.next_seq, |low| if low <= self.kept_through { low.min(self.kept_seq) } else { low })
    }

    /// Makes everything queued so far due at once, backoff or not (a server's `Retry-After` still holds), and
    /// returns the seq to wait for with
    /// [`Engine::is_settled_through`].
    pub fn flush_all(&mut self, now: u64) -> u64 {
        self.pending.make_all_due(now);
        self.not_before = self.server_not_before;
        self.changed = true;
        self.next_seq - 1
    }

    /// Whether every write holding a change with seq up to `seq` has been confirmed, answered with a conflict,
    /// moved to the failed list, or is blocked behind a failed one: nothing more will happen to them without
    /// the caller.
    pub fn is_settled_through(&self, seq: u64) -> bool {
        let in_flight = self.in_flight.iter().flat_map(|f| f.entries.iter().map(|e| e.order)).min();
        [self.pending.min_order(), in_flight].into_iter().flatten().all(|order| order > seq)
    }

    /// The page is going away (durable queue, H3): what is due within `within_ms` goes now, so it reaches
    /// the server before the page is gone; the rest is stored and goes when its deadline comes.
    pub fn flush_soon(&mut self, within_ms: u64, now: u64) {
        self.pending.make_due_by(now.saturating_add(within_ms), now);
        self.changed = true;
    }
}
