//! What the web portal keeps and reads: sessions, kept until ended and never in a backup,
//! and grants a page at a time, each page going on below the last one shown.

use gatehouse::domain::grant::{Grant, GrantState, RevokeReason};
use gatehouse::domain::ids::GrantId;
use gatehouse::domain::session::Session;

use super::*;

pub fn a_session_is_kept_until_ended_and_is_not_part_of_a_backup(backend: &impl Backend) {
    let store = backend.open();
    let session = Session::new("alice".into(), "csrf".into(), at(0));
    store.put_session("k1", &session, true).unwrap();
    assert_eq!(store.session("k1").unwrap(), Some(session.clone()));
    let touched = Session {
        last_seen: at(90),
        ..session.clone()
    };
    store.put_session("k1", &touched, false).unwrap();
    store
        .put_session(
            "k2",
            &Session::new("bob".into(), "other".into(), at(5)),
            true,
        )
        .unwrap();
    assert_eq!(store.session("k1").unwrap(), Some(touched.clone()));
    let mut all = store.sessions().unwrap();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(all.len(), 2);
    assert_eq!(all[0], ("k1".to_owned(), touched));
    let (backup, _, _) = store.write_backup(Vec::new()).unwrap();
    assert!(
        !String::from_utf8_lossy(&backup).contains("csrf"),
        "no session in a backup"
    );
    assert!(store.end_session("k1").unwrap());
    assert!(!store.end_session("k1").unwrap(), "ended once");
    assert_eq!(store.session("k1").unwrap(), None);
    assert_eq!(store.sessions().unwrap().len(), 1);
}

pub fn sessions_outlive_a_reopen(backend: &impl Backend) {
    let session = Session::new("alice".into(), "csrf".into(), at(0));
    backend.open().put_session("k1", &session, true).unwrap();
    assert_eq!(backend.open().session("k1").unwrap(), Some(session));
}

pub fn a_page_of_grants_goes_on_below_the_last_one_shown(backend: &impl Backend) {
    let store = backend.open();
    let mut grants: Vec<(Grant, Expect)> = (1..=7)
        .map(|id| (grant(id, "alice", Some(3600)), Expect::New))
        .collect();
    grants[3].0.state = GrantState::Revoked {
        reason: RevokeReason::EndedEarly,
        at: at(10),
    };
    store
        .commit(Commit {
            grants,
            ..Commit::default()
        })
        .unwrap();
    let ids = |found: Vec<Grant>| found.iter().map(|g| g.id.0).collect::<Vec<_>>();
    assert_eq!(ids(store.grants_before(None, true, 3).unwrap()), [7, 6, 5]);
    assert_eq!(
        ids(store.grants_before(Some(GrantId(5)), true, 3).unwrap()),
        [3, 2, 1],
        "G-4 is not live"
    );
    assert_eq!(
        ids(store.grants_before(Some(GrantId(5)), false, 3).unwrap()),
        [4, 3, 2]
    );
    assert_eq!(
        ids(store.grants_before(None, false, 100).unwrap()),
        [7, 6, 5, 4, 3, 2, 1]
    );
    assert!(
        store
            .grants_before(Some(GrantId(1)), true, 3)
            .unwrap()
            .is_empty()
    );
}
