//! The audit chain as stored: it verifies, reads by seq, and is anchored with a key.

use gatehouse::domain::anchor::AuditKey;
use gatehouse::domain::audit::GENESIS_HASH;
use gatehouse::store::Anchoring;

use super::*;

fn key() -> AuditKey {
    AuditKey::new(b"kept in /run/secrets, not in the data directory")
}

fn commit_events(store: &dyn Store, from: u64, n: u64) {
    for i in from..from + n {
        store
            .commit(Commit {
                events: vec![event(i)],
                ..Commit::default()
            })
            .unwrap();
    }
}

pub fn the_audit_chain_of_many_commits_verifies(backend: &impl Backend) {
    let store = backend.open();
    assert_eq!(store.verify_audit().unwrap(), 0);
    assert_eq!(store.chain_head().unwrap(), None);
    let mut seqs = Vec::new();
    for i in 1..=40 {
        let commit = Commit {
            events: vec![event(i), event(i + 100), event(i + 200)],
            ..Commit::default()
        };
        seqs.extend(store.commit(commit).unwrap().audit_seqs);
    }
    assert_eq!(seqs, (1..=120).collect::<Vec<_>>());
    assert_eq!(store.verify_audit().unwrap(), 120);

    let records = store.audit(1, 2).unwrap();
    assert_eq!(records[0].prev_hash, GENESIS_HASH);
    assert_eq!(records[1].prev_hash, records[0].hash);
    assert_eq!(records[1].event, event(101));
    let head = store.chain_head().unwrap().unwrap();
    assert_eq!(head.seq, 120);
    assert_eq!(head.hash, store.audit(120, 1).unwrap()[0].hash);
}

pub fn audit_reads_from_a_seq_up_to_a_limit(backend: &impl Backend) {
    let store = backend.open();
    commit_events(&*store, 1, 6);
    let seqs: Vec<u64> = store.audit(3, 2).unwrap().iter().map(|r| r.seq).collect();
    assert_eq!(seqs, vec![3, 4]);
    assert_eq!(store.audit(6, 10).unwrap().len(), 1);
    assert!(store.audit(7, 10).unwrap().is_empty());
}

pub fn with_a_key_every_batch_is_checkpointed_and_the_chain_is_anchored_to_its_head(
    backend: &impl Backend,
) {
    let store = backend.open();
    assert_eq!(
        store.anchor_with(key()).unwrap(),
        Anchoring::Continues {
            key: key().id().to_owned()
        }
    );
    for i in 0..3 {
        store
            .commit(Commit {
                events: vec![event(2 * i + 1), event(2 * i + 2)],
                ..Commit::default()
            })
            .unwrap();
    }
    // A commit without events needs no checkpoint.
    store.commit(submit(request(9, "ann"), 100)).unwrap();
    store.commit(update(request(9, "ann"), 1, None)).unwrap();
    let report = store.verify_audit_against(&[]).unwrap();
    assert_eq!(
        (report.events, report.anchored_through, report.checkpoints),
        (7, 7, 4)
    );
}

pub fn a_store_reopened_with_its_key_continues_the_anchored_chain(backend: &impl Backend) {
    {
        let store = backend.open();
        store.anchor_with(key()).unwrap();
        commit_events(&*store, 1, 3);
    }
    {
        let store = backend.open();
        assert_eq!(
            store.anchor_with(key()).unwrap(),
            Anchoring::Continues {
                key: key().id().to_owned()
            }
        );
        commit_events(&*store, 4, 2);
        let report = store.verify_audit_against(&[]).unwrap();
        assert_eq!((report.events, report.anchored_through), (5, 5));
    }
    // Without the key, the events written since are taken as found, and said so.
    let store = backend.open();
    commit_events(&*store, 6, 1);
    let found = store.anchor_with(key()).unwrap();
    assert!(
        matches!(found, Anchoring::Adopts { head: 6, .. }),
        "{found:?}"
    );
}
