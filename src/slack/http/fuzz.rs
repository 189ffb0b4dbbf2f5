//! The `slack_http` fuzz target (see [`crate::fuzz`]): one authenticated body read every way
//! the endpoints read one, with what each reading promises checked.

use axum::body::Bytes;

use super::commands::{SlashCommand, unescape};
use super::interactions::{self, Payload, View};
use super::{events, form, modals};
use crate::chat::actions::{CardAction, inputs};
use crate::chat::command;
use crate::chat::forms::FormKind;
use crate::fuzz::{assert_sentence, ready};
use crate::slack::verify::{Endpoint, delivery_key, delivery_keys};

/// A body as `/slack/commands`, `/slack/interactions`, `/slack/options` and `/slack/events`
/// (and Socket Mode's payloads) would read it.
pub fn slack_http(data: &[u8]) {
    let body = Bytes::copy_from_slice(data);
    delivery(data);
    if let Some(slash) = ready(form::<SlashCommand>(body.clone())) {
        slash_command(&slash);
    }
    if let Ok(slash) = serde_json::from_slice::<SlashCommand>(data) {
        slash_command(&slash);
    }
    if let Some(payload) = ready(interactions::payload(body)) {
        interaction(payload);
    }
    if let Ok(payload) = serde_json::from_slice::<Payload>(data) {
        interaction(payload);
    }
    let _ = serde_json::from_slice::<events::Envelope>(data);
}

/// Delivery keys never panic, whichever endpoint reads the body, and name what they key.
fn delivery(data: &[u8]) {
    use Endpoint::{Commands, Events, Interactions, Options};
    for endpoint in [Commands, Interactions, Options, Events] {
        let keys = delivery_keys(endpoint, data);
        for key in keys.iter().cloned().chain(delivery_key(endpoint, data)) {
            let (kind, rest) = key.split_once(':').unwrap_or_default();
            assert!(!kind.is_empty() && !rest.is_empty(), "delivery key {key:?}");
        }
        if let Some(key) = delivery_key(endpoint, data) {
            assert!(keys.contains(&key), "{key:?} is remembered");
        }
    }
}

/// Slack's escapes undone only shorten the text, and the text then reads as a command or a
/// sentence saying what to type.
fn slash_command(slash: &SlashCommand) {
    let typed = unescape(&slash.text);
    assert!(typed.len() <= slash.text.len());
    if let Err(error) = command::parse(&typed) {
        assert_sentence(&error.render("/access"), "a slash command error");
    }
}

fn interaction(payload: Payload) {
    match payload {
        Payload::BlockActions { actions, view, .. } => {
            for action in &actions {
                click(
                    &action.action_id,
                    action.value.as_deref().unwrap_or_default(),
                );
            }
            if let Some(view) = view {
                typed(&view);
            }
        }
        Payload::ViewSubmission { view, .. } => {
            typed(&view);
            for kind in [
                FormKind::Request,
                FormKind::Reject,
                FormKind::Changes,
                FormKind::Extend,
            ] {
                let form = modals::submission(kind, &view);
                for (name, value) in &form.inputs {
                    assert!(view.state.values.contains_key(name), "{name}");
                    assert_eq!(value.trim(), value);
                    assert!(!value.is_empty());
                }
            }
        }
        Payload::BlockSuggestion { view, .. } => {
            if let Some(view) = view {
                typed(&view);
            }
        }
        Payload::Other => {}
    }
}

/// A button Gatehouse posted reads back as itself; anything else reads as nothing.
fn click(action_id: &str, value: &str) {
    if let Some(card) = CardAction::parse(action_id, value) {
        assert_eq!(card.action_id(), action_id);
        assert_eq!(CardAction::parse(action_id, &card.value()), Some(card));
        assert_eq!(CardAction::from_custom_id(&card.custom_id()), Some(card));
    }
}

/// What was typed in a view is trimmed and never empty.
fn typed(view: &View) {
    for (block, actions) in &view.state.values {
        for action in actions.keys() {
            if let Some(value) = view.input(block, action) {
                assert!(!value.is_empty() && value.trim() == value, "{value:?}");
            }
        }
    }
    let _ = view.input("resource", inputs::RESOURCE);
}
