//! The port chat platforms implement to receive effects, and two implementations that need
//! no platform and render nothing: one that logs the effect, one that records (for tests and
//! dry runs).

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::connector::BoxFuture;
use crate::domain::card::{CardKey, PostedCard};
use crate::domain::effect::Effect;

/// The interactive messages a delivery posted, to be recorded (and updated later).
pub type Posted = Vec<(CardKey, PostedCard)>;

/// Why a chat effect was not delivered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    /// The platform may accept it later (down, rate limited): the outbox retries, not
    /// before `retry_after` when the platform said how long to wait (Slack's 429).
    #[error("{message}")]
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
    /// It can never be delivered (no such user, bot removed): it is dropped and logged.
    #[error("{0}")]
    Permanent(String),
}

impl ChatError {
    /// A failure worth retrying after the outbox's usual backoff.
    pub fn transient(message: impl Into<String>) -> Self {
        ChatError::Transient {
            message: message.into(),
            retry_after: None,
        }
    }

    /// A failure worth retrying, but not before `retry_after` (when known).
    pub fn rate_limited(message: impl Into<String>, retry_after: Option<Duration>) -> Self {
        ChatError::Transient {
            message: message.into(),
            retry_after,
        }
    }
}

/// Where cards, DMs and alerts go.
///
/// Contract: `key` is the same for every attempt at one effect, so an implementation that
/// already delivered it (a timeout whose post did arrive) must not deliver it again.
/// `attempt` counts from 1; a retry (`attempt > 1`) is when an implementation should look
/// for a delivery whose answer was lost before delivering again. A
/// delivery returns the cards it posted (what to update when the request is decided); the
/// outbox records them with the effect's completion. An
/// implementation does not retry by itself; it says `Transient` and the outbox retries with
/// backoff, so a platform that is down delays messages without blocking any decision.
pub trait ChatPort: Send + Sync + 'static {
    fn deliver<'a>(
        &'a self,
        effect: &'a Effect,
        key: &'a str,
        attempt: u32,
    ) -> BoxFuture<'a, Result<Posted, ChatError>>;
}

/// Writes which effect it was given to the log, as data: for tests and benches that need a
/// chat port and have nothing to render with. `serve` without a chat platform writes the
/// messages themselves, as people would read them (`chat::deliver::LogPort`).
#[derive(Debug, Default)]
pub struct LogChat;

impl ChatPort for LogChat {
    fn deliver<'a>(
        &'a self,
        effect: &'a Effect,
        key: &'a str,
        attempt: u32,
    ) -> BoxFuture<'a, Result<Posted, ChatError>> {
        Box::pin(async move {
            tracing::debug!(%key, attempt, ?effect, "chat effect (not delivered anywhere)");
            Ok(Vec::new())
        })
    }
}

/// Records what it delivered, once per key, and can be told to fail.
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
