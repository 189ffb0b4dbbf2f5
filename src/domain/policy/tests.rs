//! Policy loading and `check`: the example set loads, and every kind of mistake is caught.

use chrono::TimeZone;

use super::*;
use crate::domain::diagnostic::Source;
use crate::domain::directory::Directory;

pub const EXAMPLE_DIRECTORY: &str = include_str!("../../../deploy/examples/directory.toml");
pub const EXAMPLE_POLICY: &str = include_str!("../../../deploy/examples/policy.toml");

pub fn example_directory() -> Directory {
    Directory::parse(&Source::new("directory.toml", EXAMPLE_DIRECTORY))
        .expect("example directory loads")
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 9, 0, 0).unwrap()
}

fn load(text: &str) -> Result<Checked, Diagnostics> {
    let directory = example_directory();
    let cx = PolicyContext {
        directory: &directory,
        connectors: None,
        now: now(),
    };
    parse_policy(&Source::new("policy.toml", text), &cx)
}

pub fn example_policy() -> Policy {
    load(EXAMPLE_POLICY).expect("example policy loads").0
}

/// The example policy with `replace` swapped for `with`, expected to fail; its errors.
fn errors_after(replace: &str, with: &str) -> String {
    assert!(
        EXAMPLE_POLICY.contains(replace),
        "the example policy has no `{replace}`"
    );
    let text = EXAMPLE_POLICY.replacen(replace, with, 1);
    match load(&text) {
        Ok(_) => panic!("policy with `{with}` loaded"),
        Err(e) => e.to_string(),
    }
}

use crate::domain::diagnostic::Diagnostics;
use chrono::{DateTime, Utc};

#[test]
fn the_example_policy_loads_without_errors_or_warnings() {
    let (policy, warnings) = load(EXAMPLE_POLICY).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(policy.workflows.len(), 5);
    assert_eq!(policy.defaults.remind_every, Duration::from_hours(4));
    let admin = policy
        .resource(&"prod-db".into())
        .unwrap()
        .role(&"admin".into())
        .unwrap();
    assert!(admin.privileged);
    assert_eq!(admin.template.as_ref().unwrap().as_str(), "incident");
}

#[test]
fn stages_without_names_are_named_after_their_approvers() {
    let policy = example_policy();
    let names: Vec<&str> = policy.workflows[0]
        .stages
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["Manager approval", "Owner approval", "Security review"]
    );
    assert_eq!(policy.workflows[0].stages[2].quorum, Quorum::Count(2));
}

#[test]
fn an_unknown_group_in_a_stage_is_named_with_its_line_and_a_suggestion() {
    let err = errors_after(
        "approvers = [\"group:security\"]",
        "approvers = [\"group:securty\"]",
    );
    assert!(err.contains("unknown group `securty`"), "{err}");
    assert!(err.contains("did you mean `security`"), "{err}");
    let line = EXAMPLE_POLICY
        .lines()
        .position(|l| l.contains("group:security\"], quorum = 2"))
        .unwrap()
        + 1;
    assert!(
        err.starts_with(&format!("policy.toml:{line}: error")),
        "{err}"
    );
}

#[test]
fn a_workflow_after_a_catch_all_can_never_match() {
    let text = format!(
        "{EXAMPLE_POLICY}\n[[workflows]]\nid = \"late\"\nwhen = {{ risk_at_least = \"high\" }}\nstages = [{{ approvers = [\"manager\"] }}]\n"
    );
    let err = load(&text).unwrap_err().to_string();
    assert!(
        err.contains("workflow `late` can never match: `default` before it matches every request"),
        "{err}"
    );
}

#[test]
fn a_workflow_no_role_satisfies_can_never_match() {
    let err = errors_after(
        "when = { privileged = true }",
        "when = { privileged = true, kinds = [\"printer\"] }",
    );
    assert!(
        err.contains("workflow `privileged` can never match"),
        "{err}"
    );
}

#[test]
fn contradictory_conditions_are_reported() {
    let err = errors_after(
        "when = { risk_at_most = \"low\", duration_at_most = \"1h\" }",
        "when = { risk_at_least = \"high\", risk_at_most = \"low\" }",
    );
    assert!(
        err.contains("risk_at_least = \"high\" is above risk_at_most = \"low\""),
        "{err}"
    );
}

#[test]
fn a_cron_line_that_never_fires_is_refused() {
    let err = errors_after("0 0 9 1 * *", "0 0 9 30 2 *");
    assert!(
        err.contains("review `monthly-payments` has a schedule that never fires"),
        "{err}"
    );
    let err = errors_after("0 0 9 1 * *", "every monday");
    assert!(err.contains("is not a cron line"), "{err}");
}

#[test]
fn every_cron_schedule_of_the_example_fires_within_a_quarter() {
    let policy = example_policy();
    for review in &policy.reviews {
        let next = review.schedule.after(&now()).next().unwrap();
        assert!(
            next - now() <= chrono::TimeDelta::days(92),
            "{} next fires {next}",
            review.id
        );
    }
}

#[test]
fn a_quorum_larger_than_the_group_is_refused() {
    let err = errors_after("quorum = 2, escalate_to", "quorum = 4, escalate_to");
    assert!(
        err.contains("needs 4 approvals but only 3 active people can give them"),
        "{err}"
    );
}

#[test]
fn a_stage_only_its_requester_could_complete_is_warned_about() {
    let text = EXAMPLE_POLICY.replacen(
        "quorum = 2, escalate_to = [\"group:security-leads\"]",
        "quorum = 3",
        1,
    );
    let (_, warnings) = load(&text).unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0]
            .message
            .contains("needs every one of its 3 approvers"),
        "{}",
        warnings[0]
    );
}

#[test]
fn unknown_template_resource_and_role_references_are_errors() {
    let err = errors_after("template = \"incident\"", "template = \"incdent\"");
    assert!(
        err.contains("template `incdent`, which is not defined") && err.contains("`incident`"),
        "{err}"
    );
    let err = errors_after(
        "[\"payments\", \"approver\"]]",
        "[\"payments\", \"aprover\"]]",
    );
    assert!(
        err.contains("role `payments/aprover`, which is not defined") && err.contains("`approver`"),
        "{err}"
    );
    let err = errors_after(
        "resources = [\"prod-db\", \"aws-prod\"]",
        "resources = [\"prod-dbb\"]",
    );
    assert!(err.contains("resource `prod-dbb`"), "{err}");
}

#[test]
fn a_bad_field_pattern_is_an_error() {
    let err = errors_after("^CHG-[0-9]+$", "^CHG-[0-9+$");
    assert!(
        err.contains("the pattern of field `ticket` is not a valid regular expression"),
        "{err}"
    );
}

#[test]
fn malformed_toml_and_typos_in_keys_are_reported_at_their_line() {
    let err = load("[defaults]\nmax_duration = 8h\n")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("policy.toml:2: error"), "{err}");
    let err = load("[defaults]\nmax_durration = \"8h\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("max_durration"), "{err}");
    let err = load("[defaults]\nmax_duration = \"8 hours\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("1h30m"), "{err}");
}

#[test]
fn duplicate_ids_are_refused() {
    let err = errors_after("id = \"default\"", "id = \"finance\"");
    assert!(err.contains("workflow `finance` is defined twice"), "{err}");
}

#[test]
fn a_connector_gatehouse_toml_does_not_declare_is_an_error() {
    let directory = example_directory();
    let known = [ConnectorId::new("log")];
    let text = EXAMPLE_POLICY.replacen("connector = \"log\"", "connector = \"lgo\"", 1);
    let cx = PolicyContext {
        directory: &directory,
        connectors: Some(&known),
        now: now(),
    };
    let err = parse_policy(&Source::new("policy.toml", &text), &cx)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("connector `lgo`") && err.contains("did you mean `log`"),
        "{err}"
    );
}

#[test]
fn roles_are_ordered_from_least_to_most_powerful() {
    let policy = example_policy();
    let db = policy.resource(&"prod-db".into()).unwrap();
    assert!(db.is_lesser_role(&"read".into(), &"admin".into()));
    assert!(!db.is_lesser_role(&"admin".into(), &"read".into()));
    assert!(!db.is_lesser_role(&"read".into(), &"read".into()));
}

#[test]
fn auditors_and_admins_read_the_audit_log_and_nobody_else() {
    let policy = example_policy();
    let directory = example_directory();
    let person = |id: &str| directory.person(&id.into()).unwrap();
    assert!(policy.is_auditor(person("sam")), "named an auditor");
    assert!(!policy.is_admin(person("sam")), "an auditor is no admin");
    assert!(policy.is_auditor(person("sue")), "an admin");
    assert!(!policy.is_auditor(person("alice")));
}

#[test]
fn only_active_admins_are_admins() {
    let policy = example_policy();
    let directory = example_directory();
    assert!(policy.is_admin(directory.person(&"sue".into()).unwrap()));
    assert!(!policy.is_admin(directory.person(&"sam".into()).unwrap()));
}
