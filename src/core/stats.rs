//! Counters the engine keeps and the figures it reports, in the shape the JS side shows them.

use super::sort::sort_by_key;
use serde::Serialize;

/// How many latency samples the percentiles are computed over: recent enough to move, small enough to sort.
const LATENCY_WINDOW: usize = 512;

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Changes queued by the caller.
    pub total_changes: u64,
    /// Changes folded into an earlier pending change of the same record (or cancelling it), saving a write.
    pub merged_changes: u64,
    /// Writes the server confirmed.
    pub successful_syncs: u64,
    /// Writes moved to the failed list.
    pub failed_syncs: u64,
    /// Writes the server did not take because its row was newer, or (`missing`) absent or hidden from the user.
    pub conflicts: u64,
    /// Transient failures that led to another attempt.
    pub retries: u64,
    /// Batches sent.
    pub requests: u64,
    /// Writes waiting to be sent, including those held behind an in-flight or failed write of the same record.
    pub pending: u64,
    pub pending_by_priority: PendingByPriority,
    pub in_flight: u64,
    pub is_online: bool,
    pub is_processing: bool,
    pub is_paused: bool,
    /// Sending waits for an access token (`getAccessToken` failed or gave none); `last_error` says why.
    pub needs_auth: bool,
    pub last_error: Option<String>,
    /// Enqueue-to-confirmed time of recent writes.
    pub latency_ms: Option<Latency>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PendingByPriority {
    pub critical: u64,
    pub high: u64,
    pub medium: u64,
    pub low: u64,
}

impl PendingByPriority {
    pub(crate) fn from_counts(counts: [u64; 4]) -> Self {
        let [critical, high, medium, low] = counts;
        PendingByPriority { critical, high, medium, low }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Latency {
    pub p50: u64,
    pub p95: u64,
    pub p99: u64,
    pub max: u64,
    /// Writes measured since start (the percentiles cover the most recent ones).
    pub count: u64,
}

/// A ring of the most recent samples.
#[derive(Clone, Debug, Default)]
pub(crate) struct LatencyWindow {
    samples: Vec<u64>,
    next: usize,
    count: u64,
}

impl LatencyWindow {
    pub fn record(&mut self, ms: u64) {
        if self.samples.len() < LATENCY_WINDOW {
            self.samples.push(ms);
        } else {
            self.samples[self.next] = ms;
        }
        self.next = (self.next + 1) % LATENCY_WINDOW;
        self.count += 1;
    }

    pub fn summary(&self) -> Option<Latency> {
        let mut sorted = self.samples.clone();
        sort_by_key(&mut sorted, |&ms| [ms, 0, 0]);
        let last = sorted.len().checked_sub(1)?;
        // Nearest-rank percentile over the window.
        let rank = |p: usize| sorted[(last * p).div_ceil(100)];
        Some(Latency { p50: rank(50), p95: rank(95), p99: rank(99), max: sorted[last], count: self.count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_over_a_known_spread() {
        let mut window = LatencyWindow::default();
        assert_eq!(window.summary(), None);
        for ms in 1..=100 {
            window.record(ms);
        }
        assert_eq!(window.summary(), Some(Latency { p50: 51, p95: 96, p99: 100, max: 100, count: 100 }));
    }

    #[test]
    fn window_keeps_only_recent_samples() {
        let mut window = LatencyWindow::default();
        for _ in 0..LATENCY_WINDOW {
            window.record(1_000);
        }
        for _ in 0..LATENCY_WINDOW {
            window.record(5);
        }
        let summary = window.summary().unwrap();
        assert_eq!((summary.max, summary.count), (5, 2 * LATENCY_WINDOW as u64));
    }
}
