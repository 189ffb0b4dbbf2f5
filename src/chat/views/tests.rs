use chrono::TimeDelta;

use super::samples::*;
use super::*;
use crate::domain::grant::GrantState;
use crate::domain::ids::GrantId;
use crate::domain::policy::tests::{example_directory, example_policy};
use crate::domain::request::{RequestKind, RequestState};

#[test]
fn a_request_view_says_who_what_how_long_why_and_where_it_stands() {
    let view = RequestView::new(&access_request(), &example_directory(), &example_policy());
    assert_eq!(view.id, "AR-12");
    assert_eq!(view.requester.name, "Alice Ng");
    assert_eq!(view.resource.name, "Production PostgreSQL");
    assert_eq!(
        (view.role.id.as_str(), view.privileged, view.risk.as_str()),
        ("admin", true, "critical")
    );
    assert_eq!(view.duration, "2h");
    assert_eq!(
        view.fields,
        [FieldView {
            label: "Incident ticket".into(),
            value: "INC-4211".into()
        }]
    );
    assert_eq!(view.stage, "Security review — 1 of 2 approvals");
    assert_eq!((view.stage_number, view.stage_count), (3, 3));
    assert_eq!(
        (view.state, view.decided, view.outcome),
        ("pending", false, None)
    );
    let approvers: Vec<&str> = view.approvers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(approvers, ["Bob Marsh", "Carol Diaz", "Sam Patel"]);
}

#[test]
fn a_decided_request_names_who_decided_and_what_they_changed() {
    let view = sample_decided_request();
    assert_eq!(
        view.outcome.as_deref(),
        Some("Approved by Bob Marsh, Carol Diaz, Sam Patel and Sue Chen")
    );
    assert_eq!(
        view.changes,
        ["Sue Chen shortened the duration from 2h to 1h: one hour is enough for the replica"]
    );
    let (directory, policy, now) = (directory(), policy(), clock());
    let outcome = |state: RequestState, kind: RequestKind, auto: bool| {
        let mut request = access_request();
        request.state = state;
        request.kind = kind;
        if auto {
            request.plan.stages.clear();
        }
        RequestView::new(&request, &directory, &policy)
            .outcome
            .unwrap_or_default()
    };
    let rejected = RequestState::Rejected {
        by: "bob".into(),
        reason: " no ticket ".into(),
        at: now,
    };
    assert_eq!(
        outcome(rejected, RequestKind::Access, false),
        "Rejected by Bob Marsh: no ticket"
    );
    let cancelled = RequestState::Cancelled {
        by: "alice".into(),
        at: now,
    };
    assert_eq!(
        outcome(cancelled, RequestKind::Access, false),
        "Cancelled by Alice Ng"
    );
    let expired = RequestState::Expired { at: now };
    assert_eq!(
        outcome(expired, RequestKind::Access, false),
        "Expired: nobody decided in time"
    );
    let approved = || RequestState::Approved {
        grant: GrantId(7),
        at: now,
    };
    assert_eq!(
        outcome(approved(), RequestKind::Access, true),
        "Approved automatically by policy"
    );
    assert!(outcome(approved(), RequestKind::Emergency, false).starts_with("Granted at once"));
}

#[test]
fn a_grant_view_counts_down_to_its_end_while_it_is_live() {
    let view = sample_grant();
    assert_eq!(
        (view.id.as_str(), view.state, view.live),
        ("G-7", "active", true)
    );
    assert_eq!(view.expires_in.as_deref(), Some("45m"));
    assert_eq!(
        view.expires_at.map(|t| t.text).as_deref(),
        Some("2027-01-01 11:15 UTC")
    );
    let later = GrantView::new(
        &grant(),
        &directory(),
        &policy(),
        clock() + TimeDelta::hours(1),
    );
    assert_eq!(later.expires_in, None);
    let mut revoked = grant();
    revoked.state = GrantState::Revoked {
        reason: crate::domain::grant::RevokeReason::EndedEarly,
        at: clock(),
    };
    let view = GrantView::new(&revoked, &directory(), &policy(), clock());
    assert_eq!(
        (view.live, view.ended.as_deref()),
        (false, Some("ended early by its holder"))
    );
}

#[test]
fn a_review_item_shows_its_outcome_once_decided() {
    let item = sample_campaign_item();
    assert_eq!(
        (item.campaign.as_str(), item.decided, item.outcome),
        ("RC-3", false, None)
    );
    assert_eq!(item.reviewers[0].name, "Carol Diaz");
}

#[test]
fn the_request_modal_shows_the_fields_of_the_chosen_role_only() {
    let modal = sample_request_modal();
    assert_eq!(modal.roles.len(), 2);
    assert_eq!(modal.role.as_ref().map(|r| r.value.as_str()), Some("admin"));
    assert_eq!(modal.fields.len(), 1);
    assert_eq!(modal.duration_hint, "Like 2h or 1h30m; at most 2h.");
    assert_eq!(
        modal.private_metadata,
        r#"{"resource":"prod-db","role":"admin"}"#
    );
    let blank = RequestModalView::new(&policy(), None, Some(&"admin".into()));
    assert!(blank.roles.is_empty() && blank.fields.is_empty() && blank.role.is_none());
}

#[test]
fn approving_with_changes_offers_only_lesser_roles() {
    let modal = sample_changes_modal();
    let roles: Vec<&str> = modal
        .lesser_roles
        .iter()
        .map(|r| r.value.as_str())
        .collect();
    assert_eq!(roles, ["read"]);
    assert_eq!(modal.duration_hint, "Less than 2h, like 1h or 30m.");
}

#[test]
fn names_join_the_way_people_write_them() {
    let names = |n: &[&str]| join_names(&n.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(names(&[]), "");
    assert_eq!(names(&["Bob"]), "Bob");
    assert_eq!(names(&["Bob", "Carol"]), "Bob and Carol");
    assert_eq!(names(&["Bob", "Carol", "Dora"]), "Bob, Carol and Dora");
}

#[test]
fn a_grant_card_is_decided_for_its_holder_once_the_access_ended_and_for_a_reviewer_once_reviewed() {
    use crate::domain::grant::RevokeReason;
    let (directory, policy) = (directory(), policy());
    let mut grant = grant();
    let (alice, sue) = ("alice".into(), "sue".into());
    let decided = |g: &crate::domain::grant::Grant, who: &crate::domain::ids::PersonId| {
        GrantCardView::decided(g, who, &directory, &policy, clock()).map(|c| c.outcome)
    };
    assert_eq!(
        decided(&grant, &alice),
        None,
        "Extend and End now still work"
    );
    assert_eq!(decided(&grant, &sue), None, "nothing to review");
    grant.state = GrantState::Revoked {
        reason: RevokeReason::EndedEarly,
        at: clock(),
    };
    let ended = decided(&grant, &alice).unwrap();
    assert!(ended.starts_with("Ended"), "{ended}");
}

#[test]
fn cards_carry_their_buttons_as_every_platform_names_them() {
    let request = sample_request();
    assert_eq!(
        (
            request.buttons.approve.action_id,
            request.buttons.approve.value.as_str(),
            request.buttons.approve.custom_id.as_str()
        ),
        ("gatehouse.approve", "AR-12", "gatehouse.approve|AR-12")
    );
    assert_eq!(request.buttons.cancel.custom_id, "gatehouse.cancel|AR-12");
    let grant = sample_grant();
    assert_eq!(grant.buttons.extend.custom_id, "gatehouse.extend|G-7");
    assert_eq!(grant.buttons.flag.custom_id, "gatehouse.flag|G-7");
    let item = sample_campaign_item();
    assert_eq!(item.buttons.revoke.custom_id, "gatehouse.revoke|RC-3:G-7");
}

#[test]
fn a_modal_names_for_discord_what_it_is_about() {
    assert_eq!(
        sample_request_modal().custom_id,
        "gatehouse.request|prod-db|admin"
    );
    assert_eq!(sample_blank_request_modal().custom_id, "gatehouse.request");
    assert_eq!(
        sample_resource_only_request_modal().custom_id,
        "gatehouse.request",
        "the resource is an input until a role is chosen too"
    );
    assert_eq!(sample_reject_modal().custom_id, "gatehouse.reject|AR-12");
    assert_eq!(sample_changes_modal().custom_id, "gatehouse.changes|AR-12");
    assert_eq!(sample_extend_modal().custom_id, "gatehouse.extend|G-7");
}

#[test]
fn a_request_names_who_it_waits_for_and_counts_a_long_list() {
    let (directory, policy) = (directory(), policy());
    let waiting = |approvers: &[&str], quorum: usize, approved: &[&str]| {
        let mut request = access_request();
        let stage = &mut request.plan.stages[2];
        stage.approvers = approvers.iter().map(|p| (*p).into()).collect();
        stage.quorum = quorum;
        stage
            .approvals
            .retain(|a| approved.contains(&a.by.as_str()));
        RequestView::new(&request, &directory, &policy).waiting_for
    };
    assert_eq!(waiting(&["sue"], 1, &[]), "Sue Chen");
    assert_eq!(waiting(&["sam", "sue"], 2, &[]), "Sam Patel and Sue Chen");
    assert_eq!(waiting(&["sam", "sue"], 2, &["sam"]), "Sue Chen");
    assert_eq!(
        waiting(&["sam", "sue", "tom"], 1, &[]),
        "one of Sam Patel, Sue Chen and tom"
    );
    let many = ["p1", "p2", "p3", "p4", "p5", "p6", "p7"];
    assert_eq!(
        waiting(&many, 1, &[]),
        "one of p1, p2, p3 and 4 others",
        "past a few, the rest are counted"
    );
    assert_eq!(waiting(&many, 2, &[]), "2 of p1, p2, p3 and 4 others");
    assert_eq!(
        waiting(&["bob", "sue"], 1, &[]),
        "Sue Chen",
        "bob approved an earlier stage, and counts in one stage only"
    );
    assert_eq!(sample_decided_request().waiting_for, "", "decided: nobody");
}
