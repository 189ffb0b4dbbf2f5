//! `POST /slack/events`: the Events API. `url_verification` is answered with its challenge
//! (signed like everything else); `app_home_opened` publishes the person's App Home: their
//! requests, their live grants and the approvals waiting for them.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Delivery, Endpoint, Inbound};
use crate::slack::port::SlackChat;

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Envelope {
    UrlVerification {
        challenge: String,
    },
    EventCallback {
        event: Event,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
pub(super) struct Event {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    tab: Option<String>,
}

pub async fn handle(
    State(inbound): State<Arc<Inbound>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let inbound = match inbound.admit(Endpoint::Events, &headers, &body).await {
        Err(refused) => return refused,
        Ok(Delivery::Repeat) => return StatusCode::OK.into_response(),
        Ok(Delivery::First(inbound)) => inbound,
    };
    match serde_json::from_slice::<Envelope>(&body) {
        Ok(envelope) => match answer(&inbound, envelope) {
            Some(answer) => Json(answer).into_response(),
            None => StatusCode::OK.into_response(),
        },
        Err(error) => {
            tracing::warn!(%error, "an Events API body Gatehouse cannot read");
            StatusCode::OK.into_response()
        }
    }
}

/// Acts on an Events API body already admitted and read; only `url_verification` has an
/// answer. The App Home is published in the background, so this returns at once.
pub(super) fn answer(inbound: &Arc<Inbound>, envelope: Envelope) -> Option<Value> {
    match envelope {
        Envelope::UrlVerification { challenge } => Some(json!({ "challenge": challenge })),
        Envelope::EventCallback { event }
            if event.kind == "app_home_opened" && event.tab.as_deref() != Some("messages") =>
        {
            let inbound = inbound.clone();
            tokio::spawn(async move { publish_home(&inbound, &event.user).await });
            None
        }
        _ => None,
    }
}

/// Publishes the App Home through the outbound half ([`SlackChat::publish_home`]), so both
/// halves show the same tab; a Slack user Gatehouse does not know keeps Slack's default.
async fn publish_home(inbound: &Arc<Inbound>, slack_user: &str) {
    let Ok(person) = inbound.person(slack_user).await else {
        return;
    };
    let chat = SlackChat::new(inbound.slack.clone(), inbound.facade.clone());
    if let Err(error) = chat.publish_home(slack_user, &person).await {
        tracing::warn!(%error, "publishing the App Home failed");
    }
}
