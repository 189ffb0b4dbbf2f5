//! The scheduler: one task that sleeps until the next due moment — a pending request's
//! reminder, escalation or expiry, a grant's expiry or expiry warning — and wakes early when
//! a commit may have brought that moment closer. No polling: each wake does what is due,
//! read from the time indexes, and goes back to sleep. On start it first catches up with
//! everything that came due while Gatehouse was down.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration as StdDuration;

use chrono::TimeDelta;
use tokio::sync::watch;

use crate::engine::schedule::{PASS_LIMIT, Pass};
use crate::engine::{Engine, EngineError, on_blocking_pool};

/// How long to sleep when nothing at all is scheduled, or after a failed pass.
const IDLE: StdDuration = StdDuration::from_secs(3600);
const AFTER_FAILURE: StdDuration = StdDuration::from_secs(5);

pub struct Scheduler {
    engine: Arc<Engine>,
    /// How long before expiry grantees are warned.
    warning: TimeDelta,
    /// When the daily digest goes out, if at all.
    digest: Option<cron::Schedule>,
    /// When remembered platform deliveries were last forgotten.
    last_forget: std::sync::Mutex<Option<chrono::DateTime<chrono::Utc>>>,
    /// See [`Scheduler::plans`].
    plans: Arc<AtomicU64>,
}

/// How soon after planning the scheduler plans again when commits keep coming: a commit
/// seen sooner waits for it. Planning reads an index per kind of due moment (a round trip
/// each on PostgreSQL), and a stream of submissions would otherwise pay them for every
/// commit; a due moment a commit brings this close is late by at most this much.
pub const REPLAN_EVERY: StdDuration = StdDuration::from_millis(100);

/// How often remembered platform deliveries (retry dedup) are swept.
const FORGET_EVERY: TimeDelta = TimeDelta::minutes(10);

impl Scheduler {
    pub fn new(engine: Arc<Engine>, warning: TimeDelta) -> Self {
        Self {
            engine,
            warning,
            digest: None,
            last_forget: std::sync::Mutex::new(None),
            plans: Arc::new(AtomicU64::new(0)),
        }
    }

    /// How many times [`Scheduler::run`] has planned its next wake, counted as it goes.
    pub fn plans(&self) -> Arc<AtomicU64> {
        self.plans.clone()
    }

    /// Also sends the security digest on `schedule`.
    pub fn with_digest(mut self, schedule: Option<cron::Schedule>) -> Self {
        self.digest = schedule;
        self
    }

    /// One wake: everything due now. A full pass means more is due: run again at once.
    pub fn wake(&self) -> Result<Pass, EngineError> {
        loop {
            let pass = self.engine.run_due(self.warning)?;
            let full = [
                pass.expired + pass.escalated + pass.reminded,
                pass.warned,
                pass.revoked,
            ]
            .iter()
            .any(|n| *n >= PASS_LIMIT);
            if !full {
                if let Some(schedule) = &self.digest {
                    self.engine.send_digest_if_due(schedule)?;
                }
                self.forget_old_deliveries()?;
                return Ok(pass);
            }
        }
    }

    fn forget_old_deliveries(&self) -> Result<(), EngineError> {
        let now = self.engine.now();
        let mut last = self.last_forget.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|at| now - at >= FORGET_EVERY) {
            self.engine.store().forget_deliveries(now)?;
            *last = Some(now);
        }
        Ok(())
    }

    /// How long to sleep from now until the next due moment.
    fn sleep_time(&self) -> Result<StdDuration, EngineError> {
        let digest = match &self.digest {
            Some(schedule) => self.engine.next_digest(schedule)?,
            None => None,
        };
        let next = [self.engine.next_wake(self.warning)?, digest]
            .into_iter()
            .flatten()
            .min();
        Ok(match next {
            Some(at) => (at - self.engine.now())
                .to_std()
                .unwrap_or(StdDuration::ZERO),
            None => IDLE,
        })
    }

    /// Runs until `shutdown` turns true. A commit does not start a pass: it may only have
    /// brought the next due moment closer, so the scheduler recomputes that moment and goes
    /// back to sleep until then (at once when it has come). Under a stream of commits it
    /// recomputes at most every [`REPLAN_EVERY`], for all the commits seen by then, rather
    /// than a few index reads for each commit.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let this = Arc::new(self);
        let mut changes = this.engine.subscribe();
        // The first pass catches up with what came due while Gatehouse was down.
        let mut due = true;
        loop {
            let worker = this.clone();
            // Leader work: on PostgreSQL its commits check this replica still leads.
            let planned = on_blocking_pool(move || {
                crate::store::leader_work(|| {
                    if due {
                        let pass = worker.wake()?;
                        if !pass.is_empty() {
                            tracing::info!(?pass, "scheduler pass");
                        }
                    }
                    worker.sleep_time()
                })
            })
            .await;
            let planned_at = tokio::time::Instant::now();
            this.plans.fetch_add(1, Ordering::Relaxed);
            let sleep = match planned {
                Ok(sleep) => sleep,
                Err(e) => {
                    tracing::error!(error = %e, "scheduler pass failed; trying again shortly");
                    AFTER_FAILURE
                }
            };
            let wake_at = planned_at + sleep;
            tokio::select! {
                () = tokio::time::sleep_until(wake_at) => due = true,
                changed = changes.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    // Not sooner than REPLAN_EVERY after the last plan, unless the wake
                    // planned then comes first; the plan then covers every commit seen.
                    let replan_at = planned_at + REPLAN_EVERY;
                    tokio::select! {
                        () = tokio::time::sleep_until(replan_at.min(wake_at)) => {}
                        _ = shutdown.changed() => break,
                    }
                    changes.borrow_and_update();
                    due = tokio::time::Instant::now() >= wake_at;
                }
                _ = shutdown.changed() => break,
            }
            if *shutdown.borrow() {
                break;
            }
        }
    }
}
