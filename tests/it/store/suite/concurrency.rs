//! Many writers on one store: compare-and-swap loses no update and the chain stays linear.

use std::sync::{Arc, Barrier};
use std::thread;

use gatehouse::domain::effect::{Effect, Notice};
use gatehouse::domain::ids::{PersonId, RequestId};

use super::*;

const WRITERS: u64 = 8;

pub fn concurrent_read_modify_cas_loses_no_update(backend: &impl Backend) {
    let store = Arc::new(backend.open());
    store.commit(submit(request(1, "ann"), 100)).unwrap();
    let start = Arc::new(Barrier::new(WRITERS as usize));
    let writers: Vec<_> = (0..WRITERS)
        .map(|n| {
            let (store, start) = (Arc::clone(&store), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                loop {
                    let current = store.request(RequestId(1)).unwrap().unwrap();
                    let mut next = current.value;
                    next.fields.insert(format!("writer-{n}"), "seen".into());
                    let mut commit = update(next, current.version, Some(100));
                    commit.events.push(event(n));
                    match store.commit(commit) {
                        Ok(_) => return,
                        Err(StoreError::Conflict) => continue,
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let stored = store.request(RequestId(1)).unwrap().unwrap();
    assert_eq!(stored.version, WRITERS + 1);
    assert_eq!(
        stored.value.fields.len(),
        WRITERS as usize,
        "every writer's change is there"
    );
    assert_eq!(store.verify_audit().unwrap(), WRITERS + 1);
    assert_eq!(
        store.pending_due(at(1_000), 10).unwrap(),
        vec![(at(100), RequestId(1))]
    );
}

pub fn only_one_of_many_writers_with_the_same_expected_version_succeeds(backend: &impl Backend) {
    let store = Arc::new(backend.open());
    store.commit(submit(request(1, "ann"), 100)).unwrap();
    let start = Arc::new(Barrier::new(WRITERS as usize));
    let writers: Vec<_> = (0..WRITERS)
        .map(|n| {
            let (store, start) = (Arc::clone(&store), Arc::clone(&start));
            thread::spawn(move || {
                let mut next = request(1, "ann");
                next.justification = format!("writer {n}");
                let mut commit = update(next, 1, Some(200 + n as i64));
                commit.events.push(event(n));
                start.wait();
                store.commit(commit)
            })
        })
        .collect();
    let results: Vec<_> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(
        results
            .iter()
            .filter(|r| r.is_err())
            .all(|r| matches!(r, Err(StoreError::Conflict)))
    );
    assert_eq!(store.request(RequestId(1)).unwrap().unwrap().version, 2);
    assert_eq!(
        store.pending_due(at(1_000), 10).unwrap().len(),
        1,
        "one due entry, the winner's"
    );
    assert_eq!(store.verify_audit().unwrap(), 2, "only the winner's event");
}

pub fn concurrent_commits_keep_the_audit_chain_linear(backend: &impl Backend) {
    let store = Arc::new(backend.open());
    let writers: Vec<_> = (0..WRITERS)
        .map(|n| {
            let store = Arc::clone(&store);
            thread::spawn(move || {
                for i in 0..20 {
                    let id = n * 100 + i + 1;
                    assert!(store.next_id(Sequence::Request).unwrap() > 0);
                    store.commit(submit(request(id, "ann"), id as i64)).unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    assert_eq!(store.verify_audit().unwrap(), WRITERS * 20);
    assert_eq!(
        store.next_id(Sequence::Request).unwrap(),
        WRITERS * 20 + 1,
        "no id handed out twice"
    );
    assert_eq!(
        store.requests_of(&PersonId::new("ann")).unwrap().len(),
        (WRITERS * 20) as usize
    );
    let outbox = store.outbox(1_000).unwrap();
    assert_eq!(outbox.len(), (WRITERS * 20) as usize);
    // Outbox seqs follow commit order, as the audit chain does: each commit's notice is
    // queued in the order its submission event was chained.
    let by_seq: Vec<u64> = outbox.iter().map(|e| e.seq).collect();
    assert_eq!(by_seq, (1..=WRITERS * 20).collect::<Vec<_>>());
    let chained: Vec<String> = store
        .audit(1, 1_000)
        .unwrap()
        .iter()
        .map(|r| r.event.request.unwrap().to_string())
        .collect();
    let queued: Vec<String> = outbox
        .iter()
        .map(|e| match &e.effect {
            Effect::Notify {
                notice: Notice::Submitted { request },
                ..
            } => request.to_string(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(chained, queued);
}

pub fn ids_handed_out_at_once_are_all_different_and_none_is_skipped(backend: &impl Backend) {
    let store = Arc::new(backend.open());
    let start = Arc::new(Barrier::new(WRITERS as usize));
    let takers: Vec<_> = (0..WRITERS)
        .map(|_| {
            let (store, start) = (Arc::clone(&store), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                (0..200)
                    .map(|_| store.next_id(Sequence::Grant).unwrap())
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut ids: Vec<u64> = takers.into_iter().flat_map(|t| t.join().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, (1..=WRITERS * 200).collect::<Vec<u64>>());
    // Each sequence counts on its own.
    assert_eq!(store.next_id(Sequence::Request).unwrap(), 1);
}
