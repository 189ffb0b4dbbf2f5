use std::fs;

use serde_json::json;

use super::super::{RenderError, Templates};
use crate::chat::views::samples;

fn override_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for (name, text) in files {
        let path = dir.path().join(name);
        fs::create_dir_all(path.parent().unwrap_or(dir.path())).expect("mkdir");
        fs::write(path, text).expect("write");
    }
    dir
}

#[test]
fn an_override_replaces_the_built_in_of_the_same_name() {
    let help = r#"{"text": "{{ help.command }} is ours", "blocks": [{"type": "divider"}]}"#;
    let dir = override_dir(&[("slack/help.j2", help)]);
    let t = Templates::load(Some(dir.path())).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.overridden(), ["slack/help.j2"]);
    let message = t.render("slack/help.j2", json!({ "help": samples::sample_help() }));
    assert_eq!(
        message.ok().map(|m| m["text"].clone()),
        Some(json!("/access is ours"))
    );
    assert!(t.check().is_empty(), "{:?}", t.check());
}

#[test]
fn a_broken_override_is_reported_with_its_name_and_line() {
    let broken = "{\n  \"text\": \"{{ request.id \",\n  \"blocks\": []\n}";
    let dir = override_dir(&[("slack/approval_card.j2", broken)]);
    let err = Templates::load(Some(dir.path()))
        .err()
        .map(|e| e.to_string());
    let err = err.unwrap_or_default();
    assert!(
        err.contains("slack/approval_card.j2:2: syntax error"),
        "{err}"
    );
}

#[test]
fn an_override_that_renders_bad_json_is_caught_by_check_and_the_built_in_is_used() {
    let bad_json = "{\n  \"text\": \"{{ help.command }}\",\n  \"blocks\": [}\n";
    let undefined = "{\"text\": \"{{ modal.nope }}\", \"blocks\": []}";
    let dir = override_dir(&[
        ("slack/help.j2", bad_json),
        ("slack/ephemeral.j2", undefined),
    ]);
    let t = Templates::load(Some(dir.path())).unwrap_or_else(|e| panic!("{e}"));
    let problems = t.check();
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("template `slack/help.j2` rendered invalid JSON at line 3")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("template `slack/ephemeral.j2`, line 1: undefined value")),
        "{problems:?}"
    );
    let message = t.render("slack/help.j2", json!({ "help": samples::sample_help() }));
    assert_eq!(
        message.ok().map(|m| m["text"].clone()),
        Some(json!("How to use /access"))
    );
}

#[test]
fn an_override_that_replaces_nothing_is_reported() {
    let dir = override_dir(&[("slack/aproval_card.j2", "{}")]);
    let t = Templates::load(Some(dir.path())).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.unknown_overrides(), ["slack/aproval_card.j2"]);
    assert!(t.check()[0].contains("`slack/aproval_card.j2` replaces no template"));
    assert_eq!(
        t.render("slack/nope.j2", json!({})),
        Err(RenderError::Unknown("slack/nope.j2".to_owned()))
    );
}

/// `slack/help.j2` that loops `outer` × `inner` times before printing the usual message.
fn help_after_loops(outer: u32, inner: u32) -> String {
    format!(
        "{{% for i in range({outer}) %}}{{% for j in range({inner}) %}}{{% endfor %}}{{% endfor %}}\
         {{\"text\": \"{{{{ help.command }}}} is ours\", \"blocks\": [{{\"type\": \"divider\"}}]}}"
    )
}

#[test]
fn an_override_that_loops_too_long_runs_out_of_budget_at_check_and_the_built_in_is_used() {
    let dir = override_dir(&[("slack/help.j2", &help_after_loops(100_000, 100))]);
    let t = Templates::load(Some(dir.path())).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        t.check(),
        [
            "template `slack/help.j2` used up its budget of 1000000 steps; look for a loop that \
          runs too long or prints too much"
        ]
    );
    for _ in 0..2 {
        let message = t.render("slack/help.j2", json!({ "help": samples::sample_help() }));
        assert_eq!(
            message.ok().map(|m| m["text"].clone()),
            Some(json!("How to use /access"))
        );
    }
}

#[test]
fn a_loop_within_the_budget_still_renders() {
    let dir = override_dir(&[("slack/help.j2", &help_after_loops(100, 100))]);
    let t = Templates::load(Some(dir.path())).unwrap_or_else(|e| panic!("{e}"));
    assert!(t.check().is_empty(), "{:?}", t.check());
    let message = t.render("slack/help.j2", json!({ "help": samples::sample_help() }));
    assert_eq!(
        message.ok().map(|m| m["text"].clone()),
        Some(json!("/access is ours"))
    );
}

#[test]
fn an_override_that_prints_megabytes_is_refused_and_the_built_in_is_used() {
    let huge = "{\"text\": \"{% for i in range(100) %}{{ 'x' * 100000 }}{% endfor %}\", \
                \"blocks\": [{\"type\": \"divider\"}]}";
    let dir = override_dir(&[("slack/help.j2", huge)]);
    let t = Templates::load(Some(dir.path())).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        t.check(),
        [
            "template `slack/help.j2` printed more than 4 MiB; look for a loop that runs too \
          long or prints too much"
        ]
    );
    let message = t.render("slack/help.j2", json!({ "help": samples::sample_help() }));
    assert_eq!(
        message.ok().map(|m| m["text"].clone()),
        Some(json!("How to use /access"))
    );
}

#[test]
fn an_override_that_builds_a_giant_string_runs_out_of_budget_before_it_is_made() {
    let giant = "{\"text\": \"{{ ('x' * 100000000)|length }}\", \"blocks\": []}";
    let dir = override_dir(&[("slack/help.j2", giant)]);
    let t = Templates::load(Some(dir.path())).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        t.check(),
        [
            "template `slack/help.j2` used up its budget of 1000000 steps; look for a loop that \
          runs too long or prints too much"
        ]
    );
}
