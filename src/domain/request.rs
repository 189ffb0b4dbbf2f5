//! The access request and its state machine:
//! pending(stage 1..n) → approved | rejected | cancelled | expired. Terminal states are final.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::audit::{Actor, AuditAction, AuditEvent};
use super::duration::Duration;
use super::effect::{Alert, Effect, Notice};
use super::ids::{GrantId, PersonId, RequestId, ResourceId, RoleId};
use super::policy::{RequestType, Resource};
use super::routing::{Approval, ApprovalPlan, RouteError, first_unreachable, make_reachable};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRequest {
    pub id: RequestId,
    pub requester: PersonId,
    pub resource: ResourceId,
    pub role: RoleId,
    /// `None` asks for standing access.
    pub duration: Option<Duration>,
    pub justification: String,
    /// Values of the role's request template, by field id.
    pub fields: BTreeMap<String, String>,
    pub kind: RequestKind,
    pub submitted_at: DateTime<Utc>,
    /// Who typed it, when not the requester (an operator through the admin API).
    pub submitted_by: Option<String>,
    pub plan: ApprovalPlan,
    /// Index into `plan.stages` of the stage deciding now.
    pub current_stage: usize,
    pub stage_started_at: DateTime<Utc>,
    /// A pending request expires at this moment.
    pub expires_at: DateTime<Utc>,
    pub last_reminded_at: Option<DateTime<Utc>>,
    /// Changes approvers made on the way (shorter duration, lesser role).
    pub changes: Vec<Change>,
    pub state: RequestState,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RequestKind {
    Access,
    /// More time on this grant.
    Extension {
        grant: GrantId,
    },
    Emergency,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RequestState {
    Pending,
    /// All stages approved; the grant holds what happens next.
    Approved {
        grant: GrantId,
        at: DateTime<Utc>,
    },
    Rejected {
        by: PersonId,
        reason: String,
        at: DateTime<Utc>,
    },
    Cancelled {
        by: PersonId,
        at: DateTime<Utc>,
    },
    Expired {
        at: DateTime<Utc>,
    },
}

impl RequestState {
    pub fn is_terminal(&self) -> bool {
        !matches!(self, RequestState::Pending)
    }

    pub fn name(&self) -> &'static str {
        match self {
            RequestState::Pending => "pending",
            RequestState::Approved { .. } => "approved",
            RequestState::Rejected { .. } => "rejected",
            RequestState::Cancelled { .. } => "cancelled",
            RequestState::Expired { .. } => "expired",
        }
    }
}

impl fmt::Display for RequestState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What an approver changed when approving.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub by: PersonId,
    pub at: DateTime<Utc>,
    pub duration: Option<(Option<Duration>, Duration)>,
    pub role: Option<(RoleId, RoleId)>,
    /// Why, in the approver's words, when they said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The changes an approver asks for with "Approve with changes".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    pub duration: Option<Duration>,
    pub role: Option<RoleId>,
    /// Why, for the requester; a reason alone changes nothing.
    #[serde(default)]
    pub reason: Option<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.duration.is_none() && self.role.is_none()
    }
}

/// What one approval did, and everything that follows from it: the engine commits the
/// events and effects with the request as they are, and makes the grant when `progress` is
/// [`Progress::Approved`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalOutcome {
    pub progress: Progress,
    /// What the audit log records, in order: the changes made, the stage approved, stages
    /// escalated, and the request approved once every stage is.
    pub events: Vec<AuditEvent>,
    /// Who is told what: cards for approvers added or now deciding, the cards refreshed,
    /// the requester told of changes.
    pub effects: Vec<Effect>,
    /// Once approved: whether the grant it makes is privileged access newly given, which
    /// the security channel hears of ([`ApprovalOutcome::granted`]). An extension of a
    /// privileged grant was alerted when the grant was first made.
    pub privileged: bool,
}

impl ApprovalOutcome {
    /// What follows the grant this approval made, once it has its id.
    pub fn granted(&self, grant: GrantId) -> Vec<Effect> {
        match self.privileged && self.progress == Progress::Approved {
            true => vec![Effect::Alert {
                alert: Alert::PrivilegedGranted { grant },
            }],
            false => Vec::new(),
        }
    }
}

/// What a rejection or a cancellation records and who it tells; the engine commits both
/// with the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub events: Vec<AuditEvent>,
    pub effects: Vec<Effect>,
}

/// How far one approval took the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// The stage still needs `remaining` approvals.
    Counted { stage: usize, remaining: usize },
    /// The stage is complete and `next` decides now.
    NextStage { completed: usize, next: usize },
    /// Every stage approved.
    Approved,
}

/// Why a decision was refused; each is a sentence for the person who tried.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    #[error("{id} is already {state}; nothing was changed")]
    NotPending { id: RequestId, state: &'static str },
    #[error(
        "you asked for {id} yourself, so you cannot approve or reject it; one of its approvers will"
    )]
    OwnRequest { id: RequestId },
    #[error(
        "you are not an approver of the current stage of {id} (\"{stage}\"), so nothing was changed"
    )]
    NotAnApprover { id: RequestId, stage: String },
    /// `now` says where the request stands: `it is now with Owner approval`.
    #[error("you already approved {id}; {now}")]
    AlreadyApproved { id: RequestId, now: String },
    #[error(
        "you already approved an earlier stage of {id}, and one person counts in one stage only"
    )]
    CountedEarlier { id: RequestId },
    #[error("only the requester can cancel {id}")]
    NotRequester { id: RequestId },
    /// A duration that does not shorten what was asked, or is too short to be worth granting.
    #[error("{0}")]
    NotShorter(String),
    /// A role that is not a lesser role of the resource.
    #[error("{0}")]
    NotLesserRole(String),
    #[error(
        "if you approve this stage, a later stage could no longer be completed ({0}); leave this stage to another approver"
    )]
    WouldStrandLaterStage(RouteError),
}

/// The shortest duration "approve with changes" may give: less is no access worth granting
/// (to give none, the approver rejects).
pub const MIN_CHANGED_DURATION: Duration = Duration::from_mins(1);

impl AccessRequest {
    /// Whether `person` takes part in this request: its requester, or an approver or
    /// escalation approver of any of its stages.
    pub fn involves(&self, person: &PersonId) -> bool {
        self.requester == *person
            || self
                .plan
                .stages
                .iter()
                .any(|s| s.approvers.contains(person) || s.escalate_to.contains(person))
    }

    pub fn request_type(&self) -> RequestType {
        match self.kind {
            RequestKind::Emergency => RequestType::Emergency,
            RequestKind::Extension { .. } => RequestType::Extension,
            RequestKind::Access if self.duration.is_none() => RequestType::Standard,
            RequestKind::Access => RequestType::Temporary,
        }
    }

    pub fn is_pending(&self) -> bool {
        self.state == RequestState::Pending
    }

    fn ensure_pending(&self) -> Result<(), DecisionError> {
        if self.state.is_terminal() {
            return Err(DecisionError::NotPending {
                id: self.id,
                state: self.state.name(),
            });
        }
        Ok(())
    }

    /// Who is asked to decide now: the approvers of the current stage, while the request is
    /// pending (those who already approved it too; [`AccessRequest::check_decider`] says
    /// who may still decide).
    pub fn awaiting(&self) -> impl Iterator<Item = &PersonId> {
        self.plan
            .stages
            .get(self.current_stage)
            .filter(|_| self.is_pending())
            .into_iter()
            .flat_map(|stage| stage.approvers.iter())
    }

    /// Whether this person may decide the current stage right now.
    pub fn check_decider(&self, person: &PersonId, distinct: bool) -> Result<(), DecisionError> {
        let approved_before = self.plan.stages.iter().any(|s| s.has_approved(person));
        if self.state.is_terminal() && approved_before {
            // A second click once the last approval decided it.
            let now = match self.state {
                RequestState::Approved { .. } => "it is approved".to_owned(),
                _ => format!("it has since been {}", self.state),
            };
            return Err(DecisionError::AlreadyApproved { id: self.id, now });
        }
        self.ensure_pending()?;
        if person == &self.requester {
            return Err(DecisionError::OwnRequest { id: self.id });
        }
        let stage = &self.plan.stages[self.current_stage];
        if stage.has_approved(person) {
            let remaining = stage.quorum.saturating_sub(stage.approvals.len());
            let now = format!(
                "{} still needs {remaining} more approval{} from someone else",
                stage.name,
                if remaining == 1 { "" } else { "s" }
            );
            return Err(DecisionError::AlreadyApproved { id: self.id, now });
        }
        if !stage.approvers.contains(person) {
            if approved_before {
                // Their approval completed an earlier stage, and the request moved on.
                let now = format!("it is now with {}", stage.name);
                return Err(DecisionError::AlreadyApproved { id: self.id, now });
            }
            return Err(DecisionError::NotAnApprover {
                id: self.id,
                stage: stage.name.clone(),
            });
        }
        if distinct
            && self.plan.stages[..self.current_stage]
                .iter()
                .any(|s| s.has_approved(person))
        {
            return Err(DecisionError::CountedEarlier { id: self.id });
        }
        Ok(())
    }

    /// Records one approval of the current stage, applying `changes` to what is asked.
    /// A change reaches the requester at once while the request goes on; when this
    /// approval completes it, the outcome notice lists every change instead.
    pub fn approve(
        &mut self,
        actor: &Actor,
        by: &PersonId,
        changes: &Changes,
        resource: &Resource,
        distinct: bool,
        now: DateTime<Utc>,
    ) -> Result<ApprovalOutcome, DecisionError> {
        self.check_decider(by, distinct)?;
        let mut next = self.clone();
        next.apply_changes(by, changes, resource, now)?;
        let stage = next.current_stage;
        next.plan.stages[stage].approvals.push(Approval {
            by: by.clone(),
            at: now,
        });
        if distinct {
            // One approval may leave later stages short of people: escalate them, or refuse.
            if first_unreachable(&next.plan, stage + 1, true).is_some() {
                make_reachable(&mut next.plan, stage + 1, true)
                    .map_err(DecisionError::WouldStrandLaterStage)?;
            }
        }
        let progress = if !next.plan.stages[stage].is_complete() {
            let s = &next.plan.stages[stage];
            Progress::Counted {
                stage,
                remaining: s.quorum - s.approvals.len(),
            }
        } else if stage + 1 < next.plan.stages.len() {
            next.current_stage = stage + 1;
            next.stage_started_at = now;
            next.last_reminded_at = None;
            Progress::NextStage {
                completed: stage,
                next: stage + 1,
            }
        } else {
            Progress::Approved
        };
        let (events, effects) = next.approval_record(self, actor, changes, stage, &progress, now);
        let privileged = !matches!(next.kind, RequestKind::Extension { .. })
            && resource.role(&next.role).is_some_and(|r| r.privileged);
        *self = next;
        Ok(ApprovalOutcome {
            progress,
            events,
            effects,
            privileged,
        })
    }

    /// The events and effects of an approval of `stage` that took `before` to `self`.
    fn approval_record(
        &self,
        before: &AccessRequest,
        actor: &Actor,
        changes: &Changes,
        stage: usize,
        progress: &Progress,
        now: DateTime<Utc>,
    ) -> (Vec<AuditEvent>, Vec<Effect>) {
        let id = self.id;
        let policy = format!("workflow:{}", self.plan.workflow);
        let event = |action| {
            AuditEvent::new(now, actor.clone(), action)
                .request(id)
                .policy(policy.clone())
        };
        let (mut events, mut effects) = (Vec::new(), Vec::new());
        if let Some(change) = self.changes.last().filter(|_| !changes.is_empty()) {
            let mut changed = event(AuditAction::ApprovedWithChanges {
                duration: changes.duration,
                role: changes.role.clone(),
            });
            if let Some(reason) = &change.reason {
                changed = changed.reason(reason.clone());
            }
            events.push(changed);
        }
        let remaining = match progress {
            Progress::Counted { remaining, .. } => *remaining,
            _ => 0,
        };
        events.push(event(AuditAction::StageApproved {
            stage: self.plan.stages[stage].name.clone(),
            remaining,
        }));
        // Approvers added to a stage so that it can still be decided: recorded, and asked
        // now when that stage is the one deciding.
        for (i, (old, new)) in before.plan.stages.iter().zip(&self.plan.stages).enumerate() {
            let added: Vec<_> = new.approvers.difference(&old.approvers).cloned().collect();
            if added.is_empty() {
                continue;
            }
            events.push(
                event(AuditAction::StageEscalated {
                    stage: new.name.clone(),
                    added: added.clone(),
                })
                .reason("an approval left this stage without enough other approvers"),
            );
            if i == self.current_stage && i == stage {
                effects.extend(added.into_iter().map(|approver| Effect::ApprovalCard {
                    request: id,
                    approver,
                    stage: i,
                }));
            }
        }
        effects.push(Effect::RefreshCards { request: id });
        if !changes.is_empty()
            && *progress != Progress::Approved
            && let Some(change) = self.changes.last()
        {
            effects.push(Effect::Notify {
                to: self.requester.clone(),
                notice: Notice::Changed {
                    request: id,
                    change: change.clone(),
                },
            });
        }
        match progress {
            Progress::Counted { .. } => {}
            Progress::NextStage { next, .. } => {
                effects.extend(self.plan.stages[*next].approvers.iter().map(|approver| {
                    Effect::ApprovalCard {
                        request: id,
                        approver: approver.clone(),
                        stage: *next,
                    }
                }));
            }
            Progress::Approved => events.push(event(AuditAction::RequestApproved)),
        }
        (events, effects)
    }

    fn apply_changes(
        &mut self,
        by: &PersonId,
        changes: &Changes,
        resource: &Resource,
        now: DateTime<Utc>,
    ) -> Result<(), DecisionError> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut change = Change {
            by: by.clone(),
            at: now,
            duration: None,
            role: None,
            reason: changes
                .reason
                .as_deref()
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_owned),
        };
        if let Some(shorter) = changes.duration {
            let asked = self
                .duration
                .map_or("standing access".to_owned(), |d| d.to_string());
            if shorter < MIN_CHANGED_DURATION {
                return Err(DecisionError::NotShorter(format!(
                    "approve with changes needs a duration of at least {MIN_CHANGED_DURATION} \
                     ({asked} was asked); to give no access at all, reject the request instead"
                )));
            }
            if self.duration.is_some_and(|d| shorter >= d) {
                return Err(DecisionError::NotShorter(format!(
                    "approve with changes can only shorten the duration: {asked} was asked, so give less than that"
                )));
            }
            change.duration = Some((self.duration, shorter));
            self.duration = Some(shorter);
        }
        if let Some(lesser) = &changes.role {
            if !resource.is_lesser_role(lesser, &self.role) {
                let lesser_roles: Vec<&str> = resource
                    .roles
                    .iter()
                    .take_while(|r| r.id != self.role)
                    .map(|r| r.id.as_str())
                    .collect();
                let options = if lesser_roles.is_empty() {
                    "none".to_owned()
                } else {
                    lesser_roles.join(", ")
                };
                return Err(DecisionError::NotLesserRole(format!(
                    "`{lesser}` is not a lesser role of {} than `{}`; lesser roles: {options}",
                    resource.id, self.role
                )));
            }
            change.role = Some((self.role.clone(), lesser.clone()));
            self.role = lesser.clone();
        }
        self.changes.push(change);
        Ok(())
    }

    pub fn reject(
        &mut self,
        actor: &Actor,
        by: &PersonId,
        reason: &str,
        distinct: bool,
        now: DateTime<Utc>,
    ) -> Result<Decision, DecisionError> {
        self.check_decider(by, distinct)?;
        self.state = RequestState::Rejected {
            by: by.clone(),
            reason: reason.to_owned(),
            at: now,
        };
        Ok(Decision {
            events: vec![
                AuditEvent::new(now, actor.clone(), AuditAction::RequestRejected)
                    .request(self.id)
                    .reason(reason)
                    .policy(format!("workflow:{}", self.plan.workflow)),
            ],
            effects: vec![
                Effect::RefreshCards { request: self.id },
                Effect::Notify {
                    to: self.requester.clone(),
                    notice: Notice::Rejected {
                        request: self.id,
                        by: by.clone(),
                        reason: reason.to_owned(),
                    },
                },
            ],
        })
    }

    /// The requester withdraws the request (`admin` lets an operator do it for them).
    pub fn cancel(
        &mut self,
        actor: &Actor,
        by: &PersonId,
        admin: bool,
        now: DateTime<Utc>,
    ) -> Result<Decision, DecisionError> {
        self.ensure_pending()?;
        if by != &self.requester && !admin {
            return Err(DecisionError::NotRequester { id: self.id });
        }
        self.state = RequestState::Cancelled {
            by: by.clone(),
            at: now,
        };
        Ok(Decision {
            events: vec![
                AuditEvent::new(now, actor.clone(), AuditAction::RequestCancelled).request(self.id),
            ],
            effects: vec![
                Effect::RefreshCards { request: self.id },
                Effect::Notify {
                    to: self.requester.clone(),
                    notice: Notice::Cancelled { request: self.id },
                },
            ],
        })
    }

    pub fn expire(&mut self, now: DateTime<Utc>) -> Result<(), DecisionError> {
        self.ensure_pending()?;
        self.state = RequestState::Expired { at: now };
        Ok(())
    }

    /// Marks the request approved once its grant exists.
    pub fn mark_approved(
        &mut self,
        grant: GrantId,
        now: DateTime<Utc>,
    ) -> Result<(), DecisionError> {
        self.ensure_pending()?;
        self.state = RequestState::Approved { grant, at: now };
        Ok(())
    }

    /// "Security review — 1 of 2 approvals".
    pub fn stage_summary(&self) -> String {
        match self.plan.stages.get(self.current_stage) {
            Some(stage) => format!(
                "{} — {} of {} approval{}",
                stage.name,
                stage.approvals.len(),
                stage.quorum,
                if stage.quorum == 1 { "" } else { "s" }
            ),
            None => "no approval needed".to_owned(),
        }
    }
}
