//! Opening a data directory: ids and records survive a restart, a newer schema or a
//! directory in use is refused with its path, and corrupt records are named.

use super::*;

#[test]
fn ids_count_up_per_sequence_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(store.next_id(Sequence::Request).unwrap(), 1);
        assert_eq!(store.next_id(Sequence::Request).unwrap(), 2);
        assert_eq!(store.next_id(Sequence::Grant).unwrap(), 1);
    }
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.next_id(Sequence::Request).unwrap(), 3);
    assert_eq!(store.next_id(Sequence::Grant).unwrap(), 2);
}

#[test]
fn reopening_a_directory_after_drop_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open_with(dir.path(), 1024 * 1024).unwrap();
        store.commit(submit(request(1, "ann"), 100)).unwrap();
        let grants = vec![(grant(1, "ann", Some(50)), Expect::New)];
        store
            .commit(Commit {
                grants,
                events: vec![event(1)],
                ..Commit::default()
            })
            .unwrap();
    }
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.request(RequestId(1)).unwrap().unwrap().version, 1);
    assert_eq!(
        store.grants_expiring(at(50), 10).unwrap(),
        vec![(at(50), GrantId(1))]
    );
    assert_eq!(
        store.pending_due(at(100), 10).unwrap(),
        vec![(at(100), RequestId(1))]
    );
    assert_eq!(store.outbox(10).unwrap().len(), 1);
    assert_eq!(store.verify_audit().unwrap(), 2);
    assert_eq!(
        store
            .commit(Commit {
                events: vec![event(1)],
                ..Commit::default()
            })
            .unwrap()
            .audit_seqs,
        vec![3]
    );
    assert_eq!(store.verify_audit().unwrap(), 3);
}

#[test]
fn a_newer_schema_version_is_refused_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        let meta = store.tree("meta");
        assert_eq!(
            meta.get("schema_version").unwrap().unwrap().as_ref(),
            SCHEMA_VERSION.to_be_bytes()
        );
        meta.insert("schema_version", &(SCHEMA_VERSION + 1).to_be_bytes()[..])
            .unwrap();
        meta.flush().unwrap();
    }
    let err = SledStore::open(dir.path()).err().unwrap();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found, .. } if found == SCHEMA_VERSION + 1),
        "{err}"
    );
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
}

#[test]
fn a_directory_in_use_is_refused_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let _first = SledStore::open(dir.path()).unwrap();
    let err = SledStore::open(dir.path()).err().unwrap();
    assert!(matches!(err, StoreError::Open { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
    assert!(message.contains("another Gatehouse"), "{message}");
}

#[test]
fn a_corrupt_record_is_reported_with_its_tree_and_key() {
    let store = SledStore::temporary().unwrap();
    store.commit(submit(request(4, "ann"), 100)).unwrap();
    store
        .tree("requests")
        .insert(4u64.to_be_bytes(), &b"{\"v\":1,"[..])
        .unwrap();
    let err = store.request(RequestId(4)).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }));
    assert!(err.to_string().contains("requests key 4"), "{err}");
    assert!(store.requests_of(&PersonId::new("ann")).is_err());
    let err = store
        .commit(update(request(4, "ann"), 1, None))
        .unwrap_err();
    assert!(err.to_string().contains("requests key 4"), "{err}");
}
