//! What the engine reports: its stats and the lists of pending and failed writes.

use super::{Engine, FailedView, PendingView};
use crate::core::payload::Payload;
use crate::core::queue::Entry;
use crate::core::sort::sort_by_key;
use crate::core::stats::{PendingByPriority, Stats};

impl<P: Payload> Engine<P> {
    pub fn stats(&self) -> Stats {
        let mut by_priority = self.pending.per_priority();
        let mut blocked = 0;
        for entry in self.blocked_entries() {
            by_priority[entry.priority.index()] += 1;
            blocked += 1;
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
            pending: self.pending.len() as u64 + blocked,
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
        let mut blocked: Vec<&Entry<P>> = self.blocked_entries().collect();
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
