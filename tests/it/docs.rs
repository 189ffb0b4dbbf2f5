//! The policy cookbook (docs/policy-cookbook.md) is policy Gatehouse accepts: its TOML blocks, taken in order,
//! parse as one policy against the example directory, with every recipe in force.

use gatehouse::domain::diagnostic::Source;
use gatehouse::domain::directory::Directory;
use gatehouse::domain::ids::ConnectorId;
use gatehouse::domain::policy::{PolicyContext, parse_policy};

use crate::support::examples;

/// The ```toml blocks of a page.
fn toml_blocks(page: &str) -> Vec<String> {
    page.split("```toml\n")
        .skip(1)
        .map(|block| block[..block.find("```").unwrap()].to_owned())
        .collect()
}

#[test]
fn the_policy_cookbook_parses_as_one_policy_with_every_recipe_in_force() {
    let page = std::fs::read_to_string(examples().join("../../docs/policy-cookbook.md")).unwrap();
    let blocks = toml_blocks(&page);
    assert!(blocks.len() >= 8, "{} blocks", blocks.len());
    let text = blocks.join("\n");
    let directory_text = std::fs::read_to_string(examples().join("directory.toml")).unwrap();
    let directory = Directory::parse(&Source::new("directory.toml", &directory_text)).unwrap();
    let connectors = [ConnectorId::new("log")];
    let context = PolicyContext {
        directory: &directory,
        connectors: Some(&connectors),
        now: chrono::Utc::now(),
    };
    let (policy, warnings) = parse_policy(&Source::new("docs/policy-cookbook.md", &text), &context)
        .unwrap_or_else(|problems| panic!("the cookbook does not parse:\n{problems}"));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(policy.workflows.len(), 3);
    assert!(policy.emergency.is_some());
    assert_eq!(policy.sod.len(), 1);
    assert_eq!(policy.reviews.len(), 1);
    assert_eq!(policy.bundles.len(), 1);
    assert_eq!(policy.resources.len(), 2);
}
