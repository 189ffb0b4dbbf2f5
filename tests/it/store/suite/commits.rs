//! Commits: records round-trip with their versions, the indexes find them, and a commit
//! that finds a record changed writes nothing.

use std::collections::BTreeMap;

use gatehouse::domain::grant::{
    Grant, GrantState, GrantTally, PostHocReview, ReviewOutcome, RevokeReason,
};
use gatehouse::domain::ids::{CampaignId, GrantId, PersonId, RequestId};
use gatehouse::domain::policy::OnTimeout;
use gatehouse::domain::request::RequestState;
use gatehouse::domain::review::Campaign;

use super::*;

pub fn a_commit_round_trips_and_the_indexes_find_it(backend: &impl Backend) {
    let store = backend.open();
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
    assert!(store.requests_of(&PersonId::new("an")).unwrap().is_empty());
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
    assert_eq!(store.next_pending_due().unwrap(), Some(at(100)));
}

pub fn a_later_write_moves_the_due_entry_and_a_finished_request_leaves_it(backend: &impl Backend) {
    let store = backend.open();
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
    assert_eq!(store.next_pending_due().unwrap(), None);
    assert_eq!(store.request(RequestId(1)).unwrap().unwrap().version, 3);
    assert!(store.requests(true, 10).unwrap().is_empty());
    assert_eq!(ids(store.requests(false, 10).unwrap()), vec![1]);
    assert_eq!(
        ids(store.requests_of(&PersonId::new("ann")).unwrap()),
        vec![1],
        "indexed once"
    );
}

pub fn a_grant_is_in_the_expiry_index_only_while_live(backend: &impl Backend) {
    let store = backend.open();
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
    assert_eq!(grant_ids(store.grants(true, 10).unwrap()), vec![2]);
    assert_eq!(grant_ids(store.grants(false, 10).unwrap()), vec![2, 1]);
    assert_eq!(
        grant_ids(store.grants_of(&PersonId::new("ann")).unwrap()),
        vec![2, 1],
        "newest first"
    );
    let kept = store.grants_where(&|g| g.id.0 == 1, 10).unwrap();
    assert_eq!(grant_ids(kept), vec![1], "only what passes is kept");
    let newest = store.grants_where(&|_| true, 1).unwrap();
    assert_eq!(
        grant_ids(newest),
        vec![2],
        "at most the limit, newest first"
    );
}

pub fn expect_new_on_an_existing_record_conflicts_and_writes_nothing(backend: &impl Backend) {
    let store = backend.open();
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
        "no event of the failed commit"
    );
    assert_eq!(
        store.outbox(10).unwrap().len(),
        1,
        "no effect of the failed commit"
    );
    assert!(store.requests_of(&PersonId::new("bo")).unwrap().is_empty());
    assert_eq!(store.verify_audit().unwrap(), 1);
}

pub fn a_stale_or_missing_version_conflicts(backend: &impl Backend) {
    let store = backend.open();
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

pub fn everything_committed_is_there_after_a_reopen(backend: &impl Backend) {
    {
        let store = backend.open();
        assert_eq!(store.next_id(Sequence::Request).unwrap(), 1);
        assert_eq!(store.next_id(Sequence::Request).unwrap(), 2);
        assert_eq!(store.next_id(Sequence::Grant).unwrap(), 1);
        store.commit(submit(request(1, "ann"), 100)).unwrap();
        store
            .commit(Commit {
                grants: vec![(grant(1, "ann", Some(50)), Expect::New)],
                events: vec![event(1)],
                ..Commit::default()
            })
            .unwrap();
    }
    let store = backend.open();
    assert_eq!(store.next_id(Sequence::Request).unwrap(), 3, "ids go on");
    assert_eq!(store.request(RequestId(1)).unwrap().unwrap().version, 1);
    assert_eq!(
        store.grants_expiring(at(60), 10).unwrap(),
        vec![(at(50), GrantId(1))]
    );
    assert_eq!(store.outbox(10).unwrap().len(), 1);
    assert_eq!(store.verify_audit().unwrap(), 2);
    assert_eq!(store.chain_head().unwrap().unwrap().seq, 2);
}

fn campaign(id: u64, closed: bool) -> Campaign {
    Campaign {
        id: CampaignId(id),
        review: "quarterly".into(),
        started_at: at(0),
        deadline: at(1_000),
        on_timeout: OnTimeout::Keep,
        escalated: false,
        items: vec![],
        closed_at: closed.then(|| at(10)),
    }
}

pub fn campaigns_and_marks_round_trip(backend: &impl Backend) {
    let store = backend.open();
    store
        .commit(Commit {
            campaigns: vec![
                (campaign(1, false), Expect::New),
                (campaign(2, false), Expect::New),
            ],
            marks: vec![("digest".to_owned(), at(7))],
            ..Commit::default()
        })
        .unwrap();
    store
        .commit(Commit {
            campaigns: vec![(campaign(2, true), Expect::Version(1))],
            ..Commit::default()
        })
        .unwrap();
    let all: Vec<(u64, u64)> = store
        .campaigns(false)
        .unwrap()
        .iter()
        .map(|c| (c.value.id.0, c.version))
        .collect();
    assert_eq!(all, vec![(2, 2), (1, 1)], "newest first, with versions");
    let open: Vec<u64> = store
        .campaigns(true)
        .unwrap()
        .iter()
        .map(|c| c.value.id.0)
        .collect();
    assert_eq!(open, vec![1]);
    assert_eq!(
        store.campaign(CampaignId(2)).unwrap().unwrap().value,
        campaign(2, true)
    );
    assert!(matches!(
        store.commit(Commit {
            campaigns: vec![(campaign(2, false), Expect::Version(1))],
            ..Commit::default()
        }),
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.mark("digest").unwrap(), Some(at(7)));
    assert_eq!(store.mark("other").unwrap(), None);
}

pub fn warnings_and_reviews_are_found_by_when_they_are_due(backend: &impl Backend) {
    let store = backend.open();
    let mut emergency = grant(3, "ann", Some(300));
    emergency.emergency = true;
    emergency.review = Some(PostHocReview {
        reviewers: vec![PersonId::new("sec")],
        due: at(500),
        next_reminder: Some(at(150)),
        outcome: None,
    });
    let mut warned = grant(2, "bo", Some(200));
    warned.warned_at = Some(at(5));
    store
        .commit(Commit {
            grants: vec![
                (grant(1, "ann", Some(100)), Expect::New),
                (warned, Expect::New),
                (emergency.clone(), Expect::New),
            ],
            ..Commit::default()
        })
        .unwrap();
    assert_eq!(
        store.warnings_due(at(0), at(1_000), 10).unwrap(),
        vec![(at(100), GrantId(1)), (at(300), GrantId(3))],
        "only grants still owed a warning"
    );
    assert_eq!(
        store.warnings_due(at(100), at(300), 10).unwrap(),
        vec![(at(300), GrantId(3))],
        "after `after`, up to `until`"
    );
    assert_eq!(store.next_warning_after(at(0)).unwrap(), Some(at(100)));
    assert_eq!(store.next_warning_after(at(100)).unwrap(), Some(at(300)));
    assert_eq!(store.next_warning_after(at(300)).unwrap(), None);
    assert_eq!(
        store.reviews_due(at(1_000), 10).unwrap(),
        vec![(at(150), GrantId(3))]
    );
    assert_eq!(store.next_review_due().unwrap(), Some(at(150)));
    emergency.review.as_mut().unwrap().outcome = Some(ReviewOutcome::Confirmed {
        by: PersonId::new("sec"),
        at: at(160),
    });
    store
        .commit(Commit {
            grants: vec![(emergency, Expect::Version(1))],
            ..Commit::default()
        })
        .unwrap();
    assert!(store.reviews_due(at(1_000), 10).unwrap().is_empty());
    assert_eq!(store.next_review_due().unwrap(), None);
}

/// What the tally must be: counted from every stored grant.
fn counted(store: &dyn Store) -> GrantTally {
    let mut tally = GrantTally::default();
    for grant in store.grants(false, usize::MAX).unwrap() {
        tally = tally.moved(GrantTally::default(), GrantTally::of(&grant));
    }
    tally
}

/// The state the `n`th write of a grant gives it, walking through every state.
fn shape(mut grant: Grant, n: u64) -> Grant {
    grant.state = match n % 7 {
        0 => GrantState::Provisioning,
        1 | 2 => GrantState::Active { since: at(1) },
        3 => GrantState::Revoking {
            reason: RevokeReason::Expired,
            since: at(2),
            attempts: 3,
        },
        4 => GrantState::Revoking {
            reason: RevokeReason::Expired,
            since: at(2),
            attempts: 12,
        },
        5 => GrantState::Revoked {
            reason: RevokeReason::EndedEarly,
            at: at(3),
        },
        _ => GrantState::Failed {
            error: "connector refused".into(),
            at: at(3),
        },
    };
    grant.emergency = n.is_multiple_of(3);
    grant.review = grant.emergency.then(|| PostHocReview {
        reviewers: vec![PersonId::new("sec")],
        due: at(100),
        next_reminder: None,
        outcome: n.is_multiple_of(2).then(|| ReviewOutcome::Confirmed {
            by: PersonId::new("sec"),
            at: at(5),
        }),
    });
    grant
}

pub fn the_grant_tally_follows_every_write_and_ignores_refused_ones(backend: &impl Backend) {
    let store = backend.open();
    assert_eq!(store.grant_tally().unwrap(), GrantTally::default());
    let mut versions = BTreeMap::new();
    let mut seen = GrantTally::default();
    for n in 0..40_u64 {
        let id = n * 7 % 11 + 1;
        let grant = shape(grant(id, "ann", Some(50)), n);
        let expect = versions
            .get(&id)
            .map_or(Expect::New, |v| Expect::Version(*v));
        store
            .commit(Commit {
                grants: vec![(grant, expect)],
                ..Commit::default()
            })
            .unwrap();
        *versions.entry(id).or_insert(0) += 1;
        let tally = store.grant_tally().unwrap();
        assert_eq!(tally, counted(&*store), "after write {n}");
        seen = seen.moved(GrantTally::default(), tally);
    }
    assert!(
        seen.provisioning * seen.active * seen.revoking > 0,
        "{seen:?}"
    );
    assert!(
        seen.review_pending * seen.revocations_failing > 0,
        "{seen:?}"
    );
    let before = store.grant_tally().unwrap();
    let refused = store.commit(Commit {
        grants: vec![(shape(grant(1, "ann", None), 0), Expect::Version(0))],
        ..Commit::default()
    });
    assert!(matches!(refused, Err(StoreError::Conflict)), "{refused:?}");
    assert_eq!(store.grant_tally().unwrap(), before);
}

pub fn grants_read_by_id_together_come_in_the_order_asked_without_the_missing(
    backend: &impl Backend,
) {
    let store = backend.open();
    let grants = (1..=3)
        .map(|id| (grant(id, "ann", Some(100)), Expect::New))
        .collect();
    store
        .commit(Commit {
            grants,
            ..Commit::default()
        })
        .unwrap();
    store
        .commit(Commit {
            grants: vec![(grant(2, "bo", Some(200)), Expect::Version(1))],
            ..Commit::default()
        })
        .unwrap();
    let found = store
        .grants_by_id(&[GrantId(3), GrantId(9), GrantId(2), GrantId(1)])
        .unwrap();
    let seen: Vec<(u64, u64, &str)> = found
        .iter()
        .map(|g| (g.value.id.0, g.version, g.value.person.as_str()))
        .collect();
    assert_eq!(seen, [(3, 1, "ann"), (2, 2, "bo"), (1, 1, "ann")]);
    assert!(store.grants_by_id(&[]).unwrap().is_empty());
}
