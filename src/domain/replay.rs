//! What the audit log says a grant or a request must be. Every change to a grant or a
//! request is committed together with the audit events that describe it, so replaying a
//! record's events gives the fields its record must hold. A restore replays them and
//! refuses a record that says otherwise: a grant's end moved to 2099 in a backup, even with
//! the backup's checksum made to match, no longer agrees with the events that gave it.
//!
//! What the events do not carry cannot be checked this way: who may approve a pending
//! request (its plan's approvers), its template fields, when it expires while pending and
//! when reminders were sent; a grant's review reminders; and, for requests submitted before
//! events recorded it, whether a pending request extends a grant (and which).

use chrono::{DateTime, SecondsFormat, Utc};

use super::audit::{Actor, AuditAction, AuditEvent};
use super::duration::Duration;
use super::grant::{Grant, GrantState, ReviewOutcome};
use super::ids::{GrantId, PersonId, RequestId, ResourceId, RoleId};
use super::request::{AccessRequest, RequestKind, RequestState};

/// A stored record that its audit events contradict, in words an operator can act on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Disagreement {
    #[error(
        "{record}'s {field} is {stored}, but its audit events say {audited}: the record was changed outside Gatehouse"
    )]
    Field {
        record: String,
        field: &'static str,
        stored: String,
        audited: String,
    },
    #[error("{record} has no {missing} event in the audit log: it was not written by Gatehouse")]
    Unaudited {
        record: String,
        missing: &'static str,
    },
    #[error(
        "{record} is named by the audit log but is not among the stored records: it was deleted"
    )]
    Missing { record: String },
}

/// A grant's state as its events tell it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditedGrantState {
    Provisioning,
    Active {
        since: DateTime<Utc>,
    },
    Revoking {
        since: DateTime<Utc>,
        reason: Option<String>,
        attempts: u32,
        /// The error of a failed provisioning this revoke undoes: once confirmed, the grant
        /// is failed rather than revoked.
        undoing: Option<String>,
    },
    Revoked {
        at: DateTime<Utc>,
        reason: Option<String>,
    },
    Failed {
        at: DateTime<Utc>,
        error: String,
    },
}

/// What a grant's audit events say it must be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditedGrant {
    pub person: PersonId,
    pub resource: ResourceId,
    pub role: RoleId,
    pub request: Option<RequestId>,
    pub granted_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub emergency: bool,
    pub warned_at: Option<DateTime<Utc>>,
    pub state: AuditedGrantState,
    /// The post-hoc review's outcome, as `confirmed by …` / `flagged by …`, once decided.
    pub review: Option<String>,
}

impl AuditedGrant {
    /// Replays the events about one grant, in order; `None` without the event that made it.
    pub fn replay(events: &[&AuditEvent]) -> Option<Self> {
        let mut grant: Option<AuditedGrant> = None;
        for event in events {
            let at = event.at;
            if let AuditAction::GrantCreated {
                person,
                resource,
                role,
                expires_at,
            } = &event.action
            {
                grant = Some(AuditedGrant {
                    person: person.clone(),
                    resource: resource.clone(),
                    role: role.clone(),
                    request: event.request,
                    granted_at: at,
                    expires_at: *expires_at,
                    emergency: false,
                    warned_at: None,
                    state: AuditedGrantState::Provisioning,
                    review: None,
                });
                continue;
            }
            let Some(g) = grant.as_mut() else { continue };
            match &event.action {
                AuditAction::EmergencyGranted { .. } => g.emergency = true,
                AuditAction::GrantExtended { expires_at } => {
                    g.expires_at = *expires_at;
                    g.warned_at = None;
                }
                AuditAction::ExpiryWarned => g.warned_at = Some(at),
                AuditAction::GrantProvisioned => g.state = AuditedGrantState::Active { since: at },
                // What the failed provisioning may have changed is taken back first; the grant
                // is failed once that is confirmed (see `Grant::fail`).
                AuditAction::ProvisioningFailed { error } => {
                    g.state = AuditedGrantState::Revoking {
                        since: at,
                        reason: Some(format!("provisioning failed: {error}")),
                        attempts: 0,
                        undoing: Some(error.clone()),
                    };
                }
                AuditAction::RevocationStarted => {
                    g.state = AuditedGrantState::Revoking {
                        since: at,
                        reason: event.reason.clone(),
                        attempts: 0,
                        undoing: None,
                    };
                }
                AuditAction::RevocationFailed { attempts, .. } => {
                    if let AuditedGrantState::Revoking { attempts: a, .. } = &mut g.state {
                        *a = *attempts;
                    }
                }
                AuditAction::GrantRevoked => {
                    g.state = match &g.state {
                        AuditedGrantState::Revoking {
                            undoing: Some(error),
                            ..
                        } => AuditedGrantState::Failed {
                            at,
                            error: error.clone(),
                        },
                        AuditedGrantState::Revoking { reason, .. } => AuditedGrantState::Revoked {
                            at,
                            reason: reason.clone(),
                        },
                        _ => AuditedGrantState::Revoked { at, reason: None },
                    };
                }
                AuditAction::EmergencyConfirmed => {
                    g.review = Some(format!(
                        "confirmed by {} at {}",
                        who(&event.actor),
                        time(at)
                    ));
                }
                AuditAction::EmergencyFlagged => {
                    g.review = Some(format!(
                        "flagged by {} at {}: {}",
                        who(&event.actor),
                        time(at),
                        event.reason.as_deref().unwrap_or_default()
                    ));
                }
                _ => {}
            }
        }
        grant
    }

    /// The first field of `grant` that its events contradict.
    pub fn check(&self, grant: &Grant) -> Result<(), Disagreement> {
        let mut c = Compare::new(grant.id.to_string());
        c.field("person", &grant.person, &self.person);
        c.field("resource", &grant.resource, &self.resource);
        c.field("role", &grant.role, &self.role);
        if let Some(request) = self.request {
            c.field("request", &grant.request, &request);
        }
        c.shown("granted_at", time(grant.granted_at), time(self.granted_at));
        c.shown("expires_at", end(grant.expires_at), end(self.expires_at));
        c.field("emergency", &grant.emergency, &self.emergency);
        c.shown(
            "warned_at",
            maybe_time(grant.warned_at),
            maybe_time(self.warned_at),
        );
        c.shown("state", grant_state(&grant.state), self.state_shown());
        let outcome = grant.review.as_ref().and_then(|r| r.outcome.as_ref());
        c.shown(
            "review outcome",
            outcome.map_or_else(|| "none".to_owned(), review_outcome),
            self.review.clone().unwrap_or_else(|| "none".to_owned()),
        );
        c.done()
    }

    fn state_shown(&self) -> String {
        match &self.state {
            AuditedGrantState::Provisioning => "provisioning".to_owned(),
            AuditedGrantState::Active { since } => format!("active since {}", time(*since)),
            AuditedGrantState::Revoking {
                since,
                reason,
                attempts,
                ..
            } => format!(
                "revoking since {} ({}), {attempts} failed attempts",
                time(*since),
                reason.as_deref().unwrap_or("?")
            ),
            AuditedGrantState::Revoked { at, reason } => {
                format!(
                    "revoked at {} ({})",
                    time(*at),
                    reason.as_deref().unwrap_or("?")
                )
            }
            AuditedGrantState::Failed { at, error } => format!("failed at {}: {error}", time(*at)),
        }
    }
}

/// How a stored grant state reads, in the same words as [`AuditedGrant::state_shown`]. A
/// revocation's reason is compared only when the events recorded one.
fn grant_state(state: &GrantState) -> String {
    match state {
        GrantState::Provisioning => "provisioning".to_owned(),
        GrantState::Active { since } => format!("active since {}", time(*since)),
        GrantState::Revoking {
            reason,
            since,
            attempts,
        } => format!(
            "revoking since {} ({reason}), {attempts} failed attempts",
            time(*since)
        ),
        GrantState::Revoked { reason, at } => format!("revoked at {} ({reason})", time(*at)),
        GrantState::Failed { error, at } => format!("failed at {}: {error}", time(*at)),
    }
}

fn review_outcome(outcome: &ReviewOutcome) -> String {
    match outcome {
        ReviewOutcome::Confirmed { by, at } => format!("confirmed by {by} at {}", time(*at)),
        ReviewOutcome::Flagged { by, at, note } => {
            format!("flagged by {by} at {}: {note}", time(*at))
        }
    }
}

/// A request's state as its events tell it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditedRequestState {
    Pending,
    Approved {
        grant: GrantId,
        at: DateTime<Utc>,
    },
    Rejected {
        by: Option<PersonId>,
        reason: Option<String>,
        at: DateTime<Utc>,
    },
    Cancelled {
        at: DateTime<Utc>,
    },
    Expired {
        at: DateTime<Utc>,
    },
}

/// What a request's audit events say it must be; `None` where they do not say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditedRequest {
    pub requester: Option<PersonId>,
    pub resource: Option<ResourceId>,
    pub role: Option<RoleId>,
    pub duration: Option<Option<Duration>>,
    pub justification: Option<String>,
    pub submitted_at: Option<DateTime<Utc>>,
    /// The admin token that typed it, when the submission is audited.
    pub submitted_by: Option<Option<String>>,
    pub stages: Option<usize>,
    pub kind: Option<RequestKind>,
    /// Who approved each stage and when, in order.
    pub approvals: Vec<Vec<(Option<PersonId>, DateTime<Utc>)>>,
    /// The stage deciding now, while pending.
    pub current_stage: usize,
    pub state: AuditedRequestState,
}

impl AuditedRequest {
    /// Replays the events about one request, in order; `None` when none says it exists
    /// (neither a submission nor a grant made from it).
    pub fn replay(events: &[&AuditEvent]) -> Option<Self> {
        let mut r = AuditedRequest {
            requester: None,
            resource: None,
            role: None,
            duration: None,
            justification: None,
            submitted_at: None,
            submitted_by: None,
            stages: None,
            kind: None,
            approvals: Vec::new(),
            current_stage: 0,
            state: AuditedRequestState::Pending,
        };
        let mut exists = false;
        for event in events {
            let at = event.at;
            match &event.action {
                AuditAction::RequestSubmitted {
                    resource,
                    role,
                    duration,
                    stages,
                    kind,
                } => {
                    exists = true;
                    r.requester = event.actor.person_id().cloned();
                    r.resource = Some(resource.clone());
                    r.role = Some(role.clone());
                    r.duration = Some(*duration);
                    r.justification = event.reason.as_deref().map(|j| j.trim().to_owned());
                    r.submitted_at = Some(at);
                    r.submitted_by = Some(match &event.actor {
                        Actor::Operator { token, .. } => Some(token.clone()),
                        _ => None,
                    });
                    r.stages = Some(*stages);
                    r.kind = kind.clone();
                    r.approvals = vec![Vec::new(); *stages];
                }
                // A birthright request has no submission: its auto-approval gives the reason.
                AuditAction::RequestAutoApproved if r.justification.is_none() => {
                    r.justification = event.reason.as_deref().map(|j| j.trim().to_owned());
                }
                AuditAction::ApprovedWithChanges { duration, role } => {
                    if let Some(shorter) = duration {
                        r.duration = Some(Some(*shorter));
                    }
                    if let Some(lesser) = role {
                        r.role = Some(lesser.clone());
                    }
                }
                AuditAction::StageApproved { remaining, .. } => {
                    if let Some(stage) = r.approvals.get_mut(r.current_stage) {
                        stage.push((event.actor.person_id().cloned(), at));
                    }
                    if *remaining == 0 {
                        r.current_stage += 1;
                    }
                }
                AuditAction::GrantCreated {
                    person,
                    resource,
                    role,
                    ..
                } => {
                    exists = true;
                    if r.requester.is_none() {
                        r.requester = Some(person.clone());
                    }
                    r.resource = Some(resource.clone());
                    r.role = Some(role.clone());
                    if r.kind.is_none() {
                        r.kind = Some(RequestKind::Access);
                    }
                    if let Some(grant) = event.grant {
                        r.state = AuditedRequestState::Approved { grant, at };
                    }
                }
                AuditAction::GrantExtended { .. } => {
                    if let Some(grant) = event.grant {
                        r.kind = Some(RequestKind::Extension { grant });
                        r.state = AuditedRequestState::Approved { grant, at };
                    }
                }
                AuditAction::EmergencyGranted { .. } => r.kind = Some(RequestKind::Emergency),
                AuditAction::RequestRejected => {
                    r.state = AuditedRequestState::Rejected {
                        by: event.actor.person_id().cloned(),
                        reason: event.reason.clone(),
                        at,
                    };
                }
                AuditAction::RequestCancelled => r.state = AuditedRequestState::Cancelled { at },
                AuditAction::RequestExpired => r.state = AuditedRequestState::Expired { at },
                _ => {}
            }
        }
        exists.then_some(r)
    }

    /// The first field of `request` that its events contradict.
    pub fn check(&self, request: &AccessRequest) -> Result<(), Disagreement> {
        let mut c = Compare::new(request.id.to_string());
        if let Some(requester) = &self.requester {
            c.field("requester", &request.requester, requester);
        }
        if let Some(resource) = &self.resource {
            c.field("resource", &request.resource, resource);
        }
        if let Some(role) = &self.role {
            c.field("role", &request.role, role);
        }
        if let Some(duration) = self.duration {
            c.shown("duration", length(request.duration), length(duration));
        }
        if let Some(justification) = &self.justification {
            c.shown(
                "reason",
                quoted(request.justification.trim()),
                quoted(justification),
            );
        }
        if let Some(submitted_at) = self.submitted_at {
            c.shown(
                "submitted_at",
                time(request.submitted_at),
                time(submitted_at),
            );
        }
        if let Some(by) = &self.submitted_by {
            c.shown("submitted_by", token(&request.submitted_by), token(by));
        }
        if let Some(stages) = self.stages {
            c.field("number of stages", &request.plan.stages.len(), &stages);
            for (index, (stage, audited)) in
                request.plan.stages.iter().zip(&self.approvals).enumerate()
            {
                let stored: Vec<String> = stage
                    .approvals
                    .iter()
                    .map(|a| format!("{} at {}", a.by, time(a.at)))
                    .collect();
                let audited: Vec<String> = audited
                    .iter()
                    .map(|(by, at)| {
                        let by = by.as_ref().map_or("?".to_owned(), ToString::to_string);
                        format!("{by} at {}", time(*at))
                    })
                    .collect();
                c.shown(
                    STAGE_APPROVALS[index.min(STAGE_APPROVALS.len() - 1)],
                    list(&stored),
                    list(&audited),
                );
            }
            if self.state == AuditedRequestState::Pending {
                c.field("current stage", &request.current_stage, &self.current_stage);
            }
        }
        if let Some(kind) = &self.kind {
            c.shown("kind", request_kind(&request.kind), request_kind(kind));
        }
        c.shown("state", request_state(&request.state), self.state_shown());
        c.done()
    }

    fn state_shown(&self) -> String {
        match &self.state {
            AuditedRequestState::Pending => "pending".to_owned(),
            AuditedRequestState::Approved { grant, at } => {
                format!("approved at {} as {grant}", time(*at))
            }
            AuditedRequestState::Rejected { by, reason, at } => format!(
                "rejected by {} at {}: {}",
                by.as_ref().map_or("?".to_owned(), ToString::to_string),
                time(*at),
                reason.as_deref().unwrap_or("?")
            ),
            AuditedRequestState::Cancelled { at } => format!("cancelled at {}", time(*at)),
            AuditedRequestState::Expired { at } => format!("expired at {}", time(*at)),
        }
    }
}

/// Field names of the approvals of each stage, for messages (a plan has a handful).
const STAGE_APPROVALS: [&str; 6] = [
    "approvals of stage 1",
    "approvals of stage 2",
    "approvals of stage 3",
    "approvals of stage 4",
    "approvals of stage 5",
    "approvals of a later stage",
];

fn request_state(state: &RequestState) -> String {
    match state {
        RequestState::Pending => "pending".to_owned(),
        RequestState::Approved { grant, at } => format!("approved at {} as {grant}", time(*at)),
        RequestState::Rejected { by, reason, at } => {
            format!("rejected by {by} at {}: {reason}", time(*at))
        }
        RequestState::Cancelled { at, .. } => format!("cancelled at {}", time(*at)),
        RequestState::Expired { at } => format!("expired at {}", time(*at)),
    }
}

fn request_kind(kind: &RequestKind) -> String {
    match kind {
        RequestKind::Access => "access".to_owned(),
        RequestKind::Extension { grant } => format!("an extension of {grant}"),
        RequestKind::Emergency => "emergency".to_owned(),
    }
}

/// Compares fields one by one and keeps the first that differs.
struct Compare {
    record: String,
    first: Option<Disagreement>,
}

impl Compare {
    fn new(record: String) -> Self {
        Self {
            record,
            first: None,
        }
    }

    fn field<T: PartialEq + std::fmt::Display>(
        &mut self,
        field: &'static str,
        stored: &T,
        audited: &T,
    ) {
        if stored != audited {
            self.differ(field, stored.to_string(), audited.to_string());
        }
    }

    /// Compares two values as they read; the events' side is what a record must read as.
    fn shown(&mut self, field: &'static str, stored: String, audited: String) {
        if stored != audited {
            self.differ(field, stored, audited);
        }
    }

    fn differ(&mut self, field: &'static str, stored: String, audited: String) {
        if self.first.is_none() {
            self.first = Some(Disagreement::Field {
                record: self.record.clone(),
                field,
                stored,
                audited,
            });
        }
    }

    fn done(self) -> Result<(), Disagreement> {
        self.first.map_or(Ok(()), Err)
    }
}

fn who(actor: &Actor) -> String {
    actor
        .person_id()
        .map_or_else(|| "?".to_owned(), ToString::to_string)
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn maybe_time(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(|| "none".to_owned(), time)
}

fn end(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(|| "none (standing access)".to_owned(), time)
}

fn length(duration: Option<Duration>) -> String {
    duration.map_or_else(|| "none (standing access)".to_owned(), |d| d.to_string())
}

fn token(by: &Option<String>) -> String {
    by.as_ref()
        .map_or_else(|| "none".to_owned(), |t| format!("admin token {t}"))
}

fn quoted(text: &str) -> String {
    format!("{text:?}")
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}
