//! What message templates see: plain, serializable views of requests, grants, review items,
//! notices and alerts, built from domain records by pure functions. Names are resolved and
//! sentences ("Approved by Carol Diaz") written here, once, so Slack and Discord templates
//! only lay them out. Every string in a view is raw text; escaping is the renderer's job.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::directory::Directory;
use crate::domain::duration::Duration;
use crate::domain::ids::{PersonId, ResourceId, RoleId};
use crate::domain::policy::{Policy, Resource, Role};

mod buttons;
mod grant;
mod home;
mod modals;
mod notice;
mod reply;
mod request;
mod review;
pub mod samples;
#[cfg(test)]
mod tests;

pub use buttons::{ButtonView, GrantButtons, RequestButtons, ReviewButtons};
pub use grant::{GrantCardView, GrantView};
pub use home::HomeView;
pub use modals::{
    ChangesModalView, ExtendModalView, ModalFieldView, OptionView, RejectModalView,
    RequestModalView,
};
pub use notice::{
    AlertView, DigestView, NoticeView, alert_grant, alert_kind, notice_kind, notice_subject,
};
pub use reply::{EphemeralView, HelpView};
pub use request::{RequestView, change_text, waiting_for};
pub use review::CampaignItemView;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PersonView {
    pub id: String,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResourceView {
    pub id: String,
    pub name: String,
    pub kind: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RoleView {
    pub id: String,
    pub name: String,
}

/// A labelled value of a request template ("Incident ticket": "INC-4211").
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldView {
    pub label: String,
    pub value: String,
}

/// A moment: readable text, and Unix seconds for platforms that localise dates themselves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TimeView {
    /// `2027-01-01 09:00 UTC`.
    pub text: String,
    pub unix: i64,
}

impl PersonView {
    pub fn new(id: &PersonId, directory: &Directory) -> Self {
        PersonView {
            id: id.to_string(),
            name: directory
                .person(id)
                .map_or_else(|| id.to_string(), |p| p.name.clone()),
        }
    }
}

impl TimeView {
    pub fn new(at: DateTime<Utc>) -> Self {
        TimeView {
            text: at.format("%Y-%m-%d %H:%M UTC").to_string(),
            unix: at.timestamp(),
        }
    }
}

/// The resource and role as the policy names them, or their bare ids if the policy no
/// longer has them (a record outlives a policy edit).
fn resource_and_role<'p>(
    policy: &'p Policy,
    resource: &ResourceId,
    role: &RoleId,
) -> (ResourceView, RoleView, Option<(&'p Resource, &'p Role)>) {
    let found = policy
        .resource(resource)
        .and_then(|res| res.role(role).map(|r| (res, r)));
    let resource_view = match policy.resource(resource) {
        Some(r) => ResourceView {
            id: r.id.to_string(),
            name: r.name.clone(),
            kind: r.kind.clone(),
        },
        None => ResourceView {
            id: resource.to_string(),
            name: resource.to_string(),
            kind: String::new(),
        },
    };
    let role_view = RoleView {
        id: role.to_string(),
        name: found.map_or_else(|| role.to_string(), |(_, r)| r.name.clone()),
    };
    (resource_view, role_view, found)
}

fn risk_text(found: Option<(&Resource, &Role)>) -> String {
    found.map_or_else(
        || "unknown".to_owned(),
        |(res, r)| res.risk_of(r).to_string(),
    )
}

/// "Bob", "Bob and Carol", "Bob, Carol and Dora".
pub fn join_names(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

fn duration_text(duration: Option<Duration>) -> String {
    duration.map_or_else(|| "standing".to_owned(), |d| d.to_string())
}
