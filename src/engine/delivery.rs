//! A platform delivery (a Slack request or retry, a Discord interaction) claimed for the work
//! it leads to. Its ids are recorded in the same commit as that work
//! ([`crate::store::Commit::deliveries`]), never before it: a crash or a failure before the
//! work commits leaves nothing recorded, and the platform's retry does the work. While the
//! delivery is handled, its ids are held in memory (so a retry that arrives meanwhile is a
//! repeat); a delivery whose work commits nothing has them recorded on their own when it is
//! done, unless its work failed on our side.
//!
//! The claim reaches the commit the way leader work does on PostgreSQL: the facade call runs
//! its work with the claim set for the thread ([`during`]), and [`crate::engine::Engine::commit`]
//! takes it from there ([`current`]).

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};

use super::Engine;

/// The delivery ids being handled now, by any clone of the facade.
pub(crate) type InFlight = Arc<Mutex<HashSet<String>>>;

/// What became of a claimed delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// Nothing committed yet.
    Open,
    /// Its ids were recorded with the work's commit.
    Committed,
    /// Work for it failed on our side (the store, a bug) without committing: nothing is
    /// recorded, so a retry does the work.
    Failed,
    /// Its work's commit was refused: another replica committed the same delivery's work
    /// first (Discord hands an interaction to every replica's session).
    Repeat,
}

/// A delivery being handled: its ids, held in flight until it is dropped.
pub(crate) struct Claim {
    keys: Vec<String>,
    until: DateTime<Utc>,
    outcome: Mutex<Outcome>,
    in_flight: InFlight,
    engine: Arc<Engine>,
}

impl Claim {
    /// Claims those of `keys` not in flight already; whether they all were not (a repeat
    /// otherwise, whose other ids are then recorded when the claim is let go).
    pub(crate) fn take(
        engine: Arc<Engine>,
        in_flight: &InFlight,
        mut keys: Vec<String>,
        until: DateTime<Utc>,
    ) -> (Arc<Claim>, bool) {
        let mut held = in_flight.lock().unwrap_or_else(PoisonError::into_inner);
        let all = keys.len();
        keys.retain(|key| !held.contains(key));
        held.extend(keys.iter().cloned());
        drop(held);
        let first = keys.len() == all;
        let claim = Arc::new(Claim {
            keys,
            until,
            outcome: Mutex::new(Outcome::Open),
            in_flight: in_flight.clone(),
            engine,
        });
        (claim, first)
    }

    /// The ids to record with a commit, each with the time it is remembered until.
    pub(crate) fn entries(&self) -> Vec<(String, DateTime<Utc>)> {
        self.keys.iter().map(|k| (k.clone(), self.until)).collect()
    }

    fn outcome(&self) -> Outcome {
        *self.outcome.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, outcome: Outcome) {
        *self.outcome.lock().unwrap_or_else(PoisonError::into_inner) = outcome;
    }

    /// Its ids were recorded with a commit.
    pub(crate) fn committed(&self) {
        self.set(Outcome::Committed);
    }

    /// Its work's commit was refused because the delivery's ids were recorded meanwhile.
    pub(crate) fn repeated(&self) {
        self.set(Outcome::Repeat);
    }

    /// Whether it turned out to be a repeat while its work was being done.
    pub(crate) fn is_repeat(&self) -> bool {
        self.outcome() == Outcome::Repeat
    }

    /// Work for it failed on our side before anything committed.
    pub(crate) fn failed(&self) {
        if self.outcome() == Outcome::Open {
            self.set(Outcome::Failed);
        }
    }

    /// Whether a commit may still record its ids.
    pub(crate) fn is_open(&self) -> bool {
        matches!(self.outcome(), Outcome::Open | Outcome::Failed)
    }

    fn release(&self) {
        let mut held = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for key in &self.keys {
            held.remove(key);
        }
    }

    /// Records the ids on their own (a delivery whose work committed nothing), then lets
    /// them go.
    fn record_alone(&self) {
        for key in &self.keys {
            if let Err(error) = self.engine.store().first_delivery(key, self.until) {
                tracing::warn!(%error, "cannot record a delivery that changed nothing");
            }
        }
        self.release();
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if self.outcome() != Outcome::Open {
            self.release();
            return;
        }
        // Recorded on the blocking pool when there is one (a handler's claim ends in async
        // code), before the ids stop being held, so that no repeat slips between.
        let claim = Claim {
            keys: std::mem::take(&mut self.keys),
            until: self.until,
            outcome: Mutex::new(Outcome::Committed),
            in_flight: self.in_flight.clone(),
            engine: self.engine.clone(),
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(move || claim.record_alone())),
            Err(_) => claim.record_alone(),
        }
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Claim>>> = const { RefCell::new(None) };
}

/// Runs `work` with `claim` as the delivery its commits record (see the module's text).
pub(crate) fn during<T>(claim: Option<Arc<Claim>>, work: impl FnOnce() -> T) -> T {
    struct Reset(Option<Arc<Claim>>);
    impl Drop for Reset {
        fn drop(&mut self) {
            let before = self.0.take();
            CURRENT.with(|current| *current.borrow_mut() = before);
        }
    }
    let _reset = Reset(CURRENT.with(|current| current.replace(claim)));
    work()
}

/// The delivery the running work's commits record, while none has yet.
pub(crate) fn current() -> Option<Arc<Claim>> {
    CURRENT
        .with(|current| current.borrow().clone())
        .filter(|claim| claim.is_open())
}
