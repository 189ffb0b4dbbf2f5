//! Gauges read from the store when `/metrics` is scraped: nothing to keep in step, and
//! right after a restart too. Pending requests are found through the `pending_by_due`
//! index (proportional to what is pending), live grants are the store's grant tally (kept
//! as grants are written: a scrape reads no grant), and the outbox is scanned (it holds
//! only what is waiting).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{Number, Reading};
use crate::store::{Store, StoreError, WriteStats};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreGauges {
    /// Pending requests by the (1-based) stage deciding now.
    pub pending_by_stage: BTreeMap<usize, u64>,
    /// Live grants by state name.
    pub grants_by_state: BTreeMap<&'static str, u64>,
    pub outbox_depth: u64,
    pub outbox_retrying: u64,
    /// The store writer's counters (counters, read at the same time as the gauges).
    pub writes: WriteStats,
}

impl StoreGauges {
    /// Reads them from `store` (blocking: call on the blocking pool).
    pub fn read<S: Store + ?Sized>(store: &S) -> Result<Self, StoreError> {
        let mut gauges = StoreGauges::default();
        for (_, id) in store.pending_due(DateTime::<Utc>::MAX_UTC, usize::MAX)? {
            if let Some(request) = store.request(id)?.map(|v| v.value)
                && request.is_pending()
            {
                *gauges
                    .pending_by_stage
                    .entry(request.current_stage + 1)
                    .or_default() += 1;
            }
        }
        gauges.writes = store.write_stats();
        let tally = store.grant_tally()?;
        gauges.grants_by_state = BTreeMap::from([
            ("provisioning", tally.provisioning),
            ("active", tally.active),
            ("revoking", tally.revoking),
        ]);
        for entry in store.outbox(usize::MAX)? {
            gauges.outbox_depth += 1;
            if entry.attempts > 0 {
                gauges.outbox_retrying += 1;
            }
        }
        Ok(gauges)
    }

    pub(super) fn pending(&self) -> Vec<Reading> {
        self.pending_by_stage
            .iter()
            .map(|(stage, n)| (vec![("stage", stage.to_string())], Number::Count(*n)))
            .collect()
    }

    pub(super) fn grants(&self) -> Vec<Reading> {
        self.grants_by_state
            .iter()
            .map(|(state, n)| (vec![("state", (*state).to_owned())], Number::Count(*n)))
            .collect()
    }
}
