//! What Gatehouse does with a typed command or a clicked button, whatever the platform: the
//! engine call, and the sentence the person reads afterwards. Adapters only deliver the
//! answer (Slack's ephemeral reply, Discord's interaction response), so `/access list` or a
//! click on Approve means the same thing, and says the same thing, on Slack and on Discord.
//! Everything here blocks on the store: adapters call it on the blocking pool.

use serde_json::{Value, json};

use super::actions::CardAction;
use super::command::ChatCommand;
use super::say;
use super::views::{ChangesModalView, ExtendModalView, RejectModalView};
use crate::domain::audit::Actor;
use crate::domain::duration::Duration;
use crate::domain::fields::fill_fields;
use crate::domain::ids::{GrantId, PersonId, RequestId, ResourceId, RoleId};
use crate::domain::request::{AccessRequest, Changes};
use crate::domain::validation::Ask;
use crate::engine::{Engine, EngineError};

/// What a command comes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// A sentence, and lines under it (a list, or one refusal per line).
    Say(String, Vec<String>),
    Help,
    OpenForm,
}

/// A form a click opens, once the clicker is known to be allowed to fill it in.
#[derive(Clone, Debug)]
pub enum Form {
    Reject(RejectModalView),
    Changes(ChangesModalView),
    Extend(ExtendModalView),
}

impl Form {
    /// The template's name without platform or extension: `reject_modal`.
    pub fn stem(&self) -> &'static str {
        match self {
            Form::Reject(_) => "reject_modal",
            Form::Changes(_) => "changes_modal",
            Form::Extend(_) => "extend_modal",
        }
    }

    /// What the template sees.
    pub fn context(&self) -> Value {
        match self {
            Form::Reject(modal) => json!({ "modal": modal }),
            Form::Changes(modal) => json!({ "modal": modal }),
            Form::Extend(modal) => json!({ "modal": modal }),
        }
    }
}

/// Runs a command that acts on the engine. `Help` and `OpenForm` are the adapter's to show.
pub fn run(engine: &Engine, person: &PersonId, command: ChatCommand) -> Answer {
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
            .map(|s| say::submitted(&s, &engine.world())),
        ChatCommand::Done(grant) => engine
            .end_early(&actor, grant)
            .map(|_| format!("{grant} is being taken back now. Thank you for giving it back.")),
        ChatCommand::Approve(id) => engine
            .approve(&actor, id, &Changes::default())
            .map(|d| say::approved(&d.request, d.progress.as_ref(), &engine.world())),
        ChatCommand::Reject { request, reason } => engine
            .reject(&actor, request, &reason)
            .map(|_| format!("You rejected {request}; the requester is told why.")),
        ChatCommand::Help => return Answer::Help,
        ChatCommand::OpenForm => return Answer::OpenForm,
    };
    match done {
        Ok(text) => Answer::Say(text, Vec::new()),
        Err(error) => refused(&error),
    }
}

/// The sentence after a click that acts at once: what happened, or why nothing did.
/// `platform` names where the click came from, for the audit trail of a flag.
pub fn act(engine: &Engine, person: &PersonId, card: CardAction, platform: &str) -> String {
    let actor = Actor::person(person);
    let done: Result<String, EngineError> = match card {
        CardAction::Approve(id) => engine
            .approve(&actor, id, &Changes::default())
            .map(|d| say::approved(&d.request, d.progress.as_ref(), &engine.world())),
        CardAction::Cancel(id) => engine
            .cancel(&actor, id)
            .map(|_| format!("{id} is cancelled.")),
        CardAction::Keep { campaign, grant } => engine
            .decide_review(&actor, campaign, grant, true)
            .map(|_| format!("{grant} is kept.")),
        CardAction::Revoke { campaign, grant } => engine
            .decide_review(&actor, campaign, grant, false)
            .map(|_| format!("{grant} is being revoked.")),
        CardAction::Confirm(grant) => engine
            .review_emergency(&actor, grant, true, "")
            .map(|_| format!("You confirmed the emergency access {grant}.")),
        CardAction::Flag(grant) => engine
            .review_emergency(&actor, grant, false, &format!("flagged from {platform}"))
            .map(|_| format!("You flagged {grant}; it is being revoked and security is told.")),
        CardAction::EndNow(grant) => engine
            .end_early(&actor, grant)
            .map(|_| format!("{grant} is being taken back now.")),
        CardAction::Reject(id) | CardAction::ApproveWithChanges(id) => {
            return format!("{id} needs a form; click the button again.");
        }
        CardAction::Extend(grant) => {
            return format!("{grant} needs a form; click the button again.");
        }
    };
    done.unwrap_or_else(|error| say::refusal(&error))
}

/// The form a click on Reject, Approve with changes or Extend opens, if this person may use
/// it now; else the sentence saying why not. `None` for a click that needs no form.
pub fn form_for(
    engine: &Engine,
    person: &PersonId,
    card: CardAction,
) -> Option<Result<Form, String>> {
    Some(match card {
        CardAction::Reject(id) => decision_form(engine, person, id, true),
        CardAction::ApproveWithChanges(id) => decision_form(engine, person, id, false),
        CardAction::Extend(grant) => extend_form(engine, person, grant),
        _ => return None,
    })
}

/// An engine refusal: one line per reason when validation gave several.
pub fn refused(error: &EngineError) -> Answer {
    match error {
        EngineError::Refused(refusals) if refusals.0.len() > 1 => Answer::Say(
            "Your request was not sent:".to_owned(),
            refusals.0.iter().map(ToString::to_string).collect(),
        ),
        other => Answer::Say(say::refusal(other), Vec::new()),
    }
}

/// `request` and `emergency`: template values taken out of the words, then submitted.
fn ask(
    engine: &Engine,
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
        Ok(submitted) => Answer::Say(say::submitted(&submitted, &world), Vec::new()),
        Err(error) => refused(&error),
    }
}

/// My pending requests and live grants.
fn list(engine: &Engine, person: &PersonId) -> Answer {
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
fn pending(engine: &Engine, person: &PersonId) -> Answer {
    let distinct = engine.world().defaults().distinct_approvers;
    let requests = match engine.store().pending_for_approver(person) {
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

/// The reject or changes form for `id`, if this person may decide it now.
fn decision_form(
    engine: &Engine,
    person: &PersonId,
    id: RequestId,
    reject: bool,
) -> Result<Form, String> {
    let world = engine.world();
    let request = match engine.store().request(id) {
        Ok(Some(stored)) => stored.value,
        Ok(None) => return Err(format!("There is no request {id}.")),
        Err(error) => return Err(say::refusal(&EngineError::Store(error))),
    };
    let distinct = world.defaults().distinct_approvers;
    if let Err(refusal) = request.check_decider(person, distinct) {
        return Err(say::refusal(&EngineError::Decision(refusal)));
    }
    let (directory, policy) = (&world.directory, &world.policy);
    Ok(if reject {
        Form::Reject(RejectModalView::new(&request, directory, policy))
    } else {
        Form::Changes(ChangesModalView::new(&request, directory, policy))
    })
}

/// The extend form for `grant`, if it is this person's and still live.
fn extend_form(engine: &Engine, person: &PersonId, id: GrantId) -> Result<Form, String> {
    let world = engine.world();
    let grant = match engine.store().grant(id) {
        Ok(Some(stored)) => stored.value,
        Ok(None) => return Err(format!("There is no grant {id}.")),
        Err(error) => return Err(say::refusal(&EngineError::Store(error))),
    };
    if &grant.person != person {
        return Err(format!(
            "{id} is not yours, so you cannot extend it; only {} can.",
            grant.person
        ));
    }
    if !grant.is_live() {
        return Err(format!(
            "{id} has ended; ask for the access again with `/access`."
        ));
    }
    Ok(Form::Extend(ExtendModalView::new(
        &grant,
        &world.directory,
        &world.policy,
        engine.now(),
    )))
}
