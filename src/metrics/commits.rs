//! What a commit tells the metrics. Every transition writes exactly one audit event (one
//! `request_approved`, one `grant_revoked`), so outcomes are counted from the events, and
//! the records written in the same commit give their type and their times.

use crate::domain::audit::AuditAction;
use crate::domain::grant::{GrantState, RevokeReason};
use crate::domain::policy::RequestType;
use crate::domain::request::{AccessRequest, RequestKind};
use crate::store::Commit;

/// The measurements of one commit, taken before it is applied and recorded (with
/// [`super::Metrics::record`]) only once it is durable, so a commit that conflicts and is
/// retried is counted once.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// Requests that reached an outcome: their type and the outcome.
    pub outcomes: Vec<(RequestType, &'static str)>,
    /// Final human decisions: the outcome and the seconds since submission.
    pub decisions: Vec<(&'static str, f64)>,
    /// Expired grants whose revocation was confirmed: seconds after their expiry.
    pub revocation_lags: Vec<f64>,
}

impl Observed {
    pub fn of(commit: &Commit) -> Self {
        let mut observed = Observed::default();
        for event in &commit.events {
            let outcome = match &event.action {
                AuditAction::RequestApproved => "approved",
                AuditAction::RequestAutoApproved => "auto_approved",
                AuditAction::EmergencyGranted { .. } => "emergency",
                AuditAction::RequestRejected => "rejected",
                AuditAction::RequestCancelled => "cancelled",
                AuditAction::RequestExpired => "expired",
                AuditAction::GrantRevoked => {
                    let revoked = commit
                        .grants
                        .iter()
                        .map(|(g, _)| g)
                        .find(|g| Some(g.id) == event.grant);
                    if let Some(grant) = revoked
                        && let GrantState::Revoked {
                            reason: RevokeReason::Expired,
                            at,
                        } = &grant.state
                        && let Some(expires_at) = grant.expires_at
                    {
                        let lag = (*at - expires_at).num_milliseconds().max(0);
                        observed.revocation_lags.push(lag as f64 / 1000.0);
                    }
                    continue;
                }
                _ => continue,
            };
            let request = commit
                .requests
                .iter()
                .map(|w| &w.request)
                .find(|r| Some(r.id) == event.request);
            let Some(request) = request else { continue };
            observed.outcomes.push((request_type(request), outcome));
            if matches!(outcome, "approved" | "rejected") {
                let waited = (event.at - request.submitted_at).num_milliseconds().max(0);
                observed.decisions.push((outcome, waited as f64 / 1000.0));
            }
        }
        observed
    }
}

/// A stored request's type, as workflows' `request_type` sees it.
pub fn request_type(request: &AccessRequest) -> RequestType {
    match request.kind {
        RequestKind::Emergency => RequestType::Emergency,
        RequestKind::Extension { .. } => RequestType::Extension,
        RequestKind::Access if request.duration.is_none() => RequestType::Standard,
        RequestKind::Access => RequestType::Temporary,
    }
}
