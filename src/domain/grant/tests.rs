use super::*;
use chrono::TimeZone;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 9, 0, 0).unwrap()
}

fn provisioning() -> Grant {
    Grant {
        id: GrantId(7),
        person: "alice".into(),
        resource: "prod-db".into(),
        role: "read".into(),
        request: RequestId(3),
        granted_at: now(),
        expires_at: None,
        emergency: false,
        review: None,
        warned_at: None,
        state: GrantState::Provisioning,
    }
}

#[test]
fn a_failed_provisioning_is_taken_back_before_the_grant_counts_as_failed() {
    let mut grant = provisioning();
    grant.fail("SQLSTATE 42501", now()).unwrap();
    assert_eq!(grant.state.name(), "revoking", "{:?}", grant.state);
    assert!(grant.is_undoing());
    assert!(!grant.is_live());
    assert_eq!(
        GrantTally::of(&grant).revoking,
        1,
        "counted as being taken back"
    );

    grant.finish_revoke(now()).unwrap();
    assert_eq!(
        grant.state,
        GrantState::Failed {
            error: "SQLSTATE 42501".to_owned(),
            at: now()
        }
    );
    assert!(!grant.is_undoing());
}

#[test]
fn a_failed_grant_can_always_be_revoked() {
    let mut grant = provisioning();
    grant.state = GrantState::Failed {
        error: "refused".to_owned(),
        at: now(),
    };
    let reason = RevokeReason::Revoked {
        by: "sue".into(),
        why: "left behind by a failed grant".to_owned(),
    };
    grant.start_revoke(reason.clone(), now()).unwrap();
    assert!(!grant.is_undoing(), "an admin's revoke is a revoke");
    grant.finish_revoke(now()).unwrap();
    assert_eq!(grant.state, GrantState::Revoked { reason, at: now() });
}

#[test]
fn a_revoked_or_revoking_grant_cannot_be_revoked_again() {
    let mut grant = provisioning();
    grant.start_revoke(RevokeReason::Expired, now()).unwrap();
    let again = grant
        .start_revoke(RevokeReason::Expired, now())
        .unwrap_err();
    assert_eq!(
        again.to_string(),
        "G-7 is revoking, so it cannot be revoked"
    );
    grant.finish_revoke(now()).unwrap();
    assert!(grant.start_revoke(RevokeReason::Expired, now()).is_err());
    assert!(
        grant.fail("late", now()).is_err(),
        "only provisioning fails"
    );
}

#[test]
fn access_lost_for_who_the_person_was_follows_the_directory_back() {
    assert!(RevokeReason::Offboarded.follows_the_directory());
    assert!(
        RevokeReason::BundleNoLongerMatches {
            bundle: "finance".to_owned()
        }
        .follows_the_directory()
    );
    assert!(!RevokeReason::EndedEarly.follows_the_directory());
    assert!(
        !RevokeReason::Revoked {
            by: "sue".into(),
            why: "no".to_owned()
        }
        .follows_the_directory()
    );
}

mod approved {
    use chrono::TimeDelta;

    use super::*;
    use crate::domain::audit::{Actor, AuditAction};
    use crate::domain::duration::Duration;
    use crate::domain::effect::{Effect, Notice};
    use crate::domain::request::{AccessRequest, RequestKind, RequestState};
    use crate::domain::routing::ApprovalPlan;

    fn approved(kind: RequestKind, duration: Option<Duration>) -> AccessRequest {
        AccessRequest {
            id: RequestId(3),
            requester: "alice".into(),
            resource: "prod-db".into(),
            role: "read".into(),
            duration,
            justification: "incident 42".into(),
            fields: Default::default(),
            kind,
            submitted_at: now(),
            submitted_by: None,
            plan: ApprovalPlan {
                workflow: "default".into(),
                auto_approved: true,
                stages: vec![],
            },
            current_stage: 0,
            stage_started_at: now(),
            expires_at: now() + TimeDelta::hours(24),
            last_reminded_at: None,
            changes: vec![],
            state: RequestState::Pending,
        }
    }

    #[test]
    fn an_approved_request_makes_a_grant_that_is_provisioned_audited_and_told() {
        let request = approved(RequestKind::Access, Some(Duration::from_hours(2)));
        let bob = Actor::person(&"bob".into());
        let (grant, decision) = Grant::from_approved(&request, GrantId(9), &bob, now(), None);
        assert_eq!(grant.state, GrantState::Provisioning);
        assert_eq!(grant.expires_at, Some(now() + TimeDelta::hours(2)));
        assert!(!grant.emergency);
        assert!(matches!(
            decision.events[..],
            [ref created] if matches!(created.action, AuditAction::GrantCreated { .. })
                && created.grant == Some(GrantId(9))
                && created.request == Some(RequestId(3))
        ));
        assert_eq!(
            decision.effects,
            [
                Effect::Provision { grant: GrantId(9) },
                Effect::Notify {
                    to: "alice".into(),
                    notice: Notice::Approved {
                        request: RequestId(3),
                        grant: GrantId(9)
                    }
                }
            ]
        );
    }

    #[test]
    fn an_extension_counts_from_the_later_of_the_grants_end_and_now() {
        let request = approved(
            RequestKind::Extension { grant: GrantId(7) },
            Some(Duration::from_hours(1)),
        );
        let bob = Actor::person(&"bob".into());
        let mut lapsing = provisioning();
        lapsing.activate(now()).unwrap();
        lapsing.expires_at = Some(now() + TimeDelta::minutes(10));
        lapsing.warned_at = Some(now());
        let decision = lapsing.extend_for(&request, &bob, now()).unwrap();
        assert_eq!(
            lapsing.expires_at,
            Some(now() + TimeDelta::minutes(70)),
            "the ten minutes left are kept"
        );
        assert_eq!(lapsing.warned_at, None, "warned again before the new end");
        assert!(matches!(
            decision.events[..],
            [ref extended] if extended.action == AuditAction::GrantExtended { expires_at: lapsing.expires_at }
        ));

        let mut late = provisioning();
        late.activate(now()).unwrap();
        late.expires_at = Some(now() - TimeDelta::minutes(5));
        late.extend_for(&request, &bob, now()).unwrap();
        assert_eq!(
            late.expires_at,
            Some(now() + TimeDelta::hours(1)),
            "an hour from now, not from the past end"
        );
    }

    #[test]
    fn a_grant_that_is_no_longer_live_cannot_be_extended() {
        let request = approved(
            RequestKind::Extension { grant: GrantId(7) },
            Some(Duration::from_hours(1)),
        );
        let mut gone = provisioning();
        gone.state = GrantState::Failed {
            error: "refused".to_owned(),
            at: now(),
        };
        assert!(
            gone.extend_for(&request, &Actor::person(&"bob".into()), now())
                .is_err()
        );
        assert_eq!(gone.expires_at, None, "nothing changed");
    }
}
