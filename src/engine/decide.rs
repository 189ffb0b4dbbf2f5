//! Deciding: approve, approve with changes, reject, cancel. Authority is re-derived from
//! the stored request on every call, and a compare-and-swap makes double clicks and
//! concurrent approvals produce exactly one decision.

use super::{Engine, EngineError, pending_due};
use crate::domain::audit::Actor;
use crate::domain::grant::Grant;
use crate::domain::ids::RequestId;
use crate::domain::reason::read_reason;
use crate::domain::request::{AccessRequest, Changes, Progress};
use crate::store::{Commit, Expect, RequestWrite};

/// What a decision did.
#[derive(Clone, Debug)]
pub struct Decided {
    pub request: AccessRequest,
    pub progress: Option<Progress>,
    /// The grant, once the last stage approved the request.
    pub grant: Option<Grant>,
}

impl Engine {
    pub(super) fn load_request(
        &self,
        id: RequestId,
    ) -> Result<crate::store::Versioned<AccessRequest>, EngineError> {
        self.store
            .request(id)?
            .ok_or_else(|| EngineError::NotFound(format!("there is no request {id}")))
    }

    /// Approves the current stage of a request, with `changes` when not empty.
    #[tracing::instrument(name = "approve", skip_all, fields(request = %id))]
    pub fn approve(
        &self,
        actor: &Actor,
        id: RequestId,
        changes: &Changes,
    ) -> Result<Decided, EngineError> {
        self.with_retries(|| {
            let world = self.world();
            let approver = world.acting_person(actor)?.id.clone();
            let stored = self.load_request(id)?;
            let mut request = stored.value;
            let resource = world.policy.resource(&request.resource).ok_or_else(|| {
                EngineError::NotFound(format!("`{}` is no longer in the policy", request.resource))
            })?;
            let now = self.now();
            let outcome = request.approve(
                actor,
                &approver,
                changes,
                resource,
                world.defaults().distinct_approvers,
                now,
            )?;
            let progress = outcome.progress.clone();
            let mut commit = Commit {
                events: outcome.events.clone(),
                effects: outcome.effects.clone(),
                ..Commit::default()
            };
            let grant = match progress {
                Progress::Counted { .. } | Progress::NextStage { .. } => {
                    commit.requests.push(RequestWrite {
                        request: request.clone(),
                        expect: Expect::Version(stored.version),
                        due: pending_due(&request, world.defaults()),
                    });
                    None
                }
                Progress::Approved => {
                    let grant = self.approve_into_grant(
                        &mut request,
                        actor,
                        now,
                        &mut commit,
                        Expect::Version(stored.version),
                        None,
                    )?;
                    commit.effects.extend(outcome.granted(grant.id));
                    Some(grant)
                }
            };
            self.commit(commit)?;
            Ok(Decided {
                request,
                progress: Some(progress),
                grant,
            })
        })
    }

    /// Rejects a request; any approver of its current stage may.
    #[tracing::instrument(name = "reject", skip_all, fields(request = %id))]
    pub fn reject(
        &self,
        actor: &Actor,
        id: RequestId,
        reason: &str,
    ) -> Result<Decided, EngineError> {
        let reason = read_reason(reason).map_err(|e| EngineError::Refused(e.into()))?;
        let reason = reason.as_str();
        if reason.is_empty() {
            return Err(EngineError::NotAllowed(
                "say why you reject it: a reason is required".to_owned(),
            ));
        }
        self.with_retries(|| {
            let world = self.world();
            let approver = world.acting_person(actor)?.id.clone();
            let stored = self.load_request(id)?;
            let mut request = stored.value;
            let now = self.now();
            let decision = request.reject(
                actor,
                &approver,
                reason,
                world.defaults().distinct_approvers,
                now,
            )?;
            let commit = Commit {
                requests: vec![RequestWrite {
                    request: request.clone(),
                    expect: Expect::Version(stored.version),
                    due: None,
                }],
                events: decision.events,
                effects: decision.effects,
                ..Commit::default()
            };
            self.commit(commit)?;
            Ok(Decided {
                request,
                progress: None,
                grant: None,
            })
        })
    }

    /// Withdraws a pending request: its requester may, and so may an admin.
    #[tracing::instrument(name = "cancel", skip_all, fields(request = %id))]
    pub fn cancel(&self, actor: &Actor, id: RequestId) -> Result<Decided, EngineError> {
        self.with_retries(|| {
            let world = self.world();
            let person = world.acting_person(actor)?;
            let admin = world.policy.is_admin(person);
            let by = person.id.clone();
            let stored = self.load_request(id)?;
            let mut request = stored.value;
            let now = self.now();
            let decision = request.cancel(actor, &by, admin, now)?;
            let commit = Commit {
                requests: vec![RequestWrite {
                    request: request.clone(),
                    expect: Expect::Version(stored.version),
                    due: None,
                }],
                events: decision.events,
                effects: decision.effects,
                ..Commit::default()
            };
            self.commit(commit)?;
            Ok(Decided {
                request,
                progress: None,
                grant: None,
            })
        })
    }
}
