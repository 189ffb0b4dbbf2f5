//! The outbox worker: executes the effects the engine committed — chat messages through a
//! [`ChatPort`], grants and revocations through [`crate::connector`] — after the commit, and
//! writes their results back through the engine. An effect leaves the outbox only in the
//! same transaction as its result, so a crash at any point leaves it there to be done again
//! on start; the effect's idempotency key, passed to the platform or connector, makes that
//! repeat harmless.
//!
//! Effects run concurrently, in lanes ([`crate::domain::effect::Lane`]): one at a time per
//! lane (the cards of one request, the connector calls of one grant, the DMs of one person,
//! the security channel), oldest first even while the oldest waits for a retry. Chat
//! messages and each connector's calls have capacity of their own
//! ([`crate::domain::effect::Class`]): up to [`CHAT_CONCURRENT`] messages at once, alerts
//! first, and per connector its `max_concurrent` and `max_per_second`, revocations first; a
//! connector that answers 429 with `Retry-After` gets no call until the wait is over. So a
//! slow or flooded target holds up only its own calls, never a card, an alert or another
//! target. Results are written many at a time (one write, one flush), and every attempt has
//! a deadline, so an unanswered one does not hold its lane for ever. The worker keeps a
//! bounded window of the queue in memory, chat and connector calls apart, and reads on as
//! entries leave; a reload that moves a resource to another connector moves its queued calls
//! to that connector's limits.
//!
//! Failures are retried with exponential backoff and jitter. A grant that still cannot be
//! provisioned after [`PROVISION_ATTEMPTS`] (or fails permanently) is marked failed and
//! alerted. A revocation that still fails after [`REVOKE_ATTEMPTS`] is alerted as possibly
//! irrevocable and then retried daily, forever: access must never silently stay. Chat
//! messages are retried until delivered, without ever holding up a decision.

mod attempt;
mod chat;
mod gates;
mod queue;
#[cfg(any(test, feature = "testing"))]
mod recording;
mod span;
mod worker;

use chrono::TimeDelta;

use crate::backoff::Backoff;

pub use chat::{ChatError, ChatPort, LogChat, Posted};
#[cfg(any(test, feature = "testing"))]
pub use recording::RecordingChat;
pub use worker::{CHAT_CONCURRENT, CHAT_DEADLINE, CONNECTOR_GRACE, Worker, spawn};

pub use crate::domain::grant::REVOKE_ATTEMPTS;

/// Attempts at provisioning before the grant is marked failed.
pub const PROVISION_ATTEMPTS: u32 = 8;
/// The longest wait between two attempts (but for daily revocation retries).
pub const MAX_BACKOFF: TimeDelta = TimeDelta::minutes(10);

/// The outbox's waits between attempts: 1 s, doubling up to [`MAX_BACKOFF`], each between half
/// and one and a half times that (at most the longest wait) so that effects failing together do
/// not retry together.
pub const RETRY: Backoff = Backoff::new(
    std::time::Duration::from_secs(1),
    std::time::Duration::from_secs(600),
)
.jitter(-0.5, 0.5);

/// The wait before attempt `attempts + 1` of the effect numbered `seq`, by [`RETRY`].
pub fn backoff(attempts: u32, seq: u64) -> TimeDelta {
    backoff_within(attempts, seq, MAX_BACKOFF)
}

/// [`backoff`] with `max` instead of [`MAX_BACKOFF`] (`[outbox] max_backoff`).
pub fn backoff_within(attempts: u32, seq: u64, max: TimeDelta) -> TimeDelta {
    let policy = RETRY.at_most(max.to_std().unwrap_or(RETRY.max()));
    TimeDelta::from_std(policy.delay_salted(attempts, seq)).unwrap_or(max)
}

#[cfg(test)]
mod classes_tests;
#[cfg(test)]
mod deadline_tests;
#[cfg(test)]
mod lanes_tests;
#[cfg(test)]
mod tests;
