//! A page of grants goes on below the last one shown, and agrees with the trait's default
//! (which filters from the newest end).

use super::*;

#[test]
fn a_page_of_live_grants_goes_on_below_the_last_one_shown() {
    let store = SledStore::temporary().unwrap();
    let mut grants: Vec<(Grant, Expect)> = (1..=7)
        .map(|id| (grant(id, "alice", Some(3600)), Expect::New))
        .collect();
    grants[3].0.state = GrantState::Revoked {
        reason: RevokeReason::EndedEarly,
        at: at(10),
    };
    store
        .commit(Commit {
            grants,
            ..Commit::default()
        })
        .unwrap();
    let ids = |found: Vec<Grant>| found.iter().map(|g| g.id.0).collect::<Vec<_>>();
    assert_eq!(ids(store.grants_before(None, true, 3).unwrap()), [7, 6, 5]);
    assert_eq!(
        ids(store.grants_before(Some(GrantId(5)), true, 3).unwrap()),
        [3, 2, 1],
        "G-4 is not live"
    );
    assert_eq!(
        ids(store.grants_before(Some(GrantId(5)), false, 3).unwrap()),
        [4, 3, 2]
    );
    assert!(
        store
            .grants_before(Some(GrantId(1)), true, 3)
            .unwrap()
            .is_empty()
    );
}
