//! Portal sessions: stored under their key, ended, listed, and out of backups.

use super::*;
use crate::domain::session::Session;

#[test]
fn a_session_is_kept_until_ended_and_is_not_part_of_a_backup() {
    let store = SledStore::temporary().unwrap();
    let session = Session::new("alice".into(), "csrf".into(), at(0));
    store.put_session("k1", &session, true).unwrap();
    assert_eq!(store.session("k1").unwrap(), Some(session.clone()));
    assert_eq!(store.sessions().unwrap(), vec![("k1".to_owned(), session)]);
    let (backup, _, _) = store.write_backup(Vec::new()).unwrap();
    assert!(
        !String::from_utf8_lossy(&backup).contains("csrf"),
        "no session in a backup"
    );
    assert!(store.end_session("k1").unwrap());
    assert!(!store.end_session("k1").unwrap(), "ended once");
    assert_eq!(store.session("k1").unwrap(), None);
}
