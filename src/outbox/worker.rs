//! The worker loop: run what is due, sleep until the next attempt or the next commit.
//!
//! Every attempt has a deadline: the platforms' and connectors' clients give up by themselves
//! ([`crate::slack::client::DEADLINE`], Discord's REST client, each connector's `timeout`), and
//! the worker gives up on an attempt that outlives them all ([`CHAT_DEADLINE`],
//! [`CONNECTOR_GRACE`]), so that no call left unanswered holds its lane for ever. Passing a
//! deadline is a failure worth retrying.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::lanes::LaneOrder;
use super::{
    ChatError, ChatPort, MAX_BACKOFF, PROVISION_ATTEMPTS, Posted, REVOKE_ATTEMPTS, backoff_within,
};
use crate::connector::{Action, ConnectorCall, ConnectorError, ConnectorRegistry, PersonRef};
use crate::domain::card::CardKey;
use crate::domain::effect::{Effect, Lane};
use crate::domain::grant::{Grant, GrantState};
use crate::domain::ids::ConnectorId;
use crate::domain::ids::GrantId;
use crate::engine::{Engine, EngineError, on_blocking_pool};
use crate::metrics::{CallOutcome, Observed};
use crate::store::{Commit, OutboxEntry, StoreError};

/// How much of the outbox one pass takes.
const BATCH: usize = 256;
/// How long to wait when nothing is queued, or after the store failed.
const IDLE: StdDuration = StdDuration::from_secs(3600);
const AFTER_FAILURE: StdDuration = StdDuration::from_secs(5);

/// How long delivering one chat effect may take, all its platform calls together (each
/// has its own deadline of about 10 s; a refresh may make a call per card).
pub const CHAT_DEADLINE: StdDuration = StdDuration::from_secs(120);
/// How much longer than its own `timeout` a connector call may take before the worker gives
/// up on it (a command connector's killed program is reaped for up to a second, for one).
pub const CONNECTOR_GRACE: StdDuration = StdDuration::from_secs(30);
/// The `timeout` assumed for a connector not built from gatehouse.toml.
const UNKNOWN_CONNECTOR_TIMEOUT: StdDuration = StdDuration::from_secs(60);

pub struct Worker {
    engine: Arc<Engine>,
    /// Shared with reloads, which may put other connectors in force.
    connectors: ConnectorRegistry,
    chat: Arc<dyn ChatPort>,
    max_backoff: TimeDelta,
    /// The last effect queued before this worker started: an earlier process may have been
    /// attempting any effect up to it when it died, without recording the attempt.
    resumed: Option<u64>,
    /// Which entries wait for their next attempt, and which younger ones of their lanes
    /// are held behind them.
    lanes: Mutex<LaneOrder>,
}

/// What to do with an entry after one attempt.
pub(super) enum Next {
    /// Done: remove it, applying this commit with the removal.
    Complete(Commit),
    /// Try again at this moment.
    Retry(DateTime<Utc>, String),
}

impl Worker {
    pub fn new(
        engine: Arc<Engine>,
        connectors: impl Into<ConnectorRegistry>,
        chat: Arc<dyn ChatPort>,
    ) -> Self {
        Self {
            engine,
            connectors: connectors.into(),
            chat,
            max_backoff: MAX_BACKOFF,
            resumed: None,
            lanes: Mutex::default(),
        }
    }

    fn lanes(&self) -> std::sync::MutexGuard<'_, LaneOrder> {
        self.lanes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Learns which entries already wait for a later attempt (failed before a restart), so
    /// that their lanes keep their order.
    fn learn_waiting(&self) -> Result<(), EngineError> {
        let waiting = self.engine.store().effects_waiting(self.engine.now())?;
        let mut lanes = self.lanes();
        for entry in waiting {
            lanes.waits(entry.seq, entry.effect.lane());
        }
        Ok(())
    }

    /// Treats every effect now in the outbox as possibly attempted already: a process that
    /// was killed while delivering one recorded no attempt, and its answer was lost with it.
    /// Chat ports then look for that delivery before delivering again.
    pub fn resume(&mut self) -> Result<(), EngineError> {
        // Seqs only grow, so "queued before now" is "at most the newest seq now": no entry
        // need be read (a restart may find a long queue).
        self.resumed = self.engine.store().newest_effect()?;
        Ok(())
    }

    /// The attempt to tell a chat port: a first attempt at an effect queued before this
    /// worker started counts as a retry.
    fn chat_attempt(&self, entry: &OutboxEntry) -> u32 {
        let attempt = entry.attempts + 1;
        match self.resumed {
            Some(last) if entry.seq <= last => attempt.max(2),
            _ => attempt,
        }
    }

    /// Waits at most `max` between two attempts (`[outbox] max_backoff`).
    pub fn with_max_backoff(mut self, max: TimeDelta) -> Self {
        self.max_backoff = max;
        self
    }

    /// Attempts every effect due now, oldest first (but for those behind an older entry of
    /// their lane that waits); how many were completed.
    pub async fn run_due(&self) -> Result<usize, EngineError> {
        let now = self.engine.now();
        let mut completed = 0;
        for entry in self.engine.store().due_effects(now, BATCH)? {
            if self.lanes().holds(entry.seq, &entry.effect.lane()) {
                continue;
            }
            let span = super::span::delivery_span(&entry);
            if self.run_one(&entry).instrument(span).await? {
                completed += 1;
            }
        }
        Ok(completed)
    }

    /// One attempt at `entry`, and its result stored; whether it left the outbox. The store
    /// writes run on the blocking pool: they wait for a flush, which must not stall the
    /// runtime's threads while other effects and the HTTP server run on them.
    async fn run_one(&self, entry: &OutboxEntry) -> Result<bool, EngineError> {
        let engine = self.engine.clone();
        let seq = entry.seq;
        let lane = entry.effect.lane();
        match self.attempt(entry).await? {
            Next::Complete(then) => {
                let observed = Observed::of(&then);
                let completed =
                    on_blocking_pool(move || engine.store().complete_effect(seq, then)).await;
                match completed {
                    Ok(()) => {
                        self.lanes().left(seq, &lane);
                        self.engine.metrics().record(observed);
                        Ok(true)
                    }
                    // Someone completed it meanwhile, or its record changed: look again next pass.
                    Err(EngineError::Store(StoreError::Conflict)) => {
                        self.lanes().left(seq, &lane);
                        Ok(false)
                    }
                    Err(e) => Err(e),
                }
            }
            Next::Retry(at, error) => {
                tracing::warn!(key = %entry.key, attempts = entry.attempts + 1, %error, "effect failed; will retry");
                let kind = super::span::kind(&entry.effect);
                self.engine.metrics().outbox_retry(kind);
                on_blocking_pool(move || engine.store().retry_effect(seq, at, &error)).await?;
                self.lanes().waits(seq, lane);
                Ok(false)
            }
        }
    }

    /// One attempt at `entry`: what to do with it next. A retry waits from when the failure
    /// was known, not from when the attempt started: a slow call that ends in a 429 still
    /// waits all of its `Retry-After`.
    pub(super) async fn attempt(&self, entry: &OutboxEntry) -> Result<Next, EngineError> {
        let attempts = entry.attempts + 1;
        let attempts_told = self.chat_attempt(entry);
        let retry_at = |failed_at: DateTime<Utc>| {
            failed_at + backoff_within(entry.attempts, entry.seq, self.max_backoff)
        };
        let mut then = Commit::default();
        match &entry.effect {
            Effect::Provision { grant } => {
                let Some(grant) =
                    self.grant_in(*grant, |s| matches!(s, GrantState::Provisioning))?
                else {
                    return Ok(Next::Complete(then)); // revoked before it was given: nothing to do
                };
                match self.call(&grant, Action::Grant, &entry.key).await {
                    Ok(detail) => self.engine.provisioned(grant.id, &detail, &mut then)?,
                    Err(ConnectorError::Transient(e)) if attempts < PROVISION_ATTEMPTS => {
                        return Ok(Next::Retry(retry_at(self.engine.now()), e));
                    }
                    Err(e) => self.engine.provisioning_failed(
                        grant.id,
                        &format!("{e} ({})", after_attempts(attempts)),
                        &mut then,
                    )?,
                }
            }
            Effect::Deprovision { grant } => {
                let Some(grant) =
                    self.grant_in(*grant, |s| matches!(s, GrantState::Revoking { .. }))?
                else {
                    return Ok(Next::Complete(then));
                };
                match self.call(&grant, Action::Revoke, &entry.key).await {
                    Ok(detail) => self.engine.deprovisioned(grant.id, &detail, &mut then)?,
                    Err(e) if attempts < REVOKE_ATTEMPTS => {
                        return Ok(Next::Retry(retry_at(self.engine.now()), e.to_string()));
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
                    let at = not_before(retry_at(answered), answered, retry_after);
                    return Ok(Next::Retry(at, message));
                }
                Err(ChatError::Permanent(e)) => {
                    tracing::warn!(key = %entry.key, error = %e, "chat message dropped: it can never be delivered")
                }
            },
        }
        Ok(Next::Complete(then))
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

    /// Calls the grant's connector; a resource without one has nothing to provision.
    async fn call(
        &self,
        grant: &Grant,
        action: Action,
        key: &str,
    ) -> Result<String, ConnectorError> {
        let world = self.engine.world();
        let Some(connector_id) = world
            .policy
            .resource(&grant.resource)
            .and_then(|r| r.connector.clone())
        else {
            return Ok(format!(
                "{} has no connector: recorded in Gatehouse only",
                grant.resource
            ));
        };
        let connector = self.connectors.get(&connector_id).ok_or_else(|| {
            ConnectorError::Permanent(format!(
                "connector `{connector_id}` is not declared in gatehouse.toml"
            ))
        })?;
        let person = match world.directory.person(&grant.person) {
            Some(p) => PersonRef::from_person(p),
            None => PersonRef {
                id: grant.person.clone(),
                email: None,
                slack: None,
                discord: None,
            },
        };
        let call = ConnectorCall::for_grant(action, grant, person, key);
        let deadline = self.connector_deadline(&connector_id);
        let result = match tokio::time::timeout(deadline, connector.execute(&call)).await {
            Ok(result) => result.map(|outcome| outcome.detail),
            Err(_) => Err(ConnectorError::Transient(format!(
                "connector `{connector_id}` gave no answer within {}s (will retry)",
                deadline.as_secs()
            ))),
        };
        let outcome = match &result {
            Ok(_) => CallOutcome::Ok,
            Err(ConnectorError::Transient(_)) => CallOutcome::TransientError,
            Err(ConnectorError::Permanent(_)) => CallOutcome::PermanentError,
        };
        let metrics = self.engine.metrics();
        metrics.connector_call(connector_id.as_str(), action.as_str(), outcome);
        result
    }

    /// Runs until `shutdown` turns true. Effects of different lanes ([`Effect::lane`]) run
    /// at once, up to [`CONCURRENT`]; within a lane, one at a time, oldest first. The loop
    /// starts what is due and free, then sleeps until an effect finishes, the next attempt
    /// is due, or a commit queues something new. On shutdown, effects under way get
    /// `SHUTDOWN_GRACE` (5 s) to finish; one cut short is found again on start ([`Self::resume`]).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let this = Arc::new(self);
        let learner = this.clone();
        if let Err(e) = on_blocking_pool(move || learner.learn_waiting()).await {
            tracing::error!(error = %e, "cannot read which effects wait for a retry; a lane may run out of order once");
        }
        let mut changes = this.engine.subscribe();
        let mut running = Running::default();
        loop {
            let sleep = match this.start_due(&mut running).await {
                Ok(Some(at)) => (at - this.engine.now())
                    .to_std()
                    .unwrap_or(StdDuration::ZERO),
                Ok(None) => IDLE,
                Err(e) => {
                    tracing::error!(error = %e, "outbox pass failed; trying again shortly");
                    AFTER_FAILURE
                }
            };
            tokio::select! {
                Some(done) = running.tasks.join_next_with_id(), if !running.tasks.is_empty() => {
                    running.finish(done);
                    while let Some(done) = running.tasks.try_join_next_with_id() {
                        running.finish(done);
                    }
                }
                _ = tokio::time::sleep(sleep) => {}
                changed = changes.changed() => if changed.is_err() { break },
                _ = shutdown.changed() => break,
            }
            if *shutdown.borrow() {
                break;
            }
        }
        let finishing = async { while running.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(SHUTDOWN_GRACE, finishing)
            .await
            .is_err()
        {
            tracing::warn!(
                running = running.tasks.len(),
                "effects still under way at shutdown; they are attempted again on start"
            );
        }
    }

    /// Starts every due effect whose lane is free, as long as fewer than [`CONCURRENT`] run;
    /// when the next one not yet due is due (`None`: nothing waits). Effects due but not
    /// started (lane busy, or too many running) start when a running one finishes.
    async fn start_due(
        self: &Arc<Self>,
        running: &mut Running,
    ) -> Result<Option<DateTime<Utc>>, EngineError> {
        let now = self.engine.now();
        let engine = self.engine.clone();
        let mut skip = running.seqs();
        skip.extend(self.lanes().held());
        // Read only about as many as can start: with a long queue (a restart with many
        // revocations), reading a full batch at every completion would cost more than the
        // effects. The extra `CONCURRENT` leaves room for entries whose lane is busy.
        let free = CONCURRENT.saturating_sub(running.tasks.len());
        let (due, next) = on_blocking_pool(move || {
            let store = engine.store();
            let due = match free {
                0 => Vec::new(),
                free => {
                    store.due_effects_except(now, free + CONCURRENT, &|seq| skip.contains(&seq))?
                }
            };
            Ok::<_, StoreError>((due, store.next_effect_due_after(now)?))
        })
        .await?;
        for entry in due {
            if running.tasks.len() >= CONCURRENT {
                break;
            }
            let lane = entry.effect.lane();
            if running.lane_busy(&lane) || self.lanes().holds(entry.seq, &lane) {
                continue;
            }
            let worker = self.clone();
            let seq = entry.seq;
            let task = running.tasks.spawn(async move {
                let span = super::span::delivery_span(&entry);
                if let Err(e) = worker.run_one(&entry).instrument(span).await {
                    tracing::error!(key = %entry.key, error = %e, "outbox attempt failed; trying again shortly");
                    // Hold the lane a while: the store may need time to recover.
                    tokio::time::sleep(AFTER_FAILURE).await;
                }
            });
            running.start(task.id(), seq, lane);
        }
        Ok(next)
    }
}

/// How many effects run at once, at most.
pub const CONCURRENT: usize = 32;
/// How long effects under way may take to finish at shutdown.
const SHUTDOWN_GRACE: StdDuration = StdDuration::from_secs(5);

/// The effects under way: their tasks, and which outbox entry and lane each holds.
#[derive(Default)]
struct Running {
    tasks: JoinSet<()>,
    held: HashMap<tokio::task::Id, (u64, Lane)>,
}

impl Running {
    fn start(&mut self, task: tokio::task::Id, seq: u64, lane: Lane) {
        self.held.insert(task, (seq, lane));
    }

    fn lane_busy(&self, lane: &Lane) -> bool {
        self.held.values().any(|(_, held)| held == lane)
    }

    fn seqs(&self) -> HashSet<u64> {
        self.held.values().map(|(seq, _)| *seq).collect()
    }

    /// Frees the lane of a finished task, even one that panicked.
    fn finish(&mut self, done: Result<(tokio::task::Id, ()), tokio::task::JoinError>) {
        let id = match done {
            Ok((id, ())) => id,
            Err(e) => {
                tracing::error!(error = %e, "an outbox attempt panicked; it is attempted again later");
                e.id()
            }
        };
        self.held.remove(&id);
    }
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

/// Starts the worker for a served Gatehouse, waiting at most `max_backoff` between attempts.
pub fn spawn(
    engine: Arc<Engine>,
    connectors: ConnectorRegistry,
    chat: Arc<dyn ChatPort>,
    max_backoff: TimeDelta,
    shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let mut worker = Worker::new(engine, connectors, chat).with_max_backoff(max_backoff);
    if let Err(e) = worker.resume() {
        tracing::error!(error = %e, "the outbox could not be read at start; a message whose answer a crash lost may be posted twice");
    }
    tokio::spawn(worker.run(shutdown))
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
