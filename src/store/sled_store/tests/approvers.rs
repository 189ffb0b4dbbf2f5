//! The `pending_by_approver` index: who is asked to decide what, kept with every write of a
//! request and built once for a data directory of an older schema.

use std::collections::BTreeSet;

use super::*;
use crate::domain::routing::PlannedStage;

/// A pending request of `person` in two stages: `first` approve, then `second`.
fn staged(id: u64, person: &str, first: &[&str], second: &[&str]) -> AccessRequest {
    let stage = |name: &str, approvers: &[&str]| PlannedStage {
        name: name.into(),
        approvers: approvers.iter().map(|a| PersonId::new(*a)).collect(),
        quorum: 1,
        escalate_to: BTreeSet::new(),
        escalated: false,
        approvals: vec![],
    };
    let mut request = request(id, person);
    request.plan.auto_approved = false;
    request.plan.stages = vec![stage("Manager", first), stage("Owner", second)];
    request
}

/// The ids of what `person` is asked to decide, newest first.
fn asked_of(store: &SledStore, person: &str) -> Vec<u64> {
    let pending = store.pending_for_approver(&PersonId::new(person)).unwrap();
    pending.iter().map(|r| r.id.0).collect()
}

#[test]
fn a_request_is_listed_under_the_approvers_of_its_current_stage_only() {
    let store = SledStore::temporary().unwrap();
    store
        .commit(submit(staged(1, "ann", &["bob"], &["carol"]), 10))
        .unwrap();
    store
        .commit(submit(staged(2, "ann", &["bob", "dan"], &["carol"]), 20))
        .unwrap();
    assert_eq!(asked_of(&store, "bob"), [2, 1], "newest first");
    assert_eq!(asked_of(&store, "dan"), [2]);
    assert!(asked_of(&store, "carol").is_empty() && asked_of(&store, "ann").is_empty());

    // The first stage is done: the request moves to the owners.
    let mut moved = staged(1, "ann", &["bob"], &["carol"]);
    moved.current_stage = 1;
    store.commit(update(moved.clone(), 1, Some(30))).unwrap();
    assert_eq!(asked_of(&store, "bob"), [2]);
    assert_eq!(asked_of(&store, "carol"), [1]);

    // Decided: nobody is asked any more.
    moved.state = RequestState::Expired { at: at(40) };
    store.commit(update(moved, 2, None)).unwrap();
    assert!(asked_of(&store, "carol").is_empty());
    assert!(store.tree("pending_by_approver").iter().all(|entry| {
        let (key, _) = entry.unwrap();
        !key.ends_with(&1u64.to_be_bytes())
    }));
}

#[test]
fn a_refused_write_leaves_the_approver_index_as_it_was() {
    let store = SledStore::temporary().unwrap();
    store
        .commit(submit(staged(1, "ann", &["bob"], &["carol"]), 10))
        .unwrap();
    let mut moved = staged(1, "ann", &["bob"], &["carol"]);
    moved.current_stage = 1;
    let stale = store.commit(update(moved, 7, Some(30)));
    assert!(matches!(stale, Err(StoreError::Conflict)), "{stale:?}");
    assert_eq!(asked_of(&store, "bob"), [1]);
    assert!(asked_of(&store, "carol").is_empty());
}

#[test]
fn an_older_directory_gets_its_approver_index_built_once_on_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        store
            .commit(submit(staged(1, "ann", &["bob"], &["carol"]), 10))
            .unwrap();
        store
            .commit(submit(staged(2, "ann", &["bob"], &["carol"]), 20))
            .unwrap();
        let mut decided = staged(3, "ann", &["bob"], &["carol"]);
        decided.state = RequestState::Expired { at: at(5) };
        store.commit(submit(decided, 30)).unwrap();
        // What a schema 5 directory holds: the requests, and no index.
        store.tree("pending_by_approver").clear().unwrap();
        store
            .tree("meta")
            .insert("schema_version", &5u32.to_be_bytes()[..])
            .unwrap();
        store.tree("meta").flush().unwrap();
        assert!(asked_of(&store, "bob").is_empty());
    }
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(asked_of(&store, "bob"), [2, 1]);
    let version = store.tree("meta").get("schema_version").unwrap().unwrap();
    assert_eq!(version.as_ref(), SCHEMA_VERSION.to_be_bytes());
    assert_eq!(SCHEMA_VERSION, 8);
}
