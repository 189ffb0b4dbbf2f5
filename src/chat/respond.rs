//! What Gatehouse does with a typed command or a clicked button, whatever the platform: the
//! engine call (one [`Facade`] call each), and the sentence the person reads afterwards.
//! Adapters only deliver the answer (Slack's ephemeral reply, Discord's interaction
//! response), so `/access list` or a click on Approve means the same thing, and says the
//! same thing, on Slack and on Discord.

use serde_json::{Value, json};

use super::actions::CardAction;
use super::command::ChatCommand;
use super::say;
use super::views::{ChangesModalView, ExtendModalView, RejectModalView};
use crate::domain::audit::Actor;
use crate::domain::duration::Duration;
use crate::domain::fields::fill_fields;
use crate::domain::grant::GrantError;
use crate::domain::ids::{GrantId, PersonId, RequestId, ResourceId, RoleId};
use crate::domain::request::{AccessRequest, Changes};
use crate::domain::validation::Ask;
use crate::engine::{EngineError, Facade};

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

/// What a click comes to: a form to open, or the sentence to show.
#[derive(Clone, Debug)]
pub enum Clicked {
    Form(Box<Form>),
    Say(String),
}

/// Runs a command that acts on the engine. `Help` and `OpenForm` are the adapter's to show.
pub async fn run(facade: &Facade, person: &PersonId, command: ChatCommand) -> Answer {
    let actor = Actor::person(person);
    let done = match command {
        ChatCommand::Request {
            resource,
            role,
            duration,
            words,
        } => return ask(facade, person, (resource, role, duration, words), false).await,
        ChatCommand::Emergency {
            resource,
            role,
            duration,
            words,
        } => return ask(facade, person, (resource, role, duration, words), true).await,
        ChatCommand::List => return list(facade, person).await,
        ChatCommand::Pending => return pending(facade, person).await,
        ChatCommand::Cancel(id) => facade
            .cancel(actor, id)
            .await
            .map(|_| format!("{id} is cancelled; its approvers are told.")),
        ChatCommand::Extend { grant, by, reason } => facade
            .extend(actor, grant, by, reason)
            .await
            .map(|s| say::submitted(&s, &facade.world())),
        ChatCommand::Done(grant) => facade
            .end_early(actor, grant)
            .await
            .map(|_| format!("{grant} is being taken back now. Thank you for giving it back.")),
        ChatCommand::Approve(id) => facade
            .approve(actor, id, Changes::default())
            .await
            .map(|d| say::approved(&d.request, d.progress.as_ref(), &facade.world())),
        ChatCommand::Reject { request, reason } => facade
            .reject(actor, request, reason)
            .await
            .map(|_| format!("You rejected {request}; the requester is told why.")),
        ChatCommand::Help => return Answer::Help,
        ChatCommand::OpenForm => return Answer::OpenForm,
    };
    match done {
        Ok(text) => Answer::Say(text, Vec::new()),
        Err(error) => refused(&error),
    }
}

/// A click on a card's button, in one engine call: the form Reject, Approve with changes or
/// Extend opens, if this person may use it now, or the sentence saying what happened (or
/// why nothing did). `platform` names where the click came from, for the audit trail of a
/// flag.
pub async fn click(
    facade: &Facade,
    person: &PersonId,
    card: CardAction,
    platform: &str,
) -> Clicked {
    let actor = Actor::person(person);
    let done: Result<String, EngineError> = match card {
        CardAction::Reject(id) => return decision_form(facade, person, id, true).await,
        CardAction::ApproveWithChanges(id) => {
            return decision_form(facade, person, id, false).await;
        }
        CardAction::Extend(grant) => return extend_form(facade, person, grant).await,
        CardAction::Approve(id) => facade
            .approve(actor, id, Changes::default())
            .await
            .map(|d| say::approved(&d.request, d.progress.as_ref(), &facade.world())),
        CardAction::Cancel(id) => facade
            .cancel(actor, id)
            .await
            .map(|_| format!("{id} is cancelled.")),
        CardAction::Keep { campaign, grant } => facade
            .decide_review(actor, campaign, grant, true)
            .await
            .map(|_| format!("{grant} is kept.")),
        CardAction::Revoke { campaign, grant } => facade
            .decide_review(actor, campaign, grant, false)
            .await
            .map(|_| format!("{grant} is being revoked.")),
        CardAction::Confirm(grant) => facade
            .review_emergency(actor, grant, true, String::new())
            .await
            .map(|_| format!("You confirmed the emergency access {grant}.")),
        CardAction::Flag(grant) => facade
            .review_emergency(actor, grant, false, format!("flagged from {platform}"))
            .await
            .map(|_| format!("You flagged {grant}; it is being revoked and security is told.")),
        CardAction::EndNow(grant) => facade
            .end_early(actor, grant)
            .await
            .map(|_| format!("{grant} is being taken back now.")),
    };
    Clicked::Say(done.unwrap_or_else(|error| say::refusal(&error)))
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
async fn ask(
    facade: &Facade,
    person: &PersonId,
    (resource, role, duration, words): (String, String, Option<Duration>, String),
    emergency: bool,
) -> Answer {
    let world = facade.world();
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
    match facade.submit(Actor::person(person), ask).await {
        Ok(submitted) => Answer::Say(say::submitted(&submitted, &world), Vec::new()),
        Err(error) => refused(&error),
    }
}

/// My pending requests and live grants.
async fn list(facade: &Facade, person: &PersonId) -> Answer {
    let (requests, grants) = match facade.overview(person.clone()).await {
        Ok(overview) => (overview.requests, overview.grants),
        Err(e) => return refused(&e),
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
async fn pending(facade: &Facade, person: &PersonId) -> Answer {
    let requests = match facade.to_decide(person.clone()).await {
        Ok(requests) => requests,
        Err(e) => return refused(&e),
    };
    let lines: Vec<String> = requests
        .iter()
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
async fn decision_form(facade: &Facade, person: &PersonId, id: RequestId, reject: bool) -> Clicked {
    let request = match facade.request_to_decide(person.clone(), id).await {
        Ok(request) => request,
        Err(EngineError::NotFound(_)) => return Clicked::Say(format!("There is no request {id}.")),
        Err(error) => return Clicked::Say(say::refusal(&error)),
    };
    let world = facade.world();
    let (directory, policy) = (&world.directory, &world.policy);
    Clicked::Form(Box::new(if reject {
        Form::Reject(RejectModalView::new(&request, directory, policy))
    } else {
        Form::Changes(ChangesModalView::new(&request, directory, policy))
    }))
}

/// The extend form for `grant`, if it is this person's and still live.
async fn extend_form(facade: &Facade, person: &PersonId, id: GrantId) -> Clicked {
    let grant = match facade.grant_to_extend(person.clone(), id).await {
        Ok(grant) => grant,
        Err(EngineError::NotFound(_)) => return Clicked::Say(format!("There is no grant {id}.")),
        Err(EngineError::Grant(GrantError::NotHolder { owner, .. })) => {
            return Clicked::Say(format!(
                "{id} is not yours, so you cannot extend it; only {owner} can."
            ));
        }
        Err(EngineError::Grant(GrantError::WrongState { .. })) => {
            return Clicked::Say(format!(
                "{id} has ended; ask for the access again with `/access`."
            ));
        }
        Err(error) => return Clicked::Say(say::refusal(&error)),
    };
    let world = facade.world();
    Clicked::Form(Box::new(Form::Extend(ExtendModalView::new(
        &grant,
        &world.directory,
        &world.policy,
        facade.now(),
    ))))
}
