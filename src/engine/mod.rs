//! The use cases: submit, approve, reject, approve with changes, cancel, extend, end early,
//! revoke, emergency review, offboard. Each loads state, asks the domain what happens, and
//! commits the new state, its audit events and its effects in one store transaction. The
//! engine never talks to Slack, Discord or a connector: effects wait in the outbox.

mod clock;
pub mod decide;
#[cfg(test)]
mod decide_tests;
mod delivery;
mod digest;
mod facade;
pub mod grants;
mod reload;
#[cfg(test)]
mod reload_tests;
#[cfg(test)]
mod replay_tests;
mod results;
pub mod review;
pub mod schedule;
#[cfg(test)]
mod schedule_tests;
mod submit;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

pub use crate::domain::schedule::pending_due;
#[cfg(any(test, feature = "testing"))]
pub use clock::FakeClock;
pub use clock::{Clock, SystemClock};
pub use decide::Decided;
pub use facade::{AuditPage, AuditQuery, Facade, Lookup, Overview, Records, on_blocking_pool};
pub use grants::Offboarded;
pub use reload::ReloadReport;
pub use submit::Submitted;

use crate::domain::audit::Actor;
use crate::domain::directory::{Directory, Person};
use crate::domain::effect::{Alert, Effect};
use crate::domain::grant::GrantError;
use crate::domain::ids::PersonId;
use crate::domain::policy::{Defaults, Policy};
use crate::domain::request::DecisionError;
use crate::domain::validation::Refusals;
use crate::metrics::{Metrics, Observed};
use crate::store::{Commit, Receipt, Store, StoreError};

/// The policy and directory in force; replaced whole on reload.
#[derive(Debug)]
pub struct World {
    pub policy: Policy,
    pub directory: Directory,
}

pub struct Engine {
    /// Whichever backend `app` chose; the engine, the outbox worker and the scheduler are
    /// the only ones that read it.
    store: Arc<dyn Store>,
    world: RwLock<Arc<World>>,
    clock: Arc<dyn Clock>,
    /// Bumped after every commit, so the outbox worker and the scheduler wake.
    changes: watch::Sender<u64>,
    /// What this Gatehouse counts; every commit is reported to it.
    metrics: Arc<Metrics>,
}

/// How a use case can fail. Everything but `Store` is the person's to fix, and its
/// `Display` is the sentence they see.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Refused(Refusals),
    #[error("{0}")]
    Decision(#[from] DecisionError),
    #[error("{0}")]
    Grant(#[from] GrantError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    NotAllowed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Work that did not finish (it panicked): a bug, logged where it is handled.
    #[error("{0}")]
    Internal(String),
}

impl EngineError {
    /// Whether the person can fix it (else it is ours, and is logged).
    pub fn is_user_error(&self) -> bool {
        matches!(self, EngineError::Store(StoreError::Delivered))
            || !matches!(self, EngineError::Store(_) | EngineError::Internal(_))
    }
}

/// How many times a use case re-reads and retries when someone else changed the record.
const CAS_ATTEMPTS: usize = 16;

impl Engine {
    pub fn new(
        store: Arc<dyn Store>,
        policy: Policy,
        directory: Directory,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            world: RwLock::new(Arc::new(World { policy, directory })),
            clock,
            changes: watch::Sender::new(0),
            metrics: Arc::new(Metrics::new()),
        }
    }

    /// The metrics of this Gatehouse, for `/metrics` and for adapters to count into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The store, for the engine's own workers (the outbox worker, the scheduler) and tests.
    /// Front ends never read it: they go through the [`Facade`].
    pub(crate) fn store(&self) -> &dyn Store {
        &*self.store
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// A receiver that changes after every commit.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Commits through the store and wakes whoever waits for changes. A change an admin
    /// token made as someone else (impersonation) also alerts the security channel, in the
    /// same transaction, whichever use case made it.
    pub fn commit(&self, mut commit: Commit) -> Result<Receipt, StoreError> {
        if let Some(alert) = Alert::impersonation(&commit.events) {
            commit.effects.push(Effect::Alert { alert });
        }
        commit.at.get_or_insert_with(|| self.now());
        // The platform delivery this work is for, if any, is recorded with it.
        let delivery = delivery::current();
        if let Some(claim) = &delivery {
            commit.deliveries.extend(claim.entries());
        }
        let observed = Observed::of(&commit);
        let receipt = self.store.commit(commit).inspect_err(|e| {
            if let (Some(claim), StoreError::Delivered) = (&delivery, e) {
                claim.repeated();
            }
        })?;
        if let Some(claim) = delivery {
            claim.committed();
        }
        self.metrics.record(observed);
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
        Ok(receipt)
    }

    /// The policy and directory in force now.
    pub fn world(&self) -> Arc<World> {
        self.world.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts a new policy and directory in force (already checked by the caller).
    pub fn replace_world(&self, policy: Policy, directory: Directory) {
        *self.world.write().unwrap_or_else(|p| p.into_inner()) =
            Arc::new(World { policy, directory });
    }

    /// Runs `attempt` until it commits without a conflict.
    fn with_retries<T>(
        &self,
        mut attempt: impl FnMut() -> Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        for _ in 1..CAS_ATTEMPTS {
            match attempt() {
                Err(EngineError::Store(StoreError::Conflict)) => continue,
                other => return other,
            }
        }
        attempt()
    }
}

impl World {
    /// The active person an actor acts as; who else could act?
    pub fn acting_person(&self, actor: &Actor) -> Result<&Person, EngineError> {
        let id = actor
            .person_id()
            .ok_or_else(|| EngineError::NotAllowed("this action needs a person".to_owned()))?;
        self.person(id)
    }

    pub fn person(&self, id: &PersonId) -> Result<&Person, EngineError> {
        match self.directory.person(id) {
            Some(p) if p.active => Ok(p),
            Some(_) => Err(EngineError::NotAllowed(format!(
                "`{id}` is not active in the directory"
            ))),
            None => Err(EngineError::NotFound(format!(
                "Gatehouse does not know `{id}`; ask the IAM team to add them to the directory"
            ))),
        }
    }

    pub fn defaults(&self) -> &Defaults {
        &self.policy.defaults
    }
}
