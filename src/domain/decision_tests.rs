//! What people type into a request or a decision, checked in the domain over the example
//! policy: reasons that say nothing or too much, and changes that would leave no access.

use chrono::{TimeDelta, TimeZone, Utc};

use super::audit::{Actor, AuditAction};
use super::duration::Duration;
use super::effect::{Alert, Effect, Notice};
use super::grant::Grant;
use super::ids::{GrantId, PersonId, RequestId};
use super::policy::tests::{example_directory, example_policy};
use super::reason::ReasonError;
use super::request::{
    AccessRequest, ApprovalOutcome, Changes, Progress, RequestKind, RequestState,
};
use super::routing::PlannedStage;
use super::validation::{Ask, Holdings, Refusal, Refusals, Validated, validate};

fn alice_asks(justification: &str) -> Ask {
    Ask {
        requester: "alice".into(),
        resource: "prod-db".into(),
        role: "read".into(),
        duration: Some(Duration::from_hours(2)),
        justification: justification.to_owned(),
        ..Ask::default()
    }
}

fn checked(ask: &Ask) -> Result<Validated, Refusals> {
    let grants: Vec<Grant> = Vec::new();
    let holdings = Holdings {
        pending: &[],
        grants: &grants,
    };
    validate(ask, &example_policy(), &example_directory(), &holdings)
}

fn pending(ask: &Ask) -> AccessRequest {
    let v = checked(ask).unwrap();
    let now = Utc.with_ymd_and_hms(2026, 11, 26, 9, 0, 0).unwrap();
    AccessRequest {
        id: RequestId(1),
        requester: ask.requester.clone(),
        resource: v.resource,
        role: v.role,
        duration: v.duration,
        justification: ask.justification.clone(),
        fields: ask.fields.clone(),
        kind: RequestKind::Access,
        submitted_at: now,
        submitted_by: None,
        plan: v.plan,
        current_stage: 0,
        stage_started_at: now,
        expires_at: now + TimeDelta::hours(24),
        last_reminded_at: None,
        changes: Vec::new(),
        state: RequestState::Pending,
    }
}

#[test]
fn a_justification_of_zero_width_characters_is_refused_with_a_sentence() {
    let refused = checked(&alice_asks("\u{200B}\u{200D}\u{FEFF} \u{2060}")).unwrap_err();
    assert_eq!(refused.0, vec![Refusal::BadReason(ReasonError::Invisible)]);
    assert!(
        refused
            .to_string()
            .starts_with("the reason is made only of invisible characters"),
        "{refused}"
    );
}

#[test]
fn a_megabyte_of_justification_is_refused_saying_the_limit() {
    let refused = checked(&alice_asks(&"a".repeat(1 << 20))).unwrap_err();
    assert_eq!(
        refused.to_string(),
        "the reason is 1048576 characters long; keep it to 2000 or fewer and link to a ticket \
         for the details"
    );
    assert!(checked(&alice_asks(&"a".repeat(2_000))).is_ok());
}

#[test]
fn approving_with_changes_to_no_time_at_all_says_what_is_allowed() {
    let mut request = pending(&alice_asks("fixing replica lag"));
    let resource = example_policy()
        .resource(&request.resource)
        .unwrap()
        .clone();
    let bob = PersonId::from("bob");
    let now = request.submitted_at;
    for nothing in [Duration::ZERO, Duration::from_secs(59)] {
        let changes = Changes {
            duration: Some(nothing),
            ..Changes::default()
        };
        let err = request
            .approve(&Actor::person(&bob), &bob, &changes, &resource, true, now)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "approve with changes needs a duration of at least 1m (2h was asked); to give no \
             access at all, reject the request instead"
        );
    }
    let one_minute = Changes {
        duration: Some(Duration::from_mins(1)),
        ..Changes::default()
    };
    request
        .approve(
            &Actor::person(&bob),
            &bob,
            &one_minute,
            &resource,
            true,
            now,
        )
        .unwrap();
    assert_eq!(request.duration, Some(Duration::from_mins(1)));
}

/// Every stage of `request` approved in turn by `approvers`; the last approval's outcome.
fn approved_by(request: &mut AccessRequest, approvers: &[&str]) -> ApprovalOutcome {
    let policy = example_policy();
    let resource = policy.resource(&request.resource).unwrap().clone();
    let now = request.submitted_at + TimeDelta::minutes(5);
    let mut last = None;
    for approver in approvers {
        let by = PersonId::from(*approver);
        let outcome = request
            .approve(
                &Actor::person(&by),
                &by,
                &Changes::default(),
                &resource,
                true,
                now,
            )
            .unwrap();
        last = Some(outcome);
    }
    last.unwrap()
}

fn prod_admin(kind: RequestKind) -> AccessRequest {
    let mut ask = alice_asks("INC-4211 rotate the replica");
    ask.role = "admin".into();
    ask.fields = [("ticket".to_owned(), "INC-4211".to_owned())].into();
    let mut request = pending(&ask);
    request.kind = kind;
    request
}

#[test]
fn the_last_approval_of_privileged_access_alerts_security_on_the_grant_it_makes() {
    let mut request = prod_admin(RequestKind::Access);
    let outcome = approved_by(&mut request, &["bob", "carol", "sam", "sue"]);
    assert_eq!(outcome.progress, Progress::Approved);
    assert!(matches!(
        outcome.events.last().map(|e| &e.action),
        Some(AuditAction::RequestApproved)
    ));
    assert_eq!(
        outcome.granted(GrantId(7)),
        [Effect::Alert {
            alert: Alert::PrivilegedGranted { grant: GrantId(7) }
        }]
    );
}

#[test]
fn more_time_on_privileged_access_does_not_alert_again() {
    let mut request = prod_admin(RequestKind::Extension { grant: GrantId(7) });
    let outcome = approved_by(&mut request, &["bob", "carol", "sam", "sue"]);
    assert_eq!(outcome.progress, Progress::Approved);
    assert_eq!(outcome.granted(GrantId(7)), []);
}

#[test]
fn an_approval_that_leaves_a_later_stage_short_escalates_it_and_records_why() {
    // carol may approve either stage, and is the only approver of the second: once she
    // approves the first, the second needs someone else, and escalates to erin.
    let mut request = pending(&alice_asks("INC-1 debugging"));
    let stage = |name: &str, approvers: &[&str], escalate_to: &[&str]| PlannedStage {
        name: name.to_owned(),
        approvers: approvers.iter().map(|p| PersonId::from(*p)).collect(),
        quorum: 1,
        escalate_to: escalate_to.iter().map(|p| PersonId::from(*p)).collect(),
        escalated: false,
        approvals: Vec::new(),
    };
    request.plan.stages = vec![
        stage("first", &["bob", "carol"], &[]),
        stage("second", &["carol"], &["erin"]),
    ];
    let outcome = approved_by(&mut request, &["carol"]);
    let escalated: Vec<_> = outcome
        .events
        .iter()
        .filter_map(|e| match &e.action {
            AuditAction::StageEscalated { stage, added } => {
                Some((stage.clone(), added.clone(), e.reason.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        escalated,
        [(
            "second".to_owned(),
            vec![PersonId::from("erin")],
            Some("an approval left this stage without enough other approvers".to_owned())
        )]
    );
    assert!(outcome.effects.contains(&Effect::ApprovalCard {
        request: request.id,
        approver: "erin".into(),
        stage: 1,
    }));
    assert!(outcome.effects.contains(&Effect::RefreshCards {
        request: request.id
    }));
}

#[test]
fn a_rejection_is_audited_with_its_reason_and_the_requester_is_told_who_and_why() {
    let mut request = pending(&alice_asks("INC-1 debugging"));
    let bob = PersonId::from("bob");
    let now = request.submitted_at + TimeDelta::minutes(5);
    let decision = request
        .reject(&Actor::person(&bob), &bob, "not this week", true, now)
        .unwrap();
    assert!(matches!(decision.events.as_slice(), [event]
        if event.action == AuditAction::RequestRejected
            && event.reason.as_deref() == Some("not this week")));
    assert_eq!(
        decision.effects,
        [
            Effect::RefreshCards {
                request: request.id
            },
            Effect::Notify {
                to: "alice".into(),
                notice: Notice::Rejected {
                    request: request.id,
                    by: bob,
                    reason: "not this week".to_owned(),
                },
            },
        ]
    );
}

#[test]
fn a_cancellation_by_someone_else_than_the_requester_changes_nothing() {
    let mut request = pending(&alice_asks("INC-1 debugging"));
    let before = request.clone();
    let bob = PersonId::from("bob");
    let now = request.submitted_at + TimeDelta::minutes(5);
    assert!(
        request
            .cancel(&Actor::person(&bob), &bob, false, now)
            .is_err()
    );
    assert_eq!(request, before);
    let alice = PersonId::from("alice");
    let decision = request
        .cancel(&Actor::person(&alice), &alice, false, now)
        .unwrap();
    assert!(matches!(decision.events.as_slice(), [event]
        if event.action == AuditAction::RequestCancelled));
    assert!(decision.effects.contains(&Effect::Notify {
        to: alice,
        notice: Notice::Cancelled {
            request: request.id
        },
    }));
}
