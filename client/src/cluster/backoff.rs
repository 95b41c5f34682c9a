//! Exponential backoff with jitter, as the Java client's `ExponentialBackoff`: the wait doubles
//! per failure from `base` up to `max`, then is spread by ±20% so that many clients that failed
//! together do not retry together.

use std::time::Duration;

/// Backoff settings and state.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    /// A backoff starting at `base` and capped at `max` (Java's `reconnect.backoff.ms` 50 and
    /// `reconnect.backoff.max.ms` 1000 by default).
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max: max.max(base),
            failures: 0,
        }
    }

    /// Records a failure and returns how long to wait before the next attempt.
    pub fn fail(&mut self) -> Duration {
        let exp = self.failures.min(20);
        self.failures = self.failures.saturating_add(1);
        let raw = self.base.saturating_mul(1 << exp).min(self.max);
        let jitter = 0.8 + 0.4 * rand::random::<f64>();
        raw.mul_f64(jitter)
    }

    /// Records a success: the next failure waits `base` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_jitter() {
        let mut b = Backoff::new(Duration::from_millis(50), Duration::from_millis(1000));
        let waits: Vec<u128> = (0..8).map(|_| b.fail().as_millis()).collect();
        for (i, w) in waits.iter().enumerate() {
            let raw = (50u128 << i).min(1000);
            assert!(
                *w >= raw * 8 / 10 - 1 && *w <= raw * 12 / 10 + 1,
                "attempt {i}: {w} ms"
            );
        }
        b.reset();
        assert!(b.fail() <= Duration::from_millis(61));
    }
}
