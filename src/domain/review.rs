//! Access-review campaigns: on a schedule, every live grant in scope goes to its reviewers,
//! who keep or revoke it before a deadline; what nobody decided gets the campaign's
//! `on_timeout` (revoke, keep, or escalate to the admins once and then revoke).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::directory::Directory;
use super::duration::Duration;
use super::grant::Grant;
use super::ids::{CampaignId, GrantId, PersonId, ResourceId, RoleId};
use super::policy::{
    ApproverSelector, OnTimeout, Policy, RequestFacts, RequestType, ReviewCampaign,
};
use super::routing::resolve_selector;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Campaign {
    pub id: CampaignId,
    /// The `[[reviews]]` entry of the policy that started it.
    pub review: String,
    pub started_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    pub on_timeout: OnTimeout,
    /// Whether the deadline was already pushed back once by escalation.
    pub escalated: bool,
    pub items: Vec<ReviewItem>,
    pub closed_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewItem {
    pub grant: GrantId,
    pub person: PersonId,
    pub resource: ResourceId,
    pub role: RoleId,
    pub reviewers: BTreeSet<PersonId>,
    pub decision: Option<ItemDecision>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum ItemDecision {
    Kept {
        by: Option<PersonId>,
        at: DateTime<Utc>,
    },
    Revoked {
        by: Option<PersonId>,
        at: DateTime<Utc>,
    },
}

/// What a campaign covers and who reviews it: a `[[reviews]]` entry, or a one-off review
/// such as the one a mover's grants get.
#[derive(Clone, Copy, Debug)]
pub struct CampaignSpec<'a> {
    pub id: &'a str,
    /// Empty: every resource.
    pub resources: &'a [ResourceId],
    pub reviewers: &'a [ApproverSelector],
    pub deadline: Duration,
    pub on_timeout: OnTimeout,
}

impl CampaignSpec<'_> {
    /// Whether a campaign of this spec reviews `grant`: a live grant on one of its resources.
    pub fn covers(&self, grant: &Grant) -> bool {
        grant.is_live() && (self.resources.is_empty() || self.resources.contains(&grant.resource))
    }
}

impl ReviewCampaign {
    pub fn spec(&self) -> CampaignSpec<'_> {
        CampaignSpec {
            id: &self.id,
            resources: &self.resources,
            reviewers: &self.reviewers,
            deadline: self.deadline,
            on_timeout: self.on_timeout,
        }
    }
}

/// Why a review decision was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReviewError {
    #[error("{campaign} is closed; nothing was changed")]
    Closed { campaign: CampaignId },
    #[error("{grant} is not part of {campaign}")]
    NotInCampaign {
        campaign: CampaignId,
        grant: GrantId,
    },
    #[error("{grant} was already reviewed in {campaign}")]
    AlreadyDecided {
        campaign: CampaignId,
        grant: GrantId,
    },
    #[error("you are not a reviewer of {grant} in {campaign}")]
    NotAReviewer {
        campaign: CampaignId,
        grant: GrantId,
    },
}

/// What the deadline did to a campaign.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Timeout {
    pub revoke: Vec<GrantId>,
    pub kept: Vec<GrantId>,
    /// Items that went to the admins, with the people added.
    pub escalated: Vec<(GrantId, Vec<PersonId>)>,
}

impl Campaign {
    /// Starts a campaign over the live grants in the review's scope. Each grant goes to
    /// the review's reviewers, never to its own holder; the admins stand in when nobody else
    /// could review it.
    pub fn start(
        id: CampaignId,
        spec: &CampaignSpec<'_>,
        policy: &Policy,
        directory: &Directory,
        grants: &[Grant],
        now: DateTime<Utc>,
    ) -> Self {
        let admins: BTreeSet<PersonId> = directory
            .people()
            .filter(|p| policy.is_admin(p))
            .map(|p| p.id.clone())
            .collect();
        let items = grants
            .iter()
            .filter(|g| spec.covers(g))
            .map(|g| {
                let mut reviewers = reviewers_of(g, spec, policy, directory);
                if reviewers.is_empty() {
                    reviewers = admins.iter().filter(|a| **a != g.person).cloned().collect();
                }
                ReviewItem {
                    grant: g.id,
                    person: g.person.clone(),
                    resource: g.resource.clone(),
                    role: g.role.clone(),
                    reviewers,
                    decision: None,
                }
            })
            .collect::<Vec<_>>();
        let closed_at = items.is_empty().then_some(now);
        Campaign {
            id,
            review: spec.id.to_owned(),
            started_at: now,
            deadline: now + spec.deadline.to_chrono(),
            on_timeout: spec.on_timeout,
            escalated: false,
            items,
            closed_at,
        }
    }

    pub fn is_open(&self) -> bool {
        self.closed_at.is_none()
    }

    fn item_mut(&mut self, grant: GrantId) -> Result<&mut ReviewItem, ReviewError> {
        let campaign = self.id;
        if !self.is_open() {
            return Err(ReviewError::Closed { campaign });
        }
        self.items
            .iter_mut()
            .find(|i| i.grant == grant)
            .ok_or(ReviewError::NotInCampaign { campaign, grant })
    }

    /// A reviewer keeps or revokes one grant.
    pub fn decide(
        &mut self,
        grant: GrantId,
        by: &PersonId,
        keep: bool,
        now: DateTime<Utc>,
    ) -> Result<(), ReviewError> {
        let campaign = self.id;
        let item = self.item_mut(grant)?;
        if item.decision.is_some() {
            return Err(ReviewError::AlreadyDecided { campaign, grant });
        }
        if !item.reviewers.contains(by) {
            return Err(ReviewError::NotAReviewer { campaign, grant });
        }
        let by = Some(by.clone());
        item.decision = Some(if keep {
            ItemDecision::Kept { by, at: now }
        } else {
            ItemDecision::Revoked { by, at: now }
        });
        if self.items.iter().all(|i| i.decision.is_some()) {
            self.closed_at = Some(now);
        }
        Ok(())
    }

    /// Applies `on_timeout` to every undecided item once the deadline has passed.
    pub fn time_out(
        &mut self,
        admins: &BTreeSet<PersonId>,
        extension: chrono::TimeDelta,
        now: DateTime<Utc>,
    ) -> Timeout {
        let mut outcome = Timeout::default();
        if !self.is_open() || now < self.deadline {
            return outcome;
        }
        let escalate = self.on_timeout == OnTimeout::Escalate && !self.escalated;
        for item in self.items.iter_mut().filter(|i| i.decision.is_none()) {
            match self.on_timeout {
                _ if escalate => {
                    let added: Vec<PersonId> = admins
                        .iter()
                        .filter(|a| **a != item.person && !item.reviewers.contains(*a))
                        .cloned()
                        .collect();
                    item.reviewers.extend(added.iter().cloned());
                    outcome.escalated.push((item.grant, added));
                }
                OnTimeout::Keep => {
                    item.decision = Some(ItemDecision::Kept { by: None, at: now });
                    outcome.kept.push(item.grant);
                }
                // Revoke, and escalate the second time round: nobody vouched for it.
                OnTimeout::Revoke | OnTimeout::Escalate => {
                    item.decision = Some(ItemDecision::Revoked { by: None, at: now });
                    outcome.revoke.push(item.grant);
                }
            }
        }
        if escalate {
            self.escalated = true;
            self.deadline = now + extension;
        } else {
            self.closed_at = Some(now);
        }
        outcome
    }
}

fn reviewers_of(
    grant: &Grant,
    spec: &CampaignSpec<'_>,
    policy: &Policy,
    directory: &Directory,
) -> BTreeSet<PersonId> {
    let (Some(holder), Some(resource)) = (
        directory.person(&grant.person),
        policy.resource(&grant.resource),
    ) else {
        return BTreeSet::new();
    };
    let Some(role) = resource.role(&grant.role) else {
        return BTreeSet::new();
    };
    let facts = RequestFacts {
        requester: holder,
        resource,
        role,
        duration: None,
        request_type: RequestType::Standard,
    };
    spec.reviewers
        .iter()
        .flat_map(|s| resolve_selector(s, facts.requester, facts.resource, directory))
        .map(|p| p.id.clone())
        .filter(|p| p != &grant.person)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::grant::GrantState;
    use crate::domain::ids::RequestId;
    use crate::domain::policy::tests::{example_directory, example_policy};
    use chrono::{TimeDelta, TimeZone};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 1, 1, 9, 0, 0).unwrap()
    }

    fn grant(id: u64, person: &str, resource: &str, role: &str) -> Grant {
        Grant {
            id: GrantId(id),
            person: person.into(),
            resource: resource.into(),
            role: role.into(),
            request: RequestId(id),
            granted_at: now(),
            expires_at: None,
            emergency: false,
            review: None,
            warned_at: None,
            state: GrantState::Active { since: now() },
        }
    }

    fn campaign() -> Campaign {
        let policy = example_policy();
        let spec = policy
            .reviews
            .iter()
            .find(|r| r.id == "quarterly-prod")
            .unwrap()
            .clone();
        let grants = [
            grant(1, "alice", "prod-db", "read"),
            grant(2, "carol", "prod-db", "read"),
            grant(3, "dan", "grafana", "viewer"),
        ];
        Campaign::start(
            CampaignId(1),
            &spec.spec(),
            &policy,
            &example_directory(),
            &grants,
            now(),
        )
    }

    #[test]
    fn a_spec_covers_live_grants_on_its_resources_and_every_resource_when_it_names_none() {
        let policy = example_policy();
        let quarterly = policy
            .reviews
            .iter()
            .find(|r| r.id == "quarterly-prod")
            .unwrap();
        let spec = quarterly.spec();
        assert!(spec.covers(&grant(1, "alice", "prod-db", "read")));
        assert!(!spec.covers(&grant(2, "dan", "grafana", "viewer")));
        let mut ended = grant(3, "alice", "prod-db", "read");
        ended.state = GrantState::Revoked {
            reason: crate::domain::grant::RevokeReason::Expired,
            at: now(),
        };
        assert!(!spec.covers(&ended), "only live grants are reviewed");
        let everything = CampaignSpec {
            resources: &[],
            ..spec
        };
        assert!(everything.covers(&grant(2, "dan", "grafana", "viewer")));
    }

    #[test]
    fn a_campaign_covers_the_grants_in_scope_and_never_asks_holders_about_themselves() {
        let c = campaign();
        assert_eq!(c.items.len(), 2, "grafana is out of scope");
        let reviewers: Vec<&str> = c.items[0].reviewers.iter().map(PersonId::as_str).collect();
        assert_eq!(reviewers, ["carol", "dora"]);
        let reviewers: Vec<&str> = c.items[1].reviewers.iter().map(PersonId::as_str).collect();
        assert_eq!(reviewers, ["dora"]);
        assert_eq!(c.deadline, now() + TimeDelta::days(7));
    }

    #[test]
    fn only_reviewers_decide_and_only_once() {
        let mut c = campaign();
        let err = c
            .decide(GrantId(1), &"alice".into(), true, now())
            .unwrap_err();
        assert_eq!(err.to_string(), "you are not a reviewer of G-1 in RC-1");
        c.decide(GrantId(1), &"carol".into(), true, now()).unwrap();
        let err = c
            .decide(GrantId(1), &"dora".into(), false, now())
            .unwrap_err();
        assert_eq!(err.to_string(), "G-1 was already reviewed in RC-1");
        c.decide(GrantId(2), &"dora".into(), false, now()).unwrap();
        assert!(!c.is_open(), "closed once everything is decided");
    }

    #[test]
    fn what_nobody_kept_is_revoked_at_the_deadline() {
        let mut c = campaign();
        c.decide(GrantId(1), &"carol".into(), true, now()).unwrap();
        let admins = BTreeSet::new();
        assert_eq!(
            c.time_out(&admins, TimeDelta::days(7), now() + TimeDelta::days(6)),
            Timeout::default()
        );
        let out = c.time_out(&admins, TimeDelta::days(7), now() + TimeDelta::days(7));
        assert_eq!(out.revoke, [GrantId(2)]);
        assert!(!c.is_open());
    }

    #[test]
    fn escalation_adds_the_admins_once_then_revokes() {
        let mut c = campaign();
        c.on_timeout = OnTimeout::Escalate;
        let admins: BTreeSet<PersonId> = ["sue".into()].into();
        let out = c.time_out(&admins, TimeDelta::days(3), now() + TimeDelta::days(7));
        assert_eq!(out.escalated.len(), 2);
        assert!(c.items[0].reviewers.contains(&"sue".into()));
        assert_eq!(c.deadline, now() + TimeDelta::days(10));
        let out = c.time_out(&admins, TimeDelta::days(3), now() + TimeDelta::days(10));
        assert_eq!(out.revoke.len(), 2);
    }
}
