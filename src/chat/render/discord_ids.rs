//! The `custom_id` of each Discord modal. Discord cannot update a modal once it is open, nor
//! carry hidden state beside it (Slack's `private_metadata`), so what a modal is about
//! travels in its `custom_id`: the modal's name from [`inputs`], then `|`-separated ids.
//!
//! | modal | `custom_id` |
//! | --- | --- |
//! | request, nothing chosen yet | `gatehouse.request` (the resource and role are inputs) |
//! | request, resource and role chosen | `gatehouse.request\|prod-db\|admin` |
//! | reject | `gatehouse.reject\|AR-12` |
//! | approve with changes | `gatehouse.changes\|AR-12` |
//! | extend | `gatehouse.extend\|G-7` |
//!
//! Discord allows 100 characters; rendering refuses a longer one rather than cut it. The
//! reject and extend ids read like the buttons that open them (`gatehouse.reject|AR-12`),
//! which is harmless: a click and a modal submission are different interactions. These
//! strings are part of open modals, so a change must keep the old ones parsing.

use crate::chat::actions::inputs;
use crate::domain::ids::{GrantId, RequestId, ResourceId, RoleId};

/// Discord's limit on a `custom_id`.
pub const MAX_CUSTOM_ID: usize = 100;

/// What a Discord modal is about, as its `custom_id` says.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ModalId {
    /// The request form; `chosen` is the resource and role picked before it opened (the
    /// form then asks only for the duration, the reason and the role's template fields).
    Request {
        chosen: Option<(ResourceId, RoleId)>,
    },
    Reject(RequestId),
    Changes(RequestId),
    Extend(GrantId),
}

impl ModalId {
    /// `gatehouse.request|prod-db|admin`, `gatehouse.reject|AR-12`, …
    pub fn custom_id(&self) -> String {
        match self {
            ModalId::Request { chosen: None } => inputs::REQUEST_MODAL.to_owned(),
            ModalId::Request {
                chosen: Some((resource, role)),
            } => format!("{}|{resource}|{role}", inputs::REQUEST_MODAL),
            ModalId::Reject(request) => format!("{}|{request}", inputs::REJECT_MODAL),
            ModalId::Changes(request) => format!("{}|{request}", inputs::CHANGES_MODAL),
            ModalId::Extend(grant) => format!("{}|{grant}", inputs::EXTEND_MODAL),
        }
    }

    /// Reads a submitted modal's `custom_id` back; `None` for anything Gatehouse did not
    /// open. A resource id cannot contain `|` (the first `|` after it ends it).
    pub fn parse(custom_id: &str) -> Option<ModalId> {
        let (name, rest) = match custom_id.split_once('|') {
            Some((name, rest)) => (name, Some(rest)),
            None => (custom_id, None),
        };
        Some(match (name, rest) {
            (inputs::REQUEST_MODAL, None) => ModalId::Request { chosen: None },
            (inputs::REQUEST_MODAL, Some(rest)) => {
                let (resource, role) = rest.split_once('|')?;
                if resource.is_empty() || role.is_empty() {
                    return None;
                }
                ModalId::Request {
                    chosen: Some((ResourceId::new(resource), RoleId::new(role))),
                }
            }
            (inputs::REJECT_MODAL, Some(id)) => ModalId::Reject(id.parse().ok()?),
            (inputs::CHANGES_MODAL, Some(id)) => ModalId::Changes(id.parse().ok()?),
            (inputs::EXTEND_MODAL, Some(id)) => ModalId::Extend(id.parse().ok()?),
            _ => return None,
        })
    }
}

/// The `custom_id` of the text input for a field of a request template:
/// `request.field.ticket`.
pub fn field_input_id(field: &str) -> String {
    format!("{}{field}", inputs::FIELD_PREFIX)
}

/// The template field a text input's `custom_id` stands for: `ticket` for
/// `request.field.ticket`.
pub fn field_of_input(custom_id: &str) -> Option<&str> {
    custom_id
        .strip_prefix(inputs::FIELD_PREFIX)
        .filter(|f| !f.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_modal() -> Vec<ModalId> {
        vec![
            ModalId::Request { chosen: None },
            ModalId::Request {
                chosen: Some(("prod-db".into(), "admin".into())),
            },
            ModalId::Reject(RequestId(12)),
            ModalId::Changes(RequestId(12)),
            ModalId::Extend(GrantId(7)),
        ]
    }

    #[test]
    fn every_modal_id_reads_back_as_the_modal_it_names() {
        for modal in every_modal() {
            let id = modal.custom_id();
            assert!(id.chars().count() <= MAX_CUSTOM_ID, "{id}");
            assert_eq!(ModalId::parse(&id), Some(modal), "{id}");
        }
    }

    #[test]
    fn modal_ids_name_the_modal_then_its_ids() {
        let ids: Vec<String> = every_modal().iter().map(ModalId::custom_id).collect();
        assert_eq!(
            ids,
            [
                "gatehouse.request",
                "gatehouse.request|prod-db|admin",
                "gatehouse.reject|AR-12",
                "gatehouse.changes|AR-12",
                "gatehouse.extend|G-7"
            ]
        );
    }

    #[test]
    fn a_custom_id_gatehouse_did_not_make_is_no_modal() {
        for id in [
            "",
            "gatehouse.reject",
            "gatehouse.reject|G-7",
            "gatehouse.extend|AR-12",
            "gatehouse.request|prod-db",
            "gatehouse.request||admin",
            "gatehouse.approve|AR-12",
            "gatehouse.sudo|AR-12",
        ] {
            assert_eq!(ModalId::parse(id), None, "{id}");
        }
    }

    #[test]
    fn a_field_input_names_its_template_field() {
        assert_eq!(field_input_id("ticket"), "request.field.ticket");
        assert_eq!(field_of_input("request.field.ticket"), Some("ticket"));
        assert_eq!(field_of_input("request.field."), None);
        assert_eq!(field_of_input(inputs::DURATION), None);
    }
}
