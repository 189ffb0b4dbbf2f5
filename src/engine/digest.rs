//! The daily digest for the security channel: what is waiting, what is held, and what is
//! stuck, on the schedule of `[scheduler] digest`.

use chrono::{DateTime, Utc};

use super::{Engine, EngineError};
use crate::domain::effect::{Alert, Effect};
use crate::store::Commit;

const MARK: &str = "digest";

impl Engine {
    /// Sends the digest if its schedule fired since the last one; whether it did. The first
    /// run only starts the count: no digest is replayed into the past.
    pub fn send_digest_if_due(&self, schedule: &cron::Schedule) -> Result<bool, EngineError> {
        let now = self.now();
        let Some(last) = self.store.mark(MARK)? else {
            self.commit(Commit {
                marks: vec![(MARK.to_owned(), now)],
                ..Commit::default()
            })?;
            return Ok(false);
        };
        if schedule.after(&last).next().is_none_or(|next| next > now) {
            return Ok(false);
        }
        // Counted by the store as grants are written: the digest reads no grant.
        let tally = self.store.grant_tally()?;
        let count = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        let alert = Alert::Digest {
            pending_requests: self
                .store
                .pending_due(DateTime::<Utc>::MAX_UTC, usize::MAX)?
                .len(),
            live_grants: count(tally.live()),
            emergency_unreviewed: count(tally.review_pending),
            revocations_failing: count(tally.revocations_failing),
        };
        self.commit(Commit {
            effects: vec![Effect::Alert { alert }],
            marks: vec![(MARK.to_owned(), now)],
            ..Commit::default()
        })?;
        Ok(true)
    }

    /// When the next digest is due.
    pub fn next_digest(
        &self,
        schedule: &cron::Schedule,
    ) -> Result<Option<DateTime<Utc>>, EngineError> {
        let from = self.store.mark(MARK)?.unwrap_or_else(|| self.now());
        Ok(schedule.after(&from).next())
    }
}
