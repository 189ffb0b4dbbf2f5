//! What an approved request does to grants: it makes a new one, or, for an extension, moves
//! the end of the live one. Each returns what the engine commits with it: the audit event, the
//! provisioning to carry out, and what the requester is told.

use chrono::{DateTime, Utc};

use super::{Grant, GrantError, GrantState, PostHocReview};
use crate::domain::audit::{Actor, AuditAction, AuditEvent};
use crate::domain::effect::{Effect, Notice};
use crate::domain::ids::GrantId;
use crate::domain::request::{AccessRequest, Decision};

impl Grant {
    /// The grant `request` makes once approved, under the new id `id`: provisioning from
    /// `now`, for the request's duration (none: standing access the policy allows), with the
    /// post-hoc review that emergency access owes. The decision records its creation, has it
    /// provisioned, and tells the requester.
    pub fn from_approved(
        request: &AccessRequest,
        id: GrantId,
        actor: &Actor,
        now: DateTime<Utc>,
        review: Option<PostHocReview>,
    ) -> (Grant, Decision) {
        let grant = Grant {
            id,
            person: request.requester.clone(),
            resource: request.resource.clone(),
            role: request.role.clone(),
            request: request.id,
            granted_at: now,
            expires_at: request.duration.map(|d| now + d.to_chrono()),
            emergency: review.is_some(),
            review,
            warned_at: None,
            state: GrantState::Provisioning,
        };
        let created = AuditEvent::new(
            now,
            actor.clone(),
            AuditAction::GrantCreated {
                person: grant.person.clone(),
                resource: grant.resource.clone(),
                role: grant.role.clone(),
                expires_at: grant.expires_at,
            },
        )
        .request(request.id)
        .grant(id);
        let decision = Decision {
            events: vec![created],
            effects: vec![
                Effect::Provision { grant: id },
                Effect::Notify {
                    to: request.requester.clone(),
                    notice: Notice::Approved {
                        request: request.id,
                        grant: id,
                    },
                },
            ],
        };
        (grant, decision)
    }

    /// An approved extension `request` moves this live grant's end by the request's duration,
    /// counted from the later of its current end and `now` (an extension asked for after a
    /// late warning does not lose the time already past). A grant without an end keeps none.
    /// The decision records the new end and tells the requester.
    pub fn extend_for(
        &mut self,
        request: &AccessRequest,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Decision, GrantError> {
        let base = self.expires_at.map(|end| end.max(now));
        let expires_at = match (base, request.duration) {
            (Some(base), Some(more)) => Some(base + more.to_chrono()),
            _ => None,
        };
        self.extend_to(expires_at)?;
        let extended = AuditEvent::new(
            now,
            actor.clone(),
            AuditAction::GrantExtended { expires_at },
        )
        .request(request.id)
        .grant(self.id);
        Ok(Decision {
            events: vec![extended],
            effects: vec![Effect::Notify {
                to: request.requester.clone(),
                notice: Notice::Extended {
                    grant: self.id,
                    expires_at,
                    request: Some(request.id),
                },
            }],
        })
    }
}
