//! The worker loop: learn what was queued, start what is due and may start, write back what
//! the attempts found, and sleep until one of those has something to do.
//!
//! **Capacity.** Chat messages run up to [`CHAT_CONCURRENT`] at once, alerts first; each
//! connector's calls run up to its own `max_concurrent`, at most `max_per_second` started a
//! second, revocations first ([`super::queue`], [`super::gates`]). A connector that is slow,
//! down, or asking to be left alone (a 429's `Retry-After`) fills or closes only its own
//! pool: cards and alerts, and other connectors, go on. A connector that takes many
//! revocations in one request ([`crate::connector::Connector::revoke_many`]) gets the due
//! ones together, as one call.
//!
//! **Writing back.** An attempt frees its place in its pool as soon as its call has
//! answered; its result is then written with every other result that came in meanwhile,
//! in one store write and one flush ([`Store::finish_effects`]), and only then does its lane
//! go on. Under load a flush then covers many effects instead of one each.
//!
//! Every attempt has a deadline: the platforms' and connectors' clients give up by themselves
//! ([`crate::slack::client::DEADLINE`], Discord's REST client, each connector's `timeout`), and
//! the worker gives up on an attempt that outlives them all ([`CHAT_DEADLINE`],
//! [`CONNECTOR_GRACE`]), so that no call left unanswered holds its lane for ever. Passing a
//! deadline is a failure worth retrying.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration as StdDuration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tracing::Instrument;

use super::attempt::Next;
pub use super::attempt::{CHAT_DEADLINE, CONNECTOR_GRACE};
use super::gates::{Gate, Gates};
use super::queue::{Pool, Queue, Side};
use super::{ChatPort, MAX_BACKOFF};
use crate::connector::{ConnectorRegistry, Connectors, Limits};
use crate::domain::effect::{Class, Effect};
use crate::domain::grant::Grant;
use crate::domain::ids::{GrantId, ResourceId};
use crate::engine::{Engine, EngineError, World, on_blocking_pool};
use crate::metrics::Observed;
use crate::store::{Finished, OutboxEntry, Store, StoreError};

/// How many entries one read of the outbox takes.
const READ_BATCH: usize = 4096;
/// How long to wait when nothing is queued, or after the store failed.
const IDLE: StdDuration = StdDuration::from_secs(3600);
const AFTER_FAILURE: StdDuration = StdDuration::from_secs(5);
/// How many chat effects (cards, DMs, alerts) run at once, at most.
pub const CHAT_CONCURRENT: usize = 32;
/// How long effects under way may take to finish at shutdown.
const SHUTDOWN_GRACE: StdDuration = StdDuration::from_secs(5);

pub struct Worker {
    pub(super) engine: Arc<Engine>,
    /// Shared with reloads, which may put other connectors (and limits) in force.
    pub(super) connectors: ConnectorRegistry,
    pub(super) chat: Arc<dyn ChatPort>,
    pub(super) max_backoff: TimeDelta,
    /// The last effect queued before this worker started: an earlier process may have been
    /// attempting any effect up to it when it died, without recording the attempt.
    resumed: Option<u64>,
    /// The entries read from the outbox that have not left it, and their lanes.
    queue: Mutex<Queue>,
    /// How many calls each pool runs, and when it may start more.
    gates: Mutex<Gates>,
    /// The policy and directory the queued calls were filed under.
    pooled_under: Mutex<Option<Arc<World>>>,
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
            queue: Mutex::default(),
            gates: Mutex::default(),
            pooled_under: Mutex::default(),
        }
    }

    /// Keeps at most `window` entries of each side in memory (tests of the windows).
    #[cfg(test)]
    pub(super) fn with_window(mut self, window: usize) -> Self {
        self.queue = Mutex::new(Queue::with_window(window));
        self
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn gates(&self) -> MutexGuard<'_, Gates> {
        self.gates.lock().unwrap_or_else(PoisonError::into_inner)
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
    pub(super) fn chat_attempt(&self, entry: &OutboxEntry) -> u32 {
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

    /// Reads what was queued since the last read (with the entries an earlier process left,
    /// waiting for a retry or not, on the first read), as far as each side's window has room
    /// ([`super::queue::WINDOW`]), and files each in its pool.
    fn read_new(&self) -> Result<(), EngineError> {
        loop {
            let Some(after) = self.queue().read_after() else {
                return Ok(());
            };
            let entries = self.engine.store().effects_after(after, READ_BATCH)?;
            let read = entries.len();
            let admitted: Vec<OutboxEntry> = {
                let mut queue = self.queue();
                entries
                    .into_iter()
                    .filter(|entry| queue.admit(entry))
                    .collect()
            };
            let world = self.engine.world();
            // The grants behind the page's provisions and revocations, in one read.
            let ids: Vec<GrantId> = admitted
                .iter()
                .filter_map(|entry| match entry.effect {
                    Effect::Provision { grant } | Effect::Deprovision { grant } => Some(grant),
                    _ => None,
                })
                .collect();
            let grants: HashMap<GrantId, Grant> = self
                .engine
                .store()
                .grants_by_id(&ids)?
                .into_iter()
                .map(|g| (g.value.id, g.value))
                .collect();
            let mut pooled = Vec::with_capacity(admitted.len());
            for entry in admitted {
                let resource = match entry.effect {
                    Effect::Provision { grant } | Effect::Deprovision { grant } => {
                        grants.get(&grant).map(|g| g.resource.clone())
                    }
                    _ => None,
                };
                let pool = match &resource {
                    Some(resource) => pool_of(&world, resource),
                    None if Side::of(&entry) == Side::Connector => Pool::Connector(None),
                    None => Pool::Chat,
                };
                pooled.push((entry, pool, resource));
            }
            let now = self.engine.now();
            let mut queue = self.queue();
            for (entry, pool, resource) in pooled {
                queue.learn(entry, pool, resource, now);
            }
            if read < READ_BATCH {
                return Ok(());
            }
        }
    }

    /// Files the queued connector calls again when the policy in force changed (a reload):
    /// a resource moved to another connector takes its queued calls with it.
    fn follow_reloads(&self, queue: &mut Queue) {
        let world = self.engine.world();
        let mut pooled_under = self
            .pooled_under
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if pooled_under
            .as_ref()
            .is_some_and(|under| Arc::ptr_eq(under, &world))
        {
            return;
        }
        queue.repool(|resource| pool_of(&world, resource));
        *pooled_under = Some(world);
    }

    /// Attempts every effect due now, most urgent first (alerts, messages, revocations,
    /// grants), one at a time, each lane in order; how many were completed. Each is attempted
    /// at most once per call. For tests and tools: a served Gatehouse runs [`Worker::run`].
    pub async fn run_due(&self) -> Result<usize, EngineError> {
        self.read_new()?;
        let now = self.engine.now();
        {
            let mut queue = self.queue();
            self.follow_reloads(&mut queue);
            queue.release(now);
        }
        let mut tried = HashSet::new();
        let mut completed = 0;
        loop {
            let Some(entry) = self.queue().take_any(|seq| !tried.contains(&seq)) else {
                return Ok(completed);
            };
            tried.insert(entry.seq);
            let span = super::span::delivery_span(&entry);
            let next = match self.attempt(&entry).instrument(span).await {
                Ok(next) => next,
                Err(e) => {
                    self.queue().again(entry.seq, now, now);
                    return Err(e);
                }
            };
            let pending = self.result(&entry, next);
            let engine = self.engine.clone();
            let wrote = on_blocking_pool(move || {
                Ok::<_, EngineError>(write(engine.store(), vec![pending]))
            })
            .await?;
            for wrote in wrote {
                completed += usize::from(matches!(wrote.what, Wrote::Left));
                self.wrote(wrote);
            }
        }
    }

    /// What to write for an attempt at `entry` that ended with `next`.
    fn result(&self, entry: &OutboxEntry, next: Next) -> Pending {
        match next {
            Next::Complete(then) => Pending {
                observed: Some(Observed::of(&then)),
                finished: Finished::Done {
                    seq: entry.seq,
                    then,
                },
            },
            Next::Retry(at, error) => {
                tracing::warn!(key = %entry.key, attempts = entry.attempts + 1, %error, "effect failed; will retry");
                let kind = super::span::kind(&entry.effect);
                self.engine.metrics().outbox_retry(kind);
                Pending {
                    observed: None,
                    finished: Finished::Retry {
                        seq: entry.seq,
                        at,
                        error,
                    },
                }
            }
        }
    }

    /// Mirrors what was written for one entry.
    fn wrote(&self, wrote: Written) {
        let now = self.engine.now();
        let mut queue = self.queue();
        match wrote.what {
            Wrote::Left => {
                queue.left(wrote.seq, now);
                drop(queue);
                if let Some(observed) = wrote.observed {
                    self.engine.metrics().record(observed);
                }
            }
            Wrote::Retried(at) => queue.retried(wrote.seq, at, now),
            // Its record changed while it was attempted: attempted again, with what is now.
            Wrote::StillQueued => queue.again(wrote.seq, now, now),
            Wrote::Failed(error) => {
                tracing::error!(seq = wrote.seq, %error, "an effect's result could not be written; it is attempted again shortly");
                queue.again(wrote.seq, later(now, AFTER_FAILURE), now);
            }
        }
    }

    /// Runs until `shutdown` turns true; see the module documentation. On shutdown, effects
    /// under way get `SHUTDOWN_GRACE` (5 s) to finish and be written; one cut short is found
    /// again on start ([`Self::resume`]).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let this = Arc::new(self);
        let mut changes = this.engine.subscribe();
        let mut work = Work::default();
        // On start, the whole outbox is new.
        let mut unread = true;
        loop {
            let mut wake = None;
            if unread {
                let reader = this.clone();
                match on_blocking_pool(move || reader.read_new()).await {
                    Ok(()) => unread = false,
                    Err(e) => {
                        tracing::error!(error = %e, "the outbox could not be read; trying again shortly");
                        wake = Some(Instant::now() + AFTER_FAILURE);
                    }
                }
            }
            wake = earliest(wake, this.start_due(&mut work));
            work.write(&this);
            let wake = wake.unwrap_or_else(|| Instant::now() + IDLE);
            tokio::select! {
                Some(done) = work.tasks.join_next_with_id(), if !work.tasks.is_empty() => {
                    this.attempted(&mut work, done);
                    while let Some(done) = work.tasks.try_join_next_with_id() {
                        this.attempted(&mut work, done);
                    }
                }
                written = wait(&mut work.writing), if work.writing.is_some() => {
                    work.writing = None;
                    for wrote in written {
                        this.wrote(wrote);
                    }
                    // What was written may have queued more (a grant's notice, a refresh).
                    unread = true;
                }
                _ = tokio::time::sleep_until(wake) => {}
                changed = changes.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    unread = true;
                }
                _ = shutdown.changed() => break,
            }
            if *shutdown.borrow() {
                break;
            }
        }
        this.finish(work).await;
    }

    /// At shutdown: lets the attempts under way finish and their results be written, for
    /// at most `SHUTDOWN_GRACE`.
    async fn finish(self: &Arc<Self>, mut work: Work) {
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        loop {
            work.write(self);
            if work.tasks.is_empty() && work.writing.is_none() {
                return;
            }
            tokio::select! {
                Some(done) = work.tasks.join_next_with_id(), if !work.tasks.is_empty() => {
                    self.attempted(&mut work, done);
                }
                written = wait(&mut work.writing), if work.writing.is_some() => {
                    work.writing = None;
                    for wrote in written {
                        self.wrote(wrote);
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    tracing::warn!(
                        running = work.tasks.len(),
                        "effects still under way at shutdown; they are attempted again on start"
                    );
                    return;
                }
            }
        }
    }

    /// Starts what is due in every pool, as far as its gate lets; when to look again for a
    /// pool closed for a while or an entry waiting for its moment (`None`: only when
    /// something happens).
    fn start_due(self: &Arc<Self>, work: &mut Work) -> Option<Instant> {
        let now = self.engine.now();
        let instant = Instant::now();
        let connectors = self.connectors.current();
        let mut queue = self.queue();
        self.follow_reloads(&mut queue);
        queue.release(now);
        let mut wake = queue
            .next_due()
            .map(|at| instant + (at - now).to_std().unwrap_or(StdDuration::ZERO));
        let mut gates = self.gates();
        for pool in queue.pools_ready() {
            let limits = limits_of(&pool, &connectors);
            while let Some(class) = queue.peek(&pool) {
                match gates.check(&pool, limits, instant) {
                    Gate::Open => {}
                    Gate::Full => break,
                    Gate::ClosedUntil(at) => {
                        wake = earliest(wake, Some(at));
                        break;
                    }
                }
                let Some(first) = queue.take(&pool) else {
                    break;
                };
                let mut entries = vec![first];
                if let (Pool::Connector(Some(id)), Class::Revoke) = (&pool, class) {
                    let together = connectors.get(id).map_or(1, |c| c.revoke_batch());
                    if together > 1 {
                        entries.extend(queue.take_more(&pool, Class::Revoke, together - 1));
                    }
                }
                gates.started(&pool);
                let seqs = entries.iter().map(|entry| entry.seq).collect();
                let worker = self.clone();
                let attempting = pool.clone();
                let task = work
                    .tasks
                    .spawn(async move { worker.attempt_all(attempting, entries).await });
                work.held.insert(task.id(), (pool.clone(), seqs));
            }
        }
        wake
    }

    /// One attempt at each of `entries` (more than one: revocations made together).
    async fn attempt_all(&self, pool: Pool, entries: Vec<OutboxEntry>) -> Attempted {
        let nexts = match (&pool, entries.as_slice()) {
            (Pool::Connector(Some(id)), [_, _, ..]) => self.attempt_revocations(id, &entries).await,
            _ => {
                let mut nexts = Vec::with_capacity(entries.len());
                for entry in &entries {
                    let span = super::span::delivery_span(entry);
                    nexts.push(self.attempt(entry).instrument(span).await);
                }
                nexts
            }
        };
        Attempted {
            results: entries.into_iter().zip(nexts).collect(),
        }
    }

    /// A task ended: its pool has room again, and its results wait to be written.
    fn attempted(
        &self,
        work: &mut Work,
        done: Result<(tokio::task::Id, Attempted), tokio::task::JoinError>,
    ) {
        let (id, attempted) = match done {
            Ok((id, attempted)) => (id, Some(attempted)),
            Err(e) => {
                tracing::error!(error = %e, "an outbox attempt panicked; it is attempted again later");
                (e.id(), None)
            }
        };
        let Some((pool, seqs)) = work.held.remove(&id) else {
            return;
        };
        self.gates().ended(&pool);
        let now = self.engine.now();
        let Some(attempted) = attempted else {
            let mut queue = self.queue();
            for seq in seqs {
                queue.again(seq, later(now, AFTER_FAILURE), now);
            }
            return;
        };
        for (entry, next) in attempted.results {
            match next {
                Ok(next) => work.pending.push(self.result(&entry, next)),
                Err(e) => {
                    tracing::error!(key = %entry.key, error = %e, "outbox attempt failed; trying again shortly");
                    // The store may need time to recover: the lane waits a while.
                    self.queue()
                        .again(entry.seq, later(now, AFTER_FAILURE), now);
                }
            }
        }
    }
}

/// Whose capacity a call about `resource` uses under `world`: its connector's.
fn pool_of(world: &World, resource: &ResourceId) -> Pool {
    let resource = world.policy.resource(resource);
    Pool::Connector(resource.and_then(|r| r.connector.clone()))
}

/// The limits of `pool`: chat's own, or its connector's.
fn limits_of(pool: &Pool, connectors: &Connectors) -> Limits {
    match pool {
        Pool::Chat => Limits {
            max_concurrent: CHAT_CONCURRENT,
            max_per_second: None,
        },
        Pool::Connector(Some(id)) => connectors.limits(id),
        Pool::Connector(None) => Limits::default(),
    }
}

/// What the loop has under way: attempts running, with the pool and entries each holds;
/// results waiting to be written; the write in progress.
#[derive(Default)]
struct Work {
    tasks: JoinSet<Attempted>,
    held: HashMap<tokio::task::Id, (Pool, Vec<u64>)>,
    pending: Vec<Pending>,
    /// The write under way, and the entries it is about.
    writing: Option<(JoinHandle<Vec<Written>>, Vec<u64>)>,
}

impl Work {
    /// Starts writing the results that wait, unless a write is under way (the next one then
    /// takes all that came in meanwhile).
    fn write(&mut self, worker: &Worker) {
        if self.writing.is_some() || self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        let seqs = pending.iter().map(|p| p.finished.seq()).collect();
        let engine = worker.engine.clone();
        let writing = tokio::task::spawn_blocking(move || write(engine.store(), pending));
        self.writing = Some((writing, seqs));
    }
}

/// The results of one task.
struct Attempted {
    results: Vec<(OutboxEntry, Result<Next, EngineError>)>,
}

/// A result waiting to be written.
struct Pending {
    finished: Finished,
    /// What a completion's commit records in the metrics, once written.
    observed: Option<Observed>,
}

/// What was written for one entry.
struct Written {
    seq: u64,
    what: Wrote,
    observed: Option<Observed>,
}

enum Wrote {
    /// It left the outbox.
    Left,
    /// It waits for its next attempt, at this moment.
    Retried(DateTime<Utc>),
    /// Its completion found a record changed since the attempt read it; it is still queued.
    StillQueued,
    /// Nothing was written.
    Failed(String),
}

/// Writes `pending` in one go; what became of each.
fn write(store: &dyn Store, pending: Vec<Pending>) -> Vec<Written> {
    let mut about = Vec::with_capacity(pending.len());
    let mut finished = Vec::with_capacity(pending.len());
    for Pending {
        finished: f,
        observed,
    } in pending
    {
        let (seq, retry_at) = match &f {
            Finished::Done { seq, .. } => (*seq, None),
            Finished::Retry { seq, at, .. } => (*seq, Some(*at)),
        };
        about.push((seq, retry_at, observed));
        finished.push(f);
    }
    let results = store.finish_effects(finished);
    about
        .into_iter()
        .zip(results)
        .map(|((seq, retry_at, observed), result)| {
            let what = match (result, retry_at) {
                (Ok(()), None) => Wrote::Left,
                (Ok(()), Some(at)) => Wrote::Retried(at),
                // Completed by someone else, or its record changed: which is it?
                (Err(StoreError::Conflict), _) => match store.effects_after(seq - 1, 1) {
                    Ok(next) if next.first().is_some_and(|e| e.seq == seq) => Wrote::StillQueued,
                    Ok(_) => Wrote::Left,
                    Err(e) => Wrote::Failed(e.to_string()),
                },
                (Err(e), _) => Wrote::Failed(e.to_string()),
            };
            Written {
                seq,
                what,
                observed,
            }
        })
        .collect()
}

/// The result of the write under way (which is there).
async fn wait(writing: &mut Option<(JoinHandle<Vec<Written>>, Vec<u64>)>) -> Vec<Written> {
    let Some((handle, seqs)) = writing else {
        return std::future::pending().await;
    };
    match handle.await {
        Ok(written) => written,
        Err(e) => seqs
            .iter()
            .map(|seq| Written {
                seq: *seq,
                what: Wrote::Failed(format!("writing the outbox's results panicked: {e}")),
                observed: None,
            })
            .collect(),
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn later(now: DateTime<Utc>, wait: StdDuration) -> DateTime<Utc> {
    now + TimeDelta::from_std(wait).unwrap_or(TimeDelta::MAX)
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
