//! Tests of the sled store on temporary databases; helpers build plain domain records.

mod anchor;
mod approvers;
mod audit;
mod backup;
mod cards;
mod concurrency;
mod journal;
mod open;
mod outbox;
mod pages;
mod sessions;
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
use crate::store::{
    Commit, Expect, Finished, RequestWrite, SCHEMA_VERSION, Sequence, Store, StoreError,
};

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

#[test]
fn a_commit_round_trips_and_the_indexes_find_it() {
    let store = SledStore::temporary().unwrap();
    store.commit(submit(request(1, "ann"), 300)).unwrap();
    store.commit(submit(request(2, "bo"), 100)).unwrap();
    let receipt = store.commit(submit(request(3, "ann"), 200)).unwrap();
    assert_eq!(receipt.audit_seqs, vec![3]);

    let stored = store.request(RequestId(3)).unwrap().unwrap();
    assert_eq!((stored.value, stored.version), (request(3, "ann"), 1));
    assert!(store.request(RequestId(9)).unwrap().is_none());
    assert_eq!(
        ids(store.requests_of(&PersonId::new("ann")).unwrap()),
        vec![3, 1]
    );
    assert_eq!(
        ids(store.requests_of(&PersonId::new("an")).unwrap()),
        Vec::<u64>::new()
    );
    assert_eq!(ids(store.requests(false, 2).unwrap()), vec![3, 2]);

    let due = store.pending_due(at(200), 10).unwrap();
    assert_eq!(
        due,
        vec![(at(100), RequestId(2)), (at(200), RequestId(3))],
        "inclusive, earliest first"
    );
    assert_eq!(
        store.pending_due(at(1_000), 1).unwrap(),
        vec![(at(100), RequestId(2))]
    );
}

#[test]
fn a_later_write_moves_the_due_entry_and_a_finished_request_leaves_it() {
    let store = SledStore::temporary().unwrap();
    store.commit(submit(request(1, "ann"), 100)).unwrap();
    store
        .commit(update(request(1, "ann"), 1, Some(500)))
        .unwrap();
    assert_eq!(
        store.pending_due(at(1_000), 10).unwrap(),
        vec![(at(500), RequestId(1))]
    );

    let mut expired = request(1, "ann");
    expired.state = RequestState::Expired { at: at(500) };
    store.commit(update(expired, 2, None)).unwrap();
    assert!(store.pending_due(at(1_000), 10).unwrap().is_empty());
    assert_eq!(store.request(RequestId(1)).unwrap().unwrap().version, 3);
    assert!(store.requests(true, 10).unwrap().is_empty());
    assert_eq!(ids(store.requests(false, 10).unwrap()), vec![1]);
    assert_eq!(
        ids(store.requests_of(&PersonId::new("ann")).unwrap()),
        vec![1],
        "indexed once"
    );
}

#[test]
fn a_grant_is_in_the_expiry_index_only_while_live() {
    let store = SledStore::temporary().unwrap();
    let grants = vec![
        (grant(1, "ann", Some(100)), Expect::New),
        (grant(2, "ann", None), Expect::New),
    ];
    store
        .commit(Commit {
            grants,
            ..Commit::default()
        })
        .unwrap();
    assert_eq!(
        store.grants_expiring(at(100), 10).unwrap(),
        vec![(at(100), GrantId(1))]
    );
    assert_eq!(store.grants_of(&PersonId::new("ann")).unwrap().len(), 2);

    let mut extended = grant(1, "ann", Some(400));
    store
        .commit(Commit {
            grants: vec![(extended.clone(), Expect::Version(1))],
            ..Commit::default()
        })
        .unwrap();
    assert!(
        store.grants_expiring(at(300), 10).unwrap().is_empty(),
        "the old expiry is gone"
    );
    assert_eq!(
        store.grants_expiring(at(400), 10).unwrap(),
        vec![(at(400), GrantId(1))]
    );

    extended.state = GrantState::Revoking {
        reason: RevokeReason::Expired,
        since: at(400),
        attempts: 0,
    };
    store
        .commit(Commit {
            grants: vec![(extended, Expect::Version(2))],
            ..Commit::default()
        })
        .unwrap();
    assert!(store.grants_expiring(at(1_000), 10).unwrap().is_empty());
    let live: Vec<u64> = store
        .grants(true, 10)
        .unwrap()
        .iter()
        .map(|g| g.id.0)
        .collect();
    assert_eq!(live, vec![2]);
    let all: Vec<u64> = store
        .grants(false, 10)
        .unwrap()
        .iter()
        .map(|g| g.id.0)
        .collect();
    assert_eq!(all, vec![2, 1]);
    let grants_of: Vec<u64> = store
        .grants_of(&PersonId::new("ann"))
        .unwrap()
        .iter()
        .map(|g| g.id.0)
        .collect();
    assert_eq!(grants_of, vec![2, 1], "newest first");
    let ids = |grants: Vec<Grant>| grants.iter().map(|g| g.id.0).collect::<Vec<_>>();
    let kept = store.grants_where(&|g| g.id.0 == 1, 10).unwrap();
    assert_eq!(ids(kept), vec![1], "only what passes is kept");
    let newest = store.grants_where(&|_| true, 1).unwrap();
    assert_eq!(ids(newest), vec![2], "at most the limit, newest first");
}

#[test]
fn expect_new_on_an_existing_record_conflicts_and_writes_nothing() {
    let store = SledStore::temporary().unwrap();
    store.commit(submit(request(1, "ann"), 100)).unwrap();
    let mut again = submit(request(1, "ann"), 50);
    again.requests.insert(
        0,
        RequestWrite {
            request: request(2, "bo"),
            expect: Expect::New,
            due: Some(at(10)),
        },
    );
    again.grants.push((grant(7, "bo", Some(10)), Expect::New));

    assert!(matches!(store.commit(again), Err(StoreError::Conflict)));
    assert!(store.request(RequestId(2)).unwrap().is_none());
    assert!(store.grant(GrantId(7)).unwrap().is_none());
    assert_eq!(
        store.pending_due(at(1_000), 10).unwrap(),
        vec![(at(100), RequestId(1))]
    );
    assert!(store.grants_expiring(at(1_000), 10).unwrap().is_empty());
    assert_eq!(
        store.audit(0, 10).unwrap().len(),
        1,
        "no audit event of the failed commit"
    );
    assert_eq!(
        store.outbox(10).unwrap().len(),
        1,
        "no effect of the failed commit"
    );
    assert!(store.requests_of(&PersonId::new("bo")).unwrap().is_empty());
    assert_eq!(store.verify_audit().unwrap(), 1);
}

#[test]
fn a_stale_or_missing_version_conflicts() {
    let store = SledStore::temporary().unwrap();
    store.commit(submit(request(1, "ann"), 100)).unwrap();
    store
        .commit(update(request(1, "ann"), 1, Some(100)))
        .unwrap();
    assert!(matches!(
        store.commit(update(request(1, "ann"), 1, Some(100))),
        Err(StoreError::Conflict)
    ));
    assert!(matches!(
        store.commit(update(request(5, "ann"), 1, None)),
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.request(RequestId(1)).unwrap().unwrap().version, 2);
}
