//! One attempt at an effect, or at a batch of revocations through one connector: the call,
//! with its deadline, and what to write back — done (with the result's commit) or a retry.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, TimeDelta, Utc};
use tracing::Instrument;

use super::queue::Pool;
use super::worker::Worker;
use super::{ChatError, PROVISION_ATTEMPTS, Posted, REVOKE_ATTEMPTS, backoff_within};
use crate::connector::{Action, Connector, ConnectorCall, ConnectorError, PersonRef};
use crate::domain::card::CardKey;
use crate::domain::effect::Effect;
use crate::domain::grant::{Grant, GrantState};
use crate::domain::ids::{ConnectorId, GrantId};
use crate::engine::EngineError;
use crate::metrics::CallOutcome;
use crate::store::{Commit, OutboxEntry};

/// How long delivering one chat effect may take, all its platform calls together (each
/// has its own deadline of about 10 s; a refresh may make a call per card).
pub const CHAT_DEADLINE: StdDuration = StdDuration::from_secs(120);
/// How much longer than its own `timeout` a connector call may take before the worker gives
/// up on it (a command connector's killed program is reaped for up to a second, for one).
pub const CONNECTOR_GRACE: StdDuration = StdDuration::from_secs(30);
/// The `timeout` assumed for a connector not built from gatehouse.toml.
const UNKNOWN_CONNECTOR_TIMEOUT: StdDuration = StdDuration::from_secs(60);

/// What to do with an entry after one attempt.
pub(super) enum Next {
    /// Done: remove it, applying this commit with the removal.
    Complete(Commit),
    /// Try again at this moment.
    Retry(DateTime<Utc>, String),
}

/// A grant's connector call, ready to make.
enum Prepared {
    /// The resource has no connector: nothing to call, this is the outcome.
    Nothing(String),
    Call {
        id: ConnectorId,
        connector: Arc<dyn Connector>,
        /// Boxed: a call carries the person's ids at every system, far larger than the rest.
        call: Box<ConnectorCall>,
    },
    /// The call cannot be made (its connector is not declared).
    Refused(ConnectorError),
}

impl Worker {
    /// One attempt at `entry`: what to do with it next. A retry waits from when the failure
    /// was known, not from when the attempt started: a slow call that ends in a 429 still
    /// waits all of its `Retry-After`.
    pub(super) async fn attempt(&self, entry: &OutboxEntry) -> Result<Next, EngineError> {
        let attempts = entry.attempts + 1;
        let attempts_told = self.chat_attempt(entry);
        let mut then = Commit::default();
        match &entry.effect {
            Effect::Provision { grant } => {
                let Some(grant) =
                    self.grant_in(*grant, |s| matches!(s, GrantState::Provisioning))?
                else {
                    return Ok(Next::Complete(then)); // revoked before it was given: nothing to do
                };
                let prepared = self.prepare(&grant, Action::Grant, &entry.key);
                match self.call(prepared, Action::Grant).await {
                    Ok(detail) => self.engine.provisioned(grant.id, &detail, &mut then)?,
                    Err(e) if e.is_transient() && attempts < PROVISION_ATTEMPTS => {
                        return Ok(Next::Retry(self.retry_at(entry, &e), e.to_string()));
                    }
                    Err(e) => self.engine.provisioning_failed(
                        grant.id,
                        &format!("{e} ({})", after_attempts(attempts)),
                        &mut then,
                    )?,
                }
            }
            Effect::Deprovision { grant } => {
                let Some(grant) = self.grant_in(*grant, revoking)? else {
                    return Ok(Next::Complete(then));
                };
                let prepared = self.prepare(&grant, Action::Revoke, &entry.key);
                let result = self.call(prepared, Action::Revoke).await;
                return self.revoked(entry, &grant, result);
            }
            chat => match self.deliver(chat, &entry.key, attempts_told).await {
                Ok(posted) => {
                    if attempts_told > 1 {
                        // An earlier attempt may have posted some of these cards (its answer
                        // lost, or another platform failing) before a refresh that could
                        // not know them: refresh them once they are recorded.
                        then.effects.extend(refreshes(&posted));
                    }
                    then.cards.extend(posted)
                }
                Err(ChatError::Transient {
                    message,
                    retry_after,
                }) => {
                    let answered = self.engine.now();
                    let at = not_before(self.backoff_at(entry, answered), answered, retry_after);
                    return Ok(Next::Retry(at, message));
                }
                Err(ChatError::Permanent(e)) => {
                    tracing::warn!(key = %entry.key, error = %e, "chat message dropped: it can never be delivered")
                }
            },
        }
        Ok(Next::Complete(then))
    }

    /// One attempt at each of `entries`, revocations of grants of connector `id`, made in as
    /// few calls as the connector can ([`Connector::revoke_many`]); what to do with each next,
    /// in order.
    pub(super) async fn attempt_revocations(
        &self,
        id: &ConnectorId,
        entries: &[OutboxEntry],
    ) -> Vec<Result<Next, EngineError>> {
        let mut results: Vec<Option<Result<Next, EngineError>>> =
            entries.iter().map(|_| None).collect();
        let mut batch: Vec<(usize, Grant, ConnectorCall)> = Vec::new();
        let mut batch_connector = None;
        for (at, entry) in entries.iter().enumerate() {
            let Effect::Deprovision { grant } = &entry.effect else {
                results[at] = Some(self.attempt(entry).await);
                continue;
            };
            let grant = match self.grant_in(*grant, revoking) {
                Err(e) => {
                    results[at] = Some(Err(e));
                    continue;
                }
                Ok(None) => {
                    results[at] = Some(Ok(Next::Complete(Commit::default())));
                    continue;
                }
                Ok(Some(grant)) => grant,
            };
            match self.prepare(&grant, Action::Revoke, &entry.key) {
                Prepared::Call {
                    id: called,
                    connector,
                    call,
                } if &called == id => {
                    batch_connector = Some(connector);
                    batch.push((at, grant, *call));
                }
                // Its resource moved to another connector since it was queued: alone.
                other => {
                    let result = self.call(other, Action::Revoke).await;
                    results[at] = Some(self.revoked(entry, &grant, result));
                }
            }
        }
        if let Some(connector) = batch_connector {
            let calls: Vec<ConnectorCall> = batch.iter().map(|(_, _, call)| call.clone()).collect();
            let span =
                tracing::info_span!("revoke_batch", connector = %id, revocations = calls.len());
            let answers = self
                .call_many(id, connector.as_ref(), &calls)
                .instrument(span)
                .await;
            for ((at, grant, _), answer) in batch.into_iter().zip(answers) {
                results[at] = Some(self.revoked(&entries[at], &grant, answer));
            }
        }
        results
            .into_iter()
            .map(|result| {
                result.unwrap_or_else(|| {
                    Err(EngineError::Store(crate::store::StoreError::Sled(
                        sled::Error::ReportableBug("a revocation of a batch had no result".into()),
                    )))
                })
            })
            .collect()
    }

    /// What follows the revocation of `grant` (`entry`) answered `result`.
    fn revoked(
        &self,
        entry: &OutboxEntry,
        grant: &Grant,
        result: Result<String, ConnectorError>,
    ) -> Result<Next, EngineError> {
        let attempts = entry.attempts + 1;
        let mut then = Commit::default();
        match result {
            Ok(detail) => self.engine.deprovisioned(grant.id, &detail, &mut then)?,
            Err(e) if attempts < REVOKE_ATTEMPTS => {
                return Ok(Next::Retry(self.retry_at(entry, &e), e.to_string()));
            }
            Err(e) => {
                if attempts == REVOKE_ATTEMPTS {
                    self.engine
                        .revocation_failing(grant.id, &e.to_string(), attempts)?;
                }
                let tomorrow = self.engine.now() + TimeDelta::days(1);
                return Ok(Next::Retry(tomorrow, e.to_string()));
            }
        }
        Ok(Next::Complete(then))
    }

    /// When to try `entry` again after the connector answered `error` (now): after the
    /// backoff, and not before the wait it asked for.
    fn retry_at(&self, entry: &OutboxEntry, error: &ConnectorError) -> DateTime<Utc> {
        let answered = self.engine.now();
        not_before(
            self.backoff_at(entry, answered),
            answered,
            error.retry_after(),
        )
    }

    fn backoff_at(&self, entry: &OutboxEntry, failed_at: DateTime<Utc>) -> DateTime<Utc> {
        failed_at + backoff_within(entry.attempts, entry.seq, self.max_backoff)
    }

    /// Delivers a chat effect, giving up after [`CHAT_DEADLINE`].
    async fn deliver(&self, effect: &Effect, key: &str, attempt: u32) -> Result<Posted, ChatError> {
        let delivery = self.chat.deliver(effect, key, attempt);
        match tokio::time::timeout(CHAT_DEADLINE, delivery).await {
            Ok(delivered) => delivered,
            Err(_) => Err(ChatError::transient(format!(
                "the chat platform gave no answer within {}s",
                CHAT_DEADLINE.as_secs()
            ))),
        }
    }

    /// How long a call of connector `id` may take before the worker gives up on it.
    fn connector_deadline(&self, id: &ConnectorId) -> StdDuration {
        let timeout = self.connectors.current().timeout(id);
        timeout.unwrap_or(UNKNOWN_CONNECTOR_TIMEOUT) + CONNECTOR_GRACE
    }

    fn grant_in(
        &self,
        id: GrantId,
        state: fn(&GrantState) -> bool,
    ) -> Result<Option<Grant>, EngineError> {
        let grant = self.engine.store().grant(id)?.map(|g| g.value);
        if let Some(grant) = &grant {
            tracing::Span::current().record("request", tracing::field::display(grant.request));
        }
        Ok(grant.filter(|g| state(&g.state)))
    }

    /// The call that gives or takes back `grant` through its resource's connector.
    fn prepare(&self, grant: &Grant, action: Action, key: &str) -> Prepared {
        let world = self.engine.world();
        let Some(id) = world
            .policy
            .resource(&grant.resource)
            .and_then(|r| r.connector.clone())
        else {
            return Prepared::Nothing(format!(
                "{} has no connector: recorded in Gatehouse only",
                grant.resource
            ));
        };
        let Some(connector) = self.connectors.get(&id) else {
            return Prepared::Refused(ConnectorError::Permanent(format!(
                "connector `{id}` is not declared in gatehouse.toml"
            )));
        };
        let person = match world.directory.person(&grant.person) {
            Some(p) => PersonRef::from_person(p),
            None => PersonRef {
                id: grant.person.clone(),
                email: None,
                slack: None,
                discord: None,
                accounts: Default::default(),
            },
        };
        let call = Box::new(ConnectorCall::for_grant(action, grant, person, key));
        Prepared::Call {
            id,
            connector,
            call,
        }
    }

    /// Makes a prepared call, giving up at the connector's deadline.
    async fn call(&self, prepared: Prepared, action: Action) -> Result<String, ConnectorError> {
        let (id, connector, call) = match prepared {
            Prepared::Nothing(detail) => return Ok(detail),
            Prepared::Refused(error) => return Err(error),
            Prepared::Call {
                id,
                connector,
                call,
            } => (id, connector, call),
        };
        let deadline = self.connector_deadline(&id);
        let result = match tokio::time::timeout(deadline, connector.execute(&call)).await {
            Ok(result) => result.map(|outcome| outcome.detail),
            Err(_) => Err(gave_no_answer(&id, deadline)),
        };
        self.answered(&id, action, &result);
        result
    }

    /// Makes the revocations `calls` through `connector` (`id`) together, giving up at the
    /// connector's deadline; one answer per call.
    async fn call_many(
        &self,
        id: &ConnectorId,
        connector: &dyn Connector,
        calls: &[ConnectorCall],
    ) -> Vec<Result<String, ConnectorError>> {
        let deadline = self.connector_deadline(id);
        let answers = match tokio::time::timeout(deadline, connector.revoke_many(calls)).await {
            Ok(answers) if answers.len() == calls.len() => answers
                .into_iter()
                .map(|answer| answer.map(|outcome| outcome.detail))
                .collect(),
            Ok(answers) => {
                // The connector broke its contract: each is made again.
                let error = ConnectorError::Transient(format!(
                    "connector `{id}` answered {} of {} revocations made together (will retry)",
                    answers.len(),
                    calls.len()
                ));
                calls.iter().map(|_| Err(error.clone())).collect()
            }
            Err(_) => {
                let error = gave_no_answer(id, deadline);
                calls.iter().map(|_| Err(error.clone())).collect()
            }
        };
        for answer in &answers {
            self.answered(id, Action::Revoke, answer);
        }
        answers
    }

    /// Counts an answer of connector `id`; a target that asked to be left alone for a while
    /// gets no call before it is over.
    fn answered(&self, id: &ConnectorId, action: Action, result: &Result<String, ConnectorError>) {
        let outcome = match result {
            Ok(_) => CallOutcome::Ok,
            Err(ConnectorError::Permanent(_)) => CallOutcome::PermanentError,
            Err(_) => CallOutcome::TransientError,
        };
        let metrics = self.engine.metrics();
        metrics.connector_call(id.as_str(), action.as_str(), outcome);
        if let Some(wait) = result.as_ref().err().and_then(ConnectorError::retry_after) {
            let until = tokio::time::Instant::now() + wait;
            self.gates()
                .pause(&Pool::Connector(Some(id.clone())), until);
            tracing::info!(connector = %id, wait_ms = wait.as_millis() as u64, "connector asked to slow down; its calls wait");
        }
    }
}

fn revoking(state: &GrantState) -> bool {
    matches!(state, GrantState::Revoking { .. })
}

fn gave_no_answer(id: &ConnectorId, deadline: StdDuration) -> ConnectorError {
    ConnectorError::Transient(format!(
        "connector `{id}` gave no answer within {}s (will retry)",
        deadline.as_secs()
    ))
}

/// `after 1 attempt`, `after 8 attempts`.
fn after_attempts(attempts: u32) -> String {
    match attempts {
        1 => "after 1 attempt".to_owned(),
        n => format!("after {n} attempts"),
    }
}

/// The refresh of every kind of card in `posted`, once each.
fn refreshes(posted: &super::Posted) -> Vec<Effect> {
    let mut keys: Vec<&CardKey> = posted.iter().map(|(key, _)| key).collect();
    keys.sort_by_key(|k| k.to_string());
    keys.dedup();
    keys.into_iter()
        .map(|key| match *key {
            CardKey::Request { request } => Effect::RefreshCards { request },
            CardKey::Grant { grant } => Effect::RefreshGrantCards { grant },
            CardKey::Review { campaign, grant } => Effect::RefreshReviewCards { campaign, grant },
        })
        .collect()
}

/// The later of the backoff's moment and the wait the platform asked for (a 429's
/// Retry-After): retrying sooner would only be refused again.
fn not_before(
    backoff_at: DateTime<Utc>,
    now: DateTime<Utc>,
    retry_after: Option<StdDuration>,
) -> DateTime<Utc> {
    let asked = retry_after
        .and_then(|wait| TimeDelta::from_std(wait).ok())
        .map(|wait| now + wait);
    asked.map_or(backoff_at, |asked| asked.max(backoff_at))
}

#[cfg(test)]
mod retry_after_tests {
    use super::*;

    #[test]
    fn one_attempt_is_one_attempt() {
        assert_eq!(after_attempts(1), "after 1 attempt");
        assert_eq!(after_attempts(8), "after 8 attempts");
    }

    #[test]
    fn a_retry_waits_for_the_longer_of_backoff_and_retry_after() {
        let now = crate::engine::testing::start();
        let backoff_at = now + TimeDelta::seconds(1);
        let asked = Some(StdDuration::from_secs(2));
        assert_eq!(
            not_before(backoff_at, now, asked),
            now + TimeDelta::seconds(2)
        );
        let short = Some(StdDuration::from_millis(100));
        assert_eq!(not_before(backoff_at, now, short), backoff_at);
        assert_eq!(not_before(backoff_at, now, None), backoff_at);
    }
}
