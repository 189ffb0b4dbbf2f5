//! The seam between the front ends and the engine. Slack, Discord, the admin API (and so
//! the CLI), the directory sync, the outbound chat ports and the web portal hold a
//! [`Facade`], never an [`Engine`] or a store: whatever they do or show goes through it.
//!
//! The contract, for every `async` method:
//!
//! - **One trip to the blocking pool.** The engine and the store block (sled reads, a
//!   commit waits for its flush), so each call runs its whole work in one `spawn_blocking`
//!   ([`on_blocking_pool`]): loading, deciding, committing and reading back what the caller
//!   needs. A front end never chains calls to build one answer; when it needs more, the
//!   facade grows a call that reads it in the same trip.
//! - **Authority is the engine's.** A command names who acts ([`Actor`]); the engine
//!   re-derives from the stored records, on every call, whether they may (the requester
//!   never approves their own request, only the current stage's approvers decide, only an
//!   admin offboards). A front end authenticates the caller and parses what they sent, and
//!   nothing more.
//! - **Typed errors.** Every failure is an [`EngineError`]. A user error's `Display` is the
//!   sentence the person reads ([`EngineError::is_user_error`]); `Store` and `Internal` are
//!   ours: the front end logs them once and apologises with a reference.
//! - **Queries read by index.** Their cost grows with what they return, never with how
//!   much is stored, and none is capped in a way that could miss a record it promises.
//!
//! Nothing here knows a platform: wording and rendering stay in the front ends.

mod commands;
mod portal;
mod queries;

use std::sync::Arc;

use chrono::{DateTime, Utc};

pub use portal::{AuditPage, AuditQuery};
pub use queries::{Lookup, Overview, Records};

use super::delivery::{Claim, InFlight};
use super::{Engine, EngineError, World};
use crate::metrics::Metrics;

/// The engine as front ends see it: cheap to clone, shared by every handler.
///
/// A facade from [`Facade::first_delivery`] is for one platform delivery: the first commit
/// its calls make records the delivery's ids with the work (see `engine::delivery`).
#[derive(Clone)]
pub struct Facade {
    engine: Arc<Engine>,
    /// The delivery ids being handled, shared by every clone (the app makes one facade).
    in_flight: InFlight,
    /// The delivery this facade handles, if it is one's.
    delivery: Option<Arc<Claim>>,
}

impl Facade {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self {
            engine,
            in_flight: InFlight::default(),
            delivery: None,
        }
    }

    /// The policy and directory in force (in memory: no trip).
    pub fn world(&self) -> Arc<World> {
        self.engine.world()
    }

    /// The engine's clock: signatures' freshness windows and how long deliveries are
    /// remembered are measured against it.
    pub fn now(&self) -> DateTime<Utc> {
        self.engine.now()
    }

    /// What this Gatehouse counts, for `/metrics` and for front ends to count into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        self.engine.metrics()
    }

    /// Whether the delivery this facade handles turned out to be a repeat while it was being
    /// handled: another replica committed its work first (its answer is that replica's to
    /// give).
    pub fn is_repeat(&self) -> bool {
        self.delivery
            .as_ref()
            .is_some_and(|claim| claim.is_repeat())
    }

    /// Why the store can no longer write, when it cannot (reads no data: no trip).
    pub fn halted(&self) -> Option<String> {
        self.engine.store.halted()
    }

    /// Runs `work` on the engine in one trip to the blocking pool.
    async fn call<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Engine) -> Result<T, EngineError> + Send + 'static,
    ) -> Result<T, EngineError> {
        let engine = self.engine.clone();
        let delivery = self.delivery.clone().filter(|claim| claim.is_open());
        on_blocking_pool(move || match delivery {
            None => work(&engine),
            Some(claim) => {
                let done = super::delivery::during(Some(claim.clone()), || work(&engine));
                if done.as_ref().is_err_and(|e| !e.is_user_error()) {
                    claim.failed();
                }
                done
            }
        })
        .await
    }
}

/// Runs blocking work (the engine, the store) on tokio's blocking pool, so that it never
/// stalls the threads that serve HTTP and sockets. Work that panicked is an
/// [`EngineError::Internal`]: ours, logged where it is handled.
pub async fn on_blocking_pool<T, E>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, EngineError>
where
    T: Send + 'static,
    E: Into<EngineError> + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(done) => done.map_err(Into::into),
        Err(failed) => Err(EngineError::Internal(format!(
            "work on the blocking pool did not finish: {failed}"
        ))),
    }
}

#[cfg(test)]
mod tests;
