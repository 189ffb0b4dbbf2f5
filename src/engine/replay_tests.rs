//! Every record the engine writes says what its audit events say (`domain::replay`): a
//! backup of a store used in every way verifies, and one edited record does not.

use chrono::TimeDelta;

use super::testing::{ask, engine_sharing, who};
use crate::domain::duration::Duration;
use crate::domain::grant::GrantState;
use crate::domain::ids::{GrantId, RequestId};
use crate::domain::request::{Changes, RequestState};
use crate::store::backup::BackupError;
use crate::store::{Commit, SledStore, Store, verify_backup};

/// A store through a busy day: every way a request ends and every way a grant goes.
fn busy_day() -> (std::sync::Arc<super::Engine>, std::sync::Arc<SledStore>) {
    let store = std::sync::Arc::new(SledStore::temporary().unwrap());
    let (engine, clock) = engine_sharing(store.clone());
    let provision = |id: GrantId| {
        let mut then = Commit::default();
        engine.provisioned(id, "given", &mut then).unwrap();
        engine.store().commit(then).unwrap();
    };
    let deprovision = |id: GrantId| {
        let mut then = Commit::default();
        engine.deprovisioned(id, "taken back", &mut then).unwrap();
        engine.store().commit(then).unwrap();
    };
    let granted = |id: RequestId| match engine.store().request(id).unwrap().unwrap().value.state {
        RequestState::Approved { grant, .. } => grant,
        other => panic!("{id} is {other:?}"),
    };

    // Four stages, the first approved with a shorter duration; provisioned, warned, extended.
    let mut privileged = ask("alice", "prod-db", "admin", "2h");
    privileged.fields = [("ticket".to_owned(), "INC-4211".to_owned())].into();
    let id = engine.submit(&who("alice"), privileged).unwrap().request.id;
    let shorter = Changes {
        duration: Some(Duration::from_hours(1)),
        ..Changes::default()
    };
    engine.approve(&who("bob"), id, &shorter).unwrap();
    for approver in ["carol", "sam", "sue"] {
        engine
            .approve(&who(approver), id, &Changes::default())
            .unwrap();
    }
    let admin = granted(id);
    provision(admin);

    // Auto-approved, warned, extended, ended early.
    let auto = engine
        .submit(&who("dan"), ask("dan", "grafana", "editor", "30m"))
        .unwrap()
        .grant
        .unwrap()
        .id;
    provision(auto);
    clock.advance(TimeDelta::minutes(20));
    engine.run_due(TimeDelta::minutes(15)).unwrap();
    assert!(
        engine
            .store()
            .grant(auto)
            .unwrap()
            .unwrap()
            .value
            .warned_at
            .is_some()
    );
    engine
        .extend(&who("dan"), auto, Duration::from_mins(30), "still on it")
        .unwrap();
    engine.end_early(&who("dan"), auto).unwrap();
    deprovision(auto);
    clock.advance(TimeDelta::minutes(35));
    engine.run_due(TimeDelta::minutes(15)).unwrap();
    assert!(
        engine
            .store()
            .grant(admin)
            .unwrap()
            .unwrap()
            .value
            .warned_at
            .is_some()
    );

    // Rejected; cancelled; left to expire; still pending.
    let rejected = engine
        .submit(&who("dan"), ask("dan", "prod-db", "read", "2h"))
        .unwrap()
        .request
        .id;
    engine
        .reject(&who("bob"), rejected, "not this week")
        .unwrap();
    let cancelled = engine
        .submit(&who("sam"), ask("sam", "grafana", "editor", "2h"))
        .unwrap()
        .request
        .id;
    engine.cancel(&who("sam"), cancelled).unwrap();
    engine
        .submit(&who("finn"), ask("finn", "grafana", "viewer", "2h"))
        .unwrap();
    clock.advance(TimeDelta::days(3));
    engine.run_due(TimeDelta::minutes(15)).unwrap();
    engine
        .submit(&who("fay"), ask("fay", "grafana", "viewer", "2h"))
        .unwrap();

    // Emergency access flagged and taken back; a grant whose revocation keeps failing; one
    // that could not be given; an offboarding.
    let mut emergency = ask("alice", "prod-db", "admin", "1h");
    emergency.fields = [("ticket".to_owned(), "INC-4212".to_owned())].into();
    emergency.emergency = true;
    let flagged = engine
        .submit(&who("alice"), emergency)
        .unwrap()
        .grant
        .unwrap()
        .id;
    provision(flagged);
    engine
        .review_emergency(&who("sam"), flagged, false, "no incident open")
        .unwrap();
    deprovision(flagged);
    let stuck = engine
        .submit(&who("dan"), ask("dan", "grafana", "viewer", "30m"))
        .unwrap()
        .grant
        .unwrap()
        .id;
    provision(stuck);
    engine.revoke(&who("sue"), stuck, "audit finding").unwrap();
    engine
        .revocation_failing(stuck, "connection refused", 10)
        .unwrap();
    let refused = engine
        .submit(&who("erin"), ask("erin", "grafana", "viewer", "30m"))
        .unwrap()
        .grant
        .unwrap()
        .id;
    let mut then = Commit::default();
    engine
        .provisioning_failed(refused, "no such user", &mut then)
        .unwrap();
    engine.store().commit(then).unwrap();
    // What the failed provisioning may have left is taken back; then the grant is failed.
    deprovision(refused);
    let leaver = engine
        .submit(&who("sid"), ask("sid", "grafana", "viewer", "30m"))
        .unwrap()
        .grant
        .unwrap()
        .id;
    provision(leaver);
    engine.offboard(&who("sue"), &"sid".into()).unwrap();
    let active = engine
        .submit(&who("carol"), ask("carol", "grafana", "editor", "30m"))
        .unwrap()
        .grant
        .unwrap()
        .id;
    provision(active);
    (engine, store)
}

#[test]
fn every_record_of_a_busy_store_agrees_with_its_audit_events() {
    let (_engine, store) = busy_day();
    let grants = store.grants(false, 100).unwrap();
    let states: Vec<&str> = grants.iter().map(|g| g.state.name()).collect();
    for state in ["active", "revoking", "revoked", "failed"] {
        assert!(states.contains(&state), "no {state} grant: {states:?}");
    }
    let summary = verify_backup(&store.backup().unwrap(), None).unwrap();
    assert_eq!(summary.grants, grants.len());
    assert_eq!(summary.requests, store.requests(false, 100).unwrap().len());
}

#[test]
fn a_grant_whose_end_was_moved_in_a_backup_is_named_with_the_field() {
    let (_engine, store) = busy_day();
    let mut backup = store.backup().unwrap();
    let live = store.grants(true, 1).unwrap().remove(0);
    let entry = backup
        .entries
        .iter_mut()
        .find(|e| e.tree == "grants" && e.key == live.id.0.to_be_bytes())
        .unwrap();
    let text = String::from_utf8(entry.value.clone()).unwrap();
    let end = serde_json::to_string(&live.expires_at.unwrap()).unwrap();
    entry.value = text.replace(&end, "\"2099-01-01T00:00:00Z\"").into_bytes();
    let err = verify_backup(&backup, None).unwrap_err();
    assert!(matches!(err, BackupError::Disagrees(_)), "{err}");
    let said = err.to_string();
    assert!(
        said.contains(&format!("{}'s expires_at is 2099-01-01T00:00:00Z", live.id)),
        "{said}"
    );
}

#[test]
fn a_request_whose_reason_or_requester_was_changed_in_a_backup_is_refused() {
    let (_engine, store) = busy_day();
    let rejected = store
        .requests(false, 100)
        .unwrap()
        .into_iter()
        .find(|r| matches!(r.state, RequestState::Rejected { .. }))
        .unwrap();
    for (from, to, field) in [
        ("not this week", "approved verbally", "state"),
        ("fixing replica lag", "routine check", "reason"),
        (
            "\"requester\":\"dan\"",
            "\"requester\":\"alice\"",
            "requester",
        ),
    ] {
        let mut backup = store.backup().unwrap();
        let entry = backup
            .entries
            .iter_mut()
            .find(|e| e.tree == "requests" && e.key == rejected.id.0.to_be_bytes())
            .unwrap();
        let text = String::from_utf8(entry.value.clone()).unwrap();
        assert!(text.contains(from), "{text}");
        entry.value = text.replace(from, to).into_bytes();
        let said = verify_backup(&backup, None).unwrap_err().to_string();
        assert!(
            said.contains(&format!("{}'s {field} is", rejected.id)),
            "{said}"
        );
    }
}

#[test]
fn a_grant_that_no_event_made_or_a_revoked_one_made_live_again_is_refused() {
    let (_engine, store) = busy_day();
    let revoked = store
        .grants(false, 100)
        .unwrap()
        .into_iter()
        .find(|g| matches!(g.state, GrantState::Revoked { .. }))
        .unwrap();
    let mut backup = store.backup().unwrap();
    let entry = backup
        .entries
        .iter_mut()
        .find(|e| e.tree == "grants" && e.key == revoked.id.0.to_be_bytes())
        .unwrap();
    let mut stored: serde_json::Value = serde_json::from_slice(&entry.value).unwrap();
    stored["r"]["state"] = serde_json::json!({"state": "active", "since": "2026-11-26T09:00:00Z"});
    entry.value = serde_json::to_vec(&stored).unwrap();
    let said = verify_backup(&backup, None).unwrap_err().to_string();
    assert!(
        said.contains(&format!("{}'s state is active", revoked.id)),
        "{said}"
    );

    let mut backup = store.backup().unwrap();
    let mut forged = backup
        .entries
        .iter()
        .find(|e| e.tree == "grants" && e.key == revoked.id.0.to_be_bytes())
        .unwrap()
        .clone();
    forged.key = 999u64.to_be_bytes().to_vec();
    let mut value: serde_json::Value = serde_json::from_slice(&forged.value).unwrap();
    value["r"]["id"] = serde_json::json!("G-999");
    forged.value = serde_json::to_vec(&value).unwrap();
    backup.entries.push(forged);
    let said = verify_backup(&backup, None).unwrap_err().to_string();
    assert!(said.contains("G-999 has no grant_created event"), "{said}");
}
