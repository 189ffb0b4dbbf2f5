//! Durations as people write them, and template fields sorted out of typed words.

use std::sync::OnceLock;

use chrono::{TimeZone, Utc};

use crate::domain::diagnostic::Source;
use crate::domain::duration::Duration;
use crate::domain::fields;
use crate::domain::policy::{Policy, PolicyContext, RequestTemplate, parse_policy};

const EXAMPLE_POLICY: &str = include_str!("../../deploy/examples/policy.toml");

/// A duration reads back from how it is shown, and can be added to a date.
pub fn duration(data: &[u8]) {
    let typed = super::text(data);
    match typed.parse::<Duration>() {
        Ok(duration) => {
            assert_eq!(duration.to_string().parse(), Ok(duration), "{typed:?}");
            assert_usable(duration);
        }
        Err(error) => {
            let sentence = error.to_string();
            super::assert_sentence(&sentence, "a duration error");
            assert!(sentence.contains(&typed), "{sentence}");
        }
    }
}

/// A duration Gatehouse accepted can be turned into a `TimeDelta` and added to any moment
/// of this century, as expiries, reminders and deadlines are computed.
pub(super) fn assert_usable(duration: Duration) {
    let delta = duration.to_chrono();
    assert_eq!(delta.num_seconds().unsigned_abs(), duration.as_secs());
    let late = Utc.with_ymd_and_hms(2099, 12, 31, 23, 59, 59).unwrap();
    assert!(
        late.checked_add_signed(delta).is_some(),
        "{duration} cannot be added to a date"
    );
}

/// Input: a byte choosing the example policy's template (or none), then the words typed.
/// Every word ends up once, in a field or the justification, in the order typed.
pub fn fill_fields(data: &[u8]) {
    let templates: Vec<&RequestTemplate> = example_policy().templates.values().collect();
    let chosen = super::pick(data.first(), 0..templates.len() + 1);
    let template = templates.get(chosen).copied();
    let words = super::text(data.get(1..).unwrap_or_default());
    let filled = fields::fill_fields(template, &words);

    let typed: Vec<&str> = words.split_whitespace().collect();
    let left: Vec<&str> = filled.justification.split_whitespace().collect();
    assert_eq!(left.join(" "), filled.justification, "single spaces");
    assert_eq!(left.len() + filled.fields.len(), typed.len(), "{filled:?}");
    let mut rest = typed.iter();
    for word in &left {
        assert!(rest.any(|t| t == word), "{word:?} not typed in this order");
    }
    for (id, value) in &filled.fields {
        let field = template.and_then(|t| t.fields.iter().find(|f| &f.id == id));
        assert!(field.is_some(), "{id} is not a field of the template");
        assert!(!value.is_empty(), "{id} filled with nothing");
        assert!(typed.iter().any(|word| word.contains(value.as_str())));
    }
}

fn example_policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        let cx = PolicyContext {
            directory: super::policy::example_directory(),
            connectors: None,
            now: Utc.with_ymd_and_hms(2026, 11, 26, 10, 0, 0).unwrap(),
        };
        parse_policy(&Source::new("policy.toml", EXAMPLE_POLICY), &cx)
            .expect("the example policy loads")
            .0
    })
}
