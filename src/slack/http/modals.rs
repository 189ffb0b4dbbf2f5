//! Modal submissions (`view_submission`): the request form, the reject form (a reason), the
//! changes form (a shorter duration or a lesser role) and the extend form (more time, and
//! why). A mistake the person can fix is
//! answered with `response_action: errors` under the input it concerns, so the modal stays
//! open with what they typed; success closes it, and the outcome arrives as a DM.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::interactions::View;
use super::{Inbound, say};
use crate::chat::actions::inputs;
use crate::domain::audit::Actor;
use crate::domain::duration::Duration;
use crate::domain::ids::{GrantId, PersonId, RequestId, RoleId};
use crate::domain::request::Changes;
use crate::domain::validation::{Ask, Refusal};
use crate::engine::{Engine, EngineError};
use crate::store::Store;

/// Block id → the sentence shown under it.
type Errors = BTreeMap<String, String>;

/// The choices the request modal carries between updates.
#[derive(Debug, Default, Deserialize)]
struct Chosen {
    resource: Option<String>,
    role: Option<String>,
}

pub async fn submitted<S: Store>(
    inbound: &Arc<Inbound<S>>,
    slack_user: &str,
    view: View,
) -> Option<Value> {
    let person = match inbound.person(slack_user).await {
        Ok(person) => person,
        Err(sentence) => return Some(errors(first_block(&view), sentence)),
    };
    let callback = view.callback_id.clone();
    let outcome = inbound
        .blocking(move |engine| match callback.as_str() {
            inputs::REJECT_MODAL => reject(engine, &person, &view),
            inputs::CHANGES_MODAL => changes(engine, &person, &view),
            inputs::EXTEND_MODAL => extend(engine, &person, &view),
            inputs::REQUEST_MODAL => request(engine, &person, &view),
            _ => Ok(None),
        })
        .await;
    match outcome {
        Ok(Ok(Some(sentence))) => {
            inbound.tell(slack_user, None, &sentence);
            None
        }
        Ok(Ok(None)) => None,
        Ok(Err(errors)) => Some(json!({"response_action": "errors", "errors": errors})),
        Err(_) => Some(errors("justification", say::apology("sending the form"))),
    }
}

fn errors(block: &str, sentence: String) -> Value {
    let errors = json!({ block: sentence });
    json!({"response_action": "errors", "errors": errors})
}

fn first_block(view: &View) -> &'static str {
    match view.callback_id.as_str() {
        inputs::REJECT_MODAL => "reason",
        inputs::CHANGES_MODAL | inputs::EXTEND_MODAL => "duration",
        _ => "justification",
    }
}

fn one(block: &str, sentence: String) -> Errors {
    BTreeMap::from([(block.to_owned(), sentence)])
}

fn request_id(view: &View) -> Result<RequestId, Errors> {
    view.private_metadata.parse().map_err(|_| {
        one(
            first_block(view),
            "This form is out of date; click the button again.".to_owned(),
        )
    })
}

fn reject<S: Store>(
    engine: &Engine<S>,
    person: &PersonId,
    view: &View,
) -> Result<Option<String>, Errors> {
    let id = request_id(view)?;
    let reason = view
        .input("reason", inputs::REJECT_REASON)
        .unwrap_or_default();
    engine
        .reject(&Actor::person(person), id, &reason)
        .map(|_| Some(format!("You rejected {id}; the requester is told why.")))
        .map_err(|e| one("reason", say::refusal(&e)))
}

/// The duration typed in the `duration` block, if any; a typo is shown under that input.
fn duration_input(view: &View, input: &str) -> Result<Option<Duration>, Errors> {
    view.input("duration", input)
        .map(|text| text.parse::<Duration>())
        .transpose()
        .map_err(|e| {
            one(
                "duration",
                say::refusal(&EngineError::NotAllowed(e.to_string())),
            )
        })
}

fn changes<S: Store>(
    engine: &Engine<S>,
    person: &PersonId,
    view: &View,
) -> Result<Option<String>, Errors> {
    let id = request_id(view)?;
    let duration = duration_input(view, inputs::CHANGES_DURATION)?;
    let role = view.input("role", inputs::CHANGES_ROLE).map(RoleId::new);
    let changes = Changes { duration, role };
    if changes.is_empty() {
        let sentence =
            "Give a shorter duration or choose a lesser role; to approve as asked, use Approve.";
        return Err(one("duration", sentence.to_owned()));
    }
    engine
        .approve(&Actor::person(person), id, &changes)
        .map(|d| Some(say::approved(&d.request, d.progress.as_ref())))
        .map_err(|e| one("duration", say::refusal(&e)))
}

fn extend<S: Store>(
    engine: &Engine<S>,
    person: &PersonId,
    view: &View,
) -> Result<Option<String>, Errors> {
    let grant: GrantId = view.private_metadata.parse().map_err(|_| {
        one(
            "duration",
            "This form is out of date; click Extend again.".to_owned(),
        )
    })?;
    let Some(typed) = view.input("duration", inputs::EXTEND_DURATION) else {
        return Err(one(
            "duration",
            "Say how much more time you need, like 1h.".to_owned(),
        ));
    };
    let more = typed.parse::<Duration>().map_err(|e| {
        one(
            "duration",
            say::refusal(&EngineError::NotAllowed(e.to_string())),
        )
    })?;
    let reason = view
        .input("reason", inputs::EXTEND_REASON)
        .unwrap_or_default();
    match engine.extend(&Actor::person(person), grant, more, &reason) {
        Ok(submitted) => Ok(Some(say::submitted(&submitted))),
        Err(EngineError::Refused(refusals)) => {
            let mut errors = Errors::new();
            for refusal in &refusals.0 {
                let block = match refusal {
                    Refusal::NoJustification => "reason",
                    _ => "duration",
                };
                let sentence = say::refusal(&EngineError::NotAllowed(refusal.to_string()));
                errors
                    .entry(block.to_owned())
                    .and_modify(|s| {
                        s.push(' ');
                        s.push_str(&sentence);
                    })
                    .or_insert(sentence);
            }
            Err(errors)
        }
        Err(error) => Err(one("duration", say::refusal(&error))),
    }
}

fn request<S: Store>(
    engine: &Engine<S>,
    person: &PersonId,
    view: &View,
) -> Result<Option<String>, Errors> {
    let chosen: Chosen = serde_json::from_str(&view.private_metadata).unwrap_or_default();
    let resource = view.input("resource", inputs::RESOURCE).or(chosen.resource);
    let role = view.input("role", inputs::ROLE).or(chosen.role);
    let (Some(resource), Some(role)) = (resource, role) else {
        return Err(one(
            "resource",
            "Choose a resource, then one of its roles.".to_owned(),
        ));
    };
    let duration = duration_input(view, inputs::DURATION)?;
    let fields: BTreeMap<String, String> = view
        .state
        .values
        .keys()
        .filter_map(|block| {
            let id = block.strip_prefix("field.")?;
            let value = view.input(block, &format!("{}{id}", inputs::FIELD_PREFIX))?;
            Some((id.to_owned(), value))
        })
        .collect();
    let ask = Ask {
        requester: person.clone(),
        resource,
        role,
        duration,
        justification: view
            .input("justification", inputs::JUSTIFICATION)
            .unwrap_or_default(),
        fields,
        ..Ask::default()
    };
    let labels = field_labels(engine, &ask);
    match engine.submit(&Actor::person(person), ask) {
        Ok(submitted) => Ok(Some(say::submitted(&submitted))),
        Err(EngineError::Refused(refusals)) => {
            let mut errors = Errors::new();
            for refusal in &refusals.0 {
                let block = block_of(refusal, &labels);
                let sentence = say::refusal(&EngineError::NotAllowed(refusal.to_string()));
                errors
                    .entry(block)
                    .and_modify(|s| {
                        s.push(' ');
                        s.push_str(&sentence);
                    })
                    .or_insert(sentence);
            }
            Err(errors)
        }
        Err(error) => Err(one("justification", say::refusal(&error))),
    }
}

/// Label → field id, for the role asked for, so a field's refusal lands under its input.
fn field_labels<S: Store>(engine: &Engine<S>, ask: &Ask) -> HashMap<String, String> {
    let world = engine.world();
    let policy = &world.policy;
    policy
        .resource(&crate::domain::ids::ResourceId::new(ask.resource.as_str()))
        .and_then(|r| r.role(&RoleId::new(ask.role.as_str())))
        .and_then(|r| r.template.as_ref())
        .and_then(|t| policy.template(t))
        .map(|t| {
            t.fields
                .iter()
                .map(|f| (f.label.clone(), f.id.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// The input a refusal is about; the resource when it is about the whole request.
fn block_of(refusal: &Refusal, labels: &HashMap<String, String>) -> String {
    let field = |label: &str| labels.get(label).map(|id| format!("field.{id}"));
    match refusal {
        Refusal::UnknownRole { .. } => "role".to_owned(),
        Refusal::TooLong { .. } | Refusal::NeedsDuration { .. } => "duration".to_owned(),
        Refusal::NoJustification => "justification".to_owned(),
        Refusal::MissingField { label, .. } | Refusal::BadField { label, .. } => {
            field(label).unwrap_or_else(|| "justification".to_owned())
        }
        _ => "resource".to_owned(),
    }
}
