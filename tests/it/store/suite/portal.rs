//! What the web portal keeps and reads: sessions, kept until ended and never in a backup,
//! and grants a page at a time, each page going on below the last one shown.

use gatehouse::domain::grant::{Grant, GrantState, RevokeReason};
use gatehouse::domain::ids::PersonId;
use gatehouse::domain::session::Session;
use gatehouse::store::{GrantList, Mark, RequestList, Window, end_mark};

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

/// Reads a whole list a window at a time, `limit` rows each, going on from the last row
/// read: the ids of each window.
fn windows_of<T>(
    read: impl Fn(Window) -> Vec<T>,
    mark: impl Fn(&T) -> Mark,
    ascending: bool,
    limit: usize,
) -> Vec<Vec<u64>> {
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let rows = read(Window {
            after,
            ascending,
            limit,
        });
        if rows.is_empty() {
            return pages;
        }
        after = rows.last().map(&mark);
        pages.push(rows.iter().map(|r| mark(r).id).collect());
    }
}

pub fn a_persons_requests_and_grants_are_read_a_window_at_a_time_either_way(
    backend: &impl Backend,
) {
    let store = backend.open();
    for id in 1..=7 {
        let person = if id == 4 { "bob" } else { "alice" };
        store.commit(submit(request(id, person), 100)).unwrap();
    }
    let grants = (1..=5)
        .map(|id| {
            (
                grant(id, if id == 2 { "bob" } else { "alice" }, None),
                Expect::New,
            )
        })
        .collect();
    store
        .commit(Commit {
            grants,
            ..Commit::default()
        })
        .unwrap();
    let alices = RequestList::Of(PersonId::new("alice"));
    let requests = |window| store.requests_window(&alices, window).unwrap();
    let by_id = |r: &gatehouse::domain::request::AccessRequest| Mark {
        at_ms: 0,
        id: r.id.0,
    };
    assert_eq!(
        windows_of(requests, by_id, false, 4),
        [vec![7, 6, 5, 3], vec![2, 1]]
    );
    assert_eq!(
        windows_of(requests, by_id, true, 4),
        [vec![1, 2, 3, 5], vec![6, 7]]
    );
    let from_five = Window {
        after: Some(Mark { at_ms: 0, id: 5 }),
        ascending: false,
        limit: 10,
    };
    assert_eq!(
        ids(store.requests_window(&alices, from_five).unwrap()),
        [3, 2, 1]
    );
    let alices = GrantList::Of(PersonId::new("alice"));
    let grants = |window| store.grants_window(&alices, window).unwrap();
    let by_id = |g: &Grant| Mark {
        at_ms: 0,
        id: g.id.0,
    };
    assert_eq!(
        windows_of(grants, by_id, false, 2),
        [vec![5, 4], vec![3, 1]]
    );
    let nobodys = RequestList::Of(PersonId::new("al"));
    let nothing = store.requests_window(&nobodys, from_five).unwrap();
    assert!(
        nothing.is_empty(),
        "a person id that starts another's finds nothing"
    );
}

pub fn the_requests_waiting_for_an_approver_are_read_a_window_at_a_time(backend: &impl Backend) {
    let store = backend.open();
    for id in 1..=9 {
        let first: &[&str] = if id % 3 == 0 { &["dan"] } else { &["bob"] };
        store
            .commit(submit(staged(id, "ann", first, &["carol"]), 100))
            .unwrap();
    }
    let bobs = RequestList::AwaitingApprover(PersonId::new("bob"));
    let read = |window| store.requests_window(&bobs, window).unwrap();
    let by_id = |r: &gatehouse::domain::request::AccessRequest| Mark {
        at_ms: 0,
        id: r.id.0,
    };
    assert_eq!(
        windows_of(read, by_id, false, 4),
        [vec![8, 7, 5, 4], vec![2, 1]]
    );
    assert_eq!(
        windows_of(read, by_id, true, 5),
        [vec![1, 2, 4, 5, 7], vec![8]]
    );
}

pub fn live_grants_are_read_a_window_at_a_time_by_id_or_by_their_end(backend: &impl Backend) {
    let store = backend.open();
    // Ends: G-1 at 500, G-2 at 100, G-3 ended, G-4 at 300, G-5 at 100, G-6 standing.
    let ends = [Some(500), Some(100), Some(50), Some(300), Some(100), None];
    let mut grants: Vec<(Grant, Expect)> = ends
        .iter()
        .enumerate()
        .map(|(i, end)| (grant(i as u64 + 1, "alice", *end), Expect::New))
        .collect();
    grants[2].0.state = GrantState::Revoked {
        reason: RevokeReason::EndedEarly,
        at: at(10),
    };
    store
        .commit(Commit {
            grants,
            ..Commit::default()
        })
        .unwrap();
    let live = |window| store.grants_window(&GrantList::Live, window).unwrap();
    let by_id = |g: &Grant| Mark {
        at_ms: 0,
        id: g.id.0,
    };
    assert_eq!(
        windows_of(live, by_id, false, 2),
        [vec![6, 5], vec![4, 2], vec![1]]
    );
    assert_eq!(
        windows_of(live, by_id, true, 3),
        [vec![1, 2, 4], vec![5, 6]]
    );
    let by_end = |window| store.grants_window(&GrantList::LiveByEnd, window).unwrap();
    assert_eq!(
        windows_of(by_end, end_mark, true, 2),
        [vec![2, 5], vec![4, 1]],
        "soonest first, ties by id; the ended and the standing grant are not in it"
    );
    assert_eq!(
        windows_of(by_end, end_mark, false, 3),
        [vec![1, 4, 5], vec![2]]
    );
}
