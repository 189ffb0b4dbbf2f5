//! The port chat platforms implement to receive effects, and one implementation that needs no
//! platform and renders nothing: it logs the effect (`RecordingChat`, for tests, records it).

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
