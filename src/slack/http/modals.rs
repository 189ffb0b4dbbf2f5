//! Modal submissions (`view_submission`): the request, reject, changes and extend forms,
//! read into a [`Submission`] and acted on by [`crate::chat::forms`]. A mistake the person
//! can fix is answered with `response_action: errors` under the input it concerns, so the
//! modal stays open with what they typed; success, or a refusal no typing can fix, closes
//! it, and the outcome arrives as a DM.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::Inbound;
use super::interactions::View;
use crate::chat::actions::inputs;
use crate::chat::forms::{self, FormError, FormKind, Submission};

/// The choices the request modal carries between updates.
#[derive(Debug, Default, Deserialize)]
struct Chosen {
    resource: Option<String>,
    role: Option<String>,
}

pub async fn submitted(inbound: &Arc<Inbound>, slack_user: &str, view: View) -> Option<Value> {
    let kind = match view.callback_id.as_str() {
        inputs::REJECT_MODAL => FormKind::Reject,
        inputs::CHANGES_MODAL => FormKind::Changes,
        inputs::EXTEND_MODAL => FormKind::Extend,
        inputs::REQUEST_MODAL => FormKind::Request,
        _ => return None,
    };
    let first = forms::first_input(kind);
    let person = match inbound.person(slack_user).await {
        Ok(person) => person,
        Err(sentence) => return Some(errors(&BTreeMap::from([(first.to_owned(), sentence)]))),
    };
    let form = submission(kind, &view);
    match forms::submit(&inbound.facade, &person, kind, &form).await {
        // Done, or refused as a whole: the modal closes and the sentence comes as a DM;
        // only a mistake in what was typed keeps it open, under its input.
        Ok(sentence) | Err(FormError::Refused(sentence)) => {
            inbound.tell(slack_user, None, &sentence);
            None
        }
        Err(FormError::Fix(mistakes)) => Some(errors(&mistakes)),
    }
}

/// The answer that keeps the modal open with each sentence under its input (block).
fn errors(mistakes: &forms::Errors) -> Value {
    json!({"response_action": "errors", "errors": mistakes})
}

/// What was typed, by block id (the input names [`crate::chat::forms`] uses), and what the
/// modal carried in `private_metadata`.
pub(super) fn submission(kind: FormKind, view: &View) -> Submission {
    let inputs = view
        .state
        .values
        .iter()
        .filter_map(|(block, actions)| {
            let action = actions.keys().next()?;
            Some((block.clone(), view.input(block, action)?))
        })
        .collect();
    let mut form = Submission {
        inputs,
        ..Submission::default()
    };
    if kind == FormKind::Request {
        let chosen: Chosen = serde_json::from_str(&view.private_metadata).unwrap_or_default();
        form.resource = chosen.resource;
        form.role = chosen.role;
    } else {
        form.about = view.private_metadata.clone();
    }
    form
}
