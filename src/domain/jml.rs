//! Joiners, movers and leavers: what a new directory means for the people in it.
//! A leaver (gone, or `active = false`) loses everything; a mover (new department or groups)
//! loses what they are no longer eligible for, and the bundle grants of bundles they no
//! longer match, or has them reviewed; everyone receives what the bundles that match them
//! owe them ([`birthrights`]), whenever a bundle or a person appears.

use super::directory::{Directory, Person};
use super::duration::Duration;
use super::grant::{Grant, GrantState};
use super::ids::{PersonId, ResourceId, RoleId};
use super::policy::{ApproverSelector, OnTimeout, Policy};
use super::review::CampaignSpec;

/// Who changed between two directories.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct People {
    pub leavers: Vec<PersonId>,
    pub movers: Vec<PersonId>,
    pub joiners: Vec<PersonId>,
}

pub fn compare(old: &Directory, new: &Directory) -> People {
    let mut people = People::default();
    for before in old.people().filter(|p| p.active) {
        match new.active_person(&before.id) {
            None => people.leavers.push(before.id.clone()),
            Some(after) if moved(before, after) => people.movers.push(after.id.clone()),
            Some(_) => {}
        }
    }
    for after in new.people().filter(|p| p.active) {
        if old.active_person(&after.id).is_none() {
            people.joiners.push(after.id.clone());
        }
    }
    people
}

/// How many people one directory read may make leavers at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaverLimits {
    /// More leavers than this at once is held; 0: no limit.
    pub max: usize,
    /// More than this share (in percent) of the active people is held, unless only one
    /// person leaves; 0: no limit.
    pub max_percent: u8,
}

/// A directory change that would make more people leavers at once than the operator allows:
/// a wrong base DN or filter, an OU moved, looks like everyone leaving, and taking everyone's
/// access away is not something to do on a guess. The share catches it in an organisation
/// smaller than the count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MassLeaving {
    pub leavers: Vec<PersonId>,
    /// How many people were active before.
    pub active: usize,
    pub limits: LeaverLimits,
}

impl MassLeaving {
    /// `Some` when `people` makes more leavers than `limits` allow, out of `active` people
    /// active before.
    pub fn of(people: &People, active: usize, limits: LeaverLimits) -> Option<Self> {
        let held = MassLeaving {
            leavers: people.leavers.clone(),
            active,
            limits,
        };
        (held.over_count() || held.over_share()).then_some(held)
    }

    fn over_count(&self) -> bool {
        self.limits.max > 0 && self.leavers.len() > self.limits.max
    }

    fn over_share(&self) -> bool {
        let n = self.leavers.len();
        self.limits.max_percent > 0
            && n > 1
            && n * 100 > usize::from(self.limits.max_percent) * self.active
    }

    /// The share of the active people leaving, in whole percent.
    fn percent(&self) -> usize {
        (self.leavers.len() * 100)
            .checked_div(self.active)
            .unwrap_or(100)
    }
}

impl std::fmt::Display for MassLeaving {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const SHOWN: usize = 5;
        let shown: Vec<&str> = self
            .leavers
            .iter()
            .take(SHOWN)
            .map(|p| p.as_str())
            .collect();
        let more = self.leavers.len().saturating_sub(SHOWN);
        let mut over = Vec::new();
        if self.over_count() {
            over.push(format!(
                "more than directory.max_leavers = {}",
                self.limits.max
            ));
        }
        if self.over_share() {
            over.push(format!(
                "{}% of the {} active people, more than directory.max_leavers_percent = {}",
                self.percent(),
                self.active,
                self.limits.max_percent
            ));
        }
        write!(
            f,
            "the directory read would make {} people leavers at once ({}{}), {}; it was not \
             applied: the directory in force stays and everyone keeps their access. If they \
             did leave, raise the limit (0: no limit) and reload; if not, check base_dn and \
             filter",
            self.leavers.len(),
            shown.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            },
            over.join(", and ")
        )
    }
}

fn moved(before: &Person, after: &Person) -> bool {
    let department = |p: &Person| p.department.as_deref().map(str::to_lowercase);
    department(before) != department(after) || before.groups != after.groups
}

/// A mover's live grants that the policy no longer lets them ask for.
pub fn no_longer_eligible<'g>(
    policy: &Policy,
    person: &Person,
    grants: &'g [Grant],
) -> Vec<&'g Grant> {
    grants
        .iter()
        .filter(|g| g.is_live() && g.person == person.id)
        .filter(|g| {
            policy
                .resource(&g.resource)
                .is_none_or(|r| !r.is_eligible(person))
        })
        .collect()
}

/// How long a resource's owners have to review a mover's grants.
pub const MOVER_REVIEW_DEADLINE: Duration = Duration::from_days(7);

/// The one-off review of a mover's grants under `on_mover = "review"`: each resource's
/// owners decide within a week, and what nobody keeps is revoked.
pub fn mover_review(name: &str) -> CampaignSpec<'_> {
    CampaignSpec {
        id: name,
        resources: &[],
        reviewers: &[ApproverSelector::Owners],
        deadline: MOVER_REVIEW_DEADLINE,
        on_timeout: OnTimeout::Revoke,
    }
}

/// The workflow a bundle's auto-approved request is filed under: `bundle:<id>`, which no
/// policy workflow can be called (ids have no colon).
pub const BUNDLE_WORKFLOW_PREFIX: &str = "bundle:";

/// The bundle that gave a request, from the workflow it is filed under.
pub fn bundle_of_workflow(workflow: &str) -> Option<&str> {
    workflow.strip_prefix(BUNDLE_WORKFLOW_PREFIX)
}

/// A grant of a person's, with the bundle that gave it (`None`: a request did).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holding {
    pub grant: Grant,
    pub bundle: Option<String>,
}

/// A grant a bundle gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Birthright {
    pub bundle: String,
    pub resource: ResourceId,
    pub role: RoleId,
}

/// What the bundles that match `person` owe them, given everything they have held
/// (`holdings`). A bundle gives each of its grants once: not while any grant of that role is
/// live or being revoked, and not again after the one it gave ended by someone's choice
/// (ended early, revoked, a review said no) or failed. It gives it again after the person
/// lost it for who they were (left, moved away) and matches once more. So a bundle reaches
/// the people already there when it appears, joiners and movers when they do, and applying
/// it twice gives nothing twice.
pub fn birthrights(policy: &Policy, person: &Person, holdings: &[Holding]) -> Vec<Birthright> {
    if !person.active {
        return Vec::new();
    }
    let mut given: Vec<Birthright> = Vec::new();
    for bundle in policy
        .bundles
        .iter()
        .filter(|b| b.when.matches_person(person))
    {
        for (resource, role) in &bundle.grants {
            let same = |h: &&Holding| &h.grant.resource == resource && &h.grant.role == role;
            let busy = holdings
                .iter()
                .filter(same)
                .any(|h| h.grant.is_live() || matches!(h.grant.state, GrantState::Revoking { .. }));
            let last_from_bundle = holdings
                .iter()
                .filter(same)
                .filter(|h| h.bundle.as_deref() == Some(bundle.id.as_str()))
                .max_by_key(|h| (h.grant.granted_at, h.grant.id.0));
            let owed = match last_from_bundle {
                None => true,
                Some(last) => match &last.grant.state {
                    GrantState::Revoked { reason, .. } => reason.follows_the_directory(),
                    _ => false,
                },
            };
            let twice = given
                .iter()
                .any(|b| &b.resource == resource && &b.role == role);
            if owed && !busy && !twice {
                given.push(Birthright {
                    bundle: bundle.id.clone(),
                    resource: resource.clone(),
                    role: role.clone(),
                });
            }
        }
    }
    given
}

/// A mover's live grants that a bundle gave and that they lost with the bundle: they no
/// longer match it, no other bundle that matches them gives the same role, and no other live
/// grant (a request's) holds it. Each with the bundle that gave it.
pub fn bundle_losses<'h>(
    policy: &Policy,
    person: &Person,
    holdings: &'h [Holding],
) -> Vec<(&'h Grant, &'h str)> {
    holdings
        .iter()
        .filter(|h| h.grant.is_live() && h.grant.person == person.id)
        .filter_map(|h| Some((&h.grant, h.bundle.as_deref()?)))
        .filter(|(grant, _)| {
            let pair = (&grant.resource, &grant.role);
            let still_given = policy.bundles.iter().any(|b| {
                b.when.matches_person(person) && b.grants.iter().any(|(r, o)| (r, o) == pair)
            });
            let held_otherwise = holdings.iter().any(|other| {
                other.grant.id != grant.id
                    && other.grant.is_live()
                    && (&other.grant.resource, &other.grant.role) == pair
            });
            !still_given && !held_otherwise
        })
        .collect()
}

#[cfg(test)]
mod tests {
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
            said.contains(
                "95% of the 20 active people, more than directory.max_leavers_percent = 10;"
            ),
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
}
