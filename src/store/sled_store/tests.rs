//! Tests of what only the sled store has (its journal, group flushes, on-disk layout and
//! upgrades), on temporary databases; helpers build plain domain records. What every store
//! must do is the store suite in tests/it/store/, run on sled and on PostgreSQL.

mod anchor;
mod approvers;
mod audit;
mod backup;
mod concurrency;
mod journal;
mod live;
mod open;
mod outbox;
mod tally;

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};

use super::SledStore;
use crate::domain::audit::{Actor, AuditAction, AuditEvent};
use crate::domain::effect::{Effect, Notice};
use crate::domain::grant::{Grant, GrantState, RevokeReason};
use crate::domain::ids::{GrantId, PersonId, RequestId, ResourceId, RoleId, WorkflowId};
use crate::domain::request::{AccessRequest, RequestKind, RequestState};
use crate::domain::routing::ApprovalPlan;
use crate::store::{Commit, Expect, RequestWrite, SCHEMA_VERSION, Sequence, Store, StoreError};

/// A moment, in seconds after a fixed start.
fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
}

fn request(id: u64, person: &str) -> AccessRequest {
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
        state: RequestState::Pending,
    }
}

fn grant(id: u64, person: &str, expires: Option<i64>) -> Grant {
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

fn event(request: u64) -> AuditEvent {
    AuditEvent::new(
        at(request as i64),
        Actor::System,
        AuditAction::RequestExpired,
    )
    .request(RequestId(request))
}

/// A new request due at `due`, with its audit event and a notice to its requester.
fn submit(request: AccessRequest, due: i64) -> Commit {
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

fn update(request: AccessRequest, version: u64, due: Option<i64>) -> Commit {
    Commit {
        requests: vec![RequestWrite {
            request,
            expect: Expect::Version(version),
            due: due.map(at),
        }],
        ..Commit::default()
    }
}

fn ids(requests: Vec<AccessRequest>) -> Vec<u64> {
    requests.iter().map(|r| r.id.0).collect()
}
