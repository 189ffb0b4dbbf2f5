//! The audit chain as stored: it verifies, and tampering through sled is found.

use super::*;
use crate::domain::audit::{AuditRecord, ChainError};

/// A store with `n` audit events, one commit each.
fn store_with_events(n: u64) -> SledStore {
    let store = SledStore::temporary().unwrap();
    for i in 1..=n {
        assert_eq!(
            store
                .commit(Commit {
                    events: vec![event(i)],
                    ..Commit::default()
                })
                .unwrap()
                .audit_seqs,
            vec![i]
        );
    }
    store
}

fn chain_error(store: &SledStore) -> ChainError {
    match store.verify_audit() {
        Err(StoreError::Chain(e)) => e,
        other => panic!("expected a chain error, got {other:?}"),
    }
}

#[test]
fn an_edited_audit_record_is_found() {
    let store = store_with_events(5);
    let audit = store.tree("audit");
    let raw = audit.get(3u64.to_be_bytes()).unwrap().unwrap();
    let mut record: AuditRecord = serde_json::from_slice(&raw).unwrap();
    record.event.reason = Some("nothing happened".into());
    audit
        .insert(3u64.to_be_bytes(), serde_json::to_vec(&record).unwrap())
        .unwrap();
    assert_eq!(chain_error(&store), ChainError::Edited { seq: 3 });
}

#[test]
fn a_deleted_record_in_the_middle_is_found() {
    let store = store_with_events(5);
    store.tree("audit").remove(3u64.to_be_bytes()).unwrap();
    assert_eq!(
        chain_error(&store),
        ChainError::Missing {
            previous: 2,
            expected: 3,
            found: 4
        }
    );
}

#[test]
fn a_deleted_last_record_is_found_through_the_head() {
    let store = store_with_events(5);
    store.tree("audit").remove(5u64.to_be_bytes()).unwrap();
    assert_eq!(
        chain_error(&store),
        ChainError::Truncated {
            last: 4,
            expected: 5
        }
    );
}

#[test]
fn an_unreadable_audit_record_is_reported_as_corrupt() {
    let store = store_with_events(3);
    store
        .tree("audit")
        .insert(2u64.to_be_bytes(), &b"garbage"[..])
        .unwrap();
    let err = store.verify_audit().unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("audit key 2"), "{err}");
}
