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

use super::{Delivery, Inbound, form, say};
use crate::chat::command::{ChatCommand, parse};
use crate::chat::views::{HelpView, RequestModalView};
use crate::domain::audit::Actor;
use crate::domain::duration::Duration;
use crate::domain::fields::fill_fields;
use crate::domain::ids::{PersonId, ResourceId, RoleId};
use crate::domain::request::{AccessRequest, Changes};
use crate::domain::validation::Ask;
use crate::engine::{Engine, EngineError};
use crate::store::Store;

/// The fields of Slack's slash-command form (or Socket Mode payload) that Gatehouse reads.
#[derive(Debug, Deserialize)]
pub(super) struct SlashCommand {
    user_id: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    trigger_id: String,
}

/// What a command comes to.
enum Answer {
    Say(String, Vec<String>),
    Help,
    OpenForm,
}

pub async fn handle<S: Store>(
    State(inbound): State<Arc<Inbound<S>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match inbound.admit(&headers, &body).await {
        Err(refused) => return refused,
        Ok(Delivery::Repeat) => return Json(inbound.already_handled()).into_response(),
        Ok(Delivery::First) => {}
    }
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
pub(super) async fn answer<S: Store>(
    inbound: &Arc<Inbound<S>>,
    command: SlashCommand,
) -> Option<Value> {
    let person = match inbound.person(&command.user_id).await {
        Ok(person) => person,
        Err(sentence) => return Some(ephemeral(inbound.reply(&sentence, Vec::new()))),
    };
    let parsed = match parse(&say::unescape(&command.text)) {
        Ok(parsed) => parsed,
        Err(error) => {
            let sentence = error.render(&inbound.slack.command);
            return Some(ephemeral(inbound.reply(&sentence, Vec::new())));
        }
    };
    let answer = match parsed {
        ChatCommand::Help => Answer::Help,
        ChatCommand::OpenForm => Answer::OpenForm,
        other => inbound
            .blocking(move |engine| run(engine, &person, other))
            .await
            .unwrap_or_else(|_| Answer::Say(say::apology("running that command"), Vec::new())),
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
fn open_form<S: Store>(inbound: &Arc<Inbound<S>>, trigger_id: &str) -> Option<Value> {
    let world = inbound.engine.world();
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

/// Runs every command that acts on the engine (blocking).
fn run<S: Store>(engine: &Engine<S>, person: &PersonId, command: ChatCommand) -> Answer {
    let actor = Actor::person(person);
    let done = match command {
        ChatCommand::Request {
            resource,
            role,
            duration,
            words,
        } => return ask(engine, person, (resource, role, duration, words), false),
        ChatCommand::Emergency {
            resource,
            role,
            duration,
            words,
        } => return ask(engine, person, (resource, role, duration, words), true),
        ChatCommand::List => return list(engine, person),
        ChatCommand::Pending => return pending(engine, person),
        ChatCommand::Cancel(id) => engine
            .cancel(&actor, id)
            .map(|_| format!("{id} is cancelled; its approvers are told.")),
        ChatCommand::Extend { grant, by, reason } => engine
            .extend(&actor, grant, by, &reason)
            .map(|s| say::submitted(&s)),
        ChatCommand::Done(grant) => engine
            .end_early(&actor, grant)
            .map(|_| format!("{grant} is being taken back now. Thank you for giving it back.")),
        ChatCommand::Approve(id) => engine
            .approve(&actor, id, &Changes::default())
            .map(|d| say::approved(&d.request, d.progress.as_ref())),
        ChatCommand::Reject { request, reason } => engine
            .reject(&actor, request, &reason)
            .map(|_| format!("You rejected {request}; the requester is told why.")),
        ChatCommand::Help | ChatCommand::OpenForm => return Answer::Help,
    };
    match done {
        Ok(text) => Answer::Say(text, Vec::new()),
        Err(error) => refused(&error),
    }
}

/// An engine refusal: one line per reason when validation gave several.
fn refused(error: &EngineError) -> Answer {
    match error {
        EngineError::Refused(refusals) if refusals.0.len() > 1 => Answer::Say(
            "Your request was not sent:".to_owned(),
            refusals.0.iter().map(ToString::to_string).collect(),
        ),
        other => Answer::Say(say::refusal(other), Vec::new()),
    }
}

/// `request` and `emergency`: template values taken out of the words, then submitted.
fn ask<S: Store>(
    engine: &Engine<S>,
    person: &PersonId,
    (resource, role, duration, words): (String, String, Option<Duration>, String),
    emergency: bool,
) -> Answer {
    let world = engine.world();
    // An unknown resource or role is left for validation to explain.
    let template = world
        .policy
        .resource(&ResourceId::new(resource.as_str()))
        .and_then(|r| r.role(&RoleId::new(role.as_str())))
        .and_then(|r| r.template.as_ref())
        .and_then(|t| world.policy.template(t));
    let filled = fill_fields(template, &words);
    let ask = Ask {
        requester: person.clone(),
        resource,
        role,
        duration,
        justification: filled.justification,
        fields: filled.fields,
        emergency,
        extends: None,
    };
    match engine.submit(&Actor::person(person), ask) {
        Ok(submitted) => Answer::Say(say::submitted(&submitted), Vec::new()),
        Err(error) => refused(&error),
    }
}

/// My pending requests and live grants.
fn list<S: Store>(engine: &Engine<S>, person: &PersonId) -> Answer {
    let store = engine.store();
    let (requests, grants) = match (store.requests_of(person), store.grants_of(person)) {
        (Ok(r), Ok(g)) => (r, g),
        (Err(e), _) | (_, Err(e)) => return refused(&EngineError::Store(e)),
    };
    let mut lines: Vec<String> = requests
        .iter()
        .filter(|r| r.is_pending())
        .map(|r| format!("{} {} — {}", r.id, say::asked(r), r.stage_summary()))
        .collect();
    lines.extend(grants.iter().filter(|g| g.is_live()).map(|g| {
        let until = g.expires_at.map_or("standing".to_owned(), |at| {
            format!("until {}", at.format("%Y-%m-%d %H:%M UTC"))
        });
        format!(
            "{} {}/{} — {}, {until}",
            g.id,
            g.resource,
            g.role,
            g.state.name()
        )
    }));
    let text = if lines.is_empty() {
        "You have no pending requests and no access right now."
    } else {
        "Your pending requests and access:"
    };
    Answer::Say(text.to_owned(), lines)
}

/// Requests whose current stage this person can decide.
fn pending<S: Store>(engine: &Engine<S>, person: &PersonId) -> Answer {
    let distinct = engine.world().defaults().distinct_approvers;
    let requests = match engine.store().requests(true, 1000) {
        Ok(requests) => requests,
        Err(e) => return refused(&EngineError::Store(e)),
    };
    let lines: Vec<String> = requests
        .iter()
        .filter(|r| r.check_decider(person, distinct).is_ok())
        .map(|r: &AccessRequest| {
            format!(
                "{}: {} asks for {} — {}",
                r.id,
                r.requester,
                say::asked(r),
                r.justification
            )
        })
        .collect();
    let text = if lines.is_empty() {
        "Nothing waits for your decision."
    } else {
        "Waiting for your decision (`approve AR-…` or `reject AR-… why`):"
    };
    Answer::Say(text.to_owned(), lines)
}
