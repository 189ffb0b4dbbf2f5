//! `POST /slack/options`: the typeahead of the request modal. For the resource input, the
//! policy's resources this person may ask for whose id or name contains what was typed; for
//! a role input (should a template make it external), the roles of the chosen resource.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::interactions::{Payload, payload};
use super::{Delivery, Endpoint, Inbound};
use crate::chat::actions::inputs;
use crate::chat::suggest::{self, Suggestion};

/// Slack shows at most 100 options.
const MAX_OPTIONS: usize = 100;

pub async fn handle(
    State(inbound): State<Arc<Inbound>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match inbound.admit(Endpoint::Options, &headers, &body).await {
        Err(refused) => return refused,
        Ok(Delivery::Repeat | Delivery::First(_)) => {}
    }
    let options = match payload(body).await {
        Some(payload) => options(&inbound, payload).await,
        None => Vec::new(),
    };
    answer(options)
}

/// The options for a typeahead (`block_suggestion`) already admitted and read: empty for
/// anything else, or for a person Gatehouse does not know.
pub(super) async fn options(inbound: &Arc<Inbound>, payload: Payload) -> Vec<Value> {
    let Payload::BlockSuggestion {
        user,
        action_id,
        value,
        view,
    } = payload
    else {
        return Vec::new();
    };
    let Ok(person) = inbound.person(&user.id).await else {
        return Vec::new();
    };
    let world = inbound.facade.world();
    let Some(person) = world.directory.active_person(&person) else {
        return Vec::new();
    };
    match action_id.as_str() {
        inputs::RESOURCE => suggest::resources(&world.policy, person, &value, MAX_OPTIONS),
        inputs::ROLE => {
            let chosen = view.and_then(|v| v.input("resource", inputs::RESOURCE));
            suggest::roles(&world.policy, chosen.as_deref(), &value, MAX_OPTIONS)
        }
        _ => Vec::new(),
    }
    .iter()
    .map(option)
    .collect()
}

fn answer(options: Vec<Value>) -> Response {
    Json(json!({ "options": options })).into_response()
}

fn option(suggestion: &Suggestion) -> Value {
    let Suggestion { value, label } = suggestion;
    json!({"text": {"type": "plain_text", "text": label}, "value": value})
}
