//! The retry policy for temporary failures: a pure function of the attempt count, the
//! item's age and a jitter fraction. Never reads the clock (the caller passes `now`), never
//! sleeps, never fails.
//!
//! The schedule is Postfix's: the delay doubles from `min_backoff` (5 min) up to
//! `max_backoff` (4000 s), each delay spread by ±25 % so that a burst of deferred items does
//! not come back at the same instant; an item older than `max_age` (5 days) is given up.

use std::hash::{Hash, Hasher};
use std::time::Duration;

use jiff::Timestamp;

/// How temporary failures are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// Age (from the claim) after which a temporary failure parks the item.
    pub max_age: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            min_backoff: Duration::from_secs(300),
            max_backoff: Duration::from_secs(4000),
            max_age: Duration::from_secs(5 * 86_400),
        }
    }
}

/// What to do after the `attempts`-th temporary failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    RetryAt(Timestamp),
    /// The item is older than `max_age`: park it.
    GiveUp,
}

impl RetryPolicy {
    /// The delay before the next attempt after `attempts` failures (1 = the first), before
    /// jitter: `min_backoff * 2^(attempts-1)`, at most `max_backoff`.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let factor = 1u32.checked_shl(attempts.saturating_sub(1).min(31)).unwrap_or(u32::MAX);
        self.min_backoff.checked_mul(factor).unwrap_or(self.max_backoff).min(self.max_backoff)
    }

    /// Decides after a temporary failure. `jitter` in `[0, 1)` spreads the delay over
    /// 75 %..125 % of [`backoff`](Self::backoff) (still at most `max_backoff`); the retry is
    /// never scheduled after the item's expiry, so the last attempt happens at `max_age`.
    pub fn decide(&self, attempts: u32, first_seen: Timestamp, now: Timestamp, jitter: f64) -> Decision {
        let expiry = first_seen.checked_add(self.max_age).unwrap_or(Timestamp::MAX);
        if now >= expiry {
            return Decision::GiveUp;
        }
        let base = self.backoff(attempts);
        let spread = 0.75 + 0.5 * jitter.clamp(0.0, 1.0);
        let delay = base.mul_f64(spread).min(self.max_backoff).max(Duration::from_millis(1));
        let at = now.checked_add(delay).unwrap_or(Timestamp::MAX);
        Decision::RetryAt(at.min(expiry))
    }
}

/// A jitter fraction in `[0, 1)` for an item and attempt: stable (the same item retried
/// after a restart keeps its slot) and different between items.
pub fn jitter_for(item: &str, attempts: u32) -> f64 {
    let mut h = std::hash::DefaultHasher::new();
    (item, attempts).hash(&mut h);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let p = RetryPolicy::default();
        let secs: Vec<u64> = (1..=7).map(|n| p.backoff(n).as_secs()).collect();
        assert_eq!(secs, vec![300, 600, 1200, 2400, 4000, 4000, 4000]);
        assert_eq!(p.backoff(10_000), Duration::from_secs(4000));
        assert_eq!(p.backoff(0), Duration::from_secs(300));
    }

    #[test]
    fn jitter_spreads_within_a_quarter() {
        let p = RetryPolicy::default();
        assert_eq!(p.decide(1, t(0), t(10), 0.0), Decision::RetryAt(t(10 + 225)));
        assert_eq!(p.decide(1, t(0), t(10), 0.5), Decision::RetryAt(t(10 + 300)));
        assert_eq!(p.decide(2, t(0), t(10), 0.0), Decision::RetryAt(t(10 + 450)));
        // 125 % of 4000 s is capped at 4000 s.
        assert_eq!(p.decide(9, t(0), t(10), 0.999), Decision::RetryAt(t(10 + 4000)));
    }

    #[test]
    fn gives_up_at_max_age_and_never_schedules_past_it() {
        let p =
            RetryPolicy { min_backoff: Duration::from_secs(60), max_backoff: Duration::from_secs(600), max_age: Duration::from_secs(1000) };
        assert_eq!(p.decide(5, t(0), t(900), 0.5), Decision::RetryAt(t(1000)));
        assert_eq!(p.decide(6, t(0), t(1000), 0.5), Decision::GiveUp);
        assert_eq!(p.decide(1, t(0), t(5000), 0.5), Decision::GiveUp);
    }

    #[test]
    fn jitter_is_stable_per_item_and_in_range() {
        assert_eq!(jitter_for("a", 1), jitter_for("a", 1));
        assert_ne!(jitter_for("a", 1), jitter_for("b", 1));
        assert!((0..1000).map(|n| jitter_for("item", n)).all(|j| (0.0..1.0).contains(&j)));
    }
}
