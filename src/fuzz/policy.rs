//! policy.toml and directory.toml: a file loads or its problems point inside it, and what
//! loads can be used (its durations fit in time arithmetic, its schedules parse).

use std::sync::OnceLock;

use chrono::{TimeZone, Utc};

use crate::domain::diagnostic::{Diagnostic, Source};
use crate::domain::directory::Directory;
use crate::domain::ids::{ConnectorId, PersonId};
use crate::domain::policy::{Policy, PolicyContext, parse_policy};

const EXAMPLE_DIRECTORY: &str = include_str!("../../deploy/examples/directory.toml");

/// policy.toml, checked against the example directory and connectors.
pub fn policy(data: &[u8]) {
    let text = super::text(data);
    let source = Source::new("policy.toml", &text);
    let connectors = [ConnectorId::new("log"), ConnectorId::new("prod-db")];
    let cx = PolicyContext {
        directory: example_directory(),
        connectors: Some(&connectors[..]),
        now: Utc.with_ymd_and_hms(2026, 11, 26, 10, 0, 0).unwrap(),
    };
    match parse_policy(&source, &cx) {
        Ok((policy, warnings)) => {
            warnings.iter().for_each(|w| located(w, &source));
            usable(&policy);
        }
        Err(problems) => {
            assert!(!problems.0.is_empty());
            problems.0.iter().for_each(|p| located(p, &source));
            assert!(problems.0.iter().all(Diagnostic::is_error), "{problems}");
        }
    }
}

/// directory.toml.
pub fn directory(data: &[u8]) {
    let text = super::text(data);
    let source = Source::new("directory.toml", &text);
    match Directory::parse(&source) {
        Ok(directory) => {
            for person in directory.people() {
                assert!(!person.id.as_str().trim().is_empty());
                assert_eq!(
                    directory.person(&person.id).map(|p| &p.id),
                    Some(&person.id)
                );
                // Management chains end, however the file is drawn.
                for levels in [1, 2, 8, u8::MAX] {
                    let _ = directory.manager_of(&person.id, levels);
                }
            }
            let _ = directory.manager_of(&PersonId::new("nobody"), 3);
        }
        Err(problems) => {
            assert!(!problems.0.is_empty());
            problems.0.iter().for_each(|p| located(p, &source));
        }
    }
}

fn located(diagnostic: &Diagnostic, source: &Source<'_>) {
    assert_eq!(diagnostic.file, source.name, "{diagnostic}");
    super::assert_inside(diagnostic, source);
}

/// Every duration of a policy that loaded can be added to a date, as the engine and the
/// scheduler do.
fn usable(policy: &Policy) {
    let d = &policy.defaults;
    let mut durations = vec![
        d.pending_ttl,
        d.remind_every,
        d.escalate_after,
        d.max_duration,
    ];
    for resource in &policy.resources {
        durations.extend(resource.roles.iter().filter_map(|r| r.max_duration));
    }
    if let Some(emergency) = &policy.emergency {
        durations.extend([emergency.max_duration, emergency.review_within]);
    }
    durations.extend(policy.reviews.iter().map(|r| r.deadline));
    durations.into_iter().for_each(super::domain::assert_usable);
}

pub(super) fn example_directory() -> &'static Directory {
    static DIRECTORY: OnceLock<Directory> = OnceLock::new();
    DIRECTORY.get_or_init(|| {
        Directory::parse(&Source::new("directory.toml", EXAMPLE_DIRECTORY))
            .expect("the example directory loads")
    })
}
