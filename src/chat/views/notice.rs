//! Views of notices (direct messages to a person) and alerts (messages to the security
//! channel), and the names and subjects of each kind, which the caller uses to load the
//! records a notice or alert is about before building its view.

use serde::Serialize;

use super::{GrantView, PersonView, RequestView, TimeView, change_text};
use crate::domain::anchor::ChainHead;
use crate::domain::directory::Directory;
use crate::domain::effect::{Alert, Notice};
use crate::domain::ids::{GrantId, PersonId, RequestId};

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
    /// For `changed`: what the approver (`by`) changed, as a sentence starting with their
    /// name; their reason, if any, is `reason`.
    pub change: Option<String>,
}

/// A message to the security channel; `kind` is the alert's name (`sod_blocked`, …).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AlertView {
    pub kind: &'static str,
    pub grant: Option<GrantView>,
    pub person: Option<PersonView>,
    pub by: Option<PersonView>,
    pub rule: Option<String>,
    /// For `sod_blocked`, what the blocked request asked for; for `impersonation`, the id
    /// of the request acted on.
    pub request: Option<String>,
    pub error: Option<String>,
    /// For `person_offboarded`: how many grants are being taken back.
    pub grants: Option<usize>,
    pub digest: Option<DigestView>,
    /// For an alert about a grant: the request it came from — how long was asked, why,
    /// and the template's fields (the incident ticket).
    pub asked: Option<RequestView>,
    /// For `impersonation`: the admin token's name.
    pub token: Option<String>,
    /// For `impersonation`: what was done, as the audit log names it (`stage_approved`).
    pub action: Option<String>,
    /// The audit chain's head as the alert is sent, published out of band so that a later
    /// rewrite of the log is found (`gatehouse audit verify --head`).
    pub audit_head: Option<AuditHeadView>,
}

/// An audit chain head as messages show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditHeadView {
    pub seq: u64,
    pub hash: String,
    /// `2198:9f86d081884c7d65`.
    pub short: String,
}

impl AuditHeadView {
    pub fn new(head: &ChainHead) -> Self {
        Self {
            seq: head.seq,
            hash: head.hash.clone(),
            short: head.short(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DigestView {
    pub pending_requests: usize,
    pub live_grants: usize,
    pub emergency_unreviewed: usize,
    pub revocations_failing: usize,
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
            change: None,
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
            Notice::Changed { change, .. } => {
                view.by = Some(PersonView::new(&change.by, directory));
                view.reason.clone_from(&change.reason);
                view.change = Some(change_text(change, directory));
            }
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
        | Notice::Changed { request, .. }
        | Notice::Rejected { request, .. }
        | Notice::Cancelled { request }
        | Notice::Expired { request }
        | Notice::ApprovalReminder { request } => (Some(*request), None),
        Notice::Approved { request, grant } => (Some(*request), Some(*grant)),
        Notice::Extended {
            grant,
            request: Some(request),
            ..
        } => (Some(*request), Some(*grant)),
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
        Notice::Changed { .. } => "changed",
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
            asked: None,
            token: None,
            action: None,
            audit_head: None,
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
            Alert::Impersonation {
                token,
                person: who,
                action,
                request,
                ..
            } => {
                view.person = person(who);
                view.token = Some(token.clone());
                view.action = Some(action.clone());
                view.request = request.map(|id| id.to_string());
            }
            Alert::DirectorySyncHeld { message, .. } => view.error = Some(message.clone()),
            Alert::DirectoryOutOfPolicy { problems } => view.error = Some(problems.join("\n")),
            Alert::EmergencyGranted { .. } | Alert::PrivilegedGranted { .. } => {}
        }
        view
    }
}

impl AlertView {
    /// The alert with the request its grant came from, for the caller to load after
    /// [`AlertView::new`] when the alert is about a grant.
    pub fn with_request(mut self, asked: Option<RequestView>) -> Self {
        self.asked = asked;
        self
    }

    /// The view with the audit chain's head, when there is one.
    pub fn with_audit_head(mut self, head: Option<&ChainHead>) -> Self {
        self.audit_head = head.map(AuditHeadView::new);
        self
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
        Alert::Impersonation { grant, .. } => *grant,
        Alert::SodBlocked { .. }
        | Alert::Digest { .. }
        | Alert::PersonOffboarded { .. }
        | Alert::DirectorySyncHeld { .. }
        | Alert::DirectoryOutOfPolicy { .. } => None,
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
        Alert::Impersonation { .. } => "impersonation",
        Alert::DirectorySyncHeld { .. } => "directory_sync_held",
        Alert::DirectoryOutOfPolicy { .. } => "directory_out_of_policy",
    }
}
