//! What the scheduler asks of the engine at each wake: expire, escalate and remind pending
//! requests that are due, warn grantees before their access ends, and revoke what expired.
//! Each pass reads only what is due, from the time indexes, never everything that exists.

use chrono::{DateTime, TimeDelta, Utc};

use super::{Engine, EngineError};
use crate::domain::audit::{Actor, AuditAction, AuditEvent};
use crate::domain::effect::{Effect, Notice};
use crate::domain::ids::{PersonId, RequestId};
use crate::domain::schedule::{DueAction, due_action, needs_expiry_warning, pending_due};
use crate::store::{Commit, Expect, RequestWrite};

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pass {
    pub expired: usize,
    pub escalated: usize,
    pub reminded: usize,
    pub warned: usize,
    pub revoked: usize,
    pub reviews_reminded: usize,
    pub campaigns_started: usize,
    pub campaigns_timed_out: usize,
}

impl Pass {
    pub fn is_empty(&self) -> bool {
        self == &Pass::default()
    }
}

/// How many records one pass takes at most; the rest waits for the next pass, which the
/// scheduler starts at once when a pass was full.
pub const PASS_LIMIT: usize = 1024;

impl Engine {
    /// Runs everything due now. `warning` is how long before expiry grantees are warned.
    pub fn run_due(&self, warning: TimeDelta) -> Result<Pass, EngineError> {
        let mut pass = Pass {
            revoked: self.revoke_expired_grants(PASS_LIMIT)?,
            ..Pass::default()
        };
        let now = self.now();
        for (_, id) in self.store.pending_due(now, PASS_LIMIT)? {
            match self.with_retries(|| self.advance_pending(id, now))? {
                Some(DueAction::Expire) => pass.expired += 1,
                Some(DueAction::Escalate) => pass.escalated += 1,
                Some(DueAction::Remind) => pass.reminded += 1,
                None => {}
            }
        }
        pass.warned = self.warn_expiring(warning, now)?;
        pass.reviews_reminded = self.remind_emergency_reviewers(now)?;
        pass.campaigns_started = self.start_due_campaigns()?.len();
        pass.campaigns_timed_out = self.time_out_campaigns()?;
        Ok(pass)
    }

    /// Does what is due for one pending request, and re-files it under its next due time.
    #[tracing::instrument(name = "due", skip_all, fields(request = %id))]
    fn advance_pending(
        &self,
        id: RequestId,
        now: DateTime<Utc>,
    ) -> Result<Option<DueAction>, EngineError> {
        let world = self.world();
        let Some(stored) = self.store.request(id)? else {
            return Ok(None);
        };
        let mut request = stored.value;
        let action = due_action(&request, world.defaults(), now);
        let mut commit = Commit::default();
        match action {
            Some(DueAction::Expire) => {
                request.expire(now)?;
                commit.events.push(
                    AuditEvent::new(now, Actor::System, AuditAction::RequestExpired)
                        .request(id)
                        .policy(format!(
                            "defaults.pending_ttl = {}",
                            world.defaults().pending_ttl
                        )),
                );
                commit.effects.push(Effect::RefreshCards { request: id });
                commit.effects.push(Effect::Notify {
                    to: request.requester.clone(),
                    notice: Notice::Expired { request: id },
                });
            }
            Some(DueAction::Escalate) => {
                let stage_index = request.current_stage;
                let stage = &mut request.plan.stages[stage_index];
                let before = stage.approvers.clone();
                stage.escalate();
                let added: Vec<PersonId> = stage.approvers.difference(&before).cloned().collect();
                commit.events.push(
                    AuditEvent::new(
                        now,
                        Actor::System,
                        AuditAction::StageEscalated {
                            stage: stage.name.clone(),
                            added: added.clone(),
                        },
                    )
                    .request(id)
                    .policy(format!(
                        "defaults.escalate_after = {}",
                        world.defaults().escalate_after
                    )),
                );
                for approver in added {
                    commit.effects.push(Effect::ApprovalCard {
                        request: id,
                        approver,
                        stage: stage_index,
                    });
                }
            }
            Some(DueAction::Remind) => {
                let stage = &request.plan.stages[request.current_stage];
                let waiting: Vec<PersonId> = stage
                    .approvers
                    .iter()
                    .filter(|p| !stage.has_approved(p))
                    .cloned()
                    .collect();
                for person in &waiting {
                    commit.effects.push(Effect::Notify {
                        to: person.clone(),
                        notice: Notice::ApprovalReminder { request: id },
                    });
                }
                commit.events.push(
                    AuditEvent::new(
                        now,
                        Actor::System,
                        AuditAction::RemindersSent { to: waiting },
                    )
                    .request(id),
                );
                request.last_reminded_at = Some(now);
            }
            // Not due (yet, or any more): re-file it under its real due time.
            None => {}
        }
        let due = pending_due(&request, world.defaults());
        commit.requests.push(RequestWrite {
            request,
            expect: Expect::Version(stored.version),
            due,
        });
        self.commit(commit)?;
        Ok(action)
    }

    /// Reminds the reviewers of emergency access whose post-hoc review still waits, every
    /// `remind_every`, until one of them decides.
    pub fn remind_emergency_reviewers(&self, now: DateTime<Utc>) -> Result<usize, EngineError> {
        let every = self.world().defaults().remind_every.to_chrono();
        let mut reminded = 0;
        for (_, id) in self.store.reviews_due(now, PASS_LIMIT)? {
            let done = self.with_retries(|| {
                let Some(stored) = self.store.grant(id)? else {
                    return Ok(false);
                };
                let mut grant = stored.value;
                let Some(review) = grant.review.as_mut().filter(|r| r.outcome.is_none()) else {
                    return Ok(false);
                };
                review.next_reminder = Some(now + every);
                let reviewers = review.reviewers.clone();
                let mut commit = Commit::default();
                for reviewer in &reviewers {
                    commit.effects.push(Effect::Notify {
                        to: reviewer.clone(),
                        notice: Notice::EmergencyReview { grant: id },
                    });
                }
                commit.events.push(
                    AuditEvent::new(
                        now,
                        Actor::System,
                        AuditAction::RemindersSent { to: reviewers },
                    )
                    .grant(id)
                    .request(grant.request)
                    .policy("emergency.reviewers"),
                );
                commit.grants.push((grant, Expect::Version(stored.version)));
                self.commit(commit)?;
                Ok(true)
            })?;
            reminded += usize::from(done);
        }
        Ok(reminded)
    }

    /// Warns every grantee whose access ends within `window`, once per grant: each grant
    /// still owed a warning is read once, when it comes due, however many were warned before.
    pub fn warn_expiring(
        &self,
        window: TimeDelta,
        now: DateTime<Utc>,
    ) -> Result<usize, EngineError> {
        let mut warned = 0;
        for (_, id) in self.store.warnings_due(now, now + window, PASS_LIMIT)? {
            let done = self.with_retries(|| {
                let Some(stored) = self.store.grant(id)? else {
                    return Ok(false);
                };
                let mut grant = stored.value;
                if !needs_expiry_warning(&grant, window, now) {
                    return Ok(false);
                }
                grant.warned_at = Some(now);
                let expires_at = grant.expires_at.unwrap_or(now);
                let commit = Commit {
                    events: vec![
                        AuditEvent::new(now, Actor::System, AuditAction::ExpiryWarned)
                            .grant(id)
                            .request(grant.request),
                    ],
                    effects: vec![Effect::Notify {
                        to: grant.person.clone(),
                        notice: Notice::ExpiryWarning {
                            grant: id,
                            expires_at,
                        },
                    }],
                    grants: vec![(grant, Expect::Version(stored.version))],
                    ..Commit::default()
                };
                self.commit(commit)?;
                Ok(true)
            })?;
            warned += usize::from(done);
        }
        Ok(warned)
    }

    /// When the scheduler must wake next: the earliest pending due time, grant expiry, or
    /// start of an expiry warning still to give. `None` when nothing is scheduled.
    pub fn next_wake(&self, warning: TimeDelta) -> Result<Option<DateTime<Utc>>, EngineError> {
        let now = self.now();
        let candidates = [
            self.store.next_pending_due()?,
            self.store
                .grants_expiring(DateTime::<Utc>::MAX_UTC, 1)?
                .first()
                .map(|(at, _)| *at),
            self.store.next_warning_after(now)?.map(|at| at - warning),
            self.next_review_moment()?,
            self.store.next_review_due()?,
        ];
        Ok(candidates.into_iter().flatten().min())
    }
}
