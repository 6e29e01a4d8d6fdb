//! Engine options, checked once at construction so the engine itself can rely on them.

use super::hash::FastMap;

use serde::{Deserialize, Serialize};

use super::backoff::Backoff;
use super::change::Priority;
use super::error::ArgumentError;
use super::wire::WireConfig;

/// Critical at once, high within 5 s, medium 30 s, low 5 min.
pub const DEFAULT_INTERVALS_MS: [u64; 4] = [0, 5_000, 30_000, 300_000];
const MAX_INTERVAL_MS: u64 = 86_400_000;
const MAX_BATCH_SIZE: usize = 1_000;
const MAX_RETRIES: u32 = 100;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// How long a change of each priority may wait before it must be on its way, indexed by [`Priority`].
    pub intervals_ms: [u64; 4],
    /// Changes per request at most.
    pub batch_size: usize,
    /// Transient failures a change survives: it is attempted at most `1 + max_retries` times, then moved to
    /// the failed list.
    pub max_retries: u32,
    pub backoff: Backoff,
    /// Parent tables of each table: a batch that carries a child carries its parents' earlier changes first.
    pub parents: FastMap<String, Vec<String>>,
    /// Which writes that are not due yet ride along with a request that goes out anyway (see [`Fill`]).
    pub fill: Fill,
    /// Seed of the backoff jitter; the shell passes entropy, tests pass a constant.
    pub seed: u64,
    /// What a conflict does to the write, per table; [`ConflictStrategy::LastWriterWins`] where unset.
    #[serde(default)]
    pub on_conflict: FastMap<String, ConflictStrategy>,
    /// How batches travel (rest, rpc, or the app's own `send`). Not part of what is stored: the shell sets it
    /// from the options at every start.
    #[serde(skip)]
    pub wire: WireConfig,
}

/// Which not-yet-due writes a request that goes out anyway also carries, up to `batch_size`. Measured by
/// `npm run bench:core` on bench/traces/editing.json (21 minutes of the demo's editing, instant server): due
/// only sends 143 requests writing 180 rows; all of them 120 requests, 196 rows (+8.9 %); records idle for
/// 1 s 123 requests, 184 rows (+2.2 %). A write sent early cannot absorb the edits that follow it, and a
/// record that has had no change for a second is one the person has moved away from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fill {
    /// Only what is due.
    DueOnly,
    /// Writes of records with no change for `idle_ms`.
    Idle { idle_ms: u64 },
    /// Any write, due or not.
    All,
}

/// A request looks this many times `batch_size` not-yet-due writes over for ones to carry, so that a
/// flush stays cheap however many writes wait.
pub const FILL_SCAN_FACTOR: usize = 4;

/// What becomes of a write the server did not take because its row is newer (or is missing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ConflictStrategy {
    /// The server's row stands; the app is told.
    #[default]
    LastWriterWins,
    /// The write is sent again without the last-writer-wins condition.
    ClientWins,
    /// The shell runs the app's merge function and queues its result; the engine drops the write.
    Merge,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            intervals_ms: DEFAULT_INTERVALS_MS,
            batch_size: 10,
            max_retries: 3,
            backoff: Backoff::default(),
            parents: FastMap::default(),
            fill: Fill::Idle { idle_ms: 1_000 },
            seed: 0,
            on_conflict: FastMap::default(),
            wire: WireConfig::default(),
        }
    }
}

impl Config {
    pub fn strategy(&self, table: &str) -> ConflictStrategy {
        self.on_conflict.get(table).copied().unwrap_or_default()
    }

    pub fn interval(&self, priority: Priority) -> u64 {
        self.intervals_ms[priority.index()]
    }

    /// Names the first bad option.
    pub fn validate(&self) -> Result<(), ArgumentError> {
        if let Some(p) = self.intervals_ms.iter().position(|&ms| ms > MAX_INTERVAL_MS) {
            return Err(ArgumentError::new(
                "syncIntervals",
                format!("[{p}] must be a number of milliseconds from 0 to {MAX_INTERVAL_MS}"),
            ));
        }
        if self.batch_size == 0 || self.batch_size > MAX_BATCH_SIZE {
            return Err(ArgumentError::new("batchSize", format!("must be an integer from 1 to {MAX_BATCH_SIZE}")));
        }
        if self.max_retries > MAX_RETRIES {
            return Err(ArgumentError::new("maxRetries", format!("must be an integer from 0 to {MAX_RETRIES}")));
        }
        if self.backoff.base_ms == 0 || self.backoff.max_ms < self.backoff.base_ms {
            return Err(ArgumentError::new("backoff", "needs 0 < baseMs <= maxMs"));
        }
        for (table, parents) in &self.parents {
            if table.is_empty() || parents.iter().any(|p| p.is_empty()) {
                return Err(ArgumentError::new("tables", "table names must be non-empty strings"));
            }
        }
        if let Some(table) = self.parents.keys().find(|t| self.ancestors(t).iter().any(|a| a == *t)) {
            return Err(ArgumentError::new(
                "tables",
                format!("parents of {} form a cycle", super::json::quoted(table)),
            ));
        }
        Ok(())
    }

    /// Every table above `table` in the parent graph (parents, their parents, ...), without duplicates.
    /// Terminates on cycles too, which `validate` uses to find them.
    pub fn ancestors(&self, table: &str) -> Vec<String> {
        let mut found: Vec<String> = Vec::new();
        let mut stack: Vec<&str> = vec![table];
        while let Some(t) = stack.pop() {
            for parent in self.parents.get(t).into_iter().flatten() {
                if !found.contains(parent) {
                    found.push(parent.clone());
                    stack.push(parent);
                }
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_parents(pairs: &[(&str, &[&str])]) -> Config {
        let parents = pairs.iter().map(|(t, ps)| (t.to_string(), ps.iter().map(|p| p.to_string()).collect())).collect();
        Config { parents, ..Config::default() }
    }

    #[test]
    fn names_each_bad_option() {
        let bad = [
            Config { batch_size: 0, ..Config::default() },
            Config { intervals_ms: [0, 0, 0, MAX_INTERVAL_MS + 1], ..Config::default() },
            Config { max_retries: 101, ..Config::default() },
            Config { backoff: Backoff { base_ms: 10, max_ms: 5 }, ..Config::default() },
            with_parents(&[("a", &["b"]), ("b", &["a"])]),
            with_parents(&[("a", &[""])]),
        ];
        let names: Vec<_> = bad.iter().map(|c| c.validate().unwrap_err().argument).collect();
        assert_eq!(names, ["batchSize", "syncIntervals", "maxRetries", "backoff", "tables", "tables"]);
        assert_eq!(Config::default().validate(), Ok(()));
    }

    #[test]
    fn ancestors_are_transitive() {
        let config = with_parents(&[("sets", &["blocks"]), ("blocks", &["sessions"]), ("sessions", &["plans"])]);
        let mut found = config.ancestors("sets");
        found.sort();
        assert_eq!(found, ["blocks", "plans", "sessions"]);
        assert!(config.ancestors("plans").is_empty());
    }
}
