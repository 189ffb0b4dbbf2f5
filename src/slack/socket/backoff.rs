//! How long to wait before reconnecting: 1 s, doubling after each failed attempt up to
//! 30 s, each wait stretched by up to a quarter at random so that many instances cut off at
//! once do not all come back in the same second. A connection that worked resets it.

use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

/// The reconnect delays of one Socket Mode task.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    pub const FIRST: Duration = Duration::from_secs(1);
    pub const MAX: Duration = Duration::from_secs(30);

    pub fn new() -> Self {
        Self { next: Self::FIRST }
    }

    /// Back to [`Backoff::FIRST`], after a connection that worked.
    pub fn reset(&mut self) {
        self.next = Self::FIRST;
    }

    /// The wait before the next attempt; the one after it is twice as long.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (base * 2).min(Self::MAX);
        (base + base.mul_f64(jitter() / 4.0)).min(Self::MAX)
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

/// A number in [0, 1), different on every call: each `RandomState` has fresh keys, so no
/// random-number crate (nor the clock) is needed for something this unimportant.
fn jitter() -> f64 {
    let bits = RandomState::new().hash_one(0u8) >> 11;
    // 53 bits: exactly representable, so the result stays below 1.
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_one_second_up_to_thirty_with_at_most_a_quarter_more() {
        let mut backoff = Backoff::new();
        let delays: Vec<Duration> = (0..8).map(|_| backoff.next_delay()).collect();
        let bases = [1, 2, 4, 8, 16, 30, 30, 30];
        for (delay, base) in delays.iter().zip(bases) {
            let base = Duration::from_secs(base);
            assert!(
                *delay >= base && *delay <= (base * 5 / 4).min(Backoff::MAX),
                "{delays:?}"
            );
        }
        backoff.reset();
        assert!(backoff.next_delay() < Duration::from_millis(1250));
    }

    #[test]
    fn jitter_stays_below_one() {
        assert!((0..1000).map(|_| jitter()).all(|j| (0.0..1.0).contains(&j)));
    }
}
