//! The view of an access request: who asks for what, for how long and why, where its
//! approval stands, and once decided, a sentence saying who decided and what they changed.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{
    FieldView, PersonView, RequestButtons, ResourceView, RoleView, TimeView, duration_text,
    join_names, resource_and_role, risk_text,
};
use crate::domain::directory::Directory;
use crate::domain::ids::PersonId;
use crate::domain::policy::{Policy, Role};
use crate::domain::request::{AccessRequest, Change, RequestKind, RequestState};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RequestView {
    /// `AR-12`.
    pub id: String,
    /// `access`, `extension` or `emergency`.
    pub kind: &'static str,
    /// For an extension: the grant it extends.
    pub extends: Option<String>,
    pub requester: PersonView,
    pub resource: ResourceView,
    pub role: RoleView,
    pub privileged: bool,
    pub risk: String,
    /// `2h`, or `standing`.
    pub duration: String,
    pub justification: String,
    pub fields: Vec<FieldView>,
    /// `Security review — 1 of 2 approvals`.
    pub stage: String,
    /// Who can decide the current stage: `Bob Marsh`, `Sam Patel and Sue Chen` (both are
    /// needed), `one of Sam Patel, Sue Chen, Sid Roy and 4 others`; empty once decided.
    pub waiting_for: String,
    /// 1-based; 0 when the request needs no approval.
    pub stage_number: usize,
    pub stage_count: usize,
    /// `pending`, `approved`, `rejected`, `cancelled` or `expired`.
    pub state: &'static str,
    pub decided: bool,
    /// `Approved by Carol Diaz`, `Rejected by Bob Marsh: no ticket`; none while pending.
    pub outcome: Option<String>,
    /// Everyone who approved a stage so far, in order.
    pub approvers: Vec<PersonView>,
    /// `Carol Diaz shortened the duration from 2h to 1h: one hour is enough`, each with
    /// the approver's reason when they gave one.
    pub changes: Vec<String>,
    pub submitted_at: TimeView,
    /// When a pending request lapses.
    pub expires_at: TimeView,
    /// Approve, Reject, Approve with changes and Cancel, as buttons carry them.
    pub buttons: RequestButtons,
}

impl RequestView {
    pub fn new(request: &AccessRequest, directory: &Directory, policy: &Policy) -> Self {
        let (resource, role, found) = resource_and_role(policy, &request.resource, &request.role);
        let person = |id: &PersonId| PersonView::new(id, directory);
        let approvers: Vec<PersonView> = request
            .plan
            .stages
            .iter()
            .flat_map(|s| s.approvals.iter().map(|a| person(&a.by)))
            .collect();
        let stage_count = request.plan.stages.len();
        RequestView {
            id: request.id.to_string(),
            kind: match request.kind {
                RequestKind::Access => "access",
                RequestKind::Extension { .. } => "extension",
                RequestKind::Emergency => "emergency",
            },
            extends: match request.kind {
                RequestKind::Extension { grant } => Some(grant.to_string()),
                _ => None,
            },
            requester: person(&request.requester),
            privileged: found.is_some_and(|(_, r)| r.privileged),
            risk: risk_text(found),
            duration: duration_text(request.duration),
            justification: request.justification.clone(),
            fields: template_fields(request, found.map(|(_, r)| r), policy),
            stage: request.stage_summary(),
            waiting_for: waiting_for(request, directory, policy.defaults.distinct_approvers),
            stage_number: (request.current_stage + 1).min(stage_count),
            stage_count,
            state: request.state.name(),
            decided: request.state.is_terminal(),
            outcome: outcome(request, &approvers, directory),
            changes: request
                .changes
                .iter()
                .map(|c| match &c.reason {
                    Some(reason) => format!("{}: {reason}", change_text(c, directory)),
                    None => change_text(c, directory),
                })
                .collect(),
            approvers,
            submitted_at: TimeView::new(request.submitted_at),
            expires_at: TimeView::new(request.expires_at),
            buttons: RequestButtons::new(request.id),
            resource,
            role,
        }
    }
}

/// The template's fields in the template's order, then any value the template no longer names.
fn template_fields(
    request: &AccessRequest,
    role: Option<&Role>,
    policy: &Policy,
) -> Vec<FieldView> {
    let mut values: BTreeMap<&str, &str> = request
        .fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut fields = Vec::new();
    if let Some(template) = role
        .and_then(|r| r.template.as_ref())
        .and_then(|t| policy.template(t))
    {
        for field in &template.fields {
            if let Some(value) = values.remove(field.id.as_str()) {
                fields.push(FieldView {
                    label: field.label.clone(),
                    value: value.to_owned(),
                });
            }
        }
    }
    fields.extend(values.into_iter().map(|(id, value)| FieldView {
        label: id.to_owned(),
        value: value.to_owned(),
    }));
    fields
}

fn outcome(
    request: &AccessRequest,
    approvers: &[PersonView],
    directory: &Directory,
) -> Option<String> {
    let name = |id: &PersonId| PersonView::new(id, directory).name;
    Some(match &request.state {
        RequestState::Pending => return None,
        RequestState::Approved { .. } if request.kind == RequestKind::Emergency => {
            "Granted at once as emergency access, to be reviewed".to_owned()
        }
        RequestState::Approved { .. } if approvers.is_empty() => {
            "Approved automatically by policy".to_owned()
        }
        RequestState::Approved { .. } => {
            let names: Vec<String> = approvers.iter().map(|p| p.name.clone()).collect();
            format!("Approved by {}", join_names(&names))
        }
        RequestState::Rejected { by, reason, .. } if reason.trim().is_empty() => {
            format!("Rejected by {}", name(by))
        }
        RequestState::Rejected { by, reason, .. } => {
            format!("Rejected by {}: {}", name(by), reason.trim())
        }
        RequestState::Cancelled { by, .. } => format!("Cancelled by {}", name(by)),
        RequestState::Expired { .. } => "Expired: nobody decided in time".to_owned(),
    })
}

/// How many names a list of approvers shows before it counts the rest.
const NAMES_SHOWN: usize = 3;

/// Who can still decide the current stage of a pending request, by name: everyone still
/// needed (`Bob Marsh`, `Sam Patel and Sue Chen`), or how many of whom (`one of Sam Patel,
/// Sue Chen and Sid Roy`, `2 of Ann, Bea, Cy and 4 others`). Empty once it is decided.
pub fn waiting_for(request: &AccessRequest, directory: &Directory, distinct: bool) -> String {
    let Some(stage) = request.plan.stages.get(request.current_stage) else {
        return String::new();
    };
    if request.state.is_terminal() || stage.is_complete() {
        return String::new();
    }
    let earlier = &request.plan.stages[..request.current_stage];
    let mut names: Vec<String> = stage
        .approvers
        .iter()
        .filter(|p| !stage.has_approved(p))
        .filter(|p| !(distinct && earlier.iter().any(|s| s.has_approved(p))))
        .map(|p| PersonView::new(p, directory).name)
        .collect();
    let needed = stage.quorum.saturating_sub(stage.approvals.len());
    let everyone = names.len() <= needed;
    if names.len() > NAMES_SHOWN + 1 {
        let others = names.len() - NAMES_SHOWN;
        names.truncate(NAMES_SHOWN);
        names.push(format!("{others} others"));
    }
    let listed = join_names(&names);
    match needed {
        _ if everyone => listed,
        1 => format!("one of {listed}"),
        n => format!("{n} of {listed}"),
    }
}

/// `Carol Diaz shortened the duration from 2h to 1h and changed the role from admin to read`.
pub fn change_text(change: &Change, directory: &Directory) -> String {
    let mut what = Vec::new();
    if let Some((from, to)) = change.duration {
        what.push(format!(
            "shortened the duration from {} to {to}",
            duration_text(from)
        ));
    }
    if let Some((from, to)) = &change.role {
        what.push(format!("changed the role from {from} to {to}"));
    }
    format!(
        "{} {}",
        PersonView::new(&change.by, directory).name,
        join_names(&what)
    )
}
