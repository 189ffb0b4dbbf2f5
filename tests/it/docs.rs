//! The docs say what the code does. The policy cookbook (docs/policy-cookbook.md) is policy
//! Gatehouse accepts: its TOML blocks, taken in order, parse as one policy against the example
//! directory, with every recipe in force. The configuration reference (docs/configuration.md)
//! describes every key the parsers of gatehouse.toml, policy.toml and directory.toml accept,
//! read from their serde types, and no key they do not.

use std::collections::{BTreeMap, BTreeSet};

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

/// A file's section of docs/configuration.md: table header (`[server]`) → the keys its table
/// documents, in the order the headings and rows come.
type Documented = BTreeMap<String, BTreeSet<String>>;

/// What docs/configuration.md documents, per file: under `## `gatehouse.toml`` (and the other
/// two), each heading naming TOML headers in backticks (``### `[server]` ``, or several:
/// ``### `[workflows.when]` and `[bundles.when]` ``) opens those tables, and each row of the
/// Markdown table after it whose first cell is `` `key` `` documents that key.
fn documented(page: &str) -> BTreeMap<&'static str, Documented> {
    let mut found: BTreeMap<&'static str, Documented> = BTreeMap::new();
    let mut file: Option<&'static str> = None;
    let mut tables: Vec<String> = Vec::new();
    for line in page.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            file = FILES
                .into_iter()
                .find(|f| heading.contains(&format!("`{f}`")));
            tables.clear();
        } else if line.starts_with("###") {
            tables = backticked(line)
                .filter(|t| t.starts_with('[') && t.ends_with(']'))
                .map(str::to_owned)
                .collect();
            if line.to_lowercase().contains("top level") {
                tables.push("top level".to_owned());
            }
            if let Some(file) = file {
                for table in &tables {
                    found
                        .entry(file)
                        .or_default()
                        .entry(table.clone())
                        .or_default();
                }
            }
        } else if let (Some(file), Some(row)) = (file, line.strip_prefix("| `")) {
            let key = &row[..row.find('`').unwrap_or(0)];
            for table in &tables {
                let keys = found
                    .entry(file)
                    .or_default()
                    .entry(table.clone())
                    .or_default();
                keys.insert(key.to_owned());
            }
        }
    }
    found
}

const FILES: [&str; 3] = ["gatehouse.toml", "policy.toml", "directory.toml"];

/// The `code` spans of a line.
fn backticked(line: &str) -> impl Iterator<Item = &str> {
    line.split('`').skip(1).step_by(2)
}

/// What the parsers accept, per file: table header → its keys that are values, not tables.
fn accepted() -> BTreeMap<&'static str, Documented> {
    let files = [
        ("gatehouse.toml", gatehouse::config::accepted_tables()),
        ("policy.toml", gatehouse::domain::policy::accepted_tables()),
        (
            "directory.toml",
            gatehouse::domain::directory::accepted_tables(),
        ),
    ];
    files
        .into_iter()
        .map(|(file, tables)| {
            let paths: BTreeSet<Vec<&str>> = tables.iter().map(|t| t.path.clone()).collect();
            let keys = tables
                .iter()
                .map(|table| {
                    let values = table
                        .keys
                        .iter()
                        .filter(|key| {
                            let mut path = table.path.clone();
                            path.push(key);
                            !paths.contains(&path)
                        })
                        .map(|key| (*key).to_owned())
                        .collect();
                    (table.header(), values)
                })
                .collect();
            (file, keys)
        })
        .collect()
}

#[test]
fn every_key_the_parsers_accept_is_in_the_configuration_reference_and_nothing_else() {
    let page = std::fs::read_to_string(examples().join("../../docs/configuration.md")).unwrap();
    let documented = documented(&page);
    let accepted = accepted();
    assert!(accepted["gatehouse.toml"]["[server]"].contains("cache_mb"));
    let mut missing = Vec::new();
    for (file, tables) in &accepted {
        let described = documented.get(file).cloned().unwrap_or_default();
        for (table, keys) in tables {
            let Some(rows) = described.get(table) else {
                if table != "top level" || !keys.is_empty() {
                    missing.push(format!(
                        "{file}: table `{table}` (keys: {}) is not in docs/configuration.md: \
                         add a heading ### `{table}` to its ## `{file}` section, with a row \
                         | `key` | type | default | meaning | for each key",
                        keys.iter().cloned().collect::<Vec<_>>().join(", ")
                    ));
                }
                continue;
            };
            for key in keys.iter().filter(|k| !rows.contains(*k)) {
                missing.push(format!(
                    "{file}: key `{key}` of `{table}` is not in docs/configuration.md: add a row \
                     | `{key}` | type | default | meaning | to the table under the heading \
                     ### `{table}` of its ## `{file}` section"
                ));
            }
        }
        for (table, rows) in &described {
            let Some(keys) = tables.get(table) else {
                missing.push(format!(
                    "docs/configuration.md describes `{table}` under ## `{file}`, which {file} \
                     does not have: remove the heading or fix its name"
                ));
                continue;
            };
            for row in rows.iter().filter(|r| !keys.contains(*r)) {
                missing.push(format!(
                    "docs/configuration.md describes key `{row}` of `{table}` under ## `{file}`, \
                     which {file} does not accept: remove the row or fix its name"
                ));
            }
        }
    }
    assert!(missing.is_empty(), "\n{}\n", missing.join("\n"));
}

#[test]
fn the_reference_check_reads_headings_and_rows_of_each_file_section() {
    let page = "## `policy.toml`\n\n### `[[workflows]]`\n\n| key | type |\n| --- | --- |\n\
                | `id` | string |\n\n### `[workflows.when]` and `[bundles.when]`\n\n| `kinds` | list |\n\
                \n## The command line\n\n| `id` | not a key |\n";
    let found = documented(page);
    let policy = &found["policy.toml"];
    assert_eq!(policy["[[workflows]]"], BTreeSet::from(["id".to_owned()]));
    assert_eq!(
        policy["[workflows.when]"],
        BTreeSet::from(["kinds".to_owned()])
    );
    assert_eq!(
        policy["[bundles.when]"],
        BTreeSet::from(["kinds".to_owned()])
    );
    assert_eq!(found.len(), 1);
}
