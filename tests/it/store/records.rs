//! Plain domain records for the store suite.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use gatehouse::domain::audit::{Actor, AuditAction, AuditEvent};
use gatehouse::domain::effect::{Effect, Notice};
use gatehouse::domain::grant::{Grant, GrantState};
use gatehouse::domain::ids::{GrantId, PersonId, RequestId, ResourceId, RoleId, WorkflowId};
use gatehouse::domain::request::{AccessRequest, RequestKind};
use gatehouse::domain::routing::ApprovalPlan;
use gatehouse::store::{Commit, Expect, RequestWrite};

/// A moment, in seconds after a fixed start.
pub fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
}

pub fn request(id: u64, person: &str) -> AccessRequest {
    AccessRequest {
        id: RequestId(id),
        requester: PersonId::new(person),
        resource: ResourceId::new("prod-db"),
        role: RoleId::new("read"),
        duration: None,
        justification: "on call".into(),
        fields: BTreeMap::new(),
        kind: RequestKind::Access,
        submitted_at: at(id as i64),
        submitted_by: None,
        plan: ApprovalPlan {
            workflow: WorkflowId::new("default"),
            auto_approved: true,
            stages: vec![],
        },
        current_stage: 0,
        stage_started_at: at(id as i64),
        expires_at: at(id as i64 + 86_400),
        last_reminded_at: None,
        changes: vec![],
        state: gatehouse::domain::request::RequestState::Pending,
    }
}

pub fn grant(id: u64, person: &str, expires: Option<i64>) -> Grant {
    Grant {
        id: GrantId(id),
        person: PersonId::new(person),
        resource: ResourceId::new("prod-db"),
        role: RoleId::new("read"),
        request: RequestId(id),
        granted_at: at(0),
        expires_at: expires.map(at),
        emergency: false,
        review: None,
        warned_at: None,
        state: GrantState::Active { since: at(0) },
    }
}

pub fn event(request: u64) -> AuditEvent {
    AuditEvent::new(
        at(request as i64),
        Actor::System,
        AuditAction::RequestExpired,
    )
    .request(RequestId(request))
}

/// A new request due at `due`, with its audit event and a notice to its requester.
pub fn submit(request: AccessRequest, due: i64) -> Commit {
    let event = AuditEvent::new(
        request.submitted_at,
        Actor::person(&request.requester),
        AuditAction::RequestSubmitted {
            resource: request.resource.clone(),
            role: request.role.clone(),
            duration: None,
            stages: 0,
            kind: Some(RequestKind::Access),
        },
    )
    .request(request.id);
    let effect = Effect::Notify {
        to: request.requester.clone(),
        notice: Notice::Submitted {
            request: request.id,
        },
    };
    Commit {
        requests: vec![RequestWrite {
            request,
            expect: Expect::New,
            due: Some(at(due)),
        }],
        events: vec![event],
        effects: vec![effect],
        ..Commit::default()
    }
}

pub fn update(request: AccessRequest, version: u64, due: Option<i64>) -> Commit {
    Commit {
        requests: vec![RequestWrite {
            request,
            expect: Expect::Version(version),
            due: due.map(at),
        }],
        ..Commit::default()
    }
}

pub fn ids(requests: Vec<AccessRequest>) -> Vec<u64> {
    requests.iter().map(|r| r.id.0).collect()
}

pub fn grant_ids(grants: Vec<Grant>) -> Vec<u64> {
    grants.iter().map(|g| g.id.0).collect()
}

/// A pending request of `person` in two stages: `first` approve, then `second`.
pub fn staged(id: u64, person: &str, first: &[&str], second: &[&str]) -> AccessRequest {
    let stage = |name: &str, approvers: &[&str]| gatehouse::domain::routing::PlannedStage {
        name: name.into(),
        approvers: approvers.iter().map(|a| PersonId::new(*a)).collect(),
        quorum: 1,
        escalate_to: std::collections::BTreeSet::new(),
        escalated: false,
        approvals: vec![],
    };
    let mut request = request(id, person);
    request.plan.auto_approved = false;
    request.plan.stages = vec![stage("Manager", first), stage("Owner", second)];
    request
}
