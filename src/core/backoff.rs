//! Exponential backoff with "equal jitter": each wait is half the exponential step plus a random share of the
//! other half, so clients that failed together do not retry together, yet never retry sooner than half a step.

use serde::{Deserialize, Serialize};

/// A server may ask for a long pause; beyond an hour the edits would look lost to the user, so we cap it.
pub const RETRY_AFTER_CAP_MS: u64 = 3_600_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backoff {
    /// The first wait, before jitter.
    pub base_ms: u64,
    /// No wait is longer than this, before `Retry-After`.
    pub max_ms: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { base_ms: 1_000, max_ms: 60_000 }
    }
}

impl Backoff {
    /// The wait after the `failures`-th consecutive failure (1 for the first), honouring the server's
    /// `Retry-After` when it asks for longer.
    pub fn delay(&self, failures: u32, retry_after_ms: Option<u64>, rng: &mut fastrand::Rng) -> u64 {
        let doublings = failures.saturating_sub(1).min(32);
        let step = self.base_ms.saturating_mul(1u64 << doublings).min(self.max_ms);
        let half = step / 2;
        let jittered = half + rng.u64(0..=step - half);
        jittered.max(retry_after_ms.unwrap_or(0).min(RETRY_AFTER_CAP_MS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delays(failures: u32, retry_after: Option<u64>) -> (u64, u64) {
        let backoff = Backoff { base_ms: 1_000, max_ms: 8_000 };
        let mut rng = fastrand::Rng::with_seed(7);
        let samples: Vec<u64> = (0..2_000).map(|_| backoff.delay(failures, retry_after, &mut rng)).collect();
        (*samples.iter().min().unwrap(), *samples.iter().max().unwrap())
    }

    /// Every sample lies in [step / 2, step], and the samples reach close to both ends.
    fn assert_spread(failures: u32, step: u64) {
        let (low, high) = delays(failures, None);
        assert!(low >= step / 2 && high <= step, "{failures}: {low}..{high} outside {}..{step}", step / 2);
        assert!(low < step / 2 + step / 50 && high > step - step / 50, "{failures}: {low}..{high} too narrow");
    }

    #[test]
    fn doubles_per_failure_within_half_to_full_step() {
        assert_spread(1, 1_000);
        assert_spread(2, 2_000);
        assert_spread(3, 4_000);
    }

    #[test]
    fn caps_at_max() {
        assert_spread(4, 8_000);
        assert_spread(40, 8_000);
        assert_spread(u32::MAX, 8_000);
    }

    #[test]
    fn retry_after_is_a_floor() {
        assert_eq!(delays(1, Some(30_000)), (30_000, 30_000));
        let (low, _) = delays(3, Some(100));
        assert!(low >= 2_000, "a short Retry-After does not shorten the backoff");
    }

    #[test]
    fn retry_after_is_capped() {
        assert_eq!(delays(1, Some(u64::MAX)), (RETRY_AFTER_CAP_MS, RETRY_AFTER_CAP_MS));
    }

    #[test]
    fn jitter_spreads_clients() {
        let backoff = Backoff::default();
        let mut a = fastrand::Rng::with_seed(1);
        let mut b = fastrand::Rng::with_seed(2);
        let same = (0..50).filter(|_| backoff.delay(5, None, &mut a) == backoff.delay(5, None, &mut b)).count();
        assert!(same < 5);
    }
}
