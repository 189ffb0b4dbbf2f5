//! Slack's HTTP mode, inbound: `POST /slack/commands`, `/slack/interactions`, `/slack/events`
//! and `/slack/options`. Every request is authenticated first (the signing secret over the raw
//! body, against the engine's clock) and refused with a bare 401 otherwise; then Slack's
//! retries and replays are recognised by their delivery key and answered without acting
//! again. What is left is parsed into typed commands and clicks and handed to the engine's
//! [`Facade`]; what people see comes back as ephemeral replies, modals and DMs. Slack wants
//! an answer within 3 s, so calls back to Slack that need not shape the answer are spawned.

mod commands;
mod events;
#[cfg(any(test, feature = "testing"))]
pub mod fuzz;
mod interactions;
mod modals;
mod options;
mod parsed;

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::TimeDelta;
use serde::de::DeserializeOwned;
use serde_json::Value;
use slack_morphism::errors::SlackClientError;

use super::Slack;
use super::people::Resolved;
use super::verify::{Endpoint, delivery_keys, verify};
use crate::domain::ids::PersonId;
use crate::engine::Facade;
use crate::http::{BodyLimit, read_body};

/// How long a delivery key is remembered: well past Slack's last retry.
const REMEMBER_DELIVERIES: TimeDelta = TimeDelta::hours(1);

/// A slash command's form: a few ids and the text typed (Slack caps it at a few thousand
/// characters), percent-encoded.
const COMMAND_BODY: BodyLimit = BodyLimit::kib(64);
/// An interaction's form: its JSON percent-encoded, with the message or view clicked in
/// (a view is at most 100 blocks).
const PAYLOAD_BODY: BodyLimit = BodyLimit::kib(1024);
/// An Events API body: JSON, with the Home view for `app_home_opened`.
const EVENT_BODY: BodyLimit = BodyLimit::kib(512);

/// What every Slack handler shares.
pub struct Inbound {
    slack: Arc<Slack>,
    facade: Facade,
}

/// The Slack endpoints, ready to be merged into the server's router.
pub fn router(slack: Arc<Slack>, facade: Facade) -> Router {
    let state = Arc::new(Inbound { slack, facade });
    let up_to = |limit| from_fn_with_state(limit, read_body);
    Router::new()
        .route(
            "/slack/commands",
            post(commands::handle).layer(up_to(COMMAND_BODY)),
        )
        .route(
            "/slack/interactions",
            post(interactions::handle).layer(up_to(PAYLOAD_BODY)),
        )
        .route(
            "/slack/events",
            post(events::handle).layer(up_to(EVENT_BODY)),
        )
        .route(
            "/slack/options",
            post(options::handle).layer(up_to(PAYLOAD_BODY)),
        )
        .with_state(state)
}

/// Whether an authenticated request is new or one already handled.
enum Delivery {
    /// New: the handlers to do its work with, whose commits record its delivery ids.
    First(Arc<Inbound>),
    Repeat,
}

impl Inbound {
    /// Checks the signature and freshness, that the body is of the type this endpoint reads,
    /// then whether this delivery was seen before. `Err` is the answer to give instead: 401
    /// for anything not from Slack and for a replay (a repeat that is not one of Slack's
    /// announced retries), 415 for a body of another type.
    async fn admit(
        self: &Arc<Self>,
        endpoint: Endpoint,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<Delivery, Response> {
        let secret = self.slack.signing_secret.as_ref().map(|s| s.expose());
        let now = self.facade.now();
        let checked = verify(
            secret.unwrap_or_default().as_bytes(),
            headers,
            body,
            now.timestamp(),
        );
        if let Err(rejection) = checked {
            tracing::warn!(%rejection, "refused a request to /slack/*");
            return Err(StatusCode::UNAUTHORIZED.into_response());
        }
        if !endpoint.takes(headers) {
            let declared = headers
                .get(CONTENT_TYPE)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            tracing::warn!(
                ?endpoint,
                content_type = declared.as_deref().unwrap_or("none"),
                expected = endpoint.media_type(),
                "refused a signed request to /slack/* whose Content-Type is not what Slack sends there"
            );
            return Err(StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response());
        }
        let keys = delivery_keys(endpoint, body);
        if keys.is_empty() {
            return Ok(Delivery::First(self.clone()));
        }
        let until = now + REMEMBER_DELIVERIES;
        // Every key is recorded, so that a later replay matches on any of them.
        match self.facade.first_delivery(keys, until).await {
            Ok(Some(facade)) => Ok(Delivery::First(Arc::new(Inbound {
                slack: self.slack.clone(),
                facade,
            }))),
            // Slack retries only Events API deliveries, and says so in X-Slack-Retry-Num; any
            // other repeat of a signed request is a replay of a captured one.
            Ok(None) if headers.contains_key("x-slack-retry-num") => Ok(Delivery::Repeat),
            Ok(None) => {
                tracing::warn!("refused a replayed request to /slack/*");
                Err(StatusCode::UNAUTHORIZED.into_response())
            }
            Err(error) => {
                tracing::error!(%error, "cannot record a Slack delivery; Slack will retry");
                Err(StatusCode::INTERNAL_SERVER_ERROR.into_response())
            }
        }
    }

    /// The person behind a Slack user, or the sentence telling them how to get mapped.
    async fn person(&self, slack_user: &str) -> Result<PersonId, String> {
        let world = self.facade.world();
        match self
            .slack
            .people
            .resolve(&world.directory, slack_user)
            .await
        {
            Ok(Resolved::Person(id)) => Ok(id),
            Ok(Resolved::Unknown { slack_user, email }) => {
                Err(Resolved::unknown_message(&slack_user, email.as_deref()))
            }
            Err(error) => {
                tracing::error!(%error, slack_user, "users.info failed");
                Err(crate::chat::say::apology("looking you up in Slack"))
            }
        }
    }

    /// Calls a Web API method with JSON arguments, exactly as given (templates already
    /// produced Slack's JSON, so nothing is lost in a typed round trip).
    async fn call(&self, method: &str, args: Value) -> Result<Value, SlackClientError> {
        let session = self.slack.client.open_session(&self.slack.token);
        session
            .http_session_api
            .http_post(method, &args, None)
            .await
    }

    /// [`Inbound::call`] in the background, for calls the answer to Slack need not wait for;
    /// failures are logged.
    fn spawn_call(self: &Arc<Self>, method: &'static str, args: Value) {
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(error) = this.call(method, args).await {
                tracing::warn!(%error, method, "a Slack call for an inbound request failed");
            }
        });
    }

    /// Tells one person something only they see: ephemeral in `channel` when there is one,
    /// else a DM (App Home clicks and modal submissions have no channel).
    fn tell(self: &Arc<Self>, slack_user: &str, channel: Option<&str>, text: &str) {
        let reply = self.reply(text, Vec::new());
        let mut args = serde_json::json!({
            "text": reply["text"],
            "blocks": reply["blocks"],
        });
        match channel.filter(|c| !c.is_empty()) {
            Some(channel) => {
                args["channel"] = channel.into();
                args["user"] = slack_user.into();
                self.spawn_call("chat.postEphemeral", args);
            }
            None => {
                args["channel"] = slack_user.into();
                self.spawn_call("chat.postMessage", args);
            }
        }
    }

    /// `slack/ephemeral.j2` with a sentence and optional lines: `{"text", "blocks"}`.
    fn reply(&self, text: &str, lines: Vec<String>) -> Value {
        let view = crate::chat::views::EphemeralView {
            text: text.to_owned(),
            lines,
            blocks: Vec::new(),
        };
        let rendered = self
            .slack
            .templates
            .render("slack/ephemeral.j2", serde_json::json!({ "reply": view }));
        rendered.unwrap_or_else(|error| {
            tracing::error!(%error, "the ephemeral template failed; sending plain text");
            serde_json::json!({ "text": text })
        })
    }

    /// Renders a template, logging a failure (which a check at start-up should have caught).
    fn render(&self, name: &str, context: Value) -> Option<Value> {
        match self.slack.templates.render(name, context) {
            Ok(value) => Some(value),
            Err(error) => {
                tracing::error!(%error, template = name, "a Slack template failed to render");
                None
            }
        }
    }
}

/// Reads an `application/x-www-form-urlencoded` body already authenticated as bytes.
async fn form<T: DeserializeOwned>(body: Bytes) -> Option<T> {
    let request = Request::builder()
        .method("POST")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .ok()?;
    axum::Form::<T>::from_request(request, &())
        .await
        .ok()
        .map(|axum::Form(value)| value)
}
