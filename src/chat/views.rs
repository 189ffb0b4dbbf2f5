//! What message templates see: plain, serializable views of requests, grants, review items,
//! notices and alerts, built from domain records by pure functions. Names are resolved and
//! sentences ("Approved by Carol Diaz") written here, once, so Slack and Discord templates
//! only lay them out. Every string in a view is raw text; escaping is the renderer's job.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::directory::Directory;
use crate::domain::duration::Duration;
use crate::domain::effect::{Alert, Notice};
use crate::domain::grant::{Grant, GrantState, ReviewOutcome};
use crate::domain::ids::{GrantId, PersonId, RequestId, ResourceId, RoleId};
use crate::domain::policy::{Policy, Resource, Role};
use crate::domain::request::{AccessRequest, Change, RequestKind, RequestState};
use crate::domain::review::{Campaign, ItemDecision, ReviewItem};

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
    /// `Carol Diaz shortened the duration from 2h to 1h`.
    pub changes: Vec<String>,
    pub submitted_at: TimeView,
    /// When a pending request lapses.
    pub expires_at: TimeView,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GrantView {
    /// `G-7`.
    pub id: String,
    pub request: String,
    pub person: PersonView,
    pub resource: ResourceView,
    pub role: RoleView,
    pub privileged: bool,
    pub risk: String,
    pub emergency: bool,
    /// `provisioning`, `active`, `revoking`, `revoked` or `failed`.
    pub state: &'static str,
    /// Whether the person holds (or is about to hold) the access.
    pub live: bool,
    pub granted_at: TimeView,
    /// None for standing access.
    pub expires_at: Option<TimeView>,
    /// What is left, like `45m`; none for standing or past access.
    pub expires_in: Option<String>,
    pub review_pending: bool,
    pub review_due: Option<TimeView>,
    /// `Confirmed by Sam Patel`, `Flagged by Sam Patel: not an incident`.
    pub review_outcome: Option<String>,
    /// How it ended: `expired`, `revoked by sue: left the team`, a provisioning error.
    pub ended: Option<String>,
}

/// One grant of an access-review campaign, as its reviewers see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CampaignItemView {
    /// `RC-3`.
    pub campaign: String,
    /// The `[[reviews]]` entry that started it.
    pub review: String,
    pub deadline: TimeView,
    pub grant: GrantView,
    pub reviewers: Vec<PersonView>,
    pub decided: bool,
    /// `Kept by Carol Diaz`, `Revoked: nobody kept it by the deadline`.
    pub outcome: Option<String>,
}

/// A direct message to a person; `kind` is the notice's name (`expiry_warning`, …).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NoticeView {
    pub kind: &'static str,
    pub request: Option<RequestView>,
    pub grant: Option<GrantView>,
    pub by: Option<PersonView>,
    pub reason: Option<String>,
    pub error: Option<String>,
    pub expires_at: Option<TimeView>,
}

/// A message to the security channel; `kind` is the alert's name (`sod_blocked`, …).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AlertView {
    pub kind: &'static str,
    pub grant: Option<GrantView>,
    pub person: Option<PersonView>,
    pub by: Option<PersonView>,
    pub rule: Option<String>,
    /// What the blocked request asked for.
    pub request: Option<String>,
    pub error: Option<String>,
    /// For `person_offboarded`: how many grants are being taken back.
    pub grants: Option<usize>,
    pub digest: Option<DigestView>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DigestView {
    pub pending_requests: usize,
    pub live_grants: usize,
    pub emergency_unreviewed: usize,
    pub revocations_failing: usize,
}

/// The App Home of one person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HomeView {
    pub person: PersonView,
    pub requests: Vec<RequestView>,
    pub grants: Vec<GrantView>,
    /// Requests whose current stage waits for this person.
    pub approvals: Vec<RequestView>,
}

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
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RejectModalView {
    pub request: RequestView,
    /// The request id.
    pub private_metadata: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChangesModalView {
    pub request: RequestView,
    pub lesser_roles: Vec<OptionView>,
    pub duration_hint: String,
    pub private_metadata: String,
}

/// A reply only its reader sees: a sentence, optional bullet lines, optional blocks.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EphemeralView {
    pub text: String,
    pub lines: Vec<String>,
    /// Already-built platform blocks, appended as they are.
    pub blocks: Vec<serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HelpView {
    /// The slash command, `/access`.
    pub command: String,
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
            stage_number: (request.current_stage + 1).min(stage_count),
            stage_count,
            state: request.state.name(),
            decided: request.state.is_terminal(),
            outcome: outcome(request, &approvers, directory),
            changes: request
                .changes
                .iter()
                .map(|c| change_text(c, directory))
                .collect(),
            approvers,
            submitted_at: TimeView::new(request.submitted_at),
            expires_at: TimeView::new(request.expires_at),
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

fn change_text(change: &Change, directory: &Directory) -> String {
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

impl GrantView {
    pub fn new(grant: &Grant, directory: &Directory, policy: &Policy, now: DateTime<Utc>) -> Self {
        let (resource, role, found) = resource_and_role(policy, &grant.resource, &grant.role);
        let name = |id: &PersonId| PersonView::new(id, directory).name;
        let expires_in = grant
            .expires_at
            .filter(|at| *at > now && grant.is_live())
            .map(|at| remaining(at - now));
        GrantView {
            id: grant.id.to_string(),
            request: grant.request.to_string(),
            person: PersonView::new(&grant.person, directory),
            privileged: found.is_some_and(|(_, r)| r.privileged),
            risk: risk_text(found),
            emergency: grant.emergency,
            state: grant.state.name(),
            live: grant.is_live(),
            granted_at: TimeView::new(grant.granted_at),
            expires_at: grant.expires_at.map(TimeView::new),
            expires_in,
            review_pending: grant.review_pending(),
            review_due: grant.review.as_ref().map(|r| TimeView::new(r.due)),
            review_outcome: grant.review.as_ref().and_then(|r| r.outcome.as_ref()).map(
                |o| match o {
                    ReviewOutcome::Confirmed { by, .. } => format!("Confirmed by {}", name(by)),
                    ReviewOutcome::Flagged { by, note, .. } if note.trim().is_empty() => {
                        format!("Flagged by {}", name(by))
                    }
                    ReviewOutcome::Flagged { by, note, .. } => {
                        format!("Flagged by {}: {}", name(by), note.trim())
                    }
                },
            ),
            ended: match &grant.state {
                GrantState::Revoking { reason, .. } | GrantState::Revoked { reason, .. } => {
                    Some(reason.to_string())
                }
                GrantState::Failed { error, .. } => Some(format!("provisioning failed: {error}")),
                GrantState::Provisioning | GrantState::Active { .. } => None,
            },
            resource,
            role,
        }
    }
}

/// Time left, to the minute: `1h30m`, `45m`; `1m` when less than a minute is left.
fn remaining(left: chrono::TimeDelta) -> String {
    let secs = u64::try_from(left.num_seconds()).unwrap_or(0);
    Duration::from_secs((secs - secs % 60).max(60)).to_string()
}

impl CampaignItemView {
    /// `item` is one of `campaign.items`, and `grant` the grant it is about.
    pub fn new(
        campaign: &Campaign,
        item: &ReviewItem,
        grant: &Grant,
        directory: &Directory,
        policy: &Policy,
        now: DateTime<Utc>,
    ) -> Self {
        let name = |id: &PersonId| PersonView::new(id, directory).name;
        let outcome = item.decision.as_ref().map(|d| match d {
            ItemDecision::Kept { by: Some(by), .. } => format!("Kept by {}", name(by)),
            ItemDecision::Kept { by: None, .. } => {
                "Kept: nobody decided by the deadline".to_owned()
            }
            ItemDecision::Revoked { by: Some(by), .. } => format!("Revoked by {}", name(by)),
            ItemDecision::Revoked { by: None, .. } => {
                "Revoked: nobody kept it by the deadline".to_owned()
            }
        });
        CampaignItemView {
            campaign: campaign.id.to_string(),
            review: campaign.review.clone(),
            deadline: TimeView::new(campaign.deadline),
            grant: GrantView::new(grant, directory, policy, now),
            reviewers: item
                .reviewers
                .iter()
                .map(|p| PersonView::new(p, directory))
                .collect(),
            decided: outcome.is_some() || !campaign.is_open(),
            outcome,
        }
    }
}

impl NoticeView {
    /// `request` and `grant` are the records the notice is about, as views; the caller
    /// loads them (a notice names them by id only).
    pub fn new(
        notice: &Notice,
        request: Option<RequestView>,
        grant: Option<GrantView>,
        directory: &Directory,
    ) -> Self {
        let mut view = NoticeView {
            kind: notice_kind(notice),
            request,
            grant,
            by: None,
            reason: None,
            error: None,
            expires_at: None,
        };
        match notice {
            Notice::Rejected { by, reason, .. } => {
                view.by = Some(PersonView::new(by, directory));
                view.reason = Some(reason.clone());
            }
            Notice::Revoked { reason, .. } => view.reason = Some(reason.clone()),
            Notice::Extended { expires_at, .. } => view.expires_at = expires_at.map(TimeView::new),
            Notice::ExpiryWarning { expires_at, .. } => {
                view.expires_at = Some(TimeView::new(*expires_at));
            }
            Notice::ProvisioningFailed { error, .. } => view.error = Some(error.clone()),
            Notice::Submitted { .. }
            | Notice::Approved { .. }
            | Notice::Cancelled { .. }
            | Notice::Expired { .. }
            | Notice::EmergencyReview { .. }
            | Notice::ApprovalReminder { .. } => {}
        }
        view
    }
}

/// The request and the grant a notice is about, for the caller to load before [`NoticeView::new`].
pub fn notice_subject(notice: &Notice) -> (Option<RequestId>, Option<GrantId>) {
    match notice {
        Notice::Submitted { request }
        | Notice::Rejected { request, .. }
        | Notice::Cancelled { request }
        | Notice::Expired { request }
        | Notice::ApprovalReminder { request } => (Some(*request), None),
        Notice::Approved { request, grant } => (Some(*request), Some(*grant)),
        Notice::Revoked { grant, .. }
        | Notice::Extended { grant, .. }
        | Notice::EmergencyReview { grant }
        | Notice::ProvisioningFailed { grant, .. }
        | Notice::ExpiryWarning { grant, .. } => (None, Some(*grant)),
    }
}

pub fn notice_kind(notice: &Notice) -> &'static str {
    match notice {
        Notice::Submitted { .. } => "submitted",
        Notice::Approved { .. } => "approved",
        Notice::Rejected { .. } => "rejected",
        Notice::Cancelled { .. } => "cancelled",
        Notice::Expired { .. } => "expired",
        Notice::Revoked { .. } => "revoked",
        Notice::Extended { .. } => "extended",
        Notice::EmergencyReview { .. } => "emergency_review",
        Notice::ProvisioningFailed { .. } => "provisioning_failed",
        Notice::ApprovalReminder { .. } => "approval_reminder",
        Notice::ExpiryWarning { .. } => "expiry_warning",
    }
}

impl AlertView {
    /// `grant` is the grant the alert is about, as a view, when it names one.
    pub fn new(alert: &Alert, grant: Option<GrantView>, directory: &Directory) -> Self {
        let person = |id: &PersonId| Some(PersonView::new(id, directory));
        let mut view = AlertView {
            kind: alert_kind(alert),
            grant,
            person: None,
            by: None,
            rule: None,
            request: None,
            error: None,
            grants: None,
            digest: None,
        };
        match alert {
            Alert::SodBlocked {
                person: who,
                rule,
                request,
            } => {
                view.person = person(who);
                view.rule = Some(rule.clone());
                view.request = Some(request.clone());
            }
            Alert::ProvisioningFailed { error, .. } | Alert::RevocationFailed { error, .. } => {
                view.error = Some(error.clone());
            }
            Alert::EmergencyFlagged { by, .. } => view.by = person(by),
            Alert::Digest {
                pending_requests,
                live_grants,
                emergency_unreviewed,
                revocations_failing,
            } => {
                view.digest = Some(DigestView {
                    pending_requests: *pending_requests,
                    live_grants: *live_grants,
                    emergency_unreviewed: *emergency_unreviewed,
                    revocations_failing: *revocations_failing,
                });
            }
            Alert::PersonOffboarded {
                person: who,
                grants,
            } => {
                view.person = person(who);
                view.grants = Some(*grants);
            }
            Alert::EmergencyGranted { .. } | Alert::PrivilegedGranted { .. } => {}
        }
        view
    }
}

/// The grant an alert is about, if any, for the caller to load before [`AlertView::new`].
pub fn alert_grant(alert: &Alert) -> Option<GrantId> {
    match alert {
        Alert::EmergencyGranted { grant }
        | Alert::PrivilegedGranted { grant }
        | Alert::ProvisioningFailed { grant, .. }
        | Alert::RevocationFailed { grant, .. }
        | Alert::EmergencyFlagged { grant, .. } => Some(*grant),
        Alert::SodBlocked { .. } | Alert::Digest { .. } | Alert::PersonOffboarded { .. } => None,
    }
}

pub fn alert_kind(alert: &Alert) -> &'static str {
    match alert {
        Alert::EmergencyGranted { .. } => "emergency_granted",
        Alert::PrivilegedGranted { .. } => "privileged_granted",
        Alert::SodBlocked { .. } => "sod_blocked",
        Alert::ProvisioningFailed { .. } => "provisioning_failed",
        Alert::RevocationFailed { .. } => "revocation_failed",
        Alert::EmergencyFlagged { .. } => "emergency_flagged",
        Alert::Digest { .. } => "digest",
        Alert::PersonOffboarded { .. } => "person_offboarded",
    }
}

impl HomeView {
    pub fn new(
        person: &PersonId,
        requests: &[AccessRequest],
        grants: &[Grant],
        approvals: &[AccessRequest],
        directory: &Directory,
        policy: &Policy,
        now: DateTime<Utc>,
    ) -> Self {
        let request = |r: &AccessRequest| RequestView::new(r, directory, policy);
        HomeView {
            person: PersonView::new(person, directory),
            requests: requests.iter().map(request).collect(),
            grants: grants
                .iter()
                .map(|g| GrantView::new(g, directory, policy, now))
                .collect(),
            approvals: approvals.iter().map(request).collect(),
        }
    }
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
        }
    }
}

impl RejectModalView {
    pub fn new(request: &AccessRequest, directory: &Directory, policy: &Policy) -> Self {
        RejectModalView {
            request: RequestView::new(request, directory, policy),
            private_metadata: request.id.to_string(),
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
        }
    }
}

/// Realistic views for `gatehouse check` and the template tests, built through the same
/// constructors as real messages: Alice Ng asks for admin on prod-db for 2h, for INC-4211.
pub mod samples {
    use std::collections::{BTreeMap, BTreeSet};

    use chrono::{DateTime, TimeDelta, TimeZone, Utc};

    use super::*;
    use crate::domain::directory::Person;
    use crate::domain::grant::{PostHocReview, RevokeReason};
    use crate::domain::ids::{CampaignId, TemplateId, WorkflowId};
    use crate::domain::policy::{Defaults, MoverAction, OnTimeout, RequestTemplate, Risk};
    use crate::domain::policy::{Subject, TemplateField};
    use crate::domain::routing::{Approval, ApprovalPlan, PlannedStage};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 1, 1, 9, 0, 0)
            .single()
            .unwrap_or_default()
    }

    fn minutes(m: i64) -> DateTime<Utc> {
        now() + TimeDelta::minutes(m)
    }

    pub fn directory() -> Directory {
        let person = |id: &str, name: &str| Person {
            id: id.into(),
            name: name.to_owned(),
            email: Some(format!("{id}@example.com")),
            manager: None,
            department: Some("engineering".to_owned()),
            title: None,
            groups: BTreeSet::new(),
            slack: None,
            discord: None,
            notify: Vec::new(),
            active: true,
        };
        Directory::from_people([
            person("alice", "Alice Ng"),
            person("bob", "Bob Marsh"),
            person("carol", "Carol Diaz"),
            person("sam", "Sam Patel"),
            person("sue", "Sue Chen"),
        ])
    }

    pub fn policy() -> Policy {
        let role = |id: &str, privileged: bool, hours: u64, template: Option<&str>| Role {
            id: id.into(),
            name: id.to_owned(),
            privileged,
            risk: privileged.then_some(Risk::Critical),
            max_duration: Some(Duration::from_hours(hours)),
            template: template.map(TemplateId::from),
            standing: false,
        };
        let incident = RequestTemplate {
            id: "incident".into(),
            fields: vec![TemplateField {
                id: "ticket".to_owned(),
                label: "Incident ticket".to_owned(),
                pattern: None,
                required: true,
            }],
        };
        Policy {
            defaults: Defaults {
                pending_ttl: Duration::from_hours(24),
                remind_every: Duration::from_hours(4),
                escalate_after: Duration::from_hours(8),
                max_duration: Duration::from_hours(8),
                distinct_approvers: true,
                admins: vec![Subject::Person("sue".into())],
                on_mover: MoverAction::Revoke,
            },
            templates: BTreeMap::from([(incident.id.clone(), incident)]),
            resources: vec![Resource {
                id: "prod-db".into(),
                name: "Production PostgreSQL".to_owned(),
                kind: "database".to_owned(),
                owners: vec![Subject::Person("carol".into())],
                risk: Risk::High,
                connector: None,
                eligible: Vec::new(),
                roles: vec![
                    role("read", false, 8, None),
                    role("admin", true, 2, Some("incident")),
                ],
            }],
            workflows: Vec::new(),
            sod: Vec::new(),
            emergency: None,
            reviews: Vec::new(),
            bundles: Vec::new(),
        }
    }

    fn stage(name: &str, approvers: &[&str], quorum: usize, approved: &[&str]) -> PlannedStage {
        PlannedStage {
            name: name.to_owned(),
            approvers: approvers.iter().map(|p| PersonId::from(*p)).collect(),
            quorum,
            escalate_to: BTreeSet::new(),
            escalated: false,
            approvals: approved
                .iter()
                .map(|p| Approval {
                    by: (*p).into(),
                    at: minutes(5),
                })
                .collect(),
        }
    }

    /// AR-12, at its third stage: "Security review — 1 of 2 approvals".
    pub fn access_request() -> AccessRequest {
        AccessRequest {
            id: RequestId(12),
            requester: "alice".into(),
            resource: "prod-db".into(),
            role: "admin".into(),
            duration: Some(Duration::from_hours(2)),
            justification: "INC-4211 fixing replica lag on the primary".to_owned(),
            fields: BTreeMap::from([("ticket".to_owned(), "INC-4211".to_owned())]),
            kind: RequestKind::Access,
            submitted_at: now(),
            submitted_by: None,
            plan: ApprovalPlan {
                workflow: WorkflowId::from("privileged"),
                auto_approved: false,
                stages: vec![
                    stage("Manager approval", &["bob"], 1, &["bob"]),
                    stage("Owner approval", &["carol"], 1, &["carol"]),
                    stage("Security review", &["sam", "sue"], 2, &["sam"]),
                ],
            },
            current_stage: 2,
            stage_started_at: minutes(10),
            expires_at: minutes(24 * 60),
            last_reminded_at: None,
            changes: Vec::new(),
            state: RequestState::Pending,
        }
    }

    pub fn grant() -> Grant {
        Grant {
            id: GrantId(7),
            person: "alice".into(),
            resource: "prod-db".into(),
            role: "admin".into(),
            request: RequestId(12),
            granted_at: minutes(15),
            expires_at: Some(minutes(135)),
            emergency: false,
            review: None,
            warned_at: None,
            state: GrantState::Active { since: minutes(15) },
        }
    }

    fn emergency_grant() -> Grant {
        Grant {
            id: GrantId(8),
            emergency: true,
            review: Some(PostHocReview {
                reviewers: vec!["sam".into(), "sue".into()],
                due: minutes(24 * 60),
                next_reminder: None,
                outcome: None,
            }),
            ..grant()
        }
    }

    /// Where the relative times of the samples are measured from: 45 minutes before the
    /// sample grant ends.
    pub fn clock() -> DateTime<Utc> {
        minutes(90)
    }

    pub fn sample_request() -> RequestView {
        RequestView::new(&access_request(), &directory(), &policy())
    }

    /// AR-12 approved by all four, with the duration shortened by Sue.
    pub fn sample_decided_request() -> RequestView {
        let mut request = access_request();
        request.plan.stages[2].approvals.push(Approval {
            by: "sue".into(),
            at: minutes(14),
        });
        request.changes.push(Change {
            by: "sue".into(),
            at: minutes(14),
            duration: Some((Some(Duration::from_hours(2)), Duration::from_hours(1))),
            role: None,
        });
        request.duration = Some(Duration::from_hours(1));
        request.state = RequestState::Approved {
            grant: GrantId(7),
            at: minutes(15),
        };
        RequestView::new(&request, &directory(), &policy())
    }

    pub fn sample_grant() -> GrantView {
        GrantView::new(&grant(), &directory(), &policy(), clock())
    }

    fn sample_emergency_grant() -> GrantView {
        GrantView::new(&emergency_grant(), &directory(), &policy(), clock())
    }

    pub fn sample_campaign_item() -> CampaignItemView {
        let item = ReviewItem {
            grant: GrantId(7),
            person: "alice".into(),
            resource: "prod-db".into(),
            role: "admin".into(),
            reviewers: BTreeSet::from(["carol".into()]),
            decision: None,
        };
        let campaign = Campaign {
            id: CampaignId(3),
            review: "quarterly-prod".to_owned(),
            started_at: now(),
            deadline: minutes(7 * 24 * 60),
            on_timeout: OnTimeout::Revoke,
            escalated: false,
            items: vec![item.clone()],
            closed_at: None,
        };
        CampaignItemView::new(&campaign, &item, &grant(), &directory(), &policy(), clock())
    }

    /// The sample view of a grant by id: G-8 is the emergency one.
    fn grant_view(id: GrantId) -> GrantView {
        if id == GrantId(8) {
            sample_emergency_grant()
        } else {
            sample_grant()
        }
    }

    /// One notice of every kind.
    pub fn sample_notices() -> Vec<NoticeView> {
        let (r, g) = (RequestId(12), GrantId(7));
        let error = "connection refused by db-admin.internal:5432".to_owned();
        let notices = [
            Notice::Submitted { request: r },
            Notice::Approved {
                request: r,
                grant: g,
            },
            Notice::Rejected {
                request: r,
                by: "bob".into(),
                reason: "no ticket for this yet".into(),
            },
            Notice::Cancelled { request: r },
            Notice::Expired { request: r },
            Notice::Revoked {
                grant: g,
                reason: RevokeReason::Expired.to_string(),
            },
            Notice::Extended {
                grant: g,
                expires_at: Some(minutes(195)),
            },
            Notice::EmergencyReview { grant: GrantId(8) },
            Notice::ProvisioningFailed { grant: g, error },
            Notice::ApprovalReminder { request: r },
            Notice::ExpiryWarning {
                grant: g,
                expires_at: minutes(135),
            },
        ];
        notices
            .iter()
            .map(|notice| {
                let (request, grant) = notice_subject(notice);
                let request = request.map(|_| match notice {
                    Notice::Approved { .. } => sample_decided_request(),
                    _ => sample_request(),
                });
                NoticeView::new(notice, request, grant.map(grant_view), &directory())
            })
            .collect()
    }

    /// One alert of every kind.
    pub fn sample_alerts() -> Vec<AlertView> {
        let g = GrantId(7);
        let alerts = [
            Alert::EmergencyGranted { grant: GrantId(8) },
            Alert::PrivilegedGranted { grant: g },
            Alert::SodBlocked {
                person: "alice".into(),
                rule: "payments-maker-checker".to_owned(),
                request: "payments/approver".to_owned(),
            },
            Alert::ProvisioningFailed {
                grant: g,
                error: "connection refused by db-admin.internal:5432".to_owned(),
            },
            Alert::RevocationFailed {
                grant: g,
                error: "role is still granted after 5 attempts".to_owned(),
            },
            Alert::EmergencyFlagged {
                grant: GrantId(8),
                by: "sam".into(),
            },
            Alert::Digest {
                pending_requests: 4,
                live_grants: 37,
                emergency_unreviewed: 1,
                revocations_failing: 0,
            },
            Alert::PersonOffboarded {
                person: "alice".into(),
                grants: 3,
            },
        ];
        alerts
            .iter()
            .map(|alert| AlertView::new(alert, alert_grant(alert).map(grant_view), &directory()))
            .collect()
    }

    /// Alice's home: her pending request and live grant. Bob's approvals are shown in it
    /// too, so that one sample covers every section.
    pub fn sample_home() -> HomeView {
        let (directory, policy) = (directory(), policy());
        let request = access_request();
        HomeView::new(
            &"alice".into(),
            std::slice::from_ref(&request),
            &[grant()],
            std::slice::from_ref(&request),
            &directory,
            &policy,
            clock(),
        )
    }

    pub fn sample_request_modal() -> RequestModalView {
        RequestModalView::new(&policy(), Some(&"prod-db".into()), Some(&"admin".into()))
    }

    pub fn sample_reject_modal() -> RejectModalView {
        RejectModalView::new(&access_request(), &directory(), &policy())
    }

    pub fn sample_changes_modal() -> ChangesModalView {
        ChangesModalView::new(&access_request(), &directory(), &policy())
    }

    pub fn sample_ephemeral() -> EphemeralView {
        EphemeralView {
            text: "prod-db/admin allows at most 2h; ask for 2h or less".to_owned(),
            lines: vec!["AR-12 prod-db/admin for 2h: pending".to_owned()],
            blocks: Vec::new(),
        }
    }

    pub fn sample_help() -> HelpView {
        HelpView {
            command: "/access".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::samples::*;
    use super::*;
    use crate::domain::policy::tests::{example_directory, example_policy};

    #[test]
    fn a_request_view_says_who_what_how_long_why_and_where_it_stands() {
        let view = RequestView::new(&access_request(), &example_directory(), &example_policy());
        assert_eq!(view.id, "AR-12");
        assert_eq!(view.requester.name, "Alice Ng");
        assert_eq!(view.resource.name, "Production PostgreSQL");
        assert_eq!(
            (view.role.id.as_str(), view.privileged, view.risk.as_str()),
            ("admin", true, "critical")
        );
        assert_eq!(view.duration, "2h");
        assert_eq!(
            view.fields,
            [FieldView {
                label: "Incident ticket".into(),
                value: "INC-4211".into()
            }]
        );
        assert_eq!(view.stage, "Security review — 1 of 2 approvals");
        assert_eq!((view.stage_number, view.stage_count), (3, 3));
        assert_eq!(
            (view.state, view.decided, view.outcome),
            ("pending", false, None)
        );
        let approvers: Vec<&str> = view.approvers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(approvers, ["Bob Marsh", "Carol Diaz", "Sam Patel"]);
    }

    #[test]
    fn a_decided_request_names_who_decided_and_what_they_changed() {
        let view = sample_decided_request();
        assert_eq!(
            view.outcome.as_deref(),
            Some("Approved by Bob Marsh, Carol Diaz, Sam Patel and Sue Chen")
        );
        assert_eq!(
            view.changes,
            ["Sue Chen shortened the duration from 2h to 1h"]
        );
        let (directory, policy, now) = (directory(), policy(), clock());
        let outcome = |state: RequestState, kind: RequestKind, auto: bool| {
            let mut request = access_request();
            request.state = state;
            request.kind = kind;
            if auto {
                request.plan.stages.clear();
            }
            RequestView::new(&request, &directory, &policy)
                .outcome
                .unwrap_or_default()
        };
        let rejected = RequestState::Rejected {
            by: "bob".into(),
            reason: " no ticket ".into(),
            at: now,
        };
        assert_eq!(
            outcome(rejected, RequestKind::Access, false),
            "Rejected by Bob Marsh: no ticket"
        );
        let cancelled = RequestState::Cancelled {
            by: "alice".into(),
            at: now,
        };
        assert_eq!(
            outcome(cancelled, RequestKind::Access, false),
            "Cancelled by Alice Ng"
        );
        let expired = RequestState::Expired { at: now };
        assert_eq!(
            outcome(expired, RequestKind::Access, false),
            "Expired: nobody decided in time"
        );
        let approved = || RequestState::Approved {
            grant: GrantId(7),
            at: now,
        };
        assert_eq!(
            outcome(approved(), RequestKind::Access, true),
            "Approved automatically by policy"
        );
        assert!(outcome(approved(), RequestKind::Emergency, false).starts_with("Granted at once"));
    }

    #[test]
    fn a_grant_view_counts_down_to_its_end_while_it_is_live() {
        let view = sample_grant();
        assert_eq!(
            (view.id.as_str(), view.state, view.live),
            ("G-7", "active", true)
        );
        assert_eq!(view.expires_in.as_deref(), Some("45m"));
        assert_eq!(
            view.expires_at.map(|t| t.text).as_deref(),
            Some("2027-01-01 11:15 UTC")
        );
        let later = GrantView::new(
            &grant(),
            &directory(),
            &policy(),
            clock() + TimeDelta::hours(1),
        );
        assert_eq!(later.expires_in, None);
        let mut revoked = grant();
        revoked.state = GrantState::Revoked {
            reason: crate::domain::grant::RevokeReason::EndedEarly,
            at: clock(),
        };
        let view = GrantView::new(&revoked, &directory(), &policy(), clock());
        assert_eq!(
            (view.live, view.ended.as_deref()),
            (false, Some("ended early by its holder"))
        );
    }

    #[test]
    fn a_review_item_shows_its_outcome_once_decided() {
        let item = sample_campaign_item();
        assert_eq!(
            (item.campaign.as_str(), item.decided, item.outcome),
            ("RC-3", false, None)
        );
        assert_eq!(item.reviewers[0].name, "Carol Diaz");
    }

    #[test]
    fn the_request_modal_shows_the_fields_of_the_chosen_role_only() {
        let modal = sample_request_modal();
        assert_eq!(modal.roles.len(), 2);
        assert_eq!(modal.role.as_ref().map(|r| r.value.as_str()), Some("admin"));
        assert_eq!(modal.fields.len(), 1);
        assert_eq!(modal.duration_hint, "Like 2h or 1h30m; at most 2h.");
        assert_eq!(
            modal.private_metadata,
            r#"{"resource":"prod-db","role":"admin"}"#
        );
        let blank = RequestModalView::new(&policy(), None, Some(&"admin".into()));
        assert!(blank.roles.is_empty() && blank.fields.is_empty() && blank.role.is_none());
    }

    #[test]
    fn approving_with_changes_offers_only_lesser_roles() {
        let modal = sample_changes_modal();
        let roles: Vec<&str> = modal
            .lesser_roles
            .iter()
            .map(|r| r.value.as_str())
            .collect();
        assert_eq!(roles, ["read"]);
        assert_eq!(modal.duration_hint, "Less than 2h, like 1h or 30m.");
    }

    #[test]
    fn names_join_the_way_people_write_them() {
        let names = |n: &[&str]| join_names(&n.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(names(&[]), "");
        assert_eq!(names(&["Bob"]), "Bob");
        assert_eq!(names(&["Bob", "Carol"]), "Bob and Carol");
        assert_eq!(names(&["Bob", "Carol", "Dora"]), "Bob, Carol and Dora");
    }
}
