//! Grants: access a person holds, from provisioning to revocation.
//!
//! ```text
//! provisioning ──► active ──► revoking ──► revoked
//!      │  └───────────────────────▲
//!      └─ fail ─► revoking (provisioning failed) ──► failed ──revoke──► revoking ──► revoked
//! ```
//!
//! A provisioning that fails is taken back before it counts as failed: the connector may have
//! changed something before it failed (a lost answer, a second step refused), and nothing may
//! stay behind that Gatehouse no longer tracks. A failed grant can still be revoked, for
//! grants that failed before that rule, and because revoking what is not there is harmless.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ids::{GrantId, PersonId, RequestId, ResourceId, RoleId};

/// Attempts at revoking before the security channel is alerted; retries go on daily.
pub const REVOKE_ATTEMPTS: u32 = 10;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub id: GrantId,
    pub person: PersonId,
    pub resource: ResourceId,
    pub role: RoleId,
    /// The request that created it (extensions keep pointing at the first one).
    pub request: RequestId,
    pub granted_at: DateTime<Utc>,
    /// `None` only for standing access the policy allows.
    pub expires_at: Option<DateTime<Utc>>,
    pub emergency: bool,
    /// For emergency grants: the review that must follow.
    pub review: Option<PostHocReview>,
    pub warned_at: Option<DateTime<Utc>>,
    pub state: GrantState,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum GrantState {
    /// Approved; the connector has not confirmed yet.
    Provisioning,
    Active {
        since: DateTime<Utc>,
    },
    /// Access is being taken back.
    Revoking {
        reason: RevokeReason,
        since: DateTime<Utc>,
        attempts: u32,
    },
    Revoked {
        reason: RevokeReason,
        at: DateTime<Utc>,
    },
    /// Provisioning failed, and whatever it may have left behind was taken back.
    Failed {
        error: String,
        at: DateTime<Utc>,
    },
}

impl GrantState {
    pub fn name(&self) -> &'static str {
        match self {
            GrantState::Provisioning => "provisioning",
            GrantState::Active { .. } => "active",
            GrantState::Revoking { .. } => "revoking",
            GrantState::Revoked { .. } => "revoked",
            GrantState::Failed { .. } => "failed",
        }
    }

    /// Whether the person holds (or is about to hold) this access.
    pub fn is_live(&self) -> bool {
        matches!(self, GrantState::Provisioning | GrantState::Active { .. })
    }

    pub fn is_terminal(&self) -> bool {
        matches!(self, GrantState::Revoked { .. } | GrantState::Failed { .. })
    }
}

/// Why access is taken back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum RevokeReason {
    Expired,
    EndedEarly,
    Revoked {
        by: PersonId,
        why: String,
    },
    ReviewSaidNo {
        by: Option<PersonId>,
    },
    Offboarded,
    /// A mover's new department or groups no longer allow it.
    NoLongerEligible,
    /// A bundle gave it, and the person (a mover) no longer matches that bundle.
    BundleNoLongerMatches {
        bundle: String,
    },
    /// Provisioning failed: whatever the connector may have changed is taken back.
    ProvisioningFailed {
        error: String,
    },
}

impl RevokeReason {
    /// Whether access ended this way comes back by itself when the person matches a bundle
    /// again (rehired, moved back): they lost it for who they were, not by anyone's choice.
    pub fn follows_the_directory(&self) -> bool {
        matches!(
            self,
            RevokeReason::Offboarded
                | RevokeReason::NoLongerEligible
                | RevokeReason::BundleNoLongerMatches { .. }
        )
    }

    /// Whether the holder's messages with buttons about the grant (Extend, End now) are
    /// refreshed as soon as its revocation starts, or only once the access is gone (or
    /// taking it back keeps failing). A grant that ran out waits: nobody pressed anything,
    /// a refresh now would be followed by the other within the connector's answer, and an
    /// Extend pressed meanwhile answers that the grant has ended. Whoever asked for any
    /// other revocation sees its buttons taken at once.
    pub fn refreshes_cards_at_once(&self) -> bool {
        !matches!(self, RevokeReason::Expired)
    }
}

impl std::fmt::Display for RevokeReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RevokeReason::Expired => f.write_str("expired"),
            RevokeReason::EndedEarly => f.write_str("ended early by its holder"),
            RevokeReason::Revoked { by, why } => write!(f, "revoked by {by}: {why}"),
            RevokeReason::ReviewSaidNo { by: Some(by) } => write!(f, "revoked in review by {by}"),
            RevokeReason::ReviewSaidNo { by: None } => {
                f.write_str("revoked: nobody kept it in review")
            }
            RevokeReason::Offboarded => f.write_str("revoked: the person left"),
            RevokeReason::NoLongerEligible => {
                f.write_str("revoked: the person moved and is no longer eligible")
            }
            RevokeReason::BundleNoLongerMatches { bundle } => write!(
                f,
                "revoked: the person moved and no longer matches bundle {bundle}"
            ),
            RevokeReason::ProvisioningFailed { error } => {
                write!(f, "provisioning failed: {error}")
            }
        }
    }
}

/// The review that follows break-glass access.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostHocReview {
    pub reviewers: Vec<PersonId>,
    pub due: DateTime<Utc>,
    /// When the reviewers are reminded next, while the review waits.
    #[serde(default)]
    pub next_reminder: Option<DateTime<Utc>>,
    pub outcome: Option<ReviewOutcome>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ReviewOutcome {
    Confirmed {
        by: PersonId,
        at: DateTime<Utc>,
    },
    Flagged {
        by: PersonId,
        at: DateTime<Utc>,
        note: String,
    },
}

/// Why a grant cannot make a transition.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    #[error("{id} is {state}, so it cannot be {action}")]
    WrongState {
        id: GrantId,
        state: &'static str,
        action: &'static str,
    },
    #[error("{id} is not yours; only {owner} can {action} it")]
    NotHolder {
        id: GrantId,
        owner: PersonId,
        action: &'static str,
    },
    #[error("{id} has no post-hoc review to decide")]
    NoReview { id: GrantId },
    #[error("the review of {id} is already done")]
    AlreadyReviewed { id: GrantId },
    #[error("you are not a reviewer of {id}")]
    NotAReviewer { id: GrantId },
}

impl Grant {
    fn wrong(&self, action: &'static str) -> GrantError {
        GrantError::WrongState {
            id: self.id,
            state: self.state.name(),
            action,
        }
    }

    pub fn is_live(&self) -> bool {
        self.state.is_live()
    }

    /// Whether `person` may ask for more time on this grant now: its holder, while it is live.
    pub fn check_extender(&self, person: &PersonId) -> Result<(), GrantError> {
        if &self.person != person {
            return Err(GrantError::NotHolder {
                id: self.id,
                owner: self.person.clone(),
                action: "extend",
            });
        }
        if !self.is_live() {
            return Err(self.wrong("extended"));
        }
        Ok(())
    }

    /// The connector confirmed the access exists.
    pub fn activate(&mut self, now: DateTime<Utc>) -> Result<(), GrantError> {
        match self.state {
            GrantState::Provisioning => {
                self.state = GrantState::Active { since: now };
                Ok(())
            }
            _ => Err(self.wrong("activated")),
        }
    }

    /// Provisioning failed for good: whatever the connector may have changed before it failed
    /// is taken back (the grant is revoking), and the grant is failed once that is confirmed.
    pub fn fail(&mut self, error: &str, now: DateTime<Utc>) -> Result<(), GrantError> {
        match self.state {
            GrantState::Provisioning => {
                self.state = GrantState::Revoking {
                    reason: RevokeReason::ProvisioningFailed {
                        error: error.to_owned(),
                    },
                    since: now,
                    attempts: 0,
                };
                Ok(())
            }
            _ => Err(self.wrong("marked failed")),
        }
    }

    /// Whether this grant is being taken back because its provisioning failed: the revoke
    /// undoes a grant the target may not know, so a target that does not know the person
    /// holds nothing for them.
    pub fn is_undoing(&self) -> bool {
        matches!(
            self.state,
            GrantState::Revoking {
                reason: RevokeReason::ProvisioningFailed { .. },
                ..
            }
        )
    }

    /// Starts taking the access back.
    pub fn start_revoke(
        &mut self,
        reason: RevokeReason,
        now: DateTime<Utc>,
    ) -> Result<(), GrantError> {
        // A failed grant may hold what its connector changed before failing (grants that
        // failed before failures were taken back): revoking it is always allowed.
        if !self.state.is_live() && !matches!(self.state, GrantState::Failed { .. }) {
            return Err(self.wrong("revoked"));
        }
        self.state = GrantState::Revoking {
            reason,
            since: now,
            attempts: 0,
        };
        Ok(())
    }

    /// The connector confirmed the access is gone. A grant whose provisioning failed is
    /// then failed; any other is revoked.
    pub fn finish_revoke(&mut self, now: DateTime<Utc>) -> Result<(), GrantError> {
        match &self.state {
            GrantState::Revoking {
                reason: RevokeReason::ProvisioningFailed { error },
                ..
            } => {
                self.state = GrantState::Failed {
                    error: error.clone(),
                    at: now,
                };
                Ok(())
            }
            GrantState::Revoking { reason, .. } => {
                self.state = GrantState::Revoked {
                    reason: reason.clone(),
                    at: now,
                };
                Ok(())
            }
            _ => Err(self.wrong("marked revoked")),
        }
    }

    /// Moves the end of a live grant (an approved extension).
    pub fn extend_to(&mut self, expires_at: Option<DateTime<Utc>>) -> Result<(), GrantError> {
        if !self.state.is_live() {
            return Err(self.wrong("extended"));
        }
        self.expires_at = expires_at;
        self.warned_at = None;
        Ok(())
    }

    /// Records the outcome of the post-hoc review of emergency access.
    pub fn review(&mut self, outcome: ReviewOutcome) -> Result<(), GrantError> {
        let id = self.id;
        let review = self.review.as_mut().ok_or(GrantError::NoReview { id })?;
        if review.outcome.is_some() {
            return Err(GrantError::AlreadyReviewed { id });
        }
        let by = match &outcome {
            ReviewOutcome::Confirmed { by, .. } | ReviewOutcome::Flagged { by, .. } => by,
        };
        if !review.reviewers.contains(by) {
            return Err(GrantError::NotAReviewer { id });
        }
        review.outcome = Some(outcome);
        Ok(())
    }

    /// When the reviewers of emergency access must be reminded, while the review waits.
    pub fn review_reminder(&self) -> Option<DateTime<Utc>> {
        self.review
            .as_ref()
            .filter(|r| r.outcome.is_none())
            .and_then(|r| r.next_reminder)
    }

    /// The expiry a warning is still owed for: the grant is live, ends, and its grantee has
    /// not been warned since it was given or last extended.
    pub fn warning_owed(&self) -> Option<DateTime<Utc>> {
        self.expires_at
            .filter(|_| self.is_live() && self.warned_at.is_none())
    }

    /// Whether the review of emergency access is still waiting.
    pub fn review_pending(&self) -> bool {
        self.review.as_ref().is_some_and(|r| r.outcome.is_none())
    }

    /// Whether taking the access back has failed [`REVOKE_ATTEMPTS`] times or more: the
    /// person may still hold it.
    pub fn revocation_failing(&self) -> bool {
        matches!(self.state, GrantState::Revoking { attempts, .. } if attempts >= REVOKE_ATTEMPTS)
    }
}

/// Counts over every stored grant, for the daily digest and `/metrics`: the store keeps
/// them up to date as grants are written, so that neither reads a million grants to count
/// them. A grant counts in the field of its state while live or revoking, and in
/// `review_pending` and `revocations_failing` while those hold for it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantTally {
    pub provisioning: u64,
    pub active: u64,
    pub revoking: u64,
    pub review_pending: u64,
    pub revocations_failing: u64,
}

impl GrantTally {
    /// What one grant adds to the tally.
    pub fn of(grant: &Grant) -> Self {
        let state = &grant.state;
        GrantTally {
            provisioning: u64::from(matches!(state, GrantState::Provisioning)),
            active: u64::from(matches!(state, GrantState::Active { .. })),
            revoking: u64::from(matches!(state, GrantState::Revoking { .. })),
            review_pending: u64::from(grant.review_pending()),
            revocations_failing: u64::from(grant.revocation_failing()),
        }
    }

    /// Grants that give access now (provisioning or active).
    pub fn live(&self) -> u64 {
        self.provisioning + self.active
    }

    /// The tally after a grant went from counting as `before` to counting as `after`.
    pub fn moved(self, before: GrantTally, after: GrantTally) -> GrantTally {
        let field = |total: u64, before: u64, after: u64| (total + after).saturating_sub(before);
        GrantTally {
            provisioning: field(self.provisioning, before.provisioning, after.provisioning),
            active: field(self.active, before.active, after.active),
            revoking: field(self.revoking, before.revoking, after.revoking),
            review_pending: field(
                self.review_pending,
                before.review_pending,
                after.review_pending,
            ),
            revocations_failing: field(
                self.revocations_failing,
                before.revocations_failing,
                after.revocations_failing,
            ),
        }
    }
}

mod approved;

#[cfg(test)]
mod tests;
