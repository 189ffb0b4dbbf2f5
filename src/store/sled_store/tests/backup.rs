//! Backups of a sled store: everything comes back, and a rewritten audit log does not.

use super::*;
use crate::domain::audit::{AuditRecord, ChainError};
use crate::store::backup::{BackupError, read, write};
use crate::store::sled_store::backup::verify;

fn two_requests() -> SledStore {
    let store = SledStore::temporary().unwrap();
    store.commit(submit(request(1, "ann"), 300)).unwrap();
    store.commit(submit(request(2, "bo"), 100)).unwrap();
    store
}

#[test]
fn a_restored_store_holds_what_was_backed_up() {
    let store = two_requests();
    let backup = store.backup().unwrap();
    let mut bytes = Vec::new();
    write(&backup, &mut bytes).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let summary = SledStore::restore(&data, &read(&bytes[..]).unwrap(), false, None).unwrap();
    assert_eq!((summary.requests, summary.audit_events), (2, 2));
    let restored = SledStore::open(&data).unwrap();
    assert_eq!(
        restored.request(RequestId(2)).unwrap(),
        store.request(RequestId(2)).unwrap()
    );
    assert_eq!(restored.outbox(10).unwrap(), store.outbox(10).unwrap());
    assert_eq!(restored.audit(1, 10).unwrap(), store.audit(1, 10).unwrap());
    assert_eq!(
        restored.next_id(Sequence::Request).unwrap(),
        store.next_id(Sequence::Request).unwrap()
    );
}

#[test]
fn an_audit_log_rewritten_with_fresh_hashes_is_refused_by_its_head() {
    let store = two_requests();
    let mut backup = store.backup().unwrap();
    assert_eq!(verify(&backup, None).unwrap().audit_events, 2);
    let records = store.audit(1, 10).unwrap();
    let mut event = records[1].event.clone();
    event.reason = Some("nothing to see".into());
    let forged = AuditRecord::chain(2, &records[0].hash, event);
    let entry = backup
        .entries
        .iter_mut()
        .find(|e| e.tree == "audit" && e.key == 2u64.to_be_bytes())
        .unwrap();
    entry.value = serde_json::to_vec(&forged).unwrap();
    let err = verify(&backup, None).unwrap_err();
    assert!(
        matches!(err, BackupError::Chain(ChainError::Rewritten { seq: 2 })),
        "{err}"
    );
}

#[test]
fn a_tree_gatehouse_does_not_keep_is_refused() {
    let mut backup = two_requests().backup().unwrap();
    backup.entries[0].tree = "passwords".into();
    let err = verify(&backup, None).unwrap_err();
    assert!(
        err.to_string().contains("`passwords` is not a tree"),
        "{err}"
    );
}

#[test]
fn a_spooled_backup_holds_what_an_in_memory_one_does_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    for id in 1..=50 {
        store.commit(submit(request(id, "ann"), 300)).unwrap();
    }
    let listing = || -> Vec<std::ffi::OsString> {
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let before = listing();
    let mut spooled = Store::backup_file(&store).unwrap();
    assert_eq!(listing(), before, "the spool file has no name");
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut spooled.file, &mut bytes).unwrap();
    let from_file = read(&bytes[..]).unwrap();
    let in_memory = store.backup().unwrap();
    assert_eq!(from_file.header, spooled.header);
    assert_eq!(from_file.entries, in_memory.entries);
    assert_eq!(spooled.entries, in_memory.entries.len());
    assert_eq!(verify(&from_file, None).unwrap().requests, 50);
}
