//! `POST /slack/interactions`: button clicks (`block_actions`) and modal submissions
//! (`view_submission`). A button carries only an action and ids; who clicked is re-checked by
//! the engine on every click, and a refusal reaches only the person who clicked, as an
//! ephemeral message, with nothing changed. Clicks are answered with an empty 200 at once;
//! the modals they open and the messages they cause are sent in the background.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Delivery, Endpoint, Inbound, form, modals};
use crate::chat::actions::{CardAction, inputs};
use crate::chat::respond::{self, Clicked};
use crate::chat::say;
use crate::chat::views::RequestModalView;
use crate::domain::ids::{ResourceId, RoleId};

/// The form Slack posts: one field, `payload`, holding JSON.
#[derive(Debug, Deserialize)]
struct Envelope {
    payload: String,
}

/// The interaction payloads Gatehouse acts on; the rest are acknowledged and ignored.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Payload {
    BlockActions {
        user: User,
        #[serde(default)]
        trigger_id: String,
        #[serde(default)]
        actions: Vec<Action>,
        channel: Option<Channel>,
        container: Option<Container>,
        view: Option<View>,
    },
    ViewSubmission {
        user: User,
        view: View,
    },
    BlockSuggestion {
        user: User,
        #[serde(default)]
        action_id: String,
        #[serde(default)]
        value: String,
        view: Option<View>,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
pub(super) struct User {
    pub id: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct Action {
    pub(super) action_id: String,
    #[serde(default)]
    pub(super) value: Option<String>,
    #[serde(default)]
    pub(super) selected_option: Option<SelectedOption>,
}

#[derive(Debug, Deserialize)]
pub(super) struct SelectedOption {
    pub value: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct Channel {
    id: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct Container {
    #[serde(default)]
    channel_id: Option<String>,
}

/// A modal as Slack sends it back: what it is, what it carries, and what was typed.
#[derive(Debug, Default, Deserialize)]
pub(super) struct View {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub hash: String,
    #[serde(default)]
    pub callback_id: String,
    #[serde(default)]
    pub private_metadata: String,
    #[serde(default)]
    pub state: ViewState,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct ViewState {
    /// block_id → action_id → the input's state.
    #[serde(default)]
    pub values: HashMap<String, HashMap<String, Value>>,
}

impl View {
    /// What was typed or chosen in `block`'s `action`, if anything.
    pub fn input(&self, block: &str, action: &str) -> Option<String> {
        let state = self.state.values.get(block)?.get(action)?;
        let value = state
            .get("value")
            .or_else(|| state.get("selected_option")?.get("value"))?;
        value
            .as_str()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }
}

/// Reads the `payload` form field of an authenticated body.
pub(super) async fn payload(body: Bytes) -> Option<Payload> {
    let envelope = form::<Envelope>(body).await?;
    serde_json::from_str(&envelope.payload)
        .map_err(|error| tracing::warn!(%error, "an interaction payload Gatehouse cannot read"))
        .ok()
}

pub async fn handle(
    State(inbound): State<Arc<Inbound>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let inbound = match inbound.admit(Endpoint::Interactions, &headers, &body).await {
        Err(refused) => return refused,
        Ok(Delivery::Repeat) => return StatusCode::OK.into_response(),
        Ok(Delivery::First(inbound)) => inbound,
    };
    let answer = match payload(body).await {
        Some(payload) => answer(&inbound, payload).await,
        None => None,
    };
    match answer {
        Some(answer) => Json(answer).into_response(),
        None => StatusCode::OK.into_response(),
    }
}

/// Acts on an interaction already admitted and read. The answer is empty (`None`) except
/// for a modal submission the person must correct (`response_action: errors`).
pub(super) async fn answer(inbound: &Arc<Inbound>, payload: Payload) -> Option<Value> {
    match payload {
        Payload::BlockActions {
            user,
            trigger_id,
            actions,
            channel,
            container,
            view,
        } => {
            let channel = channel
                .map(|c| c.id)
                .or_else(|| container.and_then(|c| c.channel_id));
            if let Some(action) = actions.into_iter().next() {
                let click = Click {
                    user: user.id,
                    channel,
                    trigger_id,
                };
                clicked(inbound, click, action, view).await;
            }
            None
        }
        Payload::ViewSubmission { user, view } => modals::submitted(inbound, &user.id, view).await,
        _ => None,
    }
}

/// Who clicked, and where to answer them.
struct Click {
    user: String,
    channel: Option<String>,
    trigger_id: String,
}

async fn clicked(inbound: &Arc<Inbound>, click: Click, action: Action, view: Option<View>) {
    let value = action.value.as_deref().unwrap_or_default();
    let Some(card) = CardAction::parse(&action.action_id, value) else {
        // Choosing a resource or role in the request modal rebuilds it around the choice.
        if let Some(view) = view.filter(|v| v.callback_id == inputs::REQUEST_MODAL) {
            let chosen = action.selected_option.map(|o| o.value);
            refresh_request_modal(inbound, &action.action_id, chosen, &view);
        }
        return;
    };
    let person = match inbound.person(&click.user).await {
        Ok(person) => person,
        Err(sentence) => return inbound.tell(&click.user, click.channel.as_deref(), &sentence),
    };
    let outcome = match respond::click(&inbound.facade, &person, card, "Slack").await {
        Clicked::Say(sentence) => sentence,
        Clicked::Form(form) => {
            let template = format!("slack/{}.j2", form.stem());
            match inbound.render(&template, form.context()) {
                Some(view) => {
                    let args = json!({ "trigger_id": click.trigger_id, "view": view });
                    inbound.spawn_call("views.open", args);
                    return;
                }
                None => say::apology("opening the form"),
            }
        }
    };
    inbound.tell(&click.user, click.channel.as_deref(), &outcome);
}

/// views.update of the request modal after a resource or role was chosen.
fn refresh_request_modal(
    inbound: &Arc<Inbound>,
    action_id: &str,
    chosen: Option<String>,
    view: &View,
) {
    // A new resource forgets the role, whose list changes with it.
    let (resource, role) = match action_id {
        inputs::RESOURCE => (chosen, None),
        inputs::ROLE => (view.input("resource", inputs::RESOURCE), chosen),
        _ => return,
    };
    let world = inbound.facade.world();
    let modal = RequestModalView::new(
        &world.policy,
        resource.map(ResourceId::new).as_ref(),
        role.map(RoleId::new).as_ref(),
    );
    if let Some(rendered) = inbound.render("slack/request_modal.j2", json!({ "modal": modal })) {
        let args = json!({ "view_id": view.id, "hash": view.hash, "view": rendered });
        inbound.spawn_call("views.update", args);
    }
}
