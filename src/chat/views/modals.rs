//! Views of the modals: the request form, which offers the chosen resource's roles and the
//! chosen role's template fields, the forms for rejecting or approving with changes, and the
//! form asking how much longer a grant should last.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{GrantView, RequestView};
use crate::chat::render::discord_ids::ModalId;
use crate::domain::directory::Directory;
use crate::domain::grant::Grant;
use crate::domain::ids::{ResourceId, RoleId};
use crate::domain::policy::{Policy, Role};
use crate::domain::request::AccessRequest;

/// An option of a select menu.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OptionView {
    pub value: String,
    pub text: String,
}

/// An input for one field of the chosen role's request template.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModalFieldView {
    pub id: String,
    pub label: String,
    pub required: bool,
    pub hint: Option<String>,
}

/// The request modal; it is rebuilt (views.update) when a resource or role is chosen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RequestModalView {
    pub resource: Option<OptionView>,
    /// Empty until a resource is chosen.
    pub roles: Vec<OptionView>,
    pub role: Option<OptionView>,
    pub duration_hint: String,
    /// Whether the duration may be left empty (standing access is allowed).
    pub duration_optional: bool,
    pub fields: Vec<ModalFieldView>,
    /// The choices so far, as JSON, carried from one update of the modal to the next.
    pub private_metadata: String,
    /// Discord's id of the modal, carrying the resource and role once both are chosen:
    /// `gatehouse.request|prod-db|admin` (see [`ModalId`]).
    pub custom_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RejectModalView {
    pub request: RequestView,
    /// The request id.
    pub private_metadata: String,
    /// Discord's id of the modal: `gatehouse.reject|AR-12`.
    pub custom_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChangesModalView {
    pub request: RequestView,
    pub lesser_roles: Vec<OptionView>,
    pub duration_hint: String,
    pub private_metadata: String,
    /// Discord's id of the modal: `gatehouse.changes|AR-12`.
    pub custom_id: String,
}

/// "Extend": how much more time, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExtendModalView {
    pub grant: GrantView,
    /// `Like 1h or 30m; at most 8h.`: the role's maximum bounds an extension too.
    pub duration_hint: String,
    /// The grant id.
    pub private_metadata: String,
    /// Discord's id of the modal: `gatehouse.extend|G-7`.
    pub custom_id: String,
}

fn option(value: &str, text: &str) -> OptionView {
    OptionView {
        value: value.to_owned(),
        text: text.to_owned(),
    }
}

fn max_duration_hint(role: &Role, policy: &Policy) -> String {
    let max = role.max_duration(&policy.defaults);
    if role.standing {
        format!("Like 2h or 1h30m; at most {max}. Leave empty for standing access.")
    } else {
        format!("Like 2h or 1h30m; at most {max}.")
    }
}

impl RequestModalView {
    /// The modal for what has been chosen so far; unknown ids count as not chosen.
    pub fn new(policy: &Policy, resource: Option<&ResourceId>, role: Option<&RoleId>) -> Self {
        let resource = resource.and_then(|id| policy.resource(id));
        let role = resource.zip(role).and_then(|(res, id)| res.role(id));
        let fields = role
            .and_then(|r| r.template.as_ref())
            .and_then(|t| policy.template(t))
            .map(|t| {
                t.fields
                    .iter()
                    .map(|f| ModalFieldView {
                        id: f.id.clone(),
                        label: f.label.clone(),
                        required: f.required,
                        hint: f.pattern.as_ref().map(|p| format!("Must match {p}")),
                    })
                    .collect()
            })
            .unwrap_or_default();
        RequestModalView {
            resource: resource.map(|r| option(r.id.as_str(), &r.name)),
            roles: resource
                .map(|r| {
                    r.roles
                        .iter()
                        .map(|x| option(x.id.as_str(), &x.name))
                        .collect()
                })
                .unwrap_or_default(),
            role: role.map(|r| option(r.id.as_str(), &r.name)),
            duration_hint: role.map_or_else(
                || "Like 2h or 1h30m.".to_owned(),
                |r| max_duration_hint(r, policy),
            ),
            duration_optional: role.is_some_and(|r| r.standing),
            fields,
            private_metadata: serde_json::json!({
                "resource": resource.map(|r| r.id.as_str()),
                "role": role.map(|r| r.id.as_str()),
            })
            .to_string(),
            custom_id: ModalId::Request {
                chosen: resource
                    .zip(role)
                    .map(|(res, r)| (res.id.clone(), r.id.clone())),
            }
            .custom_id(),
        }
    }
}

impl RejectModalView {
    pub fn new(request: &AccessRequest, directory: &Directory, policy: &Policy) -> Self {
        RejectModalView {
            request: RequestView::new(request, directory, policy),
            private_metadata: request.id.to_string(),
            custom_id: ModalId::Reject(request.id).custom_id(),
        }
    }
}

impl ChangesModalView {
    pub fn new(request: &AccessRequest, directory: &Directory, policy: &Policy) -> Self {
        let lesser_roles = policy
            .resource(&request.resource)
            .map(|res| {
                res.roles
                    .iter()
                    .take_while(|r| r.id != request.role)
                    .map(|r| option(r.id.as_str(), &r.name))
                    .collect()
            })
            .unwrap_or_default();
        ChangesModalView {
            request: RequestView::new(request, directory, policy),
            lesser_roles,
            duration_hint: match request.duration {
                Some(d) => format!("Less than {d}, like 1h or 30m."),
                None => {
                    "Any duration, like 8h, turns standing access into temporary access.".to_owned()
                }
            },
            private_metadata: request.id.to_string(),
            custom_id: ModalId::Changes(request.id).custom_id(),
        }
    }
}

impl ExtendModalView {
    pub fn new(grant: &Grant, directory: &Directory, policy: &Policy, now: DateTime<Utc>) -> Self {
        let role = policy
            .resource(&grant.resource)
            .and_then(|r| r.role(&grant.role));
        ExtendModalView {
            grant: GrantView::new(grant, directory, policy, now),
            duration_hint: match role {
                Some(role) => format!(
                    "Like 1h or 30m; at most {}.",
                    role.max_duration(&policy.defaults)
                ),
                None => "Like 1h or 30m.".to_owned(),
            },
            private_metadata: grant.id.to_string(),
            custom_id: ModalId::Extend(grant.id).custom_id(),
        }
    }
}
