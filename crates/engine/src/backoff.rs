//! Retry delays: exponential with jitter, capped, and never shorter than a provider's
//! `Retry-After`.

use std::time::Duration;

use rand::Rng;

/// Exponential backoff with "equal jitter": half the delay is fixed, half random, so retries of
/// many tasks that failed together spread out without ever retrying at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(2),
            max: Duration::from_secs(300),
        }
    }
}

impl Backoff {
    /// The delay before the next attempt, after `attempt` attempts failed (1 = first failure).
    pub fn delay(&self, attempt: i32, retry_after: Option<Duration>) -> Duration {
        let exponent = u32::try_from(attempt.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        let full = self
            .base
            .saturating_mul(2u32.saturating_pow(exponent))
            .min(self.max);
        let half = full / 2;
        let jitter = if half.is_zero() {
            Duration::ZERO
        } else {
            Duration::from_nanos(rand::rng().random_range(0..=half.as_nanos() as u64))
        };
        let delay = half + jitter;
        match retry_after {
            Some(after) => delay.max(after.min(self.max.max(after))),
            None => delay,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_within_jitter_bounds() {
        let backoff = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(10),
        };
        for attempt in 1..=5 {
            let full = Duration::from_millis(100 * 2u64.pow(attempt as u32 - 1));
            for _ in 0..50 {
                let delay = backoff.delay(attempt, None);
                assert!(delay >= full / 2 && delay <= full, "{attempt}: {delay:?}");
            }
        }
        assert!(backoff.delay(40, None) <= Duration::from_secs(10));
    }

    #[test]
    fn honours_retry_after() {
        let backoff = Backoff {
            base: Duration::from_millis(10),
            max: Duration::from_secs(1),
        };
        let delay = backoff.delay(1, Some(Duration::from_secs(3)));
        assert_eq!(delay, Duration::from_secs(3));
    }
}
