//! Many writers on one store: compare-and-swap loses no update and the chain stays linear.

use std::sync::{Arc, Barrier};
use std::thread;

use super::*;

const WRITERS: u64 = 8;

/// Copies a data directory as it is on disk now, while its store is still open.
pub(super) fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn concurrent_commits_share_flushes_and_each_is_on_disk_when_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(&dir.path().join("data")).unwrap());
    let before = store.flushes();
    let start = Arc::new(Barrier::new(WRITERS as usize));
    let writers: Vec<_> = (0..WRITERS)
        .map(|n| {
            let (store, start) = (Arc::clone(&store), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                for i in 0..20 {
                    let id = n * 100 + i + 1;
                    store.commit(submit(request(id, "ann"), id as i64)).unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let commits = WRITERS * 20;
    let flushes = store.flushes() - before;
    assert!(
        (1..=commits).contains(&flushes),
        "{flushes} flushes for {commits} commits"
    );
    // What `/metrics` shows of it.
    let stats = store.write_stats();
    assert_eq!(stats.commits, commits);
    assert!((1..=commits).contains(&stats.batches), "{stats:?}");
    assert_eq!(stats.flushes, store.flushes(), "{stats:?}");
    assert!(
        !stats.busy.is_zero() && !stats.flushing.is_zero(),
        "{stats:?}"
    );
    // What the files hold right now, without closing the store: every acknowledged commit.
    copy_dir(&dir.path().join("data"), &dir.path().join("copy"));
    let copy = SledStore::open(&dir.path().join("copy")).unwrap();
    assert_eq!(copy.verify_audit().unwrap(), commits);
    assert_eq!(
        copy.requests_of(&PersonId::new("ann")).unwrap().len(),
        commits as usize
    );
}

#[test]
fn a_submission_flushes_once_and_its_id_and_delivery_are_on_disk_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(&dir.path().join("data")).unwrap();
    let before = store.flushes();
    // What a slash command does: note Slack's delivery, take an id, commit the request.
    assert!(store.first_delivery("slack:cmd-1", at(300)).unwrap());
    let id = store.next_id(Sequence::Request).unwrap();
    store.commit(submit(request(id, "ann"), 100)).unwrap();
    assert_eq!(store.flushes() - before, 1, "one flush per submission");

    // The files as they are now, as a crash would leave them.
    copy_dir(&dir.path().join("data"), &dir.path().join("copy"));
    drop(store);
    let copy = SledStore::open(&dir.path().join("copy")).unwrap();
    assert!(copy.request(RequestId(id)).unwrap().is_some());
    assert!(
        !copy.first_delivery("slack:cmd-1", at(300)).unwrap(),
        "a replay after the restart is known"
    );
    assert_eq!(
        copy.next_id(Sequence::Request).unwrap(),
        id + 1,
        "the id is never handed out again"
    );
}

#[test]
fn a_batch_applies_each_commit_as_if_alone() {
    use super::super::write::Job;
    let store = SledStore::temporary().unwrap();
    store.commit(submit(request(1, "ann"), 100)).unwrap();
    let current = store.request(RequestId(1)).unwrap().unwrap();
    let mut changed = current.value.clone();
    changed.fields.insert("first".into(), "yes".into());
    let mut late = current.value.clone();
    late.fields.insert("second".into(), "lost".into());
    let batch = vec![
        Job::commit(update(changed, current.version, Some(100))),
        // A double click: the same expected version, after the first changed it.
        Job::commit(update(late, current.version, Some(100))),
        Job::commit(submit(request(2, "bo"), 200)),
    ];
    store.apply_batch(&batch);
    let results: Vec<_> = batch.iter().map(|job| job.take().unwrap()).collect();
    assert!(results[0].is_ok(), "{:?}", results[0]);
    assert!(
        matches!(results[1], Err(StoreError::Conflict)),
        "{:?}",
        results[1]
    );
    assert!(results[2].is_ok(), "{:?}", results[2]);
    let stored = store.request(RequestId(1)).unwrap().unwrap();
    assert_eq!(stored.version, 2);
    assert!(
        !stored.value.fields.contains_key("second"),
        "nothing of the loser is written"
    );
    assert!(store.request(RequestId(2)).unwrap().is_some());
    assert_eq!(
        store.verify_audit().unwrap(),
        2,
        "its events follow in order"
    );
}

#[test]
fn a_commit_that_fails_halfway_fails_alone_and_the_rest_of_its_batch_lands() {
    use super::super::write::Job;
    let store = SledStore::temporary().unwrap();
    // Two new requests with one id: the second write of this commit finds the first.
    let mut twice = submit(request(5, "ann"), 100);
    twice.requests.push(twice.requests[0].clone());
    let batch = vec![
        Job::commit(submit(request(3, "bo"), 100)),
        Job::commit(twice),
        Job::commit(submit(request(4, "cy"), 100)),
    ];
    store.apply_batch(&batch);
    let results: Vec<_> = batch.iter().map(|job| job.take().unwrap()).collect();
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert!(
        matches!(results[1], Err(StoreError::Conflict)),
        "{:?}",
        results[1]
    );
    assert!(
        store.request(RequestId(5)).unwrap().is_none(),
        "nothing of it is written"
    );
    assert!(store.request(RequestId(3)).unwrap().is_some());
    assert!(store.request(RequestId(4)).unwrap().is_some());
    assert_eq!(store.verify_audit().unwrap(), 2);
}

#[test]
fn a_damaged_id_counter_is_an_error_that_names_it() {
    let store = SledStore::temporary().unwrap();
    store
        .tree("meta")
        .insert(b"last_id/request", &b"xyz"[..])
        .unwrap();
    let error = store.next_id(Sequence::Request).unwrap_err();
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
    assert!(error.to_string().contains("last_id/request"), "{error}");
}

#[test]
fn a_batch_staged_while_the_one_before_it_lands_is_staged_on_top_of_it() {
    use super::super::write::Job;
    let store = SledStore::temporary().unwrap();
    store.commit(submit(request(1, "ann"), 100)).unwrap();
    let current = store.request(RequestId(1)).unwrap().unwrap();
    let mut first = current.value.clone();
    first.fields.insert("first".into(), "yes".into());
    let landing = vec![
        Job::commit(update(first.clone(), current.version, Some(100))),
        Job::commit(submit(request(2, "bo"), 200)),
    ];
    // The first batch is staged and handed over to land, but has not reached its trees yet.
    let parts = store.stage_batch(&landing);
    *store.in_flight.lock().unwrap() = parts.iter().map(|(staged, _)| staged.clone()).collect();
    assert_eq!(store.request(RequestId(1)).unwrap().unwrap().version, 1);

    // The next batch builds on what the first wrote: the version it made, the chain's head
    // and the outbox seq after its notice.
    let mut second = first;
    second.fields.insert("second".into(), "yes".into());
    let next = vec![
        Job::commit(update(second, current.version + 1, Some(100))),
        Job::commit(submit(request(3, "cy"), 300)),
    ];
    let next_parts = store.stage_batch(&next);
    for (staged, jobs) in parts.into_iter().chain(next_parts) {
        store.land_jobs(&staged, jobs);
    }
    store.in_flight.lock().unwrap().clear();

    for job in landing.iter().chain(&next) {
        job.take().unwrap().unwrap();
    }
    let stored = store.request(RequestId(1)).unwrap().unwrap();
    assert_eq!(stored.version, 3);
    assert!(
        stored.value.fields.contains_key("first") && stored.value.fields.contains_key("second")
    );
    assert_eq!(
        store.verify_audit().unwrap(),
        3,
        "the chain runs through both batches in order"
    );
    let queued: Vec<u64> = store.outbox(10).unwrap().iter().map(|e| e.seq).collect();
    assert_eq!(queued, [1, 2, 3], "each notice has a seq of its own");
}
