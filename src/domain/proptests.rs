//! Property tests of routing and the state machine over the example policy: whatever
//! people ask for and whoever clicks what, in any order, the rules hold.

use chrono::{TimeDelta, TimeZone, Utc};
use proptest::prelude::*;

use super::audit::Actor;
use super::duration::Duration;
use super::grant::Grant;
use super::ids::{GrantId, PersonId, RequestId};
use super::policy::tests::{example_directory, example_policy};
use super::request::{AccessRequest, Changes, RequestKind, RequestState};
use super::routing::first_unreachable;
use super::validation::{Ask, Holdings, validate};

#[derive(Clone, Debug)]
enum Action {
    Approve(usize),
    ApproveShorter(usize),
    Reject(usize),
    Cancel(usize),
    Expire,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        6 => (0..12usize).prop_map(Action::Approve),
        1 => (0..12usize).prop_map(Action::ApproveShorter),
        1 => (0..12usize).prop_map(Action::Reject),
        1 => (0..12usize).prop_map(Action::Cancel),
        1 => Just(Action::Expire),
    ]
}

/// Every (resource, role) of the example policy, and the people of its directory.
fn universe() -> (Vec<(String, String)>, Vec<PersonId>) {
    let policy = example_policy();
    let pairs = policy
        .resources
        .iter()
        .flat_map(|r| {
            r.roles
                .iter()
                .map(move |role| (r.id.to_string(), role.id.to_string()))
        })
        .collect();
    let people = example_directory().people().map(|p| p.id.clone()).collect();
    (pairs, people)
}

/// The `pair`-th (resource, role) of the policy, asked by the `requester`-th person for
/// `hours`, with a ticket that satisfies every template of the example.
fn nth_ask(pair: usize, requester: usize, hours: u64) -> Ask {
    let (pairs, people) = universe();
    let (resource, role) = &pairs[pair % pairs.len()];
    Ask {
        requester: people[requester % people.len()].clone(),
        resource: resource.clone(),
        role: role.clone(),
        duration: Some(Duration::from_hours(hours)),
        justification: "work".into(),
        fields: [("ticket".to_owned(), "CHG-1".to_owned())].into(),
        ..Ask::default()
    }
}

fn new_request(ask: &Ask, v: super::validation::Validated) -> AccessRequest {
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn the_rules_hold_whatever_anyone_clicks(
        pair in 0..20usize,
        requester in 0..12usize,
        hours in 1..10u64,
        actions in proptest::collection::vec(action(), 0..24),
    ) {
        let (_, people) = universe();
        let policy = example_policy();
        let directory = example_directory();
        let ask = nth_ask(pair, requester, hours);
        let no_grants: Vec<Grant> = Vec::new();
        let holdings = Holdings { pending: &[], grants: &no_grants };
        let Ok(validated) = validate(&ask, &policy, &directory, &holdings) else { return Ok(()) };
        let res = policy.resource(&validated.resource).unwrap().clone();
        let mut request = new_request(&ask, validated);
        let distinct = policy.defaults.distinct_approvers;
        let mut now = request.submitted_at;

        for a in actions {
            now += TimeDelta::minutes(5);
            let before = request.clone();
            let result = match a {
                Action::Approve(p) => request.approve(&Actor::System, &people[p % people.len()], &Changes::default(), &res, distinct, now).map(|_| ()),
                Action::ApproveShorter(p) => {
                    let changes = Changes { duration: Some(Duration::from_mins(30)), ..Changes::default() };
                    request.approve(&Actor::System, &people[p % people.len()], &changes, &res, distinct, now).map(|_| ())
                }
                Action::Reject(p) => request.reject(&Actor::System, &people[p % people.len()], "no", distinct, now).map(|_| ()),
                Action::Cancel(p) => request.cancel(&Actor::System, &people[p % people.len()], false, now).map(|_| ()),
                Action::Expire => request.expire(now),
            };
            // A refused action changes nothing; a terminal state is never left.
            if result.is_err() {
                prop_assert_eq!(&request, &before);
            }
            if before.state.is_terminal() {
                prop_assert!(result.is_err());
                prop_assert_eq!(&request.state, &before.state);
            }
            // The requester never counts, and nobody counts in two stages.
            let approvals: Vec<&PersonId> = request.plan.stages.iter().flat_map(|s| s.approvals.iter().map(|a| &a.by)).collect();
            prop_assert!(!approvals.contains(&&request.requester));
            let mut unique = approvals.clone();
            unique.sort();
            unique.dedup();
            prop_assert_eq!(unique.len(), approvals.len());
            for stage in &request.plan.stages {
                prop_assert!(!stage.approvers.contains(&request.requester));
            }
            // A pending request can always still be completed.
            if request.is_pending() {
                prop_assert_eq!(first_unreachable(&request.plan, request.current_stage, distinct), None);
            }
            // Once every stage is approved, the engine marks it approved (here, by hand).
            if request.is_pending() && request.plan.stages.iter().all(|s| s.is_complete()) {
                request.mark_approved(GrantId(1), now).unwrap();
            }
        }
    }

    #[test]
    fn every_route_is_completable_without_the_requester(pair in 0..20usize, requester in 0..12usize, hours in 1..10u64) {
        let policy = example_policy();
        let directory = example_directory();
        let ask = nth_ask(pair, requester, hours);
        let holdings = Holdings { pending: &[], grants: &[] };
        if let Ok(v) = validate(&ask, &policy, &directory, &holdings) {
            prop_assert_eq!(first_unreachable(&v.plan, 0, true), None);
            for stage in &v.plan.stages {
                prop_assert!(!stage.approvers.contains(&ask.requester));
                prop_assert!(stage.quorum >= 1);
            }
        }
    }
}
