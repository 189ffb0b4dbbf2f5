//! Realistic views for `gatehouse check` and the template tests, built through the same
//! constructors as real messages: Alice Ng asks for admin on prod-db for 2h, for INC-4211.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use super::*;
use crate::domain::directory::{Directory, Person};
use crate::domain::duration::Duration;
use crate::domain::effect::{Alert, Notice};
use crate::domain::grant::{Grant, GrantState, PostHocReview, RevokeReason};
use crate::domain::ids::{CampaignId, GrantId, PersonId, RequestId, TemplateId, WorkflowId};
use crate::domain::policy::{Defaults, MoverAction, OnTimeout, RequestTemplate, Risk};
use crate::domain::policy::{Policy, Resource, Role, Subject, TemplateField};
use crate::domain::request::{AccessRequest, Change, RequestKind, RequestState};
use crate::domain::review::{Campaign, ReviewItem};
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
        accounts: Default::default(),
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
            auditors: Vec::new(),
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

/// AR-13: Alice's emergency access, granted at once as G-8.
fn emergency_request() -> AccessRequest {
    AccessRequest {
        id: RequestId(13),
        duration: Some(Duration::from_hours(1)),
        justification: "INC-4300 primary down, reading the WAL".to_owned(),
        fields: BTreeMap::from([("ticket".to_owned(), "INC-4300".to_owned())]),
        kind: RequestKind::Emergency,
        plan: ApprovalPlan {
            workflow: WorkflowId::from("emergency"),
            auto_approved: true,
            stages: Vec::new(),
        },
        current_stage: 0,
        state: RequestState::Approved {
            grant: GrantId(8),
            at: minutes(15),
        },
        ..access_request()
    }
}

fn emergency_grant() -> Grant {
    Grant {
        id: GrantId(8),
        request: RequestId(13),
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
    request.changes.push(sues_change());
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

/// G-7 once Alice ended it early, as her expiry warning shows it.
pub fn sample_decided_grant_card() -> GrantCardView {
    let mut ended = grant();
    ended.state = GrantState::Revoked {
        reason: RevokeReason::EndedEarly,
        at: minutes(60),
    };
    let alice = PersonId::from("alice");
    GrantCardView::decided(&ended, &alice, &directory(), &policy(), clock()).unwrap_or(
        GrantCardView {
            grant: sample_grant(),
            outcome: "Ended".to_owned(),
        },
    )
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

/// The sample view of the request a grant came from, as messages about the grant show it.
fn request_of_grant(id: GrantId) -> RequestView {
    if id == GrantId(8) {
        RequestView::new(&emergency_request(), &directory(), &policy())
    } else {
        sample_decided_request()
    }
}

/// Sue's change to AR-12, as she approved its last stage: an hour instead of two.
fn sues_change() -> Change {
    Change {
        by: "sue".into(),
        at: minutes(14),
        duration: Some((Some(Duration::from_hours(2)), Duration::from_hours(1))),
        role: None,
        reason: Some("one hour is enough for the replica".to_owned()),
    }
}

/// Carol's change to AR-12, as she approved its second stage: an hour instead of two.
fn carols_change() -> Change {
    Change {
        by: "carol".into(),
        at: minutes(8),
        reason: Some("an hour is enough to fix the lag".to_owned()),
        ..sues_change()
    }
}

/// AR-12 once Carol approved its second stage with a change: an hour, and now with
/// Security review, which Sam and Sue must both approve.
fn changed_request() -> RequestView {
    let mut request = access_request();
    request.plan.stages[2].approvals.clear();
    request.changes.push(carols_change());
    request.duration = Some(Duration::from_hours(1));
    RequestView::new(&request, &directory(), &policy())
}

/// The view of a notice as the chat adapters build it: with its request and grant, and
/// for a notice about a grant alone, the request the grant came from.
fn notice_view(notice: &Notice, request: Option<RequestView>) -> NoticeView {
    let (asked, grant) = notice_subject(notice);
    let request = match (asked, grant) {
        (Some(_), _) => request.or_else(|| Some(sample_request())),
        (None, Some(grant)) => Some(request_of_grant(grant)),
        (None, None) => None,
    };
    NoticeView::new(notice, request, grant.map(grant_view), &directory())
}

/// One notice of every kind.
pub fn sample_notices() -> Vec<NoticeView> {
    let (r, g) = (RequestId(12), GrantId(7));
    let error = "connection refused by db-admin.internal:5432".to_owned();
    let notices = [
        Notice::Submitted { request: r },
        Notice::Changed {
            request: r,
            change: carols_change(),
        },
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
            request: None,
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
        .map(|notice| match notice {
            Notice::Approved { .. } => notice_view(notice, Some(sample_decided_request())),
            Notice::Changed { .. } => notice_view(notice, Some(changed_request())),
            _ => notice_view(notice, None),
        })
        .collect()
}

/// Notices whose message differs with the state of what they are about: the requester's
/// "submitted" DM once decided, emergency access granted (nobody approved it), and an
/// extension whose duration an approver shortened.
pub fn sample_notice_states() -> Vec<NoticeView> {
    let decided = Notice::Submitted {
        request: RequestId(12),
    };
    let emergency = Notice::Approved {
        request: RequestId(13),
        grant: GrantId(8),
    };
    let emergency_request = RequestView::new(&emergency_request(), &directory(), &policy());
    let extended = Notice::Extended {
        grant: GrantId(7),
        expires_at: Some(minutes(195)),
        request: Some(RequestId(12)),
    };
    vec![
        notice_view(&decided, Some(sample_decided_request())),
        notice_view(&emergency, Some(emergency_request)),
        notice_view(&extended, Some(sample_decided_request())),
    ]
}

/// One alert of every kind `alert.j2` renders (an impersonation has its own template).
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
        Alert::DirectorySyncHeld {
            leavers: 19,
            message: "the directory read would make 19 people leavers at once (alice, bob, carol, dan, erin and 14 more), 95% of the 20 active people, more than directory.max_leavers_percent = 10; it was not applied".to_owned(),
        },
        Alert::DirectoryOutOfPolicy {
            problems: vec!["policy.toml:12: error: unknown group `security`".to_owned()],
        },
    ];
    alerts
        .iter()
        .map(|alert| {
            let grant = alert_grant(alert);
            AlertView::new(alert, grant.map(grant_view), &directory())
                .with_request(grant.map(request_of_grant))
                .with_audit_head(Some(&sample_audit_head()))
        })
        .collect()
}

/// An admin token acting as someone else, about a request and about a grant, for
/// `impersonation_alert.j2`.
pub fn sample_impersonation_alerts() -> Vec<AlertView> {
    let alerts = [
        Alert::Impersonation {
            token: "ops".to_owned(),
            person: "bob".into(),
            action: "stage_approved".to_owned(),
            request: Some(RequestId(12)),
            grant: None,
        },
        Alert::Impersonation {
            token: "ops".to_owned(),
            person: "sue".into(),
            action: "revocation_started".to_owned(),
            request: None,
            grant: Some(GrantId(7)),
        },
    ];
    alerts
        .iter()
        .map(|alert| {
            AlertView::new(alert, alert_grant(alert).map(grant_view), &directory())
                .with_audit_head(Some(&sample_audit_head()))
        })
        .collect()
}

/// An audit chain head, as alerts carry it.
pub fn sample_audit_head() -> crate::domain::anchor::ChainHead {
    crate::domain::anchor::ChainHead {
        seq: 2198,
        hash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".to_owned(),
    }
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

/// The request modal before anything was chosen.
pub fn sample_blank_request_modal() -> RequestModalView {
    RequestModalView::new(&policy(), None, None)
}

/// The request modal once prod-db, but no role, was chosen.
pub fn sample_resource_only_request_modal() -> RequestModalView {
    RequestModalView::new(&policy(), Some(&"prod-db".into()), None)
}

pub fn sample_reject_modal() -> RejectModalView {
    RejectModalView::new(&access_request(), &directory(), &policy())
}

pub fn sample_changes_modal() -> ChangesModalView {
    ChangesModalView::new(&access_request(), &directory(), &policy())
}

pub fn sample_extend_modal() -> ExtendModalView {
    ExtendModalView::new(&grant(), &directory(), &policy(), clock())
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
