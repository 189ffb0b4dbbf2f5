//! The same handlers as the `/slack/*` endpoints, fed payloads that arrived some other way
//! (Socket Mode) and are already authenticated by the connection they came on. Each takes
//! Slack's JSON as sent and returns the answer Slack expects for it, or `None` for an empty
//! one; what the person sees beyond that answer is sent exactly as in HTTP mode.

use std::sync::Arc;

use serde_json::Value;

use super::{Inbound, REMEMBER_DELIVERIES, commands, events, interactions, options};
use crate::engine::Facade;
use crate::slack::Slack;

impl Inbound {
    pub fn new(slack: Arc<Slack>, facade: Facade) -> Arc<Self> {
        Arc::new(Self { slack, facade })
    }

    /// Claims a delivery by its ids (see [`Facade::first_delivery`]): the handlers to do its
    /// work with the first time, `None` for a repeat. When the store cannot say, it is
    /// treated as the first (logged): the engine refuses to decide twice, and losing a
    /// command is worse.
    pub async fn first_delivery(self: &Arc<Self>, keys: Vec<String>) -> Option<Arc<Self>> {
        let until = self.facade.now() + REMEMBER_DELIVERIES;
        match self.facade.first_delivery(keys, until).await {
            Ok(Some(facade)) => Some(Arc::new(Self {
                slack: self.slack.clone(),
                facade,
            })),
            Ok(None) => None,
            Err(error) => {
                tracing::error!(%error, "cannot record a Slack delivery; handling it anyway");
                Some(self.clone())
            }
        }
    }

    /// A slash command's payload (the HTTP form's fields, as JSON): its ephemeral reply, or
    /// `None` when a modal was opened instead.
    pub async fn slash_command(self: &Arc<Self>, payload: Value) -> Option<Value> {
        match serde_json::from_value::<commands::SlashCommand>(payload) {
            Ok(command) => commands::answer(self, command).await,
            Err(error) => {
                tracing::warn!(%error, "a slash command Gatehouse cannot read");
                let text = "Gatehouse could not read that command; try again.";
                Some(commands::ephemeral(self.reply(text, Vec::new())))
            }
        }
    }

    /// What a repeated slash command is answered with.
    pub fn already_handled(&self) -> Value {
        commands::ephemeral(self.reply("That was already handled.", Vec::new()))
    }

    /// An interaction payload: clicks and modal submissions as `/slack/interactions` handles
    /// them, typeahead (`block_suggestion`) as `/slack/options` does.
    pub async fn interaction(self: &Arc<Self>, payload: Value) -> Option<Value> {
        let payload = match serde_json::from_value::<interactions::Payload>(payload) {
            Ok(payload) => payload,
            Err(error) => {
                tracing::warn!(%error, "an interaction payload Gatehouse cannot read");
                return None;
            }
        };
        match payload {
            suggestion @ interactions::Payload::BlockSuggestion { .. } => {
                let options = options::options(self, suggestion).await;
                Some(serde_json::json!({ "options": options }))
            }
            other => interactions::answer(self, other).await,
        }
    }

    /// An Events API body; App Home is published in the background.
    pub fn event(self: &Arc<Self>, body: Value) -> Option<Value> {
        match serde_json::from_value::<events::Envelope>(body) {
            Ok(envelope) => events::answer(self, envelope),
            Err(error) => {
                tracing::warn!(%error, "an Events API body Gatehouse cannot read");
                None
            }
        }
    }

    /// A slash command's reply that came too late to go with the acknowledgement: shown to
    /// `user` in `channel` with chat.postEphemeral.
    pub fn reply_late(self: &Arc<Self>, user: &str, channel: &str, reply: &Value) {
        let mut args = serde_json::json!({
            "channel": channel,
            "user": user,
            "text": reply["text"],
        });
        if let Some(blocks) = reply.get("blocks") {
            args["blocks"] = blocks.clone();
        }
        self.spawn_call("chat.postEphemeral", args);
    }
}
