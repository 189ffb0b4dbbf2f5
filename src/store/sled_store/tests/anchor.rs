//! The audit chain anchored with a key: every batch is checkpointed, a rewrite without the
//! key is found, and a writer that cannot check the head it extends says so.

use super::*;
use crate::domain::anchor::{AuditKey, ChainHead, PublishedHead};
use crate::domain::audit::{AuditRecord, ChainError};
use crate::store::{Anchoring, Unanchored};

fn key() -> AuditKey {
    AuditKey::new(b"kept in /run/secrets, not in the data directory")
}

/// Commits `n` single-event commits, with events numbered from `from`.
fn commit_events(store: &SledStore, from: u64, n: u64) {
    for i in from..from + n {
        store
            .commit(Commit {
                events: vec![event(i)],
                ..Commit::default()
            })
            .unwrap();
    }
}

/// Changes the reason of event `seq` and rebuilds every hash after it and the head, as
/// someone who can write the data directory but does not hold the key would.
fn rewrite_with_fresh_hashes(store: &SledStore, seq: u64) {
    let audit = store.tree("audit");
    let mut records: Vec<AuditRecord> = audit
        .iter()
        .map(|item| serde_json::from_slice(&item.unwrap().1).unwrap())
        .collect();
    records[seq as usize - 1].event.reason = Some("routine check".into());
    let mut prev = records[seq as usize - 2].hash.clone();
    for record in &mut records[seq as usize - 1..] {
        *record = AuditRecord::chain(record.seq, &prev, record.event.clone());
        prev = record.hash.clone();
        audit
            .insert(
                record.seq.to_be_bytes(),
                serde_json::to_vec(&record).unwrap(),
            )
            .unwrap();
    }
    let last = records.last().unwrap();
    let head = ChainHead {
        seq: last.seq,
        hash: last.hash.clone(),
    };
    store
        .tree("meta")
        .insert("audit_head", serde_json::to_vec(&head).unwrap())
        .unwrap();
}

fn chain_error(store: &SledStore) -> ChainError {
    match store.verify_audit_against(&[]) {
        Err(StoreError::Chain(e)) => e,
        other => panic!("expected a chain error, got {other:?}"),
    }
}

#[test]
fn with_a_key_every_batch_is_checkpointed_and_the_chain_is_anchored_to_its_head() {
    let store = SledStore::temporary().unwrap();
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
    assert_eq!(store.tree("audit_checkpoints").len(), 4);
}

#[test]
fn a_chain_rewritten_with_fresh_hashes_is_refused_with_the_key_and_flagged_without_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        store.anchor_with(key()).unwrap();
        commit_events(&store, 1, 5);
        rewrite_with_fresh_hashes(&store, 2);
        assert_eq!(
            chain_error(&store),
            ChainError::CheckpointMismatch {
                seq: 2,
                key: key().id().to_owned()
            }
        );
    }
    let store = SledStore::open(dir.path()).unwrap();
    let report = store.verify_audit_against(&[]).unwrap();
    assert_eq!(report.events, 5);
    let notes = report.notes();
    assert!(notes[0].starts_with("not anchored"), "{notes:?}");
    assert!(
        notes[1].starts_with(&format!("5 checkpoints of key {} not checked", key().id())),
        "{notes:?}"
    );
}

#[test]
fn a_writer_that_finds_its_head_rewritten_says_so_and_the_rewrite_stays_found() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        store.anchor_with(key()).unwrap();
        commit_events(&store, 1, 5);
        rewrite_with_fresh_hashes(&store, 3);
    }
    let store = SledStore::open(dir.path()).unwrap();
    let found = store.anchor_with(key()).unwrap();
    assert_eq!(
        found,
        Anchoring::Adopts {
            key: key().id().to_owned(),
            head: 5,
            why: Unanchored::Mismatch
        }
    );
    assert!(found.is_suspicious());
    commit_events(&store, 6, 1);
    assert!(
        matches!(
            chain_error(&store),
            ChainError::CheckpointMismatch { seq: 3, .. }
        ),
        "the checkpoints written before the rewrite still find it"
    );
}

#[test]
fn a_data_directory_from_before_the_key_is_taken_as_found_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        commit_events(&store, 1, 3);
    }
    let store = SledStore::open(dir.path()).unwrap();
    let found = store.anchor_with(key()).unwrap();
    assert_eq!(
        found,
        Anchoring::Adopts {
            key: key().id().to_owned(),
            head: 3,
            why: Unanchored::NeverAnchored
        }
    );
    assert!(!found.is_suspicious());
    let before = store.verify_audit_against(&[]).unwrap();
    assert!(
        before.notes()[0].starts_with("not anchored yet"),
        "{:?}",
        before.notes()
    );

    commit_events(&store, 4, 2);
    let after = store.verify_audit_against(&[]).unwrap();
    assert_eq!((after.anchored_through, after.checkpoints), (5, 2));
    let notes = after.notes();
    assert!(notes[0].starts_with("anchored: events 1-5"), "{notes:?}");
    assert!(
        notes[1].starts_with(
            "events 1-3 were not anchored when written: they were taken as found at event 4"
        ),
        "{notes:?}"
    );
}

#[test]
fn events_written_without_the_key_after_anchored_ones_are_refused_until_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        store.anchor_with(key()).unwrap();
        commit_events(&store, 1, 2);
    }
    {
        let store = SledStore::open(dir.path()).unwrap();
        commit_events(&store, 3, 2);
    }
    let store = SledStore::open(dir.path()).unwrap();
    let found = store.anchor_with(key()).unwrap();
    assert_eq!(
        found,
        Anchoring::Adopts {
            key: key().id().to_owned(),
            head: 4,
            why: Unanchored::WrittenWithout { last: 2 }
        }
    );
    assert_eq!(
        chain_error(&store),
        ChainError::Unanchored {
            from: 3,
            to: 4,
            key: key().id().to_owned()
        }
    );
    commit_events(&store, 5, 1);
    let notes = store.verify_audit_against(&[]).unwrap().notes();
    assert!(
        notes[1].starts_with("events 3-4 were not anchored when written"),
        "{notes:?}"
    );
}

#[test]
fn the_head_to_publish_is_the_last_event_and_verify_finds_it_or_its_loss() {
    let store = SledStore::temporary().unwrap();
    assert_eq!(store.chain_head().unwrap(), None);
    commit_events(&store, 1, 4);
    let head = store.chain_head().unwrap().unwrap();
    let last = store.audit(4, 1).unwrap().remove(0);
    assert_eq!((head.seq, &head.hash), (4, &last.hash));

    let published: PublishedHead = head.short().parse().unwrap();
    let report = store
        .verify_audit_against(std::slice::from_ref(&published))
        .unwrap();
    assert_eq!(report.published, [published.to_string()]);

    // Cut back to event 2, head and all: only the published head shows it.
    for seq in [3u64, 4] {
        store.tree("audit").remove(seq.to_be_bytes()).unwrap();
    }
    let cut = store.audit(2, 1).unwrap().remove(0);
    let head = ChainHead {
        seq: 2,
        hash: cut.hash,
    };
    store
        .tree("meta")
        .insert("audit_head", serde_json::to_vec(&head).unwrap())
        .unwrap();
    assert_eq!(store.verify_audit().unwrap(), 2);
    let err = store.verify_audit_against(&[published]).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Chain(ChainError::PublishedBeyond { seq: 4, last: 2 })
        ),
        "{err}"
    );
}

#[test]
fn verifying_while_batches_land_never_sees_a_batch_half_checkpointed() {
    let store = std::sync::Arc::new(SledStore::temporary().unwrap());
    store.anchor_with(key()).unwrap();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let writers: Vec<_> = (0..4u64)
            .map(|w| {
                let store = store.clone();
                scope.spawn(move || commit_events(&store, 1000 * w, 60))
            })
            .collect();
        let verifier = scope.spawn(|| {
            let mut walks = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) || walks == 0 {
                store.verify_audit_against(&[]).unwrap();
                walks += 1;
            }
            walks
        });
        for writer in writers {
            writer.join().unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(verifier.join().unwrap() > 0);
    });
    let report = store.verify_audit_against(&[]).unwrap();
    assert_eq!((report.events, report.anchored_through), (240, 240));
}
