//! Joiners, movers and leavers: what a new directory means for the people in it.
//! A leaver (gone, or `active = false`) loses everything; a mover (new department or groups)
//! loses what they are no longer eligible for, or has it reviewed; joiners and movers
//! receive the bundles that now match them.

use std::collections::BTreeSet;

use super::directory::{Directory, Person};
use super::duration::Duration;
use super::grant::Grant;
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

/// A directory change that would make more people leavers at once than the operator allows:
/// a wrong base DN or filter, an OU moved, looks like everyone leaving, and taking everyone's
/// access away is not something to do on a guess.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MassLeaving {
    pub leavers: Vec<PersonId>,
    pub max: usize,
}

impl MassLeaving {
    /// `Some` when `people` has more than `max` leavers; `max = 0` allows any number.
    pub fn of(people: &People, max: usize) -> Option<Self> {
        (max > 0 && people.leavers.len() > max).then(|| MassLeaving {
            leavers: people.leavers.clone(),
            max,
        })
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
        write!(
            f,
            "the directory read would make {} people leavers at once ({}{}), more than \
             directory.max_leavers = {}; nothing was changed and everyone keeps their access. \
             If they did leave, raise max_leavers (0: no limit) and restart; if not, check \
             base_dn and filter",
            self.leavers.len(),
            shown.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            },
            self.max
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

/// A grant a bundle gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Birthright {
    pub bundle: String,
    pub resource: ResourceId,
    pub role: RoleId,
}

/// What the bundles give `person` that they do not hold yet. For a mover, only bundles that
/// did not match them before (`before`) count: they already had their chance at the rest.
pub fn birthrights(
    policy: &Policy,
    person: &Person,
    before: Option<&Person>,
    grants: &[Grant],
) -> Vec<Birthright> {
    let held: BTreeSet<(&ResourceId, &RoleId)> = grants
        .iter()
        .filter(|g| g.is_live())
        .map(|g| (&g.resource, &g.role))
        .collect();
    let mut given = Vec::new();
    for bundle in &policy.bundles {
        if !bundle.when.matches_person(person)
            || before.is_some_and(|b| b.active && bundle.when.matches_person(b))
        {
            continue;
        }
        for (resource, role) in &bundle.grants {
            let already = held.contains(&(resource, role))
                || given
                    .iter()
                    .any(|b: &Birthright| &b.resource == resource && &b.role == role);
            if !already {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::diagnostic::Source;
    use crate::domain::policy::tests::{EXAMPLE_DIRECTORY, example_directory, example_policy};

    fn changed(from: &str, to: &str) -> Directory {
        assert!(EXAMPLE_DIRECTORY.contains(from), "{from}");
        Directory::parse(&Source::new(
            "directory.toml",
            &EXAMPLE_DIRECTORY.replacen(from, to, 1),
        ))
        .unwrap()
    }

    #[test]
    fn more_leavers_at_once_than_allowed_is_mass_leaving() {
        let people = |n: usize| People {
            leavers: (0..n)
                .map(|i| PersonId::from(format!("p{i}").as_str()))
                .collect(),
            ..People::default()
        };
        assert_eq!(
            MassLeaving::of(&people(3), 3),
            None,
            "up to the limit is allowed"
        );
        let held = MassLeaving::of(&people(8), 3).unwrap();
        assert_eq!(held.leavers.len(), 8);
        let said = held.to_string();
        assert!(
            said.contains("8 people leavers at once (p0, p1, p2, p3, p4 and 3 more)"),
            "{said}"
        );
        assert!(said.contains("directory.max_leavers = 3"), "{said}");
        assert_eq!(
            MassLeaving::of(&people(10_000), 0),
            None,
            "0 allows any number"
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

    #[test]
    fn a_joiner_gets_the_bundles_that_match_once() {
        let policy = example_policy();
        let directory = example_directory();
        let dan = directory.person(&"dan".into()).unwrap();
        let given = birthrights(&policy, dan, None, &[]);
        let pairs: Vec<(&str, &str)> = given
            .iter()
            .map(|b| (b.resource.as_str(), b.role.as_str()))
            .collect();
        assert_eq!(pairs, [("github", "member"), ("grafana", "viewer")]);
        let fay = directory.person(&"fay".into()).unwrap();
        assert!(
            birthrights(&policy, fay, None, &[]).is_empty(),
            "finance has no bundle"
        );
        assert!(
            birthrights(&policy, dan, Some(dan), &[]).is_empty(),
            "a mover keeps what matched before"
        );
    }
}
