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
mod tests;
