//! The lease that says which replica runs the scheduler and the outbox: the one `leader`
//! row, held by one replica until it expires (in the database's clock), renewed by its
//! holder, taken over by another once expired. Each takeover increments `token`, the fencing
//! token: work only the leader may do carries the token it was started under and checks it
//! in the transaction that records it (see `write`), so that a replica that lost the lease
//! without knowing (paused, cut off from the database) cannot record an effect the new
//! leader also records.
//!
//! A replica also stops trusting its lease on its own clock, well before the database could
//! hand it to another: `Fence` forgets the token once the part of the lease that is safe
//! (from before the renewal was sent, less a margin) has passed, so a leader that cannot
//! renew stops starting work even before its renewal fails.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::PgStore;
use crate::store::StoreError;

/// How long a renewal is good for, in the database's clock.
pub const LEASE_TTL: Duration = Duration::from_secs(6);
/// How much of a lease a replica trusts on its own clock, counted from before it asked:
/// the rest is margin for clocks that run at different rates and for stopping work.
const TRUSTED: f64 = 0.6;

/// A lease this replica holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The fencing token: grows with every takeover.
    pub token: u64,
    /// Until when this replica may act as leader, on its own clock.
    pub trusted_until: Instant,
}

/// The token that leader work must carry, while the lease is trusted.
#[derive(Default)]
pub(super) struct Fence {
    /// Whether leases are in force at all: a store used by one process alone (tests,
    /// `gatehouse migrate`) has no leader to check.
    enabled: AtomicBool,
    held: Mutex<Option<Lease>>,
}

impl Fence {
    /// The token leader work carries now; `None` when leases are not in force; `Deposed`
    /// when this replica is not (or no longer surely) the leader.
    pub(super) fn token(&self) -> Result<Option<u64>, StoreError> {
        if !self.enabled.load(Ordering::SeqCst) {
            return Ok(None);
        }
        match *self.held.lock().unwrap_or_else(PoisonError::into_inner) {
            Some(lease) if Instant::now() < lease.trusted_until => Ok(Some(lease.token)),
            _ => Err(StoreError::Deposed),
        }
    }

    fn set(&self, lease: Option<Lease>) {
        self.enabled.store(true, Ordering::SeqCst);
        *self.held.lock().unwrap_or_else(PoisonError::into_inner) = lease;
    }

    pub(super) fn held(&self) -> bool {
        !self.enabled.load(Ordering::SeqCst) || matches!(self.token(), Ok(Some(_)))
    }
}

impl PgStore {
    /// Holds the lease as `holder` for `ttl`: renews it when `holder` has it, takes it over
    /// when it has expired. The lease held, or `None` when another replica holds it. From
    /// the first call on, leader work on this store is fenced.
    pub fn hold_lease(&self, holder: &str, ttl: Duration) -> Result<Option<Lease>, StoreError> {
        let asked = Instant::now();
        let millis = ttl.as_millis() as f64;
        let holder = holder.to_owned();
        let held = self.pool.run(Duration::from_secs(2), async |conn| {
            let row = conn
                .query_opt(
                    "UPDATE leader SET \
                     token = CASE WHEN holder = $1 AND expires_at > now() THEN token ELSE token + 1 END, \
                     holder = $1, expires_at = now() + $2::float8 * interval '1 millisecond' \
                     WHERE id = 1 AND (expires_at <= now() OR holder = $1) RETURNING token",
                    &[&holder, &millis],
                )
                .await?;
            Ok(row.map(|r| r.get::<_, i64>(0) as u64))
        });
        let lease = match held {
            Ok(Some(token)) => Some(Lease {
                token,
                trusted_until: asked + ttl.mul_f64(TRUSTED),
            }),
            Ok(None) => None,
            Err(e) => {
                // Keep what is still trusted; the fence lets it lapse on its own.
                self.fence.enabled.store(true, Ordering::SeqCst);
                return Err(e);
            }
        };
        self.fence.set(lease);
        Ok(lease)
    }

    /// Lets go of the lease, if `holder` has it, so that another replica takes over at once
    /// (a clean shutdown) rather than when it expires.
    pub fn release_lease(&self, holder: &str) -> Result<(), StoreError> {
        self.fence.set(None);
        let holder = holder.to_owned();
        self.pool.run(Duration::from_secs(2), async |conn| {
            conn.execute(
                "UPDATE leader SET expires_at = '-infinity' WHERE id = 1 AND holder = $1",
                &[&holder],
            )
            .await?;
            Ok(())
        })
    }

    /// Who holds the lease, its token and how long ago it was last renewed (in the
    /// database's clock), for `/metrics` and operators.
    pub fn lease_holder(&self) -> Result<Option<(String, u64, Duration)>, StoreError> {
        self.pool.run(Duration::from_secs(2), async |conn| {
            let row = conn
                .query_opt(
                    "SELECT holder, token, extract(epoch FROM (expires_at - now()))::float8 \
                     FROM leader WHERE id = 1 AND holder IS NOT NULL AND expires_at > now()",
                    &[],
                )
                .await?;
            Ok(row.map(|r| {
                let left = r.get::<_, f64>(2).max(0.0);
                let age = (LEASE_TTL.as_secs_f64() - left).max(0.0);
                (
                    r.get::<_, String>(0),
                    r.get::<_, i64>(1) as u64,
                    Duration::from_secs_f64(age),
                )
            }))
        })
    }
}
