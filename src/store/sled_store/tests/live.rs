//! The `grants_live` index: the live grants, by id, kept with every write of a grant and
//! built once for a data directory of an older schema, so that the admin's Grants page
//! reads live grants without passing over the ones that ended.

use std::collections::BTreeSet;

use super::tally::shape;
use super::*;
use crate::store::{GrantList, Window};

/// The ids in `grants_live`, in order.
fn indexed(store: &SledStore) -> Vec<u64> {
    store
        .tree("grants_live")
        .iter()
        .map(|entry| u64::from_be_bytes(entry.unwrap().0.as_ref().try_into().unwrap()))
        .collect()
}

/// The ids of the stored grants that are live, in order.
fn live(store: &SledStore) -> Vec<u64> {
    let all = store.grants(false, usize::MAX).unwrap();
    let ids: BTreeSet<u64> = all.iter().filter(|g| g.is_live()).map(|g| g.id.0).collect();
    ids.into_iter().collect()
}

/// Nine grants written new, then each moved through three more states.
fn walked(store: &SledStore) {
    for id in 1..=9 {
        let new = shape(grant(id, "ann", Some(50)), id);
        store
            .commit(Commit {
                grants: vec![(new.clone(), Expect::New)],
                ..Commit::default()
            })
            .unwrap();
        for step in 1..=3 {
            let moved = shape(new.clone(), id + step);
            store
                .commit(Commit {
                    grants: vec![(moved, Expect::Version(step))],
                    ..Commit::default()
                })
                .unwrap();
        }
    }
}

#[test]
fn the_live_index_follows_every_grant_through_every_state() {
    let store = SledStore::temporary().unwrap();
    walked(&store);
    let expected = live(&store);
    assert!(!expected.is_empty() && expected.len() < 9, "{expected:?}");
    assert_eq!(indexed(&store), expected);
    let window = Window {
        after: None,
        ascending: true,
        limit: 100,
    };
    let listed: Vec<u64> = store
        .grants_window(&GrantList::Live, window)
        .unwrap()
        .iter()
        .map(|g| g.id.0)
        .collect();
    assert_eq!(listed, expected);
}

#[test]
fn an_older_directory_gets_its_live_index_built_once_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let expected = {
        let store = SledStore::open(dir.path()).unwrap();
        walked(&store);
        // What a schema 7 directory holds: the grants, and no index of the live ones.
        store.tree("grants_live").clear().unwrap();
        store
            .tree("meta")
            .insert("schema_version", &7u32.to_be_bytes()[..])
            .unwrap();
        store.tree("meta").flush().unwrap();
        assert!(indexed(&store).is_empty());
        live(&store)
    };
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(indexed(&store), expected);
    let version = store.tree("meta").get("schema_version").unwrap().unwrap();
    assert_eq!(version.as_ref(), SCHEMA_VERSION.to_be_bytes());
}
