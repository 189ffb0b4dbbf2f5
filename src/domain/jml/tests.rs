use super::*;
use crate::domain::diagnostic::Source;
use crate::domain::grant::RevokeReason;
use crate::domain::policy::tests::{EXAMPLE_DIRECTORY, example_directory, example_policy};

fn changed(from: &str, to: &str) -> Directory {
    assert!(EXAMPLE_DIRECTORY.contains(from), "{from}");
    Directory::parse(&Source::new(
        "directory.toml",
        &EXAMPLE_DIRECTORY.replacen(from, to, 1),
    ))
    .unwrap()
}

fn leavers(n: usize) -> People {
    People {
        leavers: (0..n)
            .map(|i| PersonId::from(format!("p{i}").as_str()))
            .collect(),
        ..People::default()
    }
}

#[test]
fn more_leavers_at_once_than_allowed_is_mass_leaving() {
    let count = LeaverLimits {
        max: 3,
        max_percent: 0,
    };
    assert_eq!(
        MassLeaving::of(&leavers(3), 1000, count),
        None,
        "up to the limit is allowed"
    );
    let held = MassLeaving::of(&leavers(8), 1000, count).unwrap();
    assert_eq!(held.leavers.len(), 8);
    let said = held.to_string();
    assert!(
        said.contains("8 people leavers at once (p0, p1, p2, p3, p4 and 3 more)"),
        "{said}"
    );
    assert!(
        said.contains("more than directory.max_leavers = 3;"),
        "{said}"
    );
    assert!(said.contains("it was not applied"), "{said}");
    let none = LeaverLimits {
        max: 0,
        max_percent: 0,
    };
    assert_eq!(
        MassLeaving::of(&leavers(10_000), 10_000, none),
        None,
        "0 allows any number"
    );
}

#[test]
fn more_than_a_share_of_the_directory_leaving_is_held_even_under_the_count() {
    // A base_dn that finds one person of twenty: nineteen leavers, far below 100.
    let limits = LeaverLimits {
        max: 100,
        max_percent: 10,
    };
    let held = MassLeaving::of(&leavers(19), 20, limits).unwrap();
    let said = held.to_string();
    assert!(
        said.contains("95% of the 20 active people, more than directory.max_leavers_percent = 10;"),
        "{said}"
    );
    assert!(
        !said.contains("max_leavers ="),
        "the count was not broken: {said}"
    );
    assert_eq!(
        MassLeaving::of(&leavers(2), 20, limits),
        None,
        "10% is allowed"
    );
    assert!(MassLeaving::of(&leavers(3), 20, limits).is_some());
    assert_eq!(
        MassLeaving::of(&leavers(1), 3, limits),
        None,
        "one leaver is never held by the share, however small the organisation"
    );
    let both = MassLeaving::of(&leavers(150), 200, limits).unwrap();
    assert!(
        both.to_string()
            .contains("max_leavers = 100, and 75% of the 200"),
        "{both}"
    );
}

#[test]
fn leavers_movers_and_joiners_are_told_apart() {
    let old = example_directory();
    let new = changed(
        "department = \"engineering\"\ntitle = \"Backend Engineer\"",
        "department = \"finance\"\ntitle = \"Backend Engineer\"",
    );
    assert_eq!(
        compare(&old, &new),
        People {
            movers: vec!["dan".into()],
            ..People::default()
        }
    );
    let new = changed("title = \"SRE\"", "title = \"SRE\"\nactive = false");
    assert_eq!(compare(&old, &new).leavers, vec![PersonId::from("alice")]);
    let new = changed("active = false", "active = true");
    assert_eq!(
        compare(&old, &new).joiners,
        vec![PersonId::from("gus")],
        "a rehire is a joiner"
    );
    assert_eq!(compare(&old, &old), People::default());
}

fn holding(
    person: &str,
    (resource, role): (&str, &str),
    bundle: Option<&str>,
    state: GrantState,
) -> Holding {
    let at = chrono::DateTime::UNIX_EPOCH;
    Holding {
        grant: Grant {
            id: crate::domain::ids::GrantId(1),
            person: person.into(),
            resource: resource.into(),
            role: role.into(),
            request: crate::domain::ids::RequestId(1),
            granted_at: at,
            expires_at: None,
            emergency: false,
            review: None,
            warned_at: None,
            state,
        },
        bundle: bundle.map(str::to_owned),
    }
}

fn pairs(given: &[Birthright]) -> Vec<(&str, &str)> {
    given
        .iter()
        .map(|b| (b.resource.as_str(), b.role.as_str()))
        .collect()
}

fn revoked(reason: RevokeReason) -> GrantState {
    GrantState::Revoked {
        reason,
        at: chrono::DateTime::UNIX_EPOCH,
    }
}

fn active() -> GrantState {
    GrantState::Active {
        since: chrono::DateTime::UNIX_EPOCH,
    }
}

const BASELINE: Option<&str> = Some("engineering-baseline");

#[test]
fn a_bundle_reaches_everyone_it_matches_once() {
    let policy = example_policy();
    let directory = example_directory();
    let dan = directory.person(&"dan".into()).unwrap();
    let given = birthrights(&policy, dan, &[]);
    assert_eq!(pairs(&given), [("github", "member"), ("grafana", "viewer")]);
    assert_eq!(given[0].bundle, "engineering-baseline");
    let fay = directory.person(&"fay".into()).unwrap();
    assert!(
        birthrights(&policy, fay, &[]).is_empty(),
        "finance has no bundle"
    );

    let held = [holding("dan", ("github", "member"), BASELINE, active())];
    assert_eq!(
        pairs(&birthrights(&policy, dan, &held)),
        [("grafana", "viewer")],
        "what is held is not given twice"
    );
    let asked = [holding(
        "dan",
        ("github", "member"),
        None,
        GrantState::Provisioning,
    )];
    assert_eq!(
        pairs(&birthrights(&policy, dan, &asked)),
        [("grafana", "viewer")],
        "a request's grant of the same role counts"
    );
}

#[test]
fn a_bundle_grant_ended_by_choice_is_not_given_again_one_lost_by_leaving_or_moving_is() {
    let policy = example_policy();
    let directory = example_directory();
    let dan = directory.person(&"dan".into()).unwrap();
    let ended = |reason| {
        [holding(
            "dan",
            ("github", "member"),
            BASELINE,
            revoked(reason),
        )]
    };
    for chosen in [
        RevokeReason::EndedEarly,
        RevokeReason::Revoked {
            by: "sue".into(),
            why: "not needed".to_owned(),
        },
        RevokeReason::ReviewSaidNo { by: None },
    ] {
        assert_eq!(
            pairs(&birthrights(&policy, dan, &ended(chosen.clone()))),
            [("grafana", "viewer")],
            "{chosen}"
        );
    }
    for lost in [
        RevokeReason::Offboarded,
        RevokeReason::BundleNoLongerMatches {
            bundle: "engineering-baseline".to_owned(),
        },
    ] {
        assert_eq!(
            birthrights(&policy, dan, &ended(lost.clone())).len(),
            2,
            "a rehire, a mover back: {lost}"
        );
    }
    let failed = GrantState::Failed {
        error: "no account".to_owned(),
        at: chrono::DateTime::UNIX_EPOCH,
    };
    let failed = [holding("dan", ("github", "member"), BASELINE, failed)];
    assert_eq!(birthrights(&policy, dan, &failed).len(), 1, "not retried");
    let revoking = GrantState::Revoking {
        reason: RevokeReason::Offboarded,
        since: chrono::DateTime::UNIX_EPOCH,
        attempts: 0,
    };
    let revoking = [holding("dan", ("github", "member"), None, revoking)];
    assert_eq!(
        birthrights(&policy, dan, &revoking).len(),
        1,
        "not while the role is being taken back: the two would race at the target"
    );
    let mut gone = dan.clone();
    gone.active = false;
    assert!(
        birthrights(&policy, &gone, &[]).is_empty(),
        "a leaver gets nothing"
    );
}

#[test]
fn a_mover_loses_a_bundle_grant_they_no_longer_match_unless_something_else_gives_it() {
    let policy = example_policy();
    let moved = changed(
        "department = \"engineering\"\ntitle = \"Backend Engineer\"",
        "department = \"finance\"\ntitle = \"Backend Engineer\"",
    );
    let dan = moved.person(&"dan".into()).unwrap();
    let bundled = holding("dan", ("github", "member"), BASELINE, active());
    let lost = bundle_losses(&policy, dan, std::slice::from_ref(&bundled));
    assert_eq!(lost.len(), 1);
    assert_eq!(lost[0].1, "engineering-baseline");

    let mut asked = holding("dan", ("github", "member"), None, active());
    asked.grant.id = crate::domain::ids::GrantId(2);
    assert!(
        bundle_losses(&policy, dan, &[bundled.clone(), asked.clone()]).is_empty(),
        "a request also grants it"
    );
    assert!(
        bundle_losses(&policy, dan, &[asked]).is_empty(),
        "a request's grant is not a bundle's to take"
    );
    let still = example_directory();
    let engineer = still.person(&"dan".into()).unwrap();
    assert!(
        bundle_losses(&policy, engineer, std::slice::from_ref(&bundled)).is_empty(),
        "still matches"
    );
    assert_eq!(
        bundle_of_workflow("bundle:engineering-baseline"),
        Some("engineering-baseline")
    );
    assert_eq!(bundle_of_workflow("low-risk"), None);
}
