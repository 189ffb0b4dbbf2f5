//! A chat port that records what it delivered, for tests (behind `cfg(test)` or the `testing`
//! feature: never in the product).

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::{ChatError, ChatPort, Posted};
use crate::connector::BoxFuture;
use crate::domain::effect::Effect;

/// Records what it delivered, once per key, and can be told to fail. Only in tests (and with
/// the `testing` feature).
#[derive(Debug, Default)]
pub struct RecordingChat {
    delivered: Mutex<Vec<(String, Effect)>>,
    keys: Mutex<BTreeSet<String>>,
    attempts: AtomicUsize,
    failures_left: AtomicUsize,
    /// What the scripted failures ask the outbox to wait, like a 429's Retry-After.
    retry_after: Mutex<Option<Duration>>,
}

impl RecordingChat {
    /// The next `n` deliveries fail as if the platform were down.
    pub fn fail_next(&self, n: usize) {
        self.failures_left.store(n, Ordering::SeqCst);
    }

    /// The next `n` deliveries fail as if rate limited, asking for a wait of `retry_after`.
    pub fn rate_limit_next(&self, n: usize, retry_after: Duration) {
        *self.retry_after.lock().unwrap_or_else(|p| p.into_inner()) = Some(retry_after);
        self.fail_next(n);
    }

    /// What was delivered, in order, each effect once.
    pub fn delivered(&self) -> Vec<Effect> {
        self.delivered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// Every call, including failed ones and repeats.
    pub fn attempts(&self) -> usize {
        self.attempts.load(Ordering::SeqCst)
    }
}

impl ChatPort for RecordingChat {
    fn deliver<'a>(
        &'a self,
        effect: &'a Effect,
        key: &'a str,
        _attempt: u32,
    ) -> BoxFuture<'a, Result<Posted, ChatError>> {
        Box::pin(async move {
            self.attempts.fetch_add(1, Ordering::SeqCst);
            let failing = self
                .failures_left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if failing {
                let retry_after = *self.retry_after.lock().unwrap_or_else(|p| p.into_inner());
                return Err(match retry_after {
                    Some(wait) => ChatError::rate_limited("rate limited (test)", Some(wait)),
                    None => ChatError::transient("the platform is down (test)"),
                });
            }
            if self
                .keys
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key.to_owned())
            {
                self.delivered
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((key.to_owned(), effect.clone()));
            }
            Ok(Vec::new())
        })
    }
}
