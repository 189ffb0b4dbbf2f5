//! Putting a new policy and directory in force, and what the directory change means for
//! people: leavers lose everything, movers lose (or get reviewed on) what they are no
//! longer eligible for and the bundle grants of bundles they no longer match, and everyone
//! receives what the bundles that match them owe them — at start ([`Engine::apply_bundles`])
//! and at every reload, so that a bundle reaches the people already there.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{Engine, EngineError, World};
use crate::domain::audit::{Actor, AuditAction, AuditEvent};
use crate::domain::directory::{Directory, Person};
use crate::domain::effect::{Alert, Effect, Notice};
use crate::domain::grant::{Grant, GrantState, RevokeReason};
use crate::domain::ids::{CampaignId, GrantId, PersonId, RequestId};
use crate::domain::jml::{
    BUNDLE_WORKFLOW_PREFIX, Birthright, Holding, birthrights, bundle_losses, bundle_of_workflow,
    compare, mover_review, no_longer_eligible,
};
use crate::domain::policy::{MoverAction, Policy};
use crate::domain::request::{AccessRequest, RequestKind, RequestState};
use crate::domain::review::Campaign;
use crate::domain::routing::ApprovalPlan;
use crate::store::{Commit, Expect, RequestWrite, Sequence};

/// What a reload did to people's access.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReloadReport {
    pub leavers: Vec<PersonId>,
    pub movers: Vec<PersonId>,
    pub joiners: Vec<PersonId>,
    /// Grants taken away (leavers, and movers under `on_mover = "revoke"`).
    pub revoked: Vec<GrantId>,
    /// Movers' grants sent to their owners for review.
    pub reviews: Vec<CampaignId>,
    /// Grants given by bundles.
    pub bundled: Vec<GrantId>,
}

impl Engine {
    /// Puts `policy` and `directory` in force (both already checked) and applies the
    /// joiners, movers and leavers the directory change makes.
    pub fn reload(
        &self,
        policy: Policy,
        directory: Directory,
    ) -> Result<ReloadReport, EngineError> {
        let old = self.world();
        self.replace_world(policy, directory);
        let new = self.world();
        let people = compare(&old.directory, &new.directory);
        let mut report = ReloadReport {
            leavers: people.leavers.clone(),
            movers: people.movers.clone(),
            joiners: people.joiners.clone(),
            ..ReloadReport::default()
        };
        for leaver in &people.leavers {
            report
                .revoked
                .extend(self.offboard_unchecked(&Actor::System, leaver)?.grants);
        }
        for mover in &people.movers {
            let Some(person) = new.directory.person(mover) else {
                continue;
            };
            let holdings = self.holdings_of(mover, &new.policy)?;
            let grants: Vec<Grant> = holdings.iter().map(|h| h.grant.clone()).collect();
            let mut lost: Vec<(Grant, RevokeReason)> =
                no_longer_eligible(&new.policy, person, &grants)
                    .into_iter()
                    .map(|g| (g.clone(), RevokeReason::NoLongerEligible))
                    .collect();
            for (grant, bundle) in bundle_losses(&new.policy, person, &holdings) {
                if !lost.iter().any(|(g, _)| g.id == grant.id) {
                    let bundle = bundle.to_owned();
                    lost.push((
                        grant.clone(),
                        RevokeReason::BundleNoLongerMatches { bundle },
                    ));
                }
            }
            if !lost.is_empty() {
                match new.policy.defaults.on_mover {
                    MoverAction::Revoke => report.revoked.extend(self.revoke_for_mover(&lost)?),
                    MoverAction::Review => {
                        let grants: Vec<Grant> = lost.into_iter().map(|(g, _)| g).collect();
                        report
                            .reviews
                            .push(self.review_for_mover(mover, &grants, &new)?);
                    }
                }
            }
        }
        report.bundled = self.give_bundles(&new)?;
        Ok(report)
    }

    /// Gives everyone what the bundles that match them owe them (see
    /// [`crate::domain::jml::birthrights`]): at start, so that a bundle reaches the people
    /// already there; reloads do the same. Idempotent: what was given is not given twice.
    pub fn apply_bundles(&self) -> Result<Vec<GrantId>, EngineError> {
        let world = self.world();
        self.give_bundles(&world)
    }

    /// `person`'s grants, each with the bundle that gave it. Only grants of a role some bundle
    /// gives need their request read.
    fn holdings_of(&self, person: &PersonId, policy: &Policy) -> Result<Vec<Holding>, EngineError> {
        let bundled = |grant: &Grant| {
            policy.bundles.iter().any(|b| {
                b.grants
                    .iter()
                    .any(|(r, o)| *r == grant.resource && *o == grant.role)
            })
        };
        let mut holdings = Vec::new();
        for grant in self.store.grants_of(person)? {
            let bundle = if bundled(&grant) {
                self.store.request(grant.request)?.and_then(|request| {
                    bundle_of_workflow(request.value.plan.workflow.as_str()).map(str::to_owned)
                })
            } else {
                None
            };
            holdings.push(Holding { grant, bundle });
        }
        Ok(holdings)
    }

    /// A directory read was held (too many leavers at once): audited, and the security
    /// channel told what was held and what to do.
    pub fn directory_sync_held(&self, leavers: usize, message: &str) -> Result<(), EngineError> {
        let now = self.now();
        self.commit(Commit {
            events: vec![
                AuditEvent::new(
                    now,
                    Actor::System,
                    AuditAction::DirectorySyncHeld { leavers },
                )
                .reason(message),
            ],
            effects: vec![Effect::Alert {
                alert: Alert::DirectorySyncHeld {
                    leavers,
                    message: message.to_owned(),
                },
            }],
            ..Commit::default()
        })?;
        Ok(())
    }

    /// A directory read that the policy does not pass was put in force under the policy
    /// already in force: the security channel is told why, so that someone fixes the policy.
    pub fn directory_out_of_policy(&self, problems: &[String]) -> Result<(), EngineError> {
        self.commit(Commit {
            effects: vec![Effect::Alert {
                alert: Alert::DirectoryOutOfPolicy {
                    problems: problems.to_vec(),
                },
            }],
            ..Commit::default()
        })?;
        Ok(())
    }

    fn revoke_for_mover(
        &self,
        lost: &[(Grant, RevokeReason)],
    ) -> Result<Vec<GrantId>, EngineError> {
        let now = self.now();
        let mut commit = Commit::default();
        let mut revoked = Vec::new();
        for (grant, reason) in lost {
            let Some(stored) = self.store.grant(grant.id)?.filter(|g| g.value.is_live()) else {
                continue;
            };
            self.queue_revocation(stored, reason.clone(), &Actor::System, now, &mut commit)?;
            revoked.push(grant.id);
        }
        self.commit(commit)?;
        Ok(revoked)
    }

    fn review_for_mover(
        &self,
        mover: &PersonId,
        lost: &[Grant],
        world: &World,
    ) -> Result<CampaignId, EngineError> {
        let now = self.now();
        let id = CampaignId(self.store.next_id(Sequence::Campaign)?);
        let name = format!("mover:{mover}");
        let spec = mover_review(&name);
        let campaign = Campaign::start(id, &spec, &world.policy, &world.directory, lost, now);
        let mut commit = Commit::default();
        commit.events.push(
            AuditEvent::new(
                now,
                Actor::System,
                AuditAction::CampaignStarted {
                    review: name,
                    items: campaign.items.len(),
                },
            )
            .campaign(id)
            .reason(format!(
                "{mover} moved and is no longer eligible for {} grant(s)",
                lost.len()
            ))
            .policy("defaults.on_mover = review"),
        );
        super::review::queue_new_campaign(campaign, &mut commit);
        self.commit(commit)?;
        Ok(id)
    }

    /// Gives every active person what the bundles that match them owe them, auto-approved
    /// and audited.
    fn give_bundles(&self, world: &World) -> Result<Vec<GrantId>, EngineError> {
        let mut given = Vec::new();
        if world.policy.bundles.is_empty() {
            return Ok(given);
        }
        for person in world.directory.people().filter(|p| {
            p.active
                && world
                    .policy
                    .bundles
                    .iter()
                    .any(|b| b.when.matches_person(p))
        }) {
            let holdings = self.holdings_of(&person.id, &world.policy)?;
            for birthright in birthrights(&world.policy, person, &holdings) {
                given.push(self.give_birthright(person, &birthright)?);
            }
        }
        Ok(given)
    }

    fn give_birthright(
        &self,
        person: &Person,
        birthright: &Birthright,
    ) -> Result<GrantId, EngineError> {
        let now = self.now();
        let request_id = RequestId(self.store.next_id(Sequence::Request)?);
        let grant_id = GrantId(self.store.next_id(Sequence::Grant)?);
        let policy = format!("{BUNDLE_WORKFLOW_PREFIX}{}", birthright.bundle);
        let request = birthright_request(request_id, grant_id, person, birthright, now);
        let grant = Grant {
            id: grant_id,
            person: person.id.clone(),
            resource: birthright.resource.clone(),
            role: birthright.role.clone(),
            request: request_id,
            granted_at: now,
            expires_at: None,
            emergency: false,
            review: None,
            warned_at: None,
            state: GrantState::Provisioning,
        };
        let commit = Commit {
            events: vec![
                AuditEvent::new(now, Actor::System, AuditAction::RequestAutoApproved)
                    .request(request_id)
                    .reason(request.justification.clone())
                    .policy(policy.clone()),
                AuditEvent::new(
                    now,
                    Actor::System,
                    AuditAction::GrantCreated {
                        person: person.id.clone(),
                        resource: grant.resource.clone(),
                        role: grant.role.clone(),
                        expires_at: None,
                    },
                )
                .request(request_id)
                .grant(grant_id)
                .policy(policy),
            ],
            effects: vec![
                Effect::Provision { grant: grant_id },
                Effect::Notify {
                    to: person.id.clone(),
                    notice: Notice::Approved {
                        request: request_id,
                        grant: grant_id,
                    },
                },
            ],
            requests: vec![RequestWrite {
                request,
                expect: Expect::New,
                due: None,
            }],
            grants: vec![(grant, Expect::New)],
            ..Commit::default()
        };
        self.commit(commit)?;
        Ok(grant_id)
    }
}

/// The request record a birthright grant is filed under: asked by nobody, approved by policy.
fn birthright_request(
    id: RequestId,
    grant: GrantId,
    person: &Person,
    birthright: &Birthright,
    now: DateTime<Utc>,
) -> AccessRequest {
    AccessRequest {
        id,
        requester: person.id.clone(),
        resource: birthright.resource.clone(),
        role: birthright.role.clone(),
        duration: None,
        justification: format!("birthright access from bundle {}", birthright.bundle),
        fields: BTreeMap::new(),
        kind: RequestKind::Access,
        submitted_at: now,
        submitted_by: Some("directory reload".to_owned()),
        plan: ApprovalPlan {
            workflow: format!("{BUNDLE_WORKFLOW_PREFIX}{}", birthright.bundle)
                .as_str()
                .into(),
            auto_approved: true,
            stages: Vec::new(),
        },
        current_stage: 0,
        stage_started_at: now,
        expires_at: now,
        last_reminded_at: None,
        changes: Vec::new(),
        state: RequestState::Approved { grant, at: now },
    }
}
