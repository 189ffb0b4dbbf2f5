//! The outbox: effects queued with their commit, once per idempotency key, completed
//! together with what they caused, and retried later when they fail.

use super::*;
use crate::domain::effect::Effect;

fn card(request: u64) -> Effect {
    Effect::ApprovalCard {
        request: RequestId(request),
        approver: PersonId::new("cy"),
        stage: 0,
    }
}

fn effects(effects: Vec<Effect>) -> Commit {
    Commit {
        events: vec![event(1)],
        effects,
        ..Commit::default()
    }
}

#[test]
fn duplicate_effect_keys_are_not_queued_twice() {
    let store = SledStore::temporary().unwrap();
    store
        .commit(effects(vec![card(1), card(1), card(2)]))
        .unwrap();
    store
        .commit(effects(vec![
            card(2),
            Effect::Provision { grant: GrantId(1) },
        ]))
        .unwrap();
    store
        .commit(effects(vec![Effect::Provision { grant: GrantId(1) }]))
        .unwrap();
    let keys: Vec<String> = store
        .outbox(10)
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(
        keys,
        vec!["card:AR-1:0:cy", "card:AR-2:0:cy", "provision:G-1"]
    );
    let seqs: Vec<u64> = store.outbox(10).unwrap().iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3]);
}

#[test]
fn the_newest_effect_is_the_highest_seq_still_queued() {
    let store = SledStore::temporary().unwrap();
    assert_eq!(store.newest_effect().unwrap(), None);
    store.commit(effects(vec![card(1), card(2)])).unwrap();
    store.commit(effects(vec![card(3)])).unwrap();
    assert_eq!(store.newest_effect().unwrap(), Some(3));
    store.complete_effect(3, Commit::default()).unwrap();
    assert_eq!(store.newest_effect().unwrap(), Some(2));
    store.complete_effect(1, Commit::default()).unwrap();
    store.complete_effect(2, Commit::default()).unwrap();
    assert_eq!(store.newest_effect().unwrap(), None);
}

#[test]
fn effects_without_a_natural_key_are_all_queued() {
    let store = SledStore::temporary().unwrap();
    let refresh = Effect::RefreshCards {
        request: RequestId(1),
    };
    store
        .commit(effects(vec![refresh.clone(), refresh.clone()]))
        .unwrap();
    store.commit(effects(vec![refresh])).unwrap();
    let keys: Vec<String> = store
        .outbox(10)
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(keys, vec!["effect:1", "effect:2", "effect:3"]);
    assert!(
        store.tree("outbox_keys").is_empty(),
        "keys that embed their seq need no index"
    );
    store.commit(effects(vec![card(1)])).unwrap();
    assert_eq!(
        store.tree("outbox_keys").len(),
        1,
        "a card is indexed by its key"
    );
}

#[test]
fn new_effects_are_due_from_the_time_of_the_change() {
    let store = SledStore::temporary().unwrap();
    store.commit(effects(vec![card(1)])).unwrap();
    let entry = &store.outbox(1).unwrap()[0];
    assert_eq!(
        (
            entry.attempts,
            entry.next_attempt_at,
            entry.last_error.clone()
        ),
        (0, at(1), None)
    );
    assert!(store.due_effects(at(0), 10).unwrap().is_empty());
    assert_eq!(store.due_effects(at(1), 10).unwrap().len(), 1);
}

#[test]
fn an_effect_is_not_handed_out_before_its_commit_is_durable() {
    use super::super::write::Job;
    let store = SledStore::temporary().unwrap();
    store.commit(effects(vec![card(1)])).unwrap();
    // Applied but not flushed, as a commit is between landing and its flush.
    let job = Job::commit(effects(vec![card(2)]));
    store.apply_batch(std::slice::from_ref(&job));
    job.take().unwrap().unwrap();
    assert_eq!(store.outbox(10).unwrap().len(), 2, "both are queued");
    let due = |store: &SledStore| -> Vec<Effect> {
        let entries = store.due_effects(at(5), 10).unwrap();
        entries.into_iter().map(|e| e.effect).collect()
    };
    assert_eq!(due(&store), vec![card(1)], "only the durable one runs");
    let after = |store: &SledStore| -> Vec<u64> {
        let entries = store.effects_after(0, 10).unwrap();
        entries.into_iter().map(|e| e.seq).collect()
    };
    assert_eq!(after(&store), vec![1], "nor is it read after the cursor");
    store.durable(store.last_outbox_seq().unwrap()).unwrap();
    assert_eq!(after(&store), vec![1, 2]);
    assert_eq!(due(&store), vec![card(1), card(2)]);
}

#[test]
fn effects_queued_before_a_restart_are_handed_out_after_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        store.commit(effects(vec![card(1), card(2)])).unwrap();
    }
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.due_effects(at(5), 10).unwrap().len(), 2);
}

#[test]
fn complete_effect_removes_the_entry_and_applies_then() {
    let store = SledStore::temporary().unwrap();
    store.commit(effects(vec![card(1), card(2)])).unwrap();
    let then = Commit {
        grants: vec![(grant(1, "ann", Some(100)), Expect::New)],
        events: vec![event(2)],
        ..Commit::default()
    };
    store.complete_effect(1, then).unwrap();
    let left: Vec<u64> = store.outbox(10).unwrap().iter().map(|e| e.seq).collect();
    assert_eq!(left, vec![2]);
    assert_eq!(store.grant(GrantId(1)).unwrap().unwrap().version, 1);
    assert_eq!(store.verify_audit().unwrap(), 2);

    // Its key is free again: the same card can be asked for anew (a later stage, a repost).
    store.commit(effects(vec![card(1)])).unwrap();
    assert_eq!(store.outbox(10).unwrap().len(), 2);
}

#[test]
fn completing_an_effect_twice_conflicts_and_applies_nothing() {
    let store = SledStore::temporary().unwrap();
    store.commit(effects(vec![card(1)])).unwrap();
    store.complete_effect(1, Commit::default()).unwrap();
    let then = Commit {
        events: vec![event(2)],
        ..Commit::default()
    };
    assert!(matches!(
        store.complete_effect(1, then),
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.verify_audit().unwrap(), 1);
}

#[test]
fn a_failing_then_keeps_the_effect_queued() {
    let store = SledStore::temporary().unwrap();
    store.commit(effects(vec![card(1)])).unwrap();
    let then = Commit {
        grants: vec![(grant(1, "ann", None), Expect::Version(4))],
        ..Commit::default()
    };
    assert!(matches!(
        store.complete_effect(1, then),
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.outbox(10).unwrap().len(), 1);
}

#[test]
fn a_failed_effect_waits_until_its_next_attempt() {
    let store = SledStore::temporary().unwrap();
    store.commit(effects(vec![card(1), card(2)])).unwrap();
    store.retry_effect(1, at(60), "slack said 503").unwrap();
    store
        .retry_effect(1, at(120), "slack said 503 again")
        .unwrap();

    let due: Vec<u64> = store
        .due_effects(at(100), 10)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(due, vec![2]);
    let due = store.due_effects(at(120), 10).unwrap();
    assert_eq!(
        due.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 2],
        "oldest first"
    );
    assert_eq!(due[0].attempts, 2);
    assert_eq!(due[0].last_error.as_deref(), Some("slack said 503 again"));
    assert_eq!(store.due_effects(at(120), 1).unwrap().len(), 1);

    store.retry_effect(9, at(0), "gone").unwrap();
}

#[test]
fn the_effects_waiting_are_those_whose_next_attempt_is_later() {
    let store = SledStore::temporary().unwrap();
    store
        .commit(effects(vec![card(1), card(2), card(3)]))
        .unwrap();
    store.retry_effect(3, at(60), "slack said 503").unwrap();
    store.retry_effect(1, at(120), "slack said 503").unwrap();
    let waiting = |now| -> Vec<u64> {
        let waiting = store.effects_waiting(at(now)).unwrap();
        waiting.iter().map(|e| e.seq).collect()
    };
    assert_eq!(waiting(30), vec![1, 3], "oldest first");
    assert_eq!(waiting(60), vec![1], "due at 60 is not waiting at 60");
    assert_eq!(waiting(120), Vec::<u64>::new());
}

#[test]
fn a_schema_1_directory_gets_its_due_indexes_built_on_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        store.commit(effects(vec![card(1), card(2)])).unwrap();
        store.retry_effect(1, at(500), "slack said 503").unwrap();
        let grants = vec![
            (grant(1, "ann", Some(50)), Expect::New),
            (grant(2, "bob", None), Expect::New),
        ];
        store
            .commit(Commit {
                grants,
                ..Commit::default()
            })
            .unwrap();
        // What a schema 1 directory holds: the records, without the indexes schema 2 added.
        store.tree("outbox_by_due").clear().unwrap();
        store.tree("warnings_by_due").clear().unwrap();
        store
            .tree("meta")
            .insert("schema_version", &1u32.to_be_bytes()[..])
            .unwrap();
        store.tree("meta").flush().unwrap();
    }
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(
        store
            .tree("meta")
            .get("schema_version")
            .unwrap()
            .unwrap()
            .as_ref(),
        SCHEMA_VERSION.to_be_bytes()
    );
    let due: Vec<u64> = store
        .due_effects(at(100), 10)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(
        due,
        vec![2],
        "the retried effect waits for its next attempt"
    );
    assert_eq!(store.next_effect_due_after(at(100)).unwrap(), Some(at(500)));
    assert_eq!(
        store.warnings_due(at(0), at(100), 10).unwrap(),
        vec![(at(50), GrantId(1))],
        "a grant that ends is owed a warning; standing access is not"
    );
}

#[test]
fn entries_are_read_after_a_seq_in_order_due_or_not_until_they_leave() {
    let store = SledStore::temporary().unwrap();
    store
        .commit(effects(vec![card(1), card(2), card(3), card(4)]))
        .unwrap();
    store.retry_effect(2, at(3600), "down").unwrap();
    store.complete_effect(3, Commit::default()).unwrap();
    let seqs = |after, limit| -> Vec<u64> {
        let entries = store.effects_after(after, limit).unwrap();
        entries.into_iter().map(|e| e.seq).collect()
    };
    assert_eq!(
        seqs(0, 10),
        vec![1, 2, 4],
        "waiting or due, but not completed"
    );
    assert_eq!(seqs(1, 1), vec![2]);
    assert_eq!(seqs(2, 10), vec![4]);
    assert_eq!(seqs(4, 10), Vec::<u64>::new());
}

#[test]
fn results_written_together_each_succeed_or_fail_alone() {
    let store = SledStore::temporary().unwrap();
    store
        .commit(effects(vec![card(1), card(2), card(3)]))
        .unwrap();
    store.complete_effect(2, Commit::default()).unwrap();
    let flushes = store.flushes();
    let results = store.finish_effects(vec![
        Finished::Done {
            seq: 1,
            then: effects(vec![card(9)]),
        },
        Finished::Done {
            seq: 2,
            then: effects(vec![card(8)]),
        },
        Finished::Retry {
            seq: 3,
            at: at(60),
            error: "down".into(),
        },
    ]);
    let conflicts: Vec<bool> = results
        .iter()
        .map(|r| matches!(r, Err(StoreError::Conflict)))
        .collect();
    assert_eq!(conflicts, [false, true, false], "{results:?}");
    assert!(results[0].is_ok() && results[2].is_ok());
    assert_eq!(store.flushes() - flushes, 1, "one flush for all three");
    let left: Vec<(u64, u32, Effect)> = store
        .outbox(10)
        .unwrap()
        .into_iter()
        .map(|e| (e.seq, e.attempts, e.effect))
        .collect();
    assert_eq!(
        left,
        [(3, 1, card(3)), (4, 0, card(9))],
        "the completed one left with its commit; the one already gone queued nothing"
    );
}
