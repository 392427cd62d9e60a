//! The one backoff routine: feeds reconnecting or re-polling, and the outbox retrying an action,
//! wait by the same rule.

use std::time::Duration;

use rand::Rng;

/// Exponential backoff between `min` and `max`: after `n` failures in a row the wait is
/// `min * 2^(n-1)`, capped at `max`, with "equal jitter" (half of it fixed, half random) so
/// that many feeds or workstations that failed together do not retry in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    min: Duration,
    max: Duration,
}

impl Backoff {
    /// A backoff that starts at `min` and never waits longer than `max` (at least `min`).
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff { min, max: max.max(min) }
    }

    /// The wait after `failures` failed attempts in a row (the first failure is 1).
    pub fn delay(&self, failures: u32) -> Duration {
        let min = self.min.as_millis() as u64;
        let exp = min.saturating_mul(1u64 << failures.saturating_sub(1).min(20));
        let capped = exp.min(self.max.as_millis() as u64).max(1);
        let half = capped / 2;
        Duration::from_millis(half + rand::rng().random_range(0..=capped - half))
    }
}

/// A [`Backoff`] that counts its own failures, for a loop that reconnects: each
/// [`Retry::next_delay`] waits longer, and [`Retry::reset`] after a success starts over.
#[derive(Debug, Clone)]
pub struct Retry {
    backoff: Backoff,
    failures: u32,
}

impl Retry {
    /// Starts with no failures.
    pub fn new(min: Duration, max: Duration) -> Retry {
        Retry {
            backoff: Backoff::new(min, max),
            failures: 0,
        }
    }

    /// The wait before the next attempt, after one more failure.
    pub fn next_delay(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        self.backoff.delay(self.failures)
    }

    /// After a success, start again from the minimum.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_within_equal_jitter_up_to_the_cap() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1_000));
        for _ in 0..200 {
            for (failures, full) in [(1, 100), (2, 200), (3, 400), (4, 800), (5, 1_000), (40, 1_000)] {
                let d = b.delay(failures).as_millis() as u64;
                assert!(
                    (full / 2..=full).contains(&d),
                    "failure {failures}: {d} ms is not within [{}, {full}]",
                    full / 2
                );
            }
        }
    }

    #[test]
    fn a_retry_grows_and_starts_over_after_a_success() {
        let mut r = Retry::new(Duration::from_millis(100), Duration::from_secs(30));
        let waits: Vec<u64> = (0..4).map(|_| r.next_delay().as_millis() as u64).collect();
        assert!(waits[3] >= 400, "the fourth wait is at least half of 800 ms: {waits:?}");
        r.reset();
        assert!(r.next_delay() <= Duration::from_millis(100));
    }
}
