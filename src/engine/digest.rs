//! The daily digest for the security channel: what is waiting, what is held, and what is
//! stuck, on the schedule of `[scheduler] digest`.

use chrono::{DateTime, Utc};

use super::{Engine, EngineError};
use crate::domain::effect::{Alert, Effect};
use crate::domain::grant::{Grant, GrantState};
use crate::outbox::REVOKE_ATTEMPTS;
use crate::store::{Commit, Store};

const MARK: &str = "digest";

impl<S: Store> Engine<S> {
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
        let grants: Vec<Grant> = self.store.grants(false, usize::MAX)?;
        let alert = Alert::Digest {
            pending_requests: self.store.requests(true, usize::MAX)?.len(),
            live_grants: grants.iter().filter(|g| g.is_live()).count(),
            emergency_unreviewed: grants.iter().filter(|g| g.review_pending()).count(),
            revocations_failing: grants
                .iter()
                .filter(|g| matches!(g.state, GrantState::Revoking { attempts, .. } if attempts >= REVOKE_ATTEMPTS))
                .count(),
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
