//! One policy for every wait before trying again: exponential from `first`, doubling after
//! each failed attempt up to `max`, each wait stretched at random within the policy's jitter so
//! that many instances (or effects) that failed together do not come back in the same second,
//! and never longer than `max`, jitter included.
//!
//! Who uses it: Slack Socket Mode and the Discord gateway reconnecting, the Discord command
//! registration retrying, and the outbox scheduling its next attempt at an effect (a function of
//! the attempt count, [`crate::outbox::backoff_within`], since the count is stored).

use std::hash::{BuildHasher, Hash, RandomState};
use std::time::Duration;

/// A backoff policy: the waits, not the waiting (see [`Retries`] for a loop's count).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    /// A wait is its base times a factor drawn from `1 + low` (inclusive) to `1 + high`.
    low: f64,
    high: f64,
}

impl Backoff {
    /// `first` after the first failure, doubling up to `max`; no jitter until
    /// [`Backoff::jitter`] adds some.
    pub const fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            low: 0.0,
            high: 0.0,
        }
    }

    /// Each wait stretched by a factor between `1 + low` and `1 + high`: `(0.0, 0.25)` adds up
    /// to a quarter, `(-0.5, 0.5)` spreads it from half to one and a half.
    pub const fn jitter(self, low: f64, high: f64) -> Self {
        Self { low, high, ..self }
    }

    /// The same policy with another longest wait (`[outbox] max_backoff`).
    pub const fn at_most(self, max: Duration) -> Self {
        Self { max, ..self }
    }

    pub fn max(&self) -> Duration {
        self.max
    }

    /// The wait before attempt `failures + 1` without jitter: `first · 2^failures`, at most
    /// `max`.
    pub fn base(&self, failures: u32) -> Duration {
        let doubled = 2u32.checked_pow(failures).unwrap_or(u32::MAX);
        self.first.saturating_mul(doubled).min(self.max)
    }

    /// The wait after `failures` failed attempts, with jitter drawn at random.
    pub fn delay(&self, failures: u32) -> Duration {
        self.delay_drawn(failures, random_unit(failures))
    }

    /// [`Backoff::delay`], with `salt` (an effect's sequence number) mixed into the draw.
    pub fn delay_salted(&self, failures: u32, salt: impl Hash) -> Duration {
        self.delay_drawn(failures, random_unit((salt, failures)))
    }

    /// The wait after `failures` failed attempts when the draw is `unit`, in [0, 1): 0 picks
    /// the factor `1 + low`, towards 1 the factor `1 + high`.
    fn delay_drawn(&self, failures: u32, unit: f64) -> Duration {
        let factor = 1.0 + self.low + (self.high - self.low) * unit.clamp(0.0, 1.0);
        self.base(failures).mul_f64(factor.max(0.0)).min(self.max)
    }
}

/// A retry loop's count of failures under a [`Backoff`]: the next wait, and back to the first
/// after a success.
#[derive(Debug)]
pub struct Retries {
    policy: Backoff,
    failures: u32,
}

impl Retries {
    pub fn new(policy: Backoff) -> Self {
        Self {
            policy,
            failures: 0,
        }
    }

    /// Back to the first wait, after an attempt that worked.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// The wait before the next attempt; the one after it is (about) twice as long.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.policy.delay(self.failures);
        self.failures = self.failures.saturating_add(1);
        delay
    }
}

/// A number in [0, 1), different on every call: each `RandomState` has fresh keys, so no
/// random-number crate (nor the clock) is needed for something this unimportant.
fn random_unit(salt: impl Hash) -> f64 {
    let bits = RandomState::new().hash_one(salt) >> 11;
    // 53 bits: exactly representable, so the result stays below 1.
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests;
