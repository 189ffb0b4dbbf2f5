//! `POST /slack/commands`: the slash command. Its text is read into a [`ChatCommand`], run
//! as the person behind the Slack user, and answered with an ephemeral reply in the same
//! HTTP response; `/access` alone opens the request modal instead.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Delivery, Endpoint, Inbound, form};
use crate::chat::command::{ChatCommand, parse};
use crate::chat::respond::{self, Answer};
use crate::chat::say;
use crate::chat::views::{HelpView, RequestModalView};

/// The fields of Slack's slash-command form (or Socket Mode payload) that Gatehouse reads.
#[derive(Debug, Deserialize)]
pub(super) struct SlashCommand {
    pub(super) user_id: String,
    #[serde(default)]
    pub(super) text: String,
    #[serde(default)]
    pub(super) trigger_id: String,
}

pub async fn handle(
    State(inbound): State<Arc<Inbound>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let inbound = match inbound.admit(Endpoint::Commands, &headers, &body).await {
        Err(refused) => return refused,
        Ok(Delivery::Repeat) => return Json(inbound.already_handled()).into_response(),
        Ok(Delivery::First(inbound)) => inbound,
    };
    let Some(command) = form::<SlashCommand>(body).await else {
        let text = "Gatehouse could not read that command; try again.";
        return Json(ephemeral(inbound.reply(text, Vec::new()))).into_response();
    };
    match answer(&inbound, command).await {
        Some(reply) => Json(reply).into_response(),
        None => StatusCode::OK.into_response(),
    }
}

/// The answer to a slash command already admitted and read: its ephemeral reply, or `None`
/// when the answer is a modal opened in the background.
pub(super) async fn answer(inbound: &Arc<Inbound>, command: SlashCommand) -> Option<Value> {
    let person = match inbound.person(&command.user_id).await {
        Ok(person) => person,
        Err(sentence) => return Some(ephemeral(inbound.reply(&sentence, Vec::new()))),
    };
    let parsed = match parse(&unescape(&command.text)) {
        Ok(parsed) => parsed,
        Err(error) => {
            let sentence = error.render(&inbound.slack.command);
            return Some(ephemeral(inbound.reply(&sentence, Vec::new())));
        }
    };
    let answer = match parsed {
        ChatCommand::Help => Answer::Help,
        ChatCommand::OpenForm => Answer::OpenForm,
        other => respond::run(&inbound.facade, &person, other).await,
    };
    match answer {
        Answer::Say(text, lines) => Some(ephemeral(inbound.reply(&text, lines))),
        Answer::Help => {
            let help = HelpView {
                command: inbound.slack.command.clone(),
            };
            let rendered = inbound.render("slack/help.j2", json!({ "help": help }));
            let fallback = || {
                let text = crate::chat::command::help(&inbound.slack.command);
                inbound.reply(&text, Vec::new())
            };
            Some(ephemeral(rendered.unwrap_or_else(fallback)))
        }
        Answer::OpenForm => open_form(inbound, &command.trigger_id),
    }
}

/// Opens the request modal; the answer to the command itself is empty.
fn open_form(inbound: &Arc<Inbound>, trigger_id: &str) -> Option<Value> {
    let world = inbound.facade.world();
    let modal = RequestModalView::new(&world.policy, None, None);
    match inbound.render("slack/request_modal.j2", json!({ "modal": modal })) {
        Some(view) => {
            let args = json!({ "trigger_id": trigger_id, "view": view });
            inbound.spawn_call("views.open", args);
            None
        }
        None => Some(ephemeral(
            inbound.reply(&say::apology("opening the form"), Vec::new()),
        )),
    }
}

/// A slash command's ephemeral answer.
pub(super) fn ephemeral(mut reply: Value) -> Value {
    reply["response_type"] = "ephemeral".into();
    reply
}

/// Slack escapes `&`, `<` and `>` in a slash command's text; people typed the characters.
pub(super) fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_escapes_are_undone_ampersand_last() {
        assert_eq!(unescape("a &lt;b&gt; &amp;lt;"), "a <b> &lt;");
    }
}
