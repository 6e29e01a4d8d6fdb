//! What an answer does to the writes of the batch in flight: confirmed, conflict, retried with backoff, or
//! moved to the failed list.

use super::outcome::{MISSING, TOO_LARGE};
use super::{ChangeOutcome, Conflict, ConflictReason, Engine, FailedEntry, Failure, Outcome, Resolution};
use crate::core::config::ConflictStrategy;
use crate::core::error::EngineError;
use crate::core::hash::FastMap;
use crate::core::merge::InsertOfExisting;
use crate::core::payload::Payload;
use crate::core::queue::Entry;

impl<P: Payload> Engine<P> {
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
        // Each seq's outcome (the last, should one come twice), found through a map of the scheduler's type:
        // a map to the outcomes themselves was one more hash table's code in the wasm.
        let mut by_seq: FastMap<u64, u64> = FastMap::default();
        let mut found: Vec<Option<Outcome<P>>> = Vec::with_capacity(outcomes.len());
        for (at, outcome) in outcomes.into_iter().enumerate() {
            by_seq.insert(outcome.seq, at as u64);
            found.push(Some(outcome.outcome));
        }
        let mut transient_failures = 0;
        let mut retry_after: Option<u64> = None;
        for entry in flight.entries.drain(..) {
            let outcome = by_seq.remove(&entry.seq).and_then(|at| found.get_mut(at as usize)).and_then(Option::take);
            let outcome = match (outcome, unauthorized) {
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
                    // Sending went on with a token: why it waited for one is history.
                    if self.last_error_is_auth && !self.needs_auth {
                        self.last_error = None;
                        self.last_error_is_auth = false;
                    }
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
                    self.last_error_is_auth = false;
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
            self.server_not_before = 0;
        } else if self.online {
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
            let delay = self.config.backoff.delay(self.consecutive_failures, retry_after, &mut self.rng);
            self.not_before = now.saturating_add(delay);
            let asked = retry_after.map_or(0, |ms| ms.min(crate::core::backoff::RETRY_AFTER_CAP_MS));
            self.server_not_before = now.saturating_add(asked);
        }
        self.changed = true;
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
        self.conflicts.push_back(Conflict {
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
                self.return_to_pending(Entry { force: true, deadline: now, seq, client: None, ..entry }, now);
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
        self.conflicts.drain(..).collect()
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
        self.last_error_is_auth = false;
        let blocked = self.pending.remove(&entry.key);
        self.failed_keys.insert(entry.key.clone(), FailedEntry { entry, failure, failed_at: now, blocked });
    }
}
