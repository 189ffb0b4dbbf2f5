//! What only the PostgreSQL store has: its schema versions, tampering found in the
//! database itself, and the lease that fences the leader's work.

use std::time::Duration;

use gatehouse::domain::effect::{Effect, Notice};
use gatehouse::domain::ids::PersonId;
use gatehouse::store::{Commit, PgStore, Store, StoreError, leader_work};

use super::backends::Postgres;
use super::records::*;

fn notice(n: u64) -> Commit {
    Commit {
        events: vec![event(n)],
        effects: vec![Effect::Notify {
            to: PersonId::new("ann"),
            notice: Notice::Submitted {
                request: gatehouse::domain::ids::RequestId(n),
            },
        }],
        ..Commit::default()
    }
}

#[test]
#[ignore = "needs PostgreSQL; .ci/run installs it"]
fn a_database_with_a_newer_schema_is_refused_with_what_to_do() {
    let database = Postgres::new();
    drop(database.pg());
    database.sql("INSERT INTO gatehouse_schema (version) VALUES (99)");
    let Err(error) = PgStore::open(database.config()) else {
        panic!("a newer schema was opened");
    };
    assert!(
        matches!(error, StoreError::DatabaseTooNew { found: 99, .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("run the newer version"),
        "{error}"
    );
}

#[test]
#[ignore = "needs PostgreSQL; .ci/run installs it"]
fn an_audit_record_edited_in_the_database_is_found() {
    let database = Postgres::new();
    let store = database.pg();
    for n in 1..=4 {
        store.commit(notice(n)).unwrap();
    }
    assert_eq!(store.verify_audit().unwrap(), 4);
    database.sql("UPDATE audit SET record = replace(record, 'AR-2', 'AR-9') WHERE seq = 2");
    let error = store.verify_audit().unwrap_err();
    assert!(matches!(error, StoreError::Chain(_)), "{error:?}");
    database.sql("DELETE FROM audit WHERE seq = 4");
    assert!(
        store.verify_audit().is_err(),
        "a lost last record is found through the head"
    );
}

#[test]
#[ignore = "needs PostgreSQL; .ci/run installs it"]
fn only_the_lease_holder_completes_effects_and_a_deposed_one_is_fenced_off() {
    let database = Postgres::new();
    let (first, second) = (database.pg(), database.pg());
    first.commit(notice(1)).unwrap();
    first.commit(notice(2)).unwrap();
    let ttl = Duration::from_secs(30);
    let lease = first
        .hold_lease("first", ttl)
        .unwrap()
        .expect("the lease is free");
    assert_eq!(
        second.hold_lease("second", ttl).unwrap(),
        None,
        "held by first"
    );
    assert!(
        second.due_effects(at(10), 10).unwrap().is_empty(),
        "a standby starts nothing"
    );
    assert!(matches!(
        second.complete_effect(1, Commit::default()),
        Err(StoreError::Deposed)
    ));
    assert_eq!(first.due_effects(at(10), 10).unwrap().len(), 2);
    first.complete_effect(1, Commit::default()).unwrap();

    // The lease runs out without `first` knowing (paused, cut off); `second` takes over.
    database.sql("UPDATE leader SET expires_at = now() - interval '1 second'");
    let taken = second
        .hold_lease("second", ttl)
        .unwrap()
        .expect("expired, so free");
    assert!(taken.token > lease.token, "every takeover has a new token");
    // `first` still trusts its lease on its own clock, but the database refuses its work.
    assert!(matches!(
        first.complete_effect(2, Commit::default()),
        Err(StoreError::Deposed)
    ));
    assert!(matches!(
        first.retry_effect(2, at(60), "timed out"),
        Err(StoreError::Deposed)
    ));
    let scheduled = leader_work(|| first.commit(notice(3)));
    assert!(
        matches!(scheduled, Err(StoreError::Deposed)),
        "{scheduled:?}"
    );
    assert!(
        first.commit(notice(4)).is_ok(),
        "front-end commits need no lease"
    );
    second.complete_effect(2, Commit::default()).unwrap();
    assert_eq!(first.hold_lease("first", ttl).unwrap(), None);
    assert_eq!(second.verify_audit().unwrap(), 3);
}
