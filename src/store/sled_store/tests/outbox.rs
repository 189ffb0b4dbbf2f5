//! The outbox: effects queued with their commit, once per idempotency key, completed
//! together with what they caused, and retried later when they fail.

use super::*;
use crate::domain::effect::Effect;
use crate::store::OutboxEntry;
use crate::store::sled_store::keys::{EMPTY, id_key, millis, time_key};

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
fn keys_an_older_build_indexed_for_every_effect_are_pruned_as_the_store_opens() {
    let dir = tempfile::tempdir().unwrap();
    let refresh = Effect::RefreshCards {
        request: RequestId(1),
    };
    {
        let store = SledStore::open(dir.path()).unwrap();
        store
            .commit(effects(vec![refresh.clone(), card(1), refresh]))
            .unwrap();
        // What a build before c7a2019 left: every queued effect's key indexed, and the key
        // of an effect it completed meanwhile (seq 9, gone from the outbox) left behind.
        let keys = store.tree("outbox_keys");
        keys.insert("effect:1", &id_key(1)[..]).unwrap();
        keys.insert("effect:3", &id_key(3)[..]).unwrap();
        keys.insert("effect:9", &id_key(9)[..]).unwrap();
        keys.flush().unwrap();
    }
    let store = SledStore::open(dir.path()).unwrap();
    let indexed = |store: &SledStore| -> Vec<String> {
        let keys = store.tree("outbox_keys");
        keys.iter()
            .map(|kv| String::from_utf8(kv.unwrap().0.to_vec()).unwrap())
            .collect()
    };
    assert_eq!(
        indexed(&store),
        vec![card(1).idempotency_key(2)],
        "only the card deduplicates"
    );
    assert_eq!(store.outbox(10).unwrap().len(), 3, "no effect is lost");
    for seq in 1..=3 {
        store.complete_effect(seq, Commit::default()).unwrap();
    }
    assert!(indexed(&store).is_empty(), "the card's key goes with it");
    assert!(store.outbox(10).unwrap().is_empty());
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
fn effects_are_queued_without_a_due_index_and_a_schema_6_directory_has_its_index_emptied() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        store.commit(effects(vec![card(1), card(2)])).unwrap();
        store.retry_effect(1, at(500), "slack said 503").unwrap();
        assert!(
            store.tree("outbox_by_due").is_empty(),
            "neither a new effect nor a retry writes a due index"
        );
        // What a schema 6 directory holds: an index entry per queued effect.
        let index = store.tree("outbox_by_due");
        index.insert(time_key(millis(at(500)), 1), EMPTY).unwrap();
        index.insert(time_key(millis(at(1)), 2), EMPTY).unwrap();
        store
            .tree("meta")
            .insert("schema_version", &6u32.to_be_bytes()[..])
            .unwrap();
        store.tree("meta").flush().unwrap();
    }
    let store = SledStore::open(dir.path()).unwrap();
    assert!(store.tree("outbox_by_due").is_empty(), "emptied on open");
    let version = store.tree("meta").get("schema_version").unwrap().unwrap();
    assert_eq!(version.as_ref(), SCHEMA_VERSION.to_be_bytes());
    let seqs = |entries: Vec<OutboxEntry>| entries.iter().map(|e| e.seq).collect::<Vec<_>>();
    assert_eq!(seqs(store.due_effects(at(100), 10).unwrap()), [2]);
    assert_eq!(seqs(store.effects_waiting(at(100)).unwrap()), [1]);
    assert_eq!(store.next_effect_due().unwrap(), Some(at(1)));
    assert_eq!(store.next_effect_due_after(at(100)).unwrap(), Some(at(500)));
    assert_eq!(
        seqs(store.due_effects(at(500), 1).unwrap()),
        [2],
        "due longest first"
    );
}
