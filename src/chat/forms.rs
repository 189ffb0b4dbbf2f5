//! Submitted forms, whatever the platform: the request form, the reject form (a reason), the
//! changes form (a shorter duration or a lesser role) and the extend form (more time, and
//! why). An adapter reads what was typed into a [`Submission`], keyed by the names below;
//! a mistake in what was typed comes back as [`FormError::Fix`], [`Errors`] under the same
//! names, so Slack can show each under its input and Discord can list them. A refusal that
//! no typing can fix (the request was decided meanwhile, the person may not decide it) is
//! [`FormError::Refused`]: a sentence about the whole form, never shown under an input.
//!
//! Input names: `resource`, `role`, `duration`, `justification` and `field.<id>` (one per
//! template field) in the request form; `reason` in the reject form; `duration`, `role` and
//! `reason` in the changes form; `duration` and `reason` in the extend form.

use std::collections::{BTreeMap, HashMap};

use super::say;
use crate::domain::audit::Actor;
use crate::domain::duration::Duration;
use crate::domain::ids::{GrantId, PersonId, RequestId, ResourceId, RoleId};
use crate::domain::request::{Changes, DecisionError};
use crate::domain::validation::{Ask, Refusal};
use crate::engine::{EngineError, Facade, World};

/// Input name → the sentence shown with it.
pub type Errors = BTreeMap<String, String>;

/// Why a sent form did nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FormError {
    /// Mistakes in what was typed, under the inputs to correct.
    Fix(Errors),
    /// Refused as a whole: the sentence saying why, for the person to read, not to correct.
    Refused(String),
}

impl FormError {
    fn refused(error: &EngineError) -> Self {
        FormError::Refused(say::refusal(error))
    }
}

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

/// Acts on a sent form: the sentence for the person once done, what to correct, or why not.
pub async fn submit(
    facade: &Facade,
    person: &PersonId,
    kind: FormKind,
    form: &Submission,
) -> Result<String, FormError> {
    match kind {
        FormKind::Reject => reject(facade, person, form).await,
        FormKind::Changes => changes(facade, person, form).await,
        FormKind::Extend => extend(facade, person, form).await,
        FormKind::Request => request(facade, person, form).await,
    }
}

fn one(input: &str, sentence: String) -> FormError {
    FormError::Fix(BTreeMap::from([(input.to_owned(), sentence)]))
}

fn request_id(form: &Submission) -> Result<RequestId, FormError> {
    form.about.parse().map_err(|_| {
        FormError::Refused("This form is out of date; click the button again.".to_owned())
    })
}

async fn reject(
    facade: &Facade,
    person: &PersonId,
    form: &Submission,
) -> Result<String, FormError> {
    let id = request_id(form)?;
    let Some(reason) = form.input("reason") else {
        let sentence = "Say why you reject it: the requester reads your reason.";
        return Err(one("reason", sentence.to_owned()));
    };
    facade
        .reject(Actor::person(person), id, reason)
        .await
        .map(|_| format!("You rejected {id}; the requester is told why."))
        .map_err(|e| FormError::refused(&e))
}

/// The duration typed, if any; a typo is shown under the duration input.
fn duration_input(form: &Submission) -> Result<Option<Duration>, FormError> {
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

async fn changes(
    facade: &Facade,
    person: &PersonId,
    form: &Submission,
) -> Result<String, FormError> {
    let id = request_id(form)?;
    let duration = duration_input(form)?;
    let role = form.input("role").map(RoleId::new);
    let reason = form.input("reason");
    let changes = Changes {
        duration,
        role,
        reason,
    };
    if changes.is_empty() {
        let sentence =
            "Give a shorter duration or choose a lesser role; to approve as asked, use Approve.";
        return Err(one("duration", sentence.to_owned()));
    }
    match facade.approve(Actor::person(person), id, changes).await {
        Ok(d) => Ok(say::approved(
            &d.request,
            d.progress.as_ref(),
            &facade.world(),
        )),
        Err(e @ EngineError::Decision(DecisionError::NotShorter(_))) => {
            Err(one("duration", say::refusal(&e)))
        }
        Err(e @ EngineError::Decision(DecisionError::NotLesserRole(_))) => {
            Err(one("role", say::refusal(&e)))
        }
        Err(e) => Err(FormError::refused(&e)),
    }
}

async fn extend(
    facade: &Facade,
    person: &PersonId,
    form: &Submission,
) -> Result<String, FormError> {
    let grant: GrantId = form.about.parse().map_err(|_| {
        FormError::Refused("This form is out of date; click Extend again.".to_owned())
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
    match facade
        .extend(Actor::person(person), grant, more, reason)
        .await
    {
        Ok(submitted) => Ok(say::submitted(&submitted, &facade.world())),
        Err(EngineError::Refused(refusals)) => Err(gather(refusals.0.iter().map(|r| {
            let input = match r {
                Refusal::NoJustification | Refusal::BadReason(_) => Some("reason"),
                Refusal::TooLong { .. } | Refusal::NeedsDuration { .. } => Some("duration"),
                _ => None,
            };
            (input.map(str::to_owned), r)
        }))),
        Err(error) => Err(FormError::refused(&error)),
    }
}

async fn request(
    facade: &Facade,
    person: &PersonId,
    form: &Submission,
) -> Result<String, FormError> {
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
    let labels = field_labels(&facade.world(), &ask);
    match facade.submit(Actor::person(person), ask).await {
        Ok(submitted) => Ok(say::submitted(&submitted, &facade.world())),
        Err(EngineError::Refused(refusals)) => {
            Err(gather(refusals.0.iter().map(|r| (input_of(r, &labels), r))))
        }
        Err(error) => Err(FormError::refused(&error)),
    }
}

/// Refusals gathered under their inputs, several under one input joined into one text; a
/// refusal about no input makes the whole form refused, with every reason.
fn gather<'r>(refusals: impl Iterator<Item = (Option<String>, &'r Refusal)>) -> FormError {
    let mut errors = Errors::new();
    let mut whole = Vec::new();
    for (input, refusal) in refusals {
        let sentence = say::refusal(&EngineError::NotAllowed(refusal.to_string()));
        match input {
            Some(input) => {
                errors
                    .entry(input)
                    .and_modify(|s| {
                        s.push(' ');
                        s.push_str(&sentence);
                    })
                    .or_insert(sentence);
            }
            None => whole.push(sentence),
        }
    }
    if whole.is_empty() {
        FormError::Fix(errors)
    } else {
        whole.extend(errors.into_values());
        let sentences: Vec<String> = whole.iter().map(|s| full_stop(s)).collect();
        FormError::Refused(sentences.join(" "))
    }
}

/// `sentence` ending in a full stop, for several to read one after the other.
fn full_stop(sentence: &str) -> String {
    if sentence.ends_with(['.', '?', '!']) {
        sentence.to_owned()
    } else {
        format!("{sentence}.")
    }
}

/// Label → field id, for the role asked for, so a field's refusal lands under its input.
fn field_labels(world: &World, ask: &Ask) -> HashMap<String, String> {
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

/// The input a refusal is about; none when it is about the whole request (a duplicate, a
/// conflict, nobody to approve it), which no typing fixes.
fn input_of(refusal: &Refusal, labels: &HashMap<String, String>) -> Option<String> {
    let field = |label: &str| labels.get(label).map(|id| format!("field.{id}"));
    Some(match refusal {
        Refusal::UnknownResource { .. } | Refusal::NotEligible { .. } => "resource".to_owned(),
        Refusal::UnknownRole { .. } => "role".to_owned(),
        Refusal::TooLong { .. } | Refusal::NeedsDuration { .. } => "duration".to_owned(),
        Refusal::NoJustification | Refusal::BadReason(_) => "justification".to_owned(),
        Refusal::MissingField { label, .. } | Refusal::BadField { label, .. } => {
            field(label).unwrap_or_else(|| "justification".to_owned())
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testing::{ask, engine_on, who};
    use crate::store::SledStore;

    fn changes_form(id: RequestId, inputs: &[(&str, &str)]) -> Submission {
        Submission {
            about: id.to_string(),
            inputs: inputs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Submission::default()
        }
    }

    #[tokio::test]
    async fn a_changes_form_shows_typing_mistakes_under_their_input_and_refusals_as_a_whole() {
        let (engine, _clock) = engine_on(SledStore::temporary().unwrap());
        let asked = ask("alice", "staging-db", "write", "2h");
        let id = engine.submit(&who("alice"), asked).unwrap().request.id;
        let facade = Facade::new(engine);
        let bob = PersonId::new("bob");
        let sent = async |person: &PersonId, inputs: &[(&str, &str)]| {
            let form = changes_form(id, inputs);
            submit(&facade, person, FormKind::Changes, &form).await
        };

        let longer = sent(&bob, &[("duration", "3h")]).await.unwrap_err();
        assert!(
            matches!(&longer, FormError::Fix(e) if e["duration"].contains("can only shorten")),
            "{longer:?}"
        );
        let greater = sent(&bob, &[("role", "admin")]).await.unwrap_err();
        assert!(
            matches!(&greater, FormError::Fix(e) if e.contains_key("role")),
            "{greater:?}"
        );
        let by_dan = sent(&PersonId::new("dan"), &[("duration", "1h")])
            .await
            .unwrap_err();
        assert!(
            matches!(&by_dan, FormError::Refused(s) if s.contains("not an approver")),
            "a refusal is no mistake in the duration: {by_dan:?}"
        );

        let said = sent(&bob, &[("duration", "1h"), ("reason", "an hour will do")])
            .await
            .unwrap();
        assert!(said.starts_with("You approved"), "{said}");
        let again = sent(&bob, &[("duration", "30m")]).await.unwrap_err();
        assert_eq!(
            again,
            FormError::Refused(format!(
                "You already approved {id}; it is now with Owner approval"
            ))
        );
    }
}
