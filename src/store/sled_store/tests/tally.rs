//! The grant tally: kept by every commit that writes a grant, alone or in a batch with
//! others, and counted once from the grants when an older data directory is opened.

use std::sync::Arc;

use super::*;
use crate::domain::grant::{GrantTally, PostHocReview, ReviewOutcome};

/// What the tally must be: counted from every stored grant.
fn counted(store: &SledStore) -> GrantTally {
    let mut tally = GrantTally::default();
    for grant in store.grants(false, usize::MAX).unwrap() {
        tally = tally.moved(GrantTally::default(), GrantTally::of(&grant));
    }
    tally
}

/// The state the `n`th write of a grant gives it, walking through every state (and the
/// revocation attempts past the alert threshold) in an order no real grant would take.
pub(super) fn shape(mut grant: Grant, n: u64) -> Grant {
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

#[test]
fn grants_written_at_once_by_many_writers_are_all_counted() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path()).unwrap());
    let writers: Vec<_> = (0..8_u64)
        .map(|w| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..25_u64 {
                    let id = w * 100 + i + 1;
                    let new = shape(grant(id, "ann", Some(50)), i);
                    store
                        .commit(Commit {
                            grants: vec![(new.clone(), Expect::New)],
                            ..Commit::default()
                        })
                        .unwrap();
                    let moved = shape(new, i + 3);
                    store
                        .commit(Commit {
                            grants: vec![(moved, Expect::Version(1))],
                            ..Commit::default()
                        })
                        .unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    assert_eq!(store.grant_tally().unwrap(), counted(&store));
}

#[test]
fn an_older_directory_gets_its_grants_counted_once_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let expected = {
        let store = SledStore::open(dir.path()).unwrap();
        let grants = (1..=9)
            .map(|id| (shape(grant(id, "ann", Some(50)), id), Expect::New))
            .collect();
        store
            .commit(Commit {
                grants,
                ..Commit::default()
            })
            .unwrap();
        let expected = store.grant_tally().unwrap();
        // What a schema 3 directory holds: the grants, and no tally.
        store.tree("meta").remove("grant_tally").unwrap();
        store
            .tree("meta")
            .insert("schema_version", &3u32.to_be_bytes()[..])
            .unwrap();
        store.tree("meta").flush().unwrap();
        expected
    };
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.grant_tally().unwrap(), expected);
    assert_eq!(expected, counted(&store));
    assert_eq!(expected.live(), 5, "{expected:?}");
}
