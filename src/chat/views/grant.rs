//! The view of a grant: whose access it is, whether it is live, how long it has left, and
//! how it ended or how its post-hoc review came out.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{
    GrantButtons, PersonView, ResourceView, RoleView, TimeView, resource_and_role, risk_text,
};
use crate::domain::directory::Directory;
use crate::domain::duration::Duration;
use crate::domain::grant::{Grant, GrantState, ReviewOutcome};
use crate::domain::ids::PersonId;
use crate::domain::policy::Policy;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GrantView {
    /// `G-7`.
    pub id: String,
    pub request: String,
    pub person: PersonView,
    pub resource: ResourceView,
    pub role: RoleView,
    pub privileged: bool,
    pub risk: String,
    pub emergency: bool,
    /// `provisioning`, `active`, `revoking`, `revoked` or `failed`.
    pub state: &'static str,
    /// Whether the person holds (or is about to hold) the access.
    pub live: bool,
    pub granted_at: TimeView,
    /// None for standing access.
    pub expires_at: Option<TimeView>,
    /// What is left, like `45m`; none for standing or past access.
    pub expires_in: Option<String>,
    pub review_pending: bool,
    pub review_due: Option<TimeView>,
    /// `Confirmed by Sam Patel`, `Flagged by Sam Patel: not an incident`.
    pub review_outcome: Option<String>,
    /// How it ended: `expired`, `revoked by sue: left the team`, a provisioning error.
    pub ended: Option<String>,
    /// Extend, End now, Confirm and Flag, as buttons carry them.
    pub buttons: GrantButtons,
}

impl GrantView {
    pub fn new(grant: &Grant, directory: &Directory, policy: &Policy, now: DateTime<Utc>) -> Self {
        let (resource, role, found) = resource_and_role(policy, &grant.resource, &grant.role);
        let name = |id: &PersonId| PersonView::new(id, directory).name;
        let expires_in = grant
            .expires_at
            .filter(|at| *at > now && grant.is_live())
            .map(|at| remaining(at - now));
        GrantView {
            id: grant.id.to_string(),
            request: grant.request.to_string(),
            person: PersonView::new(&grant.person, directory),
            privileged: found.is_some_and(|(_, r)| r.privileged),
            risk: risk_text(found),
            emergency: grant.emergency,
            state: grant.state.name(),
            live: grant.is_live(),
            granted_at: TimeView::new(grant.granted_at),
            expires_at: grant.expires_at.map(TimeView::new),
            expires_in,
            review_pending: grant.review_pending(),
            review_due: grant.review.as_ref().map(|r| TimeView::new(r.due)),
            review_outcome: grant.review.as_ref().and_then(|r| r.outcome.as_ref()).map(
                |o| match o {
                    ReviewOutcome::Confirmed { by, .. } => format!("Confirmed by {}", name(by)),
                    ReviewOutcome::Flagged { by, note, .. } if note.trim().is_empty() => {
                        format!("Flagged by {}", name(by))
                    }
                    ReviewOutcome::Flagged { by, note, .. } => {
                        format!("Flagged by {}: {}", name(by), note.trim())
                    }
                },
            ),
            ended: match &grant.state {
                GrantState::Revoking { reason, .. } | GrantState::Revoked { reason, .. } => {
                    Some(reason.to_string())
                }
                GrantState::Failed { error, .. } => Some(format!("provisioning failed: {error}")),
                GrantState::Provisioning | GrantState::Active { .. } => None,
            },
            buttons: GrantButtons::new(grant.id),
            resource,
            role,
        }
    }
}

/// A message with buttons about a grant (an expiry warning to its holder, an emergency
/// review to a reviewer) once there is nothing left to click: the grant, and what became of
/// it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GrantCardView {
    pub grant: GrantView,
    /// `Ended: ended early`, `Confirmed by Sue Chen`.
    pub outcome: String,
}

impl GrantCardView {
    /// What `recipient`'s card about `grant` becomes, or `None` while its buttons still
    /// work. The holder's card (Extend, End now) is decided once the access ends; anyone
    /// else's is an emergency review, decided once it has an outcome.
    pub fn decided(
        grant: &Grant,
        recipient: &PersonId,
        directory: &Directory,
        policy: &Policy,
        now: DateTime<Utc>,
    ) -> Option<Self> {
        let view = GrantView::new(grant, directory, policy, now);
        let outcome = if recipient == &grant.person {
            (!view.live).then(|| match &view.ended {
                Some(how) => format!("Ended: {how}"),
                None => "Ended".to_owned(),
            })?
        } else {
            view.review_outcome.clone()?
        };
        Some(GrantCardView {
            grant: view,
            outcome,
        })
    }
}

/// Time left, to the minute: `1h30m`, `45m`; `1m` when less than a minute is left.
fn remaining(left: chrono::TimeDelta) -> String {
    let secs = u64::try_from(left.num_seconds()).unwrap_or(0);
    Duration::from_secs((secs - secs % 60).max(60)).to_string()
}
