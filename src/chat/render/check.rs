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

/// The context each template expects, with sample data: one entry per template (per
/// state, for the request modal and the review card), and one per kind for the notice and
/// alert templates. Slack and Discord templates of the same name take the same context.
pub fn sample_contexts() -> Vec<(&'static str, serde_json::Value)> {
    let mut contexts = platform_contexts("slack");
    contexts.push((
        "slack/app_home.j2",
        serde_json::json!({ "home": samples::sample_home() }),
    ));
    contexts.extend(platform_contexts("discord"));
    contexts
}

/// The contexts of the templates both platforms have, under `platform/`.
fn platform_contexts(platform: &str) -> Vec<(&'static str, serde_json::Value)> {
    use serde_json::json;
    let mut decided = samples::sample_campaign_item();
    decided.decided = true;
    decided.outcome = Some("Kept by Carol Diaz".to_owned());
    let mut contexts = vec![
        (
            "approval_card.j2",
            json!({ "request": samples::sample_request() }),
        ),
        (
            "approval_card_decided.j2",
            json!({ "request": samples::sample_decided_request() }),
        ),
        (
            "review_card.j2",
            json!({ "item": samples::sample_campaign_item() }),
        ),
        ("review_card.j2", json!({ "item": decided })),
        (
            "grant_card_decided.j2",
            json!({ "card": samples::sample_decided_grant_card() }),
        ),
        (
            "request_modal.j2",
            json!({ "modal": samples::sample_request_modal() }),
        ),
        (
            "request_modal.j2",
            json!({ "modal": samples::sample_blank_request_modal() }),
        ),
        (
            "request_modal.j2",
            json!({ "modal": samples::sample_resource_only_request_modal() }),
        ),
        (
            "reject_modal.j2",
            json!({ "modal": samples::sample_reject_modal() }),
        ),
        (
            "changes_modal.j2",
            json!({ "modal": samples::sample_changes_modal() }),
        ),
        (
            "extend_modal.j2",
            json!({ "modal": samples::sample_extend_modal() }),
        ),
        (
            "ephemeral.j2",
            json!({ "reply": samples::sample_ephemeral() }),
        ),
        ("help.j2", json!({ "help": samples::sample_help() })),
    ];
    contexts.extend(
        samples::sample_notices()
            .into_iter()
            .chain(samples::sample_notice_states())
            .map(|n| ("notice.j2", json!({ "notice": n }))),
    );
    contexts.extend(
        samples::sample_alerts()
            .into_iter()
            .map(|a| ("alert.j2", json!({ "alert": a }))),
    );
    contexts.extend(
        samples::sample_impersonation_alerts()
            .into_iter()
            .map(|a| ("impersonation_alert.j2", json!({ "alert": a }))),
    );
    contexts
        .into_iter()
        .map(|(name, context)| (builtin_name(platform, name), context))
        .collect()
}

/// `slack/help.j2` as the `&'static str` of [`BUILTIN`]; every name asked for is one.
fn builtin_name(platform: &str, name: &str) -> &'static str {
    BUILTIN
        .iter()
        .map(|(n, _)| *n)
        .find(|n| n.strip_prefix(platform).and_then(|n| n.strip_prefix('/')) == Some(name))
        .unwrap_or("")
}
