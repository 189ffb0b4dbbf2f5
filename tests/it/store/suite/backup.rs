//! Backups: taken from either backend in one format, restored into either.

use gatehouse::domain::audit::AuditAction;
use gatehouse::domain::ids::{GrantId, PersonId, RequestId};
use gatehouse::store::backup::read;
use gatehouse::store::{AnyStore, SledStore};

use super::*;

/// Fills `store` with a little of everything.
fn fill(store: &AnyStore) {
    store.next_id(Sequence::Request).unwrap();
    store.commit(submit(request(1, "ann"), 300)).unwrap();
    store.commit(submit(request(2, "bo"), 100)).unwrap();
    // A request waiting for approvers, whose audit event says how many stages it has (a
    // restore checks the records against their events).
    let mut waiting = submit(staged(4, "di", &["eve", "fay"], &["gus"]), 400);
    if let AuditAction::RequestSubmitted { stages, .. } = &mut waiting.events[0].action {
        *stages = 2;
    }
    store.commit(waiting).unwrap();
    assert!(store.first_delivery("slack:Ev1", at(900)).unwrap());
}

pub fn a_backup_restores_into_either_backend_and_holds_everything(backend: &impl Backend) {
    let store = backend.open();
    fill(&store);
    let (bytes, _, entries) = store.write_backup(Vec::new()).unwrap();
    assert!(entries > 10, "{entries} entries");
    let backup = read(&bytes[..]).unwrap();

    // Into sled…
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let summary = SledStore::restore(&data, &backup, false, None).unwrap();
    assert_eq!((summary.requests, summary.audit_events), (3, 3));
    let sled = AnyStore::Sled(SledStore::open(&data).unwrap());
    // …and into a PostgreSQL database when the backend is PostgreSQL.
    let restored: Vec<AnyStore> = match &store {
        AnyStore::Sled(_) => vec![sled],
        AnyStore::Postgres(_) => {
            let other = super::super::backends::Postgres::new();
            let pg = other.pg();
            pg.restore(&backup, None).unwrap();
            vec![sled, AnyStore::Postgres(pg)]
        }
    };
    for copy in restored {
        assert_eq!(copy.verify_audit().unwrap(), 3);
        assert_eq!(
            copy.requests_of(&PersonId::new("ann")).unwrap(),
            vec![request(1, "ann")]
        );
        assert_eq!(copy.request(RequestId(2)).unwrap().unwrap().version, 1);
        assert_eq!(
            copy.pending_due(at(1_000), 10).unwrap(),
            vec![
                (at(100), RequestId(2)),
                (at(300), RequestId(1)),
                (at(400), RequestId(4))
            ]
        );
        // The approver index comes along (or is rebuilt from the requests).
        assert_eq!(super::approvers::asked_of(&*copy, "eve"), [4]);
        assert_eq!(super::approvers::asked_of(&*copy, "fay"), [4]);
        assert!(super::approvers::asked_of(&*copy, "gus").is_empty());
        assert_eq!(copy.outbox(10).unwrap(), store.outbox(10).unwrap());
        assert!(
            !copy.first_delivery("slack:Ev1", at(900)).unwrap(),
            "seen kept"
        );
        assert_eq!(copy.next_id(Sequence::Request).unwrap(), 2, "ids go on");
        assert!(copy.grant(GrantId(1)).unwrap().is_none());
        // Commits go on where the chain stopped.
        copy.commit(submit(request(3, "cy"), 50)).unwrap();
        assert_eq!(copy.verify_audit().unwrap(), 4);
    }
}
