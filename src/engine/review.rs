//! Access reviews: start the campaigns whose cron schedule came due, take reviewers'
//! keep / revoke decisions, and apply `on_timeout` at the deadline.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::{Engine, EngineError};
use crate::domain::audit::{Actor, AuditAction, AuditEvent};
use crate::domain::effect::Effect;
use crate::domain::grant::RevokeReason;
use crate::domain::ids::{CampaignId, GrantId, PersonId};
use crate::domain::review::Campaign;
use crate::store::{Commit, Expect, Sequence};

/// The mark under which the last run of a review's schedule is remembered.
fn mark_name(review: &str) -> String {
    format!("review/{review}")
}

impl Engine {
    /// Starts every campaign whose schedule fired since it last ran. A review seen for the
    /// first time starts counting from now: schedules are not replayed into the past.
    pub fn start_due_campaigns(&self) -> Result<Vec<CampaignId>, EngineError> {
        let world = self.world();
        let now = self.now();
        let mut started = Vec::new();
        for spec in &world.policy.reviews {
            let name = mark_name(&spec.id);
            let Some(last) = self.store.mark(&name)? else {
                self.commit(Commit {
                    marks: vec![(name, now)],
                    ..Commit::default()
                })?;
                continue;
            };
            if spec
                .schedule
                .after(&last)
                .next()
                .is_none_or(|next| next > now)
            {
                continue;
            }
            let scope = spec.spec();
            // Only the grants it covers are read into memory, not every live grant.
            let covered = self.store.grants_where(&|g| scope.covers(g), usize::MAX)?;
            let id = CampaignId(self.store.next_id(Sequence::Campaign)?);
            let campaign =
                Campaign::start(id, &scope, &world.policy, &world.directory, &covered, now);
            let mut commit = Commit::default();
            commit.events.push(
                AuditEvent::new(
                    now,
                    Actor::System,
                    AuditAction::CampaignStarted {
                        review: spec.id.clone(),
                        items: campaign.items.len(),
                    },
                )
                .campaign(id)
                .policy(format!("review:{}", spec.id)),
            );
            queue_new_campaign(campaign, &mut commit);
            commit.marks.push((name, now));
            self.commit(commit)?;
            started.push(id);
        }
        Ok(started)
    }

    /// A reviewer keeps or revokes one grant of a campaign.
    pub fn decide_review(
        &self,
        actor: &Actor,
        id: CampaignId,
        grant: GrantId,
        keep: bool,
    ) -> Result<Campaign, EngineError> {
        self.with_retries(|| {
            let world = self.world();
            let reviewer = world.acting_person(actor)?.id.clone();
            let stored = self.store.campaign(id)?.ok_or_else(|| {
                EngineError::NotFound(format!("there is no review campaign {id}"))
            })?;
            let mut campaign = stored.value;
            let now = self.now();
            campaign
                .decide(grant, &reviewer, keep, now)
                .map_err(|e| EngineError::NotAllowed(e.to_string()))?;
            let mut commit = Commit::default();
            let action = if keep {
                AuditAction::ReviewKept
            } else {
                AuditAction::ReviewRevoked
            };
            commit.events.push(
                AuditEvent::new(now, actor.clone(), action)
                    .campaign(id)
                    .grant(grant)
                    .policy(format!("review:{}", campaign.review)),
            );
            // The other reviewers' cards of this item lose their buttons.
            commit.effects.push(Effect::RefreshReviewCards {
                campaign: id,
                grant,
            });
            if !keep {
                self.revoke_if_live(
                    grant,
                    RevokeReason::ReviewSaidNo { by: Some(reviewer) },
                    actor,
                    now,
                    &mut commit,
                )?;
            }
            commit
                .campaigns
                .push((campaign.clone(), Expect::Version(stored.version)));
            self.commit(commit)?;
            Ok(campaign)
        })
    }

    fn revoke_if_live(
        &self,
        id: GrantId,
        reason: RevokeReason,
        actor: &Actor,
        now: DateTime<Utc>,
        commit: &mut Commit,
    ) -> Result<(), EngineError> {
        if let Some(stored) = self.store.grant(id)?.filter(|g| g.value.is_live()) {
            self.queue_revocation(stored, reason, actor, now, commit)?;
        }
        Ok(())
    }

    /// Applies `on_timeout` to the open campaigns whose deadline passed; how many.
    pub fn time_out_campaigns(&self) -> Result<usize, EngineError> {
        let world = self.world();
        let now = self.now();
        let admins: BTreeSet<PersonId> = world
            .directory
            .people()
            .filter(|p| world.policy.is_admin(p))
            .map(|p| p.id.clone())
            .collect();
        let mut done = 0;
        for stored in self.store.campaigns(true)? {
            if stored.value.deadline > now {
                continue;
            }
            let mut campaign = stored.value;
            let extension = world
                .policy
                .reviews
                .iter()
                .find(|r| r.id == campaign.review)
                .map_or(chrono::TimeDelta::days(7), |r| r.deadline.to_chrono());
            let outcome = campaign.time_out(&admins, extension, now);
            let mut commit = Commit::default();
            commit.events.push(
                AuditEvent::new(
                    now,
                    Actor::System,
                    AuditAction::CampaignTimedOut {
                        revoked: outcome.revoke.len(),
                        kept: outcome.kept.len(),
                        escalated: outcome.escalated.len(),
                    },
                )
                .campaign(campaign.id)
                .policy(format!(
                    "review:{} on_timeout = {:?}",
                    campaign.review, campaign.on_timeout
                )),
            );
            for grant in &outcome.revoke {
                self.revoke_if_live(
                    *grant,
                    RevokeReason::ReviewSaidNo { by: None },
                    &Actor::System,
                    now,
                    &mut commit,
                )?;
            }
            for grant in outcome.revoke.iter().chain(&outcome.kept) {
                commit.effects.push(Effect::RefreshReviewCards {
                    campaign: campaign.id,
                    grant: *grant,
                });
            }
            for (grant, added) in &outcome.escalated {
                for reviewer in added {
                    commit.effects.push(Effect::ReviewCard {
                        campaign: campaign.id,
                        grant: *grant,
                        reviewer: reviewer.clone(),
                    });
                }
            }
            commit
                .campaigns
                .push((campaign, Expect::Version(stored.version)));
            self.commit(commit)?;
            done += 1;
        }
        Ok(done)
    }

    /// The earliest moment a review schedule fires or an open campaign's deadline passes.
    pub fn next_review_moment(&self) -> Result<Option<DateTime<Utc>>, EngineError> {
        let world = self.world();
        let now = self.now();
        let mut next: Option<DateTime<Utc>> = None;
        for spec in &world.policy.reviews {
            let from = self.store.mark(&mark_name(&spec.id))?.unwrap_or(now);
            if let Some(at) = spec.schedule.after(&from).next() {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        for campaign in self.store.campaigns(true)? {
            let at = campaign.value.deadline;
            next = Some(next.map_or(at, |n| n.min(at)));
        }
        Ok(next)
    }
}

/// Queues a new campaign with a card for every reviewer of every item.
pub(super) fn queue_new_campaign(campaign: Campaign, commit: &mut Commit) {
    for item in &campaign.items {
        for reviewer in &item.reviewers {
            commit.effects.push(Effect::ReviewCard {
                campaign: campaign.id,
                grant: item.grant,
                reviewer: reviewer.clone(),
            });
        }
    }
    commit.campaigns.push((campaign, Expect::New));
}
