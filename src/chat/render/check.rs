//! `gatehouse check` for templates: every template, overridden or not, rendered with sample
//! data for each context it is used in, so that a broken override is found before a card is.

use minijinja::Value;
use minijinja::value::Serde;

use super::{BUILTIN, Templates, render_in};
use crate::chat::views::samples;

impl Templates {
    /// Renders every template with sample data and lists what is wrong, for `gatehouse check`.
    pub fn check(&self) -> Vec<String> {
        let mut problems: Vec<String> = self
            .unknown
            .iter()
            .map(|name| {
                let known: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
                format!(
                    "templates: `{name}` replaces no template; known: {}",
                    known.join(", ")
                )
            })
            .collect();
        for (name, context) in sample_contexts() {
            if let Err(e) = render_in(&self.env, name, &Value::from(Serde(&context))) {
                problems.push(e.to_string());
            }
        }
        problems
    }
}

/// The context each template expects, with sample data: one entry per template, and one
/// per kind for the notice and alert templates.
pub fn sample_contexts() -> Vec<(&'static str, serde_json::Value)> {
    use serde_json::json;
    let mut contexts = vec![
        (
            "slack/approval_card.j2",
            json!({ "request": samples::sample_request() }),
        ),
        (
            "slack/approval_card_decided.j2",
            json!({ "request": samples::sample_decided_request() }),
        ),
        (
            "slack/review_card.j2",
            json!({ "item": samples::sample_campaign_item() }),
        ),
        (
            "slack/grant_card_decided.j2",
            json!({ "card": samples::sample_decided_grant_card() }),
        ),
        (
            "slack/app_home.j2",
            json!({ "home": samples::sample_home() }),
        ),
        (
            "slack/request_modal.j2",
            json!({ "modal": samples::sample_request_modal() }),
        ),
        (
            "slack/reject_modal.j2",
            json!({ "modal": samples::sample_reject_modal() }),
        ),
        (
            "slack/changes_modal.j2",
            json!({ "modal": samples::sample_changes_modal() }),
        ),
        (
            "slack/extend_modal.j2",
            json!({ "modal": samples::sample_extend_modal() }),
        ),
        (
            "slack/ephemeral.j2",
            json!({ "reply": samples::sample_ephemeral() }),
        ),
        ("slack/help.j2", json!({ "help": samples::sample_help() })),
    ];
    let mut decided = samples::sample_campaign_item();
    decided.decided = true;
    decided.outcome = Some("Kept by Carol Diaz".to_owned());
    contexts.push(("slack/review_card.j2", json!({ "item": decided })));
    contexts.extend(
        samples::sample_notices()
            .into_iter()
            .map(|n| ("slack/notice.j2", json!({ "notice": n }))),
    );
    contexts.extend(
        samples::sample_alerts()
            .into_iter()
            .map(|a| ("slack/alert.j2", json!({ "alert": a }))),
    );
    contexts
}
