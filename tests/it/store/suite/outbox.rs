//! The outbox: effects queued with their commit, once per idempotency key, completed
//! together with what they caused, and retried later when they fail.

use gatehouse::domain::effect::Effect;
use gatehouse::domain::ids::{GrantId, PersonId, RequestId};

use gatehouse::store::Finished;

use super::*;

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

fn keys(store: &dyn Store) -> Vec<String> {
    store
        .outbox(10)
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect()
}

fn seqs(entries: Vec<gatehouse::store::OutboxEntry>) -> Vec<u64> {
    entries.iter().map(|e| e.seq).collect()
}

pub fn duplicate_effect_keys_are_not_queued_twice(backend: &impl Backend) {
    let store = backend.open();
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
    assert_eq!(
        keys(&*store),
        vec!["card:AR-1:0:cy", "card:AR-2:0:cy", "provision:G-1"]
    );
    assert_eq!(seqs(store.outbox(10).unwrap()), vec![1, 2, 3]);
}

pub fn the_newest_effect_is_the_highest_seq_still_queued(backend: &impl Backend) {
    let store = backend.open();
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

pub fn effects_without_a_natural_key_are_all_queued(backend: &impl Backend) {
    let store = backend.open();
    let refresh = Effect::RefreshCards {
        request: RequestId(1),
    };
    store
        .commit(effects(vec![refresh.clone(), refresh.clone()]))
        .unwrap();
    store.commit(effects(vec![refresh])).unwrap();
    assert_eq!(keys(&*store), vec!["effect:1", "effect:2", "effect:3"]);
}

pub fn new_effects_are_due_from_the_time_of_the_change(backend: &impl Backend) {
    let store = backend.open();
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
    assert_eq!(store.next_effect_due().unwrap(), Some(at(1)));
}

pub fn effects_queued_before_a_restart_are_handed_out_after_it(backend: &impl Backend) {
    {
        let store = backend.open();
        store.commit(effects(vec![card(1), card(2)])).unwrap();
    }
    let store = backend.open();
    assert_eq!(store.due_effects(at(5), 10).unwrap().len(), 2);
}

pub fn complete_effect_removes_the_entry_and_applies_then(backend: &impl Backend) {
    let store = backend.open();
    store.commit(effects(vec![card(1), card(2)])).unwrap();
    let then = Commit {
        grants: vec![(grant(1, "ann", Some(100)), Expect::New)],
        events: vec![event(2)],
        ..Commit::default()
    };
    store.complete_effect(1, then).unwrap();
    assert_eq!(seqs(store.outbox(10).unwrap()), vec![2]);
    assert_eq!(store.grant(GrantId(1)).unwrap().unwrap().version, 1);
    assert_eq!(store.verify_audit().unwrap(), 2);

    // Its key is free again: the same card can be asked for anew (a later stage, a repost).
    store.commit(effects(vec![card(1)])).unwrap();
    assert_eq!(store.outbox(10).unwrap().len(), 2);
}

pub fn completing_an_effect_twice_conflicts_and_applies_nothing(backend: &impl Backend) {
    let store = backend.open();
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

pub fn a_failing_then_keeps_the_effect_queued(backend: &impl Backend) {
    let store = backend.open();
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

pub fn a_failed_effect_waits_until_its_next_attempt(backend: &impl Backend) {
    let store = backend.open();
    store.commit(effects(vec![card(1), card(2)])).unwrap();
    store.retry_effect(1, at(60), "slack said 503").unwrap();
    store
        .retry_effect(1, at(120), "slack said 503 again")
        .unwrap();
    assert_eq!(seqs(store.due_effects(at(100), 10).unwrap()), vec![2]);
    let due = store.due_effects(at(120), 10).unwrap();
    assert_eq!(seqs(due.clone()), vec![1, 2], "oldest first");
    assert_eq!(due[0].attempts, 2);
    assert_eq!(due[0].last_error.as_deref(), Some("slack said 503 again"));
    assert_eq!(store.due_effects(at(120), 1).unwrap().len(), 1);
    assert_eq!(
        seqs(
            store
                .due_effects_except(at(120), 10, &|seq| seq == 1)
                .unwrap()
        ),
        vec![2],
        "those under way are passed over"
    );
    assert_eq!(store.next_effect_due_after(at(1)).unwrap(), Some(at(120)));

    store.retry_effect(9, at(0), "gone").unwrap();
}

pub fn the_effects_waiting_are_those_whose_next_attempt_is_later(backend: &impl Backend) {
    let store = backend.open();
    store
        .commit(effects(vec![card(1), card(2), card(3)]))
        .unwrap();
    store.retry_effect(3, at(60), "slack said 503").unwrap();
    store.retry_effect(1, at(120), "slack said 503").unwrap();
    let waiting = |now| seqs(store.effects_waiting(at(now)).unwrap());
    assert_eq!(waiting(30), vec![1, 3], "oldest first");
    assert_eq!(waiting(60), vec![1], "due at 60 is not waiting at 60");
    assert_eq!(waiting(120), Vec::<u64>::new());
}

pub fn entries_are_read_after_a_seq_in_order_due_or_not_until_they_leave(backend: &impl Backend) {
    let store = backend.open();
    store
        .commit(effects(vec![card(1), card(2), card(3), card(4)]))
        .unwrap();
    store.retry_effect(2, at(3600), "down").unwrap();
    store.complete_effect(3, Commit::default()).unwrap();
    let after = |after, limit| seqs(store.effects_after(after, limit).unwrap());
    assert_eq!(
        after(0, 10),
        vec![1, 2, 4],
        "waiting or due, but not completed"
    );
    assert_eq!(after(1, 1), vec![2]);
    assert_eq!(after(2, 10), vec![4]);
    assert_eq!(after(4, 10), Vec::<u64>::new());
    let read = store.effects_after(1, 1).unwrap();
    assert_eq!(
        (
            read[0].attempts,
            read[0].next_attempt_at,
            read[0].effect.clone()
        ),
        (1, at(3600), card(2)),
        "read as stored"
    );
}

pub fn results_written_together_each_succeed_or_fail_alone(backend: &impl Backend) {
    let store = backend.open();
    store
        .commit(effects(vec![card(1), card(2), card(3)]))
        .unwrap();
    store.complete_effect(2, Commit::default()).unwrap();
    let flushes = store.write_stats().flushes;
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
    assert_eq!(
        store.write_stats().flushes - flushes,
        1,
        "one flush for all three"
    );
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
    assert_eq!(
        store.verify_audit().unwrap(),
        2,
        "the refused completion's event is not in the chain"
    );
}
