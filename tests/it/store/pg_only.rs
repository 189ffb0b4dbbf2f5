//! What only the PostgreSQL store has: its schema versions, tampering found in the
//! database itself, and the lease that fences the leader's work.

use std::sync::Arc;
use std::time::Duration;

use gatehouse::domain::diagnostic::Source;
use gatehouse::domain::directory::Directory;
use gatehouse::domain::effect::{Effect, Notice};
use gatehouse::domain::ids::PersonId;
use gatehouse::domain::policy::{PolicyContext, parse_policy};
use gatehouse::engine::{Engine, EngineError, FakeClock};
use gatehouse::store::{Commit, Expect, Finished, PgStore, Store, StoreError, leader_work};

use super::backends::Postgres;
use super::records::*;

fn seqs(entries: Vec<gatehouse::store::OutboxEntry>) -> Vec<u64> {
    entries.iter().map(|e| e.seq).collect()
}

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
    assert!(
        second.effects_after(0, 10).unwrap().is_empty(),
        "nor reads anything to start"
    );
    assert!(matches!(
        second.finish_effects(vec![Finished::Done {
            seq: 1,
            then: Commit::default(),
        }])[..],
        [Err(StoreError::Deposed)]
    ));
    assert_eq!(seqs(first.effects_after(0, 10).unwrap()), [1, 2]);
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
    let written = first.finish_effects(vec![
        Finished::Retry {
            seq: 2,
            at: at(60),
            error: "timed out".into(),
        },
        Finished::Done {
            seq: 2,
            then: Commit::default(),
        },
    ]);
    assert!(
        written
            .iter()
            .all(|w| matches!(w, Err(StoreError::Deposed))),
        "{written:?}"
    );
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

/// The engine on `store`, its clock at `now`.
fn engine_on(store: Arc<PgStore>, now: i64) -> Engine {
    use crate::postgres::{DIRECTORY, POLICY};
    let directory = Directory::parse(&Source::new("directory.toml", DIRECTORY)).unwrap();
    let context = PolicyContext {
        directory: &directory,
        connectors: None,
        now: at(now),
    };
    let (policy, _) = parse_policy(&Source::new("policy.toml", POLICY), &context)
        .unwrap_or_else(|e| panic!("{e}"));
    Engine::new(store, policy, directory, Arc::new(FakeClock::at(at(now))))
}

#[test]
#[ignore = "needs PostgreSQL; .ci/run installs it"]
fn a_deposed_leader_revokes_no_expired_grant_even_when_many_are_due_at_once() {
    let database = Postgres::new();
    let (first, second) = (Arc::new(database.pg()), database.pg());
    // More than one commit's worth: the scheduler spreads them over threads of its own.
    let grants = (1..=100)
        .map(|id| (grant(id, "ann", Some(10)), Expect::New))
        .collect();
    first
        .commit(Commit {
            grants,
            ..Commit::default()
        })
        .unwrap();
    let ttl = Duration::from_secs(30);
    first.hold_lease("first", ttl).unwrap().expect("free");
    database.sql("UPDATE leader SET expires_at = now() - interval '1 second'");
    second.hold_lease("second", ttl).unwrap().expect("expired");

    let engine = engine_on(first.clone(), 60);
    let revoked = leader_work(|| engine.revoke_expired_grants(1_000));
    assert!(
        matches!(revoked, Err(EngineError::Store(StoreError::Deposed))),
        "{revoked:?}"
    );
    assert_eq!(
        second.grants_expiring(at(60), 1_000).unwrap().len(),
        100,
        "every one is still live, for the new leader to revoke"
    );
    assert!(second.outbox(10).unwrap().is_empty());
}

#[test]
#[ignore = "needs PostgreSQL; .ci/run installs it"]
fn a_database_at_schema_1_gets_the_portal_sessions_table_on_open_and_keeps_everything() {
    use gatehouse::domain::session::Session;
    let database = Postgres::new();
    database.pg().commit(notice(1)).unwrap();
    // As a database written before the portal was: schema 1, no sessions table.
    database.sql("DROP TABLE web_sessions");
    database.sql("DELETE FROM gatehouse_schema WHERE version > 1");

    let store = database.pg();
    let session = Session::new("alice".into(), "csrf".into(), at(0));
    store.put_session("k1", &session, true).unwrap();
    assert_eq!(store.session("k1").unwrap(), Some(session));
    assert_eq!(store.verify_audit().unwrap(), 1, "what was there is kept");
    let version: i32 = database.sql("SELECT max(version) FROM gatehouse_schema")[0].get(0);
    assert_eq!(version as u32, gatehouse::store::PG_SCHEMA_VERSION);
}

#[test]
#[ignore = "needs PostgreSQL; .ci/run installs it"]
fn a_delivery_is_checked_by_key_however_small_the_table_was_when_it_was_first_checked() {
    let database = Postgres::new();
    let store = database.pg();
    // No statistics update comes to replan a statement while the test runs.
    database.sql("ALTER TABLE seen SET (autovacuum_enabled = false)");
    let ids = |n: u64| vec![format!("slack:trigger-{n}"), format!("slack:retry-{n}")];
    let deliver = |n: u64| {
        assert!(!store.any_delivered(&ids(n)).unwrap(), "{n} is new");
        let commit = Commit {
            events: vec![event(n)],
            deliveries: vec![(ids(n)[0].clone(), at(86_400))],
            ..Commit::default()
        };
        store.commit(commit).unwrap();
    };
    // Checked again and again while `seen` is nearly empty, then it grows.
    (1..=20).for_each(deliver);
    database.sql("INSERT INTO seen SELECT 'slack:old-' || g, 0 FROM generate_series(1, 20000) g");
    (21..=40).for_each(deliver);
    assert!(store.any_delivered(&ids(40)).unwrap());
    drop(store);

    // A server process hands its counts to pg_stat_user_tables as it exits.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !database
        .sql(
            "SELECT 1 FROM pg_stat_activity \
             WHERE application_name = 'gatehouse' AND datname = current_database()",
        )
        .is_empty()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the store's connections never closed"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    let scanned: i64 = database
        .sql("SELECT seq_tup_read FROM pg_stat_user_tables WHERE relname = 'seen'")[0]
        .get(0);
    assert!(
        scanned < 20_000,
        "the delivery checks read {scanned} rows of `seen` in whole-table scans, not by key"
    );
}
