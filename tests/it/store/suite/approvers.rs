//! Who is asked to decide what: the pending-for-approver index, kept with every write of a
//! request.

use gatehouse::domain::ids::PersonId;
use gatehouse::domain::request::RequestState;

use super::*;

/// The ids of what `person` is asked to decide, newest first.
pub fn asked_of(store: &dyn Store, person: &str) -> Vec<u64> {
    ids(store.pending_for_approver(&PersonId::new(person)).unwrap())
}

pub fn a_request_is_listed_under_the_approvers_of_its_current_stage_only(backend: &impl Backend) {
    let store = backend.open();
    store
        .commit(submit(staged(1, "ann", &["bob"], &["carol"]), 10))
        .unwrap();
    store
        .commit(submit(staged(2, "ann", &["bob", "dan"], &["carol"]), 20))
        .unwrap();
    assert_eq!(asked_of(&*store, "bob"), [2, 1], "newest first");
    assert_eq!(asked_of(&*store, "dan"), [2]);
    assert!(asked_of(&*store, "carol").is_empty() && asked_of(&*store, "ann").is_empty());

    // The first stage is done: the request moves to the owners.
    let mut moved = staged(1, "ann", &["bob"], &["carol"]);
    moved.current_stage = 1;
    store.commit(update(moved.clone(), 1, Some(30))).unwrap();
    assert_eq!(asked_of(&*store, "bob"), [2]);
    assert_eq!(asked_of(&*store, "carol"), [1]);

    // Decided: nobody is asked any more.
    moved.state = RequestState::Expired { at: at(40) };
    store.commit(update(moved, 2, None)).unwrap();
    assert!(asked_of(&*store, "carol").is_empty());
}

pub fn a_refused_write_leaves_the_approver_index_as_it_was(backend: &impl Backend) {
    let store = backend.open();
    store
        .commit(submit(staged(1, "ann", &["bob"], &["carol"]), 10))
        .unwrap();
    let mut moved = staged(1, "ann", &["bob"], &["carol"]);
    moved.current_stage = 1;
    let stale = store.commit(update(moved, 7, Some(30)));
    assert!(matches!(stale, Err(StoreError::Conflict)), "{stale:?}");
    assert_eq!(asked_of(&*store, "bob"), [1]);
    assert!(asked_of(&*store, "carol").is_empty());
}
