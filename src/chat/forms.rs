//! Submitted forms, whatever the platform: the request form, the reject form (a reason), the
//! changes form (a shorter duration or a lesser role) and the extend form (more time, and
//! why). An adapter reads what was typed into a [`Submission`], keyed by the names below;
//! a mistake the person can fix comes back as [`Errors`] under the same names, so Slack can
//! show each under its input and Discord can list them.
//!
//! Input names: `resource`, `role`, `duration`, `justification` and `field.<id>` (one per
//! template field) in the request form; `reason` in the reject form; `duration` and `role`
//! in the changes form; `duration` and `reason` in the extend form.

use std::collections::{BTreeMap, HashMap};

use super::say;
use crate::domain::audit::Actor;
use crate::domain::duration::Duration;
use crate::domain::ids::{GrantId, PersonId, RequestId, ResourceId, RoleId};
use crate::domain::request::Changes;
use crate::domain::validation::{Ask, Refusal};
use crate::engine::{Engine, EngineError};
use crate::store::Store;

/// Input name → the sentence shown with it.
pub type Errors = BTreeMap<String, String>;

/// Which form was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormKind {
    Request,
    Reject,
    Changes,
    Extend,
}

/// A sent form: which, what it is about, and what was typed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Submission {
    /// The request (reject, changes) or grant (extend) id the form was opened for, as the
    /// form carried it; a mangled one makes the form out of date.
    pub about: String,
    /// The request form's resource and role, when chosen before the form was shown.
    pub resource: Option<String>,
    pub role: Option<String>,
    /// Input name → what was typed, trimmed; empty inputs are absent.
    pub inputs: BTreeMap<String, String>,
}

impl Submission {
    fn input(&self, name: &str) -> Option<String> {
        self.inputs
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }
}

/// The input a mistake is shown under when nothing more precise is known.
pub fn first_input(kind: FormKind) -> &'static str {
    match kind {
        FormKind::Reject => "reason",
        FormKind::Changes | FormKind::Extend => "duration",
        FormKind::Request => "justification",
    }
}

/// Acts on a sent form: the sentence for the person once done, or what to correct.
pub fn submit<S: Store>(
    engine: &Engine<S>,
    person: &PersonId,
    kind: FormKind,
    form: &Submission,
) -> Result<String, Errors> {
    match kind {
        FormKind::Reject => reject(engine, person, form),
        FormKind::Changes => changes(engine, person, form),
        FormKind::Extend => extend(engine, person, form),
        FormKind::Request => request(engine, person, form),
    }
}

fn one(input: &str, sentence: String) -> Errors {
    BTreeMap::from([(input.to_owned(), sentence)])
}

fn request_id(kind: FormKind, form: &Submission) -> Result<RequestId, Errors> {
    form.about.parse().map_err(|_| {
        one(
            first_input(kind),
            "This form is out of date; click the button again.".to_owned(),
        )
    })
}

fn reject<S: Store>(
    engine: &Engine<S>,
    person: &PersonId,
    form: &Submission,
) -> Result<String, Errors> {
    let id = request_id(FormKind::Reject, form)?;
    let reason = form.input("reason").unwrap_or_default();
    engine
        .reject(&Actor::person(person), id, &reason)
        .map(|_| format!("You rejected {id}; the requester is told why."))
        .map_err(|e| one("reason", say::refusal(&e)))
}

/// The duration typed, if any; a typo is shown under the duration input.
fn duration_input(form: &Submission) -> Result<Option<Duration>, Errors> {
    form.input("duration")
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
    form: &Submission,
) -> Result<String, Errors> {
    let id = request_id(FormKind::Changes, form)?;
    let duration = duration_input(form)?;
    let role = form.input("role").map(RoleId::new);
    let changes = Changes { duration, role };
    if changes.is_empty() {
        let sentence =
            "Give a shorter duration or choose a lesser role; to approve as asked, use Approve.";
        return Err(one("duration", sentence.to_owned()));
    }
    engine
        .approve(&Actor::person(person), id, &changes)
        .map(|d| say::approved(&d.request, d.progress.as_ref()))
        .map_err(|e| one("duration", say::refusal(&e)))
}

fn extend<S: Store>(
    engine: &Engine<S>,
    person: &PersonId,
    form: &Submission,
) -> Result<String, Errors> {
    let grant: GrantId = form.about.parse().map_err(|_| {
        one(
            "duration",
            "This form is out of date; click Extend again.".to_owned(),
        )
    })?;
    let Some(typed) = form.input("duration") else {
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
    let reason = form.input("reason").unwrap_or_default();
    match engine.extend(&Actor::person(person), grant, more, &reason) {
        Ok(submitted) => Ok(say::submitted(&submitted)),
        Err(EngineError::Refused(refusals)) => Err(gather(refusals.0.iter().map(|r| {
            let input = match r {
                Refusal::NoJustification | Refusal::BadReason(_) => "reason",
                _ => "duration",
            };
            (input.to_owned(), r)
        }))),
        Err(error) => Err(one("duration", say::refusal(&error))),
    }
}

fn request<S: Store>(
    engine: &Engine<S>,
    person: &PersonId,
    form: &Submission,
) -> Result<String, Errors> {
    let resource = form.input("resource").or_else(|| form.resource.clone());
    let role = form.input("role").or_else(|| form.role.clone());
    let (Some(resource), Some(role)) = (resource, role) else {
        return Err(one(
            "resource",
            "Choose a resource, then one of its roles.".to_owned(),
        ));
    };
    let duration = duration_input(form)?;
    let fields: BTreeMap<String, String> = form
        .inputs
        .keys()
        .filter_map(|name| {
            let id = name.strip_prefix("field.")?;
            Some((id.to_owned(), form.input(name)?))
        })
        .collect();
    let ask = Ask {
        requester: person.clone(),
        resource,
        role,
        duration,
        justification: form.input("justification").unwrap_or_default(),
        fields,
        ..Ask::default()
    };
    let labels = field_labels(engine, &ask);
    match engine.submit(&Actor::person(person), ask) {
        Ok(submitted) => Ok(say::submitted(&submitted)),
        Err(EngineError::Refused(refusals)) => {
            Err(gather(refusals.0.iter().map(|r| (input_of(r, &labels), r))))
        }
        Err(error) => Err(one("justification", say::refusal(&error))),
    }
}

/// Refusals gathered under their inputs, several under one input joined into one text.
fn gather<'r>(refusals: impl Iterator<Item = (String, &'r Refusal)>) -> Errors {
    let mut errors = Errors::new();
    for (input, refusal) in refusals {
        let sentence = say::refusal(&EngineError::NotAllowed(refusal.to_string()));
        errors
            .entry(input)
            .and_modify(|s| {
                s.push(' ');
                s.push_str(&sentence);
            })
            .or_insert(sentence);
    }
    errors
}

/// Label → field id, for the role asked for, so a field's refusal lands under its input.
fn field_labels<S: Store>(engine: &Engine<S>, ask: &Ask) -> HashMap<String, String> {
    let world = engine.world();
    let policy = &world.policy;
    policy
        .resource(&ResourceId::new(ask.resource.as_str()))
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
fn input_of(refusal: &Refusal, labels: &HashMap<String, String>) -> String {
    let field = |label: &str| labels.get(label).map(|id| format!("field.{id}"));
    match refusal {
        Refusal::UnknownRole { .. } => "role".to_owned(),
        Refusal::TooLong { .. } | Refusal::NeedsDuration { .. } => "duration".to_owned(),
        Refusal::NoJustification | Refusal::BadReason(_) => "justification".to_owned(),
        Refusal::MissingField { label, .. } | Refusal::BadField { label, .. } => {
            field(label).unwrap_or_else(|| "justification".to_owned())
        }
        _ => "resource".to_owned(),
    }
}
