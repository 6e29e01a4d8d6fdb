//! The failed list: writes the server refused or that ran out of retries, until the app retries or
//! discards them.

use super::{Engine, FailedEntry};
use crate::core::merge::InsertOfExisting;
use crate::core::payload::Payload;
use crate::core::queue::{Entry, Key};
use crate::core::sort::sort_by_key;

impl<P: Payload> Engine<P> {
    /// Puts failed writes back in the queue, due now, with fresh attempts: all of them, or the one with
    /// `only` as its seq. A write blocked behind one merges into it. Returns how many were retried.
    pub fn retry_failed(&mut self, only: Option<u64>, now: u64) -> usize {
        let keys = self.failed_keys_in_order(only);
        let mut retried = 0;
        for key in keys {
            let Some(failed) = self.failed_keys.get(&key) else { continue };
            let entry = Entry { attempts: 0, deadline: now, ..failed.entry.clone() };
            let folded = match &failed.blocked {
                None => Some(entry),
                // Refused only when the blocked write is an insert after a failed insert or update; both stay
                // as they are until the caller discards one.
                Some(blocked) => match entry.then(blocked.clone(), false) {
                    Ok(folded) => folded,
                    Err(InsertOfExisting) => continue,
                },
            };
            self.failed_keys.remove(&key);
            if let Some(folded) = folded {
                self.pending.insert(folded);
            }
            retried += 1;
        }
        self.changed = true;
        retried
    }

    /// Drops failed writes (all, or the one with `only` as its seq); writes blocked behind them go ahead.
    /// Returns how many were dropped.
    pub fn discard_failed(&mut self, only: Option<u64>) -> usize {
        let keys = self.failed_keys_in_order(only);
        for key in &keys {
            if let Some(blocked) = self.failed_keys.remove(key).and_then(|failed| failed.blocked) {
                self.pending.insert(blocked);
            }
        }
        self.changed = true;
        keys.len()
    }

    /// The failed writes in send order.
    pub(super) fn failed_in_order(&self) -> Vec<&FailedEntry<P>> {
        let mut failed: Vec<&FailedEntry<P>> = self.failed_keys.values().collect();
        sort_by_key(&mut failed, |f| [f.entry.order, 0, 0]);
        failed
    }

    fn failed_keys_in_order(&self, only: Option<u64>) -> Vec<Key> {
        let failed = self.failed_in_order().into_iter();
        failed.filter(|f| only.is_none_or(|seq| f.entry.seq == seq)).map(|f| f.entry.key.clone()).collect()
    }
}
