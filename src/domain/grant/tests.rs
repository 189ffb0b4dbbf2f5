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
