//! The journal: a batch a crash cut short is completed when the store opens; a clean close
//! leaves nothing to complete; a damaged journal or a halted store says what to do.

use super::concurrency::copy_dir;
use super::*;
use crate::store::sled_store::keys::JOURNAL;
use crate::store::sled_store::write::Job;

/// A request with its audit event and a notice to its requester, as a submission commits it.
fn submission(id: u64, person: &str) -> Commit {
    submit(request(id, person), 100)
}

#[test]
fn a_batch_a_crash_cut_short_is_completed_when_the_store_opens() {
    let total = {
        let store = SledStore::temporary().unwrap();
        store.land_partly(&Job::commit(submission(2, "bo")), 0)
    };
    assert!(
        total >= 6,
        "a submission writes records, indexes, audit and outbox"
    );
    for applied in [0, 1, total / 2, total - 1, total] {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(&dir.path().join("data")).unwrap();
        store.commit(submission(1, "ann")).unwrap();
        store.land_partly(&Job::commit(submission(2, "bo")), applied);
        // The files as the crash leaves them.
        copy_dir(&dir.path().join("data"), &dir.path().join("copy"));
        drop(store);

        for _ in 0..2 {
            let copy = SledStore::open(&dir.path().join("copy")).unwrap();
            let case = format!("{applied} of {total} writes applied");
            assert_eq!(copy.verify_audit().unwrap(), 2, "{case}");
            assert!(copy.request(RequestId(2)).unwrap().is_some(), "{case}");
            let of_bo = copy.requests_of(&PersonId::new("bo")).unwrap();
            assert_eq!(ids(of_bo), vec![2], "{case}");
            let due: Vec<_> = copy.pending_due(at(1_000), 10).unwrap();
            assert_eq!(due.len(), 2, "{case}");
            assert_eq!(copy.outbox(10).unwrap().len(), 2, "{case}");
            assert_eq!(copy.due_effects(at(1_000), 10).unwrap().len(), 2, "{case}");
        }
    }
}

#[test]
fn a_clean_close_leaves_no_journal_to_complete() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        store.commit(submission(1, "ann")).unwrap();
        assert!(!store.tree(JOURNAL).is_empty(), "the last batch is kept");
    }
    let store = SledStore::open(dir.path()).unwrap();
    assert!(store.tree(JOURNAL).is_empty());
    assert_eq!(store.verify_audit().unwrap(), 1);
}

#[test]
fn a_damaged_journal_stops_the_open_with_an_error_that_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(&dir.path().join("data")).unwrap();
    store.commit(submission(1, "ann")).unwrap();
    store
        .tree(JOURNAL)
        .insert("batch", &b"GHJ1\x04meta"[..])
        .unwrap();
    store.tree(JOURNAL).flush().unwrap();
    copy_dir(&dir.path().join("data"), &dir.path().join("copy"));
    drop(store);
    let err = SledStore::open(&dir.path().join("copy"))
        .err()
        .expect("a damaged journal is refused");
    assert!(err.to_string().contains("journal key \"batch\""), "{err}");
}

#[test]
fn a_halted_store_refuses_writes_until_a_restart_completes_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        store.commit(submission(1, "ann")).unwrap();
        store.halt(&sled::Error::Unsupported("the disk went away".to_owned()));
        let err = store.commit(submission(2, "bo")).unwrap_err();
        assert!(matches!(err, StoreError::Halted(_)), "{err:?}");
        assert!(err.to_string().contains("restart Gatehouse"), "{err}");
        assert!(err.to_string().contains("the disk went away"), "{err}");
    }
    let store = SledStore::open(dir.path()).unwrap();
    store.commit(submission(2, "bo")).unwrap();
    assert_eq!(store.verify_audit().unwrap(), 2);
}
