//! Leadership: which replica runs the scheduler and the outbox worker. Every replica serves
//! the front ends (HTTP, Slack, Discord, the admin API); exactly one at a time leads.
//!
//! With sled there is one process, and it always leads ([`Leadership::always`]). With
//! PostgreSQL, [`Leadership::lease`] keeps the lease in the database ([`crate::store::Lease`]):
//! it renews it every second while it holds it, tries to take it every second while another
//! holds it, and stands down as soon as it can no longer be sure of it — on its own clock,
//! well before the database could give it to another replica. [`while_leading`] starts the
//! leader's work each time the replica becomes leader and stops it (waiting for it) each time
//! it stops being one; a worker started anew treats the outbox as a restart does, looking for
//! deliveries a deposed leader may have made before posting again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::engine::{Clock, Engine, SystemClock};
use crate::metrics::Readiness;
use crate::store::{LEASE_TTL, PgStore};

/// How often the lease is renewed, or asked for.
const TICK: Duration = Duration::from_secs(1);
/// How long a standby waits on a request for the lease that does not come back.
const IDLE: Duration = Duration::from_secs(3600);

/// Whether this replica leads now; see the module documentation.
#[derive(Clone)]
pub struct Leadership {
    leads: watch::Receiver<bool>,
}

impl Leadership {
    /// The one replica: it always leads.
    pub fn always(readiness: &Readiness) -> Self {
        readiness.leading(true, None);
        let (tx, leads) = watch::channel(true);
        // Kept open for ever: the receiver must never see the channel close.
        std::mem::forget(tx);
        Self { leads }
    }

    /// Leads while holding the lease in `store` (the PostgreSQL store `engine` runs on), as
    /// `holder`, until `stop`; lets the lease go when stopped.
    pub fn lease(
        store: Arc<PgStore>,
        engine: Arc<Engine>,
        holder: String,
        mut stop: watch::Receiver<bool>,
    ) -> (Self, JoinHandle<()>) {
        let (tx, leads) = watch::channel(false);
        engine.metrics().readiness().leading(false, None);
        let task = tokio::spawn(async move {
            let mut trusted_until: Option<Instant> = None;
            // The renewal under way: a database that stops answering holds it up to its own
            // deadline, but never the stand-down, which comes when the lease stops being trusted.
            let mut asking = None;
            loop {
                let pending = asking.get_or_insert_with(|| {
                    let (store, who) = (store.clone(), holder.clone());
                    tokio::task::spawn_blocking(move || store.hold_lease(&who, LEASE_TTL))
                });
                let give_up = trusted_until.unwrap_or_else(|| Instant::now() + IDLE);
                tokio::select! {
                    held = pending => {
                        asking = None;
                        trusted_until = follow(&engine, &tx, &holder, held, trusted_until);
                        let next = Instant::now() + TICK;
                        let wake = trusted_until.map_or(next, |until| until.min(next));
                        tokio::select! {
                            () = tokio::time::sleep_until(wake.into()) => {}
                            _ = stop.changed() => break,
                        }
                    }
                    () = tokio::time::sleep_until(give_up.into()) => {}
                    _ = stop.changed() => break,
                }
                if trusted_until.is_some_and(|until| Instant::now() >= until) {
                    tracing::warn!(
                        holder,
                        "the lease could not be renewed in time; this replica stands down"
                    );
                    trusted_until = None;
                    engine.metrics().readiness().leading(false, None);
                    tx.send_if_modified(|leads| std::mem::replace(leads, false));
                }
                if *stop.borrow() {
                    break;
                }
            }
            tx.send_if_modified(|leads| std::mem::replace(leads, false));
            let _ = tokio::task::spawn_blocking(move || store.release_lease(&holder)).await;
        });
        (Self { leads }, task)
    }

    /// Whether this replica leads now.
    pub fn leads(&self) -> bool {
        *self.leads.borrow()
    }
}

/// What a renewal (or a request for the lease) came to: leading until when, if at all.
fn follow(
    engine: &Engine,
    tx: &watch::Sender<bool>,
    holder: &str,
    held: Result<
        Result<Option<crate::store::Lease>, crate::store::StoreError>,
        tokio::task::JoinError,
    >,
    trusted_until: Option<Instant>,
) -> Option<Instant> {
    let readiness = engine.metrics().readiness();
    match held {
        Ok(Ok(Some(lease))) => {
            if !*tx.borrow() {
                tracing::info!(
                    token = lease.token,
                    holder,
                    "this replica leads: it runs the scheduler and the outbox"
                );
            }
            readiness.leading(true, Some(Instant::now()));
            tx.send_if_modified(|leads| !std::mem::replace(leads, true));
            Some(lease.trusted_until)
        }
        Ok(Ok(None)) => {
            if *tx.borrow() {
                tracing::warn!(holder, "another replica took the lease; this one stands by");
            }
            readiness.leading(false, None);
            tx.send_if_modified(|leads| std::mem::replace(leads, false));
            None
        }
        Ok(Err(error)) => {
            tracing::warn!(%error, "the lease could not be renewed or asked for");
            trusted_until
        }
        Err(error) => {
            tracing::error!(%error, "renewing the lease panicked");
            trusted_until
        }
    }
}

/// Runs the leader's work while this replica leads, until `stop`: `start` is called with a
/// stop signal of its own each time the replica becomes leader, and the tasks it returns are
/// stopped and waited for each time it stops being one (or at `stop`).
pub fn while_leading(
    leadership: Leadership,
    mut stop: watch::Receiver<bool>,
    mut start: impl FnMut(watch::Receiver<bool>) -> Vec<JoinHandle<()>> + Send + 'static,
) -> JoinHandle<()> {
    let mut leads = leadership.leads;
    tokio::spawn(async move {
        loop {
            // Wait to lead.
            while !*leads.borrow_and_update() {
                tokio::select! {
                    changed = leads.changed() => if changed.is_err() { return },
                    _ = stop.changed() => return,
                }
                if *stop.borrow() {
                    return;
                }
            }
            let (halt, halted) = watch::channel(false);
            let tasks = start(halted);
            // Lead until deposed or stopped.
            let stopping = loop {
                tokio::select! {
                    changed = leads.changed() => {
                        if changed.is_err() || !*leads.borrow_and_update() {
                            break false;
                        }
                    }
                    _ = stop.changed() => break true,
                }
                if *stop.borrow() {
                    break true;
                }
            };
            let _ = halt.send(true);
            for task in tasks {
                if let Err(error) = task.await {
                    tracing::error!(%error, "leader work ended abnormally");
                }
            }
            if stopping {
                return;
            }
        }
    })
}

/// A name for this replica in the `leader` row: the host and the process.
pub fn holder_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "gatehouse".to_owned());
    let started = SystemClock.now().timestamp_millis();
    format!("{host}/{}/{started}", std::process::id())
}
