//! Each pool's gate: how many of its calls run, how many may start this second, and whether
//! its target asked to be left alone (a 429's `Retry-After`). The limits are read at every
//! start, so that a reload that changes them applies from the next call on.
//!
//! Times are tokio's, not the engine's clock: these are the worker's own mechanics (the
//! engine's clock may be a test's, standing still), and tokio's clock can be paused in tests.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use super::queue::Pool;
use crate::connector::Limits;

/// Whether a call may start, and if not, until when it may not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Gate {
    Open,
    /// Until this moment (the rate, or a target's `Retry-After`).
    ClosedUntil(Instant),
    /// Until one of the pool's calls ends.
    Full,
}

#[derive(Debug, Default)]
struct PoolGate {
    running: usize,
    bucket: Option<Bucket>,
    paused_until: Option<Instant>,
}

/// A token bucket: `rate` starts a second, up to a second's worth at once (at least one).
#[derive(Debug)]
struct Bucket {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: f64, now: Instant) -> Self {
        Self {
            rate,
            tokens: Self::capacity(rate),
            at: now,
        }
    }

    fn capacity(rate: f64) -> f64 {
        rate.max(1.0)
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(Self::capacity(self.rate));
        self.at = now;
    }

    /// When the next token is there (`None`: now).
    fn next_token(&mut self, now: Instant) -> Option<Instant> {
        self.refill(now);
        if self.tokens >= 1.0 {
            return None;
        }
        let wait = (1.0 - self.tokens) / self.rate;
        Some(now + Duration::from_secs_f64(wait))
    }
}

#[derive(Debug, Default)]
pub(super) struct Gates {
    pools: HashMap<Pool, PoolGate>,
}

impl Gates {
    /// Whether a call of `pool` may start at `now` under `limits`.
    pub(super) fn check(&mut self, pool: &Pool, limits: Limits, now: Instant) -> Gate {
        let gate = self.pools.entry(pool.clone()).or_default();
        if let Some(until) = gate.paused_until {
            if until > now {
                return Gate::ClosedUntil(until);
            }
            gate.paused_until = None;
        }
        if gate.running >= limits.max_concurrent.max(1) {
            return Gate::Full;
        }
        match limits.max_per_second {
            None => gate.bucket = None,
            Some(rate) => {
                let bucket = gate.bucket.get_or_insert_with(|| Bucket::new(rate, now));
                if bucket.rate != rate {
                    // A reload changed it: the new rate from now, with what is left.
                    bucket.refill(now);
                    bucket.rate = rate;
                    bucket.tokens = bucket.tokens.min(Bucket::capacity(rate));
                }
                if let Some(at) = bucket.next_token(now) {
                    return Gate::ClosedUntil(at);
                }
            }
        }
        Gate::Open
    }

    /// A call of `pool` started (after [`Gates::check`] said it may).
    pub(super) fn started(&mut self, pool: &Pool) {
        let gate = self.pools.entry(pool.clone()).or_default();
        gate.running += 1;
        if let Some(bucket) = &mut gate.bucket {
            bucket.tokens -= 1.0;
        }
    }

    /// A call of `pool` ended.
    pub(super) fn ended(&mut self, pool: &Pool) {
        if let Some(gate) = self.pools.get_mut(pool) {
            gate.running = gate.running.saturating_sub(1);
        }
    }

    /// `pool`'s target asked that no call start before `until`.
    pub(super) fn pause(&mut self, pool: &Pool, until: Instant) {
        let gate = self.pools.entry(pool.clone()).or_default();
        gate.paused_until = Some(gate.paused_until.map_or(until, |u| u.max(until)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook() -> Pool {
        Pool::Connector(Some("hook".into()))
    }

    fn limits(max_concurrent: usize, max_per_second: Option<f64>) -> Limits {
        Limits {
            max_concurrent,
            max_per_second,
        }
    }

    #[test]
    fn no_more_calls_run_at_once_than_the_limit_and_one_ending_frees_a_place() {
        let mut gates = Gates::default();
        let now = Instant::now();
        for _ in 0..3 {
            assert_eq!(gates.check(&hook(), limits(3, None), now), Gate::Open);
            gates.started(&hook());
        }
        assert_eq!(gates.check(&hook(), limits(3, None), now), Gate::Full);
        assert_eq!(
            gates.check(&Pool::Chat, limits(3, None), now),
            Gate::Open,
            "another pool is not held back"
        );
        gates.ended(&hook());
        assert_eq!(gates.check(&hook(), limits(3, None), now), Gate::Open);
        assert_eq!(
            gates.check(&hook(), limits(2, None), now),
            Gate::Full,
            "a lower limit from a reload holds from the next start"
        );
    }

    #[test]
    fn calls_start_at_most_at_the_rate_after_a_first_second_s_worth() {
        let mut gates = Gates::default();
        let now = Instant::now();
        let two_a_second = limits(100, Some(2.0));
        for _ in 0..2 {
            assert_eq!(gates.check(&hook(), two_a_second, now), Gate::Open);
            gates.started(&hook());
        }
        assert_eq!(
            gates.check(&hook(), two_a_second, now),
            Gate::ClosedUntil(now + Duration::from_millis(500))
        );
        let later = now + Duration::from_millis(500);
        assert_eq!(gates.check(&hook(), two_a_second, later), Gate::Open);
        gates.started(&hook());
        let one_every_two_seconds = limits(100, Some(0.5));
        assert_eq!(
            gates.check(&hook(), one_every_two_seconds, later),
            Gate::ClosedUntil(later + Duration::from_secs(2))
        );
    }

    #[test]
    fn a_pause_asked_for_closes_the_pool_until_it_is_over() {
        let mut gates = Gates::default();
        let now = Instant::now();
        let until = now + Duration::from_secs(7);
        gates.pause(&hook(), until);
        gates.pause(&hook(), now + Duration::from_secs(1));
        assert_eq!(
            gates.check(&hook(), limits(5, None), now),
            Gate::ClosedUntil(until),
            "the longest wait asked for holds"
        );
        assert_eq!(gates.check(&Pool::Chat, limits(5, None), now), Gate::Open);
        assert_eq!(gates.check(&hook(), limits(5, None), until), Gate::Open);
    }
}
