//! Joiners, movers and leavers through a directory reload.

use std::sync::Arc;

use super::testing::{ask, engine_on, who};
use super::*;

fn engine() -> Arc<Engine> {
    engine_on(SledStore::temporary().unwrap()).0
}
use crate::domain::diagnostic::Source;
use crate::domain::directory::Directory;
use crate::domain::effect::{Alert, Effect};
use crate::domain::grant::GrantState;
use crate::domain::policy::tests::{EXAMPLE_DIRECTORY, EXAMPLE_POLICY, example_policy};
use crate::domain::policy::{Policy, PolicyContext, parse_policy};
use crate::domain::request::{Changes, RequestState};
use crate::store::SledStore;

fn directory_with(from: &str, to: &str) -> Directory {
    assert!(EXAMPLE_DIRECTORY.contains(from), "{from}");
    Directory::parse(&Source::new(
        "directory.toml",
        &EXAMPLE_DIRECTORY.replacen(from, to, 1),
    ))
    .unwrap()
}

/// dan holds staging-db/read, approved by bob and an owner.
fn dan_with_staging(engine: &Engine) -> crate::domain::ids::GrantId {
    let id = engine
        .submit(&who("dan"), ask("dan", "staging-db", "read", "4h"))
        .unwrap()
        .request
        .id;
    engine
        .approve(&who("bob"), id, &Changes::default())
        .unwrap();
    let done = engine
        .approve(&who("carol"), id, &Changes::default())
        .unwrap();
    let RequestState::Approved { grant, .. } = done.request.state else {
        panic!()
    };
    grant
}

const DAN_TO_FINANCE: (&str, &str) = (
    "department = \"engineering\"\ntitle = \"Backend Engineer\"",
    "department = \"finance\"\ntitle = \"Backend Engineer\"",
);

#[test]
fn a_leaver_loses_every_grant_and_pending_request_and_security_is_told() {
    let engine = engine();
    let grant = dan_with_staging(&engine);
    let pending = engine
        .submit(&who("dan"), ask("dan", "prod-db", "read", "1h"))
        .unwrap()
        .request
        .id;
    let report = engine
        .reload(
            example_policy(),
            directory_with(
                "title = \"Backend Engineer\"",
                "title = \"Backend Engineer\"\nactive = false",
            ),
        )
        .unwrap();
    assert_eq!(
        report.leavers,
        vec![crate::domain::ids::PersonId::from("dan")]
    );
    assert_eq!(report.revoked, vec![grant]);
    let grant = engine.store().grant(grant).unwrap().unwrap().value;
    assert!(matches!(grant.state, GrantState::Revoking { .. }));
    let request = engine.store().request(pending).unwrap().unwrap().value;
    assert!(matches!(request.state, RequestState::Cancelled { .. }));
    let told = engine.store().outbox(1000).unwrap().into_iter().any(|e| {
        matches!(
            e.effect,
            Effect::Alert {
                alert: Alert::PersonOffboarded { .. }
            }
        )
    });
    assert!(told);
}

#[test]
fn a_mover_loses_what_their_new_department_does_not_allow() {
    let engine = engine();
    let grant = dan_with_staging(&engine);
    let report = engine
        .reload(
            example_policy(),
            directory_with(DAN_TO_FINANCE.0, DAN_TO_FINANCE.1),
        )
        .unwrap();
    assert_eq!(report.movers.len(), 1);
    assert_eq!(report.revoked, vec![grant]);
    let state = engine.store().grant(grant).unwrap().unwrap().value.state;
    assert!(
        matches!(
            state,
            GrantState::Revoking {
                reason: crate::domain::grant::RevokeReason::NoLongerEligible,
                ..
            }
        ),
        "{state:?}"
    );
}

#[test]
fn with_on_mover_review_the_owners_decide() {
    let engine = engine();
    let grant = dan_with_staging(&engine);
    let text = EXAMPLE_POLICY.replacen(
        "distinct_approvers = true",
        "distinct_approvers = true\non_mover = \"review\"",
        1,
    );
    let directory = directory_with(DAN_TO_FINANCE.0, DAN_TO_FINANCE.1);
    let cx = PolicyContext {
        directory: &directory,
        connectors: None,
        now: engine.now(),
    };
    let (policy, _) = parse_policy(&Source::new("policy.toml", &text), &cx).unwrap();
    let report = engine.reload(policy, directory).unwrap();
    assert!(report.revoked.is_empty());
    let campaign = engine
        .store()
        .campaign(report.reviews[0])
        .unwrap()
        .unwrap()
        .value;
    assert_eq!(campaign.review, "mover:dan");
    let reviewers: Vec<&str> = campaign.items[0]
        .reviewers
        .iter()
        .map(|p| p.as_str())
        .collect();
    assert_eq!(reviewers, ["carol", "dora"]);
    assert!(
        engine
            .store()
            .grant(grant)
            .unwrap()
            .unwrap()
            .value
            .is_live(),
        "kept until the owners decide"
    );
}

#[test]
fn a_joiner_receives_the_matching_bundles_auto_approved_and_audited() {
    let engine = engine();
    assert_eq!(
        engine.apply_bundles().unwrap().len(),
        10,
        "the engineers there"
    );
    let joined = format!(
        "{EXAMPLE_DIRECTORY}\n[[people]]\nid = \"zoe\"\nmanager = \"bob\"\ndepartment = \"engineering\"\n"
    );
    let directory = Directory::parse(&Source::new("directory.toml", &joined)).unwrap();
    let report = engine.reload(example_policy(), directory).unwrap();
    assert_eq!(
        report.joiners,
        vec![crate::domain::ids::PersonId::from("zoe")]
    );
    assert_eq!(report.bundled.len(), 2);
    let grants = engine.store().grants_of(&"zoe".into()).unwrap();
    let mut held: Vec<(&str, &str)> = grants
        .iter()
        .map(|g| (g.resource.as_str(), g.role.as_str()))
        .collect();
    held.sort();
    assert_eq!(held, [("github", "member"), ("grafana", "viewer")]);
    assert!(
        grants.iter().all(|g| g.expires_at.is_none()),
        "birthright access is standing"
    );
    let audit = engine.store().audit(1, 100).unwrap();
    assert!(
        audit
            .iter()
            .any(|r| r.event.policy.as_deref() == Some("bundle:engineering-baseline"))
    );
    // Reloading the same directory again gives nothing twice.
    let again = Directory::parse(&Source::new("directory.toml", &joined)).unwrap();
    assert_eq!(
        engine.reload(example_policy(), again).unwrap(),
        ReloadReport::default()
    );
}

/// The (resource, role) of `person`'s live grants, sorted.
fn live_of(engine: &Engine, person: &str) -> Vec<(String, String)> {
    let mut held: Vec<(String, String)> = engine
        .store()
        .grants_of(&person.into())
        .unwrap()
        .into_iter()
        .filter(|g| g.is_live())
        .map(|g| (g.resource.to_string(), g.role.to_string()))
        .collect();
    held.sort();
    held
}

fn baseline() -> Vec<(String, String)> {
    vec![
        ("github".to_owned(), "member".to_owned()),
        ("grafana".to_owned(), "viewer".to_owned()),
    ]
}

#[test]
fn a_bundle_present_at_start_reaches_the_people_already_there_once() {
    let engine = engine();
    assert!(live_of(&engine, "dan").is_empty());
    let given = engine.apply_bundles().unwrap();
    assert_eq!(given.len(), 10, "five active engineers, two grants each");
    for engineer in ["alice", "bob", "carol", "dan", "dora"] {
        assert_eq!(live_of(&engine, engineer), baseline(), "{engineer}");
    }
    assert!(live_of(&engine, "gus").is_empty(), "gus is inactive");
    assert!(live_of(&engine, "fay").is_empty(), "finance has no bundle");
    assert!(
        engine.apply_bundles().unwrap().is_empty(),
        "a restart gives nothing twice"
    );
    assert_eq!(
        engine
            .reload(
                example_policy(),
                crate::domain::policy::tests::example_directory()
            )
            .unwrap()
            .bundled,
        Vec::new(),
        "nor does a reload"
    );
}

#[test]
fn a_bundle_grant_ended_early_is_not_given_again_at_the_next_start() {
    let engine = engine();
    engine.apply_bundles().unwrap();
    let github = engine
        .store()
        .grants_of(&"dan".into())
        .unwrap()
        .into_iter()
        .find(|g| g.resource.as_str() == "github")
        .unwrap();
    engine.end_early(&who("dan"), github.id).unwrap();
    assert!(engine.apply_bundles().unwrap().is_empty());
    assert_eq!(
        live_of(&engine, "dan"),
        [("grafana".to_owned(), "viewer".to_owned())]
    );
}

const FINANCE_BUNDLE: &str = r#"
[[bundles]]
id = "finance-baseline"
when = { departments = ["finance"] }
grants = [ { resource = "grafana", role = "viewer" } ]
"#;

fn policy_from(text: &str, directory: &Directory, engine: &Engine) -> Policy {
    let cx = PolicyContext {
        directory,
        connectors: None,
        now: engine.now(),
    };
    parse_policy(&Source::new("policy.toml", text), &cx)
        .unwrap_or_else(|e| panic!("{e}"))
        .0
}

#[test]
fn a_bundle_added_by_a_reload_reaches_the_people_already_there() {
    let engine = engine();
    engine.apply_bundles().unwrap();
    let directory = crate::domain::policy::tests::example_directory();
    let policy = policy_from(
        &format!(
            "{EXAMPLE_POLICY}
{FINANCE_BUNDLE}"
        ),
        &directory,
        &engine,
    );
    let report = engine.reload(policy, directory).unwrap();
    assert_eq!(report.bundled.len(), 2, "fay and finn: {report:?}");
    for person in ["fay", "finn"] {
        assert_eq!(
            live_of(&engine, person),
            [("grafana".to_owned(), "viewer".to_owned())],
            "{person}"
        );
    }
}

#[test]
fn a_mover_loses_the_bundle_they_no_longer_match() {
    let engine = engine();
    engine.apply_bundles().unwrap();
    let report = engine
        .reload(
            example_policy(),
            directory_with(DAN_TO_FINANCE.0, DAN_TO_FINANCE.1),
        )
        .unwrap();
    assert_eq!(report.revoked.len(), 2, "{report:?}");
    assert!(live_of(&engine, "dan").is_empty());
    for id in report.revoked {
        let state = engine.store().grant(id).unwrap().unwrap().value.state;
        assert!(
            matches!(
                &state,
                GrantState::Revoking {
                    reason: crate::domain::grant::RevokeReason::BundleNoLongerMatches { bundle },
                    ..
                } if bundle == "engineering-baseline"
            ),
            "{state:?}"
        );
    }
}

#[test]
fn a_mover_keeps_a_bundle_role_that_their_new_bundle_also_gives() {
    let engine = engine();
    engine.apply_bundles().unwrap();
    let directory = directory_with(DAN_TO_FINANCE.0, DAN_TO_FINANCE.1);
    let policy = policy_from(
        &format!(
            "{EXAMPLE_POLICY}
{FINANCE_BUNDLE}"
        ),
        &directory,
        &engine,
    );
    let report = engine.reload(policy, directory).unwrap();
    assert_eq!(report.revoked.len(), 1, "github goes: {report:?}");
    assert_eq!(
        live_of(&engine, "dan"),
        [("grafana".to_owned(), "viewer".to_owned())],
        "grafana/viewer stays: finance-baseline gives it too"
    );
}

#[test]
fn with_on_mover_review_a_lost_bundle_goes_to_its_owners() {
    let engine = engine();
    engine.apply_bundles().unwrap();
    let text = EXAMPLE_POLICY.replacen(
        "distinct_approvers = true",
        "distinct_approvers = true\non_mover = \"review\"",
        1,
    );
    let directory = directory_with(DAN_TO_FINANCE.0, DAN_TO_FINANCE.1);
    let policy = policy_from(&text, &directory, &engine);
    let report = engine.reload(policy, directory).unwrap();
    assert!(report.revoked.is_empty());
    let campaign = engine
        .store()
        .campaign(report.reviews[0])
        .unwrap()
        .unwrap()
        .value;
    assert_eq!(campaign.items.len(), 2, "{campaign:?}");
    assert_eq!(
        live_of(&engine, "dan"),
        baseline(),
        "kept until the owners decide"
    );
}
