//! Answers to interactions: the callback (within 3 s of the interaction, once, with a response
//! type its interaction type allows: PONG only to PING, autocomplete results only to
//! autocomplete, no modal after a modal, message updates only where there is a message), then
//! for 15 minutes the interaction token's webhook: `@original` read and edited, follow-ups
//! posted and edited. Unknown or late interactions get 10062, a second answer 40060, an expired
//! or unknown token 50027, as on Discord.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::routes::{Outcome, edit, post};
use super::rules::{self, Body, Problems};
use super::state::{Route, State};
use super::{APPLICATION_ID, components};

const ANSWER_WITHIN: Duration = Duration::from_secs(3);
const TOKEN_VALID_FOR: Duration = Duration::from_secs(15 * 60);

pub fn apply(
    state: &mut State,
    route: Route,
    params: &[String],
    body: &Value,
    query: &str,
    now: Instant,
    at: Duration,
) -> Outcome {
    let param = |i: usize| params.get(i).map(String::as_str).unwrap_or("");
    if route == Route::CreateInteractionResponse {
        return callback(state, param(0), param(1), body, query, now, at);
    }
    if param(0) != APPLICATION_ID {
        let why = format!(
            "webhook of application {} instead of {APPLICATION_ID}",
            param(0)
        );
        return Outcome::refused(404, 10015, "Unknown Webhook", why);
    }
    let token = param(1);
    let Some((id, record)) = state.interactions.iter().find(|(_, r)| r.token == token) else {
        let why = "an interaction token the fake never issued".to_owned();
        return Outcome::refused(401, 50027, "Invalid Webhook Token", why);
    };
    let id = id.clone();
    let age = now.duration_since(record.created);
    if age > TOKEN_VALID_FOR {
        let why = format!(
            "interaction token used {}s after the interaction (15 min allowed)",
            age.as_secs()
        );
        return Outcome::refused(401, 50027, "Invalid Webhook Token", why);
    }
    let (original, channel) = (record.original.clone(), record.channel_id.clone());
    let acknowledged = record.callback.is_some();
    match route {
        Route::GetOriginalWebhookMessage => match original.and_then(|o| state.message_by_id(&o)) {
            Some(message) => Outcome::ok(message.json()),
            None => Outcome::error(404, 10008, "Unknown Message"),
        },
        Route::UpdateOriginalWebhookMessage => {
            let Some(original) = original else {
                let why = "@original edited before a callback created it".to_owned();
                return Outcome::refused(404, 10008, "Unknown Message", why);
            };
            if let Some(refused) = Outcome::invalid(rules::message(body, Body::InteractionEdit)) {
                return refused;
            }
            Outcome::ok(edit(state, &original, body, at))
        }
        Route::UpdateWebhookMessage => {
            let message = param(2);
            let record = &state.interactions[&id];
            let ours = record.followups.iter().any(|f| f == message)
                || record.original.as_deref() == Some(message);
            if !ours {
                return Outcome::error(404, 10008, "Unknown Message");
            }
            if let Some(refused) = Outcome::invalid(rules::message(body, Body::InteractionEdit)) {
                return refused;
            }
            Outcome::ok(edit(state, message, body, at))
        }
        _ => {
            if !acknowledged {
                let why = "follow-up before the interaction was acknowledged".to_owned();
                return Outcome::refused(404, 10015, "Unknown Webhook", why);
            }
            if let Some(refused) = Outcome::invalid(rules::message(body, Body::InteractionPost)) {
                return refused;
            }
            let flags = body["flags"].as_u64().unwrap_or(0) & 64;
            let message = post(state, &channel, body, flags, Some(token), at);
            if let Some(record) = state.interactions.get_mut(&id) {
                record.followups.push(message.clone());
            }
            let posted = state.message_by_id(&message).map(|m| m.json());
            Outcome::ok(posted.unwrap_or_default())
        }
    }
}

/// The callback types each interaction type may be answered with.
fn allowed(kind: u64) -> &'static [u64] {
    match kind {
        1 => &[1],
        2 => &[4, 5, 9],
        3 => &[4, 5, 6, 7, 9],
        4 => &[8],
        5 => &[4, 5, 6, 7],
        _ => &[],
    }
}

fn callback(
    state: &mut State,
    id: &str,
    token: &str,
    body: &Value,
    query: &str,
    now: Instant,
    at: Duration,
) -> Outcome {
    let Some(record) = state.interactions.get(id).filter(|r| r.token == token) else {
        let why = format!("callback for interaction {id} the fake never sent (or a wrong token)");
        return Outcome::refused(404, 10062, "Unknown interaction", why);
    };
    if record.callback.is_some() {
        let why = format!("second callback for interaction {id}");
        return Outcome::refused(
            400,
            40060,
            "Interaction has already been acknowledged.",
            why,
        );
    }
    let age = now.duration_since(record.created);
    if age > ANSWER_WITHIN {
        let why = format!(
            "callback {} ms after the interaction (3 s allowed)",
            age.as_millis()
        );
        return Outcome::refused(404, 10062, "Unknown interaction", why);
    }
    let (kind, has_message) = (record.kind, record.message_id.is_some());
    let data = body.get("data").cloned().unwrap_or(Value::Null);
    let mut problems = Problems::default();
    let answer = body["type"].as_u64().unwrap_or(0);
    let checked = match answer {
        _ if !body.is_object() => Ok(Problems::default()),
        1 | 6 => Ok(Problems::default()),
        4 => rules::message(&data, Body::InteractionPost),
        5 | 7 if data.is_null() => Ok(Problems::default()),
        5 | 7 => rules::message(&data, Body::InteractionEdit),
        8 => Ok(components::autocomplete(&data)),
        9 => Ok(components::modal(&data)),
        _ => {
            let message = "Value must be one of {1, 4, 5, 6, 7, 8, 9, 10, 12}.";
            problems.add("type", "BASE_TYPE_CHOICES", message);
            Ok(Problems::default())
        }
    };
    if let Ok(more) = checked.as_ref() {
        for problem in &more.0 {
            problems.add(&problem.path, problem.code, problem.message.clone());
        }
    } else {
        return Outcome::invalid(checked).unwrap_or_else(|| Outcome::ok(Value::Null));
    }
    let known = matches!(answer, 1 | 4..=9);
    if known && !allowed(kind).contains(&answer) {
        let message = format!(
            "Interaction response type {answer} is not valid for an interaction of type {kind}"
        );
        problems.add("type", "INTERACTION_RESPONSE_TYPE_INVALID", message);
    } else if known && matches!(answer, 6 | 7) && !has_message {
        let message = "Only an interaction on a message can update it".to_owned();
        problems.add("type", "INTERACTION_RESPONSE_TYPE_INVALID", message);
    }
    if let Some(refused) = Outcome::invalid(Ok(problems)) {
        return refused;
    }
    let (channel, component_message) = (record.channel_id.clone(), record.message_id.clone());
    let original = match answer {
        4 => {
            let flags = data["flags"].as_u64().unwrap_or(0) & 64;
            Some(post(state, &channel, &data, flags, Some(token), at))
        }
        5 => {
            let flags = 128 | (data["flags"].as_u64().unwrap_or(0) & 64);
            Some(post(state, &channel, &json!({}), flags, Some(token), at))
        }
        6 => component_message,
        7 => {
            let message = component_message.unwrap_or_default();
            edit(state, &message, &data, at);
            Some(message)
        }
        _ => None,
    };
    if let Some(record) = state.interactions.get_mut(id) {
        record.callback = Some(body.clone());
        record.original = original.clone();
    }
    if !query.split('&').any(|p| p == "with_response=true") {
        return Outcome {
            status: 204,
            body: Value::Null,
            violations: Vec::new(),
        };
    }
    let message = original.as_ref().and_then(|o| state.message_by_id(o));
    let mut resource = json!({"type": answer});
    if let Some(message) = message.filter(|_| matches!(answer, 4 | 7)) {
        resource["message"] = message.json();
    }
    Outcome::ok(json!({
        "interaction": {"id": id, "type": kind, "activity_instance_id": null,
                        "response_message_id": original, "response_message_loading": answer == 5,
                        "response_message_ephemeral": message.is_some_and(|m| m.ephemeral())},
        "resource": resource,
    }))
}
