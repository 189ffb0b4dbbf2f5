//! Asking for access: validate, route, and either wait for approvers, grant at once
//! (auto-approval), or grant and review afterwards (emergency).

use chrono::{DateTime, Utc};

use super::{Engine, EngineError, World, pending_due};
use crate::domain::audit::{Actor, AuditAction, AuditEvent};
use crate::domain::effect::{Alert, Effect, Notice};
use crate::domain::grant::{Grant, PostHocReview};
use crate::domain::ids::{GrantId, RequestId};
use crate::domain::policy::RequestFacts;
use crate::domain::reason::read_reason;
use crate::domain::request::{AccessRequest, RequestKind, RequestState};
use crate::domain::routing::plan_stage;
use crate::domain::validation::{Ask, Holdings, Refusal, Validated, validate};
use crate::store::{Commit, Expect, RequestWrite, Sequence};

/// A stored request, and its grant when it was granted at once.
#[derive(Clone, Debug)]
pub struct Submitted {
    pub request: AccessRequest,
    pub grant: Option<Grant>,
}

impl Engine {
    /// Submits a request for `ask.requester`; `actor` is who typed it.
    #[tracing::instrument(name = "submit", skip_all, fields(request = tracing::field::Empty))]
    pub fn submit(&self, actor: &Actor, ask: Ask) -> Result<Submitted, EngineError> {
        let world = self.world();
        if actor
            .person_id()
            .is_some_and(|person| person != &ask.requester)
        {
            return Err(EngineError::NotAllowed(
                "you can only ask for access for yourself".to_owned(),
            ));
        }
        let pending: Vec<AccessRequest> = self
            .store
            .requests_of(&ask.requester)?
            .into_iter()
            .filter(AccessRequest::is_pending)
            .collect();
        let grants: Vec<_> = self.store.grants_of(&ask.requester)?;
        let holdings = Holdings {
            pending: &pending,
            grants: &grants,
        };
        let now = self.now();
        let validated = match validate(&ask, &world.policy, &world.directory, &holdings) {
            Ok(v) => v,
            Err(refusals) => {
                if let Some(rule) = refusals.sod_rule() {
                    // A blocked SoD conflict is a security signal: audit it and alert.
                    let event = AuditEvent::new(
                        now,
                        actor.clone(),
                        AuditAction::RequestDenied {
                            resource: ask.resource.as_str().into(),
                            role: ask.role.as_str().into(),
                            reasons: refusals.0.iter().map(ToString::to_string).collect(),
                        },
                    )
                    .policy(format!("sod:{rule}"));
                    // The reason as given, unless it was itself refused (a megabyte of it
                    // has no place in the audit log).
                    let event = match read_reason(&ask.justification) {
                        Ok(reason) => event.reason(reason),
                        Err(_) => event,
                    };
                    let alert = Alert::SodBlocked {
                        person: ask.requester.clone(),
                        rule: rule.to_owned(),
                        request: format!("{}/{}", ask.resource, ask.role),
                    };
                    self.commit(Commit {
                        events: vec![event],
                        effects: vec![Effect::Alert { alert }],
                        ..Commit::default()
                    })?;
                }
                for refusal in &refusals.0 {
                    if let Refusal::NoWayToApprove(route) = refusal {
                        // The requester is told to ask IAM; this says what IAM should fix.
                        tracing::warn!(
                            requester = %ask.requester,
                            resource = %ask.resource,
                            role = %ask.role,
                            problem = %route,
                            "a request was refused because nobody could approve it: fix the workflow's approvers or escalate_to in policy.toml"
                        );
                    }
                }
                self.metrics.request_refused(ask_type(&ask));
                return Err(EngineError::Refused(refusals));
            }
        };
        let id = RequestId(self.store.next_id(Sequence::Request)?);
        tracing::Span::current().record("request", tracing::field::display(id));
        let request = new_request(id, &ask, actor, validated.clone(), &world, now);
        let mut commit = Commit::default();
        commit.events.push(
            AuditEvent::new(
                now,
                actor.clone(),
                AuditAction::RequestSubmitted {
                    resource: request.resource.clone(),
                    role: request.role.clone(),
                    duration: request.duration,
                    stages: request.plan.stages.len(),
                    kind: Some(request.kind.clone()),
                },
            )
            .request(id)
            .reason(ask.justification.clone())
            .policy(match &validated.sod_review {
                Some(rule) => format!("workflow:{} + sod:{rule}", request.plan.workflow),
                None => format!("workflow:{}", request.plan.workflow),
            }),
        );
        let submitted = match &request.kind {
            RequestKind::Emergency => {
                self.grant_emergency(request, actor, &world, now, &mut commit)?
            }
            _ if request.plan.auto_approved => self.grant_now(request, actor, now, &mut commit)?,
            _ => {
                for approver in &request.plan.stages[0].approvers {
                    commit.effects.push(Effect::ApprovalCard {
                        request: id,
                        approver: approver.clone(),
                        stage: 0,
                    });
                }
                commit.effects.push(Effect::Notify {
                    to: request.requester.clone(),
                    notice: Notice::Submitted { request: id },
                });
                let due = pending_due(&request, world.defaults());
                commit.requests.push(RequestWrite {
                    request: request.clone(),
                    expect: Expect::New,
                    due,
                });
                Submitted {
                    request,
                    grant: None,
                }
            }
        };
        self.commit(commit)?;
        Ok(submitted)
    }

    /// Auto-approval: the request is approved as it is stored.
    fn grant_now(
        &self,
        mut request: AccessRequest,
        actor: &Actor,
        now: DateTime<Utc>,
        commit: &mut Commit,
    ) -> Result<Submitted, EngineError> {
        commit.events.push(
            AuditEvent::new(now, actor.clone(), AuditAction::RequestAutoApproved)
                .request(request.id)
                .policy(format!("workflow:{}", request.plan.workflow)),
        );
        let grant = self.approve_into_grant(&mut request, actor, now, commit, Expect::New, None)?;
        Ok(Submitted {
            request,
            grant: Some(grant),
        })
    }

    /// Break-glass: granted at once, alerted, and reviewed afterwards.
    fn grant_emergency(
        &self,
        mut request: AccessRequest,
        actor: &Actor,
        world: &World,
        now: DateTime<Utc>,
        commit: &mut Commit,
    ) -> Result<Submitted, EngineError> {
        let Some(emergency) = &world.policy.emergency else {
            return Err(EngineError::NotAllowed(
                "the policy has no emergency access".to_owned(),
            ));
        };
        let person = world.person(&request.requester)?;
        let resource = world.policy.resource(&request.resource).ok_or_else(|| {
            EngineError::NotFound(format!("there is no resource {}", request.resource))
        })?;
        let role = resource.role(&request.role).ok_or_else(|| {
            EngineError::NotFound(format!(
                "there is no role {}/{}",
                request.resource, request.role
            ))
        })?;
        let facts = RequestFacts {
            requester: person,
            resource,
            role,
            duration: request.duration,
            request_type: request.request_type(),
        };
        let reviewers: Vec<_> = plan_stage(&emergency.review_stage(), &facts, &world.directory)
            .approvers
            .into_iter()
            .collect();
        let review = PostHocReview {
            reviewers: reviewers.clone(),
            due: now + emergency.review_within.to_chrono(),
            next_reminder: Some(now + world.defaults().remind_every.to_chrono()),
            outcome: None,
        };
        let grant =
            self.approve_into_grant(&mut request, actor, now, commit, Expect::New, Some(review))?;
        commit.events.push(
            AuditEvent::new(
                now,
                actor.clone(),
                AuditAction::EmergencyGranted {
                    resource: grant.resource.clone(),
                    role: grant.role.clone(),
                    expires_at: grant.expires_at.unwrap_or(now),
                },
            )
            .request(request.id)
            .grant(grant.id)
            .reason(request.justification.clone())
            .policy("emergency"),
        );
        commit.effects.push(Effect::Alert {
            alert: Alert::EmergencyGranted { grant: grant.id },
        });
        for reviewer in reviewers {
            commit.effects.push(Effect::Notify {
                to: reviewer,
                notice: Notice::EmergencyReview { grant: grant.id },
            });
        }
        Ok(Submitted {
            request,
            grant: Some(grant),
        })
    }

    /// Turns a fully approved request into a grant (or an extension of one), queued in
    /// `commit` together with the request itself.
    pub(super) fn approve_into_grant(
        &self,
        request: &mut AccessRequest,
        actor: &Actor,
        now: DateTime<Utc>,
        commit: &mut Commit,
        expect: Expect,
        review: Option<PostHocReview>,
    ) -> Result<Grant, EngineError> {
        let grant = if let RequestKind::Extension { grant } = request.kind {
            let mut existing = self
                .store
                .grant(grant)?
                .ok_or_else(|| EngineError::NotFound(format!("there is no grant {grant}")))?;
            let decision = existing.value.extend_for(request, actor, now)?;
            commit.events.extend(decision.events);
            commit.effects.extend(decision.effects);
            commit
                .grants
                .push((existing.value.clone(), Expect::Version(existing.version)));
            existing.value
        } else {
            let id = GrantId(self.store.next_id(Sequence::Grant)?);
            let (grant, decision) = Grant::from_approved(request, id, actor, now, review);
            commit.events.extend(decision.events);
            commit.effects.extend(decision.effects);
            commit.grants.push((grant.clone(), Expect::New));
            grant
        };
        request.mark_approved(grant.id, now)?;
        commit.requests.push(RequestWrite {
            request: request.clone(),
            expect,
            // An approved request is no longer the scheduler's concern.
            due: None,
        });
        Ok(grant)
    }
}

fn new_request(
    id: RequestId,
    ask: &Ask,
    actor: &Actor,
    v: Validated,
    world: &World,
    now: DateTime<Utc>,
) -> AccessRequest {
    AccessRequest {
        id,
        requester: ask.requester.clone(),
        resource: v.resource,
        role: v.role,
        duration: v.duration,
        justification: ask.justification.trim().to_owned(),
        fields: ask.fields.clone(),
        kind: v.kind,
        submitted_at: now,
        submitted_by: match actor {
            Actor::Operator { token, .. } => Some(token.clone()),
            _ => None,
        },
        plan: v.plan,
        current_stage: 0,
        stage_started_at: now,
        expires_at: now + world.defaults().pending_ttl.to_chrono(),
        last_reminded_at: None,
        changes: Vec::new(),
        state: RequestState::Pending,
    }
}

impl Engine {
    /// Asks for more time on a live grant; routed like any request, as an extension.
    pub fn extend(
        &self,
        actor: &Actor,
        grant: GrantId,
        more: crate::domain::duration::Duration,
        reason: &str,
    ) -> Result<Submitted, EngineError> {
        let stored = self
            .store
            .grant(grant)?
            .ok_or_else(|| EngineError::NotFound(format!("there is no grant {grant}")))?;
        if actor.person_id().is_some_and(|p| p != &stored.value.person) {
            return Err(EngineError::NotAllowed(format!(
                "{grant} is not yours, so you cannot extend it; only {} can",
                stored.value.person
            )));
        }
        let ask = Ask {
            requester: stored.value.person.clone(),
            resource: stored.value.resource.to_string(),
            role: stored.value.role.to_string(),
            duration: Some(more),
            justification: reason.to_owned(),
            extends: Some(grant),
            ..Ask::default()
        };
        self.submit(actor, ask)
    }
}

/// The type of a request being asked for, as workflows' `request_type` sees it.
fn ask_type(ask: &Ask) -> crate::domain::policy::RequestType {
    use crate::domain::policy::RequestType;
    match (ask.emergency, ask.extends, ask.duration) {
        (true, _, _) => RequestType::Emergency,
        (false, Some(_), _) => RequestType::Extension,
        (false, None, None) => RequestType::Standard,
        (false, None, Some(_)) => RequestType::Temporary,
    }
}
