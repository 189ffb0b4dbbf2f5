//! What deciding tells people: the requester hears of a change at once, a second click says
//! where the request stands, and a request nobody can approve is explained to the requester
//! in their terms while the log tells admins what to fix.

use std::io::Write;
use std::sync::{Arc, Mutex};

use super::testing::{ask, engine_on, who};
use crate::domain::duration::Duration;
use crate::domain::effect::{Effect, Notice};
use crate::domain::ids::RequestId;
use crate::domain::request::{Change, Changes};
use crate::engine::{Engine, EngineError};
use crate::store::SledStore;

fn engine() -> Arc<Engine> {
    engine_on(SledStore::temporary().unwrap()).0
}

fn submit(engine: &Engine, person: &str, resource: &str, role: &str) -> RequestId {
    let asked = ask(person, resource, role, "2h");
    engine.submit(&who(person), asked).unwrap().request.id
}

fn shorter(hours: u64, reason: &str) -> Changes {
    Changes {
        duration: Some(Duration::from_hours(hours)),
        reason: Some(reason.to_owned()),
        ..Changes::default()
    }
}

/// The notices queued for `person`, in order.
fn notices_to(engine: &Engine, person: &str) -> Vec<Notice> {
    let outbox = engine.store().outbox(10_000).unwrap();
    outbox
        .into_iter()
        .filter_map(|e| match e.effect {
            Effect::Notify { to, notice } if to.as_str() == person => Some(notice),
            _ => None,
        })
        .collect()
}

#[test]
fn a_change_an_approver_makes_is_told_to_the_requester_at_once() {
    let engine = engine();
    let id = submit(&engine, "alice", "staging-db", "write");
    engine
        .approve(&who("bob"), id, &shorter(1, " an hour is enough "))
        .unwrap();
    let changed: Vec<Change> = notices_to(&engine, "alice")
        .into_iter()
        .filter_map(|n| match n {
            Notice::Changed { request, change } if request == id => Some(change),
            _ => None,
        })
        .collect();
    assert_eq!(changed.len(), 1, "{changed:?}");
    let change = &changed[0];
    assert_eq!(change.by.as_str(), "bob");
    assert_eq!(
        change.duration,
        Some((Some(Duration::from_hours(2)), Duration::from_hours(1)))
    );
    assert_eq!(change.reason.as_deref(), Some("an hour is enough"));
}

#[test]
fn a_change_made_by_the_last_approval_is_told_once_in_the_outcome() {
    let engine = engine();
    let id = submit(&engine, "alice", "staging-db", "write");
    engine
        .approve(&who("bob"), id, &Changes::default())
        .unwrap();
    engine
        .approve(&who("carol"), id, &shorter(1, "enough"))
        .unwrap();
    let told = notices_to(&engine, "alice");
    assert!(
        !told.iter().any(|n| matches!(n, Notice::Changed { .. })),
        "{told:?}"
    );
    let approved = told
        .iter()
        .filter(|n| matches!(n, Notice::Approved { .. }))
        .count();
    assert_eq!(approved, 1, "{told:?}");
    let stored = engine.store().request(id).unwrap().unwrap().value;
    assert_eq!(stored.changes.len(), 1, "the outcome lists it");
}

#[test]
fn a_second_click_once_the_request_moved_on_says_where_it_is_now() {
    let engine = engine();
    let id = submit(&engine, "alice", "staging-db", "read");
    engine
        .approve(&who("bob"), id, &Changes::default())
        .unwrap();
    let again = engine
        .approve(&who("bob"), id, &Changes::default())
        .unwrap_err();
    assert_eq!(
        again.to_string(),
        format!("you already approved {id}; it is now with Owner approval")
    );
    engine
        .approve(&who("carol"), id, &Changes::default())
        .unwrap();
    let last = engine
        .approve(&who("carol"), id, &Changes::default())
        .unwrap_err();
    assert_eq!(
        last.to_string(),
        format!("you already approved {id}; it is approved")
    );
}

/// Everything logged while `work` runs, as text.
fn logged<T>(work: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let result = tracing::subscriber::with_default(subscriber, work);
    let text = String::from_utf8_lossy(&buffer.0.lock().unwrap()).into_owned();
    (result, text)
}

#[test]
fn a_request_nobody_can_approve_is_explained_to_the_requester_and_logged_for_admins() {
    let engine = engine();
    // Erin has no manager, and no second-level one to escalate to.
    let (refused, log) = logged(|| {
        engine
            .submit(&who("erin"), ask("erin", "grafana", "editor", "2h"))
            .unwrap_err()
    });
    let EngineError::Refused(refusals) = &refused else {
        panic!("{refused}");
    };
    let told = refusals.to_string();
    assert_eq!(
        told,
        "not enough people can approve the \"Manager approval\" step of this request (it needs 1, and you cannot approve your own), so nothing was sent; ask your IAM team to add approvers (Gatehouse's log tells them what is missing)"
    );
    assert!(!told.contains("escalate_to"), "{told}");
    assert!(
        log.contains("requester=erin")
            && log.contains("nobody can complete the stage \"Manager approval\"")
            && log.contains("escalate_to"),
        "{log}"
    );
}
