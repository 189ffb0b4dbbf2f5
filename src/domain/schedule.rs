//! What time does to a pending request: a reminder every `remind_every`, escalation after
//! `escalate_after`, expiry after `pending_ttl`; and when a grantee is warned of the end.

use chrono::{DateTime, TimeDelta, Utc};

use super::grant::Grant;
use super::policy::Defaults;
use super::request::AccessRequest;

/// What is due for a pending request now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DueAction {
    Expire,
    Escalate,
    Remind,
}

fn escalation_at(request: &AccessRequest, defaults: &Defaults) -> Option<DateTime<Utc>> {
    let stage = request.plan.stages.get(request.current_stage)?;
    (!stage.escalated && !stage.escalate_to.is_empty())
        .then(|| request.stage_started_at + defaults.escalate_after.to_chrono())
}

fn reminder_at(request: &AccessRequest, defaults: &Defaults) -> DateTime<Utc> {
    request.last_reminded_at.unwrap_or(request.stage_started_at) + defaults.remind_every.to_chrono()
}

/// The next moment the scheduler must look at a request; `None` once it is not pending.
pub fn pending_due(request: &AccessRequest, defaults: &Defaults) -> Option<DateTime<Utc>> {
    if !request.is_pending() || request.plan.stages.is_empty() {
        return None;
    }
    let mut due = request.expires_at.min(reminder_at(request, defaults));
    if let Some(at) = escalation_at(request, defaults) {
        due = due.min(at);
    }
    Some(due)
}

/// The one thing to do for a pending request at `now`, most important first.
pub fn due_action(
    request: &AccessRequest,
    defaults: &Defaults,
    now: DateTime<Utc>,
) -> Option<DueAction> {
    if !request.is_pending() {
        return None;
    }
    if now >= request.expires_at {
        return Some(DueAction::Expire);
    }
    if escalation_at(request, defaults).is_some_and(|at| now >= at) {
        return Some(DueAction::Escalate);
    }
    (now >= reminder_at(request, defaults)).then_some(DueAction::Remind)
}

/// Whether the grantee should now be warned that their access ends soon.
pub fn needs_expiry_warning(grant: &Grant, window: TimeDelta, now: DateTime<Utc>) -> bool {
    grant.is_live()
        && grant.warned_at.is_none()
        && grant
            .expires_at
            .is_some_and(|end| end > now && end - now <= window)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::duration::Duration;
    use crate::domain::ids::{PersonId, RequestId};
    use crate::domain::policy::tests::example_policy;
    use crate::domain::request::{RequestKind, RequestState};
    use crate::domain::routing::{ApprovalPlan, PlannedStage};
    use chrono::TimeZone;

    fn request(escalate_to: &[&str]) -> AccessRequest {
        let at = Utc.with_ymd_and_hms(2026, 11, 26, 9, 0, 0).unwrap();
        AccessRequest {
            id: RequestId(1),
            requester: "alice".into(),
            resource: "prod-db".into(),
            role: "read".into(),
            duration: Some(Duration::from_hours(1)),
            justification: "x".into(),
            fields: Default::default(),
            kind: RequestKind::Access,
            submitted_at: at,
            submitted_by: None,
            plan: ApprovalPlan {
                workflow: "default".into(),
                auto_approved: false,
                stages: vec![PlannedStage {
                    name: "Manager approval".into(),
                    approvers: ["bob".into()].into(),
                    quorum: 1,
                    escalate_to: escalate_to.iter().map(|p| PersonId::from(*p)).collect(),
                    escalated: false,
                    approvals: vec![],
                }],
            },
            current_stage: 0,
            stage_started_at: at,
            expires_at: at + TimeDelta::hours(24),
            last_reminded_at: None,
            changes: vec![],
            state: RequestState::Pending,
        }
    }

    #[test]
    fn reminders_escalation_and_expiry_come_in_their_order() {
        let defaults = example_policy().defaults; // remind 4h, escalate 8h, ttl 24h
        let mut r = request(&["erin"]);
        let start = r.submitted_at;
        assert_eq!(
            pending_due(&r, &defaults),
            Some(start + TimeDelta::hours(4))
        );
        assert_eq!(due_action(&r, &defaults, start + TimeDelta::hours(3)), None);
        assert_eq!(
            due_action(&r, &defaults, start + TimeDelta::hours(4)),
            Some(DueAction::Remind)
        );
        r.last_reminded_at = Some(start + TimeDelta::hours(4));
        assert_eq!(
            pending_due(&r, &defaults),
            Some(start + TimeDelta::hours(8))
        );
        assert_eq!(
            due_action(&r, &defaults, start + TimeDelta::hours(8)),
            Some(DueAction::Escalate)
        );
        r.plan.stages[0].escalated = true;
        r.last_reminded_at = Some(start + TimeDelta::hours(8));
        assert_eq!(
            pending_due(&r, &defaults),
            Some(start + TimeDelta::hours(12))
        );
        assert_eq!(
            due_action(&r, &defaults, start + TimeDelta::hours(24)),
            Some(DueAction::Expire)
        );
    }

    #[test]
    fn a_stage_without_escalate_to_is_only_reminded() {
        let defaults = example_policy().defaults;
        let r = request(&[]);
        let at = r.submitted_at + TimeDelta::hours(9);
        assert_eq!(due_action(&r, &defaults, at), Some(DueAction::Remind));
    }

    #[test]
    fn a_decided_request_is_never_due() {
        let defaults = example_policy().defaults;
        let mut r = request(&["erin"]);
        r.state = RequestState::Expired { at: r.submitted_at };
        assert_eq!(pending_due(&r, &defaults), None);
        assert_eq!(
            due_action(&r, &defaults, r.submitted_at + TimeDelta::days(9)),
            None
        );
    }
}
