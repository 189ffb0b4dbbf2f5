//! The use cases end to end on a real (temporary) sled store, with a fake clock.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::TimeDelta;

use super::testing::{ask, engine_on, who as person};
use super::*;
use crate::domain::duration::Duration;
use crate::domain::effect::Effect;
use crate::domain::grant::GrantState;
use crate::domain::ids::{GrantId, RequestId};
use crate::domain::request::{Changes, DecisionError, RequestState};
use crate::domain::validation::{Ask, Refusal};
use crate::store::{Commit, SledStore};

fn harness() -> Harness {
    let (engine, clock) = engine_on(SledStore::temporary().unwrap());
    Harness { engine, clock }
}

struct Harness {
    engine: Arc<Engine>,
    clock: Arc<FakeClock>,
}

fn prod_admin(who: &str) -> Ask {
    let mut a = ask(who, "prod-db", "admin", "2h");
    a.fields = BTreeMap::from([("ticket".to_owned(), "INC-4211".to_owned())]);
    a
}

impl Harness {
    fn approve(
        &self,
        who: &str,
        id: RequestId,
    ) -> Result<crate::engine::decide::Decided, EngineError> {
        self.engine.approve(&person(who), id, &Changes::default())
    }

    fn effects(&self) -> Vec<Effect> {
        self.engine
            .store()
            .outbox(10_000)
            .unwrap()
            .into_iter()
            .map(|e| e.effect)
            .collect()
    }

    fn grant(&self, id: GrantId) -> crate::domain::grant::Grant {
        self.engine.store().grant(id).unwrap().unwrap().value
    }

    /// What the outbox worker does when the connector says yes.
    fn provision(&self, id: GrantId) {
        let mut then = Commit::default();
        self.engine.provisioned(id, "test", &mut then).unwrap();
        self.engine.store().commit(then).unwrap();
    }
}

#[test]
fn a_privileged_request_passes_manager_owner_and_a_security_quorum_of_two() {
    let h = harness();
    let submitted = h
        .engine
        .submit(&person("alice"), prod_admin("alice"))
        .unwrap();
    let id = submitted.request.id;
    assert_eq!(
        submitted.request.stage_summary(),
        "Manager approval — 0 of 1 approval"
    );
    assert!(h.effects().contains(&Effect::ApprovalCard {
        request: id,
        approver: "bob".into(),
        stage: 0
    }));

    h.approve("bob", id).unwrap();
    h.approve("carol", id).unwrap();
    let counted = h.approve("sam", id).unwrap();
    assert_eq!(
        counted.request.stage_summary(),
        "Security review — 1 of 2 approvals"
    );
    let done = h.approve("sue", id).unwrap();
    let RequestState::Approved { grant, .. } = done.request.state else {
        panic!("{:?}", done.request.state)
    };

    let g = h.grant(grant);
    assert_eq!(g.state, GrantState::Provisioning);
    assert_eq!(g.expires_at, Some(h.engine.now() + TimeDelta::hours(2)));
    assert!(h.effects().contains(&Effect::Provision { grant }));
    h.provision(grant);
    assert!(matches!(h.grant(grant).state, GrantState::Active { .. }));
    assert!(h.engine.store().verify_audit().unwrap() >= 8);
}

#[test]
fn the_requester_cannot_approve_their_own_request() {
    let h = harness();
    // carol owns prod-db and asks for it: she must not count as its owner.
    let id = h
        .engine
        .submit(&person("carol"), prod_admin("carol"))
        .unwrap()
        .request
        .id;
    let before = h.engine.store().request(id).unwrap().unwrap();
    h.approve("erin", id).unwrap();
    let err = h.approve("carol", id).unwrap_err();
    assert!(
        matches!(err, EngineError::Decision(DecisionError::OwnRequest { .. })),
        "{err}"
    );
    let stage = &h
        .engine
        .store()
        .request(id)
        .unwrap()
        .unwrap()
        .value
        .plan
        .stages[1];
    assert!(!stage.approvers.contains(&"carol".into()));
    assert_ne!(before.version, 0);
}

#[test]
fn someone_who_is_not_an_approver_changes_nothing() {
    let h = harness();
    let id = h
        .engine
        .submit(&person("alice"), prod_admin("alice"))
        .unwrap()
        .request
        .id;
    let before = h.engine.store().request(id).unwrap().unwrap();
    let audit_before = h.engine.store().verify_audit().unwrap();
    let err = h.approve("dan", id).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "you are not an approver of the current stage of {id} (\"Manager approval\"), so nothing was changed"
        )
    );
    assert_eq!(h.engine.store().request(id).unwrap().unwrap(), before);
    assert_eq!(h.engine.store().verify_audit().unwrap(), audit_before);
}

#[test]
fn a_second_click_on_approve_changes_nothing() {
    let h = harness();
    let id = h
        .engine
        .submit(&person("alice"), prod_admin("alice"))
        .unwrap()
        .request
        .id;
    h.approve("bob", id).unwrap();
    h.approve("carol", id).unwrap();
    h.approve("sam", id).unwrap();
    let again = h.approve("sam", id).unwrap_err();
    assert!(
        matches!(
            again,
            EngineError::Decision(DecisionError::AlreadyApproved { .. })
        ),
        "{again}"
    );
    let stored = h.engine.store().request(id).unwrap().unwrap().value;
    assert_eq!(stored.plan.stages[2].approvals.len(), 1);
}

#[test]
fn concurrent_approvals_produce_exactly_one_decision() {
    for _ in 0..5 {
        let h = harness();
        let id = h
            .engine
            .submit(&person("alice"), prod_admin("alice"))
            .unwrap()
            .request
            .id;
        h.approve("bob", id).unwrap();
        h.approve("carol", id).unwrap();
        // Every security member clicks at once, each twice.
        let threads: Vec<_> = ["sam", "sue", "sid", "sam", "sue", "sid"]
            .into_iter()
            .map(|who| {
                let engine = h.engine.clone();
                std::thread::spawn(move || {
                    engine
                        .approve(&person(who), id, &Changes::default())
                        .is_ok()
                })
            })
            .collect();
        let successes = threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|ok| *ok)
            .count();
        assert_eq!(successes, 2, "a quorum of two takes exactly two approvals");
        let request = h.engine.store().request(id).unwrap().unwrap().value;
        assert!(matches!(request.state, RequestState::Approved { .. }));
        let provisions = h
            .effects()
            .iter()
            .filter(|e| matches!(e, Effect::Provision { .. }))
            .count();
        assert_eq!(provisions, 1);
        assert_eq!(h.engine.store().grants(false, 100).unwrap().len(), 1);
    }
}

#[test]
fn approve_with_changes_shortens_the_grant_for_the_remaining_stages() {
    let h = harness();
    let id = h
        .engine
        .submit(&person("alice"), prod_admin("alice"))
        .unwrap()
        .request
        .id;
    let shorter = Changes {
        duration: Some(Duration::from_hours(1)),
        ..Changes::default()
    };
    h.engine.approve(&person("bob"), id, &shorter).unwrap();
    let longer = Changes {
        duration: Some(Duration::from_hours(3)),
        ..Changes::default()
    };
    let err = h.engine.approve(&person("carol"), id, &longer).unwrap_err();
    assert!(err.to_string().contains("can only shorten"), "{err}");
    let lesser = Changes {
        role: Some("read".into()),
        ..Changes::default()
    };
    h.engine.approve(&person("carol"), id, &lesser).unwrap();
    h.approve("sam", id).unwrap();
    let done = h.approve("sid", id).unwrap();
    let RequestState::Approved { grant, .. } = done.request.state else {
        panic!()
    };
    let g = h.grant(grant);
    assert_eq!(
        (g.role.as_str(), g.expires_at),
        ("read", Some(h.engine.now() + TimeDelta::hours(1)))
    );
}

#[test]
fn low_risk_short_access_is_granted_at_once() {
    let h = harness();
    let submitted = h
        .engine
        .submit(&person("dan"), ask("dan", "grafana", "editor", "30m"))
        .unwrap();
    assert!(matches!(
        submitted.request.state,
        RequestState::Approved { .. }
    ));
    assert!(submitted.request.plan.auto_approved);
    assert_eq!(submitted.grant.unwrap().state, GrantState::Provisioning);
}

#[test]
fn emergency_access_is_granted_alerted_and_revoked_when_flagged() {
    let h = harness();
    let mut a = prod_admin("alice");
    a.emergency = true;
    a.duration = None;
    let submitted = h.engine.submit(&person("alice"), a).unwrap();
    let grant = submitted.grant.unwrap();
    assert_eq!(
        grant.expires_at,
        Some(h.engine.now() + TimeDelta::hours(1)),
        "emergency max_duration"
    );
    assert!(grant.review_pending());
    assert!(h.effects().iter().any(|e| matches!(
        e,
        Effect::Alert {
            alert: crate::domain::effect::Alert::EmergencyGranted { .. }
        }
    )));
    h.provision(grant.id);
    let err = h
        .engine
        .review_emergency(&person("dan"), grant.id, false, "why")
        .unwrap_err();
    assert!(err.to_string().contains("not a reviewer"), "{err}");
    let flagged = h
        .engine
        .review_emergency(&person("sam"), grant.id, false, "no incident open")
        .unwrap();
    assert!(matches!(flagged.state, GrantState::Revoking { .. }));
}

#[test]
fn emergency_access_needs_emergency_eligibility() {
    let h = harness();
    let mut a = prod_admin("carol");
    a.emergency = true;
    let err = h.engine.submit(&person("carol"), a).unwrap_err();
    assert!(
        err.to_string()
            .contains("not eligible for emergency access"),
        "{err}"
    );
}

#[test]
fn a_segregation_of_duties_conflict_is_refused_audited_and_alerted() {
    let h = harness();
    let id = h
        .engine
        .submit(&person("finn"), ask("finn", "payments", "submitter", "8h"))
        .unwrap()
        .request
        .id;
    // fay is finn's manager and the only owner: with distinct approvers the owner stage escalates to erin.
    h.approve("fay", id).unwrap();
    h.approve("erin", id).unwrap();
    let err = h
        .engine
        .submit(&person("finn"), ask("finn", "payments", "approver", "8h"))
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("segregation of duties rule `payments-maker-checker`"),
        "{text}"
    );
    assert!(text.contains("payments/submitter"), "{text}");
    let alerts = h
        .effects()
        .into_iter()
        .filter(|e| matches!(e, Effect::Alert { .. }))
        .count();
    assert_eq!(alerts, 1);
    let last = h.engine.store().audit(1, 100).unwrap().pop().unwrap();
    assert_eq!(
        last.event.policy.as_deref(),
        Some("sod:payments-maker-checker")
    );
}

#[test]
fn bad_requests_are_refused_with_every_reason_and_change_nothing() {
    let h = harness();
    let err = h
        .engine
        .submit(&person("alice"), ask("alice", "prod-bd", "read", "1h"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "there is no resource `prod-bd`; did you mean `prod-db`?"
    );
    let mut a = ask("alice", "prod-db", "admin", "3h");
    a.fields.insert("ticket".into(), "JIRA-1".into());
    a.justification = " ".into();
    let text = h
        .engine
        .submit(&person("alice"), a)
        .unwrap_err()
        .to_string();
    assert!(text.contains("say why you need it"), "{text}");
    assert!(
        text.contains("prod-db/admin allows at most 2h; ask for 2h or less"),
        "{text}"
    );
    assert!(
        text.contains("Incident ticket `JIRA-1` does not match the pattern ^(INC|CHG)-[0-9]+$"),
        "{text}"
    );
    let err = h
        .engine
        .submit(&person("mallory"), ask("mallory", "prod-db", "read", "1h"))
        .unwrap_err();
    assert!(err.to_string().contains("does not know `mallory`"), "{err}");
    assert_eq!(h.engine.store().requests(false, 10).unwrap().len(), 0);
    assert_eq!(h.engine.store().verify_audit().unwrap(), 0);
}

#[test]
fn a_duplicate_pending_request_is_refused_and_a_held_grant_points_to_extend() {
    let h = harness();
    let first = h
        .engine
        .submit(&person("alice"), ask("alice", "prod-db", "read", "1h"))
        .unwrap()
        .request
        .id;
    let err = h
        .engine
        .submit(&person("alice"), ask("alice", "prod-db", "read", "1h"))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("pending request {first}")),
        "{err}"
    );
    h.approve("bob", first).unwrap();
    let done = h.approve("carol", first).unwrap();
    let RequestState::Approved { grant, .. } = done.request.state else {
        panic!()
    };
    let err = h
        .engine
        .submit(&person("alice"), ask("alice", "prod-db", "read", "1h"))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("extend it instead with `extend {grant} 1h`")),
        "{err}"
    );
}

#[test]
fn an_extension_moves_the_end_of_the_grant_once_approved() {
    let h = harness();
    let first = h
        .engine
        .submit(&person("alice"), ask("alice", "prod-db", "read", "1h"))
        .unwrap()
        .request
        .id;
    h.approve("bob", first).unwrap();
    let RequestState::Approved { grant, .. } = h.approve("carol", first).unwrap().request.state
    else {
        panic!()
    };
    h.provision(grant);
    let ext = h
        .engine
        .extend(
            &person("alice"),
            grant,
            Duration::from_hours(2),
            "still fixing",
        )
        .unwrap()
        .request
        .id;
    h.approve("bob", ext).unwrap();
    h.approve("dora", ext).unwrap();
    assert_eq!(
        h.grant(grant).expires_at,
        Some(h.engine.now() + TimeDelta::hours(3))
    );
}

#[test]
fn only_the_requester_or_an_admin_can_cancel() {
    let h = harness();
    let id = h
        .engine
        .submit(&person("alice"), ask("alice", "prod-db", "read", "1h"))
        .unwrap()
        .request
        .id;
    let err = h.engine.cancel(&person("dan"), id).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("only the requester can cancel {id}")
    );
    h.engine.cancel(&person("alice"), id).unwrap();
    let err = h.approve("bob", id).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{id} is already cancelled; nothing was changed")
    );
}

#[test]
fn expired_grants_are_revoked_by_the_scheduler_pass() {
    let h = harness();
    let id = h
        .engine
        .submit(&person("dan"), ask("dan", "grafana", "editor", "30m"))
        .unwrap()
        .request
        .id;
    let grant = h.engine.store().request(id).unwrap().unwrap().value;
    let RequestState::Approved { grant, .. } = grant.state else {
        panic!()
    };
    h.provision(grant);
    assert_eq!(h.engine.revoke_expired_grants(100).unwrap(), 0);
    h.clock.advance(TimeDelta::minutes(31));
    assert_eq!(h.engine.revoke_expired_grants(100).unwrap(), 1);
    assert!(matches!(h.grant(grant).state, GrantState::Revoking { .. }));
    assert_eq!(
        h.engine.revoke_expired_grants(100).unwrap(),
        0,
        "nothing is revoked twice"
    );
}

#[test]
fn offboarding_takes_everything_and_needs_an_admin() {
    let h = harness();
    let pending = h
        .engine
        .submit(&person("alice"), ask("alice", "prod-db", "read", "1h"))
        .unwrap()
        .request
        .id;
    let granted = h
        .engine
        .submit(&person("alice"), ask("alice", "grafana", "editor", "30m"))
        .unwrap();
    let err = h
        .engine
        .offboard(&person("bob"), &"alice".into())
        .unwrap_err();
    assert_eq!(err.to_string(), "only an admin can offboard someone");
    let done = h.engine.offboard(&person("sue"), &"alice".into()).unwrap();
    assert_eq!(done.grants, vec![granted.grant.unwrap().id]);
    assert_eq!(done.requests, 1);
    let request = h.engine.store().request(pending).unwrap().unwrap().value;
    assert!(matches!(request.state, RequestState::Cancelled { .. }));
}

#[test]
fn only_owners_and_admins_revoke() {
    let h = harness();
    let granted = h
        .engine
        .submit(&person("dan"), ask("dan", "grafana", "editor", "30m"))
        .unwrap()
        .grant
        .unwrap();
    let err = h
        .engine
        .revoke(&person("alice"), granted.id, "no")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "only an admin or an owner of grafana can revoke {}",
            granted.id
        )
    );
    let revoked = h
        .engine
        .revoke(&person("bob"), granted.id, "not needed")
        .unwrap();
    assert!(matches!(revoked.state, GrantState::Revoking { .. }));
    let again = h
        .engine
        .revoke(&person("sue"), granted.id, "twice")
        .unwrap_err();
    assert!(
        again
            .to_string()
            .contains("is revoking, so it cannot be revoked"),
        "{again}"
    );
}

#[test]
fn a_refusal_names_what_to_fix() {
    let r = Refusal::TooLong {
        resource: "prod-db".into(),
        role: "admin".into(),
        max: Duration::from_hours(2),
    };
    assert_eq!(
        r.to_string(),
        "prod-db/admin allows at most 2h; ask for 2h or less"
    );
}

#[test]
fn only_the_holder_extends_and_only_a_live_grant() {
    let h = harness();
    let granted = h
        .engine
        .submit(&person("dan"), ask("dan", "grafana", "editor", "30m"))
        .unwrap()
        .grant
        .unwrap();
    let err = h
        .engine
        .extend(
            &person("alice"),
            granted.id,
            Duration::from_mins(30),
            "mine now",
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("{} is not yours", granted.id)),
        "{err}"
    );
    h.engine.end_early(&person("dan"), granted.id).unwrap();
    let err = h
        .engine
        .extend(&person("dan"), granted.id, Duration::from_mins(30), "more")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{} is revoking; ask for new access instead", granted.id)
    );
}

#[test]
fn an_impersonated_decision_alerts_the_security_channel_in_the_same_commit() {
    let h = harness();
    let operator = |who: &str, impersonated| Actor::Operator {
        token: "ops".into(),
        for_person: who.into(),
        impersonated,
    };
    let id = h
        .engine
        .submit(&operator("alice", false), prod_admin("alice"))
        .unwrap()
        .request
        .id;
    let impersonations = |effects: Vec<Effect>| -> Vec<crate::domain::effect::Alert> {
        effects
            .into_iter()
            .filter_map(|e| match e {
                Effect::Alert {
                    alert: alert @ crate::domain::effect::Alert::Impersonation { .. },
                } => Some(alert),
                _ => None,
            })
            .collect()
    };
    assert_eq!(impersonations(h.effects()), []);
    h.engine
        .approve(&operator("bob", true), id, &Changes::default())
        .unwrap();
    assert_eq!(
        impersonations(h.effects()),
        [crate::domain::effect::Alert::Impersonation {
            token: "ops".into(),
            person: "bob".into(),
            action: "stage_approved".into(),
            request: Some(id),
            grant: None,
        }]
    );
}

#[test]
fn an_alert_committed_without_an_audit_event_is_due_by_the_engines_clock() {
    // The example world's clock is weeks from the wall clock: an effect dated by the wall
    // clock would wait for it (or be due long before it was queued).
    let h = harness();
    h.engine
        .directory_out_of_policy(&["workflow `prod` names nobody".to_owned()])
        .unwrap();
    let queued = h.engine.store().outbox(10).unwrap();
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(queued[0].next_attempt_at, h.clock.now());
}
